//! `portcullis hook`: the hook installed in a real repository, exercised by real `git push`es to a
//! local bare remote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{BIN, Run, Test, required};

/// A pipeline whose `gate` fails when a file `break` exists, and whose `docs` stage (only for
/// `docs/**`) leaves a marker where git ignores it.
const PIPELINE: &str = r#"version: 1
stages:
  gate:
    run: test ! -e break
  docs:
    paths: ["docs/**"]
    run: touch .portcullis/docs-ran
"#;

/// A working repository with one commit, its bare remote `origin`, and a `HOME` of its own so
/// that no user or system git configuration leaks in.
struct Repo {
    t: Test,
    outside: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let outside = tempfile::tempdir().expect("temp dir");
        let home = outside.path().join("home");
        std::fs::create_dir(&home).expect("mkdir home");
        let t = Test::new()
            .pipeline("ci", PIPELINE)
            .file("src/main.txt", "one\n")
            .file("docs/guide.md", "one\n")
            .env("HOME", home.to_str().expect("utf-8 temp path"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("PATH", search_path().to_str().expect("utf-8 PATH"));
        let repo = Repo { t, outside };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Portcullis Test"]);
        repo.git(&["config", "user.email", "test@example.invalid"]);
        repo.git(&["add", "."]);
        repo.git(&["commit", "-q", "-m", "first"]);
        let remote = repo.remote();
        let out = Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&remote)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", repo.outside.path().join("home"))
            .output()
            .expect("git init --bare");
        assert!(out.status.success(), "{out:?}");
        repo.git(&["remote", "add", "origin", remote.to_str().expect("utf-8")]);
        repo
    }

    fn remote(&self) -> PathBuf {
        self.outside.path().join("remote.git")
    }

    fn path(&self) -> &Path {
        self.t.path()
    }

    /// Runs git as a user would: the hook it runs starts portcullis, which must not see a CI
    /// job's `GITHUB_*` (it would write into the real job summary and outputs).
    fn git_output(&self, args: &[&str]) -> Output {
        self.command("git", args).output().expect("run git")
    }

    /// `program ARGS` in the repository as a user would run it: the hooks it starts find this
    /// build's `portcullis` first on `PATH`, and none of the switches a hook reads leaks in.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.outside.path().join("home"))
            .env("PATH", search_path())
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("PORTCULLIS_SKIP")
            .env_remove("PORTCULLIS_HOOK_CHAIN")
            .env_remove("LEFTHOOK")
            .env_remove("SKIP");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PRE_COMMIT") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// Runs a hook manager's command in the repository and asserts it succeeded.
    fn tool(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program, args).output().expect("run tool");
        assert!(out.status.success(), "{program} {args:?} failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Runs git and asserts it succeeded; returns its stdout, trimmed.
    fn git(&self, args: &[&str]) -> String {
        let out = self.git_output(args);
        assert!(out.status.success(), "git {args:?} failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn portcullis(&self, args: &[&str]) -> Run {
        self.t.run(args)
    }

    fn commit(&self, path: &str, contents: &str) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, contents).expect("write");
        self.git(&["add", "--", path]);
        self.git(&["commit", "-q", "-m", &format!("change {path}")]);
    }

    /// `git push origin HEAD`, returning the exit status and what was printed (stdout, where
    /// pre-commit writes, then stderr).
    fn push(&self) -> (bool, String) {
        self.push_with(&[])
    }

    fn push_with(&self, env: &[(&str, &str)]) -> (bool, String) {
        let mut cmd = self.command("git", &["push", "-q", "origin", "HEAD"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("git push");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// How many pipeline runs have left a folder so far.
    fn runs(&self) -> usize {
        std::fs::read_dir(self.path().join(".portcullis/runs"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name() != "latest")
                    .count()
            })
            .unwrap_or(0)
    }

    /// Where `branch` points in the remote, or `None` when it has no such branch.
    fn remote_head(&self, branch: &str) -> Option<String> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.remote())
            .args([
                "rev-parse",
                "--verify",
                "-q",
                &format!("refs/heads/{branch}"),
            ])
            .output()
            .expect("git rev-parse");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn hook(&self, name: &str) -> PathBuf {
        self.path().join(".git/hooks").join(name)
    }

    /// Whether the `docs` stage ran in the last pipeline run, and forgets that it did.
    fn docs_ran(&self) -> bool {
        let marker = self.path().join(".portcullis/docs-ran");
        let ran = marker.exists();
        let _ = std::fs::remove_file(marker);
        ran
    }
}

/// `PATH` with this build's `portcullis` first, as a hook manager's `portcullis` is found.
fn search_path() -> std::ffi::OsString {
    let bin = Path::new(BIN).parent().expect("bin folder").to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&rest))).expect("PATH")
}

/// Whether the hook manager `tool` runs here. When it does not, the test says so and is
/// skipped, unless `PORTCULLIS_REQUIRE` names it: then it fails.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn have(tool: &str, version_arg: &str) -> bool {
    let out = Command::new(tool).arg(version_arg).output();
    match out {
        Ok(out) if out.status.success() => true,
        _ if required(tool) => {
            panic!("`{tool}` is required (PORTCULLIS_REQUIRE) but does not run: {out:?}")
        }
        _ => {
            eprintln!("skipped: `{tool}` is not installed (python3 -m pip install {tool})");
            false
        }
    }
}

/// The pushes of `paths_filters_see_exactly_what_is_pushed`, for whichever hook is installed:
/// the first push runs everything, a push of `src/` leaves `docs` out, a push of `docs/` runs
/// it, and a new branch is compared with where it left the remote.
fn assert_paths_see_the_push(repo: &Repo) {
    let (ok, out) = repo.push();
    assert!(ok, "{out}");
    assert!(repo.docs_ran(), "first push: `docs` should run: {out}");

    repo.commit("src/main.txt", "two\n");
    let (ok, out) = repo.push();
    assert!(ok, "{out}");
    assert!(!repo.docs_ran(), "a push of `src/` only ran `docs`: {out}");
    assert!(
        std::fs::read_to_string(repo.path().join(".portcullis/runs/latest/junit.xml"))
            .expect("junit")
            .contains("matches its `paths`"),
        "`docs` should be skipped for its paths: {out}"
    );

    repo.commit("docs/guide.md", "two\n");
    let (ok, out) = repo.push();
    assert!(ok, "{out}");
    assert!(
        repo.docs_ran(),
        "a push of `docs/` did not run `docs`: {out}"
    );

    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.commit("src/main.txt", "three\n");
    let (ok, out) = repo.push();
    assert!(ok, "{out}");
    assert!(
        !repo.docs_ran(),
        "a new branch changing `src/` only ran `docs`: {out}"
    );
    assert!(repo.remote_head("feature").is_some());
    repo.git(&["checkout", "-q", "main"]);
}

/// A failing pipeline blocks the push with portcullis's line, and the remote does not move.
fn assert_a_failing_push_is_blocked(repo: &Repo) {
    let before = repo.remote_head("main");
    let runs = repo.runs();
    repo.commit("break", "");
    let (ok, out) = repo.push();
    assert!(!ok, "the push went through a failing pipeline: {out}");
    assert!(
        out.contains("portcullis: pipeline `ci` failed; push blocked"),
        "{out}"
    );
    assert!(!out.contains("migration mode"), "{out}");
    assert_eq!(repo.runs(), runs + 1, "one run per push: {out}");
    assert_eq!(repo.remote_head("main"), before, "the remote moved");
    repo.git(&["rm", "-q", "break"]);
    repo.git(&["commit", "-q", "-m", "mend"]);
}

/// A passing pipeline lets the push through, after one run.
fn assert_a_passing_push_goes_through(repo: &Repo) {
    let runs = repo.runs();
    let (ok, out) = repo.push();
    assert!(ok, "{out}");
    assert_eq!(
        repo.runs(),
        runs + 1,
        "the pipeline did not run once: {out}"
    );
    let head = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(repo.remote_head("main").as_deref(), Some(head.as_str()));
}

#[test]
fn a_passing_pipeline_lets_the_push_through_and_a_failing_one_blocks_it() {
    let repo = Repo::new();
    let out = repo.portcullis(&["hook", "install"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("installed the pre-push hook"),
        "{out:?}"
    );

    let (ok, err) = repo.push();
    assert!(ok, "{err}");
    assert!(
        repo.path()
            .join(".portcullis/runs/latest/junit.xml")
            .exists(),
        "the pipeline did not run: {err}"
    );
    let head = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(repo.remote_head("main").as_deref(), Some(head.as_str()));

    repo.commit("break", "");
    let (ok, err) = repo.push();
    assert!(!ok, "the push went through a failing pipeline: {err}");
    assert!(
        err.contains("portcullis: pipeline `ci` failed; push blocked (run `portcullis run --base "),
        "{err}"
    );
    assert!(
        err.contains("or push with PORTCULLIS_SKIP=1 to skip this gate)"),
        "{err}"
    );
    assert_eq!(
        repo.remote_head("main").as_deref(),
        Some(head.as_str()),
        "the remote moved"
    );
}

/// `paths:` sees what the push changes: the remote's commit is the base, and a new branch is
/// compared with where it left the remote's branches.
#[test]
fn paths_filters_see_exactly_what_is_pushed() {
    let repo = Repo::new();
    assert_eq!(repo.portcullis(&["hook", "install", "ci"]).code, 0);
    assert_paths_see_the_push(&repo);
}

#[test]
fn installing_twice_is_harmless() {
    let repo = Repo::new();
    assert_eq!(repo.portcullis(&["hook", "install"]).code, 0);
    let first = std::fs::read_to_string(repo.hook("pre-push")).expect("hook");
    let out = repo.portcullis(&["hook", "install"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("updated the pre-push hook"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(repo.hook("pre-push")).expect("hook"),
        first
    );
    assert!(!repo.hook("pre-push.local").exists());
    let (ok, err) = repo.push();
    assert!(ok, "{err}");
}

/// A hook portcullis did not write is refused without `--force`; with it, it becomes the
/// `.local` hook, runs first with git's input, can still block the push, and survives
/// `uninstall`.
#[test]
fn a_foreign_hook_is_kept_and_chained() {
    let repo = Repo::new();
    let seen = repo.outside.path().join("local.stdin");
    let foreign = format!(
        "#!/bin/sh\ncat > '{}'\n[ ! -e local-says-no ]\n",
        seen.display()
    );
    let hook = repo.hook("pre-push");
    std::fs::write(&hook, &foreign).expect("write hook");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&hook, mode).expect("chmod");

    let out = repo.portcullis(&["hook", "install"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("was not written by portcullis"),
        "{out:?}"
    );
    assert!(out.stderr.contains("help: ") && out.stderr.contains("pre-push.local"));
    assert_eq!(std::fs::read_to_string(&hook).expect("hook"), foreign);

    let out = repo.portcullis(&["hook", "install", "--force"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("moved the existing hook"), "{out:?}");
    let local = repo.hook("pre-push.local");
    assert_eq!(
        std::fs::read_to_string(&local).expect("local hook"),
        foreign
    );

    let (ok, err) = repo.push();
    assert!(ok, "{err}");
    let head = repo.git(&["rev-parse", "HEAD"]);
    let stdin = std::fs::read_to_string(&seen).expect("the local hook ran");
    assert!(
        stdin.contains(&format!(" {head} refs/heads/main ")),
        "{stdin:?}"
    );

    // The local hook still gates the push on its own.
    std::fs::write(repo.path().join("local-says-no"), "").expect("write");
    repo.commit("src/main.txt", "two\n");
    let (ok, err) = repo.push();
    assert!(!ok, "the local hook's failure did not block: {err}");
    assert_eq!(repo.remote_head("main").as_deref(), Some(head.as_str()));

    // Uninstalling gives the hook file back to what `--force` displaced.
    let out = repo.portcullis(&["hook", "uninstall"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("restored"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&hook).expect("hook"), foreign);
    assert!(!local.exists());
}

#[test]
fn uninstall_removes_only_ours() {
    let repo = Repo::new();
    let foreign = "#!/bin/sh\nexit 0\n";
    std::fs::write(repo.hook("pre-commit"), foreign).expect("write");
    assert_eq!(repo.portcullis(&["hook", "install"]).code, 0);
    let out = repo.portcullis(&["hook", "uninstall"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!repo.hook("pre-push").exists());
    assert!(out.stderr.contains("left `"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(repo.hook("pre-commit")).expect("hook"),
        foreign
    );
    let out = repo.portcullis(&["hook", "uninstall"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("no portcullis hook is installed"),
        "{out:?}"
    );
}

#[test]
fn core_hooks_path_is_honoured() {
    let repo = Repo::new();
    repo.git(&["config", "core.hooksPath", "team-hooks"]);
    let out = repo.portcullis(&["hook", "install"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(repo.path().join("team-hooks/pre-push").exists(), "{out:?}");
    assert!(!repo.hook("pre-push").exists());
    // `team-hooks/` is untracked; commit it so that the push is what the gate sees.
    repo.git(&["add", "team-hooks"]);
    repo.git(&["commit", "-q", "-m", "hooks"]);
    repo.commit("break", "");
    let (ok, err) = repo.push();
    assert!(!ok, "the hook in `core.hooksPath` did not run: {err}");
    assert!(err.contains("push blocked"), "{err}");
}

#[test]
fn the_pre_commit_hook_blocks_a_commit() {
    let repo = Repo::new();
    let out = repo.portcullis(&["hook", "install", "--pre-commit"]);
    assert_eq!(out.code, 0, "{out:?}");
    std::fs::write(repo.path().join("break"), "").expect("write");
    repo.git(&["add", "break"]);
    let out = repo.git_output(&["commit", "-q", "-m", "broken"]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pipeline `ci` failed; commit blocked (run `portcullis run` to see why, or commit with PORTCULLIS_SKIP=1"),
        "{err}"
    );
}

#[test]
fn outside_a_repository_is_a_usage_error() {
    let t = Test::new();
    let out = t.run(&["hook", "install"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("error: not inside a git working tree"),
        "{out:?}"
    );
    assert!(out.stderr.contains("help: "), "{out:?}");
}

/// `PORTCULLIS_SKIP=1` skips the pipeline and nothing else: the `.local` hook still runs, and
/// still blocks when it fails.
#[test]
fn portcullis_skip_skips_only_the_pipeline() {
    let repo = Repo::new();
    let ran = repo.outside.path().join("local-ran");
    let local = repo.hook("pre-push.local");
    std::fs::write(
        &local,
        format!(
            "#!/bin/sh\ntouch '{}'\n[ ! -e local-says-no ]\n",
            ran.display()
        ),
    )
    .expect("write");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&local, mode).expect("chmod");
    assert_eq!(repo.portcullis(&["hook", "install"]).code, 0);

    repo.commit("break", "");
    let (ok, out) = repo.push_with(&[("PORTCULLIS_SKIP", "1")]);
    assert!(ok, "{out}");
    assert!(ran.exists(), "the `.local` hook did not run: {out}");
    assert_eq!(repo.runs(), 0, "the pipeline ran: {out}");
    assert!(
        out.contains("PORTCULLIS_SKIP is set; pipeline `ci` skipped"),
        "{out}"
    );

    std::fs::write(repo.path().join("local-says-no"), "").expect("write");
    repo.commit("src/main.txt", "two\n");
    let (ok, out) = repo.push_with(&[("PORTCULLIS_SKIP", "1")]);
    assert!(!ok, "the `.local` hook's failure did not block: {out}");

    // `0` is not a request to skip.
    std::fs::remove_file(repo.path().join("local-says-no")).expect("rm");
    let (ok, out) = repo.push_with(&[("PORTCULLIS_SKIP", "0")]);
    assert!(!ok, "the failing pipeline was skipped: {out}");
    assert!(out.contains("push blocked"), "{out}");
}

/// A pre-commit config that runs the gate from this repository's `.pre-commit-hooks.yaml`
/// (`id: portcullis`), the repository taken from a clone of this checkout at its `HEAD`.
fn use_this_repository(repo: &Repo, extra_hooks: &str) {
    let clone = repo.outside.path().join("portcullis-clone");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg(&clone)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git clone");
    assert!(out.status.success(), "{out:?}");
    let rev = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(&clone)
            .args(["rev-parse", "HEAD"])
            .output()
            .expect("rev-parse")
            .stdout,
    )
    .expect("utf-8");
    let config = format!(
        "repos:\n  - repo: {}\n    rev: {}\n    hooks:\n      - id: portcullis\n{extra_hooks}",
        clone.display(),
        rev.trim()
    );
    std::fs::write(repo.path().join(".pre-commit-config.yaml"), config).expect("write");
    repo.git(&["add", ".pre-commit-config.yaml"]);
    repo.git(&["commit", "-q", "-m", "pre-commit"]);
    let out = repo.tool("pre-commit", &["install", "--hook-type", "pre-push"]);
    assert!(out.contains("pre-commit installed at"), "{out}");
}

#[test]
fn pre_commit_runs_the_gate_from_this_repository() {
    if !have("pre-commit", "--version") {
        return;
    }
    let repo = Repo::new();
    use_this_repository(&repo, "");
    assert_a_passing_push_goes_through(&repo);
    assert_a_failing_push_is_blocked(&repo);
    assert_a_passing_push_goes_through(&repo);
}

/// Under pre-commit, which reads git's input itself, `paths:` still sees exactly the push.
#[test]
fn pre_commit_paths_filters_see_exactly_what_is_pushed() {
    if !have("pre-commit", "--version") {
        return;
    }
    let repo = Repo::new();
    use_this_repository(&repo, "");
    assert_paths_see_the_push(&repo);
}

/// Under pre-commit, `PORTCULLIS_SKIP=1` skips the gate and leaves the other hooks running.
#[test]
fn pre_commit_portcullis_skip_leaves_the_other_hooks() {
    if !have("pre-commit", "--version") {
        return;
    }
    let repo = Repo::new();
    let other = "  - repo: local\n    hooks:\n      - id: other\n        name: other\n        \
                 entry: sh -c 'test ! -e other-says-no'\n        language: system\n        \
                 pass_filenames: false\n        always_run: true\n        stages: [pre-push]\n";
    use_this_repository(&repo, other);
    repo.commit("break", "");
    let (ok, out) = repo.push_with(&[("PORTCULLIS_SKIP", "1")]);
    assert!(ok, "{out}");
    assert_eq!(repo.runs(), 0, "the pipeline ran: {out}");
    std::fs::write(repo.path().join("other-says-no"), "").expect("write");
    repo.commit("src/main.txt", "two\n");
    let (ok, out) = repo.push_with(&[("PORTCULLIS_SKIP", "1")]);
    assert!(!ok, "the other hook was skipped too: {out}");
    assert!(out.contains("other") && out.contains("Failed"), "{out}");
}

const NOOP_PRE_COMMIT: &str = "\
# the team's hooks
repos:
  - repo: local
    hooks:
      - id: noop
        name: noop
        entry: \"true\"
        language: system
        stages: [pre-commit]
";

/// `hook install` where pre-commit runs the hooks adds the gate to `.pre-commit-config.yaml`
/// and lets pre-commit own `pre-push`; pre-commit's own installs afterwards keep it gated, and
/// `hook uninstall` gives the config back as it was.
#[test]
fn hook_install_under_pre_commit_adds_the_gate_to_its_config() {
    if !have("pre-commit", "--version") {
        return;
    }
    let repo = Repo::new();
    let config = repo.path().join(".pre-commit-config.yaml");
    std::fs::write(&config, NOOP_PRE_COMMIT).expect("write");
    repo.git(&["add", ".pre-commit-config.yaml"]);
    repo.git(&["commit", "-q", "-m", "pre-commit"]);
    repo.tool("pre-commit", &["install"]);

    let out = repo.portcullis(&["hook", "install"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("added the portcullis gate to `.pre-commit-config.yaml`"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("git add .pre-commit-config.yaml"),
        "{out:?}"
    );
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(
        text.contains("entry: portcullis hook run pre-push"),
        "{text}"
    );
    assert!(
        text.contains("default_install_hook_types: [pre-commit, pre-push]"),
        "{text}"
    );
    let hook = std::fs::read_to_string(repo.hook("pre-push")).expect("pre-commit's hook");
    assert!(hook.contains("File generated by pre-commit"), "{hook}");
    assert!(!repo.hook("pre-push.local").exists());
    assert!(!repo.hook("pre-push.legacy").exists());

    repo.git(&["commit", "-q", "-a", "-m", "gate"]);
    assert_a_passing_push_goes_through(&repo);
    assert_a_failing_push_is_blocked(&repo);

    // pre-commit's own installs, plain and for pre-push, leave the push gated.
    repo.tool("pre-commit", &["install"]);
    repo.tool("pre-commit", &["install", "--hook-type", "pre-push"]);
    assert_a_failing_push_is_blocked(&repo);
    assert_a_passing_push_goes_through(&repo);

    // Installing again finds the gate already there.
    let out = repo.portcullis(&["hook", "install"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("already runs the portcullis gate"),
        "{out:?}"
    );

    let out = repo.portcullis(&["hook", "uninstall"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        NOOP_PRE_COMMIT
    );
    repo.git(&["commit", "-q", "-a", "-m", "no gate"]);
    let runs = repo.runs();
    repo.commit("break", "");
    let (ok, out) = repo.push();
    assert!(ok, "{out}");
    assert_eq!(repo.runs(), runs, "the pipeline still ran: {out}");
}

/// The reproduction of the loop: portcullis's hook kept as `pre-push.legacy` by pre-commit's
/// migration mode, then `hook install --force`. Every push used to fail with pre-commit's
/// "migration mode" bug; now the gate moves into pre-commit's config and the legacy hook goes.
#[test]
fn hook_install_over_pre_commit_migration_mode_does_not_loop() {
    if !have("pre-commit", "--version") {
        return;
    }
    let repo = Repo::new();
    assert_eq!(repo.portcullis(&["hook", "install"]).code, 0);
    std::fs::write(repo.path().join(".pre-commit-config.yaml"), NOOP_PRE_COMMIT).expect("write");
    repo.git(&["add", ".pre-commit-config.yaml"]);
    repo.git(&["commit", "-q", "-m", "pre-commit"]);
    let out = repo.tool("pre-commit", &["install", "--hook-type", "pre-push"]);
    assert!(out.contains("migration mode"), "{out}");
    assert!(repo.hook("pre-push.legacy").exists());

    let out = repo.portcullis(&["hook", "install", "--force"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!repo.hook("pre-push.legacy").exists(), "{out:?}");
    assert!(!repo.hook("pre-push.local").exists(), "{out:?}");
    repo.git(&["commit", "-q", "-a", "-m", "gate"]);
    assert_a_passing_push_goes_through(&repo);
    assert_a_failing_push_is_blocked(&repo);

    let out = repo.tool("pre-commit", &["install", "--hook-type", "pre-push"]);
    assert!(!out.contains("migration mode"), "{out}");
    assert_a_failing_push_is_blocked(&repo);
    assert_a_passing_push_goes_through(&repo);
}

/// A team's lefthook config, with a pre-push command of its own beside which the gate runs.
const LEFTHOOK: &str = "\
pre-commit:
  commands:
    hello:
      run: echo hello
pre-push:
  commands:
    lint:
      run: echo lint-ran
";

/// The reproduction of the silent loss: `lefthook install` renames portcullis's hook
/// `pre-push.old` and never runs it. `hook install` then puts the gate in lefthook's local
/// config, where neither `lefthook install` nor lefthook's re-sync after a config change can
/// displace it; `hook uninstall` takes it out again.
#[test]
fn hook_install_under_lefthook_survives_its_installs_and_config_changes() {
    if !have("lefthook", "version") {
        return;
    }
    let repo = Repo::new();
    assert_eq!(repo.portcullis(&["hook", "install"]).code, 0);
    std::fs::write(repo.path().join("lefthook.yml"), LEFTHOOK).expect("write");
    repo.git(&["add", "lefthook.yml"]);
    repo.git(&["commit", "-q", "-m", "lefthook"]);
    repo.tool("lefthook", &["install"]);
    assert!(
        repo.hook("pre-push.old").exists(),
        "lefthook did not set our hook aside as `pre-push.old`"
    );

    let out = repo.portcullis(&["hook", "install"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("added the portcullis gate to `lefthook-local.yml`"),
        "{out:?}"
    );
    assert!(!repo.hook("pre-push.old").exists(), "{out:?}");
    let hook = std::fs::read_to_string(repo.hook("pre-push")).expect("lefthook's hook");
    assert!(hook.contains("call_lefthook"), "{hook}");
    // The local config is this clone's: git does not list it.
    assert_eq!(
        repo.git(&["status", "--porcelain", "--", "lefthook-local.yml"]),
        ""
    );

    assert_a_passing_push_goes_through(&repo);
    assert_a_failing_push_is_blocked(&repo);
    // The team's own pre-push command still runs beside the gate.
    let (ok, out) = repo.push();
    assert!(ok && out.contains("lint-ran"), "{out}");

    repo.tool("lefthook", &["install"]);
    assert_a_failing_push_is_blocked(&repo);

    // A changed `lefthook.yml` makes lefthook re-sync its hooks at the next hook it runs (the
    // commit's); the push after it is still gated.
    std::fs::write(
        repo.path().join("lefthook.yml"),
        format!("{LEFTHOOK}    again:\n      run: echo again\n"),
    )
    .expect("write");
    repo.git(&["commit", "-q", "-a", "-m", "lefthook changed"]);
    assert_a_failing_push_is_blocked(&repo);
    assert_a_passing_push_goes_through(&repo);

    let out = repo.portcullis(&["hook", "uninstall"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!repo.path().join("lefthook-local.yml").exists(), "{out:?}");
    let runs = repo.runs();
    repo.commit("break", "");
    let (ok, out) = repo.push();
    assert!(ok, "{out}");
    assert_eq!(repo.runs(), runs, "the pipeline still ran: {out}");
}

/// Under lefthook (`use_stdin: true`, `{1} {2}`), `paths:` sees exactly the push.
#[test]
fn lefthook_paths_filters_see_exactly_what_is_pushed() {
    if !have("lefthook", "version") {
        return;
    }
    let repo = Repo::new();
    std::fs::write(repo.path().join("lefthook.yml"), LEFTHOOK).expect("write");
    repo.git(&["add", "lefthook.yml"]);
    repo.git(&["commit", "-q", "-m", "lefthook"]);
    repo.tool("lefthook", &["install"]);
    let out = repo.portcullis(&["hook", "install", "ci"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_paths_see_the_push(&repo);
}

/// A config portcullis cannot edit safely is left as it was, and the snippet is printed.
#[test]
fn hook_install_prints_what_it_cannot_write() {
    let repo = Repo::new();
    let flow = "repos: [{repo: local, hooks: []}]\n";
    std::fs::write(repo.path().join(".pre-commit-config.yaml"), flow).expect("write");
    let out = repo.portcullis(&["hook", "install"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stdout.contains("entry: portcullis hook run pre-push"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("pre-commit runs this repository's hooks"),
        "{out:?}"
    );
    assert!(out.stderr.contains("help: "), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(repo.path().join(".pre-commit-config.yaml")).expect("config"),
        flow
    );
    assert!(!repo.hook("pre-push").exists());
}
