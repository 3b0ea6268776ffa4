use crate::harness::{Test, assert_schema_valid};

/// Whatever bytes a stage prints, the report is well-formed and valid against the strict
/// Jenkins schema, both in the run folder and at `--junit`.
#[test]
fn report_is_schema_valid_whatever_a_stage_prints() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
name: nasty <&"'> pipeline
stages:
  bytes:
    run: |
      printf '\033[31mred\033[0m \033]0;title\007 ]]> <tag> & "q"\n'
      head -c 256 /dev/urandom
      printf '\001\002\003\010\013\014\016\037\177 \xef\xbf\xbe \xff\xfe invalid utf8\n'
      for i in $(seq 0 255); do printf "\\$(printf %o $i)"; done
      echo
      exit 1
  skipped:
    needs: [bytes]
    run: 'true'
  warned:
    allow-failure: true
    run: printf 'bad \033[1m bold ]]>\n'; exit 1
"#,
    );
    let out = t.run(&["run", "p", "--keep-going", "--junit", "report.xml"]);
    assert_eq!(out.code, 1, "{out:?}");
    let in_run_dir = t.latest_run().join("junit.xml");
    assert_schema_valid(&in_run_dir);
    assert_schema_valid(&t.path().join("report.xml"));
    let junit = t.junit();
    assert!(junit.contains("needs `bytes`, which failed"), "{junit}");
    assert!(!junit.contains('\u{1b}'), "ANSI escapes are stripped");
}

/// A stage's `junit:` files (pytest, jest, nextest) are merged in as their own suites.
#[test]
fn imported_results_are_merged() {
    let pytest = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="0.05" timestamp="2026-11-22T10:00:00" hostname="ci"><testcase classname="tests.test_api" name="test_ok" time="0.001" /><testcase classname="tests.test_api" name="test_orphans" time="0.002"><failure message="AssertionError: 3 orphan invoices">def test_orphans():
&gt;       assert count == 0</failure></testcase><testcase classname="tests.test_api" name="test_slow" time="0.000"><skipped type="pytest.skip" message="slow">skipped</skipped></testcase></testsuite></testsuites>"#;
    let nextest = r#"<?xml version="1.0" encoding="UTF-8"?><testsuites name="nextest-run" tests="2" failures="0" errors="0" uuid="45c5e5a4-0e2b-4d7c-a6b2-5d7f0f1d6a4e" timestamp="2026-11-22T10:00:00.000+00:00" time="0.2"><testsuite name="portcullis::integration" tests="2" disabled="0" errors="0" failures="0"><testcase name="run::flaky" classname="portcullis::integration" timestamp="2026-11-22T10:00:00.000+00:00" time="0.1"><flakyFailure timestamp="2026-11-22T10:00:00.000+00:00" time="0.05" type="test failure">first try failed<system-out>out</system-out></flakyFailure></testcase><testcase name="run::ok" classname="portcullis::integration" time="0.1"/></testsuite></testsuites>"#;
    let t = Test::new()
        .file("fixtures/pytest.xml", pytest)
        .file("fixtures/nextest.xml", nextest)
        .file("fixtures/broken.xml", "<testsuites><testsuite name=\"x\"><testcase")
        .pipeline(
            "p",
            "version: 1\nstages:\n  test:\n    run: mkdir -p reports && cp fixtures/*.xml reports/\n    junit: [reports/*.xml]\n",
        );
    let out = t.run(&["run", "p", "--junit", "merged.xml"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_schema_valid(&t.path().join("merged.xml"));
    let junit = t.read("merged.xml");
    assert!(junit.contains("test / pytest"), "{junit}");
    assert!(
        junit.contains("test_orphans") && junit.contains("3 orphan invoices"),
        "{junit}"
    );
    assert!(junit.contains("run::flaky"), "{junit}");
    assert!(
        junit.contains("could not read JUnit file"),
        "a broken file is reported, not fatal: {junit}"
    );
}
