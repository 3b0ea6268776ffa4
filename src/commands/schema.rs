//! `portcullis schema`: a JSON Schema (draft-07) of the pipeline format, for editors.
//!
//! The main function is [`pipeline_schema`]. The pipeline is checked by hand in
//! `config::validate`, not through serde types, so there is nothing to derive a schema from: the
//! file's own keys are written out here to follow the validator key for key, and each built-in
//! kind's `with:` block comes from the kind itself (`Kind::with_schema`, beside its validator),
//! through `stages::REGISTRY`. It cannot express everything the
//! validator checks (that `needs` name real stages, that `${{ NAME }}` is defined, that the graph has
//! no cycle), but it rejects every unknown key and every value of the wrong shape, which is what
//! an editor's completion and squiggles need. `schema/pipeline-v1.json` holds a copy that a
//! test keeps equal to this output, so a `# yaml-language-server: $schema=` header can point at a
//! stable path, versioned with the format's `version:` as its `$id` says.

use serde_json::{Value, json};

use crate::stages::REGISTRY;

pub(crate) fn schema() -> Result<u8, crate::commands::Error> {
    let text = serde_json::to_string_pretty(&pipeline_schema())
        .map_err(|e| crate::commands::Error::failed(format!("cannot write the schema: {e}")))?;
    crate::commands::write_data(format!("{text}\n").as_bytes())
}

/// Where the schema of format version 1 is published: this repository's copy, under a name
/// that a format version 2 would not reuse.
pub(crate) const SCHEMA_ID: &str =
    "https://raw.githubusercontent.com/portcullis/portcullis/main/schema/pipeline-v1.json";

/// Durations as `config::duration::parse` reads them: numbers each followed by a unit.
const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";
/// What `config::validate` accepts as an environment variable or secret name.
const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// Stage names end up in file names and in `${{ STAGE.KEY }}`.
const STAGE_NAME_PATTERN: &str = "^[A-Za-z0-9_-]+$";

/// The whole schema, mirroring `TOP_KEYS`, `DEFAULT_KEYS` and `STAGE_KEYS` in
/// `config::validate`.
pub(crate) fn pipeline_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "portcullis pipeline",
        "description": "A portcullis deploy pipeline: stages with `needs:` dependencies, run by `portcullis run`.",
        "type": "object",
        "additionalProperties": false,
        "required": ["version", "stages"],
        "properties": {
            "version": {
                "description": "The pipeline format version; this portcullis reads `1`.",
                "const": 1
            },
            "name": {
                "description": "The pipeline's name in reports; defaults to the file name without `.yml`.",
                "type": "string"
            },
            "env": {
                "description": "Variables every stage sees; `${{ NAME }}` expands them. A `--var NAME=VALUE` overrides one. A variable without a value in the file is declared `{ required: true, description: ... }`: `run` demands it by `--var` or the environment.",
                "type": "object",
                "propertyNames": { "pattern": ENV_NAME_PATTERN },
                "additionalProperties": {
                    "oneOf": [
                        { "type": ["string", "number", "boolean", "null"] },
                        {
                            "type": "object",
                            "additionalProperties": false,
                            "oneOf": [
                                {
                                    "required": ["required"],
                                    "properties": { "required": { "const": true } },
                                    "not": { "required": ["default"] }
                                },
                                {
                                    "required": ["default"],
                                    "properties": { "required": { "const": false } }
                                }
                            ],
                            "properties": {
                                "required": {
                                    "description": "No value in the file: each run gives one by `--var NAME=VALUE` or the environment.",
                                    "type": "boolean"
                                },
                                "description": { "description": "What the variable is, shown by `plan` and when it is missing.", "type": "string" },
                                "default": {
                                    "description": "The value when no `--var` gives one.",
                                    "type": ["string", "number", "boolean", "null"]
                                }
                            }
                        }
                    ]
                }
            },
            "secrets": {
                "description": "Secrets resolved at run start and masked everywhere; each is also a variable and an environment variable of every stage.",
                "type": "object",
                "propertyNames": { "pattern": ENV_NAME_PATTERN },
                "additionalProperties": { "$ref": "#/definitions/secret" }
            },
            "defaults": {
                "description": "Defaults for every stage.",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "timeout": {
                        "description": "How long a stage attempt may run (default 1h).",
                        "$ref": "#/definitions/duration"
                    },
                    "shell": {
                        "description": "The shell that runs `run:` scripts (default bash, with `-eo pipefail`).",
                        "enum": ["bash", "sh", "zsh"]
                    },
                    "grace": {
                        "description": "Time between SIGTERM and SIGKILL when a stage is stopped (default 10s).",
                        "$ref": "#/definitions/duration"
                    },
                    "workdir": {
                        "description": "The directory of every stage that names no `workdir`, relative to where portcullis runs.",
                        "type": "string"
                    }
                }
            },
            "concurrency": {
                "description": "Most stages running at once (default: the number of CPUs; `-j N` overrides).",
                "type": "integer",
                "minimum": 1,
                "maximum": 1024
            },
            "metrics": {
                "description": "A file each run writes Prometheus metrics to (node_exporter's textfile collector), atomically; relative to the project's root. `--metrics FILE` overrides.",
                "type": "string"
            },
            "stages": {
                "description": "The stages, by name; each runs when its `needs` have passed.",
                "type": "object",
                "minProperties": 1,
                "propertyNames": { "pattern": STAGE_NAME_PATTERN },
                "additionalProperties": { "$ref": "#/definitions/stage" }
            }
        },
        "definitions": definitions()
    })
}

fn definitions() -> Value {
    let mut defs = json!({
        "template": {
            "description": "A value given through `${{ NAME }}` or `${{ STAGE.KEY }}`, checked once expanded.",
            "type": "string",
            "pattern": "\\$\\{\\{"
        },
        "duration": {
            "description": "A number and a unit (ms, s, m, h, d), repeatable: `500ms`, `90s`, `15m`, `1h30m`.",
            "type": "string",
            "pattern": DURATION_PATTERN
        },
        "stringOrList": {
            "oneOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        },
        "argv": {
            "description": "A program and its arguments, run without a shell.",
            "type": "array",
            "minItems": 1,
            "items": { "type": ["string", "number", "boolean"] }
        },
        "env": {
            "type": "object",
            "propertyNames": { "pattern": ENV_NAME_PATTERN },
            "additionalProperties": { "type": ["string", "number", "boolean", "null"] }
        },
        "secret": {
            "description": "Exactly one source: `{ env: VAR }`, `{ file: PATH }` or `{ command: [ARGV...] }`.",
            "oneOf": [
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["env"],
                    "properties": {
                        "env": {
                            "description": "Read the secret from this environment variable.",
                            "type": "string"
                        }
                    }
                },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "description": "Read the secret from this file (one trailing newline dropped).",
                            "type": "string"
                        }
                    }
                },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["command"],
                    "properties": {
                        "command": {
                            "description": "Run this argv (30s limit) and take its output as the secret.",
                            "oneOf": [
                                { "type": "string" },
                                { "type": "array", "minItems": 1, "items": { "type": "string" } }
                            ]
                        }
                    }
                }
            ]
        },
        "rollback": {
            "description": "What undoes this stage when the run fails: a script, `{ run: SCRIPT }` or `{ command: [ARGV...] }`.",
            "oneOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["run"],
                    "properties": {
                        "run": { "description": "A script run by the pipeline's shell.", "type": "string" }
                    }
                },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["command"],
                    "properties": {
                        "command": { "$ref": "#/definitions/argv" }
                    }
                }
            ]
        },
        "retries": {
            "description": "Extra attempts after a failure: a number (backoff 1s) or `{ count: N, backoff: DURATION }`.",
            "oneOf": [
                { "type": "integer", "minimum": 0, "maximum": 100 },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["count"],
                    "properties": {
                        "count": {
                            "description": "Extra attempts after the first failure.",
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 100
                        },
                        "backoff": {
                            "description": "Wait before the first retry; doubles each time, up to 60s (default 1s).",
                            "$ref": "#/definitions/duration"
                        }
                    }
                }
            ]
        },
        "combination": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": { "pattern": "^[A-Za-z][A-Za-z0-9_-]*$" },
            "additionalProperties": { "type": ["string", "number", "boolean"] }
        },
        "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
        "portList": {
            "oneOf": [
                { "$ref": "#/definitions/port" },
                { "type": "array", "items": { "$ref": "#/definitions/port" } }
            ]
        },
        "stage": stage()
    });
    if let Value::Object(map) = &mut defs {
        for kind in REGISTRY.kinds() {
            map.insert(
                with_definition(kind.name),
                accept_templates((kind.schema)()),
            );
        }
    }
    defs
}

/// Any value in `with:` may be written as `${{ NAME }}` and is read once expanded, so wherever a kind
/// takes a number, a boolean, a list or a mapping, a string holding a reference is also valid.
fn accept_templates(mut schema: Value) -> Value {
    let Value::Object(map) = &mut schema else {
        return schema;
    };
    for key in ["properties", "additionalProperties"] {
        match map.get_mut(key) {
            Some(Value::Object(props)) if key == "properties" => {
                for value in props.values_mut() {
                    *value = accept_templates(std::mem::take(value));
                }
            }
            Some(value @ Value::Object(_)) => *value = accept_templates(std::mem::take(value)),
            _ => {}
        }
    }
    if let Some(items) = map.get_mut("items") {
        *items = accept_templates(std::mem::take(items));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = map.get_mut(key) {
            for branch in branches.iter_mut() {
                *branch = accept_templates(std::mem::take(branch));
            }
        }
    }
    let plain_string = map.get("type") == Some(&json!("string"))
        && !map.contains_key("pattern")
        && !map.contains_key("enum");
    let is_with_block = map.contains_key("properties");
    if plain_string || is_with_block || map.is_empty() {
        return schema;
    }
    let description = map.remove("description");
    let mut wrapped = json!({ "anyOf": [schema, { "$ref": "#/definitions/template" }] });
    if let Some(d) = description {
        wrapped["description"] = d;
    }
    wrapped
}

/// The definition name of a kind's `with:` block: `pg-dump` -> `pgDumpWith`.
fn with_definition(kind: &str) -> String {
    let mut name = String::new();
    let mut upper = false;
    for c in kind.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            name.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            name.push(c);
        }
    }
    name.push_str("With");
    name
}

fn stage() -> Value {
    let mut stage = json!({
        "type": "object",
        "additionalProperties": false,
        // A stage does exactly one thing; the validator rejects none and two alike.
        "oneOf": [
            { "required": ["run"] },
            { "required": ["command"] },
            { "required": ["uses"] }
        ],
        "dependencies": { "with": ["uses"], "fail-fast": ["matrix"] },
        "properties": {
            "name": { "description": "The stage's name in reports; defaults to its key.", "type": "string" },
            "needs": {
                "description": "Stages that must pass (or warn) before this one starts.",
                "oneOf": [
                    { "type": "string", "pattern": STAGE_NAME_PATTERN },
                    { "type": "array", "items": { "type": "string", "pattern": STAGE_NAME_PATTERN } }
                ]
            },
            "if": {
                "description": "When the stage runs: an expression over variables (`PORTCULLIS_BRANCH`, `PORTCULLIS_TAG`, `PORTCULLIS_COMMIT`, `PORTCULLIS_EVENT`, the pipeline's `env`) and outputs (`STAGE.KEY`) with `==`, `!=`, `<`, `>`, `=~ 'glob'`, `&&`, `||`, `!`, parentheses and `success()`, `failure()`, `always()`, `cancelled()`, `contains()`, `startsWith()`, `endsWith()`; may be wrapped in `${{ }}`. Without `failure()`, `always()` or `cancelled()` the stage also needs every need to have passed. `success`, `failure`, `always` alone stand for the functions; `true` and `false` are constant conditions.",
                "type": ["string", "boolean", "number"],
                "minLength": 1
            },
            "run": {
                "description": "A script run by the pipeline's shell. `${{ NAME }}` and `${{ STAGE.KEY }}` expand; the shell's own `$NAME` and `${NAME}` are left to it; `$${{` is a literal `${{`.",
                "type": "string"
            },
            "command": {
                "description": "A program and its arguments, run without a shell.",
                "$ref": "#/definitions/argv"
            },
            "uses": {
                "description": "A built-in kind, configured by `with:`.",
                "enum": REGISTRY.kinds().iter().map(|k| k.name).collect::<Vec<_>>()
            },
            "with": {
                "description": "Settings of the built-in kind named by `uses:`.",
                "type": ["object", "null"]
            },
            "env": {
                "description": "Environment variables of this stage only; `${{ NAME }}` expands them in the stage.",
                "$ref": "#/definitions/env"
            },
            "workdir": { "description": "The directory the stage runs in.", "type": "string" },
            "timeout": {
                "description": "How long one attempt may run before it fails (default: `defaults.timeout`, else 1h).",
                "$ref": "#/definitions/duration"
            },
            "grace": {
                "description": "Time between SIGTERM and SIGKILL when the stage is stopped.",
                "$ref": "#/definitions/duration"
            },
            "retries": { "$ref": "#/definitions/retries" },
            "allow-failure": {
                "description": "A failure is a warning and counts as passed for what needs this stage.",
                "type": "boolean"
            },
            "junit": {
                "description": "Globs of JUnit files the stage writes, merged into the report.",
                "$ref": "#/definitions/stringOrList"
            },
            "rollback": { "$ref": "#/definitions/rollback" },
            "paths": {
                "description": "Globs: with `--base REF`, the stage runs only when a changed file matches one.",
                "$ref": "#/definitions/stringOrList"
            },
            "matrix": {
                "description": "Run the stage once per combination: keys with lists of values, `include` and `exclude` lists (GitHub's rules). Each combination is named `STAGE (KEY=VALUE, ...)` and reads its values as `${{ matrix.KEY }}` and `$MATRIX_KEY`.",
                "type": "object",
                "minProperties": 1,
                "properties": {
                    "include": {
                        "description": "Combinations added, or keys added to the combinations they match.",
                        "type": "array",
                        "items": { "$ref": "#/definitions/combination" }
                    },
                    "exclude": {
                        "description": "Combinations left out.",
                        "type": "array",
                        "items": { "$ref": "#/definitions/combination" }
                    }
                },
                "propertyNames": { "pattern": "^[A-Za-z][A-Za-z0-9_-]*$" },
                "additionalProperties": {
                    "type": "array",
                    "minItems": 1,
                    "items": { "type": ["string", "number", "boolean"] }
                }
            },
            "fail-fast": {
                "description": "With `matrix`: a failed combination cancels the others (default true).",
                "type": "boolean"
            }
        }
    });
    // One branch per built-in kind: `with:` follows the kind named by `uses:`.
    let branches: Vec<Value> = REGISTRY
        .kinds()
        .iter()
        .map(|kind| {
            let with = json!({ "$ref": format!("#/definitions/{}", with_definition(kind.name)) });
            let mut then = json!({ "properties": { "with": with } });
            if requires_with(&(kind.schema)()) {
                then["required"] = json!(["with"]);
            }
            json!({
                "if": { "required": ["uses"], "properties": { "uses": { "const": kind.name } } },
                "then": then
            })
        })
        .collect();
    stage["allOf"] = Value::Array(branches);
    stage
}

/// A kind whose `with:` has required keys (or one of several) cannot be used without `with:`.
fn requires_with(schema: &Value) -> bool {
    schema.get("required").is_some() || schema.get("anyOf").is_some()
}
