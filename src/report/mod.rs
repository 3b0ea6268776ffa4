//! Reporters: everything a run shows or writes, built only from `RunEvent`s.
//!
//! The main type is [`Reporters`], which feeds each event to the terminal view and the JUnit
//! report in turn, and drives the live view's clock.

pub(crate) mod github;
pub(crate) mod json;
pub(crate) mod junit;
pub(crate) mod junit_import;
pub(crate) mod metrics;
pub(crate) mod terminal;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::runner::events::RunEvent;
use github::GithubReporter;
use json::JsonSummary;
use junit::JunitReport;
use terminal::TerminalReporter;

/// A report the user asked for that could not be written. Any of them fails the run: a CI job
/// reading a report that is not there would otherwise pass on no evidence.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    #[error("cannot write the JUnit report `{}`: {source}", path.display())]
    Junit {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write `$GITHUB_OUTPUT` (`{}`): {source}", path.display())]
    GithubOutput {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the run summary `{}`: {source}", path.display())]
    SummaryJson {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the outputs file `{}`: {source}", path.display())]
    OutputEnv {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the metrics file `{}`: {source}", path.display())]
    Metrics {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the job summary `$GITHUB_STEP_SUMMARY` (`{}`): {source}", path.display())]
    StepSummary {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ReportError {
    pub(crate) fn help(&self) -> &'static str {
        match self {
            ReportError::SummaryJson { .. } => {
                "check the disk and the run folder under `.portcullis/runs`"
            }
            ReportError::Junit { .. } => {
                "check that the folder of `--junit` is writable and that the path is not a folder"
            }
            ReportError::Metrics { .. } => {
                "check that the folder of `--metrics` (or `metrics:`) exists and is writable"
            }
            ReportError::OutputEnv { .. } => {
                "check that the folder of `--output-env` is writable and that the path is not a folder"
            }
            ReportError::GithubOutput { .. } | ReportError::StepSummary { .. } => {
                "the runner sets this file; check the job's disk and the step's environment"
            }
        }
    }
}

/// How often the live view redraws spinners and elapsed times.
const TICK: Duration = Duration::from_millis(100);

pub(crate) struct Reporters {
    pub(crate) terminal: TerminalReporter,
    pub(crate) junit: JunitReport,
    /// Present in GitHub Actions mode.
    pub(crate) github: Option<GithubReporter>,
    /// `summary.json`.
    pub(crate) json: JsonSummary,
}

impl Reporters {
    /// Consumes events until the runner drops its sender; returns itself so the caller can
    /// write the final reports. A terminal that went away (broken pipe) stops terminal output
    /// but never the run.
    pub(crate) async fn consume(
        mut self,
        mut rx: mpsc::Receiver<RunEvent>,
        start: Instant,
    ) -> Self {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut terminal_ok = true;
        loop {
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { break };
                    if terminal_ok {
                        terminal_ok = self.terminal.handle(&event).is_ok();
                    }
                    self.junit.handle(&event);
                    self.json.handle(&event);
                    if let Some(github) = &mut self.github
                        && github.handle(&event).is_err()
                    {
                        // Stdout went away: the workflow commands have no reader, but the job
                        // summary and `$GITHUB_OUTPUT` are files and are still written.
                        github.stdout_lost();
                    }
                }
                _ = tick.tick() => {
                    if terminal_ok {
                        terminal_ok = self.terminal.tick(start.elapsed()).is_ok();
                    }
                }
            }
        }
        self
    }
}
