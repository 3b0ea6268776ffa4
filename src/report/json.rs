//! `summary.json`: the run as one JSON document, for scripts and dashboards.
//!
//! The main type is [`JsonSummary`], a reporter like the others: it is built only from
//! `RunEvent`s, whose texts are already masked, so no secret reaches the file. The run writes it
//! into the run folder after every other report, and prints it with `run --format json`. The
//! shape is documented in the README ("Machine-readable output") and versioned by `version`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::runner::events::{
    PlannedStage, RollbackResult, RollbackStatus, RunEvent, RunEventKind, RunStatus, StageResult,
};

#[derive(Debug, Default)]
pub(crate) struct JsonSummary {
    run_id: String,
    pipeline: String,
    file: PathBuf,
    run_dir: PathBuf,
    timestamp: String,
    stages: Vec<StageEntry>,
    finished: Option<(RunStatus, Duration)>,
}

#[derive(Debug)]
struct StageEntry {
    planned: PlannedStage,
    /// When its first attempt started, since the run started.
    started: Option<Duration>,
    result: Option<StageResult>,
    rollback: Option<RollbackResult>,
}

impl JsonSummary {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn handle(&mut self, event: &RunEvent) {
        match &event.kind {
            RunEventKind::RunStarted {
                run_id,
                pipeline,
                file,
                run_dir,
                stages,
                timestamp,
                ..
            } => {
                self.run_id.clone_from(run_id);
                self.pipeline.clone_from(pipeline);
                self.file.clone_from(file);
                self.run_dir.clone_from(run_dir);
                self.timestamp.clone_from(timestamp);
                self.stages = stages
                    .iter()
                    .map(|planned| StageEntry {
                        planned: planned.clone(),
                        started: None,
                        result: None,
                        rollback: None,
                    })
                    .collect();
            }
            RunEventKind::StageStarted { stage, .. } => {
                if let Some(entry) = self.entry(stage) {
                    entry.started.get_or_insert(event.elapsed);
                }
            }
            RunEventKind::StageFinished(result) => {
                if let Some(entry) = self.entry(&result.stage) {
                    entry.result = Some(result.clone());
                }
            }
            RunEventKind::RollbackFinished(result) => {
                if let Some(entry) = self.entry(&result.stage) {
                    entry.rollback = Some(result.clone());
                }
            }
            RunEventKind::RunFinished { status, duration } => {
                self.finished = Some((*status, *duration));
            }
            RunEventKind::StageOutput { .. }
            | RunEventKind::StageRetrying { .. }
            | RunEventKind::RollbackStarted { .. }
            | RunEventKind::Prompt { .. }
            | RunEventKind::PromptClosed { .. } => {}
        }
    }

    fn entry(&mut self, id: &str) -> Option<&mut StageEntry> {
        self.stages.iter_mut().find(|s| s.planned.id == id)
    }

    /// The document, given the run's exit code and the JUnit reports written.
    pub(crate) fn to_json(&self, exit_code: u8, junit: &[PathBuf]) -> Value {
        let (status, duration) = self
            .finished
            .map_or((None, None), |(s, d)| (Some(s.as_str()), Some(millis(d))));
        let stages: Vec<Value> = self.stages.iter().map(stage_json).collect();
        json!({
            "version": 1,
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "file": self.file,
            "run_dir": self.run_dir,
            "started_at": self.timestamp,
            "status": status,
            "exit_code": exit_code,
            "duration_ms": duration,
            "junit": junit,
            "stages": stages,
        })
    }

    /// Writes the document to `path` through a temporary file and a rename, readable by the
    /// owner only (it sits in the private run folder).
    pub(crate) fn write_atomic(&self, path: &Path, document: &Value) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let folder = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".summary-")
            .suffix(".tmp")
            .tempfile_in(folder)?;
        let mut text = serde_json::to_vec_pretty(document).map_err(io::Error::other)?;
        text.push(b'\n');
        tmp.as_file_mut().write_all(&text)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn stage_json(entry: &StageEntry) -> Value {
    let planned = &entry.planned;
    let result = entry.result.as_ref();
    let outputs: serde_json::Map<String, Value> = result
        .map(|r| {
            r.outputs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let rollback = entry.rollback.as_ref().map(|r| {
        json!({
            "status": match r.status {
                RollbackStatus::Passed => "passed",
                RollbackStatus::Failed => "failed",
                RollbackStatus::Cancelled => "cancelled",
            },
            "reason": r.reason,
            "duration_ms": millis(r.duration),
            "log": r.log,
        })
    });
    json!({
        "id": planned.id,
        "name": planned.name,
        "needs": planned.needs,
        "matrix": planned.group,
        "selected": planned.selected,
        "status": result.map(|r| r.status.as_str()),
        "reason": result.and_then(|r| r.reason.clone()),
        "started_ms": entry.started.map(millis),
        "duration_ms": result.map(|r| millis(r.duration)),
        "attempts": result.map_or(0, |r| r.attempts),
        "failed_attempts": result.map_or_else(Vec::new, |r| {
            r.failed_attempts
                .iter()
                .map(|a| json!({ "attempt": a.attempt, "reason": a.reason }))
                .collect()
        }),
        "outputs": outputs,
        "warnings": result.map_or(&[][..], |r| &r.warnings[..]),
        "log": result.and_then(|r| r.log.clone()),
        "rollback": rollback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::events::{FailedAttempt, StageStatus};

    fn event(secs: u64, kind: RunEventKind) -> RunEvent {
        RunEvent {
            elapsed: Duration::from_secs(secs),
            kind,
        }
    }

    fn planned(id: &str, needs: &[&str]) -> PlannedStage {
        PlannedStage {
            id: id.into(),
            name: id.into(),
            needs: needs.iter().map(|s| (*s).into()).collect(),
            line: 1,
            selected: true,
            group: None,
        }
    }

    fn finished(id: &str, status: StageStatus, reason: Option<&str>) -> StageResult {
        StageResult {
            stage: id.into(),
            status,
            duration: Duration::from_millis(1500),
            reason: reason.map(Into::into),
            attempts: 2,
            failed_attempts: vec![FailedAttempt {
                attempt: 1,
                reason: "exit code 1".into(),
                tail: vec![],
            }],
            tail: vec![],
            log: None,
            cases: vec![],
            junit_files: vec![],
            outputs: vec![("url".into(), "http://x".into())],
            warnings: vec![],
        }
    }

    #[test]
    fn the_document_follows_the_run() {
        let mut summary = JsonSummary::new();
        summary.handle(&event(
            0,
            RunEventKind::RunStarted {
                run_id: "r1".into(),
                pipeline: "deploy".into(),
                file: "pipelines/deploy.yml".into(),
                run_dir: ".portcullis/runs/r1".into(),
                stages: vec![planned("build", &[]), planned("ship", &["build"])],
                concurrency: 2,
                timestamp: "2026-12-06T00:00:00Z".into(),
            },
        ));
        summary.handle(&event(
            1,
            RunEventKind::StageStarted {
                stage: "build".into(),
                attempt: 1,
                max_attempts: 2,
            },
        ));
        summary.handle(&event(
            3,
            RunEventKind::StageFinished(finished("build", StageStatus::Failed, Some("exit 3"))),
        ));
        summary.handle(&event(
            4,
            RunEventKind::RunFinished {
                status: RunStatus::Failed,
                duration: Duration::from_secs(4),
            },
        ));
        let doc = summary.to_json(1, &["junit.xml".into()]);
        assert_eq!(doc["status"], "failed");
        assert_eq!(doc["exit_code"], 1);
        assert_eq!(doc["duration_ms"], 4000);
        let build = &doc["stages"][0];
        assert_eq!(build["status"], "failed");
        assert_eq!(build["reason"], "exit 3");
        assert_eq!(build["started_ms"], 1000);
        assert_eq!(build["duration_ms"], 1500);
        assert_eq!(build["attempts"], 2);
        assert_eq!(build["failed_attempts"][0]["reason"], "exit code 1");
        assert_eq!(build["outputs"]["url"], "http://x");
        let ship = &doc["stages"][1];
        assert_eq!(ship["needs"][0], "build");
        assert!(ship["status"].is_null(), "no result yet: {ship}");
    }
}
