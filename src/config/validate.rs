//! From a parsed YAML tree to a [`Pipeline`], collecting every error of the file.
//!
//! The main type is [`Validator`]. It walks the tree once, key by key; each problem becomes a
//! [`ConfigError`] pointing at the exact value, and the walk goes on so that one run of
//! `portcullis validate` shows everything that is wrong. Only when the list is empty does a
//! [`Pipeline`] come out, so the rest of the program never meets an invalid one.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::Duration;

use indexmap::IndexMap;

use super::errors::{ConfigError, SourceFile, did_you_mean};
use super::expr::{self, Expr, Func, Name};
use super::kind::KindRegistry;
use super::matrix::MatrixSpec;
use super::pipeline::{
    Action, Condition, Declared, Pipeline, Retries, SecretSource, Shell, Stage, StageIdx, Template,
    TemplatePart, Uses,
};
use super::template::{ExpandedNode, Outputs, Values};
use super::yaml::{Node, NodeKind};
use super::{duration, matrix, template};

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// Names every stage sees in its environment, so `${{ PORTCULLIS_RUN_ID }}` is valid.
pub(crate) const BUILTIN_VARS: &[&str] = &[
    "PORTCULLIS_RUN_ID",
    "PORTCULLIS_STAGE",
    "PORTCULLIS_STATUS",
    "PORTCULLIS_OUTPUT",
    "PORTCULLIS_RUN_DIR",
    crate::context::BRANCH,
    crate::context::COMMIT,
    crate::context::TAG,
    crate::context::EVENT,
];

const TOP_KEYS: &[&str] = &[
    "version",
    "name",
    "env",
    "secrets",
    "defaults",
    "concurrency",
    "metrics",
    "stages",
];
const DEFAULT_KEYS: &[&str] = &["timeout", "shell", "grace", "workdir"];
const STAGE_KEYS: &[&str] = &[
    "name",
    "needs",
    "if",
    "run",
    "command",
    "uses",
    "with",
    "env",
    "workdir",
    "timeout",
    "grace",
    "retries",
    "allow-failure",
    "junit",
    "rollback",
    "paths",
    "matrix",
    "fail-fast",
];

/// Validates a parsed file. `vars` are the `--var`s given on the command line; `cpus`
/// is the default concurrency; `kinds` checks each `uses:` stage's `with:`.
pub(crate) fn validate(
    root: &Node,
    source: &SourceFile,
    vars: &[(String, String)],
    cpus: usize,
    kinds: &dyn KindRegistry,
) -> Result<Pipeline, Vec<ConfigError>> {
    let mut v = Validator {
        text: &source.text,
        errors: Vec::new(),
        deferred: Vec::new(),
        substituted: Vec::new(),
        kinds: Some(kinds),
    };
    let pipeline = v.pipeline(root, source, vars, cpus);
    match pipeline {
        Some(p) if v.errors.is_empty() => Ok(p),
        _ => Err(v.errors),
    }
}

/// Walks the tree and collects errors. Built-in kinds use it too, to check their `with:`.
pub(crate) struct Validator<'a> {
    text: &'a str,
    pub(crate) errors: Vec<ConfigError>,
    /// Spans of values whose references get their values only at run time (secrets, outputs,
    /// `--var`): a kind's complaint about such a value waits until the stage starts, when the
    /// kind is bound to the real value.
    deferred: Vec<Range<usize>>,
    /// Spans of values that were expanded, with what they became, named in errors about them.
    substituted: Vec<(Range<usize>, String)>,
    kinds: Option<&'a dyn KindRegistry>,
}

/// The keys of one mapping, checked for unknown and duplicate entries.
pub(crate) struct Fields<'n> {
    pub(crate) span: Range<usize>,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    pub(crate) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, k, _)| k.span.clone())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'n str, &'n Node, &'n Node)> + '_ {
        self.entries.iter().copied()
    }
}

/// Names a template may use in one place, and the stages whose outputs it may read.
pub(crate) struct Scope<'s> {
    pub(crate) vars: &'s HashSet<String>,
    /// `None` where outputs cannot be used at all (pipeline-level `env`).
    pub(crate) ancestors: Option<&'s crate::graph::StageSet>,
    pub(crate) stages: &'s [String],
    /// Values already known at validation (pipeline and stage `env` entries that depend on
    /// nothing given at run time), for checking a kind's `with:` before anything runs.
    pub(crate) known: &'s HashMap<String, String>,
    /// Secrets, and `env` entries whose value holds one: never expanded into an argv.
    pub(crate) secret_bearing: &'s HashSet<String>,
    /// The keys `${{ matrix.KEY }}` may name here: the stage's own matrix, if it has one.
    pub(crate) matrix_keys: &'s [String],
    /// Stages with a `matrix:`, whose outputs cannot be read (which combination's?).
    pub(crate) matrix_stages: &'s HashSet<String>,
}

impl<'a> Validator<'a> {
    /// A validator for one expanded `with:` tree: errors inside its deferred spans are dropped,
    /// and errors about an expanded value say what it became.
    pub(crate) fn for_values(text: &'a str, expanded: &ExpandedNode) -> Validator<'a> {
        Validator {
            text,
            errors: Vec::new(),
            deferred: expanded.deferred.clone(),
            substituted: expanded.substituted.clone(),
            kinds: None,
        }
    }

    pub(crate) fn error(&mut self, mut error: ConfigError) {
        let within = |d: &Range<usize>| d.start <= error.span.start && error.span.end <= d.end;
        if self.deferred.iter().any(within) {
            return;
        }
        if let Some((_, value)) = self.substituted.iter().find(|(d, _)| within(d)) {
            error.label = format!("{} (reads `{value}` once expanded)", error.label);
        }
        self.errors.push(error);
    }

    fn mismatch(&mut self, node: &Node, what: &str, expected: &str) {
        self.error(
            ConfigError::new(
                format!("{what} must be {expected}"),
                node.span.clone(),
                format!("found {}", node.describe()),
            )
            .help(format!("write {what} as {expected}")),
        );
    }

    /// A mapping's fields; unknown keys get a "did you mean", duplicates point at both.
    pub(crate) fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let NodeKind::Map(pairs) = &node.kind else {
            if !node.is_null() {
                self.mismatch(node, what, "a mapping");
            }
            return None;
        };
        let mut entries: Vec<(&str, &Node, &Node)> = Vec::new();
        for (key, value) in pairs {
            let Some(name) = key.as_str() else {
                self.mismatch(key, &format!("a key of {what}"), "a string");
                continue;
            };
            if let Some((_, first, _)) = entries.iter().find(|(k, _, _)| *k == name) {
                self.error(
                    ConfigError::new(
                        format!("`{name}` is set twice in {what}"),
                        key.span.clone(),
                        "set again here",
                    )
                    .related(first.span.clone(), "first set here")
                    .help("keep one of the two"),
                );
                continue;
            }
            if !allowed.is_empty() && !allowed.contains(&name) {
                let help = did_you_mean(name, allowed.iter().copied())
                    .unwrap_or_else(|| format!("{what} takes: {}", allowed.join(", ")));
                self.error(
                    ConfigError::new(
                        format!("unknown key `{name}` in {what}"),
                        key.span.clone(),
                        "unknown key",
                    )
                    .help(help),
                );
                continue;
            }
            entries.push((name, key, value));
        }
        Some(Fields {
            span: node.span.clone(),
            entries,
        })
    }

    pub(crate) fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { value, .. } if !node.is_null() => Some(value.clone()),
            _ => {
                self.mismatch(node, what, "a string");
                None
            }
        }
    }

    /// A display name (`name:` of the pipeline or a stage): one line of plain text, since it
    /// reaches the terminal, GitHub's workflow commands and the job summary.
    fn display_name(&mut self, node: &Node, what: &str) -> Option<String> {
        let name = self.string(node, what)?;
        let bad = name.chars().find(|c| {
            c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(c)
                || ('\u{2066}'..='\u{2069}').contains(c)
        });
        if let Some(c) = bad {
            self.error(
                ConfigError::new(
                    format!("{what} holds the control character U+{:04X}", u32::from(c)),
                    node.span.clone(),
                    "not plain text",
                )
                .help("a name is one line of plain text; it is shown in the terminal, reports and GitHub"),
            );
            return None;
        }
        Some(name)
    }

    /// A string field of a kind's `with:` that must be there.
    pub(crate) fn required_string(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        kind: &str,
        help: &str,
    ) -> Option<String> {
        match f.get(key) {
            Some(n) => self.string(n, &format!("`{key}`")),
            None => {
                self.error(
                    ConfigError::new(
                        format!("`{kind}` needs `{key}`"),
                        f.span.clone(),
                        format!("no `{key}`"),
                    )
                    .help(help),
                );
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.kind {
            NodeKind::Scalar { value, plain: true } if value == "true" => Some(true),
            NodeKind::Scalar { value, plain: true } if value == "false" => Some(false),
            _ => {
                self.mismatch(node, what, "`true` or `false`");
                None
            }
        }
    }

    pub(crate) fn uint(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<u64> {
        let parsed = match &node.kind {
            NodeKind::Scalar { value, plain: true } => value.parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(_) => {
                self.error(
                    ConfigError::new(
                        format!("{what} is out of range"),
                        node.span.clone(),
                        "out of range",
                    )
                    .help(format!("use a whole number from {min} to {max}")),
                );
                None
            }
            None => {
                self.mismatch(node, what, "a whole number");
                None
            }
        }
    }

    pub(crate) fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = match &node.kind {
            NodeKind::Scalar { value, .. } if !node.is_null() => value,
            _ => {
                self.mismatch(node, what, "a duration");
                return None;
            }
        };
        match duration::parse(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    ConfigError::new(
                        format!("{what} is not a valid duration"),
                        node.span.clone(),
                        e,
                    )
                    .help("write a number and a unit: `500ms`, `90s`, `15m`, `1h`, `1h30m`"),
                );
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one.
    pub(crate) fn string_list<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
    ) -> Vec<(String, &'n Node)> {
        match &node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|item| match &item.kind {
                    NodeKind::Scalar { value, .. } if !item.is_null() => {
                        Some((value.clone(), item))
                    }
                    _ => {
                        self.mismatch(item, &format!("each entry of {what}"), "a string");
                        None
                    }
                })
                .collect(),
            NodeKind::Scalar { .. } if !node.is_null() => self
                .string(node, what)
                .map(|s| (s, node))
                .into_iter()
                .collect(),
            _ => {
                self.mismatch(node, what, "a list of strings");
                Vec::new()
            }
        }
    }

    /// Parses `${{ ... }}` references in a string value and checks each against `scope`.
    pub(crate) fn template(
        &mut self,
        node: &Node,
        value: &str,
        scope: &Scope<'_>,
    ) -> Option<Template> {
        let (parsed, refs) = match template::parse(value) {
            Ok(ok) => ok,
            Err(e) => {
                let span = self.locate(node, &value[e.range.clone()]);
                self.error(ConfigError::new(e.message, span, "here").help(
                    "write `${{ NAME }}` or `${{ STAGE.KEY }}`; `$${{` stands for a literal `${{`",
                ));
                return None;
            }
        };
        let mut ok = true;
        for reference in refs {
            let span = self.locate(node, &value[reference.range.clone()]);
            match &reference.part {
                TemplatePart::Var(name) if !scope.vars.contains(name) => {
                    ok = false;
                    let help = did_you_mean(name, scope.vars.iter().map(String::as_str)).unwrap_or_else(|| format!(
                            "define `{name}` under `env:` or `secrets:`, or pass `--var {name}=VALUE`; \
                             the shell's own variables (`$NAME`, `${{NAME}}`) are left to the shell"
                        ));
                    self.error(
                        ConfigError::new(
                            format!("`${{{{ {name} }}}}` is not defined"),
                            span,
                            "unknown name",
                        )
                        .help(help),
                    );
                }
                TemplatePart::Output { stage, key } => {
                    let shown = format!("${{{{ {stage}.{key} }}}}");
                    ok &= self.output_reference(stage, key, &shown, span, scope);
                }
                TemplatePart::Var(_) | TemplatePart::Literal(_) => {}
            }
        }
        ok.then_some(parsed)
    }

    /// Checks a reference to `STAGE.KEY` (written `shown`): an output of an ancestor that has no
    /// matrix, or `matrix.KEY` of the stage's own matrix.
    fn output_reference(
        &mut self,
        stage: &str,
        key: &str,
        shown: &str,
        span: Range<usize>,
        scope: &Scope<'_>,
    ) -> bool {
        if stage == matrix::MATRIX {
            if scope.matrix_keys.iter().any(|k| k == key) {
                return true;
            }
            let help = if scope.matrix_keys.is_empty() {
                "`matrix.KEY` names a value of the stage's own `matrix:`, and this stage has none"
                    .to_owned()
            } else {
                did_you_mean(key, scope.matrix_keys.iter().map(String::as_str)).unwrap_or_else(
                    || format!("the matrix's keys are: {}", scope.matrix_keys.join(", ")),
                )
            };
            self.error(
                ConfigError::new(
                    format!("`{shown}` is not a key of the matrix"),
                    span,
                    "unknown key",
                )
                .help(help),
            );
            return false;
        }
        let Some(ancestors) = scope.ancestors else {
            self.error(
                ConfigError::new(
                    format!("`{shown}` reads a stage output where no stage has run yet"),
                    span,
                    "stage output",
                )
                .help("read stage outputs in a stage's `run`, `command`, `env`, `with` or `if`"),
            );
            return false;
        };
        let position = scope.stages.iter().position(|s| s == stage);
        if !position.is_some_and(|i| ancestors.contains(StageIdx(i))) {
            let (message, help) = if scope.stages.iter().any(|s| s == stage) {
                (
                    format!(
                        "`{shown}` reads an output of `{stage}`, which is not among this stage's needs"
                    ),
                    format!(
                        "add `{stage}` to `needs:` (directly or through another stage) so it has run first"
                    ),
                )
            } else {
                let help = did_you_mean(stage, scope.stages.iter().map(String::as_str))
                    .unwrap_or_else(|| "name a stage this one needs".to_owned());
                (format!("`{shown}` names no stage `{stage}`"), help)
            };
            self.error(ConfigError::new(message, span, "not an ancestor").help(help));
            return false;
        }
        if scope.matrix_stages.contains(stage) {
            self.error(
                ConfigError::new(
                    format!("`{shown}` reads an output of `{stage}`, which runs once per matrix combination"),
                    span,
                    "a matrix stage",
                )
                .help("have a stage without a matrix, after it, publish the value to read"),
            );
            return false;
        }
        true
    }

    /// The source span of `needle` inside `node`, or the node's own span when escapes or
    /// folding make the value differ from its source text.
    fn locate(&self, node: &Node, needle: &str) -> Range<usize> {
        let source = self.text.get(node.span.clone()).unwrap_or_default();
        match source.find(needle) {
            Some(at) if !needle.is_empty() => {
                node.span.start + at..node.span.start + at + needle.len()
            }
            _ => node.span.clone(),
        }
    }

    fn pipeline(
        &mut self,
        root: &Node,
        source: &SourceFile,
        cli_vars: &[(String, String)],
        cpus: usize,
    ) -> Option<Pipeline> {
        if root.is_null() {
            self.error(
                ConfigError::new("the pipeline file is empty", 0..0, "empty")
                    .help("start with `version: 1` and a `stages:` mapping"),
            );
            return None;
        }
        let top = self.fields(root, "the pipeline", TOP_KEYS)?;
        match top.get("version") {
            None => self.error(
                ConfigError::new(
                    "the pipeline has no `version`",
                    top.span.start..top.span.start,
                    "missing",
                )
                .help("add `version: 1` at the top of the file"),
            ),
            Some(node) => {
                if let Some(n) = self.uint(node, "`version`", 0, u64::MAX)
                    && n != 1
                {
                    self.error(
                        ConfigError::new(
                            format!("pipeline version {n} is not supported"),
                            node.span.clone(),
                            "unsupported",
                        )
                        .help("this portcullis reads `version: 1`"),
                    );
                }
            }
        }
        let name = match top.get("name") {
            Some(node) => self.display_name(node, "`name`").unwrap_or_default(),
            None => source
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into()),
        };
        let concurrency = match top.get("concurrency") {
            Some(node) => self
                .uint(node, "`concurrency`", 1, 1024)
                .map_or(cpus, |n| n as usize),
            None => cpus,
        };

        let metrics = top.get("metrics").and_then(|n| self.string(n, "`metrics`"));
        let secrets = top
            .get("secrets")
            .map(|n| self.secrets(n))
            .unwrap_or_default();
        let mut vars: HashSet<String> = BUILTIN_VARS.iter().map(|s| (*s).to_owned()).collect();
        vars.extend(cli_vars.iter().map(|(k, _)| k.clone()));
        vars.extend(secrets.keys().cloned());
        let env_node = top.get("env");
        if let Some(fields) = env_node.and_then(|n| self.fields(n, "`env`", &[])) {
            vars.extend(fields.iter().map(|(k, _, _)| k.to_owned()));
        }

        let stage_node = top.get("stages");
        let stage_fields = match stage_node {
            Some(node) => self.fields(node, "`stages`", &[]),
            None => {
                self.error(
                    ConfigError::new(
                        "the pipeline has no `stages`",
                        top.span.start..top.span.start,
                        "missing",
                    )
                    .help("add a `stages:` mapping with at least one stage"),
                );
                None
            }
        };
        let stage_ids: Vec<String> = stage_fields
            .as_ref()
            .map(|f| f.iter().map(|(k, _, _)| k.to_owned()).collect())
            .unwrap_or_default();
        let matrix_stages: HashSet<String> = stage_fields
            .as_ref()
            .map(|f| {
                f.iter()
                    .filter(|(_, _, node)| {
                        matches!(&node.kind, NodeKind::Map(pairs) if pairs.iter().any(|(k, _)| k.as_str() == Some("matrix")))
                    })
                    .map(|(k, _, _)| k.to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let nothing_known = HashMap::new();
        let mut declared: IndexMap<String, Declared> = IndexMap::new();
        let secret_names: HashSet<String> = secrets.keys().cloned().collect();
        let env = {
            let scope = Scope {
                vars: &vars,
                ancestors: None,
                stages: &stage_ids,
                known: &nothing_known,
                secret_bearing: &secret_names,
                matrix_keys: &[],
                matrix_stages: &matrix_stages,
            };
            env_node
                .map(|n| self.env(n, &scope, "`env`", Some(&mut declared)))
                .unwrap_or_default()
        };
        let cli_names: Vec<String> = cli_vars.iter().map(|(k, _)| k.clone()).collect();
        let known = known_values(&env, &cli_names, cli_vars.iter().cloned().collect());
        let secret_bearing = bearing_secrets(&env, secret_names.clone());

        let defaults = top
            .get("defaults")
            .and_then(|n| self.fields(n, "`defaults`", DEFAULT_KEYS));
        let default_timeout = defaults
            .as_ref()
            .and_then(|d| d.get("timeout"))
            .and_then(|n| self.duration(n, "`timeout`"));
        let default_grace = defaults
            .as_ref()
            .and_then(|d| d.get("grace"))
            .and_then(|n| self.duration(n, "`grace`"));
        let default_shell = defaults
            .as_ref()
            .and_then(|d| d.get("shell"))
            .and_then(|n| self.shell(n));
        let default_workdir = defaults
            .as_ref()
            .and_then(|d| d.get("workdir"))
            .and_then(|n| {
                let s = self.string(n, "`workdir`")?;
                let scope = Scope {
                    vars: &vars,
                    ancestors: None,
                    stages: &stage_ids,
                    known: &known,
                    secret_bearing: &secret_bearing,
                    matrix_keys: &[],
                    matrix_stages: &matrix_stages,
                };
                self.template(n, &s, &scope)
            });
        let defaults = StageDefaults {
            workdir: default_workdir,
            timeout: default_timeout.unwrap_or(DEFAULT_TIMEOUT),
            grace: default_grace.unwrap_or(DEFAULT_GRACE),
            shell: default_shell
                .unwrap_or_else(|| Shell::named("bash").unwrap_or(Shell { argv: Vec::new() })),
        };

        let stage_fields = stage_fields?;
        if stage_ids.is_empty() {
            self.error(
                ConfigError::new(
                    "the pipeline has no stages",
                    stage_fields.span.clone(),
                    "empty",
                )
                .help("add at least one stage under `stages:`"),
            );
            return None;
        }
        for (id, key, _) in stage_fields.iter() {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                self.error(
                    ConfigError::new(format!("`{id}` is not a valid stage name"), key.span.clone(), "invalid name")
                        .help("use letters, digits, `-` and `_`; the name is used in file names and in `${{ STAGE.KEY }}`"),
                );
            } else if let Some(other) = stage_ids
                .iter()
                .take_while(|o| o.as_str() != id)
                .find(|o| o.replace('-', "_") == id.replace('-', "_"))
            {
                // Outputs cross between runs as `PORTCULLIS_OUTPUT_<STAGE>__<KEY>`, `-` written
                // `_`: the two would read each other's.
                self.error(
                    ConfigError::new(
                        format!("`{id}` and `{other}` differ only by `-` and `_`"),
                        key.span.clone(),
                        "same name between runs",
                    )
                    .help("rename one: their outputs would cross between runs under one variable name"),
                );
            } else if id == matrix::MATRIX {
                self.error(
                    ConfigError::new("`matrix` cannot name a stage", key.span.clone(), "reserved")
                        .help("`${{ matrix.KEY }}` reads a value of a stage's matrix; give the stage another name"),
                );
            }
        }

        // Needs first, over all stages: the ancestor sets that templates check against need the
        // whole graph, and a cycle must be reported once, not per stage.
        let stage_nodes: Vec<(&str, &Node, &Node)> = stage_fields.iter().collect();
        let positions: HashMap<&str, usize> = stage_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let needs: Vec<Vec<(StageIdx, Range<usize>)>> = stage_nodes
            .iter()
            .map(|(id, _, node)| self.needs(id, node, &stage_ids, &positions))
            .collect();
        let edges: Vec<Vec<StageIdx>> = needs
            .iter()
            .map(|n| n.iter().map(|(i, _)| *i).collect())
            .collect();
        if let Some(cycle) = crate::graph::find_cycle(&edges) {
            let names: Vec<&str> = cycle.iter().map(|i| stage_ids[i.0].as_str()).collect();
            let mut circle = names.join(" -> ");
            circle.push_str(" -> ");
            circle.push_str(names[0]);
            let mut error: Option<ConfigError> = None;
            for (pos, stage) in cycle.iter().enumerate() {
                let next = cycle[(pos + 1) % cycle.len()];
                let span = needs[stage.0]
                    .iter()
                    .find(|(i, _)| *i == next)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                let label = format!("`{}` needs `{}`", stage_ids[stage.0], stage_ids[next.0]);
                error = Some(match error {
                    None => {
                        ConfigError::new(format!("the stages form a cycle: {circle}"), span, label)
                    }
                    Some(e) => e.related(span, label),
                });
            }
            if let Some(e) = error {
                self.error(e.help("remove one of these needs to break the cycle"));
            }
        }
        let ancestors = crate::graph::ancestors(&edges);

        let mut stages = Vec::new();
        let mut specs = Vec::new();
        for (pos, (id, key, node)) in stage_nodes.iter().enumerate() {
            let scope = Scope {
                vars: &vars,
                ancestors: Some(&ancestors[pos]),
                stages: &stage_ids,
                known: &known,
                secret_bearing: &secret_bearing,
                matrix_keys: &[],
                matrix_stages: &matrix_stages,
            };
            if let Some((stage, spec)) =
                self.stage(id, key, node, edges[pos].clone(), &scope, &defaults)
            {
                stages.push(stage);
                specs.push(spec);
            }
        }
        if stages.len() != stage_ids.len() {
            return None;
        }
        let stages = matrix::expand(stages, specs);
        Some(Pipeline {
            name,
            file: source.path.clone(),
            env,
            secrets,
            concurrency,
            metrics,
            declared,
            stages,
            source: source.clone(),
        })
    }

    /// An `env:` mapping. The pipeline's own (`declared` given) may also declare a variable as a
    /// mapping: `{ required: true, description: ... }` (no value here: `run` demands one) or
    /// `{ default: VALUE, description: ... }`.
    fn env(
        &mut self,
        node: &Node,
        scope: &Scope<'_>,
        what: &str,
        mut declared: Option<&mut IndexMap<String, Declared>>,
    ) -> IndexMap<String, Template> {
        let mut env = IndexMap::new();
        let Some(fields) = self.fields(node, what, &[]) else {
            return env;
        };
        for (name, key, value) in fields.iter() {
            if !is_env_name(name) {
                self.error(
                    ConfigError::new(
                        format!("`{name}` is not a valid environment variable name"),
                        key.span.clone(),
                        "invalid name",
                    )
                    .help("use letters, digits and `_`, not starting with a digit"),
                );
                continue;
            }
            if let NodeKind::Map(_) = &value.kind {
                let Some(declared) = declared.as_deref_mut() else {
                    self.error(
                        ConfigError::new(
                            format!("`{name}` must be a value here"),
                            value.span.clone(),
                            "a mapping",
                        )
                        .help("only the pipeline's own `env:` declares `{ required: true, description: ... }`"),
                    );
                    continue;
                };
                if let Some((decl, default)) = self.declared_var(name, value, scope) {
                    if let Some(t) = default {
                        env.insert(name.to_owned(), t);
                    }
                    declared.insert(name.to_owned(), decl);
                }
                continue;
            }
            let NodeKind::Scalar { value: text, .. } = &value.kind else {
                self.mismatch(
                    value,
                    &format!("`{name}`"),
                    "a string, number or boolean, or `{ required: true, description: ... }`",
                );
                continue;
            };
            let text = if value.is_null() {
                String::new()
            } else {
                text.clone()
            };
            if let Some(t) = self.template(value, &text, scope) {
                env.insert(name.to_owned(), t);
            }
        }
        env
    }

    /// `NAME: { required: true, description: ... }` or `NAME: { default: VALUE, description: ... }`.
    fn declared_var(
        &mut self,
        name: &str,
        node: &Node,
        scope: &Scope<'_>,
    ) -> Option<(Declared, Option<Template>)> {
        let what = format!("variable `{name}`");
        let f = self.fields(node, &what, &["required", "description", "default"])?;
        let required = f
            .get("required")
            .and_then(|n| self.bool(n, "`required`"))
            .unwrap_or(false);
        let description = f
            .get("description")
            .and_then(|n| self.string(n, "`description`"));
        let default = match f.get("default") {
            Some(n) => {
                let text = match &n.kind {
                    NodeKind::Scalar { value, .. } if !n.is_null() => value.clone(),
                    NodeKind::Scalar { .. } => String::new(),
                    _ => {
                        self.mismatch(n, "`default`", "a string, number or boolean");
                        return None;
                    }
                };
                Some(self.template(n, &text, scope)?)
            }
            None => None,
        };
        match (required, &default) {
            (true, Some(_)) => {
                let span = f.key_span("default").unwrap_or_else(|| node.span.clone());
                self.error(
                    ConfigError::new(
                        format!("{what} is required and has a default"),
                        span,
                        "a default",
                    )
                    .help("a required variable has no default: remove `default`, or `required: true` to make it optional"),
                );
                return None;
            }
            (false, None) => {
                self.error(
                    ConfigError::new(
                        format!("{what} has no value"),
                        node.span.clone(),
                        "no value",
                    )
                    .help("add `required: true` (each run must give it) or `default: VALUE`"),
                );
                return None;
            }
            _ => {}
        }
        Some((
            Declared {
                required,
                description,
            },
            default,
        ))
    }

    fn secrets(&mut self, node: &Node) -> IndexMap<String, SecretSource> {
        let mut secrets = IndexMap::new();
        let Some(fields) = self.fields(node, "`secrets`", &[]) else {
            return secrets;
        };
        for (name, key, value) in fields.iter() {
            if !is_env_name(name) {
                self.error(
                    ConfigError::new(
                        format!("`{name}` is not a valid secret name"),
                        key.span.clone(),
                        "invalid name",
                    )
                    .help("secrets become environment variables: use letters, digits and `_`"),
                );
                continue;
            }
            let what = format!("secret `{name}`");
            let Some(source) = self.fields(value, &what, &["env", "file", "command"]) else {
                if value.is_null() {
                    self.mismatch(
                        value,
                        &what,
                        "one of `{ env: VAR }`, `{ file: PATH }` or `{ command: [ARGV...] }`",
                    );
                }
                continue;
            };
            let given: Vec<&str> = source.iter().map(|(k, _, _)| k).collect();
            if given.len() != 1 {
                self.error(
                    ConfigError::new(
                        format!("{what} must name exactly one source"),
                        source.span.clone(),
                        format!("{} sources", given.len()),
                    )
                    .help("write `{ env: VAR }`, `{ file: PATH }` or `{ command: [ARGV...] }`"),
                );
                continue;
            }
            let resolved = if let Some(n) = source.get("env") {
                self.string(n, "`env`").map(SecretSource::Env)
            } else if let Some(n) = source.get("file") {
                self.string(n, "`file`")
                    .map(|p| SecretSource::File(p.into()))
            } else if let Some(n) = source.get("command") {
                let argv: Vec<String> = self
                    .string_list(n, "`command`")
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect();
                if argv.is_empty() {
                    self.mismatch(n, "`command`", "a non-empty list: program then arguments");
                    None
                } else {
                    Some(SecretSource::Command(argv))
                }
            } else {
                None
            };
            if let Some(r) = resolved {
                secrets.insert(name.to_owned(), r);
            }
        }
        secrets
    }

    fn shell(&mut self, node: &Node) -> Option<Shell> {
        let name = self.string(node, "`shell`")?;
        let shell = Shell::named(&name);
        if shell.is_none() {
            self.error(
                ConfigError::new(
                    format!("unknown shell `{name}`"),
                    node.span.clone(),
                    "unknown shell",
                )
                .help(
                    "use `bash`, `sh` or `zsh`; for anything else use `command:` with an argv list",
                ),
            );
        }
        shell
    }

    fn needs(
        &mut self,
        id: &str,
        node: &Node,
        stage_ids: &[String],
        positions: &HashMap<&str, usize>,
    ) -> Vec<(StageIdx, Range<usize>)> {
        let NodeKind::Map(pairs) = &node.kind else {
            return Vec::new();
        };
        let Some((_, needs_node)) = pairs.iter().find(|(k, _)| k.as_str() == Some("needs")) else {
            return Vec::new();
        };
        let mut out: Vec<(StageIdx, Range<usize>)> = Vec::new();
        for (name, item) in self.string_list(needs_node, "`needs`") {
            if name == id {
                self.error(
                    ConfigError::new(
                        format!("stage `{id}` needs itself"),
                        item.span.clone(),
                        "this stage",
                    )
                    .help("remove it from `needs:`"),
                );
                continue;
            }
            match positions.get(name.as_str()).copied() {
                Some(pos) if out.iter().any(|(i, _)| i.0 == pos) => {
                    self.error(
                        ConfigError::new(
                            format!("`{name}` is listed twice in the needs of `{id}`"),
                            item.span.clone(),
                            "again",
                        )
                        .help("list each stage once"),
                    );
                }
                Some(pos) => out.push((StageIdx(pos), item.span.clone())),
                None => {
                    let help = did_you_mean(
                        &name,
                        stage_ids.iter().map(String::as_str).filter(|s| *s != id),
                    )
                    .unwrap_or_else(|| format!("the stages are: {}", stage_ids.join(", ")));
                    self.error(
                        ConfigError::new(
                            format!("stage `{id}` needs `{name}`, which does not exist"),
                            item.span.clone(),
                            "no stage with this name",
                        )
                        .help(help),
                    );
                }
            }
        }
        out
    }

    fn stage(
        &mut self,
        id: &str,
        key: &Node,
        node: &Node,
        needs: Vec<StageIdx>,
        scope: &Scope<'_>,
        defaults: &StageDefaults,
    ) -> Option<(Stage, Option<MatrixSpec>)> {
        let what = format!("stage `{id}`");
        let Some(f) = self.fields(node, &what, STAGE_KEYS) else {
            if node.is_null() {
                self.error(
                    ConfigError::new(
                        format!("{what} is empty"),
                        key.span.clone(),
                        "nothing to do",
                    )
                    .help("give it `run:`, `command:` or `uses:`"),
                );
            }
            return None;
        };
        let errors_before = self.errors.len();
        let display_name = f
            .get("name")
            .and_then(|n| self.display_name(n, "`name`"))
            .unwrap_or_else(|| id.to_owned());
        let spec = f.get("matrix").and_then(|n| self.matrix(n));
        let fail_fast = f.get("fail-fast").and_then(|n| self.bool(n, "`fail-fast`"));
        if let (Some(span), None) = (f.key_span("fail-fast"), f.get("matrix")) {
            self.error(
                ConfigError::new(
                    "`fail-fast` is only for a stage with a `matrix`",
                    span,
                    "no matrix",
                )
                .help("remove it, or add `matrix:`"),
            );
        }
        let spec = spec.map(|mut spec| {
            spec.fail_fast = fail_fast.unwrap_or(true);
            spec
        });
        // The keys as written, even when the matrix has an error of its own: a reference to one
        // of them is not a second error.
        let matrix_keys: Vec<String> = match (&spec, f.get("matrix")) {
            (Some(spec), _) => spec.keys(),
            (None, Some(node)) => written_matrix_keys(node),
            (None, None) => Vec::new(),
        };
        let scope = &Scope {
            matrix_keys: &matrix_keys,
            ..*scope
        };
        let condition = f.get("if").and_then(|n| self.condition(n, scope));
        let mut stage_vars = scope.vars.clone();
        let env = match f.get("env") {
            Some(n) => {
                let env = self.env(n, scope, "the stage's `env`", None);
                stage_vars.extend(env.keys().cloned());
                env
            }
            None => IndexMap::new(),
        };
        let stage_known = known_values(&env, &[], scope.known.clone());
        let stage_bearing = bearing_secrets(&env, scope.secret_bearing.clone());
        let stage_scope = Scope {
            vars: &stage_vars,
            ancestors: scope.ancestors,
            stages: scope.stages,
            known: &stage_known,
            secret_bearing: &stage_bearing,
            matrix_keys: &matrix_keys,
            matrix_stages: scope.matrix_stages,
        };

        let action = self.action(&f, &what, key, &stage_scope, &defaults.shell);
        let rollback = f
            .get("rollback")
            .and_then(|n| self.rollback(n, &stage_scope, &defaults.shell));
        let workdir = match f.get("workdir") {
            Some(n) => self
                .string(n, "`workdir`")
                .and_then(|s| self.template(n, &s, &stage_scope)),
            None => defaults.workdir.clone(),
        };
        let timeout = f
            .get("timeout")
            .and_then(|n| self.duration(n, "`timeout`"))
            .unwrap_or(defaults.timeout);
        let grace = f
            .get("grace")
            .and_then(|n| self.duration(n, "`grace`"))
            .unwrap_or(defaults.grace);
        if timeout.is_zero() {
            let span = f
                .get("timeout")
                .map_or(key.span.clone(), |n| n.span.clone());
            self.error(
                ConfigError::new("`timeout` must be longer than zero", span, "zero")
                    .help("give the stage time to run, e.g. `15m`"),
            );
        }
        let retries = f
            .get("retries")
            .and_then(|n| self.retries(n))
            .unwrap_or(Retries {
                count: 0,
                backoff: DEFAULT_BACKOFF,
            });
        let allow_failure = f
            .get("allow-failure")
            .and_then(|n| self.bool(n, "`allow-failure`"))
            .unwrap_or(false);
        let junit = f
            .get("junit")
            .map(|n| self.globs(n, "`junit`"))
            .unwrap_or_default();
        let paths = f
            .get("paths")
            .map(|n| self.globs(n, "`paths`"))
            .unwrap_or_default();

        let action = action?;
        let line = self.text[..key.span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        (self.errors.len() == errors_before).then(|| {
            let stage = Stage {
                id: id.to_owned(),
                line: u32::try_from(line).unwrap_or(u32::MAX),
                display_name,
                needs,
                condition: condition.unwrap_or(Condition::SUCCESS),
                action,
                env,
                workdir,
                timeout,
                grace,
                retries,
                allow_failure,
                junit,
                rollback,
                paths,
                matrix: None,
            };
            (stage, spec)
        })
    }

    /// `matrix:`: axes (a key and a list of values), `include` and `exclude` (lists of
    /// mappings); at least one and at most [`matrix::MAX_COMBINATIONS`] combinations.
    fn matrix(&mut self, node: &Node) -> Option<MatrixSpec> {
        let f = self.fields(node, "`matrix`", &[])?;
        let mut spec = MatrixSpec {
            axes: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            fail_fast: true,
        };
        let errors_before = self.errors.len();
        for (key, key_node, value) in f.iter() {
            match key {
                "include" | "exclude" => {
                    let NodeKind::Seq(items) = &value.kind else {
                        self.mismatch(
                            value,
                            &format!("`{key}`"),
                            "a list of mappings, e.g. `- { python: \"3.13\" }`",
                        );
                        continue;
                    };
                    for item in items {
                        if let Some(combo) = self.combination(item, key) {
                            if key == "include" {
                                spec.include.push(combo);
                            } else {
                                spec.exclude.push(combo);
                            }
                        }
                    }
                }
                _ => {
                    if !self.matrix_key(key, key_node) {
                        continue;
                    }
                    let NodeKind::Seq(items) = &value.kind else {
                        self.mismatch(
                            value,
                            &format!("matrix key `{key}`"),
                            "a list of values, e.g. `[\"3.11\", \"3.12\"]`",
                        );
                        continue;
                    };
                    if items.is_empty() {
                        self.error(
                            ConfigError::new(
                                format!("matrix key `{key}` has no values"),
                                value.span.clone(),
                                "empty",
                            )
                            .help("list at least one value, or remove the key"),
                        );
                        continue;
                    }
                    let mut values: Vec<String> = Vec::new();
                    for item in items {
                        let Some(v) = self.matrix_value(item, key) else {
                            continue;
                        };
                        if values.contains(&v) {
                            self.error(
                                ConfigError::new(
                                    format!("`{v}` is listed twice in `{key}`"),
                                    item.span.clone(),
                                    "again",
                                )
                                .help("list each value once"),
                            );
                            continue;
                        }
                        values.push(v);
                    }
                    spec.axes.push((key.to_owned(), values));
                }
            }
        }
        for (pos, ex) in spec.exclude.iter().enumerate() {
            for (k, _) in ex {
                if !spec.axes.iter().any(|(a, _)| a == k) {
                    let span = f
                        .get("exclude")
                        .and_then(|n| match &n.kind {
                            NodeKind::Seq(items) => items.get(pos).map(|i| i.span.clone()),
                            _ => None,
                        })
                        .unwrap_or_else(|| node.span.clone());
                    let help = did_you_mean(k, spec.axes.iter().map(|(a, _)| a.as_str()))
                        .unwrap_or_else(|| {
                            "an `exclude` entry names keys of the matrix".to_owned()
                        });
                    self.error(
                        ConfigError::new(
                            format!("`exclude` names `{k}`, which is not a key of the matrix"),
                            span,
                            "unknown key",
                        )
                        .help(help),
                    );
                }
            }
        }
        // Each key becomes `MATRIX_KEY`: two that become one would overwrite each other.
        let keys = spec.keys();
        for (i, key) in keys.iter().enumerate() {
            if let Some(other) = keys[..i]
                .iter()
                .find(|o| matrix::env_name(o) == matrix::env_name(key))
            {
                let span = f.key_span(key).unwrap_or_else(|| node.span.clone());
                self.error(
                    ConfigError::new(
                        format!(
                            "matrix keys `{other}` and `{key}` are both `{}` in the environment",
                            matrix::env_name(key)
                        ),
                        span,
                        "same variable",
                    )
                    .help("rename one: keys are upper-cased, `-` written `_`"),
                );
            }
        }
        if self.errors.len() != errors_before {
            return None;
        }
        let count = spec.combinations().len();
        if count == 0 {
            self.error(
                ConfigError::new("the matrix has no combination", node.span.clone(), "empty")
                    .help("list values under a key, or entries under `include`; `exclude` removed them all"),
            );
            return None;
        }
        if count > matrix::MAX_COMBINATIONS {
            self.error(
                ConfigError::new(
                    format!(
                        "the matrix has {count} combinations, more than {}",
                        matrix::MAX_COMBINATIONS
                    ),
                    node.span.clone(),
                    "too many",
                )
                .help("remove values, or `exclude` combinations"),
            );
            return None;
        }
        Some(spec)
    }

    /// One entry of `include` or `exclude`: keys and scalar values.
    fn combination(&mut self, node: &Node, list: &str) -> Option<Vec<(String, String)>> {
        let f = self.fields(node, &format!("an entry of `{list}`"), &[])?;
        let mut out = Vec::new();
        for (key, key_node, value) in f.iter() {
            if !self.matrix_key(key, key_node) {
                continue;
            }
            if let Some(v) = self.matrix_value(value, key) {
                out.push((key.to_owned(), v));
            }
        }
        if out.is_empty() {
            self.error(
                ConfigError::new(
                    format!("an entry of `{list}` is empty"),
                    node.span.clone(),
                    "empty",
                )
                .help("give it at least one `KEY: VALUE`"),
            );
            return None;
        }
        Some(out)
    }

    /// Whether `key` may name a matrix value (it becomes `MATRIX_KEY` and part of stage names);
    /// says why not.
    fn matrix_key(&mut self, key: &str, key_node: &Node) -> bool {
        let mut chars = key.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            self.error(
                ConfigError::new(
                    format!("`{key}` is not a valid matrix key"),
                    key_node.span.clone(),
                    "invalid key",
                )
                .help("use letters, digits, `-` and `_`, starting with a letter"),
            );
        }
        valid
    }

    fn matrix_value(&mut self, node: &Node, key: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { value, .. } if !node.is_null() => Some(value.clone()),
            _ => {
                self.mismatch(
                    node,
                    &format!("a value of `{key}`"),
                    "a string, number or boolean",
                );
                None
            }
        }
    }

    /// `if:`: an expression ([`super::expr`]) whose names are the pipeline's variables and the
    /// outputs of the stage's ancestors. `success`, `failure`, `always` and `cancelled` alone
    /// stand for the functions of those names.
    fn condition(&mut self, node: &Node, scope: &Scope<'_>) -> Option<Condition> {
        let NodeKind::Scalar { value, .. } = &node.kind else {
            self.mismatch(
                node,
                "`if`",
                "an expression, e.g. `PORTCULLIS_BRANCH == 'main'`",
            );
            return None;
        };
        let written = self.text.get(node.span.clone()).unwrap_or_default();
        if value.trim().is_empty() || node.is_null() {
            let line_start = self.text[..node.span.start.min(self.text.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let tagged = self.text[line_start..]
                .lines()
                .next()
                .and_then(|l| l.split_once("if:"))
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('!'));
            let help = if tagged {
                "YAML reads a leading `!` as a tag: quote the expression (`if: \"!failure()\"`) or wrap it as `if: ${{ !failure() }}`"
            } else {
                "write an expression such as `PORTCULLIS_BRANCH == 'main'`, or leave `if:` out"
            };
            self.error(
                ConfigError::new("the condition is empty", node.span.clone(), "empty").help(help),
            );
            return None;
        }
        let shorthand = match value.trim() {
            "success" => Some(Func::Success),
            "failure" => Some(Func::Failure),
            "always" => Some(Func::Always),
            "cancelled" => Some(Func::Cancelled),
            _ => None,
        };
        if let Some(func) = shorthand {
            return Some(Condition {
                expr: Some(Expr::Call(func, Vec::new())),
            });
        }
        // Where a range of the expression is in the file: exact when the value is written as
        // it is read (a plain or simply quoted scalar), else the first place its text occurs.
        let place = |v: &Self, range: std::ops::Range<usize>| -> std::ops::Range<usize> {
            if let Some(at) = written.find(value.as_str()) {
                node.span.start + at + range.start..node.span.start + at + range.end
            } else {
                v.locate(node, &value[range])
            }
        };
        let (expr, names) = match expr::parse(value) {
            Ok(parsed) => parsed,
            Err(e) => {
                let span = place(self, e.range.clone());
                self.error(ConfigError::new(e.message, span, "here").help(e.help));
                return None;
            }
        };
        let mut ok = true;
        for at in names {
            let span = place(self, at.range.clone());
            match at.name {
                Name::Var(name) if !scope.vars.contains(&name) => {
                    ok = false;
                    let help = did_you_mean(&name, scope.vars.iter().map(String::as_str))
                        .unwrap_or_else(|| {
                            format!(
                                "define `{name}` under `env:`, pass `--var {name}=VALUE`, or quote it to compare text"
                            )
                        });
                    self.error(
                        ConfigError::new(format!("`{name}` is not defined"), span, "unknown name")
                            .help(help),
                    );
                }
                Name::Var(_) => {}
                Name::Output { stage, key } => {
                    let shown = format!("{stage}.{key}");
                    ok &= self.output_reference(&stage, &key, &shown, span, scope);
                }
            }
        }
        ok.then_some(Condition { expr: Some(expr) })
    }

    fn action(
        &mut self,
        f: &Fields<'_>,
        what: &str,
        key: &Node,
        scope: &Scope<'_>,
        shell: &Shell,
    ) -> Option<Action> {
        let present: Vec<&str> = ["run", "command", "uses"]
            .into_iter()
            .filter(|k| f.get(k).is_some())
            .collect();
        if present.len() > 1 {
            let first = f.key_span(present[0]).unwrap_or_default();
            let second = f.key_span(present[1]).unwrap_or_default();
            self.error(
                ConfigError::new(format!("{what} has both `{}` and `{}`", present[0], present[1]), second, "second action")
                    .related(first, "first action")
                    .help("a stage does one thing: a `run` script, a `command` argv list, or a built-in kind with `uses`"),
            );
            return None;
        }
        if let Some(with) = f.key_span("with")
            && f.get("uses").is_none()
        {
            self.error(
                ConfigError::new("`with` is only for built-in kinds", with, "no `uses`")
                    .help("add `uses: KIND`, or move these settings into the script"),
            );
        }
        if let Some(n) = f.get("run") {
            let script = self.string(n, "`run`")?;
            return self.template(n, &script, scope).map(|script| Action::Run {
                script,
                shell: shell.clone(),
            });
        }
        if let Some(n) = f.get("command") {
            return self.argv(n, scope).map(|argv| Action::Command { argv });
        }
        if let Some(n) = f.get("uses") {
            let kind = self.string(n, "`uses`")?;
            let empty = Node {
                span: n.span.clone(),
                kind: NodeKind::Map(Vec::new()),
            };
            let with = f.get("with").unwrap_or(&empty);
            return self.uses(&kind, n, with, scope).map(Action::Uses);
        }
        self.error(
            ConfigError::new(
                format!("{what} has nothing to do"),
                key.span.clone(),
                "no action",
            )
            .help(
                "give it `run:` (a script), `command:` (an argv list) or `uses:` (a built-in kind)",
            ),
        );
        None
    }

    /// `uses:` and `with:`. Every reference anywhere in `with:` must resolve here, like one in a
    /// script; then the kind checks the tree expanded with what is known now. A value that holds
    /// a secret, an output or a `--var` is checked again, with its real value, when the stage
    /// starts (`stages::bind`).
    fn uses(
        &mut self,
        kind: &str,
        kind_node: &Node,
        with: &Node,
        scope: &Scope<'_>,
    ) -> Option<Uses> {
        let kinds = self.kinds?;
        let names = kinds.names();
        let Some(name) = names.iter().copied().find(|k| *k == kind) else {
            let help = did_you_mean(kind, names.iter().copied())
                .unwrap_or_else(|| format!("available kinds: {}", names.join(", ")));
            self.error(
                ConfigError::new(
                    format!("unknown stage kind `{kind}`"),
                    kind_node.span.clone(),
                    "unknown kind",
                )
                .help(help),
            );
            return None;
        };
        let errors_before = self.errors.len();
        with.visit_keys(&mut |key| {
            if key.as_str().is_some_and(|k| k.contains("${{")) {
                self.error(
                    ConfigError::new(
                        "a key in `with:` cannot hold `${{ ... }}`",
                        key.span.clone(),
                        "a name, not a value",
                    )
                    .help(
                        "keys name settings and are read as written; put the variable in the value",
                    ),
                );
            }
        });
        with.visit_scalars(&mut |node, text| {
            self.template(node, text, scope);
        });
        if self.errors.len() != errors_before {
            return None;
        }
        let outputs = Outputs::new();
        let expanded = template::expand_node(
            with,
            Values {
                vars: scope.known,
                outputs: &outputs,
            },
        );
        let outer = (
            std::mem::replace(&mut self.deferred, expanded.deferred),
            std::mem::replace(&mut self.substituted, expanded.substituted),
        );
        let checked = kinds.check(name, &expanded.node, self);
        (self.deferred, self.substituted) = outer;
        let has_rollback = match checked {
            Some(r) => r,
            // Invalid only through a value known at run time: bound then, rollback assumed.
            None if self.errors.len() == errors_before => true,
            None => return None,
        };
        Some(Uses {
            kind: name,
            with: with.clone(),
            has_rollback,
        })
    }

    /// A program's arguments are readable by every user of the machine (`ps`) for as long as it
    /// runs, so a secret is never expanded into one; it reaches the stage through its
    /// environment instead.
    fn no_secret_in_argv(&mut self, node: &Node, template: &Template, scope: &Scope<'_>) -> bool {
        let mut ok = true;
        for part in &template.parts {
            if let TemplatePart::Var(name) = part
                && scope.secret_bearing.contains(name)
            {
                ok = false;
                let source = part.source();
                let span = self.locate(node, &source);
                self.error(
                    ConfigError::new(
                        format!("`{source}` would put a secret on the command line"),
                        span,
                        "a secret in argv",
                    )
                    .help(format!(
                        "every user of the machine can read a program's arguments; the stage \
                         sees `{name}` in its environment: read it there, as `\"${name}\"` in a `run:` \
                         script or in the program itself"
                    )),
                );
            }
        }
        ok
    }

    fn argv(&mut self, node: &Node, scope: &Scope<'_>) -> Option<Vec<Template>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.error(
                ConfigError::new("`command` must be a list", node.span.clone(), format!("found {}", node.describe()))
                    .help("write the program and its arguments as a list, e.g. `[cargo, test]`; for a shell line use `run:`"),
            );
            return None;
        };
        if items.is_empty() {
            self.mismatch(
                node,
                "`command`",
                "a non-empty list: program then arguments",
            );
            return None;
        }
        let mut argv = Vec::new();
        let mut ok = true;
        for item in items {
            match self
                .string(item, "each argument of `command`")
                .and_then(|s| self.template(item, &s, scope))
            {
                Some(t) => {
                    ok &= self.no_secret_in_argv(item, &t, scope);
                    argv.push(t);
                }
                None => ok = false,
            }
        }
        ok.then_some(argv)
    }

    fn rollback(&mut self, node: &Node, scope: &Scope<'_>, shell: &Shell) -> Option<Action> {
        if let NodeKind::Scalar { value, .. } = &node.kind
            && !node.is_null()
        {
            return self.template(node, value, scope).map(|script| Action::Run {
                script,
                shell: shell.clone(),
            });
        }
        let f = self.fields(node, "`rollback`", &["run", "command"])?;
        match (f.get("run"), f.get("command")) {
            (Some(_), Some(_)) => {
                self.error(
                    ConfigError::new(
                        "`rollback` has both `run` and `command`",
                        f.span.clone(),
                        "two actions",
                    )
                    .help("keep one"),
                );
                None
            }
            (Some(n), None) => {
                let s = self.string(n, "`run`")?;
                self.template(n, &s, scope).map(|script| Action::Run {
                    script,
                    shell: shell.clone(),
                })
            }
            (None, Some(n)) => self.argv(n, scope).map(|argv| Action::Command { argv }),
            (None, None) => {
                self.error(
                    ConfigError::new("`rollback` has nothing to do", f.span.clone(), "empty")
                        .help("write a script (`rollback: ./undo.sh`) or `{ command: [ARGV...] }`"),
                );
                None
            }
        }
    }

    fn retries(&mut self, node: &Node) -> Option<Retries> {
        if let NodeKind::Map(_) = &node.kind {
            let f = self.fields(node, "`retries`", &["count", "backoff"])?;
            let count = match f.get("count") {
                Some(n) => self.uint(n, "`count`", 0, 100)?,
                None => {
                    self.mismatch(
                        node,
                        "`retries`",
                        "a number, or `{ count: N, backoff: DURATION }`",
                    );
                    return None;
                }
            };
            let backoff = match f.get("backoff") {
                Some(n) => self.duration(n, "`backoff`")?,
                None => DEFAULT_BACKOFF,
            };
            return Some(Retries {
                count: count as u32,
                backoff,
            });
        }
        self.uint(node, "`retries`", 0, 100).map(|n| Retries {
            count: n as u32,
            backoff: DEFAULT_BACKOFF,
        })
    }

    fn globs(&mut self, node: &Node, what: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (glob, item) in self.string_list(node, what) {
            match globset::Glob::new(&glob) {
                Ok(_) => out.push(glob),
                Err(e) => self.error(
                    ConfigError::new(
                        format!("`{glob}` is not a valid glob"),
                        item.span.clone(),
                        e.kind().to_string(),
                    )
                    .help("globs use `*`, `**`, `?`, `[abc]` and `{a,b}`"),
                ),
            }
        }
        out
    }
}

struct StageDefaults {
    /// `defaults.workdir`: the `workdir` of every stage that names none.
    workdir: Option<Template>,
    timeout: Duration,
    grace: Duration,
    shell: Shell,
}

/// The names whose value holds a secret: the secrets, then each `env` entry that references
/// one of them (in file order, so an entry sees those before it).
fn bearing_secrets(
    env: &IndexMap<String, Template>,
    mut names: HashSet<String>,
) -> HashSet<String> {
    for (name, template) in env {
        let holds = template
            .parts
            .iter()
            .any(|p| matches!(p, TemplatePart::Var(v) if names.contains(v)));
        if holds {
            names.insert(name.clone());
        } else {
            names.remove(name);
        }
    }
    names
}

/// The values known before the run: `--var`s (already in `known`), and each `env` entry whose
/// references all resolve to values known before it. A `--var` replaces the pipeline `env`
/// entry of its name; a stage's own `env` entry replaces both.
fn known_values(
    env: &IndexMap<String, Template>,
    overridden: &[String],
    mut known: HashMap<String, String>,
) -> HashMap<String, String> {
    let outputs = Outputs::new();
    for (name, template) in env {
        if overridden.contains(name) {
            continue;
        }
        let rendered = template.render(Values {
            vars: &known,
            outputs: &outputs,
        });
        if rendered.missing.is_none() {
            known.insert(name.clone(), rendered.text);
        } else {
            known.remove(name);
        }
    }
    known
}

/// The keys a `matrix:` mapping names (its axes, and the keys of its `include` entries), read
/// from the tree as written.
fn written_matrix_keys(node: &Node) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let NodeKind::Map(pairs) = &node.kind else {
        return keys;
    };
    for (k, v) in pairs {
        match k.as_str() {
            Some("include") => {
                if let NodeKind::Seq(items) = &v.kind {
                    for item in items {
                        if let NodeKind::Map(entry) = &item.kind {
                            keys.extend(
                                entry
                                    .iter()
                                    .filter_map(|(k, _)| k.as_str().map(str::to_owned)),
                            );
                        }
                    }
                }
            }
            Some("exclude") | None => {}
            Some(axis) => keys.push(axis.to_owned()),
        }
    }
    keys.dedup();
    keys
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
