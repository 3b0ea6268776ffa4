//! `portcullis hook run pre-push|pre-commit`: the gate itself, for whatever calls it.
//!
//! Git, the hook `portcullis hook install` writes, pre-commit, lefthook and husky all end up
//! here, and each hands over what is being pushed in its own way: git writes one line per ref on
//! the hook's standard input (lefthook passes it on with `use_stdin: true`, husky's wrapper
//! inherits it), while pre-commit reads that input itself and exports the range it chose as
//! `PRE_COMMIT_FROM_REF`/`PRE_COMMIT_TO_REF`. The main type, [`Pushed`], is what was found; each
//! base it yields becomes one `portcullis run --base BASE`, so that `paths:` filters see what the
//! push changes whichever of them started the hook.
//!
//! The run is a child `portcullis run` with its standard input closed: stages must never read
//! what git wrote to the hook, and a child keeps each run's signals and run folder its own.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{HookKind, git};
use crate::cli::HookRunArgs;
use crate::commands::Error;
use crate::exit_code;

/// The variable that skips the gate, and only it: other hooks (a `.local` one, the rest of a
/// hook manager's list) still run.
pub(crate) const SKIP_VAR: &str = "PORTCULLIS_SKIP";

/// One line of git's pre-push input: `<local ref> <local sha> <remote ref> <remote sha>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PushedRef {
    local_sha: String,
    remote_sha: String,
}

/// What the hook was told about the push.
#[derive(Debug, PartialEq, Eq)]
enum Pushed {
    /// pre-commit's range: `from` is `None` when the whole history is new (pre-commit then runs
    /// its hooks on every file).
    PreCommit { from: Option<String> },
    /// Git's lines, as git, lefthook (`use_stdin: true`) or husky pass them on.
    Refs(Vec<PushedRef>),
    /// Nothing: run by hand, or by a manager that did not pass git's input on.
    Unknown { why: &'static str },
}

pub(crate) fn run(args: &HookRunArgs) -> Result<u8, Error> {
    let kind = HookKind::from(args.hook);
    let shown = args.pipeline.as_deref().unwrap_or("ci");
    if skip_requested(std::env::var_os(SKIP_VAR).as_deref()) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "portcullis: {SKIP_VAR} is set; pipeline `{shown}` skipped, the {} is not gated",
            kind.action()
        );
        return Ok(exit_code::PASSED);
    }
    // Hooks run from the top of the working tree; so does this when called from a subfolder, so
    // that a pipeline path means what it meant to `hook install`.
    let repo = super::Repo::find().map_err(super::HookError::into_error)?;
    std::env::set_current_dir(&repo.top)
        .map_err(|e| Error::failed(format!("cannot enter `{}`: {e}", repo.top.display())))?;

    let bases = match kind {
        HookKind::PreCommit => vec![None],
        HookKind::PrePush => {
            let pushed = read_pushed()?;
            if let Pushed::Unknown { why } = pushed {
                crate::commands::print_warning(&format!(
                    "{why}; every stage runs, `paths:` filters cannot apply"
                ));
            }
            let remote = args
                .git_args
                .first()
                .cloned()
                .or_else(|| non_empty_var("PRE_COMMIT_REMOTE_NAME"));
            bases_of(&pushed, remote.as_deref())
        }
    };
    for base in bases {
        let code = run_pipeline(args.pipeline.as_deref(), base.as_deref())?;
        if code != exit_code::PASSED {
            let rerun = match (&args.pipeline, &base) {
                (Some(p), Some(b)) => format!("portcullis run {p} --base {}", short(b)),
                (Some(p), None) => format!("portcullis run {p}"),
                (None, Some(b)) => format!("portcullis run --base {}", short(b)),
                (None, None) => "portcullis run".to_owned(),
            };
            let action = kind.action();
            let _ = writeln!(
                std::io::stderr().lock(),
                "portcullis: pipeline `{shown}` failed; {action} blocked (run `{rerun}` to see \
                 why, or {action} with {SKIP_VAR}=1 to skip this gate)"
            );
            return Ok(code);
        }
    }
    Ok(exit_code::PASSED)
}

/// `PORTCULLIS_SKIP` set to anything but empty or `0`.
fn skip_requested(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What the push is, from pre-commit's variables or else from standard input.
fn read_pushed() -> Result<Pushed, Error> {
    // pre-commit has already read git's input (the hook gets none) and says what it found.
    // `PRE_COMMIT_REMOTE_NAME` without a range is a push of a history the remote has none of.
    if let Some(from) = non_empty_var("PRE_COMMIT_FROM_REF") {
        return Ok(Pushed::PreCommit { from: Some(from) });
    }
    if non_empty_var("PRE_COMMIT_REMOTE_NAME").is_some() {
        return Ok(Pushed::PreCommit { from: None });
    }
    if non_empty_var("PRE_COMMIT").is_some() {
        return Ok(Pushed::Unknown {
            why: "pre-commit ran this hook outside a push (no `PRE_COMMIT_FROM_REF`)",
        });
    }
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        return Ok(Pushed::Unknown {
            why: "no pushed refs: standard input is a terminal, not git's pre-push input",
        });
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| Error::failed(format!("cannot read the hook's standard input: {e}")))?;
    Ok(parse_input(&text))
}

fn parse_input(text: &str) -> Pushed {
    if text.trim().is_empty() {
        return Pushed::Unknown {
            why: "no pushed refs on standard input (git writes them to a pre-push hook; \
                  lefthook passes them on only with `use_stdin: true`)",
        };
    }
    let refs = text
        .lines()
        .filter_map(|line| {
            // Ref names cannot hold spaces, but split from the right as pre-commit does.
            let mut fields = line.rsplitn(4, char::is_whitespace);
            let remote_sha = fields.next()?.to_owned();
            let _remote_ref = fields.next()?;
            let local_sha = fields.next()?.to_owned();
            fields.next()?;
            Some(PushedRef {
                local_sha,
                remote_sha,
            })
        })
        .collect();
    Pushed::Refs(refs)
}

/// All zeros: the ref does not exist on that side (a deletion, or a new branch).
fn is_null_sha(sha: &str) -> bool {
    sha.bytes().all(|b| b == b'0')
}

/// The bases to run with: `None` is a run without `--base` (every stage). No base at all means
/// nothing needs checking (only deletions were pushed).
fn bases_of(pushed: &Pushed, remote: Option<&str>) -> Vec<Option<String>> {
    let refs = match pushed {
        Pushed::PreCommit { from } => return vec![from.clone()],
        Pushed::Unknown { .. } => return vec![None],
        Pushed::Refs(refs) => refs,
    };
    let mut bases: Vec<Option<String>> = Vec::new();
    for r in refs {
        if r.local_sha.is_empty() || is_null_sha(&r.local_sha) {
            continue;
        }
        let base = base_of(r, remote);
        // Most pushes have one line; several refs with the same base need one run.
        if !bases.contains(&base) {
            bases.push(base);
        }
    }
    bases
}

/// The commit a pushed ref is compared with: the remote's old commit when this clone has it;
/// otherwise the parent of the oldest pushed commit that no branch of the remote has, so that
/// a new branch is compared with where it left the remote. `None` when the whole history is
/// new: there is nothing to compare with, and every stage runs.
fn base_of(r: &PushedRef, remote: Option<&str>) -> Option<String> {
    if !is_null_sha(&r.remote_sha)
        && git(
            None,
            &["cat-file", "-e", &format!("{}^{{commit}}", r.remote_sha)],
        )
        .is_ok()
    {
        return Some(r.remote_sha.clone());
    }
    let remotes = match remote {
        Some(name) => format!("--remotes={name}"),
        None => "--remotes".to_owned(),
    };
    let new = git(
        None,
        &[
            "rev-list",
            "--topo-order",
            "--reverse",
            &r.local_sha,
            "--not",
            &remotes,
        ],
    )
    .unwrap_or_default();
    match new.lines().next() {
        // Everything pushed is already on the remote: nothing changes.
        None => Some(r.local_sha.clone()),
        Some(first) => git(None, &["rev-parse", "-q", "--verify", &format!("{first}^")]).ok(),
    }
}

fn short(sha: &str) -> String {
    git(None, &["rev-parse", "--short", sha]).unwrap_or_else(|_| sha.to_owned())
}

/// `portcullis run [PIPELINE] [--base BASE]` as a child, with its standard input closed.
fn run_pipeline(pipeline: Option<&str>, base: Option<&str>) -> Result<u8, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::failed(format!("cannot find the portcullis binary: {e}")))?;
    let mut cmd = Command::new(&exe);
    cmd.arg("run");
    if let Some(p) = pipeline {
        cmd.arg(p);
    }
    if let Some(b) = base {
        cmd.args(["--base", b]);
    }
    if let Some(color) = crate::commands::COLOR.get() {
        cmd.arg(format!("--color={}", color_arg(*color)));
    }
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| Error::failed(format!("cannot run `{}`: {e}", Path::new(&exe).display())))?;
    // A run killed by a signal has no code; it did not pass.
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(exit_code::STAGE_FAILED))
}

fn color_arg(color: crate::cli::ColorChoice) -> &'static str {
    match color {
        crate::cli::ColorChoice::Auto => "auto",
        crate::cli::ColorChoice::Always => "always",
        crate::cli::ColorChoice::Never => "never",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn git_input_is_read_line_by_line() {
        let text = format!(
            "refs/heads/main {A} refs/heads/main {B}\nrefs/heads/gone {Z} refs/heads/gone {B}\n"
        );
        assert_eq!(
            parse_input(&text),
            Pushed::Refs(vec![
                PushedRef {
                    local_sha: A.into(),
                    remote_sha: B.into()
                },
                PushedRef {
                    local_sha: Z.into(),
                    remote_sha: B.into()
                },
            ])
        );
        for empty in ["", "\n", "  \n"] {
            assert!(
                matches!(parse_input(empty), Pushed::Unknown { .. }),
                "{empty:?}"
            );
        }
        // A line that is not git's is ignored rather than guessed at.
        assert_eq!(parse_input("garbage\n"), Pushed::Refs(vec![]));
    }

    #[test]
    fn deletions_need_no_run_and_unknown_pushes_run_everything() {
        let deletion = Pushed::Refs(vec![PushedRef {
            local_sha: Z.into(),
            remote_sha: B.into(),
        }]);
        assert_eq!(
            bases_of(&deletion, Some("origin")),
            Vec::<Option<String>>::new()
        );
        assert_eq!(bases_of(&Pushed::Unknown { why: "" }, None), vec![None]);
        assert_eq!(
            bases_of(
                &Pushed::PreCommit {
                    from: Some(A.into())
                },
                None
            ),
            vec![Some(A.to_owned())]
        );
        assert_eq!(
            bases_of(&Pushed::PreCommit { from: None }, None),
            vec![None]
        );
    }

    #[test]
    fn only_a_real_value_skips() {
        use std::ffi::OsStr;
        for (value, skips) in [
            (None, false),
            (Some(""), false),
            (Some("0"), false),
            (Some("1"), true),
            (Some("yes"), true),
        ] {
            assert_eq!(skip_requested(value.map(OsStr::new)), skips, "{value:?}");
        }
    }
}
