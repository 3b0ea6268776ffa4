use std::process::Stdio;

use nix::sys::resource::{UsageWho, getrusage};

use crate::harness::Test;

/// A stage printing 1 GiB leaves portcullis's resident memory under 50 MB: output is streamed
/// to the log in chunks and only a tail is kept. `getrusage(RUSAGE_CHILDREN)` reports the
/// largest resident set among the waited-for children: portcullis and the stage's small tools.
#[test]
fn a_gigabyte_of_output_runs_in_bounded_memory() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nsecrets:\n  S: { env: MEM_SECRET }\nstages:\n  loud:\n    run: head -c 1073741824 < <(yes 'a fairly long line of output that repeats and repeats, no secret in it')\n  quiet:\n    run: head -c 268435456 /dev/zero\n",
    )
    .env("MEM_SECRET", "not-in-the-output");
    let status = t
        .command(&["run", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(0));
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let max_rss_kib = usage.max_rss();
    assert!(
        max_rss_kib < 50 * 1024,
        "max resident set {max_rss_kib} KiB"
    );
    let log_len = std::fs::metadata(t.latest_run().join("loud.log"))
        .expect("log")
        .len();
    assert_eq!(log_len, 1_073_741_824, "the whole output reached the log");
}
