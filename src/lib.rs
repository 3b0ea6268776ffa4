//! portcullis: a deploy gate runner.
//!
//! A pipeline file flows one way through the crate:
//!
//! ```text
//! config::load -> config::validate -> graph -> plan (Selection)
//!     -> runner::Dispatcher (emits RunEvent) -> report (terminal | junit)
//!                     \-> runner::process (scripts, argv) | stages (built-in kinds)
//! ```
//!
//! Parsing keeps every value's position, so each validation error points at the file, line and
//! column at fault; validation collects every error before giving up. The runner owns the run
//! state alone and talks to the reporters only through `RunEvent`s; the reporters never see a
//! secret, because every text is masked before it becomes an event.

mod cli;
mod commands;
mod config;
mod context;
pub mod exit_code;
mod graph;
mod handoff;
mod pg;
mod plan;
mod ports;
mod redact;
mod report;
mod run_dir;
mod runner;
mod secrets;
mod stages;
mod supervisor;
mod text;

use std::process::ExitCode;

/// Entry points for the fuzz targets under `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;
    use std::sync::Arc;

    /// Loads a pipeline from bytes as `portcullis validate` does, and draws its diagnostics at
    /// a narrow and an unbounded width. Returns how many errors it found.
    pub fn load(bytes: &[u8]) -> usize {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return 0;
        };
        let file = crate::config::errors::SourceFile {
            path: Path::new("pipelines/fuzz.yml").to_path_buf(),
            text: Arc::from(text),
        };
        let Err(errors) = crate::config::parse_and_validate(
            &file,
            &[("V".to_owned(), "3001".to_owned())],
            2,
            &crate::stages::REGISTRY,
        ) else {
            return 0;
        };
        let errors = crate::config::errors::ConfigErrors { file, errors };
        for width in [40, usize::MAX / 4] {
            let theme = miette::GraphicalTheme::unicode_nocolor();
            crate::commands::render_diagnostics(&errors, theme, width);
        }
        errors.errors.len()
    }

    /// Runs the port-law detectors of every file kind, the generic layer included, over `data`
    /// and judges what they find. Panics when an offset leaves the text, a finding has no
    /// place, or the prefilter would drop a file in which the detectors find a port.
    pub fn ports(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            crate::ports::scan::check_detectors(text);
            crate::ports::scan::prefilter_keeps_what_is_found(text);
        }
    }

    /// Masks `data` (after its first byte, which sets where it is cut into pieces) with two
    /// secrets as a stream and as a whole text, and checks both agree and that no secret is
    /// left where a reader sees text. Panics when they do not.
    pub fn redact(data: &[u8]) {
        let Some((&cut, data)) = data.split_first() else {
            return;
        };
        let redactor = crate::redact::Redactor::new(["hunter2".to_owned(), "tok'en".to_owned()]);
        let whole = redactor.redact_bytes(data);
        let mut stream = redactor.stream();
        let mut streamed = Vec::new();
        for piece in data.chunks(usize::from(cut).max(1)) {
            stream.push(piece, &mut streamed);
        }
        stream.finish(&mut streamed);
        assert_eq!(streamed, whole.as_ref());
        let read = crate::redact::visible(&whole);
        for secret in [&b"hunter2"[..], b"tok'en"] {
            assert!(!read.windows(secret.len()).any(|w| w == secret));
        }
        let text = String::from_utf8_lossy(data);
        let _ = crate::report::junit::xml_safe(&redactor.redact_str(&text));
    }
}

use clap::Parser;

/// Parses the command line and runs the subcommand; returns the process exit code.
pub fn main() -> ExitCode {
    commands::docs::complete_if_asked();
    let cli = cli::Cli::parse();
    let _ = commands::COLOR.set(cli.color);
    // A pipeline named (or the default one), not a path: found from a subfolder too.
    let named = |p: Option<&str>| p.is_none_or(|p| !config::names_a_path(p));
    let enters = match &cli.command {
        cli::Command::Run(a) => named(a.pipeline.as_deref()),
        cli::Command::Plan(a) => named(a.pipeline.as_deref()),
        cli::Command::Graph(a) => named(a.pipeline.as_deref()),
        cli::Command::Export(a) => named(a.pipeline.as_deref()),
        cli::Command::Validate(a) => a.pipelines.iter().all(|p| named(Some(p))),
        cli::Command::Approve(_) => true,
        _ => false,
    };
    if enters {
        commands::enter_project();
    }
    let result = match cli.command {
        cli::Command::Run(args) => commands::run::run(args),
        cli::Command::Validate(args) => commands::validate::validate(&args),
        cli::Command::Plan(args) => commands::plan::plan(&args),
        cli::Command::Graph(args) => commands::plan::graph(&args),
        cli::Command::Completions(args) => commands::docs::completions(args.shell),
        cli::Command::Man => commands::docs::man(),
        cli::Command::Schema => commands::schema::schema(),
        cli::Command::Export(args) => commands::export::export(&args),
        cli::Command::Hook(args) => commands::hook::hook(&args),
        cli::Command::Ports(args) => commands::ports::ports(&args),
        cli::Command::Backups(args) => commands::backups::backups(&args),
        cli::Command::Approve(args) => commands::approve::approve(&args),
        cli::Command::Watchdog { run_id } => Ok(supervisor::watchdog(&run_id)),
    };
    let code = result.unwrap_or_else(|e| {
        e.print();
        e.exit_code()
    });
    ExitCode::from(code)
}
