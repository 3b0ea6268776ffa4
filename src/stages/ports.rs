//! `uses: ports` — the port law as a pipeline stage.
//!
//! The main type is [`Ports`]. It holds one [`Policy`] and applies it in the modes the stage
//! asks for: `scan:` walks source trees (static mode, [`crate::ports::scan`]), `live: true`
//! checks this machine's sockets and Docker's published ports ([`crate::ports::live`]). With
//! neither, it scans the working directory. Each violation is one failed JUnit test case that
//! carries its file, line and column, so GitHub mode annotates the line; each note is a passing
//! case whose output says why it is only a note. Both scans are blocking work, done on a
//! blocking thread so the runner keeps streaming other stages' output meanwhile.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BoxFuture, BuiltinStage, Kind, KindOutcome, StageContext};
use crate::config::errors::ConfigError;
use crate::config::validate::Validator;
use crate::config::yaml::{Node, NodeKind};
use crate::ports::adopt::{Baseline, JUNIT_GROUP_ABOVE, Reach, SCREENFUL, Summary};
use crate::ports::{ExposureRule, Finding, Policy, Severity, count_text, live, scan};
use crate::runner::events::{CaseResult, CaseStatus};

const KEYS: &[&str] = &[
    "allow",
    "forbid",
    "require-listening",
    "scan",
    "live",
    "exclude",
    "include",
    "baseline",
    "exposure",
];

#[derive(Debug)]
pub(crate) struct Ports {
    policy: Policy,
    scan: Vec<PathBuf>,
    live: bool,
    reach: Reach,
    /// Relative to the stage's working directory.
    baseline: Option<PathBuf>,
}

impl Kind for Ports {
    const NAME: &'static str = "ports";

    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<Ports> {
        let f = v.fields(with, "`with` of `ports`", KEYS)?;
        let mut policy = Policy::default();
        let before = v.errors.len();
        if let Some(n) = f.get("allow") {
            match &n.kind {
                NodeKind::Map(entries) => {
                    for (k, role) in entries {
                        if let Some(p) = port(v, k, "a key of `allow`") {
                            let role = role.as_str().filter(|_| !role.is_null()).map(str::to_owned);
                            policy.allow.insert(p, role);
                        }
                    }
                }
                NodeKind::Seq(items) => {
                    for item in items {
                        if let Some(p) = port(v, item, "each entry of `allow`") {
                            policy.allow.insert(p, None);
                        }
                    }
                }
                _ => v.error(
                    ConfigError::new(
                        "`allow` must be a mapping or a list of ports",
                        n.span.clone(),
                        format!("found {}", n.describe()),
                    )
                    .help("write `allow: { 3001: frontend, 5555: api }` or `allow: [3001, 5555]`"),
                ),
            }
        }
        if let Some(n) = f.get("require-listening") {
            let ports = port_list(v, n, "require-listening");
            policy.require_listening = ports.into_iter().map(|(p, _)| p).collect();
        }
        for (p, item) in f
            .get("forbid")
            .map(|n| port_list(v, n, "forbid"))
            .unwrap_or_default()
        {
            if policy.allow.contains_key(&p) {
                v.error(
                    ConfigError::new(
                        format!("port {p} is both allowed and forbidden"),
                        item.span.clone(),
                        "also in `allow`",
                    )
                    .help("remove it from one of the two lists"),
                );
            }
            policy.forbid.insert(p);
        }
        let live = f
            .get("live")
            .and_then(|n| v.bool(n, "`live`"))
            .unwrap_or(false);
        let scan: Vec<PathBuf> = match f.get("scan") {
            Some(n) => v
                .string_list(n, "`scan`")
                .into_iter()
                .map(|(s, _)| PathBuf::from(s))
                .collect(),
            None if live => Vec::new(),
            None => vec![PathBuf::from(".")],
        };
        if !live
            && !policy.require_listening.is_empty()
            && let Some(span) = f.key_span("require-listening")
        {
            v.error(
                ConfigError::new(
                    "`require-listening` is checked on the running machine",
                    span,
                    "needs `live: true`",
                )
                .help("add `live: true`, or drop `require-listening`"),
            );
        }
        let globs = |key: &str, v: &mut Validator<'_>| -> Vec<String> {
            f.get(key).map_or_else(Vec::new, |n| {
                v.string_list(n, &format!("`{key}`"))
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect()
            })
        };
        let (include, exclude) = (globs("include", v), globs("exclude", v));
        let reach = match Reach::new(&include, &exclude) {
            Ok(r) => r,
            Err(e) => {
                if let Some(span) = f.key_span("exclude").or_else(|| f.key_span("include")) {
                    v.error(
                        ConfigError::new(e, span, "not a glob")
                            .help("write globs such as `web/**`, `*.min.js` or a folder name"),
                    );
                }
                Reach::default()
            }
        };
        if let Some(n) = f.get("exposure") {
            match v.string(n, "`exposure`").as_deref() {
                Some("reachable") => policy.exposure = ExposureRule::Reachable,
                Some("any") => policy.exposure = ExposureRule::Any,
                Some(other) => v.error(
                    ConfigError::new(
                        format!("`{other}` is not an exposure"),
                        n.span.clone(),
                        "not `reachable` or `any`",
                    )
                    .help("`reachable` (the default) leaves loopback-only listeners as notes; `any` counts them"),
                ),
                None => {}
            }
        }
        let baseline = f
            .get("baseline")
            .and_then(|n| v.string(n, "`baseline`"))
            .map(PathBuf::from);
        (v.errors.len() == before).then_some(Ports {
            policy,
            scan,
            live,
            reach,
            baseline,
        })
    }

    fn with_schema() -> Value {
        json!({
            "description": "Settings of `uses: ports`: the port law, over source trees (`scan`) and this machine (`live`).",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "allow": {
                    "description": "Ports that may be exposed: `{ 3001: frontend }` (port to role) or `[3001, 5555]`.",
                    "oneOf": [
                        {
                            "type": "object",
                            "propertyNames": { "pattern": "^[1-9][0-9]{0,4}$" },
                            "additionalProperties": { "type": ["string", "null"] }
                        },
                        { "type": "array", "items": { "$ref": "#/definitions/port" } }
                    ]
                },
                "forbid": {
                    "description": "Ports that must not appear anywhere: a violation in every file and on every address.",
                    "$ref": "#/definitions/portList"
                },
                "require-listening": {
                    "description": "With `live: true`: ports that must have a listener or a published container port.",
                    "$ref": "#/definitions/portList"
                },
                "scan": {
                    "description": "Folders or files to scan for declared ports (default `.` unless `live` is set).",
                    "$ref": "#/definitions/stringOrList"
                },
                "live": {
                    "description": "Check this machine's listening sockets and Docker's published ports.",
                    "type": "boolean"
                },
                "exclude": {
                    "description": "Globs of files and folders not to scan (a bare name matches anywhere).",
                    "$ref": "#/definitions/stringOrList"
                },
                "include": {
                    "description": "Globs of the only files to scan.",
                    "$ref": "#/definitions/stringOrList"
                },
                "baseline": {
                    "description": "A file from `portcullis ports --write-baseline`: the violations it records count as notes.",
                    "type": "string"
                },
                "exposure": {
                    "description": "`reachable` (default): an unlisted port on loopback only is a note; `any`: it is a violation.",
                    "enum": ["reachable", "any"]
                }
            }
        })
    }
}

fn list_items(n: &Node) -> &[Node] {
    match &n.kind {
        NodeKind::Seq(items) => items,
        _ => std::slice::from_ref(n),
    }
}

fn port(v: &mut Validator<'_>, n: &Node, what: &str) -> Option<u16> {
    v.uint(n, what, 1, 65535).map(|p| p as u16)
}

/// A port or a list of ports, each with its node for errors.
fn port_list<'n>(v: &mut Validator<'_>, n: &'n Node, key: &str) -> Vec<(u16, &'n Node)> {
    let what = format!("each entry of `{key}`");
    list_items(n)
        .iter()
        .filter_map(|item| port(v, item, &what).map(|p| (p, item)))
        .collect()
}

impl BuiltinStage for Ports {
    fn describe(&self) -> String {
        let list = |ports: &mut dyn Iterator<Item = &u16>| {
            ports.map(u16::to_string).collect::<Vec<_>>().join(", ")
        };
        let mut modes = Vec::new();
        if !self.scan.is_empty() {
            let paths: Vec<String> = self.scan.iter().map(|p| p.display().to_string()).collect();
            modes.push(format!("scan {}", paths.join(", ")));
        }
        if self.live {
            modes.push("check this machine's sockets and containers".into());
        }
        if modes.is_empty() {
            modes.push("scan nothing".into());
        }
        format!(
            "{}: allow [{}], forbid [{}]",
            modes.join(" and "),
            list(&mut self.policy.allow.keys()),
            list(&mut self.policy.forbid.iter())
        )
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            let roots: Vec<(PathBuf, PathBuf)> = self
                .scan
                .iter()
                .map(|p| (p.clone(), cx.workdir.join(p)))
                .collect();
            let policy = self.policy.clone();
            let reach = self.reach.clone();
            let live = self.live;
            let baseline = match &self.baseline {
                Some(path) => match Baseline::read(&cx.workdir.join(path)) {
                    Ok(b) => Some((b, path.display().to_string())),
                    Err(e) => return KindOutcome::failed(e),
                },
                None => None,
            };
            let checked = tokio::task::spawn_blocking(move || {
                // One scan per root, so each finding is known to belong to its root.
                let scanned: Vec<(PathBuf, bool, scan::ScanResult)> = roots
                    .into_iter()
                    .map(|(written, full)| {
                        let result = scan::scan(std::slice::from_ref(&full), &policy, &reach);
                        (written, full.is_file(), result)
                    })
                    .collect();
                let live_findings = live.then(|| live::check(&policy));
                (scanned, live_findings)
            });
            let (scanned, live_findings) = tokio::select! {
                r = checked => match r {
                    Ok(r) => r,
                    Err(e) => return KindOutcome::failed(format!("the port check stopped: {e}")),
                },
                () = cx.cancel.cancelled() => return KindOutcome::failed("cancelled".into()),
            };
            let mut findings: Vec<(Finding, Option<PathBuf>)> = Vec::new();
            let mut files = 0;
            for (root, root_is_file, result) in scanned {
                for e in &result.errors {
                    cx.log.line(&format!("skipped {e}")).await;
                }
                if result.files == 0 && !result.errors.is_empty() {
                    return KindOutcome::failed(format!(
                        "nothing could be scanned: {}",
                        result.errors.join("; ")
                    ));
                }
                files += result.files;
                for f in result.findings {
                    let location = f.file.as_deref().map(|file| {
                        normalise(&if root_is_file {
                            root.clone()
                        } else {
                            root.join(file)
                        })
                    });
                    findings.push((f, location));
                }
            }
            findings.extend(live_findings.into_iter().flatten().map(|f| (f, None)));
            if let Some((baseline, name)) = &baseline {
                // The baseline names files as the scan does, relative to its root.
                let (mut plain, mut locations): (Vec<Finding>, Vec<Option<PathBuf>>) =
                    findings.drain(..).unzip();
                let known = plain.len();
                // Entries that match nothing are added, at the place they recorded.
                baseline.apply(&mut plain, name);
                locations.extend(
                    plain[known..]
                        .iter()
                        .map(|f| f.file.as_ref().map(PathBuf::from)),
                );
                findings = plain.into_iter().zip(locations).collect();
            }
            let elapsed = started.elapsed();
            let mut outcome = KindOutcome::passed();
            let mut violations = 0;
            let grouped = findings.len() > JUNIT_GROUP_ABOVE;
            for (f, location) in &findings {
                let shown = location.as_ref().map(|p| p.display().to_string());
                let place = f.place(shown.as_deref());
                cx.log.line(&f.line_text(place.as_deref())).await;
                let status = if f.severity == Severity::Violation {
                    violations += 1;
                    let at = place.as_ref().map(|p| format!("{p}: ")).unwrap_or_default();
                    CaseStatus::Failed {
                        message: f.message.clone(),
                        body: format!("{at}{}", f.message),
                    }
                } else {
                    CaseStatus::Passed
                };
                if grouped {
                    continue;
                }
                outcome.cases.push(CaseResult {
                    name: f.case_name(place.as_deref()),
                    status,
                    duration: Duration::ZERO,
                    location: location
                        .clone()
                        .zip(f.line)
                        .zip(f.column)
                        .map(|((p, l), c)| (p, l, c)),
                    output: if f.severity == Severity::Note {
                        format!("note: {}", f.message)
                    } else {
                        String::new()
                    },
                });
            }
            if grouped {
                outcome.cases = cases_by_file(&findings);
            }
            let mut summary = count_text(violations, findings.len() - violations);
            if !self.scan.is_empty() {
                summary.push_str(&format!(" in {files} files scanned"));
            }
            cx.log.line(&summary).await;
            if findings.len() > SCREENFUL {
                let all: Vec<Finding> = findings.iter().map(|(f, _)| f.clone()).collect();
                for line in Summary::of(&all).text().lines() {
                    cx.log.line(line).await;
                }
            }
            if outcome.cases.is_empty() {
                outcome.cases.push(CaseResult {
                    name: "port law".into(),
                    status: CaseStatus::Passed,
                    duration: elapsed,
                    location: None,
                    output: summary.clone(),
                });
            }
            if violations > 0 {
                outcome.result = Err(format!("port law: {summary}"));
            }
            outcome
                .outputs
                .push(("violations".into(), violations.to_string()));
            outcome
        })
    }
}

/// Past [`JUNIT_GROUP_ABOVE`] findings: one case per file, failing when the file has a
/// violation, at the file's first violation, with every finding of the file in its text.
fn cases_by_file(findings: &[(Finding, Option<PathBuf>)]) -> Vec<CaseResult> {
    let mut files: std::collections::BTreeMap<String, Vec<&(Finding, Option<PathBuf>)>> =
        std::collections::BTreeMap::new();
    for item in findings {
        let key = item
            .1
            .as_ref()
            .map_or_else(|| "this machine".to_owned(), |p| p.display().to_string());
        files.entry(key).or_default().push(item);
    }
    files
        .into_iter()
        .map(|(file, items)| {
            let lines: Vec<String> = items
                .iter()
                .map(|(f, loc)| {
                    let shown = loc.as_ref().map(|p| p.display().to_string());
                    f.line_text(f.place(shown.as_deref()).as_deref())
                })
                .collect();
            let violations: Vec<&&(Finding, Option<PathBuf>)> = items
                .iter()
                .filter(|(f, _)| f.severity == Severity::Violation)
                .collect();
            let status = if violations.is_empty() {
                CaseStatus::Passed
            } else {
                CaseStatus::Failed {
                    message: format!(
                        "{} in {file}",
                        count_text(violations.len(), items.len() - violations.len())
                    ),
                    body: lines.join("\n"),
                }
            };
            let location = violations.first().and_then(|(f, loc)| {
                loc.clone()
                    .zip(f.line)
                    .zip(f.column)
                    .map(|((p, l), c)| (p, l, c))
            });
            CaseResult {
                name: file,
                output: if violations.is_empty() {
                    lines.join("\n")
                } else {
                    String::new()
                },
                status,
                duration: Duration::ZERO,
                location,
            }
        })
        .collect()
}

/// `./web/../api/x` → `api/x`, lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}
