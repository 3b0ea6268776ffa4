//! Every process portcullis starts for a run goes through here: stages, `pg_dump` and
//! `pg_restore`, `postgres-check` scripts, secret commands, blue-green's router commands.
//!
//! [`spawn`] starts a command as the leader of a new process group and registers it as
//! supervised. The one stop policy is [`Child::stop`]: SIGTERM to the group, up to the grace
//! period for the whole group to be gone, SIGKILL to the group, then the leader is reaped. A
//! leader that exits on its own may leave processes in its group; [`Child::stop_rest`] applies
//! the same policy to them. A [`Child`] dropped before it was stopped (its future was
//! abandoned, as on an interrupt) sends SIGKILL to its group: the last resort, since a drop
//! cannot wait out a grace period.
//!
//! [`capture`] runs a command to its end, collecting stdout up to a limit and the tail of
//! stderr, with a deadline and a cancel; what the helpers of the kinds need.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Supervised, group_alive, signal_group, supervise};

/// The grace period of the helpers portcullis runs itself (tools, scripts, secret commands).
/// A stage's own grace comes from its pipeline.
pub(crate) const HELPER_GRACE: Duration = Duration::from_secs(2);

/// A process portcullis started, leader of its own group.
pub(crate) struct Child {
    inner: tokio::process::Child,
    pgid: i32,
    status: Option<ExitStatus>,
    _supervised: Supervised,
}

/// Starts `command` as the leader of a new process group, supervised until the [`Child`] is
/// dropped.
pub(crate) fn spawn(command: &mut tokio::process::Command) -> io::Result<Child> {
    command.process_group(0).kill_on_drop(true);
    let inner = command.spawn()?;
    let pgid = inner
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| io::Error::other("the process ended before it could be tracked"))?;
    Ok(Child {
        inner,
        pgid,
        status: None,
        _supervised: supervise(pgid),
    })
}

impl Child {
    /// The process group, which is also the leader's pid.
    pub(crate) fn pgid(&self) -> i32 {
        self.pgid
    }

    /// The standard streams still held (`take()` them).
    pub(crate) fn stdin(&mut self) -> Option<tokio::process::ChildStdin> {
        self.inner.stdin.take()
    }

    pub(crate) fn stdout(&mut self) -> Option<tokio::process::ChildStdout> {
        self.inner.stdout.take()
    }

    pub(crate) fn stderr(&mut self) -> Option<tokio::process::ChildStderr> {
        self.inner.stderr.take()
    }

    /// Waits for the leader to exit (the rest of its group may live on).
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.inner.wait().await?;
        self.status = Some(status);
        Ok(status)
    }

    /// SIGTERM to the whole group; returns when SIGKILL is due.
    pub(crate) fn terminate(&self, grace: Duration) -> Instant {
        signal_group(self.pgid, Signal::SIGTERM);
        Instant::now() + grace
    }

    /// SIGKILL to the whole group.
    pub(crate) fn kill(&self) {
        signal_group(self.pgid, Signal::SIGKILL);
    }

    /// Whether any process of the group still runs, once the leader is reaped.
    pub(crate) fn group_alive(&self) -> bool {
        group_alive(self.pgid)
    }

    /// The stop policy: SIGTERM to the group, up to `grace` (cut short by `kill_now`) for the
    /// leader and the rest of its group to end, SIGKILL to what is left; the leader is reaped.
    /// Returns how the leader ended, when it could be observed.
    pub(crate) async fn stop(
        &mut self,
        grace: Duration,
        kill_now: &CancellationToken,
    ) -> Option<ExitStatus> {
        if self.status.is_none() || self.group_alive() {
            let kill_at = self.terminate(grace);
            let ended = async {
                let _ = self.wait().await;
                while group_alive(self.pgid) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                () = ended => {}
                () = tokio::time::sleep_until(kill_at) => {}
                () = kill_now.cancelled() => {}
            }
        }
        self.kill();
        if self.status.is_none() {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wait()).await;
        }
        self.status
    }

    /// Once the leader exited: stops what it left running in its group, by the same policy.
    pub(crate) async fn stop_rest(&mut self, grace: Duration, kill_now: &CancellationToken) {
        if self.group_alive() {
            self.stop(grace, kill_now).await;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Abandoned before it ended: no grace can be waited out here.
        if self.status.is_none() || self.group_alive() {
            self.kill();
        }
    }
}

/// What [`capture`] keeps of a command's output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) stdout: Keep,
    /// The last bytes of stderr kept, about this many.
    pub(crate) stderr: usize,
}

/// What is kept of stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keep {
    /// The output itself, up to this many bytes: past them the pipe is closed, so a command
    /// that never stops printing ends on SIGPIPE, and [`Captured::stdout_overflowed`] is set.
    Head(usize),
    /// About the last this many bytes, the rest read and dropped: a log.
    Tail(usize),
}

/// A command that ran to its end.
#[derive(Debug)]
pub(crate) struct Captured {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    /// stdout was longer than [`Limits::stdout`].
    pub(crate) stdout_overflowed: bool,
    pub(crate) stderr: Vec<u8>,
}

/// How a captured command ended.
#[derive(Debug)]
pub(crate) enum Finished {
    Exited(Captured),
    /// Stopped at its deadline.
    TimedOut,
    Cancelled,
}

/// Runs `command` (stdin from `/dev/null`) to its end, or until `timeout` or `cancel`, then
/// stopped by the policy with `grace`. What the leader left in its group when it exited is
/// stopped too, so that it cannot hold the pipes open.
pub(crate) async fn capture(
    command: &mut tokio::process::Command,
    limits: Limits,
    timeout: Option<Duration>,
    cancel: &CancellationToken,
    grace: Duration,
) -> io::Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(command)?;
    let (stdout, stderr) = (child.stdout(), child.stderr());
    let stderr_tail = std::sync::Mutex::new(Vec::new());
    let stdout_tail = std::sync::Mutex::new(Vec::new());
    let never = CancellationToken::new();
    let ended = {
        let child = &mut child;
        let stderr_tail = &stderr_tail;
        let stdout_tail = &stdout_tail;
        let never = &never;
        async move {
            let read_out = async {
                match limits.stdout {
                    Keep::Head(cap) => read_capped(stdout, cap).await,
                    Keep::Tail(keep) => {
                        read_tail(stdout, keep, stdout_tail).await;
                        Ok((std::mem::take(&mut *lock(stdout_tail)), false))
                    }
                }
            };
            let (out, (), status) = tokio::join!(
                read_out,
                read_tail(stderr, limits.stderr, stderr_tail),
                async {
                    let status = child.wait().await;
                    // What the leader left behind would keep the pipes open.
                    child.stop_rest(grace, never).await;
                    status
                },
            );
            (out, status)
        }
    };
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        (out, status) = ended => Some(Ok((out, status))),
        () = deadline => Some(Err(true)),
        () = cancel.cancelled() => None,
    };
    let take_stderr = || std::mem::take(&mut *lock(&stderr_tail));
    match outcome {
        Some(Ok((out, status))) => {
            let (stdout, stdout_overflowed) = out?;
            Ok(Finished::Exited(Captured {
                status: status?,
                stdout,
                stdout_overflowed,
                stderr: take_stderr(),
            }))
        }
        Some(Err(_)) => {
            child.stop(grace, &never).await;
            Ok(Finished::TimedOut)
        }
        None => {
            child.stop(grace, &never).await;
            Ok(Finished::Cancelled)
        }
    }
}

fn lock(bytes: &std::sync::Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    bytes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads up to `cap` bytes; says whether there was more, and then stops reading.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    cap: usize,
) -> io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut overflowed = false;
    if let Some(mut pipe) = pipe {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = pipe.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let room = cap - kept.len();
            kept.extend_from_slice(&buf[..n.min(room)]);
            if n > room {
                overflowed = true;
                break;
            }
        }
    }
    Ok((kept, overflowed))
}

/// Reads to the end into `tail`, keeping about the last `keep` bytes; a read error ends the
/// reading (a log only decorates a message).
async fn read_tail(
    pipe: Option<impl AsyncRead + Unpin>,
    keep: usize,
    tail: &std::sync::Mutex<Vec<u8>>,
) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 8 * 1024];
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        let mut tail = lock(tail);
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > keep * 2 {
            let cut = tail.len() - keep;
            tail.drain(..cut);
        }
    }
    let mut tail = lock(tail);
    if tail.len() > keep {
        let cut = tail.len() - keep;
        tail.drain(..cut);
    }
}
