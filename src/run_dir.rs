//! `.portcullis/runs/<run-id>/`: where a run's logs, outputs and JUnit report live.
//!
//! Run ids sort by time (`20261122-130512-3f9a`, UTC), so `ls` shows runs in order, and
//! `.portcullis/runs/latest` points at the newest.

use std::path::{Path, PathBuf};

pub(crate) fn new_run_id() -> String {
    // UTC: local time would need the time zone database, read from disk on every run.
    let now = jiff::Timestamp::now();
    let nanos = now.subsec_nanosecond().unsigned_abs();
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{salt:04x}", now.strftime("%Y%m%d-%H%M%S"))
}

/// Creates the run folder (with `outputs/`), the `latest` link and a `.gitignore` that keeps
/// `.portcullis/` out of commits.
pub(crate) fn create(root: &Path, run_id: &str) -> std::io::Result<PathBuf> {
    let base = root.join(".portcullis");
    let runs = base.join("runs");
    let dir = runs.join(run_id);
    std::fs::create_dir_all(dir.join("outputs"))?;
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
    Ok(dir)
}
