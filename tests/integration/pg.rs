//! `postgres-check`, `pg-dump` and `portcullis backups` against a real PostgreSQL 15 cluster
//! that the tests start themselves (skipped when PostgreSQL 15 is not installed, unless
//! `PORTCULLIS_REQUIRE` names `postgres`).
//!
//! One cluster serves every test of this binary: `initdb` and `pg_ctl` in a temporary folder,
//! on a free loopback port, with password authentication over TCP so that the password really
//! has to reach `pg_dump` and scripts. As root (CI), they run as the `postgres` user, since
//! PostgreSQL refuses to run as root. A small watchdog process stops the cluster and removes
//! its folder when the test binary exits, however it exits. Each test uses its own database.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::harness::{Test, assert_schema_valid, free_port, required};

/// PostgreSQL 15's server programs, or the newest installed when 15 is not there.
pub(crate) static BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut majors: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    majors.sort_unstable();
    let major = if majors.contains(&15) {
        Some(15)
    } else {
        majors.last().copied()
    };
    format!("/usr/lib/postgresql/{}/bin", major.unwrap_or(15))
});
pub(crate) const PASSWORD: &str = "Pw-s3cret-for-tests";

pub(crate) struct Cluster {
    pub(crate) port: u16,
    /// Keeps the watchdog's stdin open until this process exits.
    _watchdog: Mutex<ChildStdin>,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL server program, run as `postgres` when we are root.
fn server_command(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &format!("{}/{program}", *BIN)]);
        c
    } else {
        Command::new(format!("{}/{program}", *BIN))
    }
}

#[expect(clippy::print_stderr, reason = "a skipped test says why")]
pub(crate) fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            if !Path::new(BIN.as_str()).join("initdb").exists() {
                assert!(
                    !required("postgres"),
                    "PostgreSQL is required (PORTCULLIS_REQUIRE) but {}/initdb is missing",
                    *BIN
                );
                eprintln!("skipped: PostgreSQL is not installed ({}/initdb)", *BIN);
                return None;
            }
            let cluster = start_cluster();
            // Roles are cluster-wide: made once here, not by tests running at the same time.
            cluster.sql("postgres", "create role app_reader");
            Some(cluster)
        })
        .as_ref()
}

fn start_cluster() -> Cluster {
    let base: PathBuf = tempfile::Builder::new()
        .prefix("portcullis-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    std::fs::write(base.join("pw"), PASSWORD).expect("pwfile");
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:", &base.display().to_string()])
            .status()
            .expect("chown");
        assert!(ok.success());
    }
    let data = base.join("data");
    let out = server_command("initdb")
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", base.join("pw").display()))
        .output()
        .expect("initdb");
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut port = 0;
    for _ in 0..5 {
        port = free_port();
        let status = server_command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(base.join("log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
                 -c synchronous_commit=off -c max_connections=60 -c shared_buffers=32MB",
                base.display()
            ))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl");
        if status.success() {
            break;
        }
        port = 0;
    }
    assert!(
        port != 0,
        "the cluster did not start:\n{}",
        std::fs::read_to_string(base.join("log")).unwrap_or_default()
    );
    let stop = format!(
        "read _; {} {}/pg_ctl -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
        if is_root() {
            "runuser -u postgres --"
        } else {
            ""
        },
        *BIN,
        data.display(),
        base.display()
    );
    #[expect(
        clippy::zombie_processes,
        reason = "the watchdog outlives the tests on purpose: it stops the cluster when they exit"
    )]
    let mut watchdog: Child = Command::new("sh")
        .args(["-c", &stop])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("watchdog");
    let stdin = watchdog.stdin.take().expect("watchdog stdin");
    Cluster {
        port,
        _watchdog: Mutex::new(stdin),
    }
}

impl Cluster {
    pub(crate) fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Runs SQL through psql; panics with its error when it fails.
    pub(crate) fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.psql(db, sql);
        assert!(
            out.status.success(),
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn psql(&self, db: &str, sql: &str) -> std::process::Output {
        Command::new(format!("{}/psql", *BIN))
            .args([
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .expect("psql")
    }

    /// A new empty database for one test.
    pub(crate) fn database(&self, label: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{label}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        self.sql("postgres", &format!("create database {name}"));
        name
    }
}

/// A test folder whose pipelines read the database URL from a secret.
pub(crate) fn test_for(c: &Cluster, db: &str) -> Test {
    Test::new()
        .env("TEST_DATABASE_URL", &c.url(db))
        .env("PSQL", &format!("{}/psql", *BIN))
}

/// Every file portcullis left (logs, reports, outputs) and what it printed: none may hold the
/// password.
pub(crate) fn assert_no_password(t: &Test, printed: &str) {
    assert!(
        !printed.contains(PASSWORD),
        "the password was printed:\n{printed}"
    );
    for entry in walk(&t.path().join(".portcullis")) {
        if entry.extension().is_some_and(|e| e == "pgpass") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()).into_owned();
        assert!(
            !text.contains(PASSWORD),
            "the password is in {}",
            entry.display()
        );
    }
}

pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            files.extend(walk(&path));
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}

/// The JUnit `<testcase>` element whose name is `name`, up to its end.
fn case<'a>(junit: &'a str, name: &str) -> &'a str {
    let start = junit
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no test case `{name}` in:\n{junit}"));
    let rest = &junit[start..];
    let end = rest
        .find("<testcase")
        .or_else(|| rest.find("</testsuite>"))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn postgres_check_reports_orphans_missing_objects_timeouts_and_scripts() {
    let Some(c) = cluster() else { return };
    let db = c.database("chk");
    c.sql(
        &db,
        "create table customers(id int primary key, name text); \
         create table invoices(id int primary key, customer_id int, total numeric); \
         insert into customers values (1, 'ana'), (2, 'bo'); \
         insert into invoices values (1, 1, 10), (2, 2, 20), (3, 99, 30); \
         create view v_ok as select 1 as one; \
         create function add_one(x int) returns int language sql as 'select x + 1';",
    );
    let t = test_for(c, &db).pipeline(
        "p",
        r#"version: 1
secrets:
  DATABASE_URL: { env: TEST_DATABASE_URL }
stages:
  db:
    uses: postgres-check
    with:
      url: ${{ DATABASE_URL }}
      statement-timeout: 10s
      checks:
        - name: no orphan invoices
          sql: select i.id, i.customer_id, i.total from invoices i left join customers c on c.id = i.customer_id where c.id is null
          expect: no-rows
        - name: objects
          exists: [view public.v_ok, view finance.v_cashflow, table public.invoices, column public.invoices.total, column public.invoices.vat, index public.invoices_pkey, function public.add_one, function add_one(int), extension plpgsql, extension pgcrypto, schema public, table public.v_ok]
        - name: slow query
          sql: select pg_sleep(60)
          expect: { rows: 1 }
          timeout: 300ms
        - name: invoice count
          sql: select count(*) from invoices
          expect: { min: 1, max: 100 }
        - name: two customers
          sql: select * from customers
          expect: { rows: 2 }
        - name: total
          sql: select sum(total) from invoices
          expect: { value: 60 }
        - name: only a warning
          sql: select 1 as one
          severity: warn
        - name: script sees the database
          script: test "$PGDATABASE" = "$EXPECTED_DB" && "$PSQL" -XAtc 'select 1' >/dev/null
        - name: script that fails
          script: [sh, -c, "echo state is broken; exit 3"]
        - name: bad sql
          sql: select nope from invoices
"#,
    )
    .env("EXPECTED_DB", &db);
    let out = t.run(&["run", "p", "--junit", "report.xml"]);
    assert_eq!(out.code, 1, "{out:?}");
    let junit = t.read("report.xml");
    assert_schema_valid(&t.path().join("report.xml"));

    let orphans = case(&junit, "no orphan invoices");
    assert!(orphans.contains("<failure"), "{orphans}");
    assert!(orphans.contains("1 row, expected none"), "{orphans}");
    assert!(orphans.contains("&quot;customer_id&quot;:99"), "{orphans}");

    let objects = case(&junit, "objects");
    assert!(objects.contains("<failure"), "{objects}");
    assert!(objects.contains("view finance.v_cashflow"), "{objects}");
    assert!(objects.contains("column public.invoices.vat"), "{objects}");
    assert!(objects.contains("extension pgcrypto"), "{objects}");
    // A view is not a table.
    assert!(objects.contains("table public.v_ok"), "{objects}");
    let message = objects.split("message=\"").nth(1).unwrap_or_default();
    let message = message.split('"').next().unwrap_or_default();
    assert_eq!(
        message,
        "missing: view finance.v_cashflow, column public.invoices.vat, extension pgcrypto, table public.v_ok",
        "{objects}"
    );
    assert!(!objects.contains("view public.v_ok,"), "{objects}");

    let slow = case(&junit, "slow query");
    assert!(slow.contains("<error"), "{slow}");
    assert!(slow.contains("timed out after 300ms"), "{slow}");
    // The server stopped the query; it is not left running after the check gave up on it.
    let still = c.sql(
        "postgres",
        "select count(*) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()",
    );
    assert_eq!(still, "0");

    for passing in [
        "invoice count",
        "two customers",
        "total",
        "script sees the database",
    ] {
        let body = case(&junit, passing);
        assert!(
            !body.contains("<failure") && !body.contains("<error"),
            "{passing}: {body}"
        );
    }
    let warn = case(&junit, "only a warning");
    assert!(!warn.contains("<failure"), "{warn}");
    assert!(warn.contains("WARN"), "{warn}");

    let script = case(&junit, "script that fails");
    assert!(script.contains("<failure"), "{script}");
    assert!(script.contains("exit code 3"), "{script}");
    assert!(script.contains("state is broken"), "{script}");

    let bad = case(&junit, "bad sql");
    assert!(bad.contains("<error"), "{bad}");
    assert!(bad.contains("42703"), "{bad}");

    assert!(out.stderr.contains("5 of 10 checks failed"), "{out:?}");
    assert_no_password(&t, &format!("{}{}", out.stdout, out.stderr));
}

#[test]
fn postgres_check_config_errors_point_at_the_value() {
    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  db:\n    uses: postgres-check\n    with:\n      url: postgresql://x@h/d\n      checks:\n        - sql: select 1; select 2\n        - exists: [viewz a.b]\n        - sql: select 1\n          script: x\n        - sql: select 1\n          expect: { between: 3 }\n",
    );
    let out = t.run(&["validate", "p"]);
    assert_eq!(out.code, 2, "{out:?}");
    for message in [
        "`sql` holds more than one statement",
        "`viewz a.b` is not `KIND NAME`",
        "a check has both `sql` and `script`",
        "unknown key `between` in `expect`",
    ] {
        assert!(out.stderr.contains(message), "{message}: {out:?}");
    }
}

pub(crate) fn app_database(c: &Cluster, label: &str) -> String {
    let db = c.database(label);
    c.sql(
        &db,
        &format!(
            "create table customers(id int primary key, name text); \
             create table orders(id int primary key, customer_id int references customers(id), amount numeric); \
             insert into customers select g, 'c' || g from generate_series(1, 20) g; \
             insert into orders select g, 1 + g % 20, g * 1.5 from generate_series(1, 500) g; \
             create view big_orders as select * from orders where amount > 100; \
             grant select on orders to app_reader; \
             alter database {db} set work_mem = '7MB'; \
             alter database {db} set search_path = \"$user\", public, extra; \
             comment on database {db} is 'the shop'; \
             revoke connect on database {db} from public; \
             grant connect on database {db} to app_reader;"
        ),
    );
    db
}

pub(crate) const BACKUP_PIPELINE: &str = r#"version: 1
secrets:
  DATABASE_URL: { env: TEST_DATABASE_URL }
stages:
  backup:
    uses: pg-dump
    with:
      url: ${{ DATABASE_URL }}
      dir: backups
      keep: 3
"#;

#[test]
fn a_failed_migration_is_undone_by_the_automatic_restore() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "mig");
    let pipeline = format!(
        "{BACKUP_PIPELINE}  migrate:
    needs: [backup]
    run: |
      \"$PSQL\" \"$DATABASE_URL\" -X -v ON_ERROR_STOP=1 \\
        -c \"delete from orders where id > 100\" \\
        -c \"create table audit(id int primary key)\" \\
        -c \"create table mig_child(id int, customer_id int references customers(id))\" \\
        -c \"alter table orders add column note text\" \\
        -c \"alter database {db} set work_mem = '64MB'\"
      echo \"migration broke half-way\"
      exit 1
"
    );
    let t = test_for(c, &db).pipeline("deploy", &pipeline);
    // A client stays connected to the live database all along; the swap ends its session.
    let mut client = Command::new(format!("{}/psql", *BIN))
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-p",
            &c.port.to_string(),
            "-d",
            &db,
        ])
        .args(["-c", "select pg_sleep(300)"])
        .env("PGPASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("psql");
    let out = t.run(&["run", "deploy", "--junit", "report.xml"]);
    assert_eq!(out.code, 1, "{out:?}");
    let ended = client.wait().expect("client");
    assert!(
        !ended.success(),
        "the connected client was not disconnected"
    );
    let rollback =
        std::fs::read_to_string(t.latest_run().join("backup.rollback.log")).unwrap_or_default();
    for step in [
        "check backup",
        "check roles",
        "pg_restore",
        "compare row counts",
        "database settings",
        "swap",
    ] {
        assert!(
            rollback.contains(&format!("ok    {step}")),
            "{step}:\n{rollback}\n{out:?}"
        );
    }

    assert_eq!(c.sql(&db, "select count(*) from orders"), "500");
    assert_eq!(
        c.sql(
            &db,
            "select to_regclass('public.audit') is null and to_regclass('public.mig_child') is null"
        ),
        "t"
    );
    assert_eq!(c.sql(&db, "select count(*) from information_schema.columns where table_name = 'orders' and column_name = 'note'"), "0");
    assert_eq!(c.sql(&db, "select count(*) from big_orders"), "434");
    assert_eq!(
        c.sql("postgres", &format!("select array_to_string(setconfig, ';') from pg_db_role_setting where setdatabase = (select oid from pg_database where datname = '{db}') and setrole = 0")),
        "work_mem=7MB;search_path=\"$user\", public, extra"
    );
    assert_eq!(c.sql("postgres", &format!("select shobj_description(oid, 'pg_database') from pg_database where datname = '{db}'")), "the shop");
    assert_eq!(
        c.sql("postgres", &format!("select has_database_privilege('app_reader', '{db}', 'CONNECT'), has_database_privilege('public', '{db}', 'CONNECT')")),
        "t|f"
    );
    assert_eq!(
        c.sql(
            &db,
            "select has_table_privilege('app_reader', 'orders', 'SELECT')"
        ),
        "t"
    );
    // The database the migration broke is kept, under a clear name, with what it did.
    let failed = c.sql(
        "postgres",
        &format!("select datname from pg_database where datname like '{db}\\_\\_failed\\_%'"),
    );
    assert!(!failed.is_empty(), "no forensic copy");
    assert_eq!(c.sql(&failed, "select count(*) from orders"), "100");
    assert_eq!(
        c.sql(&failed, "select to_regclass('public.audit') is not null"),
        "t"
    );

    let junit = t.read("report.xml");
    assert_schema_valid(&t.path().join("report.xml"));
    for step in ["preflight", "dump", "verify", "commit", "retention"] {
        let body = case(&junit, step);
        assert!(!body.contains("<failure"), "{step}: {body}");
    }
    assert_no_password(&t, &format!("{}{}{rollback}", out.stdout, out.stderr));
}

fn backups(t: &Test, args: &[&str]) -> crate::harness::Run {
    let mut all = vec!["backups"];
    all.extend_from_slice(args);
    t.run(&all)
}

#[test]
fn retention_over_runs_and_verify_rejects_truncated_and_flipped_dumps() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "ret");
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let out = t.run(&["run", "backup"]);
        assert_eq!(out.code, 0, "{out:?}");
        let id = std::fs::read_link(t.latest_run()).expect("latest run");
        ids.push(format!("{}-{db}", id.display()));
        // Run ids have a one-second resolution; backups of separate seconds sort by time.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let list = backups(&t, &["list"]);
    assert_eq!(list.code, 0, "{list:?}");
    let valid: Vec<&str> = list
        .stdout
        .lines()
        .filter(|l| l.contains(" valid "))
        .collect();
    assert_eq!(valid.len(), 3, "{list:?}");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(list.stdout.contains(id.as_str()), i >= 2, "{id}: {list:?}");
    }
    let verify = backups(&t, &["verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert_eq!(verify.stdout.matches("ok    ").count(), 3, "{verify:?}");

    // Truncated to half: the size no longer matches the manifest.
    let dump = |id: &str| t.path().join("backups").join(id).join(format!("{db}.dump"));
    let bytes = std::fs::read(dump(&ids[2])).expect("dump");
    std::fs::write(dump(&ids[2]), &bytes[..bytes.len() / 2]).expect("truncate");
    // Bytes flipped in the middle, size unchanged.
    let mut bytes = std::fs::read(dump(&ids[3])).expect("dump");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(dump(&ids[3]), &bytes).expect("flip");
    let verify = backups(&t, &["verify"]);
    assert_eq!(verify.code, 1, "{verify:?}");
    assert!(
        verify.stdout.contains(&format!("FAIL  {}", ids[2])),
        "{verify:?}"
    );
    assert!(
        verify
            .stdout
            .contains(&format!("FAIL  {}: `{db}.dump` has sha256", ids[3])),
        "{verify:?}"
    );
    assert!(
        verify.stdout.contains(&format!("ok    {}", ids[4])),
        "{verify:?}"
    );

    // A restore of a damaged backup is refused before anything is touched.
    // Other tests create databases at the same time: count only this database's copies.
    let copies = format!("select count(*) from pg_database where datname like '{db}\\_\\_%'");
    let before = c.sql("postgres", &copies);
    let restore = t.run(&["backups", "restore", &ids[3], "--url", &c.url(&db)]);
    assert_eq!(restore.code, 1, "{restore:?}");
    assert!(restore.stderr.contains("FAIL  check backup"), "{restore:?}");
    assert_eq!(c.sql("postgres", &copies), before);
    assert!(!restore.stderr.contains(PASSWORD));

    // The intact one restores by hand, over a database that changed meanwhile.
    c.sql(&db, "delete from orders; create table junk(x int)");
    let restore = t.run(&["backups", "restore", &ids[4], "--url", &c.url(&db)]);
    assert_eq!(restore.code, 0, "{restore:?}");
    assert!(restore.stderr.contains("ok    swap"), "{restore:?}");
    assert_eq!(c.sql(&db, "select count(*) from orders"), "500");
    assert_eq!(c.sql(&db, "select to_regclass('junk') is null"), "t");
    assert!(!restore.stderr.contains(PASSWORD));

    // A dry run of a stricter policy says what it would delete and deletes nothing; the
    // corrupt folder is reported, never pruned.
    let t = t.pipeline(
        "dry",
        &BACKUP_PIPELINE.replace("keep: 3", "keep: 1\n      dry-run-retention: true"),
    );
    let out = t.run(&["run", "dry"]);
    assert_eq!(out.code, 0, "{out:?}");
    let log = t.log("backup");
    for id in [&ids[3], &ids[4]] {
        assert!(log.contains(&format!("would delete `{id}`")), "{log}");
    }
    assert!(
        log.contains(&format!("`{}` is not a valid backup", ids[2])),
        "{log}"
    );
    let list = backups(&t, &["list"]);
    assert_eq!(list.stdout.matches(" valid ").count(), 3, "{list:?}");
    assert_eq!(list.stdout.matches(" corrupt ").count(), 1, "{list:?}");
}

/// `backups prune`: without a rule it refuses (exit 2); a dry run prints the plan and changes
/// nothing; the real prune then deletes exactly what the dry run said, and never a corrupt
/// folder. The backups are all made today, so `--keep-daily 1` keeps only the newest: the
/// calendar rules run for real without touching any clock.
#[test]
fn backups_prune_deletes_exactly_what_its_dry_run_said() {
    let Some(c) = cluster() else { return };
    let db = c.database("prune");
    c.sql(
        &db,
        "create table t(x int); insert into t select generate_series(1, 10)",
    );
    let t = test_for(c, &db).pipeline(
        "backup",
        &BACKUP_PIPELINE.replace("keep: 3", "keep: 10\n      keep-daily: 3"),
    );
    let plan = t.run(&["plan", "backup"]);
    assert!(plan.stdout.contains(", keep 10, keep-daily 3"), "{plan:?}");
    let mut ids = Vec::new();
    for i in 0..3 {
        if i > 0 {
            // Run ids have a one-second resolution; backups of separate seconds sort by time.
            std::thread::sleep(Duration::from_millis(1100));
        }
        let out = t.run(&["run", "backup"]);
        assert_eq!(out.code, 0, "{out:?}");
        let id = std::fs::read_link(t.latest_run()).expect("latest run");
        ids.push(format!("{}-{db}", id.display()));
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&t.read(&format!("backups/{}/manifest.json", ids[2])))
            .expect("manifest");
    let day = &manifest["created_at"].as_str().expect("created_at")[..10];
    // The stage's retention names the calendar rule that keeps its backup.
    let log = t.log("backup");
    assert!(
        log.contains(&format!(
            "retention: keep `{}`: this run's backup; among the 10 newest; the newest of {day} \
             (keep-daily 3)",
            ids[2]
        )),
        "{log}"
    );
    std::fs::create_dir(t.path().join("backups/stray")).expect("stray folder");
    let entries = || {
        let mut names: Vec<String> = std::fs::read_dir(t.path().join("backups"))
            .expect("backups")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    };
    let before = entries();
    assert_eq!(before.len(), 4, "{before:?}");

    let none = backups(&t, &["prune"]);
    assert_eq!(none.code, 2, "{none:?}");
    assert!(
        none.stderr
            .contains("error: `backups prune` needs a retention rule"),
        "{none:?}"
    );
    assert!(
        none.stderr.contains("help: give one or more of `--keep N`"),
        "{none:?}"
    );
    assert_eq!(entries(), before);

    let dry = backups(&t, &["prune", "--keep-daily", "1", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    let lines: Vec<&str> = dry.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{dry:?}");
    assert!(
        lines[0].starts_with("keep          stray  not a valid backup ("),
        "{dry:?}"
    );
    assert_eq!(
        lines[1..],
        [
            format!(
                "keep          {}  the newest of {day} (keep-daily 1)",
                ids[2]
            ),
            format!("would delete  {}  kept by no rule (keep-daily 1)", ids[1]),
            format!("would delete  {}  kept by no rule (keep-daily 1)", ids[0]),
        ]
    );
    assert_eq!(entries(), before);

    let json = backups(
        &t,
        &[
            "prune",
            "--keep-daily",
            "1",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    assert_eq!(json.code, 0, "{json:?}");
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(json["policy"], serde_json::json!(["keep-daily 1"]));
    let actions: Vec<(&str, &str)> = json["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap_or_default(),
                b["action"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("stray", "keep"),
            (ids[2].as_str(), "keep"),
            (ids[1].as_str(), "would-delete"),
            (ids[0].as_str(), "would-delete"),
        ]
    );
    assert_eq!(entries(), before);

    // While another process holds the folder's lock (as a run does), nothing is deleted.
    // `--no-fork`: the shell is the process that holds the lock, so killing it frees the lock.
    let holder = Command::new("flock")
        .arg("--no-fork")
        .arg(t.path().join("backups/.lock"))
        .args(["-c", "echo locked; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn();
    if let Ok(mut holder) = holder {
        let mut said = String::new();
        let _ = std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().expect("stdout")),
            &mut said,
        );
        assert_eq!(said, "locked\n");
        let locked = backups(&t, &["prune", "--keep-daily", "1"]);
        let _ = holder.kill();
        let _ = holder.wait();
        assert_eq!(locked.code, 1, "{locked:?}");
        assert!(
            locked.stderr.contains("another run is writing backups"),
            "{locked:?}"
        );
        assert_eq!(entries(), before);
    }

    let done = backups(&t, &["prune", "--keep-daily", "1"]);
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(
        done.stdout,
        dry.stdout
            .replace("would delete  ", "delete  ")
            .replace("keep          ", "keep    "),
        "{done:?}"
    );
    assert_eq!(entries(), [ids[2].clone(), "stray".to_owned()]);
    let verify = backups(&t, &["verify", &ids[2]]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

/// Starts `run backup` while a session holds a lock on `orders`, and returns once pg_dump waits
/// for that lock (its snapshot already taken): the locking `psql`, the test and the running
/// portcullis.
fn backup_waiting_on_a_lock(c: &Cluster, db: &str) -> (Child, Test, Child) {
    let locker = Command::new(format!("{}/psql", *BIN))
        .args(["-X", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &c.port.to_string(), "-d", db])
        .args([
            "-c",
            "begin; lock table orders in access exclusive mode; select pg_sleep(120);",
        ])
        .env("PGPASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("psql");
    let t = test_for(c, db).pipeline(
        "backup",
        &BACKUP_PIPELINE.replace("keep: 3", "keep: 3\n      lock-wait-timeout: 5m"),
    );
    let run = t.spawn(&["run", "backup"]);
    let waiting = format!(
        "select count(*) from pg_stat_activity where datname = '{db}' and wait_event_type = 'Lock'"
    );
    let start = Instant::now();
    while c.sql("postgres", &waiting) == "0" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pg_dump never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (locker, t, run)
}

/// Ends the session of [`backup_waiting_on_a_lock`], releasing its lock.
fn release_lock(c: &Cluster, db: &str, mut locker: Child) {
    c.sql(
        "postgres",
        &format!("select pg_terminate_backend(pid) from pg_stat_activity where datname = '{db}' and query like '%pg_sleep(120)%'"),
    );
    let _ = locker.wait();
}

/// `pg_restore` processes restoring into a copy of `db`, found by their environment.
fn restores_into(db: &str) -> Vec<i32> {
    pg_restores_into(&format!("{db}__restore_"))
}

/// The `pg_restore` processes filling a database whose name starts with `prefix`.
pub(crate) fn pg_restores_into(prefix: &str) -> Vec<i32> {
    let wanted = format!("PGDATABASE={prefix}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|e| e.starts_with(wanted.as_bytes()))
            }) && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "pg_restore")
        })
        .collect()
}

/// Starts `backups restore` and returns it once `pg_restore` runs.
fn restore_until_pg_restore_runs(t: &Test, c: &Cluster, db: &str, id: &str) -> Child {
    let child = t.spawn(&["backups", "restore", id, "--url", &c.url(db)]);
    let start = Instant::now();
    while restores_into(db).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pg_restore never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// `kill -9` of `backups restore` while `pg_restore` runs: no `pg_restore` outlives it by
/// 15 s, and the copy it was filling is left; returns that copy's name.
fn killed_restore(t: &Test, c: &Cluster, db: &str, id: &str) -> String {
    let mut child = restore_until_pg_restore_runs(t, c, db, id);
    child.kill().expect("kill -9");
    let _ = child.wait();
    let start = Instant::now();
    while !restores_into(db).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "pg_restore outlived portcullis by 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = copies_of(c, db);
    assert!(left.starts_with(&format!("{db}__restore_")), "{left:?}");
    left
}

fn copies_of(c: &Cluster, db: &str) -> String {
    c.sql(
        "postgres",
        &format!(
            "select coalesce(string_agg(datname, ',' order by datname), '') from pg_database \
             where datname like '{db}\\_\\_restore\\_%'"
        ),
    )
}

/// Ctrl-C during `backups restore` stops `pg_restore`, drops the unfinished copy, leaves the
/// live database as it was and exits 130. After `kill -9`, no `pg_restore` survives, and the
/// next run or restore drops the copy left behind, and only copies portcullis marked as its own.
#[test]
fn an_interrupted_restore_leaves_nothing_behind() {
    let Some(c) = cluster() else { return };
    let db = c.database("intr");
    c.sql(
        &db,
        "create table big as select g as id, md5(g::text) as v from generate_series(1, 400000) g; \
         create index on big (v)",
    );
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = format!(
        "{}-{db}",
        std::fs::read_link(t.latest_run()).expect("run").display()
    );
    c.sql(&db, "create table after_backup(x int)");

    let child = restore_until_pg_restore_runs(&t, c, &db, &id);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("interrupt");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        restores_into(&db).is_empty(),
        "pg_restore survived: {stderr}"
    );
    assert_eq!(copies_of(c, &db), "", "{stderr}");
    assert_eq!(
        c.sql(&db, "select to_regclass('after_backup') is not null"),
        "t"
    );

    let left = killed_restore(&t, c, &db, &id);
    // The next run drops it...
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        t.log("backup").contains(&format!(
            "dropped `{left}`, left by a restore that did not finish"
        )),
        "{}",
        t.log("backup")
    );
    assert_eq!(copies_of(c, &db), "");
    // ... and so does the next restore.
    let left = killed_restore(&t, c, &db, &id);
    // A database of the same shape that portcullis did not make is never dropped.
    let foreign = format!("{db}__restore_20200101t000000");
    c.sql("postgres", &format!("create database {foreign}"));

    let out = t.run(&["backups", "restore", &id, "--url", &c.url(&db)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("ok    drop leftovers"), "{out:?}");
    assert!(out.stderr.contains(&format!("`{left}`")), "{out:?}");
    assert_eq!(copies_of(c, &db), foreign, "{out:?}");
    assert_eq!(
        c.sql(&db, "select to_regclass('after_backup') is null"),
        "t"
    );
    c.sql("postgres", &format!("drop database {foreign}"));
}

#[test]
fn a_dump_killed_midway_never_looks_like_a_backup() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "kill");
    // A session holding a lock on `orders` stops pg_dump right after it started.
    let (locker, t, mut run) = backup_waiting_on_a_lock(c, &db);
    let partial: Vec<PathBuf> = walk(&t.path().join("backups"));
    assert!(
        partial
            .iter()
            .any(|p| p.to_string_lossy().contains(".partial")),
        "{partial:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(run.id()).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let _ = run.wait();
    // Release the lock: the orphaned pg_dump goes on and finds its reader gone.
    release_lock(c, &db, locker);
    let start = Instant::now();
    while c.sql("postgres", &format!("select count(*) from pg_stat_activity where datname = '{db}' and application_name = 'portcullis'")) != "0" {
        assert!(start.elapsed() < Duration::from_secs(60), "pg_dump still running");
        std::thread::sleep(Duration::from_millis(50));
    }

    let entries: Vec<String> = std::fs::read_dir(t.path().join("backups"))
        .expect("backups")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(
        entries.iter().all(|n| n.ends_with(".partial")),
        "{entries:?}"
    );
    let list = backups(&t, &["list"]);
    assert!(!list.stdout.contains(" valid "), "{list:?}");
    assert!(list.stdout.contains("incomplete"), "{list:?}");
    let verify = backups(&t, &["verify"]);
    assert_eq!(verify.code, 1, "{verify:?}");
    let id = entries[0].trim_end_matches(".partial");
    let restore = t.run(&["backups", "restore", id, "--url", &c.url(&db)]);
    assert_eq!(restore.code, 1, "{restore:?}");
    assert!(restore.stderr.contains("is incomplete"), "{restore:?}");

    // The next run removes the leftover and makes a valid backup.
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        t.log("backup")
            .contains("left by a backup that did not finish"),
        "{}",
        t.log("backup")
    );
    let list = backups(&t, &["list"]);
    assert_eq!(list.stdout.lines().count(), 1, "{list:?}");
    assert!(list.stdout.contains(" valid "), "{list:?}");
}

#[test]
fn rehearsal_publishes_a_scratch_copy_for_later_stages() {
    let Some(c) = cluster() else { return };
    // A name that needs quoting in SQL, in URLs and in pg_restore's `--dbname`.
    let db = format!("Reh Shop {}", std::process::id());
    c.sql("postgres", &format!("create database \"{db}\""));
    c.sql(
        &db,
        "create table orders(id int primary key, amount numeric); \
         insert into orders select g, g from generate_series(1, 500) g",
    );
    let pipeline = BACKUP_PIPELINE.replace("keep: 3", "keep: 3\n      rehearse: true")
        + r#"  rehearse-migration:
    needs: [backup]
    run: |
      echo "${{ backup.rehearsal-url }}" > url.txt
      "$PSQL" "${{ backup.rehearsal-url }}" -X -v ON_ERROR_STOP=1 -c "delete from orders where id > 10"
  checks-on-copy:
    needs: [rehearse-migration]
    uses: postgres-check
    with:
      url: ${{ backup.rehearsal-url }}
      checks:
        - name: ten orders on the copy
          sql: select * from orders
          expect: { rows: 10 }
"#;
    let encoded = db.replace(' ', "%20");
    let t = test_for(c, &encoded).pipeline("p", &pipeline);
    let out = t.run(&["run", "p", "--junit", "report.xml"]);
    assert_eq!(out.code, 0, "{out:?}");
    let url = t.read("url.txt");
    assert!(url.contains(&format!("/{encoded}__rehearsal_")), "{url}");
    assert!(!url.contains(PASSWORD), "{url}");
    // Production is untouched.
    assert_eq!(c.sql(&db, "select count(*) from orders"), "500");
    assert!(!case(&t.read("report.xml"), "ten orders on the copy").contains("<failure"));
    assert_no_password(&t, &format!("{}{}", out.stdout, out.stderr));
}

#[test]
fn pg_dump_fails_cleanly_when_the_server_is_unreachable() {
    let Some(c) = cluster() else { return };
    let db = c.database("unreach");
    let t = Test::new()
        .env(
            "TEST_DATABASE_URL",
            &format!(
                "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
                free_port()
            ),
        )
        .pipeline("backup", BACKUP_PIPELINE);
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("preflight: cannot connect"), "{out:?}");
    assert!(
        walk(&t.path().join("backups"))
            .iter()
            .all(|p| p.ends_with(".lock"))
    );
    assert_no_password(&t, &format!("{}{}", out.stdout, out.stderr));
}

#[test]
fn a_restore_needing_a_missing_role_changes_nothing() {
    let Some(c) = cluster() else { return };
    let db = c.database("roles");
    let role = format!("gone_owner_{}", std::process::id());
    c.sql("postgres", &format!("create role {role}"));
    c.sql(
        &db,
        &format!("create table t(id int); insert into t values (1); alter table t owner to {role}"),
    );
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = format!(
        "{}-{db}",
        std::fs::read_link(t.latest_run()).expect("run").display()
    );
    c.sql(&db, "drop table t; create table after_backup(x int)");
    c.sql("postgres", &format!("drop role {role}"));
    let copies = format!("select count(*) from pg_database where datname like '{db}\\_\\_%'");
    let databases = c.sql("postgres", &copies);
    let restore = t.run(&["backups", "restore", &id, "--url", &c.url(&db)]);
    assert_eq!(restore.code, 1, "{restore:?}");
    assert!(restore.stderr.contains("FAIL  check roles"), "{restore:?}");
    assert!(restore.stderr.contains(&format!("`{role}`")), "{restore:?}");
    assert_eq!(c.sql("postgres", &copies), databases);
    assert_eq!(
        c.sql(&db, "select to_regclass('after_backup') is not null"),
        "t"
    );
}

#[test]
fn two_backups_into_one_folder_do_not_run_at_once() {
    let Some(c) = cluster() else { return };
    let db = c.database("lock");
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    std::fs::create_dir_all(t.path().join("backups")).expect("mkdir");
    let mut holder = Command::new("flock")
        .arg("--close")
        .arg(t.path().join("backups/.lock"))
        .args(["sleep", "60"])
        .process_group(0)
        .spawn()
        .expect("flock");
    let start = Instant::now();
    let out = loop {
        let out = t.run(&["run", "backup"]);
        // `flock` may not hold the lock yet on the first try.
        if out.code != 0 || start.elapsed() > Duration::from_secs(20) {
            break out;
        }
        std::fs::remove_dir_all(t.path().join("backups")).expect("clean");
        std::fs::create_dir_all(t.path().join("backups")).expect("mkdir");
    };
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(i32::try_from(holder.id()).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = holder.wait();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("another run is writing backups into"),
        "{out:?}"
    );
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn row_counts_come_from_the_snapshot_the_dump_used() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "snap");
    let (locker, t, mut run) = backup_waiting_on_a_lock(c, &db);
    // The snapshot is taken; these rows come after it and are in neither the dump nor the counts.
    c.sql(
        &db,
        "insert into customers select g, 'late' from generate_series(21, 70) g",
    );
    release_lock(c, &db, locker);
    let status = run.wait().expect("portcullis");
    assert!(status.success(), "{}", t.log("backup"));
    let id = format!(
        "{}-{db}",
        std::fs::read_link(t.latest_run()).expect("run").display()
    );
    let manifest = t.read(&format!("backups/{id}/manifest.json"));
    assert!(manifest.contains("\"public.customers\": 20"), "{manifest}");
    assert!(manifest.contains("\"public.orders\": 500"), "{manifest}");
    let restore = t.run(&["backups", "restore", &id, "--url", &c.url(&db)]);
    assert_eq!(restore.code, 0, "{restore:?}");
    assert!(
        restore.stderr.contains("ok    compare row counts"),
        "{restore:?}"
    );
    assert_eq!(c.sql(&db, "select count(*) from customers"), "20");
}

/// A backup whose dump was replaced by a FIFO (its manifest re-signed to match) is refused by
/// `backups verify` at once instead of blocking on the pipe.
#[test]
fn verify_refuses_a_dump_that_is_not_a_plain_file() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "fifo");
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = format!(
        "{}-{db}",
        std::fs::read_link(t.latest_run())
            .expect("latest")
            .display()
    );
    let folder = t.path().join("backups").join(&id);
    let dump = folder.join(format!("{db}.dump"));
    std::fs::remove_file(&dump).expect("remove dump");
    let made = Command::new("mkfifo").arg(&dump).status().expect("mkfifo");
    assert!(made.success());
    // Re-sign the manifest for a 0-byte dump, as portcullis signs it: sha256 of the compact
    // JSON, fields in order, without its own checksum.
    let resign = r#"
import hashlib, json, sys
path = sys.argv[1]
m = json.load(open(path))
m.pop("manifest_sha256")
m["size_bytes"] = 0
m["sha256"] = hashlib.sha256(b"").hexdigest()
m["manifest_sha256"] = hashlib.sha256(json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
json.dump(m, open(path, "w"), indent=2)
"#;
    let signed = Command::new("python3")
        .args(["-c", resign])
        .arg(folder.join("manifest.json"))
        .status()
        .expect("python3");
    assert!(signed.success());
    let list = backups(&t, &["list"]);
    assert!(
        list.stdout.contains(&format!("{id}  valid")),
        "re-signed: {list:?}"
    );
    let mut verify = t.spawn(&["backups", "verify", &id]);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = verify.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = verify.kill();
            panic!("`backups verify` blocked on the FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = verify.wait_with_output().expect("output");
    assert_eq!(status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("is not a regular file"), "{stdout}");
}

/// The free-space preflight asks the file system that holds the backup folder itself, so a
/// small tmpfs is seen as small and the backup is refused before `pg_dump` starts. Needs root
/// to mount the tmpfs; skipped otherwise.
#[test]
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn preflight_sees_the_free_space_of_a_small_tmpfs() {
    let Some(c) = cluster() else { return };
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let db = app_database(c, "tmpfs");
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    let mount = t.path().join("backups");
    std::fs::create_dir(&mount).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let out = t.run(&["run", "backup"]);
    let _ = Command::new("umount").arg(&mount).status();
    assert_eq!(out.code, 1, "{out:?}");
    let log = t.log("backup");
    assert!(log.contains("free, less than the database's"), "{log}");
    assert!(!log.contains("SIGPIPE"), "{log}");
}

/// A `pg_dump` that exits 0 after writing only the first half of its dump: the stage's
/// streaming read by `pg_restore` catches it, and nothing looks like a backup.
#[test]
fn a_dump_cut_short_by_a_lying_pg_dump_fails_verification() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "liar");
    let bin = tempfile::tempdir().expect("bin dir");
    let real = format!("{}/pg_dump", *BIN);
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then exec {real} --version; fi\n\
         {real} \"$@\" > \"$0.out\" || exit 1\nsize=$(wc -c < \"$0.out\")\nhead -c $((size / 2)) \"$0.out\"\nexit 0\n"
    );
    let fake = bin.path().join("pg_dump");
    std::fs::write(&fake, script).expect("fake pg_dump");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::os::unix::fs::symlink(
        format!("{}/pg_restore", *BIN),
        bin.path().join("pg_restore"),
    )
    .expect("pg_restore");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let t = test_for(c, &db)
        .env("PATH", &path)
        .pipeline("backup", BACKUP_PIPELINE);
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 1, "{out:?}");
    let log = t.log("backup");
    assert!(
        log.contains(&format!("`{}`", fake.display())),
        "the fake pg_dump was not the one used: {log}"
    );
    assert!(
        log.contains("verify: FAILED: `pg_restore -f /dev/null` could not read the whole dump"),
        "{log}"
    );
    let list = backups(&t, &["list"]);
    assert!(!list.stdout.contains(" valid "), "{list:?}");
}
