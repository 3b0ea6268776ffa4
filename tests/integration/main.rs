//! Integration tests: each runs the real `portcullis` binary on a pipeline written into a
//! temporary directory, and asserts on its exit code, output, logs and JUnit report.

mod harness;
// GitHub's `if:` and GitLab's `rules: if:` as the engines read them, for the export simulations.
mod engine_expr;

// Validation: every error of a file at once, each at its line and column.
mod validate;
// The pipeline language: `if:` expressions, the run's context, matrix stages, required
// variables, `defaults.workdir`, and conditions and matrices exported to GitHub and GitLab.
mod language;
// Scheduling, failure, cancellation, retries, timeouts, rollbacks, outputs, selection flags.
mod run;
// Ctrl-C and SIGTERM, and that no process outlives portcullis.
mod signals;
// Secrets: resolved from env, file and command, masked everywhere.
mod secrets;
// Hostile input and shared machines: private run folders, exclusive report files, concurrent
// runs, forged GitHub outputs, git options in refs, huge diagnostics, secret edge cases.
mod hardening;
// The JUnit report: schema-valid whatever a stage prints, imported results merged.
mod junit;
// `plan`, `graph` and the pipelines shipped in `pipelines/`.
mod plan;
// `--format json` of `validate`, `plan`, `run` and `backups list`, and the run's `summary.json`.
mod json;
// GitHub Actions: the action's script, groups, annotations, summary, outputs.
mod github;
// The action's install step: a release download checked against SHA256SUMS, or a build; the
// release workflow that publishes what it downloads.
mod install;
// Built-in stage kinds through the kind interface.
mod kinds;
// `uses: coverage` on reports of real pytest-cov and JaCoCo runs, changed lines from real git.
mod coverage;
// `uses: approval`: `--approve`, `PORTCULLIS_APPROVE`, `portcullis approve`, the terminal prompt
// under a pseudo-terminal, the recorded decision and the exported jobs.
mod approval;
// Where the parts meet: `${...}` in `with:`, plan and dry run, report identity, outputs, masking.
mod seams;
// Bounded memory with a stage that prints a gigabyte.
mod memory;
// `schema`: the JSON Schema matches every shipped pipeline and rejects invalid ones.
mod schema;
// `export github`: the workflow passes actionlint and keeps the pipeline's shape; `run --only`
// takes outputs from the environment and hands its own on.
mod export;
// `export github` and `export gitlab` run as their engines would, against a plain run; the
// exported files against the engines' schemas.
mod export_engines;
// `hook install|uninstall|run`, with real pushes to a local bare remote, alone and under the real
// pre-commit and lefthook.
mod hook;
// `ports --live`: real listening sockets and Docker published ports against the port law.
mod ports;
// `ports PATH...` and `uses: ports`: fixture trees scanned for declared ports.
mod ports_static;
// `uses: blue-green`: real Docker engine, real nginx on the host.
mod bluegreen;
// `switch: haproxy` and canary releases on a real HAProxy.
mod haproxy;
// `postgres-check`, `pg-dump` and `backups` against a PostgreSQL cluster the tests start.
mod pg;
// Offsite copies on a real S3 server (`rclone serve s3`), restore drills and metrics.
mod offsite;
// A real deploy end to end: `fixtures/deploy-app` through every built-in kind, on PostgreSQL,
// Docker and nginx: a clean release, a failed migration rolled back, a port-law violation.
mod deploy;
