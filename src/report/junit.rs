//! The JUnit XML report.
//!
//! The main type is [`JunitReport`]. It is fed every [`RunEvent`] and can write its report
//! at any moment, so an interrupted run still leaves one behind: a stage that started but
//! never finished is written as skipped with the message `interrupted`. The report must
//! validate against the strict Jenkins schema (`junit-10.xsd`) whatever bytes a stage
//! printed, so every text goes through [`xml_safe`] and only the attributes the schema
//! knows are ever written, for imported files too (see `junit_import`).
//!
//! Layout: one `<testsuite>` named after the pipeline, with one `<testcase>` per stage in
//! file order and one per rollback (`rollback: STAGE`); one `<testsuite name="PIPELINE /
//! STAGE">` per stage whose built-in kind reported cases (or whose JUnit files could not be
//! read); one `<testsuite name="STAGE / SUITE">` per suite of every imported JUnit file. The
//! combinations of a matrix stage are grouped by their classname, `PIPELINE.STAGE`.
//!
//! A stage that failed with `allow-failure` set (`Warned`) is written as a passing test case,
//! because it did not fail the gate and JUnit readers must not count it as a failure. The
//! schema gives a test case no properties, so the warning is the first line of its
//! `<system-out>` (`warning: failed but allow-failure is set: REASON`), and the pipeline
//! suite repeats it as a `<property name="warning: STAGE" value="REASON"/>`.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::junit_import;
use crate::runner::events::StageNames;
use crate::runner::events::{
    CaseResult, CaseStatus, RollbackResult, RollbackStatus, RunEvent, RunEventKind, RunStatus,
    StageResult, StageStatus, TAIL_LINES,
};
use crate::text::Escape;

/// Bytes kept of each text (output, failure body).
pub(crate) const MAX_TEXT: usize = 64 << 10;
/// Bytes kept of each attribute value (names, messages).
const MAX_ATTR: usize = 4 << 10;
/// Bytes kept of each output line of a stage that is still running.
const MAX_LINE: usize = 4 << 10;

type Mask = Box<dyn Fn(&str) -> String + Send + Sync>;

/// Builds the JUnit report of a run from its events.
#[derive(Default)]
pub(crate) struct JunitReport {
    pipeline: String,
    run_id: String,
    file: PathBuf,
    timestamp: Option<String>,
    stages: Vec<StageState>,
    names: StageNames,
    /// Each rollback with the time it started, and its result once it finished.
    rollbacks: Vec<(String, Duration, Option<RollbackResult>)>,
    /// The latest `elapsed` seen, the clock of an unfinished run.
    elapsed: Duration,
    finished: Option<(RunStatus, Duration)>,
    /// Applied to texts of imported files; texts in events are masked already.
    mask: Option<Mask>,
}

#[derive(Default)]
struct StageState {
    id: String,
    selected: bool,
    /// The matrix stage it is a combination of: its cases are grouped under
    /// `classname="PIPELINE.GROUP"`.
    group: Option<String>,
    /// When its first attempt started, while it has no result.
    started: Option<Duration>,
    /// The last lines it printed, for the report of an interrupted run.
    lines: VecDeque<String>,
    result: Option<StageResult>,
    /// Its built-in cases and imported suites, read when it finished.
    suites: Vec<Suite>,
}

impl JunitReport {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Sets the redactor applied to every text read from imported JUnit files. Set it
    /// before the first stage finishes: files are read when their stage finishes.
    pub(crate) fn set_mask(&mut self, mask: impl Fn(&str) -> String + Send + Sync + 'static) {
        self.mask = Some(Box::new(mask));
    }

    fn mask(&self, s: &str) -> String {
        self.mask
            .as_ref()
            .map_or_else(|| s.to_owned(), |mask| mask(s))
    }

    pub(crate) fn handle(&mut self, event: &RunEvent) {
        self.elapsed = self.elapsed.max(event.elapsed);
        match &event.kind {
            RunEventKind::RunStarted {
                run_id,
                pipeline,
                file,
                stages,
                timestamp,
                ..
            } => {
                self.pipeline.clone_from(pipeline);
                self.run_id.clone_from(run_id);
                self.file.clone_from(file);
                self.timestamp = Some(timestamp.clone());
                self.names = StageNames::new(stages);
                for s in stages {
                    self.stage_mut(&s.id).selected = s.selected;
                    self.stage_mut(&s.id).group.clone_from(&s.group);
                }
            }
            RunEventKind::StageStarted { stage, .. } => {
                let state = self.stage_mut(stage);
                if state.result.is_none() {
                    state.started.get_or_insert(event.elapsed);
                }
            }
            // A rollback's output reaches its case through `RollbackFinished`.
            RunEventKind::StageOutput { rollback: true, .. } => {}
            RunEventKind::StageOutput { stage, lines, .. } => {
                let state = self.stage_mut(stage);
                for line in lines.lines() {
                    if state.lines.len() == TAIL_LINES {
                        state.lines.pop_front();
                    }
                    state.lines.push_back(clip(line, MAX_LINE, Keep::Start));
                }
            }
            // The final result lists every failed attempt; nothing to keep until then.
            RunEventKind::StageRetrying { .. }
            | RunEventKind::Prompt { .. }
            | RunEventKind::PromptClosed { .. } => {}
            RunEventKind::StageFinished(result) => {
                let suites = self.stage_suites(result);
                let state = self.stage_mut(&result.stage);
                state.result = Some(result.clone());
                state.suites = suites;
                state.started = None;
                state.lines.clear();
            }
            RunEventKind::RollbackStarted { stage, .. } => {
                self.rollbacks.push((stage.clone(), event.elapsed, None));
            }
            RunEventKind::RollbackFinished(result) => {
                let mut open = self.rollbacks.iter_mut().rev();
                match open.find(|(s, _, r)| *s == result.stage && r.is_none()) {
                    Some((_, _, r)) => *r = Some(result.clone()),
                    None => {
                        let finished = (result.stage.clone(), event.elapsed, Some(result.clone()));
                        self.rollbacks.push(finished);
                    }
                }
            }
            RunEventKind::RunFinished { status, duration } => {
                self.finished = Some((*status, *duration));
            }
        }
    }

    /// Writes the report as it stands; callable any number of times, at any point.
    pub(crate) fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut w = BufWriter::new(w);
        let main = self.pipeline_suite();
        let stage_suites = self.stages.iter().flat_map(|s| &s.suites);
        let suites: Vec<&Suite> = std::iter::once(&main).chain(stage_suites).collect();
        let (mut tests, mut failures, mut errors) = (0, 0, 0);
        for c in suites.iter().map(|s| s.counts()) {
            (tests, failures, errors) = (tests + c.tests, failures + c.failures, errors + c.errors);
        }
        writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        write!(w, "<testsuites")?;
        attr(&mut w, "name", &self.pipeline)?;
        attr(&mut w, "tests", &tests.to_string())?;
        attr(&mut w, "failures", &failures.to_string())?;
        attr(&mut w, "errors", &errors.to_string())?;
        attr(&mut w, "time", &secs(self.wall_time()))?;
        writeln!(w, ">")?;
        for s in suites {
            write_suite(&mut w, s)?;
        }
        writeln!(w, "</testsuites>")?;
        w.flush()
    }

    /// Writes the report to `path` atomically: to a new temporary file in the same folder
    /// first, then renamed, so a reader never sees half a report, even if portcullis is killed
    /// while writing. The temporary file has an unpredictable name and is created exclusively
    /// (`O_EXCL`, which never follows a symlink), so a file planted beside the report cannot
    /// redirect the write, and runs writing the same report at once each write their own and
    /// the last rename wins whole. There is no fsync: a report is rewritten by the next run, and
    /// an fsync was measured to take up to 210 ms on a busy disk, at the end of every run.
    ///
    /// A target that exists but is not a regular file (`/dev/null`, a FIFO, `/dev/stdout`) is
    /// written in place: renaming over it would replace the device or pipe with a file. `mode`
    /// is the new file's permissions: `0o600` in the run folder, `0o644` for a `--junit` report
    /// that dashboards and artifact uploads read.
    pub(crate) fn write_atomic(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            let mut target = fs::OpenOptions::new().write(true).open(path)?;
            return self.write_to(&mut target);
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".portcullis-junit-")
            .suffix(".tmp")
            .tempfile_in(folder)?;
        self.write_to(tmp.as_file_mut())?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
        // A dropped temporary file removes itself, whatever failed.
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    fn stage_mut(&mut self, id: &str) -> &mut StageState {
        let i = match self.stages.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                // Selected unless `RunStarted` said otherwise: the stage ran, after all.
                self.stages.push(StageState {
                    id: id.to_owned(),
                    selected: true,
                    ..StageState::default()
                });
                self.stages.len() - 1
            }
        };
        &mut self.stages[i]
    }

    fn wall_time(&self) -> Duration {
        self.finished.map_or(self.elapsed, |(_, d)| d)
    }

    /// The suites a finished stage adds: its built-in cases (and one error case per JUnit
    /// file that could not be read), then the suites of its JUnit files.
    fn stage_suites(&self, r: &StageResult) -> Vec<Suite> {
        let label = self.names.get(&r.stage);
        let name = format!("{} / {label}", self.pipeline);
        let mut cases: Vec<Case> = r.cases.iter().map(|c| builtin_case(&name, c)).collect();
        let mut imported = Vec::new();
        for path in &r.junit_files {
            let (suites, error) = junit_import::read(path, label, &|s| self.mask(s));
            imported.extend(suites);
            if let Some(e) = error {
                let message = self.mask(&format!("could not read JUnit file: {e}"));
                let mut case = Case::new(format!("import {}", path.display()), &name);
                case.problems
                    .push(Problem::new(ProblemKind::Error, message));
                cases.push(case);
            }
        }
        let own = (!cases.is_empty()).then(|| Suite {
            name,
            cases,
            ..Suite::default()
        });
        own.into_iter().chain(imported).collect()
    }

    fn pipeline_suite(&self) -> Suite {
        let status = self.finished.map_or("incomplete", |(s, _)| s.as_str());
        let mut properties = vec![
            ("run-id".to_owned(), self.run_id.clone()),
            ("pipeline-file".to_owned(), self.file.display().to_string()),
            ("status".to_owned(), status.to_owned()),
        ];
        let mut cases = Vec::new();
        for s in &self.stages {
            if let Some(r) = s
                .result
                .as_ref()
                .filter(|r| r.status == StageStatus::Warned)
            {
                let why = reason(r.reason.as_deref(), "failed");
                properties.push((format!("warning: {}", self.names.get(&s.id)), why));
            }
            cases.push(self.stage_case(s));
        }
        for (stage, started, result) in &self.rollbacks {
            cases.push(self.rollback_case(stage, *started, result.as_ref()));
        }
        Suite {
            name: self.pipeline.clone(),
            timestamp: self.timestamp.clone(),
            time: Some(self.wall_time()),
            properties,
            cases,
            ..Suite::default()
        }
    }

    fn stage_case(&self, s: &StageState) -> Case {
        let classname = match &s.group {
            Some(group) => format!("{}.{group}", self.pipeline),
            None => self.pipeline.clone(),
        };
        let mut case = Case::new(self.names.get(&s.id).to_owned(), &classname);
        let Some(r) = &s.result else {
            let message = match s.started {
                Some(started) => {
                    case.time = Some(self.elapsed.saturating_sub(started));
                    case.out = tail(s.lines.iter());
                    "interrupted"
                }
                None if s.selected => "not run",
                None => "not selected",
            };
            case.problems
                .push(Problem::new(ProblemKind::Skipped, message));
            return case;
        };
        case.time = Some(r.duration);
        // A stage that passed in the end had flaky attempts; any other had failed reruns.
        let rerun = match r.status {
            StageStatus::Passed => ProblemKind::FlakyFailure,
            _ => ProblemKind::RerunFailure,
        };
        for a in &r.failed_attempts {
            let message = format!("attempt {}: {}", a.attempt, a.reason);
            let problem = Problem::new(rerun, message).typed("attempt-failed");
            case.problems.push(Problem {
                out: tail(a.tail.iter()),
                ..problem
            });
        }
        let mut out = tail(r.tail.iter());
        for warning in &r.warnings {
            case.out.push_str(&format!("warning: {warning}\n"));
        }
        let why = |default| reason(r.reason.as_deref(), default);
        let problem = match r.status {
            StageStatus::Passed => None,
            StageStatus::Warned => {
                case.out.insert_str(
                    0,
                    &format!(
                        "warning: failed but allow-failure is set: {}\n",
                        why("failed")
                    ),
                );
                None
            }
            // The reason leads the failure's text (GitLab shows the text, not `message`), and
            // the tail is said there only, not again in `system-out`.
            StageStatus::Failed => {
                let problem = Problem::new(ProblemKind::Failure, why("failed"));
                let text = [why("failed"), std::mem::take(&mut out)]
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n");
                Some(Problem {
                    text,
                    ..problem.typed("stage-failed")
                })
            }
            StageStatus::Cancelled => {
                let message = r
                    .reason
                    .as_ref()
                    .map_or("cancelled".into(), |r| format!("cancelled: {r}"));
                Some(Problem::new(ProblemKind::Skipped, message))
            }
            StageStatus::Skipped => Some(Problem::new(ProblemKind::Skipped, why("skipped"))),
        };
        case.problems.extend(problem);
        case.out.push_str(&out);
        case
    }

    /// A cancelled rollback is a failure rather than a skip: it stopped halfway, and the
    /// system it was restoring is in a state nobody checked.
    fn rollback_case(&self, stage: &str, started: Duration, r: Option<&RollbackResult>) -> Case {
        let mut case = Case::new(
            format!("rollback: {}", self.names.get(stage)),
            &self.pipeline,
        );
        let Some(r) = r else {
            case.time = Some(self.elapsed.saturating_sub(started));
            case.problems
                .push(Problem::new(ProblemKind::Skipped, "interrupted"));
            return case;
        };
        case.time = Some(r.duration);
        case.out = tail(r.tail.iter());
        let (type_, default) = match r.status {
            RollbackStatus::Passed => return case,
            RollbackStatus::Failed => ("rollback-failed", "failed"),
            RollbackStatus::Cancelled => ("rollback-cancelled", "cancelled"),
        };
        let why = reason(r.reason.as_deref(), default);
        let text = [why.clone(), std::mem::take(&mut case.out)]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let problem = Problem::new(ProblemKind::Failure, why);
        case.problems.push(Problem {
            text,
            ..problem.typed(type_)
        });
        case
    }
}

fn reason(reason: Option<&str>, default: &str) -> String {
    reason.unwrap_or(default).to_owned()
}

/// Joins log lines, keeping the end when they are too long: the last lines say why.
fn tail<'a>(lines: impl Iterator<Item = &'a String>) -> String {
    let joined: Vec<&str> = lines.map(|l| l.trim_end_matches(['\n', '\r'])).collect();
    clip(&joined.join("\n"), MAX_TEXT, Keep::End)
}

/// The location leads the failure text as `file:line:col`, the form GitHub's JUnit
/// reporters look for to annotate a line.
fn builtin_case(classname: &str, c: &CaseResult) -> Case {
    let problem = |kind, message: &str, body: &str| {
        let text = match &c.location {
            Some((file, line, col)) => format!("{}:{line}:{col}\n{body}", file.display()),
            None => body.to_owned(),
        };
        let text = clip(&text, MAX_TEXT, Keep::Start);
        Problem {
            text,
            ..Problem::new(kind, message)
        }
    };
    let mut case = Case::new(c.name.clone(), classname);
    case.time = Some(c.duration);
    case.out = clip(&c.output, MAX_TEXT, Keep::Start);
    case.problems.extend(match &c.status {
        CaseStatus::Passed => None,
        CaseStatus::Failed { message, body } => Some(problem(ProblemKind::Failure, message, body)),
        CaseStatus::Errored { message, body } => Some(problem(ProblemKind::Error, message, body)),
        CaseStatus::Skipped { message } => Some(Problem::new(ProblemKind::Skipped, message)),
    });
    case
}

/// A `<testsuite>` as the report writes it, from events or from an imported file.
#[derive(Debug, Default)]
pub(crate) struct Suite {
    pub(crate) name: String,
    pub(crate) timestamp: Option<String>,
    /// `None` means the sum of the cases' times.
    pub(crate) time: Option<Duration>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) cases: Vec<Case>,
    pub(crate) out: String,
    pub(crate) err: String,
}

#[derive(Debug, Default)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) classname: String,
    pub(crate) time: Option<Duration>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) out: String,
    pub(crate) err: String,
}

impl Case {
    pub(crate) fn new(name: String, classname: &str) -> Self {
        Self {
            name,
            classname: classname.to_owned(),
            ..Self::default()
        }
    }
}

/// A child of `<testcase>` that says something went wrong (or was skipped).
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) kind: ProblemKind,
    pub(crate) message: Option<String>,
    pub(crate) type_: Option<String>,
    pub(crate) text: String,
    /// Written only for reruns: the schema gives other kinds no output of their own.
    pub(crate) out: String,
    pub(crate) err: String,
}

impl Problem {
    /// A skip's reason is its text as well as its `message`: GitLab's parser reads only the
    /// text (an element with attributes alone becomes a hash there).
    pub(crate) fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            kind,
            text: if kind == ProblemKind::Skipped {
                message.clone()
            } else {
                String::new()
            },
            message: Some(message),
            type_: None,
            out: String::new(),
            err: String::new(),
        }
    }

    fn typed(self, type_: &str) -> Self {
        Self {
            type_: Some(type_.to_owned()),
            ..self
        }
    }
}

/// The outcome elements of `<testcase>`, in the order of their tags in [`Self::TAGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProblemKind {
    Failure,
    Error,
    Skipped,
    RerunFailure,
    RerunError,
    FlakyFailure,
    FlakyError,
}

impl ProblemKind {
    const TAGS: [(&str, Self); 7] = [
        ("failure", Self::Failure),
        ("error", Self::Error),
        ("skipped", Self::Skipped),
        ("rerunFailure", Self::RerunFailure),
        ("rerunError", Self::RerunError),
        ("flakyFailure", Self::FlakyFailure),
        ("flakyError", Self::FlakyError),
    ];

    fn tag(self) -> &'static str {
        Self::TAGS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("error", |(t, _)| t)
    }

    pub(crate) fn from_tag(tag: &str) -> Option<Self> {
        Self::TAGS.iter().find(|(t, _)| *t == tag).map(|(_, k)| *k)
    }

    fn is_rerun(self) -> bool {
        !matches!(self, Self::Failure | Self::Error | Self::Skipped)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Suite {
    /// Counted from the cases: an error outranks a failure, which outranks a skip; reruns
    /// and flaky attempts do not count.
    fn counts(&self) -> Counts {
        let mut c = Counts {
            tests: self.cases.len(),
            ..Counts::default()
        };
        for case in &self.cases {
            let has = |k| case.problems.iter().any(|p| p.kind == k);
            if has(ProblemKind::Error) {
                c.errors += 1;
            } else if has(ProblemKind::Failure) {
                c.failures += 1;
            } else if has(ProblemKind::Skipped) {
                c.skipped += 1;
            }
        }
        c
    }
}

fn write_suite(w: &mut impl Write, s: &Suite) -> io::Result<()> {
    let c = s.counts();
    // Saturating: imported times are whatever a file says, and `Sum` panics on overflow.
    let case_times = s.cases.iter().filter_map(|c| c.time);
    let time = s
        .time
        .unwrap_or_else(|| case_times.fold(Duration::ZERO, Duration::saturating_add));
    write!(w, "  <testsuite")?;
    attr(w, "name", &s.name)?;
    attr(w, "tests", &c.tests.to_string())?;
    attr(w, "failures", &c.failures.to_string())?;
    attr(w, "errors", &c.errors.to_string())?;
    attr(w, "skipped", &c.skipped.to_string())?;
    attr(w, "time", &secs(time))?;
    if let Some(ts) = &s.timestamp {
        attr(w, "timestamp", ts)?;
    }
    writeln!(w, ">")?;
    if !s.properties.is_empty() {
        writeln!(w, "    <properties>")?;
        for (name, value) in &s.properties {
            write!(w, "      <property")?;
            attr(w, "name", name)?;
            attr(w, "value", value)?;
            writeln!(w, "/>")?;
        }
        writeln!(w, "    </properties>")?;
    }
    for case in &s.cases {
        write_case(w, case)?;
    }
    text_element(w, "    ", "system-out", &s.out)?;
    text_element(w, "    ", "system-err", &s.err)?;
    writeln!(w, "  </testsuite>")
}

fn write_case(w: &mut impl Write, c: &Case) -> io::Result<()> {
    write!(w, "    <testcase")?;
    attr(w, "name", &c.name)?;
    attr(w, "classname", &c.classname)?;
    if let Some(t) = c.time {
        attr(w, "time", &secs(t))?;
    }
    if c.problems.is_empty() && c.out.is_empty() && c.err.is_empty() {
        return writeln!(w, "/>");
    }
    writeln!(w, ">")?;
    for p in &c.problems {
        let (tag, rerun) = (p.kind.tag(), p.kind.is_rerun());
        write!(w, "      <{tag}")?;
        if let Some(m) = &p.message {
            attr(w, "message", m)?;
        }
        // The schema requires a type on reruns; their tag is the best one a file can lack.
        if let Some(t) = p.type_.as_deref().or(rerun.then_some(tag)) {
            attr(w, "type", t)?;
        }
        if p.text.is_empty() && !(rerun && !(p.out.is_empty() && p.err.is_empty())) {
            writeln!(w, "/>")?;
            continue;
        }
        write!(w, ">{}", escape(&p.text, false))?;
        if rerun {
            text_element(w, "", "system-out", &p.out)?;
            text_element(w, "", "system-err", &p.err)?;
        }
        writeln!(w, "</{tag}>")?;
    }
    text_element(w, "      ", "system-out", &c.out)?;
    text_element(w, "      ", "system-err", &c.err)?;
    writeln!(w, "    </testcase>")
}

/// Writes `<tag>text</tag>` unless the text is empty; on a line of its own when indented,
/// inline otherwise (inside mixed content, where whitespace would become text).
fn text_element(w: &mut impl Write, indent: &str, tag: &str, text: &str) -> io::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let end = if indent.is_empty() { "" } else { "\n" };
    write!(w, "{indent}<{tag}>{}</{tag}>{end}", escape(text, false))
}

fn attr(w: &mut impl Write, name: &str, value: &str) -> io::Result<()> {
    let value = escape(&clip(value, MAX_ATTR, Keep::Start), true);
    write!(w, " {name}=\"{value}\"")
}

/// Seconds with three decimals, the only form the schema's `SUREFIRE_TIME` and every
/// reader agree on.
fn secs(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// Escapes for XML after [`xml_safe`]. `>` is escaped too, so `]]>` cannot appear; in
/// attributes, tab and newline are escaped so that attribute normalisation keeps them, and
/// CR is escaped everywhere so that end-of-line normalisation keeps it.
pub(crate) fn escape(s: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in xml_safe(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if in_attr => out.push_str("&#10;"),
            '\t' if in_attr => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Makes terminal output fit for XML 1.0 and for reading: strips ANSI escape sequences
/// (CSI, OSC and the other string sequences, two- and three-character escapes) and replaces
/// the characters XML forbids or discourages (C0 and C1 controls other than tab, newline
/// and CR; Unicode non-characters such as U+FFFE) with U+FFFD.
pub(crate) fn xml_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        match crate::text::escape_at(rest.as_bytes()) {
            Escape::Complete(n) => {
                // A sequence ends on a character boundary; were it not to, the introducer
                // alone is dropped.
                rest = rest.get(n..).unwrap_or(&rest[c.len_utf8()..]);
                continue;
            }
            Escape::Incomplete => break,
            Escape::None => {}
        }
        rest = &rest[c.len_utf8()..];
        let noncharacter = (c as u32 & 0xFFFE) == 0xFFFE || ('\u{FDD0}'..='\u{FDEF}').contains(&c);
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || noncharacter => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Keep {
    Start,
    End,
}

/// Cuts `s` to at most `max` bytes on a character boundary, and says so. The marker gives
/// no count: imported texts are already cut while they are read.
pub(crate) fn clip(s: &str, max: usize, keep: Keep) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    match keep {
        Keep::Start => {
            let i = (0..=max)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}\n[cut: longer than {max} bytes]", &s[..i])
        }
        Keep::End => {
            let i = (s.len() - max..=s.len())
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(s.len());
            format!("[cut: only the last {max} bytes are shown]\n{}", &s[i..])
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use proptest::prelude::*;

    use super::*;
    use crate::runner::events::{FailedAttempt, PlannedStage};

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="0.412" timestamp="2025-05-02T10:11:12.123456+00:00" hostname="ci-runner"><properties><property name="python" value="3.12.3"/></properties><testcase classname="tests.test_api" name="test_health" file="tests/test_api.py" line="3" time="0.002"/><testcase classname="tests.test_api" name="test_login" time="0.010"><properties><property name="jira" value="GATE-12"/></properties><failure message="AssertionError: assert 401 == 200">def test_login(client):
&gt;       assert client.post("/login", token="hunter2").status_code == 200
E       AssertionError: assert 401 == 200

tests/test_api.py:9: AssertionError</failure><system-out>INFO     app:api.py:12 login attempt</system-out></testcase><testcase classname="tests.test_api" name="test_slow" time="0.000"><skipped type="pytest.skip" message="needs network">tests/test_api.py:14: needs network</skipped></testcase><testcase classname="tests.test_db" name="test_migrate" time="0.001"><error message="failed on setup with &quot;ConnectionRefusedError: [Errno 111]&quot;">conn = psycopg.connect(dsn)
E   ConnectionRefusedError: [Errno 111] Connection refused</error></testcase></testsuite></testsuites>"#;

    // The counts in the file are wrong on purpose: the report recomputes them.
    const JEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="99" failures="0" errors="0" time="1.842">
  <testsuite name="Cart" errors="0" failures="0" skipped="0" timestamp="2025-05-02T10:11:12" time="1.2" tests="99">
    <testcase classname="Cart adds an item" name="Cart adds an item" time="0.004">
    </testcase>
    <testcase classname="Cart applies a coupon" name="Cart applies a coupon" time="0.011">
      <failure>Error: expect(received).toBe(expected) // Object.is equality
    at Object.&lt;anonymous&gt; (/app/src/cart.test.ts:21:30)</failure>
    </testcase>
    <testcase classname="Cart removes an item" name="Cart removes an item" time="0">
      <skipped/>
    </testcase>
  </testsuite>
</testsuites>"#;

    const VITEST: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<testsuites name="vitest tests" tests="2" failures="1" errors="0" time="0.53">
    <testsuite name="src/math.test.ts" timestamp="2025-05-02T10:11:12.345Z" hostname="ci" tests="2" failures="1" errors="0" skipped="0" time="0.012">
        <testcase classname="src/math.test.ts" name="math &gt; adds" time="0.001">
        </testcase>
        <testcase classname="src/math.test.ts" name="math &gt; divides by zero" time="0.004">
            <failure message="expected Infinity to be +0" type="AssertionError">
AssertionError: expected Infinity to be +0 // Object.is equality
 &#x276F; src/math.test.ts:9:22
            </failure>
            <system-out><![CDATA[log with ]]]]><![CDATA[> inside]]></system-out>
        </testcase>
    </testsuite>
</testsuites>"#;

    const NEXTEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="0" uuid="4e5b0c2a-7d1e-4a51-9f4f-0c8e2d9b1a77" timestamp="2025-05-02T10:11:12.345+00:00" time="2.513">
    <testsuite name="portcullis::integration" tests="3" disabled="0" errors="0" failures="1">
        <testcase name="runs_pipeline" classname="portcullis::integration" timestamp="2025-05-02T10:11:12.400+00:00" time="0.411">
        </testcase>
        <testcase name="ports::flaky_port" classname="portcullis::integration" timestamp="2025-05-02T10:11:12.500+00:00" time="0.210">
            <flakyFailure timestamp="2025-05-02T10:11:12.450+00:00" time="0.105" type="test failure">thread &apos;ports::flaky_port&apos; panicked at tests/ports.rs:14:5<system-out>running 1 test</system-out><system-err>&#27;[31mpanicked&#27;[0m</system-err></flakyFailure>
        </testcase>
        <testcase name="rollback::on_fail" classname="portcullis::integration" timestamp="2025-05-02T10:11:13.000+00:00" time="1.020">
            <failure type="test failure">thread &apos;rollback::on_fail&apos; panicked at tests/rollback.rs:40:9</failure>
            <rerunFailure timestamp="2025-05-02T10:11:12.600+00:00" time="0.300"><stackTrace>at tests/rollback.rs:40:9</stackTrace><system-err>first try</system-err></rerunFailure>
            <system-out>running 1 test&#0;</system-out>
            <system-err>thread &apos;rollback::on_fail&apos; panicked</system-err>
        </testcase>
    </testsuite>
</testsuites>"#;

    const NESTED: &str = r#"<testsuite name="all" tests="1" failures="0" errors="0"><testcase name="top" time="1,234.5"/><testcase name="c" time="0,5"/><testsuite name="inner"><testcase name="deep" classname="x" time="-3"/><testcase name="a" time="1e19"/><testcase name="b" time="1e19"/></testsuite></testsuite>"#;

    fn run_started(stages: &[&str]) -> RunEventKind {
        let planned = |id: &&str| PlannedStage {
            id: (*id).to_owned(),
            name: (*id).to_owned(),
            needs: Vec::new(),
            line: 0,
            selected: *id != "docs",
            group: None,
        };
        RunEventKind::RunStarted {
            run_id: "20250502-101112-ab12".to_owned(),
            pipeline: "deploy".to_owned(),
            file: PathBuf::from("portcullis.yml"),
            run_dir: PathBuf::from(".portcullis/runs/20250502-101112-ab12"),
            stages: stages.iter().map(planned).collect(),
            concurrency: 2,
            timestamp: "2025-05-02T10:11:12Z".to_owned(),
        }
    }

    fn result(stage: &str, status: StageStatus, reason: Option<&str>) -> StageResult {
        StageResult {
            stage: stage.to_owned(),
            status,
            duration: Duration::from_millis(1500),
            reason: reason.map(str::to_owned),
            attempts: 1,
            failed_attempts: vec![],
            tail: vec!["compiling".to_owned(), "done\n".to_owned()],
            log: None,
            cases: vec![],
            junit_files: vec![],
            warnings: vec![],
            outputs: vec![],
        }
    }

    fn attempt(attempt: u32, reason: &str) -> FailedAttempt {
        FailedAttempt {
            attempt,
            reason: reason.to_owned(),
            tail: vec![format!("try {attempt} output")],
        }
    }

    fn case(name: &str, status: CaseStatus, location: Option<(&str, u32, u32)>) -> CaseResult {
        CaseResult {
            name: name.to_owned(),
            status,
            duration: Duration::from_millis(1),
            location: location.map(|(f, l, c)| (PathBuf::from(f), l, c)),
            output: String::new(),
        }
    }

    fn rollback(status: RollbackStatus, reason: Option<&str>) -> RunEventKind {
        RunEventKind::RollbackFinished(RollbackResult {
            stage: "db".to_owned(),
            status,
            duration: Duration::from_millis(2500),
            reason: reason.map(str::to_owned),
            tail: vec!["restore failed".to_owned()],
            log: Some(PathBuf::from("rollback.log")),
        })
    }

    fn started(stage: &str) -> RunEventKind {
        RunEventKind::StageStarted {
            stage: stage.to_owned(),
            attempt: 1,
            max_attempts: 1,
        }
    }

    /// Feeds the events 100 ms apart and returns the report, checked against the schema.
    fn report(events: Vec<RunEventKind>) -> String {
        let mut report = JunitReport::new();
        report.set_mask(|s| s.replace("hunter2", "********"));
        for (i, kind) in (0..).zip(events) {
            report.handle(&RunEvent {
                elapsed: Duration::from_millis(100 * i),
                kind,
            });
        }
        let mut out = Vec::new();
        report
            .write_to(&mut out)
            .expect("writing to a Vec cannot fail");
        let xml = String::from_utf8(out).expect("the report is UTF-8");
        validate(&xml);
        xml
    }

    /// Validates against the strict schema with xmllint; skipped when xmllint or the
    /// schema is missing, unless `PORTCULLIS_REQUIRE` names `xmllint`.
    #[expect(clippy::print_stderr, reason = "a skipped check says so")]
    fn validate(xml: &str) {
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/junit-10.xsd");
        let schema = schema.is_file().then_some(schema);
        let xmllint = Command::new("xmllint").arg("--version").output().is_ok();
        let (true, Some(schema)) = (xmllint, schema) else {
            let required = std::env::var("PORTCULLIS_REQUIRE").is_ok_and(|r| r.contains("xmllint"));
            assert!(
                !required,
                "PORTCULLIS_REQUIRE names xmllint, but it or junit-10.xsd is missing"
            );
            eprintln!("skipped: schema validation needs xmllint and junit-10.xsd");
            return;
        };
        let file = tempfile::NamedTempFile::new().expect("temp file");
        fs::write(file.path(), xml).expect("write report");
        let mut xmllint = Command::new("xmllint");
        let out = xmllint
            .arg("--noout")
            .arg("--schema")
            .arg(schema)
            .arg(file.path());
        let out = out.output().expect("run xmllint");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "xmllint rejected the report:\n{stderr}\n{xml}"
        );
    }

    type Row<'a> = (&'a str, Vec<RunEventKind>, Vec<&'a str>, Vec<&'a str>);

    #[test]
    fn reports() {
        use {RollbackStatus as R, StageStatus as S};
        let dir = tempfile::tempdir().expect("temp dir");
        let file = |name: &str, text: &[u8]| {
            let path = dir.path().join(name);
            fs::write(&path, text).expect("write fixture");
            path
        };
        let imported = |files: Vec<PathBuf>| {
            let r = result("test", S::Failed, Some("exit code 1"));
            RunEventKind::StageFinished(StageResult {
                junit_files: files,
                ..r
            })
        };
        let done =
            |stage, status, reason| RunEventKind::StageFinished(result(stage, status, reason));
        let end = |status| RunEventKind::RunFinished {
            status,
            duration: Duration::from_millis(4321),
        };
        let big = format!(
            r#"<testsuites><testsuite name="big"><testcase name="long"><failure>{}</failure></testcase>{}</testsuite></testsuites>"#,
            "x".repeat(200_000),
            r#"<testcase name="t"/>"#.repeat(junit_import::MAX_CASES + 10),
        );
        let too_many = format!(
            "more than {} test cases; the rest were left out",
            junit_import::MAX_CASES
        );
        let rows: Vec<Row<'_>> = vec![
            (
                "passed",
                vec![run_started(&["build"]), done("build", S::Passed, None)],
                vec![
                    r#"<testsuites name="deploy" tests="1" failures="0" errors="0" time="0.100">"#,
                    r#"<testsuite name="deploy" tests="1" failures="0" errors="0" skipped="0" time="0.100" timestamp="2025-05-02T10:11:12Z">"#,
                    r#"<property name="run-id" value="20250502-101112-ab12"/>"#,
                    r#"<property name="status" value="incomplete"/>"#,
                    r#"<testcase name="build" classname="deploy" time="1.500">"#,
                    "<system-out>compiling\ndone</system-out>",
                ],
                vec!["<failure", "<skipped"],
            ),
            (
                "warned",
                vec![
                    run_started(&["lint"]),
                    done("lint", S::Warned, Some("exit code 1")),
                    end(RunStatus::Passed),
                ],
                vec![
                    "<system-out>warning: failed but allow-failure is set: exit code 1\ncompiling",
                    r#"<property name="warning: lint" value="exit code 1"/>"#,
                    r#"<property name="status" value="passed"/>"#,
                    r#"<testsuites name="deploy" tests="1" failures="0" errors="0" time="4.321">"#,
                ],
                vec!["<failure", "<skipped"],
            ),
            (
                "failed after retries",
                vec![
                    run_started(&["migrate"]),
                    RunEventKind::StageFinished(StageResult {
                        failed_attempts: vec![
                            attempt(1, "exit code 2"),
                            attempt(2, "timed out after 5s"),
                        ],
                        ..result("migrate", S::Failed, Some("exit code 3"))
                    }),
                ],
                vec![
                    r#"<rerunFailure message="attempt 1: exit code 2" type="attempt-failed"><system-out>try 1 output</system-out></rerunFailure>"#,
                    r#"<rerunFailure message="attempt 2: timed out after 5s" type="attempt-failed">"#,
                    // The reason leads the text, and the tail is not repeated in system-out.
                    "<failure message=\"exit code 3\" type=\"stage-failed\">exit code 3\ncompiling\ndone</failure>\n    </testcase>",
                    r#"tests="1" failures="1" errors="0""#,
                ],
                vec!["flakyFailure"],
            ),
            (
                "flaky pass",
                vec![
                    run_started(&["smoke"]),
                    RunEventKind::StageFinished(StageResult {
                        failed_attempts: vec![attempt(1, "exit code 7")],
                        ..result("smoke", S::Passed, None)
                    }),
                ],
                vec![
                    r#"<flakyFailure message="attempt 1: exit code 7" type="attempt-failed">"#,
                    r#"failures="0""#,
                ],
                vec!["rerunFailure", "<failure"],
            ),
            (
                "cancelled, skipped, not selected, not run",
                vec![
                    run_started(&["deploy", "verify", "docs", "notify"]),
                    done("deploy", S::Cancelled, Some("run interrupted")),
                    done(
                        "verify",
                        S::Skipped,
                        Some("needs `deploy`, which was cancelled"),
                    ),
                    end(RunStatus::Interrupted),
                ],
                vec![
                    r#"<skipped message="cancelled: run interrupted">cancelled: run interrupted</skipped>"#,
                    r#"<skipped message="needs `deploy`, which was cancelled">needs `deploy`, which was cancelled</skipped>"#,
                    "<testcase name=\"docs\" classname=\"deploy\">\n      <skipped message=\"not selected\">not selected</skipped>",
                    r#"<skipped message="not run">not run</skipped>"#,
                    r#"tests="4" failures="0" errors="0" skipped="4""#,
                    r#"<property name="status" value="cancelled"/>"#,
                ],
                vec!["<failure"],
            ),
            (
                "rollbacks",
                vec![
                    run_started(&["db", "app"]),
                    done("db", S::Passed, None),
                    done("app", S::Failed, Some("exit code 1")),
                    rollback(R::Failed, Some("exit code 4")),
                    rollback(R::Cancelled, None),
                    rollback(R::Passed, None),
                ],
                vec![
                    r#"<testcase name="rollback: db" classname="deploy" time="2.500">"#,
                    r#"<failure message="exit code 4" type="rollback-failed">exit code 4
restore failed</failure>"#,
                    r#"<failure message="cancelled" type="rollback-cancelled">cancelled
restore failed</failure>"#,
                    r#"tests="5" failures="3""#,
                ],
                vec![],
            ),
            (
                "built-in cases",
                vec![
                    run_started(&["ports"]),
                    RunEventKind::StageFinished(StageResult {
                        cases: vec![
                            case("port 5432 free", CaseStatus::Passed, None),
                            CaseResult {
                                output: "ss -ltnp".to_owned(),
                                ..case(
                                    "port 8080 free",
                                    CaseStatus::Failed {
                                        message: "taken by `nginx`".to_owned(),
                                        body: "pid 42".to_owned(),
                                    },
                                    Some(("portcullis.yml", 12, 7)),
                                )
                            },
                            case(
                                "schema",
                                CaseStatus::Errored {
                                    message: "connection refused".to_owned(),
                                    body: String::new(),
                                },
                                None,
                            ),
                            case(
                                "tls",
                                CaseStatus::Skipped {
                                    message: "no certificate".to_owned(),
                                },
                                None,
                            ),
                        ],
                        ..result("ports", S::Failed, Some("2 checks failed"))
                    }),
                ],
                vec![
                    r#"<testsuite name="deploy / ports" tests="4" failures="1" errors="1" skipped="1" time="0.004">"#,
                    "<failure message=\"taken by `nginx`\">portcullis.yml:12:7\npid 42</failure>",
                    "<system-out>ss -ltnp</system-out>",
                    r#"<error message="connection refused"/>"#,
                    r#"<testsuites name="deploy" tests="5" failures="2" errors="1""#,
                ],
                vec![],
            ),
            (
                "pytest",
                vec![
                    run_started(&["test"]),
                    imported(vec![file("pytest.xml", PYTEST.as_bytes())]),
                ],
                vec![
                    r#"<testsuite name="test / pytest" tests="4" failures="1" errors="1" skipped="1" time="0.412" timestamp="2025-05-02T10:11:12.123456+00:00">"#,
                    r#"<property name="python" value="3.12.3"/>"#,
                    r#"<testcase name="test_health" classname="tests.test_api" time="0.002"/>"#,
                    r#"token=&quot;********&quot;"#,
                    r#"<skipped message="needs network" type="pytest.skip">tests/test_api.py:14: needs network</skipped>"#,
                    r#"<error message="failed on setup with &quot;ConnectionRefusedError: [Errno 111]&quot;">"#,
                ],
                vec!["hunter2", "hostname", "file=", "line=", "GATE-12"],
            ),
            (
                "jest-junit",
                vec![
                    run_started(&["test"]),
                    imported(vec![file("jest.xml", JEST.as_bytes())]),
                ],
                vec![
                    r#"<testsuite name="test / Cart" tests="3" failures="1" errors="0" skipped="1" time="1.200" timestamp="2025-05-02T10:11:12">"#,
                    r#"<testcase name="Cart adds an item" classname="Cart adds an item" time="0.004"/>"#,
                    "at Object.&lt;anonymous&gt; (/app/src/cart.test.ts:21:30)</failure>",
                    r#"<testsuites name="deploy" tests="4" failures="2" errors="0""#,
                ],
                vec![r#"tests="99""#],
            ),
            (
                "vitest",
                vec![
                    run_started(&["test"]),
                    imported(vec![file("vitest.xml", VITEST.as_bytes())]),
                ],
                vec![
                    r#"<testsuite name="test / src/math.test.ts" tests="2" failures="1" errors="0" skipped="0" time="0.012""#,
                    r#"name="math &gt; divides by zero""#,
                    "\u{276F} src/math.test.ts:9:22",
                    "<system-out>log with ]]&gt; inside</system-out>",
                ],
                vec![],
            ),
            (
                "nextest",
                vec![
                    run_started(&["test"]),
                    imported(vec![file("nextest.xml", NEXTEST.as_bytes())]),
                ],
                vec![
                    r#"<testsuite name="test / portcullis::integration" tests="3" failures="1" errors="0" skipped="0" time="1.641">"#,
                    r#"<flakyFailure type="test failure">thread &apos;ports::flaky_port&apos; panicked at tests/ports.rs:14:5<system-out>running 1 test</system-out><system-err>panicked</system-err></flakyFailure>"#,
                    r#"<rerunFailure type="rerunFailure">at tests/rollback.rs:40:9<system-err>first try</system-err></rerunFailure>"#,
                    "<system-out>running 1 test\u{FFFD}</system-out>",
                ],
                vec!["uuid", "disabled", "timestamp=\"2025-05-02T10:11:12.400"],
            ),
            (
                "nested suites, odd times",
                vec![
                    run_started(&["test"]),
                    imported(vec![file("nested.xml", NESTED.as_bytes())]),
                ],
                vec![
                    r#"<testsuite name="test / all" tests="2" failures="0" errors="0" skipped="0" time="1235.000">"#,
                    r#"<testsuite name="test / inner" tests="3" failures="0" errors="0" skipped="0" time="18446744073709551615.999">"#,
                    r#"<testcase name="deep" classname="x"/>"#,
                ],
                vec![],
            ),
            (
                "too many cases, too much text",
                vec![
                    run_started(&["test"]),
                    imported(vec![file("big.xml", big.as_bytes())]),
                ],
                vec![
                    &too_many,
                    r#"<testsuite name="test / big" tests="20000" failures="1""#,
                    "\n[cut: longer than 65536 bytes]</failure>",
                ],
                vec![],
            ),
            (
                "unreadable files",
                vec![
                    run_started(&["test"]),
                    imported(vec![
                        file(
                            "cut.xml",
                            b"<testsuites><testsuite name=\"a\"><testcase name=\"x\">",
                        ),
                        file("html.xml", b"<html><body>502 Bad Gateway</body></html>"),
                        file("utf16.xml", &[0xff, 0xfe, 0x3c, 0x00]),
                        file("empty.xml", b""),
                        file(
                            "entity.xml",
                            b"<!DOCTYPE t [<!ENTITY a \"aaaa\">]><testsuite name=\"&a;\"/>",
                        ),
                        dir.path().join("missing.xml"),
                        dir.path().to_path_buf(),
                    ]),
                ],
                vec![
                    r#"<testsuite name="deploy / test" tests="7" failures="0" errors="7""#,
                    "could not read JUnit file: the file ends inside an unclosed element",
                    "could not read JUnit file: the root element is `html`, not `testsuites` or `testsuite`",
                    "could not read JUnit file: the file holds no root element",
                    "could not read JUnit file: not a regular file",
                    "/missing.xml\" classname=\"deploy / test\">",
                ],
                vec![],
            ),
        ];
        for (name, events, has, lacks) in rows {
            let xml = report(events);
            for s in has {
                assert!(xml.contains(s), "{name}: expected {s:?} in\n{xml}");
            }
            for s in lacks {
                assert!(!xml.contains(s), "{name}: unexpected {s:?} in\n{xml}");
            }
        }
    }

    #[test]
    fn interrupted_run_is_valid() {
        let xml = report(vec![]);
        assert!(
            xml.contains(r#"<testsuites name="" tests="0" failures="0" errors="0" time="0.000">"#)
        );
        let lines = "pushing image\n\u{1b}[32mstep 2\u{1b}[0m\n".to_owned();
        let xml = report(vec![
            run_started(&["build", "deploy"]),
            RunEventKind::StageFinished(result("build", StageStatus::Passed, None)),
            started("deploy"),
            RunEventKind::StageOutput {
                stage: "deploy".to_owned(),
                rollback: false,
                lines,
            },
            RunEventKind::RollbackStarted {
                stage: "build".to_owned(),
            },
        ]);
        for s in [
            "<testcase name=\"deploy\" classname=\"deploy\" time=\"0.200\">\n      <skipped message=\"interrupted\">interrupted</skipped>\n      <system-out>pushing image\nstep 2</system-out>",
            "<testcase name=\"rollback: build\" classname=\"deploy\" time=\"0.000\">\n      <skipped message=\"interrupted\">interrupted</skipped>",
            r#"<property name="status" value="incomplete"/>"#,
        ] {
            assert!(xml.contains(s), "expected {s:?} in\n{xml}");
        }
    }

    #[test]
    fn write_atomic_writes_into_a_pipe_rather_than_replacing_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("report.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return;
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).expect("read the pipe"))
        };
        JunitReport::new()
            .write_atomic(&fifo, 0o644)
            .expect("write into the pipe");
        let text = reader.join().expect("reader");
        assert!(text.contains("<testsuites"), "{text}");
        let kind = fs::symlink_metadata(&fifo)
            .expect("still there")
            .file_type();
        assert!(
            std::os::unix::fs::FileTypeExt::is_fifo(&kind),
            "the pipe was not replaced"
        );
    }

    #[test]
    fn write_atomic_replaces_the_report() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("junit.xml");
        let mut report = JunitReport::new();
        report.handle(&RunEvent {
            elapsed: Duration::ZERO,
            kind: run_started(&["a"]),
        });
        report.write_atomic(&path, 0o644).expect("write report");
        let finished = RunEventKind::StageFinished(result("a", StageStatus::Passed, None));
        report.handle(&RunEvent {
            elapsed: Duration::from_secs(2),
            kind: finished,
        });
        report.write_atomic(&path, 0o644).expect("rewrite report");
        let xml = fs::read_to_string(&path).expect("read report");
        assert!(
            xml.contains(r#"<testcase name="a" classname="deploy" time="1.500">"#),
            "{xml}"
        );
        assert!(!dir.path().join("junit.xml.tmp").exists());
        validate(&xml);
    }

    #[test]
    fn xml_safe_strips_escapes_and_forbidden_characters() {
        for (input, expected) in [
            ("plain\ttext\r\n", "plain\ttext\r\n"),
            ("\u{1b}[1;31merror\u{1b}[0m: x", "error: x"),
            ("\u{1b}[?25l\u{1b}[2K\u{1b}[1Gok", "ok"),
            (
                "\u{1b}]8;;https://example.com\u{7}link\u{1b}]8;;\u{1b}\\",
                "link",
            ),
            ("\u{1b}]0;title\u{1b}\\after", "after"),
            ("\u{1b}]unterminated\nnext line", "\nnext line"),
            (
                "\u{1b}(Bcharset \u{1b}=keypad \u{1b}Mup",
                "charset keypad up",
            ),
            ("stray escape at end\u{1b}", "stray escape at end"),
            (
                "nul\0bel\u{7}del\u{7f}c1\u{85}",
                "nul\u{FFFD}bel\u{FFFD}del\u{FFFD}c1\u{FFFD}",
            ),
            // An 8-bit CSI is an escape, as in the terminal, and a secret around one is masked
            // as it reads.
            ("c1 csi \u{9b}1mred\u{9b}", "c1 csi red"),
            (
                "\u{FFFE}\u{FFFF}\u{FDD0}\u{10FFFF}\u{FFFD}",
                "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}",
            ),
            ("]]> <&> \u{1F600} é", "]]> <&> \u{1F600} é"),
        ] {
            assert_eq!(xml_safe(input), expected, "input {input:?}");
        }
        assert_eq!(
            escape("a\"'<>&]]>\n\t\r", true),
            "a&quot;&apos;&lt;&gt;&amp;]]&gt;&#10;&#9;&#13;"
        );
        assert_eq!(escape("a\n\tb", false), "a\n\tb");
    }

    #[test]
    fn clip_cuts_on_character_boundaries() {
        let s = "é".repeat(10);
        assert_eq!(clip(&s, 5, Keep::Start), "éé\n[cut: longer than 5 bytes]");
        assert_eq!(
            clip(&s, 5, Keep::End),
            "[cut: only the last 5 bytes are shown]\néé"
        );
        assert_eq!(clip("short", 5, Keep::Start), "short");
        let r = StageResult {
            tail: vec!["x".repeat(MAX_TEXT * 2)],
            ..result("huge", StageStatus::Failed, None)
        };
        let xml = report(vec![run_started(&["huge"]), RunEventKind::StageFinished(r)]);
        assert!(xml.len() < 3 * MAX_TEXT, "report is {} bytes", xml.len());
    }

    #[test]
    fn every_byte_gives_a_valid_report() {
        let bytes: Vec<u8> = (0..=255).collect();
        let lossy = String::from_utf8_lossy(&bytes);
        let latin1: String = bytes.iter().copied().map(char::from).collect();
        let ansi = "\u{1b}[31mred\u{1b}[0m \u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\";
        let nasty = format!("{lossy}{latin1}{ansi} ]]> \u{FFFE}\u{FFFF} \"'&<>");
        // `&#0;` is not well-formed even as a reference; every other character is, as one.
        let refs: String = nasty
            .chars()
            .filter(|&c| c != '\0')
            .map(|c| format!("&#{};", c as u32))
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let junit = dir.path().join("nasty.xml");
        let text = format!(
            r#"<testsuite name="{refs}"><testcase name="{refs}"><failure message="{refs}">{refs}</failure><system-out>{refs}</system-out></testcase></testsuite>"#
        );
        fs::write(&junit, text).expect("write fixture");
        let failed = CaseStatus::Failed {
            message: nasty.clone(),
            body: nasty.clone(),
        };
        let xml = report(vec![
            run_started(&[&nasty]),
            RunEventKind::StageFinished(StageResult {
                tail: vec![nasty.clone(); 3],
                failed_attempts: vec![attempt(1, &nasty)],
                cases: vec![CaseResult {
                    output: nasty.clone(),
                    ..case(&nasty, failed, Some((&nasty, 1, 2)))
                }],
                junit_files: vec![junit],
                ..result(&nasty, StageStatus::Failed, Some(&nasty))
            }),
        ]);
        assert!(
            xml.contains("red")
                && !xml.contains('\u{1b}')
                && !xml.contains('\0')
                && !xml.contains("]]>")
        );
        assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
    }

    fn text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            any::<char>().prop_map(String::from),
            Just("\u{1b}[".to_owned()),
            Just("\u{1b}]".to_owned()),
            Just("]]>".to_owned()),
            Just("\r\n".to_owned()),
            Just("&amp;".to_owned()),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn arbitrary_text_gives_a_valid_report(
            pipeline in text(), stage in text(), reason in text(), line in text(),
            name in text(), message in text(), body in text(), timestamp in text(),
        ) {
            let mut run = run_started(&[]);
            if let RunEventKind::RunStarted { pipeline: p, stages, timestamp: t, .. } = &mut run {
                (*p, *t) = (pipeline, timestamp);
                let id = stage.clone();
                stages.push(PlannedStage { name: id.clone(), id, needs: Vec::new(), line: 0, selected: true, group: None });
            }
            let status = CaseStatus::Errored { message, body: body.clone() };
            let case = CaseResult { output: line.clone(), ..case(&name, status, Some((&body, 0, u32::MAX))) };
            let rollback = RollbackResult {
                stage: stage.clone(),
                status: RollbackStatus::Cancelled,
                duration: Duration::MAX,
                reason: Some(reason.clone()),
                tail: vec![line.clone()],
                log: None,
            };
            report(vec![
                run,
                started(&stage),
                RunEventKind::StageOutput { stage: stage.clone(), rollback: false, lines: line.clone() },
                RunEventKind::StageFinished(StageResult {
                    tail: vec![line],
                    failed_attempts: vec![attempt(1, &reason)],
                    cases: vec![case],
                    ..result(&stage, StageStatus::Warned, Some(&reason))
                }),
                RunEventKind::RollbackFinished(rollback),
            ]);
        }

        #[test]
        fn damaged_junit_files_give_a_valid_report(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = [PYTEST, NEXTEST].concat().into_bytes();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(cut.index(bytes.len()) + 1);
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("damaged.xml");
            fs::write(&path, bytes).expect("write fixture");
            let r = StageResult { junit_files: vec![path], ..result("test", StageStatus::Passed, None) };
            report(vec![run_started(&["test"]), RunEventKind::StageFinished(r)]);
        }
    }
}
