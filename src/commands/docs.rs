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

/// One page: the subcommands are listed with what they do, not as pages of their own
/// (`portcullis-run(1)`) that are never installed; `portcullis COMMAND --help` has the rest.
pub(crate) fn man() -> Result<u8, Error> {
    let command = Cli::command();
    let man = clap_mangen::Man::new(command.clone());
    let mut out = Vec::new();
    let rendered = (|| -> std::io::Result<()> {
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        man.render_options_section(&mut out)?;
        std::io::Write::write_all(&mut out, commands_section(&command).as_bytes())?;
        man.render_extra_section(&mut out)?;
        man.render_version_section(&mut out)
    })();
    rendered.map_err(|e| Error::failed(format!("cannot render the man page: {e}")))?;
    write_data(&out)
}

/// `.SH COMMANDS`: each visible subcommand with its one-line description, in roff.
fn commands_section(command: &clap::Command) -> String {
    let roff = |s: &str| s.replace('\\', "\\\\").replace('-', "\\-");
    let mut text = String::from(".SH COMMANDS\n");
    for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        text.push_str(&format!(
            ".TP\n\\fBportcullis {}\\fR\n{}\n",
            roff(sub.get_name()),
            roff(&about)
        ));
    }
    text.push_str(".PP\n\\fBportcullis COMMAND \\-\\-help\\fR gives each command's options.\n");
    text
}
