//! The runner: schedules stages along the graph, stops them on failure or interrupt, rolls back.
//!
//! The main type is [`Dispatcher`], the one owner of run state. Stage attempts run as tasks
//! ([`executor`]) that report back on a channel; the dispatcher reacts to those reports and to
//! signals, decides what starts, what is cancelled and what is skipped (with a reason), and emits
//! every [`events::RunEvent`]. It never prints.
//!
//! Scheduling rules (DESIGN 2), with the choices made where the design is silent:
//!
//! - A `success` stage starts when every need passed (or warned), in file order, at most
//!   `concurrency` at once. A need that failed, was cancelled or skipped skips it, with the reason.
//! - The first failure of a stage without `allow-failure` aborts: nothing new starts, running
//!   stages are cancelled, stages not reached are skipped. `--keep-going` lets independent
//!   branches go on.
//! - `if: always` and `if: failure` stages wait until their needs have settled, whatever the
//!   outcome; with no needs they wait for every other stage and the rollbacks. `failure` runs
//!   only when the run has failed or was interrupted by then.
//! - When the run has failed or was interrupted, once every `success` stage has settled, the
//!   rollbacks of stages that passed run one at a time, latest-completed first.
//! - Ctrl-C, SIGTERM or SIGHUP interrupts: like a failure, plus the final status is cancelled
//!   and the exit code 130. A second one kills every process at once, rollbacks included.

pub(crate) mod emitter;
pub(crate) mod events;
mod executor;
pub(crate) mod output;
pub(crate) mod process;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::expr::{Env, Expr, Func};
use crate::config::pipeline::{Pipeline, StageIdx};
use crate::config::template::Outputs;
use crate::plan::Selection;
use crate::redact::Redactor;
use crate::supervisor::Signals;
use emitter::Emitter;
use events::{PlannedStage, RollbackStatus, RunEventKind, RunStatus, StageResult, StageStatus};
use executor::{Attempted, RollbackJob, StageJob};

/// What the run needs besides the pipeline.
pub(crate) struct RunSetup {
    pub(crate) run_id: String,
    pub(crate) run_dir: PathBuf,
    /// Where relative `workdir`s start: the directory portcullis runs in.
    pub(crate) root: PathBuf,
    pub(crate) selection: Selection,
    pub(crate) keep_going: bool,
    pub(crate) concurrency: usize,
    /// `${{ NAME }}` values: pipeline env (expanded), `--var`s, secrets.
    pub(crate) vars: HashMap<String, String>,
    /// The environment every stage inherits: portcullis's own, then pipeline env and secrets,
    /// without duplicate names ([`dedup_env`]).
    pub(crate) base_env: Vec<(String, String)>,
    pub(crate) redactor: Arc<Redactor>,
    /// Outputs of stages this run leaves out, given from outside ([`crate::handoff`]), for the
    /// stages that read them.
    pub(crate) given_outputs: Outputs,
    /// How the pipeline stood before this run, when another run (an earlier job of an exported
    /// pipeline) failed or was cancelled: `if: failure` stages run, and `PORTCULLIS_STATUS`
    /// starts there. This run's own status still counts only its own stages.
    pub(crate) upstream: Option<UpstreamStatus>,
    /// Approvals given to the run, for `uses: approval` stages.
    pub(crate) approvals: Arc<crate::stages::approval::Given>,
    /// Stages this run leaves out that were skipped where they ran ([`crate::handoff`]): what
    /// needs them is skipped, as in one run.
    pub(crate) skipped_upstream: HashSet<String>,
}

/// A status given from outside through `PORTCULLIS_UPSTREAM_STATUS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamStatus {
    Failed,
    Cancelled,
}

impl UpstreamStatus {
    /// The variable's value: `failed` or `cancelled`; anything else (`passed`, empty) is none.
    pub(crate) fn parse(value: &str) -> Option<UpstreamStatus> {
        match value {
            "failed" => Some(UpstreamStatus::Failed),
            "cancelled" => Some(UpstreamStatus::Cancelled),
            _ => None,
        }
    }
}

/// How a run ended, and what its stages published.
pub(crate) struct RunEnd {
    pub(crate) status: RunStatus,
    /// Unmasked outputs of the stages that ran and passed here (given ones are not included).
    pub(crate) outputs: Outputs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done(StageStatus),
}

enum Message {
    Stage(StageIdx, Box<Attempted>),
    RollbacksDone { any_failed: bool },
}

pub(crate) struct Dispatcher {
    pipeline: Arc<Pipeline>,
    setup: Arc<RunSetup>,
    emitter: Emitter,
    states: Vec<State>,
    running: usize,
    /// Stages that passed, in completion order, for rollback.
    passed_order: Vec<StageIdx>,
    /// Outputs of the stages that passed and published any; shared with running stages.
    outputs: Arc<HashMap<String, HashMap<String, String>>>,
    /// The first stage whose failure failed the run.
    first_failure: Option<String>,
    aborted: bool,
    interrupted: bool,
    rollbacks: Phase,
    rollback_failed: bool,
    /// Set when nothing could start although stages were left; see [`Dispatcher::run`].
    stalled: bool,
    cancel: CancellationToken,
    /// One token per matrix stage, so that its combinations can be stopped together
    /// (`fail-fast`) or spared (`fail-fast: false`) apart from the rest of the run.
    group_tokens: HashMap<String, CancellationToken>,
    /// Matrix stages with `fail-fast` of which a combination failed: the others do not start.
    failed_groups: HashSet<String>,
    /// Matrix stages with `fail-fast: false` whose failure aborted the run: their other
    /// combinations still run.
    open_groups: HashSet<String>,
    kill_now: CancellationToken,
    tx: mpsc::Sender<Message>,
    rx: mpsc::Receiver<Message>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotYet,
    Running,
    Done,
}

impl Dispatcher {
    pub(crate) fn new(pipeline: Arc<Pipeline>, setup: RunSetup, emitter: Emitter) -> Dispatcher {
        let (tx, rx) = mpsc::channel(64);
        let states = vec![State::Pending; pipeline.stages.len()];
        let outputs = Arc::new(setup.given_outputs.clone());
        Dispatcher {
            pipeline,
            setup: Arc::new(setup),
            emitter,
            states,
            running: 0,
            passed_order: Vec::new(),
            outputs,
            first_failure: None,
            aborted: false,
            interrupted: false,
            rollbacks: Phase::NotYet,
            rollback_failed: false,
            stalled: false,
            cancel: CancellationToken::new(),
            group_tokens: HashMap::new(),
            failed_groups: HashSet::new(),
            open_groups: HashSet::new(),
            kill_now: CancellationToken::new(),
            tx,
            rx,
        }
    }

    /// Runs the pipeline to its end and returns how it ended, listening to `signals` (created
    /// by the caller before anything else, so no interrupt is ever lost).
    pub(crate) async fn run_with(mut self, mut signals: Signals) -> RunEnd {
        let start = Instant::now();
        // Names two stages share; those stages are told apart by their id in reports.
        let mut seen = HashSet::new();
        let shared_names: HashSet<&str> = self
            .pipeline
            .stages
            .iter()
            .map(|s| s.display_name.as_str())
            .filter(|name| !seen.insert(*name))
            .collect();
        let stages = self
            .pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| PlannedStage {
                id: s.id.clone(),
                name: if shared_names.contains(s.display_name.as_str()) {
                    format!("{} ({})", s.display_name, s.id)
                } else {
                    s.display_name.clone()
                },
                needs: s
                    .needs
                    .iter()
                    .map(|n| self.pipeline.stage(*n).id.clone())
                    .collect(),
                line: s.line,
                selected: self.setup.selection.selected[i],
                group: s.matrix.as_ref().map(|m| m.group.clone()),
            })
            .collect();
        self.emitter
            .emit(RunEventKind::RunStarted {
                run_id: self.setup.run_id.clone(),
                pipeline: self.pipeline.name.clone(),
                file: self.pipeline.file.clone(),
                run_dir: self.setup.run_dir.clone(),
                stages,
                concurrency: self.setup.concurrency,
                timestamp: jiff::Timestamp::now().to_string(),
            })
            .await;
        for i in 0..self.states.len() {
            if self.setup.selection.pass_through[i] {
                continue;
            }
            if let Some(reason) = self.setup.selection.reasons[i].clone() {
                let id = &self.pipeline.stages[i].id;
                if self.setup.skipped_upstream.contains(id) {
                    let reason = format!("{reason}; skipped in the run that ran it");
                    self.finish_unrun(StageIdx(i), StageStatus::Skipped, reason)
                        .await;
                    continue;
                }
                self.finish_unrun(StageIdx(i), StageStatus::Skipped, reason)
                    .await;
                // A stage left out by the user counts as satisfied for what needs it.
                self.states[i] = State::Done(StageStatus::Passed);
            }
        }

        loop {
            self.schedule().await;
            let idle = self.running == 0 && self.rollbacks != Phase::Running;
            if idle && self.all_settled() {
                break;
            }
            if idle {
                // Nothing runs and nothing can start: a conditional stage without needs is
                // waiting for "everything else" while something else needs it. Let it start
                // now; if even that frees nothing, what is left can never run.
                if !self.stalled {
                    self.stalled = true;
                    continue;
                }
                for i in 0..self.states.len() {
                    if self.states[i] == State::Pending {
                        let reason = "not started: its needs can never be met".to_owned();
                        self.finish_unrun(StageIdx(i), StageStatus::Skipped, reason)
                            .await;
                    }
                }
                continue;
            }
            tokio::select! {
                Some(message) = self.rx.recv() => match message {
                    Message::Stage(idx, attempted) => self.stage_done(idx, *attempted).await,
                    Message::RollbacksDone { any_failed } => {
                        self.rollbacks = Phase::Done;
                        self.rollback_failed = any_failed;
                    }
                },
                () = signals.next() => {
                    if self.interrupted {
                        self.kill_now.cancel();
                    } else {
                        self.interrupted = true;
                        self.open_groups.clear();
                        self.abort();
                    }
                }
            }
        }
        let status = if self.interrupted {
            RunStatus::Interrupted
        } else if self.first_failure.is_some() || self.rollback_failed {
            RunStatus::Failed
        } else {
            RunStatus::Passed
        };
        self.emitter
            .emit(RunEventKind::RunFinished {
                status,
                duration: start.elapsed(),
            })
            .await;
        for group in self.skipped_matrices() {
            Arc::make_mut(&mut self.outputs)
                .entry(group)
                .or_default()
                .insert(crate::handoff::SKIPPED_KEY.to_owned(), "true".to_owned());
        }
        let mut outputs = Arc::unwrap_or_clone(self.outputs);
        let selected = &self.setup.selection.selected;
        // A matrix stage's hand-off is kept under its name when a combination ran here.
        outputs.retain(|stage, _| {
            self.pipeline
                .stages
                .iter()
                .enumerate()
                .any(|(i, s)| selected[i] && (s.id == *stage || s.name_in_file() == stage))
        });
        RunEnd { status, outputs }
    }

    fn all_settled(&self) -> bool {
        self.states.iter().all(|s| matches!(s, State::Done(_)))
    }

    fn run_failed(&self) -> bool {
        self.first_failure.is_some() || self.interrupted
    }

    /// Stops the run: nothing new starts and running stages are cancelled, except the
    /// combinations of a `fail-fast: false` matrix whose own failure caused it.
    fn abort(&mut self) {
        self.aborted = true;
        self.cancel.cancel();
        for (group, token) in &self.group_tokens {
            if !self.open_groups.contains(group) {
                token.cancel();
            }
        }
    }

    fn status_so_far(&self) -> &'static str {
        if self.interrupted {
            "cancelled"
        } else if self.first_failure.is_some() {
            "failed"
        } else {
            match self.setup.upstream {
                Some(UpstreamStatus::Failed) => "failed",
                Some(UpstreamStatus::Cancelled) => "cancelled",
                None => "passed",
            }
        }
    }

    /// Starts, skips or leaves waiting every pending stage, and starts the rollbacks when due.
    async fn schedule(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.states.len() {
                if self.states[i] != State::Pending {
                    continue;
                }
                match self.decide(StageIdx(i)) {
                    Decision::Wait => {}
                    Decision::PassThrough(reason) => {
                        self.finish_unrun(StageIdx(i), StageStatus::Skipped, reason)
                            .await;
                        self.states[i] = State::Done(StageStatus::Passed);
                        progressed = true;
                    }
                    Decision::Skip(reason) => {
                        self.finish_unrun(StageIdx(i), StageStatus::Skipped, reason)
                            .await;
                        self.mark_skipped(StageIdx(i));
                        progressed = true;
                    }
                    Decision::Start => {
                        if self.running < self.setup.concurrency {
                            self.start(StageIdx(i));
                            progressed = true;
                        }
                    }
                }
            }
            if self.rollbacks == Phase::NotYet && self.unconditional_settled() {
                if self.run_failed() && self.passed_order.iter().any(|i| self.has_rollback(*i)) {
                    self.start_rollbacks().await;
                } else {
                    self.rollbacks = Phase::Done;
                }
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn unconditional_settled(&self) -> bool {
        self.pipeline
            .stages
            .iter()
            .zip(&self.states)
            .all(|(s, st)| s.condition.decides_status() || matches!(st, State::Done(_)))
    }

    fn decide(&self, idx: StageIdx) -> Decision {
        let stage = self.pipeline.stage(idx);
        let mut needs_done = Vec::new();
        for need in &stage.needs {
            match self.states[need.0] {
                State::Done(status) => needs_done.push((*need, status)),
                _ => return Decision::Wait,
            }
        }
        if self.setup.selection.pass_through[idx.0] {
            let blocked = needs_done
                .iter()
                .any(|(_, s)| !matches!(s, StageStatus::Passed | StageStatus::Warned));
            let reason = self.setup.selection.reasons[idx.0]
                .clone()
                .unwrap_or_default();
            // Left out by the user, it never runs; it only lets its dependents through when
            // its own needs passed, so a failure still propagates past it.
            return if blocked || self.aborted {
                Decision::Skip(reason)
            } else {
                Decision::PassThrough(reason)
            };
        }
        let needs_passed = needs_done
            .iter()
            .all(|(_, s)| matches!(s, StageStatus::Passed | StageStatus::Warned));
        if !stage.condition.decides_status() {
            if let Some((need, status)) = needs_done
                .iter()
                .find(|(_, s)| !matches!(s, StageStatus::Passed | StageStatus::Warned))
            {
                let what = match status {
                    StageStatus::Failed => "failed",
                    StageStatus::Cancelled => "was cancelled",
                    _ => "was skipped",
                };
                return Decision::Skip(format!(
                    "needs `{}`, which {what}",
                    self.pipeline.stage(*need).id
                ));
            }
            if let Some(m) = &stage.matrix
                && self.failed_groups.contains(&m.group)
            {
                return Decision::Skip(format!(
                    "not started: a combination of `{}` failed (`fail-fast`)",
                    m.group
                ));
            }
            let spared = stage
                .matrix
                .as_ref()
                .is_some_and(|m| self.open_groups.contains(&m.group));
            if self.aborted && !spared {
                let why = match (&self.first_failure, self.interrupted) {
                    (_, true) => "not started: the run was interrupted".to_owned(),
                    (Some(first), false) => {
                        format!("not started: the run aborted after `{first}` failed")
                    }
                    (None, false) => "not started: the run aborted".to_owned(),
                };
                return Decision::Skip(why);
            }
        } else {
            if stage.needs.is_empty() && self.rollbacks != Phase::Done && !self.stalled {
                return Decision::Wait;
            }
            if self.kill_now.is_cancelled() {
                return Decision::Skip("not started: the run was killed".into());
            }
        }
        match self.condition_holds(idx, needs_passed) {
            Ok(()) => Decision::Start,
            Err(reason) => Decision::Skip(reason),
        }
    }

    /// Evaluates the stage's `if:`; `Err` carries why it is skipped: the expression and the
    /// values that made it false.
    fn condition_holds(&self, idx: StageIdx, needs_passed: bool) -> Result<(), String> {
        let stage = self.pipeline.stage(idx);
        let Some(expr) = &stage.condition.expr else {
            return Ok(());
        };
        let env = ConditionEnv {
            vars: &self.setup.vars,
            status: self.status_so_far(),
            run_id: &self.setup.run_id,
            outputs: &self.outputs,
            success: needs_passed && !self.aborted,
            failure: self.run_failed() || self.setup.upstream.is_some(),
            cancelled: self.interrupted || self.setup.upstream == Some(UpstreamStatus::Cancelled),
        };
        if expr.eval(&env).truthy() {
            return Ok(());
        }
        if *expr == Expr::Call(Func::Failure, Vec::new()) {
            return Err("runs only when the pipeline fails (`if: failure`)".into());
        }
        let mask = |v: &str| self.setup.redactor.redact_str(v).into_owned();
        let values = expr.explain(&env, &mask);
        Err(if values.is_empty() {
            format!("condition `{expr}` is false")
        } else {
            format!("condition `{expr}` is false: {values}")
        })
    }

    fn start(&mut self, idx: StageIdx) {
        self.states[idx.0] = State::Running;
        self.running += 1;
        let stage = self.pipeline.stage(idx);
        // Conditional stages run on failure by design, so an abort must not cancel them; only a
        // second interrupt (kill_now) stops them.
        let cancel = if stage.condition.decides_status() {
            CancellationToken::new()
        } else if let Some(m) = &stage.matrix {
            self.group_tokens
                .entry(m.group.clone())
                .or_default()
                .clone()
        } else {
            self.cancel.clone()
        };
        let job = StageJob {
            pipeline: self.pipeline.clone(),
            setup: self.setup.clone(),
            idx,
            emitter: self.emitter.clone(),
            outputs: self.outputs.clone(),
            status: self.status_so_far(),
            cancel,
            kill_now: self.kill_now.clone(),
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let attempted = executor::run_stage(job).await;
            let _ = tx.send(Message::Stage(idx, Box::new(attempted))).await;
        });
    }

    async fn stage_done(&mut self, idx: StageIdx, attempted: Attempted) {
        self.running -= 1;
        let stage = self.pipeline.stage(idx);
        let mut result = attempted.result;
        if result.status == StageStatus::Cancelled && !self.interrupted {
            // The status says "cancelled"; the reason says only why.
            result.reason = self
                .first_failure
                .as_ref()
                .map(|first| format!("`{first}` failed"));
        } else if result.status == StageStatus::Cancelled {
            result.reason = Some("interrupted".into());
        }
        match result.status {
            StageStatus::Passed | StageStatus::Warned => {
                if result.status == StageStatus::Passed {
                    self.passed_order.push(idx);
                }
                if !attempted.outputs.is_empty() {
                    Arc::make_mut(&mut self.outputs).insert(stage.id.clone(), attempted.outputs);
                }
            }
            StageStatus::Failed => {
                if self.first_failure.is_none() {
                    self.first_failure = Some(stage.id.clone());
                }
                if let Some(m) = &stage.matrix {
                    if m.spec.fail_fast {
                        self.failed_groups.insert(m.group.clone());
                        if let Some(token) = self.group_tokens.get(&m.group) {
                            token.cancel();
                        }
                    } else if !self.aborted {
                        self.open_groups.insert(m.group.clone());
                    }
                }
                if !self.setup.keep_going && !self.aborted {
                    self.abort();
                }
            }
            StageStatus::Cancelled | StageStatus::Skipped => {}
        }
        self.states[idx.0] = State::Done(result.status);
        self.emitter.emit(RunEventKind::StageFinished(result)).await;
    }

    async fn finish_unrun(&mut self, idx: StageIdx, status: StageStatus, reason: String) {
        self.states[idx.0] = State::Done(status);
        let result = StageResult {
            stage: self.pipeline.stage(idx).id.clone(),
            status,
            duration: std::time::Duration::ZERO,
            reason: Some(reason),
            attempts: 0,
            failed_attempts: Vec::new(),
            tail: Vec::new(),
            log: None,
            cases: Vec::new(),
            junit_files: Vec::new(),
            outputs: Vec::new(),
            warnings: Vec::new(),
        };
        self.emitter.emit(RunEventKind::StageFinished(result)).await;
    }

    /// Hands on that a stage this run was to run was skipped ([`crate::handoff::SKIPPED_KEY`]),
    /// for a later run of what needs it; a matrix combination under its matrix stage's name
    /// (what needs one needs them all).
    fn mark_skipped(&mut self, idx: StageIdx) {
        let stage = self.pipeline.stage(idx);
        // A matrix stage is skipped, for what needs it elsewhere, only when every combination
        // this run was to run was (an exported job runs one): see the end of the run.
        if stage.matrix.is_none() {
            Arc::make_mut(&mut self.outputs)
                .entry(stage.id.clone())
                .or_default()
                .insert(crate::handoff::SKIPPED_KEY.to_owned(), "true".to_owned());
        }
    }

    /// The matrix stages every selected combination of which this run skipped.
    fn skipped_matrices(&self) -> Vec<String> {
        let mut groups: Vec<(String, bool)> = Vec::new();
        for (i, stage) in self.pipeline.stages.iter().enumerate() {
            let Some(m) = &stage.matrix else { continue };
            if !self.setup.selection.selected[i] {
                continue;
            }
            let skipped = self.states[i] == State::Done(StageStatus::Skipped);
            match groups.iter_mut().find(|(g, _)| *g == m.group) {
                Some((_, all)) => *all &= skipped,
                None => groups.push((m.group.clone(), skipped)),
            }
        }
        groups
            .into_iter()
            .filter(|(_, all)| *all)
            .map(|(g, _)| g)
            .collect()
    }

    fn has_rollback(&self, idx: StageIdx) -> bool {
        let stage = self.pipeline.stage(idx);
        stage.rollback.is_some()
            || matches!(&stage.action, crate::config::pipeline::Action::Uses(kind) if kind.has_rollback)
    }

    async fn start_rollbacks(&mut self) {
        self.rollbacks = Phase::Running;
        let jobs: Vec<RollbackJob> = self
            .passed_order
            .iter()
            .rev()
            .filter(|i| self.has_rollback(**i))
            .map(|idx| RollbackJob {
                pipeline: self.pipeline.clone(),
                setup: self.setup.clone(),
                idx: *idx,
                emitter: self.emitter.clone(),
                outputs: self.outputs.clone(),
                status: self.status_so_far(),
                kill_now: self.kill_now.clone(),
            })
            .collect();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut any_failed = false;
            for job in jobs {
                let status = executor::run_rollback(job).await;
                any_failed |= status != RollbackStatus::Passed;
            }
            let _ = tx.send(Message::RollbacksDone { any_failed }).await;
        });
    }
}

/// Later entries win, as they would in a shell.
pub(crate) fn dedup_env(env: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<(String, String)> = Vec::with_capacity(env.len());
    for (k, v) in env {
        match seen.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                seen.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

enum Decision {
    Wait,
    /// Left out by `--skip` or `paths:`, and its needs have passed: reported as skipped, and
    /// satisfied for what needs it.
    PassThrough(String),
    Start,
    Skip(String),
}

/// What an `if:` reads when it is evaluated.
struct ConditionEnv<'a> {
    vars: &'a HashMap<String, String>,
    /// `PORTCULLIS_STATUS` so far.
    status: &'a str,
    run_id: &'a str,
    outputs: &'a HashMap<String, HashMap<String, String>>,
    success: bool,
    failure: bool,
    cancelled: bool,
}

impl Env for ConditionEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "PORTCULLIS_STATUS" => Some(self.status.to_owned()),
            "PORTCULLIS_RUN_ID" => Some(self.run_id.to_owned()),
            _ => self.vars.get(name).cloned(),
        }
    }

    fn output(&self, stage: &str, key: &str) -> Option<String> {
        self.outputs.get(stage).and_then(|o| o.get(key)).cloned()
    }

    fn success(&self) -> bool {
        self.success
    }

    fn failure(&self) -> bool {
        self.failure
    }

    fn cancelled(&self) -> bool {
        self.cancelled
    }
}
