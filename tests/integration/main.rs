//! Integration tests: each runs the real `portcullis` binary on a pipeline written into a
//! temporary directory, and asserts on its exit code, output, logs and JUnit report.

mod harness;

// Validation: every error of a file at once, each at its line and column.
mod validate;
// Scheduling, failure, cancellation, retries, timeouts, rollbacks, outputs, selection flags.
mod run;
// Ctrl-C and SIGTERM, and that no process outlives portcullis.
mod signals;
// Secrets: resolved from env, file and command, masked everywhere.
mod secrets;
// The JUnit report: schema-valid whatever a stage prints, imported results merged.
mod junit;
// `plan`, `graph` and the pipelines shipped in `pipelines/`.
mod plan;
// Built-in stage kinds through the kind interface.
mod kinds;
// Bounded memory with a stage that prints a gigabyte.
mod memory;
// `hook install|uninstall`, with real pushes to a local bare remote.
mod hook;
