//! `portcullis run`: validate, select, resolve secrets, run, report.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cli::{OutputFormat, RunArgs};
use crate::commands::{Error, load, parse_vars, stderr_color};
use crate::config::pipeline::{Pipeline, SecretSource, StageIdx};
use crate::exit_code;
use crate::plan::{self, SelectOptions, Selection};
use crate::redact::{MIN_SECRET_CHARS, Redactor};
use crate::report::github::GithubReporter;
use crate::report::junit::JunitReport;
use crate::report::terminal::{TerminalMode, TerminalReporter};
use crate::report::{ReportError, Reporters};
use crate::runner::emitter::Emitter;
use crate::runner::events::RunStatus;
use crate::runner::{Dispatcher, RunSetup};
use crate::supervisor::{self, Signals};
use crate::{config, run_dir, secrets};

/// How long a `command:` secret may take to print its value.
const SECRET_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn run(args: RunArgs) -> Result<u8, Error> {
    let result = run_checked(args);
    // A pipeline that cannot run (exit 2) still tells a GitHub workflow so: `status` is
    // `invalid`, and no `junit` since none was written.
    if let Err(e) = &result
        && e.exit_code() == exit_code::INVALID
        && crate::report::github::enabled()
        && let Some(path) = std::env::var_os("GITHUB_OUTPUT").filter(|s| !s.is_empty())
    {
        let text = crate::report::github::output_lines(&[("status", "invalid")]);
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            crate::commands::print_warning(&format!(
                "cannot write `status` to `$GITHUB_OUTPUT` (`{}`): {e}",
                PathBuf::from(path).display()
            ));
        }
    }
    result
}

fn run_checked(args: RunArgs) -> Result<u8, Error> {
    let vars = parse_vars(&args.vars)?;
    let path = config::resolve(args.pipeline.as_deref());
    let pipeline = load(&path, &vars)?;
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    // Read once: what the run is about (git or the CI's variables), for conditions judged
    // before the run, the dry run and the run itself.
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let context = crate::context::current(&here);
    let given_vars = vars.clone();
    let vars = pipeline.with_required_from_env(&vars, &from_env);
    let changed = match &args.base {
        Some(base) => Some(changed_files(base).map_err(|e| {
            Error::usage(e)
                .help("pass a commit, branch or tag that exists here, e.g. `--base origin/main`")
        })?),
        None => None,
    };
    let matrix = match std::env::var("PORTCULLIS_MATRIX") {
        Ok(text) if !text.trim().is_empty() && !args.only.is_empty() => Some(
            crate::config::matrix::parse_selector(&text)
                .map_err(|e| Error::usage(e).help("write it as `{\"python\": \"3.11\"}`"))?,
        ),
        _ => None,
    };
    let options = SelectOptions {
        matrix: matrix.as_deref(),
        only: &args.only,
        skip: &args.skip,
        from: args.from.as_deref(),
        changed: args.base.as_deref().zip(changed.as_deref()),
    };
    let selection = plan::select(&pipeline, &options).map_err(Error::usage)?;
    // Only what the stages that run read is demanded: an exported job running `--only lint`
    // does not need the deploy's target.
    let unset: Vec<String> = pipeline
        .missing_required(&given_vars, &from_env, &vec![true; pipeline.stages.len()])
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    if !unset.is_empty() && !args.dry_run {
        let runs = will_run(&pipeline, &selection, &context, &vars, &unset);
        let missing = pipeline.missing_required(&given_vars, &from_env, &runs);
        if !missing.is_empty() {
            return Err(missing_required(&missing));
        }
    }
    crate::stages::approval::check_flags(&pipeline, &args.approve).map_err(|e| {
        Error::usage(e).help("`--approve` names a `uses: approval` stage of the pipeline")
    })?;
    if args.dry_run {
        let preview = pipeline.preview_vars(&context, &vars);
        return dry_run(&pipeline, &selection, &preview, args.format);
    }
    crate::commands::runtime()?.block_on(run_pipeline(pipeline, selection, vars, context, &args))
}

async fn run_pipeline(
    pipeline: Pipeline,
    selection: Selection,
    cli_vars: Vec<(String, String)>,
    context: Vec<(String, String)>,
    args: &RunArgs,
) -> Result<u8, Error> {
    // Listening from the first instruction: an interrupt while secrets resolve ends the run like
    // any other (exit 130), and stops the secret commands.
    let mut signals = Signals::new(true);
    supervisor::become_subreaper();
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    // Password files a killed run left behind go before anything else runs.
    crate::pg::conn::sweep_stale_passfiles(&std::env::temp_dir());
    let (secret_list, optional) = secrets_to_resolve(&pipeline, &selection, &root);
    let resolving = async {
        let mut resolved = secrets::resolve(
            &secret_list,
            &root,
            &|name| std::env::var(name).ok(),
            SECRET_COMMAND_TIMEOUT,
        )
        .await?;
        // One at a time, so that one that cannot be read does not take the others with it.
        for secret in optional {
            let one = secrets::resolve(
                std::slice::from_ref(&secret),
                &root,
                &|name| std::env::var(name).ok(),
                SECRET_COMMAND_TIMEOUT,
            );
            resolved.extend(one.await.unwrap_or_default());
        }
        Ok(resolved)
    };
    let resolved = tokio::select! {
        resolved = resolving => resolved.map_err(|errors| Error::Secrets { errors })?,
        () = signals.next() => return Err(Error::Interrupted),
    };
    let given = crate::handoff::given(&pipeline, &selection.selected, &|name| {
        std::env::var(name).ok()
    });
    let skipped_upstream =
        crate::handoff::skipped_upstream(&pipeline, &selection.selected, &|name| {
            std::env::var(name).ok()
        });
    let upstream = std::env::var(crate::handoff::UPSTREAM_STATUS)
        .ok()
        .and_then(|v| crate::runner::UpstreamStatus::parse(&v));
    for (stage, key, variable) in &given.missing {
        crate::commands::print_warning(&format!(
            "`${{{{ {stage}.{key} }}}}` has no value here: stage `{stage}` does not run in this run \
             and `{variable}` is not set"
        ));
    }
    let redactor = Arc::new(Redactor::new(resolved.iter().map(|(_, v)| v.clone())));
    let maskable = |value: &str| value.trim().chars().count() >= MIN_SECRET_CHARS;
    for (name, _) in resolved.iter().filter(|(_, v)| !maskable(v)) {
        crate::commands::print_warning(&format!(
            "secret `{name}` is shorter than {MIN_SECRET_CHARS} characters and is not masked \
             (masking it would hide every such word of every log)"
        ));
    }
    let github = crate::report::github::enabled();
    if github {
        // Before anything else is printed: GitHub masks a value only in output that follows
        // its `add-mask` line. Each line of a multi-line value is registered on its own, and
        // escaped as the runner unescapes command data (`%`, CR, LF).
        let mut out: Box<dyn Write> = if args.format == OutputFormat::Json {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        for line in resolved
            .iter()
            .flat_map(|(_, v)| v.lines())
            .filter(|l| maskable(l))
        {
            let _ = writeln!(
                out,
                "::add-mask::{}",
                crate::report::github::escape_data(line)
            );
        }
        let _ = out.flush();
    }

    let first: Vec<(String, String)> = context.iter().chain(&resolved).cloned().collect();
    let (vars, env_pairs) = pipeline.layer_vars(&first, &cli_vars);
    let mut base_env: Vec<(String, String)> = std::env::vars().collect();
    base_env.extend(context);
    base_env.extend(env_pairs);
    base_env.extend(resolved.iter().cloned());
    // `--base` reaches every stage, for a script's own diff and `uses: coverage`'s
    // `changed-lines`.
    if let Some(base) = &args.base {
        base_env.push((crate::stages::coverage::BASE_VAR.to_owned(), base.clone()));
    }

    let (run_id, dir) = run_dir::create(&root).map_err(|e| {
        Error::failed(format!(
            "cannot create the run folder under `.portcullis/runs`: {e}"
        ))
        .help("check that the directory is writable")
    })?;
    // Stops what is left of this run if portcullis itself is killed; see `supervisor`.
    let watchdog = supervisor::start_watchdog(&run_id, &root);
    let concurrency = args.jobs.map_or(pipeline.concurrency, usize::from);
    let start = Instant::now();
    // Output events carry up to 64 KiB each; a short queue bounds what a chatty stage can pile
    // up ahead of a slow terminal, and backpressure slows the stage instead.
    let (tx, rx) = mpsc::channel(16);
    let emitter = Emitter::new(tx, start, redactor.clone());

    let stderr = std::io::stderr();
    // With `--format json`, stdout carries only the summary document; GitHub reads workflow
    // commands from stderr as well.
    let json = args.format == OutputFormat::Json;
    let github_out = move || -> Box<dyn Write + Send> {
        if json {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    let terminal = if github {
        // GitHub reads workflow commands from stdout; the run's lines go there too, so that
        // groups and annotations land in order between them.
        TerminalReporter::new(github_out(), TerminalMode::Plain, false).without_output()
    } else if stderr.is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb") {
        let mode = TerminalMode::Live {
            width: crate::commands::stderr_width(),
        };
        TerminalReporter::new(Box::new(stderr), mode, stderr_color())
    } else {
        TerminalReporter::new(Box::new(stderr), TerminalMode::Plain, stderr_color())
    };
    let mut junit = JunitReport::new();
    let masker = redactor.clone();
    junit.set_mask(move |s: &str| masker.redact_str(s).into_owned());
    let github = github.then(|| {
        let summary = std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        GithubReporter::new(github_out(), summary, random_token())
            .in_workspace(crate::report::github::WorkspacePaths::from_env())
    });
    let reporters = Reporters {
        terminal,
        junit,
        github,
        json: crate::report::json::JsonSummary::new(),
    };
    let report_task = tokio::spawn(reporters.consume(rx, start));

    let approvals = crate::stages::approval::Given::new(
        &args.approve,
        std::env::var(crate::stages::approval::ENV).ok(),
        !crate::report::github::enabled()
            && std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal(),
    );
    for name in crate::stages::approval::unknown_env_names(&pipeline, &approvals) {
        crate::commands::print_warning(&format!(
            "`{}` names `{name}`, which is no approval stage of `{}`",
            crate::stages::approval::ENV,
            pipeline.file.display()
        ));
    }
    let setup = RunSetup {
        approvals: Arc::new(approvals),
        run_id,
        run_dir: dir.clone(),
        root: root.clone(),
        selection,
        keep_going: args.keep_going,
        concurrency,
        vars,
        base_env: crate::runner::dedup_env(base_env),
        redactor: redactor.clone(),
        given_outputs: given.outputs,
        skipped_upstream,
        upstream,
    };
    let pipeline = Arc::new(pipeline);
    let end = Dispatcher::new(pipeline.clone(), setup, emitter)
        .run_with(signals)
        .await;
    let status = end.status;
    // Every stage and rollback has stopped its processes by now.
    if let Some(watchdog) = watchdog {
        watchdog.dismiss();
    }
    let mut reporters = report_task
        .await
        .map_err(|e| Error::failed(format!("the reporters stopped: {e}")))?;
    let mut targets = vec![dir.join("junit.xml")];
    targets.extend(args.junit.clone());
    let mut failures: Vec<ReportError> = Vec::new();
    for target in &targets {
        if let Err(source) = write_junit(&reporters.junit, target, &dir) {
            failures.push(ReportError::Junit {
                path: target.clone(),
                source,
            });
        }
    }
    if let Some(path) = &args.output_env {
        let (mut text, warnings) =
            crate::handoff::dotenv(&pipeline, &end.outputs, &redactor, "`--output-env`");
        // Jobs that need this one learn that the pipeline has failed, as `if: failure` and
        // `$PORTCULLIS_STATUS` would have in one run.
        let failed = match status {
            RunStatus::Failed => Some("failed"),
            RunStatus::Interrupted => Some("cancelled"),
            RunStatus::Passed => upstream.map(|u| match u {
                crate::runner::UpstreamStatus::Failed => "failed",
                crate::runner::UpstreamStatus::Cancelled => "cancelled",
            }),
        };
        if let Some(failed) = failed {
            text.push_str(&format!("{}={failed}\n", crate::handoff::UPSTREAM_STATUS));
        }
        for warning in &warnings {
            crate::commands::print_warning(warning);
        }
        if let Err(source) = write_output_env(path, &text) {
            failures.push(ReportError::OutputEnv {
                path: path.clone(),
                source,
            });
        }
    }
    if let Some(github) = &mut reporters.github {
        failures.extend(github.take_summary_error());
        if let Some(path) = std::env::var_os("GITHUB_OUTPUT").filter(|s| !s.is_empty()) {
            let junit = root.join(targets.last().unwrap_or(&dir));
            let (outputs, warnings) =
                crate::handoff::json(&pipeline, &end.outputs, &redactor, "`$GITHUB_OUTPUT`");
            for warning in &warnings {
                crate::commands::print_warning(warning);
            }
            let text = crate::report::github::output_lines(&[
                ("status", status.as_str()),
                ("junit", &junit.display().to_string()),
                ("outputs", &outputs.to_string()),
            ]);
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()));
            if let Err(source) = written {
                failures.push(ReportError::GithubOutput {
                    path: PathBuf::from(path),
                    source,
                });
            }
        }
    }
    // Last, so that it can say how the run ends: its exit code counts the reports above.
    let summary_path = dir.join("summary.json");
    let code = |failures: &[ReportError]| exit_code::of_run(status, failures.is_empty());
    let document = reporters.json.to_json(code(&failures), &targets);
    if let Err(source) = reporters.json.write_atomic(&summary_path, &document) {
        failures.push(ReportError::SummaryJson {
            path: summary_path,
            source,
        });
    }
    let metrics = args
        .metrics
        .clone()
        .or_else(|| pipeline.metrics.as_ref().map(|m| root.join(m)));
    if let Some(path) = metrics {
        let families = crate::report::metrics::run(&document, &backup_folders(&pipeline, &root));
        if let Err(source) = crate::report::metrics::write(&path, &families) {
            failures.push(ReportError::Metrics { path, source });
        }
    }
    if args.format == OutputFormat::Json {
        let document = reporters.json.to_json(code(&failures), &targets);
        crate::commands::write_json(&document)?;
    }
    if failures.is_empty() {
        Ok(exit_code::of_run(status, true))
    } else {
        Err(Error::Reports {
            errors: failures,
            run: status,
        })
    }
}

/// The backup folders of the `pg-dump` and `backup-drill` stages whose `dir:` (and `workdir:`)
/// are written out, for the metrics of the last good backup and drill.
fn backup_folders(pipeline: &Pipeline, root: &Path) -> Vec<(String, PathBuf)> {
    use crate::config::pipeline::Action;
    use crate::config::yaml::NodeKind;
    let mut folders = Vec::new();
    for stage in &pipeline.stages {
        let Action::Uses(uses) = &stage.action else {
            continue;
        };
        if uses.kind != "pg-dump" && uses.kind != "backup-drill" {
            continue;
        }
        let NodeKind::Map(pairs) = &uses.with.kind else {
            continue;
        };
        let dir = pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some("dir"))
            .and_then(|(_, v)| v.as_str());
        let base = match &stage.workdir {
            None => Some(root.to_path_buf()),
            Some(t) if !t.has_references() => Some(
                root.join(
                    t.parts
                        .iter()
                        .map(|p| match p {
                            crate::config::template::TemplatePart::Literal(s) => s.as_str(),
                            _ => "",
                        })
                        .collect::<String>(),
                ),
            ),
            Some(_) => None,
        };
        if let (Some(dir), Some(base)) = (dir, base)
            && !dir.contains("${{")
        {
            folders.push((stage.id.clone(), base.join(dir)));
        }
    }
    folders
}

type NamedSecret = (String, SecretSource);

/// The secrets to resolve before the run, and those to resolve only if they can be. A run of the
/// whole pipeline resolves every secret, and any that cannot be resolved stops it. A run that
/// leaves stages out (an exported job runs one) needs only the secrets its stages read
/// ([`Pipeline::secrets_read_by`]): the others are resolved when their variable is set or their
/// file exists, so that their values are still masked, and are left out otherwise; their
/// commands are not run.
fn secrets_to_resolve(
    pipeline: &Pipeline,
    selection: &Selection,
    root: &Path,
) -> (Vec<NamedSecret>, Vec<NamedSecret>) {
    let all: Vec<NamedSecret> = pipeline
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if selection.selected.iter().all(|s| *s) {
        return (all, Vec::new());
    }
    let read: Vec<String> = (0..pipeline.stages.len())
        .filter(|i| selection.selected[*i])
        .flat_map(|i| pipeline.secrets_read_by(StageIdx(i)))
        .collect();
    let (required, rest): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|(name, _)| read.contains(name));
    let optional = rest
        .into_iter()
        .filter(|(_, source)| match source {
            SecretSource::Env(var) => std::env::var_os(var).is_some_and(|v| !v.is_empty()),
            SecretSource::File(path) => root.join(path).is_file(),
            SecretSource::Command(_) => false,
        })
        .collect();
    (required, optional)
}

/// Writes the `--output-env` file, creating the folders it goes in.
fn write_output_env(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

/// Writes one JUnit report, creating the folders it goes in.
fn write_junit(report: &JunitReport, target: &Path, run_folder: &Path) -> std::io::Result<()> {
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let private = target.starts_with(run_folder);
    report.write_atomic(target, if private { 0o600 } else { 0o644 })
}

/// A token nothing else can guess, for `::stop-commands::`; std's hasher keys are random per
/// process.
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    format!("portcullis-{:016x}", hasher.finish())
}

/// `--dry-run`: the plan, with `${{ NAME }}`s expanded and secrets shown as `***`.
fn dry_run(
    pipeline: &Pipeline,
    selection: &Selection,
    preview: &std::collections::HashMap<String, String>,
    format: OutputFormat,
) -> Result<u8, Error> {
    if format == OutputFormat::Json {
        let mut doc = plan::plan_json(pipeline, Some(selection), preview);
        doc["dry_run"] = serde_json::Value::Bool(true);
        return crate::commands::write_json(&doc);
    }
    let mut text = plan::render_plan(pipeline, Some(selection), preview);
    let count = selection.selected.iter().filter(|s| **s).count();
    text.push_str(&format!(
        "dry run: {count} of {} stages would run; nothing was run\n",
        pipeline.stages.len()
    ));
    crate::commands::write_data(text.as_bytes())
}

/// The stages a run will run as far as can be told before it starts: selected, and not
/// skipped by a condition that reads only variables and is false with this run's values (nor
/// needing such a stage without deciding on failures itself). A condition that reads a
/// required variable without a value, or a secret, cannot be told, and counts as running.
fn will_run(
    pipeline: &Pipeline,
    selection: &Selection,
    context: &[(String, String)],
    vars: &[(String, String)],
    unset: &[String],
) -> Vec<bool> {
    // Values not known yet: required variables without one, and secrets (not resolved yet).
    let unknown: Vec<&String> = unset.iter().chain(pipeline.secrets.keys()).collect();
    let preview = pipeline.preview_vars(context, vars);
    let mut runs: Vec<bool> = selection.selected.clone();
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let reads_unknown = stage.condition.expr.as_ref().is_some_and(|e| {
            e.names()
                .iter()
                .any(|n| matches!(n, crate::config::expr::Name::Var(v) if unknown.contains(&v)))
        });
        if !reads_unknown && plan::false_here(&stage.condition, &preview).is_some() {
            runs[i] = false;
        }
    }
    // What needs a stage that will not run does not run either, unless it decides on failures.
    loop {
        let mut changed = false;
        for (i, stage) in pipeline.stages.iter().enumerate() {
            if runs[i]
                && !stage.condition.decides_status()
                && stage
                    .needs
                    .iter()
                    .any(|n| selection.selected[n.0] && !runs[n.0])
            {
                runs[i] = false;
                changed = true;
            }
        }
        if !changed {
            return runs;
        }
    }
}

/// The error of a run that lacks required variables: each with its description.
fn missing_required(missing: &[(String, Option<String>)]) -> Error {
    let lines: Vec<String> = missing
        .iter()
        .map(|(name, description)| match description {
            Some(d) => format!("`{name}` ({d})"),
            None => format!("`{name}`"),
        })
        .collect();
    let (first, _) = &missing[0];
    let noun = if missing.len() == 1 {
        "variable"
    } else {
        "variables"
    };
    Error::usage(format!(
        "required {noun} without a value: {}",
        lines.join(", ")
    ))
    .help(format!(
        "pass `--var {first}=VALUE`, or set `{first}` in the environment"
    ))
}

/// Files changed since the branch left `base` (their merge base) up to the working tree,
/// tracked or new, relative to the current folder.
fn changed_files(base: &str) -> Result<Vec<String>, String> {
    // A ref never starts with `-`; one that does would reach git as an option
    // (`--base=--output=FILE` truncates FILE).
    if base.starts_with('-') {
        return Err(format!("`--base {base}` is not a commit, branch or tag"));
    }
    let git = |args: &[&str]| -> Result<String, String> {
        let out = std::process::Command::new("git")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `git` for `--base {base}`: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("`git {}` failed: {}", args.join(" "), err.trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let commit = git(&[
        "rev-parse",
        "--verify",
        "--end-of-options",
        &format!("{base}^{{commit}}"),
    ])?;
    // What this branch changed since it left `base` (as a pull request shows it), not what
    // `base` changed since: the merge base, when there is one.
    let since = git(&["merge-base", commit.trim(), "HEAD"])
        .map(|m| m.trim().to_owned())
        .unwrap_or_else(|_| commit.trim().to_owned());
    // Paths relative to this folder, as `paths:` globs are, unquoted (`-z`), whatever the
    // user's `core.quotePath`.
    let mut files: Vec<String> = git(&[
        "-c",
        "core.quotePath=false",
        "diff",
        "--name-only",
        "--relative",
        "-z",
        "--no-renames",
        &since,
        "--",
    ])?
    .split('\0')
    .filter(|f| !f.is_empty())
    .map(str::to_owned)
    .collect();
    files.extend(
        git(&["ls-files", "-z", "--others", "--exclude-standard"])?
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_owned),
    );
    files.sort();
    files.dedup();
    Ok(files)
}
