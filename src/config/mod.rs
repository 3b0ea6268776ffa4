//! Reading a pipeline file: locate it, parse it with spans, validate it.
//!
//! `load` ties the phases together: [`yaml::parse`] keeps every value's position,
//! [`validate::validate`] turns the tree into a [`pipeline::Pipeline`] or the full list of
//! [`errors::ConfigError`]s.

pub(crate) mod duration;
pub(crate) mod errors;
pub(crate) mod expr;
pub(crate) mod kind;
pub(crate) mod matrix;
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
    /// Not a regular file, or larger than [`MAX_PIPELINE_BYTES`]; `what` says which.
    #[error("cannot read pipeline `{}`: {what}", path.display())]
    Refused { path: PathBuf, what: String },
}

/// The largest pipeline file read. The biggest real pipelines are tens of kilobytes; a file of
/// megabytes is generated or the wrong file, and would cost memory many times its size.
pub(crate) const MAX_PIPELINE_BYTES: u64 = 4 << 20;

/// Reads a pipeline file: a regular file (a FIFO or a device would block or never end) of at
/// most [`MAX_PIPELINE_BYTES`].
fn read_pipeline(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let refused = |what: String| LoadError::Refused {
        path: path.to_path_buf(),
        what,
    };
    // Non-blocking, so that opening a FIFO returns at once; a regular file ignores the flag.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(refused("not a regular file".into()));
    }
    let too_large = |size: u64| {
        refused(format!(
            "{size} bytes, more than the {} MiB a pipeline file may hold",
            MAX_PIPELINE_BYTES >> 20
        ))
    };
    if meta.len() > MAX_PIPELINE_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_PIPELINE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PIPELINE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Whether a pipeline argument is a path rather than a name under `pipelines/`.
pub(crate) fn names_a_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".yml") || arg.ends_with(".yaml")
}

/// `run` → `pipelines/ci.yml`, `run deploy` → `pipelines/deploy.yml`, a path → that file.
pub(crate) fn resolve(arg: Option<&str>) -> PathBuf {
    match arg {
        None => PathBuf::from("pipelines/ci.yml"),
        Some(a) if names_a_path(a) => PathBuf::from(a),
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

pub(crate) fn load(
    path: &Path,
    vars: &[(String, String)],
    kinds: &dyn kind::KindRegistry,
) -> Result<Pipeline, LoadError> {
    let bytes = read_pipeline(path)?;
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
        text,
    };
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    parse_and_validate(&file, vars, cpus, kinds).map_err(|errors| LoadError::Invalid {
        errors: ConfigErrors { file, errors },
    })
}

/// Parses and validates a file already read; the pipeline keeps `file` (its text is shared,
/// not copied) for errors found when a kind is bound at run time.
pub(crate) fn parse_and_validate(
    file: &SourceFile,
    vars: &[(String, String)],
    cpus: usize,
    kinds: &dyn kind::KindRegistry,
) -> Result<Pipeline, Vec<ConfigError>> {
    let root = yaml::parse(&file.text).map_err(|e| {
        let help = if e.message.contains("mapping values are not allowed") {
            "a `: ` inside an unquoted value starts a new key; quote the whole value, \
             or write it as a block (`run: |` and the script on the next lines)"
        } else if e.message.contains("tab") {
            "YAML indents with spaces, not tabs"
        } else {
            "fix the YAML syntax; a YAML linter shows the structure it sees"
        };
        let message = format!("invalid YAML: {}", e.message);
        vec![ConfigError::new(message, e.offset..e.offset + 1, "here").help(help)]
    })?;
    validate::validate(&root, file, vars, cpus, kinds)
}

/// No input may panic the loader, the validator or the diagnostic renderer: arbitrary text,
/// and every pipeline this repository ships cut, spliced and garbled at random.
#[cfg(test)]
mod fuzz {
    use std::path::Path;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::errors::{ConfigErrors, SourceFile};
    use super::parse_and_validate;

    const SEEDS: &[&str] = &[
        include_str!("../../fixtures/pipelines/everything.yml"),
        include_str!("../../pipelines/demo.yml"),
        include_str!("../../pipelines/ci.yml"),
    ];

    /// Bits of YAML and of the pipeline language that make mutations interesting.
    const TOKENS: &[&str] = &[
        ":",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\n",
        "  ",
        "&a ",
        "*a",
        "!!str ",
        "|",
        ">",
        "'",
        "\"",
        "#",
        "---",
        "...",
        "${",
        "${{",
        "}",
        "}}",
        "$${{",
        "${{ x.y }}",
        "${{ matrix.k }}",
        "matrix:\n",
        " && ",
        "!(",
        "'main'",
        "needs: [",
        "run: ",
        "uses: ",
        "if: ",
        "timeout: ",
        "9999999999999999999h",
        "\t",
        "é",
        "\u{feff}",
        "\0",
        "stages:",
        "version: 1",
        "? ",
        "<<: *a",
    ];

    fn check(text: &str) {
        let path = Path::new("pipelines/fuzz.yml");
        let source = SourceFile {
            path: path.to_path_buf(),
            text: Arc::from(text),
        };
        if let Err(errors) = parse_and_validate(
            &source,
            &[("V".to_owned(), String::new())],
            2,
            &crate::stages::REGISTRY,
        ) {
            assert!(!errors.is_empty());
            let file = SourceFile {
                path: path.to_path_buf(),
                text: Arc::from(text),
            };
            let all = ConfigErrors { file, errors };
            let handler = miette::GraphicalReportHandler::new_themed(
                miette::GraphicalTheme::unicode_nocolor(),
            );
            for diagnostic in all.diagnostics() {
                let mut out = String::new();
                handler
                    .render_report(&mut out, &diagnostic)
                    .expect("renders");
                assert!(!out.is_empty());
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Delete(prop::sample::Index, usize),
        Insert(prop::sample::Index, prop::sample::Index),
        Duplicate(prop::sample::Index, usize),
        Byte(prop::sample::Index, u8),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<prop::sample::Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
            (any::<prop::sample::Index>(), any::<prop::sample::Index>())
                .prop_map(|(i, t)| Mutation::Insert(i, t)),
            (any::<prop::sample::Index>(), 1usize..80).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
            (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        ]
    }

    fn apply(text: &str, mutations: &[Mutation]) -> String {
        let mut bytes = text.as_bytes().to_vec();
        for m in mutations {
            let len = bytes.len().max(1);
            match m {
                Mutation::Delete(i, n) => {
                    let at = i.index(len).min(bytes.len());
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
                Mutation::Insert(i, t) => {
                    let at = i.index(len).min(bytes.len());
                    let token = TOKENS[t.index(TOKENS.len())].as_bytes();
                    bytes.splice(at..at, token.iter().copied());
                }
                Mutation::Duplicate(i, n) => {
                    let at = i.index(len).min(bytes.len());
                    let end = (at + n).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
                Mutation::Byte(i, b) => {
                    if !bytes.is_empty() {
                        let at = i.index(bytes.len());
                        bytes[at] = *b;
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            check(&text);
        }

        #[test]
        fn yaml_shaped_text_never_panics(parts in proptest::collection::vec(any::<prop::sample::Index>(), 0..60)) {
            let text: String = parts.iter().map(|i| TOKENS[i.index(TOKENS.len())]).collect();
            check(&text);
        }

        #[test]
        fn mutated_pipelines_never_panic(seed in any::<prop::sample::Index>(), mutations in proptest::collection::vec(mutation(), 1..6)) {
            let text = apply(SEEDS[seed.index(SEEDS.len())], &mutations);
            check(&text);
        }
    }

    #[test]
    fn seeds_are_valid() {
        for seed in SEEDS {
            let source = SourceFile {
                path: "seed.yml".into(),
                text: Arc::from(*seed),
            };
            let result = parse_and_validate(&source, &[], 2, &crate::stages::REGISTRY);
            assert!(result.is_ok(), "{:?}", result.err());
        }
    }
}
