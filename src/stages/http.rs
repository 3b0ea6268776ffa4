//! `uses: http` — wait until HTTP endpoints answer as expected (a smoke test after a deploy).
//!
//! The main type is [`Http`]. Each URL is polled every `interval` until it answers with the
//! expected status (and body text, when `contains` is set) or `within` runs out; each URL is one
//! JUnit test case, and the statuses seen are published as the output `statuses`. Plain
//! `http://` only: the endpoints this checks are the services a pipeline just started, on this
//! machine or its network.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use serde_json::{Value, json};

use super::{BoxFuture, BuiltinStage, Kind, KindOutcome, StageContext};
use crate::config::errors::ConfigError;
use crate::config::validate::Validator;
use crate::config::yaml::Node;
use crate::runner::events::{CaseResult, CaseStatus};

const KEYS: &[&str] = &["url", "urls", "expect", "contains", "within", "interval"];
const NOT_HTTP: &str = "not an HTTP response";
/// The most of a response body that is read and shown.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Http {
    urls: Vec<String>,
    expect: u16,
    contains: Option<String>,
    within: Duration,
    interval: Duration,
}

impl Kind for Http {
    const NAME: &'static str = "http";

    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<Http> {
        let f = v.fields(with, "`with` of `http`", KEYS)?;
        let mut urls = Vec::new();
        let mut nodes = Vec::new();
        if let Some(n) = f.get("url") {
            nodes.extend(v.string(n, "`url`").map(|s| (s, n)));
        }
        if let Some(n) = f.get("urls") {
            nodes.extend(v.string_list(n, "`urls`"));
        }
        if nodes.is_empty() {
            v.error(
                ConfigError::new("`http` needs a URL to check", f.span.clone(), "no `url`")
                    .help("add `url: http://127.0.0.1:3001/healthz` (or `urls:` with several)"),
            );
            return None;
        }
        for (text, node) in nodes {
            if !text.starts_with("http://") {
                v.error(
                    ConfigError::new(
                        format!("`{text}` is not an `http://` URL"),
                        node.span.clone(),
                        "not http://",
                    )
                    .help(
                        "`http` checks plain-HTTP endpoints, e.g. `http://127.0.0.1:3001/healthz`",
                    ),
                );
                continue;
            }
            urls.push(text);
        }
        let expect = f
            .get("expect")
            .and_then(|n| v.uint(n, "`expect`", 100, 599))
            .map_or(200, |n| n as u16);
        let contains = f.get("contains").and_then(|n| v.string(n, "`contains`"));
        let within = f
            .get("within")
            .and_then(|n| v.duration(n, "`within`"))
            .unwrap_or(Duration::from_secs(30));
        let interval = f
            .get("interval")
            .and_then(|n| v.duration(n, "`interval`"))
            .unwrap_or(Duration::from_secs(1));
        Some(Http {
            urls,
            expect,
            contains,
            within,
            interval,
        })
    }

    fn with_schema() -> Value {
        json!({
            "description": "Settings of `uses: http`: poll URLs until each answers `expect`.",
            "type": "object",
            "additionalProperties": false,
            "anyOf": [{ "required": ["url"] }, { "required": ["urls"] }],
            "properties": {
                "url": { "description": "A plain `http://` URL to poll.", "type": "string" },
                "urls": {
                    "description": "Several plain `http://` URLs, each its own JUnit case.",
                    "$ref": "#/definitions/stringOrList"
                },
                "expect": {
                    "description": "The status each URL must answer (default 200).",
                    "type": "integer",
                    "minimum": 100,
                    "maximum": 599
                },
                "contains": { "description": "A text the body must contain.", "type": "string" },
                "within": {
                    "description": "How long to keep polling each URL (default 30s).",
                    "$ref": "#/definitions/duration"
                },
                "interval": {
                    "description": "Time between polls (default 1s).",
                    "$ref": "#/definitions/duration"
                }
            }
        })
    }
}

impl BuiltinStage for Http {
    fn describe(&self) -> String {
        let contains = self
            .contains
            .as_ref()
            .map(|c| format!(" containing `{c}`"))
            .unwrap_or_default();
        format!(
            "expect {}{contains} from {} within {}",
            self.expect,
            self.urls.join(", "),
            crate::config::duration::format(self.within)
        )
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move {
            let mut outcome = KindOutcome::passed();
            let mut statuses = Vec::new();
            for url in &self.urls {
                let started = Instant::now();
                let (case, status) = self.check(url, cx).await;
                statuses.push(status.map_or_else(|| "none".to_owned(), |s| s.to_string()));
                if let CaseStatus::Failed { message, .. } | CaseStatus::Errored { message, .. } =
                    &case
                {
                    outcome.result = Err(message.clone());
                }
                outcome.cases.push(CaseResult {
                    name: format!("GET {url}"),
                    status: case,
                    duration: started.elapsed(),
                    location: None,
                    output: String::new(),
                });
                if cx.cancel.is_cancelled() {
                    break;
                }
            }
            outcome
                .outputs
                .push(("statuses".into(), statuses.join(" ")));
            outcome
        })
    }
}

impl Http {
    /// Polls one URL until it answers as expected or time runs out.
    async fn check(&self, url: &str, cx: &mut StageContext) -> (CaseStatus, Option<u16>) {
        let deadline = Instant::now() + self.within;
        let mut last;
        let mut last_status = None;
        // Something answered, but not in HTTP: the check could not run, which JUnit calls an
        // error rather than a failure.
        let mut not_http;
        // A poll that answers as the one before is counted, not logged again: a failing stage's
        // log (and its JUnit tail) says each distinct answer once, with how often it repeated.
        let mut shown: Option<String> = None;
        let mut repeats = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let answer = tokio::select! {
                a = tokio::time::timeout(remaining.max(Duration::from_millis(1)), get(url)) => a,
                () = cx.cancel.cancelled() => return (CaseStatus::Skipped { message: "cancelled".into() }, last_status),
            };
            match answer {
                Ok(Ok((status, body))) => {
                    not_http = false;
                    last_status = Some(status);
                    let body_ok = self
                        .contains
                        .as_ref()
                        .is_none_or(|c| body.contains(c.as_str()));
                    if status == self.expect && body_ok {
                        flush_repeats(cx, url, &shown, repeats).await;
                        cx.log.line(&format!("GET {url}: {status}")).await;
                        return (CaseStatus::Passed, last_status);
                    }
                    last = if status == self.expect {
                        format!(
                            "{status}, but the body does not contain `{}`",
                            self.contains.as_deref().unwrap_or_default()
                        )
                    } else {
                        format!("{status}")
                    };
                }
                Ok(Err(e)) => {
                    not_http = e.starts_with(NOT_HTTP);
                    last = e;
                }
                Err(_) => {
                    not_http = false;
                    last = "no answer".into();
                }
            }
            if shown.as_deref() == Some(last.as_str()) {
                repeats += 1;
            } else {
                flush_repeats(cx, url, &shown, repeats).await;
                repeats = 0;
                cx.log.line(&format!("GET {url}: {last}")).await;
                shown = Some(last.clone());
            }
            if Instant::now() + self.interval >= deadline {
                flush_repeats(cx, url, &shown, repeats).await;
                let message = format!(
                    "GET {url}: expected {} within {}, last answer: {last}",
                    self.expect,
                    crate::config::duration::format(self.within)
                );
                let body = String::new();
                let status = if not_http {
                    CaseStatus::Errored { message, body }
                } else {
                    CaseStatus::Failed { message, body }
                };
                return (status, last_status);
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = cx.cancel.cancelled() => return (CaseStatus::Skipped { message: "cancelled".into() }, last_status),
            }
        }
    }
}

/// Says how many more polls gave the answer last logged.
async fn flush_repeats(cx: &mut StageContext, url: &str, shown: &Option<String>, repeats: u32) {
    if let Some(answer) = shown
        && repeats > 0
    {
        let times = if repeats == 1 { "time" } else { "times" };
        cx.log
            .line(&format!("GET {url}: {answer} ({repeats} more {times})"))
            .await;
    }
}

/// One `GET` over HTTP/1.1 with `Connection: close`; returns the status and up to
/// [`MAX_BODY`] bytes of the body.
pub(crate) async fn get(url: &str) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or("not an http:// URL")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(&address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: portcullis\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut response = Vec::new();
    let mut limited = stream.take((MAX_BODY + 16 * 1024) as u64);
    limited
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("cannot read the response: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "{NOT_HTTP}: `{}`",
                status_line.chars().take(80).collect::<String>()
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
