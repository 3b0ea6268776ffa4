//! `uses: coverage` on reports written by the real tools: pytest-cov (coverage.py) for
//! Cobertura XML and lcov, JaCoCo's agent and report library for JaCoCo XML; changed lines
//! against a real git repository. Without pytest-cov or JaCoCo a test says so and is skipped,
//! unless `PORTCULLIS_REQUIRE` names `pytest-cov` or `jacoco`.

use std::path::Path;
use std::process::Command;

use crate::harness::{Test, assert_schema_valid, required};

/// Whether pytest and pytest-cov can run; a skipped test says why.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn pytest_cov() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pytest, pytest_cov"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !required("pytest-cov"),
            "pytest-cov is required (PORTCULLIS_REQUIRE) but cannot be imported: \
             python3 -m pip install pytest pytest-cov"
        );
        eprintln!(
            "skipped: pytest-cov is not installed (python3 -m pip install pytest pytest-cov)"
        );
    }
    ok
}

const OPS: &str = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n\
def mul(a, b):\n    return a * b\n\n\ndef never(x):\n    if x > 0:\n        return x\n    return -x\n";
const UTIL: &str = "def double(x):\n    return 2 * x\n\n\ndef triple(x):\n    # never called by the tests\n    return 3 * x\n";
const TESTS: &str = "from calc.ops import add, sub, mul\nfrom calc.util import double\n\n\n\
def test_ops():\n    assert add(1, 2) == 3\n    assert sub(3, 2) == 1\n    assert mul(2, 3) == 6\n    assert double(2) == 4\n";

/// A small Python package with its tests, in a git repository with one commit.
fn python_project() -> Test {
    let t = Test::new()
        .file("calc/__init__.py", "")
        .file("calc/ops.py", OPS)
        .file("calc/util.py", UTIL)
        .file("tests/test_calc.py", TESTS)
        // One decimal in coverage.py's own table, as portcullis shows figures.
        .file(".coveragerc", "[report]\nprecision = 1\n")
        .file(
            ".gitignore",
            ".portcullis/\n__pycache__/\n.pytest_cache/\n.coverage\ncoverage.*\nout\n",
        );
    git(&t, &["init", "-q", "-b", "main"]);
    git(&t, &["add", "."]);
    git(&t, &["commit", "-q", "-m", "calc"]);
    t
}

fn git(t: &Test, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(t.path())
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// Runs the tests under pytest-cov, writing `coverage.xml` and `coverage.lcov`; returns
/// coverage.py's own `TOTAL` figure (`71.4%`).
fn run_pytest_cov(t: &Test) -> String {
    let out = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--cov=calc",
            "--cov-report=term",
            "--cov-report=xml",
            "--cov-report=lcov",
            "tests",
        ])
        .current_dir(t.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "pytest failed: {out:?}");
    text.lines()
        .find(|l| l.starts_with("TOTAL"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no TOTAL line in pytest-cov's output:\n{text}"))
        .to_owned()
}

fn pipeline(with: &str) -> String {
    format!(
        "version: 1\nstages:\n  cov:\n    uses: coverage\n    with:\n{with}  after:\n    needs: [cov]\n    run: echo \"${{{{ cov.total }}}} ${{{{ cov.covered }}}} ${{{{ cov.lines }}}}\" > out\n"
    )
}

/// The total equals coverage.py's `TOTAL` and its `line-rate`, from both the XML and the lcov
/// report; above the threshold the stage passes and publishes its figures.
#[test]
fn pytest_cov_reports_pass_above_min_with_coverage_pys_total() {
    if !pytest_cov() {
        return;
    }
    let t = python_project();
    let total = run_pytest_cov(&t);
    assert_eq!(total, "71.4%", "coverage.py's own TOTAL");
    let xml = t.read("coverage.xml");
    assert!(
        xml.contains(r#"lines-valid="14" lines-covered="10" line-rate="0.7143""#),
        "{xml}"
    );
    for report in ["coverage.xml", "coverage.lcov"] {
        std::fs::create_dir_all(t.path().join("pipelines")).expect("mkdir");
        std::fs::write(
            t.path().join("pipelines/p.yml"),
            pipeline(&format!(
                "      report: {report}\n      min: 70\n      worst: 2\n"
            )),
        )
        .expect("write the pipeline");
        let out = t.run(&["run", "p", "--junit", "report.xml"]);
        assert_eq!(out.code, 0, "{report}: {out:?}");
        assert_eq!(t.read("out"), "71.4 10 14\n", "{report}");
        let log = t.log("cov");
        assert!(
            log.contains(&format!(
                "line coverage {} (10 of 14 lines covered, 2 files)",
                total
            )),
            "{report}: {log}"
        );
        // The least covered files first, with their counts; `__init__.py` has no line.
        let worst: Vec<&str> = log
            .lines()
            .skip_while(|l| !l.contains("least covered files:"))
            .skip(1)
            .take(2)
            .collect();
        assert!(
            worst[0].contains("70.0%")
                && worst[0].contains("7/10")
                && worst[0].ends_with("calc/ops.py"),
            "{report}: {log}"
        );
        assert!(
            worst[1].contains("75.0%")
                && worst[1].contains("3/4")
                && worst[1].ends_with("calc/util.py"),
            "{report}: {log}"
        );
        // The total and the least covered file stand beside the stage's result.
        assert!(
            out.stderr.contains(&format!(
                "passed: line coverage {total}, least covered: calc/ops.py 70.0%"
            )),
            "{report}: {out:?}"
        );
        let junit = t.read("report.xml");
        assert!(junit.contains("total line coverage"), "{junit}");
        assert_schema_valid(&t.path().join("report.xml"));
        std::fs::remove_file(t.path().join("out")).expect("remove out");
    }
}

/// Below the threshold the stage fails with coverage.py's figure, in the terminal summary,
/// the JUnit failure and GitHub's summary; `per-file` fails the one file under its min.
#[test]
fn pytest_cov_reports_fail_below_min_and_per_file() {
    if !pytest_cov() {
        return;
    }
    let t = python_project();
    let total = run_pytest_cov(&t);
    let t = t.pipeline(
        "p",
        &pipeline("      report: [coverage.xml, coverage.lcov]\n      min: 80\n      per-file: { min: 72 }\n"),
    );
    let out = t
        .github(&["run", "p", "--junit", "report.xml"])
        .env("GITHUB_WORKSPACE", t.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let reason = format!("line coverage {total} is below min 80%");
    assert_eq!(reason, "line coverage 71.4% is below min 80%");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&reason), "{stdout}");
    // The summary's Markdown escapes `.` and `-`.
    let summary = t.github_summary();
    assert!(
        summary.contains("line coverage 71\\.4% is below min 80%; calc/ops\\.py: line coverage 70\\.0% is below per\\-file min 72%"),
        "{summary}"
    );
    let junit = t.read("report.xml");
    assert!(
        junit.contains("line coverage 71.4% is below min 80% (10 of 14 lines covered)"),
        "{junit}"
    );
    assert!(
        junit.contains("name=\"line coverage of calc/ops.py\""),
        "{junit}"
    );
    assert!(
        junit.contains("calc/ops.py: line coverage 70.0% (7 of 10 lines) is below min 72%"),
        "{junit}"
    );
    assert!(!junit.contains("line coverage of calc/util.py"), "{junit}");
    assert_schema_valid(&t.path().join("report.xml"));
    // The annotation points at the file's first line that did not run.
    assert!(stdout.contains("file=calc/ops.py,line=14"), "{stdout}");

    // Off GitHub, the terminal's failure line carries the same reason.
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(&reason), "{out:?}");
    assert!(
        t.log("cov")
            .contains("1 file is below the per-file min 72%:"),
        "{}",
        t.log("cov")
    );
}

/// `changed-lines` against a real repository: an uncovered function added since `--base HEAD`
/// fails; once a test calls it, the change is covered and passes.
#[test]
fn changed_lines_since_base_fail_uncovered_and_pass_covered() {
    if !pytest_cov() {
        return;
    }
    let t = python_project().pipeline(
        "p",
        "version: 1\nstages:\n  cov:\n    uses: coverage\n    with:\n      report: coverage.xml\n      changed-lines: { min: 90 }\n  after:\n    needs: [cov]\n    run: echo \"${{ cov.changed }}\" > out\n",
    );
    git(&t, &["add", "."]);
    git(&t, &["commit", "-q", "-m", "pipeline"]);

    // Nothing changed yet: the check passes and says so; nothing uncovered reads 100%, as
    // coverage.py reads a file without statements.
    run_pytest_cov(&t);
    let out = t.run(&["run", "p", "--base", "HEAD"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        t.log("cov")
            .contains("no coverable line was added or changed since `HEAD`"),
        "{}",
        t.log("cov")
    );
    assert_eq!(t.read("out"), "100.0\n");

    // An uncovered function: its `def` runs at import, its body does not; the comment and
    // blank lines added with it are not coverable and do not count.
    let added = "\n\n# scaled by four\ndef quadruple(x):\n    return 4 * x\n";
    let t = t.file("calc/util.py", &format!("{UTIL}{added}"));
    run_pytest_cov(&t);
    let out = t.run(&["run", "p", "--base", "HEAD", "--junit", "report.xml"]);
    assert_eq!(out.code, 1, "{out:?}");
    let reason =
        "changed-lines coverage 50.0% is below min 90% (1 of 2 changed lines covered since `HEAD`)";
    assert!(out.stderr.contains(reason), "{out:?}");
    let log = t.log("cov");
    assert!(log.contains("not covered: calc/util.py 12"), "{log}");
    let junit = t.read("report.xml");
    assert!(junit.contains("name=\"changed lines\""), "{junit}");
    assert!(junit.contains(reason), "{junit}");

    // Without `--base` (nor `base:`), the check says how to give one.
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("changed-lines: no base ref to compare with; run with `--base REF`"),
        "{out:?}"
    );

    // A test that calls it: the change is covered.
    let t = t.file(
        "tests/test_more.py",
        "from calc.util import quadruple\n\n\ndef test_quadruple():\n    assert quadruple(2) == 8\n",
    );
    run_pytest_cov(&t);
    let out = t.run(&["run", "p", "--base", "HEAD"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.read("out"), "100.0\n");
    assert!(
        t.log("cov")
            .contains("changed lines since `HEAD`: 100.0% (2 of 2 coverable lines covered)"),
        "{}",
        t.log("cov")
    );

    // `with: base:` overrides `--base`: against the first commit, every line of the pipeline
    // commit's parent is old, and the new lines are the same two.
    let with_base = t.read("pipelines/p.yml").replace(
        "      changed-lines: { min: 90 }\n",
        "      changed-lines: { min: 90 }\n      base: HEAD~1\n",
    );
    let t = t.file("pipelines/p.yml", &with_base);
    let out = t.run(&["run", "p", "--base", "no-such-ref"]);
    assert_eq!(out.code, 2, "`--base` itself is checked first: {out:?}");
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t.log("cov").contains("since `HEAD~1`"), "{}", t.log("cov"));
}

/// The JaCoCo agent and report library Debian packages (`libjacoco-java`); `jacococli` itself is
/// not packaged, so a few lines of Java make the XML report with the calls its `report` command
/// makes.
const REPORT_JAVA: &str = r#"import java.io.File;
import java.io.FileOutputStream;
import org.jacoco.core.analysis.Analyzer;
import org.jacoco.core.analysis.CoverageBuilder;
import org.jacoco.core.tools.ExecFileLoader;
import org.jacoco.report.DirectorySourceFileLocator;
import org.jacoco.report.IReportVisitor;
import org.jacoco.report.xml.XMLFormatter;

public class Report {
    public static void main(String[] args) throws Exception {
        ExecFileLoader loader = new ExecFileLoader();
        loader.load(new File(args[0]));
        CoverageBuilder builder = new CoverageBuilder();
        new Analyzer(loader.getExecutionDataStore(), builder).analyzeAll(new File(args[1]));
        try (FileOutputStream out = new FileOutputStream(args[2])) {
            IReportVisitor visitor = new XMLFormatter().createVisitor(out);
            visitor.visitInfo(loader.getSessionInfoStore().getInfos(), loader.getExecutionDataStore().getContents());
            visitor.visitBundle(builder.getBundle("demo"), new DirectorySourceFileLocator(new File(args[3]), "utf-8", 4));
            visitor.visitEnd();
        }
    }
}
"#;

const CALC_JAVA: &str = "package com.example;\n\npublic class Calc {\n    public static int add(int a, int b) {\n        return a + b;\n    }\n\n    public static int unused(int a) {\n        if (a > 0) {\n            return a * 2;\n        }\n        return -a;\n    }\n\n    public static void main(String[] args) {\n        System.out.println(add(1, 2));\n    }\n}\n";

const JACOCO_JARS: &str = "/usr/share/java";

/// Whether JaCoCo (Debian's `libjacoco-java`), `java` and `javac` are here.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn jacoco() -> bool {
    let jars = [
        "org.jacoco.agent.jar",
        "org.jacoco.core.jar",
        "org.jacoco.report.jar",
        "asm.jar",
    ];
    let missing: Vec<&str> = jars
        .iter()
        .copied()
        .filter(|j| !Path::new(JACOCO_JARS).join(j).is_file())
        .collect();
    let javac = Command::new("javac")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if missing.is_empty() && javac {
        return true;
    }
    assert!(
        !required("jacoco"),
        "JaCoCo is required (PORTCULLIS_REQUIRE) but {missing:?} or javac is missing \
         (Debian: libjacoco-java and a JDK)"
    );
    eprintln!("skipped: JaCoCo is not installed (Debian: libjacoco-java, with a JDK's javac)");
    false
}

fn run_ok(t: &Test, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(t.path())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
}

/// A real JaCoCo report: a class compiled, run under the agent, reported as XML (with its
/// DOCTYPE, which must not be fetched). Its `package/sourcefile` is found under
/// `src/main/java`.
#[test]
fn jacoco_report_from_the_agent() {
    if !jacoco() {
        return;
    }
    let t = Test::new()
        .file("src/main/java/com/example/Calc.java", CALC_JAVA)
        .file("tools/Report.java", REPORT_JAVA)
        .pipeline(
            "p",
            &pipeline("      report: build/jacoco.xml\n      min: 50\n      format: jacoco\n"),
        );
    let jar = |j: &str| format!("{JACOCO_JARS}/{j}");
    let cp = [
        "org.jacoco.core.jar",
        "org.jacoco.report.jar",
        "asm.jar",
        "asm-commons.jar",
        "asm-tree.jar",
    ]
    .map(jar)
    .join(":");
    // The agent ships inside the package's jar.
    run_ok(
        &t,
        "python3",
        &[
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('jacocoagent.jar', 'build')",
            &jar("org.jacoco.agent.jar"),
        ],
    );
    // Class files of Java 11: the packaged JaCoCo (0.8.6) predates Java 17's.
    run_ok(
        &t,
        "javac",
        &[
            "--release",
            "11",
            "-d",
            "build/classes",
            "src/main/java/com/example/Calc.java",
        ],
    );
    run_ok(
        &t,
        "javac",
        &["-cp", &cp, "-d", "build/tools", "tools/Report.java"],
    );
    run_ok(
        &t,
        "java",
        &[
            "-javaagent:build/jacocoagent.jar=destfile=build/jacoco.exec",
            "-cp",
            "build/classes",
            "com.example.Calc",
        ],
    );
    run_ok(
        &t,
        "java",
        &[
            "-cp",
            &format!("{cp}:build/tools"),
            "Report",
            "build/jacoco.exec",
            "build/classes",
            "build/jacoco.xml",
            "src/main/java",
        ],
    );
    let xml = t.read("build/jacoco.xml");
    assert!(xml.contains("<!DOCTYPE report"), "{xml}");
    // JaCoCo's own count: `<counter type="LINE" missed="4" covered="3"/>` at the end.
    assert!(
        xml.contains(r#"<counter type="LINE" missed="4" covered="3"/>"#),
        "{xml}"
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("line coverage 42.9% is below min 50%"),
        "{out:?}"
    );
    let log = t.log("cov");
    assert!(
        log.contains("read build/jacoco.xml (JaCoCo): 1 file, 3 of 7 lines covered"),
        "{log}"
    );
    assert!(
        log.contains("3/7  src/main/java/com/example/Calc.java"),
        "{log}"
    );
}

/// Validation at load time: every mistake at its line and column, with a help line.
#[test]
fn bad_settings_are_reported_at_their_lines() {
    let t = Test::new().pipeline(
        "bad",
        r#"version: 1
stages:
  a:
    uses: coverage
    with:
      report: coverage.xml
      min: 120
      fromat: lcov
  b:
    uses: coverage
    with:
      report: coverage.xml
      min: "eighty"
      format: foo
      per-file: { min: -5 }
      changed-lines: { threshold: 90 }
  c:
    uses: coverage
    with:
      min: 80
"#,
    );
    let out = t.run(&["validate", "bad"]);
    assert_eq!(out.code, 2, "{out:?}");
    for needle in [
        "`min` is out of range",
        "bad.yml:7:12",
        "`min` is a percentage from 0 to 100",
        "unknown key `fromat` in `with` of `coverage`",
        "bad.yml:8:7",
        "did you mean `format`?",
        "`min` must be a number",
        "bad.yml:13:12",
        "write a percentage from 0 to 100 as a number",
        "`format: foo` is not a coverage format",
        "bad.yml:14:15",
        "write `cobertura`, `lcov` or `jacoco`",
        "`per-file.min` is out of range",
        "unknown key `threshold` in `changed-lines` of `coverage`",
        "`changed-lines` needs `min`",
        "`coverage` needs `report`",
        "bad.yml:20:7",
        "add `report: coverage.xml`",
    ] {
        assert!(out.stderr.contains(needle), "{needle}\n{}", out.stderr);
    }
}

/// `--base` reaches every stage as `PORTCULLIS_BASE`; `plan` says what the gate holds; a
/// missing or broken report fails the stage naming the file and the place.
#[test]
fn base_reaches_stages_and_reports_are_named_when_bad() {
    let t = Test::new()
        .pipeline(
            "p",
            "version: 1\nstages:\n  show:\n    run: echo \"[$PORTCULLIS_BASE]\" > base\n  cov:\n    needs: [show]\n    uses: coverage\n    with:\n      report: reports/*.info\n      min: 80\n      per-file: { min: 50 }\n      changed-lines: { min: 90 }\n",
        )
        .file("reports/a.info", "TN:\nSF:src/a.py\nDA:1,1\nDA:2,0\nend_of_record\n");
    git(&t, &["init", "-q", "-b", "main"]);
    git(&t, &["commit", "-q", "--allow-empty", "-m", "start"]);

    let out = t.run(&["plan", "p"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(
            "line coverage of reports/*.info must be at least 80%, each file at least 50%, lines changed since `--base` at least 90%"
        ),
        "{out:?}"
    );

    let out = t.run(&["run", "p", "--base", "HEAD"]);
    assert_eq!(t.read("base"), "[HEAD]\n");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("line coverage 50.0% is below min 80%"),
        "{out:?}"
    );
    // `src/a.py` is not here: it is counted as the report names it, and no line of it changed.
    assert!(t.log("cov").contains("not under"), "{}", t.log("cov"));

    let out = t.run(&["run", "p"]);
    assert_eq!(t.read("base"), "[]\n");
    assert!(
        out.stderr.contains("no base ref to compare with"),
        "{out:?}"
    );

    let t = t.file("reports/b.info", "SF:src/b.py\nDA:1,1\nDA:two,0\n");
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("`reports/b.info`:3: `DA:two,0` is not `DA:LINE,HITS`"),
        "{out:?}"
    );

    let t = t.pipeline(
        "q",
        "version: 1\nstages:\n  cov:\n    uses: coverage\n    with: { report: [coverage.xml], min: 80 }\n",
    );
    let out = t.run(&["run", "q"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("`coverage.xml`: no such file"),
        "{out:?}"
    );
    let t = t.file("coverage.xml", "");
    let out = t.run(&["run", "q"]);
    assert!(
        out.stderr.contains("`coverage.xml`: the file is empty"),
        "{out:?}"
    );
    let t = t.file(
        "coverage.xml",
        "<?xml version=\"1.0\"?>\n<coverage>\n  <packages>\n    <package>\n",
    );
    let out = t.run(&["run", "q"]);
    assert!(
        out.stderr
            .contains("`coverage.xml`:5:1: the file ends inside an unclosed element"),
        "{out:?}"
    );
}

/// coverage.py measuring two packages writes each `__init__.py` relative to its own `<source>`
/// root, and the report does not say which: the two are counted apart, never as one file, and
/// the total is coverage.py's.
#[test]
fn files_of_one_name_under_two_roots_are_counted_apart() {
    if !pytest_cov() {
        return;
    }
    let t = Test::new()
        .file(
            "alpha/__init__.py",
            "def a(x):\n    if x:\n        return 1\n    return 2\n",
        )
        .file(
            "beta/__init__.py",
            "def b(x):\n    y = x\n    y += 1\n    y += 2\n    y += 3\n    return y\n",
        )
        .file(
            "tests/test_a.py",
            "import alpha\n\n\ndef test_a():\n    assert alpha.a(1) == 1\n",
        )
        .file(".coveragerc", "[report]\nprecision = 1\n")
        .pipeline("p", &pipeline("      report: coverage.xml\n"));
    let out = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--cov=alpha",
            "--cov=beta",
        ])
        .args(["--cov-report=xml", "--cov-report=term", "tests"])
        .current_dir(t.path())
        .output()
        .expect("run pytest");
    let table = String::from_utf8_lossy(&out.stdout);
    let total = table
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .and_then(|l| l.split_whitespace().last())
        .expect("coverage.py's TOTAL")
        .to_owned();
    assert_eq!(total, "30.0%", "{table}");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let log = t.log("cov");
    assert!(
        log.contains("line coverage 30.0% (3 of 10 lines covered, 2 files)"),
        "{log}"
    );
    assert!(log.contains("match several files here"), "{log}");
}

/// `changed-lines` with `--base main` after `main` moved on: only what the branch changed.
#[test]
fn changed_lines_count_what_the_branch_changed_not_what_its_base_did() {
    if !pytest_cov() {
        return;
    }
    let t = python_project().pipeline(
        "p",
        &pipeline("      report: coverage.xml\n      changed-lines: { min: 90 }\n"),
    );
    git(&t, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(t.path().join("README"), "docs only\n").expect("write");
    git(&t, &["add", "README"]);
    git(&t, &["commit", "-q", "-m", "docs"]);
    // `main` changes an uncovered line after the branch left it.
    git(&t, &["checkout", "-q", "main"]);
    let ops = std::fs::read_to_string(t.path().join("calc/ops.py")).expect("read");
    std::fs::write(
        t.path().join("calc/ops.py"),
        ops.replace("return -x", "return 0 - x"),
    )
    .expect("write");
    git(&t, &["commit", "-q", "-am", "main moves"]);
    git(&t, &["checkout", "-q", "feature"]);
    run_pytest_cov(&t);
    let r = t.run(&["run", "p", "--base", "main"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        t.log("cov")
            .contains("no coverable line was added or changed since `main`"),
        "{}",
        t.log("cov")
    );
}
