//! Bringing a backup back: into a fresh database, checked, then swapped in by name.
//!
//! The main function is [`restore`]. `pg_restore --clean` in place cannot undo a failed
//! migration: it drops only the objects the dump holds, so tables the migration created stay,
//! and a foreign key the migration added onto a dumped table makes the drop fail. So the dump
//! is restored into `<db>__restore_<stamp>` (owner, encoding and locale of the original) in one
//! transaction, its row counts are compared with the manifest, the database-level settings,
//! privileges and comment that `pg_dump` leaves out are applied, and only then are the names
//! swapped: the live database is closed to new connections, its sessions are ended, and in one
//! transaction it is renamed `<db>__failed_<stamp>` (kept for forensics) while the fresh one
//! takes its name, so a crash never leaves the name empty. Until then the live database is
//! untouched, and anything that fails before then drops the fresh copy. Roles cannot be restored by a dump, so missing ones are reported
//! before anything is created.
//!
//! [`restore_copy`] is the first half alone, for a rehearsal database.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::conn::{ConnInfo, PassFile, error_text};
use super::store::{Manifest, hash_file};
use super::tools::{self, Tools};
use super::{ident, literal};

/// One step of a restore, as the report shows it.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) duration: Duration,
    pub(crate) result: Result<String, String>,
}

impl Step {
    /// `ok    pg_restore (1.20s): …` or `FAIL  check roles (0.01s): …`.
    pub(crate) fn line(&self) -> String {
        let secs = self.duration.as_secs_f64();
        match &self.result {
            Ok(detail) => format!("ok    {} ({secs:.2}s): {detail}", self.name),
            Err(e) => format!("FAIL  {} ({secs:.2}s): {e}", self.name),
        }
    }
}

/// Everything a restore did, step by step; `Err` in the last step means it stopped there.
/// Each step is also sent to `progress` as it ends, so a long restore is reported while it runs.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) steps: Vec<Step>,
    progress: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Report {
    fn new(target: &Target<'_>) -> Report {
        Report {
            steps: Vec::new(),
            progress: target.progress.clone(),
        }
    }

    pub(crate) fn error(&self) -> Option<String> {
        self.steps
            .iter()
            .find_map(|s| s.result.as_ref().err().map(|e| format!("{}: {e}", s.name)))
    }

    fn record<T>(
        &mut self,
        name: &str,
        started: Instant,
        result: Result<T, String>,
        detail: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        let (stored, value) = match result {
            Ok(v) => (Ok(detail(&v)), Some(v)),
            Err(e) => (Err(e), None),
        };
        let step = Step {
            name: name.to_owned(),
            duration: started.elapsed(),
            result: stored,
        };
        if let Some(progress) = &self.progress {
            let _ = progress.send(step.line());
        }
        self.steps.push(step);
        value
    }
}

/// What a restore needs besides the backup.
pub(crate) struct Target<'a> {
    /// The live database's connection (its `dbname` is the database replaced).
    pub(crate) conn: &'a ConnInfo,
    /// The database to connect to for `CREATE`/`RENAME DATABASE` (default `postgres`).
    pub(crate) maintenance_db: &'a str,
    pub(crate) env: &'a [(String, String)],
    pub(crate) cancel: &'a CancellationToken,
    /// Where each step's line goes as soon as it ends.
    pub(crate) progress: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

/// Where a restore's step lines go while it runs: the stage log, or stderr for the CLI.
pub(crate) trait Progress: Send {
    fn line<'a>(&'a mut self, text: String) -> crate::stages::BoxFuture<'a, ()>;
}

/// Runs a restore while handing each step's line to `out` as it ends.
pub(crate) async fn reporting<F>(
    work: F,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    out: &mut dyn Progress,
) -> Report
where
    F: std::future::Future<Output = Report>,
{
    let mut work = std::pin::pin!(work);
    let report = loop {
        tokio::select! {
            report = &mut work => break report,
            Some(line) = rx.recv() => out.line(line).await,
        }
    };
    while let Ok(line) = rx.try_recv() {
        out.line(line).await;
    }
    report
}

/// A compact UTC stamp for database names (`20261122t153000`), lower case so it needs no quoting
/// in the user's own SQL.
pub(crate) fn stamp() -> String {
    jiff::Timestamp::now().strftime("%Y%m%dt%H%M%S").to_string()
}

/// Restores `backup` over the live database by building a fresh one and swapping names.
pub(crate) async fn restore(backup: &Path, target: &Target<'_>) -> Report {
    let mut report = Report::new(target);
    let live = target.conn.dbname.clone();
    let stamp = stamp();
    let fresh = format!("{live}__restore_{stamp}");
    let failed = format!("{live}__failed_{stamp}");
    let Some(prepared) = prepare(backup, target, &mut report).await else {
        return report;
    };
    let started = Instant::now();
    if let Ok(dropped) = sweep_copies(&prepared.admin, &live).await
        && !dropped.is_empty()
    {
        report.record(
            "drop leftovers",
            started,
            Ok::<_, String>(dropped),
            |names| {
                format!(
                    "{} left by an interrupted restore: {}",
                    crate::text::plural(names.len(), "copy"),
                    names.join(", ")
                )
            },
        );
    }
    if !build_copy(&prepared, &fresh, target, &mut report).await {
        return report;
    }
    if target.cancel.is_cancelled() {
        let started = Instant::now();
        let dropped = drop_database(&prepared.admin, &fresh).await;
        report.record(&format!("drop `{fresh}`"), started, dropped, |()| {
            "interrupted before the swap; the live database was not touched".into()
        });
        report.record(
            "swap",
            Instant::now(),
            Err::<(), _>("interrupted".to_owned()),
            |()| String::new(),
        );
        return report;
    }
    let started = Instant::now();
    let unmark = unmark(&fresh, &prepared.manifest);
    let swapped = swap(&prepared.admin, &live, &fresh, &failed, &unmark).await;
    report.record("swap", started, swapped, |kept| match kept {
        true => format!("`{fresh}` is now `{live}`; the replaced database is kept as `{failed}`"),
        false => format!("`{fresh}` is now `{live}` (there was no database `{live}`)"),
    });
    report
}

/// Restores `backup` into a new database `name` (dropped first if a previous run left it).
///
/// With `keep_mark` the copy keeps portcullis's mark (a restore drill's, dropped at its end), so
/// that [`sweep_marked`] can tell a copy whose drill was killed from one a drill still uses.
pub(crate) async fn restore_copy(
    backup: &Path,
    name: &str,
    target: &Target<'_>,
    keep_mark: bool,
) -> Report {
    let mut report = Report::new(target);
    let Some(prepared) = prepare(backup, target, &mut report).await else {
        return report;
    };
    if build_copy(&prepared, name, target, &mut report).await && !keep_mark {
        let started = Instant::now();
        let unmarked = prepared
            .admin
            .batch_execute(&unmark(name, &prepared.manifest))
            .await
            .map_err(|e| error_text(&e));
        report.record("comment", started, unmarked, |()| {
            "the database's own comment replaces portcullis's mark".into()
        });
    }
    report
}

/// What a database portcullis creates to restore into carries in its comment until it is
/// swapped in: only such a database is ever dropped as a leftover.
const COPY_MARK: &str = "portcullis restore copy";

/// The mark of a copy made by this process: its boot and pid tell whether the restore that
/// made it may still run.
fn copy_mark() -> String {
    format!(
        "{COPY_MARK}; boot={}; pid={}",
        boot_id(),
        std::process::id()
    )
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|b| b.trim().to_owned())
        .unwrap_or_default()
}

/// Whether a copy with this mark was left by a restore that has ended: one of this machine
/// whose process is gone, or one older than a day.
fn abandoned(mark: &str, age: Duration) -> bool {
    let field = |key: &str| {
        mark.split("; ")
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
    };
    let here = field("boot").is_some_and(|b| !b.is_empty() && b == boot_id());
    let gone = field("pid")
        .and_then(|p| p.parse::<i32>().ok())
        .is_some_and(|pid| {
            pid > 0
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    == Err(nix::errno::Errno::ESRCH)
        });
    (here && gone) || age > Duration::from_secs(24 * 3600)
}

/// Drops the `<live>__restore_<stamp>` copies that interrupted restores left behind: only
/// databases with portcullis's mark, whose restore has ended. Returns their names.
pub(crate) async fn sweep_copies(
    admin: &tokio_postgres::Client,
    live: &str,
) -> Result<Vec<String>, String> {
    sweep_marked(admin, &format!("{live}__restore_")).await
}

/// Drops the databases named `<prefix><stamp>` that carry portcullis's mark and whose process
/// has ended (or that are over a day old). Returns their names.
pub(crate) async fn sweep_marked(
    admin: &tokio_postgres::Client,
    prefix: &str,
) -> Result<Vec<String>, String> {
    let rows = admin
        .query(
            "select datname::text, shobj_description(oid, 'pg_database') \
             from pg_database where starts_with(datname, $1) \
             and starts_with(shobj_description(oid, 'pg_database'), $2)",
            &[&prefix, &COPY_MARK],
        )
        .await
        .map_err(|e| error_text(&e))?;
    let mut dropped = Vec::new();
    for row in rows {
        let (name, mark): (String, String) = (row.get(0), row.get(1));
        // The name's stamp is when the restore began ([`stamp`]); a name without one is not a
        // copy portcullis made.
        let Some(age) = name
            .get(prefix.len()..)
            .and_then(|stamp| jiff::civil::DateTime::strptime("%Y%m%dt%H%M%S", stamp).ok())
            .and_then(|at| at.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|at| {
                let secs = jiff::Timestamp::now().as_second() - at.timestamp().as_second();
                Duration::from_secs(secs.max(0).unsigned_abs())
            })
        else {
            continue;
        };
        if abandoned(&mark, age) {
            drop_database(admin, &name).await?;
            dropped.push(format!("`{name}`"));
        }
    }
    Ok(dropped)
}

/// SQL giving a copy the original database's comment, which removes portcullis's mark.
fn unmark(name: &str, manifest: &Manifest) -> String {
    format!(
        "COMMENT ON DATABASE {} IS {}",
        ident(name),
        manifest
            .database
            .comment
            .as_deref()
            .map_or_else(|| "NULL".to_owned(), literal)
    )
}

/// A checked backup, the tools to restore it, and a connection to the maintenance database.
struct Prepared<'a> {
    backup: &'a Path,
    manifest: Manifest,
    tools: Tools,
    admin: tokio_postgres::Client,
}

/// Checks the backup and the roles, finds the tools, and connects to the maintenance database.
async fn prepare<'a>(
    backup: &'a Path,
    target: &Target<'_>,
    report: &mut Report,
) -> Option<Prepared<'a>> {
    let started = Instant::now();
    let manifest = report.record("check backup", started, check_backup(backup).await, |m| {
        format!(
            "`{}`: manifest and sha256 {} match, {} bytes",
            m.backup_id,
            &m.sha256[..12.min(m.sha256.len())],
            m.size_bytes
        )
    })?;
    let started = Instant::now();
    let admin_conn = target.conn.with_dbname(target.maintenance_db);
    let admin = report.record("connect", started, admin_conn.connect().await, |_| {
        format!("to `{}`", admin_conn.display())
    })?;
    let started = Instant::now();
    let missing = missing_roles(&admin, &manifest.database.roles).await;
    report.record("check roles", started, missing, |_| {
        format!(
            "all {} roles the backup refers to exist",
            manifest.database.roles.len()
        )
    })?;
    let started = Instant::now();
    let major = (manifest.server_version_num / 10_000) as u32;
    let tools = report.record(
        "find pg_restore",
        started,
        tools::find(major, target.env),
        |t| format!("`{}`", t.pg_restore.display()),
    )?;
    Some(Prepared {
        backup,
        manifest,
        tools,
        admin,
    })
}

/// The manifest checks out and the dump's sha256 is the recorded one.
pub(crate) async fn check_backup(backup: &Path) -> Result<Manifest, String> {
    let manifest = Manifest::read(backup)?;
    let file = backup.join(&manifest.file);
    // Opening a FIFO or a device would block or read forever; a dump is a plain file.
    match std::fs::symlink_metadata(&file) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(format!(
                "`{}` is not a regular file: a dump is a plain file written by `pg-dump`",
                manifest.file
            ));
        }
        Err(e) => return Err(format!("cannot read `{}`: {e}", manifest.file)),
    }
    let hashed = tokio::task::spawn_blocking(move || hash_file(&file))
        .await
        .map_err(|e| format!("cannot hash the dump: {e}"))?
        .map_err(|e| format!("cannot read `{}`: {e}", manifest.file))?;
    if hashed.0 != manifest.sha256 || hashed.1 != manifest.size_bytes {
        return Err(format!(
            "`{}` has sha256 {} and {} bytes, the manifest says {} and {} bytes: the dump was changed or damaged",
            manifest.file, hashed.0, hashed.1, manifest.sha256, manifest.size_bytes
        ));
    }
    Ok(manifest)
}

async fn missing_roles(admin: &tokio_postgres::Client, roles: &[String]) -> Result<(), String> {
    let rows = admin
        .query("select rolname::text from pg_roles", &[])
        .await
        .map_err(|e| error_text(&e))?;
    let existing: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let missing: Vec<&String> = roles.iter().filter(|r| !existing.contains(r)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "roles missing on this server: {}; create them (e.g. from `pg_dumpall --globals-only`) and try again; nothing was changed",
            missing
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Drops database `name` if it exists, ending its sessions.
pub(crate) async fn drop_database(
    admin: &tokio_postgres::Client,
    name: &str,
) -> Result<(), String> {
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(name)
        ))
        .await
        .map_err(|e| error_text(&e))
}

/// Creates `name`, restores into it in one transaction, compares row counts and applies the
/// database-level properties; drops it again on any failure.
async fn build_copy(
    prepared: &Prepared<'_>,
    name: &str,
    target: &Target<'_>,
    report: &mut Report,
) -> bool {
    let admin = &prepared.admin;
    let db = &prepared.manifest.database;
    let started = Instant::now();
    let create = async {
        drop_database(admin, name).await?;
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0 OWNER {} ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                ident(name),
                ident(&db.owner),
                literal(&db.encoding),
                literal(&db.collate),
                literal(&db.ctype)
            ))
            .await
            .map_err(|e| error_text(&e))?;
        admin
            .batch_execute(&format!(
                "COMMENT ON DATABASE {} IS {}",
                ident(name),
                literal(&copy_mark())
            ))
            .await
            .map_err(|e| error_text(&e))
    };
    if report
        .record(&format!("create `{name}`"), started, create.await, |()| {
            format!("owner `{}`, {} {}", db.owner, db.encoding, db.collate)
        })
        .is_none()
    {
        return false;
    }
    let ok = fill_copy(prepared, name, target, report).await;
    if !ok {
        let started = Instant::now();
        let dropped = drop_database(admin, name).await;
        report.record(&format!("drop `{name}`"), started, dropped, |()| {
            "the incomplete copy is gone; the live database was not touched".into()
        });
    }
    ok
}

async fn fill_copy(
    prepared: &Prepared<'_>,
    name: &str,
    target: &Target<'_>,
    report: &mut Report,
) -> bool {
    let Prepared {
        backup,
        manifest,
        tools,
        admin,
    } = prepared;
    let conn = target.conn.with_dbname(name);
    let started = Instant::now();
    let restored = async {
        let passfile = PassFile::create(&conn, &std::env::temp_dir())?;
        let env = conn.tool_env(target.env, passfile.as_ref());
        let run = tools::run(
            &tools.pg_restore,
            &[
                "--single-transaction".into(),
                "--exit-on-error".into(),
                "--no-password".into(),
                format!(
                    "--dbname=dbname='{}'",
                    name.replace('\\', "\\\\").replace('\'', "\\'")
                ),
                backup.join(&manifest.file).display().to_string(),
            ],
            &env,
            target.cancel,
            1 << 20,
        )
        .await?;
        if run.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_restore failed: {}",
                conn.mask(&run.stderr_tail())
            ))
        }
    };
    if report
        .record("pg_restore", started, restored.await, |()| {
            format!(
                "`{}` restored into `{name}` in one transaction",
                manifest.file
            )
        })
        .is_none()
    {
        return false;
    }
    let started = Instant::now();
    let counted = async {
        let client = conn.connect().await?;
        let counts = super::dump::row_counts(&client).await?;
        let differ: Vec<String> = manifest
            .row_counts
            .iter()
            .filter(|(t, n)| counts.get(*t) != Some(n))
            .map(|(t, n)| {
                format!(
                    "`{t}`: {} rows, the backup had {n}",
                    counts.get(t).copied().unwrap_or(-1)
                )
            })
            .collect();
        if differ.is_empty() {
            Ok(counts.len())
        } else {
            Err(differ.join("; "))
        }
    };
    if report
        .record("compare row counts", started, counted.await, |n| {
            format!("{n} tables, every count as in the backup")
        })
        .is_none()
    {
        return false;
    }
    let started = Instant::now();
    let applied = apply_properties(admin, name, manifest).await;
    report
        .record("database settings", started, applied, |n| {
            format!("{n} statements re-applied (settings, privileges, limit)")
        })
        .is_some()
}

/// A stored setting's value as SQL. List settings are stored as their elements, each
/// double-quoted where needed (`"$user", public`); quoting that whole text as one literal would
/// make a one-element list of it, so each element becomes its own literal, as `pg_dumpall` does.
fn setting_value(name: &str, value: &str) -> String {
    const LISTS: &[&str] = &[
        "search_path",
        "temp_tablespaces",
        "session_preload_libraries",
        "shared_preload_libraries",
        "local_preload_libraries",
    ];
    if !LISTS.contains(&name.to_ascii_lowercase().as_str()) {
        return literal(value);
    }
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            c if c.is_whitespace() && !quoted => {}
            c => current.push(c),
        }
    }
    items.push(current);
    items
        .iter()
        .map(|i| literal(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ALTER DATABASE … SET`, `ALTER ROLE … IN DATABASE … SET`, `GRANT … ON DATABASE`, connection
/// limit and comment, as the manifest recorded them.
async fn apply_properties(
    admin: &tokio_postgres::Client,
    name: &str,
    manifest: &Manifest,
) -> Result<usize, String> {
    let db = &manifest.database;
    let mut sql = Vec::new();
    for setting in &db.settings {
        if let Some((k, v)) = setting.split_once('=') {
            sql.push(format!(
                "ALTER DATABASE {} SET {} = {}",
                ident(name),
                ident(k),
                setting_value(k, v)
            ));
        }
    }
    for (role, settings) in &db.role_settings {
        for setting in settings {
            if let Some((k, v)) = setting.split_once('=') {
                sql.push(format!(
                    "ALTER ROLE {} IN DATABASE {} SET {} = {}",
                    ident(role),
                    ident(name),
                    ident(k),
                    setting_value(k, v)
                ));
            }
        }
    }
    if let Some(grants) = &db.grants {
        sql.push(format!(
            "REVOKE ALL ON DATABASE {} FROM PUBLIC",
            ident(name)
        ));
        for grant in grants {
            let mut parts = grant.split(':');
            let (Some(grantee), Some(privilege)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !matches!(privilege, "CREATE" | "CONNECT" | "TEMPORARY") {
                continue;
            }
            let to = if grantee == "PUBLIC" {
                "PUBLIC".to_owned()
            } else {
                ident(grantee)
            };
            let option = if parts.next() == Some("grantable") {
                " WITH GRANT OPTION"
            } else {
                ""
            };
            sql.push(format!(
                "GRANT {privilege} ON DATABASE {} TO {to}{option}",
                ident(name)
            ));
        }
    }
    if db.connection_limit != -1 {
        sql.push(format!(
            "ALTER DATABASE {} CONNECTION LIMIT {}",
            ident(name),
            db.connection_limit
        ));
    }
    // The comment is applied with the swap: until then it is portcullis's mark.
    for statement in &sql {
        admin
            .batch_execute(statement)
            .await
            .map_err(|e| format!("`{statement}`: {}", error_text(&e)))?;
    }
    Ok(sql.len())
}

/// Closes `live`, ends its sessions and swaps names; `Ok(true)` when a live database was
/// renamed away (it then accepts connections again, under its forensic name).
///
/// Both renames are sent as one transaction in one message: whenever portcullis or its
/// connection dies, the server commits both or neither, so the live name never points at
/// nothing.
async fn swap(
    admin: &tokio_postgres::Client,
    live: &str,
    fresh: &str,
    failed: &str,
    unmark: &str,
) -> Result<bool, String> {
    let exists = admin
        .query_opt("select 1 from pg_database where datname = $1", &[&live])
        .await
        .map_err(|e| error_text(&e))?
        .is_some();
    let renames = if exists {
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS false",
                ident(live)
            ))
            .await
            .map_err(|e| error_text(&e))?;
        format!(
            "BEGIN; {unmark}; ALTER DATABASE {} RENAME TO {}; ALTER DATABASE {} RENAME TO {}; COMMIT",
            ident(live),
            ident(failed),
            ident(fresh),
            ident(live)
        )
    } else {
        format!(
            "BEGIN; {unmark}; ALTER DATABASE {} RENAME TO {}; COMMIT",
            ident(fresh),
            ident(live)
        )
    };
    let mut attempt = 0;
    loop {
        if exists {
            admin
                .query(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
                    &[&live],
                )
                .await
                .map_err(|e| error_text(&e))?;
        }
        match admin.batch_execute(&renames).await {
            Ok(()) => break,
            Err(e) => {
                let _ = admin.batch_execute("ROLLBACK").await;
                if attempt < 10 && e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE)
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                if exists {
                    let _ = admin
                        .batch_execute(&format!(
                            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                            ident(live)
                        ))
                        .await;
                }
                return Err(format!(
                    "cannot swap `{fresh}` and `{live}`: {}; `{live}` is unchanged and open again, the restored copy is `{fresh}`",
                    error_text(&e)
                ));
            }
        }
    }
    if exists {
        let _ = admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                ident(failed)
            ))
            .await;
    }
    Ok(exists)
}

#[cfg(test)]
mod tests {
    use super::setting_value;

    #[test]
    fn list_settings_keep_their_elements() {
        assert_eq!(setting_value("work_mem", "8MB"), "'8MB'");
        assert_eq!(
            setting_value("search_path", "\"$user\", public"),
            "'$user', 'public'"
        );
        assert_eq!(
            setting_value("search_path", "\"My \"\"Schema\"\"\", b"),
            "'My \"Schema\"', 'b'"
        );
        assert_eq!(setting_value("DateStyle", "ISO, MDY"), "'ISO, MDY'");
    }
}
