//! `portcullis schema`: the checked-in copy stays current, and a real JSON Schema validator
//! (Python's `jsonschema`) accepts every shipped pipeline and rejects invalid ones.

use std::process::Command;

use crate::harness::{BIN, Test, python_yaml, repo_root, shipped_pipelines};

/// Validates each YAML file named after the schema; prints one JSON line per file with its
/// errors, so a failure says which file and why.
const VALIDATE: &str = r#"
import json, sys, yaml, jsonschema
with open(sys.argv[1]) as f:
    schema = json.load(f)
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    with open(path) as f:
        doc = yaml.safe_load(f)
    errors = ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(doc)]
    print(json.dumps({"file": path, "errors": errors}))
"#;

const SCHEMA: &str = "schema/pipeline-v1.json";

fn schema_output() -> String {
    let out = Command::new(BIN)
        .arg("schema")
        .output()
        .expect("run portcullis schema");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf-8 schema")
}

/// `(file, errors)` for each file, as the validator script reports them.
fn validate(files: &[String]) -> Option<Vec<(String, Vec<String>)>> {
    let mut args = vec![SCHEMA];
    args.extend(files.iter().map(String::as_str));
    let out = python_yaml(VALIDATE, &args)?;
    assert!(
        out.status.success(),
        "the validator script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let errors = v["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .map(|e| e.as_str().unwrap_or_default().to_owned())
                .collect();
            (v["file"].as_str().unwrap_or_default().to_owned(), errors)
        })
        .collect::<Vec<_>>();
    assert_eq!(results.len(), files.len(), "one result per file");
    Some(results)
}

#[test]
fn checked_in_schema_is_current() {
    let checked_in = std::fs::read_to_string(repo_root().join(SCHEMA)).expect("read the schema");
    assert!(
        schema_output() == checked_in,
        "`{SCHEMA}` differs from `portcullis schema`; regenerate it: \
         cargo run -- schema > {SCHEMA}"
    );
}

/// Every shipped pipeline opens with the YAML language server's modeline, pointing at the
/// checked-in schema, whose `$id` is the versioned URL users' pipelines name.
#[test]
fn every_shipped_pipeline_names_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&schema_output()).expect("the schema is JSON");
    let id = schema["$id"].as_str().expect("$id");
    assert!(
        id.starts_with("https://") && id.ends_with("/schema/pipeline-v1.json"),
        "{id}"
    );
    for file in shipped_pipelines() {
        let path = repo_root().join(&file);
        let text = std::fs::read_to_string(&path).expect("read pipeline");
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{file} does not start with the modeline: {first}"));
        let resolved = path.parent().expect("folder").join(target);
        assert_eq!(
            std::fs::canonicalize(&resolved).ok(),
            std::fs::canonicalize(repo_root().join(SCHEMA)).ok(),
            "{file}: the modeline points at {}",
            resolved.display()
        );
    }
}

#[test]
fn schema_is_draft_07_and_closed() {
    let schema: serde_json::Value = serde_json::from_str(&schema_output()).expect("JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["definitions"]["stage"]["additionalProperties"],
        false
    );
    assert_eq!(schema["properties"]["version"]["const"], 1);
}

#[test]
fn schema_accepts_every_shipped_pipeline() {
    let files = shipped_pipelines();
    let Some(results) = validate(&files) else {
        return;
    };
    for (file, errors) in results {
        assert!(
            errors.is_empty(),
            "{file} does not match the schema: {errors:#?}"
        );
    }
}

#[test]
fn schema_accepts_the_readme_example() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let example = readme
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a yaml block in the README");
    let t = Test::new().file("readme.yml", example);
    let path = t.path().join("readme.yml").to_string_lossy().into_owned();
    let Some(results) = validate(&[path]) else {
        return;
    };
    assert!(results[0].1.is_empty(), "{:#?}", results[0].1);
}

/// Each of these is also rejected by `portcullis validate`, so the schema is not stricter than
/// portcullis here; each differs from a valid pipeline by one mistake.
const INVALID: &[(&str, &str)] = &[
    (
        "unknown-top-key",
        "version: 1\nstagse: {}\nstages:\n  a: { run: 'true' }\n",
    ),
    (
        "unknown-stage-key",
        "version: 1\nstages:\n  a: { run: 'true', timeuot: 5m }\n",
    ),
    (
        "bad-duration",
        "version: 1\nstages:\n  a: { run: 'true', timeout: 30 }\n",
    ),
    (
        "bad-duration-unit",
        "version: 1\nstages:\n  a: { run: 'true', timeout: 5 minutes }\n",
    ),
    (
        "run-and-uses",
        "version: 1\nstages:\n  a:\n    run: 'true'\n    uses: http\n    with: { url: 'http://127.0.0.1:1/' }\n",
    ),
    (
        "run-and-command",
        "version: 1\nstages:\n  a: { run: 'true', command: ['true'] }\n",
    ),
    ("no-action", "version: 1\nstages:\n  a: { needs: [] }\n"),
    (
        "bad-if",
        "version: 1\nstages:\n  a: { run: 'true', if: [sometimes] }\n",
    ),
    (
        "secret-with-two-sources",
        "version: 1\nsecrets:\n  S: { env: S, file: /s }\nstages:\n  a: { run: 'true' }\n",
    ),
    (
        "secret-unknown-source",
        "version: 1\nsecrets:\n  S: { vault: s }\nstages:\n  a: { run: 'true' }\n",
    ),
    (
        "wrong-version",
        "version: 2\nstages:\n  a: { run: 'true' }\n",
    ),
    ("no-version", "stages:\n  a: { run: 'true' }\n"),
    (
        "bad-stage-name",
        "version: 1\nstages:\n  'a b': { run: 'true' }\n",
    ),
    (
        "retries-out-of-range",
        "version: 1\nstages:\n  a: { run: 'true', retries: 101 }\n",
    ),
    (
        "retries-unknown-key",
        "version: 1\nstages:\n  a: { run: 'true', retries: { count: 1, delay: 1s } }\n",
    ),
    (
        "rollback-two-actions",
        "version: 1\nstages:\n  a: { run: 'true', rollback: { run: 'x', command: [x] } }\n",
    ),
    (
        "with-without-uses",
        "version: 1\nstages:\n  a: { run: 'true', with: { url: 'http://x/' } }\n",
    ),
    (
        "http-unknown-with-key",
        "version: 1\nstages:\n  a: { uses: http, with: { url: 'http://127.0.0.1:1/', expected: 200 } }\n",
    ),
    (
        "http-without-url",
        "version: 1\nstages:\n  a: { uses: http, with: { expect: 200 } }\n",
    ),
    (
        "pg-dump-without-dir",
        "version: 1\nstages:\n  a: { uses: pg-dump, with: { url: 'postgresql://u@h/d' } }\n",
    ),
    (
        "pg-dump-keep-daily-zero",
        "version: 1\nstages:\n  a: { uses: pg-dump, with: { url: 'postgresql://u@h/d', dir: b, keep-daily: 0 } }\n",
    ),
    (
        "pg-dump-keep-yearly-misspelt",
        "version: 1\nstages:\n  a: { uses: pg-dump, with: { url: 'postgresql://u@h/d', dir: b, keep-annual: 2 } }\n",
    ),
    (
        "postgres-check-unknown-expect",
        "version: 1\nstages:\n  a: { uses: postgres-check, with: { url: x, checks: [{ sql: select 1, expect: { between: 1 } }] } }\n",
    ),
    (
        "postgres-check-two-actions",
        "version: 1\nstages:\n  a: { uses: postgres-check, with: { url: x, checks: [{ sql: select 1, script: x }] } }\n",
    ),
    (
        "coverage-without-report",
        "version: 1\nstages:\n  a: { uses: coverage, with: { min: 80 } }\n",
    ),
    (
        "coverage-min-above-100",
        "version: 1\nstages:\n  a: { uses: coverage, with: { report: coverage.xml, min: 120 } }\n",
    ),
    (
        "coverage-min-not-a-number",
        "version: 1\nstages:\n  a: { uses: coverage, with: { report: coverage.xml, min: eighty } }\n",
    ),
    (
        "coverage-unknown-format",
        "version: 1\nstages:\n  a: { uses: coverage, with: { report: coverage.xml, format: clover } }\n",
    ),
    (
        "coverage-per-file-without-min",
        "version: 1\nstages:\n  a: { uses: coverage, with: { report: lcov.info, per-file: { max: 50 } } }\n",
    ),
    ("unknown-kind", "version: 1\nstages:\n  a: { uses: smtp }\n"),
    (
        "unknown-default",
        "version: 1\ndefaults: { shell: fish }\nstages:\n  a: { run: 'true' }\n",
    ),
];

#[test]
fn schema_rejects_invalid_pipelines() {
    let mut t = Test::new();
    for (name, yaml) in INVALID {
        t = t.pipeline(name, yaml);
    }
    for (name, _) in INVALID {
        let out = t.run(&["validate", name]);
        assert_eq!(out.code, 2, "portcullis accepts `{name}`: {out:?}");
    }
    let files: Vec<String> = INVALID
        .iter()
        .map(|(name, _)| {
            t.path()
                .join(format!("pipelines/{name}.yml"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let Some(results) = validate(&files) else {
        return;
    };
    let accepted: Vec<&str> = results
        .iter()
        .filter(|(_, errors)| errors.is_empty())
        .map(|(file, _)| file.as_str())
        .collect();
    assert!(accepted.is_empty(), "the schema accepts: {accepted:#?}");
}
