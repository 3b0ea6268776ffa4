//! Exit codes, in one place (DESIGN 2).

/// Every stage passed (allowed failures included).
pub const PASSED: u8 = 0;
/// A stage failed, or a rollback did.
pub const STAGE_FAILED: u8 = 1;
/// The pipeline is invalid, or the command line is wrong; nothing ran.
pub const INVALID: u8 = 2;
/// Ctrl-C, SIGTERM or SIGHUP: 128 + SIGINT, as shells report an interrupted command.
pub const INTERRUPTED: u8 = 130;
