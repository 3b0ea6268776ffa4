use serde_json::Value;

use crate::harness::Test;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"))
}

const PIPELINE: &str = r#"version: 1
secrets:
  TOKEN: { env: JSON_TEST_TOKEN }
stages:
  build:
    run: |
      echo "url=https://deploy.example/$TOKEN" >> "$PORTCULLIS_OUTPUT"
      echo building
  flaky:
    needs: [build]
    retries: 1
    run: |
      if [ ! -e tried ]; then touch tried; exit 4; fi
  lint:
    needs: [build]
    allow-failure: true
    run: exit 3
  ship:
    needs: [flaky, lint]
    run: echo shipping
    rollback:
      run: echo undo
  smoke:
    needs: [ship]
    run: echo down; exit 7
  notify:
    needs: [smoke]
    run: echo never
"#;

/// stdout carries only the document; it is the run folder's `summary.json`, says how every
/// stage ended, with masked outputs, and its exit code is the process's.
#[test]
fn run_prints_the_summary_document_and_keeps_it_in_the_run_folder() {
    let t = Test::new()
        .pipeline("p", PIPELINE)
        .env("JSON_TEST_TOKEN", "s3cr3t-token-value");
    let out = t.run(&["run", "p", "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let doc = parse(&out.stdout);
    let file = parse(&std::fs::read_to_string(t.latest_run().join("summary.json")).expect("file"));
    assert_eq!(doc, file, "stdout and summary.json differ");
    assert!(!out.stdout.contains("s3cr3t-token-value"), "{out:?}");
    assert!(
        out.stderr.contains("smoke"),
        "the live log stays on stderr: {out:?}"
    );

    assert_eq!(doc["version"], 1);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["exit_code"], 1);
    let stages = doc["stages"].as_array().expect("stages");
    let stage = |id: &str| {
        stages
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no stage {id}: {doc}"))
    };
    assert_eq!(stage("build")["status"], "passed");
    assert_eq!(
        stage("build")["outputs"]["url"],
        "https://deploy.example/***"
    );
    assert_eq!(stage("flaky")["status"], "passed");
    assert_eq!(stage("flaky")["attempts"], 2);
    assert_eq!(
        stage("flaky")["failed_attempts"][0]["reason"],
        "exit code 4"
    );
    assert_eq!(stage("lint")["status"], "warning");
    assert_eq!(stage("lint")["reason"], "exit code 3");
    assert_eq!(stage("ship")["rollback"]["status"], "passed");
    assert_eq!(stage("smoke")["status"], "failed");
    assert_eq!(stage("smoke")["reason"], "exit code 7");
    let log = stage("smoke")["log"].as_str().expect("log path");
    assert_eq!(std::fs::read_to_string(log).expect("log"), "down\n");
    assert_eq!(stage("notify")["status"], "skipped");
    assert!(stage("notify")["reason"].as_str().is_some(), "{doc}");
    assert_eq!(stage("notify")["attempts"], 0);
    assert_eq!(stage("ship")["needs"], serde_json::json!(["flaky", "lint"]));
    let junit = doc["junit"][0].as_str().expect("junit path");
    assert!(std::path::Path::new(junit).is_file(), "{junit}");
}

/// A passing run: exit 0 in the document; without `--format json` stdout stays empty and the
/// file is still written.
#[test]
fn every_run_leaves_summary_json() {
    let t = Test::new().pipeline("p", "version: 1\nstages:\n  a:\n    run: echo hi\n");
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    let doc = parse(&std::fs::read_to_string(t.latest_run().join("summary.json")).expect("file"));
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["stages"][0]["status"], "passed");
    assert_eq!(doc["pipeline"], "p");
}

/// Diagnostics are in the document, one per mistake, at their line and column, and not on
/// stderr; a valid file is listed with its stage count; exit 2 as without `--format json`.
#[test]
fn validate_reports_every_file_and_every_diagnostic() {
    let t = Test::new()
        .pipeline("good", "version: 1\nstages:\n  a:\n    run: echo a\n")
        .pipeline(
            "bad",
            "version: 1\nstages:\n  a:\n    run: echo a\n    needs: [nope]\n  b:\n    runs: x\n",
        );
    let out = t.run(&["validate", "--format", "json"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        !out.stderr.contains("nope"),
        "diagnostics went to stderr: {out:?}"
    );
    let doc = parse(&out.stdout);
    assert_eq!(doc["valid"], false);
    let files = doc["pipelines"].as_array().expect("pipelines");
    let good = files
        .iter()
        .find(|f| f["file"].as_str().is_some_and(|p| p.ends_with("good.yml")))
        .expect("good listed");
    assert_eq!(good["valid"], true);
    assert_eq!(good["stages"], 1);
    let bad = files
        .iter()
        .find(|f| f["file"].as_str().is_some_and(|p| p.ends_with("bad.yml")))
        .expect("bad listed");
    assert_eq!(bad["valid"], false);
    let errors = bad["errors"].as_array().expect("errors");
    // The unknown need, the misspelt key, and the stage left with nothing to do.
    assert_eq!(errors.len(), 3, "{bad}");
    let needs = errors
        .iter()
        .find(|e| e["message"].as_str().is_some_and(|m| m.contains("nope")))
        .expect("the unknown need");
    assert_eq!(
        (needs["line"].clone(), needs["column"].clone()),
        (5.into(), 13.into())
    );
    let runs = errors
        .iter()
        .find(|e| e["message"].as_str().is_some_and(|m| m.contains("runs")))
        .expect("the unknown key");
    assert_eq!(runs["line"], 7, "{runs}");
    assert!(
        runs["help"].as_str().is_some_and(|h| h.contains("run")),
        "{runs}"
    );

    let out = t.run(&["validate", "good", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(parse(&out.stdout)["valid"], true);
}

/// `plan --format json` lists stages in the order they can start, with needs and levels; `run
/// --dry-run --format json` adds what the selection leaves out, and why.
#[test]
fn plan_and_dry_run_as_json() {
    let t = Test::new().pipeline("p", PIPELINE);
    let out = t.run(&["plan", "p", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = parse(&out.stdout);
    let ids: Vec<&str> = doc["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    let pos = |id: &str| ids.iter().position(|i| *i == id).expect(id);
    assert!(
        pos("build") < pos("flaky") && pos("flaky") < pos("ship") && pos("ship") < pos("smoke")
    );
    let ship = &doc["stages"][pos("ship")];
    assert_eq!(ship["level"], 2);
    assert_eq!(ship["rollback"], true);
    assert_eq!(ship["kind"], "run");
    assert_eq!(doc["stages"][pos("flaky")]["retries"], 1);
    assert_eq!(doc["stages"][pos("lint")]["allow_failure"], true);

    let out = t.run(&[
        "run",
        "p",
        "--dry-run",
        "--only",
        "ship",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = parse(&out.stdout);
    assert_eq!(doc["dry_run"], true);
    for stage in doc["stages"].as_array().expect("stages") {
        let selected = stage["id"] == "ship";
        assert_eq!(stage["selected"], selected, "{stage}");
        assert_eq!(stage["reason"].is_null(), selected, "{stage}");
    }
    assert!(
        !t.path().join(".portcullis").exists(),
        "a dry run ran something"
    );
}

/// Without PostgreSQL: an interrupted backup and a folder that is not one are listed with their
/// state and reason.
#[test]
fn backups_list_as_json_names_each_state() {
    let t = Test::new()
        .file("backups/20260101-000000-aaaa-app.partial/app.dump", "x")
        .file("backups/20260102-000000-bbbb-app/app.dump", "x");
    let out = t.run(&["backups", "list", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = parse(&out.stdout);
    let list = doc["backups"].as_array().expect("backups");
    assert_eq!(list.len(), 2, "{doc}");
    let state = |id: &str| {
        list.iter()
            .find(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {doc}"))
    };
    assert_eq!(state("20260101-000000-aaaa-app")["state"], "incomplete");
    let corrupt = state("20260102-000000-bbbb-app");
    assert_eq!(corrupt["state"], "corrupt");
    assert!(
        corrupt["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{corrupt}"
    );
}

/// As a GitHub Actions step, the workflow commands (masks, groups, annotations) move to stderr
/// so that stdout stays one document; the step's outputs and summary are written as always.
#[test]
fn github_mode_keeps_stdout_for_the_document() {
    let t = Test::new()
        .pipeline("p", PIPELINE)
        .env("JSON_TEST_TOKEN", "s3cr3t-token-value");
    let r = t
        .github(&["run", "p", "--format", "json"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(parse(&stdout)["status"], "failed");
    assert!(
        stderr.contains("::add-mask::s3cr3t-token-value"),
        "{stderr}"
    );
    assert!(stderr.contains("::group::"), "{stderr}");
    assert!(
        t.github_output().contains("status<<"),
        "{}",
        t.github_output()
    );
    assert!(
        t.github_summary().contains("smoke"),
        "{}",
        t.github_summary()
    );
}
