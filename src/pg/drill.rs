//! Restore drills: a backup restored into a scratch database, checked there, timed from start to
//! verified, recorded in its manifest, and the copy dropped.
//!
//! The main function is [`run`]; `portcullis backups drill` and `uses: backup-drill` both call
//! it, the stage with its own `checks:` run on the copy in between ([`Checks`]). A drill takes
//! the newest valid backup (or the one named); a newer one that is not valid still fails the
//! drill, with its reason, after the valid one was drilled: a drill exists to say when the
//! newest backup would not restore.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::conn::ConnInfo;
use super::offsite::{Remote, RemoteListed};
use super::restore::{self, Progress, Target};
use super::store::{self, Drill, Listed, Manifest};
use crate::stages::BoxFuture;

/// Where the drilled backup comes from.
pub(crate) enum Source {
    Local(PathBuf),
    Remote {
        remote: Remote,
        identities: super::offsite::Identities,
    },
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Local(dir) => format!("`{}`", dir.display()),
            Source::Remote { remote, .. } => format!("`{}`", remote.url()),
        }
    }
}

/// What runs on the restored copy besides the restore's own checks (sha256, `pg_restore` in one
/// transaction with `--exit-on-error`, every table's row count against the manifest).
pub(crate) trait Checks: Send {
    /// Runs the checks against `copy`; returns one line per check, `Err` for a failed one.
    fn run<'a>(&'a mut self, copy: &'a ConnInfo) -> BoxFuture<'a, Vec<Result<String, String>>>;
}

/// No checks beyond the restore's own.
pub(crate) struct NoChecks;

impl Checks for NoChecks {
    fn run<'a>(&'a mut self, _: &'a ConnInfo) -> BoxFuture<'a, Vec<Result<String, String>>> {
        Box::pin(async { Vec::new() })
    }
}

pub(crate) struct Settings<'a> {
    pub(crate) id: Option<&'a str>,
    /// The server to restore onto (any database on it).
    pub(crate) conn: &'a ConnInfo,
    pub(crate) maintenance_db: &'a str,
    pub(crate) rto: Option<Duration>,
    pub(crate) env: &'a [(String, String)],
    pub(crate) cancel: &'a CancellationToken,
}

/// How a drill ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The backup drilled, when one was found.
    pub(crate) id: Option<String>,
    /// Each step, `ok …` or `FAIL …`, in order.
    pub(crate) lines: Vec<String>,
    pub(crate) recovery: Duration,
    /// What failed, if anything.
    pub(crate) error: Option<String>,
    /// The record written into the manifest (absent when there was no manifest to write into).
    pub(crate) record: Option<Drill>,
    pub(crate) size_bytes: u64,
}

/// One entry of a listing, local or offsite.
enum Entry {
    Valid(Box<Manifest>, Option<PathBuf>),
    Corrupt(String),
    Incomplete(&'static str),
}

/// The drilled backup: the folder to restore from, its manifest, and the newer backups that are
/// not valid (each `id: why`).
struct Picked {
    folder: PathBuf,
    manifest: Manifest,
    newer_invalid: Vec<String>,
}

/// The newest valid backup of the source (or `id`), whole: a remote one downloaded and
/// decrypted into `scratch`.
async fn pick(
    source: &Source,
    id: Option<&str>,
    scratch: &Path,
    cancel: &CancellationToken,
) -> Result<Picked, String> {
    let (place, entries): (String, Vec<(String, Entry)>) = match source {
        Source::Local(dir) => (
            format!("`{}`", dir.display()),
            store::list(dir)?
                .into_iter()
                .map(|e| {
                    let id = e.id().to_owned();
                    let entry = match e {
                        Listed::Valid { path, manifest } => Entry::Valid(manifest, Some(path)),
                        Listed::Corrupt { reason, .. } => Entry::Corrupt(reason),
                        Listed::Incomplete { .. } => Entry::Incomplete(
                            "incomplete: its run was killed or it is still being written",
                        ),
                    };
                    (id, entry)
                })
                .collect(),
        ),
        Source::Remote { remote, .. } => (
            format!("`{}`", remote.url()),
            remote
                .list()
                .await?
                .into_iter()
                .map(|e| {
                    let id = e.id().to_owned();
                    let entry = match e {
                        RemoteListed::Valid { manifest } => Entry::Valid(manifest, None),
                        RemoteListed::Corrupt { reason, .. } => Entry::Corrupt(reason),
                        RemoteListed::Incomplete { .. } => {
                            Entry::Incomplete("no manifest: its upload did not finish")
                        }
                    };
                    (id, entry)
                })
                .collect(),
        ),
    };
    // Oldest first: ids sort by time.
    let at = match id {
        Some(id) => entries.iter().position(|(e, _)| e == id),
        None => entries
            .iter()
            .rposition(|(_, e)| matches!(e, Entry::Valid(..))),
    };
    let Some(at) = at else {
        let invalid: Vec<String> = entries
            .iter()
            .filter_map(|(id, e)| match e {
                Entry::Corrupt(why) => Some(format!("`{id}`: {why}")),
                _ => None,
            })
            .collect();
        return Err(match (id, invalid.is_empty()) {
            (Some(id), _) => format!("no backup `{id}` in {place}"),
            (None, true) => format!("no backup in {place}"),
            (None, false) => format!("no valid backup in {place}; {}", invalid.join("; ")),
        });
    };
    // With `--id` the user chose; otherwise newer broken backups are reported.
    let newer_invalid = entries[at + 1..]
        .iter()
        .filter(|_| id.is_none())
        .filter_map(|(id, e)| match e {
            Entry::Corrupt(why) => Some(format!("`{id}`: {why}")),
            _ => None,
        })
        .collect();
    let (id, entry) = entries.into_iter().nth(at).expect("found above");
    let (manifest, folder) = match entry {
        Entry::Valid(manifest, folder) => (*manifest, folder),
        Entry::Corrupt(why) => return Err(format!("backup `{id}` is not valid: {why}")),
        Entry::Incomplete(why) => return Err(format!("backup `{id}` is {why}")),
    };
    let folder = match (folder, source) {
        (Some(folder), _) => folder,
        (None, Source::Remote { remote, identities }) => {
            let into = scratch.join(&manifest.backup_id);
            remote
                .download(&manifest, std::sync::Arc::clone(identities), &into, cancel)
                .await?;
            into
        }
        (None, Source::Local(_)) => unreachable!("a local entry has its folder"),
    };
    Ok(Picked {
        folder,
        manifest,
        newer_invalid,
    })
}

/// Collects the restore's step lines.
struct Lines<'a>(&'a mut Vec<String>, &'a ConnInfo);

impl Progress for Lines<'_> {
    fn line<'a>(&'a mut self, text: String) -> BoxFuture<'a, ()> {
        let masked = self.1.mask(&text);
        self.0.push(masked);
        Box::pin(async {})
    }
}

/// Runs one drill: pick (and download), restore into `<db>__drill_<time>`, the restore's checks
/// and `checks`, the time against `rto`, drop the copy, record the result.
pub(crate) async fn run(
    source: &Source,
    settings: &Settings<'_>,
    checks: &mut dyn Checks,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        id: None,
        lines: Vec::new(),
        recovery: Duration::ZERO,
        error: None,
        record: None,
        size_bytes: 0,
    };
    let scratch = match tempfile::Builder::new()
        .prefix("portcullis-drill-")
        .tempdir()
    {
        Ok(t) => t,
        Err(e) => {
            outcome.error = Some(format!("cannot create a scratch folder: {e}"));
            return outcome;
        }
    };
    let picked = pick(source, settings.id, scratch.path(), settings.cancel).await;
    let Picked {
        folder,
        manifest,
        newer_invalid,
    } = match picked {
        Ok(p) => p,
        Err(e) => {
            outcome.lines.push(format!(
                "FAIL  pick ({:.2}s): {e}",
                started.elapsed().as_secs_f64()
            ));
            outcome.error = Some(e);
            return outcome;
        }
    };
    outcome.id = Some(manifest.backup_id.clone());
    outcome.size_bytes = manifest.size_bytes;
    outcome.lines.push(format!(
        "ok    pick ({:.2}s): `{}` from {}, taken {}",
        started.elapsed().as_secs_f64(),
        manifest.backup_id,
        source.describe(),
        manifest.created_at
    ));
    // A newer backup that is not valid fails the drill (after this one is drilled): the newest
    // backup would not restore, which is what a drill is for.
    let newer: Vec<String> = newer_invalid
        .iter()
        .map(|why| format!("a newer backup is not valid: {why}"))
        .collect();
    for line in &newer {
        outcome.lines.push(format!("FAIL  newer backup: {line}"));
    }

    let prefix = format!("{}__drill_", manifest.database.name);
    let copy_name = format!("{prefix}{}", restore::stamp());
    // Copies an interrupted drill left (killed before its drop) go first, as for rehearsals.
    match drop_leftovers(settings, &prefix).await {
        Ok(dropped) if !dropped.is_empty() => outcome.lines.push(format!(
            "ok    drop leftovers: {}, left by a drill that did not finish",
            dropped.join(", ")
        )),
        Ok(_) => {}
        Err(e) => outcome.lines.push(format!(
            "FAIL  drop leftovers: {}; going on",
            settings.conn.mask(&e)
        )),
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let target = Target {
        conn: settings.conn,
        maintenance_db: settings.maintenance_db,
        env: settings.env,
        cancel: settings.cancel,
        progress: Some(tx),
    };
    let mut check_lines = Vec::new();
    let mut lines = Lines(&mut check_lines, settings.conn);
    let report = restore::reporting(
        restore::restore_copy(&folder, &copy_name, &target, true),
        rx,
        &mut lines,
    )
    .await;
    outcome.lines.append(&mut check_lines);
    let mut failures: Vec<String> = report.error().into_iter().collect();
    let mut record_checks: Vec<String> = report
        .steps
        .iter()
        .map(|s| match &s.result {
            Ok(_) => format!("{}: ok", s.name),
            Err(e) => format!("{}: {e}", s.name),
        })
        .collect();
    let copy = settings.conn.with_dbname(&copy_name);
    if failures.is_empty() {
        for result in checks.run(&copy).await {
            match result {
                Ok(line) => {
                    outcome.lines.push(format!("ok    {line}"));
                    record_checks.push(format!("{line}: ok"));
                }
                Err(line) => {
                    outcome.lines.push(format!("FAIL  {line}"));
                    record_checks.push(line.clone());
                    failures.push(line);
                }
            }
        }
    }
    outcome.recovery = started.elapsed();
    let missed = settings
        .rto
        .filter(|rto| failures.is_empty() && outcome.recovery > *rto);
    outcome.lines.push(match (failures.is_empty(), missed) {
        (true, None) => format!(
            "ok    recovery time: {:.2}s from start to verified{}",
            outcome.recovery.as_secs_f64(),
            settings.rto.map_or_else(String::new, |r| format!(
                " (objective {})",
                crate::config::duration::format(r)
            ))
        ),
        (_, Some(rto)) => {
            let why = format!(
                "recovery took {:.2}s, more than the objective `rto: {}`",
                outcome.recovery.as_secs_f64(),
                crate::config::duration::format(rto)
            );
            failures.push(why.clone());
            format!("FAIL  recovery time: {why}")
        }
        (false, None) => format!(
            "FAIL  recovery time: {:.2}s, and the drill failed",
            outcome.recovery.as_secs_f64()
        ),
    });

    // The copy is dropped whatever happened (restore_copy drops it itself when it fails).
    let dropped = async {
        let admin = settings
            .conn
            .with_dbname(settings.maintenance_db)
            .connect()
            .await?;
        restore::drop_database(&admin, &copy_name).await
    }
    .await;
    match dropped {
        Ok(()) => outcome.lines.push(format!("ok    drop `{copy_name}`")),
        Err(e) => outcome.lines.push(format!(
            "FAIL  drop `{copy_name}`: {}",
            settings.conn.mask(&e)
        )),
    }
    // The record is about the drilled backup alone; the outcome also fails on newer ones.
    outcome.error = failures.first().or(newer.first()).cloned();

    let record = Drill {
        at: jiff::Timestamp::now().to_string(),
        from: match source {
            Source::Local(_) => "local".into(),
            Source::Remote { .. } => manifest
                .offsite
                .as_ref()
                .map_or_else(|| "remote".into(), |c| c.url.clone()),
        },
        passed: failures.is_empty(),
        recovery_ms: outcome.recovery.as_millis() as u64,
        rto_ms: settings.rto.map(|r| r.as_millis() as u64),
        checks: record_checks,
        error: failures.first().cloned(),
    };
    match save(source, &folder, &manifest, record.clone()).await {
        Ok(place) => {
            outcome.lines.push(format!(
                "ok    record: in the manifest of `{}` ({place})",
                manifest.backup_id
            ));
            outcome.record = Some(record);
        }
        Err(e) => {
            outcome.lines.push(format!("FAIL  record: {e}"));
            if outcome.error.is_none() {
                outcome.error = Some(format!("cannot record the drill: {e}"));
            }
        }
    }
    outcome
}

/// Drops the copies drills left that were killed before their drop: only marked ones whose
/// process has ended, never a copy a running drill uses.
async fn drop_leftovers(settings: &Settings<'_>, prefix: &str) -> Result<Vec<String>, String> {
    let admin = settings
        .conn
        .with_dbname(settings.maintenance_db)
        .connect()
        .await?;
    restore::sweep_marked(&admin, prefix).await
}

/// Drills kept per manifest: the newest.
const KEPT_DRILLS: usize = 20;

/// Appends `record` to the backup's manifest where it lives.
async fn save(
    source: &Source,
    folder: &Path,
    manifest: &Manifest,
    record: Drill,
) -> Result<String, String> {
    match source {
        Source::Local(_) => {
            // Read again: the folder may have been pruned or drilled meanwhile.
            let mut current = Manifest::read(folder)?;
            push(&mut current, record);
            current
                .write(folder)
                .map_err(|e| format!("cannot write the manifest in `{}`: {e}", folder.display()))?;
            Ok(format!("`{}`", folder.display()))
        }
        Source::Remote { remote, .. } => {
            let mut current = remote.manifest(&manifest.backup_id).await?;
            push(&mut current, record);
            remote.put_manifest(&current).await?;
            Ok(remote.url())
        }
    }
}

fn push(manifest: &mut Manifest, record: Drill) {
    manifest.drills.push(record);
    let extra = manifest.drills.len().saturating_sub(KEPT_DRILLS);
    manifest.drills.drain(..extra);
}
