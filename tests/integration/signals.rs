use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{Test, alive, pids};

const PIPELINE: &str = r#"version: 1
stages:
  server:
    grace: GRACE
    run: |
      TRAP
      sleep 60 &
      echo $! > pids
      echo $$ >> pids
      touch started
      wait
  next:
    needs: [server]
    run: touch next.done
  notify:
    if: always
    run: echo "$PORTCULLIS_STATUS" > notify.out
  undo-setup:
    run: 'true'
    rollback: echo undone > rollback.out
"#;

fn pipeline(grace: &str, trap: &str) -> String {
    PIPELINE.replace("GRACE", grace).replace("TRAP", trap)
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_cancels_rolls_back_reports_and_exits_130() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let t = Test::new().pipeline("p", &pipeline("10s", ""));
        let mut child = t.spawn(&["run", "p", "-j", "4"]);
        t.wait_for("started");
        let _ = std::fs::metadata(t.path().join("pids"));
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal portcullis");
        let code = wait_exit(&mut child, Duration::from_secs(20));
        assert_eq!(code, Some(130), "{signal:?}");
        for pid in pids(&t.read("pids")) {
            assert!(!alive(pid), "{signal:?}: process {pid} outlived portcullis");
        }
        assert!(!t.path().join("next.done").exists());
        assert_eq!(
            t.read("notify.out"),
            "cancelled\n",
            "`if: always` still runs after an interrupt"
        );
        assert_eq!(
            t.read("rollback.out"),
            "undone\n",
            "an interrupt rolls back what passed"
        );
        let junit = t.junit();
        assert!(junit.contains("cancelled: interrupted"), "{junit}");
    }
}

/// A stage that ignores SIGTERM with a long grace period: the second Ctrl-C kills at once.
#[test]
fn a_second_ctrl_c_kills_at_once() {
    let t = Test::new().pipeline("p", &pipeline("60s", "trap '' TERM"));
    let mut child = t.spawn(&["run", "p"]);
    t.wait_for("started");
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).expect("first");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still waiting for the stubborn stage"
    );
    kill(pid, Signal::SIGINT).expect("second");
    let code = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(
        code,
        Some(130),
        "the second Ctrl-C ends the run without waiting out the 60s grace"
    );
    for pid in pids(&t.read("pids")) {
        assert!(!alive(pid), "process {pid} outlived portcullis");
    }
}
