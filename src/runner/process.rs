//! Running one child process for a stage: its own process group, output streamed, and a stop
//! that reaches every process it started.
//!
//! The main function is [`run`]. Signal policy, in one place:
//!
//! - Every stage runs as the leader of a new process group, started by the supervisor
//!   ([`crate::supervisor::child::spawn`]). The terminal's Ctrl-C therefore reaches only portcullis, which decides
//!   what to do; nothing is delivered twice.
//! - To stop a stage (abort, timeout, interrupt), SIGTERM goes to the whole group, so
//!   grandchildren (`bash -c 'server & tests'`) are told too. If anything of the group is still
//!   alive after the grace period, SIGKILL goes to the group. Output is still read meanwhile, so
//!   what the stage prints while shutting down reaches its log.
//! - When the stage's own process exits, whatever it left running in its group (background
//!   jobs) gets the same SIGTERM, grace, SIGKILL treatment: no process a stage started outlives
//!   the stage, and its output pipe closes.
//! - A second Ctrl-C (`kill_now`) sends SIGKILL to the group at once.
//! - A process that left the group (`setsid`, GNU `timeout`, `set -m`) is found among
//!   portcullis's adopted children by the stage's marks in its environment and stopped the same
//!   way when the stage ends ([`crate::supervisor::stop_escapees`]).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::pin;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::runner::output::OutputSink;
use crate::supervisor::{self, Tag, child, search_path};

/// How long output is still read from processes that left the stage's group, once the group
/// itself is gone.
const LEFT_GROUP_WAIT: Duration = Duration::from_secs(1);

pub(crate) struct ProcessSpec {
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) workdir: PathBuf,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    Cancelled,
    SpawnFailed(String),
}

impl Exit {
    pub(crate) fn success(&self) -> bool {
        *self == Exit::Code(0)
    }

    /// The reason shown for a stage that ended this way.
    pub(crate) fn reason(&self, timeout: Duration) -> String {
        match self {
            Exit::Code(code) => format!("exit code {code}"),
            Exit::Signal(sig) => {
                let name = Signal::try_from(*sig)
                    .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned());
                format!("killed by {name}")
            }
            Exit::TimedOut => format!(
                "timed out after {}",
                crate::config::duration::format(timeout)
            ),
            Exit::Cancelled => "cancelled".into(),
            Exit::SpawnFailed(e) => e.clone(),
        }
    }
}

/// Finds a bare program name (`bash`, `cargo`) on the stage's `PATH`.
///
/// The standard library starts a child with `posix_spawn` (a cheap vfork-style start) only when
/// it need not search `PATH` itself in an environment we replaced; otherwise it falls back to a
/// full `fork()`, measured at about a third of a millisecond per stage more. Resolving here keeps
/// the fast path. A name not found is passed on unchanged, so the spawn error names it.
/// Found programs are remembered for the run, keyed by name and `PATH`: a pipeline starts
/// the same few programs (`bash`, `cargo`) over and over.
fn resolve_program(program: &str, env: &[(String, String)]) -> PathBuf {
    static FOUND: Mutex<Option<HashMap<(String, String), PathBuf>>> = Mutex::new(None);
    if program.contains('/') {
        return PathBuf::from(program);
    }
    let path = search_path(env);
    let key = (program.to_owned(), path.to_owned());
    if let Some(found) = FOUND
        .lock()
        .ok()
        .and_then(|m| m.as_ref()?.get(&key).cloned())
    {
        return found;
    }
    for dir in std::env::split_paths(path) {
        let candidate = dir.join(program);
        if dir.is_absolute() && is_executable(&candidate) {
            if let Ok(mut map) = FOUND.lock() {
                map.get_or_insert_with(HashMap::new)
                    .insert(key, candidate.clone());
            }
            return candidate;
        }
    }
    PathBuf::from(program)
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(crate) async fn run(
    spec: &ProcessSpec,
    sink: &mut OutputSink,
    timeout: Duration,
    grace: Duration,
    cancel: &CancellationToken,
    kill_now: &CancellationToken,
) -> Exit {
    let Some((program, args)) = spec.argv.split_first() else {
        return Exit::SpawnFailed("empty command".into());
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(pair) => pair,
        Err(e) => return Exit::SpawnFailed(format!("cannot create a pipe: {e}")),
    };
    let stderr = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return Exit::SpawnFailed(format!("cannot create a pipe: {e}")),
    };
    let mut command = tokio::process::Command::new(resolve_program(program, &spec.env));
    command
        .arg0(program)
        .args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.workdir)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(stderr);
    let spawned = child::spawn(&mut command);
    // The command holds our copies of the pipe's write end; they must close, or the read end
    // would never see end-of-file.
    drop(command);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let what = if spec.workdir.is_dir() {
                format!("cannot start `{program}`: {e}")
            } else {
                format!(
                    "cannot start `{program}`: working directory `{}` does not exist",
                    spec.workdir.display()
                )
            };
            return Exit::SpawnFailed(what);
        }
    };
    let pgid = child.pgid();
    // The marks this stage's processes carry, to find those that leave its group.
    let tag = Tag::of(&spec.env);
    let mut pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader)) {
        Ok(p) => Some(p),
        Err(e) => {
            sink.line(&format!("portcullis: cannot read the stage's output: {e}"))
                .await;
            None
        }
    };

    // Most stages print a few lines; the buffer grows to 64 KiB only for one whose reads fill
    // it, which keeps a pipeline of many quiet stages from zeroing 64 KiB for each.
    let mut buf = vec![0u8; 4 * 1024];
    let mut status: Option<std::process::ExitStatus> = None;
    let mut ended_by: Option<Exit> = None;
    let deadline = Instant::now() + timeout;
    // Set once SIGTERM went out: when SIGKILL follows.
    let mut kill_at: Option<Instant> = None;
    // Set once nothing of the group can be alive: a process that left the group (`setsid`) may
    // still hold the pipe, and is given this long before its output is abandoned.
    let mut abandon_at: Option<Instant> = None;
    let mut timer = pin!(sleep_until(deadline));

    loop {
        if status.is_some() && pipe.is_none() {
            break;
        }
        let wake = if status.is_none() && ended_by.is_none() {
            Some(deadline)
        } else {
            abandon_at.or(kill_at)
        };
        if let Some(at) = wake {
            timer.as_mut().reset(at);
        }
        tokio::select! {
            read = async {
                match pipe.as_mut() {
                    Some(p) => p.read(&mut buf).await,
                    None => std::future::pending().await,
                }
            } => {
                match read {
                    Ok(0) | Err(_) => pipe = None,
                    Ok(n) => {
                        sink.write(&buf[..n]).await;
                        if n == buf.len() && buf.len() < 64 * 1024 {
                            buf.resize(64 * 1024, 0);
                        }
                    }
                }
            }
            waited = child.wait(), if status.is_none() => {
                status = Some(waited.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(1 << 8)));
                if child.group_alive() {
                    kill_at.get_or_insert(child.terminate(grace));
                } else {
                    // What left the group (`setsid`) may hold the pipe: told to stop now, so
                    // the pipe closes, and stopped for good (grace, SIGKILL) below.
                    if let (Some(tag), Some(_)) = (&tag, &pipe) {
                        supervisor::signal_escapees(tag, pgid, Signal::SIGTERM);
                    }
                    abandon_at = Some(Instant::now() + LEFT_GROUP_WAIT);
                }
            }
            () = &mut timer, if wake.is_some() => {
                if status.is_none() && ended_by.is_none() {
                    ended_by = Some(Exit::TimedOut);
                    kill_at = Some(child.terminate(grace));
                } else if abandon_at.is_none() {
                    child.kill();
                    abandon_at = Some(Instant::now() + LEFT_GROUP_WAIT);
                } else {
                    pipe = None;
                }
            }
            () = cancel.cancelled(), if ended_by.is_none() && status.is_none() => {
                ended_by = Some(Exit::Cancelled);
                kill_at = Some(child.terminate(grace));
            }
            () = kill_now.cancelled(), if abandon_at.is_none() => {
                child.kill();
                ended_by.get_or_insert(Exit::Cancelled);
                abandon_at = Some(Instant::now() + LEFT_GROUP_WAIT);
            }
        }
    }
    if child.group_alive() {
        child.kill();
    }
    if let Some(tag) = &tag {
        supervisor::stop_escapees(tag, pgid, grace, kill_now).await;
    }
    if let Some(exit) = ended_by {
        return exit;
    }
    match status {
        Some(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(1),
        },
        None => Exit::Code(1),
    }
}
