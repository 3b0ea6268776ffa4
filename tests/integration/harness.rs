//! A small builder: write a pipeline into a temp dir, run `portcullis`, look at what it left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

pub(crate) struct Test {
    pub(crate) dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Test {
    pub(crate) fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    /// Writes `pipelines/NAME.yml`.
    pub(crate) fn pipeline(self, name: &str, yaml: &str) -> Test {
        self.file(&format!("pipelines/{name}.yml"), yaml)
    }

    pub(crate) fn file(self, path: &str, contents: &str) -> Test {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, contents).expect("write");
        self
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.into(), value.into()));
        self
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `portcullis ARGS` as a GitHub Actions step: `GITHUB_ACTIONS=true`, with `$GITHUB_OUTPUT`
    /// and `$GITHUB_STEP_SUMMARY` in the test folder, read by [`Test::github_output`] and
    /// [`Test::github_summary`].
    pub(crate) fn github(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(args);
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.path().join("gh-output"))
            .env("GITHUB_STEP_SUMMARY", self.path().join("summary.md"));
        cmd
    }

    pub(crate) fn github_output(&self) -> String {
        self.read("gh-output")
    }

    pub(crate) fn github_summary(&self) -> String {
        self.read("summary.md")
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let output: Output = self.command(args).output().expect("run portcullis");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portcullis")
    }

    pub(crate) fn latest_run(&self) -> PathBuf {
        self.dir.path().join(".portcullis/runs/latest")
    }

    pub(crate) fn junit(&self) -> String {
        std::fs::read_to_string(self.latest_run().join("junit.xml"))
            .expect("junit.xml in the run folder")
    }

    pub(crate) fn log(&self, stage: &str) -> String {
        std::fs::read_to_string(self.latest_run().join(format!("{stage}.log"))).unwrap_or_default()
    }

    pub(crate) fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(path)).unwrap_or_default()
    }

    /// Waits until `path` exists (a stage has reached a point); panics after 20 s.
    pub(crate) fn wait_for(&self, path: &str) {
        let full = self.dir.path().join(path);
        let start = Instant::now();
        while !full.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "`{path}` never appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a process is still alive (zombies count as gone).
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Reads pids a stage wrote, one per line.
pub(crate) fn pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Whether a component named in `PORTCULLIS_REQUIRE` must be present.
pub(crate) fn required(component: &str) -> bool {
    std::env::var("PORTCULLIS_REQUIRE").is_ok_and(|v| v.split(',').any(|c| c.trim() == component))
}

/// Validates a JUnit file against the strict Jenkins schema with `xmllint`.
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
pub(crate) fn assert_schema_valid(xml: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/junit-10.xsd");
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(xml)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{} does not validate:\n{}\n{}",
            xml.display(),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(xml).unwrap_or_default()
        ),
        Err(_) if !required("xmllint") => {
            eprintln!("skipped: `xmllint` is not installed (Debian: libxml2-utils)")
        }
        Err(e) => panic!("xmllint is required (PORTCULLIS_REQUIRE) but cannot run: {e}"),
    }
}

/// The repository root, where the shipped pipelines live.
pub(crate) fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every pipeline shipped in `pipelines/` and `fixtures/pipelines/`, as paths relative to the
/// repository root.
pub(crate) fn shipped_pipelines() -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["pipelines", "fixtures/pipelines"] {
        let entries = std::fs::read_dir(repo_root().join(dir)).expect("read pipeline folder");
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yml") || name.ends_with(".yaml") {
                found.push(format!("{dir}/{name}"));
            }
        }
    }
    found.push("fixtures/deploy-app/pipelines/deploy.yml".to_owned());
    found.sort();
    assert!(!found.is_empty(), "no shipped pipelines found");
    found
}

/// Runs a Python script that needs `jsonschema` and `yaml` (PyPI: jsonschema, pyyaml) with
/// `args`, from the repository root; `None` (with a message) when they are not installed and
/// `PORTCULLIS_REQUIRE` does not name `python-jsonschema`.
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
pub(crate) fn python_yaml(script: &str, args: &[&str]) -> Option<Output> {
    let probe = Command::new("python3")
        .args(["-c", "import jsonschema, yaml"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) if required("python-jsonschema") => panic!(
            "python-jsonschema is required (PORTCULLIS_REQUIRE) but cannot be imported:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if required("python-jsonschema") => {
            panic!("python-jsonschema is required (PORTCULLIS_REQUIRE) but python3 cannot run: {e}")
        }
        _ => {
            eprintln!(
                "skipped: Python's `jsonschema` and `yaml` are not installed \
                 (python3 -m pip install jsonschema pyyaml)"
            );
            return None;
        }
    }
    Some(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .current_dir(repo_root())
            .output()
            .expect("run python3"),
    )
}

/// Copies a folder tree (files and folders only).
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A TCP port nothing listens on now: bound on loopback, read, released.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A loopback HTTP server for at most `limit` requests; `reply` gives each whole response.
pub(crate) fn http_server(limit: usize, reply: impl Fn() -> String + Send + 'static) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(limit) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(reply().as_bytes());
        }
    });
    port
}
