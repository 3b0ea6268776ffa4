//! `.portcullis/runs/<run-id>/`: where a run's logs, outputs and JUnit report live.
//!
//! Run ids sort by time (`20261122-130512-3f9a07c2`, UTC), so `ls` shows runs in order, and
//! `.portcullis/runs/latest` points at the newest. The folder is created exclusively, `0700`:
//! two runs started in the same second never share one (a collision draws a new id), and what
//! a run writes there (logs, outputs, which hold values as the stages published them) is
//! readable by its user alone.

use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// How many ids are tried before giving up; each collision needs two runs in one second drawing
/// the same 32 random bits.
const ATTEMPTS: usize = 16;

pub(crate) fn new_run_id() -> String {
    // UTC: local time would need the time zone database, read from disk on every run.
    let now = jiff::Timestamp::now();
    // std's hasher keys are random per process; mixed with the time and the pid they give
    // 32 bits no other run draws alike.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i128(now.as_nanosecond());
    hasher.write_u32(std::process::id());
    let salt = hasher.finish() as u32;
    format!("{}-{salt:08x}", now.strftime("%Y%m%d-%H%M%S"))
}

/// Creates a new run folder (with `outputs/`), the `latest` link and a `.gitignore` that keeps
/// `.portcullis/` out of commits; returns the run id and the folder.
pub(crate) fn create(root: &Path) -> std::io::Result<(String, PathBuf)> {
    let base = root.join(".portcullis");
    let runs = base.join("runs");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&runs)?;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let run_id = new_run_id();
        let dir = runs.join(&run_id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                for sub in ["outputs", "scripts"] {
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(dir.join(sub))?;
                }
                finish(&base, &runs, &run_id);
                return Ok((run_id, dir));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free run id")))
}

fn finish(base: &Path, runs: &Path, run_id: &str) {
    let ignore = base.join(".gitignore");
    if !ignore.exists() {
        let _ = std::fs::write(&ignore, "*\n");
    }
    let tmp = runs.join(format!(".latest-{run_id}"));
    if std::os::unix::fs::symlink(run_id, &tmp).is_ok()
        && std::fs::rename(&tmp, runs.join("latest")).is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn each_run_gets_its_own_private_folder() {
        let root = tempfile::tempdir().expect("temp dir");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let (id, dir) = super::create(root.path()).expect("run folder");
            assert!(seen.insert(id), "a run id was drawn twice");
            let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
