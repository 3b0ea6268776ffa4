//! The run as a human reads it on the terminal.
//!
//! The main type is [`TerminalReporter`]. It renders [`RunEvent`]s to an injected writer (stderr
//! in production) in one of two modes. [`TerminalMode::Plain`] is for CI logs and pipes: it only
//! appends, and every output line carries its stage as a prefix so that parallel stages stay
//! readable when their lines interleave. [`TerminalMode::Live`] is for a terminal: result lines
//! scroll up while a block below them, redrawn in place, shows each running stage with a spinner,
//! its elapsed time and its latest output line. Both modes end with the same summary, which names
//! the first failure and shows the tail of its log, because the last thing printed in a parallel
//! run is rarely the cause of its failure.
//!
//! Text from stages is untrusted. Escape sequences and control characters are removed before it is
//! shown (colour codes survive in plain mode when colour is on), so a stage can neither move the
//! cursor nor break the live block.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::runner::events::StageNames;
use crate::runner::events::{
    RollbackResult, RollbackStatus, RunEvent, RunEventKind, RunStatus, StageResult, StageStatus,
};
use crate::text::{Escape, plural};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// A block taller than the screen cannot be moved over and would leave copies of itself behind,
/// so running stages beyond this are folded into one row.
const MAX_BLOCK_ROWS: usize = 10;
/// Used when the caller could not learn the terminal's width and passed zero.
const FALLBACK_WIDTH: usize = 80;
const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";

/// How the terminal can be written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TerminalMode {
    /// stderr is a terminal `width` columns wide: redraw a block of running stages in place.
    Live { width: usize },
    /// CI logs and pipes: append whole lines, never move the cursor.
    Plain,
}

/// Whether to colour output. `--color always` and `never` decide; `auto` follows
/// <https://no-color.org> (a non-empty `NO_COLOR` turns it off) and <https://bixense.com/clicolors>
/// (a `CLICOLOR_FORCE` other than empty or `0` turns it on off a terminal), and otherwise colours
/// a terminal that is not `TERM=dumb`. `env` reads a variable.
pub(crate) fn color_enabled(
    choice: crate::cli::ColorChoice,
    is_tty: bool,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> bool {
    use crate::cli::ColorChoice;
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR").is_some() => false,
        ColorChoice::Auto if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") => true,
        ColorChoice::Auto => is_tty && env("TERM").is_none_or(|t| t != "dumb"),
    }
}

/// SGR colour codes; `PLAIN` leaves text as it is.
const PLAIN: &str = "";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const RED: &str = "31";
const DIM: &str = "2";
const CYAN: &str = "36";

/// A stage or rollback in the live block.
struct Running {
    stage: String,
    since: Duration,
    max_attempts: u32,
    /// Shown before the latest line: "rolling back", "retrying in 1s", "attempt 2/3".
    note: Option<String>,
    latest: String,
    /// Output lines so far, for the progress rows of a view that does not stream output.
    lines: u64,
    /// When a progress row last told of it (or it started).
    reported: Duration,
}

/// How often a view that does not stream output (GitHub mode, where each stage's output is one
/// group written when it ends) says that a long stage still runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Renders a run for a human; see the module documentation.
pub(crate) struct TerminalReporter {
    out: Box<dyn Write + Send>,
    mode: TerminalMode,
    color: bool,
    /// The longest stage name of the plan, so that prefixes and result lines line up.
    id_width: usize,
    names: StageNames,
    unselected: HashSet<String>,
    /// Matrix stages as written in the file, each with its combinations' ids, in plan order.
    groups: Vec<(String, Vec<String>)>,
    run_dir: Option<PathBuf>,
    /// The latest time since the run started that an event or a tick reported.
    now: Duration,
    running: Vec<Running>,
    /// Every stage result in the order stages finished.
    finished: Vec<StageResult>,
    /// Index in `finished` of the first failure, the one that aborted the run.
    first_failure: Option<usize>,
    rollbacks: Vec<RollbackResult>,
    /// The rows of the live block currently on screen, just above the cursor.
    drawn: Vec<String>,
    cursor_hidden: bool,
    /// Whether plain mode prints every output line.
    stream_output: bool,
    /// The stage whose question is on screen ([`RunEventKind::Prompt`]): the live block is off
    /// the screen and every other line waits in `held`, so that nothing is written between the
    /// question and the person's answer.
    prompting: Option<String>,
    held: String,
}

impl TerminalReporter {
    pub(crate) fn new(out: Box<dyn Write + Send>, mode: TerminalMode, color: bool) -> Self {
        TerminalReporter {
            out,
            mode,
            color,
            id_width: 0,
            names: StageNames::default(),
            unselected: HashSet::new(),
            groups: Vec::new(),
            run_dir: None,
            now: Duration::ZERO,
            running: Vec::new(),
            finished: Vec::new(),
            first_failure: None,
            rollbacks: Vec::new(),
            drawn: Vec::new(),
            cursor_hidden: false,
            stream_output: true,
            prompting: None,
            held: String::new(),
        }
    }

    /// Leaves stage output out of the plain view; in GitHub mode each stage's output is written
    /// as one collapsible group by the GitHub reporter instead.
    pub(crate) fn without_output(mut self) -> Self {
        self.stream_output = false;
        self
    }

    /// Renders one event. Each call writes whole lines in a single write, so a reader never sees
    /// half a line or half a redraw.
    pub(crate) fn handle(&mut self, event: &RunEvent) -> io::Result<()> {
        self.now = self.now.max(event.elapsed);
        let live = self.mode != TerminalMode::Plain;
        let mut text = String::new();
        match &event.kind {
            RunEventKind::RunStarted {
                run_id,
                pipeline,
                run_dir,
                stages,
                concurrency,
                ..
            } => {
                self.names = StageNames::new(stages);
                self.id_width = stages
                    .iter()
                    .map(|s| s.name.chars().count())
                    .max()
                    .unwrap_or(0);
                self.unselected = stages
                    .iter()
                    .filter(|s| !s.selected)
                    .map(|s| s.id.clone())
                    .collect();
                self.groups.clear();
                for stage in stages.iter().filter(|s| s.selected) {
                    let Some(group) = &stage.group else { continue };
                    match self.groups.iter_mut().find(|(g, _)| g == group) {
                        Some((_, ids)) => ids.push(stage.id.clone()),
                        None => self.groups.push((group.clone(), vec![stage.id.clone()])),
                    }
                }
                self.run_dir = Some(run_dir.clone());
                let selected = stages.len() - self.unselected.len();
                let count = if selected == stages.len() {
                    plural(selected, "stage")
                } else {
                    format!("{selected} of {} stages", stages.len())
                };
                push_line(
                    &mut text,
                    &format!(
                        "running `{pipeline}`: {count}, at most {concurrency} at once, run `{run_id}`"
                    ),
                );
            }
            RunEventKind::StageStarted {
                stage,
                attempt,
                max_attempts,
                ..
            } => {
                let note = (*attempt > 1).then(|| format!("attempt {attempt}/{max_attempts}"));
                if !live {
                    let row = self.row(PLAIN, "▶", stage, note.as_deref().unwrap_or(""), "");
                    push_line(&mut text, &row);
                }
                let entry = self.running_entry(stage, event.elapsed);
                entry.max_attempts = *max_attempts;
                entry.note = note;
                entry.latest.clear();
            }
            RunEventKind::StageOutput { stage, lines, .. } if live => {
                let latest = lines
                    .split_terminator('\n')
                    .rev()
                    .map(|line| sanitize(line, false))
                    .find(|line| !line.is_empty());
                if let (Some(entry), Some(latest)) =
                    (self.running.iter_mut().find(|r| r.stage == *stage), latest)
                {
                    entry.latest = latest;
                }
                // The block is redrawn on the next tick, so a stage that prints thousands of
                // lines a second costs one redraw per tick rather than one per line.
                return Ok(());
            }
            RunEventKind::StageOutput {
                stage,
                lines,
                rollback: false,
            } if !self.stream_output => {
                let count = lines.split_terminator('\n').count() as u64;
                let latest = lines
                    .split_terminator('\n')
                    .rev()
                    .map(|line| sanitize(line, false))
                    .find(|line| !line.is_empty());
                if let Some(entry) = self.running.iter_mut().find(|r| r.stage == *stage) {
                    entry.lines += count;
                    if let Some(latest) = latest {
                        entry.latest = latest;
                    }
                }
                return Ok(());
            }
            RunEventKind::StageOutput { .. } if !self.stream_output => return Ok(()),
            RunEventKind::StageOutput {
                stage,
                rollback,
                lines,
            } => {
                let name = self.names.get(stage);
                let label = if *rollback {
                    format!("{name}.rollback")
                } else {
                    name.to_owned()
                };
                let prefix = self.paint(DIM, &format!("{label:<w$} |", w = self.id_width));
                for line in lines.split_terminator('\n') {
                    let line = sanitize(line, self.color);
                    let sep = if line.is_empty() { "" } else { " " };
                    text.push_str(&format!("{prefix}{sep}{line}\n"));
                }
            }
            RunEventKind::StageRetrying {
                stage,
                attempt,
                reason,
                retry_in,
                ..
            } => {
                let entry = self.running.iter_mut().find(|r| r.stage == *stage);
                let of = match entry.as_ref().map(|r| r.max_attempts) {
                    Some(max) if max > 0 => format!("/{max}"),
                    _ => String::new(),
                };
                let wait = format_duration(*retry_in);
                if let Some(entry) = entry {
                    entry.note = Some(format!("retrying in {wait}"));
                }
                let word = format!("attempt {attempt}{of} failed");
                let rest = format!(": {}; retrying in {wait}", sanitize(reason, false));
                push_line(&mut text, &self.row(YELLOW, "↻", stage, &word, &rest));
            }
            RunEventKind::StageFinished(result) => {
                self.running.retain(|r| r.stage != result.stage);
                if result.status == StageStatus::Failed && self.first_failure.is_none() {
                    self.first_failure = Some(self.finished.len());
                }
                push_line(&mut text, &self.result_line(result));
                for warning in &result.warnings {
                    push_line(&mut text, &self.warning_line(&result.stage, warning));
                }
                self.finished.push(result.clone());
            }
            RunEventKind::RollbackStarted { stage, .. } => {
                if !live {
                    push_line(&mut text, &self.row(PLAIN, "↺", stage, "rolling back", ""));
                }
                let entry = self.running_entry(stage, event.elapsed);
                entry.note = Some("rolling back".to_owned());
                entry.latest.clear();
            }
            RunEventKind::RollbackFinished(result) => {
                self.running.retain(|r| r.stage != result.stage);
                push_line(&mut text, &self.rollback_line(result));
                self.rollbacks.push(result.clone());
            }
            RunEventKind::Prompt {
                stage,
                text: question,
            } => {
                return self.show_prompt(stage, question);
            }
            RunEventKind::PromptClosed { stage, answered } => {
                if self.prompting.as_deref() != Some(stage.as_str()) {
                    return Ok(());
                }
                self.prompting = None;
                if !answered {
                    // The question's line has no line break yet.
                    text.push('\n');
                }
                text.push_str(&std::mem::take(&mut self.held));
            }
            RunEventKind::RunFinished { status, duration } => {
                self.running.clear();
                self.prompting = None;
                text = std::mem::take(&mut self.held);
                text.push_str(&self.summary(*status, *duration));
                return self.emit(&text, true);
            }
        }
        self.emit(&text, false)
    }

    /// Redraws the live block so spinners turn and elapsed times count; a no-op in plain mode.
    /// `elapsed` is the time since the run started, on the same clock as [`RunEvent::elapsed`].
    pub(crate) fn tick(&mut self, elapsed: Duration) -> io::Result<()> {
        self.now = self.now.max(elapsed);
        if !self.stream_output {
            let text = self.progress_rows();
            return self.emit(&text, false);
        }
        self.emit("", false)
    }

    /// In a view without stage output: a row for each stage that has run [`PROGRESS_EVERY`]
    /// since it started or was last reported, with its elapsed time, how many lines it printed
    /// and the latest one, so a long stage is not silence for minutes.
    fn progress_rows(&mut self) -> String {
        let now = self.now;
        let mut text = String::new();
        let due: Vec<usize> = (0..self.running.len())
            .filter(|&i| now.saturating_sub(self.running[i].reported) >= PROGRESS_EVERY)
            .collect();
        for i in due {
            self.running[i].reported = now;
            let r = &self.running[i];
            let mut rest = format!(
                "{}, {}",
                format_duration(now.saturating_sub(r.since)),
                plural(usize::try_from(r.lines).unwrap_or(usize::MAX), "line")
            );
            if !r.latest.is_empty() {
                // The runner reads legacy `##[command]`s anywhere in a line.
                rest = format!("{rest}, latest: {}", r.latest.replace("##[", "## ["));
            }
            let row = self.row(DIM, "…", &r.stage, "still running ", &rest);
            push_line(&mut text, &row);
        }
        text
    }

    fn running_entry(&mut self, stage: &str, since: Duration) -> &mut Running {
        let index = match self.running.iter().position(|r| r.stage == stage) {
            Some(index) => index,
            None => {
                self.running.push(Running {
                    stage: stage.to_owned(),
                    since,
                    max_attempts: 0,
                    note: None,
                    latest: String::new(),
                    lines: 0,
                    reported: since,
                });
                self.running.len() - 1
            }
        };
        &mut self.running[index]
    }

    /// Takes the live block off the screen, gives the cursor back and writes the question
    /// (masked and made safe by then), which ends without a line break: the person answers on
    /// its line. Until the question is closed, [`TerminalReporter::emit`] holds every line.
    fn show_prompt(&mut self, stage: &str, question: &str) -> io::Result<()> {
        if self.prompting.is_some() {
            // One question at a time: a second waits in line with the held output.
            let text: String = question
                .lines()
                .map(|l| format!("{}\n", sanitize(l, false)))
                .collect();
            self.held.push_str(&text);
            return Ok(());
        }
        let mut buf = clear_block(self.drawn.len());
        self.drawn.clear();
        if self.cursor_hidden {
            buf.push_str(SHOW_CURSOR);
            self.cursor_hidden = false;
        }
        let lines: Vec<String> = question.split('\n').map(|l| sanitize(l, false)).collect();
        buf.push_str(&lines.join("\n"));
        buf.push(' ');
        self.prompting = Some(stage.to_owned());
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }

    /// Writes `text` (whole lines). While a question is on screen the text is held instead,
    /// and written when it is closed. In live mode the block is taken off the screen first and
    /// drawn again below the new lines; `finish` leaves it off and gives the cursor back.
    fn emit(&mut self, text: &str, finish: bool) -> io::Result<()> {
        if self.prompting.is_some() && !finish {
            self.held.push_str(text);
            return Ok(());
        }
        let TerminalMode::Live { width } = self.mode else {
            if text.is_empty() {
                return Ok(());
            }
            self.out.write_all(text.as_bytes())?;
            return self.out.flush();
        };
        let rows = self.block_rows(width);
        if text.is_empty() && rows == self.drawn && !finish {
            return Ok(());
        }
        let mut buf = String::new();
        if !rows.is_empty() && !self.cursor_hidden {
            buf.push_str(HIDE_CURSOR);
            self.cursor_hidden = true;
        }
        buf.push_str(&clear_block(self.drawn.len()));
        buf.push_str(text);
        for row in &rows {
            buf.push_str(row);
            buf.push('\n');
        }
        if finish && self.cursor_hidden {
            buf.push_str(SHOW_CURSOR);
            self.cursor_hidden = false;
        }
        self.drawn = rows;
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }

    fn block_rows(&self, width: usize) -> Vec<String> {
        let width = if width == 0 { FALLBACK_WIDTH } else { width };
        // The last column stays free: a row that fills it makes some terminals wrap, and one
        // wrapped row would make the cursor-up count miss the top of the block.
        let budget = width.saturating_sub(1);
        let frame = SPINNER[(self.now.as_millis() / 100 % SPINNER.len() as u128) as usize];
        let frame = self.paint(CYAN, &frame.to_string());
        let folded = self.running.len() > MAX_BLOCK_ROWS;
        let shown = self.running.len().min(MAX_BLOCK_ROWS - usize::from(folded));
        let mut rows: Vec<String> = (self.running[..shown].iter())
            .map(|r| {
                let elapsed = format_duration(self.now.saturating_sub(r.since));
                let name = self.names.get(&r.stage);
                let mut rest = format!("{name:<w$}  {elapsed:>5}", w = self.id_width);
                for part in r.note.iter().chain([&r.latest]).filter(|p| !p.is_empty()) {
                    rest = format!("{rest}  {part}");
                }
                let rest = fit(&rest, budget.saturating_sub(2));
                format!("{frame} {}", rest.trim_end())
            })
            .collect();
        if folded {
            let more = format!("  … and {} more running", self.running.len() - shown);
            rows.push(fit(&more, budget));
        }
        rows
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// One line about a stage: `{symbol} {stage}  {word}{rest}`, with the symbol and the status
    /// word in colour (the whole line dimmed for stages that were skipped or cancelled).
    fn row(&self, paint: &str, symbol: &str, stage: &str, word: &str, rest: &str) -> String {
        let stage = self.names.get(stage);
        if word.is_empty() && rest.is_empty() {
            return format!("{symbol} {stage}");
        }
        let line = |symbol: &str, word: &str| {
            format!("{symbol} {stage:<w$}  {word}{rest}", w = self.id_width)
        };
        if paint == DIM {
            self.paint(DIM, &line(symbol, word))
        } else {
            line(&self.paint(paint, symbol), &self.paint(paint, word))
        }
    }

    fn result_line(&self, result: &StageResult) -> String {
        let (paint, symbol, word) = match result.status {
            StageStatus::Passed => (GREEN, "✓", "passed"),
            // An allowed failure reads as a warning, never as a pass: other runners show a
            // green tick or a red cross there, and users complain of both.
            StageStatus::Warned => (YELLOW, "!", "warning (allowed failure)"),
            StageStatus::Failed => (RED, "✗", "failed"),
            StageStatus::Cancelled => (DIM, "⊘", "cancelled"),
            StageStatus::Skipped => (DIM, "−", "skipped"),
        };
        let mut rest = match (result.status, result.attempts) {
            (_, 0 | 1) | (StageStatus::Cancelled | StageStatus::Skipped, _) => String::new(),
            (StageStatus::Passed, n) => format!(" on attempt {n}"),
            (_, n) => format!(" after {n} attempts"),
        };
        if let Some(reason) = &result.reason {
            rest.push_str(&format!(": {}", sanitize(reason, false)));
        }
        if result.attempts > 0 {
            rest.push_str(&format!("  {}", format_duration(result.duration)));
        }
        self.row(paint, symbol, &result.stage, word, &rest)
    }

    fn rollback_line(&self, result: &RollbackResult) -> String {
        let (paint, symbol, word) = match result.status {
            RollbackStatus::Passed => (GREEN, "↺", "rolled back"),
            RollbackStatus::Failed => (RED, "✗", "rollback failed"),
            RollbackStatus::Cancelled => (DIM, "⊘", "rollback cancelled"),
        };
        let mut rest = String::new();
        if let Some(reason) = &result.reason {
            rest.push_str(&format!(": {}", sanitize(reason, false)));
        }
        rest.push_str(&format!("  {}", format_duration(result.duration)));
        self.row(paint, symbol, &result.stage, word, &rest)
    }

    fn warning_line(&self, stage: &str, warning: &str) -> String {
        let name = self.names.get(stage);
        format!(
            "{} {name}: {}",
            self.paint(YELLOW, "! warning:"),
            sanitize(warning, false)
        )
    }

    fn summary(&self, status: RunStatus, duration: Duration) -> String {
        let mut s = String::new();
        let warned = self.count(StageStatus::Warned);
        self.list(&mut s, "warnings:", |_, r| r.status == StageStatus::Warned);
        let notes: Vec<String> = self
            .finished
            .iter()
            .flat_map(|r| r.warnings.iter().map(|w| self.warning_line(&r.stage, w)))
            .collect();
        if !notes.is_empty() {
            if !s.contains("warnings:") {
                push_line(&mut s, "warnings:");
            }
            for note in notes {
                push_line(&mut s, &format!("  {note}"));
            }
        }
        if let Some(first) = self.first_failure {
            let cause = &self.finished[first];
            self.list(&mut s, "root cause:", |i, _| i == first);
            push_tail(&mut s, &cause.tail, cause.log.as_ref());
            // Each reason names the failure it follows from; the list only gathers them, so a
            // `--keep-going` run with several failures is still described truthfully.
            let title = format!(
                "cancelled and skipped after `{}` failed:",
                self.names.get(&cause.stage)
            );
            self.list(&mut s, &title, |i, r| {
                i > first
                    && matches!(r.status, StageStatus::Cancelled | StageStatus::Skipped)
                    && !self.unselected.contains(&r.stage)
            });
            self.list(&mut s, "also failed:", |i, r| {
                i != first && r.status == StageStatus::Failed
            });
        }
        for (i, result) in self.rollbacks.iter().enumerate() {
            if i == 0 {
                s.push_str("rollbacks:\n");
            }
            push_line(&mut s, &format!("  {}", self.rollback_line(result)));
            if result.status != RollbackStatus::Passed {
                push_tail(&mut s, &result.tail, result.log.as_ref());
            }
        }
        for line in self.matrix_lines() {
            push_line(&mut s, &line);
        }
        if status == RunStatus::Interrupted {
            let line = match self.count(StageStatus::Cancelled) {
                0 => "interrupted".to_owned(),
                n => format!("interrupted: cancelled {}", plural(n, "running stage")),
            };
            push_line(&mut s, &line);
        }

        let counts: Vec<String> = [
            (StageStatus::Passed, "passed"),
            (StageStatus::Failed, "failed"),
            (StageStatus::Warned, "warning"),
            (StageStatus::Skipped, "skipped"),
            (StageStatus::Cancelled, "cancelled"),
        ]
        .into_iter()
        .filter_map(|(status, word)| match self.count(status) {
            0 => None,
            n if status == StageStatus::Warned => Some(plural(n, word)),
            n => Some(format!("{n} {word}")),
        })
        .collect();
        let counts = if counts.is_empty() {
            "no stage ran".to_owned()
        } else {
            counts.join(", ")
        };
        let (paint, symbol, label) = match status {
            RunStatus::Passed if warned == 0 => (GREEN, "✓", "run passed"),
            RunStatus::Passed => (YELLOW, "!", "run passed with warnings"),
            RunStatus::Failed => (RED, "✗", "run failed"),
            RunStatus::Interrupted => (YELLOW, "⊘", "run interrupted"),
        };
        let (symbol, label) = (self.paint(paint, symbol), self.paint(paint, label));
        let duration = format_duration(duration);
        let mut out = if s.is_empty() {
            "\n".to_owned()
        } else {
            format!("\n{s}\n")
        };
        push_line(
            &mut out,
            &format!("{symbol} {label}: {counts} in {duration}"),
        );
        if let (Some(dir), false) = (&self.run_dir, paint == GREEN) {
            push_line(&mut out, &format!("logs: `{}`", dir.display()));
        }
        out
    }

    /// One line per matrix stage: how its combinations ended, `matrix test: 4 combinations, 3
    /// passed, 1 failed`.
    fn matrix_lines(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|(group, ids)| {
                let mut counts: Vec<(&str, usize)> = Vec::new();
                for id in ids {
                    let word = match self.finished.iter().find(|r| r.stage == *id) {
                        Some(r) => match r.status {
                            StageStatus::Passed => "passed",
                            StageStatus::Warned => "warned",
                            StageStatus::Failed => "failed",
                            StageStatus::Skipped => "skipped",
                            StageStatus::Cancelled => "cancelled",
                        },
                        None => "not run",
                    };
                    match counts.iter_mut().find(|(w, _)| *w == word) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((word, 1)),
                    }
                }
                let counts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
                format!(
                    "matrix {group}: {}, {}",
                    plural(ids.len(), "combination"),
                    counts.join(", ")
                )
            })
            .collect()
    }

    /// Appends, under `title`, the result line of every finished stage that `pick` chooses by
    /// its finishing order and result; nothing at all when it chooses none.
    fn list(&self, s: &mut String, title: &str, pick: impl Fn(usize, &StageResult) -> bool) {
        let picked = self
            .finished
            .iter()
            .enumerate()
            .filter(|&(i, r)| pick(i, r));
        for (n, (_, result)) in picked.enumerate() {
            if n == 0 {
                push_line(s, title);
            }
            push_line(s, &format!("  {}", self.result_line(result)));
        }
    }

    fn count(&self, status: StageStatus) -> usize {
        self.finished.iter().filter(|r| r.status == status).count()
    }
}

impl Drop for TerminalReporter {
    /// A run that ends without `RunFinished` (an error in the caller) must not leave a stale
    /// block and a hidden cursor behind. Errors are ignored: there is no one left to tell.
    fn drop(&mut self) {
        if self.drawn.is_empty() && !self.cursor_hidden {
            return;
        }
        let mut buf = clear_block(self.drawn.len());
        if self.cursor_hidden {
            buf.push_str(SHOW_CURSOR);
        }
        let _ = self.out.write_all(buf.as_bytes());
        let _ = self.out.flush();
    }
}

fn clear_block(rows: usize) -> String {
    if rows == 0 {
        String::new()
    } else {
        format!("\x1b[{rows}A\x1b[J")
    }
}

fn push_line(buf: &mut String, line: &str) {
    buf.push_str(line.trim_end());
    buf.push('\n');
}

fn push_tail(buf: &mut String, tail: &[String], log: Option<&PathBuf>) {
    for line in tail {
        push_line(buf, &format!("    | {}", sanitize(line, false)));
    }
    if let Some(log) = log {
        push_line(buf, &format!("    log: `{}`", log.display()));
    }
}

/// `0.3s`, `12s`, `12.3s`, `2m05s`, `1h02m`: tenths only while they still mean something.
fn format_duration(duration: Duration) -> String {
    let tenths = (duration.as_millis() + 50) / 100;
    if tenths < 600 {
        return match (tenths / 10, tenths % 10) {
            (secs, 0) => format!("{secs}s"),
            (secs, tenth) => format!("{secs}.{tenth}s"),
        };
    }
    let secs = (duration.as_millis() + 500) / 1000;
    if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    }
}

/// Makes one line of stage output safe to show. A carriage return inside a line is a progress bar
/// redrawing itself; a terminal would show what was drawn last, so only that part is kept (a
/// trailing `\r` from CRLF is dropped). Escape sequences (CSI, OSC, DCS and the like, in their
/// 7-bit and 8-bit forms) and control characters other than tab are removed, as are bidi overrides
/// that could make the text read differently from what it is. With `keep_sgr`, colour sequences
/// are kept and a reset is added so colour cannot leak into the next line.
fn sanitize(line: &str, keep_sgr: bool) -> String {
    // Most output is plain printable ASCII; it needs no scan by character (a stage printing
    // gigabytes spent most of portcullis's time here).
    if line
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) || b == b'\t')
    {
        return line.trim_end().to_owned();
    }
    let line = line.trim_end_matches('\r');
    let line = line.rsplit('\r').next().unwrap_or(line);
    let mut out = String::with_capacity(line.len());
    let mut had_sgr = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        match crate::text::escape_at(rest.as_bytes()) {
            Escape::Complete(n) => {
                let (seq, after) = match (rest.get(..n), rest.get(n..)) {
                    (Some(seq), Some(after)) => (seq, after),
                    _ => ("", &rest[c.len_utf8()..]),
                };
                let is_sgr = seq
                    .strip_prefix("\x1b[")
                    .and_then(|s| s.strip_suffix('m'))
                    .is_some_and(|params| {
                        params
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == ';' || c == ':')
                    });
                if keep_sgr && is_sgr {
                    out.push_str(seq);
                    had_sgr = true;
                }
                rest = after;
                continue;
            }
            Escape::Incomplete => break,
            Escape::None => {}
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '\t' => out.push('\t'),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.truncate(out.trim_end().len());
    if had_sgr {
        out.push_str("\x1b[0m");
    }
    out
}

/// Cuts sanitised text to `budget` columns, ending in `…` when something was cut. Tabs become
/// spaces to the next multiple of 8.
fn fit(text: &str, budget: usize) -> String {
    let mut expanded = String::with_capacity(text.len());
    let mut columns = 0;
    for c in text.chars() {
        if c == '\t' {
            let spaces = 8 - columns % 8;
            expanded.extend(std::iter::repeat_n(' ', spaces));
            columns += spaces;
        } else {
            expanded.push(c);
            columns += char_width(c);
        }
    }
    if columns <= budget {
        return expanded;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in expanded.chars() {
        used += char_width(c);
        if used + 1 > budget {
            break;
        }
        out.push(c);
    }
    if budget > 0 {
        out.push('…');
    }
    out
}

/// Columns a character takes. Without a Unicode width table this is an estimate: it knows the
/// common wide (East Asian, emoji) and zero-width ranges, and errs towards wide where unsure
/// only for emoji, since overestimating merely truncates while underestimating wraps the row.
fn char_width(c: char) -> usize {
    match u32::from(c) {
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF => 0,
        0x200B..=0x200F | 0x2060..=0x2064 | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F | 0xFEFF => 0,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x4DBF | 0x4E00..=0xA4CF => 2,
        0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 => 2,
        0xFFE0..=0xFFE6 | 0x1F000..=0x1FAFF | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::runner::events::{PlannedStage, RunEventKind as K, StageStatus as S};

    /// A writer the test keeps a handle on after the reporter takes it.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn ev(ms: u64, kind: K) -> RunEvent {
        RunEvent {
            elapsed: Duration::from_millis(ms),
            kind,
        }
    }

    fn run_started(ids: &[&str]) -> K {
        let stage = |id: &&str| PlannedStage {
            id: (*id).into(),
            name: (*id).into(),
            needs: Vec::new(),
            line: 0,
            selected: true,
            group: None,
        };
        K::RunStarted {
            run_id: "r1".into(),
            pipeline: "release".into(),
            file: "portcullis.yml".into(),
            run_dir: ".portcullis/runs/r1".into(),
            stages: ids.iter().map(stage).collect(),
            concurrency: 2,
            timestamp: "2025-01-01T00:00:00Z".into(),
        }
    }

    fn started(stage: &str, attempt: u32, max_attempts: u32) -> K {
        K::StageStarted {
            stage: stage.into(),
            attempt,
            max_attempts,
        }
    }

    fn output(stage: &str, lines: &str) -> K {
        K::StageOutput {
            stage: stage.into(),
            rollback: false,
            lines: lines.into(),
        }
    }

    /// A result after one attempt (none when skipped); `tail` sets two attempts and a tail.
    fn finished(stage: &str, status: S, reason: Option<&str>, ms: u64, tail: &[&str]) -> K {
        let ran = status != S::Skipped;
        K::StageFinished(StageResult {
            stage: stage.into(),
            status,
            duration: Duration::from_millis(ms),
            reason: reason.map(Into::into),
            attempts: if tail.is_empty() { u32::from(ran) } else { 2 },
            failed_attempts: Vec::new(),
            tail: tail.iter().map(|l| (*l).to_owned()).collect(),
            log: ran.then(|| format!(".portcullis/runs/r1/{stage}.log").into()),
            cases: Vec::new(),
            junit_files: Vec::new(),
            outputs: Vec::new(),
            warnings: Vec::new(),
        })
    }

    fn run_finished(status: RunStatus, ms: u64) -> K {
        K::RunFinished {
            status,
            duration: Duration::from_millis(ms),
        }
    }

    fn render(mode: TerminalMode, color: bool, events: &[RunEvent]) -> String {
        let capture = Capture::default();
        let mut reporter = TerminalReporter::new(Box::new(capture.clone()), mode, color);
        for event in events {
            reporter.handle(event).unwrap();
        }
        drop(reporter);
        capture.text()
    }

    /// A failed run with every kind of stage result, a retry and a rollback.
    #[rustfmt::skip]
    fn failed_run() -> Vec<RunEvent> {
        let log = PathBuf::from(".portcullis/runs/r1/lint.rollback.log");
        let retry = K::StageRetrying {
            stage: "test".into(),
            attempt: 1,
            reason: "exit code 1".into(),
            retry_in: Duration::from_secs(1),
        };
        let rolled_back = K::RollbackFinished(RollbackResult {
            stage: "lint".into(),
            status: RollbackStatus::Passed,
            duration: Duration::from_millis(500),
            reason: None,
            tail: Vec::new(),
            log: Some(log.clone()),
        });
        vec![
            ev(0, run_started(&["lint", "test", "flaky", "slow", "deploy"])),
            ev(10, started("lint", 1, 1)),
            ev(20, output("lint", "checking\n")),
            ev(1210, finished("lint", S::Passed, None, 1200, &[])),
            ev(1220, started("flaky", 1, 1)),
            ev(1520, finished("flaky", S::Warned, Some("exit code 1"), 300, &[])),
            ev(1530, started("test", 1, 3)),
            ev(1540, started("slow", 1, 1)),
            ev(1600, output("test", "running 2 tests\n")),
            ev(1610, output("slow", "warming up\r\n")),
            ev(1620, output("test", "test a ... FAILED\n")),
            ev(1900, retry),
            ev(2900, started("test", 2, 3)),
            ev(3000, output("slow", "\n")),
            ev(5630, finished("test", S::Failed, Some("exit code 3"), 4100, &["a", "", "b"])),
            ev(5640, finished("slow", S::Cancelled, Some("`test` failed"), 4100, &[])),
            ev(5650, finished("deploy", S::Skipped, Some("needs `test`, which failed"), 0, &[])),
            ev(5660, K::RollbackStarted { stage: "lint".into() }),
            ev(6160, rolled_back),
            ev(12_300, run_finished(RunStatus::Failed, 12_300)),
        ]
    }

    /// Without streamed output (GitHub mode), a long stage gets a row every 30 s with its time,
    /// its line count and its latest line; a short one gets none.
    #[test]
    fn a_view_without_output_tells_of_long_stages() {
        let capture = Capture::default();
        let mut r = TerminalReporter::new(Box::new(capture.clone()), TerminalMode::Plain, false)
            .without_output();
        for e in [
            ev(0, run_started(&["test", "lint"])),
            ev(0, started("test", 1, 1)),
            ev(0, started("lint", 1, 1)),
            ev(
                5,
                output("test", "compiling\nrunning 45 tests ##[error]x\n"),
            ),
            ev(10, finished("lint", S::Passed, None, 10, &[])),
        ] {
            r.handle(&e).expect("handle");
        }
        r.tick(Duration::from_secs(29)).expect("tick");
        assert!(
            !capture.text().contains("still running"),
            "{}",
            capture.text()
        );
        r.tick(Duration::from_secs(31)).expect("tick");
        let text = capture.text();
        assert_eq!(text.matches("still running").count(), 1, "{text}");
        assert!(
            text.contains(
                "… test  still running 31s, 2 lines, latest: running 45 tests ## [error]x"
            ),
            "{text}"
        );
        assert!(!text.contains("lint  still running"), "{text}");
        r.tick(Duration::from_secs(45)).expect("tick");
        assert_eq!(capture.text().matches("still running").count(), 1);
        r.tick(Duration::from_secs(62)).expect("tick");
        assert_eq!(capture.text().matches("still running").count(), 2);
    }

    #[test]
    fn plain_mode_prints_every_line_and_a_root_cause_summary() {
        let expected = "\
running `release`: 5 stages, at most 2 at once, run `r1`
▶ lint
lint   | checking
✓ lint    passed  1.2s
▶ flaky
! flaky   warning (allowed failure): exit code 1  0.3s
▶ test
▶ slow
test   | running 2 tests
slow   | warming up
test   | test a ... FAILED
↻ test    attempt 1/3 failed: exit code 1; retrying in 1s
▶ test    attempt 2/3
slow   |
✗ test    failed after 2 attempts: exit code 3  4.1s
⊘ slow    cancelled: `test` failed  4.1s
− deploy  skipped: needs `test`, which failed
↺ lint    rolling back
↺ lint    rolled back  0.5s

warnings:
  ! flaky   warning (allowed failure): exit code 1  0.3s
root cause:
  ✗ test    failed after 2 attempts: exit code 3  4.1s
    | a
    |
    | b
    log: `.portcullis/runs/r1/test.log`
cancelled and skipped after `test` failed:
  ⊘ slow    cancelled: `test` failed  4.1s
  − deploy  skipped: needs `test`, which failed
rollbacks:
  ↺ lint    rolled back  0.5s

✗ run failed: 1 passed, 1 failed, 1 warning, 1 skipped, 1 cancelled in 12.3s
logs: `.portcullis/runs/r1`
";
        assert_eq!(render(TerminalMode::Plain, false, &failed_run()), expected);
    }

    #[test]
    fn summary_by_outcome() {
        #[rustfmt::skip]
        let cases: [(&[K], RunStatus, &str); 4] = [
            (
                &[
                    finished("a", S::Failed, Some("exit code 2"), 1000, &[]),
                    finished("b", S::Failed, Some("timed out after 15m"), 2000, &[]),
                ],
                RunStatus::Failed,
                "root cause:\n  ✗ a  failed: exit code 2  1s\n\
                 \x20   log: `.portcullis/runs/r1/a.log`\n\
                 also failed:\n  ✗ b  failed: timed out after 15m  2s\n\n\
                 ✗ run failed: 2 failed in 3s\nlogs: `.portcullis/runs/r1`\n",
            ),
            (
                &[finished("a", S::Warned, Some("exit code 1"), 300, &[])],
                RunStatus::Passed,
                "warnings:\n  ! a  warning (allowed failure): exit code 1  0.3s\n\n\
                 ! run passed with warnings: 1 warning in 3s\nlogs: `.portcullis/runs/r1`\n",
            ),
            (
                &[
                    finished("a", S::Passed, None, 1000, &[]),
                    finished("b", S::Cancelled, Some("interrupted"), 2000, &[]),
                ],
                RunStatus::Interrupted,
                "interrupted: cancelled 1 running stage\n\n\
                 ⊘ run interrupted: 1 passed, 1 cancelled in 3s\nlogs: `.portcullis/runs/r1`\n",
            ),
            (&[], RunStatus::Passed, "✓ run passed: no stage ran in 3s\n"),
        ];
        for (results, status, expected) in cases {
            let mut events = vec![ev(0, run_started(&["a", "b"]))];
            events.extend(results.iter().map(|kind| ev(0, kind.clone())));
            events.push(ev(3000, run_finished(status, 3000)));
            let text = render(TerminalMode::Plain, false, &events);
            let summary = text.split_once("\n\n").map_or("", |(_, summary)| summary);
            assert_eq!(summary, expected, "{text}");
        }
    }

    #[test]
    fn a_matrix_is_summed_up_on_one_line() {
        let ids = ["test (n=1)", "test (n=2)", "test (n=3)", "deploy"];
        let mut started = run_started(&ids);
        if let K::RunStarted { stages, .. } = &mut started {
            for stage in stages.iter_mut().take(3) {
                stage.group = Some("test".into());
            }
        }
        let events = [
            ev(0, started),
            ev(0, finished("test (n=1)", S::Passed, None, 100, &[])),
            ev(
                0,
                finished("test (n=2)", S::Failed, Some("exit code 1"), 100, &[]),
            ),
            ev(
                0,
                finished(
                    "test (n=3)",
                    S::Cancelled,
                    Some("`test (n=2)` failed"),
                    100,
                    &[],
                ),
            ),
            ev(
                0,
                finished(
                    "deploy",
                    S::Skipped,
                    Some("needs `test (n=2)`, which failed"),
                    0,
                    &[],
                ),
            ),
            ev(3000, run_finished(RunStatus::Failed, 3000)),
        ];
        let text = render(TerminalMode::Plain, false, &events);
        assert!(
            text.contains("matrix test: 3 combinations, 1 passed, 1 failed, 1 cancelled\n"),
            "{text}"
        );
    }

    #[test]
    fn plain_output_is_made_safe() {
        let lines = "10%\r50%\r100%\r\n\
                     \x1b[31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07\tok\x07  \n\
                     \x1b[2J\x1b[?25l\u{9b}1Aup\u{202e}txt\x08\x1b(B\n";
        let events = [ev(0, run_started(&["t"])), ev(0, output("t", lines))];
        let plain = render(TerminalMode::Plain, false, &events);
        let expected = "running `release`: 1 stage, at most 2 at once, run `r1`\nt | 100%\nt | red link\tok\nt | uptxt\n";
        assert_eq!(plain, expected);
        let colored = render(TerminalMode::Plain, true, &events);
        let red = "\x1b[2mt |\x1b[0m \x1b[31mred\x1b[0m link\tok\x1b[0m\n";
        assert!(colored.contains(red), "{colored:?}");
        assert!(
            !colored.contains("\x1b[2J") && !colored.contains("\x1b[?25l"),
            "{colored:?}"
        );
    }

    #[test]
    fn no_color_writes_no_escape_at_all_in_plain_mode() {
        let mut events = failed_run();
        events.insert(3, ev(30, output("lint", "\x1b[1;32mok\x1b[0m\n")));
        let text = render(TerminalMode::Plain, false, &events);
        assert!(!text.contains('\x1b'), "{text:?}");
        let colored = render(TerminalMode::Plain, true, &events);
        for expected in [
            "\x1b[31m✗\x1b[0m \x1b[31mrun failed\x1b[0m",
            "\x1b[33m!\x1b[0m flaky   \x1b[33mwarning (allowed failure)\x1b[0m",
            "\x1b[2m− deploy  skipped: needs `test`, which failed\x1b[0m",
        ] {
            assert!(colored.contains(expected), "{expected:?} in {colored:?}");
        }
    }

    #[test]
    fn events_for_unknown_stages_are_rendered_anyway() {
        let events = [
            ev(0, output("ghost", "boo\n")),
            ev(0, finished("ghost", S::Passed, None, 100, &[])),
            ev(0, run_finished(RunStatus::Passed, 100)),
        ];
        let text = render(TerminalMode::Plain, false, &events);
        assert_eq!(
            text,
            "ghost | boo\n✓ ghost  passed  0.1s\n\n✓ run passed: 1 passed in 0.1s\n"
        );
        let live = render(TerminalMode::Live { width: 40 }, false, &events);
        assert_eq!(
            live,
            "✓ ghost  passed  0.1s\n\n✓ run passed: 1 passed in 0.1s\n"
        );
    }

    #[test]
    fn live_block_is_redrawn_in_place_and_cleared_at_the_end() {
        let capture = Capture::default();
        let mode = TerminalMode::Live { width: 40 };
        let mut reporter = TerminalReporter::new(Box::new(capture.clone()), mode, false);
        let events = [
            ev(0, run_started(&["build", "test"])),
            ev(0, started("build", 1, 1)),
            ev(100, started("test", 1, 1)),
            ev(200, output("test", "line one\nline two\n")),
        ];
        for event in &events {
            reporter.handle(event).unwrap();
        }
        reporter.tick(Duration::from_millis(1500)).unwrap();
        // Same spinner frame, same tenth of a second: nothing to redraw.
        reporter.tick(Duration::from_millis(1520)).unwrap();
        reporter
            .handle(&ev(2000, finished("build", S::Passed, None, 2000, &[])))
            .unwrap();
        reporter
            .handle(&ev(3000, run_finished(RunStatus::Passed, 3000)))
            .unwrap();
        let expected = "\
running `release`: 2 stages, at most 2 at once, run `r1`
\x1b[?25l⠋ build     0s
\x1b[1A\x1b[J⠙ build   0.1s
⠙ test      0s
\x1b[2A\x1b[J⠴ build   1.5s
⠴ test    1.4s  line two
\x1b[2A\x1b[J✓ build  passed  2s
⠋ test    1.9s  line two
\x1b[1A\x1b[J
✓ run passed: 1 passed in 3s
\x1b[?25h";
        let text = capture.text();
        assert_eq!(text, expected);
        let after_last_clear = text.rsplit("\x1b[J").next().unwrap();
        assert!(!after_last_clear.contains(SPINNER), "{after_last_clear:?}");
    }

    #[test]
    fn a_question_stands_alone_until_it_is_answered() {
        let capture = Capture::default();
        let mode = TerminalMode::Live { width: 40 };
        let mut reporter = TerminalReporter::new(Box::new(capture.clone()), mode, false);
        for event in [
            ev(0, run_started(&["build", "gate"])),
            ev(0, started("build", 1, 1)),
            ev(0, started("gate", 1, 1)),
        ] {
            reporter.handle(&event).unwrap();
        }
        let question = K::Prompt {
            stage: "gate".into(),
            text: "these wait: cutover\nApprove `gate`? [y/N]".into(),
        };
        reporter.handle(&ev(100, question)).unwrap();
        let shown = capture.text();
        // Nothing is written while the question waits: not a tick, not a result.
        reporter.tick(Duration::from_millis(900)).unwrap();
        reporter
            .handle(&ev(1000, finished("build", S::Passed, None, 1000, &[])))
            .unwrap();
        assert_eq!(capture.text(), shown);
        assert!(
            shown.ends_with("\x1b[?25hthese wait: cutover\nApprove `gate`? [y/N] "),
            "{shown:?}"
        );
        let closed = K::PromptClosed {
            stage: "gate".into(),
            answered: true,
        };
        reporter.handle(&ev(2000, closed)).unwrap();
        let after = capture.text()[shown.len()..].to_owned();
        assert!(
            after.starts_with("\x1b[?25l✓ build  passed  1s\n⠋ gate"),
            "{after:?}"
        );
    }

    #[test]
    fn live_block_neutralises_and_truncates_stage_output() {
        let hostile = "\x1b[2J\x1b[H\x1b]0;title\x07evil\x07\ttab \u{9b}5A界界 ";
        let lines = format!("{hostile}{}\r\n\n", "x".repeat(200));
        let capture = Capture::default();
        let mode = TerminalMode::Live { width: 30 };
        let mut reporter = TerminalReporter::new(Box::new(capture.clone()), mode, false);
        reporter.handle(&ev(0, started("t", 1, 1))).unwrap();
        reporter.handle(&ev(0, output("t", &lines))).unwrap();
        reporter.tick(Duration::from_millis(100)).unwrap();
        let text = capture.text();
        let row = text.rsplit("\x1b[J").next().unwrap();
        assert_eq!(row, "⠙ t   0.1s  evil  tab 界界 x…\n");
        assert_eq!(row.trim_end().chars().map(char_width).sum::<usize>(), 29);
        drop(reporter);
        assert!(
            capture.text().ends_with("\x1b[1A\x1b[J\x1b[?25h"),
            "cursor given back"
        );
    }

    #[test]
    fn live_block_folds_stages_beyond_its_height() {
        let mode = TerminalMode::Live { width: 80 };
        let mut reporter = TerminalReporter::new(Box::new(io::sink()), mode, false);
        for i in 0..12 {
            reporter
                .handle(&ev(0, started(&format!("s{i}"), 1, 1)))
                .unwrap();
        }
        let rows = reporter.block_rows(80);
        assert_eq!(rows.len(), MAX_BLOCK_ROWS);
        assert_eq!(rows[MAX_BLOCK_ROWS - 1], "  … and 3 more running");
    }

    #[test]
    fn write_errors_are_returned() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
        }
        for mode in [TerminalMode::Plain, TerminalMode::Live { width: 80 }] {
            let mut reporter = TerminalReporter::new(Box::new(Broken), mode, true);
            for kind in [run_started(&["a"]), started("a", 1, 1)] {
                let error = reporter.handle(&ev(0, kind)).unwrap_err();
                assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
            }
        }
    }

    #[test]
    fn durations() {
        for (ms, text) in [
            (0, "0s"),
            (40, "0s"),
            (300, "0.3s"),
            (1000, "1s"),
            (12_345, "12.3s"),
            (59_960, "1m00s"),
            (125_000, "2m05s"),
            (3_720_000, "1h02m"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(ms)), text, "{ms}ms");
        }
        assert_eq!(format_duration(Duration::MAX), "5124095576030431h00m");
    }

    #[test]
    fn color_follows_no_color() {
        use crate::cli::ColorChoice::{Always, Auto, Never};
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(color_enabled(Auto, true, &env(&[])));
        assert!(color_enabled(Auto, true, &env(&[("NO_COLOR", "")])));
        assert!(!color_enabled(Auto, true, &env(&[("NO_COLOR", "1")])));
        assert!(!color_enabled(Auto, false, &env(&[])));
        assert!(!color_enabled(Auto, true, &env(&[("TERM", "dumb")])));
        assert!(color_enabled(Auto, false, &env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!color_enabled(
            Auto,
            false,
            &env(&[("CLICOLOR_FORCE", "0")])
        ));
        assert!(!color_enabled(
            Auto,
            false,
            &env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])
        ));
        assert!(color_enabled(Always, false, &env(&[("NO_COLOR", "1")])));
        assert!(!color_enabled(Never, true, &env(&[])));
    }
}
