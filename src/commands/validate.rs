//! `portcullis validate`: diagnostics only.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::ValidateArgs;
use crate::commands::{Error, list_pipelines, load, parse_vars};
use crate::config;
use crate::exit_code;

pub(crate) fn validate(args: &ValidateArgs) -> Result<u8, Error> {
    let vars = parse_vars(&args.vars)?;
    let paths: Vec<PathBuf> = if args.pipelines.is_empty() {
        let names = list_pipelines();
        if names.is_empty() {
            return Err(Error::usage("no pipelines to validate in `pipelines/`")
                .help("name a pipeline file, or create `pipelines/ci.yml`"));
        }
        names.iter().map(|n| config::resolve(Some(n))).collect()
    } else {
        args.pipelines
            .iter()
            .map(|p| config::resolve(Some(p)))
            .collect()
    };
    // Every file is checked and reported; the last invalid one decides the exit code.
    let mut invalid = None;
    for path in paths {
        match load(&path, &vars) {
            Ok(p) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}: valid, {} stages",
                    path.display(),
                    p.stages.len()
                );
            }
            Err(e) => {
                if let Some(previous) = invalid.replace(e) {
                    previous.print();
                }
            }
        }
    }
    match invalid {
        Some(e) => Err(e),
        None => Ok(exit_code::PASSED),
    }
}
