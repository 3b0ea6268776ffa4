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

/// A retention policy: keep the `keep` newest and/or those younger than `max_age`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Retention {
    pub(crate) keep: Option<usize>,
    pub(crate) max_age: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) id: String,
    pub(crate) delete: bool,
    pub(crate) reason: String,
}

/// Decides, for each valid backup `(id, created_at)`, whether retention keeps it.
///
/// A backup is kept when any rule keeps it: it is `current` (this run's, never deleted), it is
/// among the `keep` newest, or it is younger than `max_age`. With only `max_age`, the newest
/// backup is kept however old, so a pipeline that has not run for a while still has one.
/// Without any rule nothing is deleted. Corrupt and incomplete folders are not passed in: they
/// are reported, never pruned silently.
pub(crate) fn plan_retention(
    backups: &[(String, jiff::Timestamp)],
    policy: Retention,
    now: jiff::Timestamp,
    current: Option<&str>,
) -> Vec<Decision> {
    let mut sorted: Vec<&(String, jiff::Timestamp)> = backups.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    sorted
        .iter()
        .enumerate()
        .map(|(rank, (id, created))| {
            let age = now.duration_since(*created);
            let age = Duration::try_from(age).unwrap_or_default();
            let reason = if current == Some(id.as_str()) {
                Some("this run's backup".to_owned())
            } else if policy.keep.is_none() && policy.max_age.is_none() {
                Some("no retention rule".to_owned())
            } else if policy.keep.is_some_and(|k| rank < k) {
                Some(format!(
                    "among the {} newest",
                    policy.keep.unwrap_or_default()
                ))
            } else if policy.max_age.is_some_and(|m| age <= m) {
                Some(format!(
                    "younger than {}",
                    crate::config::duration::format(policy.max_age.unwrap_or_default())
                ))
            } else if policy.keep.is_none() && rank == 0 {
                Some("the newest backup".to_owned())
            } else {
                None
            };
            match reason {
                Some(reason) => Decision {
                    id: id.clone(),
                    delete: false,
                    reason,
                },
                None => Decision {
                    id: id.clone(),
                    delete: true,
                    reason: match (policy.keep, policy.max_age) {
                        (Some(k), Some(m)) => format!(
                            "not among the {k} newest and older than {}",
                            crate::config::duration::format(m)
                        ),
                        (Some(k), None) => format!("not among the {k} newest"),
                        (_, Some(m)) => {
                            format!("older than {}", crate::config::duration::format(m))
                        }
                        (None, None) => String::new(),
                    },
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
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
                },
                Some("b2"),
                vec![],
            ),
            (
                5,
                Retention {
                    keep: Some(2),
                    max_age: None,
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
                },
                Some("b9"),
                vec!["b0", "b1", "b2", "b3", "b4"],
            ),
            (
                10,
                Retention {
                    keep: Some(1),
                    max_age: Some(day * 4),
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
