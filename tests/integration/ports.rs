//! `ports --live`: real sockets opened by the test process, found by the real binary in
//! `/proc/net`, with this process as their owner; Docker published ports from a fake engine on
//! a temporary unix socket, and from the real engine when it is there (a container built
//! locally, with no registry; skipped without Docker unless `PORTCULLIS_REQUIRE` names it).

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{Run, Test, assert_schema_valid, free_port, required};

fn findings(run: &Run) -> Vec<Value> {
    let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    json["findings"].as_array().expect("findings").clone()
}

/// The findings about `port`.
fn about(findings: &[Value], port: u16) -> Vec<Value> {
    findings
        .iter()
        .filter(|f| f["port"] == u64::from(port))
        .cloned()
        .collect()
}

/// A Docker engine that is not there, so the machine's own Docker does not interfere.
fn no_docker(t: Test) -> Test {
    let missing = t.path().join("no-docker.sock");
    t.env("DOCKER_HOST", &format!("unix://{}", missing.display()))
}

struct Sockets {
    v4: TcpListener,
    v6_loopback: Option<TcpListener>,
    dual: Option<TcpListener>,
    udp: UdpSocket,
}

impl Sockets {
    fn open() -> Sockets {
        Sockets {
            v4: TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1"),
            // IPv6 may be disabled in a container; those two checks are then skipped.
            v6_loopback: TcpListener::bind("[::1]:0").ok(),
            dual: TcpListener::bind("[::]:0").ok(),
            udp: UdpSocket::bind("127.0.0.1:0").expect("bind udp"),
        }
    }

    fn ports(&self) -> Vec<u16> {
        let mut ports = vec![port(&self.v4), self.udp.local_addr().expect("addr").port()];
        ports.extend(self.v6_loopback.as_ref().map(port));
        ports.extend(self.dual.as_ref().map(port));
        ports
    }
}

fn port(l: &TcpListener) -> u16 {
    l.local_addr().expect("addr").port()
}

/// Asserts one finding about `port` with this rule and severity, naming this process.
fn assert_found(findings: &[Value], port: u16, rule: &str, severity: &str, needle: &str) {
    let pid = format!("pid {} (", std::process::id());
    let about = about(findings, port);
    assert_eq!(about.len(), 1, "port {port}: {about:#?}");
    let f = &about[0];
    assert_eq!(f["rule"], rule, "{f:#}");
    assert_eq!(f["severity"], severity, "{f:#}");
    assert_eq!(
        (&f["kind"], &f["scope"]),
        (&"listen".into(), &"host".into())
    );
    assert!(f["file"].is_null() && f["line"].is_null() && f["column"].is_null());
    let message = f["message"].as_str().expect("message");
    assert!(message.contains(&pid), "names this process: {message}");
    assert!(message.contains(needle), "{needle}: {message}");
}

/// Unlisted listeners are found with their owner: on loopback they are notes, and a
/// dual-stack `[::]` listener (only in `tcp6`) is reachable from elsewhere, so a violation.
#[test]
fn finds_listeners_with_their_process() {
    let s = Sockets::open();
    let t = no_docker(Test::new());
    let out = t.run(&["ports", "--live", "--format", "json"]);
    let found = findings(&out);
    assert_found(&found, port(&s.v4), "unlisted", "note", "TCP 127.0.0.1:");
    let udp = s.udp.local_addr().expect("addr").port();
    assert_found(&found, udp, "unlisted", "note", "UDP 127.0.0.1:");
    if let Some(l) = &s.v6_loopback {
        assert_found(&found, port(l), "unlisted", "note", "TCP [::1]:");
    }
    if let Some(l) = &s.dual {
        assert_found(&found, port(l), "unlisted", "violation", "TCP [::]:");
        assert_eq!(out.code, 1, "{out:?}");
    }
    let docker: Vec<&Value> = found.iter().filter(|f| f["rule"] == "docker").collect();
    assert_eq!(docker.len(), 1, "{found:#?}");
    assert!(
        docker[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Docker not reachable: published ports not checked")),
        "{docker:?}"
    );
}

/// A forbidden port is a violation even on loopback, naming the process; exit 1.
#[test]
fn forbidden_port_fails_naming_the_process() {
    let s = Sockets::open();
    let forbidden = port(&s.v4).to_string();
    let t = no_docker(Test::new());
    let out = t.run(&[
        "ports", "--live", "--forbid", &forbidden, "--format", "json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_found(
        &findings(&out),
        port(&s.v4),
        "forbidden",
        "violation",
        "is forbidden",
    );
    let human = t.run(&["ports", "--live", "--forbid", &forbidden]);
    assert_eq!(human.code, 1, "{human:?}");
    assert!(
        human.stdout.contains(&format!(
            "violation[forbidden]: port {forbidden} is forbidden"
        )),
        "{human:?}"
    );
}

/// A required port that nothing listens on is a violation; exit 1.
#[test]
fn required_port_without_listener_fails() {
    let free = free_port();
    let t = no_docker(Test::new());
    let out = t.run(&[
        "ports",
        "--live",
        "--require-listening",
        &free.to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    let about = about(&findings(&out), free);
    assert_eq!(about.len(), 1, "{about:#?}");
    assert_eq!(about[0]["rule"], "not-listening");
    assert_eq!(about[0]["severity"], "violation");
}

/// Allowed ports, required and listening, give no finding at all.
#[test]
fn allowed_ports_pass() {
    let s = Sockets::open();
    let t = no_docker(Test::new());
    let mut args = vec![
        "ports".to_owned(),
        "--live".into(),
        "--format".into(),
        "json".into(),
    ];
    for (i, p) in s.ports().into_iter().enumerate() {
        args.extend(["--allow".into(), format!("{p}=role{i}")]);
        args.extend(["--require-listening".into(), p.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = t.run(&args);
    let found = findings(&out);
    for p in s.ports() {
        assert!(about(&found, p).is_empty(), "port {p}: {found:#?}");
    }
}

/// The JUnit format is a valid document with the violation as a failure.
#[test]
fn junit_format_is_schema_valid() {
    let s = Sockets::open();
    let forbidden = port(&s.v4).to_string();
    let t = no_docker(Test::new());
    let out = t.run(&[
        "ports", "--live", "--forbid", &forbidden, "--format", "junit",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("<failure type=\"forbidden\""),
        "{out:?}"
    );
    let file = t.path().join("ports.xml");
    std::fs::write(&file, &out.stdout).expect("write");
    assert_schema_valid(&file);
}

/// Malformed policies and paths that do not exist are usage errors, and print nothing on
/// stdout.
#[test]
fn usage_errors_exit_2() {
    let t = Test::new();
    for args in [
        &["ports", "--live", "--allow", "3000", "--forbid", "3000"][..],
        &["ports", "--live", "--allow", "http"],
        &["ports", "--live", "--forbid", "70000"],
        &["ports", "no/such/folder"],
    ] {
        let out = t.run(args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

/// A one-shot fake engine: answers each connection with `body` as `GET /containers/json`.
fn fake_engine(t: &Test, body: &'static str) -> String {
    let path = t.path().join("docker.sock");
    let listener = UnixListener::bind(&path).expect("bind unix socket");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            // Under a loaded test run, accept can fail for a moment; the engine keeps serving.
            let Ok(mut stream) = stream else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request).into_owned();
            let answer = if request.starts_with("GET /containers/json HTTP/1.0\r\n") {
                format!("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{body}")
            } else {
                "HTTP/1.0 404 Not Found\r\n\r\n".to_owned()
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    format!("unix://{}", path.display())
}

/// Published ports come from the engine's API (with `userland-proxy: false` nothing listens on
/// the host): a forbidden one fails naming the container, an allowed one passes, and one
/// published on loopback only is a note. The engine here is a fake serving a canned answer.
#[test]
fn docker_published_ports_from_the_engine_api() {
    let (forbidden, allowed, loopback) = (free_port(), free_port(), free_port());
    let body: &'static str = Box::leak(
        format!(
            r#"[{{"Id":"1","Names":["/api"],"Ports":[
                {{"IP":"0.0.0.0","PrivatePort":8000,"PublicPort":{forbidden},"Type":"tcp"}},
                {{"IP":"::","PrivatePort":8000,"PublicPort":{forbidden},"Type":"tcp"}},
                {{"PrivatePort":9000,"Type":"tcp"}}]}},
               {{"Id":"2","Names":["/web"],"Ports":[
                {{"IP":"0.0.0.0","PrivatePort":3001,"PublicPort":{allowed},"Type":"tcp"}},
                {{"IP":"127.0.0.1","PrivatePort":53,"PublicPort":{loopback},"Type":"udp"}}]}}]"#
        )
        .into_boxed_str(),
    );
    let t = Test::new();
    let host = fake_engine(&t, body);
    let t = t.env("DOCKER_HOST", &host);
    let out = t.run(&[
        "ports",
        "--live",
        "--forbid",
        &forbidden.to_string(),
        "--allow",
        &allowed.to_string(),
        "--require-listening",
        &allowed.to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    let found = findings(&out);
    assert!(!found.iter().any(|f| f["rule"] == "docker"), "{found:#?}");
    let f = about(&found, forbidden);
    assert_eq!(f.len(), 1, "one finding for 0.0.0.0 and :: : {f:#?}");
    assert_eq!(
        (&f[0]["rule"], &f[0]["kind"]),
        (&"forbidden".into(), &"publish".into())
    );
    assert!(
        f[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("container `api`"))
    );
    assert!(about(&found, allowed).is_empty(), "{found:#?}");
    let f = about(&found, loopback);
    assert_eq!(
        (&f[0]["rule"], &f[0]["severity"]),
        (&"unlisted".into(), &"note".into())
    );
    assert!(
        f[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("UDP") && m.contains("`web`"))
    );
}

/// Removes the test's container, whatever happens.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn docker(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

/// The real engine: a container publishing a random port. The image is built locally, with no
/// registry: `FROM scratch` holding this machine's `sleep` and the libraries `ldd` names.
#[test]
#[expect(clippy::print_stderr, reason = "a skipped check says why")]
fn real_docker_published_port_is_found() {
    let reachable = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !reachable {
        assert!(
            !required("docker"),
            "docker is required (PORTCULLIS_REQUIRE) but `docker info` fails"
        );
        eprintln!("skipped: no reachable Docker engine (`docker info` fails)");
        return;
    }
    let t = Test::new();
    let root = t.path().join("image/rootfs");
    let ldd = Command::new("ldd").arg("/bin/sleep").output().expect("ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout).into_owned();
    let files =
        std::iter::once("/bin/sleep").chain(ldd.split_whitespace().filter(|w| w.starts_with('/')));
    for file in files {
        let target = root.join(file.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(file, &target).expect("copy into the image");
    }
    std::fs::write(
        t.path().join("image/Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/bin/sleep\"]\n",
    )
    .expect("Dockerfile");
    let image = "portcullis-test-sleep";
    let build = docker(&["build", "-q", "-t", image, "."], &t.path().join("image"));
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let name = format!("portcullis-ports-{}", std::process::id());
    let container = Container(name.clone());
    let run = docker(
        &["run", "-d", "--name", &name, "-p", "80", image, "300"],
        t.path(),
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let port = docker(&["port", &container.0, "80/tcp"], t.path());
    let published: u16 = String::from_utf8_lossy(&port.stdout)
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("published port: {port:?}"));
    let out = t.run(&[
        "ports",
        "--live",
        "--forbid",
        &published.to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    let found = findings(&out);
    let about = about(&found, published);
    let publish: Vec<&Value> = about.iter().filter(|f| f["kind"] == "publish").collect();
    assert_eq!(publish.len(), 1, "{found:#?}");
    assert_eq!(publish[0]["rule"], "forbidden");
    let message = publish[0]["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("container `{name}`")),
        "{message}"
    );
}

/// With `--exposure any` a listener on loopback only is a violation, as `netstat -an | grep`
/// would count it; the default leaves it a note. The same in static mode, and in a stage.
#[test]
fn exposure_any_counts_loopback_listeners() {
    let s = Sockets::open();
    let t = no_docker(Test::new());
    let out = t.run(&["ports", "--live", "--format", "json", "--exposure", "any"]);
    let found = findings(&out);
    assert_found(
        &found,
        port(&s.v4),
        "unlisted",
        "violation",
        "which counts with `exposure: any`",
    );
    assert_eq!(out.code, 1, "{out:?}");

    let t = Test::new().file(
        "package.json",
        "{\"scripts\": {\"dev\": \"next dev -H 127.0.0.1 -p 4000\"}}\n",
    );
    let reachable = t.run(&["ports", ".", "--allow", "3001"]);
    assert_eq!(reachable.code, 0, "{reachable:?}");
    assert!(
        reachable.stdout.contains("note[unlisted]: port 4000"),
        "{reachable:?}"
    );
    let any = t.run(&["ports", ".", "--allow", "3001", "--exposure", "any"]);
    assert_eq!(any.code, 1, "{any:?}");
    assert!(
        any.stdout.contains("violation[unlisted]: port 4000"),
        "{any:?}"
    );
    let t = t.pipeline(
        "p",
        "version: 1\nstages:\n  law:\n    uses: ports\n    with: { allow: [3001], exposure: any }\n",
    );
    let run = t.run(&["run", "p"]);
    assert_eq!(run.code, 1, "{run:?}");
    let t = t.pipeline(
        "q",
        "version: 1\nstages:\n  law:\n    uses: ports\n    with: { allow: [3001], exposure: all }\n",
    );
    let run = t.run(&["validate", "q"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("`all` is not an exposure"), "{run:?}");
}
