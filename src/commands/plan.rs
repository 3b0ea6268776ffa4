//! `portcullis plan` and `portcullis graph`: the pipeline's shape, without running it.

use crate::cli::{GraphArgs, GraphFormat, OutputFormat, PlanArgs};
use crate::commands::{Error, load, parse_vars, write_data, write_json};
use crate::config;
use crate::plan;

pub(crate) fn plan(args: &PlanArgs) -> Result<u8, Error> {
    let vars = parse_vars(&args.vars)?;
    let pipeline = load(&config::resolve(args.pipeline.as_deref()), &vars)?;
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let preview = pipeline.preview_vars(
        &crate::context::current(&here),
        &pipeline.with_required_from_env(&vars, &from_env),
    );
    match args.format {
        OutputFormat::Human => write_data(plan::render_plan(&pipeline, None, &preview).as_bytes()),
        OutputFormat::Json => write_json(&plan::plan_json(&pipeline, None, &preview)),
    }
}

pub(crate) fn graph(args: &GraphArgs) -> Result<u8, Error> {
    let vars = parse_vars(&args.vars)?;
    let pipeline = load(&config::resolve(args.pipeline.as_deref()), &vars)?;
    let text = match args.format {
        GraphFormat::Mermaid => plan::render_mermaid(&pipeline),
        GraphFormat::Dot => plan::render_dot(&pipeline),
    };
    write_data(text.as_bytes())
}
