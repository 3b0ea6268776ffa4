//! The backup folder: one subfolder per backup, a manifest that proves it whole, and retention.
//!
//! The main types are [`Manifest`] and [`Listed`]. A backup is built in `<id>.partial/`, its
//! manifest is written last, and the folder is renamed to `<id>` as the commit point; a deletion
//! renames to `<id>.deleting` first. So a folder named plainly is either a complete backup or, if
//! its manifest does not check out, reported as corrupt; nothing half-written ever looks valid,
//! whenever the process was killed. The manifest carries a sha256 of its own canonical form, so
//! an edited manifest is caught like an edited dump. [`plan_retention`] is a pure function of the
//! listing, the policy and the clock, so it is tested without a disk and can be shown as a dry run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(crate) const MANIFEST: &str = "manifest.json";
pub(crate) const FORMAT: &str = "portcullis-pg-dump/1";
const PARTIAL: &str = ".partial";
const DELETING: &str = ".deleting";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub(crate) format: String,
    pub(crate) backup_id: String,
    pub(crate) run_id: String,
    pub(crate) stage: String,
    /// When the snapshot was taken (RFC 3339, UTC): writes after it are not in the backup.
    pub(crate) created_at: String,
    pub(crate) finished_at: String,
    pub(crate) database: Database,
    pub(crate) server_version: String,
    pub(crate) server_version_num: i64,
    pub(crate) pg_dump_version: String,
    pub(crate) snapshot: String,
    pub(crate) file: String,
    pub(crate) size_bytes: u64,
    pub(crate) sha256: String,
    /// sha256 of `pg_restore --list` without its comment lines: equal for two dumps of the same
    /// objects, although the dumps' bytes differ (they carry a timestamp).
    pub(crate) toc_sha256: String,
    pub(crate) toc_entries: u64,
    /// Exact row counts of every table, counted in the snapshot the dump used.
    pub(crate) row_counts: BTreeMap<String, i64>,
    pub(crate) dump_ms: u64,
    pub(crate) verify_ms: u64,
    /// The encrypted copy in object storage, once it was uploaded and read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) offsite: Option<super::offsite::RemoteCopy>,
    /// Restore drills of this backup, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) drills: Vec<Drill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) manifest_sha256: Option<String>,
}

/// One restore drill: the backup restored into a scratch database and checked there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Drill {
    /// When the drill ended (RFC 3339, UTC).
    pub(crate) at: String,
    /// `local` or the offsite copy's URL.
    pub(crate) from: String,
    pub(crate) passed: bool,
    /// From the start of the restore (the download, for an offsite copy) to the last check.
    pub(crate) recovery_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rto_ms: Option<u64>,
    /// The checks that ran, each `name: ok` or `name: why it failed`.
    pub(crate) checks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// What `pg_dump` does not carry unless restoring with `--create`, which a swap cannot use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Database {
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) owner: String,
    pub(crate) encoding: String,
    pub(crate) collate: String,
    pub(crate) ctype: String,
    pub(crate) connection_limit: i32,
    /// `ALTER DATABASE … SET` entries, `name=value`.
    pub(crate) settings: Vec<String>,
    /// `ALTER ROLE … IN DATABASE … SET` entries, by role.
    pub(crate) role_settings: BTreeMap<String, Vec<String>>,
    /// Database privileges as `grantee:PRIVILEGE[:grantable]` (`PUBLIC` for everyone); `None`
    /// when the database has the default privileges.
    pub(crate) grants: Option<Vec<String>>,
    pub(crate) comment: Option<String>,
    /// Every role that owns an object in the database or is granted something there: a restore
    /// needs them all and checks for them before touching anything.
    pub(crate) roles: Vec<String>,
}

impl Manifest {
    fn canonical_hash(&self) -> String {
        let mut unsigned = self.clone();
        unsigned.manifest_sha256 = None;
        let bytes = serde_json::to_vec(&unsigned).unwrap_or_default();
        hex(&Sha256::digest(&bytes))
    }

    /// The manifest's bytes with its own checksum set.
    pub(crate) fn to_signed_json(&self) -> Vec<u8> {
        let mut signed = self.clone();
        signed.manifest_sha256 = Some(self.canonical_hash());
        let mut bytes = serde_json::to_vec_pretty(&signed).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Reads and checks a manifest: it parses, has this format and its checksum holds.
    pub(crate) fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| format!("no readable manifest: {e}"))?;
        Manifest::from_json(&bytes)
    }

    /// Parses and checks a manifest's bytes.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| format!("the manifest does not parse: {e}"))?;
        if manifest.format != FORMAT {
            return Err(format!(
                "the manifest's format is `{}`, not `{FORMAT}`",
                manifest.format
            ));
        }
        match &manifest.manifest_sha256 {
            Some(sum) if *sum == manifest.canonical_hash() => Ok(manifest),
            Some(_) => Err(
                "the manifest was changed after it was written (its checksum does not match)"
                    .into(),
            ),
            None => Err("the manifest has no checksum".into()),
        }
    }

    /// Writes `manifest.json` through a temporary file, fsynced, then renamed, then the folder
    /// fsynced.
    pub(crate) fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&self.to_signed_json())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, dir.join(MANIFEST))?;
        fsync_dir(dir)
    }
}

/// Bytes an unprivileged writer may still put in the file system holding `dir`, from
/// `statvfs(dir)` itself: a disk list (which leaves out tmpfs and bind mounts) would answer for
/// another file system.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

pub(crate) fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 and size of a file, read in 1 MiB blocks.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex(&hasher.finalize()), size))
}

/// One entry of a backup folder.
#[derive(Debug, Clone)]
pub(crate) enum Listed {
    /// The manifest checks out and the dump file has the recorded size (its content is checked
    /// by `verify` and before every restore).
    Valid {
        path: PathBuf,
        manifest: Box<Manifest>,
    },
    /// A plainly named folder that is not a valid backup.
    Corrupt { id: String, reason: String },
    /// `<id>.partial` or `<id>.deleting`: a backup being written or deleted, or one whose
    /// process died.
    Incomplete { id: String, path: PathBuf },
}

impl Listed {
    pub(crate) fn id(&self) -> &str {
        match self {
            Listed::Valid { manifest, .. } => &manifest.backup_id,
            Listed::Corrupt { id, .. } | Listed::Incomplete { id, .. } => id,
        }
    }
}

/// Every backup in `dir`, oldest first (ids sort by time). A missing folder is empty.
pub(crate) fn list(dir: &Path) -> Result<Vec<Listed>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read `{}`: {e}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        if let Some(id) = name
            .strip_suffix(PARTIAL)
            .or_else(|| name.strip_suffix(DELETING))
        {
            found.push(Listed::Incomplete {
                id: id.to_owned(),
                path,
            });
            continue;
        }
        found.push(check_entry(&name, &path));
    }
    found.sort_by(|a, b| a.id().cmp(b.id()));
    Ok(found)
}

fn check_entry(name: &str, path: &Path) -> Listed {
    let corrupt = |reason: String| Listed::Corrupt {
        id: name.to_owned(),
        reason,
    };
    let manifest = match Manifest::read(path) {
        Ok(m) => m,
        Err(e) => return corrupt(e),
    };
    if manifest.backup_id != name {
        return corrupt(format!(
            "the manifest is for backup `{}`, not `{name}`",
            manifest.backup_id
        ));
    }
    if manifest.file.contains('/') {
        return corrupt("the manifest names a file outside the backup".into());
    }
    match std::fs::metadata(path.join(&manifest.file)) {
        Ok(m) if m.len() == manifest.size_bytes => Listed::Valid {
            path: path.to_owned(),
            manifest: Box::new(manifest),
        },
        Ok(m) => corrupt(format!(
            "`{}` has {} bytes, the manifest says {}",
            manifest.file,
            m.len(),
            manifest.size_bytes
        )),
        Err(e) => corrupt(format!("`{}` is missing: {e}", manifest.file)),
    }
}

/// Where a new backup is written, and its final name.
pub(crate) fn partial_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{PARTIAL}"))
}

/// Removes a backup: renamed to `<id>.deleting` first, so a deletion cut short never leaves a
/// plainly named folder without its files.
pub(crate) fn delete(dir: &Path, id: &str) -> std::io::Result<()> {
    let doomed = dir.join(format!("{id}{DELETING}"));
    std::fs::rename(dir.join(id), &doomed)?;
    let _ = fsync_dir(dir);
    std::fs::remove_dir_all(&doomed)
}

/// Removes what crashed runs left (`*.partial`, `*.deleting`); call only while holding the
/// folder's lock, so none of them can belong to a running backup.
pub(crate) fn sweep(dir: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    for entry in list(dir).unwrap_or_default() {
        if let Listed::Incomplete { path, .. } = entry
            && std::fs::remove_dir_all(&path).is_ok()
        {
            removed.push(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }
    removed
}

/// An exclusive lock on `<dir>/.lock`, held while a backup is written and old ones deleted.
pub(crate) fn lock(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(|e| format!("cannot open `{}/.lock`: {e}", dir.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| match e {
        nix::errno::Errno::EAGAIN => format!(
            "another run is writing backups into `{}` right now; two runs must not write or prune the same folder at once",
            dir.display()
        ),
        e => format!("cannot lock `{}/.lock`: {e}", dir.display()),
    })
}

/// A retention policy. A backup is kept when any rule keeps it:
///
/// - `keep: N`: it is among the N newest.
/// - `max-age: D`: it is younger than D.
/// - `keep-daily`, `keep-weekly`, `keep-monthly`, `keep-yearly: N` (restic's `forget --keep-*`):
///   walking the backups newest first and bucketing them by calendar period in UTC (a day is a
///   date; a week is an ISO 8601 week, Monday to Sunday, numbered in the year of its Thursday;
///   a month is a year and month; a year is a year), it is the newest backup of one of the N
///   most recent periods that have a backup. Periods without a backup do not use up N: with `keep-daily: 7` and a
///   pipeline that runs on weekdays only, the last seven weekdays keep one backup each.
///
/// Periods are UTC's so that a plan does not depend on the machine's time zone, and a day that
/// a daylight-saving change makes 23 or 25 hours long does not exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Retention {
    pub(crate) keep: Option<usize>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) keep_daily: Option<usize>,
    pub(crate) keep_weekly: Option<usize>,
    pub(crate) keep_monthly: Option<usize>,
    pub(crate) keep_yearly: Option<usize>,
}

impl Retention {
    /// The rules that are set, as they are written: `keep 3`, `max-age 30d`, `keep-daily 7`.
    pub(crate) fn rules(&self) -> Vec<String> {
        let mut rules = Vec::new();
        if let Some(k) = self.keep {
            rules.push(format!("keep {k}"));
        }
        if let Some(m) = self.max_age {
            rules.push(format!("max-age {}", crate::config::duration::format(m)));
        }
        for (period, n) in self.calendar() {
            rules.push(format!("{} {n}", period.key()));
        }
        rules
    }

    /// The calendar rules that are set, from the shortest period to the longest.
    fn calendar(&self) -> Vec<(Period, usize)> {
        [
            (Period::Day, self.keep_daily),
            (Period::Week, self.keep_weekly),
            (Period::Month, self.keep_monthly),
            (Period::Year, self.keep_yearly),
        ]
        .into_iter()
        .filter_map(|(period, n)| Some((period, n?)))
        .collect()
    }
}

/// A calendar period of the `keep-daily`-style rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// The rule's key in a pipeline and on the command line.
    fn key(self) -> &'static str {
        match self {
            Period::Day => "keep-daily",
            Period::Week => "keep-weekly",
            Period::Month => "keep-monthly",
            Period::Year => "keep-yearly",
        }
    }

    /// The period holding `t`, in UTC, as a reason names it: `2026-03-14`, `week 2026-W11`,
    /// `2026-03`, `2026`. Two timestamps are in the same period exactly when their labels are
    /// equal; the week's year is the ISO week-numbering year, so 2027-01-01 is in
    /// `week 2026-W53` and 2025-12-29 in `week 2026-W01`.
    fn label(self, t: jiff::Timestamp) -> String {
        let date = jiff::tz::Offset::UTC.to_datetime(t).date();
        match self {
            Period::Day => date.to_string(),
            Period::Week => {
                let week = date.iso_week_date();
                format!("week {:04}-W{:02}", week.year(), week.week())
            }
            Period::Month => format!("{:04}-{:02}", date.year(), date.month()),
            Period::Year => format!("{:04}", date.year()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) id: String,
    pub(crate) delete: bool,
    pub(crate) reason: String,
}

/// Decides, for each valid backup `(id, created_at)`, whether retention keeps it; newest first.
///
/// A backup is kept when any rule of [`Retention`] keeps it, or when it is `current` (this
/// run's, never deleted); a kept backup's reason names every rule that keeps it. With only
/// `max_age`, the newest backup is kept however old, so a pipeline that has not run for a while
/// still has one (a calendar rule keeps the newest anyway: it is the newest of its period).
/// Without any rule nothing is deleted. Corrupt and incomplete folders are not passed in: they
/// are reported, never pruned silently.
///
/// "Newest" orders by `created_at`, then by id, so that two backups made in the same instant
/// still have one order. Pruning after every run with this plan, each run's backup being the
/// newest, leaves exactly what one plan over every backup ever made would keep (the tests check
/// it): each rule's keepers among all backups are always among the survivors, so the survivors
/// never show a rule a period or a rank that all the backups would not.
pub(crate) fn plan_retention(
    backups: &[(String, jiff::Timestamp)],
    policy: Retention,
    now: jiff::Timestamp,
    current: Option<&str>,
) -> Vec<Decision> {
    let mut sorted: Vec<&(String, jiff::Timestamp)> = backups.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); sorted.len()];
    if let Some(k) = policy.keep {
        for reason in reasons.iter_mut().take(k) {
            reason.push(format!("among the {k} newest"));
        }
    }
    if let Some(m) = policy.max_age {
        for ((_, created), reason) in sorted.iter().zip(&mut reasons) {
            let age = Duration::try_from(now.duration_since(*created)).unwrap_or_default();
            if age <= m {
                reason.push(format!(
                    "younger than {}",
                    crate::config::duration::format(m)
                ));
            }
        }
    }
    for (period, n) in policy.calendar() {
        // Newest first, so the first backup of each new label is the newest of its period.
        let mut last: Option<String> = None;
        let mut seen = 0;
        for ((_, created), reason) in sorted.iter().zip(&mut reasons) {
            if seen == n {
                break;
            }
            let label = period.label(*created);
            if last.as_ref() != Some(&label) {
                seen += 1;
                reason.push(format!("the newest of {label} ({} {n})", period.key()));
                last = Some(label);
            }
        }
    }
    let rules = policy.rules();
    sorted
        .iter()
        .zip(reasons)
        .enumerate()
        .map(|(rank, ((id, _), mut reasons))| {
            if current == Some(id.as_str()) {
                reasons.insert(0, "this run's backup".to_owned());
            }
            if rules.is_empty() {
                reasons.push("no retention rule".to_owned());
            } else if reasons.is_empty() && rank == 0 && policy.keep.is_none() {
                reasons.push("the newest backup".to_owned());
            }
            let delete = reasons.is_empty();
            Decision {
                id: id.clone(),
                delete,
                reason: if delete {
                    format!("kept by no rule ({})", rules.join(", "))
                } else {
                    reasons.join("; ")
                },
            }
        })
        .collect()
}

/// What retention did, or would do, with one entry of a backup folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pruned {
    /// A valid backup that a rule keeps; the reason names the rules.
    Kept { id: String, reason: String },
    /// A valid backup no rule keeps, deleted (or, in a dry run, not yet).
    Deleted {
        id: String,
        reason: String,
        dry_run: bool,
    },
    /// A valid backup no rule keeps, which could not be deleted.
    NotDeleted {
        id: String,
        reason: String,
        error: String,
    },
    /// A plainly named folder that is not a valid backup, or whose time cannot be read:
    /// retention never deletes it, since only a person can tell what it is.
    Corrupt { id: String, reason: String },
    /// `<id>.partial` or `<id>.deleting`: left alone (the stage's preflight removes them under
    /// the lock).
    Incomplete { id: String },
}

/// Applies `policy` to the valid backups of `dir` through [`plan_retention`]: the one place
/// where the `pg-dump` stage and `backups prune` delete backups. Call it holding the folder's
/// [`lock`]. Folders that are not valid backups come first, then the valid ones newest first.
pub(crate) fn prune(
    dir: &Path,
    policy: Retention,
    now: jiff::Timestamp,
    current: Option<&str>,
    dry_run: bool,
) -> Result<Vec<Pruned>, String> {
    let mut pruned = Vec::new();
    let mut valid = Vec::new();
    for entry in list(dir)? {
        match entry {
            Listed::Valid { manifest, .. } => {
                match manifest.created_at.parse::<jiff::Timestamp>() {
                    Ok(t) => valid.push((manifest.backup_id, t)),
                    Err(e) => pruned.push(Pruned::Corrupt {
                        reason: format!(
                            "its `created_at`, `{}`, is not a time: {e}",
                            manifest.created_at
                        ),
                        id: manifest.backup_id,
                    }),
                }
            }
            Listed::Corrupt { id, reason } => pruned.push(Pruned::Corrupt { id, reason }),
            Listed::Incomplete { id, .. } => pruned.push(Pruned::Incomplete { id }),
        }
    }
    for decision in plan_retention(&valid, policy, now, current) {
        let Decision { id, reason, .. } = decision;
        pruned.push(if !decision.delete {
            Pruned::Kept { id, reason }
        } else if dry_run {
            Pruned::Deleted {
                id,
                reason,
                dry_run,
            }
        } else {
            match delete(dir, &id) {
                Ok(()) => Pruned::Deleted {
                    id,
                    reason,
                    dry_run,
                },
                Err(e) => Pruned::NotDeleted {
                    id,
                    reason,
                    error: e.to_string(),
                },
            }
        });
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn backups(n: usize) -> Vec<(String, jiff::Timestamp)> {
        (0..n)
            .map(|i| {
                (
                    format!("b{i}"),
                    ts("2026-01-01T00:00:00Z") + jiff::SignedDuration::from_hours(24 * i as i64),
                )
            })
            .collect()
    }

    fn deleted(d: &[Decision]) -> Vec<&str> {
        let mut v: Vec<&str> = d
            .iter()
            .filter(|d| d.delete)
            .map(|d| d.id.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn retention_table() {
        let now = ts("2026-01-10T12:00:00Z");
        let day = Duration::from_secs(86_400);
        let cases: Vec<(usize, Retention, Option<&str>, Vec<&str>)> = vec![
            // Fewer backups than `keep`: nothing goes.
            (
                3,
                Retention {
                    keep: Some(5),
                    max_age: None,
                    ..Retention::default()
                },
                Some("b2"),
                vec![],
            ),
            (
                5,
                Retention {
                    keep: Some(2),
                    max_age: None,
                    ..Retention::default()
                },
                Some("b4"),
                vec!["b0", "b1", "b2"],
            ),
            // The current run's backup stays even when it is not the newest.
            (
                5,
                Retention {
                    keep: Some(1),
                    max_age: None,
                    ..Retention::default()
                },
                Some("b0"),
                vec!["b1", "b2", "b3"],
            ),
            // max-age alone: older ones go, the boundary is kept.
            (
                10,
                Retention {
                    keep: None,
                    max_age: Some(day * 3),
                    ..Retention::default()
                },
                Some("b9"),
                vec!["b0", "b1", "b2", "b3", "b4", "b5", "b6"],
            ),
            // max-age alone, everything old: the newest stays.
            (
                3,
                Retention {
                    keep: None,
                    max_age: Some(day),
                    ..Retention::default()
                },
                None,
                vec!["b0", "b1"],
            ),
            // Both: kept when either rule keeps it.
            (
                10,
                Retention {
                    keep: Some(5),
                    max_age: Some(day * 2),
                    ..Retention::default()
                },
                Some("b9"),
                vec!["b0", "b1", "b2", "b3", "b4"],
            ),
            (
                10,
                Retention {
                    keep: Some(1),
                    max_age: Some(day * 4),
                    ..Retention::default()
                },
                Some("b9"),
                vec!["b0", "b1", "b2", "b3", "b4", "b5"],
            ),
            // No rule: nothing.
            (4, Retention::default(), None, vec![]),
            (
                0,
                Retention {
                    keep: Some(1),
                    max_age: None,
                    ..Retention::default()
                },
                None,
                vec![],
            ),
        ];
        for (n, policy, current, want) in cases {
            let plan = plan_retention(&backups(n), policy, now, current);
            assert_eq!(plan.len(), n);
            assert_eq!(deleted(&plan), want, "{n} {policy:?} {current:?}");
            if let Some(c) = current {
                assert!(plan.iter().any(|d| d.id == c && !d.delete));
            }
        }
    }

    /// A policy from its calendar rules: daily, weekly, monthly, yearly.
    fn calendar(
        daily: Option<usize>,
        weekly: Option<usize>,
        monthly: Option<usize>,
        yearly: Option<usize>,
    ) -> Retention {
        Retention {
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
            keep_yearly: yearly,
            ..Retention::default()
        }
    }

    /// Backups named by their own timestamps.
    fn at(times: &[&str]) -> Vec<(String, jiff::Timestamp)> {
        times.iter().map(|t| ((*t).to_owned(), ts(t))).collect()
    }

    fn kept(d: &[Decision]) -> Vec<&str> {
        let mut v: Vec<&str> = d
            .iter()
            .filter(|d| !d.delete)
            .map(|d| d.id.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn period_labels_are_utc_and_iso_weeks() {
        let cases = [
            ("2026-03-14T23:59:59Z", Period::Day, "2026-03-14"),
            // UTC, whatever the offset the timestamp was written with.
            ("2026-03-14T23:30:00-02:00", Period::Day, "2026-03-15"),
            ("2026-03-15T23:59:59Z", Period::Week, "week 2026-W11"),
            ("2026-03-16T00:00:00Z", Period::Week, "week 2026-W12"),
            // 2026 starts on a Thursday: its week 1 starts on Monday 2025-12-29, and it has 53
            // weeks, the last ending on Sunday 2027-01-03.
            ("2025-12-28T12:00:00Z", Period::Week, "week 2025-W52"),
            ("2025-12-29T00:00:00Z", Period::Week, "week 2026-W01"),
            ("2026-12-31T12:00:00Z", Period::Week, "week 2026-W53"),
            ("2027-01-01T12:00:00Z", Period::Week, "week 2026-W53"),
            ("2027-01-04T00:00:00Z", Period::Week, "week 2027-W01"),
            ("2026-02-28T12:00:00Z", Period::Month, "2026-02"),
            ("2027-01-01T00:00:00Z", Period::Year, "2027"),
        ];
        for (t, period, want) in cases {
            assert_eq!(period.label(ts(t)), want, "{t} {period:?}");
        }
    }

    #[test]
    fn calendar_retention_table() {
        let now = ts("2027-06-01T00:00:00Z");
        let day = Duration::from_secs(86_400);
        let march_1_to_10: Vec<String> = (1..=10)
            .map(|d| format!("2026-03-{d:02}T03:00:00Z"))
            .collect();
        // (backups, policy, current, the backups kept)
        type Case<'a> = (Vec<&'a str>, Retention, Option<&'a str>, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            // Days without a backup do not use up `keep-daily`.
            (
                vec![
                    "2026-03-01T03:00:00Z",
                    "2026-03-02T03:00:00Z",
                    "2026-03-05T03:00:00Z",
                    "2026-03-09T03:00:00Z",
                ],
                calendar(Some(3), None, None, None),
                None,
                vec![
                    "2026-03-02T03:00:00Z",
                    "2026-03-05T03:00:00Z",
                    "2026-03-09T03:00:00Z",
                ],
            ),
            // Two backups in one day: the newer one is the day's.
            (
                vec![
                    "2026-03-08T03:00:00Z",
                    "2026-03-09T03:00:00Z",
                    "2026-03-09T15:00:00Z",
                ],
                calendar(Some(1), None, None, None),
                None,
                vec!["2026-03-09T15:00:00Z"],
            ),
            (
                vec![
                    "2026-03-08T03:00:00Z",
                    "2026-03-09T03:00:00Z",
                    "2026-03-09T15:00:00Z",
                ],
                calendar(Some(2), None, None, None),
                None,
                vec!["2026-03-08T03:00:00Z", "2026-03-09T15:00:00Z"],
            ),
            // A day is UTC's: 23:30 at UTC-2 is the next day.
            (
                vec!["2026-03-14T20:00:00Z", "2026-03-14T23:30:00-02:00"],
                calendar(Some(2), None, None, None),
                None,
                vec!["2026-03-14T20:00:00Z", "2026-03-14T23:30:00-02:00"],
            ),
            // Sunday and Monday are in different weeks; Saturday and Sunday are not.
            (
                vec![
                    "2026-03-14T12:00:00Z",
                    "2026-03-15T23:59:59Z",
                    "2026-03-16T00:00:00Z",
                ],
                calendar(None, Some(1), None, None),
                None,
                vec!["2026-03-16T00:00:00Z"],
            ),
            (
                vec![
                    "2026-03-14T12:00:00Z",
                    "2026-03-15T23:59:59Z",
                    "2026-03-16T00:00:00Z",
                ],
                calendar(None, Some(2), None, None),
                None,
                vec!["2026-03-15T23:59:59Z", "2026-03-16T00:00:00Z"],
            ),
            // Week 1 of 2026 starts in 2025: by week, 2025-12-29 and 2026-01-02 are one
            // period; by year they are two.
            (
                vec![
                    "2025-12-28T12:00:00Z",
                    "2025-12-29T12:00:00Z",
                    "2026-01-02T12:00:00Z",
                ],
                calendar(None, Some(2), None, None),
                None,
                vec!["2025-12-28T12:00:00Z", "2026-01-02T12:00:00Z"],
            ),
            (
                vec![
                    "2025-12-28T12:00:00Z",
                    "2025-12-29T12:00:00Z",
                    "2026-01-02T12:00:00Z",
                ],
                calendar(None, None, None, Some(2)),
                None,
                vec!["2025-12-29T12:00:00Z", "2026-01-02T12:00:00Z"],
            ),
            // 2026-12-31 and 2027-01-01 are both in week 2026-W53, and in two years.
            (
                vec!["2026-12-31T12:00:00Z", "2027-01-01T12:00:00Z"],
                calendar(None, Some(5), None, None),
                None,
                vec!["2027-01-01T12:00:00Z"],
            ),
            (
                vec!["2026-12-31T12:00:00Z", "2027-01-01T12:00:00Z"],
                calendar(None, None, Some(1), Some(2)),
                None,
                vec!["2026-12-31T12:00:00Z", "2027-01-01T12:00:00Z"],
            ),
            // Months without a backup do not use up `keep-monthly`.
            (
                vec![
                    "2026-01-31T03:00:00Z",
                    "2026-03-01T03:00:00Z",
                    "2026-03-31T03:00:00Z",
                    "2026-05-05T03:00:00Z",
                ],
                calendar(None, None, Some(3), None),
                None,
                vec![
                    "2026-01-31T03:00:00Z",
                    "2026-03-31T03:00:00Z",
                    "2026-05-05T03:00:00Z",
                ],
            ),
            // Calendar rules alone keep the newest, however old.
            (
                vec!["2020-01-01T03:00:00Z", "2020-01-02T03:00:00Z"],
                calendar(Some(1), None, None, None),
                None,
                vec!["2020-01-02T03:00:00Z"],
            ),
            // The current run's backup stays although no rule keeps it.
            (
                vec![
                    "2026-03-09T03:00:00Z",
                    "2026-03-09T15:00:00Z",
                    "2026-03-10T03:00:00Z",
                ],
                calendar(Some(1), None, None, None),
                Some("2026-03-09T03:00:00Z"),
                vec!["2026-03-09T03:00:00Z", "2026-03-10T03:00:00Z"],
            ),
            // The union: `keep` and `max-age` add to what the calendar rules keep.
            (
                march_1_to_10.iter().map(String::as_str).collect(),
                Retention {
                    keep: Some(1),
                    max_age: Some(day * 3),
                    keep_weekly: Some(3),
                    ..Retention::default()
                },
                None,
                // Weeks: Sunday 1 (W09), 2..8 (W10), 9..10 (W11); 3 days before the 10th noon.
                vec![
                    "2026-03-01T03:00:00Z",
                    "2026-03-08T03:00:00Z",
                    "2026-03-09T03:00:00Z",
                    "2026-03-10T03:00:00Z",
                ],
            ),
            (
                march_1_to_10.iter().map(String::as_str).collect(),
                Retention {
                    keep: Some(4),
                    keep_daily: Some(2),
                    keep_monthly: Some(2),
                    ..Retention::default()
                },
                None,
                vec![
                    "2026-03-07T03:00:00Z",
                    "2026-03-08T03:00:00Z",
                    "2026-03-09T03:00:00Z",
                    "2026-03-10T03:00:00Z",
                ],
            ),
        ];
        for (times, policy, current, mut want) in cases {
            // The union case measures ages from the last day's noon.
            let now = if policy.max_age.is_some() {
                ts("2026-03-10T12:00:00Z")
            } else {
                now
            };
            let plan = plan_retention(&at(&times), policy, now, current);
            assert_eq!(plan.len(), times.len());
            want.sort_unstable();
            assert_eq!(kept(&plan), want, "{times:?} {policy:?} {current:?}");
        }
    }

    #[test]
    fn reasons_name_the_rules() {
        let backups = at(&[
            "2025-12-31T03:00:00Z",
            "2026-03-13T03:00:00Z",
            "2026-03-14T03:00:00Z",
            "2026-03-14T09:00:00Z",
        ]);
        let policy = Retention {
            keep: Some(1),
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_monthly: Some(12),
            keep_yearly: Some(3),
            ..Retention::default()
        };
        let plan = plan_retention(&backups, policy, ts("2026-03-14T10:00:00Z"), None);
        let reason = |id: &str| {
            let d = plan.iter().find(|d| d.id == id).unwrap();
            (d.delete, d.reason.as_str())
        };
        assert_eq!(
            reason("2026-03-14T09:00:00Z"),
            (
                false,
                "among the 1 newest; the newest of 2026-03-14 (keep-daily 7); \
                 the newest of week 2026-W11 (keep-weekly 4); the newest of 2026-03 \
                 (keep-monthly 12); the newest of 2026 (keep-yearly 3)"
            )
        );
        assert_eq!(
            reason("2026-03-13T03:00:00Z"),
            (false, "the newest of 2026-03-13 (keep-daily 7)")
        );
        assert_eq!(
            reason("2025-12-31T03:00:00Z"),
            (
                false,
                "the newest of 2025-12-31 (keep-daily 7); the newest of week 2026-W01 \
                 (keep-weekly 4); the newest of 2025-12 (keep-monthly 12); the newest of 2025 \
                 (keep-yearly 3)"
            )
        );
        assert_eq!(
            reason("2026-03-14T03:00:00Z"),
            (
                true,
                "kept by no rule (keep 1, keep-daily 7, keep-weekly 4, keep-monthly 12, \
                 keep-yearly 3)"
            )
        );
        let plan = plan_retention(
            &backups,
            Retention {
                max_age: Some(Duration::from_secs(3600)),
                ..Retention::default()
            },
            ts("2026-03-14T12:00:00Z"),
            Some("2026-03-13T03:00:00Z"),
        );
        let reasons: Vec<(&str, bool, &str)> = plan
            .iter()
            .map(|d| (d.id.as_str(), d.delete, d.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("2026-03-14T09:00:00Z", false, "the newest backup"),
                ("2026-03-14T03:00:00Z", true, "kept by no rule (max-age 1h)"),
                ("2026-03-13T03:00:00Z", false, "this run's backup"),
                ("2025-12-31T03:00:00Z", true, "kept by no rule (max-age 1h)"),
            ]
        );
    }

    /// What the `pg-dump` stage does after each run: its own backup joins the survivors, the
    /// plan runs with it as `current`, and what the plan deletes is gone.
    fn prune_after_each_run(
        runs: &[(String, jiff::Timestamp)],
        policy: Retention,
        run_time: jiff::SignedDuration,
    ) -> Vec<(String, jiff::Timestamp)> {
        let mut survivors: Vec<(String, jiff::Timestamp)> = Vec::new();
        for (id, created) in runs {
            survivors.push((id.clone(), *created));
            let plan = plan_retention(&survivors, policy, *created + run_time, Some(id));
            assert!(plan.iter().any(|d| d.id == *id && !d.delete), "{id}");
            survivors.retain(|(id, _)| plan.iter().any(|d| d.id == *id && !d.delete));
        }
        survivors
    }

    /// The calendar rules computed another way: every backup grouped by period in a map from
    /// the period's numbers to its newest `(created_at, id)`, whose last N entries are kept.
    /// The ISO week is found from the week's Thursday rather than from jiff's week date.
    fn oracle(runs: &[(String, jiff::Timestamp)], policy: Retention) -> BTreeSet<String> {
        type Key = (i32, i32, i32);
        type Rule = (Option<usize>, fn(jiff::civil::Date) -> Key);
        let rules: [Rule; 4] = [
            (policy.keep_daily, |d| {
                (d.year().into(), d.month().into(), d.day().into())
            }),
            (policy.keep_weekly, |d| {
                let monday_based = i64::from(d.weekday().to_monday_zero_offset());
                let thursday = d + jiff::Span::new().days(3 - monday_based);
                let week = (i32::from(thursday.day_of_year()) - 1) / 7 + 1;
                (thursday.year().into(), week, 0)
            }),
            (policy.keep_monthly, |d| {
                (d.year().into(), d.month().into(), 0)
            }),
            (policy.keep_yearly, |d| (d.year().into(), 0, 0)),
        ];
        let mut keep = BTreeSet::new();
        for (n, key) in rules {
            let Some(n) = n else { continue };
            let mut newest: BTreeMap<Key, (jiff::Timestamp, &str)> = BTreeMap::new();
            for (id, created) in runs {
                let date = created.to_zoned(jiff::tz::TimeZone::UTC).date();
                let entry = newest.entry(key(date)).or_insert((*created, id));
                *entry = (*entry).max((*created, id));
            }
            keep.extend(
                newest
                    .values()
                    .rev()
                    .take(n)
                    .map(|(_, id)| (*id).to_owned()),
            );
        }
        keep
    }

    /// A year of nightly backups at 03:00 UTC, a few days with a second one at 15:30 and a few
    /// without any, pruned after every run as the stage does.
    #[test]
    fn a_simulated_year_keeps_what_the_calendar_rules_say() {
        let missing = ["2026-02-28", "2026-06-14", "2026-09-09", "2026-12-27"];
        let twice = ["2026-03-31", "2026-07-04", "2026-12-13", "2026-12-31"];
        let mut runs = Vec::new();
        let mut date = jiff::civil::date(2026, 1, 1);
        while date.year() == 2026 {
            let day = date.to_string();
            if !missing.contains(&day.as_str()) {
                runs.push(format!("{day}T03:00:00Z"));
                if twice.contains(&day.as_str()) {
                    runs.push(format!("{day}T15:30:00Z"));
                }
            }
            date = date.tomorrow().unwrap();
        }
        assert_eq!(runs.len(), 365 - missing.len() + twice.len());
        let runs: Vec<(String, jiff::Timestamp)> =
            runs.iter().map(|t| (t.clone(), ts(t))).collect();
        let policy = calendar(Some(7), Some(4), Some(12), Some(2));

        let survivors = prune_after_each_run(&runs, policy, jiff::SignedDuration::from_mins(5));
        let survivors: BTreeSet<String> = survivors.into_iter().map(|(id, _)| id).collect();
        assert_eq!(survivors, oracle(&runs, policy));

        let by_hand: BTreeSet<String> = [
            // The last 7 days with a backup: the 27th had none.
            "2026-12-31T15:30:00Z",
            "2026-12-30T03:00:00Z",
            "2026-12-29T03:00:00Z",
            "2026-12-28T03:00:00Z",
            "2026-12-26T03:00:00Z",
            "2026-12-25T03:00:00Z",
            "2026-12-24T03:00:00Z",
            // The newest of the last 4 ISO weeks: W53 (28th to 31st) and W52 (its Sunday, the
            // 27th, missing) are above; W51 ends on Sunday the 20th, W50 on the 13th, twice.
            "2026-12-20T03:00:00Z",
            "2026-12-13T15:30:00Z",
            // The newest of each month (December's is above; February's 28th is missing).
            "2026-01-31T03:00:00Z",
            "2026-02-27T03:00:00Z",
            "2026-03-31T15:30:00Z",
            "2026-04-30T03:00:00Z",
            "2026-05-31T03:00:00Z",
            "2026-06-30T03:00:00Z",
            "2026-07-31T03:00:00Z",
            "2026-08-31T03:00:00Z",
            "2026-09-30T03:00:00Z",
            "2026-10-31T03:00:00Z",
            "2026-11-30T03:00:00Z",
            // The newest of 2026 is the last one, above; there is no other year.
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(survivors, by_hand);
        assert_eq!(survivors.len(), 20);

        // One plan over every backup ever made says the same.
        let last = &runs[runs.len() - 1];
        let once = plan_retention(
            &runs,
            policy,
            last.1 + jiff::SignedDuration::from_mins(5),
            Some(&last.0),
        );
        let once: BTreeSet<String> = kept(&once).into_iter().map(str::to_owned).collect();
        assert_eq!(once, survivors);
    }

    fn any_policy() -> impl Strategy<Value = Retention> {
        let count = || proptest::option::of(1usize..8);
        (
            count(),
            proptest::option::of((1u64..24 * 40).prop_map(|h| Duration::from_secs(h * 3600))),
            count(),
            count(),
            count(),
            count(),
        )
            .prop_map(
                |(keep, max_age, daily, weekly, monthly, yearly)| Retention {
                    keep,
                    max_age,
                    keep_daily: daily,
                    keep_weekly: weekly,
                    keep_monthly: monthly,
                    keep_yearly: yearly,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Pruning after every run never loses a backup that one plan over all of them would
        /// keep, nor keeps one it would delete, for any schedule (gaps of up to 40 days, several
        /// runs in a day or in the same second) and any policy.
        #[test]
        fn pruning_after_each_run_equals_one_plan_over_all(
            start in 1_700_000_000i64..1_900_000_000,
            gaps in proptest::collection::vec(
                prop_oneof![Just(0i64), 1i64..7200, 1i64..86_400 * 3, 1i64..86_400 * 40],
                0..120,
            ),
            policy in any_policy(),
            run_secs in 0i64..3600,
        ) {
            let mut t = jiff::Timestamp::from_second(start).unwrap();
            let mut runs = Vec::new();
            for (i, gap) in gaps.iter().enumerate() {
                t += jiff::SignedDuration::from_secs(*gap);
                runs.push((format!("b{i:04}"), t));
            }
            let run_time = jiff::SignedDuration::from_secs(run_secs);
            let survivors: BTreeSet<String> = prune_after_each_run(&runs, policy, run_time)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let once: BTreeSet<String> = match runs.last() {
                Some((id, created)) => {
                    let plan = plan_retention(&runs, policy, *created + run_time, Some(id));
                    kept(&plan).into_iter().map(str::to_owned).collect()
                }
                None => BTreeSet::new(),
            };
            prop_assert_eq!(&survivors, &once);
            if policy.max_age.is_none() && policy.keep.is_none() && !policy.rules().is_empty() {
                // The calendar rules alone: exactly what the oracle keeps (plus the last run's).
                let mut want = oracle(&runs, policy);
                want.extend(runs.last().map(|(id, _)| id.clone()));
                prop_assert_eq!(&survivors, &want);
            }
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            backup_id: "20260101-000000-abcd-app".into(),
            run_id: "20260101-000000-abcd".into(),
            stage: "backup".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            finished_at: "2026-01-01T00:00:01Z".into(),
            database: Database {
                name: "app".into(),
                settings: vec!["work_mem=8MB".into()],
                ..Database::default()
            },
            server_version: "15.18".into(),
            server_version_num: 150018,
            pg_dump_version: "15.18".into(),
            snapshot: "00000003-1".into(),
            file: "app.dump".into(),
            size_bytes: 3,
            sha256: "x".into(),
            toc_sha256: "y".into(),
            toc_entries: 1,
            row_counts: BTreeMap::from([("public.t".into(), 5)]),
            dump_ms: 1,
            verify_ms: 1,
            offsite: None,
            drills: Vec::new(),
            manifest_sha256: None,
        }
    }

    /// Writes a valid backup made at `created_at` into `dir`.
    fn write_backup(dir: &Path, id: &str, created_at: &str) {
        let m = Manifest {
            backup_id: id.into(),
            created_at: created_at.into(),
            ..manifest()
        };
        let b = dir.join(id);
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("app.dump"), "abc").unwrap();
        m.write(&b).unwrap();
    }

    #[test]
    fn prune_deletes_what_the_plan_says_and_never_a_folder_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        write_backup(dir.path(), "a", "2026-03-13T03:00:00Z");
        write_backup(dir.path(), "b", "2026-03-14T03:00:00Z");
        write_backup(dir.path(), "c", "2026-03-14T15:00:00Z");
        write_backup(dir.path(), "d", "yesterday");
        std::fs::create_dir(dir.path().join("e")).unwrap();
        std::fs::create_dir(dir.path().join("f.partial")).unwrap();
        let policy = calendar(Some(1), None, None, None);
        let now = ts("2026-03-15T00:00:00Z");
        let dry = prune(dir.path(), policy, now, None, true).unwrap();
        let ids = |p: &[Pruned]| -> Vec<String> {
            p.iter()
                .map(|p| match p {
                    Pruned::Kept { id, .. } => format!("keep {id}"),
                    Pruned::Deleted { id, dry_run, .. } => format!("delete {id} {dry_run}"),
                    Pruned::NotDeleted { id, .. } => format!("failed {id}"),
                    Pruned::Corrupt { id, .. } => format!("corrupt {id}"),
                    Pruned::Incomplete { id } => format!("incomplete {id}"),
                })
                .collect()
        };
        assert_eq!(
            ids(&dry),
            [
                "corrupt d",
                "corrupt e",
                "incomplete f",
                "keep c",
                "delete b true",
                "delete a true"
            ]
        );
        assert!(
            matches!(&dry[0], Pruned::Corrupt { reason, .. } if reason.contains("`yesterday`")),
            "{dry:?}"
        );
        assert_eq!(list(dir.path()).unwrap().len(), 6);
        let done = prune(dir.path(), policy, now, None, false).unwrap();
        assert_eq!(
            ids(&done)[3..],
            ["keep c", "delete b false", "delete a false"]
        );
        let left: Vec<String> = list(dir.path())
            .unwrap()
            .iter()
            .map(|l| l.id().to_owned())
            .collect();
        assert_eq!(left, ["c", "d", "e", "f"]);
    }

    #[test]
    fn manifest_checksum_catches_an_edit_and_listing_classifies_folders() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest();
        let b = dir.path().join(&m.backup_id);
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("app.dump"), "abc").unwrap();
        m.write(&b).unwrap();
        assert_eq!(Manifest::read(&b).unwrap().row_counts, m.row_counts);
        std::fs::create_dir(dir.path().join("20260102-000000-abcd-app.partial")).unwrap();
        std::fs::create_dir(dir.path().join("stray")).unwrap();
        let listed = list(dir.path()).unwrap();
        assert!(matches!(listed[0], Listed::Valid { .. }), "{listed:?}");
        assert!(matches!(listed[1], Listed::Incomplete { .. }), "{listed:?}");
        assert!(matches!(listed[2], Listed::Corrupt { .. }), "{listed:?}");

        let text = std::fs::read_to_string(b.join(MANIFEST)).unwrap();
        std::fs::write(
            b.join(MANIFEST),
            text.replace("\"public.t\": 5", "\"public.t\": 6"),
        )
        .unwrap();
        assert!(
            Manifest::read(&b)
                .unwrap_err()
                .contains("changed after it was written")
        );
        m.write(&b).unwrap();
        std::fs::write(b.join("app.dump"), "ab").unwrap();
        assert!(
            matches!(&list(dir.path()).unwrap()[0], Listed::Corrupt { reason, .. } if reason.contains("2 bytes"))
        );
        assert_eq!(sweep(dir.path()).len(), 1);
    }
}
