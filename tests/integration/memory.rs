use std::process::Stdio;
use std::time::Duration;

use crate::harness::Test;

/// The peak resident set of a live process (`VmHWM` only grows, so the last reading before the
/// process exits is its peak).
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A stage printing 1 GiB leaves portcullis's resident memory under 50 MB: output is streamed
/// to the log in chunks and only a tail is kept.
#[test]
fn a_gigabyte_of_output_runs_in_bounded_memory() {
    let t = Test::new()
        .pipeline(
            "p",
            "version: 1\nsecrets:\n  S: { env: MEM_SECRET }\nstages:\n  loud:\n    run: head -c 1073741824 < <(yes 'a fairly long line of output that repeats and repeats, no secret in it')\n  quiet:\n    run: head -c 268435456 /dev/zero\n",
        )
        .env("MEM_SECRET", "not-in-the-output");
    let mut child = t
        .command(&["run", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(peak > 0, "the peak was read");
    assert!(peak < 50 * 1024, "peak resident set {peak} KiB");
    let log_len = std::fs::metadata(t.latest_run().join("loud.log"))
        .expect("log")
        .len();
    assert_eq!(log_len, 1_073_741_824, "the whole output reached the log");
}
