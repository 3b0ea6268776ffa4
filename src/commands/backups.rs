//! `portcullis backups list|verify|restore|drill|prune`: the `pg-dump` folder and its offsite
//! copies, by hand.
//!
//! `list` reads manifests only; `verify` re-hashes each dump, compares it and its table of
//! contents with the manifest and has `pg_restore` read every block (with `--remote`: reads each
//! object back and compares its size and sha256, decrypting too with `--identity`); `restore`
//! runs the same fresh-database-and-swap restore as a failed pipeline's rollback, printing each
//! step, from the folder or from a downloaded, decrypted and checked offsite copy; `drill`
//! restores into a scratch database, times it and records the result; `prune` applies retention
//! rules through the stage's own [`store::prune`], under the folder's lock.

use std::collections::HashMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::cli::{
    BackupSource, BackupsAction, BackupsArgs, BackupsPruneArgs, IdentityArgs, OutputFormat,
    RemoteArgs,
};
use crate::commands::{Error, print_warning, write_data, write_json};
use crate::exit_code;
use crate::pg::conn::ConnInfo;
use crate::pg::drill;
use crate::pg::offsite::{self, Identities, Remote, RemoteListed};
use crate::pg::restore::{self, Target};
use crate::pg::store::{self, Listed, Pruned, Retention};
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
                BackupsAction::List(a) => match remote_of(&a.remote)? {
                    Some(remote) => list_remote(&remote, a.format).await,
                    None => list(&a.dir, a.format),
                },
                BackupsAction::Verify(a) => match remote_of(&a.remote)? {
                    Some(remote) => {
                        let identities = identities_of(&a.identity, false)?;
                        verify_remote(&remote, &a.ids, identities, &cancel).await
                    }
                    None => verify(&a.dir, &a.ids, &cancel).await,
                },
                BackupsAction::Restore(a) => {
                    let from = source(a.from, &a.dir, &a.remote, &a.identity)?;
                    restore_one(&from, &a.id, &a.url, &a.maintenance_db, &cancel).await
                }
                BackupsAction::Drill(a) => drill_one(a, &cancel).await,
                BackupsAction::Prune(a) => prune(a),
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
                "{}  valid       {}  {}  {:.1} MB  {} tables  sha256 {}  {}{}\n",
                m.backup_id,
                m.created_at,
                m.database.name,
                m.size_bytes as f64 / 1e6,
                m.row_counts.len(),
                &m.sha256[..12.min(m.sha256.len())],
                last_drill(m),
                if m.offsite.is_some() { "  offsite" } else { "" },
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

/// `backups prune`: one line per folder entry, `keep` or `delete` (`would delete` in a dry
/// run), its id and why, then exit 0; exit 1 when a deletion failed, 2 without any rule.
fn prune(args: &BackupsPruneArgs) -> Result<u8, Error> {
    let count = |n: Option<u64>| n.map(|n| n as usize);
    let policy = Retention {
        keep: count(args.keep),
        max_age: args.max_age,
        keep_daily: count(args.keep_daily),
        keep_weekly: count(args.keep_weekly),
        keep_monthly: count(args.keep_monthly),
        keep_yearly: count(args.keep_yearly),
    };
    if policy.rules().is_empty() {
        return Err(Error::usage(
            "`backups prune` needs a retention rule; without one it would keep everything",
        )
        .help(
            "give one or more of `--keep N`, `--max-age DURATION`, `--keep-daily N`, \
             `--keep-weekly N`, `--keep-monthly N`, `--keep-yearly N` (a backup is kept when any \
             rule keeps it); add `--dry-run` to see the plan first",
        ));
    }
    let dir = &args.dir;
    if !dir.is_dir() {
        print_warning(&format!(
            "no backups in `{}` (the folder of the `pg-dump` stage goes in `--dir`)",
            dir.display()
        ));
        return Ok(exit_code::PASSED);
    }
    // Held until the end: a run writing or pruning this folder meanwhile would see backups come
    // and go under it.
    let _lock = store::lock(dir).map_err(|e| {
        Error::failed(e).help("wait for that run to finish, then prune again; nothing was deleted")
    })?;
    let pruned =
        store::prune(dir, policy, jiff::Timestamp::now(), None, args.dry_run).map_err(|e| {
            Error::failed(e).help("pass the folder of the `pg-dump` stage with `--dir`")
        })?;
    let failed = pruned
        .iter()
        .filter(|p| matches!(p, Pruned::NotDeleted { .. }))
        .count();
    let code = if args.format == OutputFormat::Json {
        prune_json(dir, &policy, args.dry_run, &pruned)?
    } else if pruned.is_empty() {
        print_warning(&format!(
            "no backups in `{}` (the folder of the `pg-dump` stage goes in `--dir`)",
            dir.display()
        ));
        exit_code::PASSED
    } else {
        // `would delete` is wider than `delete`: the ids stay in one column either way.
        let width = if args.dry_run { 14 } else { 8 };
        let mut out = String::new();
        for p in &pruned {
            let (action, id, reason) = prune_line(p);
            out.push_str(&format!("{action:<width$}{id}  {reason}\n"));
        }
        write_data(out.as_bytes())?
    };
    if failed > 0 {
        return Err(Error::failed(format!(
            "{failed} backups could not be deleted; the others were pruned"
        ))
        .help("see the `FAIL` lines above, fix their permissions, then prune again"));
    }
    Ok(code)
}

/// What a line of `backups prune` says about one entry: its action, id and reason.
fn prune_line(p: &Pruned) -> (&'static str, &str, String) {
    match p {
        Pruned::Kept { id, reason } => ("keep", id, reason.clone()),
        Pruned::Deleted {
            id,
            reason,
            dry_run,
        } => (
            if *dry_run { "would delete" } else { "delete" },
            id,
            reason.clone(),
        ),
        Pruned::NotDeleted { id, reason, error } => {
            ("FAIL", id, format!("cannot delete: {error} ({reason})"))
        }
        Pruned::Corrupt { id, reason } => (
            "keep",
            id,
            format!("not a valid backup ({reason}); never pruned, left for you to inspect"),
        ),
        Pruned::Incomplete { id } => (
            "keep",
            id,
            "incomplete (being written or deleted, or its run was killed); left alone".to_owned(),
        ),
    }
}

/// `backups prune --format json`: the policy and, for each entry, its action and reason.
fn prune_json(
    dir: &Path,
    policy: &Retention,
    dry_run: bool,
    pruned: &[Pruned],
) -> Result<u8, Error> {
    let backups: Vec<serde_json::Value> = pruned
        .iter()
        .map(|p| {
            let (_, id, line) = prune_line(p);
            // As `backups list --format json` words a folder that is not a valid backup.
            let (action, state, reason) = match p {
                Pruned::Kept { .. } => ("keep", "valid", line),
                Pruned::Deleted { dry_run: true, .. } => ("would-delete", "valid", line),
                Pruned::Deleted { .. } => ("delete", "valid", line),
                Pruned::NotDeleted { .. } => ("cannot-delete", "valid", line),
                Pruned::Corrupt { reason, .. } => ("keep", "corrupt", reason.clone()),
                Pruned::Incomplete { .. } => (
                    "keep",
                    "incomplete",
                    "being written or deleted, or its run was killed".to_owned(),
                ),
            };
            serde_json::json!({ "id": id, "state": state, "action": action, "reason": reason })
        })
        .collect();
    write_json(&serde_json::json!({
        "version": 1,
        "dir": dir,
        "dry_run": dry_run,
        "policy": policy.rules(),
        "backups": backups,
    }))
}

async fn verify(dir: &Path, ids: &[String], cancel: &CancellationToken) -> Result<u8, Error> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let entries = listing(dir)?
        .into_iter()
        .map(|entry| {
            let id = entry.id().to_owned();
            let found = match entry {
                Listed::Valid { path, .. } => Found::Valid(path),
                Listed::Corrupt { reason, .. } => Found::Corrupt(reason),
                Listed::Incomplete { .. } => Found::Incomplete(
                    "incomplete: not a backup (its run was killed, or it is still being written)",
                ),
            };
            (id, found)
        })
        .collect();
    verify_all(
        &format!("`{}`", dir.display()),
        ids,
        entries,
        async |path: std::path::PathBuf| verify_one(&path, &env, cancel).await,
    )
    .await
}

/// One entry of a listing to verify.
enum Found<T> {
    Valid(T),
    Corrupt(String),
    Incomplete(&'static str),
}

/// Verifies the entries named in `ids` (all when empty; incomplete ones are then skipped), one
/// line each, and fails when any failed or none was there.
async fn verify_all<T>(
    place: &str,
    ids: &[String],
    entries: Vec<(String, Found<T>)>,
    check: impl AsyncFn(T) -> Result<String, String>,
) -> Result<u8, Error> {
    let mut failures = 0;
    let mut checked = 0;
    let mut out = String::new();
    for id in ids {
        if !entries.iter().any(|(e, _)| e == id) {
            out.push_str(&format!("FAIL  {id}: no such backup in {place}\n"));
            failures += 1;
        }
    }
    for (id, found) in entries {
        if !ids.is_empty() && !ids.contains(&id) {
            continue;
        }
        let result = match found {
            Found::Incomplete(why) if ids.is_empty() => {
                let why = why.split(':').next().unwrap_or(why);
                out.push_str(&format!("skip  {id}: {why}, not a backup\n"));
                continue;
            }
            Found::Incomplete(why) => Err(why.to_owned()),
            Found::Corrupt(reason) => Err(reason),
            Found::Valid(value) => check(value).await,
        };
        checked += 1;
        match result {
            Ok(detail) => out.push_str(&format!("ok    {id}: {detail}\n")),
            Err(e) => {
                failures += 1;
                out.push_str(&format!("FAIL  {id}: {e}\n"));
            }
        }
    }
    let code = write_data(out.as_bytes())?;
    if checked == 0 && failures == 0 {
        return Err(Error::failed(format!("no backups to verify in {place}")));
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
    from: &drill::Source,
    id: &str,
    url: &str,
    maintenance_db: &str,
    cancel: &CancellationToken,
) -> Result<u8, Error> {
    let unchanged = "nothing was changed; choose another with `portcullis backups list`";
    // A remote backup is downloaded, decrypted and checked into a scratch folder first; the
    // database is touched only once both sha256 sums matched.
    let scratch = tempfile::Builder::new()
        .prefix("portcullis-restore-")
        .tempdir()
        .map_err(|e| Error::failed(format!("cannot create a scratch folder: {e}")))?;
    let path = match from {
        drill::Source::Local(dir) => local_backup(dir, id, unchanged)?,
        drill::Source::Remote { remote, identities } => {
            let manifest = match remote
                .list()
                .await
                .map_err(Error::failed)?
                .into_iter()
                .find(|e| e.id() == id)
            {
                Some(RemoteListed::Valid { manifest }) => manifest,
                Some(RemoteListed::Corrupt { reason, .. }) => {
                    return Err(Error::failed(format!(
                        "offsite `{id}` is not a valid backup: {reason}"
                    ))
                    .help(unchanged));
                }
                Some(RemoteListed::Incomplete { .. }) => {
                    return Err(Error::failed(format!(
                        "offsite `{id}` has no manifest: its upload did not finish"
                    ))
                    .help(unchanged));
                }
                None => {
                    return Err(
                        Error::usage(format!("no backup `{id}` in `{}`", remote.url()))
                            .help("see `portcullis backups list --remote S3_URL`"),
                    );
                }
            };
            let into = scratch.path().join(id);
            eprintln_lines(&[format!("downloading `{id}` from `{}`", remote.url())]);
            remote
                .download(&manifest, std::sync::Arc::clone(identities), &into, cancel)
                .await
                .map_err(|e| Error::failed(format!("FAIL  download: {e}")).help(unchanged))?;
            eprintln_lines(&[
                "ok    download: decrypted; the object's and the dump's sha256 match the manifest"
                    .to_owned(),
            ]);
            into
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

/// The bucket of `--remote`, if given.
fn remote_of(args: &RemoteArgs) -> Result<Option<Remote>, Error> {
    let Some(url) = &args.remote else {
        return Ok(None);
    };
    let settings = offsite::Settings {
        url: url.clone(),
        endpoint: args.endpoint.clone(),
        region: args.region.clone(),
        access_key_id: None,
        secret_access_key: None,
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    Remote::open(&settings, &env).map(Some).map_err(|e| {
        Error::usage(format!("`--remote`: {e}")).help(
            "give the `offsite.url` of the `pg-dump` stage, with `--endpoint` for a server other than AWS",
        )
    })
}

/// The age identities of `--identity FILE` or `PORTCULLIS_AGE_IDENTITY`.
fn identities_of(args: &IdentityArgs, required: bool) -> Result<Option<Identities>, Error> {
    let help = "give the age key file with `--identity FILE` (or the key itself in `PORTCULLIS_AGE_IDENTITY`)";
    let parsed = match (&args.identity, std::env::var("PORTCULLIS_AGE_IDENTITY")) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::usage(format!("cannot read `{}`: {e}", file.display())).help(help)
            })?;
            offsite::parse_identities(&text, &format!("`{}`", file.display()))
        }
        (None, Ok(text)) => offsite::parse_identities(&text, "`PORTCULLIS_AGE_IDENTITY`"),
        (None, Err(_)) if required => {
            return Err(
                Error::usage("an offsite copy is encrypted: no age identity was given").help(help),
            );
        }
        (None, Err(_)) => return Ok(None),
    };
    parsed.map(Some).map_err(|e| Error::usage(e).help(help))
}

fn source(
    from: BackupSource,
    dir: &Path,
    remote: &RemoteArgs,
    identity: &IdentityArgs,
) -> Result<drill::Source, Error> {
    match from {
        BackupSource::Local => Ok(drill::Source::Local(dir.to_owned())),
        BackupSource::Remote => {
            let Some(remote) = remote_of(remote)? else {
                return Err(Error::usage("`--from remote` needs `--remote S3_URL`")
                    .help("give the `offsite.url` of the `pg-dump` stage (or set `PORTCULLIS_OFFSITE_URL`)"));
            };
            let identities = identities_of(identity, true)?.unwrap_or_default();
            Ok(drill::Source::Remote { remote, identities })
        }
    }
}

/// The folder of backup `id` in `dir`, if it is valid.
fn local_backup(dir: &Path, id: &str, unchanged: &str) -> Result<std::path::PathBuf, Error> {
    let entries = listing(dir)?;
    match entries.iter().find(|e| e.id() == id) {
        Some(Listed::Valid { path, .. }) => Ok(path.clone()),
        Some(Listed::Corrupt { reason, .. }) => {
            Err(Error::failed(format!("`{id}` is not a valid backup: {reason}")).help(unchanged))
        }
        Some(Listed::Incomplete { .. }) => Err(Error::failed(format!(
            "`{id}` is incomplete: its run was killed or it is still being written"
        ))
        .help(unchanged)),
        None => Err(
            Error::usage(format!("no backup `{id}` in `{}`", dir.display()))
                .help("see `portcullis backups list --dir DIR`"),
        ),
    }
}

async fn list_remote(remote: &Remote, format: OutputFormat) -> Result<u8, Error> {
    let entries = remote.list().await.map_err(Error::failed)?;
    if format == OutputFormat::Json {
        let backups: Vec<serde_json::Value> = entries
            .iter()
            .map(|entry| match entry {
                RemoteListed::Valid { manifest } => serde_json::json!({
                    "id": manifest.backup_id, "state": "valid", "manifest": manifest,
                }),
                RemoteListed::Corrupt { id, reason } => serde_json::json!({
                    "id": id, "state": "corrupt", "reason": reason,
                }),
                RemoteListed::Incomplete { id } => serde_json::json!({
                    "id": id, "state": "incomplete", "reason": "objects without a manifest: an upload that did not finish",
                }),
            })
            .collect();
        return write_json(&serde_json::json!({
            "version": 1,
            "remote": remote.url(),
            "backups": backups,
        }));
    }
    if entries.is_empty() {
        print_warning(&format!("no backups in `{}`", remote.url()));
        return Ok(exit_code::PASSED);
    }
    let mut out = String::new();
    for entry in &entries {
        match entry {
            RemoteListed::Valid { manifest: m } => out.push_str(&format!(
                "{}  valid       {}  {}  {:.1} MB encrypted  {} tables  {}\n",
                m.backup_id,
                m.created_at,
                m.database.name,
                m.offsite.as_ref().map_or(0, |c| c.size_bytes) as f64 / 1e6,
                m.row_counts.len(),
                last_drill(m),
            )),
            RemoteListed::Corrupt { id, reason } => {
                out.push_str(&format!("{id}  corrupt     {reason}\n"));
            }
            RemoteListed::Incomplete { id } => out.push_str(&format!(
                "{id}  incomplete  not a backup: objects without a manifest (an upload that did not finish)\n"
            )),
        }
    }
    write_data(out.as_bytes())
}

/// `drilled 2026-12-01T…Z ok (41.2s)`, or `never drilled`.
pub(crate) fn last_drill(m: &store::Manifest) -> String {
    match m.drills.last() {
        None => "never drilled".into(),
        Some(d) => format!(
            "drilled {} {} ({:.1}s)",
            d.at,
            if d.passed { "ok" } else { "FAILED" },
            d.recovery_ms as f64 / 1000.0
        ),
    }
}

async fn verify_remote(
    remote: &Remote,
    ids: &[String],
    identities: Option<Identities>,
    cancel: &CancellationToken,
) -> Result<u8, Error> {
    let entries = remote
        .list()
        .await
        .map_err(Error::failed)?
        .into_iter()
        .map(|entry| {
            let id = entry.id().to_owned();
            let found = match entry {
                RemoteListed::Valid { manifest } => Found::Valid(manifest),
                RemoteListed::Corrupt { reason, .. } => Found::Corrupt(reason),
                RemoteListed::Incomplete { .. } => {
                    Found::Incomplete("no manifest: its upload did not finish")
                }
            };
            (id, found)
        })
        .collect();
    verify_all(
        &format!("`{}`", remote.url()),
        ids,
        entries,
        async |manifest: Box<store::Manifest>| {
            verify_remote_one(remote, &manifest, identities.as_ref(), cancel).await
        },
    )
    .await
}

async fn verify_remote_one(
    remote: &Remote,
    manifest: &store::Manifest,
    identities: Option<&Identities>,
    cancel: &CancellationToken,
) -> Result<String, String> {
    let copy = manifest
        .offsite
        .as_ref()
        .ok_or("the manifest records no offsite copy")?;
    match identities {
        None => {
            tokio::select! {
                checked = remote.verify_object(copy) => checked?,
                () = cancel.cancelled() => return Err("cancelled".into()),
            }
            Ok(format!(
                "the object's {} bytes and sha256 match the manifest (give `--identity` to decrypt too)",
                copy.size_bytes
            ))
        }
        Some(identities) => {
            let scratch = tempfile::Builder::new()
                .prefix("portcullis-verify-")
                .tempdir()
                .map_err(|e| format!("cannot create a scratch folder: {e}"))?;
            let into = scratch.path().join(&manifest.backup_id);
            remote
                .download(manifest, std::sync::Arc::clone(identities), &into, cancel)
                .await?;
            Ok(format!(
                "the object's sha256 matches; decrypted, the dump's {} bytes and sha256 match the manifest",
                manifest.size_bytes
            ))
        }
    }
}

async fn drill_one(
    args: &crate::cli::BackupsDrillArgs,
    cancel: &CancellationToken,
) -> Result<u8, Error> {
    let from = source(args.from, &args.dir, &args.remote, &args.identity)?;
    let rto = match &args.rto {
        Some(text) => Some(crate::config::duration::parse(text).map_err(|e| {
            Error::usage(format!("`--rto {text}`: {e}"))
                .help("write a duration such as `45m` or `1h`")
        })?),
        None => None,
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let conn =
        ConnInfo::parse(&args.url, &env).map_err(|e| Error::usage(format!("`--url`: {e}")))?;
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    // As for `restore`: `pg_restore` carries the mark a watchdog looks for, so `kill -9` of
    // portcullis leaves no `pg_restore` running (its marked copy is dropped by the next drill).
    let run_id = format!("backups-{}", crate::run_dir::new_run_id());
    let watchdog = supervisor::start_watchdog(&run_id, Path::new("/"));
    env.push(("PORTCULLIS_RUN_ID".into(), run_id));
    let settings = drill::Settings {
        id: args.id.as_deref(),
        conn: &conn,
        maintenance_db: &args.maintenance_db,
        rto,
        env: &env,
        cancel,
    };
    let outcome = drill::run(&from, &settings, &mut drill::NoChecks).await;
    if let Some(watchdog) = watchdog {
        watchdog.dismiss();
    }
    eprintln_lines(&outcome.lines);
    if let Some(file) = &args.metrics {
        let folder = (args.from == BackupSource::Local).then_some(args.dir.as_path());
        let metrics = crate::report::metrics::drill(&outcome, folder);
        crate::report::metrics::write(file, &metrics)
            .map_err(|e| Error::failed(format!("cannot write `{}`: {e}", file.display())))?;
    }
    match &outcome.error {
        None => Ok(exit_code::PASSED),
        // No backup was found: say where backups are looked for.
        Some(e) if outcome.id.is_none() => Err(Error::failed(format!("the drill failed: {e}"))
            .help("give the `dir:` of the `pg-dump` stage with `--dir`, or its offsite copies with `--from remote --remote S3_URL`")),
        Some(e) => Err(Error::failed(format!("the drill failed: {e}"))),
    }
}
