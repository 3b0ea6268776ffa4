//! The lines added or changed since a base ref, from git.
//!
//! The main function is [`changed_lines`]: `git diff -U0 BASE` in the working tree (what is
//! committed since BASE, staged or not), plus files git does not track yet, which are new in
//! every line. Hunk headers are all that is read: `@@ -a,b +c,d @@` says lines `c..c+d` of the
//! new file are added or changed. Paths come from git relative to the repository's top and are
//! keyed by their canonical path, like the files of a coverage report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::supervisor::child;

/// The changed lines of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lines {
    /// A file git does not track: every line is new.
    All,
    /// Ranges of new-file lines, `(first, count)`.
    Ranges(Vec<(u32, u32)>),
}

impl Lines {
    pub(crate) fn contains(&self, line: u32) -> bool {
        match self {
            Lines::All => true,
            Lines::Ranges(r) => r
                .iter()
                .any(|&(first, count)| line >= first && line < first.saturating_add(count)),
        }
    }
}

/// The most diff text read: a change larger than this is not a change to gate line by line.
const MAX_DIFF: usize = 256 << 20;

/// Changed lines since `base`, by canonical path.
pub(crate) async fn changed_lines(
    workdir: &Path,
    base: &str,
    env: &[(String, String)],
    cancel: &CancellationToken,
) -> Result<HashMap<PathBuf, Lines>, String> {
    // A ref never starts with `-`; one that does would reach git as an option.
    if base.starts_with('-') {
        return Err(format!("`{base}` is not a commit, branch or tag"));
    }
    let top = git(workdir, env, cancel, &["rev-parse", "--show-toplevel"]).await?;
    let top = PathBuf::from(top.trim_end_matches('\n'));
    let commit = git(
        workdir,
        env,
        cancel,
        &[
            "rev-parse",
            "--verify",
            "--end-of-options",
            &format!("{base}^{{commit}}"),
        ],
    )
    .await
    .map_err(|e| format!("base `{base}` is not a commit here: {e}"))?;
    // What this branch changed since it left the base (as a pull request shows it), not what
    // the base changed since: the merge base, when there is one.
    let since = match git(workdir, env, cancel, &["merge-base", commit.trim(), "HEAD"]).await {
        Ok(merge_base) => merge_base.trim().to_owned(),
        Err(_) => commit.trim().to_owned(),
    };
    // Prefixes, colour, external diff tools and path quoting are fixed here: a user's git
    // configuration must not change what is parsed.
    let diff = git(
        &top,
        env,
        cancel,
        &[
            "-c",
            "core.quotePath=false",
            "diff",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            &since,
            "--",
        ],
    )
    .await?;
    let untracked = git(
        &top,
        env,
        cancel,
        &["ls-files", "--others", "--exclude-standard", "-z"],
    )
    .await?;
    let key = |rel: &str| {
        let p = top.join(rel);
        std::fs::canonicalize(&p).unwrap_or(p)
    };
    let mut changed: HashMap<PathBuf, Lines> = parse_diff(&diff)
        .into_iter()
        .map(|(path, ranges)| (key(&path), Lines::Ranges(ranges)))
        .collect();
    for path in untracked.split('\0').filter(|p| !p.is_empty()) {
        changed.insert(key(path), Lines::All);
    }
    Ok(changed)
}

async fn git(
    dir: &Path,
    env: &[(String, String)],
    cancel: &CancellationToken,
    args: &[&str],
) -> Result<String, String> {
    let mut command = tokio::process::Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    let limits = child::Limits {
        stdout: child::Keep::Head(MAX_DIFF),
        stderr: 16 * 1024,
    };
    let shown = format!("git {}", args.join(" "));
    match child::capture(&mut command, limits, None, cancel, child::HELPER_GRACE).await {
        Ok(child::Finished::Exited(done)) if done.stdout_overflowed => Err(format!(
            "`{shown}` printed more than {} MiB",
            MAX_DIFF >> 20
        )),
        Ok(child::Finished::Exited(done)) if done.status.success() => {
            Ok(String::from_utf8_lossy(&done.stdout).into_owned())
        }
        Ok(child::Finished::Exited(done)) => Err(format!(
            "`{shown}` failed: {}",
            String::from_utf8_lossy(&done.stderr).trim()
        )),
        Ok(child::Finished::TimedOut | child::Finished::Cancelled) => Err("cancelled".into()),
        Err(e) => Err(format!("cannot run `git`: {e}")),
    }
}

/// The added or changed line ranges of each file of a `git diff -U0` with `b/` prefixes.
pub(crate) fn parse_diff(text: &str) -> Vec<(String, Vec<(u32, u32)>)> {
    let mut files: Vec<(String, Vec<(u32, u32)>)> = Vec::new();
    let mut current: Option<usize> = None;
    // Within a file's header, before its first hunk: an added line that reads `++ x` shows as
    // `+++ x` in a hunk and is not a file name.
    let mut header = false;
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with("diff --git ") {
            current = None;
            header = true;
        } else if header && let Some(rest) = line.strip_prefix("+++ ") {
            let path = unquote(rest);
            if let Some(p) = path.strip_prefix("b/") {
                files.push((p.to_owned(), Vec::new()));
                current = Some(files.len() - 1);
            }
        } else if let Some(rest) = line.strip_prefix("@@ ") {
            header = false;
            if let Some(i) = current
                && let Some(range) = added_range(rest)
                && range.1 > 0
            {
                files[i].1.push(range);
            }
        }
    }
    files.retain(|(_, r)| !r.is_empty());
    files
}

/// `-a,b +c,d @@ ...` → `(c, d)`, `d` being 1 when left out.
fn added_range(header: &str) -> Option<(u32, u32)> {
    let plus = header.split_whitespace().find(|w| w.starts_with('+'))?;
    let plus = &plus[1..];
    let (first, count) = match plus.split_once(',') {
        Some((f, c)) => (f.parse().ok()?, c.parse().ok()?),
        None => (plus.parse().ok()?, 1),
    };
    Some((first, count))
}

/// A path git quoted (`"b/caf\303\251.py"`): the quotes and C escapes undone.
fn unquote(path: &str) -> String {
    let path = path.trim_end_matches('\t');
    let Some(inner) = path.strip_prefix('"').and_then(|p| p.strip_suffix('"')) else {
        return path.to_owned();
    };
    let mut bytes = Vec::new();
    let mut chars = inner.bytes().peekable();
    while let Some(b) = chars.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match chars.next() {
            Some(b'n') => bytes.push(b'\n'),
            Some(b't') => bytes.push(b'\t'),
            Some(d @ b'0'..=b'7') => {
                let mut n = u32::from(d - b'0');
                for _ in 0..2 {
                    if let Some(&o @ b'0'..=b'7') = chars.peek() {
                        n = n * 8 + u32::from(o - b'0');
                        chars.next();
                    }
                }
                bytes.push(n as u8);
            }
            Some(other) => bytes.push(other),
            None => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_give_the_new_lines_of_each_file() {
        let diff = "diff --git a/calc/ops.py b/calc/ops.py\nindex 1..2 100644\n--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -3,0 +4,3 @@ def add(a, b):\n+def f():\n+    return 1\n+\n@@ -10 +13 @@\n-x\n+y\n@@ -20,2 +22,0 @@\n-gone\n-gone\n\
diff --git a/old.py b/old.py\ndeleted file mode 100644\n--- a/old.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n\
diff --git \"a/caf\\303\\251.py\" \"b/caf\\303\\251.py\"\n--- \"a/caf\\303\\251.py\"\n+++ \"b/caf\\303\\251.py\"\n@@ -1 +1,2 @@\n-a\n+b\n+++ c\n";
        assert_eq!(
            parse_diff(diff),
            vec![
                ("calc/ops.py".to_owned(), vec![(4, 3), (13, 1)]),
                ("café.py".to_owned(), vec![(1, 2)]),
            ]
        );
        let lines = Lines::Ranges(vec![(4, 3), (13, 1)]);
        assert!(lines.contains(4) && lines.contains(6) && lines.contains(13));
        assert!(!lines.contains(3) && !lines.contains(7) && !lines.contains(14));
        assert!(Lines::All.contains(1));
    }
}
