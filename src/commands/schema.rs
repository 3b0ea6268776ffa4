//! `portcullis schema`: a JSON Schema (draft-07) of the pipeline format, for editors.
//!
//! The main function is [`pipeline_schema`]. The pipeline is checked by hand in
//! `config::validate`, not through serde types, so there is nothing to derive a schema from: this
//! one is written out to follow the validator key for key. It cannot express everything the
//! validator checks (that `needs` name real stages, that `${NAME}` is defined, that the graph has
//! no cycle), but it rejects every unknown key and every value of the wrong shape, which is what
//! an editor's completion and squiggles need. `fixtures/pipeline.schema.json` holds a copy that a
//! test keeps equal to this output, so a `# yaml-language-server: $schema=` header can point at a
//! stable path.

use serde_json::{Value, json};

use crate::exit_code;

pub(crate) fn schema() -> u8 {
    let text = match serde_json::to_string_pretty(&pipeline_schema()) {
        Ok(text) => text,
        Err(e) => {
            crate::commands::print_error(&format!("cannot write the schema: {e}"), None);
            return exit_code::INVALID;
        }
    };
    crate::commands::write_data(format!("{text}\n").as_bytes())
}

/// Durations as `config::duration::parse` reads them: numbers each followed by a unit.
const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";
/// What `config::validate` accepts as an environment variable or secret name.
const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// Stage names end up in file names and in `${STAGE.KEY}`.
const STAGE_NAME_PATTERN: &str = "^[A-Za-z0-9_-]+$";

/// The whole schema, mirroring `TOP_KEYS`, `DEFAULT_KEYS` and `STAGE_KEYS` in
/// `config::validate`.
pub(crate) fn pipeline_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
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
                "description": "Variables every stage sees; `${NAME}` expands them. A `--var NAME=VALUE` overrides one.",
                "$ref": "#/definitions/env"
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
                    }
                }
            },
            "concurrency": {
                "description": "Most stages running at once (default: the number of CPUs; `-j N` overrides).",
                "type": "integer",
                "minimum": 1,
                "maximum": 1024
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
    json!({
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
        "httpWith": {
            "description": "Settings of `uses: http`: poll URLs until each answers `expect`.",
            "type": "object",
            "additionalProperties": false,
            "anyOf": [{ "required": ["url"] }, { "required": ["urls"] }],
            "properties": {
                "url": { "description": "A plain `http://` URL to poll.", "type": "string" },
                "urls": {
                    "description": "Several plain `http://` URLs, each its own JUnit case.",
                    "$ref": "#/definitions/stringOrList"
                },
                "expect": {
                    "description": "The status each URL must answer (default 200).",
                    "type": "integer",
                    "minimum": 100,
                    "maximum": 599
                },
                "contains": { "description": "A text the body must contain.", "type": "string" },
                "within": {
                    "description": "How long to keep polling each URL (default 30s).",
                    "$ref": "#/definitions/duration"
                },
                "interval": {
                    "description": "Time between polls (default 1s).",
                    "$ref": "#/definitions/duration"
                }
            }
        },
        "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
        "portList": {
            "oneOf": [
                { "$ref": "#/definitions/port" },
                { "type": "array", "items": { "$ref": "#/definitions/port" } }
            ]
        },
        "portsWith": ports_with(),
        "blueGreenWith": blue_green_with(),
        "postgresCheckWith": postgres_check_with(),
        "pgDumpWith": pg_dump_with(),
        "stage": stage()
    })
}

/// `with:` of `uses: ports` (its own `json!` call: one for every definition is too deep for the
/// macro).
fn ports_with() -> Value {
    json!({
        "description": "Settings of `uses: ports`: the port law, over source trees (`scan`) and this machine (`live`).",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "allow": {
                "description": "Ports that may be exposed: `{ 3001: frontend }` (port to role) or `[3001, 5555]`.",
                "oneOf": [
                    {
                        "type": "object",
                        "propertyNames": { "pattern": "^[1-9][0-9]{0,4}$" },
                        "additionalProperties": { "type": ["string", "null"] }
                    },
                    { "type": "array", "items": { "$ref": "#/definitions/port" } }
                ]
            },
            "forbid": {
                "description": "Ports that must not appear anywhere: a violation in every file and on every address.",
                "$ref": "#/definitions/portList"
            },
            "require-listening": {
                "description": "With `live: true`: ports that must have a listener or a published container port.",
                "$ref": "#/definitions/portList"
            },
            "scan": {
                "description": "Folders or files to scan for declared ports (default `.` unless `live` is set).",
                "$ref": "#/definitions/stringOrList"
            },
            "live": {
                "description": "Check this machine's listening sockets and Docker's published ports.",
                "type": "boolean"
            }
        }
    })
}

/// `with:` of `uses: blue-green`.
fn blue_green_with() -> Value {
    json!({
        "description": "Settings of `uses: blue-green`: cut a service over between two colour containers.",
        "type": "object",
        "additionalProperties": false,
        "required": ["service", "image", "port", "switch"],
        "properties": {
            "service": {
                "description": "The service; its containers are `SERVICE-blue` and `SERVICE-green`.",
                "type": "string",
                "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
            },
            "image": { "description": "The image of the new colour; must be on the engine (never pulled).", "type": "string" },
            "port": { "description": "The container port that serves.", "type": "integer", "minimum": 1, "maximum": 65535 },
            "network": { "description": "The Docker network the colours join (default `bridge`); created when absent.", "type": "string" },
            "env": { "description": "`NAME=VALUE` entries for the colour's environment.", "$ref": "#/definitions/stringOrList" },
            "health": {
                "description": "How a colour proves it is healthy, before and after the switch.",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "path": { "description": "The HTTP path probed on the colour (default `/healthz`).", "type": "string" },
                    "expect": { "description": "The status a healthy colour answers (default 200).", "type": "integer", "minimum": 100, "maximum": 599 },
                    "interval": { "description": "Time between probes (default 1s).", "$ref": "#/definitions/duration" },
                    "timeout": { "description": "How long one probe may take (default 2s).", "$ref": "#/definitions/duration" },
                    "healthy-after": { "description": "Consecutive passing probes that make a colour healthy (default 3).", "type": "integer", "minimum": 1, "maximum": 1000 },
                    "unhealthy-after": { "description": "Consecutive failing probes that make it unhealthy (default 3).", "type": "integer", "minimum": 1, "maximum": 1000 },
                    "within": { "description": "The deadline for a new colour to become healthy (default 60s).", "$ref": "#/definitions/duration" }
                }
            },
            "switch": {
                "description": "How traffic is switched: exactly one of `nginx`, `alias`, `command`.",
                "type": "object",
                "additionalProperties": false,
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {
                    "nginx": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["upstream-file"],
                        "properties": {
                            "upstream-file": { "description": "The file holding the service's `upstream` block, included by nginx.", "type": "string" },
                            "upstream": { "description": "The upstream's name (default: the service).", "type": "string" },
                            "container": { "description": "nginx runs in this container, reached with `docker exec`.", "type": "string" },
                            "command": { "description": "The nginx invocation `-t` and `-s reload` are appended to (default `nginx`).", "$ref": "#/definitions/stringOrList" }
                        }
                    },
                    "alias": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["network"],
                        "properties": {
                            "network": { "description": "The network on which the live colour holds the alias.", "type": "string" },
                            "name": { "description": "The alias (default: the service).", "type": "string" }
                        }
                    },
                    "command": { "description": "A command that points your router at `$PORTCULLIS_BG_ADDRESS`.", "$ref": "#/definitions/stringOrList" }
                }
            },
            "drain": { "description": "How long the colour being left keeps serving in-flight requests (default 10s).", "$ref": "#/definitions/duration" },
            "watch": { "description": "How long the new colour is watched after the switch (default 10s).", "$ref": "#/definitions/duration" },
            "watch-url": { "description": "A URL through the router, probed during the watch.", "type": "string" },
            "keep-old": { "description": "Keep the old colour's container, stopped, for rollback (default false).", "type": "boolean" }
        }
    })
}

/// `with:` of `uses: postgres-check`, mirroring `stages::postgres_check`.
fn postgres_check_with() -> Value {
    let common = json!({
        "name": { "description": "The check's name in reports (default: its SQL, objects or script).", "type": "string" },
        "severity": {
            "description": "`error` (default) fails the stage; `warn` only reports.",
            "enum": ["error", "warn"]
        },
        "timeout": {
            "description": "This check's statement timeout (SQL) or run time limit (script, default 5m).",
            "$ref": "#/definitions/duration"
        }
    });
    let with = |key: &str, value: Value, extra: Value| {
        let mut properties = common.clone();
        if let (Some(p), Some(e)) = (properties.as_object_mut(), extra.as_object()) {
            p.insert(key.to_owned(), value);
            p.extend(e.clone());
        }
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": [key],
            "properties": properties
        })
    };
    let number = json!({ "type": ["number", "string"] });
    json!({
        "description": "Settings of `uses: postgres-check`: integrity checks in one read-only transaction, each a JUnit case.",
        "type": "object",
        "additionalProperties": false,
        "required": ["url", "checks"],
        "properties": {
            "url": { "description": "A `postgresql://` URL or `key=value` string; `PG*` variables and `.pgpass` fill the rest.", "type": "string" },
            "statement-timeout": {
                "description": "Each SQL check's `statement_timeout` (default 30s); the server cancels a query that takes longer.",
                "$ref": "#/definitions/duration"
            },
            "checks": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "oneOf": [
                        with("sql", json!({ "description": "One query; by default it must return no rows.", "type": "string" }), json!({
                            "expect": {
                                "description": "`no-rows` (default), `{ rows: N }`, `{ value: V }` or `{ min: A, max: B }`.",
                                "oneOf": [
                                    { "const": "no-rows" },
                                    { "type": "object", "additionalProperties": false, "required": ["rows"], "properties": { "rows": { "type": "integer", "minimum": 0 } } },
                                    { "type": "object", "additionalProperties": false, "required": ["value"], "properties": { "value": { "type": ["string", "number", "boolean"] } } },
                                    { "type": "object", "additionalProperties": false, "minProperties": 1, "properties": { "min": number, "max": number } }
                                ]
                            }
                        })),
                        with("exists", json!({
                            "description": "Objects that must exist: `KIND NAME` with KIND one of table, view, column, index, sequence, function, extension, schema.",
                            "oneOf": [
                                { "type": "string", "pattern": "^(table|view|column|index|sequence|function|extension|schema) " },
                                { "type": "array", "items": { "type": "string", "pattern": "^(table|view|column|index|sequence|function|extension|schema) " } }
                            ]
                        }), json!({})),
                        with("script", json!({
                            "description": "A program run with the connection in `PG*` variables: a string for `sh -c`, or an argv list. Exit 0 passes, 1 to 125 fails.",
                            "oneOf": [
                                { "type": "string" },
                                { "type": "array", "minItems": 1, "items": { "type": "string" } }
                            ]
                        }), json!({}))
                    ]
                }
            }
        }
    })
}

/// `with:` of `uses: pg-dump`, mirroring `stages::pg_dump`.
fn pg_dump_with() -> Value {
    json!({
        "description": "Settings of `uses: pg-dump`: a verified backup before a deploy, restored when the run fails.",
        "type": "object",
        "additionalProperties": false,
        "required": ["url", "dir"],
        "properties": {
            "url": { "description": "A `postgresql://` URL or `key=value` string; `PG*` variables and `.pgpass` fill the rest.", "type": "string" },
            "dir": { "description": "The folder of backups, one subfolder each (created 0700).", "type": "string" },
            "keep": { "description": "Keep this many newest backups (with `max-age`: kept when either keeps it).", "type": "integer", "minimum": 1 },
            "max-age": { "description": "Keep backups younger than this.", "$ref": "#/definitions/duration" },
            "dry-run-retention": { "description": "Only report what retention would delete.", "type": "boolean" },
            "restore-on-failure": { "description": "The stage's rollback restores this backup when the run fails (default true).", "type": "boolean" },
            "rehearse": { "description": "Also restore the backup into a scratch database, published as the output `rehearsal-url`.", "type": "boolean" },
            "lock-wait-timeout": { "description": "How long pg_dump waits for its table locks (default 30s).", "$ref": "#/definitions/duration" },
            "maintenance-db": { "description": "The database used to create and rename databases when restoring (default `postgres`).", "type": "string" }
        }
    })
}

fn stage() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        // A stage does exactly one thing; the validator rejects none and two alike.
        "oneOf": [
            { "required": ["run"] },
            { "required": ["command"] },
            { "required": ["uses"] }
        ],
        "dependencies": { "with": ["uses"] },
        // One branch per built-in kind; a new kind adds its own `with:` here.
        "allOf": [
            {
                "if": { "required": ["uses"], "properties": { "uses": { "const": "http" } } },
                "then": {
                    "required": ["with"],
                    "properties": { "with": { "$ref": "#/definitions/httpWith" } }
                }
            },
            {
                "if": { "required": ["uses"], "properties": { "uses": { "const": "ports" } } },
                "then": { "properties": { "with": { "$ref": "#/definitions/portsWith" } } }
            },
            {
                "if": { "required": ["uses"], "properties": { "uses": { "const": "blue-green" } } },
                "then": {
                    "required": ["with"],
                    "properties": { "with": { "$ref": "#/definitions/blueGreenWith" } }
                }
            },
            {
                "if": { "required": ["uses"], "properties": { "uses": { "const": "postgres-check" } } },
                "then": {
                    "required": ["with"],
                    "properties": { "with": { "$ref": "#/definitions/postgresCheckWith" } }
                }
            },
            {
                "if": { "required": ["uses"], "properties": { "uses": { "const": "pg-dump" } } },
                "then": {
                    "required": ["with"],
                    "properties": { "with": { "$ref": "#/definitions/pgDumpWith" } }
                }
            }
        ],
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
                "description": "`success` (default): every need passed. `failure`: the run has failed. `always`: whatever happened. The last two wait for their needs to settle.",
                "enum": ["success", "failure", "always"]
            },
            "run": {
                "description": "A script run by the pipeline's shell. `${NAME}` and `${STAGE.KEY}` expand; `$${` is a literal `${`.",
                "type": "string"
            },
            "command": {
                "description": "A program and its arguments, run without a shell.",
                "$ref": "#/definitions/argv"
            },
            "uses": {
                "description": "A built-in kind, configured by `with:`.",
                "enum": crate::stages::KINDS
            },
            "with": {
                "description": "Settings of the built-in kind named by `uses:`.",
                "type": "object"
            },
            "env": {
                "description": "Environment variables of this stage only; `${NAME}` expands them in the stage.",
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
            }
        }
    })
}
