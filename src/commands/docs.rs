//! `portcullis completions SHELL` and `portcullis man`: both generated from the CLI definition,
//! so they never drift from it.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::commands::{print_error, write_data};
use crate::exit_code;

pub(crate) fn completions(shell: clap_complete::Shell) -> u8 {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "portcullis", &mut out);
    write_data(&out)
}

pub(crate) fn man() -> u8 {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
        print_error(&format!("cannot render the man page: {e}"), None);
        return exit_code::STAGE_FAILED;
    }
    write_data(&out)
}
