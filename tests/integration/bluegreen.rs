//! `uses: blue-green` against the real Docker engine and a real nginx on the host.
//!
//! Each test runs its own nginx master (own prefix, config and free port in its temp dir) in
//! front of its own service, so tests run in parallel. The colours come from one image built
//! here with no registry: `FROM scratch` holding Debian's static busybox, which serves
//! `/healthz` and `/colour` with `httpd`; `MODE=sick` never serves `/healthz`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::harness::{Run, Test, assert_schema_valid, free_port, required};

const START: &str = r#"#!/bin/sh
# A colour for the tests: MODE=sick never serves /healthz; MODE=flaky answers 500 to about
# half of the requests to /cgi-bin/app.
echo "$PORTCULLIS_COLOUR" > /www/colour
echo "$MODE" > /www/mode
[ "$MODE" = sick ] || echo ok > /www/healthz
trap "exit 0" TERM
/bin/busybox httpd -f -p 8080 -h /www &
wait $!
"#;

/// `/cgi-bin/app`: the colour's name, or a 500 for about half of the requests with MODE=flaky.
/// busybox answers a CGI in HTTP/1.1 without keeping the connection, so the script says
/// `Connection: close`: a proxy must not reuse it.
const APP: &str = "#!/bin/sh\n\
if [ \"$(cat /www/mode)\" = flaky ] && [ $((RANDOM % 2)) -eq 0 ]; then\n\
  printf 'Status: 500 Internal Server Error\\r\\nConnection: close\\r\\nContent-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\nboom\\n'\n\
  exit 0\n\
fi\n\
body=$(cat /www/colour)\n\
printf 'Connection: close\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n%s\\n' $(( ${#body} + 1 )) \"$body\"\n";

const DOCKERFILE: &str = "FROM scratch\nCOPY rootfs/ /\n\
HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD [\"/bin/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/healthz\"]\n\
ENTRYPOINT [\"/bin/sh\", \"/start\"]\n";

pub(crate) fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether Docker, nginx and busybox are here; when one is missing the test is skipped,
/// unless `PORTCULLIS_REQUIRE` names it.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
pub(crate) fn components() -> bool {
    let checks = [
        ("docker", works("docker", &["info"]), "`docker info` fails"),
        ("nginx", works("nginx", &["-v"]), "`nginx -v` fails"),
        (
            "docker",
            static_busybox(),
            "no static busybox (`apt-get install busybox-static`) to build the test image",
        ),
    ];
    for (component, present, why) in checks {
        if !present {
            assert!(
                !required(component),
                "{component} is required (PORTCULLIS_REQUIRE) but {why}"
            );
            eprintln!("skipped: {why}");
            return false;
        }
    }
    true
}

/// Whether busybox is here and statically linked, so it runs in a `FROM scratch` image.
fn static_busybox() -> bool {
    let path = busybox();
    Path::new(path).exists()
        && Command::new("ldd").arg(path).output().is_ok_and(|o| {
            !o.status.success() || !String::from_utf8_lossy(&o.stdout).contains("=>")
        })
}

fn busybox() -> &'static str {
    if Path::new("/bin/busybox").exists() {
        "/bin/busybox"
    } else {
        "/usr/bin/busybox"
    }
}

/// The colour image, built once per test run; its tag is derived from what goes into it.
pub(crate) fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let bin = std::fs::read(busybox()).expect("read busybox");
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in bin
            .iter()
            .chain(START.as_bytes())
            .chain(APP.as_bytes())
            .chain(DOCKERFILE.as_bytes())
        {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        let tag = format!("portcullis-bg-test:{hash:016x}");
        if works("docker", &["image", "inspect", &tag]) {
            return tag;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        std::fs::create_dir_all(root.join("www")).expect("mkdir");
        std::fs::write(root.join("bin/busybox"), &bin).expect("copy busybox");
        std::fs::set_permissions(
            root.join("bin/busybox"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("symlink");
        std::fs::write(root.join("start"), START).expect("start script");
        std::fs::create_dir_all(root.join("www/cgi-bin")).expect("mkdir");
        std::fs::write(root.join("www/cgi-bin/app"), APP).expect("app");
        std::fs::set_permissions(
            root.join("www/cgi-bin/app"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).expect("Dockerfile");
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &tag, "."])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("docker build");
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tag
    })
}

/// A service name no other test uses; its containers are removed when this is dropped.
pub(crate) struct Service(pub(crate) String);

impl Service {
    pub(crate) fn new() -> Service {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Service(format!(
            "bgt{}n{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ))
    }

    /// `name status` of each container of the service.
    pub(crate) fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label=dev.portcullis.blue-green.service={}", self.0),
                "--format",
                "{{.Names}} {{.State}}",
            ])
            .output()
            .expect("docker ps");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    /// What [`Service::containers`] lists when exactly `colours` run.
    pub(crate) fn running(&self, colours: &[&str]) -> Vec<String> {
        colours
            .iter()
            .map(|c| format!("{}-{c} running", self.0))
            .collect()
    }

    pub(crate) fn ip(&self, colour: &str) -> String {
        let out = Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{.NetworkSettings.IPAddress}}",
                &format!("{}-{colour}", self.0),
            ])
            .output()
            .expect("docker inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _remove_networks_after_containers =
            Networks(vec![format!("{}-live", self.0), format!("{}-net", self.0)]);
        let out = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=dev.portcullis.blue-green.service={}", self.0),
            ])
            .output();
        if let Ok(out) = out {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// Networks a test may have created, removed when dropped.
struct Networks(Vec<String>);

impl Drop for Networks {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("docker")
                .args(["network", "rm", n])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One nginx master proxying `/` to the service's upstream; stopped when dropped.
pub(crate) struct Nginx {
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
    /// The master's pid: the temp dir (config, pid file) may be gone by the time this drops.
    master: i32,
}

impl Nginx {
    pub(crate) fn start(t: &Test, service: &str) -> Nginx {
        let dir = t.path().join("nginx");
        std::fs::create_dir_all(dir.join("tmp")).expect("mkdir");
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
               fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
               include {d}/upstream*.conf;\n\
               server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://{service}; }} }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        // Before the first deploy the upstream points nowhere; nginx needs one to start.
        std::fs::write(
            dir.join("upstream.conf"),
            format!("upstream {service} {{ server 127.0.0.1:9; }}\n"),
        )
        .expect("upstream.conf");
        let mut nginx = Nginx {
            dir,
            port,
            master: 0,
        };
        let out = Command::new("nginx")
            .args(nginx.args())
            .stdin(Stdio::null())
            .output()
            .expect("start nginx");
        assert!(
            out.status.success(),
            "nginx: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The master writes its pid file before the starting process exits.
        nginx.master = std::fs::read_to_string(nginx.dir.join("nginx.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("nginx.pid");
        nginx
    }

    fn args(&self) -> Vec<String> {
        vec![
            "-p".into(),
            self.dir.display().to_string(),
            "-c".into(),
            self.dir.join("nginx.conf").display().to_string(),
        ]
    }

    pub(crate) fn upstream(&self) -> String {
        std::fs::read_to_string(self.dir.join("upstream.conf")).expect("upstream.conf")
    }

    /// `GET path` through nginx: the status and body, or why it failed.
    pub(crate) fn get(&self, path: &str) -> Result<(u16, String), String> {
        get(self.port, path)
    }

    /// The colour that serves `/colour` through nginx.
    fn colour(&self) -> String {
        match self.get("/colour") {
            Ok((200, body)) => body.trim().to_owned(),
            other => panic!("GET /colour through nginx: {other:?}"),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown; the workers follow their master.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.master),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

pub(crate) fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read: {e}"))?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not HTTP: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    Ok((status, body.unwrap_or_default()))
}

/// The options a pipeline varies between tests.
struct Spec<'a> {
    mode: &'a str,
    watch: &'a str,
    keep_old: bool,
    /// More stages, after `cutover`.
    after: &'a str,
    /// The upstream's name in the file, when not the service's.
    upstream: Option<&'a str>,
    image: Option<&'a str>,
    /// The upstream file, when not `upstream.conf`.
    upstream_file: Option<&'a str>,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            mode: "ok",
            watch: "1s",
            keep_old: false,
            after: "",
            upstream: None,
            image: None,
            upstream_file: None,
        }
    }
}

fn pipeline(service: &Service, nginx: &Nginx, spec: &Spec<'_>) -> String {
    let args = nginx
        .args()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
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
      switch: {{ nginx: {{ upstream-file: "{up}", command: [nginx, {args}]{upstream} }} }}
      drain: 300ms
      watch: {watch}
      watch-url: http://127.0.0.1:{port}/healthz
      keep-old: {keep}
{after}"#,
        svc = service.0,
        image = spec.image.unwrap_or(image()),
        upstream = spec
            .upstream
            .map(|u| format!(", upstream: {u}"))
            .unwrap_or_default(),
        mode = spec.mode,
        up = nginx
            .dir
            .join(spec.upstream_file.unwrap_or("upstream.conf"))
            .display(),
        watch = spec.watch,
        port = nginx.port,
        keep = spec.keep_old,
        after = spec.after,
    )
}

/// A new service and test directory, with their own nginx in front.
fn fresh() -> (Service, Test, Nginx) {
    let service = Service::new();
    let t = Test::new();
    let nginx = Nginx::start(&t, &service.0);
    (service, t, nginx)
}

/// [`fresh`], then a first deploy that must pass: `blue` is live.
fn blue_live() -> (Service, Test, Nginx) {
    let (service, t, nginx) = fresh();
    let (t, run) = deploy(t, &service, &nginx, &Spec::default());
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
    (service, t, nginx)
}

/// A watch long enough for a test to act while the stage is in it.
fn long_watch() -> Spec<'static> {
    Spec {
        watch: "60s",
        ..Spec::default()
    }
}

/// Starts the written pipeline and returns once the stage watches the new `green`.
fn spawn_until_watching(t: &Test, service: &Service) -> std::process::Child {
    let child = t.spawn(&["run", "deploy"]);
    wait_log(t, &format!("watching `{}-green`", service.0));
    child
}

/// The stage's rollback log of the latest run; empty when there was no rollback.
fn rollback_log(t: &Test) -> String {
    std::fs::read_to_string(t.latest_run().join("cutover.rollback.log")).unwrap_or_default()
}

/// Writes the pipeline and runs it.
fn deploy(t: Test, service: &Service, nginx: &Nginx, spec: &Spec<'_>) -> (Test, Run) {
    let t = t.pipeline("deploy", &pipeline(service, nginx, spec));
    let run = t.run(&["run", "deploy"]);
    (t, run)
}

/// Every reload of nginx closes its idle keep-alive connections, so a cutover reloads it
/// once: the backup it keeps during the watch leaves the file, not the running nginx.
#[test]
fn a_cutover_reloads_nginx_once() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();
    let wrapper = t.path().join("nginx-logged");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec nginx \"$@\"\n",
            t.path().join("nginx-calls").display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let text = pipeline(&service, &nginx, &Spec::default()).replace(
        "command: [nginx,",
        &format!("command: [\"{}\",", wrapper.display()),
    );
    let t = t.pipeline("deploy", &text);
    let run = t.run(&["run", "deploy"]);
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
    assert_eq!(nginx.colour(), "green");
    let calls = t.read("nginx-calls");
    assert_eq!(calls.matches("-s reload").count(), 1, "{calls}");
    assert!(!nginx.upstream().contains("backup"), "{}", nginx.upstream());
}

/// A first deploy finds no live colour, starts `blue` and points nginx at it; the next one
/// starts `green`, switches, and removes `blue`; outputs name the colours.
#[test]
fn first_deploy_then_cutover_switches_traffic() {
    if !components() {
        return;
    }
    let (service, t, nginx) = fresh();
    let after = "  after:\n    needs: [cutover]\n    run: echo \"${{ cutover.colour }} ${{ cutover.previous-colour }} ${{ cutover.image }}\" > out.txt\n";
    let spec = Spec {
        after,
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &spec);
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
    assert!(
        t.log("cutover").contains("first deploy"),
        "{}",
        t.log("cutover")
    );
    assert_eq!(nginx.colour(), "blue");
    assert!(
        nginx
            .upstream()
            .contains(&format!("server {}:8080;", service.ip("blue")))
    );
    assert_eq!(t.read("out.txt").trim(), format!("blue  {}", image()));
    assert_eq!(service.containers(), service.running(&["blue"]));

    let (t, run) = deploy(t, &service, &nginx, &spec);
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
    assert_eq!(nginx.colour(), "green");
    let upstream = nginx.upstream();
    assert!(upstream.contains(&format!("server {}:8080;", service.ip("green"))));
    assert!(!upstream.contains("backup"), "{upstream}");
    assert_eq!(t.read("out.txt").trim(), format!("green blue {}", image()));
    // Without keep-old the old colour is removed once drained.
    assert_eq!(service.containers(), service.running(&["green"]));
    assert_schema_valid(&t.latest_run().join("junit.xml"));
    let junit = t.junit();
    assert!(
        junit.contains(&format!("blue-green `{}`", service.0)),
        "{junit}"
    );
}

/// A new colour that never gets healthy is removed; the upstream file is not touched and the
/// old colour keeps serving.
#[test]
fn unhealthy_new_colour_leaves_live_traffic_alone() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();
    let before = nginx.upstream();

    let sick = Spec {
        mode: "sick",
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &sick);
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(log.contains("never became healthy"), "{log}");
    assert!(log.contains("live traffic was not touched"), "{log}");
    // The image's own HEALTHCHECK decided (long before `within` ran out), and its log is shown.
    assert!(log.contains("HEALTHCHECK reports it unhealthy"), "{log}");
    assert!(log.contains("Docker health log:"), "{log}");
    assert_eq!(nginx.upstream(), before);
    assert_eq!(nginx.colour(), "blue");
    assert_eq!(service.containers(), service.running(&["blue"]));
}

/// `nginx -t` rejects the new configuration (here: the upstream file names an upstream that
/// nginx.conf does not use, so `proxy_pass` points at an unknown host): the previous file is put
/// back, nothing is reloaded, the new colour is removed.
#[test]
fn rejected_nginx_config_changes_nothing() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();
    let before = nginx.upstream();
    let bad = Spec {
        upstream: Some("elsewhere"),
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &bad);
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(
        log.contains("`nginx -t` rejected the new upstream"),
        "{log}"
    );
    assert_eq!(nginx.upstream(), before);
    assert_eq!(nginx.colour(), "blue");
    assert_eq!(service.containers(), service.running(&["blue"]));

    // An upstream file that points at no colour while a colour runs: refused before anything
    // starts, rather than replacing a colour the router may use.
    let elsewhere = Spec {
        upstream_file: Some("upstream-new.conf"),
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &elsewhere);
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(log.contains("not replacing a running colour"), "{log}");
    assert!(!nginx.dir.join("upstream-new.conf").exists());
    assert_eq!(nginx.colour(), "blue");

    // A first deploy of another service whose new upstream file (nginx.conf includes
    // `upstream*.conf`) nginx rejects, as a second `upstream` of the same name: the file that
    // did not exist before is removed again.
    let second = Service::new();
    let t = t.pipeline(
        "deploy",
        &pipeline(&second, &nginx, &elsewhere).replace(
            "command: [nginx,",
            &format!("upstream: {}, command: [nginx,", service.0),
        ),
    );
    let run = t.run(&["run", "deploy"]);
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(
        log.contains("`nginx -t` rejected the new upstream"),
        "{log}"
    );
    assert!(!nginx.dir.join("upstream-new.conf").exists());
    assert!(!nginx.dir.join("upstream-new.conf.portcullis-tmp").exists());
    assert!(second.containers().is_empty());
    assert_eq!(nginx.upstream(), before);
    assert_eq!(nginx.colour(), "blue");

    // An image that is not on the engine: a clear error before anything starts.
    let missing = Spec {
        image: Some("portcullis-bg-test:not-built"),
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &missing);
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(
        log.contains("image `portcullis-bg-test:not-built` is not on the Docker engine"),
        "{log}"
    );
    assert_eq!(nginx.upstream(), before);
}

/// Requests through nginx with `Connection: close`, counted until `stop` is set.
fn load(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let mut ok = 0;
        let mut failed = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            match get(port, "/healthz") {
                Ok((200, _)) => ok += 1,
                other => failed.push(format!("{other:?}")),
            }
        }
        (ok, failed)
    })
}

/// Waits until the stage log holds `text`; panics after a minute.
fn wait_log(t: &Test, text: &str) {
    let start = Instant::now();
    while !t.log("cutover").contains(text) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the log never said `{text}`:\n{}",
            t.log("cutover")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The new colour is killed during the watch: nginx fails over to the old colour (still a
/// `backup` server), the stage switches back and removes the new colour, and no request
/// through nginx fails.
#[test]
fn colour_dying_during_watch_is_rolled_back() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();

    let t = t.pipeline("deploy", &pipeline(&service, &nginx, &long_watch()));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(nginx.port, stop.clone());
    let child = spawn_until_watching(&t, &service);
    assert!(works("docker", &["kill", &format!("{}-green", service.0)]));
    let out = child.wait_with_output().expect("wait");
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = traffic.join().expect("load thread");
    assert_eq!(out.status.code(), Some(1), "{}", t.log("cutover"));
    let log = t.log("cutover");
    assert!(log.contains("traffic is back on"), "{log}");
    assert_eq!(nginx.colour(), "blue");
    assert!(!nginx.upstream().contains("backup"));
    assert_eq!(service.containers(), service.running(&["blue"]));
    assert!(ok > 0, "no request went through");
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
}

/// portcullis is killed (SIGKILL) during the watch, holding the lock, with the old colour still
/// a `backup` in the upstream: the next deploy breaks the dead runner's lock, takes the
/// upstream's primary as live, and ends in a clean state.
#[test]
fn runner_killed_mid_watch_next_deploy_recovers() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();

    let t = t.pipeline("deploy", &pipeline(&service, &nginx, &long_watch()));
    let mut child = spawn_until_watching(&t, &service);
    child.kill().expect("SIGKILL portcullis");
    child.wait().expect("reap");
    assert!(nginx.upstream().contains("backup"), "{}", nginx.upstream());

    let (t, run) = deploy(t, &service, &nginx, &Spec::default());
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
    assert!(
        t.log("cutover")
            .contains(&format!("live: `{}-green`", service.0)),
        "{}",
        t.log("cutover")
    );
    assert_eq!(nginx.colour(), "blue");
    assert!(!nginx.upstream().contains("backup"));
    assert_eq!(service.containers(), service.running(&["blue"]));
}

/// The new colour starts failing its HTTP probe during the watch (it still runs): after
/// `unhealthy-after` failed probes in a row the stage switches back to the old colour.
#[test]
fn failing_probes_during_watch_switch_back() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();

    let t = t.pipeline("deploy", &pipeline(&service, &nginx, &long_watch()));
    let child = spawn_until_watching(&t, &service);
    assert!(works(
        "docker",
        &[
            "exec",
            &format!("{}-green", service.0),
            "/bin/busybox",
            "rm",
            "/www/healthz"
        ]
    ));
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", t.log("cutover"));
    let log = t.log("cutover");
    assert!(
        log.contains("failed in a row") || log.contains("HEALTHCHECK reports it unhealthy"),
        "{log}"
    );
    assert!(log.contains("traffic is back on"), "{log}");
    assert_eq!(nginx.colour(), "blue");
    assert_eq!(service.containers(), service.running(&["blue"]));
}

/// Ctrl-C during the watch: the stage is told to stop, switches back to the old colour and
/// removes the new one before portcullis exits 130.
#[test]
fn interrupt_during_watch_switches_back() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();

    let t = t.pipeline("deploy", &pipeline(&service, &nginx, &long_watch()));
    let child = spawn_until_watching(&t, &service);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", t.log("cutover"));
    assert!(
        t.log("cutover").contains("traffic is back on"),
        "{}",
        t.log("cutover")
    );
    assert_eq!(nginx.colour(), "blue");
    assert!(!nginx.upstream().contains("backup"));
    assert_eq!(service.containers(), service.running(&["blue"]));
}

/// An image without a HEALTHCHECK is gated on the HTTP probes alone, and a colour that never
/// passes them fails when `within` runs out.
#[test]
fn without_healthcheck_the_deadline_decides() {
    if !components() {
        return;
    }
    let plain = format!("{}-plain", image());
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\nHEALTHCHECK NONE\n", image()),
    )
    .expect("Dockerfile");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", &plain, "."])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("docker build");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let (service, t, nginx) = fresh();
    let healthy = Spec {
        image: Some(&plain),
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &healthy);
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
    assert_eq!(nginx.colour(), "blue");

    let sick = Spec {
        image: Some(&plain),
        mode: "sick",
        ..Spec::default()
    };
    let t = t.pipeline(
        "deploy",
        &pipeline(&service, &nginx, &sick).replace("within: 20s", "within: 2s"),
    );
    let run = t.run(&["run", "deploy"]);
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(log.contains("not healthy within 2s"), "{log}");
    assert!(log.contains("answered 404, expected 200"), "{log}");
    assert_eq!(nginx.colour(), "blue");
    assert_eq!(service.containers(), service.running(&["blue"]));
}

/// A later stage fails: the pipeline's rollback starts the kept old colour, switches back to
/// it and removes the new one.
#[test]
fn later_failing_stage_switches_back() {
    if !components() {
        return;
    }
    let (service, t, nginx) = fresh();
    let keep = Spec {
        keep_old: true,
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &keep);
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));

    let failing = Spec {
        keep_old: true,
        after: "  smoke:\n    needs: [cutover]\n    run: exit 1\n",
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &failing);
    assert_eq!(run.code, 1, "{run:?}");
    let rollback = rollback_log(&t);
    assert!(
        rollback.contains("starting the kept"),
        "{rollback}\n{run:?}"
    );
    assert!(rollback.contains("switched"), "{rollback}");
    assert_eq!(nginx.colour(), "blue");
    assert_eq!(service.containers(), service.running(&["blue"]));
}

/// Without keep-old the old colour was removed after the drain; the rollback recreates it
/// from the image its labels recorded.
#[test]
fn rollback_recreates_a_removed_old_colour() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();
    let failing = Spec {
        after: "  smoke:\n    needs: [cutover]\n    run: exit 1\n",
        ..Spec::default()
    };
    let (t, run) = deploy(t, &service, &nginx, &failing);
    assert_eq!(run.code, 1, "{run:?}");
    let rollback = rollback_log(&t);
    assert!(rollback.contains("recreating it from"), "{rollback}");
    assert_eq!(nginx.colour(), "blue");
    assert_eq!(service.containers(), service.running(&["blue"]));
}

/// Two deploys of one service started at once: one takes the lock, the other is refused and
/// changes nothing; the service ends with one live colour that nginx serves.
#[test]
fn concurrent_deploys_never_overlap() {
    if !components() {
        return;
    }
    let (service, t, nginx) = blue_live();

    let other = Test::new().pipeline(
        "deploy",
        &pipeline(
            &service,
            &nginx,
            &Spec {
                watch: "3s",
                ..Spec::default()
            },
        ),
    );
    let t = t.pipeline(
        "deploy",
        &pipeline(
            &service,
            &nginx,
            &Spec {
                watch: "3s",
                ..Spec::default()
            },
        ),
    );
    let a = t.spawn(&["run", "deploy"]);
    let b = other.spawn(&["run", "deploy"]);
    let a = a.wait_with_output().expect("wait");
    let b = b.wait_with_output().expect("wait");
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        [Some(0), Some(1)],
        "{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let refused = if a.status.code() == Some(1) {
        t.log("cutover")
    } else {
        other.log("cutover")
    };
    assert!(refused.contains("holds the lock"), "{refused}");
    assert_eq!(nginx.colour(), "green");
    assert_eq!(service.containers(), service.running(&["green"]));
}

/// This process's start time, as the lock records its holder.
fn start_time(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(')').expect("stat format").1.to_owned();
    after
        .split_whitespace()
        .nth(19)
        .expect("starttime")
        .to_owned()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

/// Creates the service's lock as a runner with `pid` and `start` would have.
fn plant_lock(service: &Service, pid: u32, start: &str) {
    let ok = works(
        "docker",
        &[
            "create",
            "--name",
            &format!("{}-portcullis-lock", service.0),
            "--label",
            &format!("dev.portcullis.blue-green.service={}", service.0),
            "--label",
            &format!("dev.portcullis.blue-green.lock={}", service.0),
            "--label",
            "dev.portcullis.blue-green.run-id=planted",
            "--label",
            &format!("dev.portcullis.blue-green.lock-host={}", hostname()),
            "--label",
            &format!("dev.portcullis.blue-green.lock-pid={pid}"),
            "--label",
            &format!("dev.portcullis.blue-green.lock-pid-start={start}"),
            image(),
        ],
    );
    assert!(ok, "docker create the lock");
}

/// A lock whose holder still runs refuses the deploy; a lock left by a process that is gone
/// (killed mid-deploy) is broken and the deploy goes ahead.
#[test]
fn lock_of_a_live_holder_refuses_and_of_a_dead_one_is_broken() {
    if !components() {
        return;
    }
    let (service, t, nginx) = fresh();
    let me = std::process::id();
    plant_lock(&service, me, &start_time(me));
    let (t, run) = deploy(t, &service, &nginx, &Spec::default());
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(log.contains("holds the lock"), "{log}");
    assert!(log.contains("run `planted`"), "{log}");
    assert!(nginx.upstream().contains("127.0.0.1:9"));

    assert!(works(
        "docker",
        &["rm", "-f", &format!("{}-portcullis-lock", service.0)]
    ));
    // A process that has exited: its pid no longer has this start time.
    let gone = Command::new("true").spawn().expect("spawn");
    let pid = gone.id();
    let mut gone = gone;
    gone.wait().expect("wait");
    plant_lock(&service, pid, "1");
    let (t, run) = deploy(t, &service, &nginx, &Spec::default());
    assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
    assert_eq!(nginx.colour(), "blue");
}

/// The Docker engine cannot be reached: a clear error, and nothing changed.
#[test]
fn docker_unreachable_changes_nothing() {
    let t = Test::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    std::fs::create_dir_all(t.path().join("nginx")).expect("mkdir");
    let upstream = "upstream web { server 10.9.9.9:80; }\n";
    let t = t.file("nginx/upstream.conf", upstream).pipeline(
        "deploy",
        r#"version: 1
stages:
  cutover:
    uses: blue-green
    with:
      service: web
      image: app:1
      port: 8080
      switch: { nginx: { upstream-file: nginx/upstream.conf, command: [/bin/false] } }
"#,
    );
    let run = t.run(&["run", "deploy"]);
    assert_eq!(run.code, 1, "{run:?}");
    let log = t.log("cutover");
    assert!(
        log.contains("cannot reach the Docker engine at `unix:///nonexistent/docker.sock`"),
        "{log}\n{run:?}"
    );
    assert!(log.contains("nothing was changed"), "{log}");
    assert_eq!(t.read("nginx/upstream.conf"), upstream);
}

/// A bad `with:` is reported at validation, every error at its line, before anything runs.
#[test]
fn invalid_with_is_reported_at_its_lines() {
    let t = Test::new().pipeline(
        "deploy",
        r#"version: 1
stages:
  cutover:
    uses: blue-green
    with:
      service: "web app"
      port: 99999
      env: [NOVALUE]
      health: { healthy-afterr: 2 }
      switch: { nginx: { upstream-file: a.conf }, command: [x] }
"#,
    );
    let run = t.run(&["validate", "deploy"]);
    assert_eq!(run.code, 2, "{run:?}");
    for needle in [
        "`web app` cannot name containers",
        "`blue-green` needs `image`",
        "`port` is out of range",
        "`NOVALUE` is not `NAME=VALUE`",
        "did you mean `healthy-after`?",
        "`switch` takes exactly one method",
        "deploy.yml:6:",
        "deploy.yml:7:",
    ] {
        assert!(run.stderr.contains(needle), "{needle}\n{}", run.stderr);
    }
}

const EDGE_CONF: &str = "worker_processes 1;\nuser root;\nevents { worker_connections 1024; }\n\
http {\n  access_log off;\n  include /etc/nginx/upstream.conf;\n\
  server { listen 80; location / { proxy_pass http://app; } }\n}\n";

/// An nginx image built from this machine's nginx and the libraries `ldd` names, with busybox
/// for `sh`, `cat` and `mv`; built once per test run, tagged by what goes into it.
fn edge_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let ldd = Command::new("ldd")
            .arg("/usr/sbin/nginx")
            .output()
            .expect("ldd");
        let ldd = String::from_utf8_lossy(&ldd.stdout).into_owned();
        let mut files: Vec<&str> = vec!["/usr/sbin/nginx"];
        files.extend(ldd.split_whitespace().filter(|w| w.starts_with('/')));
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for file in files.iter().chain([&busybox()]) {
            for byte in std::fs::read(file).expect("read").iter().chain(EDGE_CONF.as_bytes()) {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        let tag = format!("portcullis-bg-edge:{hash:016x}");
        if works("docker", &["image", "inspect", &tag]) {
            return tag;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("rootfs");
        for file in &files {
            let target = root.join(file.trim_start_matches('/'));
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::copy(file, &target).expect("copy into the image");
        }
        for d in ["bin", "etc/nginx", "var/lib/nginx", "var/log/nginx", "run", "tmp", "var/lock"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::copy(busybox(), root.join("bin/busybox")).expect("busybox");
        for applet in ["sh", "cat", "mv", "rm", "printf"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("link");
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
        std::fs::write(root.join("etc/nginx/nginx.conf"), EDGE_CONF).expect("nginx.conf");
        std::fs::write(
            root.join("etc/nginx/upstream.conf"),
            "upstream app { server 127.0.0.1:9; }\n",
        )
        .expect("upstream.conf");
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/usr/sbin/nginx\", \"-g\", \"daemon off;\"]\n",
        )
        .expect("Dockerfile");
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &tag, "."])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("docker build");
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tag
    })
}

/// nginx in a container: the upstream file is read, rewritten and reloaded through
/// `docker exec`, and traffic through that nginx follows the cutover.
#[test]
fn nginx_in_a_container_is_switched_through_exec() {
    if !components() {
        return;
    }
    let service = Service::new();
    let edge = format!("{}-edge", service.0);
    let started = Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &edge,
            "--label",
            &format!("dev.portcullis.blue-green.service={}", service.0),
            edge_image(),
        ])
        .output()
        .expect("docker run");
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &edge])
        .output()
        .expect("inspect");
    let ip = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let yaml = format!(
        r#"version: 1
stages:
  cutover:
    uses: blue-green
    with:
      service: {svc}
      image: {image}
      port: 8080
      health: {{ interval: 200ms, timeout: 1s, healthy-after: 2, unhealthy-after: 2, within: 20s }}
      switch: {{ nginx: {{ container: {edge}, upstream-file: /etc/nginx/upstream.conf, upstream: app }} }}
      drain: 300ms
      watch: 1s
      watch-url: http://{ip}/healthz
"#,
        svc = service.0,
        image = image(),
    );
    let colour = || {
        let mut s = TcpStream::connect((ip.as_str(), 80)).expect("connect to the edge");
        write!(
            s,
            "GET /colour HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.trim().to_owned())
            .unwrap_or_default()
    };
    let t = Test::new().pipeline("deploy", &yaml);
    for expected in ["blue", "green"] {
        let run = t.run(&["run", "deploy"]);
        assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
        assert_eq!(colour(), expected);
    }
    let upstream = Command::new("docker")
        .args(["exec", &edge, "cat", "/etc/nginx/upstream.conf"])
        .output()
        .expect("exec cat");
    let upstream = String::from_utf8_lossy(&upstream.stdout).into_owned();
    assert!(
        upstream.contains(&format!("server {}:8080;", service.ip("green"))),
        "{upstream}"
    );
}

/// `switch: command`: the user's command gets the new colour's address and points nginx at it;
/// a later failing stage runs it again to switch back.
#[test]
fn command_switch_runs_the_users_router_command() {
    if !components() {
        return;
    }
    let (service, t, nginx) = fresh();
    let args = nginx.args().join(" ");
    let up = nginx.dir.join("upstream.conf");
    let yaml = |after: &str| {
        format!(
            r#"version: 1
stages:
  cutover:
    uses: blue-green
    with:
      service: {svc}
      image: {image}
      port: 8080
      network: {svc}-net
      health: {{ interval: 200ms, timeout: 1s, healthy-after: 2, unhealthy-after: 2, within: 20s }}
      switch:
        command: [sh, -c, 'printf "upstream {svc} {{ server %s; }}\n" "$PORTCULLIS_BG_ADDRESS" > {up} && nginx {args} -s reload && echo "to $PORTCULLIS_BG_COLOUR"']
      drain: 300ms
      watch: 1s
      watch-url: http://127.0.0.1:{port}/healthz
{after}"#,
            svc = service.0,
            image = image(),
            up = up.display(),
            port = nginx.port,
        )
    };
    let t = t.pipeline("deploy", &yaml(""));
    for expected in ["blue", "green"] {
        let run = t.run(&["run", "deploy"]);
        assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
        assert!(t.log("cutover").contains(&format!("to {expected}")));
        assert_eq!(nginx.colour(), expected);
    }
    let t = t.pipeline(
        "deploy",
        &yaml("  smoke:\n    needs: [cutover]\n    run: exit 1\n"),
    );
    let run = t.run(&["run", "deploy"]);
    assert_eq!(run.code, 1, "{run:?}");
    // Deployed blue, then rolled back to green.
    assert_eq!(nginx.colour(), "green");
    // The colours ran on the service's own network, which the stage created.
    let on_net = Command::new("docker")
        .args([
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            &format!("{}-net", service.0),
        ])
        .output()
        .expect("network inspect");
    assert_eq!(
        String::from_utf8_lossy(&on_net.stdout).trim(),
        format!("{}-green", service.0)
    );
    assert_eq!(service.containers(), service.running(&["green"]));
}

/// `switch: alias`: the live colour holds the alias on the live network, and only it does; a
/// client on that network reaches the new colour by the alias.
#[test]
fn alias_switch_moves_the_network_alias() {
    if !components() {
        return;
    }
    let service = Service::new();
    let live = format!("{}-live", service.0);
    let yaml = format!(
        r#"version: 1
stages:
  cutover:
    uses: blue-green
    with:
      service: {svc}
      image: {image}
      port: 8080
      health: {{ interval: 200ms, timeout: 1s, healthy-after: 2, unhealthy-after: 2, within: 20s }}
      switch: {{ alias: {{ network: {live}, name: app }} }}
      drain: 300ms
      watch: 1s
"#,
        svc = service.0,
        image = image(),
    );
    let t = Test::new().pipeline("deploy", &yaml);
    for expected in ["blue", "green"] {
        let run = t.run(&["run", "deploy"]);
        assert_eq!(run.code, 0, "{run:?}\n{}", t.log("cutover"));
        let out = Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                &live,
                "--entrypoint",
                "/bin/busybox",
                image(),
                "wget",
                "-qO-",
                "http://app:8080/colour",
            ])
            .output()
            .expect("docker run");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            expected,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let holders = Command::new("docker")
        .args([
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            &live,
        ])
        .output()
        .expect("network inspect");
    assert_eq!(
        String::from_utf8_lossy(&holders.stdout).trim(),
        format!("{}-green", service.0)
    );
}
