//! `portcullis plan` and `portcullis graph`: the pipeline's shape, without running it.

use std::io::Write;

use crate::cli::{GraphArgs, GraphFormat, PlanArgs};
use crate::commands::{load, parse_vars, print_error};
use crate::config;
use crate::exit_code;
use crate::plan;

pub(crate) fn plan(args: &PlanArgs) -> u8 {
    let Ok(vars) = parse_vars(&args.vars).map_err(|e| print_error(&e, None)) else {
        return exit_code::INVALID;
    };
    let Some(pipeline) = load(&config::resolve(args.pipeline.as_deref()), &vars) else {
        return exit_code::INVALID;
    };
    let text = plan::render_plan(&pipeline, None, &|t| t.source());
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit_code::PASSED
}

pub(crate) fn graph(args: &GraphArgs) -> u8 {
    let Ok(vars) = parse_vars(&args.vars).map_err(|e| print_error(&e, None)) else {
        return exit_code::INVALID;
    };
    let Some(pipeline) = load(&config::resolve(args.pipeline.as_deref()), &vars) else {
        return exit_code::INVALID;
    };
    let text = match args.format {
        GraphFormat::Mermaid => plan::render_mermaid(&pipeline),
        GraphFormat::Dot => plan::render_dot(&pipeline),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit_code::PASSED
}
