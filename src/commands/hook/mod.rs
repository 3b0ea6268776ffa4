//! `portcullis hook install|uninstall`: the git hooks that run a pipeline before each push or
//! commit.
//!
//! A hook is a small POSIX `sh` script, not a copy of the binary, so that it survives rebuilds and
//! can be read by whoever finds it in `.git/hooks`. Its `MARKER` line is how portcullis tells its
//! own hooks from anyone else's: installing over one of ours rewrites it, uninstalling removes
//! only ours, and a hook someone else wrote is never deleted. It is kept as `<hook>.local`
//! instead, which our script runs first with the same arguments and input, so both gates hold.
//!
//! The hooks folder comes from `git rev-parse --git-path hooks`, which already knows about
//! `core.hooksPath` and linked worktrees; portcullis does not second-guess it.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

mod run;

use crate::cli::{HookAction, HookArgs, HookInstallArgs, HookType, HookUninstallArgs};
use crate::commands::Error;
use crate::{config, exit_code};

/// The line that marks a hook as written by portcullis. The version is there so that a later
/// format can still recognise, and rewrite, hooks written by this one.
const MARKER: &str = "# portcullis-hook v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HookKind {
    PrePush,
    PreCommit,
}

impl From<HookType> for HookKind {
    fn from(t: HookType) -> HookKind {
        match t {
            HookType::PrePush => HookKind::PrePush,
            HookType::PreCommit => HookKind::PreCommit,
        }
    }
}

impl HookKind {
    fn file_name(self) -> &'static str {
        match self {
            HookKind::PrePush => "pre-push",
            HookKind::PreCommit => "pre-commit",
        }
    }

    /// The git command the hook guards, for messages.
    fn action(self) -> &'static str {
        match self {
            HookKind::PrePush => "push",
            HookKind::PreCommit => "commit",
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum HookError {
    #[error("cannot run `git`: {0}")]
    GitMissing(std::io::Error),
    #[error("not inside a git working tree: {0}")]
    NotARepository(String),
    #[error("`git {args}` failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("`{}` already exists and was not written by portcullis", path.display())]
    Foreign { path: PathBuf, local: PathBuf },
    #[error(
        "`{}` and `{}` both exist, and portcullis wrote neither",
        path.display(),
        local.display()
    )]
    ForeignAndLocal { path: PathBuf, local: PathBuf },
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove `{}`: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl HookError {
    fn help(&self) -> Option<String> {
        match self {
            HookError::GitMissing(_) => Some("install git, or put it on `PATH`".to_owned()),
            HookError::NotARepository(_) => {
                Some("run `portcullis hook` inside the repository the hook is for".to_owned())
            }
            HookError::Git { .. } => None,
            HookError::Foreign { local, .. } => Some(format!(
                "to keep it and run it before the pipeline, move it to `{}` and install again \
                 (the portcullis hook runs it first), or pass `--force` to have portcullis move it",
                local.display()
            )),
            HookError::ForeignAndLocal { .. } => Some(
                "merge them into the `.local` one by hand, remove the other, and install again"
                    .to_owned(),
            ),
            HookError::Write { .. } | HookError::Remove { .. } => {
                Some("check that the hooks folder is writable".to_owned())
            }
        }
    }

    fn into_error(self) -> Error {
        let help = self.help();
        let error = Error::usage(self.to_string());
        match help {
            Some(h) => error.help(h),
            None => error,
        }
    }
}

pub(crate) fn hook(args: &HookArgs) -> Result<u8, Error> {
    let result = match &args.action {
        HookAction::Install(a) => install(a),
        HookAction::Uninstall(a) => uninstall(a),
        HookAction::Run(a) => return run::run(a),
    };
    result
        .map(|()| exit_code::PASSED)
        .map_err(HookError::into_error)
}

fn install(args: &HookInstallArgs) -> Result<(), HookError> {
    let kind = if args.pre_commit {
        HookKind::PreCommit
    } else {
        HookKind::PrePush
    };
    let repo = Repo::find()?;
    let path = repo.hooks.join(kind.file_name());
    let local = local_path(&path);
    let pipeline = args
        .pipeline
        .as_deref()
        .map(|p| pipeline_for_hook(p, &repo.top));
    // A hook that outlives a rebuilt or moved binary still works through `PATH`; the absolute
    // path comes first so that the hook runs the portcullis that installed it, not whichever
    // happens to be first on a developer's `PATH`.
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| "portcullis".to_owned());
    let text = script(kind, &exe, pipeline.as_deref());

    let mut notes = Vec::new();
    let verb = match existing(&path) {
        Existing::None => "installed",
        Existing::Ours => "updated",
        Existing::Foreign if !args.force => return Err(HookError::Foreign { path, local }),
        Existing::Foreign => {
            if std::fs::symlink_metadata(&local).is_ok() {
                return Err(HookError::ForeignAndLocal { path, local });
            }
            std::fs::rename(&path, &local).map_err(|source| HookError::Write {
                path: local.clone(),
                source,
            })?;
            notes.push(format!(
                "moved the existing hook to `{}`; it still runs first, before the pipeline",
                local.display()
            ));
            "installed"
        }
    };
    std::fs::create_dir_all(&repo.hooks).map_err(|source| HookError::Write {
        path: repo.hooks.clone(),
        source,
    })?;
    write_atomic(&path, &text)?;

    let shown = pipeline.as_deref().unwrap_or("ci");
    let mut err = std::io::stderr().lock();
    for note in notes {
        let _ = writeln!(err, "{note}");
    }
    let _ = writeln!(
        err,
        "{verb} the {} hook `{}`: each `git {}` runs pipeline `{shown}` first",
        kind.file_name(),
        path.display(),
        kind.action()
    );
    if !pipeline_exists(&repo.top, pipeline.as_deref()) {
        let _ = writeln!(
            err,
            "warning: pipeline `{shown}` does not exist yet; every `git {}` fails until it does",
            kind.action()
        );
    }
    Ok(())
}

fn uninstall(args: &HookUninstallArgs) -> Result<(), HookError> {
    let kinds: &[HookKind] = match (args.pre_push, args.pre_commit) {
        (true, false) => &[HookKind::PrePush],
        (false, true) => &[HookKind::PreCommit],
        _ => &[HookKind::PrePush, HookKind::PreCommit],
    };
    let repo = Repo::find()?;
    let mut err = std::io::stderr().lock();
    let mut removed = 0;
    for &kind in kinds {
        let path = repo.hooks.join(kind.file_name());
        match existing(&path) {
            Existing::None => {}
            Existing::Foreign => {
                let _ = writeln!(
                    err,
                    "left `{}` alone: portcullis did not write it",
                    path.display()
                );
            }
            Existing::Ours => {
                std::fs::remove_file(&path).map_err(|source| HookError::Remove {
                    path: path.clone(),
                    source,
                })?;
                removed += 1;
                let _ = writeln!(err, "removed `{}`", path.display());
                let local = local_path(&path);
                if local.exists() {
                    let _ = writeln!(
                        err,
                        "`{}` was left in place; rename it to `{}` to make it the hook again",
                        local.display(),
                        kind.file_name()
                    );
                }
            }
        }
    }
    if removed == 0 {
        let _ = writeln!(
            err,
            "no portcullis hook is installed in `{}`",
            repo.hooks.display()
        );
    }
    Ok(())
}

/// The repository the command runs in: its working tree and its hooks folder.
struct Repo {
    top: PathBuf,
    hooks: PathBuf,
}

impl Repo {
    fn find() -> Result<Repo, HookError> {
        let top = match git(None, &["rev-parse", "--show-toplevel"]) {
            Ok(top) => PathBuf::from(top),
            Err(HookError::Git { stderr, .. }) => {
                let reason = stderr.strip_prefix("fatal: ").unwrap_or(&stderr);
                return Err(HookError::NotARepository(reason.to_owned()));
            }
            Err(e) => return Err(e),
        };
        // Asked from the top of the working tree, because that is where git runs hooks from:
        // a relative `core.hooksPath` is relative to it.
        let hooks = top.join(git(Some(&top), &["rev-parse", "--git-path", "hooks"])?);
        Ok(Repo { top, hooks })
    }
}

/// Runs git and returns its output without the final newline.
fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, HookError> {
    let mut cmd = std::process::Command::new("git");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.args(args).output().map_err(HookError::GitMissing)?;
    if !out.status.success() {
        return Err(HookError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
}

enum Existing {
    None,
    Ours,
    Foreign,
}

fn existing(path: &Path) -> Existing {
    if std::fs::symlink_metadata(path).is_err() {
        return Existing::None;
    }
    // Anything unreadable (a dangling link, a folder) is treated as someone else's: portcullis
    // only ever replaces or removes what it can prove it wrote.
    match std::fs::read(path) {
        Ok(bytes) if is_ours(&bytes) => Existing::Ours,
        _ => Existing::Foreign,
    }
}

fn is_ours(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes)
        .lines()
        .take(3)
        .any(|line| line.trim_end() == MARKER)
}

/// `pre-push` -> `pre-push.local`, beside it.
fn local_path(hook: &Path) -> PathBuf {
    let mut name = hook.file_name().unwrap_or_default().to_os_string();
    name.push(".local");
    hook.with_file_name(name)
}

/// The pipeline argument as the hook will pass it: git runs hooks from the top of the working
/// tree, so a relative path given from a subfolder is rewritten relative to the top.
fn pipeline_for_hook(arg: &str, top: &Path) -> String {
    if !config::names_a_path(arg) {
        return arg.to_owned();
    }
    let cwd = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .unwrap_or_default();
    let full = cwd.join(arg);
    match full.strip_prefix(top) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => full.to_string_lossy().into_owned(),
    }
}

fn pipeline_exists(top: &Path, pipeline: Option<&str>) -> bool {
    match pipeline {
        None => top.join("pipelines/ci.yml").exists(),
        Some(p) if config::names_a_path(p) => top.join(p).exists(),
        Some(name) => ["yml", "yaml"]
            .iter()
            .any(|ext| top.join(format!("pipelines/{name}.{ext}")).exists()),
    }
}

/// Writes the hook through a temporary file and a rename, so that a `git push` running at the
/// same moment sees the old hook or the new one, never half of one.
fn write_atomic(path: &Path, text: &str) -> Result<(), HookError> {
    let tmp = path.with_file_name(format!(
        ".{}.portcullis-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        HookError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// `'...'` for sh, whatever the text holds.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What every hook runs after its settings (`portcullis`, `pipeline`, `hooks`, `local_hook`).
/// The pipeline and the push's base are `portcullis hook run`'s business, as they are under a
/// hook manager; the script only keeps the `.local` hook first and git's input for both.
///
/// `PORTCULLIS_HOOK_CHAIN` is set for the `.local` hook alone. If that hook leads back into this
/// one (pre-commit's migration mode keeps the hook it replaced as `.legacy`, which can be ours),
/// the inner call sees its own name there and steps aside: the outer one runs the pipeline, and
/// there is no loop.
const PRE_COMMIT: &str = r#"
[ "${PORTCULLIS_HOOK_CHAIN-}" = "$hooks/pre-commit" ] && exit 0
if [ -x "$local_hook" ]; then
    PORTCULLIS_HOOK_CHAIN="$hooks/pre-commit" "$local_hook" "$@" || exit $?
fi
"$portcullis" hook run pre-commit ${pipeline:+"$pipeline"} -- "$@" </dev/null
"#;

const PRE_PUSH: &str = r#"
[ "${PORTCULLIS_HOOK_CHAIN-}" = "$hooks/pre-push" ] && exit 0
# git writes one line per pushed ref: <local ref> <local sha> <remote ref> <remote sha>.
input=$(cat)
if [ -x "$local_hook" ]; then
    if [ -n "$input" ]; then printf '%s\n' "$input"; fi |
        PORTCULLIS_HOOK_CHAIN="$hooks/pre-push" "$local_hook" "$@" || exit $?
fi
if [ -n "$input" ]; then printf '%s\n' "$input"; fi |
    "$portcullis" hook run pre-push ${pipeline:+"$pipeline"} -- "$@"
"#;

/// The hook script for `kind`, running `pipeline` (the default one when `None`) with the
/// portcullis at `exe`.
fn script(kind: HookKind, exe: &str, pipeline: Option<&str>) -> String {
    let body = match kind {
        HookKind::PrePush => PRE_PUSH,
        HookKind::PreCommit => PRE_COMMIT,
    };
    let hook = kind.file_name();
    let action = kind.action();
    let header = format!(
        "#!/bin/sh\n\
         {MARKER}\n\
         # Written by `portcullis hook install`, which rewrites it; `portcullis hook uninstall`\n\
         # removes it. A hook of your own belongs in `{hook}.local` beside this file: it runs\n\
         # first, with the same arguments and input, and its failure stops the {action} too.\n\
         # {SKIP_VAR}=1 skips the pipeline (and only it).\n\
         \n\
         # The portcullis that installed this hook, or the one on PATH if that one has moved.\n\
         portcullis={}\n\
         [ -x \"$portcullis\" ] || portcullis=portcullis\n\
         pipeline={}\n\
         hooks=$(cd \"$(dirname \"$0\")\" && pwd)\n\
         local_hook=\"$hooks/{hook}.local\"\n",
        sh_quote(exe),
        sh_quote(pipeline.unwrap_or("")),
        SKIP_VAR = run::SKIP_VAR,
    );
    header + body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quote_survives_any_text() {
        for (text, quoted) in [
            ("ci", "'ci'"),
            ("", "''"),
            ("it's", r"'it'\''s'"),
            ("$HOME `x` \"y\"", "'$HOME `x` \"y\"'"),
        ] {
            assert_eq!(sh_quote(text), quoted);
        }
    }

    #[test]
    fn the_marker_tells_ours_from_theirs() {
        for (kind, pipeline) in [
            (HookKind::PrePush, None),
            (HookKind::PreCommit, Some("deploy")),
        ] {
            assert!(is_ours(
                script(kind, "/bin/portcullis", pipeline).as_bytes()
            ));
        }
        for foreign in [
            "#!/bin/sh\nexit 0\n",
            "",
            "\u{0}\u{ff}binary",
            "#!/bin/sh\n# portcullis-hook v1 (not really)\n",
        ] {
            assert!(!is_ours(foreign.as_bytes()), "{foreign:?}");
        }
    }

    /// Every generated script parses as sh, and its settings read back as written, whatever
    /// the names hold.
    #[test]
    fn scripts_are_valid_sh() {
        for kind in [HookKind::PrePush, HookKind::PreCommit] {
            for pipeline in [None, Some("ci"), Some("it's a \"path\"/$(x) `y`.yml")] {
                let exe = "/opt/my tools/portcullis";
                let text = script(kind, exe, pipeline);
                let out = std::process::Command::new("sh")
                    .arg("-n")
                    .arg("-c")
                    .arg(&text)
                    .output()
                    .expect("sh");
                assert!(
                    out.status.success(),
                    "{text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                // The settings, less the fallback to `PATH` (the path above does not exist).
                let settings: String = text
                    .split("\nhooks=")
                    .next()
                    .expect("settings")
                    .lines()
                    .filter(|l| !l.starts_with("[ -x"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let out = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "{settings}\nprintf '%s|%s' \"$portcullis\" \"$pipeline\""
                    ))
                    .output()
                    .expect("sh");
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout),
                    format!("{exe}|{}", pipeline.unwrap_or(""))
                );
            }
        }
    }

    #[test]
    fn local_hook_sits_beside_the_hook() {
        assert_eq!(
            local_path(Path::new("/r/.git/hooks/pre-push")),
            Path::new("/r/.git/hooks/pre-push.local")
        );
    }
}
