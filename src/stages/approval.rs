//! `uses: approval` — hold the stages that need it until a person says yes.
//!
//! The main type is [`Approval`]. A decision comes from one of four places, looked at in this
//! order: `portcullis run --approve STAGE`, the variable `PORTCULLIS_APPROVE=STAGE[,STAGE]`
//! (both read once, when the run starts, into [`Given`]), a file that `portcullis approve
//! STAGE` wrote into the run folder, or the person at the terminal, who is shown the stages
//! that wait on the approval and asked `Approve STAGE? [y/N]`. Off a terminal, without
//! `timeout:`, a stage nobody approved fails at once, saying how to approve it; with
//! `timeout:` it waits that long for `portcullis approve`.
//!
//! The terminal is asked through the reporters ([`crate::runner::output::OutputSink::prompt`]):
//! the live view takes its block off the screen, prints the question on lines of its own and
//! holds every other line until the question is settled, so nothing is written between the
//! question and the answer. The answer is read from `/dev/tty`, not stdin, without blocking the
//! run: the runtime has one thread, and Ctrl-C must still interrupt the run as usual.
//!
//! Every decision is recorded: in the run folder's `approvals.json` (written whole and renamed
//! into place), in the stage's JUnit test case `approval` and log, and as the outputs
//! `approved-by` and `approved-at`. There is no wildcard such as `all`: an approval names its
//! stage, so a stage added to the pipeline later is never approved by an old setting.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BoxFuture, BuiltinStage, Kind, KindOutcome, StageContext};
use crate::config::errors::{ConfigError, suggest};
use crate::config::pipeline::{Action, Pipeline};
use crate::config::template::Values;
use crate::config::validate::Validator;
use crate::config::yaml::{Node, NodeKind};
use crate::runner::events::{CaseResult, CaseStatus};

const KEYS: &[&str] = &["message", "timeout", "environment", "approvers"];
const DEFAULT_MESSAGE: &str = "deploy to production?";
/// The variable that approves stages by name, comma-separated.
pub(crate) const ENV: &str = "PORTCULLIS_APPROVE";
/// How often a waiting stage looks for the file `portcullis approve` writes.
const POLL: Duration = Duration::from_millis(250);
/// The longest answer read from the terminal.
const MAX_ANSWER: usize = 1024;

#[derive(Debug)]
pub(crate) struct Approval {
    message: String,
    /// How long to wait for a decision off a terminal, and at the prompt.
    timeout: Option<Duration>,
    /// Who may approve; anyone when empty.
    approvers: Vec<String>,
}

/// Approvals a run was given from outside, read once when it starts.
#[derive(Debug, Default)]
pub(crate) struct Given {
    /// `--approve STAGE`, each checked to name an approval stage.
    pub(crate) flags: Vec<String>,
    /// The names in `PORTCULLIS_APPROVE`.
    pub(crate) env: Vec<String>,
    /// Whether a person can be asked: stdin and stderr are terminals.
    pub(crate) terminal: bool,
}

impl Given {
    /// `--approve` names, `PORTCULLIS_APPROVE` as `read` gives it, and whether to ask.
    pub(crate) fn new(flags: &[String], env: Option<String>, terminal: bool) -> Given {
        let env = env
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Given {
            flags: flags.to_vec(),
            env,
            terminal,
        }
    }
}

/// The ids of the pipeline's `uses: approval` stages.
pub(crate) fn approval_stages(pipeline: &Pipeline) -> Vec<&str> {
    pipeline
        .stages
        .iter()
        .filter(|s| matches!(&s.action, Action::Uses(u) if u.kind == Approval::NAME))
        .map(|s| s.id.as_str())
        .collect()
}

/// Checks that every `--approve NAME` names an approval stage of the pipeline.
pub(crate) fn check_flags(pipeline: &Pipeline, names: &[String]) -> Result<(), String> {
    let approvals = approval_stages(pipeline);
    for name in names {
        if approvals.contains(&name.as_str()) {
            continue;
        }
        let file = pipeline.file.display();
        let what = if pipeline.stage_by_name(name).is_some() {
            format!("`--approve {name}`: stage `{name}` of `{file}` is not `uses: approval`")
        } else {
            format!("`--approve {name}`: no stage `{name}` in `{file}`")
        };
        return Err(
            match (suggest(name, approvals.iter().copied()), &approvals[..]) {
                (Some(s), _) => format!("{what}; did you mean `{s}`?"),
                (None, []) => format!("{what}; it has no approval stage"),
                (None, all) => format!("{what}; its approval stages are: {}", all.join(", ")),
            },
        );
    }
    Ok(())
}

/// Names in `PORTCULLIS_APPROVE` that are no approval stage of the pipeline (the variable may
/// be set for several pipelines, so these are only warned about).
pub(crate) fn unknown_env_names<'a>(pipeline: &Pipeline, given: &'a Given) -> Vec<&'a str> {
    let approvals = approval_stages(pipeline);
    given
        .env
        .iter()
        .map(String::as_str)
        .filter(|n| !approvals.contains(n))
        .collect()
}

/// The environment an exported job of this stage runs in: `environment:` when written as a
/// plain value, else the stage id.
pub(crate) fn environment(with: &Node, stage: &str) -> String {
    if let NodeKind::Map(pairs) = &with.kind
        && let Some((_, value)) = pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some("environment"))
        && let Some(text) = value.as_str()
        && !text.contains("${{")
    {
        return text.to_owned();
    }
    stage.to_owned()
}

impl Kind for Approval {
    const NAME: &'static str = "approval";

    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<Approval> {
        if with.is_null() {
            return Some(Approval {
                message: DEFAULT_MESSAGE.to_owned(),
                timeout: None,
                approvers: Vec::new(),
            });
        }
        let f = v.fields(with, "`with` of `approval`", KEYS)?;
        let before = v.errors.len();
        let message = f
            .get("message")
            .and_then(|n| v.string(n, "`message`"))
            .unwrap_or_else(|| DEFAULT_MESSAGE.to_owned());
        let timeout = f.get("timeout").and_then(|n| v.duration(n, "`timeout`"));
        if let (Some(t), Some(n)) = (timeout, f.get("timeout"))
            && t.is_zero()
        {
            v.error(
                ConfigError::new("`timeout` must be longer than zero", n.span.clone(), "zero")
                    .help("leave `timeout` out to fail at once off a terminal, or give e.g. `30m`"),
            );
        }
        // Read by `export github` from the pipeline as written ([`environment`]); checked here.
        if let Some(n) = f.get("environment")
            && let Some(name) = v.string(n, "`environment`")
        {
            let fits = !name.is_empty()
                && name.len() <= 255
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _.-".contains(c));
            if !fits {
                v.error(
                    ConfigError::new(
                        format!("`{name}` is not an environment name"),
                        n.span.clone(),
                        "not an environment name",
                    )
                    .help("use letters, digits, spaces, `_`, `.` and `-`, e.g. `production`"),
                );
            }
        }
        let approvers = f.get("approvers").map_or_else(Vec::new, |n| {
            let NodeKind::Seq(items) = &n.kind else {
                v.error(
                    ConfigError::new(
                        "`approvers` must be a list of user names",
                        n.span.clone(),
                        format!("found {}", n.describe()),
                    )
                    .help("write e.g. `approvers: [alice, bob]`"),
                );
                return Vec::new();
            };
            let mut names = Vec::new();
            for item in items {
                match &item.kind {
                    NodeKind::Scalar { value, plain } if is_user_name(item, value, *plain) => {
                        names.push(value.trim().to_owned());
                    }
                    _ => v.error(
                        ConfigError::new(
                            "each entry of `approvers` must be a user name",
                            item.span.clone(),
                            format!("found {}", item.describe()),
                        )
                        .help("a user name as `$USER`, `GITHUB_ACTOR` or `GITLAB_USER_LOGIN` gives it; quote one made of digits"),
                    ),
                }
            }
            names
        });
        (v.errors.len() == before).then_some(Approval {
            message,
            timeout,
            approvers,
        })
    }

    fn with_schema() -> Value {
        json!({
            "description": "Settings of `uses: approval`: hold the stages that need it until a person approves.",
            "type": ["object", "null"],
            "additionalProperties": false,
            "properties": {
                "message": {
                    "description": "What the approver is asked (default `deploy to production?`).",
                    "type": "string"
                },
                "timeout": {
                    "description": "How long to wait for a decision at the prompt or, off a terminal, for `portcullis approve` (default: off a terminal, fail at once).",
                    "$ref": "#/definitions/duration"
                },
                "environment": {
                    "description": "The GitHub environment of the exported job, whose required reviewers approve (default: the stage id).",
                    "type": "string"
                },
                "approvers": {
                    "description": "User names allowed to approve (`$USER`, or `GITHUB_ACTOR` / `GITLAB_USER_LOGIN` in CI); anyone when absent.",
                    "type": "array",
                    "items": { "type": "string" }
                }
            }
        })
    }
}

impl BuiltinStage for Approval {
    fn describe(&self) -> String {
        self.describe_with(&[])
    }

    fn describe_with(&self, dependents: &[&str]) -> String {
        let mut text = if dependents.is_empty() {
            "waits for approval".to_owned()
        } else {
            format!("waits for approval of: {}", dependents.join(", "))
        };
        text.push_str(&format!(" (\"{}\")", one_line(&self.message)));
        if !self.approvers.is_empty() {
            text.push_str(&format!(", by {}", self.approvers.join(" or ")));
        }
        match self.timeout {
            Some(t) => text.push_str(&format!(
                ", up to {} for an answer",
                crate::config::duration::format(t)
            )),
            None => text.push_str(", off a terminal only with `--approve`"),
        }
        text
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            let plan = waiting_plan(cx, &self.message);
            for line in &plan {
                cx.log.line(line).await;
            }
            let decided = self.decide(cx, &plan).await;
            let decision = match decided {
                Ok(decision) => decision,
                Err(Undecided::Cancelled) => return KindOutcome::failed("cancelled".into()),
                Err(Undecided::Failed(reason)) => {
                    cx.log.line(&reason).await;
                    return failed(reason, String::new(), started);
                }
            };
            let record = decision.text(&self.message);
            // An approval by someone who may not give it is no decision: the stage fails, and
            // `approvals.json` records only decisions that stand.
            if decision.via == GITHUB_ENVIRONMENT && !self.approvers.is_empty() {
                cx.log
                    .line(&format!(
                        "`approvers` ({}) is not checked here: GitHub asked the required reviewers \
                         of this job's environment; list them there",
                        self.approvers.join(", ")
                    ))
                    .await;
            }
            if decision.approved
                && decision.via != GITHUB_ENVIRONMENT
                && !self.allowed(&decision.by)
            {
                let reason = format!(
                    "`{}` may not approve `{}`: its approvers are {}",
                    decision.by,
                    cx.stage,
                    self.approvers.join(", ")
                );
                cx.log.line(&reason).await;
                return failed(reason, record, started);
            }
            let record = decision.text(&self.message);
            if let Err(e) = save(&cx.run_dir, &cx.stage, &decision, &self.message) {
                let reason = format!(
                    "cannot record the decision in `{}`: {e}",
                    cx.run_dir.join("approvals.json").display()
                );
                return failed(reason, record, started);
            }
            cx.log.line(&decision.line(&cx.stage)).await;
            if !decision.approved {
                let reason = format!("rejected by {} ({})", decision.by, decision.via);
                return failed(reason, record, started);
            }
            let mut outcome = KindOutcome::passed();
            outcome.cases.push(CaseResult {
                name: "approval".into(),
                status: CaseStatus::Passed,
                duration: started.elapsed(),
                location: None,
                output: record,
            });
            outcome.outputs = vec![
                ("approved-by".into(), decision.by.clone()),
                ("approved-at".into(), decision.at.clone()),
            ];
            outcome
        })
    }
}

/// A failed stage with its `approval` test case.
fn failed(reason: String, record: String, started: Instant) -> KindOutcome {
    let mut outcome = KindOutcome::failed(reason.clone());
    outcome.cases.push(CaseResult {
        name: "approval".into(),
        status: CaseStatus::Failed {
            message: reason,
            body: String::new(),
        },
        duration: started.elapsed(),
        location: None,
        output: record,
    });
    outcome
}

/// How an exported GitHub job's approval is recorded: the environment's required reviewers
/// decided before the job started, and `by` is who started the run.
const GITHUB_ENVIRONMENT: &str = "--approve in GitHub Actions, after the environment's reviewers";

/// Why no decision was made.
#[derive(Debug)]
enum Undecided {
    Cancelled,
    Failed(String),
}

/// Who decided what, how and when.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    approved: bool,
    by: String,
    /// `--approve`, `PORTCULLIS_APPROVE`, `terminal` or `portcullis approve`.
    via: String,
    /// RFC 3339, UTC.
    at: String,
}

impl Decision {
    fn new(approved: bool, by: String, via: &str) -> Decision {
        Decision {
            approved,
            by,
            via: via.to_owned(),
            at: now(),
        }
    }

    fn word(&self) -> &'static str {
        if self.approved {
            "approved"
        } else {
            "rejected"
        }
    }

    fn line(&self, stage: &str) -> String {
        format!(
            "{} `{stage}`: {} by {} via {} at {}",
            if self.approved {
                "approval"
            } else {
                "rejection"
            },
            self.word(),
            self.by,
            self.via,
            self.at
        )
    }

    /// The decision as the JUnit case's `system-out` holds it.
    fn text(&self, message: &str) -> String {
        format!(
            "decision: {}\nby: {}\nvia: {}\nat: {}\nmessage: {}",
            self.word(),
            self.by,
            self.via,
            self.at,
            one_line(message)
        )
    }

    fn json(&self, message: &str) -> Value {
        json!({
            "decision": self.word(),
            "by": self.by,
            "via": self.via,
            "at": self.at,
            "message": message,
        })
    }

    /// A file `portcullis approve` wrote.
    fn parse(text: &str) -> Option<Decision> {
        let value: Value = serde_json::from_str(text).ok()?;
        let approved = match value.get("decision")?.as_str()? {
            "approved" => true,
            "rejected" => false,
            _ => return None,
        };
        Some(Decision {
            approved,
            by: value.get("by")?.as_str()?.to_owned(),
            via: value.get("via")?.as_str()?.to_owned(),
            at: value.get("at")?.as_str()?.to_owned(),
        })
    }
}

impl Approval {
    fn allowed(&self, user: &str) -> bool {
        self.approvers.is_empty() || self.approvers.iter().any(|a| a == user)
    }

    async fn decide(&self, cx: &mut StageContext, plan: &[String]) -> Result<Decision, Undecided> {
        let stage = cx.stage.clone();
        if cx.approvals.flags.contains(&stage) {
            // In GitHub Actions `--approve` is what an exported job passes once the reviewers
            // of its environment let it start; `GITHUB_ACTOR` started the run, and did not
            // necessarily review it.
            let via = if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
                GITHUB_ENVIRONMENT
            } else {
                "--approve"
            };
            return Ok(Decision::new(true, approver(), via));
        }
        if cx.approvals.env.contains(&stage) {
            return Ok(Decision::new(true, approver(), ENV));
        }
        let dir = approvals_dir(&cx.run_dir);
        let waiting = Waiting::mark(&dir, &stage, &self.message, &self.approvers)
            .map_err(|e| Undecided::Failed(format!("cannot create `{}`: {e}", dir.display())))?;
        let deadline = self.timeout.map(|t| Instant::now() + t);
        if cx.approvals.terminal {
            let user = terminal_user();
            if self.allowed(&user) {
                match self.ask(cx, &waiting, plan, &user, deadline).await {
                    Asked::Decided(decision) => return Ok(decision),
                    Asked::Stopped(why) => return Err(why),
                    Asked::NoTerminal(e) => {
                        cx.log
                            .line(&format!("cannot ask at the terminal (`/dev/tty`: {e})"))
                            .await;
                    }
                }
            } else {
                cx.log
                    .line(&format!(
                        "`{user}` is not among the approvers of `{stage}` ({}); not asking here",
                        self.approvers.join(", ")
                    ))
                    .await;
            }
        }
        let how = format!("`portcullis run --approve {stage}` or `{ENV}={stage}`");
        let Some(deadline) = deadline else {
            return Err(Undecided::Failed(format!(
                "`{stage}` needs approval and no one was asked (no terminal): approve it with \
                 {how}, or set `timeout:` in its `with:` to wait for `portcullis approve {stage}`"
            )));
        };
        cx.log
            .line(&format!(
                "waiting up to {} for `portcullis approve {stage} --run {}` (or reject with `--reject`)",
                crate::config::duration::format(self.timeout.unwrap_or_default()),
                cx.run_id
            ))
            .await;
        loop {
            if let Some(found) = waiting.decision()? {
                return Ok(found);
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out(&how));
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = cx.cancel.cancelled() => return Err(Undecided::Cancelled),
            }
        }
    }

    fn timed_out(&self, how: &str) -> Undecided {
        Undecided::Failed(format!(
            "no approval within {}; approve it ahead with {how}",
            crate::config::duration::format(self.timeout.unwrap_or_default())
        ))
    }

    /// Asks at the terminal while also watching for `portcullis approve`, the timeout and the
    /// run's cancellation. One question at a time: two approvals ready together ask in turn.
    async fn ask(
        &self,
        cx: &mut StageContext,
        waiting: &Waiting,
        plan: &[String],
        user: &str,
        deadline: Option<Instant>,
    ) -> Asked {
        static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let stage = cx.stage.clone();
        // While another approval's question is up, this one still takes a decision from
        // `portcullis approve` and keeps its own deadline.
        let waiting_how = format!("`portcullis run --approve {stage}` or `{ENV}={stage}`");
        let lock = ONE_AT_A_TIME.lock();
        tokio::pin!(lock);
        let _turn = loop {
            tokio::select! {
                turn = &mut lock => break turn,
                () = tokio::time::sleep(POLL) => {
                    match waiting.decision() {
                        Ok(Some(found)) => return Asked::Decided(found),
                        Err(why) => return Asked::Stopped(why),
                        Ok(None) => {}
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Asked::Stopped(self.timed_out(&waiting_how));
                    }
                }
                () = cx.cancel.cancelled() => return Asked::Stopped(Undecided::Cancelled),
            }
        };
        let tty = match Tty::open() {
            Ok(tty) => tty,
            Err(e) => return Asked::NoTerminal(e),
        };
        let mut question = String::new();
        for line in plan {
            question.push_str(line);
            question.push('\n');
        }
        if let Some(t) = self.timeout {
            question.push_str(&format!(
                "(no answer within {} rejects; another shell can answer with `portcullis approve {stage}`)\n",
                crate::config::duration::format(t)
            ));
        }
        question.push_str(&format!("Approve `{stage}`? [y/N]"));
        cx.log.prompt(question).await;
        let how = format!("`portcullis run --approve {stage}` or `{ENV}={stage}`");
        // One read for the whole wait: what was typed before a poll is not lost with it.
        let read = tty.read_line();
        tokio::pin!(read);
        let (asked, answered) = loop {
            let wait = deadline.map_or(POLL, |d| d.saturating_duration_since(Instant::now()));
            tokio::select! {
                line = &mut read => break match line {
                    Ok(Some(answer)) => {
                        let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
                        (Asked::Decided(Decision::new(yes, user.to_owned(), "terminal")), true)
                    }
                    // End of input (Ctrl-D) is no.
                    Ok(None) => (Asked::Decided(Decision::new(false, user.to_owned(), "terminal")), false),
                    Err(e) => (Asked::Stopped(Undecided::Failed(format!("cannot read the answer from the terminal: {e}"))), false),
                },
                () = tokio::time::sleep(wait.min(POLL)) => {
                    match waiting.decision() {
                        Ok(Some(found)) => break (Asked::Decided(found), false),
                        Err(why) => break (Asked::Stopped(why), false),
                        Ok(None) => {}
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break (Asked::Stopped(self.timed_out(&how)), false);
                    }
                }
                () = cx.cancel.cancelled() => break (Asked::Stopped(Undecided::Cancelled), false),
            }
        };
        cx.log.prompt_closed(answered).await;
        asked
    }
}

enum Asked {
    Decided(Decision),
    Stopped(Undecided),
    NoTerminal(std::io::Error),
}

/// The controlling terminal, opened on its own (not stdin, which may be a pipe) and read
/// without blocking: the runtime has one thread, which the rest of the run needs, and a read
/// blocked in another thread would keep portcullis from exiting after Ctrl-C.
struct Tty {
    file: std::fs::File,
}

/// How often the terminal is looked at for an answer.
const TTY_POLL: Duration = Duration::from_millis(50);

impl Tty {
    fn open() -> std::io::Result<Tty> {
        use nix::libc;
        // O_NONBLOCK belongs to this open file description alone: the shell's stdin is untouched.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/tty")?;
        // What was typed before the question must not answer it.
        nix::sys::termios::tcflush(&file, nix::sys::termios::FlushArg::TCIFLUSH)
            .map_err(std::io::Error::from)?;
        Ok(Tty { file })
    }

    /// One line (the terminal's line discipline delivers it whole); `None` at end of input.
    async fn read_line(&self) -> std::io::Result<Option<String>> {
        let mut line = Vec::new();
        loop {
            let mut chunk = [0u8; 256];
            match (&self.file).read(&mut chunk) {
                Ok(0) if line.is_empty() => return Ok(None),
                Ok(0) => return Ok(Some(String::from_utf8_lossy(&line).into_owned())),
                Ok(n) => {
                    line.extend_from_slice(&chunk[..n]);
                    if let Some(end) = line.iter().position(|b| *b == b'\n') {
                        line.truncate(end);
                        return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
                    }
                    if line.len() > MAX_ANSWER {
                        return Ok(Some(String::new()));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    tokio::time::sleep(TTY_POLL).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// What is shown before the question and written to the log: the message and the stages that
/// wait on the approval, each with what it does.
fn waiting_plan(cx: &StageContext, message: &str) -> Vec<String> {
    let pipeline = &cx.pipeline;
    let values = Values {
        vars: &cx.vars,
        outputs: &cx.outputs,
    };
    let dependents = crate::stages::dependents(pipeline, cx.idx);
    let mut lines = vec![format!("`{}` asks: {}", cx.stage, one_line(message))];
    if dependents.is_empty() {
        lines.push(format!("no stage waits on `{}`", cx.stage));
        return lines;
    }
    lines.push(format!("these stages wait on `{}`:", cx.stage));
    let width = dependents
        .iter()
        .map(|i| pipeline.stage(*i).id.len())
        .max()
        .unwrap_or(0);
    for (n, idx) in dependents.iter().enumerate() {
        let stage = pipeline.stage(*idx);
        let does = crate::plan::describe_action(&stage.action, pipeline, *idx, values);
        let when = if stage.condition.decides_status() {
            format!(
                " (if: {}, runs whatever is decided)",
                stage.condition.text()
            )
        } else if stage.condition.is_default() {
            String::new()
        } else {
            format!(" (if: {})", stage.condition.text())
        };
        lines.push(format!(
            "{:>4}. {:<width$}  {}{when}",
            n + 1,
            stage.id,
            one_line(&does)
        ));
    }
    lines
}

/// A user name in `approvers`: text, not a bare number (`3` is more likely a count than a
/// user's name; quoted, it is taken).
fn is_user_name(item: &Node, value: &str, plain: bool) -> bool {
    let number = plain && value.parse::<f64>().is_ok();
    !item.is_null() && !value.trim().is_empty() && !number
}

/// Text on one line, without control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

/// Who approves with `--approve`, `PORTCULLIS_APPROVE` or `portcullis approve`: in GitHub
/// Actions `GITHUB_ACTOR`, in GitLab CI `GITLAB_USER_LOGIN`, else `$USER`, else the name of
/// the user portcullis runs as.
pub(crate) fn approver() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("GITHUB_ACTIONS").as_deref() == Some("true")
        && let Some(actor) = var("GITHUB_ACTOR")
    {
        return actor;
    }
    if var("GITLAB_CI").is_some()
        && let Some(login) = var("GITLAB_USER_LOGIN")
    {
        return login;
    }
    var("USER").unwrap_or_else(terminal_user)
}

/// The person at the terminal: the user portcullis runs as.
fn terminal_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// `.portcullis/runs/<run-id>/approvals/`: what `portcullis approve` writes and reads.
pub(crate) fn approvals_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("approvals")
}

/// Whether `name` can be a stage id, and so a file name in [`approvals_dir`].
pub(crate) fn is_stage_id(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The marker `approvals/<stage>.waiting` that says a stage waits for a decision (with its
/// message, approvers and a nonce, for `portcullis approve`); removed when the stage stops
/// waiting. A decision counts only when it carries this wait's nonce: a file left from before
/// (or written there by a stage of the pipeline ahead of time) is removed when the wait begins,
/// and one without the nonce fails the stage. This keeps decisions to the wait they answer; it
/// cannot keep out a program that runs as the same user while the stage waits and reads the
/// marker, as `portcullis approve` does.
struct Waiting {
    dir: PathBuf,
    stage: String,
    nonce: String,
}

impl Waiting {
    fn mark(dir: &Path, stage: &str, message: &str, approvers: &[String]) -> std::io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        match std::fs::remove_file(dir.join(file_name(stage))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let nonce = nonce();
        let path = dir.join(format!("{}.waiting", file_name(stage)));
        let doc =
            json!({ "stage": stage, "message": message, "approvers": approvers, "nonce": nonce });
        write_atomic(&path, &format!("{doc:#}\n"))?;
        Ok(Waiting {
            dir: dir.to_path_buf(),
            stage: stage.to_owned(),
            nonce,
        })
    }

    /// The decision `portcullis approve` left for this wait, if any.
    fn decision(&self) -> Result<Option<Decision>, Undecided> {
        let path = self.dir.join(file_name(&self.stage));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Undecided::Failed(format!(
                    "cannot read `{}`: {e}",
                    path.display()
                )));
            }
        };
        let nonce = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("nonce").and_then(Value::as_str).map(str::to_owned));
        match Decision::parse(&text) {
            Some(found) if nonce.as_deref() == Some(self.nonce.as_str()) => Ok(Some(found)),
            _ => Err(Undecided::Failed(format!(
                "`{}` is not a decision `portcullis approve` made for this wait",
                path.display()
            ))),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(format!("{}.waiting", file_name(&self.stage))));
    }
}

/// A stage id as a file name: letters, digits, `_` and `-` as they are, anything else as `%XX`
/// (a matrix combination's `(`, `=`, spaces, a `/` in a value).
fn file_name(stage: &str) -> String {
    let mut out = String::new();
    for b in stage.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // A long matrix combination's name: a bounded prefix and a hash of the whole (the marker
    // itself holds the name).
    if out.len() > 150 {
        let mut cut = 120;
        while !out.is_char_boundary(cut)
            || out[..cut].ends_with('%')
            || out[..cut.saturating_sub(1)].ends_with('%')
        {
            cut -= 1;
        }
        out = format!(
            "{}~{:08x}",
            &out[..cut],
            crate::config::pipeline::short_hash(stage)
        );
    }
    out
}

/// The stage id a [`file_name`] stands for.
fn stage_of_file(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = name.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 128 random bits, in hex.
fn nonce() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        bytes[..8].copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `text` to a new file beside `path` and renames it into place, `0600`.
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Adds the decision to `approvals.json` in the run folder: every approval stage of the run,
/// by id. Stages of one run share the file, so updates take turns.
fn save(run_dir: &Path, stage: &str, decision: &Decision, message: &str) -> std::io::Result<()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = run_dir.join("approvals.json");
    let mut doc: serde_json::Map<String, Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    doc.insert(stage.to_owned(), decision.json(message));
    write_atomic(&path, &format!("{:#}\n", Value::Object(doc)))
}

/// What `portcullis approve` does: checks that `stage` waits in `run_dir` and that `user` may
/// decide, then leaves the decision where the stage looks, never replacing one already there.
/// Returns the stage's message.
pub(crate) fn decide_from_outside(
    run_dir: &Path,
    stage: &str,
    approved: bool,
    user: &str,
) -> Result<String, (String, Option<String>)> {
    let dir = approvals_dir(run_dir);
    let marker = dir.join(format!("{}.waiting", file_name(stage)));
    let waiting: Value = match std::fs::read_to_string(&marker) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_default(),
        Err(_) => {
            let others = waiting_stages(&dir);
            let help = if others.is_empty() {
                "no stage of this run waits for approval now; name the run with `--run RUN_ID`"
                    .to_owned()
            } else {
                format!("these stages wait: {}", others.join(", "))
            };
            return Err((
                format!(
                    "stage `{stage}` is not waiting for approval in `{}`",
                    run_dir.display()
                ),
                Some(help),
            ));
        }
    };
    let approvers: Vec<&str> = waiting["approvers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if approved && !approvers.is_empty() && !approvers.contains(&user) {
        return Err((
            format!("`{user}` may not approve `{stage}`"),
            Some(format!("its approvers are {}", approvers.join(", "))),
        ));
    }
    let decision = Decision::new(approved, user.to_owned(), "portcullis approve");
    let message = waiting["message"].as_str().unwrap_or_default().to_owned();
    let mut doc = decision.json(&message);
    doc["nonce"] = waiting["nonce"].clone();
    let text = format!("{doc:#}\n");
    // Written beside, then linked into place: the stage never reads half a file, and a second
    // `portcullis approve` cannot replace the first decision.
    let tmp = dir.join(format!(".{}.{}.tmp", file_name(stage), std::process::id()));
    let placed = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, dir.join(file_name(stage)))
    })();
    let _ = std::fs::remove_file(&tmp);
    match placed {
        Ok(()) => Ok(message),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err((
            format!("`{stage}` has a decision already"),
            Some("a decision is made once; start a new run to decide again".into()),
        )),
        Err(e) => Err((
            format!("cannot write the decision into `{}`: {e}", dir.display()),
            None,
        )),
    }
}

/// The stages that wait for a decision in an approvals folder.
fn waiting_stages(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.strip_suffix(".waiting")?.to_owned();
                    // The marker names its stage; its file name may be shortened.
                    let marker: Option<Value> = std::fs::read_to_string(e.path())
                        .ok()
                        .and_then(|t| serde_json::from_str(&t).ok());
                    Some(
                        marker
                            .and_then(|m| m["stage"].as_str().map(str::to_owned))
                            .unwrap_or_else(|| stage_of_file(&name)),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_reads_the_variable_as_a_comma_list() {
        let given = Given::new(&["a".into()], Some(" cutover, ,gate ".into()), false);
        assert_eq!(given.env, ["cutover", "gate"]);
        assert_eq!(given.flags, ["a"]);
        assert!(Given::new(&[], None, false).env.is_empty());
    }

    #[test]
    fn decisions_round_trip_through_their_file() {
        let d = Decision::new(true, "alice".into(), "portcullis approve");
        let text = d.json("go?").to_string();
        assert_eq!(Decision::parse(&text), Some(d));
        assert_eq!(Decision::parse("{}"), None);
        assert_eq!(
            Decision::parse(r#"{"decision":"maybe","by":"a","via":"b","at":"c"}"#),
            None
        );
    }

    #[test]
    fn describe_names_what_waits() {
        let a = Approval {
            message: "go?".into(),
            timeout: Some(Duration::from_secs(600)),
            approvers: vec!["alice".into()],
        };
        assert_eq!(
            a.describe_with(&["cutover", "notify"]),
            "waits for approval of: cutover, notify (\"go?\"), by alice, up to 10m for an answer"
        );
    }

    #[test]
    fn outside_decisions_need_a_waiting_stage_and_are_made_once() {
        let run = tempfile::tempdir().expect("temp dir");
        let err = decide_from_outside(run.path(), "gate", true, "alice").expect_err("not waiting");
        assert!(err.0.contains("not waiting"), "{err:?}");
        let dir = approvals_dir(run.path());
        let marker = Waiting::mark(&dir, "gate", "go?", &["bob".into()]).expect("mark");
        let err = decide_from_outside(run.path(), "gate", true, "alice").expect_err("not bob");
        assert!(err.0.contains("may not approve"), "{err:?}");
        assert_eq!(
            decide_from_outside(run.path(), "gate", true, "bob").expect("approved"),
            "go?"
        );
        let found = marker.decision().ok().flatten().expect("decision");
        assert!(found.approved);
        assert_eq!(found.by, "bob");
        let err = decide_from_outside(run.path(), "gate", false, "bob").expect_err("twice");
        assert!(err.0.contains("already"), "{err:?}");
        drop(marker);
        assert!(!dir.join("gate.waiting").exists());
    }

    #[test]
    fn a_decision_counts_only_for_the_wait_it_answers() {
        let run = tempfile::tempdir().expect("temp dir");
        let dir = approvals_dir(run.path());
        std::fs::create_dir_all(&dir).expect("mkdir");
        // Written ahead of the wait (by a stage of the pipeline, say): removed when it begins.
        let forged = r#"{"decision":"approved","by":"alice","via":"portcullis approve","at":"2020-01-01T00:00:00Z"}"#;
        std::fs::write(dir.join("gate"), forged).expect("write");
        let waiting = Waiting::mark(&dir, "gate", "go?", &[]).expect("mark");
        assert!(waiting.decision().expect("nothing yet").is_none());
        // Written during the wait without its nonce: the stage fails rather than take it.
        std::fs::write(dir.join("gate"), forged).expect("write");
        let Err(Undecided::Failed(why)) = waiting.decision() else {
            panic!("a decision without the nonce is refused")
        };
        assert!(why.contains("not a decision"), "{why}");
        std::fs::remove_file(dir.join("gate")).expect("remove");
        decide_from_outside(run.path(), "gate", true, "bob").expect("approved");
        assert!(waiting.decision().expect("read").expect("decided").approved);
    }

    #[test]
    fn matrix_stage_names_become_safe_file_names() {
        let long = format!("gate (env={})", "x/".repeat(120));
        assert!(file_name(&long).len() < 200);
        let run = tempfile::tempdir().expect("temp dir");
        let dir = approvals_dir(run.path());
        let waiting = Waiting::mark(&dir, &long, "go?", &[]).expect("a long name is marked");
        assert_eq!(waiting_stages(&dir), std::slice::from_ref(&long));
        decide_from_outside(run.path(), &long, true, "bob").expect("approved");
        assert!(waiting.decision().expect("read").expect("decided").approved);
        drop(waiting);
        for stage in ["gate", "gate (env=prod/eu)", "a b%c", "../x"] {
            let name = file_name(stage);
            assert!(!name.contains(['/', ' ', '.']), "{name}");
            assert_eq!(stage_of_file(&name), stage);
        }
        let run = tempfile::tempdir().expect("temp dir");
        let dir = approvals_dir(run.path());
        let waiting = Waiting::mark(&dir, "gate (env=prod/eu)", "go?", &[]).expect("mark");
        assert_eq!(waiting_stages(&dir), ["gate (env=prod/eu)"]);
        decide_from_outside(run.path(), "gate (env=prod/eu)", true, "bob").expect("approved");
        assert!(waiting.decision().expect("read").expect("decided").approved);
    }
}
