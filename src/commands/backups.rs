//! `portcullis backups list|verify|restore`: the `pg-dump` folder, by hand.
//!
//! `list` reads manifests only; `verify` re-hashes each dump, compares it and its table of
//! contents with the manifest and has `pg_restore` read every block; `restore` runs the same
//! fresh-database-and-swap restore as a failed pipeline's rollback, printing each step.

use std::collections::HashMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::cli::{BackupsAction, BackupsArgs, OutputFormat};
use crate::commands::{Error, print_warning, write_data, write_json};
use crate::exit_code;
use crate::pg::conn::ConnInfo;
use crate::pg::restore::{self, Target};
use crate::pg::store::{self, Listed};
use crate::pg::tools;
use crate::supervisor::{self, Signals};

/// Ctrl-C, SIGTERM or SIGHUP, from the first instruction on, stop what runs (`pg_restore` by
/// the supervisor's policy); a restore then drops its unfinished copy, leaves the live database
/// as it was, and the command exits 130.
pub(crate) fn backups(args: &BackupsArgs) -> Result<u8, Error> {
    let runtime = crate::commands::runtime()?;
    runtime.block_on(async {
        let mut signals = Signals::new(true);
        crate::pg::conn::sweep_stale_passfiles(&std::env::temp_dir());
        let cancel = CancellationToken::new();
        let work = async {
            match &args.action {
                BackupsAction::List(a) => list(&a.dir, a.format),
                BackupsAction::Verify(a) => verify(&a.dir, &a.ids, &cancel).await,
                BackupsAction::Restore(a) => {
                    restore_one(&a.dir, &a.id, &a.url, &a.maintenance_db, &cancel).await
                }
            }
        };
        let interrupt = async {
            signals.next().await;
            cancel.cancel();
            std::future::pending::<()>().await;
        };
        let result = tokio::select! {
            result = work => result,
            () = interrupt => unreachable!("an interrupt only cancels"),
        };
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        result
    })
}

fn listing(dir: &Path) -> Result<Vec<Listed>, Error> {
    store::list(dir)
        .map_err(|e| Error::failed(e).help("pass the folder of the `pg-dump` stage with `--dir`"))
}

fn list(dir: &Path, format: OutputFormat) -> Result<u8, Error> {
    let entries = listing(dir)?;
    if format == OutputFormat::Json {
        return list_json(dir, &entries);
    }
    if entries.is_empty() {
        // Nothing to list is an answer, not a failure: a warning, and exit 0.
        print_warning(&format!(
            "no backups in `{}` (the folder of the `pg-dump` stage goes in `--dir`)",
            dir.display()
        ));
        return Ok(exit_code::PASSED);
    }
    let mut out = String::new();
    for entry in &entries {
        match entry {
            Listed::Valid { manifest: m, .. } => out.push_str(&format!(
                "{}  valid       {}  {}  {:.1} MB  {} tables  sha256 {}\n",
                m.backup_id,
                m.created_at,
                m.database.name,
                m.size_bytes as f64 / 1e6,
                m.row_counts.len(),
                &m.sha256[..12.min(m.sha256.len())]
            )),
            Listed::Corrupt { id, reason, .. } => {
                out.push_str(&format!("{id}  corrupt     {reason}\n"))
            }
            Listed::Incomplete { id, .. } => out.push_str(&format!(
                "{id}  incomplete  not a backup: being written or deleted, or its run was killed\n"
            )),
        }
    }
    write_data(out.as_bytes())
}

/// `backups list --format json`: every entry, oldest first, a valid one with its manifest.
fn list_json(dir: &Path, entries: &[Listed]) -> Result<u8, Error> {
    let backups: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| match entry {
            Listed::Valid { path, manifest } => serde_json::json!({
                "id": manifest.backup_id,
                "state": "valid",
                "path": path,
                "manifest": manifest,
            }),
            Listed::Corrupt { id, reason } => serde_json::json!({
                "id": id,
                "state": "corrupt",
                "reason": reason,
            }),
            Listed::Incomplete { id, path } => serde_json::json!({
                "id": id,
                "state": "incomplete",
                "path": path,
                "reason": "being written or deleted, or its run was killed",
            }),
        })
        .collect();
    write_json(&serde_json::json!({
        "version": 1,
        "dir": dir,
        "backups": backups,
    }))
}

async fn verify(dir: &Path, ids: &[String], cancel: &CancellationToken) -> Result<u8, Error> {
    let entries = listing(dir)?;
    let mut failures = 0;
    let mut checked = 0;
    let mut out = String::new();
    for id in ids {
        if !entries.iter().any(|e| e.id() == id) {
            out.push_str(&format!(
                "FAIL  {id}: no such backup in `{}`\n",
                dir.display()
            ));
            failures += 1;
        }
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    for entry in &entries {
        if !ids.is_empty() && !ids.iter().any(|i| i == entry.id()) {
            continue;
        }
        checked += 1;
        let result = match entry {
            Listed::Incomplete { .. } if ids.is_empty() => {
                out.push_str(&format!("skip  {}: incomplete, not a backup\n", entry.id()));
                checked -= 1;
                continue;
            }
            Listed::Incomplete { .. } => Err(
                "incomplete: not a backup (its run was killed, or it is still being written)"
                    .to_owned(),
            ),
            Listed::Corrupt { reason, .. } => Err(reason.clone()),
            Listed::Valid { path, .. } => verify_one(path, &env, cancel).await,
        };
        match result {
            Ok(detail) => out.push_str(&format!("ok    {}: {detail}\n", entry.id())),
            Err(e) => {
                failures += 1;
                out.push_str(&format!("FAIL  {}: {e}\n", entry.id()));
            }
        }
    }
    let code = write_data(out.as_bytes())?;
    if checked == 0 && failures == 0 {
        return Err(Error::failed(format!(
            "no backups to verify in `{}`",
            dir.display()
        )));
    }
    if failures > 0 {
        return Err(Error::failed(format!(
            "{failures} of {} backups failed verification",
            checked.max(failures)
        )));
    }
    Ok(code)
}

/// The manifest, the sha256, every block, and the table of contents.
async fn verify_one(
    path: &Path,
    env: &[(String, String)],
    cancel: &CancellationToken,
) -> Result<String, String> {
    let manifest = restore::check_backup(path).await?;
    let tools = tools::find((manifest.server_version_num / 10_000) as u32, env)?;
    let (toc, entries) =
        tools::verify_dump(&tools, &path.join(&manifest.file), env, cancel).await?;
    if toc != manifest.toc_sha256 {
        return Err(format!(
            "the table of contents differs from the manifest's ({entries} entries now, {} recorded)",
            manifest.toc_entries
        ));
    }
    Ok(format!(
        "sha256 and {} table-of-contents entries match the manifest; pg_restore read every block",
        entries
    ))
}

async fn restore_one(
    dir: &Path,
    id: &str,
    url: &str,
    maintenance_db: &str,
    cancel: &CancellationToken,
) -> Result<u8, Error> {
    let entries = listing(dir)?;
    let unchanged = "nothing was changed; choose another with `portcullis backups list`";
    let path = match entries.iter().find(|e| e.id() == id) {
        Some(Listed::Valid { path, .. }) => path.clone(),
        Some(Listed::Corrupt { reason, .. }) => {
            return Err(
                Error::failed(format!("`{id}` is not a valid backup: {reason}")).help(unchanged),
            );
        }
        Some(Listed::Incomplete { .. }) => {
            return Err(Error::failed(format!(
                "`{id}` is incomplete: its run was killed or it is still being written"
            ))
            .help(unchanged));
        }
        None => {
            return Err(
                Error::usage(format!("no backup `{id}` in `{}`", dir.display()))
                    .help("see `portcullis backups list --dir DIR`"),
            );
        }
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let conn = ConnInfo::parse(url, &env).map_err(|e| Error::usage(format!("`--url`: {e}")))?;
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    // `pg_restore` carries the mark a watchdog looks for: killed with `kill -9`, portcullis
    // leaves no `pg_restore` running (its unfinished copy is dropped by the next restore).
    let run_id = format!("backups-{}", crate::run_dir::new_run_id());
    let watchdog = supervisor::start_watchdog(&run_id, Path::new("/"));
    env.push(("PORTCULLIS_RUN_ID".into(), run_id));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let target = Target {
        conn: &conn,
        maintenance_db,
        env: &env,
        cancel,
        progress: Some(tx),
    };
    eprintln_lines(&[format!("restoring `{id}` over `{}`", conn.display())]);
    let mut out = Stderr { conn: &conn };
    let report = restore::reporting(restore::restore(&path, &target), rx, &mut out).await;
    if let Some(watchdog) = watchdog {
        watchdog.dismiss();
    }
    match report.error() {
        None => Ok(exit_code::PASSED),
        Some(e) => Err(Error::failed(conn.mask(&format!("restore failed at {e}")))),
    }
}

/// Restore steps on stderr as they end, the password masked.
struct Stderr<'a> {
    conn: &'a ConnInfo,
}

impl restore::Progress for Stderr<'_> {
    fn line<'a>(&'a mut self, text: String) -> crate::stages::BoxFuture<'a, ()> {
        eprintln_lines(&[self.conn.mask(&text)]);
        Box::pin(async {})
    }
}

fn eprintln_lines(lines: &[String]) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for line in lines {
        let _ = writeln!(err, "{line}");
    }
}
