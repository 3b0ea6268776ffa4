//! `portcullis completions SHELL` and `portcullis man`: both generated from the CLI definition,
//! so they never drift from it.

use std::ffi::OsString;

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::EnvCompleter;

use crate::cli::Cli;
use crate::commands::{Error, write_data};

/// The environment variable that turns a run of portcullis into a completion request, as the
/// script of `completions SHELL` sets it.
pub(crate) const COMPLETE_VAR: &str = "COMPLETE";

/// Answers a completion request (the shell script calls `COMPLETE=bash portcullis -- WORDS`) and
/// exits; returns for any other run.
pub(crate) fn complete_if_asked() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .complete();
}

/// The shell's completion script. It asks portcullis itself for every completion, so that
/// pipeline names (`run <TAB>`) and the named pipeline's stages (`run deploy --only <TAB>`) are
/// offered from the folder the user is in.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    use clap_complete::env;
    let completer: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &env::Bash,
        clap_complete::Shell::Elvish => &env::Elvish,
        clap_complete::Shell::Fish => &env::Fish,
        clap_complete::Shell::PowerShell => &env::Powershell,
        clap_complete::Shell::Zsh => &env::Zsh,
        other => {
            return Err(Error::usage(format!("no completion script for `{other}`"))
                .help("use bash, zsh, fish, elvish or powershell"));
        }
    };
    // The binary to call back: as it was started when that was a path, else by name from PATH.
    let program = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .filter(|p| p.components().count() > 1)
        .and_then(|p| std::fs::canonicalize(p).ok())
        .map_or_else(|| "portcullis".to_owned(), |p| p.display().to_string());
    let mut out = Vec::new();
    completer
        .write_registration(COMPLETE_VAR, "portcullis", "portcullis", &program, &mut out)
        .map_err(|e| Error::failed(format!("cannot write the completion script: {e}")))?;
    write_data(&out)
}

/// Pipeline names under `pipelines/`, found from a subfolder as `run` finds them.
pub(crate) fn pipeline_candidates() -> Vec<CompletionCandidate> {
    crate::commands::enter_project_quietly();
    crate::commands::list_pipelines()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The stages of the pipeline the command line names (the default one when it names none),
/// each with its `name:` as help; none when it cannot be loaded.
pub(crate) fn stage_candidates() -> Vec<CompletionCandidate> {
    let words: Vec<OsString> = std::env::args_os().collect();
    let words = match words.iter().position(|w| w == "--") {
        Some(i) => &words[i + 1..],
        None => &words[..],
    };
    let pipeline = named_pipeline(words);
    if pipeline
        .as_deref()
        .is_none_or(|p| !crate::config::names_a_path(p))
    {
        crate::commands::enter_project_quietly();
    }
    let path = crate::config::resolve(pipeline.as_deref());
    let Ok(loaded) = crate::config::load(&path, &[], &crate::stages::REGISTRY) else {
        return Vec::new();
    };
    loaded
        .stages
        .iter()
        .map(|s| {
            let candidate = CompletionCandidate::new(&s.id);
            if s.display_name == s.id {
                candidate
            } else {
                candidate.help(Some(s.display_name.clone().into()))
            }
        })
        .collect()
}

/// The first positional word after `run` (the pipeline), skipping options and the values of
/// those that take one; the word being completed is left out.
fn named_pipeline(words: &[OsString]) -> Option<String> {
    const TAKES_VALUE: &[&str] = &[
        "--only", "--skip", "--from", "--junit", "--base", "-j", "--jobs", "--var", "--format",
        "--color",
    ];
    let words: Vec<String> = words
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let start = words.iter().position(|w| w == "run")? + 1;
    let done = words.len().saturating_sub(1);
    let mut i = start;
    while i < done {
        let word = &words[i];
        if TAKES_VALUE.contains(&word.as_str()) {
            i += 2;
            continue;
        }
        if !word.starts_with('-') {
            return Some(word.clone());
        }
        i += 1;
    }
    None
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
