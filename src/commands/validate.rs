//! `portcullis validate`: diagnostics only.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::{OutputFormat, ValidateArgs};
use crate::commands::{Error, list_pipelines, load, parse_vars, write_json};
use crate::config::{self, LoadError};
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
    if args.format == OutputFormat::Json {
        return validate_json(&paths, &vars);
    }
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

/// `validate --format json`: one document for every file, the diagnostics in it rather than on
/// stderr; exit 2 when any file is invalid, as without it.
fn validate_json(paths: &[PathBuf], vars: &[(String, String)]) -> Result<u8, Error> {
    let mut all_valid = true;
    let files: Vec<serde_json::Value> = paths
        .iter()
        .map(
            |path| match config::load(path, vars, &crate::stages::REGISTRY) {
                Ok(p) => serde_json::json!({
                    "file": path,
                    "valid": true,
                    "pipeline": p.name,
                    "stages": p.stages.len(),
                    "errors": [],
                }),
                Err(e) => {
                    all_valid = false;
                    serde_json::json!({
                        "file": path,
                        "valid": false,
                        "errors": load_errors_json(&e),
                    })
                }
            },
        )
        .collect();
    write_json(&serde_json::json!({
        "version": 1,
        "valid": all_valid,
        "pipelines": files,
    }))?;
    Ok(if all_valid {
        exit_code::PASSED
    } else {
        exit_code::INVALID
    })
}

/// Each diagnostic of a file that could not be loaded, with 1-based line and column (in
/// characters) of where it points; a file that could not be read at all has none.
fn load_errors_json(error: &LoadError) -> Vec<serde_json::Value> {
    match error {
        LoadError::Invalid { errors } => errors
            .errors
            .iter()
            .map(|e| {
                let (line, column) = errors.file.line_col(e.span.start);
                let (end_line, end_column) = errors.file.line_col(e.span.end);
                serde_json::json!({
                    "message": e.message,
                    "line": line,
                    "column": column,
                    "end_line": end_line,
                    "end_column": end_column,
                    "label": e.label,
                    "help": e.help,
                })
            })
            .collect(),
        LoadError::Read { .. } | LoadError::Refused { .. } => vec![serde_json::json!({
            "message": error.to_string(),
            "line": null,
            "column": null,
            "end_line": null,
            "end_column": null,
            "label": null,
            "help": "check the path and its permissions; a pipeline is a YAML file under `pipelines/`",
        })],
    }
}
