use crate::harness::{Test, assert_schema_valid, http_server};

/// A loopback HTTP server answering `200` with `body` to at most `limit` requests.
fn serve(body: &'static str, limit: usize) -> u16 {
    http_server(limit, move || {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    })
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// `contains:` expands like every other `with:` value: the body holds `v2`, the pipeline says
/// `${{ GIT_SHA }}`, and the stage passes at the first poll; `--var` changes what it looks for.
#[test]
fn http_contains_expands_variables() {
    let port = serve("release v2 is live\n", 20);
    let t = Test::new().pipeline(
        "p",
        &format!(
            r#"version: 1
env: {{ GIT_SHA: v2 }}
stages:
  smoke:
    uses: http
    with: {{ url: "http://127.0.0.1:{port}/", contains: "${{{{ GIT_SHA }}}}", within: 2s, interval: 100ms }}
"#
        ),
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = t.run(&["run", "p", "--var", "GIT_SHA=v3"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("does not contain `v3`"),
        "the failure names the expanded text: {r:?}"
    );
    // One line per distinct answer, however many polls gave it.
    let log = t.log("smoke");
    assert_eq!(count(&log, "does not contain `v3`\n"), 1, "{log}");
    assert!(log.contains("more time"), "{log}");
}

/// An undefined name anywhere in `with:` is a validation error at its line and column, in
/// fields the kind reads as numbers or names too.
#[test]
fn undefined_names_in_with_are_errors_at_their_position() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  smoke:
    uses: http
    with: { url: "http://127.0.0.1:9/", contains: "${{ NOT_DEFINED_ANYWHERE }}" }
  cut:
    uses: blue-green
    with:
      service: web
      image: app
      port: ${{ NO_PORT }}
      switch: { nginx: { upstream-file: /tmp/u.conf } }
"#,
    );
    let r = t.run(&["validate", "p"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("pipelines/p.yml:5:52"), "{r:?}");
    assert!(
        r.stderr
            .contains("`${{ NOT_DEFINED_ANYWHERE }}` is not defined"),
        "{r:?}"
    );
    assert!(r.stderr.contains("pipelines/p.yml:11:13"), "{r:?}");
    assert!(
        r.stderr.contains("`${{ NO_PORT }}` is not defined"),
        "{r:?}"
    );
    assert!(r.stderr.contains("2 errors"), "{r:?}");
}

/// Every blue-green field takes variables; a value that is wrong once expanded is an error at
/// the field, naming what it read; a key cannot hold a variable.
#[test]
fn blue_green_fields_take_variables_and_are_checked_expanded() {
    let pipeline = r#"version: 1
env:
  SERVICE: web
  NETWORK: appnet
  EDGE: edge
  UPSTREAM: /tmp/web-upstream.conf
stages:
  cut:
    uses: blue-green
    with:
      service: ${{ SERVICE }}
      network: ${{ NETWORK }}
      image: "app:${{ SERVICE }}"
      port: "${{ PORT }}"
      switch: { nginx: { upstream-file: "${{ UPSTREAM }}", upstream: "${{ SERVICE }}", container: "${{ EDGE }}" } }
"#;
    let t = Test::new().pipeline("p", pipeline);
    let r = t.run(&["validate", "p", "--var", "PORT=3001"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = t.run(&["run", "p", "--dry-run", "--var", "PORT=3001"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("cut `web` over to app:web"),
        "dry run shows expanded values: {r:?}"
    );
    let r = t.run(&[
        "validate",
        "p",
        "--var",
        "PORT=3001",
        "--var",
        "SERVICE=not a name",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("pipelines/p.yml:11:16"), "{r:?}");
    assert!(
        r.stderr.contains("reads `not a name` once expanded"),
        "{r:?}"
    );
    let r = t.run(&["validate", "p", "--var", "PORT=70000"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("`port` is out of range"), "{r:?}");
    assert!(r.stderr.contains("reads `70000` once expanded"), "{r:?}");

    let t = Test::new().pipeline(
        "k",
        "version: 1\nenv: { P: \"3001\" }\nstages:\n  law:\n    uses: ports\n    with: { allow: { \"${{ P }}\": web } }\n",
    );
    let r = t.run(&["validate", "k"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("a key in `with:` cannot hold `${{ ... }}`"),
        "{r:?}"
    );
}

/// `plan` and `--dry-run` show built-in stages with their values expanded; secrets read `***`;
/// outputs of stages not yet run stay as written.
#[test]
fn plan_and_dry_run_show_expanded_values_with_secrets_masked() {
    let t = Test::new()
        .pipeline(
            "p",
            r#"version: 1
env: { BACKUP_DIR: backups/nightly }
secrets: { DATABASE_URL: { env: DB_URL_FOR_TEST } }
stages:
  backup:
    uses: pg-dump
    with: { url: "${{ DATABASE_URL }}", dir: "${{ BACKUP_DIR }}" }
  check:
    needs: [backup]
    uses: postgres-check
    with:
      url: "${{ backup.rehearsal-url }}"
      checks: [{ sql: "select 1", expect: { value: 1 } }]
"#,
        )
        .env("DB_URL_FOR_TEST", "postgresql://app:hunter2@db/prod");
    for args in [&["plan", "p"][..], &["run", "p", "--dry-run"][..]] {
        let r = t.run(args);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.contains("back up *** into backups/nightly"),
            "{r:?}"
        );
        assert!(
            r.stdout.contains("1 check on ${{ backup.rehearsal-url }}"),
            "{r:?}"
        );
        assert!(!r.stdout.contains("hunter2"), "{r:?}");
        assert!(!r.stdout.contains("${{ BACKUP_DIR }}"), "{r:?}");
    }
}

/// A rollback is one JUnit case, named after the stage; no skipped case for a stage that does
/// not exist; a cancelled stage's reason is said once.
#[test]
fn each_rollback_is_one_case_and_reasons_are_said_once() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  deploy:
    run: echo deployed
    rollback: echo switched back
  slow:
    run: sleep 5
  smoke:
    needs: [deploy]
    run: exit 1
"#,
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 1, "{r:?}");
    let junit = t.junit();
    assert_schema_valid(&t.latest_run().join("junit.xml"));
    assert_eq!(count(&junit, "<testcase "), 4, "{junit}");
    assert_eq!(
        count(&junit, r#"<testcase name="rollback: deploy""#),
        1,
        "{junit}"
    );
    assert!(!junit.contains("deploy.rollback"), "{junit}");
    assert!(!junit.contains("not run"), "{junit}");
    assert!(
        junit.contains(
            r#"<skipped message="cancelled: `smoke` failed">cancelled: `smoke` failed</skipped>"#
        ),
        "{junit}"
    );
    assert!(!r.stderr.contains("cancelled: cancelled"), "{r:?}");
    assert!(r.stderr.contains("cancelled: `smoke` failed"), "{r:?}");
}

/// `junit:` globs resolve from the project root whatever the stage's `workdir`; a glob that
/// matches nothing is a warning on the terminal, in its summary, in the JUnit output of the
/// stage and as a GitHub annotation.
#[test]
fn junit_globs_resolve_from_the_root_and_an_empty_glob_warns() {
    let suite =
        r#"<testsuite name="py" tests="1"><testcase name="test_one" classname="t"/></testsuite>"#;
    let t = Test::new().file("api/.keep", "").pipeline(
        "p",
        &format!(
            r#"version: 1
stages:
  test:
    workdir: api
    run: mkdir -p ../reports && echo '{suite}' > ../reports/pytest.xml
    junit: [reports/*.xml, api/missing-*.xml]
"#
        ),
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let junit = t.junit();
    assert!(junit.contains(r#"<testcase name="test_one""#), "{junit}");
    let warning = "`junit: api/missing-*.xml` matched no file";
    assert_eq!(
        count(&r.stderr, warning),
        2,
        "result line and summary: {r:?}"
    );
    assert!(junit.contains(warning), "{junit}");

    let r = t.github(&["run", "p"]).output().expect("run");
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("::warning file=pipelines/p.yml,line=3"),
        "{stdout}"
    );
    assert!(stdout.contains("matched no file"), "{stdout}");
    let md = t.github_summary();
    assert!(md.contains("matched no file"), "{md}");
}

/// A stage's `name:` is how the terminal, JUnit and GitHub name it.
#[test]
fn stage_names_show_in_every_report() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  lint:
    name: Lint the front end
    run: echo linted
  fail:
    name: Unit tests
    needs: [lint]
    run: exit 3
"#,
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("✓ Lint the front end"), "{r:?}");
    assert!(r.stderr.contains("✗ Unit tests"), "{r:?}");
    let junit = t.junit();
    assert!(
        junit.contains(r#"<testcase name="Lint the front end""#),
        "{junit}"
    );
    assert!(junit.contains(r#"<testcase name="Unit tests""#), "{junit}");
    let r = t.github(&["run", "p"]).output().expect("run");
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("stage `Unit tests` failed"), "{stdout}");
}

/// `--junit` creates the folders it names; a report that cannot be written fails the run
/// (exit 1, with the reason), and so does `$GITHUB_OUTPUT`.
#[test]
fn reports_the_user_asked_for_are_written_or_the_run_fails() {
    let t = Test::new()
        .file("taken/.keep", "")
        .pipeline("p", "version: 1\nstages:\n  a:\n    run: 'true'\n");
    let r = t.run(&["run", "p", "--junit", "reports/ci/x.xml"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_schema_valid(&t.path().join("reports/ci/x.xml"));

    let r = t.run(&["run", "p", "--junit", "taken"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("cannot write the JUnit report `taken`"),
        "{r:?}"
    );

    let output = t.path().join("no-such-folder/output");
    let r = t
        .github(&["run", "p"])
        .env("GITHUB_OUTPUT", &output)
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("cannot write `$GITHUB_OUTPUT`"),
        "{r:?}"
    );
}

/// A built-in kind's outputs land in the run folder like a script's, and later stages read
/// them.
#[test]
fn builtin_outputs_are_written_to_the_run_folder() {
    let port = serve("ok\n", 20);
    let t = Test::new().pipeline(
        "p",
        &format!(
            r#"version: 1
stages:
  smoke:
    uses: http
    with: {{ url: "http://127.0.0.1:{port}/" }}
  script:
    run: echo "built=yes" >> "$PORTCULLIS_OUTPUT"
"#
        ),
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let outputs = t.latest_run().join("outputs");
    assert_eq!(
        std::fs::read_to_string(outputs.join("smoke.env")).expect("smoke.env"),
        "statuses=200\n"
    );
    assert_eq!(
        std::fs::read_to_string(outputs.join("script.env")).expect("script.env"),
        "built=yes\n"
    );
}

/// A secret in a kind's failure message and in a retried attempt's reason is masked in every
/// report, through the one masking point.
#[test]
fn secrets_in_reasons_are_masked_once_everywhere() {
    let t = Test::new()
        .pipeline(
            "p",
            r#"version: 1
secrets: { TOKEN: { env: TOKEN_FOR_TEST } }
stages:
  smoke:
    uses: http
    retries: { count: 1, backoff: 10ms }
    with: { url: "http://127.0.0.1:9/${{ TOKEN }}", within: 300ms, interval: 100ms }
"#,
        )
        .env("TOKEN_FOR_TEST", "s3cr3t-t0ken");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.contains("s3cr3t-t0ken"), "{r:?}");
    assert!(r.stderr.contains("http://127.0.0.1:9/***"), "{r:?}");
    let junit = t.junit();
    assert!(!junit.contains("s3cr3t-t0ken"), "{junit}");
    assert!(
        junit.contains("attempt 1: GET http://127.0.0.1:9/***"),
        "{junit}"
    );
}

/// A run that passed with an allowed failure or a warning says so in the job summary's
/// heading, instead of the plain pass of a clean run.
#[test]
fn summary_heading_says_a_pass_had_caveats() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  flaky:\n    allow-failure: true\n    run: exit 1\n  unit:\n    run: 'true'\n    junit: [reports/*.xml]\n",
    );
    let r = t.github(&["run", "p"]).output().expect("run");
    assert_eq!(r.status.code(), Some(0));
    let md = t.github_summary();
    assert!(
        md.starts_with("## ⚠️ portcullis: `p` passed with 1 allowed failure and 1 warning in "),
        "{md}"
    );
    let clean = Test::new().pipeline("q", "version: 1\nstages:\n  a:\n    run: 'true'\n");
    clean.github(&["run", "q"]).output().expect("run");
    let md = clean.github_summary();
    assert!(md.starts_with("## ✅ portcullis: `q` passed in "), "{md}");
}
