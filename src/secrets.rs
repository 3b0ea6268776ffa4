//! Resolving a pipeline's `secrets:` into values, once, at run start.
//!
//! The entry point is [`resolve`] and its error type is [`SecretError`]. Every secret is
//! resolved, the commands concurrently, and every failure is reported, not just the first, so a
//! user with three broken secrets fixes them in one go. The values then feed the
//! [`Redactor`](crate::redact::Redactor) before anything is printed.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitStatus;
use std::task::Poll;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::config::pipeline::SecretSource;
use crate::supervisor::child;

/// The largest value accepted, in bytes. Real secrets (tokens, passwords, PEM keys, service
/// account files) are far smaller; a bigger value is almost surely the wrong file or command,
/// and every value is turned into several masking patterns.
pub(crate) const MAX_SECRET_BYTES: usize = 64 * 1024;

/// How much of a failing command's stderr is kept, and how many of its last lines are shown.
const STDERR_KEEP_BYTES: usize = 16 * 1024;
const STDERR_TAIL_LINES: usize = 5;

/// Why one secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretError {
    #[error("secret `{name}`: environment variable `{var}` is not set")]
    EnvMissing { name: String, var: String },
    #[error("secret `{name}`: cannot read `{}`: {reason}", .path.display())]
    File {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("secret `{name}`: cannot run `{command}`: {reason}")]
    Spawn {
        name: String,
        command: String,
        reason: String,
    },
    #[error("secret `{name}`: command `{command}` timed out after {}s", .after.as_secs_f64())]
    Timeout {
        name: String,
        command: String,
        after: Duration,
    },
    #[error("secret `{name}`: command `{command}` {reason}{}", stderr_suffix(.stderr_tail))]
    Command {
        name: String,
        command: String,
        reason: String,
        stderr_tail: Vec<String>,
    },
    #[error("secret `{name}`: {origin} resolved to an empty value")]
    Empty { name: String, origin: Origin },
}

/// Where an empty value came from, for [`SecretError::Empty`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Env(String),
    File(PathBuf),
    Command(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(var) => write!(f, "environment variable `{var}`"),
            Origin::File(path) => write!(f, "file `{}`", path.display()),
            Origin::Command(command) => write!(f, "command `{command}`"),
        }
    }
}

fn stderr_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = tail.iter().map(|l| format!("\n    {l}")).collect();
    format!("; its stderr ended with:{}", lines.concat())
}

impl SecretError {
    /// The secret's name under `secrets:`.
    #[cfg(test)]
    pub(crate) fn secret(&self) -> &str {
        match self {
            SecretError::EnvMissing { name, .. }
            | SecretError::File { name, .. }
            | SecretError::Spawn { name, .. }
            | SecretError::Timeout { name, .. }
            | SecretError::Command { name, .. }
            | SecretError::Empty { name, .. } => name,
        }
    }

    /// What the user can do about it.
    pub(crate) fn help(&self) -> String {
        match self {
            SecretError::EnvMissing { var, .. } => format!(
                "export `{var}` in the environment that runs portcullis, or change where this \
                 secret comes from under `secrets:`"
            ),
            SecretError::File { path, .. } => format!(
                "check that `{}` is a readable UTF-8 file of at most {} KiB",
                path.display(),
                MAX_SECRET_BYTES / 1024
            ),
            SecretError::Spawn { .. } => {
                "check that the program is installed, executable and on `PATH`; commands run \
                 without a shell"
                    .to_owned()
            }
            SecretError::Timeout { command, .. } => format!(
                "run `{command}` by hand: it must print the value and exit without waiting for \
                 input (its stdin is closed)"
            ),
            SecretError::Command { command, .. } => format!(
                "run `{command}` by hand to see why it fails; it must print only the value, \
                 as UTF-8, to stdout"
            ),
            SecretError::Empty { origin, .. } => {
                let fix = match origin {
                    Origin::Env(var) => format!("set `{var}` to the secret's value"),
                    Origin::File(path) => format!("write the value into `{}`", path.display()),
                    Origin::Command(command) => format!("make `{command}` print the value"),
                };
                format!("{fix}: an empty secret cannot be masked and is almost always a mistake")
            }
        }
    }
}

/// Resolves every secret, in order, or reports every one that failed.
///
/// Relative file paths, and relative command programs containing a `/`, are taken from
/// `base_dir`, where commands also run. `timeout` bounds each command.
pub(crate) async fn resolve(
    secrets: &[(String, SecretSource)],
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> Result<Vec<(String, String)>, Vec<SecretError>> {
    let pending = secrets
        .iter()
        .map(|(name, source)| Box::pin(resolve_one(name, source, base_dir, env, timeout)) as _)
        .collect();
    let mut values = Vec::with_capacity(secrets.len());
    let mut errors = Vec::new();
    for ((name, _), result) in secrets.iter().zip(join_all(pending).await) {
        match result {
            Ok(value) => values.push((name.clone(), value)),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        // A failing command's stderr is shown to help; it may name the values that did resolve
        // (a vault client printing the token it rejected), so those are masked in it.
        let redactor = crate::redact::Redactor::new(values.into_iter().map(|(_, v)| v));
        for error in &mut errors {
            if let SecretError::Command { stderr_tail, .. } = error {
                for line in stderr_tail.iter_mut() {
                    *line = redactor.redact_str(line).into_owned();
                }
            }
        }
        Err(errors)
    }
}

/// Polls every future to completion and returns their outputs in order.
///
/// All of them run in the caller's task, so none outlives `resolve`: dropping it drops every
/// child process, which `kill_on_drop` then kills.
async fn join_all<'a, T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + 'a>>>) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

async fn resolve_one(
    name: &str,
    source: &SecretSource,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> Result<String, SecretError> {
    let (value, origin) = match source {
        SecretSource::Env(var) => {
            let value = env(var).ok_or_else(|| SecretError::EnvMissing {
                name: name.to_owned(),
                var: var.clone(),
            })?;
            (value, Origin::Env(var.clone()))
        }
        SecretSource::File(path) => {
            let path = base_dir.join(path);
            (read_file(name, &path)?, Origin::File(path))
        }
        SecretSource::Command(argv) => {
            let value = run_command(name, argv, base_dir, timeout).await?;
            (value, Origin::Command(display_command(argv)))
        }
    };
    if value.is_empty() {
        return Err(SecretError::Empty {
            name: name.to_owned(),
            origin,
        });
    }
    Ok(value)
}

fn read_file(name: &str, path: &Path) -> Result<String, SecretError> {
    let error = |reason: String| SecretError::File {
        name: name.to_owned(),
        path: path.to_owned(),
        reason,
    };
    // Checked before opening because opening a FIFO would block until someone writes to it.
    let metadata = std::fs::metadata(path).map_err(|e| error(io_reason(&e)))?;
    if !metadata.is_file() {
        return Err(error("not a regular file".to_owned()));
    }
    let file = std::fs::File::open(path).map_err(|e| error(io_reason(&e)))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(io_reason(&e)))?;
    if bytes.len() > MAX_SECRET_BYTES {
        return Err(error(format!(
            "larger than {} KiB",
            MAX_SECRET_BYTES / 1024
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| error("not valid UTF-8".to_owned()))?;
    Ok(strip_one_newline(text))
}

/// Runs a secret command through the supervisor and returns its stdout.
///
/// Stop policy: the supervisor's ([`crate::supervisor::child`]), with the helpers' grace, at the
/// deadline; what the command left running in its group is stopped as soon as it exits, since
/// it would otherwise hold stdout open and stall the run. Abandoned on an interrupt, the whole
/// group is killed.
async fn run_command(
    name: &str,
    argv: &[String],
    base_dir: &Path,
    timeout: Duration,
) -> Result<String, SecretError> {
    let command = display_command(argv);
    let failed = |reason: String, stderr: &[u8]| SecretError::Command {
        name: name.to_owned(),
        command: command.clone(),
        reason,
        stderr_tail: tail_lines(stderr),
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(SecretError::Spawn {
            name: name.to_owned(),
            command: command.clone(),
            reason: "the command is empty".to_owned(),
        });
    };
    let program = if program.contains('/') {
        base_dir.join(program)
    } else {
        PathBuf::from(program)
    };
    let mut cmd = Command::new(&program);
    cmd.args(args).current_dir(base_dir);
    let limits = child::Limits {
        stdout: child::Keep::Head(MAX_SECRET_BYTES),
        stderr: STDERR_KEEP_BYTES,
    };
    let finished = child::capture(
        &mut cmd,
        limits,
        Some(timeout),
        &CancellationToken::new(),
        child::HELPER_GRACE,
    )
    .await
    .map_err(|e| SecretError::Spawn {
        name: name.to_owned(),
        command: command.clone(),
        reason: io_reason(&e),
    })?;
    let done = match finished {
        child::Finished::Exited(done) => done,
        child::Finished::TimedOut | child::Finished::Cancelled => {
            return Err(SecretError::Timeout {
                name: name.to_owned(),
                command,
                after: timeout,
            });
        }
    };
    // Overlong output comes first: closing stdout on it may be what made the command fail.
    if done.stdout_overflowed {
        let reason = format!("printed more than {} KiB", MAX_SECRET_BYTES / 1024);
        return Err(failed(reason, &done.stderr));
    }
    if !done.status.success() {
        return Err(failed(describe_exit(done.status), &done.stderr));
    }
    let text = String::from_utf8(done.stdout).map_err(|_| {
        failed(
            "printed output that is not valid UTF-8".to_owned(),
            &done.stderr,
        )
    })?;
    Ok(strip_one_newline(text))
}

fn tail_lines(stderr: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    lines[start..].iter().map(|l| (*l).to_owned()).collect()
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("was killed by {signal}"),
            Err(_) => format!("was killed by signal {signal}"),
        },
        (None, None) => format!("ended with {status}"),
    }
}

/// The command as a user would type it, so it can be copied into a shell to investigate.
fn display_command(argv: &[String]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

fn strip_one_newline(mut text: String) -> String {
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
    text
}

/// The OS's description of an I/O error without Rust's "(os error N)" suffix, which means
/// nothing to a user.
fn io_reason(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn command(argv: &[&str]) -> SecretSource {
        SecretSource::Command(argv.iter().map(|a| (*a).to_owned()).collect())
    }

    async fn one(source: SecretSource, dir: &Path) -> Result<String, Vec<SecretError>> {
        let env = |var: &str| match var {
            "SET" => Some("from-env".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let secrets = [("S".to_owned(), source)];
        resolve(&secrets, dir, &env, TIMEOUT)
            .await
            .map(|mut v| v.remove(0).1)
    }

    async fn one_error(source: SecretSource, dir: &Path) -> SecretError {
        match one(source, dir).await {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(mut errors) => {
                assert_eq!(errors.len(), 1);
                errors.remove(0)
            }
        }
    }

    #[tokio::test]
    async fn resolves_each_source() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write =
            |file: &str, text: &[u8]| std::fs::write(dir.path().join(file), text).expect("write");
        write("plain", b"s3cret");
        write("lf", b"s3cret\n");
        write("crlf", b"s3cret\r\n");
        write("two", b"s3cret\n\n");
        write("multi", b"line one\nline two\n");
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("shell")).expect("symlink");
        let cases = [
            (SecretSource::Env("SET".to_owned()), "from-env"),
            (SecretSource::File("plain".into()), "s3cret"),
            (SecretSource::File("lf".into()), "s3cret"),
            (SecretSource::File("crlf".into()), "s3cret"),
            (SecretSource::File("two".into()), "s3cret\n"),
            (
                SecretSource::File(dir.path().join("multi")),
                "line one\nline two",
            ),
            (command(&["printf", "tok\\n"]), "tok"),
            (command(&["printf", "tok\\n\\n"]), "tok\n"),
            (command(&["sh", "-c", "echo oops >&2; printf tok"]), "tok"),
            (
                command(&["sh", "-c", "printf \"$0\"", "arg with 'quotes'"]),
                "arg with 'quotes'",
            ),
            (command(&["sh", "-c", "cat plain"]), "s3cret"),
            (command(&["sh", "-c", "sleep 30 & printf tok"]), "tok"),
            (command(&["./shell", "-c", "printf tok"]), "tok"),
        ];
        for (source, expected) in cases {
            let value = one(source.clone(), dir.path()).await;
            assert_eq!(
                value.as_deref().ok(),
                Some(expected),
                "{source:?}: {value:?}"
            );
        }
    }

    #[tokio::test]
    async fn reports_each_failure() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("empty"), "\n").expect("write");
        std::fs::write(dir.path().join("latin1"), b"caf\xe9").expect("write");
        std::fs::write(dir.path().join("big"), vec![b'x'; MAX_SECRET_BYTES + 1]).expect("write");
        let missing = dir.path().join("missing");
        let cases = [
            (
                SecretSource::Env("UNSET".to_owned()),
                "secret `S`: environment variable `UNSET` is not set",
            ),
            (
                SecretSource::Env("EMPTY".to_owned()),
                "secret `S`: environment variable `EMPTY` resolved to an empty value",
            ),
            (
                SecretSource::File("missing".into()),
                &format!(
                    "secret `S`: cannot read `{}`: No such file or directory",
                    missing.display()
                ),
            ),
            (SecretSource::File(".".into()), "not a regular file"),
            (
                SecretSource::File("empty".into()),
                "empty` resolved to an empty value",
            ),
            (
                SecretSource::File("latin1".into()),
                "latin1`: not valid UTF-8",
            ),
            (SecretSource::File("big".into()), "big`: larger than 64 KiB"),
            (
                command(&["no-such-program-xyz"]),
                "secret `S`: cannot run `no-such-program-xyz`: No such file or directory",
            ),
            (command(&[]), "the command is empty"),
            (
                command(&["true"]),
                "secret `S`: command `true` resolved to an empty value",
            ),
            (
                command(&["sh", "-c", "exit 3"]),
                "secret `S`: command `sh -c 'exit 3'` exited with code 3",
            ),
            (
                command(&["sh", "-c", "kill -9 $$"]),
                "was killed by SIGKILL",
            ),
            (
                command(&["printf", "\\377"]),
                "printed output that is not valid UTF-8",
            ),
            (
                command(&["yes"]),
                "secret `S`: command `yes` printed more than 64 KiB",
            ),
        ];
        for (source, expected) in cases {
            let error = one_error(source.clone(), dir.path()).await;
            let message = error.to_string();
            assert!(message.contains(expected), "{source:?}: {message}");
            assert_eq!(error.secret(), "S");
            assert!(!error.help().is_empty());
        }
    }

    #[tokio::test]
    async fn failing_command_shows_the_end_of_its_stderr() {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = "for i in 1 2 3 4 5 6 7; do echo \"line $i\" >&2; done; exit 2";
        let error = one_error(command(&["sh", "-c", script]), dir.path()).await;
        let message = error.to_string();
        assert!(
            message.contains("exited with code 2; its stderr ended with:\n    line 3\n"),
            "{message}"
        );
        assert!(message.ends_with("\n    line 7"), "{message}");
        assert!(!message.contains("line 2"), "{message}");
    }

    #[tokio::test]
    async fn collects_every_error_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ok"), "fine-value").expect("write");
        let secrets = [
            ("A".to_owned(), SecretSource::Env("NOPE".to_owned())),
            ("B".to_owned(), SecretSource::File("ok".into())),
            ("C".to_owned(), SecretSource::File("nope".into())),
            ("D".to_owned(), command(&["sh", "-c", "sleep 0.2; exit 1"])),
            ("E".to_owned(), command(&["false"])),
        ];
        let errors = resolve(&secrets, dir.path(), &no_env, TIMEOUT)
            .await
            .expect_err("four errors");
        let names: Vec<&str> = errors.iter().map(SecretError::secret).collect();
        assert_eq!(names, ["A", "C", "D", "E"]);
    }

    #[tokio::test]
    async fn returns_values_in_declaration_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets = [
            (
                "SLOW".to_owned(),
                command(&["sh", "-c", "sleep 0.2; printf slow"]),
            ),
            ("FAST".to_owned(), command(&["printf", "fast"])),
        ];
        let values = resolve(&secrets, dir.path(), &no_env, TIMEOUT)
            .await
            .expect("values");
        let expected =
            [("SLOW", "slow"), ("FAST", "fast")].map(|(n, v)| (n.to_owned(), v.to_owned()));
        assert_eq!(values, expected);
    }

    /// Processes of the group that are still alive; zombies waiting for a reaper do not count.
    fn live_members(group: i32) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| {
                let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // Fields after the parenthesised command name: state, ppid, pgrp.
                let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
                let state = fields.next()?;
                let pgrp: i32 = fields.nth(1)?.parse().ok()?;
                (pgrp == group && state != "Z").then_some(pid)
            })
            .collect()
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = "echo $$ > pgid; sleep 30 & sleep 30";
        let secrets = [("SLOW".to_owned(), command(&["sh", "-c", script]))];
        let errors = resolve(&secrets, dir.path(), &no_env, Duration::from_millis(300))
            .await
            .expect_err("timeout");
        assert_eq!(
            errors[0].to_string(),
            "secret `SLOW`: command `sh -c 'echo $$ > pgid; sleep 30 & sleep 30'` timed out after 0.3s"
        );
        let group: i32 = std::fs::read_to_string(dir.path().join("pgid"))
            .expect("pgid file")
            .trim()
            .parse()
            .expect("pgid");
        // SIGKILL is delivered at once, but the orphaned `sleep` is reaped by whoever adopts it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let gone = !crate::supervisor::group_alive(group);
            if gone || live_members(group).is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still alive: {:?}",
                live_members(group)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
