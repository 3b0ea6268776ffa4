//! `portcullis validate`: diagnostics only.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::ValidateArgs;
use crate::commands::{list_pipelines, load, parse_vars, print_error};
use crate::config;
use crate::exit_code;

pub(crate) fn validate(args: &ValidateArgs) -> u8 {
    let vars = match parse_vars(&args.vars) {
        Ok(v) => v,
        Err(e) => {
            print_error(&e, None);
            return exit_code::INVALID;
        }
    };
    let paths: Vec<PathBuf> = if args.pipelines.is_empty() {
        let names = list_pipelines();
        if names.is_empty() {
            print_error(
                "no pipelines to validate in `pipelines/`",
                Some("name a pipeline file, or create `pipelines/ci.yml`"),
            );
            return exit_code::INVALID;
        }
        names.iter().map(|n| config::resolve(Some(n))).collect()
    } else {
        args.pipelines
            .iter()
            .map(|p| config::resolve(Some(p)))
            .collect()
    };
    let mut code = exit_code::PASSED;
    for path in paths {
        match load(&path, &vars) {
            Some(p) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}: valid, {} stages",
                    path.display(),
                    p.stages.len()
                );
            }
            None => code = exit_code::INVALID,
        }
    }
    code
}
