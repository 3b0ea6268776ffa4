//! Running one stage (all its attempts) or one rollback, as a task the dispatcher spawned.
//!
//! [`run_stage`] expands the stage's templates, runs each attempt (a process, or a built-in
//! kind) under the stage's timeout, retries with backoff, reads what the stage published through
//! `$PORTCULLIS_OUTPUT`, and returns an [`Attempted`] to the dispatcher. [`run_rollback`] does the
//! same for a rollback. Neither decides anything about other stages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::RunSetup;
use super::emitter::Emitter;
use super::events::{
    CaseResult, FailedAttempt, RollbackResult, RollbackStatus, RunEventKind, StageResult,
    StageStatus,
};
use super::output::OutputSink;
use super::process::{self, Exit, ProcessSpec};
use crate::config::pipeline::{Action, Pipeline, Stage, StageIdx};
use crate::config::template::{Outputs, Values};
use crate::stages::{BuiltinStage, KindOutcome, StageContext};

pub(super) struct StageJob {
    pub(super) pipeline: Arc<Pipeline>,
    pub(super) setup: Arc<RunSetup>,
    pub(super) idx: StageIdx,
    pub(super) emitter: Emitter,
    /// Outputs of every stage that has passed so far.
    pub(super) outputs: Arc<HashMap<String, HashMap<String, String>>>,
    /// `PORTCULLIS_STATUS` for this stage.
    pub(super) status: &'static str,
    pub(super) cancel: CancellationToken,
    pub(super) kill_now: CancellationToken,
}

pub(super) struct Attempted {
    pub(super) result: StageResult,
    /// Unmasked, for the stages that read them.
    pub(super) outputs: HashMap<String, String>,
}

/// How one attempt ended.
enum AttemptEnd {
    /// With a built-in kind's note on what it found.
    Passed(Option<String>),
    Failed(String),
    Cancelled,
}

/// The expanded environment, working directory and `${{ NAME }}` values of one stage.
struct Prepared {
    env: Vec<(String, String)>,
    vars: HashMap<String, String>,
    workdir: PathBuf,
    output_file: PathBuf,
}

fn prepare(
    stage: &Stage,
    setup: &RunSetup,
    outputs: &HashMap<String, HashMap<String, String>>,
    status: &str,
) -> Result<Prepared, String> {
    let mut vars = setup.vars.clone();
    // What this stage adds to the run's environment; the run's own was de-duplicated once.
    let mut extra: Vec<(String, String)> = Vec::with_capacity(stage.env.len() + 5);
    for (name, template) in &stage.env {
        let value = template.expand(Values {
            vars: &vars,
            outputs,
        })?;
        vars.insert(name.clone(), value.clone());
        extra.push((name.clone(), value));
    }
    let output_file = setup
        .run_dir
        .join("outputs")
        .join(format!("{}.env", stage.file_stem()));
    let builtins = [
        ("PORTCULLIS_RUN_ID", setup.run_id.clone()),
        ("PORTCULLIS_STAGE", stage.id.clone()),
        ("PORTCULLIS_STATUS", status.to_owned()),
        ("PORTCULLIS_OUTPUT", output_file.display().to_string()),
        ("PORTCULLIS_RUN_DIR", setup.run_dir.display().to_string()),
    ];
    for (name, value) in builtins {
        vars.insert(name.to_owned(), value.clone());
        extra.push((name.to_owned(), value));
    }
    let extra = super::dedup_env(extra);
    let mut env: Vec<(String, String)> = setup
        .base_env
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .cloned()
        .collect();
    env.extend(extra);
    let workdir = match &stage.workdir {
        Some(t) => setup.root.join(t.expand(Values {
            vars: &vars,
            outputs,
        })?),
        None => setup.root.clone(),
    };
    Ok(Prepared {
        env,
        vars,
        workdir,
        output_file,
    })
}

/// The argv of a `run` or `command` action. A script is written, expanded, to `script_file`
/// (0600, in the 0700 run folder) and the shell is given its path: a script's text, and any
/// value expanded into it, never appears in an argv, which every user can read through `ps`.
fn argv_for(
    action: &Action,
    p: &Prepared,
    outputs: &Outputs,
    script_file: &Path,
) -> Result<Option<Vec<String>>, String> {
    let values = Values {
        vars: &p.vars,
        outputs,
    };
    match action {
        Action::Run { script, shell } => {
            write_private(script_file, &script.expand(values)?).map_err(|e| {
                format!(
                    "cannot write the script to `{}`: {e}",
                    script_file.display()
                )
            })?;
            let mut argv = shell.argv.clone();
            argv.push(script_file.display().to_string());
            Ok(Some(argv))
        }
        Action::Command { argv } => argv
            .iter()
            .map(|t| t.expand(values))
            .collect::<Result<_, _>>()
            .map(Some),
        Action::Uses(_) => Ok(None),
    }
}

pub(super) async fn run_stage(job: StageJob) -> Attempted {
    let stage = job.pipeline.stage(job.idx);
    let setup = &job.setup;
    let log = setup.run_dir.join(format!("{}.log", stage.file_stem()));
    let max_attempts = stage.retries.count + 1;
    let start = Instant::now();
    let mut failed_attempts = Vec::new();
    let mut cases = Vec::new();
    let mut attempts = 0;
    let mut log_written = false;
    let mut warnings = Vec::new();

    let end = match prepare(stage, setup, &job.outputs, job.status) {
        Err(reason) => {
            let mut sink =
                OutputSink::open(&stage.id, log.clone(), &setup.redactor, job.emitter.clone());
            sink.line(&format!("portcullis: {reason}")).await;
            let tail = sink.finish().await;
            return Attempted {
                result: result(
                    stage,
                    StageStatus::Failed,
                    Some(reason),
                    start,
                    1,
                    failed_attempts,
                    tail,
                    Some(log),
                    cases,
                ),
                outputs: HashMap::new(),
            };
        }
        Ok(prepared) => loop {
            attempts += 1;
            job.emitter
                .emit(RunEventKind::StageStarted {
                    stage: stage.id.clone(),
                    attempt: attempts,
                    max_attempts,
                })
                .await;
            let mut sink =
                OutputSink::open(&stage.id, log.clone(), &setup.redactor, job.emitter.clone());
            if attempts > 1 {
                sink.line(&format!("portcullis: attempt {attempts} of {max_attempts}"))
                    .await;
            }
            if attempts > 1 {
                let _ = std::fs::remove_file(&prepared.output_file);
            }
            let (end, attempt_cases, kind_outputs) =
                attempt(stage, &job, &prepared, &mut sink).await;
            cases = attempt_cases;
            let tail = sink.finish().await;
            log_written |= sink.log_file().is_some();
            match end {
                AttemptEnd::Passed(note) => {
                    let mut outputs = match read_outputs(&prepared.output_file) {
                        Ok(outputs) => outputs,
                        Err(reason) => {
                            break (StageStatus::Failed, Some(reason), tail, HashMap::new());
                        }
                    };
                    let kind_published = !kind_outputs.is_empty();
                    outputs.extend(kind_outputs);
                    if let Err(e) = save_outputs(&prepared.output_file, &outputs, kind_published) {
                        warnings.push(format!(
                            "cannot write the outputs to `{}`: {e}",
                            prepared.output_file.display()
                        ));
                    }
                    break (StageStatus::Passed, note, tail, outputs);
                }
                AttemptEnd::Cancelled => {
                    break (
                        StageStatus::Cancelled,
                        Some("cancelled".into()),
                        tail,
                        HashMap::new(),
                    );
                }
                AttemptEnd::Failed(reason)
                    if attempts < max_attempts && !job.cancel.is_cancelled() =>
                {
                    let retry_in = stage.retries.delay_before(attempts);
                    job.emitter
                        .emit(RunEventKind::StageRetrying {
                            stage: stage.id.clone(),
                            attempt: attempts,
                            reason: reason.clone(),
                            retry_in,
                        })
                        .await;
                    failed_attempts.push(FailedAttempt {
                        attempt: attempts,
                        reason,
                        tail,
                    });
                    tokio::select! {
                        () = tokio::time::sleep(retry_in) => {}
                        () = job.cancel.cancelled() => {
                            break (StageStatus::Cancelled, Some("cancelled".into()), Vec::new(), HashMap::new());
                        }
                    }
                }
                AttemptEnd::Failed(reason) => {
                    let status = if stage.allow_failure {
                        StageStatus::Warned
                    } else {
                        StageStatus::Failed
                    };
                    break (status, Some(reason), tail, HashMap::new());
                }
            }
        },
    };
    let (status, reason, tail, outputs) = end;
    // The log exists only if some attempt printed something.
    let log = log_written.then_some(log);
    let mut res = result(
        stage,
        status,
        reason,
        start,
        attempts,
        failed_attempts,
        tail,
        log,
        cases,
    );
    if res.attempts > 0 && status != StageStatus::Cancelled {
        let (files, unmatched) = junit_files(&setup.root, &stage.junit);
        res.junit_files = files;
        res.warnings.extend(unmatched.into_iter().map(|glob| {
            format!(
                "`junit: {glob}` matched no file; the stage's test results are not in the report"
            )
        }));
    }
    res.warnings.extend(warnings);
    res.outputs = outputs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    res.outputs.sort();
    Attempted {
        result: res,
        outputs,
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "a plain constructor of the event payload"
)]
fn result(
    stage: &Stage,
    status: StageStatus,
    reason: Option<String>,
    start: Instant,
    attempts: u32,
    failed_attempts: Vec<FailedAttempt>,
    tail: Vec<String>,
    log: Option<PathBuf>,
    cases: Vec<CaseResult>,
) -> StageResult {
    StageResult {
        stage: stage.id.clone(),
        status,
        duration: start.elapsed(),
        reason,
        attempts,
        failed_attempts,
        tail,
        log,
        cases,
        junit_files: Vec::new(),
        outputs: Vec::new(),
        warnings: Vec::new(),
    }
}

async fn attempt(
    stage: &Stage,
    job: &StageJob,
    prepared: &Prepared,
    sink: &mut OutputSink,
) -> (AttemptEnd, Vec<CaseResult>, HashMap<String, String>) {
    let script_file = job
        .setup
        .run_dir
        .join("scripts")
        .join(format!("{}.sh", stage.file_stem()));
    let argv = match argv_for(&stage.action, prepared, &job.outputs, &script_file) {
        Ok(argv) => argv,
        Err(reason) => return (AttemptEnd::Failed(reason), Vec::new(), HashMap::new()),
    };
    if let Some(argv) = argv {
        let _remove =
            matches!(stage.action, Action::Run { .. }).then(|| RemoveOnDrop(&script_file));
        let spec = ProcessSpec {
            argv,
            env: prepared.env.clone(),
            workdir: prepared.workdir.clone(),
        };
        let exit = process::run(
            &spec,
            sink,
            stage.timeout,
            stage.grace,
            &job.cancel,
            &job.kill_now,
        )
        .await;
        let end = match exit {
            e if e.success() => AttemptEnd::Passed(None),
            Exit::Cancelled => AttemptEnd::Cancelled,
            e => AttemptEnd::Failed(e.reason(stage.timeout)),
        };
        return (end, Vec::new(), HashMap::new());
    }
    let Action::Uses(uses) = &stage.action else {
        return (
            AttemptEnd::Failed("nothing to run".into()),
            Vec::new(),
            HashMap::new(),
        );
    };
    let values = Values {
        vars: &prepared.vars,
        outputs: &job.outputs,
    };
    let kind = match crate::stages::bind(uses, &job.pipeline, values) {
        Ok(kind) => kind,
        Err(reason) => return (AttemptEnd::Failed(reason), Vec::new(), HashMap::new()),
    };
    let placeholder = OutputSink::open(
        &stage.id,
        sink.path().clone(),
        &job.setup.redactor,
        job.emitter.clone(),
    );
    let log = std::mem::replace(sink, placeholder);
    let mut cx = kind_context(
        &job.setup,
        &job.pipeline,
        job.idx,
        prepared,
        &job.outputs,
        log,
    );
    let outcome = run_kind(
        kind.as_ref(),
        &mut cx,
        stage.timeout,
        stage.grace,
        &job.cancel,
        &job.kill_now,
        false,
    )
    .await;
    *sink = cx.log;
    match outcome {
        KindEnd::Done(o) => {
            let end = match o.result {
                Ok(()) => AttemptEnd::Passed(o.note),
                Err(reason) => AttemptEnd::Failed(reason),
            };
            (end, o.cases, o.outputs.into_iter().collect())
        }
        KindEnd::TimedOut => (
            AttemptEnd::Failed(Exit::TimedOut.reason(stage.timeout)),
            Vec::new(),
            HashMap::new(),
        ),
        KindEnd::Cancelled => (AttemptEnd::Cancelled, Vec::new(), HashMap::new()),
    }
}

/// What a built-in kind's run or rollback sees; `log` is the attempt's sink, handed back after.
fn kind_context(
    setup: &RunSetup,
    pipeline: &Arc<Pipeline>,
    idx: StageIdx,
    prepared: &Prepared,
    outputs: &HashMap<String, HashMap<String, String>>,
    log: OutputSink,
) -> StageContext {
    let stage = pipeline.stage(idx);
    StageContext {
        run_id: setup.run_id.clone(),
        run_dir: setup.run_dir.clone(),
        stage: stage.id.clone(),
        workdir: prepared.workdir.clone(),
        env: prepared.env.clone(),
        outputs: outputs.clone(),
        log,
        cancel: CancellationToken::new(),
        pipeline: pipeline.clone(),
        idx,
        vars: prepared.vars.clone(),
        approvals: setup.approvals.clone(),
    }
}

enum KindEnd {
    Done(KindOutcome),
    TimedOut,
    Cancelled,
}

/// Runs a kind's run (or rollback) under a timeout; on timeout or cancel the kind is told
/// through its token and given the grace period to return.
async fn run_kind(
    kind: &dyn BuiltinStage,
    cx: &mut StageContext,
    timeout: Duration,
    grace: Duration,
    cancel: &CancellationToken,
    kill_now: &CancellationToken,
    rollback: bool,
) -> KindEnd {
    let token = cx.cancel.clone();
    let mut future = if rollback {
        kind.rollback(cx)
    } else {
        kind.run(cx)
    };
    let stopped_by = tokio::select! {
        outcome = &mut future => return KindEnd::Done(outcome),
        () = tokio::time::sleep(timeout) => KindEnd::TimedOut,
        () = cancel.cancelled() => KindEnd::Cancelled,
        () = kill_now.cancelled() => KindEnd::Cancelled,
    };
    token.cancel();
    tokio::select! {
        outcome = &mut future => match (&stopped_by, outcome) {
            (KindEnd::TimedOut, _) => KindEnd::TimedOut,
            (_, _) => KindEnd::Cancelled,
        },
        () = tokio::time::sleep(grace) => stopped_by,
        () = kill_now.cancelled() => stopped_by,
    }
}

/// Parses `$PORTCULLIS_OUTPUT`: `KEY=VALUE` lines and `KEY<<DELIM` blocks, as GitHub Actions
/// reads `$GITHUB_OUTPUT`.
pub(super) fn parse_outputs(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((key, delim)) = line.split_once("<<")
            && !key.contains('=')
        {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(key.trim().to_owned(), value.join("\n"));
        } else if let Some((key, value)) = line.split_once('=') {
            out.insert(key.trim().to_owned(), value.to_owned());
        }
    }
    out.retain(|k, _| !k.is_empty());
    out
}

/// The most `$PORTCULLIS_OUTPUT` may hold, all outputs together (GitHub Actions allows 1 MB
/// per output). Outputs are values for later stages' `${{ }}`; large data goes in a file whose
/// path is the output.
pub(crate) const MAX_OUTPUTS_BYTES: u64 = 1 << 20;

/// Reads `$PORTCULLIS_OUTPUT` once the stage ended: a missing file is no outputs; one that is
/// not a regular file (a FIFO, a symlink), too large or not UTF-8 fails the stage, with why.
fn read_outputs(path: &Path) -> Result<HashMap<String, String>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let what = "`$PORTCULLIS_OUTPUT`";
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(format!(
                "{what} was replaced by a symbolic link; write to the file itself"
            ));
        }
        Err(e) => return Err(format!("cannot read {what}: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "{what} is not a regular file; append `KEY=VALUE` lines to it"
        ));
    }
    let too_large = |size: u64| {
        format!(
            "{what} holds {size} bytes, more than the {} MiB all outputs may take; put large data in a file and its path in an output",
            MAX_OUTPUTS_BYTES >> 20
        )
    };
    if meta.len() > MAX_OUTPUTS_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_OUTPUTS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if bytes.len() as u64 > MAX_OUTPUTS_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{what} is not valid UTF-8"))?;
    Ok(parse_outputs(&text))
}

/// The files the stage's `junit:` globs match, relative to the project root (the folder
/// portcullis runs in, whatever the stage's `workdir`), and the globs that matched none.
fn junit_files(root: &Path, globs: &[String]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut unmatched = Vec::new();
    for pattern in globs {
        let full = root.join(pattern);
        let before = files.len();
        if let Ok(paths) = glob::glob(&full.to_string_lossy()) {
            files.extend(paths.filter_map(Result::ok).filter(|p| p.is_file()));
        }
        if files.len() == before {
            unmatched.push(pattern.clone());
        }
    }
    files.sort();
    files.dedup();
    (files, unmatched)
}

/// Removes a stage's script file once its process has ended, however the attempt ends.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Writes a file created 0600 (an existing file keeps its mode; see [`save_outputs`]).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut file, text.as_bytes())
}

/// Leaves a passed stage's outputs in `$PORTCULLIS_OUTPUT`'s file, readable by this user only.
/// What a script wrote there stays as written; when a built-in kind published outputs, the file
/// is rewritten with the whole set, in the same syntax.
fn save_outputs(
    path: &Path,
    outputs: &HashMap<String, String>,
    kind_published: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if outputs.is_empty() {
        return Ok(());
    }
    // The stage may have created the file under its own umask.
    let private = || std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    if !kind_published {
        return private();
    }
    let mut keys: Vec<&String> = outputs.keys().collect();
    keys.sort();
    let mut text = String::new();
    for key in keys {
        let value = &outputs[key];
        if value.contains('\n') {
            let mut delim = "PORTCULLIS_EOF".to_owned();
            while value.lines().any(|l| l == delim) {
                delim.push('_');
            }
            text.push_str(&format!("{key}<<{delim}\n{value}\n{delim}\n"));
        } else {
            text.push_str(&format!("{key}={value}\n"));
        }
    }
    write_private(path, &text)?;
    private()
}

pub(super) struct RollbackJob {
    pub(super) pipeline: Arc<Pipeline>,
    pub(super) setup: Arc<RunSetup>,
    pub(super) idx: StageIdx,
    pub(super) emitter: Emitter,
    pub(super) outputs: Arc<HashMap<String, HashMap<String, String>>>,
    pub(super) status: &'static str,
    pub(super) kill_now: CancellationToken,
}

pub(super) async fn run_rollback(job: RollbackJob) -> RollbackStatus {
    let stage = job.pipeline.stage(job.idx);
    let setup = &job.setup;
    let log = setup
        .run_dir
        .join(format!("{}.rollback.log", stage.file_stem()));
    job.emitter
        .emit(RunEventKind::RollbackStarted {
            stage: stage.id.clone(),
        })
        .await;
    let start = Instant::now();
    let mut sink = OutputSink::open(&stage.id, log.clone(), &setup.redactor, job.emitter.clone())
        .for_rollback();
    let script_file = setup
        .run_dir
        .join("scripts")
        .join(format!("{}.rollback.sh", stage.file_stem()));
    let never = CancellationToken::new();
    let (status, reason) = match prepare(stage, setup, &job.outputs, job.status) {
        Err(reason) => (RollbackStatus::Failed, Some(reason)),
        Ok(prepared) => match (&stage.rollback, &stage.action) {
            (Some(action), _) => match argv_for(action, &prepared, &job.outputs, &script_file) {
                Ok(Some(argv)) => {
                    let _remove =
                        matches!(action, Action::Run { .. }).then(|| RemoveOnDrop(&script_file));
                    let spec = ProcessSpec {
                        argv,
                        env: prepared.env.clone(),
                        workdir: prepared.workdir.clone(),
                    };
                    match process::run(
                        &spec,
                        &mut sink,
                        stage.timeout,
                        stage.grace,
                        &never,
                        &job.kill_now,
                    )
                    .await
                    {
                        e if e.success() => (RollbackStatus::Passed, None),
                        Exit::Cancelled => (
                            RollbackStatus::Cancelled,
                            Some("killed by a second interrupt".into()),
                        ),
                        e => (RollbackStatus::Failed, Some(e.reason(stage.timeout))),
                    }
                }
                Ok(None) => (
                    RollbackStatus::Failed,
                    Some("a rollback must be `run` or `command`".into()),
                ),
                Err(reason) => (RollbackStatus::Failed, Some(reason)),
            },
            (None, Action::Uses(uses)) => 'kind: {
                let values = Values {
                    vars: &prepared.vars,
                    outputs: &job.outputs,
                };
                let kind = match crate::stages::bind(uses, &job.pipeline, values) {
                    Ok(kind) => kind,
                    Err(reason) => break 'kind (RollbackStatus::Failed, Some(reason)),
                };
                let placeholder =
                    OutputSink::open(&stage.id, log.clone(), &setup.redactor, job.emitter.clone())
                        .for_rollback();
                let log = std::mem::replace(&mut sink, placeholder);
                let mut cx =
                    kind_context(setup, &job.pipeline, job.idx, &prepared, &job.outputs, log);
                let end = run_kind(
                    kind.as_ref(),
                    &mut cx,
                    stage.timeout,
                    stage.grace,
                    &never,
                    &job.kill_now,
                    true,
                )
                .await;
                sink = cx.log;
                match end {
                    KindEnd::Done(KindOutcome { result: Ok(()), .. }) => {
                        (RollbackStatus::Passed, None)
                    }
                    KindEnd::Done(KindOutcome { result: Err(r), .. }) => {
                        (RollbackStatus::Failed, Some(r))
                    }
                    KindEnd::TimedOut => (
                        RollbackStatus::Failed,
                        Some(Exit::TimedOut.reason(stage.timeout)),
                    ),
                    KindEnd::Cancelled => (
                        RollbackStatus::Cancelled,
                        Some("killed by a second interrupt".into()),
                    ),
                }
            }
            (None, _) => (RollbackStatus::Passed, None),
        },
    };
    let tail = sink.finish().await;
    let log = sink.log_file();
    job.emitter
        .emit(RunEventKind::RollbackFinished(RollbackResult {
            stage: stage.id.clone(),
            status,
            duration: start.elapsed(),
            reason,
            tail,
            log,
        }))
        .await;
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_file_syntax() {
        let text = "a=1\nb = x=y\n\nnotes<<EOF\nline 1\nline 2\nEOF\n=novalue\nc=\n";
        let out = parse_outputs(text);
        assert_eq!(out.get("a").map(String::as_str), Some("1"));
        assert_eq!(out.get("b").map(String::as_str), Some(" x=y"));
        assert_eq!(out.get("notes").map(String::as_str), Some("line 1\nline 2"));
        assert_eq!(out.get("c").map(String::as_str), Some(""));
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn later_env_entries_win() {
        let env = crate::runner::dedup_env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "2".into()),
            ("A".into(), "3".into()),
        ]);
        assert_eq!(
            env,
            vec![("A".into(), "3".into()), ("B".into(), "2".into())]
        );
    }
}
