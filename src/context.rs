//! What a run is about: the branch, commit, tag and event, as `PORTCULLIS_BRANCH`,
//! `PORTCULLIS_COMMIT`, `PORTCULLIS_TAG` and `PORTCULLIS_EVENT`.
//!
//! Read, for each name separately, from the first of: the variable itself when it is set (a
//! hook, a test or a user says so), GitHub Actions' environment, GitLab CI's environment, the
//! git repository portcullis runs in. Every name always has a value, empty when unknown (a
//! detached checkout has no branch, most commits no tag), so `if:` and `${{ ... }}` can use them
//! anywhere. Events are said in one vocabulary whatever the engine: `push`, `pull_request`
//! (GitLab's merge request events too), `schedule`, `manual` (GitHub's `workflow_dispatch`,
//! GitLab's `web`), `local` outside CI; other engine events keep their own name.

use std::path::Path;
use std::process::{Command, Stdio};

pub(crate) const BRANCH: &str = "PORTCULLIS_BRANCH";
pub(crate) const COMMIT: &str = "PORTCULLIS_COMMIT";
pub(crate) const TAG: &str = "PORTCULLIS_TAG";
pub(crate) const EVENT: &str = "PORTCULLIS_EVENT";

/// The context of a run in `dir`, from this process's environment and git.
pub(crate) fn current(dir: &Path) -> Vec<(String, String)> {
    detect(&|name| std::env::var(name).ok(), &|args| git(dir, args))
}

/// The context from `env` (a variable's value) and `git` (the trimmed output of a git command
/// that succeeded).
pub(crate) fn detect(
    env: &dyn Fn(&str) -> Option<String>,
    git: &dyn Fn(&[&str]) -> Option<String>,
) -> Vec<(String, String)> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let github = env("GITHUB_ACTIONS").as_deref() == Some("true");
    let gitlab = env("GITLAB_CI").as_deref() == Some("true");
    let (branch, commit, tag, event) = if github {
        let reference = set("GITHUB_REF").unwrap_or_default();
        let branch = set("GITHUB_HEAD_REF")
            .or_else(|| reference.strip_prefix("refs/heads/").map(str::to_owned));
        let tag = reference.strip_prefix("refs/tags/").map(str::to_owned);
        let event = set("GITHUB_EVENT_NAME").map(|e| github_event(&e).to_owned());
        (branch, set("GITHUB_SHA"), tag, event)
    } else if gitlab {
        let branch = set("CI_COMMIT_BRANCH").or_else(|| set("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"));
        let event = set("CI_PIPELINE_SOURCE").map(|e| gitlab_event(&e).to_owned());
        (branch, set("CI_COMMIT_SHA"), set("CI_COMMIT_TAG"), event)
    } else {
        (None, None, None, Some("local".to_owned()))
    };
    let from_git = !github && !gitlab;
    let branch = set(BRANCH).or(branch).or_else(|| {
        from_git
            .then(|| git(&["symbolic-ref", "--quiet", "--short", "HEAD"]))
            .flatten()
    });
    let commit = set(COMMIT)
        .or(commit)
        .or_else(|| git(&["rev-parse", "--verify", "--quiet", "HEAD"]));
    let tag = set(TAG).or(tag).or_else(|| {
        from_git
            .then(|| git(&["tag", "--points-at", "HEAD", "--sort=-version:refname"]))
            .flatten()
            .and_then(|tags| tags.lines().next().map(str::to_owned))
    });
    let event = set(EVENT).or(event);
    [
        (BRANCH, branch),
        (COMMIT, commit),
        (TAG, tag),
        (EVENT, event),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.unwrap_or_default()))
    .collect()
}

fn github_event(event: &str) -> &str {
    match event {
        "pull_request" | "pull_request_target" => "pull_request",
        "workflow_dispatch" => "manual",
        other => other,
    }
}

fn gitlab_event(event: &str) -> &str {
    match event {
        "merge_request_event" | "external_pull_request_event" => "pull_request",
        "web" => "manual",
        other => other,
    }
}

/// The output of `git ARGS` in `dir`, trimmed; `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn context(env: &[(&str, &str)], git: &[(&str, &str)]) -> HashMap<String, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let git: HashMap<String, String> = git
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        detect(&|n| env.get(n).cloned(), &|args| git.get(args[0]).cloned())
            .into_iter()
            .collect()
    }

    const REPO: [(&str, &str); 3] = [
        ("symbolic-ref", "feature/login"),
        ("rev-parse", "0123abcd"),
        ("tag", "v1.2.0\nv1.1.0"),
    ];

    #[test]
    fn local_runs_read_git() {
        let c = context(&[], &REPO);
        assert_eq!(c[BRANCH], "feature/login");
        assert_eq!(c[COMMIT], "0123abcd");
        assert_eq!(c[TAG], "v1.2.0");
        assert_eq!(c[EVENT], "local");
        // Outside a repository every name is still there, empty.
        let c = context(&[], &[]);
        assert_eq!((c[BRANCH].as_str(), c[COMMIT].as_str()), ("", ""));
    }

    #[test]
    fn github_push_pull_request_and_tag() {
        let push = context(
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/heads/main"),
                ("GITHUB_HEAD_REF", ""),
                ("GITHUB_SHA", "f00d"),
                ("GITHUB_EVENT_NAME", "push"),
            ],
            &REPO,
        );
        assert_eq!(
            (&*push[BRANCH], &*push[COMMIT], &*push[TAG], &*push[EVENT]),
            ("main", "f00d", "", "push")
        );
        let pr = context(
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/pull/7/merge"),
                ("GITHUB_HEAD_REF", "fix/typo"),
                ("GITHUB_EVENT_NAME", "pull_request_target"),
            ],
            &REPO,
        );
        assert_eq!((&*pr[BRANCH], &*pr[EVENT]), ("fix/typo", "pull_request"));
        let tag = context(
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/tags/v2.0.0"),
                ("GITHUB_EVENT_NAME", "push"),
            ],
            &REPO,
        );
        // A CI checkout is detached: git's branch is not asked.
        assert_eq!((&*tag[BRANCH], &*tag[TAG]), ("", "v2.0.0"));
        let manual = context(
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ],
            &REPO,
        );
        assert_eq!(manual[EVENT], "manual");
    }

    #[test]
    fn gitlab_branch_merge_request_and_tag() {
        let mr = context(
            &[
                ("GITLAB_CI", "true"),
                ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feat/x"),
                ("CI_COMMIT_SHA", "beef"),
                ("CI_PIPELINE_SOURCE", "merge_request_event"),
            ],
            &REPO,
        );
        assert_eq!(
            (&*mr[BRANCH], &*mr[COMMIT], &*mr[TAG], &*mr[EVENT]),
            ("feat/x", "beef", "", "pull_request")
        );
        let tag = context(
            &[
                ("GITLAB_CI", "true"),
                ("CI_COMMIT_TAG", "v3"),
                ("CI_PIPELINE_SOURCE", "web"),
            ],
            &REPO,
        );
        assert_eq!((&*tag[TAG], &*tag[EVENT]), ("v3", "manual"));
    }

    #[test]
    fn set_variables_win() {
        let c = context(
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/heads/main"),
                (BRANCH, "release/1"),
                (EVENT, "push"),
            ],
            &REPO,
        );
        assert_eq!((&*c[BRANCH], &*c[EVENT]), ("release/1", "push"));
    }
}
