//! Built-in stage kinds (`uses:`) and the one interface they all implement.
//!
//! The main type is the [`BuiltinStage`] trait. A kind checks and types its own `with:` block at
//! validation time ([`validate_kind`]), so its errors point into the pipeline file like any
//! other; at run time it gets a [`StageContext`] (environment, working directory, a log that is
//! masked and streamed like a script's, cancellation) and returns a [`KindOutcome`]: pass or
//! fail, the JUnit test cases it wants reported (one per finding or check), and the outputs it
//! publishes for later stages. A kind that changes the world brings its own rollback. The runner
//! knows nothing else about kinds, so adding one touches only this folder.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::errors::{ConfigError, suggest};
use crate::config::pipeline::{Template, TemplatePart};
use crate::config::validate::{Scope, Validator};
use crate::config::yaml::Node;
use crate::runner::events::CaseResult;
use crate::runner::output::OutputSink;

pub(crate) mod blue_green;
pub(crate) mod http;
pub(crate) mod pg_dump;
pub(crate) mod ports;
pub(crate) mod postgres_check;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A built-in kind, configured from one stage's `with:` block.
pub(crate) trait BuiltinStage: Send + Sync + std::fmt::Debug {
    /// The `uses:` name.
    fn kind(&self) -> &'static str;

    /// One line saying what the stage will do, for `plan` and `--dry-run`.
    fn describe(&self) -> String;

    /// The templates of its `with:` block, so that what looks at a stage from outside the runner
    /// (`export` noting which stages read outputs) sees them like a script's.
    fn templates(&self) -> Vec<&Template> {
        Vec::new()
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome>;

    /// Whether [`BuiltinStage::rollback`] undoes anything; the runner only calls it then.
    fn has_rollback(&self) -> bool {
        false
    }

    /// Undoes what a successful [`BuiltinStage::run`] changed; `cx.outputs` holds what that run
    /// published.
    fn rollback<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        let _ = cx;
        Box::pin(async { KindOutcome::passed() })
    }
}

/// What a kind's run or rollback sees.
pub(crate) struct StageContext {
    pub(crate) run_id: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) stage: String,
    pub(crate) workdir: PathBuf,
    /// The stage's whole environment (inherited, pipeline, secrets, stage `env`, `PORTCULLIS_*`),
    /// for child processes the kind starts.
    pub(crate) env: Vec<(String, String)>,
    /// Values for `${NAME}`.
    pub(crate) vars: HashMap<String, String>,
    /// Outputs of the stages that ran, by stage then key; for a rollback, this stage's own too.
    pub(crate) outputs: HashMap<String, HashMap<String, String>>,
    /// The stage log: masked, written to `<stage>.log` and streamed to the reporters.
    pub(crate) log: OutputSink,
    /// Cancelled when the run aborts; a kind stops what it is doing and returns.
    pub(crate) cancel: CancellationToken,
}

impl StageContext {
    /// Expands a template from `with:`; fails when it reads an output the stage did not publish.
    pub(crate) fn expand(&self, template: &Template) -> Result<String, String> {
        expand(template, &self.vars, &self.outputs)
    }
}

pub(crate) fn expand(
    template: &Template,
    vars: &HashMap<String, String>,
    outputs: &HashMap<String, HashMap<String, String>>,
) -> Result<String, String> {
    let mut missing = None;
    let value = template.expand(&mut |part| match part {
        TemplatePart::Var(name) => vars.get(name).cloned(),
        TemplatePart::Output { stage, key } => {
            let found = outputs.get(stage).and_then(|o| o.get(key)).cloned();
            if found.is_none() && missing.is_none() {
                missing = Some(format!(
                    "`${{{stage}.{key}}}`: stage `{stage}` published no output `{key}`"
                ));
            }
            found
        }
        TemplatePart::Literal(_) => None,
    });
    match missing {
        Some(m) => Err(m),
        None => Ok(value),
    }
}

/// How a kind's run or rollback ended.
#[derive(Debug)]
pub(crate) struct KindOutcome {
    /// `Err(reason)` fails the stage.
    pub(crate) result: Result<(), String>,
    pub(crate) cases: Vec<CaseResult>,
    pub(crate) outputs: Vec<(String, String)>,
}

impl KindOutcome {
    pub(crate) fn passed() -> Self {
        KindOutcome {
            result: Ok(()),
            cases: Vec::new(),
            outputs: Vec::new(),
        }
    }

    pub(crate) fn failed(reason: String) -> Self {
        KindOutcome {
            result: Err(reason),
            ..KindOutcome::passed()
        }
    }
}

/// Every built-in kind, by its `uses:` name.
pub(crate) const KINDS: &[&str] = &["http", "ports", "postgres-check", "pg-dump", "blue-green"];

/// Checks a stage's `with:` for its kind and builds the kind; errors go to `v`.
pub(crate) fn validate_kind(
    kind: &str,
    kind_node: &Node,
    with: &Node,
    v: &mut Validator<'_>,
    scope: &Scope<'_>,
) -> Option<Arc<dyn BuiltinStage>> {
    match kind {
        "http" => {
            http::Http::validate(with, v, scope).map(|k| Arc::new(k) as Arc<dyn BuiltinStage>)
        }
        "ports" => {
            ports::Ports::validate(with, v, scope).map(|k| Arc::new(k) as Arc<dyn BuiltinStage>)
        }
        "blue-green" => blue_green::BlueGreen::validate(with, v, scope)
            .map(|k| Arc::new(k) as Arc<dyn BuiltinStage>),
        "postgres-check" => postgres_check::PostgresCheck::validate(with, v, scope)
            .map(|k| Arc::new(k) as Arc<dyn BuiltinStage>),
        "pg-dump" => {
            pg_dump::PgDump::validate(with, v, scope).map(|k| Arc::new(k) as Arc<dyn BuiltinStage>)
        }
        other => {
            let help = match suggest(other, KINDS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("available kinds: {}", KINDS.join(", ")),
            };
            v.error(
                ConfigError::new(
                    format!("unknown stage kind `{other}`"),
                    kind_node.span.clone(),
                    "unknown kind",
                )
                .help(help),
            );
            None
        }
    }
}
