//! Stage outputs handed from one run to another, where an exported pipeline runs each stage as
//! its own job.
//!
//! The main type is [`Given`]. One convention carries an output across: the environment
//! variable [`variable`]`(STAGE, KEY)`, `PORTCULLIS_OUTPUT_<STAGE>__<KEY>` with `-` written `_`
//! (`${{ build.version }}` is `PORTCULLIS_OUTPUT_build__version`). A run that leaves stages out
//! (`--only`) takes the value of each `${{ STAGE.KEY }}` its stages read from that variable, in place
//! of running STAGE. A run hands its own outputs on as [`dotenv`] lines of the same names (GitLab
//! turns a job's dotenv report into variables of the jobs that need it) or as one [`json`]
//! object (the portcullis action's `outputs`, which GitHub job outputs pick from).
//!
//! How the pipeline stood crosses the same way, as [`UPSTREAM_STATUS`]: a job that runs an
//! `if: failure` stage runs only because an earlier job failed, and its run must know that.
//!
//! An output that holds a secret's value is never handed on: the reports show it masked, so
//! what would arrive is `***`, and both engines refuse or hide such values anyway. The stage that
//! reads it then fails, as it would if the output had not been published, and the warning says
//! why.

use std::collections::HashMap;

/// The variable that tells a run the pipeline failed (`failed`) or was cancelled (`cancelled`)
/// in another run before it: its `if: failure` stages run and `$PORTCULLIS_STATUS` starts there.
/// `--output-env` writes it when the run failed, so that GitLab passes it on with the outputs.
pub(crate) const UPSTREAM_STATUS: &str = "PORTCULLIS_UPSTREAM_STATUS";

/// The output a stage that a run skipped (its condition was false, or a need of it was skipped)
/// hands on in place of outputs: `PORTCULLIS_OUTPUT_<STAGE>__portcullis_skipped=true`. A run that
/// leaves that stage out then counts it as skipped, not passed, so what needs it is skipped
/// there too, as it would be in one run.
pub(crate) const SKIPPED_KEY: &str = "portcullis-skipped";

use std::collections::HashSet;

use crate::config::pipeline::Pipeline;
use crate::config::template::Outputs;
use crate::redact::Redactor;

/// The environment variable that carries output `key` of `stage` into another run. Stage names
/// and keys are letters, digits, `_` and `-`; a variable name cannot hold `-`.
pub(crate) fn variable(stage: &str, key: &str) -> String {
    format!(
        "PORTCULLIS_OUTPUT_{}__{}",
        stage.replace('-', "_"),
        key.replace('-', "_")
    )
}

/// Outputs given to a run for the stages it leaves out.
#[derive(Debug, Default)]
pub(crate) struct Given {
    pub(crate) outputs: Outputs,
    /// `(stage, key, variable)` of each output a running stage reads from a stage left out,
    /// whose variable is not set.
    pub(crate) missing: Vec<(String, String, String)>,
}

/// The outputs the stages that will run (`selected`) read from stages that will not, taken from
/// the environment through `lookup`. A variable that is set, even to the empty string, gives
/// its value: GitHub gives an output that was never published as empty, GitLab leaves the
/// variable out.
pub(crate) fn given(
    pipeline: &Pipeline,
    selected: &[bool],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Given {
    let mut given = Given::default();
    for (i, stage) in pipeline.stages.iter().enumerate() {
        if !selected[i] {
            continue;
        }
        for (from, key) in stage.outputs_read() {
            let runs_here = pipeline
                .stage_by_name(&from)
                .is_some_and(|idx| selected[idx.0]);
            let known = given
                .outputs
                .get(&from)
                .is_some_and(|o| o.contains_key(&key))
                || given
                    .missing
                    .iter()
                    .any(|(s, k, _)| *s == from && *k == key);
            if runs_here || known {
                continue;
            }
            let name = variable(&from, &key);
            match lookup(&name) {
                Some(value) => {
                    given.outputs.entry(from).or_default().insert(key, value);
                }
                None => given.missing.push((from, key, name)),
            }
        }
    }
    given
}

/// The stages this run leaves out that the run which ran them skipped, by the [`SKIPPED_KEY`]
/// their job handed on; only needs of the stages that run here count.
pub(crate) fn skipped_upstream(
    pipeline: &Pipeline,
    selected: &[bool],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> HashSet<String> {
    let mut skipped = HashSet::new();
    for (i, stage) in pipeline.stages.iter().enumerate() {
        if !selected[i] {
            continue;
        }
        for need in &stage.needs {
            let need = pipeline.stage(*need);
            if selected[pipeline.stage_by_name(&need.id).map_or(0, |n| n.0)] {
                continue;
            }
            let name = need.name_in_file();
            if lookup(&variable(name, SKIPPED_KEY)).as_deref() == Some("true") {
                skipped.insert(need.id.clone());
            }
        }
    }
    skipped
}

/// Why an output is not handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withheld {
    /// It holds a secret's value.
    Secret,
    /// A dotenv line cannot carry it: a line break, a `$` (GitLab expands variables in dotenv
    /// values), or blanks at either end (GitLab strips them).
    NotDotenv,
}

fn withheld(value: &str, redactor: &Redactor, dotenv: bool) -> Option<Withheld> {
    if redactor.redact_str(value) != value {
        return Some(Withheld::Secret);
    }
    let blank_ends = value.trim() != value;
    if dotenv && (value.contains(['\n', '\r', '$']) || blank_ends) {
        return Some(Withheld::NotDotenv);
    }
    None
}

fn warning(stage: &str, key: &str, why: Withheld, to: &str) -> String {
    match why {
        Withheld::Secret => format!(
            "output `{stage}.{key}` holds a secret's value and is not handed on to {to}; \
             a stage that reads `${{{{ {stage}.{key} }}}}` in another job will not get it"
        ),
        Withheld::NotDotenv => format!(
            "output `{stage}.{key}` holds a line break, a `$` or blanks at an end, which a \
             dotenv line cannot carry; it is not handed on to {to}"
        ),
    }
}

/// The outputs of the stages that ran (in file order, keys sorted) as dotenv lines
/// `PORTCULLIS_OUTPUT_<STAGE>__<KEY>=VALUE`, the syntax GitLab reads (`KEY=VALUE`, no quoting,
/// no comments, no blank lines); with a warning for each output left out.
pub(crate) fn dotenv(
    pipeline: &Pipeline,
    outputs: &Outputs,
    redactor: &Redactor,
    to: &str,
) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut warnings = Vec::new();
    for (stage, values) in in_order(pipeline, outputs) {
        for (key, value) in values {
            match withheld(value, redactor, true) {
                Some(why) => warnings.push(warning(stage, key, why, to)),
                None => text.push_str(&format!("{}={value}\n", variable(stage, key))),
            }
        }
    }
    (text, warnings)
}

/// The outputs of the stages that ran as one JSON object, by stage then key; with a warning
/// for each output left out.
pub(crate) fn json(
    pipeline: &Pipeline,
    outputs: &Outputs,
    redactor: &Redactor,
    to: &str,
) -> (serde_json::Value, Vec<String>) {
    let mut doc = serde_json::Map::new();
    let mut warnings = Vec::new();
    for (stage, values) in in_order(pipeline, outputs) {
        let mut object = serde_json::Map::new();
        for (key, value) in values {
            match withheld(value, redactor, false) {
                Some(why) => warnings.push(warning(stage, key, why, to)),
                None => {
                    object.insert(key.clone(), serde_json::Value::String(value.clone()));
                }
            }
        }
        doc.insert(stage.clone(), serde_json::Value::Object(object));
    }
    (serde_json::Value::Object(doc), warnings)
}

/// The stages' outputs in file order, each stage's keys sorted.
fn in_order<'a>(
    pipeline: &'a Pipeline,
    outputs: &'a Outputs,
) -> Vec<(&'a String, Vec<(&'a String, &'a String)>)> {
    // A matrix stage's combinations hand on under the matrix stage's name, once.
    let mut names: Vec<&String> = Vec::new();
    for stage in &pipeline.stages {
        let name = stage.name_in_file();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let values: &HashMap<String, String> = outputs.get(name)?;
            let mut pairs: Vec<(&String, &String)> = values.iter().collect();
            pairs.sort();
            Some((name, pairs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_are_shell_names() {
        assert_eq!(
            variable("build", "version"),
            "PORTCULLIS_OUTPUT_build__version"
        );
        assert_eq!(
            variable("db-check", "rehearsal-url"),
            "PORTCULLIS_OUTPUT_db_check__rehearsal_url"
        );
    }

    #[test]
    fn withheld_values() {
        let redactor = Redactor::new(["s3cr3t-value".to_owned()]);
        let cases = [
            ("1.4.2", false, None),
            ("a b \"c\"", true, None),
            ("", true, None),
            ("x s3cr3t-value y", false, Some(Withheld::Secret)),
            ("two\nlines", false, None),
            ("two\nlines", true, Some(Withheld::NotDotenv)),
            ("costs $5", true, Some(Withheld::NotDotenv)),
            (" padded", true, Some(Withheld::NotDotenv)),
        ];
        for (value, dotenv, want) in cases {
            assert_eq!(withheld(value, &redactor, dotenv), want, "{value:?}");
        }
    }
}
