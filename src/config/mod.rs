//! Reading a pipeline file: locate it, parse it with spans, validate it.
//!
//! `load` ties the phases together: [`yaml::parse`] keeps every value's position,
//! [`validate::validate`] turns the tree into a [`pipeline::Pipeline`] or the full list of
//! [`errors::ConfigError`]s.

pub(crate) mod duration;
pub(crate) mod errors;
pub(crate) mod pipeline;
pub(crate) mod template;
pub(crate) mod validate;
pub(crate) mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use errors::{ConfigError, ConfigErrors, SourceFile};
use pipeline::Pipeline;

/// Why a pipeline could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("cannot read pipeline `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} error(s) in `{}`", errors.errors.len(), errors.file.path.display())]
    Invalid { errors: ConfigErrors },
}

/// `run` → `pipelines/ci.yml`, `run deploy` → `pipelines/deploy.yml`, a path → that file.
pub(crate) fn resolve(arg: Option<&str>) -> PathBuf {
    match arg {
        None => PathBuf::from("pipelines/ci.yml"),
        Some(a) if a.contains('/') || a.ends_with(".yml") || a.ends_with(".yaml") => {
            PathBuf::from(a)
        }
        Some(name) => {
            let yml = Path::new("pipelines").join(format!("{name}.yml"));
            let yaml = Path::new("pipelines").join(format!("{name}.yaml"));
            if !yml.exists() && yaml.exists() {
                yaml
            } else {
                yml
            }
        }
    }
}

pub(crate) fn load(path: &Path, vars: &[String]) -> Result<Pipeline, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text: Arc<str> = match String::from_utf8(bytes) {
        Ok(t) => Arc::from(t.as_str()),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let file = SourceFile {
                path: path.to_path_buf(),
                text: Arc::from(lossy.as_str()),
            };
            let error = ConfigError::new(
                "the file is not valid UTF-8",
                offset..offset + 1,
                "invalid byte",
            )
            .help("save the pipeline file as UTF-8");
            return Err(LoadError::Invalid {
                errors: ConfigErrors {
                    file,
                    errors: vec![error],
                },
            });
        }
    };
    let file = SourceFile {
        path: path.to_path_buf(),
        text: text.clone(),
    };
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    parse_and_validate(&text, path, vars, cpus).map_err(|errors| LoadError::Invalid {
        errors: ConfigErrors { file, errors },
    })
}

pub(crate) fn parse_and_validate(
    text: &str,
    path: &Path,
    vars: &[String],
    cpus: usize,
) -> Result<Pipeline, Vec<ConfigError>> {
    let root = yaml::parse(text).map_err(|e| {
        vec![
            ConfigError::new(
                format!("invalid YAML: {}", e.message),
                e.offset..e.offset + 1,
                "here",
            )
            .help("fix the YAML syntax; a YAML linter shows the structure it sees"),
        ]
    })?;
    validate::validate(&root, text, path, vars, cpus)
}
