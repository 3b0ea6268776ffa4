//! `portcullis hook`: the hook installed in a real repository, exercised by real `git push`es to a
//! local bare remote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{Run, Test};

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
            .env("GIT_CONFIG_NOSYSTEM", "1");
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
        Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.outside.path().join("home"))
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .output()
            .expect("run git")
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

    /// `git push origin HEAD`, returning the exit status and stderr.
    fn push(&self) -> (bool, String) {
        let out = self.git_output(&["push", "-q", "origin", "HEAD"]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
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

    // The first push has nothing on the remote to compare with: everything runs.
    let (ok, err) = repo.push();
    assert!(ok, "{err}");
    assert!(repo.docs_ran(), "first push: `docs` should run");

    repo.commit("src/main.txt", "two\n");
    let (ok, err) = repo.push();
    assert!(ok, "{err}");
    assert!(!repo.docs_ran(), "a push of `src/` only ran `docs`");
    assert!(
        std::fs::read_to_string(repo.path().join(".portcullis/runs/latest/junit.xml"))
            .expect("junit")
            .contains("matches its `paths`"),
        "`docs` should be skipped for its paths"
    );

    repo.commit("docs/guide.md", "two\n");
    let (ok, err) = repo.push();
    assert!(ok, "{err}");
    assert!(repo.docs_ran(), "a push of `docs/` did not run `docs`");

    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.commit("src/main.txt", "three\n");
    let (ok, err) = repo.push();
    assert!(ok, "{err}");
    assert!(
        !repo.docs_ran(),
        "a new branch changing `src/` only ran `docs`"
    );
    assert!(repo.remote_head("feature").is_some());
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

    let out = repo.portcullis(&["hook", "uninstall"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("removed"), "{out:?}");
    assert!(!hook.exists());
    assert_eq!(
        std::fs::read_to_string(&local).expect("local hook"),
        foreign
    );
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
        err.contains("pipeline `ci` failed; commit blocked (run `portcullis run` to see why"),
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
