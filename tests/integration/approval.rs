//! `uses: approval`: off a terminal it needs `--approve`, `PORTCULLIS_APPROVE` or `portcullis
//! approve`; on a terminal (a pseudo-terminal here) it shows what waits on it and asks. Every
//! decision lands in `approvals.json`, the JUnit report and the outputs.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{BIN, Test, assert_schema_valid, required};

/// `build -> gate -> cutover -> notify (if: always)`, with `with:` lines for the gate.
fn pipeline(with: &str) -> String {
    format!(
        "version: 1\nname: release\nstages:\n  build:\n    run: echo building\n  gate:\n    needs: [build]\n    uses: approval\n    with:\n      message: ship it?\n{with}  cutover:\n    needs: [gate]\n    run: echo cutting over\n  notify:\n    needs: [cutover]\n    if: always\n    run: echo notify\n"
    )
}

/// The project, run as `alice`; `PORTCULLIS_APPROVE` is set to nothing, so that one in the
/// environment of the tests approves nothing.
fn project(with: &str) -> Test {
    Test::new()
        .pipeline("p", &pipeline(with))
        .env("USER", "alice")
        .env("PORTCULLIS_APPROVE", "")
}

/// The run folder's record of `stage`'s decision.
fn recorded(t: &Test, stage: &str) -> Value {
    let text = std::fs::read_to_string(t.latest_run().join("approvals.json"))
        .expect("approvals.json in the run folder");
    let doc: Value = serde_json::from_str(&text).expect("approvals.json is JSON");
    doc[stage].clone()
}

#[test]
fn off_a_terminal_an_approval_fails_at_once_saying_how_to_approve() {
    let t = project("");
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("`portcullis run --approve gate`")
            && out.stderr.contains("`PORTCULLIS_APPROVE=gate`"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("cutover  skipped: needs `gate`, which failed"),
        "{out:?}"
    );
    assert!(!t.log("cutover").contains("cutting over"));
    // What waits was said in the log, and `if: always` still ran.
    assert!(t.log("gate").contains("1. cutover"), "{}", t.log("gate"));
    assert!(t.log("notify").contains("notify"));
    assert_schema_valid(&t.latest_run().join("junit.xml"));
}

#[test]
fn approve_flag_lets_the_later_stages_run_and_the_decision_is_recorded() {
    let t = project("");
    let out = t.run(&["run", "p", "--approve", "gate", "--junit", "out/junit.xml"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t.log("cutover").contains("cutting over"));
    let record = recorded(&t, "gate");
    assert_eq!(record["decision"], "approved");
    assert_eq!(record["by"], "alice");
    assert_eq!(record["via"], "--approve");
    assert_eq!(record["message"], "ship it?");
    let at = record["at"].as_str().expect("at");
    assert!(at.parse::<jiff::Timestamp>().is_ok(), "not RFC 3339: {at}");
    let junit = t.read("out/junit.xml");
    assert!(
        junit.contains("decision: approved\nby: alice\nvia: --approve\nat: "),
        "{junit}"
    );
    assert_schema_valid(&t.path().join("out/junit.xml"));
    let outputs =
        std::fs::read_to_string(t.latest_run().join("outputs/gate.env")).expect("outputs of gate");
    assert!(outputs.contains("approved-by=alice"), "{outputs}");
    assert!(outputs.contains(&format!("approved-at={at}")), "{outputs}");
}

#[test]
fn the_environment_variable_approves_by_name() {
    let t = project("").env("PORTCULLIS_APPROVE", "other, gate");
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t.log("cutover").contains("cutting over"));
    assert_eq!(recorded(&t, "gate")["via"], "PORTCULLIS_APPROVE");
    // A name that is no approval stage is only a warning: the variable may serve several
    // pipelines.
    assert!(
        out.stderr
            .contains("names `other`, which is no approval stage"),
        "{out:?}"
    );
}

#[test]
fn approve_must_name_an_approval_stage() {
    let t = project("");
    let out = t.run(&["run", "p", "--approve", "nosuch"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("`--approve nosuch`: no stage `nosuch`"),
        "{out:?}"
    );
    let out = t.run(&["run", "p", "--approve", "gat"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("did you mean `gate`?"), "{out:?}");
    let out = t.run(&["run", "p", "--approve", "build"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("is not `uses: approval`"), "{out:?}");
    assert!(!t.path().join(".portcullis/runs").exists(), "nothing ran");
}

#[test]
fn approvers_are_checked_against_who_approves() {
    let t = project("      approvers: [bob]\n");
    let out = t.run(&["run", "p", "--approve", "gate"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("`alice` may not approve `gate`: its approvers are bob"),
        "{out:?}"
    );
    assert!(!t.latest_run().join("approvals.json").exists());
    let t = project("      approvers: [bob]\n").env("USER", "bob");
    assert_eq!(t.run(&["run", "p", "--approve", "gate"]).code, 0);
}

#[test]
fn portcullis_approve_from_another_shell_approves_a_waiting_run() {
    let t = project("      timeout: 10s\n");
    let child = t.spawn(&["run", "p"]);
    t.wait_for(".portcullis/runs/latest/approvals/gate.waiting");
    let out = t.run(&["approve", "gate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("approved `gate`"), "{out:?}");
    let run = child.wait_with_output().expect("run ends");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(t.log("cutover").contains("cutting over"));
    let record = recorded(&t, "gate");
    assert_eq!(record["via"], "portcullis approve");
    assert_eq!(record["by"], "alice");
    assert!(
        !t.latest_run().join("approvals/gate.waiting").exists(),
        "the mark goes when the stage stops waiting"
    );
    // Nothing waits any more.
    let out = t.run(&["approve", "gate"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("not waiting for approval"), "{out:?}");
    let out = t.run(&["approve", "../x"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn portcullis_approve_reject_fails_the_stage() {
    let t = project("      timeout: 10s\n");
    let child = t.spawn(&["run", "p"]);
    t.wait_for(".portcullis/runs/latest/approvals/gate.waiting");
    assert_eq!(t.run(&["approve", "gate", "--reject"]).code, 0);
    let run = child.wait_with_output().expect("run ends");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("rejected by alice (portcullis approve)"),
        "{stderr}"
    );
    assert_eq!(recorded(&t, "gate")["decision"], "rejected");
}

#[test]
fn a_waiting_approval_fails_when_its_timeout_runs_out() {
    let t = project("      timeout: 1s\n");
    let started = std::time::Instant::now();
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(out.stderr.contains("no approval within 1s"), "{out:?}");
    assert!(t.junit().contains("no approval within 1s"), "{}", t.junit());
    assert_schema_valid(&t.latest_run().join("junit.xml"));
}

#[test]
fn plan_and_dry_run_say_what_waits_and_never_ask() {
    let t = project("");
    let out = t.run(&["plan", "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("uses: approval (waits for approval of: cutover, notify (\"ship it?\")"),
        "{out:?}"
    );
    let out = t.run(&["run", "p", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("waits for approval of: cutover, notify"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("[y/N]"), "{out:?}");
}

/// Runs portcullis on a pseudo-terminal, answers the question with `argv[1]` once it is shown,
/// and prints everything the terminal showed, then `EXIT <code>`.
const PTY: &str = r#"
import os, pty, select, sys, time
answer, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out, sent, deadline = b"", False, time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.1)
    if ready:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if not sent and b"[y/N]" in out:
        time.sleep(0.3)
        os.write(fd, answer.encode() + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print("\nEXIT", os.waitstatus_to_exitcode(status))
"#;

/// What the terminal showed and the exit code, or `None` when python3 is absent.
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
fn on_a_terminal(t: &Test, answer: &str) -> Option<(String, i32)> {
    let out = Command::new("python3")
        .args(["-c", PTY, answer, BIN, "run", "p"])
        .current_dir(t.path())
        .env("NO_COLOR", "1")
        .env("PORTCULLIS_APPROVE", "")
        .env("TERM", "xterm")
        .env_remove("GITHUB_ACTIONS")
        .output();
    let out = match out {
        Ok(out) if out.status.success() => out,
        _ if !required("python3") => {
            eprintln!("skipped: python3 is needed to run portcullis on a pseudo-terminal");
            return None;
        }
        Ok(out) => panic!("{}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("python3 is required (PORTCULLIS_REQUIRE) but cannot run: {e}"),
    };
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let code = text
        .rsplit("EXIT ")
        .next()
        .and_then(|c| c.trim().parse().ok())
        .expect("exit code");
    Some((text, code))
}

#[test]
fn on_a_terminal_it_shows_what_waits_and_asks() {
    let t = project("");
    let Some((shown, code)) = on_a_terminal(&t, "y") else {
        return;
    };
    assert_eq!(code, 0, "{shown}");
    // The question stands on lines of its own: the live view cleared its block first, and
    // no progress line is written between the question and the answer.
    let question = shown
        .find("`gate` asks: ship it?\nthese stages wait on `gate`:\n   1. cutover  run: echo cutting over\n   2. notify   run: echo notify (if: always(), runs whatever is decided)\nApprove `gate`? [y/N] y\n");
    assert!(question.is_some(), "{shown}");
    assert!(t.log("cutover").contains("cutting over"));
    let record = recorded(&t, "gate");
    assert_eq!(record["decision"], "approved");
    assert_eq!(record["via"], "terminal");
    assert!(!record["by"].as_str().unwrap_or_default().is_empty());

    let t = project("");
    let Some((shown, code)) = on_a_terminal(&t, "n") else {
        return;
    };
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("failed: rejected by "), "{shown}");
    assert!(!t.log("cutover").contains("cutting over"));
    assert_eq!(recorded(&t, "gate")["decision"], "rejected");
    assert!(t.junit().contains("decision: rejected"), "{}", t.junit());
}

/// Exports `p` for `target`.
fn export(t: &Test, target: &str) -> String {
    let out = t.run(&["export", target, "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
}

#[test]
fn exported_approvals_are_an_environment_on_github_and_manual_on_gitlab() {
    let t = project("      environment: production\n");
    let github = export(&t, "github");
    let job = &github[github.find("\n  gate:\n").expect("gate job")..];
    let job = &job[..job[1..].find("\n  cutover:").expect("next job")];
    assert!(job.contains("    environment: production\n"), "{job}");
    assert!(job.contains("required reviewers"), "{job}");
    assert!(
        job.contains("args: \"--only gate --approve gate\""),
        "{job}"
    );
    std::fs::create_dir_all(t.path().join(".github/workflows")).expect("mkdir");
    std::fs::write(t.path().join(".github/workflows/release.yml"), &github).expect("write");
    crate::export::actionlint(t.path(), &[".github/workflows/release.yml".to_owned()]);

    let gitlab = export(&t, "gitlab");
    let job = &gitlab[gitlab.find("\ngate:\n").expect("gate job")..];
    let job = &job[..job[1..].find("\ncutover:").expect("next job")];
    assert!(
        job.contains("  when: manual\n  allow_failure: false\n"),
        "{job}"
    );
    assert!(job.contains("--only=gate --approve=gate"), "{job}");
    std::fs::write(t.path().join("gitlab.yml"), &gitlab).expect("write");
    if crate::export_engines::engine_schemas_present() {
        let out = Command::new("python3")
            .arg("-c")
            .arg(crate::export_engines::VALIDATE)
            .arg(format!("gitlab={}", t.path().join("gitlab.yml").display()))
            .arg(format!(
                "github={}",
                t.path().join(".github/workflows/release.yml").display()
            ))
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "the schemas reject the exported files:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The job runs the stage as an engine would: approved, without a terminal.
    let out = t.run(&["run", "p", "--only", "gate", "--approve", "gate"]);
    assert_eq!(out.code, 0, "{out:?}");
}

/// A stage of the pipeline writes a decision into the run folder before the approval stage
/// waits: it does not count, and what waits on the approval never runs.
#[test]
fn a_decision_written_ahead_by_a_stage_does_not_approve() {
    let forge = r#"version: 1
name: forge
stages:
  build:
    run: |
      d=".portcullis/runs/$PORTCULLIS_RUN_ID/approvals"
      mkdir -p "$d"
      printf '{"decision":"approved","by":"alice","via":"portcullis approve","at":"2020-01-01T00:00:00Z"}' > "$d/gate"
  gate:
    needs: [build]
    uses: approval
    with: { approvers: [alice] }
  deploy:
    needs: [gate]
    run: touch deployed
"#;
    let t = Test::new()
        .pipeline("forge", forge)
        .env("USER", "mallory")
        .env("PORTCULLIS_APPROVE", "");
    let out = t.run(&["run", "forge"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!t.path().join("deployed").exists(), "{out:?}");
    assert!(
        out.stderr.contains("needs approval and no one was asked"),
        "{out:?}"
    );
}
