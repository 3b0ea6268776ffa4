//! The port law's static mode: the real binary scans fixture trees modelled on public
//! repositories (noise included: comments, millisecond timeouts, lockfiles, committed
//! `node_modules`, a virtualenv, build output) and must report exactly the findings recorded
//! in `fixtures/ports-expected/`, each at its file, line and column; then the same law as a
//! pipeline stage, with its JUnit cases and GitHub annotations.

use serde_json::Value;

use crate::harness::{Run, Test, assert_schema_valid, copy_tree, repo_root};

/// The team policy the fixtures are judged against.
const POLICY: &[&str] = &[
    "--allow",
    "3001=frontend",
    "--allow",
    "5555=api",
    "--allow",
    "80=edge",
    "--allow",
    "443=edge",
    "--forbid",
    "3000",
    "--forbid",
    "3002",
    "--forbid",
    "8000",
];

fn scan(t: &Test, path: &str, format: &str) -> Run {
    let mut args = vec!["ports", path, "--format", format];
    args.extend_from_slice(POLICY);
    t.run(&args)
}

fn findings(run: &Run) -> Vec<Value> {
    let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    json["findings"].as_array().expect("findings").clone()
}

/// One line per finding: `file:line:col port kind scope severity rule`.
fn compact(findings: &[Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{} {} {} {} {} {}",
                f["file"].as_str().unwrap_or("?"),
                f["line"],
                f["column"],
                f["port"],
                f["kind"].as_str().unwrap_or("?"),
                f["scope"].as_str().unwrap_or("?"),
                f["severity"].as_str().unwrap_or("?"),
                f["rule"].as_str().unwrap_or("?"),
            )
        })
        .collect()
}

fn fixture(name: &str) -> String {
    repo_root()
        .join("fixtures/ports")
        .join(name)
        .display()
        .to_string()
}

fn message<'a>(findings: &'a [Value], at: &str) -> &'a str {
    findings
        .iter()
        .find(|f| compact(std::slice::from_ref(f))[0].starts_with(at))
        .and_then(|f| f["message"].as_str())
        .unwrap_or_else(|| panic!("no finding at {at}: {findings:#?}"))
}

/// Every fixture tree gives exactly its recorded findings, and the exit code follows the
/// violations: 1 when there is one, 0 for the compliant tree.
#[test]
fn fixture_trees_give_exactly_their_findings() {
    let t = Test::new();
    for tree in ["team-app", "nextjs-flask", "fastapi-compose", "compliant"] {
        let out = scan(&t, &fixture(tree), "json");
        let expected_file = repo_root().join(format!("fixtures/ports-expected/{tree}.txt"));
        let expected: Vec<String> = std::fs::read_to_string(&expected_file)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        let found = compact(&findings(&out));
        assert_eq!(found, expected, "{tree}: {}", out.stdout);
        let violations = expected.iter().any(|l| l.contains(" violation "));
        assert_eq!(out.code, i32::from(violations), "{tree}: {out:?}");
    }
}

/// The messages say what the line does and why it counts: a Compose default resolved from the
/// project's `.env`, a `PORT` that Next.js ignores, an allowance with its reason, a default
/// port of a server started with no port.
#[test]
fn findings_say_what_and_why() {
    let t = Test::new();
    let found = findings(&scan(&t, &fixture("team-app"), "json"));
    assert!(
        message(&found, "docker-compose.yml:32:24 3002").contains("(`ADMIN_PORT` from .env:2)"),
        "{found:#?}"
    );
    assert!(
        message(&found, "frontend/.env:3:6 3002")
            .contains("Next.js does not read `PORT` from `.env` files")
    );
    assert!(
        message(&found, "scripts/dev.sh:7:29 8000")
            .starts_with("allowed by comment (the docs preview is only run by hand, on loopback)")
    );
    assert!(
        message(&found, "frontend/package.json:9:19 3000")
            .contains("`next dev` with no port listens on 3000, its default")
    );
    // No path leaves the scanned root, and nothing comes from skipped folders.
    for f in &found {
        let file = f["file"].as_str().expect("file");
        assert!(
            !file.starts_with('/') && !file.contains("fixtures"),
            "{file}"
        );
        assert!(
            !["node_modules", ".next", "dist/", "pyenv312", "package-lock",]
                .iter()
                .any(|s| file.contains(s)),
            "{file}"
        );
    }
    // Human output: `file:line:col: severity[rule]: message` and a count.
    let human = scan(&t, &fixture("nextjs-flask"), "human");
    assert!(
        human.stdout.contains(
            "package.json:7:18: violation[forbidden]: port 3000 is forbidden: `next dev` with no port"
        ),
        "{human:?}"
    );
    assert!(
        human.stdout.ends_with("2 violations, 3 notes\n"),
        "{human:?}"
    );
}

/// `.gitignore` is honoured; dependency, virtualenv, build and `.git` folders are skipped even
/// when nothing ignores them; dotfiles and dot-folders (`.env`, `.flaskenv`, `.github/`) are
/// read.
#[test]
fn walk_honours_gitignore_and_skips_vendored_trees_but_reads_dotfiles() {
    let t = Test::new()
        .file(".gitignore", "scratch/\n*.local.yml\n")
        .file("scratch/Dockerfile", "FROM x\nEXPOSE 3000\n")
        .file(
            "docker-compose.local.yml",
            "services:\n  a:\n    ports: [\"3000:3000\"]\n",
        )
        .file(
            "node_modules/next/package.json",
            "{\"scripts\": {\"dev\": \"next dev\"}}\n",
        )
        .file("myenv/pyvenv.cfg", "home = /usr/bin\n")
        .file(
            "myenv/lib/server.py",
            "app = Flask(__name__)\napp.run(port=3000)\n",
        )
        .file(".git/hooks/pre-push.sh", "next dev\n")
        .file("build/Procfile", "web: next dev\n")
        .file("coverage/x.js", "app.listen(3000)\n")
        .file(
            ".github/workflows/e2e.yml",
            "jobs:\n  e2e:\n    steps:\n      - run: next dev -p 3002\n",
        )
        .file(".flaskenv", "FLASK_RUN_PORT=8000\n")
        .file(
            "src/server.js",
            "// app.listen(3000)\napp.listen(process.env.PORT || 3002)\n",
        );
    let out = t.run(&[
        "ports", ".", "--allow", "3001", "--forbid", "3000", "--forbid", "3002", "--forbid",
        "8000", "--format", "json",
    ]);
    assert_eq!(
        compact(&findings(&out)),
        [
            ".flaskenv:1:16 8000 env host violation forbidden",
            ".github/workflows/e2e.yml:4:26 3002 bind host violation forbidden",
            "src/server.js:2:32 3002 default host violation forbidden",
        ],
        "{out:?}"
    );
    // With no PATH and no `--live`, the current folder is scanned.
    let again = t.run(&[
        "ports", "--allow", "3001", "--forbid", "3000", "--forbid", "3002", "--forbid", "8000",
        "--format", "json",
    ]);
    assert_eq!(again.stdout, out.stdout);
}

/// An allowance comment turns exactly one finding for its port on its line into a note; an
/// allowance that matches nothing is reported, so stale ones do not pile up.
#[test]
fn allow_comment_suppresses_one_finding_and_stale_ones_are_noted() {
    let t = Test::new().file(
        "docker-compose.yml",
        "services:\n  a:\n    ports:\n      # portcullis: allow-port 8000 legacy admin, removed in Q3\n      - \"8000:8000\"\n      - \"8000-8001:9000-9001\"\n      - \"5555:5555\" # portcullis: allow-port 6000 typo\n",
    );
    let out = t.run(&[
        "ports", ".", "--allow", "5555", "--forbid", "8000", "--format", "json",
    ]);
    let found = findings(&out);
    assert_eq!(
        compact(&found),
        [
            "docker-compose.yml:5:10 8000 publish host note allowed",
            "docker-compose.yml:6:10 8000 publish host violation forbidden",
            "docker-compose.yml:7:21 6000 reference host note unused-allow",
        ],
        "{out:?}"
    );
    assert!(message(&found, "docker-compose.yml:5:10").contains("legacy admin, removed in Q3"));
    assert_eq!(out.code, 1);
}

/// `--format junit` validates against the strict schema, with one failing case per violation
/// and the file as the class name.
#[test]
fn junit_format_is_schema_valid() {
    let t = Test::new();
    let out = scan(&t, &fixture("team-app"), "junit");
    assert_eq!(out.code, 1, "{out:?}");
    let file = t.path().join("ports.xml");
    std::fs::write(&file, &out.stdout).expect("write");
    assert_schema_valid(&file);
    assert!(out.stdout.contains("failures=\"11\""), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "<testcase name=\"frontend/package.json:9:19 forbidden port 3000\" classname=\"frontend/package.json\"><failure"
        ),
        "{}",
        out.stdout
    );
}

/// As a stage: each violation is a failed JUnit case named by its place, annotated in GitHub
/// mode at its file and line (relative to the repository, through the `scan:` root); the
/// stage fails and what needs it is skipped. A compliant tree passes with one case.
#[test]
fn stage_reports_each_violation_as_a_case_and_an_annotation() {
    let t = Test::new().pipeline(
        "deploy",
        "version: 1\nstages:\n  port-law:\n    needs: [clean]\n    uses: ports\n    with:\n      allow: { 3001: frontend, 5555: api }\n      forbid: [3000, 3002, 8000]\n      scan: [web]\n  clean:\n    uses: ports\n    with:\n      allow: [3001, 5555]\n      forbid: [3000]\n      scan: [ok/web/package.json]\n  deploy:\n    needs: [port-law]\n    run: echo deployed\n",
    );
    copy_tree(
        &repo_root().join("fixtures/ports/nextjs-flask"),
        &t.path().join("web"),
    );
    copy_tree(
        &repo_root().join("fixtures/ports/compliant"),
        &t.path().join("ok"),
    );
    let t = t.env("GITHUB_ACTIONS", "true");
    let out = t.run(&["run", "deploy"]);
    assert_eq!(out.code, 1, "{out:?}");
    for (line, col) in [(7, 18), (10, 15)] {
        assert!(
            out.stdout.contains(&format!(
                "::error file=web/package.json,line={line},col={col},title=portcullis%3A web/package.json%3A{line}%3A{col} forbidden port 3000::port 3000 is forbidden"
            )),
            "{}",
            out.stdout
        );
    }
    let junit = t.junit();
    assert!(
        junit.contains("<testcase name=\"web/package.json:7:18 forbidden port 3000\""),
        "{junit}"
    );
    // The loopback-only Flask port is a note: a passing case that says so.
    assert!(
        junit.contains("note: port 5328 is not allowed, but binds loopback only"),
        "{junit}"
    );
    assert!(
        junit.contains("<testcase name=\"port law\" classname=\"deploy / clean\""),
        "{junit}"
    );
    assert!(
        out.stderr
            .contains("skipped: needs `port-law`, which failed")
            || out
                .stdout
                .contains("skipped: needs `port-law`, which failed"),
        "{out:?}"
    );
    let log = t.log("port-law");
    assert!(
        log.contains("2 violations, 3 notes in 8 files scanned"),
        "{log}"
    );
    let xml = t.latest_run().join("junit.xml");
    assert_schema_valid(&xml);
}

/// A `with:` block that cannot be right is refused before anything runs, at its line.
#[test]
fn stage_settings_are_validated() {
    let t = Test::new().pipeline(
        "bad",
        "version: 1\nstages:\n  law:\n    uses: ports\n    with:\n      allow: { 3001: web }\n      forbid: [3001, 70000]\n      require-listening: [3001]\n      scna: [.]\n",
    );
    let out = t.run(&["validate", "bad"]);
    assert_eq!(out.code, 2, "{out:?}");
    for needle in [
        "port 3001 is both allowed and forbidden",
        "pipelines/bad.yml:7:22",
        "each entry of `forbid` is out of range",
        "`require-listening` is checked on the running machine",
        "unknown key `scna`",
        "did you mean `scan`?",
    ] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
}

/// A tree the way real repositories look on day one: a forbidden port in application code, in
/// tests and fixtures, in a compose file under `tests/`, and in old code kept aside.
fn day_one(t: &Test) {
    for (path, text) in [
        (
            "web/src/api.ts",
            "export const api = fetch(\"http://localhost:3000/api\");\n",
        ),
        (
            "web/src/app.test.ts",
            "const url = \"http://localhost:3000/\";\n",
        ),
        ("tests/test_api.py", "BASE = \"http://localhost:8000/\"\n"),
        (
            "shop/fixtures/data.json",
            "{\"url\": \"http://127.0.0.1:8000/img\"}\n",
        ),
        (
            "tests/docker-compose.yml",
            "services:\n  db:\n    image: postgres\n    ports:\n      - \"8000:5432\"\n",
        ),
        (
            "legacy/client.js",
            "module.exports = \"http://localhost:3002\";\n",
        ),
    ] {
        let file = t.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    }
}

fn ports(t: &Test, extra: &[&str]) -> Run {
    let mut args = vec!["ports", "."];
    args.extend_from_slice(POLICY);
    args.extend_from_slice(extra);
    t.run(&args)
}

/// References in tests and fixtures are notes that say why; a port published from a compose
/// file under `tests/` still counts; `--exclude` and `--include` choose what is read.
#[test]
fn test_trees_are_notes_and_scope_is_chosen() {
    let t = Test::new();
    day_one(&t);
    let r = ports(&t, &["--format", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let all = compact(&findings(&r));
    let violations: Vec<&String> = all.iter().filter(|l| l.contains(" violation ")).collect();
    assert_eq!(violations.len(), 3, "{all:#?}");
    assert!(
        violations
            .iter()
            .any(|l| l.starts_with("web/src/api.ts:1:")),
        "{all:#?}"
    );
    assert!(
        violations
            .iter()
            .any(|l| l.starts_with("tests/docker-compose.yml:5:")),
        "{all:#?}"
    );
    assert!(
        violations
            .iter()
            .any(|l| l.starts_with("legacy/client.js:1:")),
        "{all:#?}"
    );
    let f = findings(&r);
    let note = message(&f, "web/src/app.test.ts:1:");
    assert!(note.starts_with("only a note, in a test file"), "{note}");
    let note = message(&f, "shop/fixtures/data.json:1:");
    assert!(
        note.starts_with("only a note, in a test, fixture or sample folder"),
        "{note}"
    );

    let r = ports(
        &t,
        &[
            "--format",
            "json",
            "--exclude",
            "legacy",
            "--exclude",
            "tests/**",
        ],
    );
    let all = compact(&findings(&r));
    assert!(
        all.iter()
            .all(|l| !l.starts_with("legacy/") && !l.starts_with("tests/")),
        "{all:#?}"
    );
    assert_eq!(r.code, 1, "api.ts still fails: {all:#?}");
    let r = ports(&t, &["--format", "json", "--include", "web/**"]);
    let all = compact(&findings(&r));
    assert!(all.iter().all(|l| l.starts_with("web/")), "{all:#?}");
    let r = ports(&t, &["--exclude", "a[b"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("`a[b` is not a glob"), "{r:?}");
}

/// `--write-baseline` makes the first run pass; `--baseline` then fails only on new
/// violations, keeps matching lines that moved, and reports entries whose code was fixed.
#[test]
fn baseline_passes_day_one_and_fails_only_on_new_violations() {
    let t = Test::new();
    day_one(&t);
    let r = ports(&t, &["--write-baseline", "ports-baseline.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("wrote 3 violations to `ports-baseline.json`"),
        "{r:?}"
    );
    let r = ports(&t, &["--baseline", "ports-baseline.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("0 violations"), "{r:?}");
    assert!(
        r.stdout.contains("in the baseline `ports-baseline.json`"),
        "{r:?}"
    );

    // Lines move, the compose file is fixed, a new violation appears.
    std::fs::write(
        t.path().join("web/src/api.ts"),
        "// the API client\n\nexport const api = fetch(\"http://localhost:3000/api\");\n",
    )
    .expect("write");
    std::fs::remove_file(t.path().join("tests/docker-compose.yml")).expect("rm");
    std::fs::write(
        t.path().join("web/src/admin.ts"),
        "const admin = \"http://localhost:3002/\";\n",
    )
    .expect("write");
    let r = ports(
        &t,
        &["--baseline", "ports-baseline.json", "--format", "json"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let f = findings(&r);
    let violations: Vec<String> = compact(&f)
        .into_iter()
        .filter(|l| l.contains(" violation "))
        .collect();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].starts_with("web/src/admin.ts:1:"),
        "{violations:#?}"
    );
    let fixed = message(&f, "tests/docker-compose.yml:5:");
    assert!(fixed.contains("no longer finds: remove it"), "{fixed}");

    // The same baseline and scope in a pipeline stage: the new violation alone fails it.
    let t = t.pipeline(
        "gate",
        "version: 1\nstages:\n  law:\n    uses: ports\n    with:\n      allow: [3001, 5555]\n      forbid: [3000, 3002, 8000]\n      exclude: [legacy]\n      baseline: ports-baseline.json\n",
    );
    let run = t.run(&["run", "gate"]);
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("law");
    assert!(log.contains("web/src/admin.ts:1:"), "{log}");
    assert!(log.contains("1 violation, "), "{log}");
    std::fs::remove_file(t.path().join("web/src/admin.ts")).expect("rm");
    let run = t.run(&["run", "gate"]);
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("law"));

    let r = ports(&t, &["--baseline", "missing.json"]);
    assert_eq!(r.code, 2, "{r:?}");
    std::fs::write(t.path().join("bad.json"), "{}").expect("write");
    let r = ports(&t, &["--baseline", "bad.json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is not a port baseline"), "{r:?}");
}

/// Past a screenful the human output ends with counts; JSON always carries them; past 100
/// findings the JUnit report has one case per file.
#[test]
fn many_findings_are_summarised() {
    let t = Test::new();
    for i in 0..60 {
        let file = t.path().join(format!("svc{}/client{i}.ts", i % 3));
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            file,
            "export const a = \"http://localhost:3000/\";\nexport const b = \"http://localhost:8000/\";\n",
        )
        .expect("write");
    }
    let r = ports(&t, &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("summary: 120 violations, 0 notes"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("port     3000: 60 violations; 8000: 60 violations"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("folder   svc0/: 40 violations"),
        "{}",
        r.stdout
    );
    let r = ports(&t, &["--format", "json"]);
    let json: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(json["summary"]["violations"], 120);
    assert_eq!(
        json["summary"]["by_port"]["3000"],
        serde_json::json!([60, 0])
    );
    let r = ports(&t, &["--format", "junit"]);
    assert_eq!(
        r.stdout.matches("<testcase ").count(),
        60,
        "one case per file"
    );
    assert_eq!(r.stdout.matches("<failure ").count(), 60);
    let xml = t.path().join("ports.xml");
    std::fs::write(&xml, &r.stdout).expect("write");
    assert_schema_valid(&xml);
    let t = t.pipeline(
        "gate",
        "version: 1\nstages:\n  law:\n    uses: ports\n    with: { allow: [3001], forbid: [3000, 8000] }\n",
    );
    let run = t.run(&["run", "gate"]);
    assert_eq!(run.code, 1, "{run:?}");
    let junit = t.junit();
    assert_eq!(
        junit.matches("classname=\"gate / law\"").count(),
        60,
        "{junit}"
    );
    assert!(
        t.log("law").contains("summary: 120 violations"),
        "{}",
        t.log("law")
    );
}

/// Ports the scan used to miss: what a dev container forwards and publishes, the container side
/// of a mapping, Ruby and front-end dev servers in Procfile variants, a local address written as
/// separate `host` and `port` fields, and (the generic layer) a `port` setting of any server or
/// client, which names a forbidden port wherever it points.
#[test]
fn more_places_ports_hide() {
    let t = Test::new()
        .file(
            ".devcontainer/devcontainer.json",
            "{\n  // the editor forwards these\n  \"forwardPorts\": [3000, 5555],\n  \"appPort\": [\"8000:8000\"],\n  \"portsAttributes\": { \"3002\": { \"label\": \"docs\" } }\n}\n",
        )
        .file("docker-compose.yml", "services:\n  web:\n    image: web\n    ports:\n      - \"3001:3000\"\n      - \"5555:5555\"\n")
        .file("Procfile.dev", "web: bundle exec rails server -b 0.0.0.0 -p 3002\ndocs: npx astro dev --port 8000\n")
        .file(
            "config/cache.yml",
            "redis:\n  host: localhost\n  port: 3000\nserver:\n  port: 3002\n",
        )
        .file(
            "app/db.py",
            "a = connect(host=\"127.0.0.1\", port=8000)\nb = connect(host=\"db.internal\", port=3000)\n",
        )
        .file("web/client.ts", "export const cfg = { hostname: 'localhost', port: 3002 };\n");
    let r = scan(&t, ".", "json");
    let all = compact(&findings(&r));
    let expected = [
        ".devcontainer/devcontainer.json:3:20 3000 publish host violation forbidden",
        ".devcontainer/devcontainer.json:4:16 8000 publish host violation forbidden",
        ".devcontainer/devcontainer.json:5:25 3002 reference container violation forbidden",
        "Procfile.dev:1:45 3002 bind host violation forbidden",
        "Procfile.dev:2:28 8000 bind host violation forbidden",
        "app/db.py:1:36 8000 reference host violation forbidden",
        "app/db.py:2:38 3000 env container violation forbidden",
        "config/cache.yml:3:9 3000 reference host violation forbidden",
        "config/cache.yml:5:9 3002 env container violation forbidden",
        "docker-compose.yml:5:15 3000 bind container violation forbidden",
        "web/client.ts:1:51 3002 reference host violation forbidden",
    ];
    assert_eq!(all, expected, "{}", r.stdout);
}

/// The second and third corpora (`fixtures/ports-unseen/`: Django, Rails, Spring Boot, Go,
/// Remix, Nuxt, SvelteKit, Astro, a dev container, a Helm chart, Caddy, Traefik, HAProxy,
/// Procfile variants, a test-heavy tree; `fixtures/ports-third/`: Express, NestJS, Deno, Bun,
/// Laravel, PHP, .NET, Compose defaults, Kubernetes, nginx, systemd, workflow services, Vue CLI,
/// Gatsby, Streamlit, `.flaskenv`; `fixtures/ports-fourth/`: Koa, hapi, Fastify, aiohttp,
/// tornado, Sanic, Compose `expose`, a Deployment, Dockerfile `ENV`, uvicorn in a Makefile,
/// actix, Spring YAML, socketserver, systemd, uWSGI, supervisord; `fixtures/ports-fifth/`,
/// `-sixth/`, `-seventh/`, `-eighth/` and `-ninth/`, 107 trees from Envoy to PostgREST), whose `.expected` files were
/// written before their first scan: every tree gives exactly its expected violations, at their
/// file, line and port, and its expected notes, but for the misses a corpus's `.known-misses`
/// lists with their reason, which must still be missed (a fix updates the list).
#[test]
fn unseen_corpus_gives_its_expected_findings() {
    let t = Test::new();
    let mut trees: Vec<_> = [
        "fixtures/ports-unseen",
        "fixtures/ports-third",
        "fixtures/ports-fourth",
        "fixtures/ports-fifth",
        "fixtures/ports-sixth",
        "fixtures/ports-seventh",
        "fixtures/ports-eighth",
        "fixtures/ports-ninth",
        "fixtures/ports-tenth",
        "fixtures/ports-eleventh",
        "fixtures/ports-twelfth",
        "fixtures/ports-thirteenth",
        "fixtures/ports-fourteenth",
        "fixtures/ports-fifteenth",
    ]
    .iter()
    .flat_map(|c| {
        std::fs::read_dir(repo_root().join(c))
            .expect("corpus")
            .flatten()
    })
    .map(|e| e.path())
    .filter(|p| p.is_dir())
    .collect();
    trees.sort();
    assert!(trees.len() >= 274, "{trees:?}");
    for tree in trees {
        let known = std::fs::read_to_string(tree.parent().expect("corpus").join(".known-misses"))
            .unwrap_or_default();
        let name = tree
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let missed: Vec<String> = known
            .lines()
            .filter_map(|l| l.split('#').next())
            .filter_map(|l| l.trim().strip_prefix(&format!("{name} ")))
            .map(str::to_owned)
            .collect();
        let expected = std::fs::read_to_string(tree.join(".expected")).expect(".expected");
        let mut want: Vec<String> = expected
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        want.retain(|w| !missed.contains(w));
        want.sort();
        // The corpora's own law (their READMEs): 80 and 443 are not allowed there.
        let path = tree.display().to_string();
        let mut args = vec!["ports", path.as_str(), "--format", "json"];
        args.extend_from_slice(&[
            "--allow", "3001", "--allow", "5555", "--forbid", "3000", "--forbid", "3002",
            "--forbid", "8000",
        ]);
        let run = t.run(&args);
        let mut got: Vec<String> = findings(&run)
            .iter()
            .filter(|f| {
                f["severity"] == "violation"
                    || want.iter().any(|w| {
                        w.ends_with(" note")
                            && w.starts_with(&format!(
                                "{}:{} ",
                                f["file"].as_str().unwrap_or(""),
                                f["line"]
                            ))
                    })
            })
            .map(|f| {
                format!(
                    "{}:{} {} {}",
                    f["file"].as_str().unwrap_or("?"),
                    f["line"],
                    f["port"],
                    f["severity"].as_str().unwrap_or("?")
                )
            })
            .collect();
        got.sort();
        // Two findings of one port on one line (two URLs) are one expected line.
        got.dedup();
        assert_eq!(got, want, "{}: {}", tree.display(), run.stdout);
    }
}
