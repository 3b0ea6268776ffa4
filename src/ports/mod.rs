//! The port law: which ports may be exposed, and what was found against it.
//!
//! A [`Policy`] names the allowed ports (each with an optional role), the forbidden ones and
//! the ones that must be listening. Each check produces [`Finding`]s, one per thing worth
//! telling: a `Violation` fails the gate, a `Note` is only reported. The same finding shape
//! serves the static scan (a file, line and column) and the live check in [`live`], where
//! the position is absent and the message names the process or container instead.

pub(crate) mod adopt;
pub(crate) mod live;
pub(crate) mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use serde::Serialize;

/// What the command line asked for.
#[derive(Debug, Default, Clone)]
pub(crate) struct Policy {
    /// Ports that may be exposed, each with an optional role (`3001=frontend`).
    pub(crate) allow: BTreeMap<u16, Option<String>>,
    /// Ports that must not be used at all, on any address.
    pub(crate) forbid: BTreeSet<u16>,
    /// Ports that must have a listener or a published container port.
    pub(crate) require_listening: BTreeSet<u16>,
    /// Which listeners the rule speaks of.
    pub(crate) exposure: ExposureRule,
}

/// `exposure:` / `--exposure`: whether a listener on loopback only is exposed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExposureRule {
    /// What other machines can reach: an unlisted port on loopback only is a note.
    #[default]
    Reachable,
    /// Every listener, loopback included (what `netstat -an | grep :3001` sees).
    Any,
}

/// How far a port is exposed, which decides what an unlisted port is worth.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Exposure<'a> {
    /// Reachable from other machines.
    Exposed,
    /// On the loopback interface only; the phrase says how (`listens on`, `binds`).
    Loopback(&'static str),
    /// A setting that takes no effect, and why.
    NoEffect(&'a str),
    /// A reference, or a port open only inside a container's network.
    Internal,
}

/// The policy's verdict on one port (or range): the port concerned, severity, rule, message.
pub(crate) type Verdict = (u16, Severity, &'static str, String);

impl Policy {
    /// The one judgement both modes share: a forbidden port is a violation whatever its
    /// exposure; an unlisted one is a violation only when exposed, a note on loopback or when
    /// it has no effect, and nothing when internal. Allowed ports give nothing.
    pub(crate) fn judge(
        &self,
        ports: RangeInclusive<u16>,
        exposure: Exposure<'_>,
        what: &str,
    ) -> Option<Verdict> {
        let why = match exposure {
            Exposure::NoEffect(reason) => format!(" ({reason})"),
            _ => String::new(),
        };
        if let Some(&p) = self.forbid.range(ports.clone()).next() {
            let message = format!("port {p} is forbidden: {what}{why}");
            return Some((p, Severity::Violation, "forbidden", message));
        }
        let p = ports.into_iter().find(|p| !self.allow.contains_key(p))?;
        let (severity, message) = match exposure {
            Exposure::Internal => return None,
            Exposure::NoEffect(_) => (
                Severity::Note,
                format!("port {p} is not allowed, but the setting has no effect: {what}{why}"),
            ),
            Exposure::Loopback(verb) if self.exposure == ExposureRule::Any => (
                Severity::Violation,
                format!(
                    "port {p} is not allowed; it {verb} loopback only, which counts with `exposure: any`: {what}"
                ),
            ),
            Exposure::Loopback(verb) => (
                Severity::Note,
                format!("port {p} is not allowed, but {verb} loopback only: {what}"),
            ),
            Exposure::Exposed => (
                Severity::Violation,
                format!("port {p} is not allowed: {what}"),
            ),
        };
        Some((p, severity, "unlisted", message))
    }
}

/// Whether a finding fails the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Violation,
    Note,
}

/// One thing found against the policy. Serialised as-is for `--format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    /// The file that declares the port; `None` in live mode.
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
    /// The port concerned; `0` for a note about the check itself (Docker not reachable).
    pub(crate) port: u16,
    /// `listen` (a socket on this machine) or `publish` (a container's published port).
    pub(crate) kind: &'static str,
    /// `host`: live mode only sees this machine's network namespace and published ports.
    pub(crate) scope: &'static str,
    pub(crate) severity: Severity,
    /// `forbidden`, `unlisted`, `not-listening` or `docker`.
    pub(crate) rule: &'static str,
    pub(crate) message: String,
    /// The finding's line, as a baseline matches it ([`adopt::fingerprint`]); static mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fingerprint: Option<String>,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Violation => "violation",
            Severity::Note => "note",
        }
    }
}

/// `3 violations, 1 note`.
pub(crate) fn count_text(violations: usize, notes: usize) -> String {
    use crate::text::plural;
    format!(
        "{}, {}",
        plural(violations, "violation"),
        plural(notes, "note")
    )
}

impl Finding {
    /// `file:line:col` with `file` as given (the scan root joined to it, for a stage), when
    /// the finding has a place.
    pub(crate) fn place(&self, file: Option<&str>) -> Option<String> {
        let file = file.or(self.file.as_deref())?;
        Some(format!("{file}:{}:{}", self.line?, self.column?))
    }

    /// One line of human output: `place: severity[rule]: message`.
    pub(crate) fn line_text(&self, place: Option<&str>) -> String {
        let at = place.map(|p| format!("{p}: ")).unwrap_or_default();
        format!(
            "{at}{}[{}]: {}",
            self.severity.as_str(),
            self.rule,
            self.message
        )
    }

    /// A test case name that says where and what: `web/package.json:7:21 forbidden port 3000`.
    pub(crate) fn case_name(&self, place: Option<&str>) -> String {
        match place {
            Some(p) => format!("{p} {} port {}", self.rule, self.port),
            None => format!("{} port {}: {}", self.rule, self.port, self.message),
        }
    }

    /// A live-mode finding: no file position, host scope.
    pub(crate) fn live(
        port: u16,
        kind: &'static str,
        severity: Severity,
        rule: &'static str,
        message: String,
    ) -> Self {
        Finding {
            file: None,
            line: None,
            column: None,
            port,
            kind,
            scope: "host",
            severity,
            rule,
            message,
            fingerprint: None,
        }
    }
}
