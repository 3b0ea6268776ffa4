//! Switching traffic between colours, and reading which colour the router sends traffic to.
//!
//! The main type is [`Router`]. `nginx` rewrites an upstream file atomically (a temporary file
//! in the same folder, then a rename), checks the whole configuration with `nginx -t`, and
//! reloads gracefully: old workers finish the requests they hold while new ones use the new
//! upstream. During the watch the old colour stays in the upstream as a `backup` server, so a
//! new colour that dies mid-watch is failed over by nginx itself before the stage switches back.
//! `alias` moves a Docker network alias; `command` runs the user's own switch command;
//! `haproxy` re-addresses and re-weights server slots through HAProxy's runtime API, with no
//! reload ([`super::haproxy`]).

use std::process::ExitStatus;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::docker::{Colour, Engine};
use super::haproxy::{self, Runtime};
use crate::runner::output::OutputSink;
use crate::supervisor::child;

/// How long a switch command or a host `nginx` may run before it is stopped.
const HOST_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub(crate) enum SwitchSpec {
    Nginx {
        upstream_file: String,
        upstream: String,
        /// nginx runs in this container; reached through `docker exec`.
        container: Option<String>,
        /// The nginx invocation `-t` and `-s reload` are appended to, on the host.
        command: Vec<String>,
    },
    Alias {
        network: String,
        name: String,
    },
    Command {
        argv: Vec<String>,
    },
    Haproxy {
        /// The runtime API: a unix socket path or `HOST:PORT` on loopback.
        socket: String,
        backend: String,
    },
}

pub(crate) struct Router<'a> {
    pub(crate) spec: &'a SwitchSpec,
    pub(crate) engine: &'a Engine,
    pub(crate) port: u16,
    /// The stage's environment, for a host `nginx` or the user's command.
    pub(crate) env: &'a [(String, String)],
}

/// The address of one colour as the router reaches it.
pub(crate) fn address(colour: &Colour, port: u16) -> Option<String> {
    colour.ip.as_ref().map(|ip| format!("{ip}:{port}"))
}

impl Router<'_> {
    /// HAProxy's runtime API, when that is the router.
    pub(crate) fn haproxy(&self) -> Option<Runtime<'_>> {
        match self.spec {
            SwitchSpec::Haproxy { socket, backend } => Some(Runtime { socket, backend }),
            _ => None,
        }
    }

    /// Checks, before anything changes, that the router is set up as the method needs (HAProxy:
    /// the API answers and the backend has its two slots).
    pub(crate) async fn check(&self) -> Result<(), String> {
        if let Some(api) = self.haproxy() {
            api.slots().await?;
        }
        Ok(())
    }

    /// The colour the router sends traffic to now, among `colours`; `None` on a first deploy.
    /// `snapshot` is the upstream file as [`Router::snapshot`] read it (nginx only).
    pub(crate) async fn live<'c>(
        &self,
        colours: &'c [Colour],
        snapshot: Option<&str>,
    ) -> Result<Option<&'c Colour>, String> {
        match self.spec {
            SwitchSpec::Nginx { .. } => {
                let primaries = primary_servers(snapshot.unwrap_or_default());
                Ok(colours
                    .iter()
                    .find(|c| address(c, self.port).is_some_and(|a| primaries.contains(&a))))
            }
            SwitchSpec::Alias { network, name } => {
                for c in colours.iter().filter(|c| c.running) {
                    if self.engine.has_alias(network, &c.container, name).await? {
                        return Ok(Some(c));
                    }
                }
                Ok(None)
            }
            SwitchSpec::Haproxy { socket, backend } => {
                let slots = Runtime { socket, backend }.slots().await?.colours;
                // The serving slot that addresses a running colour; mid-canary, the one with
                // the most weight.
                Ok(colours
                    .iter()
                    .filter(|c| c.running)
                    .filter_map(|c| {
                        let slot = &slots[usize::from(c.colour == "green")];
                        let ours = address(c, self.port).is_some_and(|a| a == slot.address);
                        (ours && slot.serving()).then_some((slot.weight, c))
                    })
                    .max_by_key(|(weight, _)| *weight)
                    .map(|(_, c)| c))
            }
            SwitchSpec::Command { .. } => {
                let running: Vec<&Colour> = colours.iter().filter(|c| c.running).collect();
                match running.as_slice() {
                    [] => Ok(None),
                    [one] => Ok(Some(one)),
                    _ => Err(format!(
                        "both colours run ({}); with `switch: command` the live colour is the one \
                         that runs, so stop the one your router does not send traffic to",
                        running
                            .iter()
                            .map(|c| format!("`{}`", c.container))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
        }
    }

    /// Sends traffic to `to`; with `backup`, that colour stays as a fallback (nginx) or keeps
    /// its alias (alias) until the next call without one.
    pub(crate) async fn switch(
        &self,
        to: &Colour,
        backup: Option<&Colour>,
        log: &mut OutputSink,
    ) -> Result<(), String> {
        let target = address(to, self.port)
            .ok_or_else(|| format!("`{}` has no address on its network", to.container))?;
        match self.spec {
            SwitchSpec::Nginx {
                upstream_file,
                upstream,
                ..
            } => {
                let backup = backup.and_then(|b| address(b, self.port));
                let text = render(upstream, &to.colour, &target, backup.as_deref());
                let previous = self.read_upstream(upstream_file).await?;
                if previous.as_deref() == Some(text.as_str()) {
                    return Ok(());
                }
                self.write_upstream(upstream_file, &text).await?;
                if let Err(e) = self.nginx(&["-t"]).await {
                    // Put back what was there so a later reload does not pick up a bad file.
                    self.put_back(upstream_file, previous.as_deref()).await?;
                    return Err(format!("`nginx -t` rejected the new upstream: {e}"));
                }
                self.nginx(&["-s", "reload"]).await?;
                log.line(&format!(
                    "nginx: upstream `{upstream}` -> {target}{}, reloaded",
                    backup.map(|b| format!(" (backup {b})")).unwrap_or_default()
                ))
                .await;
                Ok(())
            }
            SwitchSpec::Alias { network, name } => {
                self.engine
                    .connect_alias(network, &to.container, name)
                    .await?;
                if backup.is_none() {
                    for other in self.holders(network, name, &to.container).await? {
                        self.engine.disconnect(network, &other).await?;
                    }
                }
                log.line(&format!(
                    "alias `{name}` on `{network}` -> `{}`",
                    to.container
                ))
                .await;
                Ok(())
            }
            SwitchSpec::Command { argv } => self.run_command(argv, to, &target, log).await,
            SwitchSpec::Haproxy { socket, backend } => {
                let api = Runtime { socket, backend };
                let other = other_colour(&to.colour);
                let has_fallback = api.slots().await?.fallback.is_some();
                let fallback = backup
                    .filter(|_| has_fallback)
                    .and_then(|b| address(b, self.port));
                // The fallback first: the new colour may be marked down at once.
                if let Some(old) = &fallback {
                    api.point(haproxy::FALLBACK, old, haproxy::FULL).await?;
                }
                api.point(&to.colour, &target, haproxy::FULL).await?;
                if backup.is_some() {
                    // Still addressed, kept from new requests: parked by `settle`.
                    api.weigh(other, 0).await?;
                } else {
                    api.retire(other).await?;
                }
                log.line(&format!(
                    "haproxy: `{backend}/{}` -> {target} with all the weight, `{backend}/{other}` {}{}",
                    to.colour,
                    if backup.is_some() { "at weight 0" } else { "parked" },
                    fallback
                        .map(|f| format!(", `{backend}/{}` -> {f}", haproxy::FALLBACK))
                        .unwrap_or_default()
                ))
                .await;
                Ok(())
            }
        }
    }

    /// Drops the fallback kept by [`Router::switch`]: the old colour leaves the upstream (nginx)
    /// or the alias (alias). A user's command knows no fallback, so there is nothing to do.
    pub(crate) async fn settle(&self, to: &Colour, log: &mut OutputSink) -> Result<(), String> {
        match self.spec {
            SwitchSpec::Command { .. } => Ok(()),
            SwitchSpec::Haproxy { socket, backend } => {
                let api = Runtime { socket, backend };
                let other = other_colour(&to.colour);
                api.retire(other).await?;
                log.line(&format!("haproxy: `{backend}/{other}` parked"))
                    .await;
                Ok(())
            }
            SwitchSpec::Nginx {
                upstream_file,
                upstream,
                ..
            } => {
                // The file loses the backup; nginx keeps it until its next reload, since every
                // reload closes idle keep-alive connections (one per switch is the cost).
                let target = address(to, self.port)
                    .ok_or_else(|| format!("`{}` has no address on its network", to.container))?;
                let text = render(upstream, &to.colour, &target, None);
                if self.read_upstream(upstream_file).await?.as_deref() != Some(text.as_str()) {
                    self.write_upstream(upstream_file, &text).await?;
                    log.line(&format!(
                        "nginx: backup dropped from `{upstream_file}`, in effect at nginx's next reload"
                    ))
                    .await;
                }
                Ok(())
            }
            SwitchSpec::Alias { .. } => self.switch(to, None, log).await,
        }
    }

    /// Restores the router as it was before a first deploy of `new` failed (nginx: the
    /// upstream file; HAProxy: `new`'s slot parked; an alias or a command router simply loses
    /// the colour that is removed).
    pub(crate) async fn restore(&self, previous: Option<&str>, new: &Colour) -> Result<(), String> {
        match self.spec {
            SwitchSpec::Nginx { upstream_file, .. } => {
                self.put_back(upstream_file, previous).await?;
                self.nginx(&["-t"]).await?;
                self.nginx(&["-s", "reload"]).await?;
            }
            SwitchSpec::Haproxy { socket, backend } => {
                Runtime { socket, backend }.retire(&new.colour).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Puts the upstream file back as it was: its old text, or no file when there was none.
    async fn put_back(&self, file: &str, previous: Option<&str>) -> Result<(), String> {
        if let Some(previous) = previous {
            return self.write_upstream(file, previous).await;
        }
        match self.nginx_container() {
            None => match tokio::fs::remove_file(file).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("cannot remove the upstream file `{file}`: {e}")),
            },
            Some(container) => {
                let (code, out) = self
                    .engine
                    .exec(container, &["rm".into(), "-f".into(), file.into()])
                    .await?;
                if code == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "cannot remove `{file}` in `{container}`: {}",
                        out.trim()
                    ))
                }
            }
        }
    }

    /// The upstream file's text before a deploy, for [`Router::live`] and [`Router::restore`].
    pub(crate) async fn snapshot(&self) -> Result<Option<String>, String> {
        match self.spec {
            SwitchSpec::Nginx { upstream_file, .. } => self.read_upstream(upstream_file).await,
            _ => Ok(None),
        }
    }

    async fn holders(
        &self,
        network: &str,
        alias: &str,
        except: &str,
    ) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        let info = self
            .engine
            .docker
            .inspect_network(network, None)
            .await
            .map_err(|e| {
                format!(
                    "cannot inspect network `{network}`: {}",
                    super::docker::message(&e)
                )
            })?;
        for (_, c) in info.containers.unwrap_or_default() {
            let Some(name) = c.name else { continue };
            if name != except && self.engine.has_alias(network, &name, alias).await? {
                found.push(name);
            }
        }
        Ok(found)
    }

    async fn run_command(
        &self,
        argv: &[String],
        to: &Colour,
        target: &str,
        log: &mut OutputSink,
    ) -> Result<(), String> {
        let (program, args) = argv.split_first().ok_or("the switch command is empty")?;
        let (status, text) = self
            .on_host(
                program,
                args,
                &[
                    ("PORTCULLIS_BG_ADDRESS", target),
                    ("PORTCULLIS_BG_COLOUR", &to.colour),
                    ("PORTCULLIS_BG_CONTAINER", &to.container),
                ],
            )
            .await
            .map_err(|e| format!("cannot run the switch command `{program}`: {e}"))?;
        for line in text.lines() {
            log.line(line).await;
        }
        if !status.success() {
            return Err(format!(
                "the switch command to `{}` failed ({status}): {}",
                to.colour,
                text.trim()
            ));
        }
        log.line(&format!("switch command: traffic -> {target}"))
            .await;
        Ok(())
    }

    /// Runs `program` on the host in the stage's environment plus `extra`, through the
    /// supervisor; returns how it ended and its stdout then stderr. Not cancelled by an abort
    /// (switching back must finish), but stopped after [`HOST_COMMAND_TIMEOUT`].
    async fn on_host(
        &self,
        program: &str,
        args: &[String],
        extra: &[(&str, &str)],
    ) -> Result<(ExitStatus, String), String> {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().copied());
        let limits = child::Limits {
            stdout: child::Keep::Tail(64 * 1024),
            stderr: 64 * 1024,
        };
        let finished = child::capture(
            &mut command,
            limits,
            Some(HOST_COMMAND_TIMEOUT),
            &CancellationToken::new(),
            child::HELPER_GRACE,
        )
        .await
        .map_err(|e| e.to_string())?;
        match finished {
            child::Finished::Exited(done) => Ok((
                done.status,
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&done.stdout),
                    String::from_utf8_lossy(&done.stderr)
                ),
            )),
            child::Finished::TimedOut | child::Finished::Cancelled => Err(format!(
                "still running after {}, stopped",
                crate::config::duration::format(HOST_COMMAND_TIMEOUT)
            )),
        }
    }

    async fn read_upstream(&self, file: &str) -> Result<Option<String>, String> {
        match self.nginx_container() {
            None => match tokio::fs::read_to_string(file).await {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read the upstream file `{file}`: {e}")),
            },
            Some(container) => {
                let (code, out) = self
                    .engine
                    .exec(container, &["cat".into(), file.into()])
                    .await?;
                Ok((code == 0).then_some(out))
            }
        }
    }

    async fn write_upstream(&self, file: &str, text: &str) -> Result<(), String> {
        match self.nginx_container() {
            None => write_atomically(file, text)
                .await
                .map_err(|e| format!("cannot write the upstream file `{file}`: {e}")),
            Some(container) => {
                // Written beside the target, then renamed over it, inside the container.
                let temp = format!("{file}.portcullis-tmp");
                let script = "printf '%s' \"$1\" > \"$2\" && mv -f \"$2\" \"$3\"";
                let (code, out) = self
                    .engine
                    .exec(
                        container,
                        &[
                            "sh".into(),
                            "-c".into(),
                            script.into(),
                            "sh".into(),
                            text.into(),
                            temp,
                            file.into(),
                        ],
                    )
                    .await?;
                if code != 0 {
                    return Err(format!(
                        "cannot write `{file}` in `{container}`: {}",
                        out.trim()
                    ));
                }
                Ok(())
            }
        }
    }

    fn nginx_container(&self) -> Option<&str> {
        match self.spec {
            SwitchSpec::Nginx { container, .. } => container.as_deref(),
            _ => None,
        }
    }

    async fn nginx(&self, extra: &[&str]) -> Result<(), String> {
        let SwitchSpec::Nginx {
            container, command, ..
        } = self.spec
        else {
            return Ok(());
        };
        let mut argv: Vec<String> = command.clone();
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        let shown = argv.join(" ");
        let (ok, text) = match container {
            Some(container) => {
                let (code, out) = self.engine.exec(container, &argv).await?;
                (code == 0, out)
            }
            None => {
                let (program, args) = argv.split_first().ok_or("the nginx command is empty")?;
                let (status, out) = self
                    .on_host(program, args, &[])
                    .await
                    .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
                (status.success(), out)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("`{shown}` failed: {}", text.trim()))
        }
    }
}

/// The colour that is not `colour`.
pub(crate) fn other_colour(colour: &str) -> &'static str {
    if colour == "blue" { "green" } else { "blue" }
}

/// The upstream file: the live colour first, the old one as `backup` while it is watched.
pub(crate) fn render(upstream: &str, colour: &str, target: &str, backup: Option<&str>) -> String {
    let mut text = format!(
        "# Written by portcullis blue-green; rewritten on every deploy.\n\
         # live colour: {colour}\n\
         upstream {upstream} {{\n    server {target};\n"
    );
    if let Some(b) = backup {
        text.push_str(&format!("    server {b} backup;\n"));
    }
    text.push_str("}\n");
    text
}

/// The `server` addresses of an upstream file that are not `backup`.
pub(crate) fn primary_servers(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| l.strip_prefix("server"))
        .filter(|rest| rest.starts_with(char::is_whitespace))
        .filter_map(|rest| {
            let rest = rest.trim().trim_end_matches(';');
            let mut words = rest.split_whitespace();
            let address = words.next()?.trim_end_matches(';').to_owned();
            (!words.any(|w| w.trim_end_matches(';') == "backup")).then_some(address)
        })
        .collect()
}

/// Writes `text` to a temporary file beside `path`, syncs it, and renames it over `path`, so a
/// reader (nginx, or a runner killed halfway) sees the old file or the new one, never a part.
async fn write_atomically(path: &str, text: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let temp = format!("{path}.portcullis-tmp");
    let mut file = tokio::fs::File::create(&temp).await?;
    file.write_all(text.as_bytes()).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&temp, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_servers_skip_backups_and_comments() {
        let text = render("web", "green", "172.17.0.3:80", Some("172.17.0.2:80"));
        assert_eq!(primary_servers(&text), vec!["172.17.0.3:80"]);
        let hand = "upstream web {\n  server 10.0.0.1:80;  # old\n  server 10.0.0.2:80 weight=2;\n  \
                    # server 10.0.0.9:80;\n  server 10.0.0.3:80 backup;\n}\n";
        assert_eq!(primary_servers(hand), vec!["10.0.0.1:80", "10.0.0.2:80"]);
        assert!(primary_servers("").is_empty());
        assert!(primary_servers("servers 1.2.3.4:5;").is_empty());
    }
}
