//! What a run will do: which stages are selected, in what order, waiting for what.
//!
//! The main type is [`Selection`], computed from `--only`, `--skip`, `--from` and `paths:`
//! filters. The same module renders the pipeline for `plan`, `run --dry-run` and `graph`
//! (Mermaid and DOT), so all three agree on order and wording.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::config::errors::suggest;
use crate::config::pipeline::{Action, Condition, Pipeline, StageIdx};
use crate::config::template::{Outputs, Values};
use crate::graph;

/// Which stages run; a stage left out carries the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection {
    pub(crate) selected: Vec<bool>,
    pub(crate) reasons: Vec<Option<String>>,
    /// Left out by `--skip` or `paths:`: such a stage keeps its place in the graph, settling as
    /// soon as its own needs have passed, so skipping `test` never lets `deploy` start before
    /// `lint`. Stages left out by `--only` and `--from` are taken as already done.
    pub(crate) pass_through: Vec<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct SelectOptions<'a> {
    pub(crate) only: &'a [String],
    pub(crate) skip: &'a [String],
    pub(crate) from: Option<&'a str>,
    /// Files changed since `--base`, when given.
    pub(crate) changed: Option<(&'a str, &'a [String])>,
    /// `PORTCULLIS_MATRIX`: of the matrix stages `--only` names, only this combination runs.
    pub(crate) matrix: Option<&'a [(String, String)]>,
}

pub(crate) fn select(pipeline: &Pipeline, opts: &SelectOptions<'_>) -> Result<Selection, String> {
    let n = pipeline.stages.len();
    // A name is a stage, or a matrix stage as written in the file: all of its combinations.
    let mut names: Vec<&str> = Vec::new();
    for stage in &pipeline.stages {
        let name = stage
            .matrix
            .as_ref()
            .map_or(stage.id.as_str(), |m| m.group.as_str());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let lookup = |flag: &str, name: &str| -> Result<Vec<StageIdx>, String> {
        if let Some(idx) = pipeline.stage_by_name(name) {
            return Ok(vec![idx]);
        }
        let group: Vec<StageIdx> = pipeline
            .stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.matrix.as_ref().is_some_and(|m| m.group == name))
            .map(|(i, _)| StageIdx(i))
            .collect();
        if !group.is_empty() {
            return Ok(group);
        }
        Err(match suggest(name, names.iter().copied()) {
            Some(s) => format!(
                "`{flag} {name}`: no stage `{name}` in `{}`; did you mean `{s}`?",
                pipeline.file.display()
            ),
            None => format!(
                "`{flag} {name}`: no stage `{name}` in `{}`; its stages are: {}",
                pipeline.file.display(),
                names.join(", ")
            ),
        })
    };
    let mut reasons: Vec<Option<String>> = vec![None; n];
    let mut pass_through = vec![false; n];
    if !opts.only.is_empty() {
        let mut only: Vec<StageIdx> = Vec::new();
        for name in opts.only {
            only.extend(lookup("--only", name)?);
        }
        if let Some(values) = opts.matrix {
            // One combination of the matrix stages named (an exported job runs one).
            let before = only.clone();
            only.retain(|idx| {
                pipeline
                    .stage(*idx)
                    .matrix
                    .as_ref()
                    .is_none_or(|m| crate::config::matrix::same_values(&m.values, values))
            });
            let groups: Vec<&StageIdx> = before
                .iter()
                .filter(|i| pipeline.stage(**i).matrix.is_some())
                .collect();
            if !groups.is_empty() && !only.iter().any(|i| pipeline.stage(*i).matrix.is_some()) {
                let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                return Err(format!(
                    "no combination of the matrix of `--only` has {}",
                    shown.join(", ")
                ));
            }
        }
        for (i, reason) in reasons.iter_mut().enumerate() {
            if !only.contains(&StageIdx(i)) {
                *reason = Some("not selected (`--only`)".into());
            }
        }
    }
    if let Some(from) = opts.from {
        let roots = lookup("--from", from)?;
        let edges: Vec<Vec<StageIdx>> = pipeline.stages.iter().map(|s| s.needs.clone()).collect();
        let keep: Vec<StageIdx> = roots
            .iter()
            .flat_map(|root| graph::descendants(&edges, *root))
            .collect();
        for (i, reason) in reasons.iter_mut().enumerate() {
            if !roots.contains(&StageIdx(i)) && !keep.contains(&StageIdx(i)) && reason.is_none() {
                *reason = Some(format!("before `{from}` (`--from`)"));
            }
        }
    }
    for name in opts.skip {
        for idx in lookup("--skip", name)? {
            if reasons[idx.0].is_none() {
                reasons[idx.0] = Some("skipped by `--skip`".into());
                pass_through[idx.0] = true;
            }
        }
    }
    if let Some((base, changed)) = opts.changed {
        for (i, stage) in pipeline.stages.iter().enumerate() {
            if stage.paths.is_empty() || reasons[i].is_some() {
                continue;
            }
            let mut builder = globset::GlobSetBuilder::new();
            for pattern in &stage.paths {
                if let Ok(glob) = globset::GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                {
                    builder.add(glob);
                }
            }
            let set = builder.build().map_err(|e| e.to_string())?;
            if !changed.iter().any(|f| set.is_match(f)) {
                reasons[i] = Some(format!(
                    "no file changed since `{base}` matches its `paths`"
                ));
                pass_through[i] = true;
            }
        }
    }
    Ok(Selection {
        selected: reasons.iter().map(Option::is_none).collect(),
        reasons,
        pass_through,
    })
}

/// The names of `needs` for a reader: the combinations of a matrix stage, all needed, as one
/// `test (4 combinations)`.
fn need_names(pipeline: &Pipeline, needs: &[StageIdx]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for need in needs {
        let stage = pipeline.stage(*need);
        let name = match &stage.matrix {
            Some(m) => {
                let all = pipeline
                    .stages
                    .iter()
                    .filter(|s| s.matrix.as_ref().is_some_and(|o| o.group == m.group))
                    .count();
                let needed = needs
                    .iter()
                    .filter(|n| {
                        pipeline
                            .stage(**n)
                            .matrix
                            .as_ref()
                            .is_some_and(|o| o.group == m.group)
                    })
                    .count();
                if needed == all && all > 1 {
                    format!("{} ({all} combinations)", m.group)
                } else {
                    stage.id.clone()
                }
            }
            None => stage.id.clone(),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn edges(pipeline: &Pipeline) -> Vec<Vec<StageIdx>> {
    pipeline.stages.iter().map(|s| s.needs.clone()).collect()
}

/// What a stage (the one at `idx`) does, in one line: its script's first line, its argv, or
/// its kind.
pub(crate) fn describe_action(
    action: &Action,
    pipeline: &Pipeline,
    idx: StageIdx,
    values: Values<'_>,
) -> String {
    let expand = |t: &crate::config::pipeline::Template| t.render(values).text;
    match action {
        Action::Run { script, .. } => {
            let text = expand(script);
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let first = lines.next().unwrap_or("").trim().to_owned();
            let more = lines.count();
            if more > 0 {
                format!("run: {first} (+{more} lines)")
            } else {
                format!("run: {first}")
            }
        }
        Action::Command { argv } => {
            let words: Vec<String> = argv.iter().map(|t| shell_quote(&expand(t))).collect();
            format!("command: {}", words.join(" "))
        }
        Action::Uses(uses) => format!(
            "uses: {} ({})",
            uses.kind,
            crate::stages::describe(uses, pipeline, idx, values)
        ),
    }
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The `plan` text: stages in the order they can start, each with what it waits for.
pub(crate) fn render_plan(
    pipeline: &Pipeline,
    selection: Option<&Selection>,
    vars: &HashMap<String, String>,
) -> String {
    let outputs = Outputs::new();
    let values = Values {
        vars,
        outputs: &outputs,
    };
    let edges = edges(pipeline);
    let order = graph::topological(&edges);
    let levels = graph::levels(&edges);
    let width = pipeline
        .stages
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pipeline `{}` ({}): {} stages, at most {} at once",
        pipeline.name,
        pipeline.file.display(),
        pipeline.stages.len(),
        pipeline.concurrency
    );
    for (name, declared) in &pipeline.declared {
        if !declared.required {
            continue;
        }
        let about = declared
            .description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        match vars.get(name) {
            Some(value) => {
                let _ = writeln!(out, "  required variable {name}{about} = {value}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "  required variable {name}{about}: not set, `run` needs `--var {name}=VALUE` or `{name}` in the environment"
                );
            }
        }
    }
    for (pos, idx) in order.iter().enumerate() {
        let stage = pipeline.stage(*idx);
        let waits = if stage.needs.is_empty() {
            if stage.condition.decides_status() {
                "waits for every other stage".to_owned()
            } else {
                "starts at once".to_owned()
            }
        } else {
            format!(
                "waits for {}",
                need_names(pipeline, &stage.needs).join(", ")
            )
        };
        let _ = write!(
            out,
            "{:>3}. {:<width$}  level {}  {}",
            pos + 1,
            stage.id,
            levels[idx.0],
            waits
        );
        if !stage.condition.is_default() {
            let _ = write!(out, ", if {}", stage.condition.text());
            if let Some(why) = false_here(&stage.condition, vars) {
                let _ = write!(out, " (false here: {why})");
            }
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "     {:<width$}  {}",
            "",
            describe_action(&stage.action, pipeline, *idx, values)
        );
        let mut extras = Vec::new();
        if stage.retries.count > 0 {
            extras.push(format!("retries {}", stage.retries.count));
        }
        if stage.allow_failure {
            extras.push("allow-failure".to_owned());
        }
        if stage.rollback.is_some() || matches!(&stage.action, Action::Uses(k) if k.has_rollback) {
            extras.push("has rollback".to_owned());
        }
        extras.push(format!(
            "timeout {}",
            crate::config::duration::format(stage.timeout)
        ));
        let _ = writeln!(out, "     {:<width$}  {}", "", extras.join(", "));
        if let Some(Some(reason)) = selection.map(|s| &s.reasons[idx.0]) {
            let _ = writeln!(out, "     {:<width$}  will not run: {reason}", "");
        }
    }
    out
}

/// The `plan --format json` document: the same facts as [`render_plan`], one object per stage
/// in the order stages can start.
pub(crate) fn plan_json(
    pipeline: &Pipeline,
    selection: Option<&Selection>,
    vars: &HashMap<String, String>,
) -> serde_json::Value {
    let outputs = Outputs::new();
    let values = Values {
        vars,
        outputs: &outputs,
    };
    let edges = edges(pipeline);
    let levels = graph::levels(&edges);
    let stages: Vec<serde_json::Value> = graph::topological(&edges)
        .iter()
        .map(|idx| {
            let stage = pipeline.stage(*idx);
            let kind = match &stage.action {
                Action::Run { .. } => "run".to_owned(),
                Action::Command { .. } => "command".to_owned(),
                Action::Uses(uses) => uses.kind.to_string(),
            };
            let rollback = stage.rollback.is_some()
                || matches!(&stage.action, Action::Uses(k) if k.has_rollback);
            let reason = selection.and_then(|s| s.reasons[idx.0].clone());
            serde_json::json!({
                "id": stage.id,
                "name": stage.display_name,
                "line": stage.line,
                "kind": kind,
                "does": describe_action(&stage.action, pipeline, *idx, values),
                "needs": stage.needs.iter().map(|n| &pipeline.stage(*n).id).collect::<Vec<_>>(),
                "level": levels[idx.0],
                "if": stage.condition.text(),
                "if_false_here": false_here(&stage.condition, vars),
                "timeout_seconds": stage.timeout.as_secs_f64(),
                "retries": stage.retries.count,
                "allow_failure": stage.allow_failure,
                "rollback": rollback,
                "paths": stage.paths,
                "selected": reason.is_none(),
                "reason": reason,
            })
        })
        .collect();
    let variables: Vec<serde_json::Value> = pipeline
        .declared
        .iter()
        .map(|(name, d)| {
            serde_json::json!({
                "name": name,
                "required": d.required,
                "description": d.description,
                "value": vars.get(name),
            })
        })
        .collect();
    serde_json::json!({
        "version": 1,
        "pipeline": pipeline.name,
        "file": pipeline.file,
        "concurrency": pipeline.concurrency,
        "variables": variables,
        "stages": stages,
    })
}

/// A Mermaid flowchart. Node ids are positional, since stage names like `end` are Mermaid
/// keywords; the label carries the name.
pub(crate) fn render_mermaid(pipeline: &Pipeline) -> String {
    let mut out = String::from("flowchart TD\n");
    // A matrix stage is one node: one per combination, a large matrix passes Mermaid's limit
    // of 500 edges.
    let node_of = |stage: &crate::config::pipeline::Stage| stage.name_in_file().clone();
    let mut nodes: Vec<(String, usize)> = Vec::new();
    for stage in &pipeline.stages {
        let key = node_of(stage);
        match nodes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => {
                nodes.push((key.clone(), 1));
                let mut label = match &stage.matrix {
                    Some(m) => m.group.clone(),
                    None => stage.display_name.clone(),
                };
                if !stage.condition.is_default() {
                    label.push_str("\nif ");
                    label.push_str(&stage.condition.text());
                }
                let lines: Vec<String> =
                    label.split('\n').map(crate::text::mermaid_label).collect();
                let _ = writeln!(out, "    s{}[\"{}\"]", nodes.len() - 1, lines.join("<br/>"));
            }
        }
    }
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for stage in &pipeline.stages {
        let to = nodes
            .iter()
            .position(|(k, _)| *k == node_of(stage))
            .unwrap_or(0);
        for need in &stage.needs {
            let from = nodes
                .iter()
                .position(|(k, _)| *k == node_of(pipeline.stage(*need)))
                .unwrap_or(0);
            if edges.contains(&(from, to)) {
                continue;
            }
            edges.push((from, to));
            let arrow = if !stage.condition.decides_status() {
                "-->"
            } else {
                "-.->"
            };
            let _ = writeln!(out, "    s{from} {arrow} s{to}");
        }
    }
    out
}

pub(crate) fn render_dot(pipeline: &Pipeline) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!(
        "digraph {} {{\n    rankdir=LR;\n    node [shape=box];\n",
        quote(&pipeline.name)
    );
    for stage in &pipeline.stages {
        let mut label = quote(&stage.display_name);
        if !stage.condition.is_default() {
            // DOT's `\n` between the name and the condition, each quoted on its own.
            let condition = quote(&format!("if {}", stage.condition.text()));
            label = format!("{}\\n{}", &label[..label.len() - 1], &condition[1..]);
        }
        let _ = writeln!(out, "    {} [label={label}];", quote(&stage.id));
    }
    for stage in &pipeline.stages {
        for need in &stage.needs {
            let style = if !stage.condition.decides_status() {
                ""
            } else {
                " [style=dashed]"
            };
            let _ = writeln!(
                out,
                "    {} -> {}{style};",
                quote(&pipeline.stage(*need).id),
                quote(&stage.id)
            );
        }
    }
    out.push_str("}\n");
    out
}

/// Why a condition that reads only variables (no output, no `failure()`, `always()` or
/// `cancelled()`) is false with the values of this run, for `plan` and `--dry-run`; `None`
/// when it holds or cannot be known before the run.
pub(crate) fn false_here(condition: &Condition, vars: &HashMap<String, String>) -> Option<String> {
    let expr = condition.expr.as_ref()?;
    if condition.decides_status()
        || expr
            .names()
            .iter()
            .any(|n| matches!(n, crate::config::expr::Name::Output { .. }))
    {
        return None;
    }
    struct Preview<'a>(&'a HashMap<String, String>);
    impl crate::config::expr::Env for Preview<'_> {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn output(&self, _: &str, _: &str) -> Option<String> {
            None
        }
        fn success(&self) -> bool {
            true
        }
        fn failure(&self) -> bool {
            false
        }
        fn cancelled(&self) -> bool {
            false
        }
    }
    let env = Preview(vars);
    (!expr.eval(&env).truthy()).then(|| {
        let values = expr.explain(&env, &|v| v.to_owned());
        if values.is_empty() {
            "it reads no value: always false".to_owned()
        } else {
            values
        }
    })
}
