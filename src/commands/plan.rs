//! `portcullis plan` and `portcullis graph`: the pipeline's shape, without running it.

use crate::cli::{GraphArgs, GraphFormat, PlanArgs};
use crate::commands::{Error, load, parse_vars, write_data};
use crate::config;
use crate::plan;

pub(crate) fn plan(args: &PlanArgs) -> Result<u8, Error> {
    let vars = parse_vars(&args.vars)?;
    let pipeline = load(&config::resolve(args.pipeline.as_deref()), &vars)?;
    let text = plan::render_plan(&pipeline, None, &pipeline.preview_vars(&vars));
    write_data(text.as_bytes())
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
