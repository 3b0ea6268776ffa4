//! What keeps a run's processes from outliving it: the signals portcullis listens to, the
//! processes a stage leaves behind outside its group, and a watchdog for when portcullis itself
//! is killed.
//!
//! Every process of a run is started by [`child::spawn`], as the leader of a process group of
//! its own, and stopped by one policy: the group gets SIGTERM, then the grace period, then
//! SIGKILL ([`child::Child::stop`]; `runner::process` drives the same steps while it streams a
//! stage's output; [`stop_escapees`] applies them to what left the group). Three mechanisms
//! make sure nothing escapes it:
//!
//! - **Child subreaper.** `portcullis run` marks itself a child subreaper
//!   (`PR_SET_CHILD_SUBREAPER`), so a process whose parent dies is re-parented to portcullis,
//!   not to init. When a stage ends, [`stop_escapees`] looks at portcullis's own children for
//!   the stage's leftovers: members of its process group, and processes that left the group
//!   (`setsid`, GNU `timeout`, `set -m` jobs) but still carry the stage's `PORTCULLIS_RUN_ID`
//!   and `PORTCULLIS_STAGE` in their environment. Each is stopped with the policy above and
//!   reaped.
//! - **Watchdog.** `portcullis run` starts `portcullis __watchdog RUN_ID` in a process group of
//!   its own, holding the write end of its stdin. When portcullis exits, however it exits
//!   (`kill -9` included), the watchdog reads end-of-file, stops every process of this user
//!   whose environment carries `PORTCULLIS_RUN_ID=RUN_ID` (SIGTERM, up to
//!   [`WATCHDOG_GRACE`], SIGKILL) and exits. The environment is what identifies a process, so a
//!   pid reused by an unrelated process is never signalled.
//! - **Signals from the first instruction.** [`Signals`] is created before secrets resolve, so
//!   Ctrl-C, SIGTERM or SIGHUP at any point end the run the same way (exit 130).

pub(crate) mod child;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How long the watchdog waits between SIGTERM and SIGKILL.
pub(crate) const WATCHDOG_GRACE: Duration = Duration::from_secs(10);

/// SIGINT, SIGTERM and SIGHUP as one stream; never fires when signals are not handled.
pub(crate) struct Signals {
    streams: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    /// Starts listening; from then on these signals no longer end the process by themselves.
    pub(crate) fn new(enabled: bool) -> Signals {
        let streams = enabled
            .then(|| {
                Some([
                    signal(SignalKind::interrupt()).ok()?,
                    signal(SignalKind::terminate()).ok()?,
                    signal(SignalKind::hangup()).ok()?,
                ])
            })
            .flatten();
        Signals { streams }
    }

    pub(crate) async fn next(&mut self) {
        match &mut self.streams {
            None => std::future::pending().await,
            Some([int, term, hup]) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
        }
    }
}

/// Signals a process group; a group that no longer exists is not an error. A `pgid` below 1
/// (a child whose id was unknown) signals nothing: `killpg(0)` would reach portcullis's own
/// group.
pub(crate) fn signal_group(pgid: i32, signal: Signal) {
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

pub(crate) fn group_alive(pgid: i32) -> bool {
    pgid > 0 && killpg(Pid::from_raw(pgid), None).is_ok()
}

/// The `PATH` a child started with `env` searches: its last `PATH`, else the usual default.
pub(crate) fn search_path(env: &[(String, String)]) -> &str {
    env.iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/local/bin:/usr/bin:/bin", |(_, v)| v.as_str())
}

/// Makes portcullis the reaper of every orphaned descendant, so that a process that left its
/// stage's group stays within reach. Not fatal where the kernel refuses.
pub(crate) fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// The marks a stage's processes carry in their environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    run_id: String,
    stage: Option<String>,
}

impl Tag {
    /// The tag of processes started with `env`, when it carries a run id.
    pub(crate) fn of(env: &[(String, String)]) -> Option<Tag> {
        let get = |key: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        Some(Tag {
            run_id: get("PORTCULLIS_RUN_ID")?,
            stage: get("PORTCULLIS_STAGE"),
        })
    }

    /// Every process of a run, whatever its stage.
    pub(crate) fn run(run_id: &str) -> Tag {
        Tag {
            run_id: run_id.to_owned(),
            stage: None,
        }
    }

    /// Whether a process's environment (`/proc/PID/environ`, NUL-separated) carries the tag.
    fn matches(&self, environ: &[u8]) -> bool {
        let has = |key: &str, value: &str| {
            let entry = format!("{key}={value}");
            environ.split(|b| *b == 0).any(|e| e == entry.as_bytes())
        };
        has("PORTCULLIS_RUN_ID", &self.run_id)
            && self
                .stage
                .as_deref()
                .is_none_or(|s| has("PORTCULLIS_STAGE", s))
    }
}

/// Processes portcullis started and still watches (stage leaders, the watchdog): never
/// leftovers, so their `/proc` entries are not even read when a stage ends.
static SUPERVISED: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Marks `pid` as one of portcullis's own processes until the guard is dropped.
pub(crate) struct Supervised(i32);

pub(crate) fn supervise(pid: i32) -> Supervised {
    if let Ok(mut pids) = SUPERVISED.lock() {
        pids.push(pid);
    }
    Supervised(pid)
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Ok(mut pids) = SUPERVISED.lock() {
            pids.retain(|p| *p != self.0);
        }
    }
}

/// The children of portcullis's main thread that it does not watch itself. Orphans are
/// re-parented to the subreaper's thread-group leader, so that one list holds every escapee.
fn unsupervised_children() -> Vec<i32> {
    let path = format!("/proc/self/task/{}/children", std::process::id());
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let supervised = SUPERVISED.lock().map(|p| p.clone()).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|p| !supervised.contains(p))
        .collect()
}

/// The process group and whether the process has exited (a zombie), from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(i32, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything; the fields follow the last `)`.
    let rest = text.get(text.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let _ppid = fields.next()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((pgid, state == "Z"))
}

/// Children of portcullis left by the stage whose group was `pgid`: members of that group, and
/// processes that left it but carry the stage's tag.
fn leftovers(tag: &Tag, pgid: i32) -> Vec<(i32, i32, bool)> {
    let children = unsupervised_children();
    if children.is_empty() {
        return Vec::new();
    }
    let own_group = nix::unistd::getpgrp().as_raw();
    children
        .into_iter()
        .filter_map(|pid| {
            let (group, zombie) = stat(pid)?;
            let ours = group == pgid
                || std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| tag.matches(&e));
            // A process in portcullis's own group is never signalled by group.
            let group = if group == own_group { 0 } else { group };
            ours.then_some((pid, group, zombie))
        })
        .collect()
}

fn signal_leftover(pid: i32, group: i32, signal: Signal) {
    if group > 1 {
        signal_group(group, signal);
    }
    let _ = kill(Pid::from_raw(pid), signal);
}

/// Sends `signal` to what a stage left behind among portcullis's children, without waiting.
pub(crate) fn signal_escapees(tag: &Tag, pgid: i32, signal: Signal) {
    for (pid, group, zombie) in leftovers(tag, pgid) {
        if !zombie {
            signal_leftover(pid, group, signal);
        }
    }
}

/// Stops what a stage left behind among portcullis's children: SIGTERM, up to `grace` (cut
/// short by `kill_now`), SIGKILL, then reaps each. Descendants that were re-parented while their
/// parents were stopped are found on the next round.
pub(crate) async fn stop_escapees(
    tag: &Tag,
    pgid: i32,
    grace: Duration,
    kill_now: &CancellationToken,
) {
    for _ in 0..4 {
        let found = leftovers(tag, pgid);
        if found.is_empty() {
            return;
        }
        signal_escapees(tag, pgid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while found.iter().any(|&(pid, _, _)| alive(pid)) && Instant::now() < deadline {
            if kill_now.is_cancelled() {
                break;
            }
            reap(&found);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for &(pid, group, _) in &found {
            if alive(pid) {
                signal_leftover(pid, group, Signal::SIGKILL);
            }
        }
        let reaped_by = Instant::now() + Duration::from_secs(1);
        while found.iter().any(|&(pid, _, _)| stat(pid).is_some()) && Instant::now() < reaped_by {
            reap(&found);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Whether a process runs (a zombie has ended).
fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(_, zombie)| !zombie)
}

/// Collects the exit status of those that ended; they are portcullis's children, adopted.
fn reap(found: &[(i32, i32, bool)]) {
    for &(pid, _, _) in found {
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// Every process of this user whose environment carries `tag`, except this one.
fn tagged_processes(tag: &Tag) -> Vec<i32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| tag.matches(&e)))
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

/// `portcullis __watchdog RUN_ID`: waits for end-of-file on stdin (portcullis has exited), then
/// stops every process still carrying the run's id. Interrupts are ignored: the watchdog's job
/// starts when the run's ends.
pub(crate) fn watchdog(run_id: &str) -> u8 {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return 1;
    };
    runtime.block_on(async {
        let mut signals = Signals::new(true);
        // portcullis writes one byte when it ends having stopped everything itself; plain
        // end-of-file means it died.
        let mut closed = tokio::task::spawn_blocking(|| {
            let mut buf = [0u8; 64];
            let mut clean = false;
            while let Ok(n @ 1..) = std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                clean |= buf[..n].contains(&CLEAN_EXIT);
            }
            clean
        });
        let clean = loop {
            tokio::select! {
                clean = &mut closed => break clean.unwrap_or(false),
                () = signals.next() => {}
            }
        };
        if clean {
            return;
        }
        let tag = Tag::run(run_id);
        let found = tagged_processes(&tag);
        if found.is_empty() {
            return;
        }
        for &pid in &found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + WATCHDOG_GRACE;
        while Instant::now() < deadline && !tagged_processes(&tag).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Whatever is left, and whatever was started meanwhile.
        for _ in 0..3 {
            let left = tagged_processes(&tag);
            if left.is_empty() {
                break;
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    0
}

/// What portcullis tells its watchdog when it ends normally: nothing is left to stop.
const CLEAN_EXIT: u8 = b'.';

/// A run's watchdog, from [`start_watchdog`].
pub(crate) struct Watchdog {
    stdin: std::process::ChildStdin,
    _supervised: Supervised,
}

impl Watchdog {
    /// Tells the watchdog the run ended with every process stopped, so it exits without
    /// looking through `/proc`.
    pub(crate) fn dismiss(mut self) {
        let _ = std::io::Write::write_all(&mut self.stdin, &[CLEAN_EXIT]);
    }
}

/// Starts the watchdog of a run: `portcullis __watchdog RUN_ID`, in a process group of its own
/// (a Ctrl-C meant for portcullis never reaches it), without the run's environment marks. The
/// watchdog must be kept for the whole run: dropping it (or portcullis's death) starts the
/// sweep, unless it was dismissed.
pub(crate) fn start_watchdog(run_id: &str, cwd: &Path) -> Option<Watchdog> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().ok()?;
    let mut child = std::process::Command::new(exe)
        .args(["__watchdog", run_id])
        .current_dir(cwd)
        .env_remove("PORTCULLIS_RUN_ID")
        .env_remove("PORTCULLIS_STAGE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .ok()?;
    let supervised = supervise(i32::try_from(child.id()).ok()?);
    Some(Watchdog {
        stdin: child.stdin.take()?,
        _supervised: supervised,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_whole_entries_only() {
        let tag = Tag::of(&[
            ("PORTCULLIS_RUN_ID".into(), "r1".into()),
            ("PORTCULLIS_STAGE".into(), "build".into()),
        ])
        .expect("a run id");
        assert!(tag.matches(b"A=1\0PORTCULLIS_RUN_ID=r1\0PORTCULLIS_STAGE=build\0"));
        assert!(!tag.matches(b"PORTCULLIS_RUN_ID=r1\0PORTCULLIS_STAGE=build2\0"));
        assert!(!tag.matches(b"PORTCULLIS_RUN_ID=r10\0PORTCULLIS_STAGE=build\0"));
        assert!(Tag::run("r1").matches(b"PORTCULLIS_RUN_ID=r1\0PORTCULLIS_STAGE=x\0"));
        assert_eq!(Tag::of(&[("PORTCULLIS_STAGE".into(), "x".into())]), None);
    }
}
