use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{Test, alive, pids};

// `server` needs `undo-setup`, so that once `started` exists the stage with a rollback has
// passed: an interrupt then always has something to roll back.
const PIPELINE: &str = r#"version: 1
stages:
  undo-setup:
    run: 'true'
    rollback: echo undone > rollback.out
  server:
    needs: [undo-setup]
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

/// Processes that leave their stage's process group (`setsid`, GNU `timeout`, `set -m` jobs)
/// are stopped when the stage ends, in a run that passes.
#[test]
fn processes_that_leave_the_group_do_not_outlive_their_stage() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
defaults: { grace: 2s }
stages:
  escape:
    run: |
      setsid sh -c 'echo $$ >> pids; exec sleep 300' &
      timeout 300 sh -c 'echo $$ >> pids; exec sleep 301' &
      echo $! >> pids
      set -m
      sh -c 'echo $$ >> pids; exec sleep 302' &
      set +m
      while [ "$(wc -l < pids)" -lt 4 ]; do sleep 0.05; done
      echo left them running
  after:
    needs: [escape]
    run: 'true'
"#,
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let started = pids(&t.read("pids"));
    assert_eq!(started.len(), 4, "{started:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while started.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let survivors: Vec<i32> = started.into_iter().filter(|&p| alive(p)).collect();
    for &pid in &survivors {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    assert!(survivors.is_empty(), "outlived the run: {survivors:?}");
}

/// After `kill -9` of portcullis itself, its watchdog stops every process of the run:
/// children, grandchildren, background jobs, a `setsid` escape and one that ignores SIGTERM.
#[test]
fn nothing_survives_portcullis_being_killed() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  tree:
    run: |
      bash -c 'sleep 301 & echo $! >> pids; sleep 302 & echo $! >> pids; wait' &
      echo $$ >> pids
      wait
  escape:
    run: |
      setsid sh -c 'echo $$ >> pids; exec sleep 303' &
      echo $$ >> pids
      sleep 304
  stubborn:
    run: |
      trap '' TERM
      sh -c 'trap "" TERM; echo $$ >> pids; sleep 305' &
      echo $$ >> pids
      wait
"#,
    );
    let mut child = t.spawn(&["run", "p", "-j", "4"]);
    let start = Instant::now();
    while pids(&t.read("pids")).len() < 7 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            t.read("pids")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let started = pids(&t.read("pids"));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9");
    let _ = child.wait();
    let killed = Instant::now();
    while started.iter().any(|&p| alive(p)) && killed.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let survivors: Vec<i32> = started.iter().copied().filter(|&p| alive(p)).collect();
    for &pid in &survivors {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    assert!(
        survivors.is_empty(),
        "alive 15 s after kill -9: {survivors:?} of {started:?}"
    );
}

/// An interrupt while a `command:` secret resolves ends portcullis with 130 and stops the
/// command with everything it started.
#[test]
fn interrupt_while_a_secret_resolves_exits_130_and_stops_the_command() {
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let t = Test::new().pipeline(
            "p",
            r#"version: 1
secrets:
  SLOW: { command: [sh, -c, "echo $$ > secret.pid; sleep 25; echo value"] }
stages:
  a:
    run: 'true'
"#,
        );
        let mut child = t.spawn(&["run", "p"]);
        t.wait_for("secret.pid");
        let secret = pids(&t.read("secret.pid"));
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal");
        let code = wait_exit(&mut child, Duration::from_secs(10));
        assert_eq!(code, Some(130), "{signal:?}");
        let deadline = Instant::now() + Duration::from_secs(3);
        while secret.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !secret.iter().any(|&p| alive(p)),
            "{signal:?}: the secret command survived"
        );
    }
}

/// An interrupt while a rollback runs does not cut the undo short: the rollback finishes, the
/// run exits 130 and the report says both. A second interrupt kills the rollback at once.
#[test]
fn an_interrupt_during_a_rollback_lets_it_finish() {
    let yaml = r#"version: 1
stages:
  deploy:
    run: 'true'
    rollback: |
      touch rolling
      sleep 1.5
      echo undone > rollback.out
  smoke:
    needs: [deploy]
    run: exit 1
"#;
    let t = Test::new().pipeline("p", yaml);
    let mut child = t.spawn(&["run", "p"]);
    t.wait_for("rolling");
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGTERM).expect("signal portcullis");
    let code = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(code, Some(130));
    assert_eq!(t.read("rollback.out").trim(), "undone");
    let junit = t.junit();
    assert!(junit.contains("rollback"), "{junit}");

    let t = Test::new().pipeline("p", &yaml.replace("sleep 1.5", "sleep 60"));
    let mut child = t.spawn(&["run", "p"]);
    t.wait_for("rolling");
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).expect("first");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the rollback goes on"
    );
    kill(pid, Signal::SIGINT).expect("second");
    let code = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(code, Some(130));
    assert!(!t.path().join("rollback.out").exists());
}
