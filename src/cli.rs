//! Command-line types only; each subcommand's behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// What `--help` and the man page say after the options.
const AFTER_HELP: &str = "\
Exit status:
  0    every stage passed (allowed failures included)
  1    a stage or a rollback failed, or a report asked for could not be written
  2    the pipeline or the command line is invalid; nothing ran
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP)

Environment:
  NO_COLOR, CLICOLOR_FORCE, TERM  colour (see --color)
  GITHUB_ACTIONS=true             GitHub mode: groups, annotations, $GITHUB_STEP_SUMMARY,
                                  $GITHUB_OUTPUT (status, junit, outputs)
  DATABASE_URL                    backups restore's URL when --url is not given
  DOCKER_HOST                     the Docker engine of blue-green and ports --live
  PORTCULLIS_SKIP=1               the git hook (`hook run`) skips the pipeline, and only it
  PORTCULLIS_APPROVE=STAGE[,STAGE]  approves these `uses: approval` stages, as `--approve` does
  PORTCULLIS_OUTPUT_<STAGE>__<KEY>  with --only, the value of `${{ STAGE.KEY }}` for a stage left
                                  out (`-` in STAGE and KEY written `_`)
Stages get PORTCULLIS_RUN_ID, PORTCULLIS_RUN_DIR, PORTCULLIS_STAGE, PORTCULLIS_STATUS and
PORTCULLIS_OUTPUT (a file of KEY=VALUE lines, their outputs).";

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A deploy gate runner: one YAML pipeline, run the same in CI, as a git hook, or by hand",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Colour: `auto` (on a terminal, unless `NO_COLOR` is set or `TERM=dumb`; `CLICOLOR_FORCE`
    /// forces it), `always` or `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
}

/// Completion of a pipeline argument: the names under `pipelines/`.
fn pipelines() -> clap_complete::ArgValueCandidates {
    clap_complete::ArgValueCandidates::new(crate::commands::docs::pipeline_candidates)
}

/// Completion of a stage argument: the stages of the pipeline on the command line.
fn stages() -> clap_complete::ArgValueCandidates {
    clap_complete::ArgValueCandidates::new(crate::commands::docs::stage_candidates)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a pipeline: `pipelines/ci.yml` by default, `NAME` for `pipelines/NAME.yml`, or a path.
    Run(RunArgs),
    /// Check pipelines without running anything (every `pipelines/*.yml` when none is named).
    Validate(ValidateArgs),
    /// Print the stages in the order they can start, with what each waits for.
    Plan(PlanArgs),
    /// Print the stage graph as Mermaid or Graphviz DOT.
    Graph(GraphArgs),
    /// Install or remove the git hook that runs a pipeline before each push or commit, or run it.
    Hook(HookArgs),
    /// Print a JSON Schema of the pipeline format, for editor completion and checks.
    Schema,
    /// Write a pipeline as another CI system's workflow: `export github|gitlab [PIPELINE]`.
    Export(ExportArgs),
    /// Check the port law: forbidden, unlisted and missing listeners (`--live`: on this machine now).
    Ports(PortsArgs),
    /// Approve (or `--reject`) an approval stage that waits in a running pipeline, from another
    /// shell.
    Approve(ApproveArgs),
    /// Manage `pg-dump` backups: `list`, `verify` (read every block), `restore` and `prune`.
    Backups(BackupsArgs),
    /// Print a shell completion script (e.g. `portcullis completions bash > /etc/bash_completion.d/portcullis`).
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `portcullis man | man -l -`.
    Man,
    /// Started by `run`: stops the run's processes once portcullis has exited.
    #[command(name = "__watchdog", hide = true)]
    Watchdog { run_id: String },
}

#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The `uses: approval` stage that waits.
    pub(crate) stage: String,
    /// The run it waits in (a folder under `.portcullis/runs`); the latest run by default.
    #[arg(long = "run", value_name = "RUN_ID")]
    pub(crate) run: Option<String>,
    /// Reject instead: the stage fails, and what needs it does not run.
    #[arg(long)]
    pub(crate) reject: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Pipeline name (`deploy` for `pipelines/deploy.yml`) or path.
    #[arg(add = pipelines())]
    pub(crate) pipeline: Option<String>,
    /// Run only this stage (repeatable); its needs are taken as done.
    #[arg(long, value_name = "STAGE", add = stages())]
    pub(crate) only: Vec<String>,
    /// Approve this `uses: approval` stage (repeatable): it passes without asking anyone.
    #[arg(long, value_name = "STAGE", add = stages())]
    pub(crate) approve: Vec<String>,
    /// Leave this stage out (repeatable); what needs it still runs.
    #[arg(long, value_name = "STAGE", add = stages())]
    pub(crate) skip: Vec<String>,
    /// Start from this stage: run it and everything that depends on it.
    #[arg(long, value_name = "STAGE", add = stages())]
    pub(crate) from: Option<String>,
    /// After a failure, let independent branches finish instead of aborting.
    #[arg(long)]
    pub(crate) keep_going: bool,
    /// Print what would run, with variables expanded and secrets masked, and run nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Also write the JUnit report here (it is always written to the run folder).
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// Git ref to compare with for stages' `paths:` filters; every stage sees it as
    /// `PORTCULLIS_BASE` (`uses: coverage` counts changed lines from it).
    #[arg(long, value_name = "REF")]
    pub(crate) base: Option<String>,
    /// Most stages at once (overrides the pipeline's `concurrency`).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) jobs: Option<u16>,
    /// Set a variable for `${{ KEY }}` (repeatable); overrides the pipeline's `env`.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub(crate) vars: Vec<String>,
    /// `human` (default) or `json`: the live log stays on stderr and stdout gets the run's `summary.json` at the end (with `--dry-run`: the plan as `plan --format json`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub(crate) format: OutputFormat,
    /// Also write the outputs the stages published to FILE, as `PORTCULLIS_OUTPUT_<STAGE>__<KEY>=VALUE` lines (a GitLab dotenv report); outputs that hold a secret are left out.
    #[arg(long, value_name = "FILE")]
    pub(crate) output_env: Option<PathBuf>,
    /// Write the run's figures to FILE in Prometheus' text format (node_exporter's textfile
    /// collector), atomically: each stage's status and duration, and the last successful
    /// backup and restore drill of each `pg-dump` and `backup-drill` folder (overrides the
    /// pipeline's `metrics:`).
    #[arg(long, value_name = "FILE")]
    pub(crate) metrics: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    #[arg(add = pipelines())]
    pub(crate) pipelines: Vec<String>,
    /// Variables that will be given with `--var` at run time.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub(crate) vars: Vec<String>,
    /// `human` (default) or `json`: one document with every file's verdict and diagnostics (line, column, message, help).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub(crate) format: OutputFormat,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[arg(add = pipelines())]
    pub(crate) pipeline: Option<String>,
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub(crate) vars: Vec<String>,
    /// `human` (default) or `json`: every stage with its kind, needs, level, condition and settings.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub(crate) format: OutputFormat,
}

#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    #[arg(add = pipelines())]
    pub(crate) pipeline: Option<String>,
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub(crate) format: GraphFormat,
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub(crate) vars: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct HookArgs {
    #[command(subcommand)]
    pub(crate) action: HookAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HookAction {
    /// Write the hook (pre-push by default) into this repository's hooks folder; where
    /// pre-commit, lefthook or husky runs the hooks, add the gate to their config instead.
    Install(HookInstallArgs),
    /// Remove portcullis's hooks and the gate it added to a hook manager's config (both kinds
    /// unless one is named), restoring a hook it had displaced; other hooks are left alone.
    Uninstall(HookUninstallArgs),
    /// Run the pipeline as the hook would: reads what git gives a pre-push hook (its standard
    /// input, or pre-commit's `PRE_COMMIT_FROM_REF`), for hook managers (pre-commit, lefthook,
    /// husky) to call.
    Run(HookRunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HookType {
    PrePush,
    PreCommit,
}

#[derive(Debug, Args)]
pub(crate) struct HookRunArgs {
    /// The git hook this runs as.
    #[arg(value_enum)]
    pub(crate) hook: HookType,
    /// Pipeline to run (`pipelines/ci.yml` when omitted), as for `portcullis run`.
    pub(crate) pipeline: Option<String>,
    /// What git passed to the hook, after `--`: for pre-push, the remote's name and URL.
    #[arg(last = true, value_name = "GIT_ARGS")]
    pub(crate) git_args: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct HookInstallArgs {
    /// Pipeline the hook runs (`pipelines/ci.yml` when omitted), as for `portcullis run`.
    #[arg(add = pipelines())]
    pub(crate) pipeline: Option<String>,
    /// Run the pipeline before each `git push`, on what is being pushed (the default).
    #[arg(long, conflicts_with = "pre_commit")]
    pub(crate) pre_push: bool,
    /// Run the pipeline before each `git commit`.
    #[arg(long)]
    pub(crate) pre_commit: bool,
    /// Replace a hook portcullis did not write; it is kept as `<hook>.local` and still runs first
    /// (not needed, and not used, where a hook manager runs the hooks).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct HookUninstallArgs {
    /// Remove only the pre-push hook.
    #[arg(long)]
    pub(crate) pre_push: bool,
    /// Remove only the pre-commit hook.
    #[arg(long)]
    pub(crate) pre_commit: bool,
}

/// How `validate`, `plan`, `run`, `backups list` and `backups prune` print their result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Human,
    /// One JSON document on stdout (see the README's "Machine-readable output").
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The CI system to write a workflow for.
    #[arg(value_enum)]
    pub(crate) target: ExportTarget,
    /// Pipeline name (`deploy` for `pipelines/deploy.yml`) or path.
    #[arg(add = pipelines())]
    pub(crate) pipeline: Option<String>,
    /// The portcullis GitHub Action each job runs (`./` when this repository holds it); GitHub only.
    #[arg(
        long = "action",
        value_name = "REF",
        default_value = "portcullis/portcullis@v1"
    )]
    pub(crate) action: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ExportTarget {
    /// A GitHub Actions workflow: one job per stage.
    Github,
    /// A `.gitlab-ci.yml`: one job per stage.
    Gitlab,
}

#[derive(Debug, Args)]
pub(crate) struct PortsArgs {
    /// Files or folders to scan for declared ports (default: `.` when `--live` is not given).
    pub(crate) paths: Vec<PathBuf>,
    /// A port that may be exposed, with an optional role: `3001=frontend` (repeatable).
    #[arg(long, value_name = "PORT[=ROLE]")]
    pub(crate) allow: Vec<String>,
    /// A port that must not be used at all (repeatable).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) forbid: Vec<u16>,
    /// A port that must have a listener or a published container port (repeatable).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) require_listening: Vec<u16>,
    /// Check this machine now: listening sockets and ports published by Docker containers.
    #[arg(long)]
    pub(crate) live: bool,
    #[arg(long, value_enum, default_value_t = PortsFormat::Human)]
    pub(crate) format: PortsFormat,
    /// Skip files and folders matching GLOB (repeatable; a bare name matches it anywhere).
    #[arg(long, value_name = "GLOB")]
    pub(crate) exclude: Vec<String>,
    /// Read only files matching GLOB (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub(crate) include: Vec<String>,
    /// Violations recorded in FILE count as notes; entries that match nothing are reported.
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// Whether a listener on loopback only counts: `reachable` (default) or `any`.
    #[arg(long, value_enum, default_value_t = crate::ports::ExposureRule::Reachable)]
    pub(crate) exposure: crate::ports::ExposureRule,
    /// Record today's violations in FILE, for `--baseline`, and pass.
    #[arg(long, value_name = "FILE", conflicts_with = "baseline")]
    pub(crate) write_baseline: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PortsFormat {
    /// One line per finding and a count.
    Human,
    /// `{"findings": [...], "summary": {...}}`.
    Json,
    /// A JUnit document: one test case per finding, violations as failures.
    Junit,
}

#[derive(Debug, Args)]
pub(crate) struct BackupsArgs {
    #[command(subcommand)]
    pub(crate) action: BackupsAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BackupsAction {
    /// List the backups in a folder, newest last, with any that are incomplete or corrupt.
    List(BackupsListArgs),
    /// Check backups against their manifests and read every block of each dump (all when none
    /// is named).
    Verify(BackupsVerifyArgs),
    /// Restore a backup over its database: into a fresh database, checked, then swapped in by
    /// name; the replaced database is kept as `<db>__failed_<time>`.
    Restore(BackupsRestoreArgs),
    /// Restore drill: restore the newest backup (or `--id`) into a scratch database, check it,
    /// time it from start to verified, record the result in its manifest, drop the copy.
    Drill(BackupsDrillArgs),
    /// Delete the valid backups that no retention rule keeps (the rules of `pg-dump`: a backup
    /// is kept when any rule keeps it); corrupt and incomplete folders are never deleted.
    Prune(BackupsPruneArgs),
}

/// Where the offsite copies are (the `offsite:` of `pg-dump`). Credentials come from
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, never from the command line.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RemoteArgs {
    /// The offsite copies, `s3://BUCKET/PREFIX` (the `offsite.url` of the `pg-dump` stage).
    #[arg(long, value_name = "S3_URL", env = "PORTCULLIS_OFFSITE_URL")]
    pub(crate) remote: Option<String>,
    /// The S3-compatible server when it is not AWS (MinIO, Ceph, R2, GCS); else `AWS_ENDPOINT_URL`.
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// The bucket's region; else `AWS_REGION`.
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
}

/// Where a restore or a drill takes its backup from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BackupSource {
    /// The folder given with `--dir`.
    Local,
    /// The offsite copies given with `--remote`: downloaded, decrypted with `--identity`,
    /// checked against both sha256 sums, then restored.
    Remote,
}

#[derive(Debug, Args)]
pub(crate) struct IdentityArgs {
    /// An age identity file (`AGE-SECRET-KEY-1…`, as `age-keygen` writes) that decrypts the
    /// offsite copy; else the key itself in `PORTCULLIS_AGE_IDENTITY`.
    #[arg(long, value_name = "FILE")]
    pub(crate) identity: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BackupsDrillArgs {
    /// The backup to drill (default: the newest valid one; newer ones that are not valid then
    /// fail the drill, with their reason).
    #[arg(long, value_name = "ID")]
    pub(crate) id: Option<String>,
    #[arg(long, value_name = "DIR", default_value = "backups")]
    pub(crate) dir: PathBuf,
    #[arg(long, value_enum, default_value_t = BackupSource::Local)]
    pub(crate) from: BackupSource,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    #[command(flatten)]
    pub(crate) identity: IdentityArgs,
    /// The server to restore onto, as a URL naming any database; the copy is created beside it
    /// as `<db>__drill_<time>` and dropped afterwards.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) url: String,
    #[arg(long, value_name = "DB", default_value = "postgres")]
    pub(crate) maintenance_db: String,
    /// The recovery-time objective: the drill fails when restoring and checking took longer.
    #[arg(long, value_name = "DURATION")]
    pub(crate) rto: Option<String>,
    /// Write the drill's figures to FILE in Prometheus' text format (node_exporter's textfile
    /// collector), atomically.
    #[arg(long, value_name = "FILE")]
    pub(crate) metrics: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BackupsListArgs {
    /// The folder a `pg-dump` stage writes into (its `dir:`).
    #[arg(long, value_name = "DIR", default_value = "backups")]
    pub(crate) dir: PathBuf,
    /// `human` (default) or `json`: each backup's state with its whole manifest.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub(crate) format: OutputFormat,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct BackupsVerifyArgs {
    /// Backup ids to verify (all when none is named).
    pub(crate) ids: Vec<String>,
    #[arg(long, value_name = "DIR", default_value = "backups")]
    pub(crate) dir: PathBuf,
    /// Verify the offsite copies instead: each object read back and its size and sha256
    /// compared with its manifest; with `--identity`, also decrypted and the dump's sha256
    /// compared.
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    #[command(flatten)]
    pub(crate) identity: IdentityArgs,
}

#[derive(Debug, Args)]
pub(crate) struct BackupsRestoreArgs {
    /// The backup id (a folder name shown by `backups list`).
    pub(crate) id: String,
    #[arg(long, value_name = "DIR", default_value = "backups")]
    pub(crate) dir: PathBuf,
    /// The database to replace, as a URL or `key=value` string; its password is best given
    /// through `PGPASSWORD` or `.pgpass`.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) url: String,
    /// The database to connect to for creating and renaming databases.
    #[arg(long, value_name = "DB", default_value = "postgres")]
    pub(crate) maintenance_db: String,
    #[arg(long, value_enum, default_value_t = BackupSource::Local)]
    pub(crate) from: BackupSource,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    #[command(flatten)]
    pub(crate) identity: IdentityArgs,
}

/// A count of a retention rule, as `validate` takes it in a pipeline.
fn retention_count() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=100_000)
}

#[derive(Debug, Args)]
pub(crate) struct BackupsPruneArgs {
    /// The folder a `pg-dump` stage writes into (its `dir:`).
    #[arg(long, value_name = "DIR", default_value = "backups")]
    pub(crate) dir: PathBuf,
    /// Keep the N newest backups.
    #[arg(long, value_name = "N", value_parser = retention_count())]
    pub(crate) keep: Option<u64>,
    /// Keep the backups younger than this (`30d`, `12h`).
    #[arg(long, value_name = "DURATION", value_parser = crate::config::duration::parse)]
    pub(crate) max_age: Option<std::time::Duration>,
    /// Keep the newest backup of each of the last N days (UTC) that have one.
    #[arg(long, value_name = "N", value_parser = retention_count())]
    pub(crate) keep_daily: Option<u64>,
    /// Keep the newest backup of each of the last N ISO weeks (UTC, Monday to Sunday) that have
    /// one.
    #[arg(long, value_name = "N", value_parser = retention_count())]
    pub(crate) keep_weekly: Option<u64>,
    /// Keep the newest backup of each of the last N months (UTC) that have one.
    #[arg(long, value_name = "N", value_parser = retention_count())]
    pub(crate) keep_monthly: Option<u64>,
    /// Keep the newest backup of each of the last N years (UTC) that have one.
    #[arg(long, value_name = "N", value_parser = retention_count())]
    pub(crate) keep_yearly: Option<u64>,
    /// Print what would be deleted, and delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// `human` (default) or `json`: each backup with what prune did and why.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub(crate) format: OutputFormat,
}
