//! The validated pipeline: what `config::validate` produces once every check has passed.
//!
//! The main type is [`Pipeline`]. Nothing here can be invalid: needs point at real stages, the
//! graph has no cycle, templates only name variables that exist, durations are parsed. The runner
//! and the reporters rely on that and never re-check.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;

use std::collections::HashMap;

use super::expr::Expr;
use super::template::{Outputs, Values};
pub(crate) use super::template::{Template, TemplatePart};
use super::yaml::Node;

/// A stage id as a file name in the run folder: the id itself when it is a plain stage name;
/// else (a matrix combination's name holds what a file name cannot, such as `/`, may be long,
/// and two may differ only there) a readable prefix without blanks, and a hash of the whole
/// name to keep them apart.
pub(crate) fn file_stem(id: &str) -> String {
    let plain = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        return id.to_owned();
    }
    let mut readable: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_=,.()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if readable.starts_with('.') {
        readable.insert(0, '_');
    }
    format!("{readable}_{:08x}", short_hash(id))
}

/// 32 bits of FNV-1a: stable across runs and machines, to tell names apart in file names.
pub(crate) fn short_hash(text: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(hash >> 32).unwrap_or(0)
}

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
    /// Pipeline-wide environment, values still holding `${{ ... }}` references.
    pub(crate) env: IndexMap<String, Template>,
    pub(crate) secrets: IndexMap<String, SecretSource>,
    /// Most stages running at once.
    pub(crate) concurrency: usize,
    /// `metrics:`: the file each run writes its Prometheus metrics to, relative to the
    /// project's root.
    pub(crate) metrics: Option<String>,
    /// Variables of `env:` declared as a mapping (`required`, `description`), in file order.
    pub(crate) declared: IndexMap<String, Declared>,
    /// Stages in file order; [`StageIdx`] indexes this.
    pub(crate) stages: Vec<Stage>,
    /// The file's text, for errors found when a kind is bound to its values at run time.
    pub(crate) source: super::errors::SourceFile,
}

/// A variable of the pipeline's `env:` declared as a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Declared {
    /// No value in the file: each run gives one, by `--var` or the environment.
    pub(crate) required: bool,
    pub(crate) description: Option<String>,
}

impl Pipeline {
    /// The required variables a run of the `selected` stages reads and has no value for:
    /// neither in `cli_vars` nor in `env` (the process's environment), with their descriptions.
    pub(crate) fn missing_required(
        &self,
        cli_vars: &[(String, String)],
        env: &dyn Fn(&str) -> Option<String>,
        selected: &[bool],
    ) -> Vec<(String, Option<String>)> {
        self.declared
            .iter()
            .filter(|(name, d)| {
                d.required && !cli_vars.iter().any(|(k, _)| k == *name) && env(name).is_none()
            })
            .filter(|(name, _)| {
                (0..self.stages.len()).any(|i| {
                    selected.get(i).copied().unwrap_or(true) && self.reads(StageIdx(i), name)
                })
            })
            .map(|(name, d)| (name.clone(), d.description.clone()))
            .collect()
    }

    /// Whether stage `idx` reads variable `name`: in its templates (`run`, `command`, `with`,
    /// `env`, `workdir`, rollback; as `${{ NAME }}`, or as `$NAME` or `${NAME}` for a shell or a
    /// program reading its environment), in its condition, or through an entry of the
    /// pipeline's `env` (which every stage gets) that uses it. Loose on purpose: naming a
    /// variable that is not read costs nothing, missing one that is read breaks the stage.
    pub(crate) fn reads(&self, idx: StageIdx, name: &str) -> bool {
        let stage = self.stage(idx);
        let in_condition = stage.condition.expr.as_ref().is_some_and(|e| {
            e.names()
                .iter()
                .any(|n| matches!(n, super::expr::Name::Var(v) if v == name))
        });
        in_condition
            || stage.templates().iter().any(|t| t.names_variable(name))
            || self
                .env
                .iter()
                .any(|(k, t)| k != name && t.names_variable(name))
    }

    /// `cli_vars` with the value of each required variable they do not give, read from `env`.
    pub(crate) fn with_required_from_env(
        &self,
        cli_vars: &[(String, String)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<(String, String)> {
        let mut out = cli_vars.to_vec();
        for (name, d) in &self.declared {
            if d.required
                && !cli_vars.iter().any(|(k, _)| k == name)
                && let Some(value) = env(name)
            {
                out.push((name.clone(), value));
            }
        }
        out
    }

    pub(crate) fn stage_by_name(&self, name: &str) -> Option<StageIdx> {
        self.stages.iter().position(|s| s.id == name).map(StageIdx)
    }

    pub(crate) fn stage(&self, idx: StageIdx) -> &Stage {
        &self.stages[idx.0]
    }

    /// The values of `${{ NAME }}` for a run: `first` (the run's context, then secrets), then the
    /// pipeline's `env` in file order (each
    /// entry may use what came before it), with a `--var` replacing the `env` entry of its name
    /// and adding the others. Returns the values and the variables stages get in their
    /// environment besides the secrets. `run` passes resolved secrets; `plan` and `--dry-run`
    /// pass `***` for each.
    pub(crate) fn layer_vars(
        &self,
        first: &[(String, String)],
        cli_vars: &[(String, String)],
    ) -> (HashMap<String, String>, Vec<(String, String)>) {
        let mut vars: HashMap<String, String> = first.iter().cloned().collect();
        // A `--var` the `env` does not set is known before any `env` entry, which may use it.
        for (k, v) in cli_vars {
            if !self.env.contains_key(k) {
                vars.insert(k.clone(), v.clone());
            }
        }
        let outputs = Outputs::new();
        let mut env = Vec::new();
        for (name, template) in &self.env {
            let value = match cli_vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => v.clone(),
                None => {
                    template
                        .render(Values {
                            vars: &vars,
                            outputs: &outputs,
                        })
                        .text
                }
            };
            vars.insert(name.clone(), value.clone());
            env.push((name.clone(), value));
        }
        for (k, v) in cli_vars {
            if !self.env.contains_key(k) {
                env.push((k.clone(), v.clone()));
            }
        }
        (vars, env)
    }

    /// The secrets stage `idx` reads ([`Pipeline::reads`]), in the order of `secrets:`. A
    /// program that reads a secret from its environment without the stage naming it is not
    /// seen.
    pub(crate) fn secrets_read_by(&self, idx: StageIdx) -> Vec<String> {
        self.secrets
            .keys()
            .filter(|name| self.reads(idx, name))
            .cloned()
            .collect()
    }

    /// `${{ NAME }}` values for showing the pipeline without running it: the run's `context`
    /// ([`crate::context`]), secrets read `***`.
    pub(crate) fn preview_vars(
        &self,
        context: &[(String, String)],
        cli_vars: &[(String, String)],
    ) -> HashMap<String, String> {
        let mut first = context.to_vec();
        first.extend(self.secrets.keys().map(|k| (k.clone(), "***".to_owned())));
        self.layer_vars(&first, cli_vars).0
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
    /// The combination this stage runs, when it is one of a `matrix:`.
    pub(crate) matrix: Option<super::matrix::MatrixOf>,
}

impl Stage {
    /// The stage as the file names it: a matrix combination's matrix stage, else its id. What
    /// `--only` and `--skip` name, one exported job, and the name its outputs and
    /// `portcullis-skipped` cross between runs under.
    pub(crate) fn name_in_file(&self) -> &String {
        self.matrix.as_ref().map_or(&self.id, |m| &m.group)
    }

    /// The stage's id as a file name in the run folder (log, script, outputs): see
    /// [`file_stem`].
    pub(crate) fn file_stem(&self) -> String {
        file_stem(&self.id)
    }

    /// Every template of the stage: its action's, its rollback's, its `env` and `workdir`.
    pub(crate) fn templates(&self) -> Vec<Template> {
        let mut templates: Vec<Template> = Vec::new();
        for action in std::iter::once(&self.action).chain(self.rollback.as_ref()) {
            match action {
                Action::Run { script, .. } => templates.push(script.clone()),
                Action::Command { argv } => templates.extend(argv.iter().cloned()),
                Action::Uses(uses) => templates.extend(uses.templates()),
            }
        }
        templates.extend(self.env.values().cloned());
        templates.extend(self.workdir.iter().cloned());
        templates
    }

    /// Every output the stage reads, `STAGE.KEY` in its `if:` and `${{ STAGE.KEY }}` in its
    /// templates, in order of appearance and without repeats.
    pub(crate) fn outputs_read(&self) -> Vec<(String, String)> {
        let mut reads: Vec<(String, String)> = Vec::new();
        let mut add = |stage: String, key: String| {
            if !reads.iter().any(|(s, k)| *s == stage && *k == key) {
                reads.push((stage, key));
            }
        };
        // Its condition's first: read before the stage starts.
        if let Some(expr) = &self.condition.expr {
            for name in expr.names() {
                if let super::expr::Name::Output { stage, key } = name {
                    add(stage, key);
                }
            }
        }
        for template in self.templates() {
            for part in template.parts {
                if let TemplatePart::Output { stage, key } = part {
                    add(stage, key);
                }
            }
        }
        reads
    }
}

/// When a stage runs (DESIGN 2): `if:` as an expression ([`super::expr`]).
///
/// Without `failure()`, `always()` or `cancelled()` in it, a stage also needs every need to
/// have passed and the run not to have aborted, as in GitHub Actions (an implicit
/// `success() &&`). With one of them, the expression alone decides, once the needs have settled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    /// `None` for the default, `success()`.
    pub(crate) expr: Option<Expr>,
}

impl Condition {
    /// The default condition: every need passed.
    pub(crate) const SUCCESS: Condition = Condition { expr: None };

    /// Whether the expression decides on its own whether the stage runs after a failure (it
    /// calls `failure()`, `always()` or `cancelled()`); such a stage waits for its needs to
    /// settle whatever their outcome and is not cancelled by an abort.
    pub(crate) fn decides_status(&self) -> bool {
        self.expr.as_ref().is_some_and(Expr::decides_status)
    }

    /// The condition as written back: `success()` for the default.
    pub(crate) fn text(&self) -> String {
        self.expr
            .as_ref()
            .map_or_else(|| "success()".to_owned(), ToString::to_string)
    }

    /// Whether the condition is more than the default.
    pub(crate) fn is_default(&self) -> bool {
        self.expr.is_none()
    }
}

/// What a stage (or a rollback) does.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// A script run by the pipeline's shell (`bash -eo pipefail -c` by default).
    Run { script: Template, shell: Shell },
    /// An argv list, no shell.
    Command { argv: Vec<Template> },
    /// A built-in kind. Its `with:` block was checked at validation; the kind is bound to its
    /// expanded values when the stage starts.
    Uses(Uses),
}

/// `uses: KIND` with its `with:` block, as written.
#[derive(Debug, Clone)]
pub(crate) struct Uses {
    /// The kind's `uses:` name, as registered.
    pub(crate) kind: &'static str,
    /// The `with:` tree as written; every `${{ ... }}` in it was checked to resolve in this stage.
    pub(crate) with: Node,
    /// Whether the kind, as configured, undoes what it did when a later stage fails.
    pub(crate) has_rollback: bool,
}

impl Uses {
    /// Every template in `with:`, for what looks at a stage from outside the runner.
    pub(crate) fn templates(&self) -> Vec<Template> {
        let mut out = Vec::new();
        self.with.visit_scalars(&mut |_, text| {
            if let Ok((t, _)) = super::template::parse(text) {
                out.push(t);
            }
        });
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shell {
    /// The shell program and its flags; the path of the script file is appended. The script
    /// itself never appears in an argv, where every user of the machine could read it.
    pub(crate) argv: Vec<String>,
}

impl Shell {
    pub(crate) fn named(name: &str) -> Option<Shell> {
        let argv: &[&str] = match name {
            "bash" => &["bash", "--noprofile", "--norc", "-eo", "pipefail"],
            "sh" => &["sh", "-e"],
            "zsh" => &["zsh", "-e", "-o", "pipefail"],
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
