//! `uses: coverage` — a coverage gate: the build fails under a line-coverage threshold.
//!
//! The main type is [`Coverage`]. It reads the coverage reports that the test stages wrote
//! (Cobertura XML, lcov or JaCoCo XML, told apart by their content; [`parse`]), finds each file
//! they name on disk ([`paths`]), merges the reports by file (a line is covered when any report
//! covers it) and measures line coverage: covered lines over coverable lines, from per-line
//! data. It then holds the total against `min`, each file against `per-file.min`, and the lines
//! added or changed since the base ref ([`diff`]) against `changed-lines.min`. Each check is a
//! JUnit case (one per file that fails `per-file`); the total, the counts and the changed-lines
//! figure are published as outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BoxFuture, BuiltinStage, Kind, KindOutcome, StageContext};
use crate::config::errors::{ConfigError, did_you_mean};
use crate::config::validate::Validator;
use crate::config::yaml::{Node, NodeKind};
use crate::runner::events::{CaseResult, CaseStatus};

mod diff;
mod parse;
mod paths;

use parse::Format;
use paths::{Resolved, Resolver};

const KEYS: &[&str] = &[
    "report",
    "format",
    "min",
    "per-file",
    "changed-lines",
    "base",
    "worst",
];

/// The environment variable that carries `portcullis run --base REF` to every stage.
pub(crate) const BASE_VAR: &str = "PORTCULLIS_BASE";

#[derive(Debug)]
pub(crate) struct Coverage {
    /// Paths or globs, relative to the stage's working directory.
    reports: Vec<String>,
    format: Option<Format>,
    min: Option<f64>,
    per_file: Option<f64>,
    changed: Option<f64>,
    base: Option<String>,
    worst: usize,
}

impl Kind for Coverage {
    const NAME: &'static str = "coverage";

    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<Coverage> {
        let Some(f) = v.fields(with, "`with` of `coverage`", KEYS) else {
            if with.is_null() {
                v.error(
                    ConfigError::new("`coverage` needs `report`", with.span.clone(), "no `with`")
                        .help(REPORT_HELP),
                );
            }
            return None;
        };
        let reports = match f.get("report") {
            Some(n) => {
                let list = v.string_list(n, "`report`");
                if list.is_empty() && matches!(n.kind, NodeKind::Seq(_)) {
                    v.error(
                        ConfigError::new("`report` is empty", n.span.clone(), "no report")
                            .help(REPORT_HELP),
                    );
                }
                list.into_iter()
                    .map(|(s, _)| s)
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            None => {
                v.error(
                    ConfigError::new("`coverage` needs `report`", f.span.clone(), "no `report`")
                        .help(REPORT_HELP),
                );
                Vec::new()
            }
        };
        let format = f.get("format").and_then(|n| {
            let name = v.string(n, "`format`")?;
            let format = Format::parse(&name);
            if format.is_none() {
                let help = did_you_mean(&name, Format::NAMES.iter().copied()).unwrap_or_else(|| {
                    "write `cobertura`, `lcov` or `jacoco`, or leave `format` out to tell by the content".into()
                });
                v.error(
                    ConfigError::new(
                        format!("`format: {name}` is not a coverage format"),
                        n.span.clone(),
                        "not `cobertura`, `lcov` or `jacoco`",
                    )
                    .help(help),
                );
            }
            format
        });
        let min = f.get("min").and_then(|n| percent(v, n, "`min`"));
        let per_file = f
            .get("per-file")
            .and_then(|n| threshold(v, n, "per-file", "each file's line coverage"));
        let changed = f
            .get("changed-lines")
            .and_then(|n| threshold(v, n, "changed-lines", "the changed lines' coverage"));
        let base = f.get("base").and_then(|n| {
            let base = v.string(n, "`base`")?;
            if base.is_empty() || base.starts_with('-') {
                v.error(
                    ConfigError::new(
                        format!("`base: {base}` is not a commit, branch or tag"),
                        n.span.clone(),
                        "not a ref",
                    )
                    .help("write a ref that exists in the repository, e.g. `base: origin/main`"),
                );
                return None;
            }
            Some(base)
        });
        let worst = f
            .get("worst")
            .and_then(|n| v.uint(n, "`worst`", 0, 10_000))
            .map_or(5, |n| n as usize);
        if reports.is_empty() {
            return None;
        }
        Some(Coverage {
            reports,
            format,
            min,
            per_file,
            changed,
            base,
            worst,
        })
    }

    fn with_schema() -> Value {
        let percent = |what: &str| {
            json!({
                "description": what,
                "type": "number",
                "minimum": 0,
                "maximum": 100
            })
        };
        let threshold = |what: &str, min: &str| {
            json!({
                "description": what,
                "type": "object",
                "additionalProperties": false,
                "required": ["min"],
                "properties": { "min": percent(min) }
            })
        };
        json!({
            "description": "Settings of `uses: coverage`: fail under a line-coverage threshold, read from Cobertura, lcov or JaCoCo reports.",
            "type": "object",
            "additionalProperties": false,
            "required": ["report"],
            "properties": {
                "report": {
                    "description": "The coverage report: a path or glob relative to the stage's working directory, or a list of them; several reports are merged by file.",
                    "$ref": "#/definitions/stringOrList"
                },
                "format": {
                    "description": "The reports' format (default: told by the content).",
                    "enum": Format::NAMES
                },
                "min": percent("The least total line coverage, in percent."),
                "per-file": threshold("A least line coverage for each file.", "The least line coverage of each file, in percent."),
                "changed-lines": threshold(
                    "A least coverage of the lines added or changed since the base ref (`--base`, or `base`).",
                    "The least coverage of the changed lines, in percent."
                ),
                "base": {
                    "description": "The ref changed lines are counted from (default: the run's `--base`, seen as `PORTCULLIS_BASE`).",
                    "type": "string"
                },
                "worst": {
                    "description": "How many of the least-covered files the log lists (default 5).",
                    "type": "integer",
                    "minimum": 0
                }
            }
        })
    }
}

const REPORT_HELP: &str = "add `report: coverage.xml`, the report the tests wrote (a path or glob relative to the stage's working directory; a list for several)";

/// A percentage from 0 to 100.
fn percent(v: &mut Validator<'_>, node: &Node, what: &str) -> Option<f64> {
    let parsed = match &node.kind {
        NodeKind::Scalar { value, plain: true } => {
            value.parse::<f64>().ok().filter(|p| p.is_finite())
        }
        _ => None,
    };
    match parsed {
        Some(p) if (0.0..=100.0).contains(&p) => Some(p),
        Some(_) => {
            v.error(
                ConfigError::new(
                    format!("{what} is out of range"),
                    node.span.clone(),
                    "not from 0 to 100",
                )
                .help(format!(
                    "{what} is a percentage from 0 to 100, e.g. `min: 80`"
                )),
            );
            None
        }
        None => {
            v.error(
                ConfigError::new(
                    format!("{what} must be a number"),
                    node.span.clone(),
                    format!("found {}", node.describe()),
                )
                .help("write a percentage from 0 to 100 as a number, without `%`: `min: 80`"),
            );
            None
        }
    }
}

/// `{ min: N }` of `per-file` and `changed-lines`.
fn threshold(v: &mut Validator<'_>, node: &Node, key: &str, what: &str) -> Option<f64> {
    let f = v.fields(node, &format!("`{key}` of `coverage`"), &["min"])?;
    match f.get("min") {
        Some(n) => percent(v, n, &format!("`{key}.min`")),
        None => {
            v.error(
                ConfigError::new(format!("`{key}` needs `min`"), f.span.clone(), "no `min`").help(
                    format!("add `min:`, {what} in percent: `{key}: {{ min: 80 }}`"),
                ),
            );
            None
        }
    }
}

impl BuiltinStage for Coverage {
    fn describe(&self) -> String {
        let reports = self.reports.join(", ");
        let mut text = match self.min {
            Some(min) => format!("line coverage of {reports} must be at least {min}%"),
            None => format!("report the line coverage of {reports}"),
        };
        if let Some(min) = self.per_file {
            text.push_str(&format!(", each file at least {min}%"));
        }
        if let Some(min) = self.changed {
            let base = self
                .base
                .as_deref()
                .map_or_else(|| "`--base`".to_owned(), |b| format!("`{b}`"));
            text.push_str(&format!(", lines changed since {base} at least {min}%"));
        }
        text
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move { self.gate(cx).await })
    }
}

/// Covered and coverable lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Count {
    covered: u64,
    lines: u64,
}

impl Count {
    fn of(lines: &BTreeMap<u32, bool>) -> Count {
        Count {
            covered: lines.values().filter(|c| **c).count() as u64,
            lines: lines.len() as u64,
        }
    }

    fn plus(self, other: Count) -> Count {
        Count {
            covered: self.covered + other.covered,
            lines: self.lines + other.lines,
        }
    }

    fn percent(self) -> f64 {
        if self.lines == 0 {
            100.0
        } else {
            self.covered as f64 * 100.0 / self.lines as f64
        }
    }

    fn below(self, min: f64) -> bool {
        self.percent() < min
    }

    /// The percentage as coverage.py shows it: one decimal, and never `0.0` when a line ran nor
    /// `100.0` when one did not.
    fn shown(self) -> String {
        self.shown_with(1)
    }

    fn shown_with(self, precision: usize) -> String {
        let pc = self.percent();
        let near0 = 1.0 / 10f64.powi(precision as i32);
        let pc = if 0.0 < pc && pc < near0 {
            near0
        } else if 100.0 - near0 < pc && pc < 100.0 {
            100.0 - near0
        } else {
            pc
        };
        format!("{pc:.precision$}")
    }

    /// The percentage against a `min` it is below: with as many decimals as it takes to read
    /// below it (`79.96%`, not `80.0%`, is below 80%).
    fn shown_below(self, min: f64) -> String {
        (1..=4)
            .map(|p| self.shown_with(p))
            .find(|s| s.parse::<f64>().is_ok_and(|v| v < min))
            .unwrap_or_else(|| self.shown_with(4))
    }

    fn shown_against(self, min: f64) -> String {
        if self.below(min) {
            self.shown_below(min)
        } else {
            self.shown()
        }
    }
}

/// The reports merged by file: each file's coverable lines and whether any report covered each.
#[derive(Debug, Default)]
struct Merged {
    files: BTreeMap<PathBuf, BTreeMap<u32, bool>>,
    /// What was read, for the log.
    notes: Vec<String>,
}

impl Merged {
    fn total(&self) -> Count {
        self.files
            .values()
            .fold(Count::default(), |t, lines| t.plus(Count::of(lines)))
    }
}

/// The report files that `patterns` name under `workdir`: a path as it is (a missing one is an
/// error naming it), a glob by what it matches (matching nothing is an error).
fn report_files(workdir: &Path, patterns: &[String]) -> Result<Vec<(PathBuf, String)>, String> {
    let mut found: Vec<(PathBuf, String)> = Vec::new();
    for pattern in patterns {
        let is_glob = pattern.contains(['*', '?', '[']);
        let full = if Path::new(pattern).is_absolute() {
            pattern.clone()
        } else {
            format!(
                "{}/{pattern}",
                glob::Pattern::escape(&workdir.display().to_string())
            )
        };
        if !is_glob {
            found.push((workdir.join(pattern), pattern.clone()));
            continue;
        }
        let matches = glob::glob(&full)
            .map_err(|e| format!("`report: {pattern}` is not a valid glob: {e}"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect::<Vec<_>>();
        if matches.is_empty() {
            return Err(format!(
                "`{pattern}` matches no coverage report in `{}`; did the tests write one?",
                workdir.display()
            ));
        }
        for m in matches {
            let shown = m.strip_prefix(workdir).unwrap_or(&m).display().to_string();
            found.push((m, shown));
        }
    }
    let mut seen = std::collections::HashSet::new();
    found.retain(|(p, _)| seen.insert(p.clone()));
    Ok(found)
}

/// Reads every report and merges them by file.
fn load(
    resolver: &mut Resolver,
    reports: &[(PathBuf, String)],
    format: Option<Format>,
) -> Result<Merged, String> {
    let mut merged = Merged::default();
    let (mut missing, mut ambiguous) = (Vec::new(), Vec::new());
    for (path, shown) in reports {
        let parsed = parse::read(path, format).map_err(|e| e.describe(shown))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        // This report's files first (a file may be listed twice in one report), then merged.
        let mut own: BTreeMap<PathBuf, BTreeMap<u32, bool>> = BTreeMap::new();
        for (n, entry) in parsed.files.iter().enumerate() {
            let resolved = resolver.resolve(dir, &entry.source);
            let key = match &resolved {
                Resolved::Found(_) => resolved.key(),
                Resolved::Missing(p) => {
                    missing.push(p.clone());
                    resolved.key()
                }
                // Two modules' `App.java`, two roots' `__init__.py`: different files that share
                // a name; each entry counts on its own.
                Resolved::Ambiguous(p, count) => {
                    ambiguous.push(format!("{p} ({count} files)"));
                    PathBuf::from(format!("{p} [{shown} #{}]", n + 1))
                }
            };
            let lines = own.entry(key).or_default();
            for &(line, hit) in &entry.lines {
                *lines.entry(line).or_insert(false) |= hit;
            }
        }
        let count = own
            .values()
            .fold(Count::default(), |t, l| t.plus(Count::of(l)));
        let files = own.len();
        for (key, lines) in own {
            let all = merged.files.entry(key).or_default();
            for (line, hit) in lines {
                *all.entry(line).or_insert(false) |= hit;
            }
        }
        let mut note = format!(
            "read {shown} ({}): {files} {}, {} of {} lines covered",
            parsed.format.title(),
            if files == 1 { "file" } else { "files" },
            count.covered,
            count.lines
        );
        if let Some((covered, lines)) = parsed.stated
            && (covered, lines) != (count.covered, count.lines)
        {
            note.push_str(&format!(
                " (its summary says {covered} of {lines}; portcullis counts the per-line data)"
            ));
        }
        merged.notes.push(note);
    }
    missing.sort();
    missing.dedup();
    ambiguous.sort();
    ambiguous.dedup();
    if !missing.is_empty() {
        merged.notes.push(format!(
            "{} files of the reports are not under {} and are counted as named: {}",
            missing.len(),
            resolver.workdir().display(),
            list(&missing)
        ));
    }
    if !ambiguous.is_empty() {
        merged.notes.push(format!(
            "{} report paths match several files here (the report does not say which: two \
             `<source>` roots or JaCoCo modules with a file of one name) and are counted each \
             on its own, as named: {}",
            ambiguous.len(),
            list(&ambiguous)
        ));
    }
    Ok(merged)
}

fn list(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(5)
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 5 {
        text.push_str(&format!(" and {} more", items.len() - 5));
    }
    text
}

/// `3, 7-9, 12`: line numbers as ranges.
fn ranges(lines: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut j = i;
        while j + 1 < lines.len() && lines[j + 1] == lines[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            lines[i].to_string()
        } else {
            format!("{}-{}", lines[i], lines[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

fn lines_word(n: u64) -> &'static str {
    if n == 1 { "line" } else { "lines" }
}

fn case(
    name: &str,
    result: Result<String, String>,
    location: Option<(PathBuf, u32, u32)>,
) -> CaseResult {
    let (status, output) = match result {
        Ok(text) => (CaseStatus::Passed, text),
        Err(message) => (
            CaseStatus::Failed {
                message,
                body: String::new(),
            },
            String::new(),
        ),
    };
    CaseResult {
        name: name.to_owned(),
        status,
        duration: Duration::ZERO,
        location,
        output,
    }
}

impl Coverage {
    async fn gate(&self, cx: &mut StageContext) -> KindOutcome {
        let started = Instant::now();
        let workdir = cx.workdir.clone();
        let patterns = self.reports.clone();
        let format = self.format;
        // Tens of MB of XML are read off the runtime's threads.
        let reading = tokio::task::spawn_blocking(move || {
            let mut resolver = Resolver::new(&workdir);
            let files = report_files(&workdir, &patterns)?;
            let merged = load(&mut resolver, &files, format)?;
            Ok::<_, String>((resolver, merged))
        });
        let (resolver, merged) = tokio::select! {
            r = reading => match r {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => return KindOutcome::failed(e),
                Err(e) => return KindOutcome::failed(format!("reading the reports stopped: {e}")),
            },
            () = cx.cancel.cancelled() => return KindOutcome::failed("cancelled".into()),
        };
        for note in &merged.notes {
            cx.log.line(note).await;
        }
        let total = merged.total();
        let measured: Vec<(&PathBuf, Count)> = merged
            .files
            .iter()
            .map(|(k, l)| (k, Count::of(l)))
            .filter(|(_, c)| c.lines > 0)
            .collect();
        if total.lines == 0 {
            return KindOutcome::failed(format!(
                "the reports hold no coverable line ({}); did the tests run under coverage?",
                self.reports.join(", ")
            ));
        }
        cx.log
            .line(&format!(
                "line coverage {}% ({} of {} lines covered, {})",
                total.shown(),
                total.covered,
                total.lines,
                crate::text::plural(measured.len(), "file")
            ))
            .await;
        let mut least: Option<String> = None;
        if self.worst > 0 {
            let mut worst = measured.clone();
            worst.sort_by(|a, b| {
                a.1.percent()
                    .total_cmp(&b.1.percent())
                    .then_with(|| a.0.cmp(b.0))
            });
            worst.truncate(self.worst);
            least = worst
                .first()
                .map(|(key, c)| format!("{} {}%", resolver.display(key), c.shown()));
            cx.log.line("least covered files:").await;
            let width = worst
                .iter()
                .map(|(_, c)| format!("{}/{}", c.covered, c.lines).len())
                .max()
                .unwrap_or(0);
            for (key, c) in &worst {
                cx.log
                    .line(&format!(
                        "  {:>6}%  {:>width$}  {}",
                        c.shown(),
                        format!("{}/{}", c.covered, c.lines),
                        resolver.display(key)
                    ))
                    .await;
            }
        }

        let mut outcome = KindOutcome::passed();
        let mut reasons: Vec<String> = Vec::new();
        let total_result = match self.min {
            Some(min) if total.below(min) => {
                let m = format!(
                    "line coverage {}% is below min {min}%",
                    total.shown_below(min)
                );
                reasons.push(m.clone());
                Err(format!(
                    "{m} ({} of {} lines covered)",
                    total.covered, total.lines
                ))
            }
            Some(min) => Ok(format!(
                "line coverage {}% ({} of {} lines covered), min {min}%",
                total.shown(),
                total.covered,
                total.lines
            )),
            None => Ok(format!(
                "line coverage {}% ({} of {} lines covered)",
                total.shown(),
                total.covered,
                total.lines
            )),
        };
        outcome
            .cases
            .push(case("total line coverage", total_result, None));

        if let Some(min) = self.per_file {
            let failing: Vec<&(&PathBuf, Count)> =
                measured.iter().filter(|(_, c)| c.below(min)).collect();
            if failing.is_empty() {
                cx.log
                    .line(&format!(
                        "every file is at or above the per-file min {min}%"
                    ))
                    .await;
            } else {
                cx.log
                    .line(&format!(
                        "{} {} below the per-file min {min}%:",
                        failing.len(),
                        if failing.len() == 1 {
                            "file is"
                        } else {
                            "files are"
                        }
                    ))
                    .await;
            }
            for (key, c) in &failing {
                let name = resolver.display(key);
                let message = format!(
                    "{name}: line coverage {}% ({} of {} lines) is below min {min}%",
                    c.shown_below(min),
                    c.covered,
                    c.lines
                );
                cx.log.line(&format!("  {message}")).await;
                let first_missed = merged.files[*key]
                    .iter()
                    .find(|(_, hit)| !**hit)
                    .map_or(0, |(l, _)| *l);
                let location = key.is_absolute().then(|| ((*key).clone(), first_missed, 0));
                outcome.cases.push(case(
                    &format!("line coverage of {name}"),
                    Err(message),
                    location,
                ));
            }
            let least = failing
                .iter()
                .min_by(|a, b| a.1.percent().total_cmp(&b.1.percent()));
            if let Some((key, c)) = least {
                let name = resolver.display(key);
                let figure = c.shown_below(min);
                reasons.push(if failing.len() == 1 {
                    format!("{name}: line coverage {figure}% is below per-file min {min}%")
                } else {
                    format!(
                        "{} files are below per-file min {min}% (the least: {name} at {figure}%)",
                        failing.len()
                    )
                });
            }
        }

        let mut outputs = vec![
            ("total".to_owned(), total.shown()),
            ("covered".to_owned(), total.covered.to_string()),
            ("lines".to_owned(), total.lines.to_string()),
        ];

        if let Some(min) = self.changed {
            let (result, location, figure) = self.changed_lines(cx, &merged, &resolver, min).await;
            if let Err(reason) = &result {
                reasons.push(reason.lines().next().unwrap_or_default().to_owned());
            }
            if let Some(figure) = figure {
                outputs.push(("changed".to_owned(), figure));
            }
            outcome.cases.push(case("changed lines", result, location));
        }

        cx.log
            .line(&format!(
                "read and measured in {}",
                crate::config::duration::format(started.elapsed())
            ))
            .await;
        let mut note = format!("line coverage {}%", total.shown());
        if let Some(changed) = outputs.iter().find(|(k, _)| k == "changed") {
            note.push_str(&format!(", changed lines {}%", changed.1));
        }
        if let Some(least) = least {
            note.push_str(&format!(", least covered: {least}"));
        }
        outcome.note = Some(note);
        outcome.outputs = outputs;
        if !reasons.is_empty() {
            outcome.result = Err(reasons.join("; "));
        }
        outcome
    }

    /// The changed-lines check: its case's result and location, and the figure to publish.
    async fn changed_lines(
        &self,
        cx: &mut StageContext,
        merged: &Merged,
        resolver: &Resolver,
        min: f64,
    ) -> (
        Result<String, String>,
        Option<(PathBuf, u32, u32)>,
        Option<String>,
    ) {
        let base = self.base.clone().or_else(|| {
            cx.env
                .iter()
                .rev()
                .find(|(k, _)| k == BASE_VAR)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        });
        let Some(base) = base else {
            let message = "changed-lines: no base ref to compare with; run with `--base REF` \
                           (e.g. `portcullis run --base origin/main`) or set `base:`"
                .to_owned();
            cx.log.line(&message).await;
            return (Err(message), None, None);
        };
        let changes = match diff::changed_lines(&cx.workdir, &base, &cx.env, &cx.cancel).await {
            Ok(c) => c,
            Err(e) => {
                let message =
                    format!("changed-lines: cannot list the lines changed since `{base}`: {e}");
                cx.log.line(&message).await;
                return (Err(message), None, None);
            }
        };
        let mut count = Count::default();
        let mut missed: Vec<(&PathBuf, Vec<u32>)> = Vec::new();
        for (key, lines) in &merged.files {
            let Some(changed) = changes.get(key) else {
                continue;
            };
            let mut not_run = Vec::new();
            for (&line, &hit) in lines {
                if changed.contains(line) {
                    count.lines += 1;
                    if hit {
                        count.covered += 1;
                    } else {
                        not_run.push(line);
                    }
                }
            }
            if !not_run.is_empty() {
                missed.push((key, not_run));
            }
        }
        if count.lines == 0 {
            let text = format!(
                "no coverable line was added or changed since `{base}` ({} changed files); nothing to hold against min {min}%",
                changes.len()
            );
            cx.log.line(&format!("changed lines: {text}")).await;
            // Nothing uncovered: 100%, as coverage.py reads a file without statements.
            return (Ok(text), None, Some(count.shown()));
        }
        let figure = count.shown();
        cx.log
            .line(&format!(
                "changed lines since `{base}`: {}% ({} of {} coverable {} covered)",
                count.shown_against(min),
                count.covered,
                count.lines,
                lines_word(count.lines)
            ))
            .await;
        for (key, lines) in &missed {
            cx.log
                .line(&format!(
                    "  not covered: {} {}",
                    resolver.display(key),
                    ranges(lines)
                ))
                .await;
        }
        let location = missed
            .first()
            .filter(|(k, _)| k.is_absolute())
            .map(|(k, l)| ((*k).clone(), l[0], 0));
        if count.below(min) {
            let mut message = format!(
                "changed-lines coverage {}% is below min {min}% ({} of {} changed {} covered since `{base}`)",
                count.shown_below(min),
                count.covered,
                count.lines,
                lines_word(count.lines)
            );
            for (key, lines) in missed.iter().take(10) {
                message.push_str(&format!("\n{}: {}", resolver.display(key), ranges(lines)));
            }
            (Err(message), location, Some(figure))
        } else {
            (
                Ok(format!(
                    "changed-lines coverage {}% ({} of {} changed {} covered since `{base}`), min {min}%",
                    count.shown(),
                    count.covered,
                    count.lines,
                    lines_word(count.lines)
                )),
                None,
                Some(figure),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(covered: u64, lines: u64) -> Count {
        Count { covered, lines }
    }

    #[test]
    fn figures_read_as_coverage_py_shows_them() {
        for (c, want) in [
            (count(7, 10), "70.0"),
            (count(2, 3), "66.7"),
            (count(0, 10), "0.0"),
            (count(1, 100_000), "0.1"),
            (count(99_999, 100_000), "99.9"),
            (count(10, 10), "100.0"),
            (count(0, 0), "100.0"),
        ] {
            assert_eq!(c.shown(), want, "{c:?}");
        }
        // A figure below its min reads below it.
        assert_eq!(count(7996, 10_000).shown_below(80.0), "79.96");
        assert_eq!(count(724, 1000).shown_below(80.0), "72.4");
        assert!(count(7999, 10_000).below(80.0));
        assert!(!count(8, 10).below(80.0));
        assert!(count(999, 1000).below(100.0));
    }

    #[test]
    fn line_ranges_are_joined() {
        assert_eq!(ranges(&[3, 7, 8, 9, 12]), "3, 7-9, 12");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn reports_merge_by_file_a_line_covered_by_either() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::write(root.join("src/a.py"), "x\n").expect("write");
        std::fs::write(root.join("src/b.py"), "x\n").expect("write");
        let src = std::fs::canonicalize(root.join("src")).expect("canonical");
        // One package's report names `a.py` under its `<source>`, the other through lcov's
        // absolute `SF:`; `a.py` is listed twice in the first.
        std::fs::write(
            root.join("one.xml"),
            format!(
                "<coverage><sources><source>{}</source></sources><packages><package><classes>\
                 <class filename=\"a.py\"><lines><line number=\"1\" hits=\"0\"/><line number=\"2\" hits=\"0\"/></lines></class>\
                 <class filename=\"a.py\"><lines><line number=\"2\" hits=\"3\"/></lines></class>\
                 </classes></package></packages></coverage>",
                src.display()
            ),
        )
        .expect("write");
        std::fs::write(
            root.join("two.info"),
            format!(
                "SF:{}\nDA:1,1\nDA:3,0\nend_of_record\nSF:src/b.py\nDA:1,0\nend_of_record\n",
                src.join("a.py").display()
            ),
        )
        .expect("write");
        let mut resolver = Resolver::new(root);
        let files = report_files(root, &["*.xml".into(), "two.info".into()]).expect("files");
        assert_eq!(files.len(), 2);
        let merged = load(&mut resolver, &files, None).expect("loads");
        assert_eq!(merged.files.len(), 2);
        let a: Vec<(u32, bool)> = merged.files[&src.join("a.py")]
            .iter()
            .map(|(l, h)| (*l, *h))
            .collect();
        assert_eq!(a, vec![(1, true), (2, true), (3, false)]);
        assert_eq!(merged.total(), count(2, 4));
        assert!(
            merged.notes[0].starts_with("read one.xml (Cobertura): 1 file, 1 of 2 lines covered")
        );
    }

    #[test]
    fn missing_and_unmatched_reports_are_errors_naming_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let err = report_files(root, &["reports/*.xml".into()]).expect_err("no match");
        assert!(
            err.contains("`reports/*.xml` matches no coverage report"),
            "{err}"
        );
        let files = report_files(root, &["coverage.xml".into()]).expect("a plain path");
        let mut resolver = Resolver::new(root);
        let err = load(&mut resolver, &files, None).expect_err("missing");
        assert_eq!(err, "`coverage.xml`: no such file");
        std::fs::write(root.join("coverage.xml"), "<coverage>\n<packages>\n").expect("write");
        let err = load(&mut resolver, &files, None).expect_err("cut short");
        assert!(
            err.starts_with("`coverage.xml`:3:1: the file ends inside an unclosed element"),
            "{err}"
        );
    }
}
