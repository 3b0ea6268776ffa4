//! "A real deploy composes cleanly": `fixtures/deploy-app` shipped by its own pipeline
//! (`fixtures/deploy-app/pipelines/deploy.yml`, every built-in kind in one file) against the
//! PostgreSQL cluster of `pg.rs`, the real Docker engine and a real nginx on the host, as in
//! `bluegreen.rs`. Three outcomes, each asserted in full: a clean first deploy; a migration
//! that fails half-way after the cutover (the database restored exactly, traffic back on the
//! old colour, each rollback one JUnit case); a port-law violation (nothing after it ran).
//!
//! Each test copies the app into its own folder, with its own database, service name, Docker
//! network, images and nginx (whose folder is outside the app, so the port scan never reads
//! it), so the tests run in parallel with the others. Skipped when PostgreSQL, Docker, nginx or
//! a static busybox is missing, unless `PORTCULLIS_REQUIRE` names it.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::bluegreen::{Nginx, Service, components, works};
use crate::harness::{Run, Test, assert_schema_valid, copy_tree, repo_root};
use crate::pg::{BIN, Cluster, assert_no_password, cluster};

/// The pipeline's stages, in file order.
const STAGES: [&str; 9] = [
    "port-law",
    "lint",
    "test",
    "db-integrity",
    "backup",
    "restore-drill",
    "cutover",
    "migrate",
    "smoke",
];
/// Where the runs write their JUnit report: a folder that does not exist beforehand.
const JUNIT: &str = "artifacts/junit/portcullis.xml";
/// The image repository the tests build into (the pipeline's default is `deploy-app-web`).
const IMAGE: &str = "portcullis-deploy-app";

/// One copy of the app with everything it is deployed onto; torn down when dropped.
struct App {
    /// Stopped first: it proxies to the colours.
    nginx: Nginx,
    /// Removes the colours, the lock and the service's network.
    service: Service,
    images: Images,
    /// nginx's folder, apart from the app so that `port-law` does not scan it.
    _edge: Test,
    cluster: &'static Cluster,
    db: String,
    /// The app; portcullis runs here.
    t: Test,
}

/// Image tags built by a test, removed when dropped.
#[derive(Default)]
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = Command::new("docker")
                .args(["rmi", "-f", tag])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A fresh copy of the app, its database loaded from `db/schema.sql`, and an nginx whose
/// upstream file points nowhere yet (no colour is live); `None` when a component is missing.
fn app() -> Option<App> {
    if !components() {
        return None;
    }
    let cluster = cluster()?;
    let db = cluster.database("deploy");
    let path = format!(
        "{}:{}",
        *BIN,
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let t = Test::new()
        .env("DEPLOY_DATABASE_URL", &cluster.url(&db))
        // `migrate` calls `psql`: the one next to the cluster's server.
        .env("PATH", &path);
    copy_tree(&repo_root().join("fixtures/deploy-app"), t.path());
    let loaded = Command::new(format!("{}/psql", *BIN))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "db/schema.sql"])
        .arg(cluster.url(&db))
        .current_dir(t.path())
        .stdin(Stdio::null())
        .output()
        .expect("psql");
    assert!(
        loaded.status.success(),
        "db/schema.sql: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let service = Service::new();
    let edge = Test::new();
    let nginx = Nginx::start(&edge, &service.0);
    Some(App {
        nginx,
        service,
        images: Images::default(),
        _edge: edge,
        cluster,
        db,
        t,
    })
}

impl App {
    /// A release id no other test uses, shaped like a short git sha.
    /// A new release: a version of its own, its image built.
    fn release(&mut self) -> String {
        let sha = self.new_sha();
        self.build(&sha);
        sha
    }

    fn new_sha(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst) as u64;
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in format!("{}-{n}-{}", std::process::id(), self.service.0).bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:07x}", hash & 0x0fff_ffff)
    }

    /// Builds `IMAGE:sha` with the app's own `image/build.sh`, as a release would.
    fn build(&mut self, sha: &str) {
        let out = Command::new("sh")
            .args(["image/build.sh", IMAGE, sha])
            .current_dir(self.t.path())
            .stdin(Stdio::null())
            .output()
            .expect("sh image/build.sh");
        assert!(
            out.status.success(),
            "image/build.sh: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.images.0.push(format!("{IMAGE}:{sha}"));
    }

    /// `portcullis run deploy` for release `sha`, applying `db/migrations/MIGRATION.sql`,
    /// pointed at this test's service, network, nginx and (through the secret) database.
    fn deploy(&self, sha: &str, migration: &str) -> Run {
        let nginx = &self.nginx;
        let vars = [
            format!("GIT_SHA={sha}"),
            format!("IMAGE={IMAGE}"),
            format!("SERVICE={}", self.service.0),
            format!("NETWORK={}-net", self.service.0),
            format!("MIGRATION={migration}"),
            format!(
                "UPSTREAM_FILE={}",
                nginx.dir.join("upstream.conf").display()
            ),
            format!("NGINX_PREFIX={}", nginx.dir.display()),
            format!("NGINX_CONF={}", nginx.dir.join("nginx.conf").display()),
            format!("EDGE=127.0.0.1:{}", nginx.port),
        ];
        let mut args = vec!["run", "deploy", "--junit", JUNIT];
        for var in &vars {
            args.extend(["--var", var.as_str()]);
        }
        self.t.run(&args)
    }

    /// Every stage and rollback log of the latest run, for failure messages.
    fn logs(&self) -> String {
        let mut names: Vec<_> = std::fs::read_dir(self.t.latest_run())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                format!(
                    "--- {}\n{}",
                    p.file_name().unwrap_or_default().to_string_lossy(),
                    std::fs::read_to_string(p).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The whole database as `pg_dump` writes it (schema and data), without the random
    /// `\restrict` key lines recent pg_dump versions add to each dump.
    fn dump(&self) -> String {
        let out = Command::new(format!("{}/pg_dump", *BIN))
            .args(["--no-sync", "-d"])
            .arg(self.cluster.url(&self.db))
            .stdin(Stdio::null())
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn sql(&self, sql: &str) -> String {
        self.cluster.sql(&self.db, sql)
    }

    /// The databases named after this one (rehearsal copies, restores, forensic copies).
    fn copies(&self, kind: &str) -> Vec<String> {
        let names = self.cluster.sql(
            "postgres",
            &format!(
                "select datname from pg_database where datname like '{}\\_\\_{kind}\\_%' order by 1",
                self.db
            ),
        );
        names.lines().map(str::to_owned).collect()
    }

    /// The address of a colour on the service's network (not Docker's default bridge).
    fn ip(&self, colour: &str) -> String {
        let out = Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &format!("{}-{colour}", self.service.0),
            ])
            .output()
            .expect("docker inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `GET /` through nginx: the page of the live colour.
    fn page(&self) -> String {
        match self.nginx.get("/") {
            Ok((200, body)) => body,
            other => panic!("GET / through nginx: {other:?}"),
        }
    }

    /// `KEY=VALUE` lines of `outputs/STAGE.env` in the latest run folder.
    fn outputs(&self, stage: &str) -> Vec<(String, String)> {
        let file = self
            .t
            .latest_run()
            .join("outputs")
            .join(format!("{stage}.env"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The report `--junit` wrote, after checking it against the strict schema and against
    /// the copy in the run folder.
    fn junit(&self) -> String {
        let path = self.t.path().join(JUNIT);
        assert!(
            path.is_file(),
            "--junit {JUNIT} wrote nothing (its folder did not exist before the run)"
        );
        assert_schema_valid(&path);
        assert_schema_valid(&self.t.latest_run().join("junit.xml"));
        let junit = std::fs::read_to_string(path).expect("junit");
        assert_eq!(junit, self.t.junit(), "--junit and the run folder differ");
        junit
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in the start tag that begins `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let head = &tag[..tag.find('>').unwrap_or(tag.len())];
    let start = head.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = head[start..].find('"')?;
    Some(unescape(&head[start..start + len]))
}

/// Each `<testsuite>` of a report: its name and its text up to `</testsuite>`.
fn suites(junit: &str) -> Vec<(String, &str)> {
    junit
        .match_indices("<testsuite ")
        .map(|(i, _)| {
            let rest = &junit[i..];
            let end = rest.find("</testsuite>").unwrap_or(rest.len());
            (attr(rest, "name").unwrap_or_default(), &rest[..end])
        })
        .collect()
}

/// The suite named `name`; panics with the report when there is none, or several.
fn suite<'a>(junit: &'a str, name: &str) -> &'a str {
    let found: Vec<&str> = suites(junit)
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(found.len(), 1, "suite `{name}` in:\n{junit}");
    found[0]
}

/// Each `<testcase>` of a suite: its name and its text up to the next case.
fn cases(suite: &str) -> Vec<(String, &str)> {
    let starts: Vec<usize> = suite.match_indices("<testcase ").map(|(i, _)| i).collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let end = starts.get(k + 1).copied().unwrap_or(suite.len());
            let text = &suite[i..end];
            (attr(text, "name").unwrap_or_default(), text)
        })
        .collect()
}

fn names(cases: &[(String, &str)]) -> Vec<String> {
    cases.iter().map(|(n, _)| n.clone()).collect()
}

/// The case named `name` of a suite's cases; panics when absent.
fn case<'a>(cases: &[(String, &'a str)], name: &str) -> &'a str {
    cases
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("no case `{name}` among {:?}", names(cases)))
}

fn passed(case: &str) -> bool {
    !case.contains("<failure") && !case.contains("<error") && !case.contains("<skipped")
}

/// The message of a case's `<skipped>`.
fn skipped(case: &str) -> Option<String> {
    let at = case.find("<skipped")?;
    attr(&case[at..], "message")
}

/// What the terminal's last summary line counts (`✓ run passed: 9 passed in 12.3s`), as
/// `(status word, count)` pairs.
fn summary(stderr: &str) -> Vec<(String, usize)> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("run passed") || l.contains("run failed"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let counts = line.split_once(": ").map_or("", |(_, c)| c);
    let counts = counts.rsplit_once(" in ").map_or(counts, |(c, _)| c);
    counts
        .split(", ")
        .filter_map(|part| {
            let (n, word) = part.split_once(' ')?;
            Some((word.to_owned(), n.parse().ok()?))
        })
        .collect()
}

/// Checks what every report must hold whatever the outcome: the document's totals are the
/// cases it holds, the pipeline suite has one case per stage in file order, then the
/// `rollbacks` in the order they ran, each once, and no case for anything else (no phantom
/// `not run` case); the stage cases are as many as the terminal's summary counted. Returns
/// the pipeline suite's cases.
fn assert_report_shape<'a>(
    junit: &'a str,
    stderr: &str,
    rollbacks: &[&str],
) -> Vec<(String, &'a str)> {
    let all = junit.matches("<testcase ").count();
    let head = &junit[junit.find("<testsuites").expect("<testsuites>")..];
    assert_eq!(
        attr(head, "tests"),
        Some(all.to_string()),
        "the report's `tests` is not the number of its cases:\n{junit}"
    );
    assert!(
        !junit.contains("message=\"not run\""),
        "a phantom `not run` case:\n{junit}"
    );
    let pipeline = cases(suite(junit, "deploy"));
    let mut expected: Vec<String> = STAGES.iter().map(|s| (*s).to_owned()).collect();
    expected.extend(rollbacks.iter().map(|r| format!("rollback: {r}")));
    assert_eq!(names(&pipeline), expected, "{junit}");
    let counted: usize = summary(stderr).iter().map(|(_, n)| n).sum();
    assert_eq!(
        counted,
        STAGES.len(),
        "the terminal counted {:?}\n{stderr}",
        summary(stderr)
    );
    pipeline
}

/// The checks of `db-integrity` and `restore-drill`, as the pipeline names them.
const INTEGRITY_CHECKS: [&str; 5] = [
    "no orphan invoices",
    "no negative totals",
    "payments never exceed their invoice",
    "some customers",
    "schema the app reads",
];
const DRILL_CHECKS: [&str; 2] = [
    "the restored copy has the schema",
    "the restored copy has the invoices",
];
/// The test cases the stand-in for pytest writes into `reports/pytest.xml`.
const PYTEST_CASES: [&str; 4] = [
    "test_health_route",
    "test_invoices_route",
    "test_gunicorn_binds_the_api_port",
    "test_schema_has_invoices",
];

/// A first deploy of a new release: every stage passes, the backup is verified, the new
/// colour serves the release through nginx, the migration is applied, every output is in
/// the run folder, and the JUnit report counts exactly what ran.
#[test]
fn a_first_deploy_passes_every_gate_and_serves_the_release() {
    let Some(mut app) = app() else { return };
    let sha = app.release();
    let out = app.deploy(&sha, "good");
    assert_eq!(out.code, 0, "{out:?}\n{}", app.logs());
    // Off GitHub Actions everything goes to stderr; stdout stays free for the caller.
    assert_eq!(out.stdout, "", "{out:?}");
    let run_id = std::fs::read_link(app.t.latest_run())
        .expect("latest run")
        .display()
        .to_string();
    for stage in STAGES {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("✓ {stage} ")) && l.contains("passed")),
            "`{stage}` did not pass:\n{}",
            out.stderr
        );
    }
    assert!(
        app.t.log("cutover").contains("first deploy"),
        "{}",
        app.logs()
    );

    // The backup: committed with its manifest, and `backups verify` agrees.
    let id = format!("{run_id}-{}", app.db);
    let folder = app.t.path().join("backups").join(&id);
    assert!(folder.join("manifest.json").is_file(), "{}", app.logs());
    assert!(folder.join(format!("{}.dump", app.db)).is_file());
    let verify = app.t.run(&["backups", "verify", &id, "--dir", "backups"]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(verify.stdout.contains(&format!("ok    {id}")), "{verify:?}");
    assert_eq!(app.copies("rehearsal").len(), 1, "one rehearsal copy");

    // The release is live: blue (a first deploy), through nginx, on the new image.
    let page = app.page();
    assert!(page.contains(&format!("version {sha}")), "{page}");
    assert!(page.contains("colour blue"), "{page}");
    assert_eq!(app.service.containers(), app.service.running(&["blue"]));
    let upstream = app.nginx.upstream();
    assert!(
        upstream.contains(&format!("server {}:3001;", app.ip("blue"))),
        "{upstream}"
    );
    assert!(!upstream.contains("backup"), "{upstream}");

    // The migration ran on the live database.
    assert_eq!(
        app.sql("select count(*) from invoices where due_on = issued_on + 30"),
        "6"
    );

    // Every stage's outputs, built-in kinds' included, are in the run folder.
    let backup = app.outputs("backup");
    assert!(
        backup.contains(&("backup-id".into(), id.clone())),
        "{backup:?}"
    );
    for key in ["path", "sha256", "rehearsal-url"] {
        assert!(backup.iter().any(|(k, _)| k == key), "{key}: {backup:?}");
    }
    let cutover = app.outputs("cutover");
    assert!(
        cutover.contains(&("colour".into(), "blue".into())),
        "{cutover:?}"
    );
    assert!(
        cutover.contains(&("image".into(), format!("{IMAGE}:{sha}"))),
        "{cutover:?}"
    );
    assert!(
        app.outputs("port-law")
            .contains(&("violations".into(), "0".into()))
    );
    assert!(
        app.outputs("smoke")
            .contains(&("statuses".into(), "200".into()))
    );

    // The report: one case per stage, all passed, as many as the terminal counted...
    let junit = app.junit();
    let pipeline = assert_report_shape(&junit, &out.stderr, &[]);
    assert_eq!(summary(&out.stderr), [("passed".to_owned(), STAGES.len())]);
    for (name, case) in &pipeline {
        assert!(passed(case), "{name}: {case}");
    }
    // ... each built-in kind's own cases in its suite, all passed ...
    let smoke_url = format!("GET http://127.0.0.1:{}/", app.nginx.port);
    let backup_steps = [
        "preflight",
        "dump",
        "verify",
        "commit",
        "retention",
        "rehearse",
    ];
    let kinds: [(&str, Vec<&str>); 5] = [
        ("port-law", vec!["port law"]),
        ("db-integrity", INTEGRITY_CHECKS.to_vec()),
        ("backup", backup_steps.to_vec()),
        ("restore-drill", DRILL_CHECKS.to_vec()),
        ("smoke", vec![smoke_url.as_str()]),
    ];
    let mut counted = STAGES.len();
    for (stage, expected) in &kinds {
        let found = cases(suite(&junit, &format!("deploy / {stage}")));
        assert_eq!(names(&found), *expected, "deploy / {stage}");
        for (name, case) in &found {
            assert!(passed(case), "{stage}: {name}: {case}");
        }
        counted += found.len();
    }
    let cutover = cases(suite(&junit, "deploy / cutover"));
    assert_eq!(names(&cutover), [format!("blue-green `{}`", app.service.0)]);
    assert!(passed(cutover[0].1), "{}", cutover[0].1);
    counted += cutover.len();
    // ... and the stand-in for pytest imported from `reports/pytest.xml`.
    let pytest = cases(suite(&junit, "test / pytest"));
    assert_eq!(names(&pytest), PYTEST_CASES, "{junit}");
    for (_, case) in &pytest {
        assert!(passed(case), "{case}");
        assert_eq!(attr(case, "classname").as_deref(), Some("tests.test_app"));
    }
    counted += pytest.len();
    assert_eq!(
        suites(&junit).len(),
        1 + kinds.len() + 2,
        "a suite nobody expects:\n{junit}"
    );
    assert_eq!(counted, junit.matches("<testcase ").count(), "{junit}");

    assert_no_password(&app.t, &format!("{}{}", out.stdout, out.stderr));
}

/// A release whose migration fails half-way, after its colour went live: the database comes
/// back exactly as it was before the run, traffic goes back to the colour that was live, and
/// each rollback is one JUnit case.
#[test]
fn a_failed_migration_restores_the_database_and_the_old_colour() {
    let Some(mut app) = app() else { return };
    let first = app.release();
    let out = app.deploy(&first, "good");
    assert_eq!(out.code, 0, "{out:?}\n{}", app.logs());
    assert!(
        app.page()
            .contains(&format!("version {first}, colour blue"))
    );
    let before = app.dump();
    assert!(before.contains("due_on"), "the good migration ran");

    let second = app.release();
    let out = app.deploy(&second, "bad");
    assert_eq!(out.code, 1, "{out:?}\n{}", app.logs());
    let migrate = app.t.log("migrate");
    assert!(
        migrate.contains("could not create unique index \"customers_email_key\""),
        "{migrate}"
    );
    // Green went live before the migration ran; the rollback put blue back.
    let cutover_log = app.t.log("cutover");
    assert!(
        cutover_log.contains(&format!("`{}-green`", app.service.0)),
        "{cutover_log}"
    );
    for stage in ["cutover", "backup"] {
        assert_eq!(
            out.stderr
                .lines()
                .filter(|l| l.starts_with(&format!("↺ {stage} ")) && l.contains("rolled back"))
                .count(),
            1,
            "`{stage}` rolled back once:\n{}",
            out.stderr
        );
    }

    // The database is exactly as it was: what the migration changed before it failed is gone.
    assert_eq!(
        app.dump(),
        before,
        "the restore differs from the database before the run"
    );
    assert_eq!(
        app.sql("select email from customers where id = 1"),
        "Ana@Example.com"
    );
    assert_eq!(
        app.sql(
            "select to_regclass('public.email_changes') is null and not exists \
             (select 1 from information_schema.columns where table_name = 'customers' \
             and column_name = 'email_verified')"
        ),
        "t"
    );
    let restore =
        std::fs::read_to_string(app.t.latest_run().join("backup.rollback.log")).unwrap_or_default();
    assert!(restore.contains("ok    swap"), "{restore}\n{}", app.logs());
    // The database the migration broke is kept for forensics, with what it did.
    let failed = app.copies("failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        app.cluster.sql(
            &failed[0],
            "select to_regclass('public.email_changes') is not null"
        ),
        "t"
    );

    // Traffic is on the old colour and release; the new colour is gone.
    let page = app.page();
    assert!(
        page.contains(&format!("version {first}, colour blue")),
        "{page}"
    );
    assert!(!page.contains(&second), "{page}");
    assert_eq!(app.service.containers(), app.service.running(&["blue"]));
    let upstream = app.nginx.upstream();
    assert!(
        upstream.contains(&format!("server {}:3001;", app.ip("blue"))),
        "{upstream}"
    );
    assert!(!upstream.contains("backup"), "{upstream}");

    // The report: the stages, then each rollback once (the latest-completed first), passed.
    let junit = app.junit();
    let pipeline = assert_report_shape(&junit, &out.stderr, &["cutover", "backup"]);
    let mut counts = summary(&out.stderr);
    counts.sort();
    assert_eq!(
        counts,
        [
            ("failed".to_owned(), 1),
            ("passed".to_owned(), 7),
            ("skipped".to_owned(), 1)
        ],
        "{}",
        out.stderr
    );
    for stage in &STAGES[..7] {
        assert!(passed(case(&pipeline, stage)), "{stage}");
    }
    let failure = case(&pipeline, "migrate");
    assert!(failure.contains("<failure"), "{failure}");
    assert!(failure.contains("exit code 3"), "{failure}");
    assert_eq!(
        skipped(case(&pipeline, "smoke")).as_deref(),
        Some("needs `migrate`, which failed")
    );
    for rollback in ["rollback: cutover", "rollback: backup"] {
        assert!(passed(case(&pipeline, rollback)), "{rollback}");
    }
    for phantom in ["cutover.rollback", "backup.rollback"] {
        assert!(
            !junit.contains(&format!("name=\"{phantom}\"")),
            "`{phantom}` is reported besides `rollback: ...`:\n{junit}"
        );
    }
    assert_no_password(&app.t, &format!("{}{}", out.stdout, out.stderr));
}

/// The front end moved to a forbidden port: the run stops at `port-law`, and nothing after it
/// ran: no backup, no rehearsal copy, the database untouched, no container, nginx unchanged;
/// the report says why each later stage was skipped.
#[test]
fn a_port_law_violation_stops_the_run_before_anything_changes() {
    let Some(mut app) = app() else { return };
    let package = app.t.path().join("web/package.json");
    let text = std::fs::read_to_string(&package).expect("package.json");
    assert!(text.contains("\"dev\": \"next dev -p 3001\""));
    std::fs::write(
        &package,
        text.replace("next dev -p 3001", "next dev -p 3000"),
    )
    .expect("package.json");
    // The image is there, so only the port law can stop the deploy.
    let sha = app.release();
    let before = app.dump();
    let upstream = app.nginx.upstream();

    let out = app.deploy(&sha, "good");
    assert_eq!(out.code, 1, "{out:?}\n{}", app.logs());
    let finding = "web/package.json:6:25 forbidden port 3000";
    assert!(
        app.t.log("port-law").contains("web/package.json:6:25"),
        "{}",
        app.logs()
    );
    assert!(
        out.stderr.lines().any(|l| l.starts_with("✗ port-law ")),
        "{}",
        out.stderr
    );

    // Nothing after the port law ran.
    assert!(
        !app.t.path().join("backups").exists(),
        "a backup folder was made"
    );
    assert!(app.copies("rehearsal").is_empty());
    assert_eq!(app.dump(), before);
    assert!(
        app.service.containers().is_empty(),
        "{:?}",
        app.service.containers()
    );
    assert!(
        !works(
            "docker",
            &["network", "inspect", &format!("{}-net", app.service.0)]
        ),
        "the service's network was created"
    );
    assert_eq!(app.nginx.upstream(), upstream);
    for stage in &STAGES[1..] {
        assert!(
            !app.t.latest_run().join(format!("{stage}.log")).exists(),
            "`{stage}` ran"
        );
    }
    assert!(!app.t.path().join("reports").exists(), "the tests ran");

    let junit = app.junit();
    let pipeline = assert_report_shape(&junit, &out.stderr, &[]);
    let law = case(&pipeline, "port-law");
    assert!(law.contains("<failure"), "{law}");
    assert!(law.contains("port law: 1 violation"), "{law}");
    // Every other stage comes after the port law: skipped, each saying why.
    let reasons: Vec<(&str, Option<String>)> = STAGES[1..]
        .iter()
        .map(|s| (*s, skipped(case(&pipeline, s))))
        .collect();
    let because = |need: &str, what: &str| Some(format!("needs `{need}`, which {what}"));
    assert_eq!(
        reasons,
        [
            ("lint", because("port-law", "failed")),
            ("test", because("port-law", "failed")),
            ("db-integrity", because("lint", "was skipped")),
            ("backup", because("db-integrity", "was skipped")),
            ("restore-drill", because("backup", "was skipped")),
            ("cutover", because("restore-drill", "was skipped")),
            ("migrate", because("cutover", "was skipped")),
            ("smoke", because("migrate", "was skipped")),
        ],
        "{junit}"
    );
    let findings = cases(suite(&junit, "deploy / port-law"));
    assert_eq!(names(&findings), [finding]);
    assert!(findings[0].1.contains("<failure"), "{}", findings[0].1);
    for stage in &STAGES[1..] {
        assert!(
            suites(&junit)
                .iter()
                .all(|(n, _)| n != &format!("deploy / {stage}")),
            "`{stage}` reported cases"
        );
    }
    assert!(
        !junit.contains("name=\"rollback: "),
        "nothing was rolled back: {junit}"
    );
}

/// The app's pipeline is valid as shipped, with nothing but its defaults.
#[test]
fn the_deploy_pipeline_validates() {
    let t = Test::new();
    copy_tree(&repo_root().join("fixtures/deploy-app"), t.path());
    let out = t.run(&["validate", "deploy"]);
    assert_eq!(out.code, 0, "{out:?}");
}
