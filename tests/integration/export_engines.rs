//! `export github` and `export gitlab` run as their engines would run them, and compared with a
//! plain `portcullis run` of the same pipeline: the same stages, in the same order, with the
//! same statuses and outputs.
//!
//! Each engine is simulated from the exported file itself, parsed with Python's yaml: every job
//! runs in a fresh copy of the project, in `needs` order (the first ready job in file order, one
//! at a time, as `run -j 1` schedules stages), when its condition holds; it gets only what the
//! engine would give it. GitHub: the step's `env:` and `with:`, evaluated from `secrets`, the
//! needed jobs' outputs, and the action's outputs through `action.yml`, with the action's own
//! `run.sh`. GitLab: the job after `extends`, its `before_script` and `script` in bash with
//! `errexit`, the variables of the file and of the project, and the dotenv reports of the jobs
//! it needs, read the way GitLab reads them. The GitLab files are also checked against GitLab's
//! CI schema (`app/assets/javascripts/editor/schema/ci.json` of gitlab-org/gitlab, as the PyPI
//! package `check-jsonschema` vendors it), and the GitHub ones against SchemaStore's workflow
//! schema from the same package.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{
    BIN, Test, assert_schema_valid, copy_tree, python_yaml, repo_root, required, shipped_pipelines,
};

/// What a run of a pipeline did, however it was run.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Each stage that ran, with its status, in the order they started.
    ran: Vec<(String, String)>,
    /// The stages that did not run, sorted.
    not_run: Vec<String>,
    /// The outputs of each stage that ran (masked, as the run's `summary.json` has them).
    outputs: BTreeMap<String, Value>,
    /// The log of each stage that ran.
    logs: BTreeMap<String, String>,
}

/// What a run is about, said once and given to each engine its own way: the plain run reads
/// `PORTCULLIS_*`, GitHub's jobs its `github` context and `GITHUB_*`, GitLab's its `CI_*`
/// variables. Empty: none is said (the plain run is `local`).
#[derive(Debug, Default, Clone)]
struct Context {
    branch: &'static str,
    tag: &'static str,
    /// portcullis's word: `push`, `pull_request`, `manual`, `schedule`.
    event: &'static str,
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

impl Context {
    fn is_empty(&self) -> bool {
        self.event.is_empty()
    }

    fn plain_env(&self) -> Vec<(String, String)> {
        if self.is_empty() {
            return Vec::new();
        }
        vec![
            ("PORTCULLIS_BRANCH".into(), self.branch.into()),
            ("PORTCULLIS_TAG".into(), self.tag.into()),
            ("PORTCULLIS_EVENT".into(), self.event.into()),
            ("PORTCULLIS_COMMIT".into(), SHA.into()),
        ]
    }

    /// GitHub's `github` context for the jobs' `if:`, and the variables its runner sets.
    fn github(&self) -> (HashMap<&'static str, String>, Vec<(String, String)>) {
        if self.is_empty() {
            return (HashMap::new(), Vec::new());
        }
        let event = match self.event {
            "manual" => "workflow_dispatch",
            other => other,
        };
        let (reference, name, kind, head) = if self.event == "pull_request" {
            (
                "refs/pull/7/merge".to_owned(),
                "7/merge".to_owned(),
                "branch",
                self.branch,
            )
        } else if !self.tag.is_empty() {
            (
                format!("refs/tags/{}", self.tag),
                self.tag.to_owned(),
                "tag",
                "",
            )
        } else {
            (
                format!("refs/heads/{}", self.branch),
                self.branch.to_owned(),
                "branch",
                "",
            )
        };
        let context: HashMap<&'static str, String> = [
            ("ref", reference.clone()),
            ("ref_name", name.clone()),
            ("ref_type", kind.to_owned()),
            ("head_ref", head.to_owned()),
            ("event_name", event.to_owned()),
            ("sha", SHA.to_owned()),
        ]
        .into();
        let env = vec![
            ("GITHUB_REF".into(), reference),
            ("GITHUB_REF_NAME".into(), name),
            ("GITHUB_REF_TYPE".into(), kind.into()),
            ("GITHUB_HEAD_REF".into(), head.into()),
            ("GITHUB_EVENT_NAME".into(), event.into()),
            ("GITHUB_SHA".into(), SHA.into()),
        ];
        (context, env)
    }

    /// The predefined variables of a GitLab pipeline.
    fn gitlab(&self) -> Vec<(String, String)> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut vars = vec![
            ("GITLAB_CI".to_owned(), "true".to_owned()),
            ("CI_COMMIT_SHA".to_owned(), SHA.to_owned()),
        ];
        let source = match self.event {
            "pull_request" => "merge_request_event",
            "manual" => "web",
            other => other,
        };
        vars.push(("CI_PIPELINE_SOURCE".into(), source.into()));
        if self.event == "pull_request" {
            vars.push((
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME".into(),
                self.branch.into(),
            ));
        } else if !self.tag.is_empty() {
            vars.push(("CI_COMMIT_TAG".into(), self.tag.into()));
        } else {
            vars.push(("CI_COMMIT_BRANCH".into(), self.branch.into()));
        }
        vars
    }
}

/// A stage's entry in one run's `summary.json`.
struct StageRun {
    status: String,
    started: Option<u64>,
    outputs: Value,
    log: String,
}

fn summary(project: &Path) -> Vec<(String, StageRun)> {
    let text = std::fs::read_to_string(project.join(".portcullis/runs/latest/summary.json"))
        .expect("the run's summary.json");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let run_dir = PathBuf::from(doc["run_dir"].as_str().expect("run_dir"));
    let run_dir = project.join(run_dir);
    doc["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("id").to_owned(),
                StageRun {
                    status: s["status"].as_str().expect("status").to_owned(),
                    started: s["started_ms"].as_u64(),
                    outputs: s["outputs"].clone(),
                    // Where the run says the stage's log is (a matrix combination's file name
                    // is not its id).
                    log: s["log"]
                        .as_str()
                        .and_then(|log| Path::new(log).file_name().map(|name| run_dir.join(name)))
                        .and_then(|path| std::fs::read_to_string(path).ok())
                        .unwrap_or_default(),
                },
            )
        })
        .collect()
}

/// A clean environment for portcullis and the stages: what a runner would have, and `extra`.
fn clean_env(cmd: &mut Command, extra: &[(String, String)]) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
}

/// `portcullis run PIPELINE -j 1` in a copy of `project`, with the secrets in the environment.
fn plain_run(project: &Path, pipeline: &str, env: &[(String, String)], work: &Path) -> Outcome {
    let dir = work.join("plain");
    copy_tree(project, &dir);
    let mut cmd = Command::new(BIN);
    cmd.args(["run", pipeline, "-j", "1"]).current_dir(&dir);
    clean_env(&mut cmd, env);
    let out = cmd.output().expect("run portcullis");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut stages = summary(&dir);
    stages.retain(|(_, s)| s.started.is_some() || s.status == "skipped");
    let mut ran: Vec<(u64, String, String)> = Vec::new();
    let mut not_run = Vec::new();
    let mut outputs = BTreeMap::new();
    let mut logs = BTreeMap::new();
    for (id, s) in stages {
        match s.started {
            Some(at) => {
                ran.push((at, id.clone(), s.status));
                outputs.insert(id.clone(), s.outputs);
                logs.insert(id, s.log);
            }
            None => not_run.push(id),
        }
    }
    ran.sort_by_key(|(at, _, _)| *at);
    not_run.sort();
    Outcome {
        ran: ran.into_iter().map(|(_, id, st)| (id, st)).collect(),
        not_run,
        outputs,
        logs,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobEnd {
    Success,
    Failure,
    Skipped,
}

/// Whether a job runs: its name, how its needs ended, how every job so far ended.
type Decide<'a> = dyn Fn(&str, &[JobEnd], &HashMap<String, JobEnd>) -> bool + 'a;

/// Runs the jobs of an engine: the first ready job in file order, one at a time. `decide` says
/// whether a job runs, given how its needs ended and how every job so far ended; `run` runs it.
fn schedule(
    order: &[String],
    needs: &HashMap<String, Vec<String>>,
    decide: &Decide<'_>,
    run: &mut dyn FnMut(&str, &HashMap<String, JobEnd>) -> JobEnd,
) -> HashMap<String, JobEnd> {
    let mut ended: HashMap<String, JobEnd> = HashMap::new();
    while ended.len() < order.len() {
        let job = order
            .iter()
            .find(|j| !ended.contains_key(*j) && needs[*j].iter().all(|n| ended.contains_key(n)))
            .expect("a job whose needs have ended (the needs form no cycle)")
            .clone();
        let ends: Vec<JobEnd> = needs[&job].iter().map(|n| ended[n]).collect();
        let end = if decide(&job, &ends, &ended) {
            run(&job, &ended)
        } else {
            JobEnd::Skipped
        };
        ended.insert(job, end);
    }
    ended
}

/// The needs of each job, as a list of job ids.
fn needs_of(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .or_else(|| i["job"].as_str())
                    .expect("a job id, or `{job: ID, optional: true}`")
                    .to_owned()
            })
            .collect(),
        other => panic!("needs: {other}"),
    }
}

/// What a job's own run of portcullis did for its stage.
fn stage_of(project: &Path, stage: &str) -> StageRun {
    summary(project)
        .into_iter()
        .find(|(id, _)| id == stage)
        .map(|(_, s)| s)
        .expect("the job's stage in its summary")
}

/// Collects the engine's outcome from the jobs' own runs.
fn outcome(
    order: &[String],
    stage_of_job: &HashMap<String, String>,
    ended: &HashMap<String, JobEnd>,
    runs: &HashMap<String, StageRun>,
    started: &[String],
) -> Outcome {
    // Skipped jobs, and jobs that failed before portcullis ran.
    let mut not_run: Vec<String> = order
        .iter()
        .filter(|j| ended[*j] == JobEnd::Skipped || !started.contains(*j))
        .map(|j| stage_of_job[j].clone())
        .collect();
    let mut ran = Vec::new();
    let mut outputs = BTreeMap::new();
    let mut logs = BTreeMap::new();
    for job in started {
        let stage = &stage_of_job[job];
        let run = &runs[job];
        // A job that ran, but whose stage portcullis skipped, did not run the stage.
        if run.started.is_none() {
            not_run.push(stage.clone());
            continue;
        }
        ran.push((stage.clone(), run.status.clone()));
        outputs.insert(stage.clone(), run.outputs.clone());
        logs.insert(stage.clone(), run.log.clone());
    }
    not_run.sort();
    Outcome {
        ran,
        not_run,
        outputs,
        logs,
    }
}

/// Evaluates the `${{ }}` expressions the export writes; any other is a test failure.
fn github_expr(
    text: &str,
    secrets: &HashMap<String, String>,
    needs: &HashMap<String, (JobEnd, HashMap<String, String>)>,
    gate: &HashMap<String, String>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed expression") + start;
        let expr = rest[start + 3..end].trim();
        out.push_str(&eval(expr, secrets, needs, gate));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn eval(
    expr: &str,
    secrets: &HashMap<String, String>,
    needs: &HashMap<String, (JobEnd, HashMap<String, String>)>,
    gate: &HashMap<String, String>,
) -> String {
    if let Some(name) = expr.strip_prefix("secrets.") {
        return secrets.get(name).cloned().unwrap_or_default();
    }
    if let Some(rest) = expr.strip_prefix("needs.") {
        let (job, output) = rest.split_once(".outputs.").expect("needs.JOB.outputs.ID");
        return needs[job].1.get(output).cloned().unwrap_or_default();
    }
    if expr == "contains(needs.*.result, 'failure') && 'failed' || 'passed'" {
        let failed = needs.values().any(|(end, _)| *end == JobEnd::Failure);
        return if failed { "failed" } else { "passed" }.to_owned();
    }
    if let Some(rest) = expr.strip_prefix("fromJSON(steps.gate.outputs.outputs || '{}')") {
        let text = gate
            .get("outputs")
            .filter(|s| !s.is_empty())
            .map_or("{}", String::as_str);
        let mut value: Value = serde_json::from_str(text).expect("the action's outputs JSON");
        let mut rest = rest;
        while let Some(index) = rest.strip_prefix("['") {
            let (key, after) = index.split_once("']").expect("['KEY']");
            value = value.get(key).cloned().unwrap_or(Value::Null);
            rest = after;
        }
        assert!(rest.is_empty(), "unexpected expression `{expr}`");
        return match value {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        };
    }
    panic!("the simulation does not know the expression `{expr}`")
}

/// Reads `$GITHUB_OUTPUT`: `NAME=VALUE` lines and `NAME<<DELIMITER` blocks.
fn github_outputs(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_owned(), value.to_owned());
        }
    }
    out
}

/// One combination of a matrix: keys and values in order.
type Combo = Vec<(String, String)>;

/// A matrix stage's combination as portcullis names its stage: `test (python=3.11, os=x)`.
fn instance_name(stage: &str, combo: &Combo) -> String {
    let values: Vec<String> = combo.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{stage} ({})", values.join(", "))
}

/// The combinations of a `strategy.matrix`, as GitHub's documentation defines them: the
/// product of the lists, less what an `exclude` entry matches; then each `include` entry is
/// added to every original combination none of whose values it changes (values it added
/// earlier may change), or is a combination of its own when there is none. `None` for no
/// matrix.
fn github_combinations(matrix: &Value) -> Option<Vec<Combo>> {
    let map = matrix.as_object()?;
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let pairs = |entry: &Value| -> Combo {
        entry
            .as_object()
            .expect("a mapping")
            .iter()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect()
    };
    let axes: Vec<(&String, Vec<String>)> = map
        .iter()
        .filter(|(k, _)| *k != "include" && *k != "exclude")
        .map(|(k, v)| (k, v.as_array().expect("a list").iter().map(text).collect()))
        .collect();
    let mut combos: Vec<Combo> = vec![Vec::new()];
    for (key, values) in &axes {
        let mut next = Vec::new();
        for combo in &combos {
            for value in values {
                let mut c = combo.clone();
                c.push(((*key).clone(), value.clone()));
                next.push(c);
            }
        }
        combos = next;
    }
    if axes.is_empty() {
        combos.clear();
    }
    let has =
        |combo: &Combo, (k, v): &(String, String)| combo.iter().any(|(ck, cv)| ck == k && cv == v);
    for entry in map
        .get("exclude")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let entry = pairs(entry);
        combos.retain(|c| !entry.iter().all(|p| has(c, p)));
    }
    let original = combos.len();
    let is_axis = |k: &str| axes.iter().any(|(a, _)| *a == k);
    for entry in map
        .get("include")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let entry = pairs(entry);
        let mut added = false;
        for combo in combos.iter_mut().take(original) {
            let keeps_originals = entry
                .iter()
                .filter(|(k, _)| is_axis(k))
                .all(|p| combo.contains(p));
            if !keeps_originals {
                continue;
            }
            for (k, v) in &entry {
                match combo.iter_mut().find(|(ck, _)| ck == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => combo.push((k.clone(), v.clone())),
                }
            }
            added = true;
        }
        if !added {
            combos.push(entry);
        }
    }
    Some(combos)
}

/// Runs an exported workflow as GitHub would, each job through the action's `run.sh`.
fn github_run(
    project: &Path,
    workflow: &Value,
    action: &Value,
    secrets: &HashMap<String, String>,
    env: &[(String, String)],
    work: &Path,
    context: &Context,
) -> Outcome {
    let (github, github_env) = context.github();
    let env: Vec<(String, String)> = env.iter().cloned().chain(github_env).collect();
    let env = env.as_slice();
    let jobs_by_id = workflow["jobs"].as_object().expect("jobs");
    // A matrix job runs once per combination, as GitHub computes them: each is a unit here,
    // `JOB#N`, with the job's spec and its combination.
    let mut units: Vec<(String, String, Option<Combo>)> = Vec::new();
    for (id, j) in jobs_by_id {
        match github_combinations(&j["strategy"]["matrix"]) {
            Some(combos) => {
                for (n, combo) in combos.into_iter().enumerate() {
                    units.push((format!("{id}#{n}"), id.clone(), Some(combo)));
                }
            }
            None => units.push((id.clone(), id.clone(), None)),
        }
    }
    let job_of: HashMap<String, String> = units
        .iter()
        .map(|(u, j, _)| (u.clone(), j.clone()))
        .collect();
    let combo_of: HashMap<String, Option<Combo>> = units
        .iter()
        .map(|(u, _, c)| (u.clone(), c.clone()))
        .collect();
    let jobs: HashMap<String, &Value> = units
        .iter()
        .map(|(u, j, _)| (u.clone(), &jobs_by_id[j]))
        .collect();
    let order: Vec<String> = units.iter().map(|(u, _, _)| u.clone()).collect();
    let units_of = |job: &str| -> Vec<String> {
        units
            .iter()
            .filter(|(_, j, _)| j == job)
            .map(|(u, _, _)| u.clone())
            .collect()
    };
    let needs: HashMap<String, Vec<String>> = units
        .iter()
        .map(|(u, j, _)| {
            let expanded = needs_of(&jobs_by_id[j])
                .iter()
                .flat_map(|n| units_of(n))
                .collect();
            (u.clone(), expanded)
        })
        .collect();
    let mut ancestors: HashMap<String, Vec<String>> = HashMap::new();
    for id in &order {
        let mut found: Vec<String> = Vec::new();
        let mut stack = needs[id].clone();
        while let Some(n) = stack.pop() {
            if !found.contains(&n) {
                stack.extend(needs[&n].iter().cloned());
                found.push(n);
            }
        }
        ancestors.insert(id.clone(), found);
    }
    let stage_of_job: HashMap<String, String> = jobs
        .iter()
        .map(|(id, j)| {
            let args = j["steps"][1]["with"]["args"].as_str().expect("args");
            let stage = args
                .strip_prefix("--only ")
                .expect("--only STAGE")
                .split(" --")
                .next()
                .unwrap_or_default();
            // A combination's stage is named after its values, as portcullis names it.
            let stage = match &combo_of[id] {
                Some(combo) => instance_name(stage, combo),
                None => stage.to_owned(),
            };
            (id.clone(), stage)
        })
        .collect();
    // `if:` as GitHub reads it: no condition is `success()`, every need succeeded;
    // `failure()` holds when any ancestor failed. With `fail-fast` (GitHub's default), a failed
    // combination cancels the ones of its job that have not run.
    let decide = |job: &str, ends: &[JobEnd], ended: &HashMap<String, JobEnd>| -> bool {
        let spec = jobs[job];
        if combo_of[job].is_some() && spec["strategy"]["fail-fast"] != Value::Bool(false) {
            let sibling_failed = units_of(&job_of[job])
                .iter()
                .any(|u| ended.get(u) == Some(&JobEnd::Failure));
            if sibling_failed {
                return false;
            }
        }
        let status = crate::engine_expr::Status {
            success: ends.iter().all(|e| *e == JobEnd::Success),
            failure: ancestors[job].iter().any(|a| ended[a] == JobEnd::Failure),
        };
        match spec["if"].as_str() {
            None => status.success,
            Some(text) => crate::engine_expr::github_if(text, &github, &status),
        }
    };
    let script = repo_root().join(".github/action/run.sh");
    let mut job_outputs: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut runs: HashMap<String, StageRun> = HashMap::new();
    let mut started: Vec<String> = Vec::new();
    let mut run = |job: &str, ended: &HashMap<String, JobEnd>| -> JobEnd {
        let spec = jobs[job];
        let dir = work.join(format!("github-{}", job.replace('#', "-")));
        copy_tree(project, &dir);
        let step = &spec["steps"][1];
        let with = &step["with"];
        // `needs.JOB` of a matrix job: its result is `failure` when a combination failed,
        // `success` when all succeeded; its outputs are the last combination's, as GitHub keeps
        // them.
        let mut needed: HashMap<String, (JobEnd, HashMap<String, String>)> = HashMap::new();
        for n in &needs[job] {
            let outputs = job_outputs.get(n).cloned().unwrap_or_default();
            let end = match needed.get(&job_of[n]) {
                None => ended[n],
                Some((before, _)) if *before == JobEnd::Failure || ended[n] == JobEnd::Failure => {
                    JobEnd::Failure
                }
                Some((before, _)) if *before == JobEnd::Success && ended[n] == JobEnd::Success => {
                    JobEnd::Success
                }
                Some(_) => JobEnd::Skipped,
            };
            needed.insert(job_of[n].clone(), (end, outputs));
        }
        let mut step_env: Vec<(String, String)> = env.to_vec();
        if let Some(combo) = &combo_of[job] {
            // `${{ toJSON(matrix) }}` as GitHub writes it.
            let fields: Vec<String> = combo
                .iter()
                .map(|(k, v)| format!("  {}: {}", Value::from(k.as_str()), Value::from(v.as_str())))
                .collect();
            step_env.push((
                "PORTCULLIS_MATRIX".to_owned(),
                format!("{{\n{}\n}}", fields.join(",\n")),
            ));
        }
        if let Some(map) = step["env"].as_object() {
            for (k, v) in map {
                if k == "PORTCULLIS_MATRIX" {
                    continue;
                }
                let text = v.as_str().expect("env value");
                step_env.push((
                    k.clone(),
                    github_expr(text, secrets, &needed, &HashMap::new()),
                ));
            }
        }
        let output_file = work.join(format!("github-{job}.output"));
        std::fs::write(&output_file, "").expect("GITHUB_OUTPUT");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).current_dir(&dir);
        clean_env(&mut cmd, &step_env);
        let input = |name: &str| with[name].as_str().unwrap_or_default().to_owned();
        cmd.env("PORTCULLIS_BIN", BIN)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", &dir)
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_STEP_SUMMARY", work.join(format!("github-{job}.md")))
            .env("INPUT_PIPELINE", input("pipeline"))
            .env("INPUT_ARGS", input("args"))
            .env("INPUT_JUNIT", input("junit"))
            .env("INPUT_WORKING_DIRECTORY", input("working-directory"));
        let out = cmd.output().expect("run the action's run.sh");
        let step_outputs =
            github_outputs(&std::fs::read_to_string(&output_file).unwrap_or_default());
        // The action's outputs, as action.yml maps them from its `run` step.
        let mut gate = HashMap::new();
        for (name, spec) in action["outputs"].as_object().expect("action outputs") {
            let value = spec["value"].as_str().expect("value");
            let from = value
                .trim_start_matches("${{")
                .trim_end_matches("}}")
                .trim()
                .strip_prefix("steps.run.outputs.")
                .expect("an output of the run step");
            gate.insert(
                name.clone(),
                step_outputs.get(from).cloned().unwrap_or_default(),
            );
        }
        let mut outputs = HashMap::new();
        if let Some(map) = spec["outputs"].as_object() {
            for (id, v) in map {
                let text = v.as_str().expect("output value");
                outputs.insert(id.clone(), github_expr(text, secrets, &needed, &gate));
            }
        }
        job_outputs.insert(job.to_owned(), outputs);
        let project_dir = dir.join(input("working-directory"));
        runs.insert(job.to_owned(), stage_of(&project_dir, &stage_of_job[job]));
        started.push(job.to_owned());
        if out.status.success() {
            JobEnd::Success
        } else {
            JobEnd::Failure
        }
    };
    let ended = schedule(&order, &needs, &decide, &mut run);
    outcome(&order, &stage_of_job, &ended, &runs, &started)
}

/// Merges `extends` into a job: the template's keys, overridden by the job's, maps merged deeply.
fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut merged = b.clone();
            for (k, v) in o {
                let value = match b.get(k) {
                    Some(bv) => merge(bv, v),
                    None => v.clone(),
                };
                merged.insert(k.clone(), value);
            }
            Value::Object(merged)
        }
        (_, over) => over.clone(),
    }
}

const GITLAB_KEYWORDS: &[&str] = &[
    "image",
    "services",
    "stages",
    "types",
    "before_script",
    "after_script",
    "variables",
    "cache",
    "include",
    "default",
    "workflow",
    "spec",
];

/// Reads a dotenv report as GitLab does (`Ci::ParseDotenvArtifactService`): every line
/// `KEY=VALUE`, both stripped, a line without `=` an error, at most 20 variables in 5 KiB by
/// default, and a name of letters, digits and `_`.
fn gitlab_dotenv(text: &str) -> Vec<(String, String)> {
    assert!(
        text.len() < 5 * 1024,
        "a dotenv report of {} bytes",
        text.len()
    );
    let vars: Vec<(String, String)> = text
        .lines()
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("GitLab rejects the dotenv line {line:?}"));
            let key = key.trim();
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "GitLab rejects the variable name {key:?}"
            );
            // GitLab expands variables in these values; none may hold a `$`.
            assert!(!value.contains('$'), "a `$` in the dotenv value {value:?}");
            (key.to_owned(), value.trim().to_owned())
        })
        .collect();
    assert!(vars.len() <= 20, "{} dotenv variables", vars.len());
    vars
}

/// Runs an exported `.gitlab-ci.yml` as GitLab would; with `installed`, an image that has
/// portcullis on its PATH, else one where the jobs install it.
fn gitlab_run(
    project: &Path,
    config: &Value,
    project_variables: &[(String, String)],
    env: &[(String, String)],
    work: &Path,
    installed: bool,
    context: &Context,
) -> Outcome {
    let env: Vec<(String, String)> = env.iter().cloned().chain(context.gitlab()).collect();
    let env = env.as_slice();
    let top = config.as_object().expect("a mapping");
    let mut jobs: Vec<(String, Value)> = Vec::new();
    for (name, spec) in top {
        if name.starts_with('.') || GITLAB_KEYWORDS.contains(&name.as_str()) {
            continue;
        }
        let mut spec = spec.clone();
        if let Some(template) = spec["extends"].as_str() {
            spec = merge(&top[template], &spec);
        }
        // `parallel: matrix:` runs the job once per entry, with the entry's variables: each is
        // a unit here, `JOB#N`.
        match spec["parallel"]["matrix"].as_array() {
            Some(entries) => {
                for (n, entry) in entries.iter().enumerate() {
                    let mut unit = spec.clone();
                    let mut vars = unit["variables"].as_object().cloned().unwrap_or_default();
                    for (k, v) in entry.as_object().expect("a matrix entry") {
                        vars.insert(k.clone(), v.clone());
                    }
                    unit["variables"] = Value::Object(vars);
                    jobs.push((format!("{name}#{n}"), unit));
                }
            }
            None => jobs.push((name.clone(), spec)),
        }
    }
    let order: Vec<String> = jobs.iter().map(|(n, _)| n.clone()).collect();
    let job_of = |unit: &str| unit.split('#').next().unwrap_or_default().to_owned();
    let units_of =
        |job: &str| -> Vec<String> { order.iter().filter(|u| job_of(u) == job).cloned().collect() };
    let specs: HashMap<String, Value> = jobs.into_iter().collect();
    let needs: HashMap<String, Vec<String>> = specs
        .iter()
        .map(|(id, j)| {
            let expanded = needs_of(j).iter().flat_map(|n| units_of(n)).collect();
            (id.clone(), expanded)
        })
        .collect();
    let stage_of_job: HashMap<String, String> = specs
        .iter()
        .map(|(id, j)| {
            let line = j["script"]
                .as_array()
                .expect("script")
                .last()
                .expect("a line");
            let line = line.as_str().expect("a line");
            let stage = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--only="))
                .map(|group| match j["variables"]["PORTCULLIS_MATRIX"].as_str() {
                    // A combination's stage is named after its values, as `PORTCULLIS_MATRIX`
                    // says them.
                    Some(selector) => format!("{group} ({selector})"),
                    None => group.to_owned(),
                })
                .expect("--only=STAGE");
            (id.clone(), stage.to_owned())
        })
        .collect();
    // Rules are read when the pipeline is created, over its variables: a job whose rule's
    // `if:` is false is not in the pipeline at all.
    let rule_vars: HashMap<String, String> = env
        .iter()
        .cloned()
        .chain(
            top["variables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())),
        )
        .chain(project_variables.iter().cloned())
        .collect();
    let when = |job: &str| -> Option<String> {
        match specs[job]["rules"].as_array() {
            Some(rules) => {
                assert_eq!(rules.len(), 1, "one rule");
                if let Some(condition) = rules[0]["if"].as_str()
                    && !crate::engine_expr::gitlab_if(condition, &rule_vars)
                {
                    return None;
                }
                Some(rules[0]["when"].as_str().unwrap_or("on_success").to_owned())
            }
            None => Some(
                specs[job]["when"]
                    .as_str()
                    .unwrap_or("on_success")
                    .to_owned(),
            ),
        }
    };
    let optional = |job: &str, need: &str| -> bool {
        specs[job]["needs"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| {
                n["job"].as_str() == Some(job_of(need).as_str())
                    && n["optional"] == Value::Bool(true)
            })
    };
    let decide = |job: &str, _: &[JobEnd], ended: &HashMap<String, JobEnd>| -> bool {
        let Some(rule) = when(job) else {
            return false;
        };
        // An optional need its rule left out is ignored; GitLab refuses to create a pipeline
        // where a job needs one that is not optional.
        let mut ends = Vec::new();
        for need in &needs[job] {
            if when(need).is_none() {
                assert!(
                    optional(job, need),
                    "GitLab refuses the pipeline: `{job}` needs `{need}`, which its rules leave out"
                );
                continue;
            }
            ends.push(ended[need]);
        }
        match rule.as_str() {
            "on_success" => ends.iter().all(|e| *e == JobEnd::Success),
            "always" => true,
            "on_failure" => ends.contains(&JobEnd::Failure),
            other => panic!("the simulation does not know `when: {other}`"),
        }
    };
    let bin = work.join("gitlab-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let _ = std::os::unix::fs::symlink(BIN, bin.join("portcullis"));
    let global: Vec<(String, String)> = top["variables"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut dotenvs: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut runs: HashMap<String, StageRun> = HashMap::new();
    let mut started: Vec<String> = Vec::new();
    let mut run = |job: &str, _: &HashMap<String, JobEnd>| -> JobEnd {
        let spec = &specs[job];
        let dir = work.join(format!("gitlab-{job}"));
        copy_tree(project, &dir);
        // Precedence, lowest first: the file's variables, the job's, the needed jobs' dotenv
        // reports, the project's CI/CD variables.
        let mut vars: Vec<(String, String)> = env.to_vec();
        vars.extend(global.iter().cloned());
        if let Some(map) = spec["variables"].as_object() {
            vars.extend(
                map.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("str").to_owned())),
            );
        }
        for need in &needs[job] {
            vars.extend(dotenvs.get(need).cloned().unwrap_or_default());
        }
        vars.extend(project_variables.iter().cloned());
        vars.push(("CI_PROJECT_DIR".into(), dir.display().to_string()));
        let system = std::env::var("PATH").unwrap_or_default();
        let path = if installed {
            format!("{}:{system}", bin.display())
        } else {
            system
        };
        vars.push(("PATH".into(), path));
        let mut script = String::from("set -eo pipefail\n");
        for key in ["before_script", "script"] {
            for line in spec[key].as_array().into_iter().flatten() {
                script.push_str(line.as_str().expect("a script line"));
                script.push('\n');
            }
        }
        let script_file = work.join(format!("gitlab-{job}.sh"));
        std::fs::write(&script_file, script).expect("write the job script");
        let mut cmd = Command::new("bash");
        cmd.arg(&script_file).current_dir(&dir);
        clean_env(&mut cmd, &vars);
        let out = cmd.output().expect("run the job script");
        let reports = &spec["artifacts"]["reports"];
        assert_eq!(spec["artifacts"]["when"], "always");
        if let Some(file) = reports["dotenv"].as_str()
            && let Ok(text) = std::fs::read_to_string(dir.join(file))
        {
            dotenvs.insert(job.to_owned(), gitlab_dotenv(&text));
        }
        let junit = dir.join(reports["junit"].as_str().expect("a junit report"));
        if !junit.is_file() {
            // portcullis never ran (its install failed); GitLab says the report is missing.
            assert!(
                !out.status.success(),
                "{job}: passed without a JUnit report at {}",
                junit.display()
            );
            return JobEnd::Failure;
        }
        assert_schema_valid(&junit);
        let workdir = junit.parent().expect("the report's folder").to_path_buf();
        runs.insert(job.to_owned(), stage_of(&workdir, &stage_of_job[job]));
        started.push(job.to_owned());
        if out.status.success() {
            JobEnd::Success
        } else {
            JobEnd::Failure
        }
    };
    let ended = schedule(&order, &needs, &decide, &mut run);
    outcome(&order, &stage_of_job, &ended, &runs, &started)
}

/// Exports `pipeline` from `project` for `target`, parsed; `None` when Python's yaml is absent.
fn exported(project: &Path, pipeline: &str, target: &str, work: &Path) -> Option<Value> {
    let out = Command::new(BIN)
        .args(["export", target, pipeline])
        .current_dir(project)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portcullis export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = work.join(format!("exported-{target}.yml"));
    std::fs::write(&file, &out.stdout).expect("write");
    parse_yaml(&[&file, &repo_root().join("action.yml")]).map(|mut docs| docs.remove(0))
}

fn parse_yaml(files: &[&Path]) -> Option<Vec<Value>> {
    const PARSE: &str = "import json, sys, yaml\n\
        print(json.dumps([yaml.safe_load(open(p)) for p in sys.argv[1:]]))\n";
    let args: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python_yaml(PARSE, &args)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("JSON"))
}

/// Runs `pipeline` three ways (plain, GitHub, GitLab) and compares what each did.
fn round_trip(
    project: &Path,
    pipeline: &str,
    secrets: &[(&str, &str, &str)],
    env: &[(&str, &str)],
) -> Option<[Outcome; 3]> {
    round_trip_in(project, pipeline, secrets, env, &Context::default())
}

/// [`round_trip`] for a run about `context`: a branch, a tag, an event.
fn round_trip_in(
    project: &Path,
    pipeline: &str,
    secrets: &[(&str, &str, &str)],
    env: &[(&str, &str)],
    context: &Context,
) -> Option<[Outcome; 3]> {
    let work = tempfile::tempdir().expect("temp dir");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let action = parse_yaml(&[&repo_root().join("action.yml")])?.remove(0);
    let workflow = exported(project, pipeline, "github", work.path())?;
    let config = exported(project, pipeline, "gitlab", work.path())?;
    // The plain run has every secret in its environment; GitHub maps repository secrets into
    // the jobs that read them; GitLab gives its CI/CD variables to every job.
    let mut plain_env = env.clone();
    let mut repository_secrets = HashMap::new();
    let mut project_variables = Vec::new();
    for (var, _, value) in secrets {
        plain_env.push(((*var).to_owned(), (*value).to_owned()));
        repository_secrets.insert((*var).to_owned(), (*value).to_owned());
        project_variables.push(((*var).to_owned(), (*value).to_owned()));
    }
    plain_env.extend(context.plain_env());
    let plain = plain_run(project, pipeline, &plain_env, work.path());
    let github = github_run(
        project,
        &workflow,
        &action,
        &repository_secrets,
        &env,
        work.path(),
        context,
    );
    let gitlab = gitlab_run(
        project,
        &config,
        &project_variables,
        &env,
        work.path(),
        true,
        context,
    );
    assert_eq!(github, plain, "GitHub against a plain run of {pipeline}");
    assert_eq!(gitlab, plain, "GitLab against a plain run of {pipeline}");
    Some([plain, github, gitlab])
}

/// A pipeline with every kind of handoff: outputs read by a child and by a grandchild, values
/// with blanks and quotes, a secret only one stage reads, an output that holds a secret (which
/// no stage reads across jobs), an allowed failure, and stages that run on failure and always.
const HANDOFF: &str = r#"version: 1
name: handoff
secrets:
  TOKEN: { env: DEPLOY_TOKEN }
stages:
  build:
    run: |
      echo "version=2.1.0" >> "$PORTCULLIS_OUTPUT"
      echo "title=release 2.1 'spring'" >> "$PORTCULLIS_OUTPUT"
  lint:
    run: echo "checking style"
  docs:
    needs: [lint]
    allow-failure: true
    run: echo "a broken link"; exit 1
  package:
    needs: [build, lint]
    run: |
      echo "packaging ${{ build.version }}"
      echo "artifact=app-${{ build.version }}.tar" >> "$PORTCULLIS_OUTPUT"
  deploy:
    needs: [package]
    run: |
      test -n "${{ TOKEN }}"
      echo "deploying ${{ package.artifact }} (${{ build.title }}) as ${{ build.version }}"
      if [ "$FAIL_AT" = deploy ]; then echo "deploy failed"; exit 1; fi
      echo "receipt=${{ TOKEN }}-42" >> "$PORTCULLIS_OUTPUT"
      echo "url=https://example.invalid/${{ build.version }}" >> "$PORTCULLIS_OUTPUT"
  smoke:
    needs: [deploy]
    run: echo "GET ${{ deploy.url }}"
  restore:
    needs: [deploy]
    if: failure
    run: echo "restoring after $PORTCULLIS_STATUS"
  notify:
    needs: [smoke]
    if: always
    run: echo "pipeline $PORTCULLIS_STATUS"
"#;

const TOKEN: (&str, &str, &str) = ("DEPLOY_TOKEN", "TOKEN", "tok-9f8e7d6c5b4a");

fn handoff_project() -> Test {
    Test::new().pipeline("handoff", HANDOFF)
}

#[test]
fn exported_pipelines_pass_outputs_and_keep_order_on_github_and_gitlab() {
    let t = handoff_project();
    let Some([plain, github, gitlab]) = round_trip(t.path(), "handoff", &[TOKEN], &[]) else {
        return;
    };
    let stages: Vec<&str> = plain.ran.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        stages,
        [
            "build", "lint", "docs", "package", "deploy", "smoke", "notify"
        ],
        "{plain:?}"
    );
    assert_eq!(plain.not_run, ["restore"]);
    assert_eq!(plain.ran[2], ("docs".to_owned(), "warning".to_owned()));
    assert_eq!(
        plain.logs["deploy"],
        "deploying app-2.1.0.tar (release 2.1 'spring') as 2.1.0\n"
    );
    assert_eq!(plain.logs["notify"], "pipeline passed\n");
    assert_eq!(
        plain.outputs["deploy"],
        serde_json::json!({"receipt": "***-42", "url": "https://example.invalid/2.1.0"})
    );
    assert_eq!(
        plain.outputs["package"],
        serde_json::json!({"artifact": "app-2.1.0.tar"})
    );
    assert_eq!(github, gitlab);
}

#[test]
fn exported_pipelines_fail_skip_and_run_failure_stages_as_a_plain_run_does() {
    let t = handoff_project();
    let Some([plain, _, _]) = round_trip(t.path(), "handoff", &[TOKEN], &[("FAIL_AT", "deploy")])
    else {
        return;
    };
    let ran: Vec<(&str, &str)> = plain
        .ran
        .iter()
        .map(|(s, st)| (s.as_str(), st.as_str()))
        .collect();
    assert_eq!(
        ran,
        [
            ("build", "passed"),
            ("lint", "passed"),
            ("docs", "warning"),
            ("package", "passed"),
            ("deploy", "failed"),
            ("restore", "passed"),
            ("notify", "passed"),
        ]
    );
    assert_eq!(plain.not_run, ["smoke"]);
    assert_eq!(plain.logs["restore"], "restoring after failed\n");
    assert_eq!(plain.logs["notify"], "pipeline failed\n");
}

#[test]
fn the_demo_exported_runs_to_the_end_with_its_version_passed_to_deploy() {
    let t = Test::new();
    copy_tree(&repo_root().join("pipelines"), &t.path().join("pipelines"));
    copy_tree(
        &repo_root().join("fixtures/ports/compliant"),
        &t.path().join("fixtures/ports/compliant"),
    );
    let work = tempfile::tempdir().expect("temp dir");
    let Some(action) = parse_yaml(&[&repo_root().join("action.yml")]) else {
        return;
    };
    let Some(workflow) = exported(t.path(), "demo", "github", work.path()) else {
        return;
    };
    let config = exported(t.path(), "demo", "gitlab", work.path()).expect("parsed before");
    let plain = plain_run(t.path(), "demo", &[], work.path());
    let github = github_run(
        t.path(),
        &workflow,
        &action[0],
        &HashMap::new(),
        &[],
        work.path(),
        &Context::default(),
    );
    let gitlab = gitlab_run(
        t.path(),
        &config,
        &[],
        &[],
        work.path(),
        true,
        &Context::default(),
    );
    for (engine, outcome) in [("plain", &plain), ("GitHub", &github), ("GitLab", &gitlab)] {
        let order: Vec<&str> = outcome.ran.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            order,
            [
                "lint",
                "unit-tests",
                "integration-tests",
                "port-law",
                "docs-links",
                "build",
                "backup",
                "deploy",
                "smoke",
                "notify"
            ],
            "{engine}"
        );
        assert!(
            outcome
                .ran
                .iter()
                .all(|(_, s)| s == "passed" || s == "warning"),
            "{engine}: {outcome:?}"
        );
        let version = outcome.outputs["build"]["version"]
            .as_str()
            .expect("a version");
        assert!(version.starts_with("1.4."), "{engine}: {version}");
    }
    // The version `build` published in its job is the one `deploy` switched traffic to.
    for (engine, prefix) in [("GitHub", "github"), ("GitLab", "gitlab")] {
        let version =
            if engine == "GitHub" { &github } else { &gitlab }.outputs["build"]["version"]
                .as_str()
                .expect("a version")
                .to_owned();
        let log = std::fs::read_to_string(
            work.path()
                .join(format!("{prefix}-deploy"))
                .join(".portcullis/runs/latest/deploy.log"),
        )
        .expect("deploy's log");
        assert_eq!(log, format!("switched traffic to {version}\n"), "{engine}");
    }
}

#[test]
fn gitlab_jobs_install_portcullis_from_the_release_and_run_in_the_project_folder() {
    // A repository whose portcullis project is the folder `app`.
    let t = Test::new().file(
        "app/pipelines/one.yml",
        "version: 1\nstages:\n  a:\n    run: echo \"n=7\" >> \"$PORTCULLIS_OUTPUT\"\n  b:\n    needs: [a]\n    run: echo \"got ${{ a.n }}\"\n",
    );
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(t.path())
        .status()
        .expect("git init");
    assert!(git.success());
    let work = tempfile::tempdir().expect("temp dir");
    let Some(config) = exported(&t.path().join("app"), "one", "gitlab", work.path()) else {
        return;
    };
    assert_eq!(
        config["a"]["script"][0], "cd app",
        "the job runs in the project's folder"
    );
    assert_eq!(
        config[".portcullis"]["artifacts"]["reports"]["dotenv"],
        "app/portcullis-outputs.env"
    );
    // A release as the download base serves it: the archive and its SHA256SUMS line.
    let version = config["variables"]["PORTCULLIS_VERSION"]
        .as_str()
        .expect("a version");
    let asset = format!("portcullis-{version}-x86_64-unknown-linux-musl.tar.gz");
    let release = work.path().join("release").join(version);
    let stage = work.path().join("archive");
    std::fs::create_dir_all(&release).expect("mkdir");
    std::fs::create_dir_all(&stage).expect("mkdir");
    std::fs::copy(BIN, stage.join("portcullis")).expect("copy the binary");
    let tar = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -cf - -C '{}' portcullis | gzip -1 > '{}' && cd '{}' && sha256sum '{asset}' > SHA256SUMS",
            stage.display(),
            release.join(&asset).display(),
            release.display()
        ))
        .status()
        .expect("make the release");
    assert!(tar.success());
    let base = format!("file://{}", work.path().join("release").display());
    let variables = [("PORTCULLIS_DOWNLOAD_BASE".to_owned(), base)];
    let gitlab = gitlab_run(
        t.path(),
        &config,
        &variables,
        &[],
        work.path(),
        false,
        &Context::default(),
    );
    let plain = plain_run(&t.path().join("app"), "one", &[], work.path());
    assert_eq!(gitlab, plain);
    assert_eq!(plain.logs["b"], "got 7\n");
    for job in ["a", "b"] {
        let installed = work
            .path()
            .join(format!("gitlab-{job}/.portcullis/bin/portcullis"));
        assert!(installed.is_file(), "{job} did not install portcullis");
    }
    // A damaged download is refused before it is unpacked.
    std::fs::write(
        release.join("SHA256SUMS"),
        format!("{}  {asset}\n", "0".repeat(64)),
    )
    .expect("write");
    let work = tempfile::tempdir().expect("temp dir");
    let gitlab = gitlab_run(
        t.path(),
        &config,
        &variables,
        &[],
        work.path(),
        false,
        &Context::default(),
    );
    assert_eq!(gitlab.ran, Vec::<(String, String)>::new(), "{gitlab:?}");
    assert!(
        !work
            .path()
            .join("gitlab-a/.portcullis/bin/portcullis")
            .exists()
    );
}

#[test]
fn github_jobs_get_only_the_secrets_their_stage_reads() {
    let t = handoff_project();
    let work = tempfile::tempdir().expect("temp dir");
    let Some(workflow) = exported(t.path(), "handoff", "github", work.path()) else {
        return;
    };
    for (id, job) in workflow["jobs"].as_object().expect("jobs") {
        let env = &job["steps"][1]["env"];
        let mapped = env.get("DEPLOY_TOKEN").is_some();
        assert_eq!(mapped, id == "deploy", "{id}: {env}");
    }
}

/// Validates the exported files against the engines' schemas: GitLab's CI schema and
/// SchemaStore's GitHub workflow schema, as `check-jsonschema` vendors them.
pub(crate) const VALIDATE: &str = r#"
import json, sys, yaml, jsonschema
from importlib.resources import files
vendor = files("check_jsonschema.builtin_schemas.vendor")
schemas = {
    "gitlab": json.loads((vendor / "gitlab-ci.json").read_text()),
    "github": json.loads((vendor / "github-workflows.json").read_text()),
}
errors = []
for arg in sys.argv[1:]:
    kind, path = arg.split("=", 1)
    with open(path) as f:
        doc = yaml.safe_load(f)
    # YAML 1.1 reads the key `on` as true; GitHub reads it as `on`.
    if kind == "github" and True in doc:
        doc["on"] = doc.pop(True)
    validator = jsonschema.Draft7Validator(schemas[kind])
    for e in validator.iter_errors(doc):
        errors.append(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;

/// Whether `check-jsonschema` (and with it GitLab's schema) can be imported; says why not.
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
pub(crate) fn engine_schemas_present() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import check_jsonschema, jsonschema, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !required("check-jsonschema"),
            "check-jsonschema is required (PORTCULLIS_REQUIRE) but cannot be imported"
        );
        eprintln!(
            "skipped: Python's `check_jsonschema` is not installed \
             (python3 -m pip install check-jsonschema)"
        );
    }
    ok
}

#[test]
fn exported_files_validate_against_the_gitlab_and_github_schemas() {
    if !engine_schemas_present() {
        return;
    }
    let work = tempfile::tempdir().expect("temp dir");
    let mut args: Vec<String> = Vec::new();
    let mut exports: Vec<PathBuf> = shipped_pipelines()
        .into_iter()
        .map(|p| repo_root().join(p))
        .collect();
    let t = handoff_project();
    exports.push(t.path().join("pipelines/handoff.yml"));
    for (n, pipeline) in exports.iter().enumerate() {
        for target in ["gitlab", "github"] {
            let out = Command::new(BIN)
                .args(["export", target])
                .arg(pipeline)
                .current_dir(repo_root())
                .output()
                .expect("run portcullis export");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let file = work.path().join(format!("{n}-{target}.yml"));
            std::fs::write(&file, &out.stdout).expect("write");
            args.push(format!("{target}={}", file.display()));
        }
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .args(&args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "exported files the schemas reject:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A condition no engine can read before its job starts (a pipeline variable): the job runs,
/// portcullis skips the stage inside, and says so to the jobs that need it, which skip theirs,
/// as one run does.
const GATED: &str = r#"version: 1
name: gated
env:
  CHANNEL: frozen
stages:
  build:
    run: echo built
  deploy:
    needs: [build]
    if: CHANNEL != 'frozen'
    run: echo deployed
  migrate:
    needs: [deploy]
    run: echo migrated
  verify:
    needs: [migrate]
    run: echo verified
  notify:
    needs: [verify]
    if: always
    run: echo "pipeline $PORTCULLIS_STATUS"
"#;

#[test]
fn a_stage_skipped_inside_its_job_skips_the_jobs_that_need_it() {
    let t = Test::new().pipeline("gated", GATED);
    let Some([plain, _, _]) = round_trip(t.path(), "gated", &[], &[]) else {
        return;
    };
    let ran: Vec<(&str, &str)> = plain
        .ran
        .iter()
        .map(|(s, st)| (s.as_str(), st.as_str()))
        .collect();
    assert_eq!(ran, [("build", "passed"), ("notify", "passed")]);
    assert_eq!(plain.not_run, ["deploy", "migrate", "verify"]);
    // With the channel open, every stage runs, in each engine alike.
    let t = Test::new().pipeline("gated", &GATED.replace("CHANNEL: frozen", "CHANNEL: open"));
    let Some([plain, _, _]) = round_trip(t.path(), "gated", &[], &[]) else {
        return;
    };
    assert_eq!(plain.ran.len(), 5, "{plain:?}");
}

/// Conditions on the run's context, which both engines can read before a job starts: each
/// exported file, run job by job as its engine would with that context, runs the stages a plain
/// run does. The engines' own conditions are evaluated by `engine_expr`, written from their
/// documentation apart from portcullis's translator.
const CONTEXTUAL: &str = r#"version: 1
name: contextual
stages:
  build:
    run: echo built
  deploy:
    needs: [build]
    if: PORTCULLIS_BRANCH == 'main' || PORTCULLIS_TAG =~ 'v*'
    run: echo "deploying $PORTCULLIS_BRANCH$PORTCULLIS_TAG"
  announce:
    needs: [deploy]
    if: PORTCULLIS_EVENT != 'pull_request' && !(PORTCULLIS_TAG =~ '*-rc*')
    run: echo announced
  preview:
    needs: [build]
    if: PORTCULLIS_EVENT == 'pull_request' && startsWith(PORTCULLIS_BRANCH, 'feat')
    run: echo "preview of $PORTCULLIS_BRANCH"
  nightly:
    needs: [build]
    if: PORTCULLIS_EVENT == 'schedule' || PORTCULLIS_EVENT == 'manual'
    run: echo nightly
  release-review:
    needs: [build]
    if: PORTCULLIS_BRANCH == 'release/2' && !endsWith(PORTCULLIS_BRANCH, '-wip')
    run: echo reviewing
  notify:
    needs: [announce, preview, nightly, release-review]
    if: always
    run: echo "notify $PORTCULLIS_STATUS"
"#;

#[test]
fn context_conditions_run_the_same_stages_on_github_gitlab_and_a_plain_run() {
    let t = Test::new().pipeline("contextual", CONTEXTUAL);
    let cases: [(Context, &[&str]); 7] = [
        (
            Context {
                branch: "main",
                tag: "",
                event: "push",
            },
            &["build", "deploy", "announce", "notify"],
        ),
        (
            Context {
                branch: "",
                tag: "v1.2.0",
                event: "push",
            },
            &["build", "deploy", "announce", "notify"],
        ),
        (
            Context {
                branch: "",
                tag: "v1.3.0-rc1",
                event: "push",
            },
            &["build", "deploy", "notify"],
        ),
        (
            Context {
                branch: "feat/login",
                tag: "",
                event: "pull_request",
            },
            &["build", "preview", "notify"],
        ),
        (
            Context {
                branch: "fix/typo",
                tag: "",
                event: "pull_request",
            },
            &["build", "notify"],
        ),
        (
            Context {
                branch: "main",
                tag: "",
                event: "manual",
            },
            &["build", "deploy", "announce", "nightly", "notify"],
        ),
        (
            Context {
                branch: "release/2",
                tag: "",
                event: "pull_request",
            },
            &["build", "release-review", "notify"],
        ),
    ];
    for (context, expected) in cases {
        let Some([plain, _, _]) = round_trip_in(t.path(), "contextual", &[], &[], &context) else {
            return;
        };
        let ran: Vec<&str> = plain.ran.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(ran, expected, "{context:?}");
    }
}

/// A matrix stage exported: GitHub's `strategy.matrix` (its combinations computed here from
/// GitHub's rules, each job given `toJSON(matrix)`) and GitLab's `parallel: matrix:` (one job per
/// entry) run the combinations a plain run does, each once, and what needs the matrix after all
/// of them; with `fail-fast: false` a failed combination lets the others run on every engine.
const MATRIXED: &str = r#"version: 1
name: matrixed
stages:
  prepare:
    run: echo prepared
  test:
    needs: [prepare]
    matrix:
      python: ["3.11", "3.12"]
      db: [pg15, pg16]
      exclude:
        - { python: "3.11", db: pg16 }
      include:
        - { python: "3.13", db: pg16, experimental: "yes" }
        - { python: "3.12", tier: slow }
    fail-fast: false
    run: |
      echo "python ${{ matrix.python }} on $MATRIX_DB ($MATRIX_TIER)"
      if [ "$FAIL_ON" = "${{ matrix.python }}-$MATRIX_DB" ]; then exit 1; fi
  report:
    needs: [test]
    if: always
    run: echo "report $PORTCULLIS_STATUS"
"#;

#[test]
fn a_matrix_runs_the_same_combinations_on_github_gitlab_and_a_plain_run() {
    let t = Test::new().pipeline("matrixed", MATRIXED);
    let Some([plain, _, _]) = round_trip(t.path(), "matrixed", &[], &[]) else {
        return;
    };
    let ran: Vec<&str> = plain.ran.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        ran,
        [
            "prepare",
            "test (python=3.11, db=pg15)",
            "test (python=3.12, db=pg15, tier=slow)",
            "test (python=3.12, db=pg16, tier=slow)",
            "test (python=3.13, db=pg16, experimental=yes)",
            "report",
        ]
    );
    assert_eq!(
        plain.logs["test (python=3.12, db=pg16, tier=slow)"],
        "python 3.12 on pg16 (slow)\n"
    );
    // One combination fails; the others still run everywhere, and `report` sees the failure.
    let Some([plain, _, _]) = round_trip(t.path(), "matrixed", &[], &[("FAIL_ON", "3.12-pg15")])
    else {
        return;
    };
    assert!(
        plain.ran.contains(&(
            "test (python=3.12, db=pg15, tier=slow)".to_owned(),
            "failed".to_owned()
        )),
        "{plain:?}"
    );
    assert_eq!(plain.ran.len(), 6, "{plain:?}");
    assert_eq!(plain.logs["report"], "report failed\n");
}

/// A condition on a stage's output: the output crosses into the job that judges it.
const OUTPUT_GATED: &str = r#"version: 1
name: output-gated
stages:
  build:
    run: |
      echo "kind=$KIND" >> "$PORTCULLIS_OUTPUT"
  deploy:
    needs: [build]
    if: build.kind == 'release'
    run: echo deployed
  after:
    needs: [deploy]
    run: echo after
"#;

#[test]
fn a_condition_on_an_output_is_judged_alike_on_every_engine() {
    let t = Test::new().pipeline("output-gated", OUTPUT_GATED);
    for (kind, expected) in [
        ("release", &["build", "deploy", "after"][..]),
        ("snapshot", &["build"][..]),
    ] {
        let Some([plain, _, _]) = round_trip(t.path(), "output-gated", &[], &[("KIND", kind)])
        else {
            return;
        };
        let ran: Vec<&str> = plain.ran.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(ran, expected, "{kind}");
    }
}
