//! Finding and running `pg_dump` and `pg_restore`.
//!
//! The main type is [`Tools`]. `pg_dump` refuses a server of a newer major version, so the tools
//! are chosen for the server: the ones on `PATH` when they are new enough, else the newest under
//! Debian's `/usr/lib/postgresql/<major>/bin`. Each tool runs in its own process group with the
//! libpq environment of [`super::conn::ConnInfo::child_env`], and is killed with its group when
//! the stage is cancelled.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio_util::sync::CancellationToken;

use crate::supervisor::child;

#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub(crate) pg_dump: PathBuf,
    pub(crate) pg_restore: PathBuf,
    /// `pg_dump --version`, e.g. `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub(crate) version: String,
}

/// The major version in `… (PostgreSQL) 15.18 …` or `server_version_num` 150018.
pub(crate) fn major_of(version: &str) -> Option<u32> {
    version
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .and_then(|w| w.split(['.', 'b', 'r', 'd']).next())
        .and_then(|m| m.parse().ok())
}

fn version_of(pg_dump: &Path) -> Option<String> {
    let out = std::process::Command::new(pg_dump)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Finds a `pg_dump`/`pg_restore` pair that can dump a server of major `server_major`.
pub(crate) fn find(server_major: u32, env: &[(String, String)]) -> Result<Tools, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    let path = crate::supervisor::search_path(env);
    for dir in std::env::split_paths(path) {
        candidates.push(dir.join("pg_dump"));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((major, e.path().join("bin/pg_dump")))
                })
                .collect()
        })
        .unwrap_or_default();
    debian.sort_by_key(|d| std::cmp::Reverse(d.0));
    candidates.extend(debian.into_iter().map(|(_, p)| p));
    let mut seen = Vec::new();
    for pg_dump in candidates {
        if !pg_dump.is_file() {
            continue;
        }
        let Some(version) = version_of(&pg_dump) else {
            continue;
        };
        let Some(major) = major_of(&version) else {
            continue;
        };
        let pg_restore = pg_dump.with_file_name("pg_restore");
        if major >= server_major && pg_restore.is_file() {
            return Ok(Tools {
                pg_dump,
                pg_restore,
                version,
            });
        }
        seen.push(format!("`{}` ({version})", pg_dump.display()));
    }
    if seen.is_empty() {
        Err("`pg_dump` is not installed (Debian: apt-get install postgresql-client)".into())
    } else {
        Err(format!(
            "the server is PostgreSQL {server_major}, and pg_dump refuses servers newer than itself; found only {}; install postgresql-client-{server_major} or newer",
            seen.join(", ")
        ))
    }
}

/// A finished tool run: exit code (`None` when killed) and what it printed.
pub(crate) struct ToolRun {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl ToolRun {
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last lines of stderr, for a failure message.
    pub(crate) fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }
}

/// The last 15 lines of a tool's stderr, for a failure message.
pub(crate) fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A tool's command: only the libpq environment `env`; the supervisor gives it its own process
/// group, so that a cancel stops everything it started.
pub(crate) fn command(
    program: &Path,
    args: impl IntoIterator<Item = impl AsRef<std::ffi::OsStr>>,
    env: &[(String, String)],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// Runs a tool to the end (or until `cancel`, then stopped by the supervisor's policy),
/// collecting its output; stdout is kept only up to `max_stdout` bytes.
pub(crate) async fn run(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cancel: &CancellationToken,
    max_stdout: usize,
) -> Result<ToolRun, String> {
    let limits = child::Limits {
        stdout: child::Keep::Head(max_stdout),
        stderr: 256 * 1024,
    };
    let finished = child::capture(
        &mut command(program, args, env),
        limits,
        None,
        cancel,
        child::HELPER_GRACE,
    )
    .await
    .map_err(|e| format!("cannot start `{}`: {e}", program.display()))?;
    match finished {
        child::Finished::Exited(done) if done.stdout_overflowed => Err(format!(
            "`{}` printed more than {} MiB on stdout",
            program.display(),
            max_stdout >> 20
        )),
        child::Finished::Exited(done) => Ok(ToolRun {
            code: done.status.code(),
            stdout: String::from_utf8_lossy(&done.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&done.stderr).into_owned(),
        }),
        child::Finished::TimedOut | child::Finished::Cancelled => Err("cancelled".into()),
    }
}

/// `pg_restore -f /dev/null` reading a dump from its stdin while `pg_dump` writes it: the
/// whole-file read of [`verify_dump`] without a second pass over the file.
pub(crate) struct StreamCheck {
    child: child::Child,
    errors: std::thread::JoinHandle<String>,
}

/// The sink's name in [`super::dump::Dumped::sink_errors`].
pub(crate) const STREAM_CHECK: &str = "pg_restore";

/// The pipe into [`StreamCheck`]'s `pg_restore`.
pub(crate) struct StreamInput(std::fs::File);

impl super::dump::Sink for StreamInput {
    fn name(&self) -> &'static str {
        STREAM_CHECK
    }

    fn write(&mut self, block: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.0.write_all(block)
    }

    fn finish(self: Box<Self>) -> std::io::Result<()> {
        // Closing the pipe is the end of the dump for pg_restore.
        Ok(())
    }
}

impl StreamCheck {
    /// Starts `pg_restore -f /dev/null` on its stdin; returns it and the pipe to feed.
    pub(crate) fn start(
        tools: &Tools,
        env: &[(String, String)],
    ) -> Result<(StreamCheck, StreamInput), String> {
        let mut command = command(&tools.pg_restore, ["--file=/dev/null"], env);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = child::spawn(&mut command)
            .map_err(|e| format!("cannot start `{}`: {e}", tools.pg_restore.display()))?;
        let input = child.stdin().map(|i| i.into_owned_fd());
        let errors = child.stderr().map(|e| e.into_owned_fd());
        let (Some(Ok(input)), Some(Ok(errors))) = (input, errors) else {
            return Err("cannot reach pg_restore's stdin and stderr".into());
        };
        let mut errors = std::fs::File::from(errors);
        let errors = std::thread::spawn(move || {
            use std::io::Read;
            let mut text = Vec::new();
            let _ = (&mut errors).take(256 * 1024).read_to_end(&mut text);
            let _ = std::io::copy(&mut errors, &mut std::io::sink());
            String::from_utf8_lossy(&text).into_owned()
        });
        Ok((
            StreamCheck { child, errors },
            StreamInput(std::fs::File::from(input)),
        ))
    }

    /// Waits for `pg_restore` (its input closed): `Ok` when it read the whole dump.
    pub(crate) async fn finish(mut self, cancel: &CancellationToken) -> Result<(), String> {
        let status = tokio::select! {
            s = self.child.wait() => s.map_err(|e| format!("lost pg_restore: {e}"))?,
            () = cancel.cancelled() => {
                self.child.stop(child::HELPER_GRACE, &CancellationToken::new()).await;
                return Err("cancelled".into());
            }
        };
        let errors = self.errors;
        let stderr = tokio::task::spawn_blocking(move || errors.join())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`pg_restore -f /dev/null` could not read the whole dump: {}",
                tail(&stderr)
            ))
        }
    }
}

/// The dump's table of contents (`pg_restore --list`): its sha256 without comment lines, and
/// its number of entries.
pub(crate) async fn toc(
    tools: &Tools,
    file: &Path,
    env: &[(String, String)],
    cancel: &CancellationToken,
) -> Result<(String, u64), String> {
    let list = run(
        &tools.pg_restore,
        &["--list".into(), file.display().to_string()],
        env,
        cancel,
        256 << 20,
    )
    .await?;
    if !list.success() {
        return Err(format!(
            "`pg_restore --list` cannot read the dump's table of contents: {}",
            list.stderr_tail()
        ));
    }
    Ok(toc_hash(&list.stdout))
}

/// Reads every block of a custom-format dump (`pg_restore -f /dev/null`): catches a truncated
/// or bit-flipped file that `--list` alone passes. Returns the TOC's sha256 (without comment
/// lines) and its number of entries.
pub(crate) async fn verify_dump(
    tools: &Tools,
    file: &Path,
    env: &[(String, String)],
    cancel: &CancellationToken,
) -> Result<(String, u64), String> {
    let read = run(
        &tools.pg_restore,
        &["--file=/dev/null".into(), file.display().to_string()],
        env,
        cancel,
        1 << 20,
    )
    .await?;
    if !read.success() {
        return Err(format!(
            "`pg_restore -f /dev/null` could not read the whole dump: {}",
            read.stderr_tail()
        ));
    }
    toc(tools, file, env, cancel).await
}

/// sha256 of a `pg_restore --list` output without its `;` comment lines (which hold the dump's
/// timestamp), and the number of entries.
pub(crate) fn toc_hash(listing: &str) -> (String, u64) {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut entries = 0;
    for line in listing
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
    {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
        entries += 1;
    }
    (super::store::hex(&hasher.finalize()), entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            major_of("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(major_of("pg_dump (PostgreSQL) 17beta1"), Some(17));
        assert_eq!(major_of("nothing"), None);
        let (a, n) =
            toc_hash(";\n; Archive created at 2026-01-01\n;\n215; 1259 16385 TABLE public t app\n");
        let (b, _) =
            toc_hash("; Archive created at 2027-05-05\n215; 1259 16385 TABLE public t app\n");
        assert_eq!((a, n), (b, 1));
    }
}
