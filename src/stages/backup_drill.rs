//! `uses: backup-drill` — a restore drill as a pipeline stage, for a scheduled job.
//!
//! The main type is [`BackupDrill`]. It runs [`crate::pg::drill::run`]: the newest backup of
//! a `pg-dump` folder (or of its offsite copies) restored into a scratch database, the
//! restore's own checks and the stage's `checks:` (the `postgres-check` syntax) run on the copy,
//! the recovery time measured from start to verified and held against `rto:`, the result
//! recorded in the backup's manifest, the copy dropped. Each step is a JUnit test case.

use std::time::Duration;

use serde_json::{Value, json};

use super::postgres_check::PostgresCheck;
use super::{BoxFuture, BuiltinStage, Kind, KindOutcome, StageContext, conn_from};
use crate::config::errors::ConfigError;
use crate::config::validate::Validator;
use crate::config::yaml::Node;
use crate::pg::conn::ConnInfo;
use crate::pg::{drill, offsite};
use crate::runner::events::{CaseResult, CaseStatus};

const KEYS: &[&str] = &[
    "url",
    "dir",
    "from",
    "offsite",
    "identity",
    "id",
    "rto",
    "checks",
    "statement-timeout",
    "maintenance-db",
];

#[derive(Debug)]
pub(crate) struct BackupDrill {
    url: String,
    dir: String,
    remote: Option<(offsite::Settings, offsite::KeyText)>,
    id: Option<String>,
    rto: Option<Duration>,
    checks: Option<PostgresCheck>,
    maintenance_db: String,
}

impl Kind for BackupDrill {
    const NAME: &'static str = "backup-drill";

    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<BackupDrill> {
        let f = v.fields(with, "`with` of `backup-drill`", KEYS)?;
        let url = v.required_string(
            &f,
            "url",
            "backup-drill",
            "add `url:`, a database on the server to restore onto (the copy is created beside it and dropped)",
        );
        let from = f.get("from").and_then(|n| {
            let text = v.string(n, "`from`")?;
            match text.as_str() {
                "local" | "remote" => Some(text),
                _ => {
                    v.error(
                        ConfigError::new(
                            format!("`from: {text}` is not a source"),
                            n.span.clone(),
                            "not `local` or `remote`",
                        )
                        .help("write `from: local` (the `dir:` folder, the default) or `from: remote` (the `offsite:` copies)"),
                    );
                    None
                }
            }
        });
        let remote = from.as_deref() == Some("remote");
        let dir = f.get("dir").and_then(|n| v.string(n, "`dir`"));
        if !remote && dir.is_none() {
            v.error(
                ConfigError::new("`backup-drill` needs `dir`", f.span.clone(), "no `dir`")
                    .help("add `dir:`, the folder of the `pg-dump` stage, or `from: remote` with `offsite:`"),
            );
        }
        let bucket = match (remote, f.get("offsite")) {
            (true, Some(n)) => v
                .fields(
                    n,
                    "`offsite` of `backup-drill`",
                    super::pg_dump::BUCKET_KEYS,
                )
                .and_then(|o| super::pg_dump::bucket_settings(&o, v)),
            (true, None) => {
                v.error(
                    ConfigError::new("`from: remote` needs `offsite`", f.span.clone(), "no `offsite`")
                        .help("add `offsite:` with the `url:` (and `endpoint:`, keys) of the `pg-dump` stage's `offsite:`"),
                );
                None
            }
            (false, _) => None,
        };
        let identity = f.get("identity").and_then(|n| v.string(n, "`identity`"));
        if remote && identity.is_none() {
            v.error(
                ConfigError::new("`from: remote` needs `identity`", f.span.clone(), "no `identity`")
                    .help("add `identity: ${{ AGE_IDENTITY }}`, the age private key from `secrets:` (the copies are encrypted)"),
            );
        }
        let id = f.get("id").and_then(|n| v.string(n, "`id`"));
        let rto = f.get("rto").and_then(|n| v.duration(n, "`rto`"));
        let statement_timeout = f
            .get("statement-timeout")
            .and_then(|n| v.duration(n, "`statement-timeout`"))
            .unwrap_or(Duration::from_secs(30));
        let checks = f
            .get("checks")
            .map(|_| PostgresCheck::parse_checks(&f, v, "backup-drill", statement_timeout));
        let maintenance_db = f
            .get("maintenance-db")
            .and_then(|n| v.string(n, "`maintenance-db`"))
            .unwrap_or_else(|| "postgres".into());
        Some(BackupDrill {
            url: url?,
            dir: dir.unwrap_or_default(),
            remote: match (remote, bucket, identity) {
                (true, Some(b), Some(i)) => Some((b, offsite::KeyText(i))),
                (true, _, _) => return None,
                (false, _, _) => None,
            },
            id,
            rto,
            checks,
            maintenance_db,
        })
    }

    fn with_schema() -> Value {
        json!({
            "description": "Settings of `uses: backup-drill`: restore the newest backup into a scratch database, check it, time it against `rto`, record the result in its manifest.",
            "type": "object",
            "additionalProperties": false,
            "required": ["url"],
            "properties": {
                "url": super::pg_url_schema(),
                "dir": { "description": "The folder of the `pg-dump` stage (for `from: local`).", "type": "string" },
                "from": { "description": "`local` (the `dir:` folder, default) or `remote` (the `offsite:` copies).", "enum": ["local", "remote"] },
                "offsite": super::pg_dump::bucket_schema("Where the offsite copies are (for `from: remote`): the `pg-dump` stage's `offsite:` without `recipients`.", &["url"], json!({})),
                "identity": { "description": "The age private key (`AGE-SECRET-KEY-1…`) that decrypts the offsite copies; give it from `secrets:`.", "type": "string" },
                "id": { "description": "The backup to drill (default: the newest).", "type": "string" },
                "rto": { "description": "Recovery-time objective: the drill fails when restoring and checking takes longer.", "$ref": "#/definitions/duration" },
                "checks": PostgresCheck::checks_schema(),
                "statement-timeout": super::postgres_check::statement_timeout_schema(),
                "maintenance-db": { "description": "The database used to create and drop the copy (default `postgres`).", "type": "string" }
            }
        })
    }
}

/// The stage's `checks:` run on the copy, their test cases kept for the report.
struct StageChecks<'a> {
    cx: &'a mut StageContext,
    checks: Option<&'a PostgresCheck>,
    cases: Vec<CaseResult>,
}

impl drill::Checks for StageChecks<'_> {
    fn run<'a>(&'a mut self, copy: &'a ConnInfo) -> BoxFuture<'a, Vec<Result<String, String>>> {
        Box::pin(async move {
            let Some(checks) = self.checks else {
                return Vec::new();
            };
            let outcome = checks.run_on(self.cx, copy).await;
            let lines = outcome
                .cases
                .iter()
                .map(|c| match &c.status {
                    CaseStatus::Failed { message, .. } | CaseStatus::Errored { message, .. } => {
                        Err(format!("{}: {message}", c.name))
                    }
                    _ => Ok(c.name.clone()),
                })
                .collect();
            self.cases = outcome.cases;
            lines
        })
    }
}

impl BuiltinStage for BackupDrill {
    fn describe(&self) -> String {
        let from = match &self.remote {
            Some((b, _)) => b.url.clone(),
            None => self.dir.clone(),
        };
        let mut text = format!("restore drill of the newest valid backup in {from}");
        if let Some(rto) = self.rto {
            text.push_str(&format!(
                ", within {}",
                crate::config::duration::format(rto)
            ));
        }
        text
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move { self.drill(cx).await })
    }
}

impl BackupDrill {
    async fn drill(&self, cx: &mut StageContext) -> KindOutcome {
        let conn = match conn_from(cx, &self.url) {
            Ok(c) => c,
            Err(e) => return KindOutcome::failed(e),
        };
        let source = match &self.remote {
            None => drill::Source::Local(cx.workdir.join(&self.dir)),
            Some((bucket, identity)) => {
                let opened = offsite::Remote::open(bucket, &cx.env).and_then(|remote| {
                    offsite::parse_identities(&identity.0, "`identity`")
                        .map(|identities| drill::Source::Remote { remote, identities })
                });
                match opened {
                    Ok(s) => s,
                    Err(e) => return KindOutcome::failed(e),
                }
            }
        };
        let env = cx.env.clone();
        let cancel = cx.cancel.clone();
        let settings = drill::Settings {
            id: self.id.as_deref(),
            conn: &conn,
            maintenance_db: &self.maintenance_db,
            rto: self.rto,
            env: &env,
            cancel: &cancel,
        };
        let mut checks = StageChecks {
            cx,
            checks: self.checks.as_ref(),
            cases: Vec::new(),
        };
        let outcome = drill::run(&source, &settings, &mut checks).await;
        let mut user_cases = std::mem::take(&mut checks.cases);
        for line in &outcome.lines {
            cx.log.line(line).await;
        }
        // One case per step; the stage's own checks keep their cases (with their failing rows).
        let mut cases = Vec::new();
        for line in &outcome.lines {
            let (passed, rest) = match (line.strip_prefix("ok    "), line.strip_prefix("FAIL  ")) {
                (Some(rest), _) => (true, rest),
                (_, Some(rest)) => (false, rest),
                _ => continue,
            };
            let name = rest
                .split([':', '('])
                .next()
                .unwrap_or(rest)
                .trim()
                .to_owned();
            if let Some(at) = user_cases.iter().position(|c| c.name == name) {
                cases.push(user_cases.remove(at));
                continue;
            }
            cases.push(CaseResult {
                name,
                status: if passed {
                    CaseStatus::Passed
                } else {
                    CaseStatus::Failed {
                        message: rest.to_owned(),
                        body: String::new(),
                    }
                },
                duration: Duration::ZERO,
                location: None,
                output: if passed {
                    rest.to_owned()
                } else {
                    String::new()
                },
            });
        }
        let mut outputs = vec![(
            "recovery-seconds".to_owned(),
            format!("{:.3}", outcome.recovery.as_secs_f64()),
        )];
        if let Some(id) = &outcome.id {
            outputs.push(("backup-id".to_owned(), id.clone()));
        }
        KindOutcome {
            result: match &outcome.error {
                None => Ok(()),
                Some(e) => Err(format!("the drill failed: {e}")),
            },
            cases,
            outputs,
            note: None,
        }
    }
}
