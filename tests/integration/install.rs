//! The action's install step, `.github/action/install.sh`, run as action.yml runs it: against a
//! release served from a folder (`file://`), made from this test binary under the names the
//! script gives, with its `SHA256SUMS` written here. The build fallback is replaced through
//! `PORTCULLIS_INSTALL_BUILD` by a copy of the same binary, so a test sees which path was taken
//! without a 13-minute `cargo install`. Also: the release workflow names what the script reads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::harness::{BIN, python_yaml, repo_root};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn script() -> PathBuf {
    repo_root().join(".github/action/install.sh")
}

/// `install.sh ARGS` (one of its naming commands), its stdout trimmed.
fn names(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("run install.sh");
    assert!(out.status.success(), "install.sh {args:?}: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A temp folder holding a release folder (`releases/<tag>/...`, the download base is
/// `file://.../releases`) and the install root.
struct Release {
    dir: tempfile::TempDir,
    tag: String,
}

impl Release {
    fn new() -> Release {
        Release {
            dir: tempfile::tempdir().expect("temp dir"),
            tag: format!("v{VERSION}"),
        }
    }

    fn base(&self) -> String {
        format!("file://{}", self.dir.path().join("releases").display())
    }

    fn folder(&self) -> PathBuf {
        self.dir.path().join("releases").join(&self.tag)
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn installed(&self) -> PathBuf {
        self.root().join("bin/portcullis")
    }

    /// Publishes what the release workflow publishes: for each target, this test binary as
    /// `portcullis` in the archive named by `install.sh asset`; the source hash under
    /// `install.sh source-asset`; `SHA256SUMS` of both.
    fn publish(self, targets: &[&str], source_hash: &str) -> Release {
        let folder = self.folder();
        std::fs::create_dir_all(&folder).expect("mkdir");
        let mut sums = String::new();
        for target in targets {
            let asset = names(&["asset", self.tag.as_str(), target]);
            std::fs::write(folder.join(&asset), archive()).expect("write archive");
            sums.push_str(&format!(
                "{}  {asset}
",
                sha256_hex(archive())
            ));
        }
        let source_asset = names(&["source-asset", self.tag.as_str()]);
        std::fs::write(folder.join(&source_asset), format!("{source_hash}\n")).expect("write");
        sums.push_str(&format!(
            "{}  {source_asset}\n",
            sha256_hex(format!("{source_hash}\n").as_bytes())
        ));
        std::fs::write(folder.join("SHA256SUMS"), sums).expect("write sums");
        self
    }

    /// Runs the install as action.yml does on a `runner` (`runner.os/runner.arch`), downloading
    /// from `base`. The build fallback copies this test binary and says so on stdout.
    fn install(&self, runner: &str, base: &str, env: &[(&str, &str)]) -> Output {
        let (os, arch) = runner.split_once('/').expect("OS/ARCH");
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .env("PORTCULLIS_INSTALL_ROOT", self.root())
            .env("PORTCULLIS_DOWNLOAD_BASE", base)
            .env("PORTCULLIS_OS", os)
            .env("PORTCULLIS_ARCH", arch)
            .env("PORTCULLIS_REF", "v1")
            .env("FAKE_BUILD_BIN", BIN)
            .env(
                "PORTCULLIS_INSTALL_BUILD",
                r#"echo "fake build of $PORTCULLIS_SOURCE"; mkdir -p "$PORTCULLIS_INSTALL_ROOT/bin" && cp "$FAKE_BUILD_BIN" "$PORTCULLIS_INSTALL_ROOT/bin/portcullis""#,
            )
            .env_remove("GITHUB_ACTIONS")
            .env_remove("PORTCULLIS_SOURCE")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run install.sh")
    }
}

/// This test binary as `portcullis` in a `.tar.gz`, made once for every test.
fn archive() -> &'static [u8] {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let staging = tempfile::tempdir().expect("temp dir");
        std::fs::copy(BIN, staging.path().join("portcullis")).expect("copy the binary");
        // gzip -1: the debug binary is large and only the format matters here.
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"tar -cf - -C "$1" portcullis | gzip -1"#)
            .arg("tar")
            .arg(staging.path())
            .output()
            .expect("tar");
        assert!(out.status.success(), "{out:?}");
        out.stdout
    })
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn this_source() -> String {
    names(&["source-hash"])
}

#[test]
fn a_release_built_from_this_source_is_downloaded_checked_and_installed() {
    let release = Release::new().publish(
        &["x86_64-unknown-linux-musl", "aarch64-apple-darwin"],
        &this_source(),
    );
    let out = release.install("Linux/X64", &release.base(), &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("fake build"),
        "no build: {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "installed portcullis {VERSION} (release `v{VERSION}`, `x86_64-unknown-linux-musl`, sha256 verified)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("action ref `v1`"), "{stderr}");

    let version = Command::new(release.installed())
        .arg("--version")
        .output()
        .expect("the installed binary runs");
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("portcullis {VERSION}")
    );
    let left: Vec<_> = std::fs::read_dir(release.root().join("bin"))
        .expect("bin")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["portcullis"], "nothing else left in bin/");
}

#[test]
fn a_tampered_archive_is_refused_and_nothing_is_installed() {
    let release = Release::new().publish(&["x86_64-unknown-linux-musl"], &this_source());
    let asset = names(&["asset", release.tag.as_str(), "x86_64-unknown-linux-musl"]);
    let archive = release.folder().join(&asset);
    let mut bytes = std::fs::read(&archive).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, bytes).expect("write");

    let out = release.install("Linux/X64", &release.base(), &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("error: checksum mismatch for `{asset}`"))
            && stderr.contains("nothing was installed")
            && stderr.contains("help: "),
        "{stderr}"
    );
    assert!(
        !stdout.contains("fake build"),
        "a mismatch never builds: {stdout}"
    );
    assert!(!release.installed().exists(), "nothing installed");

    // In a GitHub job the same error is an annotation.
    let out = release.install("Linux/X64", &release.base(), &[("GITHUB_ACTIONS", "true")]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "::error title=portcullis install::checksum mismatch for `{asset}`"
        )),
        "{stdout}"
    );
    assert!(!release.installed().exists(), "nothing installed");
}

/// Every way of having no usable release builds from source, and says why.
#[test]
fn without_a_usable_release_the_install_builds_from_source() {
    struct Case<'a> {
        name: &'a str,
        /// The source hash of the published release; `None`: nothing is published.
        published: Option<&'a str>,
        runner: &'a str,
        /// `None`: the fake release's folder.
        base: Option<&'a str>,
        reason: &'a str,
    }
    let this = this_source();
    let other = "0".repeat(64);
    let cases = [
        Case {
            name: "no release for the version",
            published: None,
            runner: "Linux/X64",
            base: None,
            reason: "no release `v",
        },
        Case {
            name: "a release built from other source",
            published: Some(&other),
            runner: "Linux/X64",
            base: None,
            reason: "was built from other source: `000000000000`, this action's is",
        },
        Case {
            name: "no binary for this runner",
            published: Some(&this),
            runner: "Linux/ARM64",
            base: None,
            reason: "has no binary for `aarch64-unknown-linux-musl`",
        },
        Case {
            name: "a runner no release is built for",
            published: Some(&this),
            runner: "Linux/ARM",
            base: None,
            reason: "no release is built for `Linux/ARM`",
        },
        Case {
            name: "an empty download base",
            published: Some(&this),
            runner: "Linux/X64",
            base: Some(""),
            reason: "the download base is empty",
        },
    ];
    for Case {
        name: case,
        published,
        runner,
        base,
        reason,
    } in cases
    {
        let release = Release::new();
        let release = match published {
            Some(hash) => release.publish(&["x86_64-unknown-linux-musl"], hash),
            None => release,
        };
        let base = base.map_or_else(|| release.base(), str::to_owned);
        let out = release.install(runner, &base, &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{case}: {stdout}\n{stderr}");
        assert!(
            stdout.contains("fake build of "),
            "{case}: {stdout}\n{stderr}"
        );
        assert!(
            stderr.contains("building from source (") && stderr.contains(reason),
            "{case}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("built portcullis {VERSION} at `")),
            "{case}: {stderr}"
        );
        assert!(release.installed().is_file(), "{case}");
    }
}

#[test]
fn an_install_that_cannot_succeed_says_why() {
    let release = Release::new();
    let out = release.install(
        "Linux/X64",
        "",
        &[("PORTCULLIS_INSTALL_BUILD", "echo compiled nothing")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: the build left no binary at `"),
        "{stderr}"
    );

    let out = release.install("Windows/X64", &release.base(), &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: portcullis does not run on Windows runners"),
        "{stderr}"
    );
    assert!(!release.installed().exists());
}

/// The release workflow builds every target the script downloads, on a runner the script maps
/// to that target, and takes every asset name from the script.
#[test]
fn the_release_workflow_publishes_what_the_installer_downloads() {
    let script = r#"
import sys, yaml
workflow = yaml.safe_load(open(".github/workflows/release.yml"))
# PyYAML reads the bare key `on` as True.
on = workflow.get("on", workflow.get(True))
print("tags", *on["push"]["tags"])
for entry in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]:
    print("build", entry["runner"], entry["target"])
"#;
    let Some(out) = python_yaml(script, &[]) else {
        return;
    };
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tags v*\n"), "{stdout}");
    // GitHub's runner labels, as runner.os/runner.arch.
    let runner_of = |label: &str| match label {
        "ubuntu-24.04" | "ubuntu-latest" => "Linux/X64",
        "ubuntu-24.04-arm" => "Linux/ARM64",
        "macos-15-intel" => "macOS/X64",
        "macos-15" | "macos-latest" => "macOS/ARM64",
        other => panic!("runner label `{other}` is not known to this test"),
    };
    let mut built: Vec<String> = Vec::new();
    for line in stdout.lines().filter_map(|l| l.strip_prefix("build ")) {
        let (label, target) = line.split_once(' ').expect("runner target");
        let (os, arch) = runner_of(label).split_once('/').expect("OS/ARCH");
        assert_eq!(
            names(&["target", os, arch]),
            target,
            "install.sh downloads another target on `{label}`"
        );
        built.push(target.to_owned());
    }
    built.sort();
    let mut wanted: Vec<String> = names(&["targets"]).lines().map(str::to_owned).collect();
    wanted.sort();
    assert_eq!(built, wanted, "every target install.sh knows is built");

    let workflow = std::fs::read_to_string(repo_root().join(".github/workflows/release.yml"))
        .expect("read release.yml");
    for command in [
        "install.sh asset ",
        "install.sh source-asset ",
        "install.sh source-hash",
    ] {
        assert!(workflow.contains(command), "release.yml uses `{command}`");
    }
    assert!(
        !workflow.contains("portcullis-$") && !workflow.contains(".tar.gz\""),
        "release.yml spells no asset name itself"
    );
}

/// Every action this repository uses, in its workflows and in action.yml, is pinned to a commit.
#[test]
fn every_action_used_is_pinned_to_a_commit() {
    let root = repo_root();
    let mut files = vec![root.join("action.yml")];
    for entry in std::fs::read_dir(root.join(".github/workflows")).expect("workflows") {
        files.push(entry.expect("entry").path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for line in text.lines() {
            let Some(used) = line.trim().trim_start_matches("- ").strip_prefix("uses: ") else {
                continue;
            };
            if used.starts_with("./") {
                continue;
            }
            let sha = used
                .split_once('@')
                .map(|(_, r)| r.split(' ').next().unwrap_or(""));
            assert!(
                sha.is_some_and(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())),
                "{}: `{used}` is not pinned to a commit",
                file.display()
            );
        }
    }
}

/// The source hash is the same with `shasum` (macOS) as with `sha256sum` (Linux), so a release
/// built on Linux is recognised by a macOS runner.
#[test]
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
fn the_source_hash_is_the_same_with_shasum() {
    if !Command::new("shasum")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped: `shasum` is not installed (Debian: perl)");
        return;
    }
    // A PATH whose only sha256 tool is shasum.
    let bin = tempfile::tempdir().expect("temp dir");
    for tool in [
        "bash", "find", "sort", "xargs", "cut", "shasum", "perl", "dirname", "awk",
    ] {
        if let Some(found) = which(tool) {
            std::os::unix::fs::symlink(found, bin.path().join(tool)).expect("symlink");
        }
    }
    let out = Command::new(bin.path().join("bash"))
        .arg(script())
        .arg("source-hash")
        .env("PATH", bin.path())
        .output()
        .expect("run install.sh");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), this_source());
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|p| Path::new(p).is_file())
    })
}
