//! The pipeline language: `if:` expressions over the run's context and outputs, matrix stages,
//! required variables, `defaults.workdir`, and the shell's own `${VAR}` left to the shell.

use std::process::Command;

use crate::harness::Test;

/// A pipeline whose deploy runs only from `main`, with a dependent and a notification.
const GATED: &str = r#"version: 1
stages:
  build:
    run: echo "version=1.4.0" >> "$PORTCULLIS_OUTPUT"
  deploy:
    needs: [build]
    if: PORTCULLIS_BRANCH == 'main' && build.version =~ '1.*'
    run: echo deployed > deployed
  migrate:
    needs: [deploy]
    run: echo migrated > migrated
  notify:
    needs: [migrate]
    if: ${{ !failure() && !cancelled() }}
    run: echo "$PORTCULLIS_STATUS" > notified
"#;

#[test]
fn a_false_condition_skips_its_stage_and_what_needs_it_with_the_values_that_made_it_false() {
    let t = Test::new()
        .pipeline("p", GATED)
        .env("PORTCULLIS_BRANCH", "feature/login");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(
            "condition `PORTCULLIS_BRANCH == 'main' && build.version =~ '1.*'` is false: \
             PORTCULLIS_BRANCH = 'feature/login', build.version = '1.4.0'"
        ),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("needs `deploy`, which was skipped"),
        "{r:?}"
    );
    assert!(!t.path().join("deployed").exists());
    assert!(!t.path().join("migrated").exists());
    // `!failure()` runs after a skip, as a notification should.
    assert_eq!(t.read("notified"), "passed\n");
    let junit = t.junit();
    assert!(
        junit.contains("PORTCULLIS_BRANCH = &apos;feature/login&apos;")
            || junit.contains("PORTCULLIS_BRANCH = 'feature/login'"),
        "{junit}"
    );

    let t = Test::new()
        .pipeline("p", GATED)
        .env("PORTCULLIS_BRANCH", "main");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.read("deployed"), "deployed\n");
    assert_eq!(t.read("migrated"), "migrated\n");

    // `plan`, `--dry-run` and `graph` show each condition; one that reads only variables is
    // judged with this run's values (`--var` sets a context variable too).
    let t = Test::new().pipeline("p", GATED).pipeline(
        "q",
        "version: 1\nstages:\n  deploy:\n    if: PORTCULLIS_BRANCH == 'main'\n    run: 'true'\n",
    );
    let r = t.run(&["plan", "p", "--var", "PORTCULLIS_BRANCH=hotfix"]);
    assert!(
        r.stdout
            .contains("if PORTCULLIS_BRANCH == 'main' && build.version =~ '1.*'\n"),
        "{r:?}"
    );
    let r = t.run(&["run", "q", "--dry-run", "--var", "PORTCULLIS_BRANCH=hotfix"]);
    assert!(
        r.stdout
            .contains("if PORTCULLIS_BRANCH == 'main' (false here: PORTCULLIS_BRANCH = 'hotfix')"),
        "{r:?}"
    );
    let r = t.run(&[
        "plan",
        "q",
        "--format",
        "json",
        "--var",
        "PORTCULLIS_BRANCH=main",
    ]);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(plan["stages"][0]["if"], "PORTCULLIS_BRANCH == 'main'");
    assert!(plan["stages"][0]["if_false_here"].is_null(), "{plan}");
    let r = t.run(&["graph", "p"]);
    assert!(
        r.stdout.contains(
            "s1[\"deploy<br/>if PORTCULLIS_BRANCH == 'main' #amp;#amp; build.version =~ '1.*'\"]"
        ),
        "{r:?}"
    );
    let r = t.run(&["graph", "p", "--format", "dot"]);
    assert!(
        r.stdout.contains(
            "\"deploy\" [label=\"deploy\\nif PORTCULLIS_BRANCH == 'main' && build.version =~ '1.*'\"];"
        ),
        "{r:?}"
    );
}

#[test]
fn status_functions_decide_after_a_failure() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  a:
    run: echo "n=3" >> "$PORTCULLIS_OUTPUT"
  broken:
    needs: [a]
    run: exit 1
  on-failure:
    needs: [broken]
    if: failure() && a.n > 2
    run: echo yes > on-failure
  on-success:
    needs: [broken]
    if: success() || a.n == '3'
    run: echo yes > on-success
  not-cancelled:
    needs: [broken]
    if: "!cancelled()"
    run: echo "$PORTCULLIS_STATUS" > not-cancelled
  when-cancelled:
    needs: [broken]
    if: cancelled()
    run: echo yes > when-cancelled
"#,
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(t.read("on-failure"), "yes\n");
    assert_eq!(t.read("not-cancelled"), "failed\n");
    // Without `failure()`, `always()` or `cancelled()`, a condition also needs its needs to
    // have passed: `success() || a.n == '3'` does not run after `broken` failed.
    assert!(!t.path().join("on-success").exists());
    assert!(
        r.stderr.contains("on-success") && r.stderr.contains("needs `broken`, which failed"),
        "{r:?}"
    );
    assert!(!t.path().join("when-cancelled").exists());
    assert!(
        r.stderr
            .contains("condition `cancelled()` is false: cancelled() = false"),
        "{r:?}"
    );
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

const CONTEXT: &str = r#"version: 1
stages:
  show:
    run: echo "branch=$PORTCULLIS_BRANCH tag=${{ PORTCULLIS_TAG }} event=$PORTCULLIS_EVENT commit=${PORTCULLIS_COMMIT:0:7}" > context
"#;

#[test]
fn the_context_comes_from_git_or_from_github_and_gitlab() {
    let t = Test::new().pipeline("p", CONTEXT);
    git(t.path(), &["init", "-q", "-b", "release/2"]);
    git(t.path(), &["add", "."]);
    git(t.path(), &["commit", "-qm", "first"]);
    git(t.path(), &["tag", "v2.0.0"]);
    let head = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "--short=7", "HEAD"])
            .current_dir(t.path())
            .output()
            .expect("git")
            .stdout,
    )
    .expect("utf-8");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        t.read("context"),
        format!(
            "branch=release/2 tag=v2.0.0 event=local commit={}\n",
            head.trim()
        )
    );

    // GitHub: a tag pushed, on a detached checkout.
    let github = t
        .command(&["run", "p"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REF", "refs/tags/v9.1.0")
        .env("GITHUB_HEAD_REF", "")
        .env("GITHUB_SHA", "abcdef0123456789")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_OUTPUT", t.path().join("gh-output"))
        .output()
        .expect("run");
    assert!(github.status.success(), "{github:?}");
    assert_eq!(
        t.read("context"),
        "branch= tag=v9.1.0 event=push commit=abcdef0\n"
    );

    // GitLab: a merge request pipeline.
    let gitlab = t
        .command(&["run", "p"])
        .env("GITLAB_CI", "true")
        .env("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "fix/typo")
        .env("CI_COMMIT_SHA", "1234567890abcdef")
        .env("CI_PIPELINE_SOURCE", "merge_request_event")
        .output()
        .expect("run");
    assert!(gitlab.status.success(), "{gitlab:?}");
    assert_eq!(
        t.read("context"),
        "branch=fix/typo tag= event=pull_request commit=1234567\n"
    );
}

const MATRIX: &str = r#"version: 1
stages:
  prepare:
    run: mkdir -p out
  test:
    needs: [prepare]
    matrix:
      python: ["3.11", "3.12"]
      os: [debian, alpine]
      exclude:
        - { python: "3.11", os: alpine }
      include:
        - { python: "3.13", os: debian, experimental: "yes" }
    run: echo "$MATRIX_EXPERIMENTAL" > "out/${{ matrix.python }}-$MATRIX_OS"
  report:
    needs: [test]
    run: ls out > combinations
"#;

#[test]
fn a_matrix_runs_each_combination_by_name_and_needs_wait_for_all() {
    let t = Test::new().pipeline("p", MATRIX);
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        t.read("combinations"),
        "3.11-debian\n3.12-alpine\n3.12-debian\n3.13-debian\n"
    );
    assert_eq!(t.read("out/3.13-debian"), "yes\n");
    assert_eq!(t.read("out/3.12-alpine"), "\n");
    for name in [
        "test (python=3.11, os=debian)",
        "test (python=3.12, os=debian)",
        "test (python=3.12, os=alpine)",
        "test (python=3.13, os=debian, experimental=yes)",
    ] {
        assert!(r.stderr.contains(&format!("✓ {name}")), "{name}: {r:?}");
        assert!(
            t.junit()
                .contains(&format!("<testcase name=\"{name}\" classname=\"p.test\"")),
            "{name}: {}",
            t.junit()
        );
    }
    crate::harness::assert_schema_valid(&t.latest_run().join("junit.xml"));
    assert!(
        r.stderr.contains("matrix test: 4 combinations, 4 passed\n"),
        "{r:?}"
    );
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.latest_run().join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    let stages = summary["stages"].as_array().expect("stages");
    let in_matrix = stages.iter().filter(|s| s["matrix"] == "test").count();
    assert_eq!(in_matrix, 4, "{summary}");
    // Graphs draw a matrix stage once: a large one would pass Mermaid's 500 edges.
    let graph = t.run(&["graph", "p"]).stdout;
    assert_eq!(graph.matches("-->").count(), 2, "{graph}");
    assert!(graph.contains("s1[\"test\"]"), "{graph}");
    let github = t.github(&["run", "p"]).output().expect("run");
    assert!(github.status.success(), "{github:?}");
    let md = t.github_summary();
    assert!(
        md.contains("s1[\"test (4 combinations)\"]:::passed"),
        "{md}"
    );
    assert_eq!(md.matches(" --> ").count(), 2, "{md}");

    // `--only test` runs every combination; with `PORTCULLIS_MATRIX` (what an exported job
    // sets), only that one, in either of its forms.
    for (selector, expected) in [
        ("python=3.12, os=alpine", "3.12-alpine\n"),
        (
            "{\n  \"python\": \"3.13\",\n  \"os\": \"debian\",\n  \"experimental\": \"yes\"\n}",
            "3.13-debian\n",
        ),
    ] {
        let t = Test::new().pipeline("p", MATRIX).file("out/.keep", "");
        let r = t
            .command(&["run", "p", "--only", "test"])
            .env("PORTCULLIS_MATRIX", selector)
            .output()
            .expect("run");
        assert!(r.status.success(), "{r:?}");
        let ls = Command::new("ls")
            .arg("out")
            .current_dir(t.path())
            .output()
            .expect("ls");
        let listed = String::from_utf8_lossy(&ls.stdout).into_owned();
        assert_eq!(listed, expected, "{selector}");
    }
    let t = Test::new().pipeline("p", MATRIX);
    let r = t
        .command(&["run", "p", "--only", "test"])
        .env("PORTCULLIS_MATRIX", "python=2.7")
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("no combination of the matrix"),
        "{r:?}"
    );
    let r = t.run(&[
        "run",
        "p",
        "--only",
        "test (python=3.12, os=debian)",
        "--dry-run",
    ]);
    assert!(r.stdout.contains("1 of 6 stages would run"), "{r:?}");
}

fn matrix_failing(fail_fast: bool) -> String {
    format!(
        r#"version: 1
stages:
  test:
    matrix:
      n: ["1", "2"]
    fail-fast: {fail_fast}
    run: |
      if [ "${{{{ matrix.n }}}}" = 1 ]; then exit 1; fi
      sleep 2
      echo finished > finished
  after:
    needs: [test]
    run: echo ran > after
"#
    )
}

#[test]
fn fail_fast_cancels_the_other_combinations_and_fail_fast_false_lets_them_finish() {
    let t = Test::new().pipeline("p", &matrix_failing(true));
    let r = t.run(&["run", "p", "-j", "2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!t.path().join("finished").exists(), "{r:?}");
    assert!(r.stderr.contains("test (n=2)"), "{r:?}");
    assert!(
        r.stderr.contains("cancelled") || r.stderr.contains("fail-fast"),
        "{r:?}"
    );

    let t = Test::new().pipeline("p", &matrix_failing(false));
    let r = t.run(&["run", "p", "-j", "2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(t.read("finished"), "finished\n", "{r:?}");
    assert!(!t.path().join("after").exists());
    assert!(
        r.stderr.contains("needs `test (n=1)`, which failed"),
        "{r:?}"
    );

    // One at a time, fail-fast never starts the second combination.
    let t = Test::new().pipeline("p", &matrix_failing(true));
    let r = t.run(&["run", "p", "-j", "1", "--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("not started: a combination of `test` failed (`fail-fast`)"),
        "{r:?}"
    );
}

const REQUIRED: &str = r#"version: 1
env:
  TARGET: { required: true, description: the host to deploy to }
  REGION: { default: eu, description: where }
  URL: "https://${{ TARGET }}/${{ REGION }}"
stages:
  deploy:
    run: echo "$URL" > url
"#;

#[test]
fn a_required_variable_is_demanded_by_run_and_accepted_unset_by_validate() {
    let t = Test::new().pipeline("p", REQUIRED);
    let r = t.run(&["validate", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = t.run(&["plan", "p"]);
    assert!(
        r.stdout.contains(
            "required variable TARGET (the host to deploy to): not set, `run` needs `--var TARGET=VALUE`"
        ),
        "{r:?}"
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("required variable without a value: `TARGET` (the host to deploy to)"),
        "{r:?}"
    );
    assert!(r.stderr.contains("--var TARGET=VALUE"), "{r:?}");
    assert!(!t.path().join(".portcullis/runs").exists(), "nothing ran");

    let r = t.run(&["run", "p", "--var", "TARGET=db.internal"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.read("url"), "https://db.internal/eu\n");
    let t = Test::new()
        .pipeline("p", REQUIRED)
        .env("TARGET", "from-env");
    let r = t.run(&["run", "p", "--var", "REGION=us"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.read("url"), "https://from-env/us\n");
}

#[test]
fn defaults_workdir_applies_to_stages_that_name_none() {
    let t = Test::new()
        .pipeline(
            "p",
            r#"version: 1
defaults:
  workdir: app
stages:
  inside:
    run: pwd > where
  outside:
    workdir: .
    run: pwd > where
"#,
        )
        .file("app/.keep", "");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let root = t.path().canonicalize().expect("path");
    assert_eq!(
        t.read("app/where").trim(),
        root.join("app").display().to_string()
    );
    assert_eq!(t.read("where").trim(), root.display().to_string());
}

#[test]
fn the_shells_own_braces_pass_through_untouched() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
env:
  NAME: portcullis
stages:
  a:
    run: |
      x=abc
      echo "${x:1} ${UNSET_VAR:-fallback} ${#x} ${{ NAME }}" > out
      printf '%s\n' '$${{ NAME }}' >> out
"#,
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.read("out"), "bc fallback 3 portcullis\n${{ NAME }}\n");
}

#[test]
fn export_writes_conditions_and_matrices_in_each_engines_terms() {
    let t = Test::new().pipeline(
        "release",
        &std::fs::read_to_string(
            crate::harness::repo_root().join("fixtures/pipelines/release.yml"),
        )
        .expect("fixture"),
    );
    let r = t.run(&["export", "github", "release"]);
    assert_eq!(r.code, 0, "{r:?}");
    let w = &r.stdout;
    for expected in [
        "    strategy:\n      fail-fast: false\n      matrix:\n        python: [\"3.11\", \"3.12\"]\n        db: [\"postgres-15\", \"postgres-16\"]\n",
        "        include:\n          - { python: \"3.13\", db: \"postgres-16\", experimental: \"yes\" }\n",
        "        exclude:\n          - { python: \"3.11\", db: \"postgres-16\" }\n",
        "PORTCULLIS_MATRIX: \"${{ toJSON(matrix) }}\"",
        "args: \"--only test\"",
        "name: \"portcullis-junit-test-${{ strategy.job-index }}\"",
        "if: \"${{ (github.event_name != 'pull_request' && github.event_name != 'pull_request_target') }}\"",
        "# portcullis checks `CHANNEL != 'frozen'` inside the job",
        "if: \"${{ !cancelled() }}\"",
    ] {
        assert!(w.contains(expected), "`{expected}` not in:\n{w}");
    }
    assert_eq!(
        w.matches("\n  test:\n").count(),
        1,
        "one job for the matrix: {w}"
    );
    assert!(
        w.contains("(github.head_ref || (startsWith(github.ref, 'refs/heads/') && github.ref_name || '')) == 'main' || startsWith((startsWith(github.ref, 'refs/tags/') && github.ref_name || ''), 'v')"),
        "{w}"
    );

    let r = t.run(&["export", "gitlab", "release"]);
    assert_eq!(r.code, 0, "{r:?}");
    let g = &r.stdout;
    for expected in [
        "  parallel:\n    matrix:\n      - PORTCULLIS_MATRIX: \"python=3.11, db=postgres-15\"\n      - PORTCULLIS_MATRIX: \"python=3.12, db=postgres-15\"\n      - PORTCULLIS_MATRIX: \"python=3.12, db=postgres-16\"\n      - PORTCULLIS_MATRIX: \"python=3.13, db=postgres-16, experimental=yes\"\n",
        "--only=test ",
        // The deploy's rule carries the approval's: GitLab leaves both out together.
        "    - if: \"(($CI_COMMIT_BRANCH == \\\"main\\\" || $CI_MERGE_REQUEST_SOURCE_BRANCH_NAME == \\\"main\\\") || $CI_COMMIT_TAG =~ /^v.*$/) && ($CI_PIPELINE_SOURCE != \\\"merge_request_event\\\" && $CI_PIPELINE_SOURCE != \\\"external_pull_request_event\\\")\"\n      when: on_success\n",
        "{job: approve, optional: true}, {job: deploy, optional: true}]\n  rules:\n    - when: always\n",
        // The approval waits for a person, under the same rule.
        "      when: manual\n      allow_failure: false\n  environment: production\n",
    ] {
        assert!(g.contains(expected), "`{expected}` not in:\n{g}");
    }
}

#[test]
fn a_condition_over_a_secret_shows_it_masked() {
    let t = Test::new()
        .pipeline(
            "p",
            r#"version: 1
secrets:
  TOKEN: { env: DEPLOY_TOKEN }
stages:
  a:
    if: TOKEN == 'other' || false
    run: echo ran > ran
"#,
        )
        .env("DEPLOY_TOKEN", "s3cr3t-token-value");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("condition `TOKEN == 'other' || false` is false: TOKEN = '***'"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("s3cr3t-token-value"), "{r:?}");
    assert!(!t.junit().contains("s3cr3t-token-value"));
    assert!(!t.path().join("ran").exists());
}

#[test]
fn a_required_variable_is_demanded_only_where_a_stage_reads_it() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
env:
  TARGET: { required: true, description: the host }
stages:
  lint:
    run: echo linted > linted
  deploy:
    needs: [lint]
    run: echo "to $TARGET" > deployed
"#,
    );
    // An exported job runs one stage: `lint` does not read `TARGET`.
    let r = t.run(&["run", "p", "--only", "lint"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.read("linted"), "linted\n");
    let r = t.run(&["run", "p", "--only", "deploy"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("`TARGET` (the host)"), "{r:?}");
    // The exports say where it comes from; GitHub maps it into the job that reads it.
    let r = t.run(&["export", "github", "p"]);
    assert!(
        r.stdout.contains("#   `TARGET` (the host): deploy\n"),
        "{r:?}"
    );
    assert_eq!(
        r.stdout.matches("TARGET: \"${{ vars.TARGET }}\"").count(),
        1,
        "{r:?}"
    );
    let r = t.run(&["export", "gitlab", "p"]);
    assert!(
        r.stdout.contains("#   `TARGET` (the host): deploy\n"),
        "{r:?}"
    );
}

/// An exported matrix job whose combination was skipped inside says so under the matrix
/// stage's name, and the job that needs it skips its stage.
#[test]
fn a_skipped_matrix_combination_is_handed_on_under_its_matrix_name() {
    let pipeline = r#"version: 1
env:
  DEPLOY: "no"
stages:
  test:
    matrix: { py: ["3.11", "3.12"] }
    if: DEPLOY == 'yes'
    run: echo tested
  package:
    needs: [test]
    run: echo packaged > packaged
"#;
    let t = Test::new().pipeline("p", pipeline);
    let r = t
        .command(&["run", "p", "--only", "test", "--output-env", "test.env"])
        .env("PORTCULLIS_MATRIX", "py=3.11")
        .output()
        .expect("run");
    assert!(r.status.success(), "{r:?}");
    assert_eq!(
        t.read("test.env"),
        "PORTCULLIS_OUTPUT_test__portcullis_skipped=true\n"
    );
    let r = t
        .command(&["run", "p", "--only", "package"])
        .env("PORTCULLIS_OUTPUT_test__portcullis_skipped", "true")
        .output()
        .expect("run");
    assert!(r.status.success(), "{r:?}");
    assert!(!t.path().join("packaged").exists());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("needs `test (py=3.11)`, which was skipped"),
        "{r:?}"
    );
    // Without the hand-off, the need counts as done elsewhere.
    let r = t.run(&["run", "p", "--only", "package"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.read("packaged"), "packaged\n");
}

/// `paths:` with `--base`: from a project in a subfolder of its repository, for a file whose
/// name git would quote, and only what the branch changed since it left the base.
#[test]
fn paths_see_the_branchs_changes_from_a_subfolder_and_with_any_file_name() {
    let t = Test::new()
        .file(
            "svc/pipelines/p.yml",
            "version: 1\nstages:\n  build:\n    paths: [\"src/**\"]\n    run: touch built\n  docs:\n    paths: [\"docs/**\"]\n    run: touch documented\n  other:\n    paths: [\"other.txt\"]\n    run: touch othered\n",
        )
        .file("svc/src/x.txt", "1\n")
        .file("svc/docs/café.md", "1\n")
        .file("svc/other.txt", "1\n");
    git(t.path(), &["init", "-q", "-b", "main"]);
    git(t.path(), &["add", "."]);
    git(t.path(), &["commit", "-qm", "start"]);
    git(t.path(), &["checkout", "-q", "-b", "feature"]);
    std::fs::write(t.path().join("svc/src/x.txt"), "2\n").expect("write");
    std::fs::write(t.path().join("svc/docs/café.md"), "2\n").expect("write");
    git(t.path(), &["commit", "-qam", "feature"]);
    // `main` moves on after the branch left it: not this branch's change.
    git(t.path(), &["checkout", "-q", "main"]);
    std::fs::write(t.path().join("svc/other.txt"), "2\n").expect("write");
    git(t.path(), &["commit", "-qam", "main moves"]);
    git(t.path(), &["checkout", "-q", "feature"]);
    let out = t
        .command(&["run", "p", "--base", "main"])
        .current_dir(t.path().join("svc"))
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(t.path().join("svc/built").exists(), "{out:?}");
    assert!(t.path().join("svc/documented").exists(), "{out:?}");
    assert!(!t.path().join("svc/othered").exists(), "{out:?}");
}

/// Combinations whose names differ only by what a file name cannot hold, or are very long,
/// each keep their own script and log.
#[test]
fn each_combination_has_its_own_files_whatever_its_values() {
    let long = "x".repeat(300);
    let t = Test::new().pipeline(
        "p",
        &format!(
            "version: 1\nstages:\n  test:\n    matrix:\n      v: [\"a/b\", \"a_b\", \"{long}\"]\n    fail-fast: false\n    run: |\n      echo \"I am ${{{{ matrix.v }}}}\"\n      test \"${{{{ matrix.v }}}}\" = \"$MATRIX_V\"\n"
        ),
    );
    let r = t.run(&["run", "p", "-j", "3"]);
    assert_eq!(r.code, 0, "{r:?}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.latest_run().join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    let mut logs = Vec::new();
    for stage in summary["stages"].as_array().expect("stages") {
        let log = stage["log"].as_str().expect("a log").to_owned();
        let text = std::fs::read_to_string(
            t.latest_run()
                .join(std::path::Path::new(&log).file_name().expect("a file name")),
        )
        .expect("the log");
        let id = stage["id"].as_str().expect("id");
        let value = id
            .strip_prefix("test (v=")
            .and_then(|v| v.strip_suffix(')'))
            .expect("a combination");
        assert_eq!(text, format!("I am {value}\n"), "{id}");
        logs.push(log);
    }
    logs.sort();
    logs.dedup();
    assert_eq!(logs.len(), 3, "{logs:?}");
}

/// A deploy gated to `main` that reads a required variable does not demand it on a branch
/// where it will not run (a pre-push hook on a feature branch); on `main` it does.
#[test]
fn a_required_variable_of_a_stage_its_condition_skips_is_not_demanded() {
    let pipeline = r#"version: 1
env:
  TARGET: { required: true, description: the production host }
stages:
  lint:
    run: touch linted
  deploy:
    needs: [lint]
    if: PORTCULLIS_BRANCH == 'main'
    run: echo "to ${{ TARGET }}"
  announce:
    needs: [deploy]
    run: echo announced
  notify:
    needs: [announce]
    if: always
    run: echo notified
"#;
    let t = Test::new()
        .pipeline("p", pipeline)
        .env("PORTCULLIS_BRANCH", "feature/x");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(t.path().join("linted").exists());
    let t = Test::new()
        .pipeline("p", pipeline)
        .env("PORTCULLIS_BRANCH", "main");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("`TARGET` (the production host)"), "{r:?}");
}

/// A matrix combination whose value holds `/` rolls back like any other.
#[test]
fn a_matrix_combination_with_a_slash_rolls_back() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  deploy:
    matrix: { region: ["eu/west", "us_east"] }
    run: echo deployed
    rollback: echo "rolled back $MATRIX_REGION" >> rolled
  smoke:
    needs: [deploy]
    run: exit 1
"#,
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 1, "{r:?}");
    let rolled = t.read("rolled");
    assert!(rolled.contains("rolled back eu/west\n"), "{rolled}\n{r:?}");
    assert!(rolled.contains("rolled back us_east\n"), "{rolled}");
    assert!(!r.stderr.contains("rollback failed"), "{r:?}");
}
