//! Why a command failed, and the one place that turns it into an exit code.
//!
//! The main type is [`Error`]. Commands return `Result<u8, Error>`: `Ok` carries the code of a
//! command that did its work (a run that failed is still `Ok(1)`: the run is the result), and
//! `Err` a command that could not do it. `lib::main` prints the error once, in the
//! `error: …` / `help: …` shape, and maps it through [`Error::exit_code`].

use std::io::Write;

use crate::config::LoadError;
use crate::exit_code;
use crate::report::ReportError;
use crate::runner::events::RunStatus;
use crate::secrets::SecretError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The command line is wrong; nothing ran.
    #[error("{message}")]
    Usage {
        message: String,
        help: Option<String>,
    },
    /// The pipeline could not be read or is invalid; nothing ran.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The command started and could not finish its work.
    #[error("{message}")]
    Failed {
        message: String,
        help: Option<String>,
    },
    /// Secrets could not be resolved; nothing ran.
    #[error("{} secret(s) could not be resolved; nothing was run", errors.len())]
    Secrets { errors: Vec<SecretError> },
    /// An interrupt came before the run started (while secrets resolved); nothing ran.
    #[error("interrupted before the run started; nothing was run")]
    Interrupted,
    /// Reports the user asked for could not be written after a run that ended as `run`.
    #[error("{} report(s) could not be written", errors.len())]
    Reports {
        errors: Vec<ReportError>,
        run: RunStatus,
    },
}

impl Error {
    pub(crate) fn usage(message: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Error {
        Error::Failed {
            message: message.into(),
            help: None,
        }
    }

    /// Adds a `help:` line to a usage or failure error.
    pub(crate) fn help(mut self, text: impl Into<String>) -> Error {
        if let Error::Usage { help, .. } | Error::Failed { help, .. } = &mut self {
            *help = Some(text.into());
        }
        self
    }

    /// The one mapping from a failure to an exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::Load(_) | Error::Secrets { .. } => exit_code::INVALID,
            Error::Failed { .. } => exit_code::STAGE_FAILED,
            Error::Interrupted => exit_code::INTERRUPTED,
            Error::Reports { run, .. } => exit_code::of_run(*run, false),
        }
    }

    /// Prints the error on stderr: diagnostics for a pipeline, `error:`/`help:` otherwise.
    pub(crate) fn print(&self) {
        match self {
            Error::Load(e) => super::report_load_error(e),
            Error::Usage { message, help } | Error::Failed { message, help } => {
                print_error(message, help.as_deref());
            }
            Error::Secrets { errors } => {
                for e in errors {
                    print_error(&e.to_string(), Some(&e.help()));
                }
                let _ = writeln!(std::io::stderr(), "{self}");
            }
            Error::Interrupted => print_error(&self.to_string(), None),
            Error::Reports { errors, .. } => {
                for e in errors {
                    print_error(&e.to_string(), Some(e.help()));
                }
            }
        }
    }
}

/// Prints a message on stderr in the `error: ...` / `help: ...` shape.
pub(crate) fn print_error(message: &str, help: Option<&str>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {message}");
    if let Some(help) = help {
        let _ = writeln!(err, "help: {help}");
    }
}
