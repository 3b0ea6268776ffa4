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
}

pub(crate) fn select(pipeline: &Pipeline, opts: &SelectOptions<'_>) -> Result<Selection, String> {
    let n = pipeline.stages.len();
    let lookup = |flag: &str, name: &str| -> Result<StageIdx, String> {
        pipeline.stage_by_name(name).ok_or_else(|| {
            let names = pipeline.stages.iter().map(|s| s.id.as_str());
            match suggest(name, names) {
                Some(s) => format!(
                    "`{flag} {name}`: no stage `{name}` in `{}`; did you mean `{s}`?",
                    pipeline.file.display()
                ),
                None => format!(
                    "`{flag} {name}`: no stage `{name}` in `{}`; its stages are: {}",
                    pipeline.file.display(),
                    pipeline
                        .stages
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        })
    };
    let mut reasons: Vec<Option<String>> = vec![None; n];
    let mut pass_through = vec![false; n];
    if !opts.only.is_empty() {
        let only: Vec<StageIdx> = opts
            .only
            .iter()
            .map(|s| lookup("--only", s))
            .collect::<Result<_, _>>()?;
        for (i, reason) in reasons.iter_mut().enumerate() {
            if !only.contains(&StageIdx(i)) {
                *reason = Some("not selected (`--only`)".into());
            }
        }
    }
    if let Some(from) = opts.from {
        let root = lookup("--from", from)?;
        let edges: Vec<Vec<StageIdx>> = pipeline.stages.iter().map(|s| s.needs.clone()).collect();
        let keep = graph::descendants(&edges, root);
        for (i, reason) in reasons.iter_mut().enumerate() {
            if StageIdx(i) != root && !keep.contains(&StageIdx(i)) && reason.is_none() {
                *reason = Some(format!("before `{from}` (`--from`)"));
            }
        }
    }
    for name in opts.skip {
        let idx = lookup("--skip", name)?;
        if reasons[idx.0].is_none() {
            reasons[idx.0] = Some("skipped by `--skip`".into());
            pass_through[idx.0] = true;
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
    for (pos, idx) in order.iter().enumerate() {
        let stage = pipeline.stage(*idx);
        let waits = if stage.needs.is_empty() {
            match stage.condition {
                Condition::Success => "starts at once".to_owned(),
                _ => "waits for every other stage".to_owned(),
            }
        } else {
            let names: Vec<&str> = stage
                .needs
                .iter()
                .map(|n| pipeline.stage(*n).id.as_str())
                .collect();
            format!("waits for {}", names.join(", "))
        };
        let _ = write!(
            out,
            "{:>3}. {:<width$}  level {}  {}",
            pos + 1,
            stage.id,
            levels[idx.0],
            waits
        );
        if stage.condition != Condition::Success {
            let _ = write!(out, ", if {}", stage.condition.as_str());
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
                "if": stage.condition.as_str(),
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
    serde_json::json!({
        "version": 1,
        "pipeline": pipeline.name,
        "file": pipeline.file,
        "concurrency": pipeline.concurrency,
        "stages": stages,
    })
}

/// A Mermaid flowchart. Node ids are positional, since stage names like `end` are Mermaid
/// keywords; the label carries the name.
pub(crate) fn render_mermaid(pipeline: &Pipeline) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let label = stage.display_name.replace('"', "#quot;");
        let _ = writeln!(out, "    s{i}[\"{label}\"]");
    }
    for (i, stage) in pipeline.stages.iter().enumerate() {
        for need in &stage.needs {
            let arrow = if stage.condition == Condition::Success {
                "-->"
            } else {
                "-.->"
            };
            let _ = writeln!(out, "    s{} {arrow} s{i}", need.0);
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
        let _ = writeln!(
            out,
            "    {} [label={}];",
            quote(&stage.id),
            quote(&stage.display_name)
        );
    }
    for stage in &pipeline.stages {
        for need in &stage.needs {
            let style = if stage.condition == Condition::Success {
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
