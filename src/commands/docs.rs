//! `portcullis completions SHELL` and `portcullis man`: both generated from the CLI definition,
//! so they never drift from it.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::commands::{Error, write_data};

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "portcullis", &mut out);
    write_data(&out)
}

pub(crate) fn man() -> Result<u8, Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::failed(format!("cannot render the man page: {e}")))?;
    write_data(&out)
}
