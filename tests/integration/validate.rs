use crate::harness::Test;

/// One file with one of each mistake: all are reported at once, each at its own line and
/// column, with a help line, and nothing runs.
#[test]
fn every_error_of_a_file_at_once() {
    let t = Test::new().pipeline(
        "bad",
        r#"version: 1
name: bad
env:
  REGION: eu
stages:
  lint:
    run: echo lint > ran-lint
    tiemout: 5m
  test:
    needs: [lnit]
    run: echo ${{ REGOIN }}
    timeout: ten minutes
  build:
    needs: [deploy]
    run: make
    retries: many
  deploy:
    needs: [build]
    run: ./deploy.sh
    uses: blue-green
  report:
    needs: [lint]
    run: echo ${{ build.version }}
"#,
    );
    let out = t.run(&["validate", "bad"]);
    assert_eq!(out.code, 2, "{out:?}");
    let err = &out.stderr;
    let expect = [
        (
            "unknown key `tiemout` in stage `lint`",
            "bad.yml:8:5",
            "did you mean `timeout`?",
        ),
        (
            "stage `test` needs `lnit`, which does not exist",
            "bad.yml:10:13",
            "did you mean `lint`?",
        ),
        (
            "`${{ REGOIN }}` is not defined",
            "bad.yml:11:15",
            "did you mean `REGION`?",
        ),
        (
            "`timeout` is not a valid duration",
            "bad.yml:12:14",
            "write a number and a unit",
        ),
        (
            "`retries` must be a whole number",
            "bad.yml:16:14",
            "write `retries` as a whole number",
        ),
        (
            "stage `deploy` has both `run` and `uses`",
            "bad.yml:20:5",
            "a stage does one thing",
        ),
        (
            "`${{ build.version }}` reads an output of `build`, which is not among this stage's needs",
            "bad.yml:23:15",
            "add `build` to `needs:`",
        ),
    ];
    for (message, location, help) in expect {
        assert!(err.contains(message), "missing `{message}` in:\n{err}");
        assert!(
            err.contains(location),
            "missing location `{location}` for `{message}` in:\n{err}"
        );
        assert!(err.contains(help), "missing help `{help}` in:\n{err}");
    }
    assert!(
        err.contains("the stages form a cycle: build -> deploy -> build"),
        "{err}"
    );
    assert!(
        err.contains("8 errors in `pipelines/bad.yml`; nothing was run"),
        "{err}"
    );
    assert!(!t.path().join("ran-lint").exists());
    assert!(
        !t.path().join(".portcullis").exists(),
        "validation must not create a run"
    );

    let run = t.run(&["run", "bad"]);
    assert_eq!(run.code, 2);
    assert!(
        !t.path().join("ran-lint").exists(),
        "`run` must validate before running anything"
    );
}

#[test]
fn a_cycle_is_named_whole_with_each_edge_labelled() {
    let t = Test::new().pipeline(
        "cycle",
        "version: 1\nstages:\n  a:\n    needs: [c]\n    run: 'true'\n  b:\n    needs: [a]\n    run: 'true'\n  c:\n    needs: [b]\n    run: 'true'\n  d:\n    run: 'true'\n",
    );
    let out = t.run(&["validate", "cycle"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("the stages form a cycle: a -> c -> b -> a"),
        "{}",
        out.stderr
    );
    for label in ["`a` needs `c`", "`c` needs `b`", "`b` needs `a`"] {
        assert!(
            out.stderr.contains(label),
            "missing label {label}:\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("cycle.yml:4:13"), "{}", out.stderr);
}

#[test]
fn types_durations_and_structure() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "version: 1\nstages:\n  a:\n    run: x\n    needs: lint\n",
            "needs `lint`, which does not exist",
            "5:12",
        ),
        (
            "version: 1\nstages:\n  a:\n    command: make test\n",
            "`command` must be a list",
            "4:14",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n    timeout: 90\n",
            "has no unit",
            "5:14",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n    if: sometimes\n",
            "`sometimes` is not defined",
            "5:9",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n    allow-failure: yes\n",
            "must be `true` or `false`",
            "5:20",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n  a:\n    run: y\n",
            "`a` is set twice in `stages`",
            "5:3",
        ),
        (
            "version: 2\nstages:\n  a:\n    run: x\n",
            "pipeline version 2 is not supported",
            "1:10",
        ),
        (
            "stages:\n  a:\n    run: x\n",
            "the pipeline has no `version`",
            "1:1",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: portz\n",
            "unknown stage kind `portz`",
            "4:11",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: pg-dump\n",
            "`pg-dump` needs `url`",
            "4:11",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: pg-dump\n    with: { url: x, dir: b, keep-weekly: 0 }\n",
            "`keep-weekly` is out of range",
            "5:42",
        ),
        (
            "version: 1\nstages:\n  a:\n    name: x\n",
            "stage `a` has nothing to do",
            "3:3",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: [x\n",
            "invalid YAML",
            "5:1",
        ),
        (
            "version: 1\nsecrets:\n  T: { env: A, file: b }\nstages:\n  a:\n    run: x\n",
            "must name exactly one source",
            "3:6",
        ),
        (
            "version: 1\nenv:\n  U: ${{ a.b }}\nstages:\n  a:\n    run: x\n",
            "where no stage has run yet",
            "3:6",
        ),
        (
            "version: 1\nstages:\n  a.b:\n    run: x\n",
            "is not a valid stage name",
            "3:3",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: echo ${{ HOME }}\n",
            "the shell's own variables (`$NAME`, `${NAME}`) are left to the shell",
            "4:15",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: pg-dump\n    with:\n      url: x\n      dir: b\n      offsite: { url: https://b/p, recipients: [age1x] }\n",
            "is not an `s3://bucket/prefix` URL",
            "8:23",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: pg-dump\n    with:\n      url: x\n      dir: b\n      offsite: { url: s3://b/p, recipients: [age1x] }\n",
            "`age1x` is not an age recipient",
            "8:46",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: pg-dump\n    with:\n      url: x\n      dir: b\n      offsite: { url: s3://b/p }\n",
            "`offsite` needs `recipients`",
            "8:16",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: backup-drill\n    with: { url: x, from: remote, offsite: { url: s3://b/p } }\n",
            "`from: remote` needs `identity`",
            "5:11",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: backup-drill\n    with: { url: x, dir: b, rto: soon }\n",
            "`rto` is not a valid duration",
            "5:34",
        ),
        (
            "version: 1\nmetrics: [a]\nstages:\n  a:\n    run: x\n",
            "`metrics` must be a string",
            "2:10",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n    if: PORTCULLIS_BRANCH = 'main'\n",
            "`=` is not an operator here",
            "5:27",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n    if: DEPLOY == 'x'\n",
            "`DEPLOY` is not defined",
            "5:9",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n    if: sucess()\n",
            "unknown function `sucess`",
            "5:9",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n  b:\n    run: x\n    if: a.out == '1'\n",
            "`a.out` reads an output of `a`, which is not among this stage's needs",
            "7:9",
        ),
        (
            "version: 1\nstages:\n  t:\n    run: x\n    matrix: { python: [] }\n",
            "matrix key `python` has no values",
            "5:23",
        ),
        (
            "version: 1\nstages:\n  t:\n    run: x\n    matrix:\n      python: ['3.11']\n      exclude:\n        - { pyton: '3.11' }\n",
            "`exclude` names `pyton`, which is not a key of the matrix",
            "8:11",
        ),
        (
            "version: 1\nstages:\n  t:\n    matrix: { python: ['3.11'] }\n    run: echo ${{ matrix.pyton }}\n",
            "`${{ matrix.pyton }}` is not a key of the matrix",
            "5:15",
        ),
        (
            "version: 1\nstages:\n  t:\n    run: x\n    fail-fast: false\n",
            "`fail-fast` is only for a stage with a `matrix`",
            "5:5",
        ),
        (
            "version: 1\nenv:\n  T: { required: true, default: x }\nstages:\n  a:\n    run: x\n",
            "variable `T` is required and has a default",
            "3:24",
        ),
        (
            "version: 1\nenv:\n  T: { description: x }\nstages:\n  a:\n    run: x\n",
            "variable `T` has no value",
            "3:6",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: x\n    env: { T: { required: true } }\n",
            "`T` must be a value here",
            "5:15",
        ),
        (
            "version: 1\nstages:\n  t:\n    matrix: { n: ['1'] }\n    run: x\n  u:\n    needs: [t]\n    run: echo ${{ t.k }}\n",
            "`${{ t.k }}` reads an output of `t`, which runs once per matrix combination",
            "8:15",
        ),
        (
            "version: 1\nstages:\n  matrix:\n    run: x\n",
            "`matrix` cannot name a stage",
            "3:3",
        ),
        (
            "version: 1\ndefaults:\n  workdir: ${{ NOPE }}\nstages:\n  a:\n    run: x\n",
            "`${{ NOPE }}` is not defined",
            "3:12",
        ),
        (
            "version: 1\nstages:\n  a:\n    run: echo ${{ X\n",
            "`${{` is not closed by `}}`",
            "4:15",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: approval\n    with: { message: go, timout: 10s }\n",
            "unknown key `timout` in `with` of `approval`",
            "5:26",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: approval\n    with: { timeout: soon }\n",
            "`timeout` is not a valid duration",
            "5:22",
        ),
        (
            "version: 1\nstages:\n  a:\n    uses: approval\n    with:\n      approvers: 3\n",
            "`approvers` must be a list of user names",
            "6:18",
        ),
        (
            "version: 1\nstages:\n  db-check:\n    run: x\n  db_check:\n    run: x\n",
            "`db_check` and `db-check` differ only by `-` and `_`",
            "5:3",
        ),
        (
            "version: 1\nstages:\n  t:\n    matrix: { node-version: ['18'], node_version: ['20'] }\n    run: x\n",
            "matrix keys `node-version` and `node_version` are both `MATRIX_NODE_VERSION`",
            "4:37",
        ),
        ("", "the pipeline file is empty", "1:1"),
    ];
    for (yaml, message, location) in cases {
        let t = Test::new().pipeline("p", yaml);
        let out = t.run(&["validate", "p"]);
        assert_eq!(out.code, 2, "{yaml}\n{out:?}");
        assert!(
            out.stderr.contains(message),
            "`{message}` not in:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("p.yml:{location}")),
            "location {location} not in:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("help:"),
            "no help line:\n{}",
            out.stderr
        );
    }
}

#[test]
fn valid_pipelines_and_missing_files() {
    let t = Test::new()
        .pipeline("ok", "version: 1\nenv:\n  A: '1'\nstages:\n  a:\n    run: echo ${HOME} ${{ A }}\n  b:\n    needs: [a]\n    command: [echo, '${{ a.x }}']\n")
        .pipeline("ci", "version: 1\nstages:\n  only:\n    run: 'true'\n");
    let out = t.run(&["validate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("pipelines/ok.yml: valid, 2 stages"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("pipelines/ci.yml: valid, 1 stages"),
        "{out:?}"
    );

    let missing = t.run(&["validate", "nope"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("cannot read pipeline `pipelines/nope.yml`"),
        "{missing:?}"
    );
    assert!(
        missing.stderr.contains("the pipelines here are: ci, ok"),
        "{missing:?}"
    );

    let bad_var = t.run(&["run", "ok", "--var", "no-equals"]);
    assert_eq!(bad_var.code, 2);
    assert!(bad_var.stderr.contains("is not `KEY=VALUE`"), "{bad_var:?}");

    let unknown_stage = t.run(&["run", "ok", "--only", "aa"]);
    assert_eq!(unknown_stage.code, 2);
    assert!(
        unknown_stage.stderr.contains("did you mean `a`?"),
        "{unknown_stage:?}"
    );
}

#[test]
fn var_names_given_on_the_command_line_are_defined() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  a:\n    run: echo ${{ GIT_SHA }} > sha\n",
    );
    assert_eq!(t.run(&["validate", "p"]).code, 2);
    assert_eq!(t.run(&["validate", "p", "--var", "GIT_SHA=x"]).code, 0);
    let out = t.run(&["run", "p", "--var", "GIT_SHA=abc123"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.read("sha").trim(), "abc123");
}

#[test]
fn a_colon_in_an_unquoted_script_gets_a_precise_help() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  lint:\n    run: echo \"lint failed: 3 issues\"; exit 1\n",
    );
    let out = t.run(&["validate", "p"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("p.yml:4:27"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("quote the whole value, or write it as a block"),
        "{}",
        out.stderr
    );
}
