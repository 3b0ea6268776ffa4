//! The contract between the runner and the reporters.
//!
//! The main type is [`RunEvent`]. The runner never prints: it emits events, in order, on one
//! channel, and every reporter (terminal, JUnit, GitHub) renders them. Every text an event
//! carries (output lines, tails, reasons, test-case bodies) has been masked by the time a
//! reporter sees it: by [`RunEventKind::masked`], which the emitter applies to every event,
//! or, for streamed output, by the stream masker; so a reporter writes it as it is.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use crate::redact::Redactor;

/// One thing that happened during a run.
#[derive(Debug, Clone)]
pub(crate) struct RunEvent {
    /// Time since the run started.
    pub(crate) elapsed: Duration,
    pub(crate) kind: RunEventKind,
}

#[derive(Debug, Clone)]
pub(crate) enum RunEventKind {
    /// The first event of every run.
    RunStarted {
        run_id: String,
        /// The pipeline's `name:`.
        pipeline: String,
        /// The pipeline file as the user named it.
        file: PathBuf,
        /// `.portcullis/runs/<run-id>`.
        run_dir: PathBuf,
        /// Every stage of the pipeline in file order, selected or not.
        stages: Vec<PlannedStage>,
        concurrency: usize,
        /// Wall-clock start, RFC 3339.
        timestamp: String,
    },
    /// An attempt of a stage started. `attempt` counts from 1.
    StageStarted {
        stage: String,
        attempt: u32,
        max_attempts: u32,
    },
    /// Complete lines a stage printed (stdout and stderr interleaved), each ending in `\n`.
    StageOutput {
        stage: String,
        /// The output of the stage's rollback rather than of the stage.
        rollback: bool,
        lines: String,
    },
    /// An attempt failed and the stage will be retried after `retry_in`.
    StageRetrying {
        stage: String,
        attempt: u32,
        reason: String,
        retry_in: Duration,
    },
    /// A stage ended: it ran (passed, warned, failed, cancelled) or never ran (skipped).
    StageFinished(StageResult),
    /// A rollback of a stage that had passed started (the run failed or was interrupted).
    RollbackStarted {
        stage: String,
    },
    RollbackFinished(RollbackResult),
    /// A stage asks the person at the terminal a question (`uses: approval`): the terminal view
    /// shows `text` on lines of its own, ending with the question and no line break, and holds
    /// every other line back until [`RunEventKind::PromptClosed`].
    Prompt {
        stage: String,
        text: String,
    },
    /// The question of [`RunEventKind::Prompt`] is settled; `answered` says the person typed an
    /// answer (and with it a line break), otherwise the view ends the question's line itself.
    PromptClosed {
        stage: String,
        answered: bool,
    },
    /// The last event of every run.
    RunFinished {
        status: RunStatus,
        duration: Duration,
    },
}

impl RunEventKind {
    /// The event with every secret value in its texts replaced by `***`. Streamed output lines
    /// and tails are left alone: the stream masker produced them.
    pub(crate) fn masked(self, redactor: &Redactor) -> RunEventKind {
        let m = |s: String| match redactor.redact_str(&s) {
            Cow::Borrowed(_) => s,
            Cow::Owned(masked) => masked,
        };
        let mo = |s: Option<String>| s.map(m);
        match self {
            RunEventKind::StageRetrying {
                stage,
                attempt,
                reason,
                retry_in,
            } => RunEventKind::StageRetrying {
                stage,
                attempt,
                reason: m(reason),
                retry_in,
            },
            RunEventKind::StageFinished(mut r) => {
                r.reason = mo(r.reason);
                for a in &mut r.failed_attempts {
                    a.reason = m(std::mem::take(&mut a.reason));
                }
                r.cases = r.cases.into_iter().map(|c| c.masked(redactor)).collect();
                r.outputs = r.outputs.into_iter().map(|(k, v)| (k, m(v))).collect();
                r.warnings = r.warnings.into_iter().map(m).collect();
                RunEventKind::StageFinished(r)
            }
            RunEventKind::RollbackFinished(mut r) => {
                r.reason = mo(r.reason);
                RunEventKind::RollbackFinished(r)
            }
            RunEventKind::Prompt { stage, text } => RunEventKind::Prompt {
                stage,
                text: m(text),
            },
            other => other,
        }
    }
}

impl CaseResult {
    fn masked(mut self, redactor: &Redactor) -> CaseResult {
        let r = |s: &str| redactor.redact_str(s).into_owned();
        self.name = r(&self.name);
        self.output = r(&self.output);
        self.status = match self.status {
            CaseStatus::Failed { message, body } => CaseStatus::Failed {
                message: r(&message),
                body: r(&body),
            },
            CaseStatus::Errored { message, body } => CaseStatus::Errored {
                message: r(&message),
                body: r(&body),
            },
            CaseStatus::Skipped { message } => CaseStatus::Skipped {
                message: r(&message),
            },
            CaseStatus::Passed => CaseStatus::Passed,
        };
        self
    }
}

/// Each stage's name in reports, by id, from the plan of `RunStarted`.
#[derive(Debug, Clone, Default)]
pub(crate) struct StageNames(std::collections::HashMap<String, String>);

impl StageNames {
    pub(crate) fn new(stages: &[PlannedStage]) -> Self {
        StageNames(
            stages
                .iter()
                .map(|s| (s.id.clone(), s.name.clone()))
                .collect(),
        )
    }

    /// The stage's name; an id the plan did not list names itself.
    pub(crate) fn get<'a>(&'a self, id: &'a str) -> &'a str {
        self.0.get(id).map_or(id, String::as_str)
    }
}

/// A stage as the plan sees it, for reporters that draw the whole graph.
#[derive(Debug, Clone)]
pub(crate) struct PlannedStage {
    pub(crate) id: String,
    /// How reports name it: its `name:`, else its id; with ` (id)` added when two stages share
    /// a `name:`, so every report names each stage once and unambiguously.
    pub(crate) name: String,
    /// The stages it needs, by id.
    pub(crate) needs: Vec<String>,
    /// 1-based line of the stage's key in the pipeline file, for annotations.
    pub(crate) line: u32,
    /// False when `--only`, `--skip`, `--from` or `paths:` left it out.
    pub(crate) selected: bool,
    /// The matrix stage it is a combination of, as written in the file.
    pub(crate) group: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct StageResult {
    pub(crate) stage: String,
    pub(crate) status: StageStatus,
    /// Wall time of all attempts together; zero for a stage that never ran.
    pub(crate) duration: Duration,
    /// Why it failed, was cancelled or skipped ("exit code 3", "timed out after 15m",
    /// "needs `test`, which failed"); `None` when it passed.
    pub(crate) reason: Option<String>,
    /// Attempts made; zero for a stage that never ran.
    pub(crate) attempts: u32,
    /// Every failed attempt before the last one, oldest first.
    pub(crate) failed_attempts: Vec<FailedAttempt>,
    /// The last lines of the stage's log (masked), at most [`TAIL_LINES`].
    pub(crate) tail: Vec<String>,
    /// The stage's log file, when it printed anything.
    pub(crate) log: Option<PathBuf>,
    /// Test cases a built-in kind reported (one per port finding, one per DB check).
    pub(crate) cases: Vec<CaseResult>,
    /// JUnit files the stage's `junit:` globs matched, to merge into the report.
    pub(crate) junit_files: Vec<PathBuf>,
    /// Outputs the stage published (`$PORTCULLIS_OUTPUT` or a built-in kind), masked.
    pub(crate) outputs: Vec<(String, String)>,
    /// What the user should know although the stage did not fail (a `junit:` glob that
    /// matched no file).
    pub(crate) warnings: Vec<String>,
}

/// How many log lines a failure shows and the JUnit report keeps.
pub(crate) const TAIL_LINES: usize = 40;

#[derive(Debug, Clone)]
pub(crate) struct FailedAttempt {
    pub(crate) attempt: u32,
    pub(crate) reason: String,
    pub(crate) tail: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StageStatus {
    Passed,
    /// Failed, but `allow-failure` is set: counts as passed for its dependents.
    Warned,
    Failed,
    /// Was running when the run aborted or was interrupted.
    Cancelled,
    /// Never ran; the reason says why.
    Skipped,
}

impl StageStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StageStatus::Passed => "passed",
            StageStatus::Warned => "warning",
            StageStatus::Failed => "failed",
            StageStatus::Cancelled => "cancelled",
            StageStatus::Skipped => "skipped",
        }
    }
}

/// One test case a built-in kind contributes to the JUnit report.
#[derive(Debug, Clone)]
pub(crate) struct CaseResult {
    pub(crate) name: String,
    pub(crate) status: CaseStatus,
    pub(crate) duration: Duration,
    /// Where the finding is, for annotations: file relative to the repository, 1-based line
    /// and column.
    pub(crate) location: Option<(PathBuf, u32, u32)>,
    /// Extra text for `system-out`.
    pub(crate) output: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CaseStatus {
    Passed,
    /// An assertion that did not hold.
    Failed {
        message: String,
        body: String,
    },
    /// The check could not run (SQL error, script crashed).
    Errored {
        message: String,
        body: String,
    },
    Skipped {
        message: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct RollbackResult {
    pub(crate) stage: String,
    pub(crate) status: RollbackStatus,
    pub(crate) duration: Duration,
    pub(crate) reason: Option<String>,
    pub(crate) tail: Vec<String>,
    /// The rollback's log file, when it printed anything.
    pub(crate) log: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RollbackStatus {
    Passed,
    Failed,
    /// Killed by a second interrupt.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunStatus {
    Passed,
    Failed,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl RunStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "cancelled",
        }
    }
}
