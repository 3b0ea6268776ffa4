use crate::harness::Test;

#[test]
fn secrets_from_env_file_and_command_are_masked_everywhere() {
    let t = Test::new()
        .file("token.txt", "file-secret-42\n")
        .file("vault.sh", "#!/bin/sh\necho command-secret-77\n")
        .env("APP_TOKEN", "env-secret-13")
        .pipeline(
            "p",
            r#"version: 1
secrets:
  FROM_ENV: { env: APP_TOKEN }
  FROM_FILE: { file: token.txt }
  FROM_CMD: { command: [sh, vault.sh] }
stages:
  leak:
    run: |
      echo "env=$FROM_ENV file=${{ FROM_FILE }} cmd=$FROM_CMD"
      printf 'split: env-se'; sleep 0.1; printf 'cret-13\n'
      echo "$FROM_ENV" | base64
      echo "$FROM_FILE" > seen-by-stage
      exit 1
"#,
        );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        t.read("seen-by-stage"),
        "file-secret-42\n",
        "the stage gets the real value"
    );
    let log = t.log("leak");
    let junit = t.junit();
    for (place, text) in [
        ("terminal", out.stderr.as_str()),
        ("log", log.as_str()),
        ("junit", junit.as_str()),
    ] {
        for secret in [
            "env-secret-13",
            "file-secret-42",
            "command-secret-77",
            "ZW52LXNlY3JldC0xMw",
        ] {
            assert!(
                !text.contains(secret),
                "{secret} leaked to the {place}:\n{text}"
            );
        }
        assert!(
            text.contains("env=*** file=*** cmd=***"),
            "{place}:\n{text}"
        );
        assert!(text.contains("split: ***"), "{place}:\n{text}");
    }
}

#[test]
fn unresolvable_secrets_are_all_reported_and_nothing_runs() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nsecrets:\n  A: { env: PORTCULLIS_TEST_UNSET_VAR }\n  B: { file: missing.txt }\n  C: { command: [sh, -c, 'exit 3'] }\nstages:\n  s:\n    run: touch ran\n",
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("PORTCULLIS_TEST_UNSET_VAR"), "{out:?}");
    assert!(out.stderr.contains("missing.txt"), "{out:?}");
    assert!(
        out.stderr.contains("3 secret(s) could not be resolved"),
        "{out:?}"
    );
    assert!(!t.path().join("ran").exists());
}
