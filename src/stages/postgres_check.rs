//! `uses: postgres-check` — database integrity checks, each one JUnit test case.
//!
//! The main type is [`PostgresCheck`]. Every SQL and `exists:` check runs in one
//! `REPEATABLE READ READ ONLY` transaction, so all of them see the same state of the database
//! and none can change it; each runs under its own savepoint with `SET LOCAL statement_timeout`,
//! so one that errors or times out does not abort the others. The server cancels a statement
//! that exceeds the timeout; should the server not answer even then, the client sends a cancel
//! request (dropping the future alone would leave the query running on the server) and stops
//! using the connection. `script:` checks run outside the transaction as their own processes,
//! with the connection in libpq's `PG*` variables. A broken assertion is a JUnit `failure`; an
//! SQL error, a timeout or a script that could not run is an `error`; `severity: warn` reports
//! either without failing the stage.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};

use serde_json::{Value, json};

use super::{BoxFuture, BuiltinStage, Kind, KindOutcome, StageContext, conn_from};
use crate::config::errors::ConfigError;
use crate::config::validate::Validator;
use crate::config::yaml::{Node, NodeKind};
use crate::pg::conn::{ConnInfo, PassFile, error_text};
use crate::runner::events::{CaseResult, CaseStatus};
use crate::supervisor::child;

const KEYS: &[&str] = &["url", "statement-timeout", "checks"];
const CHECK_KEYS: &[&str] = &[
    "name", "sql", "expect", "exists", "script", "severity", "timeout",
];
const OBJECT_KINDS: &[&str] = &[
    "table",
    "view",
    "column",
    "index",
    "sequence",
    "function",
    "extension",
    "schema",
];
/// Rows of a failing query shown in the report.
const SAMPLE_ROWS: usize = 5;
/// Lines of a script's output kept for its test case.
const SCRIPT_TAIL_LINES: usize = 30;
/// How much of a script's stdout, and of its stderr, is kept for that tail.
const SCRIPT_OUTPUT_BYTES: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct PostgresCheck {
    url: String,
    statement_timeout: Duration,
    checks: Vec<Check>,
}

#[derive(Debug)]
struct Check {
    name: String,
    what: What,
    warn: bool,
    timeout: Option<Duration>,
}

#[derive(Debug)]
enum What {
    Sql { sql: String, expect: Expect },
    Exists(Vec<(String, String)>),
    Script { argv: Vec<String>, shell: bool },
}

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    NoRows,
    Rows(u64),
    Value(String),
    Range { min: Option<f64>, max: Option<f64> },
}

impl Kind for PostgresCheck {
    const NAME: &'static str = "postgres-check";

    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<PostgresCheck> {
        let f = v.fields(with, "`with` of `postgres-check`", KEYS)?;
        let url = v.required_string(
            &f,
            "url",
            "postgres-check",
            "add `url: ${{ DATABASE_URL }}` (a `postgresql://` URL or `key=value` string)",
        );
        let statement_timeout = f
            .get("statement-timeout")
            .and_then(|n| v.duration(n, "`statement-timeout`"))
            .unwrap_or(Duration::from_secs(30));
        let checks = checks_of(&f, v, "postgres-check");
        Some(PostgresCheck {
            url: url?,
            statement_timeout,
            checks,
        })
    }

    fn with_schema() -> Value {
        json!({
            "description": "Settings of `uses: postgres-check`: integrity checks in one read-only transaction, each a JUnit case.",
            "type": "object",
            "additionalProperties": false,
            "required": ["url", "checks"],
            "properties": {
                "url": super::pg_url_schema(),
                "statement-timeout": statement_timeout_schema(),
                "checks": PostgresCheck::checks_schema()
            }
        })
    }
}

/// The `checks:` list of `postgres-check` (and of `backup-drill`), which must be there.
fn checks_of(
    f: &crate::config::validate::Fields<'_>,
    v: &mut Validator<'_>,
    kind: &str,
) -> Vec<Check> {
    let mut checks = Vec::new();
    match f.get("checks").map(|n| (n, &n.kind)) {
        Some((_, NodeKind::Seq(items))) if !items.is_empty() => {
            for item in items {
                checks.extend(check(item, v));
            }
        }
        Some((n, _)) => v.error(
            ConfigError::new(
                "`checks` must be a non-empty list",
                n.span.clone(),
                "not a list of checks",
            )
            .help("write each check as a list item: `- sql: …`, `- exists: […]` or `- script: …`"),
        ),
        None => v.error(
            ConfigError::new(
                format!("`{kind}` needs `checks`"),
                f.span.clone(),
                "no `checks`",
            )
            .help("add `checks:` with items such as `- sql: select … ` and `expect: no-rows`"),
        ),
    }
    checks
}

impl PostgresCheck {
    /// The checks of a `checks:` list, to run on another database (a restore drill's copy)
    /// with [`PostgresCheck::run_on`].
    pub(crate) fn parse_checks(
        f: &crate::config::validate::Fields<'_>,
        v: &mut Validator<'_>,
        kind: &str,
        statement_timeout: Duration,
    ) -> PostgresCheck {
        PostgresCheck {
            url: String::new(),
            statement_timeout,
            checks: checks_of(f, v, kind),
        }
    }

    /// The JSON schema of a `checks:` list.
    pub(crate) fn checks_schema() -> Value {
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
        })
    }
}

pub(crate) fn statement_timeout_schema() -> Value {
    json!({
        "description": "Each SQL check's `statement_timeout` (default 30s); the server cancels a query that takes longer.",
        "$ref": "#/definitions/duration"
    })
}

fn check(item: &Node, v: &mut Validator<'_>) -> Option<Check> {
    let f = v.fields(item, "a check", CHECK_KEYS)?;
    let present: Vec<&str> = ["sql", "exists", "script"]
        .into_iter()
        .filter(|k| f.get(k).is_some())
        .collect();
    if present.len() != 1 {
        v.error(
            ConfigError::new(
                if present.is_empty() {
                    "a check needs one of `sql`, `exists` or `script`".to_owned()
                } else {
                    format!("a check has both `{}` and `{}`", present[0], present[1])
                },
                f.span.clone(),
                "here",
            )
            .help("split it into one check per `sql`, `exists` or `script`"),
        );
        return None;
    }
    let warn = match f.get("severity") {
        None => false,
        Some(n) => match v.string(n, "`severity`").as_deref() {
            Some("error") => false,
            Some("warn") => true,
            Some(other) => {
                v.error(
                    ConfigError::new(
                        format!("unknown severity `{other}`"),
                        n.span.clone(),
                        "unknown severity",
                    )
                    .help("use `error` (fails the stage, the default) or `warn` (reported only)"),
                );
                false
            }
            None => false,
        },
    };
    let timeout = f.get("timeout").and_then(|n| v.duration(n, "`timeout`"));
    let expect_node = f.get("expect");
    if expect_node.is_some() && present[0] != "sql" {
        v.error(
            ConfigError::new(
                "`expect` applies to `sql` checks only",
                f.key_span("expect").unwrap_or(f.span.clone()),
                "not for this check",
            )
            .help("remove `expect`"),
        );
    }
    let name_given = f.get("name").and_then(|n| v.string(n, "`name`"));
    let (what, default_name) = match present[0] {
        "sql" => {
            let n = f.get("sql")?;
            let text = v.string(n, "`sql`")?;
            let trimmed = text.trim().trim_end_matches(';').trim().to_owned();
            if trimmed.contains(';') {
                v.error(
                    ConfigError::new(
                        "`sql` holds more than one statement",
                        n.span.clone(),
                        "one query only",
                    )
                    .help("each check is one `select`; split the statements into several checks"),
                );
            }
            let expect = match expect_node {
                Some(e) => expect(e, v)?,
                None => Expect::NoRows,
            };
            let first_line: String = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = first_line.chars().take(60).collect();
            let sql = trimmed;
            (What::Sql { sql, expect }, short)
        }
        "exists" => {
            let n = f.get("exists")?;
            let mut objects = Vec::new();
            for (text, node) in v.string_list(n, "`exists`") {
                let parsed = text
                    .trim()
                    .split_once(' ')
                    .map(|(k, name)| (k.trim().to_owned(), name.trim().to_owned()));
                match parsed {
                    Some((kind, name))
                        if OBJECT_KINDS.contains(&kind.as_str()) && !name.is_empty() =>
                    {
                        if kind == "column" && name.matches('.').count() < 1 {
                            v.error(
                                ConfigError::new(
                                    format!("`{text}` does not name a table"),
                                    node.span.clone(),
                                    "column of which table?",
                                )
                                .help(
                                    "write `column schema.table.column` or `column table.column`",
                                ),
                            );
                            continue;
                        }
                        objects.push((kind, name));
                    }
                    _ => v.error(
                        ConfigError::new(
                            format!("`{text}` is not `KIND NAME`"),
                            node.span.clone(),
                            "unknown object",
                        )
                        .help(format!(
                            "KIND is one of {}, e.g. `view finance.v_cashflow`",
                            OBJECT_KINDS.join(", ")
                        )),
                    ),
                }
            }
            let label = format!(
                "exists: {}",
                objects
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            (What::Exists(objects), label)
        }
        _ => {
            let n = f.get("script")?;
            let (argv, shell) = match &n.kind {
                NodeKind::Seq(_) => (v.string_list(n, "`script`"), false),
                _ => (
                    v.string(n, "`script`")
                        .map(|s| (s, n))
                        .into_iter()
                        .collect(),
                    true,
                ),
            };
            let words: Vec<String> = argv.iter().map(|(t, _)| t.clone()).collect();
            if words.is_empty() {
                return None;
            }
            let label = format!(
                "script: {}",
                argv.iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            (What::Script { argv: words, shell }, label)
        }
    };
    Some(Check {
        name: name_given.unwrap_or(default_name),
        what,
        warn,
        timeout,
    })
}

fn expect(node: &Node, v: &mut Validator<'_>) -> Option<Expect> {
    match &node.kind {
        NodeKind::Scalar { value, .. } if value == "no-rows" => Some(Expect::NoRows),
        NodeKind::Map(_) => {
            let f = v.fields(node, "`expect`", &["rows", "value", "min", "max"])?;
            if let Some(n) = f.get("rows") {
                return v.uint(n, "`rows`", 0, u64::MAX).map(Expect::Rows);
            }
            if let Some(n) = f.get("value") {
                return v.string(n, "`value`").map(Expect::Value);
            }
            let mut number = |key: &str| -> Option<Option<f64>> {
                match f.get(key) {
                    None => Some(None),
                    Some(n) => match n.as_str().and_then(|s| s.parse::<f64>().ok()) {
                        Some(x) => Some(Some(x)),
                        None => {
                            v.error(
                                ConfigError::new(
                                    format!("`{key}` must be a number"),
                                    n.span.clone(),
                                    format!("found {}", n.describe()),
                                )
                                .help(format!("write `{key}: 10`")),
                            );
                            None
                        }
                    },
                }
            };
            let (min, max) = (number("min")?, number("max")?);
            if min.is_none() && max.is_none() {
                v.error(
                    ConfigError::new("`expect` names no expectation", node.span.clone(), "empty")
                        .help("use `no-rows`, `{ rows: 3 }`, `{ value: 0 }` or `{ min: 1, max: 100 }`"),
                );
                return None;
            }
            Some(Expect::Range { min, max })
        }
        _ => {
            v.error(
                ConfigError::new(
                    "`expect` is not an expectation",
                    node.span.clone(),
                    format!("found {}", node.describe()),
                )
                .help("use `no-rows`, `{ rows: 3 }`, `{ value: 0 }` or `{ min: 1, max: 100 }`"),
            );
            None
        }
    }
}

impl BuiltinStage for PostgresCheck {
    fn describe(&self) -> String {
        format!(
            "{} on {}",
            crate::text::plural(self.checks.len(), "check"),
            crate::pg::conn::hide_password(&self.url)
        )
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move { self.run_checks(cx).await })
    }
}

/// How one check ended.
enum Verdict {
    Pass(String),
    Fail(String, String),
    Error(String, String),
}

impl PostgresCheck {
    async fn run_checks(&self, cx: &mut StageContext) -> KindOutcome {
        let conn = match conn_from(cx, &self.url) {
            Ok(c) => c,
            Err(e) => return KindOutcome::failed(e),
        };
        self.run_on(cx, &conn).await
    }

    /// Runs the checks against `conn`, each a test case.
    pub(crate) async fn run_on(&self, cx: &mut StageContext, conn: &ConnInfo) -> KindOutcome {
        let conn = conn.clone();
        let mut read_only = conn.clone();
        read_only.options = Some(format!(
            "{} -c default_transaction_read_only=on",
            conn.options.as_deref().unwrap_or_default()
        ));
        let needs_sql = self
            .checks
            .iter()
            .any(|c| !matches!(c.what, What::Script { .. }));
        let mut client: Option<Client> = None;
        let mut lost: Option<String> = None;
        if needs_sql {
            match read_only.connect().await {
                Ok(c) => match c
                    .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                {
                    Ok(()) => client = Some(c),
                    Err(e) => lost = Some(error_text(&e)),
                },
                Err(e) => lost = Some(e),
            }
        }
        cx.log.line(&format!("checking {}", conn.display())).await;
        let mut outcome = KindOutcome::passed();
        let mut failed = Vec::new();
        for check in &self.checks {
            if cx.cancel.is_cancelled() {
                outcome.cases.push(CaseResult {
                    name: check.name.clone(),
                    status: CaseStatus::Skipped {
                        message: "cancelled".into(),
                    },
                    duration: Duration::ZERO,
                    location: None,
                    output: String::new(),
                });
                continue;
            }
            let started = Instant::now();
            let timeout = check.timeout.unwrap_or(self.statement_timeout);
            let verdict = match (&check.what, &client, &lost) {
                (What::Script { argv, shell }, _, _) => {
                    self.script(
                        cx,
                        &conn,
                        argv,
                        *shell,
                        check.timeout.unwrap_or(Duration::from_secs(300)),
                    )
                    .await
                }
                (_, Some(c), None) => {
                    let (verdict, broken) = guarded(c, cx, timeout, check).await;
                    if let Some(reason) = broken {
                        lost = Some(reason);
                    }
                    verdict
                }
                (_, _, reason) => Verdict::Error(
                    format!(
                        "no database connection: {}",
                        reason.as_deref().unwrap_or("not connected")
                    ),
                    String::new(),
                ),
            };
            let (status, line) = match verdict {
                Verdict::Pass(detail) => (
                    CaseStatus::Passed,
                    format!("ok    {}: {detail}", check.name),
                ),
                Verdict::Fail(message, body) => (
                    CaseStatus::Failed {
                        message: conn.mask(&message),
                        body: conn.mask(&body),
                    },
                    format!("FAIL  {}: {}", check.name, conn.mask(&message)),
                ),
                Verdict::Error(message, body) => (
                    CaseStatus::Errored {
                        message: conn.mask(&message),
                        body: conn.mask(&body),
                    },
                    format!("ERROR {}: {}", check.name, conn.mask(&message)),
                ),
            };
            let (status, line, output) = match status {
                CaseStatus::Failed { message, .. } | CaseStatus::Errored { message, .. }
                    if check.warn =>
                {
                    (
                        CaseStatus::Passed,
                        format!("WARN  {}: {message}", check.name),
                        format!("WARN (severity: warn): {message}"),
                    )
                }
                s => (s, line, String::new()),
            };
            if matches!(
                status,
                CaseStatus::Failed { .. } | CaseStatus::Errored { .. }
            ) {
                failed.push(check.name.clone());
            }
            cx.log.line(&line).await;
            outcome.cases.push(CaseResult {
                name: check.name.clone(),
                status,
                duration: started.elapsed(),
                location: None,
                output,
            });
        }
        if let (Some(c), None) = (&client, &lost) {
            let _ = c.batch_execute("ROLLBACK").await;
        }
        if !failed.is_empty() {
            let n = failed.len();
            outcome.result = Err(format!(
                "{n} of {} checks failed: {}",
                self.checks.len(),
                failed.join(", ")
            ));
        }
        outcome
    }

    async fn script(
        &self,
        cx: &mut StageContext,
        conn: &ConnInfo,
        argv: &[String],
        shell: bool,
        timeout: Duration,
    ) -> Verdict {
        let words = argv.to_vec();
        let argv = if shell {
            vec!["sh".to_owned(), "-c".to_owned(), words.join(" ")]
        } else {
            words
        };
        let passfile = match PassFile::create(conn, &std::env::temp_dir()) {
            Ok(p) => p,
            Err(e) => return Verdict::Error(e, String::new()),
        };
        let mut env = conn.child_env(&cx.env, passfile.as_ref());
        env.push((
            "DATABASE_URL".into(),
            conn.url_without_password(passfile.as_ref().map(|p| p.path.as_path())),
        ));
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&cx.workdir);
        let limits = child::Limits {
            stdout: child::Keep::Tail(SCRIPT_OUTPUT_BYTES),
            stderr: SCRIPT_OUTPUT_BYTES,
        };
        let finished = child::capture(
            &mut command,
            limits,
            Some(timeout),
            &cx.cancel,
            child::HELPER_GRACE,
        )
        .await;
        let done = match finished {
            Ok(child::Finished::Exited(done)) => done,
            Ok(child::Finished::TimedOut) => {
                return Verdict::Error(
                    format!(
                        "timed out after {}",
                        crate::config::duration::format(timeout)
                    ),
                    String::new(),
                );
            }
            Ok(child::Finished::Cancelled) => {
                return Verdict::Error("cancelled".into(), String::new());
            }
            Err(e) => {
                return Verdict::Error(format!("cannot start `{}`: {e}", argv[0]), String::new());
            }
        };
        let mut text = String::from_utf8_lossy(&done.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&done.stderr));
        let status = done.status;
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(SCRIPT_TAIL_LINES)..].join("\n");
        for line in &lines[lines.len().saturating_sub(SCRIPT_TAIL_LINES)..] {
            cx.log.line(&format!("  | {line}")).await;
        }
        match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(0), _) => Verdict::Pass("exit code 0".into()),
            (Some(code @ 1..=125), _) => Verdict::Fail(format!("exit code {code}"), tail),
            (Some(code), _) => Verdict::Error(format!("exit code {code}"), tail),
            (None, Some(sig)) => Verdict::Error(format!("killed by signal {sig}"), tail),
            (None, None) => Verdict::Error("the script's end could not be observed".into(), tail),
        }
    }
}

/// Runs one SQL or `exists` check under its savepoint and statement timeout. The second value
/// is set when the connection can no longer be trusted.
async fn guarded(
    client: &Client,
    cx: &StageContext,
    timeout: Duration,
    check: &Check,
) -> (Verdict, Option<String>) {
    let ms = timeout.as_millis().max(1);
    if let Err(e) = client
        .batch_execute(&format!(
            "SAVEPOINT portcullis_check; SET LOCAL statement_timeout = {ms}"
        ))
        .await
    {
        let reason = error_text(&e);
        return (Verdict::Error(reason.clone(), String::new()), Some(reason));
    }
    let body = evaluate(client, check, timeout);
    let limit = timeout + Duration::from_secs(5);
    let mut body = std::pin::pin!(body);
    let first = tokio::select! {
        r = tokio::time::timeout(limit, &mut body) => r.ok(),
        () = cx.cancel.cancelled() => None,
    };
    let verdict = match first {
        Some(v) => v,
        None => {
            // The server did not stop the query itself: ask it to, on a separate connection,
            // then give the query a moment to end with the cancellation error.
            let _ = client
                .cancel_token()
                .cancel_query(tokio_postgres::NoTls)
                .await;
            let why = if cx.cancel.is_cancelled() {
                "cancelled".to_owned()
            } else {
                format!(
                    "no answer within {}; the query was cancelled on the server",
                    crate::config::duration::format(limit)
                )
            };
            if tokio::time::timeout(Duration::from_secs(5), &mut body)
                .await
                .is_err()
            {
                return (Verdict::Error(why.clone(), String::new()), Some(why));
            }
            Verdict::Error(why, String::new())
        }
    };
    let end = match &verdict {
        Verdict::Error(..) => "ROLLBACK TO SAVEPOINT portcullis_check",
        _ => "RELEASE SAVEPOINT portcullis_check",
    };
    match client.batch_execute(end).await {
        Ok(()) => (verdict, None),
        Err(e) => {
            let reason = error_text(&e);
            (verdict, Some(reason))
        }
    }
}

fn sql_error(e: &tokio_postgres::Error, timeout_label: &str) -> Verdict {
    if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
        Verdict::Error(
            format!(
                "timed out after {timeout_label}: the server cancelled the statement ({})",
                error_text(e)
            ),
            String::new(),
        )
    } else {
        Verdict::Error(format!("SQL error: {}", error_text(e)), String::new())
    }
}

async fn evaluate(client: &Client, check: &Check, timeout: Duration) -> Verdict {
    let label = crate::config::duration::format(timeout);
    match &check.what {
        What::Sql { sql, expect } => match sql_check(client, sql, expect).await {
            Ok(v) => v,
            Err(e) => sql_error(&e, &label),
        },
        What::Exists(objects) => {
            let mut missing = Vec::new();
            for (kind, name) in objects {
                match exists(client, kind, name).await {
                    Ok(true) => {}
                    Ok(false) => missing.push(format!("{kind} {name}")),
                    Err(e) => return sql_error(&e, &label),
                }
            }
            if missing.is_empty() {
                Verdict::Pass(format!("all {} objects exist", objects.len()))
            } else {
                Verdict::Fail(
                    format!("missing: {}", missing.join(", ")),
                    missing.join("\n"),
                )
            }
        }
        What::Script { .. } => Verdict::Error("a script is not an SQL check".into(), String::new()),
    }
}

fn rows_of(messages: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

async fn sql_check(
    client: &Client,
    sql: &str,
    expect: &Expect,
) -> Result<Verdict, tokio_postgres::Error> {
    match expect {
        Expect::NoRows => {
            let rows = rows_of(
                client
                    .simple_query(&format!(
                        "SELECT row_to_json(q)::text, count(*) OVER ()::text FROM ({sql}\n) q LIMIT {SAMPLE_ROWS}"
                    ))
                    .await?,
            );
            let Some(first) = rows.first() else {
                return Ok(Verdict::Pass("no rows".into()));
            };
            let total = first.get(1).cloned().flatten().unwrap_or_default();
            let sample: Vec<String> = rows
                .iter()
                .filter_map(|r| r.first().cloned().flatten())
                .collect();
            let noun = if total == "1" { "row" } else { "rows" };
            let message = format!("{total} {noun}, expected none; first: {}", sample[0]);
            let mut body = format!(
                "{total} {noun} returned, expected none. First {}:\n",
                sample.len()
            );
            body.push_str(&sample.join("\n"));
            Ok(Verdict::Fail(message, body))
        }
        Expect::Rows(want) => {
            let rows = rows_of(
                client
                    .simple_query(&format!("SELECT count(*)::text FROM ({sql}\n) q"))
                    .await?,
            );
            let got: u64 = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            Ok(if got == *want {
                Verdict::Pass(format!("{got} rows"))
            } else {
                Verdict::Fail(format!("{got} rows, expected {want}"), String::new())
            })
        }
        Expect::Value(_) | Expect::Range { .. } => {
            let rows = rows_of(
                client
                    .simple_query(&format!("SELECT * FROM ({sql}\n) q LIMIT 2"))
                    .await?,
            );
            if rows.len() != 1 {
                return Ok(Verdict::Fail(
                    format!(
                        "the query returned {} rows; a value check needs exactly one",
                        if rows.len() > 1 {
                            "several".to_owned()
                        } else {
                            "no".to_owned()
                        }
                    ),
                    String::new(),
                ));
            }
            let value = rows[0].first().cloned().flatten();
            let shown = value.clone().unwrap_or_else(|| "NULL".into());
            Ok(compare(value.as_deref(), &shown, expect))
        }
    }
}

fn compare(value: Option<&str>, shown: &str, expect: &Expect) -> Verdict {
    let number = value.and_then(|v| v.trim().parse::<f64>().ok());
    match expect {
        Expect::Value(want) => {
            let equal = match (number, want.trim().parse::<f64>().ok()) {
                (Some(a), Some(b)) => a == b,
                _ => value.unwrap_or("NULL") == want,
            };
            if equal {
                Verdict::Pass(format!("value {shown}"))
            } else {
                Verdict::Fail(format!("value {shown}, expected {want}"), String::new())
            }
        }
        Expect::Range { min, max } => {
            let Some(x) = number else {
                return Verdict::Fail(format!("value {shown} is not a number"), String::new());
            };
            let low = min.is_none_or(|m| x >= m);
            let high = max.is_none_or(|m| x <= m);
            let range = match (min, max) {
                (Some(a), Some(b)) => format!("from {a} to {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            if low && high {
                Verdict::Pass(format!("value {shown}, {range}"))
            } else {
                Verdict::Fail(format!("value {shown}, expected {range}"), String::new())
            }
        }
        _ => Verdict::Error("not a value check".into(), String::new()),
    }
}

async fn exists(client: &Client, kind: &str, name: &str) -> Result<bool, tokio_postgres::Error> {
    let relkinds = |kinds: &str| {
        format!(
            "select exists(select 1 from pg_class where oid = to_regclass($1::text) and relkind::text = any(string_to_array('{kinds}', ',')))"
        )
    };
    let row = match kind {
        "table" => client.query_one(&relkinds("r,p,f"), &[&name]).await?,
        "view" => client.query_one(&relkinds("v,m"), &[&name]).await?,
        "index" => client.query_one(&relkinds("i,I"), &[&name]).await?,
        "sequence" => client.query_one(&relkinds("S"), &[&name]).await?,
        "column" => {
            let (table, column) = name.rsplit_once('.').unwrap_or((name, ""));
            client
                .query_one(
                    "select exists(select 1 from pg_attribute where attrelid = to_regclass($1::text) \
                     and attname = $2::text and attnum > 0 and not attisdropped)",
                    &[&table, &column],
                )
                .await?
        }
        "function" if name.contains('(') => {
            client
                .query_one("select to_regprocedure($1::text) is not null", &[&name])
                .await?
        }
        "function" => {
            let (schema, function) = name.rsplit_once('.').unwrap_or(("", name));
            client
                .query_one(
                    "select exists(select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
                     where p.proname = $2::text and (n.nspname = $1::text or ($1::text = '' and pg_function_is_visible(p.oid))))",
                    &[&schema, &function],
                )
                .await?
        }
        "extension" => {
            client
                .query_one(
                    "select exists(select 1 from pg_extension where extname = $1::text)",
                    &[&name],
                )
                .await?
        }
        _ => {
            client
                .query_one(
                    "select exists(select 1 from pg_namespace where nspname = $1::text)",
                    &[&name],
                )
                .await?
        }
    };
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        let pass = |v: Verdict| matches!(v, Verdict::Pass(_));
        assert!(pass(compare(Some("0"), "0", &Expect::Value("0".into()))));
        assert!(pass(compare(
            Some("1.50"),
            "1.50",
            &Expect::Value("1.5".into())
        )));
        assert!(!pass(compare(
            Some("abc"),
            "abc",
            &Expect::Value("abd".into())
        )));
        assert!(!pass(compare(None, "NULL", &Expect::Value("0".into()))));
        assert!(pass(compare(None, "NULL", &Expect::Value("NULL".into()))));
        let range = Expect::Range {
            min: Some(1.0),
            max: Some(100.0),
        };
        assert!(pass(compare(Some("100"), "100", &range)));
        assert!(!pass(compare(Some("101"), "101", &range)));
        assert!(!pass(compare(Some("x"), "x", &range)));
        assert!(!pass(compare(
            Some("0.5"),
            "0.5",
            &Expect::Range {
                min: Some(1.0),
                max: None
            }
        )));
    }
}
