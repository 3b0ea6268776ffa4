//! Health of a colour: HTTP probes with consecutive-success and consecutive-failure thresholds,
//! Docker's own HEALTHCHECK when the image has one, and the container's state.
//!
//! The main type is [`Probe`]. [`Probe::gate`] decides whether a freshly started colour may
//! take traffic; [`Probe::watch`] keeps checking after the switch. Both return the reason when
//! the answer is no, with the container's own health log and last output lines.

use std::time::{Duration, Instant};

use bollard::models::HealthStatusEnum;

use super::docker::Engine;
use crate::runner::output::OutputSink;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub(crate) struct HealthSpec {
    pub(crate) path: String,
    pub(crate) expect: u16,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) healthy_after: u32,
    pub(crate) unhealthy_after: u32,
    pub(crate) within: Duration,
}

pub(crate) struct Probe<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) spec: &'a HealthSpec,
    pub(crate) cancel: &'a CancellationToken,
}

/// What one look at the container says.
enum State {
    Running {
        docker_health: Option<HealthStatusEnum>,
    },
    Gone(String),
}

impl Probe<'_> {
    /// Waits until the container at `url` passes `healthy-after` consecutive probes (and its
    /// HEALTHCHECK, if any, says healthy) within `within`. Before the first success, failures
    /// are the app starting up and only the deadline counts; after it, `unhealthy-after`
    /// consecutive failures fail the gate at once.
    pub(crate) async fn gate(
        &self,
        container: &str,
        url: &str,
        log: &mut OutputSink,
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.spec.within;
        let mut successes = 0u32;
        let mut failures = 0u32;
        let mut ever_passed = false;
        let mut last = String::from("no probe answered yet");
        loop {
            let docker_health = match self.state(container).await? {
                State::Gone(why) => return Err(self.explain(container, &why).await),
                State::Running { docker_health } => docker_health,
            };
            if docker_health == Some(HealthStatusEnum::UNHEALTHY) {
                let why = "Docker's HEALTHCHECK reports it unhealthy".to_owned();
                return Err(self.explain(container, &why).await);
            }
            match self.http(url).await {
                Ok(()) => {
                    successes += 1;
                    failures = 0;
                    ever_passed = true;
                }
                Err(e) => {
                    log.line(&format!("probe {url}: {e}")).await;
                    last = e;
                    successes = 0;
                    failures += 1;
                }
            }
            let docker_ok = matches!(
                docker_health,
                None | Some(HealthStatusEnum::HEALTHY)
                    | Some(HealthStatusEnum::NONE)
                    | Some(HealthStatusEnum::EMPTY)
            );
            if successes >= self.spec.healthy_after && docker_ok {
                return Ok(());
            }
            if ever_passed && failures >= self.spec.unhealthy_after {
                let why = format!("{failures} probes of {url} failed in a row, last: {last}");
                return Err(self.explain(container, &why).await);
            }
            if Instant::now() + self.spec.interval >= deadline {
                let why = if successes > 0 && !docker_ok {
                    format!(
                        "not healthy within {}: HTTP probes pass but Docker's HEALTHCHECK \
                         still says `{}`",
                        crate::config::duration::format(self.spec.within),
                        docker_health.map(|h| h.to_string()).unwrap_or_default()
                    )
                } else {
                    format!(
                        "not healthy within {}: last probe of {url}: {last}",
                        crate::config::duration::format(self.spec.within)
                    )
                };
                return Err(self.explain(container, &why).await);
            }
            self.sleep().await?;
        }
    }

    /// Keeps probing each of `urls` (the colour itself, and the router when a watch URL is set)
    /// for `window`; fails on `unhealthy-after` consecutive failures of one of them, or when the
    /// container stops.
    pub(crate) async fn watch(
        &self,
        container: &str,
        urls: &[String],
        window: Duration,
        log: &mut OutputSink,
    ) -> Result<(), String> {
        let end = Instant::now() + window;
        let mut failures = vec![0u32; urls.len()];
        let mut answered = vec![false; urls.len()];
        loop {
            match self.state(container).await? {
                State::Gone(why) => return Err(self.explain(container, &why).await),
                State::Running {
                    docker_health: Some(HealthStatusEnum::UNHEALTHY),
                } => {
                    let why = "Docker's HEALTHCHECK reports it unhealthy".to_owned();
                    return Err(self.explain(container, &why).await);
                }
                State::Running { .. } => {}
            }
            for ((url, failures), answered) in urls
                .iter()
                .zip(failures.iter_mut())
                .zip(answered.iter_mut())
            {
                match self.http(url).await {
                    Ok(()) => {
                        *failures = 0;
                        *answered = true;
                    }
                    Err(e) => {
                        log.line(&format!("probe {url}: {e}")).await;
                        // A router answers from its new configuration only once its reload
                        // is done, which `nginx -s reload` does not wait for: failures before
                        // the first success are not counted, but there must be one.
                        if *answered {
                            *failures += 1;
                        }
                        if *failures >= self.spec.unhealthy_after {
                            let why =
                                format!("{failures} probes of {url} failed in a row, last: {e}");
                            return Err(self.explain(container, &why).await);
                        }
                    }
                }
            }
            if Instant::now() >= end {
                if let Some((url, _)) = urls.iter().zip(&answered).find(|(_, a)| !**a) {
                    let why = format!("{url} never answered {} during the watch", self.spec.expect);
                    return Err(self.explain(container, &why).await);
                }
                return Ok(());
            }
            self.sleep().await?;
        }
    }

    async fn sleep(&self) -> Result<(), String> {
        tokio::select! {
            () = tokio::time::sleep(self.spec.interval) => Ok(()),
            () = self.cancel.cancelled() => Err("cancelled".to_owned()),
        }
    }

    async fn http(&self, url: &str) -> Result<(), String> {
        match tokio::time::timeout(self.spec.timeout, crate::stages::http::get(url)).await {
            Ok(Ok((status, _))) if status == self.spec.expect => Ok(()),
            Ok(Ok((status, _))) => Err(format!("answered {status}, expected {}", self.spec.expect)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "no answer within {}",
                crate::config::duration::format(self.spec.timeout)
            )),
        }
    }

    async fn state(&self, container: &str) -> Result<State, String> {
        let Some(info) = self.engine.inspect(container).await? else {
            return Ok(State::Gone("the container was removed".into()));
        };
        let state = info.state.unwrap_or_default();
        if state.running != Some(true) || state.restarting == Some(true) {
            let mut why = format!(
                "the container is not running (status `{}`, exit code {})",
                state.status.map(|s| s.to_string()).unwrap_or_default(),
                state.exit_code.unwrap_or_default()
            );
            if state.oom_killed == Some(true) {
                why.push_str(", killed for lack of memory");
            }
            return Ok(State::Gone(why));
        }
        Ok(State::Running {
            docker_health: state.health.and_then(|h| h.status),
        })
    }

    /// The reason, plus the container's health log and last output lines.
    async fn explain(&self, container: &str, why: &str) -> String {
        let mut text = format!("`{container}`: {why}");
        if let Ok(Some(info)) = self.engine.inspect(container).await
            && let Some(log) = info
                .state
                .and_then(|s| s.health)
                .and_then(|h| h.log)
                .filter(|l| l.iter().any(|e| e.exit_code != Some(0)))
        {
            text.push_str("\nDocker health log:");
            for entry in log.iter().rev().take(3).rev() {
                text.push_str(&format!(
                    "\n  exit {}: {}",
                    entry.exit_code.unwrap_or_default(),
                    entry.output.as_deref().unwrap_or_default().trim()
                ));
            }
        }
        let logs = self.engine.logs_tail(container, 20).await;
        if !logs.trim().is_empty() {
            text.push_str("\nlast output of the container:\n");
            text.push_str(logs.trim_end());
        }
        text
    }
}
