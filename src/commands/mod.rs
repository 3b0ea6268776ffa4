//! One module per subcommand, plus what they share: loading a pipeline and printing its
//! diagnostics.

pub(crate) mod approve;
pub(crate) mod backups;
pub(crate) mod docs;
pub(crate) mod error;
pub(crate) mod export;
pub(crate) mod hook;
pub(crate) mod plan;
pub(crate) mod ports;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod validate;

use std::io::{IsTerminal, Write};
use std::path::Path;

use miette::{GraphicalReportHandler, GraphicalTheme};

pub(crate) use error::{Error, print_error};

use crate::config::errors::LineIndex;
use crate::config::pipeline::Pipeline;
use crate::config::{self, LoadError};
use crate::exit_code;

/// Whether stderr gets colour: a terminal, and `NO_COLOR` unset.
/// `--color`, set once by `main` before any command runs.
pub(crate) static COLOR: std::sync::OnceLock<crate::cli::ColorChoice> = std::sync::OnceLock::new();

pub(crate) fn stderr_color() -> bool {
    crate::report::terminal::color_enabled(
        COLOR
            .get()
            .copied()
            .unwrap_or(crate::cli::ColorChoice::Auto),
        std::io::stderr().is_terminal(),
        &|name| std::env::var_os(name),
    )
}

/// The width of the terminal on stderr, else `$COLUMNS`, else 100.
pub(crate) fn stderr_width() -> usize {
    terminal_size::terminal_size_of(std::io::stderr())
        .map(|(w, _)| usize::from(w.0))
        .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
        .unwrap_or(100)
}

/// A problem that does not stop the command: `warning: MESSAGE` on stderr.
pub(crate) fn print_warning(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {message}");
}

/// From a subfolder, the project is the nearest folder above that holds `pipelines/`, looked
/// for up to the repository's top (the first folder with `.git`): portcullis works from there,
/// as `just` does from its justfile's folder, and says so. Nothing changes when the current
/// folder has `pipelines/` or no folder above has.
pub(crate) fn enter_project() {
    if let Some(dir) = find_project() {
        print_note(&format!(
            "working from `{}`, where `pipelines/` is",
            dir.display()
        ));
    }
}

/// [`enter_project`] without the note, for shell completion, whose stderr is the user's prompt.
pub(crate) fn enter_project_quietly() {
    let _ = find_project();
}

/// Moves to the folder above that has `pipelines/`, when there is one; returns it.
fn find_project() -> Option<std::path::PathBuf> {
    let Ok(here) = std::env::current_dir() else {
        return None;
    };
    if here.join("pipelines").is_dir() || here.join(".git").exists() {
        return None;
    }
    for dir in here.ancestors().skip(1) {
        if dir.join("pipelines").is_dir() {
            return std::env::set_current_dir(dir)
                .is_ok()
                .then(|| dir.to_path_buf());
        }
        if dir.join(".git").exists() {
            return None;
        }
    }
    None
}

/// What a command did besides its data: `note: MESSAGE` on stderr.
pub(crate) fn print_note(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "note: {message}");
}

/// Writes a command's data to stdout and gives its exit code. A reader that closed the pipe
/// early (`portcullis graph | head`) is not an error; any other failure to write is reported,
/// since a silently truncated schema or workflow would be worse than a failed command.
pub(crate) fn write_data(bytes: &[u8]) -> Result<u8, Error> {
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => Ok(exit_code::PASSED),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit_code::PASSED),
        Err(e) => Err(Error::failed(format!("cannot write to stdout: {e}"))),
    }
}

/// One JSON document and a newline on stdout: what every `--format json` prints.
pub(crate) fn write_json(value: &serde_json::Value) -> Result<u8, Error> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::failed(format!("cannot write JSON: {e}")))?;
    text.push('\n');
    write_data(text.as_bytes())
}

/// The async runtime of a command. One thread: the work is waiting on processes, pipes and
/// sockets, and a single-threaded runtime spares every event a cross-thread wake-up (measured:
/// about a third of the run time of a 200-stage pipeline of trivial stages).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))
}

/// Errors drawn with their source lines; the rest are one line each.
const MAX_DRAWN_ERRORS: usize = 100;
/// A line longer than this is not drawn (a generated one-line pipeline).
const MAX_DRAWN_LINE: usize = 2000;

/// Renders every diagnostic of a failed load on stderr.
pub(crate) fn report_load_error(error: &LoadError) {
    match error {
        LoadError::Read { path, source } => {
            let help = if source.kind() == std::io::ErrorKind::NotFound {
                let known = list_pipelines();
                if known.is_empty() {
                    "create it, or name another file; pipelines live in `pipelines/*.yml`"
                        .to_owned()
                } else {
                    format!("the pipelines here are: {}", known.join(", "))
                }
            } else {
                "check the path and its permissions".to_owned()
            };
            print_error(
                &format!("cannot read pipeline `{}`: {source}", path.display()),
                Some(&help),
            );
        }
        LoadError::Refused { .. } => print_error(
            &error.to_string(),
            Some(
                "a pipeline is a YAML file under `pipelines/`; split a generated one, or name the right file",
            ),
        ),
        LoadError::Invalid { errors } => {
            let theme = if stderr_color() {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            // On a terminal, wrap at its width; elsewhere (CI logs, pipes) never wrap, so each
            // message and help stays on one line that tools can search.
            let width = if std::io::stderr().is_terminal() {
                stderr_width()
            } else {
                usize::MAX / 4
            };
            let mut out = render_diagnostics(errors, theme, width);
            if crate::report::github::enabled() {
                annotate_config_errors(errors);
            }
            let count = errors.errors.len();
            let noun = if count == 1 { "error" } else { "errors" };
            out.push_str(&format!(
                "{count} {noun} in `{}`; nothing was run\n",
                errors.file.path.display()
            ));
            let _ = std::io::stderr().lock().write_all(out.as_bytes());
        }
    }
}

/// Every diagnostic of a file, drawn for a terminal `width` columns wide.
pub(crate) fn render_diagnostics(
    errors: &crate::config::errors::ConfigErrors,
    theme: GraphicalTheme,
    width: usize,
) -> String {
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width);
    let index = LineIndex::new(&errors.file.text);
    let mut out = String::new();
    for (n, diagnostic) in errors.diagnostics().enumerate() {
        let error = &diagnostic.error;
        let spans = std::iter::once(&error.span).chain(error.related.iter().map(|(r, _)| r));
        // The renderer pads to the column, which cannot pass 65,535; and past the first
        // errors, drawing each with its source would take time quadratic in their count.
        let long_line = spans
            .map(|r| index.locate(&errors.file.text, r.start).2)
            .any(|len| len > MAX_DRAWN_LINE);
        if n < MAX_DRAWN_ERRORS && !long_line {
            let _ = handler.render_report(&mut out, &diagnostic);
        } else {
            let (line, col, _) = index.locate(&errors.file.text, error.span.start);
            out.push_str(&format!(
                "  × {}:{line}:{col}: {}: {}\n",
                errors.file.path.display(),
                error.message,
                error.label
            ));
            if let Some(help) = &error.help {
                out.push_str(&format!("  help: {help}\n"));
            }
        }
        out.push('\n');
    }
    out
}

/// In GitHub mode, each diagnostic also becomes an `::error` annotation at its line and column
/// (on stdout, where the runner reads workflow commands); past ten, one more counts the rest.
fn annotate_config_errors(errors: &crate::config::errors::ConfigErrors) {
    use crate::report::github::{MAX_ANNOTATIONS, escape_data, escape_property};
    let mut out = std::io::stdout().lock();
    let named = crate::report::github::WorkspacePaths::from_env().name(&errors.file.path);
    let file = escape_property(&named.display().to_string());
    for error in errors.errors.iter().take(MAX_ANNOTATIONS) {
        let (line, col) = errors.file.line_col(error.span.start);
        let mut message = error.message.clone();
        if let Some(help) = &error.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let _ = writeln!(
            out,
            "::error file={file},line={line},col={col},title=portcullis%3A invalid pipeline::{}",
            escape_data(&message)
        );
    }
    if errors.errors.len() > MAX_ANNOTATIONS {
        let rest = errors.errors.len() - MAX_ANNOTATIONS;
        let _ = writeln!(
            out,
            "::error file={file},title=portcullis::{rest} more errors in this file; see the log"
        );
    }
}

/// The `pipelines/*.yml` names, for help messages.
pub(crate) fn list_pipelines() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("pipelines")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| {
                    let path = e.path();
                    let ext = path.extension()?.to_str()?;
                    matches!(ext, "yml" | "yaml")
                        .then(|| path.file_stem()?.to_str().map(str::to_owned))?
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `KEY=VALUE` pairs from `--var`; a malformed one is a usage error.
pub(crate) fn parse_vars(vars: &[String]) -> Result<Vec<(String, String)>, Error> {
    vars.iter()
        .map(|v| match v.split_once('=') {
            Some((k, val))
                if !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                Ok((k.to_owned(), val.to_owned()))
            }
            _ => Err(Error::usage(format!(
                "`--var {v}` is not `KEY=VALUE` (KEY: letters, digits and `_`)"
            ))),
        })
        .collect()
}

/// Loads a pipeline with every built-in kind.
pub(crate) fn load(path: &Path, vars: &[(String, String)]) -> Result<Pipeline, Error> {
    Ok(config::load(path, vars, &crate::stages::REGISTRY)?)
}
