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

mod managers;
mod run;

use crate::cli::{HookAction, HookArgs, HookInstallArgs, HookType, HookUninstallArgs};
use crate::commands::Error;
use crate::{config, exit_code};
use managers::{Manager, Unsafe};

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
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} runs this repository's hooks, and portcullis cannot add the gate to `{}` by itself: {why}",
        manager.name(),
        path.display()
    )]
    ManagerConfig {
        manager: Manager,
        path: PathBuf,
        why: String,
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
            HookError::Write { .. } | HookError::Remove { .. } | HookError::Read { .. } => {
                Some("check that the hooks folder is writable".to_owned())
            }
            HookError::ManagerConfig { manager, path, .. } => Some(format!(
                "add the lines printed on stdout to `{}` by hand ({} then runs the gate), and run \
                 `portcullis hook install` again to check; a hook of portcullis's own there would \
                 be {}",
                path.display(),
                manager.name(),
                match manager {
                    Manager::PreCommit => "chained into a loop by pre-commit's migration mode",
                    Manager::Lefthook => "renamed `.old` by lefthook and never run",
                    Manager::Husky => "overwritten by husky's next install",
                }
            )),
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
    if let Some(manager) = managers::detect(&repo.top, &repo.hooks, &path, &local) {
        return integrate(manager, kind, &repo, pipeline.as_deref());
    }
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
    write_atomic(&path, &text, 0o755)?;

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

/// What became of the gate in a hook manager's config.
enum Placed {
    Added(PathBuf),
    Already(PathBuf),
}

/// `hook install` where a hook manager owns the hook file: the gate goes into the manager's
/// config, portcullis's own hook files leave the manager's way (restoring what they had
/// displaced), and the manager's hook is installed if it is not.
fn integrate(
    manager: Manager,
    kind: HookKind,
    repo: &Repo,
    pipeline: Option<&str>,
) -> Result<(), HookError> {
    let hook = repo.hooks.join(kind.file_name());
    // Every edit is decided before anything is written, so that a refusal leaves all as it was.
    let (target, current, edited, snippet) = match manager {
        Manager::PreCommit => {
            let config = repo.top.join(".pre-commit-config.yaml");
            let text = read_optional(&config)?;
            let present = text
                .as_deref()
                .and_then(|t| crate::config::yaml::parse(t).ok())
                .is_some_and(|root| managers::pre_commit_has_gate(&root, kind));
            let edited = match (&text, present) {
                (_, true) => Ok(None),
                (None, false) => Ok(Some(managers::pre_commit_config(kind, pipeline))),
                (Some(t), false) => managers::pre_commit_add(t, kind, pipeline).map(Some),
            };
            (
                config,
                text,
                edited,
                managers::pre_commit_item(kind, pipeline, 2),
            )
        }
        Manager::Lefthook => {
            let local = managers::lefthook_local(&repo.top);
            let text = read_optional(&local)?;
            let main = match managers::lefthook_main(&repo.top) {
                Some(p) => read_optional(&p)?,
                None => None,
            };
            let present = [&text, &main]
                .into_iter()
                .flatten()
                .any(|t| managers::lefthook_has_gate(t, kind));
            let edited = if present {
                Ok(None)
            } else {
                managers::lefthook_add(text.as_deref(), kind, pipeline).map(Some)
            };
            (
                local,
                text,
                edited,
                managers::lefthook_block(kind, pipeline),
            )
        }
        Manager::Husky => {
            let scripts = managers::husky_scripts(&repo.hooks).unwrap_or_else(|| repo.top.clone());
            let script = scripts.join(kind.file_name());
            let text = read_optional(&script)?;
            let present = text
                .as_deref()
                .is_some_and(|t| managers::lefthook_has_gate(t, kind));
            let edited = if present {
                Ok(None)
            } else {
                managers::husky_add(text.as_deref(), kind, pipeline).map(Some)
            };
            (script, text, edited, managers::husky_lines(kind, pipeline))
        }
    };
    let placed = match edited {
        Ok(None) => Placed::Already(target),
        Ok(Some(new)) => {
            write_file(&target, &new, manager == Manager::Husky)?;
            Placed::Added(target)
        }
        Err(Unsafe(why)) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(snippet.as_bytes());
            return Err(HookError::ManagerConfig {
                manager,
                path: target,
                why,
            });
        }
    };

    let mut notes = Vec::new();
    match &placed {
        Placed::Added(path) => {
            notes.push(format!(
                "added the portcullis gate to `{}`: {} runs `{}` before each `git {}`",
                shown_path(path, &repo.top),
                manager.name(),
                match manager {
                    Manager::Lefthook => managers::lefthook_run(kind, pipeline),
                    _ => managers::command(kind, pipeline),
                },
                kind.action()
            ));
            if manager == Manager::Lefthook && current.is_none() {
                exclude_locally(repo, path, &mut notes);
            }
            if manager == Manager::PreCommit && tracked(&repo.top, path) {
                notes.push(format!(
                    "commit it to gate everyone's pushes; pre-commit will not run while it has \
                     unstaged changes (`git add {}`)",
                    shown_path(path, &repo.top)
                ));
            }
        }
        Placed::Already(path) => notes.push(format!(
            "`{}` already runs the portcullis gate before each `git {}`",
            shown_path(path, &repo.top),
            kind.action()
        )),
    }
    clear_the_way(manager, &hook, &mut notes)?;
    ensure_manager_hook(manager, kind, repo, &hook, &mut notes);
    if !on_path("portcullis") {
        notes.push(format!(
            "warning: `portcullis` is not on `PATH`, where {} looks for it; every `git {}` fails \
             until it is",
            manager.name(),
            kind.action()
        ));
    }
    let mut err = std::io::stderr().lock();
    for note in notes {
        let _ = writeln!(err, "{note}");
    }
    Ok(())
}

/// Takes portcullis's own hook files out of the manager's way: ours in the hook file gives it
/// back to what it had displaced to `.local` (or goes), and ours kept as pre-commit's `.legacy`
/// or lefthook's `.old` goes, since the gate now runs from the manager's config.
fn clear_the_way(manager: Manager, hook: &Path, notes: &mut Vec<String>) -> Result<(), HookError> {
    if matches!(existing(hook), Existing::Ours) {
        let local = local_path(hook);
        if std::fs::symlink_metadata(&local).is_ok() {
            rename(&local, hook)?;
            notes.push(format!(
                "restored `{}` as `{}`, in place of the portcullis hook",
                local.display(),
                hook.display()
            ));
        } else {
            remove(hook)?;
            notes.push(format!(
                "removed the portcullis hook `{}`: {} runs the gate now",
                hook.display(),
                manager.name()
            ));
        }
    }
    for (suffix, by) in [(".legacy", "pre-commit"), (".old", "lefthook")] {
        let displaced = with_suffix(hook, suffix);
        if matches!(existing(&displaced), Existing::Ours) {
            remove(&displaced)?;
            notes.push(format!(
                "removed `{}`, the portcullis hook {by} had set aside",
                displaced.display()
            ));
        }
    }
    Ok(())
}

/// Installs the manager's own hook when the hook file is not already its script.
fn ensure_manager_hook(
    manager: Manager,
    kind: HookKind,
    repo: &Repo,
    hook: &Path,
    notes: &mut Vec<String>,
) {
    let theirs = std::fs::read_to_string(hook).is_ok_and(|t| manager.wrote(&t));
    if theirs {
        return;
    }
    let (program, args): (&str, Vec<&str>) = match manager {
        Manager::PreCommit => (
            "pre-commit",
            vec!["install", "--hook-type", kind.file_name()],
        ),
        Manager::Lefthook => ("lefthook", vec!["install"]),
        Manager::Husky => {
            notes.push(format!(
                "warning: husky's `{}` is missing; run `npx husky` to write it (until then, \
                 `git {}` is not gated)",
                hook.display(),
                kind.action()
            ));
            return;
        }
    };
    let shown = format!("{program} {}", args.join(" "));
    let out = std::process::Command::new(program)
        .args(&args)
        .current_dir(&repo.top)
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            notes.push(format!("ran `{shown}`:"));
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            notes.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("  {l}")),
            );
        }
        Ok(out) => notes.push(format!(
            "warning: `{shown}` failed; `git {}` is not gated until {} installs its hook:\n{}",
            kind.action(),
            manager.name(),
            (String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr)).trim()
        )),
        Err(_) => notes.push(format!(
            "warning: `{program}` is not on `PATH`; run `{shown}` to install its hook (until then, \
             `git {}` is not gated)",
            kind.action()
        )),
    }
}

/// lefthook's local config is one person's: keep it out of `git status` (and so out of the
/// files `paths:` sees) through this clone's `info/exclude`, unless something ignores it already.
fn exclude_locally(repo: &Repo, path: &Path, notes: &mut Vec<String>) {
    let name = shown_path(path, &repo.top);
    if git(Some(&repo.top), &["check-ignore", "-q", "--", &name]).is_ok() {
        return;
    }
    let Ok(exclude) = git(
        Some(&repo.top),
        &["rev-parse", "--git-path", "info/exclude"],
    ) else {
        return;
    };
    let exclude = repo.top.join(exclude);
    let mut text = std::fs::read_to_string(&exclude).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("/{name}\n"));
    let written = exclude
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&exclude, text));
    if written.is_ok() {
        notes.push(format!(
            "ignored it in this clone (`{}`)",
            exclude.display()
        ));
    }
}

fn uninstall(args: &HookUninstallArgs) -> Result<(), HookError> {
    let kinds: &[HookKind] = match (args.pre_push, args.pre_commit) {
        (true, false) => &[HookKind::PrePush],
        (false, true) => &[HookKind::PreCommit],
        _ => &[HookKind::PrePush, HookKind::PreCommit],
    };
    let repo = Repo::find()?;
    let mut notes = Vec::new();
    let mut removed = 0;
    for &kind in kinds {
        let path = repo.hooks.join(kind.file_name());
        match existing(&path) {
            Existing::None => {}
            Existing::Foreign => {
                // A hook manager's own script is expected there; anything else is worth a word.
                let managed = std::fs::read_to_string(&path).is_ok_and(|t| {
                    [Manager::PreCommit, Manager::Lefthook, Manager::Husky]
                        .iter()
                        .any(|m| m.wrote(&t))
                });
                if !managed {
                    notes.push(format!(
                        "left `{}` alone: portcullis did not write it",
                        path.display()
                    ));
                }
            }
            Existing::Ours => {
                remove(&path)?;
                removed += 1;
                let local = local_path(&path);
                if std::fs::symlink_metadata(&local).is_ok() {
                    rename(&local, &path)?;
                    notes.push(format!(
                        "removed `{}` and restored `{}` in its place",
                        path.display(),
                        local.display()
                    ));
                } else {
                    notes.push(format!("removed `{}`", path.display()));
                }
            }
        }
        for suffix in [".legacy", ".old"] {
            let displaced = with_suffix(&path, suffix);
            if matches!(existing(&displaced), Existing::Ours) {
                remove(&displaced)?;
                removed += 1;
                notes.push(format!("removed `{}`", displaced.display()));
            }
        }
        let mut configs = vec![
            repo.top.join(".pre-commit-config.yaml"),
            managers::lefthook_local(&repo.top),
        ];
        if let Some(scripts) = managers::husky_scripts(&repo.hooks) {
            configs.push(scripts.join(kind.file_name()));
        }
        for config in configs {
            let Some(text) = read_optional(&config)? else {
                continue;
            };
            let Some(rest) = managers::remove_blocks(&text, kind) else {
                continue;
            };
            removed += 1;
            let shown = shown_path(&config, &repo.top);
            if rest.trim().is_empty() {
                remove(&config)?;
                notes.push(format!(
                    "removed `{shown}`, which held only the portcullis gate"
                ));
            } else {
                write_file(&config, &rest, false)?;
                notes.push(format!("removed the portcullis gate from `{shown}`"));
            }
        }
    }
    if removed == 0 {
        notes.push(format!(
            "no portcullis hook is installed in `{}`",
            repo.hooks.display()
        ));
    }
    let mut err = std::io::stderr().lock();
    for note in notes {
        let _ = writeln!(err, "{note}");
    }
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<String>, HookError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HookError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a config through [`write_atomic`], keeping an existing file's mode.
fn write_file(path: &Path, text: &str, executable: bool) -> Result<(), HookError> {
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(if executable { 0o755 } else { 0o644 });
    write_atomic(path, text, mode)
}

fn rename(from: &Path, to: &Path) -> Result<(), HookError> {
    std::fs::rename(from, to).map_err(|source| HookError::Write {
        path: to.to_path_buf(),
        source,
    })
}

fn remove(path: &Path) -> Result<(), HookError> {
    std::fs::remove_file(path).map_err(|source| HookError::Remove {
        path: path.to_path_buf(),
        source,
    })
}

/// `pre-push` -> `pre-push.legacy`, beside it.
fn with_suffix(hook: &Path, suffix: &str) -> PathBuf {
    let mut name = hook.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    hook.with_file_name(name)
}

/// A path relative to the top of the working tree when it is inside it.
fn shown_path(path: &Path, top: &Path) -> String {
    path.strip_prefix(top)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn tracked(top: &Path, path: &Path) -> bool {
    git(
        Some(top),
        &["ls-files", "--error-unmatch", "--", &shown_path(path, top)],
    )
    .is_ok()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
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
    with_suffix(hook, ".local")
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
fn write_atomic(path: &Path, text: &str, mode: u32) -> Result<(), HookError> {
    let tmp = path.with_file_name(format!(
        ".{}.portcullis-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
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
