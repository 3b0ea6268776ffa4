//! What a backup reads from the server, and the dump itself, hashed as it streams.
//!
//! The main function is [`dump_to_file`]: `pg_dump --format=custom` writes to a pipe, and a
//! dedicated thread (not the single-threaded runtime, which must keep serving the snapshot's
//! connection) hashes each block with sha256 and writes it to the file, then fsyncs it. The
//! dump imports the snapshot that [`begin_snapshot`] exported; [`row_counts`] and
//! [`database_properties`] read the same snapshot, so the manifest describes exactly what the
//! dump holds even while the application keeps writing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::conn::error_text;
use super::store::{Database, hex};
use super::{ident, tools::Tools};
use crate::supervisor::child;

const SYSTEM_SCHEMAS: &str = "n.nspname not in ('pg_catalog', 'information_schema') \
     and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'";

/// Opens a `REPEATABLE READ READ ONLY` transaction and exports its snapshot; returns the
/// snapshot id and the server time it was taken at.
pub(crate) async fn begin_snapshot(client: &Client) -> Result<(String, String), String> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| error_text(&e))?;
    let row = client
        .query_one(
            "select pg_export_snapshot(), to_char(now() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
            &[],
        )
        .await
        .map_err(|e| format!("cannot export a snapshot: {}", error_text(&e)))?;
    Ok((row.get(0), row.get(1)))
}

/// The server's version, as text and as `server_version_num`, and the database's size.
pub(crate) async fn server_facts(client: &Client) -> Result<(String, i64, i64), String> {
    let row = client
        .query_one(
            "select current_setting('server_version'), current_setting('server_version_num')::int8, \
             pg_database_size(current_database())",
            &[],
        )
        .await
        .map_err(|e| error_text(&e))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Exact row counts of every table the dump holds data for, keyed `schema.table`.
pub(crate) async fn row_counts(client: &Client) -> Result<BTreeMap<String, i64>, String> {
    let tables = client
        .query(
            &format!(
                "select n.nspname::text, c.relname::text from pg_class c \
                 join pg_namespace n on n.oid = c.relnamespace \
                 where c.relkind = 'r' and {SYSTEM_SCHEMAS} \
                 and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass \
                   and d.objid = c.oid and d.deptype = 'e') \
                 order by 1, 2"
            ),
            &[],
        )
        .await
        .map_err(|e| error_text(&e))?;
    let mut counts = BTreeMap::new();
    for t in tables {
        let (schema, table): (String, String) = (t.get(0), t.get(1));
        let row = client
            .query_one(
                &format!(
                    "select count(*) from only {}.{}",
                    ident(&schema),
                    ident(&table)
                ),
                &[],
            )
            .await
            .map_err(|e| format!("cannot count `{schema}.{table}`: {}", error_text(&e)))?;
        counts.insert(format!("{schema}.{table}"), row.get::<_, i64>(0));
    }
    Ok(counts)
}

/// What a restore into a fresh database must re-create: owner, locale, settings, privileges,
/// comment, and the roles the dump refers to.
pub(crate) async fn database_properties(client: &Client) -> Result<Database, String> {
    let e = |e: tokio_postgres::Error| error_text(&e);
    let row = client
        .query_one(
            "select d.datname::text, pg_get_userbyid(d.datdba)::text, pg_encoding_to_char(d.encoding)::text, \
             d.datcollate::text, d.datctype::text, d.datconnlimit, shobj_description(d.oid, 'pg_database'), \
             d.datacl is null from pg_database d where d.datname = current_database()",
            &[],
        )
        .await
        .map_err(e)?;
    let mut db = Database {
        name: row.get(0),
        owner: row.get(1),
        encoding: row.get(2),
        collate: row.get(3),
        ctype: row.get(4),
        connection_limit: row.get(5),
        comment: row.get(6),
        ..Database::default()
    };
    let default_acl: bool = row.get(7);
    for r in client
        .query(
            "select coalesce(r.rolname::text, ''), s.setconfig from pg_db_role_setting s \
             left join pg_roles r on r.oid = s.setrole \
             where s.setdatabase = (select oid from pg_database where datname = current_database())",
            &[],
        )
        .await
        .map_err(e)?
    {
        let (role, config): (String, Vec<String>) = (r.get(0), r.get(1));
        if role.is_empty() {
            db.settings = config;
        } else {
            db.role_settings.insert(role, config);
        }
    }
    if !default_acl {
        let grants = client
            .query(
                "select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee)::text end, \
                 a.privilege_type::text, a.is_grantable \
                 from pg_database d, aclexplode(d.datacl) a where d.datname = current_database() order by 1, 2",
                &[],
            )
            .await
            .map_err(e)?;
        db.grants = Some(
            grants
                .iter()
                .map(|g| {
                    let grantable: bool = g.get(2);
                    format!(
                        "{}:{}{}",
                        g.get::<_, String>(0),
                        g.get::<_, String>(1),
                        if grantable { ":grantable" } else { "" }
                    )
                })
                .collect(),
        );
    }
    let roles = client
        .query(
            &format!(
                "select distinct pg_get_userbyid(o)::text from ( \
                 select c.relowner o from pg_class c join pg_namespace n on n.oid = c.relnamespace where {SYSTEM_SCHEMAS} \
                 union select n.nspowner from pg_namespace n where {SYSTEM_SCHEMAS} \
                 union select p.proowner from pg_proc p join pg_namespace n on n.oid = p.pronamespace where {SYSTEM_SCHEMAS} \
                 union select t.typowner from pg_type t join pg_namespace n on n.oid = t.typnamespace where {SYSTEM_SCHEMAS} \
                 union select (aclexplode(c.relacl)).grantee from pg_class c join pg_namespace n on n.oid = c.relnamespace \
                   where c.relacl is not null and {SYSTEM_SCHEMAS} \
                 union select (aclexplode(n.nspacl)).grantee from pg_namespace n where n.nspacl is not null and {SYSTEM_SCHEMAS} \
                 union select datdba from pg_database where datname = current_database() \
                 ) x where o <> 0 order by 1"
            ),
            &[],
        )
        .await
        .map_err(e)?;
    db.roles = roles.iter().map(|r| r.get(0)).collect();
    for g in db.grants.iter().flatten() {
        if let Some(grantee) = g.split(':').next()
            && grantee != "PUBLIC"
            && !db.roles.iter().any(|r| r == grantee)
        {
            db.roles.push(grantee.to_owned());
        }
    }
    for role in db.role_settings.keys() {
        if !db.roles.contains(role) {
            db.roles.push(role.clone());
        }
    }
    db.roles.sort();
    Ok(db)
}

/// How a streamed dump ended.
pub(crate) struct Dumped {
    pub(crate) size: u64,
    pub(crate) sha256: String,
    /// What pg_dump printed on stderr (warnings), up to 256 KiB.
    pub(crate) warnings: String,
    /// The sinks that failed, by name, with why; the local file is written whole regardless.
    pub(crate) sink_errors: Vec<(&'static str, String)>,
}

/// Another reader of the dump as it streams (the verifying `pg_restore`, the offsite copy's
/// encryption), fed each block by the thread that hashes and writes the file.
pub(crate) trait Sink: Send {
    fn name(&self) -> &'static str;
    fn write(&mut self, block: &[u8]) -> std::io::Result<()>;
    /// Called once pg_dump exited well, after the last block; a sink dropped without it sees a
    /// dump that did not finish.
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

impl Dumped {
    /// Why sink `name` failed, if it did.
    pub(crate) fn sink_error(&self, name: &str) -> Option<&str> {
        self.sink_errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.as_str())
    }
}

/// Runs `pg_dump --format=custom --snapshot=…` into `file`, hashing on a dedicated thread, and
/// fsyncs the file. Any failure (non-zero exit, a write error, cancellation) is an `Err`; the
/// caller deletes the partial folder. Each block is also written into every one of `sinks`; a
/// sink that fails is dropped (which ends what it feeds) and the dump goes on.
pub(crate) async fn dump_to_file(
    tools: &Tools,
    snapshot: &str,
    lock_wait_timeout_ms: u128,
    env: &[(String, String)],
    file: &Path,
    mut sinks: Vec<Box<dyn Sink>>,
    cancel: &CancellationToken,
) -> Result<Dumped, String> {
    let args = [
        "--format=custom".to_owned(),
        "--no-password".to_owned(),
        format!("--snapshot={snapshot}"),
        format!("--lock-wait-timeout={lock_wait_timeout_ms}"),
    ];
    let mut command = super::tools::command(&tools.pg_dump, args, env);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = child::spawn(&mut command)
        .map_err(|e| format!("cannot start `{}`: {e}", tools.pg_dump.display()))?;
    // Read by plain threads: the single-threaded runtime must keep serving the snapshot's
    // connection.
    let pipes = child
        .stdout()
        .map(|o| o.into_owned_fd())
        .zip(child.stderr().map(|e| e.into_owned_fd()));
    let Some((Ok(stdout), Ok(stderr))) = pipes else {
        child
            .stop(child::HELPER_GRACE, &CancellationToken::new())
            .await;
        return Err("cannot read pg_dump's output".into());
    };
    let (mut stdout, mut stderr) = (std::fs::File::from(stdout), std::fs::File::from(stderr));
    // A larger pipe means fewer wake-ups per megabyte; not fatal where it cannot be set.
    let _ = nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    let path = file.to_owned();
    type Hashed = (Dumped, Vec<Box<dyn Sink>>);
    let hashing = std::thread::spawn(move || -> std::io::Result<Hashed> {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        let mut sink_errors = Vec::new();
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            sinks.retain_mut(|sink| match sink.write(&buf[..n]) {
                Ok(()) => true,
                Err(e) => {
                    sink_errors.push((sink.name(), e.to_string()));
                    false
                }
            });
            size += n as u64;
        }
        out.sync_all()?;
        // The sinks are finished by the caller, only once pg_dump exited well: a dump that
        // failed must not complete an upload.
        Ok((
            Dumped {
                size,
                sha256: hex(&hasher.finalize()),
                warnings: String::new(),
                sink_errors,
            },
            sinks,
        ))
    });
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(256 * 1024).read_to_end(&mut text);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        String::from_utf8_lossy(&text).into_owned()
    });
    let status = tokio::select! {
        s = child.wait() => s,
        () = cancel.cancelled() => {
            child.stop(child::HELPER_GRACE, &CancellationToken::new()).await;
            return Err("cancelled".into());
        }
    };
    child
        .stop_rest(child::HELPER_GRACE, &CancellationToken::new())
        .await;
    let exited_well = status.as_ref().is_ok_and(|s| s.success());
    let hashed = tokio::task::spawn_blocking(move || {
        hashing.join().map(|hashed| {
            hashed.map(|(mut dumped, sinks)| {
                for sink in sinks.into_iter().filter(|_| exited_well) {
                    let name = sink.name();
                    if let Err(e) = sink.finish() {
                        dumped.sink_errors.push((name, e.to_string()));
                    }
                }
                dumped
            })
        })
    })
    .await
    .ok()
    .and_then(Result::ok);
    let stderr_text = tokio::task::spawn_blocking(move || errors.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let status = status.map_err(|e| format!("lost pg_dump: {e}"))?;
    // A write that failed (the disk is full) is the cause; pg_dump then dies of SIGPIPE, which
    // says nothing. Say the cause first.
    if let Some(Err(e)) = &hashed {
        let folder = file.parent().unwrap_or(file);
        let why = if e.raw_os_error() == Some(nix::libc::ENOSPC) {
            let free = crate::pg::store::free_bytes(folder)
                .map_or_else(String::new, |b| format!(" ({b} bytes free)"));
            format!("the disk is full: `{}`{free}", folder.display())
        } else {
            e.to_string()
        };
        return Err(format!(
            "cannot write the dump to `{}`: {why}",
            file.display()
        ));
    }
    if !status.success() {
        return Err(format!(
            "pg_dump failed ({status}): {}",
            super::tools::tail(&stderr_text)
        ));
    }
    match hashed {
        Some(Ok(d)) => Ok(Dumped {
            warnings: stderr_text,
            ..d
        }),
        Some(Err(e)) => Err(format!(
            "cannot write the dump to `{}`: {e}",
            file.display()
        )),
        None => Err("the thread writing the dump stopped".into()),
    }
}
