//! `uses: pg-dump` — a verified backup before a deploy, restored when the run fails.
//!
//! The main type is [`PgDump`]. Each step is a JUnit test case: `preflight` (server and
//! `pg_dump` versions compatible, free disk space at least the database size, the folder
//! locked, leftovers of killed runs removed), `dump` (`pg_dump --format=custom` into
//! `<id>.partial/`, hashed while it streams, row counts taken in the same exported snapshot),
//! `verify` (`pg_restore -f /dev/null` reads every block as the dump streams, then `--list`
//! reads the file's table of contents), `commit` (manifest written last, then
//! the folder renamed to `<id>`), `retention` and, with `rehearse: true`, `rehearse` (the dump
//! restored into a scratch database whose URL is published). The rollback restores this run's
//! backup through [`crate::pg::restore::restore`].

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BoxFuture, BuiltinStage, Kind, KindOutcome, StageContext, conn_from};
use crate::config::errors::ConfigError;
use crate::config::validate::Validator;
use crate::config::yaml::Node;
use crate::pg::conn::{ConnInfo, PassFile};
use crate::pg::store::{self, Manifest, Pruned, Retention};
use crate::pg::{dump, offsite, restore, tools};
use crate::runner::events::{CaseResult, CaseStatus};

const KEYS: &[&str] = &[
    "url",
    "dir",
    "keep",
    "max-age",
    "keep-daily",
    "keep-weekly",
    "keep-monthly",
    "keep-yearly",
    "dry-run-retention",
    "restore-on-failure",
    "rehearse",
    "lock-wait-timeout",
    "maintenance-db",
    "offsite",
];

/// The keys of `offsite:`: the bucket's, then `recipients`.
const OFFSITE_KEYS: &[&str] = &[
    "url",
    "endpoint",
    "region",
    "access-key-id",
    "secret-access-key",
    "recipients",
];

/// The keys that say where a bucket is (`offsite:` of `backup-drill`): those of `pg-dump`'s
/// `offsite:` without `recipients`.
pub(crate) const BUCKET_KEYS: &[&str] = OFFSITE_KEYS.split_at(OFFSITE_KEYS.len() - 1).0;

/// `offsite:`: where the encrypted copy goes, and to whom it is encrypted.
#[derive(Debug)]
struct Offsite {
    settings: offsite::Settings,
    recipients: Vec<String>,
}

fn offsite_settings(node: &Node, v: &mut Validator<'_>) -> Option<Offsite> {
    let f = v.fields(node, "`offsite` of `pg-dump`", OFFSITE_KEYS)?;
    let settings = bucket_settings(&f, v)?;
    let recipients = match f.get("recipients") {
        Some(n) => {
            let list = v.string_list(n, "`recipients`");
            for (text, item) in &list {
                if let Err(e) = offsite::parse_recipients(std::slice::from_ref(text)) {
                    // The help line says what to write; the message keeps only what is wrong.
                    let e = e.split("; ").next().unwrap_or(&e).to_owned();
                    v.error(
                        ConfigError::new(e, item.span.clone(), "not an age public key")
                            .help("run `age-keygen -o key.txt`, keep key.txt in your secret store and list the `age1…` line it prints"),
                    );
                }
            }
            if list.is_empty() {
                v.error(
                    ConfigError::new("`recipients` is empty", n.span.clone(), "no recipient")
                        .help("list at least one age public key `age1…`: copies are encrypted before they leave"),
                );
            }
            list.into_iter().map(|(t, _)| t).collect()
        }
        None => {
            v.error(
                ConfigError::new("`offsite` needs `recipients`", f.span.clone(), "no `recipients`")
                    .help("list the age public keys (`age1…`) copies are encrypted to: nothing leaves unencrypted"),
            );
            Vec::new()
        }
    };
    Some(Offsite {
        settings,
        recipients,
    })
}

/// The bucket part of an `offsite:` block (`url`, `endpoint`, `region`, the keys).
pub(crate) fn bucket_settings(
    f: &crate::config::validate::Fields<'_>,
    v: &mut Validator<'_>,
) -> Option<offsite::Settings> {
    let url = v.required_string(
        f,
        "url",
        "offsite",
        "add `url: s3://BUCKET/PREFIX`: where the encrypted copies are",
    );
    if let (Some(url), Some(n)) = (&url, f.get("url"))
        && let Err(e) = offsite::parse_url(url)
    {
        v.error(
            ConfigError::new(e, n.span.clone(), "not an S3 URL")
                .help("write `url: s3://BUCKET/PREFIX`; give a non-AWS server with `endpoint:`"),
        );
    }
    let mut string = |key: &str| f.get(key).and_then(|n| v.string(n, &format!("`{key}`")));
    let settings = offsite::Settings {
        url: url.clone().unwrap_or_default(),
        endpoint: string("endpoint"),
        region: string("region"),
        access_key_id: string("access-key-id"),
        secret_access_key: string("secret-access-key"),
    };
    url.map(|_| settings)
}

/// The JSON schema of the bucket settings, with `extra` properties.
pub(crate) fn bucket_schema(description: &str, required: &[&str], extra: Value) -> Value {
    let mut properties = json!({
        "url": { "description": "`s3://BUCKET/PREFIX`.", "type": "string" },
        "endpoint": { "description": "The server for S3-compatible storage other than AWS (MinIO, Ceph, R2, GCS): `https://…`.", "type": "string" },
        "region": { "description": "The bucket's region (else `AWS_REGION`).", "type": "string" },
        "access-key-id": { "description": "Else `AWS_ACCESS_KEY_ID`; give it from `secrets:`.", "type": "string" },
        "secret-access-key": { "description": "Else `AWS_SECRET_ACCESS_KEY`; give it from `secrets:`.", "type": "string" }
    });
    if let (Some(p), Value::Object(extra)) = (properties.as_object_mut(), extra) {
        p.extend(extra);
    }
    json!({
        "description": description,
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties
    })
}

#[derive(Debug)]
pub(crate) struct PgDump {
    url: String,
    dir: String,
    retention: Retention,
    dry_run_retention: bool,
    restore_on_failure: bool,
    rehearse: bool,
    lock_wait_timeout: Duration,
    maintenance_db: String,
    offsite: Option<Offsite>,
}

impl Kind for PgDump {
    const NAME: &'static str = "pg-dump";

    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<PgDump> {
        let f = v.fields(with, "`with` of `pg-dump`", KEYS)?;
        let url = v.required_string(
            &f,
            "url",
            "pg-dump",
            "add `url: ${{ DATABASE_URL }}` (a `postgresql://` URL or `key=value` string)",
        )?;
        let dir = v.required_string(
            &f,
            "dir",
            "pg-dump",
            "add `dir: backups/`: the folder that holds one subfolder per backup",
        )?;
        let count = |v: &mut Validator<'_>, key: &str| {
            f.get(key)
                .and_then(|n| v.uint(n, &format!("`{key}`"), 1, 100_000))
                .map(|n| n as usize)
        };
        let retention = Retention {
            keep: count(v, "keep"),
            max_age: f.get("max-age").and_then(|n| v.duration(n, "`max-age`")),
            keep_daily: count(v, "keep-daily"),
            keep_weekly: count(v, "keep-weekly"),
            keep_monthly: count(v, "keep-monthly"),
            keep_yearly: count(v, "keep-yearly"),
        };
        let flag = |v: &mut Validator<'_>, key: &str, default: bool| {
            f.get(key)
                .and_then(|n| v.bool(n, &format!("`{key}`")))
                .unwrap_or(default)
        };
        let dry_run_retention = flag(v, "dry-run-retention", false);
        let restore_on_failure = flag(v, "restore-on-failure", true);
        let rehearse = flag(v, "rehearse", false);
        let lock_wait_timeout = f
            .get("lock-wait-timeout")
            .and_then(|n| v.duration(n, "`lock-wait-timeout`"))
            .unwrap_or(Duration::from_secs(30));
        let maintenance_db = f
            .get("maintenance-db")
            .and_then(|n| v.string(n, "`maintenance-db`"))
            .unwrap_or_else(|| "postgres".into());
        let offsite = f.get("offsite").and_then(|n| offsite_settings(n, v));
        Some(PgDump {
            url,
            dir,
            retention,
            dry_run_retention,
            restore_on_failure,
            rehearse,
            lock_wait_timeout,
            maintenance_db,
            offsite,
        })
    }

    fn with_schema() -> Value {
        json!({
            "description": "Settings of `uses: pg-dump`: a verified backup before a deploy, restored when the run fails.",
            "type": "object",
            "additionalProperties": false,
            "required": ["url", "dir"],
            "properties": {
                "url": super::pg_url_schema(),
                "dir": { "description": "The folder of backups, one subfolder each (created 0700).", "type": "string" },
                "keep": { "description": "Keep this many newest backups (with other rules: kept when any rule keeps it).", "type": "integer", "minimum": 1, "maximum": 100000 },
                "max-age": { "description": "Keep backups younger than this.", "$ref": "#/definitions/duration" },
                "keep-daily": { "description": "Keep the newest backup of each of the last N days (UTC) that have one.", "type": "integer", "minimum": 1, "maximum": 100000 },
                "keep-weekly": { "description": "Keep the newest backup of each of the last N ISO weeks (UTC, Monday to Sunday) that have one.", "type": "integer", "minimum": 1, "maximum": 100000 },
                "keep-monthly": { "description": "Keep the newest backup of each of the last N months (UTC) that have one.", "type": "integer", "minimum": 1, "maximum": 100000 },
                "keep-yearly": { "description": "Keep the newest backup of each of the last N years (UTC) that have one.", "type": "integer", "minimum": 1, "maximum": 100000 },
                "dry-run-retention": { "description": "Only report what retention would delete.", "type": "boolean" },
                "restore-on-failure": { "description": "The stage's rollback restores this backup when the run fails (default true).", "type": "boolean" },
                "rehearse": { "description": "Also restore the backup into a scratch database, published as the output `rehearsal-url`.", "type": "boolean" },
                "lock-wait-timeout": { "description": "How long pg_dump waits for its table locks (default 30s).", "$ref": "#/definitions/duration" },
                "maintenance-db": { "description": "The database used to create and rename databases when restoring (default `postgres`).", "type": "string" },
                "offsite": bucket_schema(
                    "Also upload each backup, encrypted with age on this machine, to S3-compatible object storage; read back and checked before its manifest is written.",
                    &["url", "recipients"],
                    json!({ "recipients": { "description": "age public keys (`age1…`) the copy is encrypted to; the private key is needed only to restore.", "type": "array", "items": { "type": "string" }, "minItems": 1 } })
                )
            }
        })
    }
}

/// The test cases of one run and the stage's end.
struct Steps {
    cases: Vec<CaseResult>,
}

impl Steps {
    async fn pass(&mut self, cx: &mut StageContext, name: &str, started: Instant, detail: String) {
        cx.log
            .line(&format!(
                "{name}: {detail} ({:.2}s)",
                started.elapsed().as_secs_f64()
            ))
            .await;
        self.cases.push(CaseResult {
            name: name.to_owned(),
            status: CaseStatus::Passed,
            duration: started.elapsed(),
            location: None,
            output: detail,
        });
    }

    async fn fail(
        mut self,
        cx: &mut StageContext,
        name: &str,
        started: Instant,
        error: String,
    ) -> KindOutcome {
        cx.log.line(&format!("{name}: FAILED: {error}")).await;
        self.cases.push(CaseResult {
            name: name.to_owned(),
            status: CaseStatus::Failed {
                message: error.clone(),
                body: String::new(),
            },
            duration: started.elapsed(),
            location: None,
            output: String::new(),
        });
        KindOutcome {
            result: Err(format!("{name}: {error}")),
            cases: self.cases,
            outputs: Vec::new(),
            note: None,
        }
    }
}

/// What the preflight found, and the lock on the backup folder, held until the stage ends.
struct Preflight {
    client: tokio_postgres::Client,
    tools: tools::Tools,
    /// The database's size in bytes.
    size: i64,
    version: String,
    version_num: i64,
    /// The bucket of `offsite:`, reached once already.
    remote: Option<offsite::Remote>,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// The stage log, with the connection's password masked in every line.
struct MaskedLog<'a> {
    log: &'a mut crate::runner::output::OutputSink,
    conn: &'a ConnInfo,
}

impl restore::Progress for MaskedLog<'_> {
    fn line<'a>(&'a mut self, text: String) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.log.line(&self.conn.mask(&text)).await })
    }
}

/// The `pg_restore` that read the dump as it streamed, and why feeding it failed, if it did.
struct StreamChecked {
    check: tools::StreamCheck,
    feed_error: Option<String>,
}

impl StreamChecked {
    async fn finish(self, cancel: &tokio_util::sync::CancellationToken) -> Result<(), String> {
        let read = self.check.finish(cancel).await;
        match (read, self.feed_error) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(e)) => Err(format!("cannot feed the dump to pg_restore: {e}")),
            (Ok(()), None) => Ok(()),
        }
    }
}

/// The offsite upload running beside the dump.
struct Upload {
    task: offsite::UploadTask,
    /// Why writing into the upload failed during the dump, if it did.
    tee_error: Option<String>,
}

/// Waits for the upload, then reads the object back and compares its size and sha256 with
/// what was sent. `Ok(None)` when there is no offsite copy to make.
async fn read_back(
    remote: Option<&offsite::Remote>,
    upload: Option<Upload>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Option<offsite::RemoteCopy>, String> {
    let (Some(remote), Some(upload)) = (remote, upload) else {
        return Ok(None);
    };
    let url = upload.task.url.clone();
    let sent = upload.task.finish().await;
    // The upload's own error says why (the server went away); the tee's only that it stopped.
    let mut copy = match (sent, upload.tee_error) {
        (Ok(copy), None) => copy,
        (Err(e), _) | (Ok(_), Some(e)) => return Err(format!("cannot upload `{url}`: {e}")),
    };
    let verified = tokio::select! {
        v = remote.verify_object(&copy) => v,
        () = cancel.cancelled() => Err("cancelled".to_owned()),
    };
    if let Err(e) = verified {
        // An object that did not check out (or was not checked) must not stay behind, paid for
        // and listed as incomplete by every later run.
        if let Err(d) = remote.delete_object(&copy.url).await {
            return Err(format!("{e}; and it could not be deleted: {d}"));
        }
        return Err(e);
    }
    copy.verified_at = jiff::Timestamp::now().to_string();
    Ok(Some(copy))
}

/// A database name as part of a file or folder name.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn mb(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{bytes} bytes")
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

impl BuiltinStage for PgDump {
    fn describe(&self) -> String {
        let mut text = format!(
            "back up {} into {}",
            crate::pg::conn::hide_password(&self.url),
            self.dir
        );
        for rule in self.retention.rules() {
            text.push_str(&format!(", {rule}"));
        }
        if let Some(o) = &self.offsite {
            text.push_str(&format!(", encrypted copy to {}", o.settings.url));
        }
        if self.rehearse {
            text.push_str(", rehearse into a scratch database");
        }
        text
    }

    fn has_rollback(&self) -> bool {
        self.restore_on_failure
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move { self.backup(cx).await })
    }

    fn rollback<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move {
            let Some(path) = cx
                .outputs
                .get(&cx.stage)
                .and_then(|o| o.get("path"))
                .cloned()
            else {
                return KindOutcome::failed("this run made no backup to restore".into());
            };
            let conn = match conn_from(cx, &self.url) {
                Ok(c) => c,
                Err(e) => return KindOutcome::failed(e),
            };
            cx.log
                .line(&format!("restoring `{path}` into `{}`", conn.display()))
                .await;
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let target = restore::Target {
                conn: &conn,
                maintenance_db: &self.maintenance_db,
                env: &cx.env,
                cancel: &cx.cancel,
                progress: Some(tx),
            };
            let mut log = MaskedLog {
                log: &mut cx.log,
                conn: &conn,
            };
            let report = restore::reporting(
                restore::restore(std::path::Path::new(&path), &target),
                rx,
                &mut log,
            )
            .await;
            match report.error() {
                None => KindOutcome::passed(),
                Some(e) => KindOutcome::failed(conn.mask(&format!("restore failed at {e}"))),
            }
        })
    }
}

impl PgDump {
    async fn backup(&self, cx: &mut StageContext) -> KindOutcome {
        let mut steps = Steps { cases: Vec::new() };
        let started = Instant::now();
        let conn = match conn_from(cx, &self.url) {
            Ok(c) => c,
            Err(e) => return steps.fail(cx, "preflight", started, e).await,
        };
        let dir = cx.workdir.join(&self.dir);
        let preflight = self.preflight(cx, &conn, &dir).await;
        let found = match preflight {
            Ok(p) => p,
            Err(e) => return steps.fail(cx, "preflight", started, conn.mask(&e)).await,
        };
        steps
            .pass(
                cx,
                "preflight",
                started,
                format!(
                    "{} is PostgreSQL {}, {}; `{}`; {} of data",
                    conn.display(),
                    found.version,
                    found.tools.version,
                    found.tools.pg_dump.display(),
                    mb(found.size as u64)
                ),
            )
            .await;

        let id = format!("{}-{}", cx.run_id, file_safe(&conn.dbname));
        let partial = store::partial_path(&dir, &id);
        let started = Instant::now();
        // One password file for pg_dump and then pg_restore's verification.
        let passfile = match PassFile::create(&conn, &std::env::temp_dir()) {
            Ok(p) => p,
            Err(e) => return steps.fail(cx, "dump", started, conn.mask(&e)).await,
        };
        let env = conn.tool_env(&cx.env, passfile.as_ref());
        let dumped = self.dump(cx, &conn, &found, &env, &partial, &id).await;
        let (mut manifest, upload, stream_check) = match dumped {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                return steps.fail(cx, "dump", started, conn.mask(&e)).await;
            }
        };
        steps
            .pass(
                cx,
                "dump",
                started,
                format!(
                    "{} written and hashed (sha256 {}) from snapshot {}",
                    mb(manifest.size_bytes),
                    manifest.sha256,
                    manifest.snapshot
                ),
            )
            .await;

        let started = Instant::now();
        let file = partial.join(&manifest.file);
        // The offsite copy is read back while pg_restore reads the local one.
        let verify = async {
            stream_check.finish(&cx.cancel).await?;
            tools::toc(&found.tools, &file, &env, &cx.cancel).await
        };
        let (verified, counts, copied) = tokio::join!(
            verify,
            dump::row_counts(&found.client),
            read_back(found.remote.as_ref(), upload, &cx.cancel)
        );
        let _ = found.client.batch_execute("ROLLBACK").await;
        let offsite_started = started;
        match (verified, counts) {
            (Ok((toc, entries)), Ok(counts)) => {
                manifest.toc_sha256 = toc;
                manifest.toc_entries = entries;
                manifest.verify_ms = started.elapsed().as_millis() as u64;
                let tables = counts.len();
                manifest.row_counts = counts;
                steps
                    .pass(
                        cx,
                        "verify",
                        started,
                        format!(
                            "pg_restore read every block; {entries} table-of-contents entries; \
                             {tables} tables counted in the dump's snapshot"
                        ),
                    )
                    .await;
            }
            (Err(e), _) | (_, Err(e)) => {
                let _ = std::fs::remove_dir_all(&partial);
                if let (Some(remote), Ok(Some(_))) = (&found.remote, &copied) {
                    let _ = remote.delete(&id, Some(&manifest.file)).await;
                }
                return steps.fail(cx, "verify", started, conn.mask(&e)).await;
            }
        }

        // The remote manifest is the offsite copy's commit point; it is written before the
        // local one, which then records the copy.
        manifest.finished_at = jiff::Timestamp::now().to_string();
        let offsite = match (copied, &found.remote) {
            (Ok(Some(copy)), Some(remote)) => {
                manifest.offsite = Some(copy);
                match remote.put_manifest(&manifest).await {
                    Ok(()) => Ok(manifest.offsite.clone()),
                    Err(e) => {
                        manifest.offsite = None;
                        let _ = remote.delete(&id, Some(&manifest.file)).await;
                        Err(e)
                    }
                }
            }
            (other, _) => other,
        };

        let started = Instant::now();
        let final_path = dir.join(&id);
        let committed = manifest
            .write(&partial)
            .and_then(|()| std::fs::rename(&partial, &final_path))
            .and_then(|()| store::fsync_dir(&dir));
        if let Err(e) = committed {
            let _ = std::fs::remove_dir_all(&partial);
            return steps
                .fail(
                    cx,
                    "commit",
                    started,
                    format!("cannot commit the backup: {e}"),
                )
                .await;
        }
        steps
            .pass(
                cx,
                "commit",
                started,
                format!("manifest written, backup `{}`", final_path.display()),
            )
            .await;

        match offsite {
            Ok(Some(copy)) => {
                steps
                    .pass(
                        cx,
                        "offsite",
                        offsite_started,
                        format!(
                            "{} encrypted to {} age recipient(s), uploaded to `{}` and read back (sha256 {})",
                            mb(copy.size_bytes),
                            copy.recipients.len(),
                            copy.url,
                            copy.sha256
                        ),
                    )
                    .await;
            }
            Ok(None) => {}
            // The local backup stands; older copies are not pruned while the newest has no
            // offsite copy.
            Err(e) => {
                return steps
                    .fail(
                        cx,
                        "offsite",
                        offsite_started,
                        format!("{e}; the local backup `{id}` was kept"),
                    )
                    .await;
            }
        }

        let started = Instant::now();
        let mut pruned = self.prune(&dir, &id);
        if let Some(remote) = &found.remote {
            pruned.extend(self.prune_remote(remote, &id).await);
        }
        for line in &pruned {
            cx.log.line(line).await;
        }
        steps
            .pass(
                cx,
                "retention",
                started,
                format!("{} entries considered", pruned.len()),
            )
            .await;

        let mut outputs = vec![
            ("backup-id".to_owned(), id.clone()),
            ("path".to_owned(), final_path.display().to_string()),
            ("sha256".to_owned(), manifest.sha256.clone()),
        ];
        if self.rehearse {
            let started = Instant::now();
            match self.rehearsal(cx, &conn, &final_path).await {
                Ok(url) => {
                    steps
                        .pass(cx, "rehearse", started, format!("restored into `{url}`"))
                        .await;
                    outputs.push(("rehearsal-url".to_owned(), url));
                }
                Err(e) => return steps.fail(cx, "rehearse", started, conn.mask(&e)).await,
            }
        }
        KindOutcome {
            result: Ok(()),
            cases: steps.cases,
            outputs,
            note: None,
        }
    }

    async fn preflight(
        &self,
        cx: &mut StageContext,
        conn: &ConnInfo,
        dir: &std::path::Path,
    ) -> Result<Preflight, String> {
        let client = conn.connect().await?;
        let (version, version_num, size) = dump::server_facts(&client).await?;
        let tools = tools::find((version_num / 10_000) as u32, &cx.env)?;
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        }
        match crate::pg::store::free_bytes(dir) {
            Some(free) if free < size as u64 => {
                return Err(format!(
                    "`{}` has {} free, less than the database's {}; free space or choose another `dir`",
                    dir.display(),
                    mb(free),
                    mb(size as u64)
                ));
            }
            Some(_) => {}
            None => {
                cx.log
                    .line(&format!(
                        "cannot tell the free space of `{}`; dumping anyway",
                        dir.display()
                    ))
                    .await;
            }
        }
        let remote = match &self.offsite {
            Some(o) => {
                let remote = offsite::Remote::open(&o.settings, &cx.env)?;
                remote.check().await?;
                Some(remote)
            }
            None => None,
        };
        let lock = store::lock(dir)?;
        for swept in store::sweep(dir) {
            cx.log
                .line(&format!(
                    "removed `{swept}`, left by a backup that did not finish"
                ))
                .await;
        }
        // Copies an interrupted restore of this database left; not being allowed to drop them
        // does not stop a backup.
        match restore::sweep_copies(&client, &conn.dbname).await {
            Ok(dropped) => {
                for name in dropped {
                    cx.log
                        .line(&format!(
                            "dropped {name}, left by a restore that did not finish"
                        ))
                        .await;
                }
            }
            Err(e) => {
                cx.log
                    .line(&format!("cannot look for copies left by a restore: {e}"))
                    .await;
            }
        }
        Ok(Preflight {
            client,
            tools,
            size,
            version,
            version_num,
            remote,
            _lock: lock,
        })
    }

    async fn dump(
        &self,
        cx: &mut StageContext,
        conn: &ConnInfo,
        found: &Preflight,
        env: &[(String, String)],
        partial: &std::path::Path,
        id: &str,
    ) -> Result<(Manifest, Option<Upload>, StreamChecked), String> {
        let Preflight {
            client,
            tools,
            version,
            version_num,
            ..
        } = found;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(partial)
            .map_err(|e| format!("cannot create `{}`: {e}", partial.display()))?;
        let (snapshot, created_at) = dump::begin_snapshot(client).await?;
        let mut database = dump::database_properties(client).await?;
        database.host = conn.host.clone();
        database.port = conn.port;
        let file = format!("{}.dump", file_safe(&conn.dbname));
        let started = Instant::now();
        let target = partial.join(&file);
        // pg_restore reads every block as it streams, instead of reading the file again after.
        let (check, input) = tools::StreamCheck::start(tools, env)?;
        let mut sinks: Vec<Box<dyn dump::Sink>> = vec![Box::new(input)];
        let task = match (&found.remote, &self.offsite) {
            (Some(remote), Some(o)) => {
                let recipients = offsite::parse_recipients(&o.recipients)?;
                let (tee, task) = remote.start_upload(id, &file, &recipients)?;
                sinks.push(Box::new(tee));
                Some(task)
            }
            _ => None,
        };
        // The snapshot's transaction stays open after the dump: the row counts are taken in it
        // while the table of contents is read and the offsite copy read back (see `backup`),
        // so they describe exactly what was dumped without competing with pg_dump for the CPU.
        let dumped = dump::dump_to_file(
            tools,
            &snapshot,
            self.lock_wait_timeout.as_millis(),
            env,
            &target,
            sinks,
            &cx.cancel,
        )
        .await;
        let dumped = match dumped {
            Ok(d) => d,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        };
        for line in conn.mask(&dumped.warnings).lines() {
            cx.log.line(&format!("pg_dump: {line}")).await;
        }
        let dump_ms = started.elapsed().as_millis() as u64;
        let upload = task.map(|task| Upload {
            task,
            tee_error: dumped.sink_error(offsite::SINK).map(str::to_owned),
        });
        let stream_check = StreamChecked {
            check,
            feed_error: dumped.sink_error(tools::STREAM_CHECK).map(str::to_owned),
        };
        let manifest = Manifest {
            format: store::FORMAT.into(),
            backup_id: id.to_owned(),
            run_id: cx.run_id.clone(),
            stage: cx.stage.clone(),
            created_at,
            finished_at: String::new(),
            database,
            server_version: version.to_owned(),
            server_version_num: *version_num,
            pg_dump_version: tools.version.clone(),
            snapshot,
            file,
            size_bytes: dumped.size,
            sha256: dumped.sha256,
            toc_sha256: String::new(),
            toc_entries: 0,
            row_counts: std::collections::BTreeMap::new(),
            dump_ms,
            verify_ms: 0,
            offsite: None,
            drills: Vec::new(),
            manifest_sha256: None,
        };
        Ok((manifest, upload, stream_check))
    }

    /// Applies retention (or, with `dry-run-retention`, only says what it would do), through
    /// the same [`store::prune`] as `portcullis backups prune`.
    fn prune(&self, dir: &std::path::Path, current: &str) -> Vec<String> {
        let pruned = store::prune(
            dir,
            self.retention,
            jiff::Timestamp::now(),
            Some(current),
            self.dry_run_retention,
        );
        let pruned = match pruned {
            Ok(p) => p,
            Err(e) => return vec![format!("retention: {e}")],
        };
        pruned
            .into_iter()
            .filter_map(|p| match p {
                Pruned::Kept { id, reason } => Some(format!("retention: keep `{id}`: {reason}")),
                Pruned::Deleted {
                    id,
                    reason,
                    dry_run: true,
                } => Some(format!(
                    "retention: would delete `{id}` ({reason}); dry run"
                )),
                Pruned::Deleted { id, reason, .. } => {
                    Some(format!("retention: deleted `{id}` ({reason})"))
                }
                Pruned::NotDeleted { id, error, .. } => {
                    Some(format!("retention: cannot delete `{id}`: {error}"))
                }
                Pruned::Corrupt { id, reason } => Some(format!(
                    "retention: `{id}` is not a valid backup ({reason}); left for you to inspect"
                )),
                // The preflight removed what killed runs left, under the same lock.
                Pruned::Incomplete { .. } => None,
            })
            .collect()
    }

    /// Applies retention to the offsite copies, with the same policy as the local ones.
    async fn prune_remote(&self, remote: &offsite::Remote, current: &str) -> Vec<String> {
        let listed = match remote.list().await {
            Ok(l) => l,
            Err(e) => return vec![format!("retention: {e}; no offsite copy was deleted")],
        };
        let mut lines = Vec::new();
        let mut valid = Vec::new();
        for entry in &listed {
            match entry {
                offsite::RemoteListed::Valid { manifest } => {
                    if let Ok(t) = manifest.created_at.parse::<jiff::Timestamp>() {
                        valid.push((manifest.backup_id.clone(), t));
                    }
                }
                offsite::RemoteListed::Corrupt { id, reason } => lines.push(format!(
                    "retention: offsite `{id}` is not a valid backup ({reason}); left for you to inspect"
                )),
                offsite::RemoteListed::Incomplete { id } => lines.push(format!(
                    "retention: offsite `{id}` has no manifest (an upload that did not finish); left for you to inspect"
                )),
            }
        }
        let plan = store::plan_retention(
            &valid,
            self.retention,
            jiff::Timestamp::now(),
            Some(current),
        );
        for d in plan {
            let file = listed.iter().find_map(|l| match l {
                offsite::RemoteListed::Valid { manifest } if manifest.backup_id == d.id => {
                    Some(manifest.file.clone())
                }
                _ => None,
            });
            if !d.delete {
                lines.push(format!("retention: keep offsite `{}`: {}", d.id, d.reason));
            } else if self.dry_run_retention {
                lines.push(format!(
                    "retention: would delete offsite `{}` ({}); dry run",
                    d.id, d.reason
                ));
            } else {
                match remote.delete(&d.id, file.as_deref()).await {
                    Ok(()) => lines.push(format!(
                        "retention: deleted offsite `{}` ({})",
                        d.id, d.reason
                    )),
                    Err(e) => {
                        lines.push(format!("retention: cannot delete offsite `{}`: {e}", d.id))
                    }
                }
            }
        }
        lines
    }

    /// Restores the new backup into `<db>__rehearsal_<stamp>` (dropping earlier rehearsal
    /// copies of the same database) and returns its URL, whose password is in a 0600 file in
    /// the run folder.
    async fn rehearsal(
        &self,
        cx: &mut StageContext,
        conn: &ConnInfo,
        backup: &std::path::Path,
    ) -> Result<String, String> {
        let prefix = format!("{}__rehearsal_", conn.dbname);
        let name = format!("{prefix}{}", restore::stamp());
        let admin = conn.with_dbname(&self.maintenance_db).connect().await?;
        for row in admin
            .query(
                "select datname::text from pg_database where starts_with(datname, $1)",
                &[&prefix],
            )
            .await
            .map_err(|e| crate::pg::conn::error_text(&e))?
        {
            let old: String = row.get(0);
            restore::drop_database(&admin, &old).await?;
            cx.log
                .line(&format!("dropped the earlier rehearsal database `{old}`"))
                .await;
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let target = restore::Target {
            conn,
            maintenance_db: &self.maintenance_db,
            env: &cx.env,
            cancel: &cx.cancel,
            progress: Some(tx),
        };
        let mut log = MaskedLog {
            log: &mut cx.log,
            conn,
        };
        let report = restore::reporting(
            restore::restore_copy(backup, &name, &target, false),
            rx,
            &mut log,
        )
        .await;
        if let Some(e) = report.error() {
            return Err(e);
        }
        let copy = conn.with_dbname(&name);
        let passfile: Option<PathBuf> = if copy.password.is_some() {
            let path = cx.run_dir.join(format!(
                "{}.pgpass",
                crate::config::pipeline::file_stem(&cx.stage)
            ));
            PassFile::persist(&copy, &path)?;
            Some(path)
        } else {
            None
        };
        Ok(copy.url_without_password(passfile.as_deref()))
    }
}
