//! The validated pipeline: what `config::validate` produces once every check has passed.
//!
//! The main type is [`Pipeline`]. Nothing here can be invalid: needs point at real stages, the
//! graph has no cycle, templates only name variables that exist, durations are parsed. The runner
//! and the reporters rely on that and never re-check.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;

/// A stage's position in [`Pipeline::stages`], which is file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StageIdx(pub(crate) usize);

/// A whole pipeline file after validation.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    /// The `name:` key, or the file stem when absent.
    pub(crate) name: String,
    /// The file the pipeline was read from, as the user named it.
    pub(crate) file: PathBuf,
    /// Pipeline-wide environment, values still holding `${...}` references.
    pub(crate) env: IndexMap<String, Template>,
    pub(crate) secrets: IndexMap<String, SecretSource>,
    /// Most stages running at once.
    pub(crate) concurrency: usize,
    /// Stages in file order; [`StageIdx`] indexes this.
    pub(crate) stages: Vec<Stage>,
}

impl Pipeline {
    pub(crate) fn stage_by_name(&self, name: &str) -> Option<StageIdx> {
        self.stages.iter().position(|s| s.id == name).map(StageIdx)
    }

    pub(crate) fn stage(&self, idx: StageIdx) -> &Stage {
        &self.stages[idx.0]
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Stage {
    /// The key under `stages:`.
    pub(crate) id: String,
    /// 1-based line of the stage's key in the file, for annotations.
    pub(crate) line: u32,
    /// The `name:` key, for display; defaults to the id.
    pub(crate) display_name: String,
    pub(crate) needs: Vec<StageIdx>,
    pub(crate) condition: Condition,
    pub(crate) action: Action,
    pub(crate) env: IndexMap<String, Template>,
    pub(crate) workdir: Option<Template>,
    pub(crate) timeout: Duration,
    /// SIGTERM-to-SIGKILL grace period when this stage is cancelled or times out.
    pub(crate) grace: Duration,
    pub(crate) retries: Retries,
    pub(crate) allow_failure: bool,
    /// Globs, relative to the stage's working directory, of JUnit files to merge in.
    pub(crate) junit: Vec<String>,
    pub(crate) rollback: Option<Action>,
    /// Globs: the stage runs only when a file changed since `--base` matches one.
    pub(crate) paths: Vec<String>,
}

/// When a stage runs, relative to how its needs ended (DESIGN 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    /// Every need passed (the default).
    Success,
    /// The run has failed or was interrupted; waits for its needs to settle.
    Failure,
    /// Whatever happened; waits for its needs to settle.
    Always,
}

impl Condition {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "success",
            Condition::Failure => "failure",
            Condition::Always => "always",
        }
    }
}

/// What a stage (or a rollback) does.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// A script run by the pipeline's shell (`bash -eo pipefail -c` by default).
    Run { script: Template, shell: Shell },
    /// An argv list, no shell.
    Command { argv: Vec<Template> },
    /// A built-in kind, its `with:` block already checked and typed by the kind.
    Uses(std::sync::Arc<dyn crate::stages::BuiltinStage>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shell {
    /// The shell program and its flags; the script is appended as the last argument.
    pub(crate) argv: Vec<String>,
}

impl Shell {
    pub(crate) fn named(name: &str) -> Option<Shell> {
        let argv: &[&str] = match name {
            "bash" => &["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"],
            "sh" => &["sh", "-e", "-c"],
            "zsh" => &["zsh", "-e", "-o", "pipefail", "-c"],
            _ => return None,
        };
        Some(Shell {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retries {
    /// Extra attempts after the first failure.
    pub(crate) count: u32,
    /// Wait before the first retry; doubles each time, capped at [`Retries::MAX_BACKOFF`].
    pub(crate) backoff: Duration,
}

impl Retries {
    pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);

    pub(crate) fn delay_before(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(Self::MAX_BACKOFF)
    }
}

/// Where a secret's value comes from; resolved once, at run start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    Env(String),
    File(PathBuf),
    Command(Vec<String>),
}

/// A string with `${NAME}` and `${STAGE.KEY}` references, already checked to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplatePart {
    Literal(String),
    /// `${NAME}`: pipeline env, a secret, or a `--var`.
    Var(String),
    /// `${STAGE.KEY}`: an output of an ancestor stage.
    Output {
        stage: String,
        key: String,
    },
}

impl Template {
    /// A template with no references.
    pub(crate) fn literal(text: &str) -> Template {
        Template {
            parts: vec![TemplatePart::Literal(text.to_owned())],
        }
    }

    /// Expands every reference with `lookup`; a reference it cannot answer becomes empty.
    pub(crate) fn expand(&self, lookup: &mut dyn FnMut(&TemplatePart) -> Option<String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(s) => out.push_str(s),
                other => out.push_str(&lookup(other).unwrap_or_default()),
            }
        }
        out
    }

    /// The text as written, for `plan` and `--dry-run`.
    pub(crate) fn source(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(s) => out.push_str(&s.replace("${", "$${")),
                TemplatePart::Var(n) => out.push_str(&format!("${{{n}}}")),
                TemplatePart::Output { stage, key } => out.push_str(&format!("${{{stage}.{key}}}")),
            }
        }
        out
    }
}
