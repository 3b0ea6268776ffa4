//! `portcullis export github|gitlab [PIPELINE]`: the same pipeline as another engine's workflow.
//!
//! The main type is [`Jobs`]: what both engines need to know of each stage once it runs as a
//! job of its own. When a team outgrows one machine, each stage becomes a job that runs
//! `portcullis run --only STAGE`, so the stage itself still runs exactly as it does locally and
//! the engine does the scheduling: [`github`] writes a GitHub Actions workflow, [`gitlab`] a
//! `.gitlab-ci.yml`.
//!
//! What crosses between jobs is carried the engine's own way: a stage's outputs that a later
//! stage reads go out as job outputs (GitHub) or a dotenv report (GitLab) and come back into
//! the reading job as the `PORTCULLIS_OUTPUT_<STAGE>__<KEY>` variables that `run --only` reads
//! (see [`crate::handoff`]); a job needs the stages whose outputs it reads, since both engines
//! pass outputs only from the jobs named in `needs`. What cannot cross is said in comments rather
//! than papered over: a stage's rollback never runs when a later job fails, an output that
//! holds a secret is not passed, and secrets read from a file or a command need the runner to
//! provide them. The YAML is written by hand (the crate has no YAML writer); every value that
//! is not a plain identifier is written as a double-quoted JSON string, which is valid YAML.

mod condition;
mod github;
mod gitlab;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::cli::{ExportArgs, ExportTarget};
use crate::commands::{Error, load};
use crate::config;
use crate::config::pipeline::{Action, Pipeline, SecretSource, Stage, StageIdx};

pub(crate) fn export(args: &ExportArgs) -> Result<u8, Error> {
    let path = config::resolve(args.pipeline.as_deref());
    let pipeline = load(&path, &[])?;
    let place = Place::here(&path);
    let jobs = Jobs::new(&pipeline).map_err(Error::usage)?;
    let text = match args.target {
        ExportTarget::Github => github::workflow(&pipeline, &jobs, &place, &args.action),
        ExportTarget::Gitlab => gitlab::config(&pipeline, &jobs, &place),
    };
    crate::commands::write_data(text.as_bytes())
}

/// Where the jobs run portcullis: the folder, relative to the repository's top (where a checkout
/// puts a job), and the pipeline, relative to that folder.
pub(crate) struct Place {
    /// `.` when portcullis runs at the top of the repository.
    pub(crate) workdir: String,
    pub(crate) pipeline: String,
}

impl Place {
    /// The current folder's place in the repository around it (the nearest folder above with
    /// `.git`; the current folder itself when there is none), and `path` relative to it.
    fn here(path: &Path) -> Place {
        let cwd = std::env::current_dir().ok();
        let pipeline = cwd
            .as_ref()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf());
        let workdir = cwd
            .as_ref()
            .and_then(|cwd| {
                let top = cwd.ancestors().find(|dir| dir.join(".git").exists())?;
                cwd.strip_prefix(top).ok().map(Path::to_path_buf)
            })
            .unwrap_or_default();
        Place {
            workdir: text_of(&workdir).unwrap_or_else(|| ".".to_owned()),
            pipeline: text_of(&pipeline).unwrap_or_else(|| ".".to_owned()),
        }
    }

    /// A file the jobs write in the working folder, as the repository's top names it.
    pub(crate) fn in_repository(&self, file: &str) -> String {
        if self.workdir == "." {
            file.to_owned()
        } else {
            format!("{}/{file}", self.workdir)
        }
    }
}

/// A path as `/`-separated text without `.` parts; `None` when nothing is left.
fn text_of(path: &Path) -> Option<String> {
    let clean: PathBuf = path
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let text = clean.to_string_lossy().into_owned();
    (!text.is_empty()).then_some(text)
}

/// One stage as a job.
pub(crate) struct Job<'a> {
    pub(crate) stage: &'a Stage,
    /// The stages it waits for, in file order: [`job_needs`], the stages whose outputs it
    /// reads, and for a conditional stage every stage before it.
    pub(crate) needs: Vec<StageIdx>,
    /// The outputs it reads from other jobs: `(stage, key)`.
    pub(crate) reads: Vec<(StageIdx, String)>,
    /// The keys of its own outputs that other jobs read, sorted.
    pub(crate) read_by_others: Vec<String>,
    /// The secrets it reads ([`Pipeline::secrets_read_by`]).
    pub(crate) secrets: Vec<String>,
    /// A later combination of a matrix stage: the job of the first combination runs it.
    pub(crate) follower: bool,
}

pub(crate) struct Jobs<'a> {
    pub(crate) jobs: Vec<Job<'a>>,
}

impl<'a> Jobs<'a> {
    /// Every stage as a job. Two outputs read across jobs whose variables would have the same
    /// name (`${{ a-b.k }}` and `${{ a_b.k }}`) cannot be told apart on the way: that is refused.
    pub(crate) fn new(pipeline: &'a Pipeline) -> Result<Jobs<'a>, String> {
        let mut jobs: Vec<Job<'a>> = Vec::new();
        let may_skip = may_be_skipped(pipeline);
        for (pos, stage) in pipeline.stages.iter().enumerate() {
            let mut reads = Vec::new();
            for (from, key) in stage.outputs_read() {
                // Validation made sure the stage exists and is an ancestor.
                if let Some(idx) = pipeline.stage_by_name(&from) {
                    reads.push((idx, key));
                }
            }
            // A need its own job may skip (a condition only portcullis can judge there) says
            // so through an output, so that this job skips its stage too, as one run would.
            for need in &stage.needs {
                let key = crate::handoff::SKIPPED_KEY.to_owned();
                // A matrix stage's combinations are one job, read once.
                let need = StageIdx(matrix_first(pipeline, need.0).unwrap_or(need.0));
                if may_skip[need.0] && !reads.contains(&(need, key.clone())) {
                    reads.push((need, key));
                }
            }
            let mut needs = job_needs(pipeline, pos);
            needs.extend(reads.iter().map(|(idx, _)| *idx));
            if stage.condition.decides_status() {
                needs = ancestors(pipeline, &needs);
            }
            needs.sort();
            needs.dedup();
            jobs.push(Job {
                stage,
                needs,
                reads,
                read_by_others: Vec::new(),
                secrets: pipeline.secrets_read_by(StageIdx(pos)),
                follower: matrix_first(pipeline, pos).is_some(),
            });
        }
        let mut variables: Vec<(String, String, String)> = Vec::new();
        for pos in 0..jobs.len() {
            for (idx, key) in jobs[pos].reads.clone() {
                let from = pipeline.stage(idx).name_in_file();
                let name = crate::handoff::variable(from, &key);
                if let Some((s, k, _)) = variables
                    .iter()
                    .find(|(s, k, n)| *n == name && (s != from || *k != key))
                {
                    return Err(format!(
                        "`${{{{ {s}.{k} }}}}` and `${{{{ {from}.{key} }}}}` would both pass between jobs as \
                         `{name}`; rename one of the stages or outputs"
                    ));
                }
                variables.push((from.clone(), key.clone(), name));
                let keys = &mut jobs[idx.0].read_by_others;
                if !keys.contains(&key) {
                    keys.push(key);
                    keys.sort();
                }
            }
        }
        Ok(Jobs { jobs })
    }
}

/// Which stages a run of them alone may skip: those with a condition, and those that need one.
fn may_be_skipped(pipeline: &Pipeline) -> Vec<bool> {
    let mut may: Vec<bool> = Vec::with_capacity(pipeline.stages.len());
    // A need may come after its stage in the file: repeat until nothing changes.
    may.extend(pipeline.stages.iter().map(|s| !s.condition.is_default()));
    loop {
        let mut changed = false;
        for (i, stage) in pipeline.stages.iter().enumerate() {
            if !may[i] && stage.needs.iter().any(|n| may[n.0]) {
                may[i] = true;
                changed = true;
            }
        }
        if !changed {
            return may;
        }
    }
}

/// The stages a job waits for. A conditional stage without `needs` waits, in portcullis, for
/// every other stage to settle; an engine would start it at once (and a failure condition would
/// never hold), so it needs every stage that is not itself such a stage.
pub(crate) fn job_needs(pipeline: &Pipeline, pos: usize) -> Vec<StageIdx> {
    let stage = &pipeline.stages[pos];
    if !stage.needs.is_empty() || !stage.condition.decides_status() {
        return stage.needs.clone();
    }
    pipeline
        .stages
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.condition.decides_status() || !s.needs.is_empty())
        .map(|(i, _)| StageIdx(i))
        .collect()
}

/// `needs` and every stage they wait for in turn, in file order. A conditional stage's job needs
/// them all: an engine tells a job only how the jobs it needs ended, and such a stage must know
/// whether anything before it failed.
fn ancestors(pipeline: &Pipeline, needs: &[StageIdx]) -> Vec<StageIdx> {
    let mut found: Vec<StageIdx> = Vec::new();
    let mut stack: Vec<StageIdx> = needs.to_vec();
    while let Some(idx) = stack.pop() {
        if !found.contains(&idx) {
            found.push(idx);
            stack.extend(pipeline.stage(idx).needs.iter().copied());
        }
    }
    found.sort();
    found
}

/// Job ids that fit an engine: the stage id when `fits` it and it is free (compared without
/// case), else the id with a `stage-` prefix (when it does not fit) and, if that is taken, a
/// number.
pub(crate) fn job_ids(pipeline: &Pipeline, fits: &dyn Fn(&str) -> bool) -> Vec<String> {
    let reserved: HashSet<String> = pipeline
        .stages
        .iter()
        .map(|s| s.id.to_ascii_lowercase())
        .collect();
    let mut assigned: HashSet<String> = HashSet::new();
    let mut ids: Vec<String> = Vec::new();
    for (pos, stage) in pipeline.stages.iter().enumerate() {
        // A matrix stage is one job, named after the stage as written.
        if let Some(first) = matrix_first(pipeline, pos) {
            let id = ids[first].clone();
            ids.push(id);
            continue;
        }
        let name = stage.name_in_file();
        let stage = &Stage {
            id: name.clone(),
            ..stage.clone()
        };
        let fit = fits(&stage.id);
        let id = if fit && !assigned.contains(&stage.id.to_ascii_lowercase()) {
            stage.id.clone()
        } else {
            let base = if fit {
                stage.id.clone()
            } else {
                format!("stage-{}", stage.id)
            };
            let mut candidate = base.clone();
            let mut n = 2;
            while assigned.contains(&candidate.to_ascii_lowercase())
                || (candidate != stage.id && reserved.contains(&candidate.to_ascii_lowercase()))
            {
                candidate = format!("{base}-{n}");
                n += 1;
            }
            candidate
        };
        assigned.insert(id.to_ascii_lowercase());
        ids.push(id);
    }
    ids
}

/// For a later combination of a matrix stage, the position of its first combination, whose job
/// runs them all; `None` for any other stage.
pub(crate) fn matrix_first(pipeline: &Pipeline, pos: usize) -> Option<usize> {
    let group = &pipeline.stages[pos].matrix.as_ref()?.group;
    pipeline.stages[..pos]
        .iter()
        .position(|s| s.matrix.as_ref().is_some_and(|m| m.group == *group))
}

/// For a matrix stage whose combinations' conditions differ (they read `matrix.KEY`), the
/// condition as written for a comment: the engine cannot tell the combinations apart before the
/// job starts, so portcullis decides inside each.
pub(crate) fn matrix_condition(pipeline: &Pipeline, pos: usize) -> Option<String> {
    let first = &pipeline.stages[pos];
    let group = &first.matrix.as_ref()?.group;
    let differs = pipeline.stages.iter().any(|s| {
        s.matrix.as_ref().is_some_and(|m| m.group == *group) && s.condition != first.condition
    });
    differs.then(|| format!("the `if:` of each combination of `{group}`"))
}

/// The job ids of `needs`, each once, in order: a matrix stage's combinations are one job.
pub(crate) fn need_ids(ids: &[String], needs: &[StageIdx]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for need in needs {
        let id = scalar(&ids[need.0]);
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The required variables of the pipeline (`env: { X: { required: true } }`), each with its
/// description and the stages that read it (ids of their jobs' stages, matrix stages once).
pub(crate) fn required_vars(pipeline: &Pipeline) -> Vec<(String, Option<String>, Vec<String>)> {
    pipeline
        .declared
        .iter()
        .filter(|(_, d)| d.required)
        .map(|(name, d)| {
            let mut readers: Vec<String> = Vec::new();
            for (i, stage) in pipeline.stages.iter().enumerate() {
                let id = stage.name_in_file();
                if pipeline.reads(StageIdx(i), name) && !readers.contains(id) {
                    readers.push(id.clone());
                }
            }
            (name.clone(), d.description.clone(), readers)
        })
        .collect()
}

/// Writes the header lines that list the required variables, under `intro` (comment lines,
/// each ending in a line break): one `#   `NAME` (description): readers` per variable.
pub(crate) fn required_header(out: &mut String, pipeline: &Pipeline, intro: &str) {
    let required = required_vars(pipeline);
    if required.is_empty() {
        return;
    }
    out.push_str(intro);
    for (name, description, readers) in &required {
        let about = description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let _ = std::fmt::Write::write_fmt(
            out,
            format_args!(
                "#   `{name}`{}: {}\n",
                comment(&about),
                comment(&readers.join(", "))
            ),
        );
    }
}

/// Whether the stage has a rollback, its own or its kind's.
pub(crate) fn has_rollback(stage: &Stage) -> bool {
    stage.rollback.is_some() || matches!(&stage.action, Action::Uses(kind) if kind.has_rollback)
}

/// For a `uses: approval` stage, the environment its job runs in (its `environment:`, else
/// its id): the engine asks for the approval, and the job runs the stage with `--approve`.
pub(crate) fn approval_environment(stage: &Stage) -> Option<String> {
    match &stage.action {
        Action::Uses(uses) if uses.kind == "approval" => {
            Some(crate::stages::approval::environment(&uses.with, &stage.id))
        }
        _ => None,
    }
}

/// Header lines for secrets a hosted runner cannot read as written: `(name, where from)`.
pub(crate) fn hosted_gaps(pipeline: &Pipeline) -> Vec<(String, String)> {
    pipeline
        .secrets
        .iter()
        .filter_map(|(name, source)| {
            let from = match source {
                SecretSource::File(file) => format!("the file `{}`", file.display()),
                SecretSource::Command(argv) => format!("the command `{}`", argv.join(" ")),
                SecretSource::Env(_) => return None,
            };
            Some((name.clone(), comment(&from)))
        })
        .collect()
}

/// The variable a secret is read from on the engine: its `env:` variable, or for a secret read
/// from a file or a command, its own name (which the header asks the user to switch it to).
pub(crate) fn secret_variable(pipeline: &Pipeline, name: &str) -> String {
    match pipeline.secrets.get(name) {
        Some(SecretSource::Env(var)) => var.clone(),
        _ => name.to_owned(),
    }
}

/// The job's limit: every attempt at the stage's timeout plus the waits between them, rounded
/// up to whole minutes, so the engine never stops a stage that portcullis would still let run.
pub(crate) fn timeout_minutes(stage: &Stage) -> u64 {
    let attempts = stage.retries.count.saturating_add(1);
    let mut total = stage.timeout.saturating_mul(attempts);
    for retry in 1..=stage.retries.count {
        total = total.saturating_add(stage.retries.delay_before(retry));
    }
    total
        .as_secs()
        .saturating_add(u64::from(total.subsec_nanos() > 0))
        .div_ceil(60)
        .max(1)
}

/// A YAML scalar: plain when it is unambiguously a string, else a double-quoted JSON string.
pub(crate) fn scalar(text: &str) -> String {
    let plain = text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./@".contains(c))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::Value::from(text).to_string()
    }
}

/// Text for a `#` comment: one line, whatever the pipeline holds.
pub(crate) fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_plain_only_when_unambiguous() {
        let cases = [
            ("deploy", "deploy"),
            ("portcullis/portcullis@v1", "portcullis/portcullis@v1"),
            ("pipelines/ci.yml", "pipelines/ci.yml"),
            ("./", "\"./\""),
            ("on", "\"on\""),
            ("yes", "\"yes\""),
            ("12", "\"12\""),
            ("--only lint", "\"--only lint\""),
            ("a: b", "\"a: b\""),
            ("say \"hi\"\n", "\"say \\\"hi\\\"\\n\""),
            ("", "\"\""),
        ];
        for (text, yaml) in cases {
            assert_eq!(scalar(text), yaml, "{text:?}");
        }
    }

    #[test]
    fn comments_stay_on_one_line() {
        assert_eq!(comment("a\nb\rc"), "a b c");
    }

    #[test]
    fn paths_are_clean_text() {
        assert_eq!(
            text_of(Path::new("./pipelines/./ci.yml")).as_deref(),
            Some("pipelines/ci.yml")
        );
        assert_eq!(text_of(Path::new("")), None);
        let place = Place {
            workdir: "app".into(),
            pipeline: "pipelines/ci.yml".into(),
        };
        assert_eq!(place.in_repository("junit.xml"), "app/junit.xml");
    }
}
