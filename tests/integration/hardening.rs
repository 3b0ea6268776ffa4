use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::{Test, assert_schema_valid};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The run folder is its user's alone: the folder 0700, logs, outputs and the report 0600,
/// whatever the umask and however the stage created its output file.
#[test]
fn run_folder_and_its_files_are_private() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  a:\n    run: |\n      umask 000\n      echo token=abc123 >> \"$PORTCULLIS_OUTPUT\"\n      echo printed\n",
    );
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let dir = std::fs::canonicalize(t.latest_run()).expect("run folder");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("outputs")), 0o700);
    assert_eq!(mode(&dir.join("a.log")), 0o600);
    assert_eq!(mode(&dir.join("outputs/a.env")), 0o600);
    assert_eq!(mode(&dir.join("junit.xml")), 0o600);
}

/// A file planted where a fixed temporary name would be is never written through: the report
/// goes through an exclusive, unpredictable temporary file.
#[test]
fn junit_is_never_written_through_a_planted_file() {
    let t = Test::new()
        .file("victim/precious.txt", "keep me\n")
        .pipeline("p", "version: 1\nstages:\n  a:\n    run: 'true'\n");
    std::os::unix::fs::symlink(
        t.path().join("victim/precious.txt"),
        t.path().join("report.xml.tmp"),
    )
    .expect("plant");
    let r = t.run(&["run", "p", "--junit", "report.xml"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(t.read("victim/precious.txt"), "keep me\n");
    assert!(
        !std::fs::symlink_metadata(t.path().join("report.xml"))
            .expect("report")
            .file_type()
            .is_symlink()
    );
    assert_schema_valid(&t.path().join("report.xml"));
}

/// Runs started together each get their own run folder and each write the shared `--junit`
/// report whole; none loses its report or exits 0 without one.
#[test]
fn concurrent_runs_never_share_a_folder_or_lose_a_report() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  a:\n    run: echo \"run $PPID\"\n",
    );
    let children: Vec<_> = (0..24)
        .map(|_| t.spawn(&["run", "p", "--junit", "shared/report.xml"]))
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let runs: Vec<_> = std::fs::read_dir(t.path().join(".portcullis/runs"))
        .expect("runs")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|f| f.is_dir()))
        .collect();
    assert_eq!(runs.len(), 24);
    for run in runs {
        let log = std::fs::read_to_string(run.path().join("a.log")).expect("log");
        assert_eq!(log.lines().count(), 1, "one run per folder: {log}");
    }
    assert_schema_valid(&t.path().join("shared/report.xml"));
    let leftovers: Vec<_> = std::fs::read_dir(t.path().join("shared"))
        .expect("shared")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

/// Every `$GITHUB_OUTPUT` value is written with a delimiter, so a newline in `--junit` cannot
/// forge a `status` line.
#[test]
fn github_output_values_cannot_add_lines() {
    let t = Test::new().pipeline("p", "version: 1\nstages:\n  a:\n    run: exit 1\n");
    let r = t
        .github(&["run", "p", "--junit", "j.xml\nstatus=passed"])
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(1));
    let text = t.github_output();
    // Read it as the runner does: `NAME=VALUE` lines and `NAME<<DELIMITER` blocks.
    let mut values = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            values.push((name.to_owned(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            values.push((name.to_owned(), value.to_owned()));
        }
    }
    let statuses: Vec<&str> = values
        .iter()
        .filter(|(n, _)| n == "status")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(statuses, ["failed"], "{text}");
    let junit = values.iter().find(|(n, _)| n == "junit").expect("junit");
    assert!(junit.1.ends_with("j.xml\nstatus=passed"), "{text}");
}

/// `--base` is a ref, never an option for git.
#[test]
fn base_starting_with_a_dash_is_refused() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  a:\n    run: 'true'\n    paths: [src/**]\n",
    );
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(t.path())
            .output()
            .expect("git")
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&[
        "-c",
        "user.email=t@t",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    ]);
    let r = t.run(&["run", "p", "--base=--output=INJECTED"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is not a commit, branch or tag"), "{r:?}");
    assert!(!t.path().join("INJECTED").exists());
}

/// A mistake far along a very long line, and thousands of mistakes, are reported like any
/// other: exit 2 with each error at its line and column, no crash.
#[test]
fn long_lines_and_many_errors_are_reported_not_crashed_on() {
    let long = format!(
        "version: 1\nstages: {{ a: {{ run: '{}', bogus: 1 }} }}\n",
        "x".repeat(70_000)
    );
    let t = Test::new().pipeline("long", &long);
    let r = t.run(&["validate", "long"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("pipelines/long.yml:2:"),
        "{}",
        &r.stderr[..r.stderr.len().min(500)]
    );
    assert!(r.stderr.contains("unknown key `bogus`"));

    let mut many = String::from("version: 1\nstages:\n  a:\n    run: 'true'\n");
    for i in 0..3000 {
        many.push_str(&format!("    bogus{i}: 1\n"));
    }
    let t = Test::new().pipeline("many", &many);
    let r = t.run(&["validate", "many"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("3000 errors"),
        "{}",
        &r.stderr[r.stderr.len() - 300..]
    );
    assert!(
        r.stderr
            .contains("pipelines/many.yml:3004:5: unknown key `bogus2999`")
    );
}

/// Secrets shorter than the masker's minimum are announced; a secret with a `'` is masked in
/// the form `set -x` prints it; a failing secret command's stderr is masked.
#[test]
fn secret_edge_cases_are_masked_or_announced() {
    let t = Test::new()
        .pipeline(
            "p",
            r#"version: 1
secrets:
  SHORT: { env: SHORT_SECRET }
  QUOTED: { env: QUOTED_SECRET }
stages:
  trace:
    run: |
      set -x
      true "$QUOTED"
"#,
        )
        .env("SHORT_SECRET", "ab")
        .env("QUOTED_SECRET", "p@ss w'rd&<x>");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("secret `SHORT` is shorter than 3 characters"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("w'\\''rd"), "{r:?}");
    assert!(!t.log("trace").contains("rd&<x>"), "{}", t.log("trace"));
    assert!(t.log("trace").contains("+ true ***"), "{}", t.log("trace"));

    let t = Test::new()
        .pipeline(
            "q",
            r#"version: 1
secrets:
  TOKEN: { env: TOKEN_SECRET }
  VAULT: { command: [sh, -c, "echo \"token $TOKEN_SECRET rejected\" >&2; exit 3"] }
stages:
  a:
    run: 'true'
"#,
        )
        .env("TOKEN_SECRET", "tok-9f8e7d6c");
    let r = t.run(&["run", "q"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("token *** rejected"), "{r:?}");
    assert!(!r.stderr.contains("tok-9f8e7d6c"), "{r:?}");
}

/// A secret split by what a reader does not see (a colour reset, a carriage return, a
/// hyperlink, a C1 CSI, a bidi override) is masked in the terminal, the log, the JUnit report
/// and GitHub's log, while colours around it are kept in the log.
#[test]
fn secrets_split_by_escapes_are_masked() {
    let t = Test::new()
        .pipeline(
            "p",
            r#"version: 1
secrets: { TOKEN: { env: TOKEN_SECRET } }
stages:
  leak:
    run: |
      echo "$TOKEN" > /dev/null
      printf 'a hunt\033[0mer2-xyz\n'
      printf 'b hunter\r2-xyz\n'
      printf 'c hun\033]8;;http://x\033\\ter2-xyz\n'
      printf 'd hunt\302\2331mer2-xyz\n'
      printf 'e hun\342\200\256ter2-xyz\n'
      printf '\033[32mgreen\033[0m\n'
      exit 1
"#,
        )
        .env("TOKEN_SECRET", "hunter2-xyz");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 1, "{r:?}");
    let log = t.log("leak");
    let junit = t.junit();
    for line in ["a ***", "b ***", "c ***", "d ***", "e ***"] {
        assert!(log.contains(line), "{line}: {log:?}");
        assert!(junit.contains(line), "{line}: {junit}");
    }
    let visible = |s: &str| {
        let mut out = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\x1b' | '\u{9b}' => {
                    while chars
                        .next_if(|c| !c.is_ascii_alphabetic() && *c != '\\')
                        .is_some()
                    {}
                    chars.next();
                }
                c if c.is_control() && c != '\n' => {}
                '\u{202a}'..='\u{202e}' => {}
                c => out.push(c),
            }
        }
        out
    };
    for (what, text) in [("stderr", &r.stderr), ("log", &log), ("junit", &junit)] {
        assert!(!visible(text).contains("hunter2"), "{what}: {text:?}");
        assert!(!visible(text).contains("ter2-xyz"), "{what}: {text:?}");
    }
    assert!(log.contains("\x1b[32mgreen\x1b[0m"), "{log:?}");

    let r = t.github(&["run", "p"]).output().expect("run");
    // The runner is told the value to mask it itself; nothing else may hold it.
    let stdout: String = String::from_utf8_lossy(&r.stdout)
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(stdout.contains("a ***"), "{stdout}");
    assert!(!visible(&stdout).contains("ter2-xyz"), "{stdout}");
}

/// A script reaches its shell as a private file, never in an argv that every user reads
/// through `ps`; a secret in a `command:` argv is refused at validation, also through an `env`
/// entry that holds it.
#[test]
fn secrets_never_reach_an_argv() {
    let t = Test::new()
        .pipeline(
            "p",
            r#"version: 1
secrets: { TOKEN: { env: TOKEN_SECRET } }
stages:
  call:
    run: |
      echo "calling with ${{ TOKEN }}" > /dev/null
      tr '\0' ' ' < /proc/$$/cmdline > "$PORTCULLIS_RUN_DIR/cmdline"
"#,
        )
        .env("TOKEN_SECRET", "tok-5a4b3c2d");
    let r = t.run(&["run", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    let cmdline = std::fs::read_to_string(t.latest_run().join("cmdline")).expect("cmdline");
    assert!(!cmdline.contains("tok-5a4b3c2d"), "{cmdline}");
    assert!(!cmdline.contains("calling with"), "{cmdline}");
    assert!(cmdline.contains("scripts/call.sh"), "{cmdline}");
    assert!(
        !t.latest_run().join("scripts/call.sh").exists(),
        "the script file is removed when the stage ends"
    );

    let t = Test::new().pipeline(
        "q",
        r#"version: 1
secrets: { TOKEN: { env: TOKEN_SECRET } }
env: { AUTH: "Bearer ${{ TOKEN }}", PLAIN: x }
stages:
  direct:
    command: [curl, -H, "Authorization: Bearer ${{ TOKEN }}", "${{ PLAIN }}"]
  indirect:
    command: [curl, -H, "${{ AUTH }}"]
"#,
    );
    let r = t.run(&["validate", "q"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("`${{ TOKEN }}` would put a secret on the command line"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("`${{ AUTH }}` would put a secret on the command line"),
        "{r:?}"
    );
    assert!(r.stderr.contains("2 errors"), "{r:?}");
}

/// A password file a killed portcullis left behind is removed by the next run; one of a
/// process that still runs is left alone.
#[test]
fn stale_password_files_are_swept_by_the_next_run() {
    let t = Test::new().pipeline("p", "version: 1\nstages:\n  a:\n    run: 'true'\n");
    let tmp = t.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    // Pids above the kernel's limit never run.
    let dead = tmp.join(".portcullis-pgpass-4194399-deadbeef");
    let live = tmp.join(format!(
        ".portcullis-pgpass-{}-0000beef",
        std::process::id()
    ));
    for file in [&dead, &live] {
        std::fs::write(file, "*:*:*:*:hunter2\n").expect("plant");
    }
    let r = t
        .command(&["run", "p"])
        .env("TMPDIR", &tmp)
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(0));
    assert!(!dead.exists(), "a dead run's password file is removed");
    assert!(live.exists(), "a live process's password file is kept");
}

/// A pipeline file larger than the cap, or one that is not a regular file, is refused with a
/// clear error at once (a FIFO would block reading); so are outputs past their cap, a FIFO or
/// a symbolic link in place of `$PORTCULLIS_OUTPUT`, which fail their stage.
#[test]
fn oversized_and_special_files_are_refused() {
    let big = format!(
        "version: 1\nstages:\n  a:\n    run: 'true'\n{}",
        "# padding padding padding padding padding padding padding padding\n".repeat(70_000)
    );
    let t = Test::new().pipeline("big", &big);
    let r = t.run(&["validate", "big"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("more than the 4 MiB a pipeline file may hold"),
        "{r:?}"
    );

    let fifo = t.path().join("pipelines/fifo.yml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let mut child = t.spawn(&["validate", "fifo"]);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("portcullis blocked on a FIFO pipeline");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
    let out = child.wait_with_output().expect("output");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
        "{out:?}"
    );

    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  huge:
    run: head -c 2000000 /dev/zero | tr '\0' x | sed 's/^/K=/' >> "$PORTCULLIS_OUTPUT"
  fifo:
    run: rm -f "$PORTCULLIS_OUTPUT" && mkfifo "$PORTCULLIS_OUTPUT"
  link:
    run: rm -f "$PORTCULLIS_OUTPUT" && ln -s /etc/hostname "$PORTCULLIS_OUTPUT"
  fine:
    run: echo "K=v" >> "$PORTCULLIS_OUTPUT"
"#,
    );
    let r = t.run(&["run", "p", "--keep-going"]);
    assert_eq!(r.code, 1, "{r:?}");
    for (stage, reason) in [
        ("huge", "more than the 1 MiB all outputs may take"),
        ("fifo", "`$PORTCULLIS_OUTPUT` is not a regular file"),
        (
            "link",
            "`$PORTCULLIS_OUTPUT` was replaced by a symbolic link",
        ),
    ] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with(&format!("✗ {stage}  failed: ")) && l.contains(reason)),
            "{stage}: {r:?}"
        );
    }
    assert!(r.stderr.contains("✓ fine"), "{r:?}");
}

/// Names and reasons reach GitHub's job summary as text: no HTML, no link, no extra table
/// column, no code span left open; a name with a control character is refused.
#[test]
fn summary_shows_hostile_names_as_text() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
name: "rel <img src=x onerror=alert(1)> `x"
stages:
  a:
    name: "a | b ``c`` [link](http://e) <b>bold</b>"
    run: exit 3
  b:
    needs: [a]
    run: 'true'
  c:
    command: ["<img src=x>|`x"]
    if: always
"#,
    );
    let r = t.github(&["run", "p"]).output().expect("run");
    assert_eq!(r.status.code(), Some(1));
    let md = t.github_summary();
    // HTML and links only appear inside code spans, which show them as written.
    // Every table row has its four cells: five pipes not escaped.
    for row in md.lines().filter(|l| l.starts_with("| ")) {
        let pipes = row.matches('|').count() - row.matches("\\|").count();
        assert_eq!(pipes, 5, "{row}");
    }
    assert!(
        md.contains("## ❌ portcullis: ``rel <img src=x onerror=alert(1)> `x``"),
        "{md}"
    );
    assert!(
        md.contains("### First failure: ```a | b ``c`` [link](http://e) <b>bold</b>```"),
        "{md}"
    );
    assert!(
        md.contains("| ```a \\| b ``c`` [link](http://e) <b>bold</b>``` | ❌ failed |"),
        "{md}"
    );
    assert!(
        md.contains("s0[\"a | b ``c`` [link](http://e) #lt;b#gt;bold#lt;/b#gt;\"]:::failed"),
        "{md}"
    );
    assert!(
        md.contains("| `b` | ➖ skipped | 0.0s | needs `a`, which failed |"),
        "{md}"
    );

    let t = Test::new().pipeline(
        "q",
        "version: 1\nname: \"evil\\u001b]0;title\\u0007\"\nstages:\n  a:\n    run: 'true'\n",
    );
    let r = t.run(&["validate", "q"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("holds the control character U+001B"),
        "{r:?}"
    );
}

/// When whatever reads portcullis's stdout goes away (`| head`), the run still ends normally:
/// `$GITHUB_OUTPUT` and the job summary are written, and the exit code is the run's.
#[test]
fn github_files_are_written_when_stdout_closes_early() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  loud:\n    run: seq 1 200000\n  after:\n    needs: [loud]\n    run: exit 4\n",
    );
    let mut child = t
        .github(&["run", "p"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
    let written = t.github_output();
    assert!(written.contains("status<<"), "{written}");
    assert!(written.contains("\nfailed\n"), "{written}");
    let md = t.github_summary();
    assert!(md.contains("| `after` | ❌ failed |"), "{md}");
}

/// A pipeline that cannot run (exit 2) still writes `status=invalid` to `$GITHUB_OUTPUT`, so a
/// workflow's later steps can tell it from a failed run.
#[test]
fn github_output_says_invalid_on_exit_2() {
    let t = Test::new().pipeline("p", "version: 1\nstages:\n  a:\n    rnu: 'true'\n");
    let r = t.github(&["run", "p"]).output().expect("run");
    assert_eq!(r.status.code(), Some(2));
    let text = t.github_output();
    assert!(text.starts_with("status<<"), "{text}");
    assert!(text.contains("\ninvalid\n"), "{text}");
    assert!(!text.contains("junit"), "{text}");
}
