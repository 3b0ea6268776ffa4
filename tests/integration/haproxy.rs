//! `switch: haproxy` and `canary:` against a real HAProxy on the host and real containers,
//! under load from keep-alive clients that never retry.
//!
//! Each test runs its own HAProxy (config, admin socket and a free port in its temp dir) in
//! front of its own service. The colours are the blue-green tests' busybox image: `/colour`
//! names the colour, `/cgi-bin/app` answers 500 to about half the requests with `MODE=flaky`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::bluegreen::{Service, components, get, image, works};
use crate::harness::{Test, free_port, required};

/// Whether HAProxy is here (and Docker and busybox, as for every blue-green test).
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn haproxy_present() -> bool {
    if !components() {
        return false;
    }
    if works("haproxy", &["-v"]) {
        return true;
    }
    assert!(
        !required("haproxy"),
        "haproxy is required (PORTCULLIS_REQUIRE) but `haproxy -v` fails"
    );
    eprintln!("skipped: `haproxy -v` fails (apt-get install haproxy)");
    false
}

/// One HAProxy in front of the service's backend, with the two slots portcullis re-addresses;
/// stopped when dropped.
struct Haproxy {
    socket: String,
    port: u16,
    process: Child,
}

impl Haproxy {
    fn start(t: &Test, service: &str) -> Haproxy {
        Haproxy::start_with(t, service, "")
    }

    /// With HAProxy's own health checks on the slots and the `fallback` backup slot.
    fn start_checked(t: &Test, service: &str) -> Haproxy {
        let check = "check inter 200ms fall 1 rise 1";
        let backend = format!(
            "    option httpchk GET /healthz\n    server blue 127.0.0.1:1 disabled {check}\n    \
             server green 127.0.0.1:1 disabled {check}\n    server fallback 127.0.0.1:1 backup disabled {check}\n"
        );
        Haproxy::start_with(t, service, &backend)
    }

    /// `backend`: the backend's lines, when not the two plain slots.
    fn start_with(t: &Test, service: &str, backend: &str) -> Haproxy {
        let backend = if backend.is_empty() {
            "    server blue 127.0.0.1:1 disabled\n    server green 127.0.0.1:1 disabled\n"
        } else {
            backend
        };
        let dir = t.path().join("haproxy");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let socket = dir.join("admin.sock").display().to_string();
        let port = free_port();
        let config = format!(
            "global\n    stats socket {socket} mode 600 level admin\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend {service}\n\
             backend {service}\n{backend}"
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).expect("haproxy.cfg");
        let process = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let start = Instant::now();
        while !std::path::Path::new(&socket).exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "haproxy did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Haproxy {
            socket,
            port,
            process,
        }
    }

    /// The colour serving `path` through HAProxy.
    fn colour(&self) -> String {
        match get(self.port, "/colour") {
            Ok((200, body)) => body.trim().to_owned(),
            other => panic!("GET /colour through haproxy: {other:?}"),
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Seen {
    ok: usize,
    non2xx: usize,
    /// Connect, reset, end of file or timeout: a client that does not retry fails on each.
    errors: Vec<String>,
    colours: std::collections::BTreeMap<String, usize>,
}

/// Reads one HTTP/1.1 response (Content-Length, chunked, or up to the end of the connection)
/// from a kept-alive connection; the flag says whether the connection may be used again.
fn response(reader: &mut BufReader<TcpStream>) -> Result<(u16, String, bool), String> {
    let mut line = String::new();
    if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Err("closed before the answer".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not HTTP: {line:?}"))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).map_err(|e| e.to_string())?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        close |= lower.starts_with("connection:") && lower.contains("close");
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    } else {
        // Delimited by the end of the connection: read it, the caller reconnects.
        reader.read_to_end(&mut body).map_err(|e| e.to_string())?;
        close = true;
    }
    Ok((
        status,
        String::from_utf8_lossy(&body).trim().to_owned(),
        !close,
    ))
}

/// `workers` keep-alive clients sending `GET path` until `stop`; a failed request is counted and
/// never sent again, then the client reconnects.
fn load(
    port: u16,
    path: &'static str,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> impl FnOnce() -> Seen {
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen = Seen::default();
                let mut conn: Option<BufReader<TcpStream>> = None;
                let began = Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    let attempt = (|| {
                        if conn.is_none() {
                            let s = TcpStream::connect(("127.0.0.1", port))
                                .map_err(|e| format!("connect: {e}"))?;
                            s.set_read_timeout(Some(Duration::from_secs(10)))
                                .map_err(|e| e.to_string())?;
                            conn = Some(BufReader::new(s));
                        }
                        let reader = conn.as_mut().expect("connection");
                        write!(
                            reader.get_mut(),
                            "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"
                        )
                        .map_err(|e| format!("send: {e}"))?;
                        response(reader)
                    })();
                    if matches!(attempt, Ok((_, _, false))) {
                        conn = None;
                    }
                    match attempt {
                        Ok((200, colour, _)) => {
                            seen.ok += 1;
                            *seen.colours.entry(colour).or_default() += 1;
                        }
                        Ok(_) => seen.non2xx += 1,
                        Err(e) => {
                            seen.errors
                                .push(format!("{e} after {:.2}s", began.elapsed().as_secs_f64()));
                            conn = None;
                        }
                    }
                }
                seen
            })
        })
        .collect();
    move || {
        let mut all = Seen::default();
        for h in handles {
            let s = h.join().expect("client");
            all.ok += s.ok;
            all.non2xx += s.non2xx;
            all.errors.extend(s.errors);
            for (c, n) in s.colours {
                *all.colours.entry(c).or_default() += n;
            }
        }
        all
    }
}

fn pipeline(service: &Service, haproxy: &Haproxy, mode: &str, canary: &str, after: &str) -> String {
    format!(
        r#"version: 1
stages:
  cutover:
    uses: blue-green
    with:
      service: {svc}
      image: {image}
      port: 8080
      env: [MODE={mode}]
      health: {{ path: /healthz, interval: 200ms, timeout: 1s, healthy-after: 2, unhealthy-after: 2, within: 20s }}
      switch: {{ haproxy: {{ socket: "{socket}" }} }}
      drain: 500ms
      watch: 1s
{canary}{after}"#,
        svc = service.0,
        image = image(),
        socket = haproxy.socket,
    )
}

fn deploy(t: &Test, text: &str) -> crate::harness::Run {
    std::fs::write(t.path().join("pipelines/deploy.yml"), text).expect("pipeline");
    t.run(&["run", "deploy"])
}

/// A new service behind its own HAProxy, after a first deploy that must pass: `blue` is live.
fn blue_live() -> (Service, Test, Haproxy) {
    let service = Service::new();
    let t = Test::new().pipeline("deploy", "version: 1\nstages: {}\n");
    let haproxy = Haproxy::start(&t, &service.0);
    let first = deploy(&t, &pipeline(&service, &haproxy, "ok", "", ""));
    assert_eq!(first.code, 0, "{first:?}\n{}", t.log("cutover"));
    assert_eq!(haproxy.colour(), "blue");
    (service, t, haproxy)
}

/// A first deploy through HAProxy, then a cutover and a pipeline rollback while eight
/// keep-alive clients that never retry send requests: not one fails, traffic moves both ways.
#[test]
fn cutover_and_rollback_under_keepalive_load_fail_no_request() {
    if !haproxy_present() {
        return;
    }
    let (service, t, haproxy) = blue_live();

    let stop = Arc::new(AtomicBool::new(false));
    let seen = load(haproxy.port, "/colour", 8, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(500));
    let cutover = deploy(&t, &pipeline(&service, &haproxy, "ok", "", ""));
    assert_eq!(cutover.code, 0, "{cutover:?}\n{}", t.log("cutover"));
    assert_eq!(haproxy.colour(), "green");
    assert!(
        t.log("cutover").contains("haproxy: `"),
        "{}",
        t.log("cutover")
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = "  smoke:\n    needs: [cutover]\n    run: exit 1\n";
    let rolled = deploy(&t, &pipeline(&service, &haproxy, "ok", "", after));
    assert_eq!(rolled.code, 1, "{rolled:?}");
    assert!(rolled.stderr.contains("↺ cutover"), "{rolled:?}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let seen = seen();
    assert_eq!(
        haproxy.colour(),
        "green",
        "the rollback undid the second cutover only"
    );
    assert!(seen.ok > 200, "{seen:?}");
    assert_eq!(seen.non2xx, 0, "{seen:?}");
    assert!(seen.errors.is_empty(), "{seen:?}");
    assert!(seen.colours.len() == 2, "both colours served: {seen:?}");
}

/// A canary whose new colour answers 500 to half the requests is stopped at its first step:
/// the JUnit case of the step has the figures, all traffic is back on the old colour and the
/// new one is removed.
#[test]
fn failing_canary_is_rolled_back_at_its_first_step() {
    if !haproxy_present() {
        return;
    }
    let (service, t, haproxy) = blue_live();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = load(haproxy.port, "/cgi-bin/app", 4, Arc::clone(&stop));
    let canary =
        "      canary: { steps: [20, 50], interval: 2s, max-error-rate: 5%, min-requests: 5 }\n";
    let run = deploy(&t, &pipeline(&service, &haproxy, "flaky", canary, ""));
    stop.store(true, Ordering::SeqCst);
    let seen = seen();
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(log.contains("canary 20% failed"), "{log}");
    assert!(!log.contains("canary: 50%"), "{log}");
    let junit = t.junit();
    assert!(
        junit.contains(&format!("canary 20% `{}`", service.0)),
        "{junit}"
    );
    assert!(
        junit.contains("more than the 5.00% `max-error-rate`"),
        "{junit}"
    );
    assert_eq!(haproxy.colour(), "blue");
    assert_eq!(service.running(&["blue"]), service.containers());
    assert!(seen.errors.is_empty(), "{seen:?}");
    assert!(seen.non2xx > 0, "the flaky colour answered some: {seen:?}");
}

/// A healthy canary goes through every step and ends with all traffic on the new colour; not
/// one request of the keep-alive clients fails on the way.
#[test]
fn healthy_canary_is_promoted_through_every_step() {
    if !haproxy_present() {
        return;
    }
    let (service, t, haproxy) = blue_live();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = load(haproxy.port, "/cgi-bin/app", 4, Arc::clone(&stop));
    let canary = "      canary: { steps: [10, 50], interval: 1500ms, max-error-rate: 0%, max-latency: 2s, min-requests: 3 }\n";
    let run = deploy(&t, &pipeline(&service, &haproxy, "ok", canary, ""));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let seen = seen();
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
    let junit = t.junit();
    for step in ["canary 10%", "canary 50%"] {
        let case = format!("{step} `{}`", service.0);
        assert!(junit.contains(&case), "{junit}");
    }
    assert!(!junit.contains("<failure"), "{junit}");
    assert_eq!(haproxy.colour(), "green");
    assert_eq!(service.running(&["green"]), service.containers());
    assert!(seen.errors.is_empty(), "{seen:?}");
    assert_eq!(seen.non2xx, 0, "{seen:?}");
    assert_eq!(seen.colours.len(), 2, "{seen:?}");
}

/// With a `fallback` slot and HAProxy's health checks, the old colour is HAProxy's backup while
/// the new one is watched: when the new one goes down, HAProxy itself serves the old one
/// before the stage notices and switches back.
#[test]
fn fallback_slot_serves_while_the_watched_colour_is_down() {
    if !haproxy_present() {
        return;
    }
    let service = Service::new();
    let t = Test::new().pipeline("deploy", "version: 1\nstages: {}\n");
    let haproxy = Haproxy::start_checked(&t, &service.0);
    let first = deploy(&t, &pipeline(&service, &haproxy, "ok", "", ""));
    assert_eq!(first.code, 0, "{first:?}\n{}", t.log("cutover"));
    assert_eq!(haproxy.colour(), "blue");
    let slow = pipeline(&service, &haproxy, "ok", "", "")
        .replace("watch: 1s", "watch: 20s")
        .replace("unhealthy-after: 2", "unhealthy-after: 15");
    std::fs::write(t.path().join("pipelines/deploy.yml"), slow).expect("pipeline");
    let child = t.spawn(&["run", "deploy"]);
    let start = Instant::now();
    while !std::fs::read_to_string(t.latest_run().join("cutover.log"))
        .unwrap_or_default()
        .contains("watching `")
    {
        assert!(start.elapsed() < Duration::from_secs(30), "never watched");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Out of maintenance, green is served once HAProxy's check passed; until then the fallback.
    let start = Instant::now();
    while haproxy.colour() != "green" {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "green is never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let green = format!("{}-green", service.0);
    assert!(works(
        "docker",
        &["exec", &green, "/bin/busybox", "rm", "/www/healthz"]
    ));
    // HAProxy marks green down within a check or two and serves the fallback; the stage's
    // own probes need 15 failures (3 s) to give up on green.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(haproxy.colour(), "blue", "the fallback serves");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", t.log("cutover"));
    assert!(t.log("cutover").contains(", `"), "{}", t.log("cutover"));
    assert_eq!(haproxy.colour(), "blue");
    assert_eq!(service.running(&["blue"]), service.containers());
}

/// A canary needs HAProxy; the runtime API is a socket path or loopback; a backend without
/// the two slots is refused before anything changes.
#[test]
fn haproxy_settings_are_checked() {
    let t = Test::new().pipeline(
        "p",
        r#"version: 1
stages:
  a:
    uses: blue-green
    with:
      service: web
      image: web:1
      port: 8080
      switch: { nginx: { upstream-file: /tmp/u.conf } }
      canary: { steps: [5, 50] }
  b:
    uses: blue-green
    with:
      service: web2
      image: web:1
      port: 8080
      switch: { haproxy: { socket: "10.0.0.5:9999" } }
      canary: { steps: [50, 20], max-error-rate: 2 }
"#,
    );
    let r = t.run(&["validate", "p"]);
    assert_eq!(r.code, 2, "{r:?}");
    for message in [
        "`canary` needs `switch: haproxy`",
        "`10.0.0.5:9999` is neither a socket path nor a loopback `HOST:PORT`",
        "`20` is not a step of the canary",
        "`2` is not an error rate",
    ] {
        assert!(r.stderr.contains(message), "{message}: {r:?}");
    }

    if !haproxy_present() {
        return;
    }
    let service = Service::new();
    let t = Test::new().pipeline("deploy", "version: 1\nstages: {}\n");
    let haproxy = Haproxy::start(&t, "elsewhere");
    let run = deploy(&t, &pipeline(&service, &haproxy, "ok", "", ""));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        t.log("cutover")
            .contains(&format!("HAProxy has no backend `{}`", service.0)),
        "{}",
        t.log("cutover")
    );
    assert!(
        service.containers().is_empty(),
        "{:?}",
        service.containers()
    );
}
