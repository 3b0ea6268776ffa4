//! Built-in stage kinds (`uses:`) and the one interface they all implement.
//!
//! The main type is the [`BuiltinStage`] trait; [`Kind`] adds what a kind declares once, beside
//! its code: its `uses:` name, how it reads its `with:` block and that block's JSON Schema.
//! [`REGISTRY`] lists every kind in one place; `config::load` is handed it. A kind never sees a
//! `${{ ... }}`: at validation it checks the `with:` tree expanded with what is known then, and when
//! its stage starts [`bind`] expands the tree with the run's values and the kind reads typed,
//! final values. At run time it gets a [`StageContext`] (environment, working directory, a log
//! that is masked and streamed like a script's, cancellation) and returns a [`KindOutcome`]:
//! pass or fail, the JUnit test cases it wants reported (one per finding or check), and the
//! outputs it publishes for later stages. A kind that changes the world brings its own rollback.
//! Adding a kind touches only this folder.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::kind::KindRegistry;
use crate::config::pipeline::{Pipeline, StageIdx, Uses};
use crate::config::template::{Outputs, TemplatePart, Values, expand_node};
use crate::config::validate::Validator;
use crate::config::yaml::Node;
use crate::pg::conn::ConnInfo;
use crate::runner::events::CaseResult;
use crate::runner::output::OutputSink;

pub(crate) mod approval;
pub(crate) mod backup_drill;
pub(crate) mod blue_green;
pub(crate) mod coverage;
pub(crate) mod http;
pub(crate) mod pg_dump;
pub(crate) mod ports;
pub(crate) mod postgres_check;

pub(crate) use futures_util::future::BoxFuture;

/// A built-in kind, configured from one stage's `with:` block.
pub(crate) trait BuiltinStage: Send + Sync + std::fmt::Debug {
    /// One line saying what the stage will do, for `plan` and `--dry-run`.
    fn describe(&self) -> String;

    /// [`BuiltinStage::describe`] for a kind whose line depends on where its stage sits:
    /// `dependents` are the ids of the stages that need it, directly or not, in the order they
    /// can start.
    fn describe_with(&self, dependents: &[&str]) -> String {
        let _ = dependents;
        self.describe()
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
    /// Outputs of the stages that ran, by stage then key; for a rollback, this stage's own too.
    pub(crate) outputs: Outputs,
    /// The stage log: masked, written to `<stage>.log` and streamed to the reporters.
    pub(crate) log: OutputSink,
    /// Cancelled when the run aborts; a kind stops what it is doing and returns.
    pub(crate) cancel: CancellationToken,
    /// The pipeline and the stage's place in it, for a kind that looks past its own `with:`
    /// (an approval shows the stages that wait on it).
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) idx: StageIdx,
    /// The stage's `${NAME}` values, secrets included: mask what is shown.
    pub(crate) vars: HashMap<String, String>,
    /// Approvals the run was given (`--approve`, `PORTCULLIS_APPROVE`), and whether a person
    /// can be asked at a terminal.
    pub(crate) approvals: Arc<approval::Given>,
}

/// A kind's database connection from its `url:`; `PG*` variables of the stage's environment
/// fill in what the URL leaves out.
pub(crate) fn conn_from(cx: &StageContext, url: &str) -> Result<ConnInfo, String> {
    let env: std::collections::HashMap<String, String> = cx.env.iter().cloned().collect();
    ConnInfo::parse(url, &env).map_err(|e| format!("`url`: {e}"))
}

/// The `url:` field of the PostgreSQL kinds' `with:` schemas, read by [`conn_from`].
pub(crate) fn pg_url_schema() -> serde_json::Value {
    serde_json::json!({
        "description": "A `postgresql://` URL or `key=value` string; `PG*` variables and `.pgpass` fill the rest.",
        "type": "string"
    })
}

/// How a kind's run or rollback ended.
#[derive(Debug)]
pub(crate) struct KindOutcome {
    /// `Err(reason)` fails the stage.
    pub(crate) result: Result<(), String>,
    pub(crate) cases: Vec<CaseResult>,
    pub(crate) outputs: Vec<(String, String)>,
    /// On a pass, one line on what the kind found (`line coverage 83.1%`), shown beside the
    /// stage's result in the terminal, the JSON summary and GitHub's job summary.
    pub(crate) note: Option<String>,
}

impl KindOutcome {
    pub(crate) fn passed() -> Self {
        KindOutcome {
            result: Ok(()),
            cases: Vec::new(),
            outputs: Vec::new(),
            note: None,
        }
    }

    pub(crate) fn failed(reason: String) -> Self {
        KindOutcome {
            result: Err(reason),
            ..KindOutcome::passed()
        }
    }
}

/// A built-in kind: its `uses:` name, how it reads its `with:`, and the schema of that block.
/// Both are declared once, in the kind's file, side by side.
pub(crate) trait Kind: BuiltinStage + Sized + 'static {
    const NAME: &'static str;

    /// Checks and types a `with:` tree whose values are already expanded; errors go to `v`.
    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<Self>;

    /// The JSON Schema of the `with:` block, for `portcullis schema`.
    fn with_schema() -> serde_json::Value;
}

/// One entry of the registry.
pub(crate) struct KindDef {
    pub(crate) name: &'static str,
    bind: fn(&Node, &mut Validator<'_>) -> Option<Arc<dyn BuiltinStage>>,
    pub(crate) schema: fn() -> serde_json::Value,
}

fn bind_as<K: Kind>(with: &Node, v: &mut Validator<'_>) -> Option<Arc<dyn BuiltinStage>> {
    K::validate(with, v).map(|k| Arc::new(k) as Arc<dyn BuiltinStage>)
}

const fn def<K: Kind>() -> KindDef {
    KindDef {
        name: K::NAME,
        bind: bind_as::<K>,
        schema: K::with_schema,
    }
}

/// Every built-in kind, in the one place they are listed. `config::load` is handed this.
pub(crate) struct Registry(&'static [KindDef]);

pub(crate) static REGISTRY: Registry = Registry(&[
    def::<http::Http>(),
    def::<ports::Ports>(),
    def::<postgres_check::PostgresCheck>(),
    def::<pg_dump::PgDump>(),
    def::<blue_green::BlueGreen>(),
    def::<backup_drill::BackupDrill>(),
    def::<coverage::Coverage>(),
    def::<approval::Approval>(),
]);

impl Registry {
    pub(crate) fn kinds(&self) -> &'static [KindDef] {
        self.0
    }

    fn find(&self, name: &str) -> Option<&'static KindDef> {
        self.0.iter().find(|k| k.name == name)
    }
}

impl KindRegistry for Registry {
    fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|k| k.name).collect()
    }

    fn check(&self, kind: &str, with: &Node, v: &mut Validator<'_>) -> Option<bool> {
        let def = self.find(kind)?;
        (def.bind)(with, v).map(|k| k.has_rollback())
    }
}

/// Binds a `uses:` stage to its values when it starts: the `with:` tree is expanded (the one
/// expansion, [`expand_node`]) and the kind reads the result. A value that only now became
/// known and does not fit fails the stage, with the file position of what was written.
pub(crate) fn bind(
    uses: &Uses,
    pipeline: &Pipeline,
    values: Values<'_>,
) -> Result<Arc<dyn BuiltinStage>, String> {
    let expanded = expand_node(&uses.with, values);
    if let Some(part) = expanded.missing {
        return Err(match part {
            TemplatePart::Output { stage, key } => {
                format!("`${{{{ {stage}.{key} }}}}`: stage `{stage}` published no output `{key}`")
            }
            other => format!("`{}` has no value", other.source()),
        });
    }
    let def = REGISTRY
        .find(uses.kind)
        .ok_or_else(|| format!("unknown stage kind `{}`", uses.kind))?;
    let mut v = Validator::for_values(&pipeline.source.text, &expanded);
    match (def.bind)(&expanded.node, &mut v) {
        Some(kind) if v.errors.is_empty() => Ok(kind),
        _ => {
            let first = v.errors.first().map_or_else(
                || "its `with:` is invalid".to_owned(),
                |e| {
                    let (line, col) = pipeline.source.line_col(e.span.start);
                    let help = e
                        .help
                        .as_deref()
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default();
                    format!(
                        "{}:{line}:{col}: {}: {}{help}",
                        pipeline.file.display(),
                        e.message,
                        e.label
                    )
                },
            );
            Err(first)
        }
    }
}

/// What a `uses:` stage (the one at `idx`) will do, for `plan` and `--dry-run`: the kind bound
/// to the values at hand, where secrets read `***` and outputs of stages not yet run stay as
/// written.
pub(crate) fn describe(
    uses: &Uses,
    pipeline: &Pipeline,
    idx: StageIdx,
    values: Values<'_>,
) -> String {
    let expanded = expand_node(&uses.with, values);
    let mut v = Validator::for_values(&pipeline.source.text, &expanded);
    match REGISTRY
        .find(uses.kind)
        .and_then(|d| (d.bind)(&expanded.node, &mut v))
    {
        Some(kind) => {
            let dependents: Vec<&str> = dependents(pipeline, idx)
                .into_iter()
                .map(|i| pipeline.stage(i).id.as_str())
                .collect();
            kind.describe_with(&dependents)
        }
        None => "settings known when it runs".to_owned(),
    }
}

/// The stages that need `idx`, directly or not, in the order they can start.
pub(crate) fn dependents(pipeline: &Pipeline, idx: StageIdx) -> Vec<StageIdx> {
    let edges: Vec<Vec<StageIdx>> = pipeline.stages.iter().map(|s| s.needs.clone()).collect();
    let below = crate::graph::descendants(&edges, idx);
    crate::graph::topological(&edges)
        .into_iter()
        .filter(|i| below.contains(i))
        .collect()
}
