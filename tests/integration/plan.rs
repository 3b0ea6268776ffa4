use crate::harness::{BIN, Test};

const PIPELINE: &str = r#"version: 1
name: release
stages:
  lint:
    run: ruff check .
  test:
    needs: [lint]
    retries: 1
    run: pytest
  ports:
    needs: [lint]
    command: [echo, ports]
  end:
    needs: [test, ports]
    run: ./deploy.sh
    rollback: ./undo.sh
  notify:
    needs: [end]
    if: always
    run: ./notify.sh
"#;

#[test]
fn plan_lists_stages_in_order_with_what_each_waits_for() {
    let t = Test::new().pipeline("release", PIPELINE);
    let out = t.run(&["plan", "release"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("pipeline `release` (pipelines/release.yml): 5 stages, at most "),
        "{}",
        lines[0]
    );
    let order: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains(". "))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(order, ["lint", "test", "ports", "end", "notify"]);
    assert!(
        out.stdout.contains("test    level 1  waits for lint"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("end     level 2  waits for test, ports"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("waits for end, if always"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("retries 1"), "{}", out.stdout);
    assert!(out.stdout.contains("has rollback"), "{}", out.stdout);
}

#[test]
fn graph_prints_mermaid_and_dot() {
    let t = Test::new().pipeline("release", PIPELINE);
    let mermaid = t.run(&["graph", "release"]);
    assert_eq!(mermaid.code, 0);
    assert!(
        mermaid.stdout.starts_with("flowchart TD\n"),
        "{}",
        mermaid.stdout
    );
    assert!(
        mermaid.stdout.contains("s3[\"end\"]"),
        "a stage named `end` gets a safe node id: {}",
        mermaid.stdout
    );
    assert!(
        mermaid.stdout.contains("s1 --> s3") && mermaid.stdout.contains("s2 --> s3"),
        "{}",
        mermaid.stdout
    );
    assert!(
        mermaid.stdout.contains("s3 -.-> s4"),
        "conditional edges are dashed: {}",
        mermaid.stdout
    );

    let dot = t.run(&["graph", "release", "--format", "dot"]);
    assert_eq!(dot.code, 0);
    assert!(
        dot.stdout.starts_with("digraph \"release\" {"),
        "{}",
        dot.stdout
    );
    assert!(
        dot.stdout.contains("\"lint\" -> \"test\";"),
        "{}",
        dot.stdout
    );
    assert!(
        dot.stdout.contains("\"end\" -> \"notify\" [style=dashed];"),
        "{}",
        dot.stdout
    );
}

/// The pipelines this repository ships are valid.
#[test]
fn shipped_pipelines_validate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(crate::harness::BIN)
        .arg("validate")
        .current_dir(root)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pipelines/ci.yml: valid"), "{stdout}");
    assert!(stdout.contains("pipelines/demo.yml: valid"), "{stdout}");
}

/// The README's first command: the demo runs green out of the box.
#[test]
fn demo_pipeline_runs_out_of_the_box() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = Test::new().file(
        "pipelines/demo.yml",
        &std::fs::read_to_string(root.join("pipelines/demo.yml")).expect("demo.yml"),
    );
    // The demo's port-law stage scans this tree.
    crate::harness::copy_tree(
        &root.join("fixtures/ports/compliant"),
        &t.path().join("fixtures/ports/compliant"),
    );
    let out = t.run(&["run", "demo"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("warning"),
        "the demo shows an allowed failure: {out:?}"
    );
    assert!(
        out.stderr.contains("retrying"),
        "the demo shows a retry: {out:?}"
    );
    let broken = t.run(&["run", "demo", "--var", "BREAK=smoke"]);
    assert_eq!(broken.code, 1, "{broken:?}");
    assert!(
        broken.stderr.contains("rolled back"),
        "the broken demo rolls back: {broken:?}"
    );
}

/// What bash's completion offers for a command line whose last word is being completed, run
/// by a real bash from `dir` with the script of `completions bash`.
fn bash_completes(t: &Test, dir: &std::path::Path, words: &[&str]) -> Vec<String> {
    let script = t.run(&["completions", "bash"]).stdout;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let driver = format!(
        "{script}\nCOMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_TYPE=9\n\
         _clap_complete_portcullis portcullis \"${{COMP_WORDS[COMP_CWORD]}}\" x\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" ")
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(driver)
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                std::path::Path::new(BIN)
                    .parent()
                    .expect("bin dir")
                    .display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("run bash");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Pipeline names and the named pipeline's stages are completed, from a subfolder too, and
/// nothing is printed on the prompt.
#[test]
fn completion_offers_pipeline_and_stage_names() {
    let t = Test::new()
        .pipeline("deploy", "version: 1\nstages:\n  build:\n    run: 'true'\n  ship:\n    name: Ship it\n    needs: [build]\n    run: 'true'\n")
        .pipeline("ci", "version: 1\nstages:\n  lint:\n    run: 'true'\n")
        .file("src/app/.keep", "");
    let sub = t.path().join("src/app");
    let pipelines = bash_completes(&t, &sub, &["portcullis", "run", ""]);
    assert!(
        pipelines.contains(&"deploy".to_owned()) && pipelines.contains(&"ci".to_owned()),
        "{pipelines:?}"
    );
    assert_eq!(
        bash_completes(&t, &sub, &["portcullis", "run", "dep"]),
        ["deploy"]
    );
    assert_eq!(
        bash_completes(&t, &sub, &["portcullis", "run", "deploy", "--only", ""]),
        ["build", "ship"]
    );
    assert_eq!(
        bash_completes(
            &t,
            t.path(),
            &["portcullis", "run", "-j", "2", "deploy", "--skip", "s"]
        ),
        ["ship"]
    );
    assert_eq!(
        bash_completes(&t, t.path(), &["portcullis", "run", "ci", "--from", ""]),
        ["lint"]
    );
    assert_eq!(
        bash_completes(&t, t.path(), &["portcullis", "pla"]),
        ["plan"]
    );
}

/// Completions and the man page come from the CLI definition and know every subcommand.
#[test]
fn completions_and_man_page() {
    let t = Test::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = t.run(&["completions", shell]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("COMPLETE"), "{shell}: {}", out.stdout);
    }
    let bash = t.run(&["completions", "bash"]);
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg("-c")
        .arg(&bash.stdout)
        .status();
    if let Ok(status) = check {
        assert!(status.success(), "the bash completion script parses");
    }
    let man = t.run(&["man"]);
    assert_eq!(man.code, 0);
    assert!(
        man.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &man.stdout[..80.min(man.stdout.len())]
    );
    assert!(man.stdout.contains(".TH portcullis 1"), "roff title");
    assert!(
        man.stdout.contains("\\fBportcullis run\\fR"),
        "subcommands listed"
    );
    // No page of its own is named for a subcommand: none is installed.
    assert!(
        !man.stdout.contains("portcullis\\-run(1)"),
        "{}",
        man.stdout
    );
    assert!(man.stdout.contains("Exit status:"), "exit codes");
    let help = t.run(&["--help"]);
    for section in [
        "Exit status:",
        "130  interrupted",
        "Environment:",
        "GITHUB_ACTIONS",
    ] {
        assert!(help.stdout.contains(section), "{section}: {}", help.stdout);
    }
    assert_eq!(
        t.run(&["completions", "tcsh"]).code,
        2,
        "an unknown shell is a usage error"
    );
}
