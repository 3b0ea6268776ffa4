//! Exit codes, in one place (README, "Commands").

use crate::runner::events::RunStatus;

/// Every stage passed (allowed failures included).
pub const PASSED: u8 = 0;
/// A stage failed, or a rollback did, or a report the user asked for could not be written.
pub const STAGE_FAILED: u8 = 1;
/// The pipeline is invalid, or the command line is wrong; nothing ran.
pub const INVALID: u8 = 2;
/// Ctrl-C, SIGTERM or SIGHUP: 128 + SIGINT, as shells report an interrupted command.
pub const INTERRUPTED: u8 = 130;

/// The exit code of a run: how it ended, and whether every report it was asked for was written.
/// A missing report fails a run that passed; an interrupted run stays interrupted.
pub(crate) fn of_run(status: RunStatus, reports_written: bool) -> u8 {
    match status {
        RunStatus::Passed if reports_written => PASSED,
        RunStatus::Passed | RunStatus::Failed => STAGE_FAILED,
        RunStatus::Interrupted => INTERRUPTED,
    }
}
