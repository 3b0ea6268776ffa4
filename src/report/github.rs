//! GitHub Actions mode (`GITHUB_ACTIONS=true`): collapsible groups, annotations, a job summary.
//!
//! The main type is [`GithubReporter`]. Each stage's output is written as one
//! `::group::`/`::endgroup::` block when the stage ends, copied from its log file (never held in
//! memory), between `::stop-commands::` markers so that nothing a stage prints can act as a
//! workflow command. Failures become `::error` annotations at the pipeline file and the stage's
//! line (or at a built-in kind's own finding); GitHub shows ten per step, so past ten the rest
//! are counted in one last annotation. At the end a Markdown summary (a stage table, the graph
//! as Mermaid coloured by status, the first failure's log tail) is appended to
//! `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::runner::events::StageNames;
use crate::runner::events::{
    CaseStatus, PlannedStage, RollbackStatus, RunEvent, RunEventKind, RunStatus, StageResult,
    StageStatus,
};

/// `$GITHUB_OUTPUT` lines in the multi-line form (`NAME<<DELIMITER`, value, `DELIMITER`) for
/// every value, so no value, whatever it holds (a newline in a `--junit` path), can add a line
/// of its own. The delimiter is random and checked against the value.
pub(crate) fn output_lines(values: &[(&str, &str)]) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut text = String::new();
    for (name, value) in values {
        let mut delimiter;
        loop {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write(value.as_bytes());
            delimiter = format!("ghadelimiter_{:016x}", hasher.finish());
            if !value.contains(&delimiter) {
                break;
            }
        }
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    text
}

/// GitHub displays this many error annotations per step.
pub(crate) const MAX_ANNOTATIONS: usize = 10;
/// A step summary may hold 1 MiB; the log tail in it is bounded well below that.
const MAX_SUMMARY_TAIL: usize = 40;

pub(crate) struct GithubReporter {
    out: Box<dyn Write + Send>,
    summary: Option<PathBuf>,
    pipeline: String,
    file: PathBuf,
    stages: Vec<PlannedStage>,
    names: StageNames,
    results: Vec<StageResult>,
    /// Every rollback that ran: stage, status, reason.
    rollbacks: Vec<(String, RollbackStatus, String)>,
    first_failure: Option<usize>,
    annotations: usize,
    suppressed: usize,
    /// Token for `::stop-commands::`, unguessable by the stages whose output it fences.
    token: String,
    /// Warnings of stages that did not fail, for the summary.
    warnings: Vec<String>,
    /// Why the job summary could not be written, if it could not.
    summary_error: Option<crate::report::ReportError>,
    /// How annotations name files.
    workspace: WorkspacePaths,
}

/// Files as GitHub places annotations: relative to `$GITHUB_WORKSPACE`, although portcullis
/// works from a folder inside it (the action's `working-directory`).
#[derive(Debug, Default)]
pub(crate) struct WorkspacePaths {
    /// The working folder relative to the workspace.
    prefix: PathBuf,
    /// The workspace, canonical.
    root: Option<PathBuf>,
}

impl WorkspacePaths {
    pub(crate) fn new(working_dir: &Path, workspace: Option<&Path>) -> Self {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let Some(root) = workspace.map(canonical) else {
            return Self::default();
        };
        let prefix = canonical(working_dir)
            .strip_prefix(&root)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        WorkspacePaths {
            prefix,
            root: Some(root),
        }
    }

    /// From the environment: the current folder inside `$GITHUB_WORKSPACE`.
    pub(crate) fn from_env() -> Self {
        let workspace = std::env::var_os("GITHUB_WORKSPACE")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let here = std::env::current_dir().unwrap_or_default();
        Self::new(&here, workspace.as_deref())
    }

    /// A relative path from the working folder gets the folder's prefix; an absolute one inside
    /// the workspace is made relative to it.
    pub(crate) fn name(&self, file: &Path) -> PathBuf {
        if file.is_absolute() {
            return self
                .root
                .as_deref()
                .and_then(|w| file.strip_prefix(w).ok())
                .unwrap_or(file)
                .to_path_buf();
        }
        let clean: PathBuf = file
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        self.prefix.join(clean)
    }
}

impl GithubReporter {
    pub(crate) fn new(out: Box<dyn Write + Send>, summary: Option<PathBuf>, token: String) -> Self {
        GithubReporter {
            out,
            summary,
            pipeline: String::new(),
            file: PathBuf::new(),
            stages: Vec::new(),
            names: StageNames::default(),
            results: Vec::new(),
            rollbacks: Vec::new(),
            first_failure: None,
            annotations: 0,
            suppressed: 0,
            token,
            summary_error: None,
            warnings: Vec::new(),
            workspace: WorkspacePaths::default(),
        }
    }

    /// Annotations name files as `paths` does (relative to `$GITHUB_WORKSPACE`).
    pub(crate) fn in_workspace(mut self, paths: WorkspacePaths) -> Self {
        self.workspace = paths;
        self
    }

    /// Stops writing workflow commands (stdout is closed); the summary is still written.
    pub(crate) fn stdout_lost(&mut self) {
        self.out = Box::new(io::sink());
    }

    /// Takes the error of writing the job summary, if there was one.
    pub(crate) fn take_summary_error(&mut self) -> Option<crate::report::ReportError> {
        self.summary_error.take()
    }

    pub(crate) fn handle(&mut self, event: &RunEvent) -> io::Result<()> {
        match &event.kind {
            RunEventKind::RunStarted {
                pipeline,
                file,
                stages,
                ..
            } => {
                self.pipeline.clone_from(pipeline);
                self.file.clone_from(file);
                self.stages.clone_from(stages);
                self.names = StageNames::new(stages);
            }
            RunEventKind::StageFinished(result) => self.stage_finished(result)?,
            RunEventKind::RollbackFinished(rollback) => {
                let reason = rollback.reason.clone().unwrap_or_default();
                if rollback.status != RollbackStatus::Passed {
                    let title = format!(
                        "portcullis: rollback of `{}` failed",
                        self.names.get(&rollback.stage)
                    );
                    self.annotate("error", None, &title, &reason)?;
                }
                self.rollbacks
                    .push((rollback.stage.clone(), rollback.status, reason));
            }
            RunEventKind::RunFinished { status, duration } => {
                if self.suppressed > 0 {
                    let message = format!(
                        "{} more failures are not annotated here; the job summary lists every stage",
                        self.suppressed
                    );
                    writeln!(
                        self.out,
                        "::error title=portcullis::{}",
                        escape_data(&message)
                    )?;
                }
                if let Some(path) = self.summary.clone() {
                    let text = self.summary_markdown(*status, duration.as_secs_f64());
                    let written = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .and_then(|mut file| file.write_all(text.as_bytes()));
                    if let Err(source) = written {
                        self.summary_error =
                            Some(crate::report::ReportError::StepSummary { path, source });
                    }
                }
            }
            _ => {}
        }
        self.out.flush()
    }

    fn stage_finished(&mut self, result: &StageResult) -> io::Result<()> {
        let name = self.names.get(&result.stage).to_owned();
        if let Some(log) = &result.log {
            let title = match &result.reason {
                Some(reason) => format!("{name} ({}: {reason})", result.status.as_str()),
                None => format!("{name} ({})", result.status.as_str()),
            };
            writeln!(self.out, "::group::{}", escape_data(&title))?;
            writeln!(self.out, "::stop-commands::{}", self.token)?;
            copy_log(log, &mut self.out)?;
            writeln!(self.out, "::{}::", self.token)?;
            writeln!(self.out, "::endgroup::")?;
        }
        let line = self
            .stages
            .iter()
            .find(|s| s.id == result.stage)
            .map(|s| s.line);
        let at = line.map(|l| (self.file.clone(), l, 0));
        for warning in &result.warnings {
            let title = format!("portcullis: stage `{name}`");
            self.annotate("warning", at.as_ref(), &title, warning)?;
            self.warnings.push(format!("`{name}`: {warning}"));
        }
        let reason = result.reason.clone().unwrap_or_default();
        match result.status {
            StageStatus::Failed => {
                if self.first_failure.is_none() {
                    self.first_failure = Some(self.results.len());
                }
                let title = format!("portcullis: stage `{name}` failed");
                let body = tail_text(&reason, &result.tail);
                self.annotate("error", at.as_ref(), &title, &body)?;
            }
            StageStatus::Warned => {
                let title = format!("portcullis: stage `{name}` failed (allowed)");
                self.annotate("warning", at.as_ref(), &title, &reason)?;
            }
            _ => {}
        }
        for case in &result.cases {
            let (level, message) = match &case.status {
                CaseStatus::Failed { message, .. } | CaseStatus::Errored { message, .. } => {
                    ("error", message)
                }
                _ => continue,
            };
            let at = case.location.as_ref().map(|(f, l, c)| (f.clone(), *l, *c));
            let title = format!("portcullis: {}", case.name);
            self.annotate(level, at.as_ref(), &title, message)?;
        }
        self.results.push(result.clone());
        Ok(())
    }

    /// One annotation; past [`MAX_ANNOTATIONS`] errors they are only counted.
    fn annotate(
        &mut self,
        level: &str,
        at: Option<&(PathBuf, u32, u32)>,
        title: &str,
        message: &str,
    ) -> io::Result<()> {
        if level == "error" {
            if self.annotations >= MAX_ANNOTATIONS {
                self.suppressed += 1;
                return Ok(());
            }
            self.annotations += 1;
        }
        let mut props = Vec::new();
        if let Some((file, line, col)) = at {
            props.push(format!(
                "file={}",
                escape_property(&self.workspace.name(file).display().to_string())
            ));
            if *line > 0 {
                props.push(format!("line={line}"));
            }
            if *col > 0 {
                props.push(format!("col={col}"));
            }
        }
        props.push(format!("title={}", escape_property(title)));
        writeln!(
            self.out,
            "::{level} {}::{}",
            props.join(","),
            escape_data(message)
        )
    }

    fn summary_markdown(&self, status: RunStatus, seconds: f64) -> String {
        let mut md = String::new();
        let icon = match status {
            RunStatus::Passed => "✅",
            RunStatus::Failed => "❌",
            RunStatus::Interrupted => "⊘",
        };
        // A pass with allowed failures or warnings says so in the heading.
        let allowed = self
            .results
            .iter()
            .filter(|r| r.status == StageStatus::Warned)
            .count();
        let mut caveats = Vec::new();
        if allowed > 0 {
            caveats.push(crate::text::plural(allowed, "allowed failure"));
        }
        if !self.warnings.is_empty() {
            caveats.push(crate::text::plural(self.warnings.len(), "warning"));
        }
        let (icon, with) = match (status, caveats.is_empty()) {
            (RunStatus::Passed, false) => ("⚠️", format!(" with {}", caveats.join(" and "))),
            _ => (icon, String::new()),
        };
        let _ = writeln!(
            md,
            "## {icon} portcullis: {} {}{with} in {seconds:.1}s\n",
            md_code(&self.pipeline, false),
            status.as_str()
        );
        md.push_str("| stage | status | duration | reason |\n|---|---|---|---|\n");
        for stage in &self.stages {
            let result = self.results.iter().find(|r| r.stage == stage.id);
            let (status, duration, reason) = match result {
                Some(r) => (
                    status_cell(r.status),
                    format!("{:.1}s", r.duration.as_secs_f64()),
                    r.reason.clone().unwrap_or_default(),
                ),
                None => ("⊘ not run".to_owned(), String::new(), String::new()),
            };
            let _ = writeln!(
                md,
                "| {} | {status} | {duration} | {} |",
                md_code(&stage.name, true),
                md_reason(&reason, true)
            );
        }
        for (stage, status, reason) in &self.rollbacks {
            let status = match status {
                RollbackStatus::Passed => "↺ rolled back",
                RollbackStatus::Failed => "❌ rollback failed",
                RollbackStatus::Cancelled => "⊘ rollback killed",
            };
            let _ = writeln!(
                md,
                "| rollback of {} | {status} | | {} |",
                md_code(self.names.get(stage), true),
                md_reason(reason, true)
            );
        }
        if !self.warnings.is_empty() {
            md.push_str("\n**Warnings**\n\n");
            for warning in &self.warnings {
                let _ = writeln!(md, "- {}", md_reason(warning, false));
            }
        }
        md.push_str("\n```mermaid\nflowchart LR\n");
        // A matrix stage is one node (its worst outcome, its count): drawn one per combination,
        // two stages after a large matrix pass Mermaid's limit of 500 edges.
        let node_of =
            |stage: &PlannedStage| stage.group.clone().unwrap_or_else(|| stage.id.clone());
        let mut nodes: Vec<(String, String, Vec<&str>)> = Vec::new();
        for stage in &self.stages {
            let class = self
                .results
                .iter()
                .find(|r| r.stage == stage.id)
                .map_or("skipped", |r| r.status.as_str());
            let key = node_of(stage);
            match nodes.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, classes)) => classes.push(class),
                None => nodes.push((key, stage.name.clone(), vec![class])),
            }
        }
        for (i, (key, name, classes)) in nodes.iter().enumerate() {
            let worst = ["failed", "cancelled", "warning", "passed"]
                .into_iter()
                .find(|c| classes.contains(c))
                .unwrap_or("skipped");
            let label = if classes.len() > 1 {
                format!("{key} ({} combinations)", classes.len())
            } else {
                name.clone()
            };
            let _ = writeln!(
                md,
                "    s{i}[\"{}\"]:::{worst}",
                crate::text::mermaid_label(&label)
            );
        }
        let mut edges: Vec<(usize, usize)> = Vec::new();
        for stage in &self.stages {
            let to = nodes
                .iter()
                .position(|(k, _, _)| *k == node_of(stage))
                .unwrap_or(0);
            for need in &stage.needs {
                if let Some(from) = self
                    .stages
                    .iter()
                    .find(|s| s.id == *need)
                    .and_then(|s| nodes.iter().position(|(k, _, _)| *k == node_of(s)))
                    && !edges.contains(&(from, to))
                {
                    edges.push((from, to));
                    let _ = writeln!(md, "    s{from} --> s{to}");
                }
            }
        }
        md.push_str(
            "    classDef passed fill:#d1f7d6,stroke:#1a7f37\n    classDef warning fill:#fff3c4,stroke:#9a6700\n    \
             classDef failed fill:#ffd7d5,stroke:#cf222e\n    classDef cancelled fill:#eaeef2,stroke:#57606a\n    \
             classDef skipped fill:#f6f8fa,stroke:#8c959f,stroke-dasharray: 4\n```\n",
        );
        if let Some(first) = self.first_failure.and_then(|i| self.results.get(i)) {
            let _ = writeln!(
                md,
                "\n### First failure: {} ({})\n",
                md_code(self.names.get(&first.stage), false),
                md_reason(first.reason.as_deref().unwrap_or("failed"), false)
            );
            let start = first.tail.len().saturating_sub(MAX_SUMMARY_TAIL);
            md.push_str("````text\n");
            for line in &first.tail[start..] {
                md.push_str(&line.replace("````", "`` ``"));
                md.push('\n');
            }
            md.push_str("````\n");
        }
        md.push('\n');
        md
    }
}

fn status_cell(status: StageStatus) -> String {
    let icon = match status {
        StageStatus::Passed => "✅",
        StageStatus::Warned => "⚠️",
        StageStatus::Failed => "❌",
        StageStatus::Cancelled => "⊘",
        StageStatus::Skipped => "➖",
    };
    format!("{icon} {}", status.as_str())
}

/// Text as Markdown shows it literally, on one line: `&`, `<` and `>` as HTML entities (GitHub
/// renders HTML in summaries), Markdown's punctuation behind a backslash (`|` included, which
/// would split a table cell), line breaks as spaces.
fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '~' | '$' | '@' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A reason or a warning: portcullis writes names in backticks, which stay code spans when they
/// pair up; everything else is [`md_text`].
fn md_reason(text: &str, in_table: bool) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return md_text(text);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                md_code(part, in_table)
            } else {
                md_text(part)
            }
        })
        .collect()
}

/// A code span showing `text` as written: fenced by one more backtick than its longest run,
/// padded when it starts or ends with one. In a table cell, `|` is escaped even in code, as
/// GitHub's tables require.
fn md_code(text: &str, in_table: bool) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let text = if in_table {
        text.replace('|', "\\|")
    } else {
        text
    };
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// A node label of the summary's Mermaid graph, inside `"…"`: Mermaid's entity codes for what
/// would end the label or be read as HTML.
fn tail_text(reason: &str, tail: &[String]) -> String {
    let start = tail.len().saturating_sub(10);
    let mut text = reason.to_owned();
    for line in &tail[start..] {
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// Copies a stage log line by line; a log that cannot be read says so in the group.
fn copy_log(path: &Path, out: &mut dyn Write) -> io::Result<()> {
    let Ok(file) = File::open(path) else {
        return writeln!(out, "(log `{}` could not be read)", path.display());
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line)? > 0 {
        out.write_all(&line)?;
        if !line.ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
        line.clear();
    }
    Ok(())
}

/// GitHub mode: `GITHUB_ACTIONS=true`, as GitHub's runners set it.
pub(crate) fn enabled() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Workflow-command data escaping, as the Actions toolkit does it.
pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

pub(crate) fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::runner::events::CaseResult;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn event(kind: RunEventKind) -> RunEvent {
        RunEvent {
            elapsed: Duration::ZERO,
            kind,
        }
    }

    fn result(
        stage: &str,
        status: StageStatus,
        reason: Option<&str>,
        log: Option<PathBuf>,
    ) -> StageResult {
        StageResult {
            stage: stage.into(),
            status,
            duration: Duration::from_millis(1500),
            reason: reason.map(Into::into),
            attempts: 1,
            failed_attempts: Vec::new(),
            tail: vec!["line one".into(), "boom | bad".into()],
            log,
            cases: Vec::new(),
            junit_files: Vec::new(),
            outputs: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn groups_annotations_and_summary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("test.log");
        std::fs::write(&log, "compiling\n::error::forged by the stage\nno newline").expect("log");
        let summary = dir.path().join("summary.md");
        let capture = Capture::default();
        let mut r = GithubReporter::new(
            Box::new(capture.clone()),
            Some(summary.clone()),
            "tok123".into(),
        );
        let stages = ["lint", "test", "deploy"]
            .iter()
            .enumerate()
            .map(|(i, id)| PlannedStage {
                id: (*id).into(),
                name: (*id).into(),
                needs: if i == 0 {
                    Vec::new()
                } else {
                    vec!["lint".into()]
                },
                line: 3 + 2 * i as u32,
                selected: true,
                group: None,
            })
            .collect();
        let mut events = vec![event(RunEventKind::RunStarted {
            run_id: "r".into(),
            pipeline: "ci".into(),
            file: "pipelines/ci.yml".into(),
            run_dir: dir.path().into(),
            stages,
            concurrency: 2,
            timestamp: String::new(),
        })];
        events.push(event(RunEventKind::StageFinished(result(
            "lint",
            StageStatus::Passed,
            None,
            None,
        ))));
        let mut failed = result(
            "test",
            StageStatus::Failed,
            Some("exit code 1, 100%"),
            Some(log),
        );
        failed.cases.push(CaseResult {
            name: "port 3000".into(),
            status: CaseStatus::Failed {
                message: "forbidden port 3000".into(),
                body: String::new(),
            },
            duration: Duration::ZERO,
            location: Some(("web/package.json".into(), 7, 21)),
            output: String::new(),
        });
        events.push(event(RunEventKind::StageFinished(failed)));
        events.push(event(RunEventKind::StageFinished(result(
            "deploy",
            StageStatus::Skipped,
            Some("needs `test`, which failed"),
            None,
        ))));
        events.push(event(RunEventKind::RunFinished {
            status: RunStatus::Failed,
            duration: Duration::from_secs(3),
        }));
        for e in &events {
            r.handle(e).expect("handle");
        }
        let out = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        let expected = "::group::test (failed: exit code 1, 100%25)\n::stop-commands::tok123\ncompiling\n\
                        ::error::forged by the stage\nno newline\n::tok123::\n::endgroup::\n\
                        ::error file=pipelines/ci.yml,line=5,title=portcullis%3A stage `test` failed::\
                        exit code 1, 100%25%0Aline one%0Aboom | bad\n\
                        ::error file=web/package.json,line=7,col=21,title=portcullis%3A port 3000::forbidden port 3000\n";
        assert_eq!(out, expected);
        let md = std::fs::read_to_string(summary).expect("summary");
        assert!(md.contains("## ❌ portcullis: `ci` failed in 3.0s"), "{md}");
        assert!(
            md.contains("| `test` | ❌ failed | 1.5s | exit code 1, 100% |"),
            "{md}"
        );
        assert!(
            md.contains("| `deploy` | ➖ skipped | 1.5s | needs `test`, which failed |"),
            "{md}"
        );
        assert!(
            md.contains("s1[\"test\"]:::failed") && md.contains("s0 --> s2"),
            "{md}"
        );
        assert!(
            md.contains("### First failure: `test`") && md.contains("boom | bad"),
            "{md}"
        );
    }

    #[test]
    fn annotations_beyond_ten_are_counted_in_one() {
        let capture = Capture::default();
        let mut r = GithubReporter::new(Box::new(capture.clone()), None, "t".into());
        for i in 0..13 {
            let e = event(RunEventKind::StageFinished(result(
                &format!("s{i}"),
                StageStatus::Failed,
                Some("x"),
                None,
            )));
            r.handle(&e).expect("handle");
        }
        r.handle(&event(RunEventKind::RunFinished {
            status: RunStatus::Failed,
            duration: Duration::ZERO,
        }))
        .expect("handle");
        let out = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(out.matches("::error title=portcullis%3A stage").count(), 10);
        assert!(out.ends_with("::error title=portcullis::3 more failures are not annotated here; the job summary lists every stage\n"), "{out}");
    }
}
