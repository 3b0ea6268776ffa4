//! `portcullis approve STAGE [--run RUN_ID] [--reject]`: decide, from another shell, for an
//! approval stage that waits in a running pipeline.
//!
//! The stage (see `stages::approval`) marks that it waits with `approvals/STAGE.waiting` in its
//! run folder and looks for `approvals/STAGE`; this command checks the mark and the approvers it
//! lists, then leaves the decision there, whole and once.

use std::path::PathBuf;

use crate::cli::ApproveArgs;
use crate::commands::Error;
use crate::exit_code;
use crate::stages::approval;

pub(crate) fn approve(args: &ApproveArgs) -> Result<u8, Error> {
    // A stage id, or a matrix combination's: `gate (env=prod)`.
    let base = args.stage.split(" (").next().unwrap_or_default();
    if !approval::is_stage_id(base) || args.stage.chars().any(char::is_control) {
        return Err(Error::usage(format!("`{}` is not a stage id", args.stage))
            .help("name the stage as the run shows it, e.g. `gate` or `gate (env=prod)`"));
    }
    let runs = PathBuf::from(".portcullis/runs");
    let run = args.run.as_deref().unwrap_or("latest");
    if !approval::is_stage_id(run) {
        return Err(Error::usage(format!("`--run {run}` is not a run id")).help(
            "a run id is a folder name under `.portcullis/runs`, e.g. `20261122-130512-3f9a07c2`",
        ));
    }
    let run_dir = runs.join(run);
    if !run_dir.is_dir() {
        return Err(Error::usage(format!(
            "no run `{run}` under `{}`",
            runs.display()
        ))
        .help("run `portcullis approve` in the folder the pipeline runs in, or name the run with `--run RUN_ID`"));
    }
    let user = approval::approver();
    match approval::decide_from_outside(&run_dir, &args.stage, !args.reject, &user) {
        Ok(message) => {
            let word = if args.reject { "rejected" } else { "approved" };
            let asked = if message.is_empty() {
                String::new()
            } else {
                format!(" (\"{message}\")")
            };
            crate::commands::print_note(&format!(
                "{word} `{}`{asked} as `{user}` in `{}`",
                args.stage,
                run_dir.display()
            ));
            Ok(exit_code::PASSED)
        }
        Err((message, help)) => {
            let error = Error::failed(message);
            Err(match help {
                Some(help) => error.help(help),
                None => error,
            })
        }
    }
}
