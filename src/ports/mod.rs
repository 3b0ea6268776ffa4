//! The port law: which ports may be exposed, and what was found against it.
//!
//! A [`Policy`] names the allowed ports (each with an optional role), the forbidden ones and
//! the ones that must be listening. Each check produces [`Finding`]s, one per thing worth
//! telling: a `Violation` fails the gate, a `Note` is only reported. The same finding shape
//! serves the static scan (a file, line and column) and the live check in [`live`], where
//! the position is absent and the message names the process or container instead.

pub(crate) mod live;
pub(crate) mod scan;

use std::collections::{BTreeMap, BTreeSet};

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
}

impl Finding {
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
        }
    }
}
