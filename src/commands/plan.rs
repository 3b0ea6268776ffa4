//! `portcullis plan` and `portcullis graph`: the pipeline's shape, without running it.

use crate::cli::{GraphArgs, GraphFormat, PlanArgs};
use crate::commands::{load, parse_vars, print_error, write_data};
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
    let text = plan::render_plan(&pipeline, None, &pipeline.preview_vars(&vars));
    write_data(text.as_bytes())
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
    write_data(text.as_bytes())
}
