use crate::harness::{Test, alive, pids};

/// Two stages that each wait for the other's marker can only both pass when they run at the
/// same time; with `-j 1` the same pipeline cannot finish before its timeout.
#[test]
fn ready_stages_start_together_up_to_the_limit() {
    let yaml = r#"version: 1
stages:
  a:
    run: touch a.ready; until [ -e b.ready ]; do sleep 0.02; done
    timeout: 3s
  b:
    run: touch b.ready; until [ -e a.ready ]; do sleep 0.02; done
    timeout: 3s
  c:
    needs: [a, b]
    run: echo done > c.out
"#;
    let t = Test::new().pipeline("p", yaml);
    let out = t.run(&["run", "p", "-j", "2"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.read("c.out"), "done\n");

    let t = Test::new().pipeline("p", yaml);
    let out = t.run(&["run", "p", "-j", "1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("timed out after 3s"), "{out:?}");
    assert!(out.stderr.contains("needs `a`, which failed"), "{out:?}");
}

#[test]
fn pipeline_concurrency_is_the_default_limit() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nconcurrency: 1\nstages:\n  a:\n    run: touch a.ready; until [ -e b.ready ]; do sleep 0.02; done\n    timeout: 2s\n  b:\n    run: touch b.ready; until [ -e a.ready ]; do sleep 0.02; done\n    timeout: 2s\n",
    );
    assert_eq!(t.run(&["run", "p"]).code, 1);
    let t = Test::new().pipeline(
        "p",
        "version: 1\nconcurrency: 1\nstages:\n  a:\n    run: touch a.ready; until [ -e b.ready ]; do sleep 0.02; done\n    timeout: 2s\n  b:\n    run: touch b.ready; until [ -e a.ready ]; do sleep 0.02; done\n    timeout: 2s\n",
    );
    assert_eq!(t.run(&["run", "p", "-j", "2"]).code, 0);
}

/// The first failure cancels what runs (grandchildren included), skips what was not reached,
/// each with its reason, and reports all of it.
#[test]
fn abort_on_first_failure_cancels_the_whole_process_group() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  slow:
    run: |
      sleep 60 &
      echo $! > slow.pids
      echo $$ >> slow.pids
      wait
  fail:
    run: until [ -e slow.pids ]; do sleep 0.02; done; echo boom; exit 3
  after-fail:
    needs: [fail]
    run: touch should-not-exist
  after-slow:
    needs: [slow]
    run: touch should-not-exist
"#,
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    for pid in pids(&t.read("slow.pids")) {
        assert!(
            !alive(pid),
            "process {pid} of a cancelled stage outlived portcullis"
        );
    }
    assert!(!t.path().join("should-not-exist").exists());
    let err = &out.stderr;
    assert!(err.contains("fail") && err.contains("exit code 3"), "{err}");
    assert!(err.contains("cancelled: `fail` failed"), "{err}");
    assert!(err.contains("needs `fail`, which failed"), "{err}");
    assert!(err.contains("needs `slow`, which was cancelled"), "{err}");
    assert!(
        err.contains("boom"),
        "the failing stage's tail is shown: {err}"
    );
    let junit = t.junit();
    assert!(junit.contains("exit code 3"), "{junit}");
    assert!(junit.contains("needs `fail`, which failed"), "{junit}");
}

/// A stage that ignores SIGTERM is killed with SIGKILL once its grace period is over.
#[test]
fn sigkill_follows_sigterm_after_the_grace_period() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  stubborn:
    grace: 500ms
    run: |
      trap 'echo got TERM' TERM
      echo $$ > stubborn.pid
      while true; do sleep 0.05; done
  fail:
    run: until [ -e stubborn.pid ]; do sleep 0.02; done; exit 1
"#,
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    let pid = pids(&t.read("stubborn.pid"))[0];
    assert!(!alive(pid));
    assert!(
        t.log("stubborn").contains("got TERM"),
        "SIGTERM came first: {}",
        t.log("stubborn")
    );
    assert!(out.stderr.contains("cancelled"), "{out:?}");
}

#[test]
fn keep_going_lets_independent_branches_finish() {
    let yaml = r#"version: 1
stages:
  fail:
    run: exit 1
  slow:
    run: sleep 0.5; touch slow.done
  after-slow:
    needs: [slow]
    run: touch after-slow.done
  after-fail:
    needs: [fail]
    run: touch after-fail.done
"#;
    let t = Test::new().pipeline("p", yaml);
    let out = t.run(&["run", "p", "--keep-going"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(t.path().join("slow.done").exists());
    assert!(t.path().join("after-slow.done").exists());
    assert!(!t.path().join("after-fail.done").exists());
    assert!(out.stderr.contains("needs `fail`, which failed"), "{out:?}");

    let t = Test::new().pipeline("p", yaml);
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1);
    assert!(
        !t.path().join("after-slow.done").exists(),
        "without --keep-going the run aborts"
    );
}

#[test]
fn allowed_failure_is_a_warning_and_dependents_run() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  flaky-lint:\n    allow-failure: true\n    run: exit 4\n  next:\n    needs: [flaky-lint]\n    run: touch next.done\n",
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t.path().join("next.done").exists());
    assert!(out.stderr.contains("warning"), "{out:?}");
    assert!(out.stderr.contains("exit code 4"), "{out:?}");
    assert!(
        !out.stderr.contains("✓ flaky-lint"),
        "an allowed failure is not shown as a pass: {out:?}"
    );
}

#[test]
fn conditions_failure_and_always() {
    let yaml = |fail: &str| {
        format!(
            r#"version: 1
stages:
  build:
    run: exit {fail}
  on-failure:
    needs: [build]
    if: failure
    run: echo "$PORTCULLIS_STATUS" > on-failure.out
  always:
    needs: [build]
    if: always
    run: echo "$PORTCULLIS_STATUS" > always.out
  cleanup:
    if: always
    run: echo cleanup > cleanup.out
"#
        )
    };
    let t = Test::new().pipeline("p", &yaml("1"));
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(t.read("on-failure.out"), "failed\n");
    assert_eq!(t.read("always.out"), "failed\n");
    assert_eq!(t.read("cleanup.out"), "cleanup\n");

    let t = Test::new().pipeline("p", &yaml("0"));
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!t.path().join("on-failure.out").exists());
    assert_eq!(t.read("always.out"), "passed\n");
    assert!(
        out.stderr.contains("runs only when the pipeline fails"),
        "{out:?}"
    );
}

#[test]
fn timeout_fails_the_stage_and_kills_it() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  hang:\n    timeout: 300ms\n    run: echo $$ > hang.pid; sleep 60\n",
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("timed out after 300ms"), "{out:?}");
    assert!(!alive(pids(&t.read("hang.pid"))[0]));
    assert!(t.junit().contains("timed out after 300ms"));
}

#[test]
fn retries_rerun_with_backoff_and_report_every_attempt() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  flaky:
    retries: { count: 3, backoff: 50ms }
    run: |
      echo try >> tries
      [ "$(wc -l < tries)" -ge 3 ]
  hopeless:
    needs: [flaky]
    retries: { count: 1, backoff: 10ms }
    run: echo nope; exit 2
"#,
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        t.read("tries").lines().count(),
        3,
        "passed on the third attempt"
    );
    let err = &out.stderr;
    assert!(err.contains("attempt 1/4 failed: exit code 1"), "{err}");
    assert!(err.contains("attempt 2/4 failed: exit code 1"), "{err}");
    assert!(err.contains("attempt 1/2 failed: exit code 2"), "{err}");
    let junit = t.junit();
    assert!(
        junit.matches("flakyFailure").count() >= 2,
        "passing stage keeps its failed attempts: {junit}"
    );
    assert!(junit.contains("rerunFailure"), "{junit}");
    assert!(t.log("flaky").contains("portcullis: attempt 3 of 4"));
}

#[test]
fn rollbacks_run_in_reverse_completion_order_only_on_failure() {
    let yaml = |fail: &str| {
        format!(
            r#"version: 1
stages:
  backup:
    run: echo backup >> events
    rollback: echo undo-backup >> events
  migrate:
    needs: [backup]
    run: echo migrate >> events
    rollback:
      command: [sh, -c, "echo undo-migrate >> events"]
  no-rollback:
    needs: [backup]
    run: echo plain >> events
  deploy:
    needs: [migrate, no-rollback]
    run: echo deploy >> events; exit {fail}
    rollback: echo undo-deploy >> events
"#
        )
    };
    let t = Test::new().pipeline("p", &yaml("1"));
    let out = t.run(&["run", "p", "-j", "1"]);
    assert_eq!(out.code, 1, "{out:?}");
    let events: Vec<String> = t.read("events").lines().map(str::to_owned).collect();
    assert_eq!(
        events,
        [
            "backup",
            "migrate",
            "plain",
            "deploy",
            "undo-migrate",
            "undo-backup"
        ]
    );
    assert!(out.stderr.contains("rolled back"), "{out:?}");
    assert!(t.junit().contains("rollback: migrate"));

    let t = Test::new().pipeline("p", &yaml("0"));
    assert_eq!(t.run(&["run", "p", "-j", "1"]).code, 0);
    assert!(!t.read("events").contains("undo"));
}

#[test]
fn a_failed_rollback_fails_the_run_and_is_reported() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  a:\n    run: 'true'\n    rollback: echo cannot undo; exit 9\n  b:\n    needs: [a]\n    run: exit 1\n",
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("rollback failed"), "{out:?}");
    assert!(out.stderr.contains("exit code 9"), "{out:?}");
}

#[test]
fn outputs_flow_to_later_stages() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  build:
    run: |
      echo "version=1.2.3" >> "$PORTCULLIS_OUTPUT"
      printf 'notes<<EOF\nline one\nline two\nEOF\n' >> "$PORTCULLIS_OUTPUT"
  deploy:
    needs: [build]
    env:
      VERSION: v${{ build.version }}
    command: [sh, -c, 'echo "$VERSION $1" > deployed', sh, '${{ build.notes }}']
  later:
    needs: [deploy]
    run: echo "${{ build.missing }}"
"#,
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(t.read("deployed"), "v1.2.3 line one\nline two\n");
    assert!(
        out.stderr
            .contains("stage `build` published no output `missing`"),
        "{out:?}"
    );
}

#[test]
fn only_skip_from_and_dry_run() {
    let yaml = r#"version: 1
env:
  TARGET: staging
secrets:
  TOKEN: { env: DRY_TOKEN }
stages:
  lint:
    run: echo lint >> ran
  test:
    needs: [lint]
    run: echo test >> ran
  deploy:
    needs: [test]
    run: echo deploy to ${{ TARGET }} with ${{ TOKEN }} >> ran
  docs:
    run: echo docs >> ran
"#;
    let t = Test::new().pipeline("p", yaml).env("DRY_TOKEN", "tok-123");
    assert_eq!(t.run(&["run", "p", "--only", "deploy"]).code, 0);
    assert_eq!(t.read("ran"), "deploy to staging with tok-123\n");

    let t = Test::new()
        .pipeline("p", yaml)
        .env("DRY_TOKEN", "s3cr3t-value");
    let out = t.run(&["run", "p", "--skip", "test", "--skip", "docs"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.read("ran"), "lint\ndeploy to staging with s3cr3t-value\n");
    assert!(out.stderr.contains("skipped by `--skip`"), "{out:?}");

    let t = Test::new()
        .pipeline("p", yaml)
        .env("DRY_TOKEN", "x-token-x");
    assert_eq!(t.run(&["run", "p", "--from", "test"]).code, 0);
    assert_eq!(t.read("ran"), "test\ndeploy to staging with x-token-x\n");

    let t = Test::new().pipeline("p", yaml);
    let out = t.run(&[
        "run",
        "p",
        "--dry-run",
        "--var",
        "TARGET=prod",
        "--only",
        "deploy",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("run: echo deploy to prod with ***"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("will not run: not selected (`--only`)"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("1 of 4 stages would run; nothing was run"),
        "{out:?}"
    );
    assert!(!t.path().join("ran").exists());
    assert!(!t.path().join(".portcullis").exists());
}

#[test]
fn stages_see_their_environment_and_workdir() {
    let t = Test::new()
        .file("sub/dir/.keep", "")
        .pipeline(
            "p",
            r#"version: 1
name: envcheck
env:
  GREETING: hello
  LOUD: ${{ GREETING }}!
stages:
  show:
    workdir: sub/dir
    env:
      WHO: world
    run: echo "$GREETING $WHO $LOUD $PORTCULLIS_STAGE $PORTCULLIS_STATUS ${{ LOUD }}" > out; echo "$PORTCULLIS_RUN_ID" > id
"#,
        );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        t.read("sub/dir/out"),
        "hello world hello! show passed hello!\n"
    );
    let id = t.read("sub/dir/id");
    let run_dir = t.path().join(".portcullis/runs").join(id.trim());
    assert!(
        run_dir.join("junit.xml").exists(),
        "the run id names the run folder"
    );
    assert!(
        !run_dir.join("show.log").exists(),
        "a stage that printed nothing leaves no empty log"
    );
}

#[test]
fn output_is_streamed_to_the_log_while_the_stage_runs() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  talk:\n    run: echo first line; until [ -e go ]; do sleep 0.02; done; echo second line\n",
    );
    let mut child = t.spawn(&["run", "p"]);
    let start = std::time::Instant::now();
    let log = loop {
        let log = std::fs::read_to_string(t.latest_run().join("talk.log")).unwrap_or_default();
        if log.contains("first line") || start.elapsed() > std::time::Duration::from_secs(20) {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(
        log, "first line\n",
        "the first line is in the log before the stage ends"
    );
    std::fs::write(t.path().join("go"), "").expect("write");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert_eq!(t.log("talk"), "first line\nsecond line\n");
}

#[test]
fn missing_program_and_workdir_fail_clearly() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  a:\n    command: [no-such-program-xyz]\n  b:\n    workdir: nowhere\n    run: 'true'\n",
    );
    let out = t.run(&["run", "p", "--keep-going"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot start `no-such-program-xyz`"),
        "{out:?}"
    );
    assert!(out.stderr.contains("working directory"), "{out:?}");
}

/// `--skip` keeps the graph's order: skipping the middle of a chain neither lets the end start
/// early nor hides a failure before it, and a skipped `if: always` stage does not run.
#[test]
fn skipped_stages_keep_order_and_propagate_failure() {
    let yaml = |lint: &str| {
        format!(
            "version: 1\nstages:\n  lint:\n    run: sleep 0.3; echo lint >> ran; exit {lint}\n  test:\n    needs: [lint]\n    run: echo test >> ran\n  deploy:\n    needs: [test]\n    run: echo deploy >> ran\n  notify:\n    if: always\n    run: echo notify >> ran\n"
        )
    };
    let t = Test::new().pipeline("p", &yaml("0"));
    let out = t.run(&["run", "p", "--skip", "test", "--skip", "notify"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.read("ran"), "lint\ndeploy\n");

    let t = Test::new().pipeline("p", &yaml("1"));
    let out = t.run(&["run", "p", "--skip", "test"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(t.read("ran"), "lint\nnotify\n");
    assert!(
        out.stderr.contains("needs `test`, which was skipped"),
        "{out:?}"
    );
}

/// An `if: always` stage with no needs waits for the others, unless one of them needs it:
/// then it starts rather than leaving the run waiting forever.
#[test]
fn a_needed_always_stage_without_needs_does_not_hang_the_run() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  setup:\n    if: always\n    run: echo setup >> ran\n  build:\n    needs: [setup]\n    run: echo build >> ran\n  other:\n    run: echo other >> ran\n",
    );
    let out = t.run(&["run", "p", "-j", "1"]);
    assert_eq!(out.code, 0, "{out:?}");
    let ran = t.read("ran");
    assert!(ran.ends_with("setup\nbuild\n"), "{ran}");
}

/// Colour off a terminal only when asked: `CLICOLOR_FORCE` or `--color always`; `--color never`
/// and `NO_COLOR` win over `CLICOLOR_FORCE`'s absence, `--color always` over `NO_COLOR`.
#[test]
fn colour_follows_the_flag_and_the_conventions() {
    let t = Test::new().pipeline("p", "version: 1\nstages:\n  a:\n    run: 'true'\n");
    let coloured = |r: &std::process::Output| String::from_utf8_lossy(&r.stderr).contains('\x1b');
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = t.command(args);
        cmd.env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run")
    };
    assert!(!coloured(&run(&["run", "p"], &[])), "not a terminal");
    assert!(coloured(&run(&["run", "p"], &[("CLICOLOR_FORCE", "1")])));
    assert!(!coloured(&run(
        &["run", "p"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    )));
    assert!(!coloured(&run(
        &["run", "p", "--color", "never"],
        &[("CLICOLOR_FORCE", "1")]
    )));
    assert!(coloured(&run(
        &["--color", "always", "run", "p"],
        &[("NO_COLOR", "1")]
    )));
}

/// From a subfolder, a named pipeline is found in the nearest `pipelines/` above, up to the
/// repository's top, and the run happens there (its run folder, its relative paths).
#[test]
fn pipelines_are_found_from_a_subfolder() {
    let t = Test::new()
        .pipeline("p", "version: 1\nstages:\n  a:\n    run: pwd > where.txt\n")
        .file("web/src/app.ts", "export {}\n");
    let sub = t.path().join("web/src");
    let r = t
        .command(&["run", "p"])
        .current_dir(&sub)
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("working from `"),
        "{r:?}"
    );
    let root = std::fs::canonicalize(t.path()).expect("root");
    let wrote = std::fs::read_to_string(t.path().join("where.txt")).expect("where.txt");
    assert_eq!(std::path::Path::new(wrote.trim()), root);
    assert!(t.path().join(".portcullis/runs/latest").exists());
    assert!(!sub.join(".portcullis").exists());
    // Not past the repository's top: a `.git` folder ends the search.
    std::fs::create_dir_all(t.path().join("web/.git")).expect("mkdir");
    let r = t
        .command(&["run", "p"])
        .current_dir(&sub)
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(2), "{r:?}");
    // A path is taken as given, from where portcullis runs.
    let r = t
        .command(&["validate", "../../pipelines/p.yml"])
        .current_dir(&sub)
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(0), "{r:?}");
}
