//! Static mode of the port law: find every place a source tree binds, publishes or points at a
//! port, and judge each against the [`Policy`].
//!
//! The entry point is [`scan`]. The tree is walked in parallel with ripgrep's walker (the
//! `ignore` crate): `.gitignore` is honoured, dotfiles are read (`.env`, `.flaskenv`,
//! `.github/`), and vendored or generated folders are skipped even when they are committed.
//! Each file is classified by its name, its comments are masked out (offsets kept), and the
//! detectors for its kind produce [`Candidate`]s: a port, where it is written, its kind
//! (`bind`, `publish`, `default`, `env`, `reference`) and scope (`host` or `container`).
//! [`judge`] turns candidates into findings: a forbidden port is a violation wherever it
//! appears; a port the policy does not list is a violation only where the host would expose
//! it. A comment `portcullis: allow-port N <reason>` on the line (or alone on the line above)
//! turns the findings for port N on that line into notes that keep the reason.

mod command;
mod compose;
mod files;
mod generic;
mod text;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aho_corasick::AhoCorasick;

use super::adopt::Reach;
use super::{Exposure, Finding, Policy, Severity, Verdict};
use files::Project;
use text::{CommentStyle, Lines, mask_comments};

/// What a written port does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A server listens on it.
    Bind,
    /// The host side of a container mapping.
    Publish,
    /// A server started without a port binds its documented default.
    Default,
    /// A setting a server reads its port from.
    Env,
    /// A URL or address pointing at it.
    Reference,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Publish => "publish",
            Kind::Default => "default",
            Kind::Env => "env",
            Kind::Reference => "reference",
        }
    }
}

/// Where the port would be open: on the host, or only inside a container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Host,
    Container,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Host => "host",
            Scope::Container => "container",
        }
    }
}

/// A port written somewhere in a file, before the policy judges it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Byte offset of the port digits (or of the command word for a default).
    pub(crate) offset: usize,
    pub(crate) port: u16,
    /// Last port of a range (`3000-3005`); equal to `port` otherwise. `port` 0: the entry
    /// could not be read.
    pub(crate) end: u16,
    pub(crate) kind: Kind,
    pub(crate) scope: Scope,
    /// Bound to the loopback interface only.
    pub(crate) loopback: bool,
    /// What the line does, for the message.
    pub(crate) what: String,
    /// Why the setting has no effect, when it has none (a template file, a runtime that
    /// ignores it).
    pub(crate) dead: Option<String>,
}

/// Variables set by the `.env`-style files next to a file: name to (value, file, line).
#[derive(Debug, Default)]
pub(crate) struct EnvFiles {
    vars: HashMap<String, (String, String, u32)>,
    /// The folder holds `gunicorn.conf.py`, which gunicorn reads when started there.
    gunicorn_conf: bool,
    /// A dev-server config here (`nuxt.config.ts`, `vite.config.js`...) sets a port: a dev
    /// server started here binds that, not its default.
    dev_config_port: bool,
}

impl EnvFiles {
    /// Parses one `.env`-style file into `vars`, overriding what is there.
    fn read_into(vars: &mut HashMap<String, (String, String, u32)>, dir: &Path, name: &str) {
        let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
            return;
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            let line = line.strip_prefix("export ").unwrap_or(line);
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v
                    .split(" #")
                    .next()
                    .unwrap_or(v)
                    .trim()
                    .trim_matches(['"', '\'']);
                vars.insert(
                    k.trim().to_owned(),
                    (v.to_owned(), name.to_owned(), n as u32 + 1),
                );
            }
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<(&str, &str, u32)> {
        self.vars
            .get(name)
            .map(|(v, f, l)| (v.as_str(), f.as_str(), *l))
    }

    /// Whether a variable, or (for [`command::GUNICORN_CONF`]) a config file, is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        if name == command::GUNICORN_CONF {
            return self.gunicorn_conf;
        }
        if name == command::DEV_CONFIG {
            return self.dev_config_port;
        }
        self.vars.contains_key(name)
    }
}

/// What a file's folder says about the settings in it, read once per folder and scan.
#[derive(Debug, Default)]
pub(crate) struct Folder {
    /// The project `.env` alone: what Compose interpolates.
    compose_env: EnvFiles,
    /// Every file a runtime loads ([`LOADED_ENV`]), merged, and gunicorn's config file.
    runtime_env: EnvFiles,
    /// What its `package.json` uses.
    project: Project,
    /// It holds a `Dockerfile`: configs here are copied into an image.
    dockerfile: bool,
}

impl Folder {
    pub(crate) fn read(dir: &Path) -> Folder {
        let gunicorn_conf = dir.join(command::GUNICORN_CONF).is_file();
        let mut vars = HashMap::new();
        EnvFiles::read_into(&mut vars, dir, ".env");
        let compose_env = EnvFiles {
            vars: vars.clone(),
            gunicorn_conf,
            dev_config_port: false,
        };
        let project = Project::read(dir);
        for name in &LOADED_ENV[1..] {
            EnvFiles::read_into(&mut vars, dir, name);
        }
        Folder {
            compose_env,
            runtime_env: EnvFiles {
                vars,
                gunicorn_conf,
                dev_config_port: project.package_json && dev_config_sets_port(dir),
            },
            project,
            dockerfile: dir.join("Dockerfile").is_file(),
        }
    }
}

/// Whether a dev-server config in `dir` sets a port (`devServer: { port: 3002 }`,
/// `server: { port: 3002 }`).
fn dev_config_sets_port(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        if !files::is_dev_server_config(name) {
            return false;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            return false;
        };
        let (masked, _) = mask_comments(&text, CommentStyle::Slash);
        let mut found = Vec::new();
        generic::port_settings(&masked, &mut found);
        !found.is_empty()
    })
}

/// The folders read so far in one scan, shared by the walker's threads.
#[derive(Default)]
struct Folders(PerFolder<Arc<Folder>>);

impl Folders {
    fn get(&self, dir: &Path) -> Arc<Folder> {
        self.0.get(dir, || Arc::new(Folder::read(dir)))
    }
}

/// A value per folder, computed once per scan and shared by the walker's threads.
struct PerFolder<T>(Mutex<HashMap<PathBuf, T>>);

impl<T> Default for PerFolder<T> {
    fn default() -> Self {
        PerFolder(Mutex::new(HashMap::new()))
    }
}

impl<T: Clone> PerFolder<T> {
    fn get(&self, dir: &Path, compute: impl FnOnce() -> T) -> T {
        let cached = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(dir)
            .cloned();
        cached.unwrap_or_else(|| {
            // Computed outside the lock; two threads may compute one folder, the first insert
            // wins.
            let value = compute();
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(dir.to_path_buf()).or_insert(value).clone()
        })
    }
}

/// Which folders are inside a virtualenv (a folder holding `pyvenv.cfg`, whatever its name),
/// asked only for the few files with a finding: a stat of every folder walked would cost more
/// than the files it spares (the virtualenv's `site-packages` is skipped by name).
#[derive(Default)]
struct Virtualenvs(PerFolder<bool>);

impl Virtualenvs {
    /// Whether `dir`, or a folder between it and `root` (not `root` itself), is a virtualenv.
    fn inside(&self, dir: &Path, root: &Path) -> bool {
        if dir == root || !dir.starts_with(root) {
            return false;
        }
        self.0.get(dir, || {
            dir.join("pyvenv.cfg").is_file() || dir.parent().is_some_and(|up| self.inside(up, root))
        })
    }
}

/// The files a runtime loads into its environment, in increasing precedence; `.env` first.
const LOADED_ENV: &[&str] = &[
    ".env",
    ".env.development",
    ".env.local",
    ".env.development.local",
    ".flaskenv",
];

/// Folders never scanned, even when committed: dependencies, virtualenvs, build output,
/// caches. (A folder holding `pyvenv.cfg` is a virtualenv whatever its name.)
const SKIP_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "bower_components",
    "jspm_packages",
    ".venv",
    "venv",
    ".virtualenvs",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "site-packages",
    ".next",
    ".nuxt",
    ".svelte-kit",
    ".output",
    ".turbo",
    ".vercel",
    ".parcel-cache",
    ".cache",
    "dist",
    "build",
    "coverage",
    "storybook-static",
    "target",
    "vendor",
    ".terraform",
    ".yarn",
    ".pnpm-store",
    ".gradle",
    ".idea",
    ".vscode",
];

/// Files never scanned: lockfiles and generated bundles hold port-like numbers by the
/// thousand (`caniuse-lite@1.0.30001617`).
const SKIP_FILES: &[&str] = &[
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "npm-shrinkwrap.json",
    "bun.lockb",
    "poetry.lock",
    "Pipfile.lock",
    "uv.lock",
    "Cargo.lock",
    "composer.lock",
    "Gemfile.lock",
    "go.sum",
    "pdm.lock",
];

/// Files past this size are generated, not written by hand; they are skipped.
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    PackageJson,
    Env,
    Compose,
    Workflow,
    Yaml,
    Dockerfile,
    Procfile,
    Nginx,
    SystemdSocket,
    SystemdService,
    Python,
    Script,
    JavaScript,
    /// `.devcontainer/devcontainer.json` or `.devcontainer.json`: the ports the editor forwards.
    DevContainer,
    /// `haproxy*.cfg`.
    HaproxyCfg,
    /// `traefik*.yml`, `.yaml`, `.toml`: the static configuration.
    Traefik,
    /// Spring Boot's `application*.properties`.
    Properties,
    /// `puma.rb`.
    Puma,
    Go,
    /// `uwsgi*.ini`.
    UwsgiIni,
    /// Spring Boot's `application*.yml`.
    SpringYaml,
    Rust,
    /// Other text that may hold local URLs (JSON, TOML, INI).
    Text(CommentStyle),
}

impl FileKind {
    /// The kinds whose own detector reads their server calls (`app.listen(...)`,
    /// `uvicorn.run(...)`, `ListenAndServe`, `bind(...)`), and whose prefilter therefore holds
    /// none of the generic layer's server-call words ([`TEXT_NEEDLES`]).
    fn reads_own_server_calls(self) -> bool {
        matches!(
            self,
            FileKind::JavaScript | FileKind::Python | FileKind::Go | FileKind::Rust
        )
    }
}

fn classify(path: &Path, name: &str) -> Option<FileKind> {
    if SKIP_FILES.contains(&name) || name.ends_with(".min.js") || name.ends_with(".map") {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    // `config.toml.example`, `nginx.conf.template`, `settings.py.dist`: a copy users fill in,
    // read as the file it becomes.
    if let Some((inner, _)) = name.rsplit_once('.').filter(|(inner, _)| {
        inner.contains('.') && matches!(ext, "example" | "sample" | "dist" | "template" | "tmpl")
    }) && let Some(kind) = classify(path, inner)
    {
        return Some(kind);
    }
    Some(match name {
        // composer.json's `scripts` are commands as package.json's are.
        "package.json" | "composer.json" => FileKind::PackageJson,
        "devcontainer.json" | ".devcontainer.json" => FileKind::DevContainer,
        "Caddyfile" => FileKind::Text(CommentStyle::Hash),
        "puma.rb" => FileKind::Puma,
        _ if lower.starts_with("haproxy") && ext == "cfg" => FileKind::HaproxyCfg,
        _ if lower.starts_with("traefik") && matches!(ext, "yml" | "yaml" | "toml") => {
            FileKind::Traefik
        }
        _ if lower.starts_with("application") && ext == "properties" => FileKind::Properties,
        _ if lower.starts_with("application") && matches!(ext, "yml" | "yaml") => {
            FileKind::SpringYaml
        }
        _ if lower.starts_with("uwsgi") && ext == "ini" => FileKind::UwsgiIni,
        _ if ext == "rs" => FileKind::Rust,
        _ if ext == "go" => FileKind::Go,
        // wrangler's `.dev.vars` is a `.env` file under another name.
        ".flaskenv" | ".env" | ".dev.vars" => FileKind::Env,
        _ if name.starts_with(".env.") || ext == "env" => FileKind::Env,
        _ if (lower.starts_with("docker-compose") || lower.starts_with("compose"))
            && matches!(ext, "yml" | "yaml") =>
        {
            FileKind::Compose
        }
        _ if matches!(ext, "yml" | "yaml") => {
            let workflow = path
                .parent()
                .is_some_and(|p| p.ends_with(".github/workflows"));
            if workflow {
                FileKind::Workflow
            } else {
                FileKind::Yaml
            }
        }
        _ if lower == "dockerfile"
            || lower.starts_with("dockerfile.")
            || lower.starts_with("dockerfile_")
            || lower.starts_with("dockerfile-")
            || ext == "dockerfile"
            || lower == "containerfile" =>
        {
            FileKind::Dockerfile
        }
        _ if name == "Procfile" || name.starts_with("Procfile.") => FileKind::Procfile,
        _ if ext == "conf" || name == "nginx.conf" || ext == "nginx" => FileKind::Nginx,
        _ if ext == "socket" => FileKind::SystemdSocket,
        _ if ext == "service" => FileKind::SystemdService,
        _ if ext == "py" => FileKind::Python,
        _ if matches!(ext, "sh" | "bash" | "zsh" | "ksh" | "bats" | "envrc")
            || matches!(
                name,
                "Makefile" | "makefile" | "GNUmakefile" | "Justfile" | "justfile" | ".envrc"
            ) =>
        {
            FileKind::Script
        }
        _ if matches!(
            ext,
            "js" | "mjs" | "cjs" | "ts" | "mts" | "cts" | "jsx" | "tsx" | "vue" | "svelte"
        ) =>
        {
            FileKind::JavaScript
        }
        _ if matches!(ext, "json" | "jsonc") => FileKind::Text(CommentStyle::Slash),
        _ if matches!(ext, "toml" | "cfg") => FileKind::Text(CommentStyle::Hash),
        _ if ext == "ini" => FileKind::Text(CommentStyle::IniLine),
        // Read by the generic layer only: languages and formats no detector was written for.
        _ if matches!(
            ext,
            "c" | "h"
                | "cc"
                | "cpp"
                | "hpp"
                | "java"
                | "kt"
                | "kts"
                | "scala"
                | "sc"
                | "swift"
                | "cs"
                | "dart"
                | "groovy"
                | "gradle"
                | "php"
                | "fs"
                | "fsx"
                | "fsi"
                | "zig"
                | "v"
                | "d"
                | "odin"
                | "hx"
                | "m"
                | "mm"
                | "vala"
                | "gleam"
                | "res"
                | "re"
                | "jsonnet"
                | "libsonnet"
                | "cue"
                | "pkl"
                | "kdl"
                | "ron"
                | "json5"
                | "bal"
        ) =>
        {
            FileKind::Text(CommentStyle::Slash)
        }
        _ if matches!(
            ext,
            "rb" | "ru"
                | "ex"
                | "exs"
                | "tf"
                | "hcl"
                | "nomad"
                | "pl"
                | "pm"
                | "cr"
                | "r"
                | "properties"
                | "j2"
                | "tpl"
                | "eex"
                | "star"
                | "bzl"
                | "psgi"
                | "sbt"
                | "bazel"
                | "jl"
                | "nix"
                | "ps1"
                | "psm1"
                | "fish"
                | "tcl"
                | "pp"
                | "coffee"
                | "rake"
                | "gemspec"
                | "mk"
                | "nu"
        ) =>
        {
            FileKind::Text(CommentStyle::Hash)
        }
        _ if matches!(
            ext,
            "md" | "markdown" | "rst" | "txt" | "adoc" | "ipynb" | "erb" | "bat" | "cmd" | "t"
        ) =>
        {
            FileKind::Text(CommentStyle::None)
        }
        // XML (`pom.xml`, `server.xml`) and HTML pages (a `<script>`'s base URL): `<!-- -->`
        // comments.
        _ if matches!(ext, "xml" | "html" | "htm") => FileKind::Text(CommentStyle::Marked {
            line: &[],
            block: Some(("<!--", "-->")),
        }),
        // Erlang (`sys.config`, `rebar.config`), ML-family, Lisp-family and Nim comments.
        _ if matches!(ext, "erl" | "hrl" | "config" | "app" | "src") => {
            FileKind::Text(CommentStyle::Marked {
                line: &["%"],
                block: None,
            })
        }
        _ if matches!(ext, "hs" | "lhs" | "elm" | "purs") => FileKind::Text(CommentStyle::Marked {
            line: &["--"],
            block: Some(("{-", "-}")),
        }),
        _ if ext == "lua" => FileKind::Text(CommentStyle::Marked {
            line: &["--"],
            block: Some(("--[[", "]]")),
        }),
        _ if matches!(ext, "ml" | "mli") => FileKind::Text(CommentStyle::Marked {
            line: &[],
            block: Some(("(*", "*)")),
        }),
        _ if matches!(
            ext,
            "clj" | "cljs" | "cljc" | "edn" | "rkt" | "scm" | "lisp" | "el" | "fnl" | "ros" | "asd"
        ) =>
        {
            FileKind::Text(CommentStyle::Marked {
                line: &[";"],
                block: None,
            })
        }
        _ if matches!(ext, "nim" | "nims" | "nimble") => FileKind::Text(CommentStyle::Marked {
            line: &["#"],
            block: Some(("#[", "]#")),
        }),
        _ if matches!(ext, "container" | "kube" | "pod") => FileKind::SystemdService,
        _ if ext == "vcl" => FileKind::Text(CommentStyle::Marked {
            line: &["#", "//"],
            block: Some(("/*", "*/")),
        }),
        // `Vagrantfile`, `Tiltfile`, `Gemfile`, xinetd services: files without an extension;
        // tools' dotfiles (`.ember-cli`, `.angular-cli`).
        _ if !name.contains('.') => FileKind::Text(CommentStyle::Hash),
        _ if name.starts_with('.') && !name[1..].contains('.') => {
            FileKind::Text(CommentStyle::Slash)
        }
        _ => return None,
    })
}

fn comment_style(kind: FileKind) -> CommentStyle {
    match kind {
        FileKind::PackageJson => CommentStyle::None,
        FileKind::Dockerfile => CommentStyle::HashLineStart,
        FileKind::SystemdSocket | FileKind::SystemdService => CommentStyle::IniLine,
        FileKind::JavaScript => CommentStyle::Slash,
        FileKind::Text(style) => style,
        FileKind::DevContainer | FileKind::Go | FileKind::Rust => CommentStyle::Slash,
        FileKind::UwsgiIni => CommentStyle::IniLine,
        FileKind::SpringYaml => CommentStyle::Hash,
        FileKind::HaproxyCfg | FileKind::Traefik | FileKind::Properties | FileKind::Puma => {
            CommentStyle::Hash
        }
        _ => CommentStyle::Hash,
    }
}

/// Words at least one of which a file must contain to be worth reading closely, by the
/// detectors that read it; for the many source files that mention no port this search is the
/// only pass over them. Every list holds the local addresses (read in any file) and the
/// allowance marker.
const LOCAL: &[&str] = &[
    "localhost:",
    "127.0.0.1:",
    "0.0.0.0:",
    "[::1]:",
    "[::]:",
    "portcullis:",
    // A local host as a value of its own, with the port in another field.
    "localhost\"",
    "localhost'",
    "127.0.0.1\"",
    "127.0.0.1'",
    "0.0.0.0\"",
    "0.0.0.0'",
    ": localhost",
    ": 127.0.0.1",
];
const JS_NEEDLES: &[&str] = &[
    ".listen(",
    "process.env.PORT",
    "serve(",
    "createServer(",
    "start({",
];
const PY_NEEDLES: &[&str] = &["Flask(", "serve(", "run_app(", "Server((", ".listen("];
/// The Python detector's words that count only where `generic::plausible` says so: an
/// environment read of a `PORT` (`os.environ.get("PORT", 8000)`), a `.run(` of uvicorn or
/// Socket.IO or with a port among its arguments (a Flask app's is read when `Flask(` is there).
const PY_PLAUSIBLE: &[&str] = &["environ", "getenv(", ".run("];
/// What the generic layer reads (`generic`): port names given a value, URLs, flags, socket
/// calls and server directives. A match counts only when `generic::plausible` says so.
const GENERIC_NEEDLES: &[&str] = &[
    "port",
    "Port",
    "PORT",
    "://",
    "-p ",
    "Listen",
    "VirtualHost",
    "EXPOSE ",
    "htons(",
    "Server(",
    "scotty ",
    "Socket(",
    "bind((",
    "connect((",
    "connection((",
    "--bind",
    "-b ",
    "Server.Start(",
    "server.start(",
    "bind =",
    "bind=",
    "--listen",
    "-address",
    "--addr",
    " -addr",
    " -listen",
    " -http",
    // A listen address in a field of its own: `addr: ':3002'` (V), `Addr: ":8000"`.
    "addr: '",
    "addr: \"",
    "Addr: \"",
    "addr = \"",
    "addr = '",
    ":dev-http",
    "Warp.run ",
];
/// Generic words read only in files no ecosystem detector reads (`FileKind::Text` and the
/// other kinds without a prefilter of their own): server calls whose names are common in
/// JavaScript, Python, Go and Rust (`run(`, `start(`), where the ecosystem detectors read those
/// calls themselves. Each counts only when `generic::plausible` says so.
const TEXT_NEEDLES: &[&str] = &[
    // Mosquitto's `listener 8000`.
    "listener ",
    // Haskell: a module that imports warp serves with `run 3000 app`.
    "Handler.Warp",
    // `generic::SERVER_CALLS` (not `setup(`: `generic::plausible` wants a name of its own).
    "up(",
    "run(",
    "Run(",
    "listen(",
    "start(",
    "runApp(",
    "run_app(",
    "serve(",
    "embeddedServer(",
    "startServer(",
    "start_server(",
];
const RUST_NEEDLES: &[&str] = &[
    "bind(",
    "0, 0, 0, 0]",
    "127, 0, 0, 1]",
    "0,0,0,0]",
    "127,0,0,1]",
];
const GO_NEEDLES: &[&str] = &["ListenAndServe", "Listen(", ".Run(\"", ".Start(\""];

/// The prefilters, built once per scan.
struct Needles {
    go: Prefilter,
    rust: Prefilter,
    js: Prefilter,
    python: Prefilter,
    text: Prefilter,
}

/// The words a kind of file must hold to be read closely. A match of a detector's own word is
/// enough; a match of one of the generic layer's common words (`Port`, `://`, `-p `) counts only
/// when what surrounds it could be a port (`generic::plausible`), since those words are in
/// nearly every source file (`import`, `Report`, a licence URL).
struct Prefilter {
    words: AhoCorasick,
    /// Patterns from this index on are [`GENERIC_NEEDLES`].
    generic_from: usize,
}

impl Prefilter {
    fn is_match(&self, bytes: &[u8]) -> bool {
        self.words.find_iter(bytes).any(|m| {
            m.pattern().as_usize() < self.generic_from
                || generic::plausible(bytes, m.start(), m.end())
        }) || std::str::from_utf8(bytes).map_or(true, generic::has_address)
    }
}

impl Needles {
    fn new() -> Needles {
        let build = |extra: &[&str], generic_extra: &[&str]| {
            // Leftmost-first lets the searcher use its SIMD (Teddy) prefilter.
            let words = AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                .build(
                    LOCAL
                        .iter()
                        .chain(extra)
                        .chain(GENERIC_NEEDLES)
                        .chain(generic_extra),
                )
                .expect("fixed patterns build");
            Prefilter {
                words,
                generic_from: LOCAL.len() + extra.len(),
            }
        };
        Needles {
            go: build(GO_NEEDLES, &[]),
            rust: build(RUST_NEEDLES, &[]),
            js: build(JS_NEEDLES, &[]),
            python: build(PY_NEEDLES, PY_PLAUSIBLE),
            text: build(&[], TEXT_NEEDLES),
        }
    }

    /// The prefilter for a file, `None` when the file is always read (config files, which
    /// are few and whose every line may matter).
    fn for_file(&self, kind: FileKind, name: &str) -> Option<&Prefilter> {
        match kind {
            FileKind::JavaScript if !files::is_dev_server_config(name) => Some(&self.js),
            FileKind::Python if !name.contains("gunicorn") => Some(&self.python),
            // Configuration: few files, any line may hold an address (`targets: ['app:8000']`).
            FileKind::Yaml => None,
            // Configuration formats: few files, any line may hold an address.
            FileKind::Text(_)
                if name == "Caddyfile"
                    || [".ini", ".cfg", ".toml", ".conf", ".properties"]
                        .iter()
                        .any(|e| name.ends_with(e)) =>
            {
                None
            }
            FileKind::Text(_) => Some(&self.text),
            FileKind::DevContainer
            | FileKind::HaproxyCfg
            | FileKind::Traefik
            | FileKind::Properties
            | FileKind::Puma => None,
            FileKind::Go => Some(&self.go),
            FileKind::Rust => Some(&self.rust),
            FileKind::UwsgiIni | FileKind::SpringYaml => None,
            _ => None,
        }
    }
}

/// What one scan found, plus the files it read.
#[derive(Debug, Default)]
pub(crate) struct ScanResult {
    pub(crate) findings: Vec<Finding>,
    pub(crate) files: usize,
    /// Paths that could not be read, with the reason.
    pub(crate) errors: Vec<String>,
}

/// Scans each root (a folder or a file) and judges what it finds. File paths in findings are
/// relative to the root they were found under.
/// `reach` says which files are read (excludes, includes); a URL's port in a test or sample
/// file is only a note ([`super::adopt::test_file`]).
pub(crate) fn scan(roots: &[PathBuf], policy: &Policy, reach: &Reach) -> ScanResult {
    let needles = Needles::new();
    let folders = Folders::default();
    let virtualenvs = Virtualenvs::default();
    let mut result = ScanResult::default();
    for root in roots {
        let found = Mutex::new(Vec::new());
        let errors = Mutex::new(Vec::new());
        let files = std::sync::atomic::AtomicUsize::new(0);
        if let Err(e) = std::fs::metadata(root) {
            result.errors.push(format!("{}: {e}", root.display()));
            continue;
        }
        // The walker's filter outlives this call: it gets its own copies.
        let (entry_reach, entry_root) = (reach.clone(), root.clone());
        let walker = ignore::WalkBuilder::new(root)
            .hidden(false)
            .git_ignore(true)
            .git_exclude(true)
            .git_global(false)
            .require_git(false)
            .parents(true)
            .ignore(true)
            .follow_links(false)
            .filter_entry(move |e| {
                let dir = e.file_type().is_some_and(|t| t.is_dir());
                !(dir
                    && e.depth() > 0
                    && (SKIP_DIRS.contains(&e.file_name().to_str().unwrap_or(""))
                        || !entry_reach
                            .enters(e.path().strip_prefix(&entry_root).unwrap_or(e.path()))))
            })
            .build_parallel();
        walker.run(|| {
            let found = &found;
            let errors = &errors;
            let files = &files;
            let needles = &needles;
            let folders = &folders;
            let virtualenvs = &virtualenvs;
            Box::new(move |entry| {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(e.to_string());
                        return ignore::WalkState::Continue;
                    }
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return ignore::WalkState::Continue;
                }
                let path = entry.path();
                let name = entry.file_name().to_str().unwrap_or("");
                let Some(kind) = classify(path, name) else {
                    return ignore::WalkState::Continue;
                };
                if !reach.reads(path.strip_prefix(root).unwrap_or(path)) {
                    return ignore::WalkState::Continue;
                }
                files.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match scan_file(path, name, kind, needles, folders) {
                    Ok(Some((text, candidates, comments)))
                        if (!candidates.is_empty() || !comments.is_empty())
                            && !virtualenvs.inside(path.parent().unwrap_or(root), root) =>
                    {
                        let rel = path.strip_prefix(root).unwrap_or(path);
                        let rel = if rel.as_os_str().is_empty() {
                            Path::new(name)
                        } else {
                            rel
                        };
                        let rel = rel.to_string_lossy();
                        let mut findings = judge_file(policy, &rel, &text, candidates, &comments);
                        if let Some(why) = super::adopt::test_file(&rel) {
                            for f in &mut findings {
                                super::adopt::demote_test_reference(f, why);
                            }
                        }
                        found
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .extend(findings);
                    }
                    Ok(_) => {}
                    Err(e) => errors
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("{}: {e}", path.display())),
                }
                ignore::WalkState::Continue
            })
        });
        result
            .findings
            .extend(found.into_inner().unwrap_or_else(|p| p.into_inner()));
        result
            .errors
            .extend(errors.into_inner().unwrap_or_else(|p| p.into_inner()));
        result.files += files.into_inner();
    }
    result.findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.port).cmp(&(&b.file, b.line, b.column, b.port))
    });
    result
}

type Scanned = (String, Vec<Candidate>, Vec<(usize, String)>);

/// Reads and scans one file: its text, what it declares, and its comments (for suppressions).
fn scan_file(
    path: &Path,
    name: &str,
    kind: FileKind,
    needles: &Needles,
    folders: &Folders,
) -> std::io::Result<Option<Scanned>> {
    use std::io::Read;
    thread_local! {
        /// Each walker thread reads every file into the same buffer: most files are dropped by
        /// the prefilter, and need neither an allocation nor a copy.
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    // One open and no stat: reading at most one byte past the limit tells a file too large.
    let file = std::fs::File::open(path)?;
    BUFFER.with_borrow_mut(|bytes| {
        bytes.clear();
        file.take(MAX_FILE + 1).read_to_end(bytes)?;
        if bytes.len() as u64 > MAX_FILE
            || memchr::memchr(0, &bytes[..bytes.len().min(8192)]).is_some()
        {
            return Ok(None);
        }
        if needles
            .for_file(kind, name)
            .is_some_and(|n| !n.is_match(bytes.as_slice()))
        {
            return Ok(None);
        }
        // A port baseline records findings; it declares none.
        if matches!(kind, FileKind::Text(_))
            && memchr::memmem::find(bytes, b"\"portcullis-ports-baseline\"").is_some()
        {
            return Ok(None);
        }
        // A test or coverage report (JUnit, Cobertura) records a run; it declares nothing.
        if name.len() > 4 && name.as_bytes()[name.len() - 4..].eq_ignore_ascii_case(b".xml") {
            let head = &bytes[..bytes.len().min(1024)];
            if [&b"<testsuites"[..], b"<testsuite ", b"<coverage "]
                .iter()
                .any(|w| memchr::memmem::find(head, w).is_some())
            {
                return Ok(None);
            }
        }
        let text = String::from_utf8_lossy(bytes).into_owned();
        let dir = path.parent().unwrap_or(Path::new("."));
        let (out, comments) = detect(&|| folders.get(dir), name, kind, &text);
        Ok(Some((text, out, comments)))
    })
}

/// Runs the detectors for a file's kind over its text; `folder` gives what its folder says
/// (`.env` files, `package.json`), asked only by the kinds whose meaning depends on it.
fn detect(
    folder: &dyn Fn() -> Arc<Folder>,
    name: &str,
    kind: FileKind,
    text: &str,
) -> (Vec<Candidate>, Vec<(usize, String)>) {
    let (masked, comments) = mask_comments(text, comment_style(kind));
    let mut out = Vec::new();
    match kind {
        FileKind::PackageJson => files::package_json(&masked, &folder().runtime_env, &mut out),
        FileKind::Env => files::env_file(name, &masked, &folder().project, &mut out),
        FileKind::Compose => compose::compose(&masked, &folder().compose_env, &mut out),
        FileKind::Workflow => compose::workflow(&masked, &mut out),
        FileKind::Yaml => {
            compose::kubernetes(&masked, &mut out);
            // Task runners' commands (`cmds:` of a Taskfile, `script:`, `command:`).
            files::commands(&yaml_commands(&masked), &folder().runtime_env, &mut out);
        }
        FileKind::Dockerfile => files::dockerfile(&masked, &mut out),
        FileKind::Procfile | FileKind::Script => {
            if is_makefile(name) {
                files::commands(&mask_make_rules(&masked), &folder().runtime_env, &mut out);
            } else {
                files::commands(&masked, &folder().runtime_env, &mut out);
            }
        }
        FileKind::Nginx => {
            // A config next to a Dockerfile is copied into an image: it binds inside the
            // container.
            let scope = if folder().dockerfile {
                Scope::Container
            } else {
                Scope::Host
            };
            files::nginx(&masked, scope, &mut out);
        }
        FileKind::SystemdSocket => files::systemd_socket(&masked, &mut out),
        FileKind::SystemdService => files::systemd_service(&masked, &mut out),
        FileKind::Python => {
            files::python(name, &masked, &mut out);
            files::server_calls(&masked, masked.contains("tornado"), &mut out);
        }
        FileKind::JavaScript => {
            files::javascript(name, &masked, &mut out);
            files::server_calls(&masked, false, &mut out);
        }
        FileKind::DevContainer => files::devcontainer(&masked, &mut out),
        FileKind::HaproxyCfg => files::haproxy_cfg(&masked, &mut out),
        FileKind::Traefik => files::traefik(&masked, &mut out),
        FileKind::Properties => files::properties(&masked, &mut out),
        FileKind::Puma => files::puma(&masked, &mut out),
        FileKind::Go => files::go(&masked, &mut out),
        FileKind::UwsgiIni => files::uwsgi_ini(&masked, &mut out),
        FileKind::SpringYaml => files::spring_yaml(&masked, &mut out),
        FileKind::Rust => files::rust(&masked, &mut out),
        FileKind::Text(_) => {}
    }
    let ecosystem = out.len();
    files::local_urls(&masked, &mut out);
    files::host_port_fields(&masked, &mut out);
    // The generic layer adds only what the detectors did not find: no port a detector or a
    // local address gave on the same line.
    let mut general = Vec::new();
    generic::port_settings(&masked, &mut general);
    generic::urls(&masked, &mut general);
    // The server calls `run(`, `listen(`, `start(`... are read by these kinds' own detectors,
    // and only in files whose prefilter holds them; an address as an array
    // (`([0, 0, 0, 0], 3000)`) only in Rust, whose prefilter holds it.
    if kind == FileKind::Rust {
        generic::array_addresses(&masked, &mut general);
    }
    if kind.reads_own_server_calls() {
        generic::flags_and_named_calls(&masked, &mut general);
    } else {
        generic::flags_and_calls(&masked, &mut general);
    }
    let mut binds = Vec::new();
    generic::bind_settings(&masked, &mut binds);
    let first_bind = general.len();
    general.extend(binds);
    if !general.is_empty() {
        let is_bind_setting = |i: usize| i >= first_bind;
        let newlines: Vec<usize> = memchr::memchr_iter(b'\n', masked.as_bytes()).collect();
        let line_of = |offset: usize| newlines.partition_point(|&n| n < offset);
        // Where a detector resolves variables (Compose's `${VAR:-default}` from `.env`, a
        // Dockerfile's `ARG`, `package.json` against `.env`), a number it did not report on a
        // line it read is a dead default: the whole line is its. Elsewhere, only its ports.
        let resolves = matches!(
            kind,
            FileKind::Compose | FileKind::Env | FileKind::PackageJson | FileKind::Dockerfile
        );
        let known: std::collections::HashSet<(usize, Option<u16>)> = out[..ecosystem]
            .iter()
            .map(|c| (line_of(c.offset), (!resolves).then_some(c.port)))
            .collect();
        let mut added: Vec<(usize, u16)> = out[ecosystem..]
            .iter()
            .map(|c| (line_of(c.offset), c.port))
            .collect();
        for (n, c) in general.into_iter().enumerate() {
            let line = line_of(c.offset);
            if known.contains(&(line, None)) || known.contains(&(line, Some(c.port))) {
                continue;
            }
            if let Some(i) = added.iter().position(|&a| a == (line, c.port)) {
                // A bind or a setting says more than a local address's reference
                // (`config.bind = ["127.0.0.1:3002"]` in a test binds).
                let at = ecosystem + i;
                if at < out.len() && out[at].kind == Kind::Reference && is_bind_setting(n) {
                    out[at] = c;
                }
                continue;
            }
            added.push((line, c.port));
            out.push(c);
        }
    }
    let comments = comments
        .into_iter()
        .filter(|(_, c)| c.contains("portcullis:"))
        .collect();
    (out, comments)
}

/// A YAML file with only its command lines kept (blanked elsewhere, offsets kept): the values
/// of `cmd`, `cmds`, `command`, `commands`, `script`, `run`, `entrypoint` and the like, inline or
/// as list items under them.
fn yaml_commands(text: &str) -> String {
    const KEYS: &[&str] = &[
        "cmd",
        "cmds",
        "command",
        "commands",
        "script",
        "scripts",
        "run",
        "before_script",
        "after_script",
        "entrypoint",
        "exec",
        "start",
        "serve",
        "dev",
    ];
    let mut out = String::with_capacity(text.len());
    // The indentation of a command block's key while inside it.
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        let indent = body.len() - trimmed.len();
        if block.is_some_and(|b| !trimmed.is_empty() && indent <= b && !trimmed.starts_with('-')) {
            block = None;
        }
        let item = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        let key = item
            .split_once(':')
            .map(|(k, _)| k.trim().trim_matches(['"', '\'']));
        let keep = match key {
            Some(k) if KEYS.contains(&k) => {
                let value = item.split_once(':').map_or("", |(_, v)| v.trim());
                if value.is_empty() || value == "|" || value == ">" {
                    block = Some(indent);
                }
                true
            }
            _ => block.is_some(),
        };
        if keep {
            out.push_str(line);
        } else {
            out.extend(std::iter::repeat_n(' ', body.len()));
            out.push_str(&line[body.len()..]);
        }
    }
    out
}

fn is_makefile(name: &str) -> bool {
    matches!(name, "Makefile" | "makefile" | "GNUmakefile") || name.ends_with(".mk")
}

/// A Makefile with its rule lines blanked (`serve: build`, `.PHONY: serve`): their words are
/// targets, not commands. Recipes (indented) and assignments stay; offsets are kept.
fn mask_make_rules(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let starts_flush = !line.starts_with([' ', '\t']);
        let rule = starts_flush
            && line.find(':').is_some_and(|colon| {
                let head = &line[..colon];
                !head.contains('=') && !head.contains('$') && !line[colon..].starts_with(":=")
            });
        if rule {
            // One space a byte, so that offsets stay those of the file.
            let body = line.trim_end_matches('\n');
            out.extend(std::iter::repeat_n(' ', body.len()));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// A `portcullis: allow-port N <reason>` comment.
#[derive(Debug)]
struct Allowance {
    /// The line whose finding it allows.
    line: u32,
    comment_line: u32,
    column: u32,
    port: u16,
    reason: String,
    used: bool,
}

fn allowances(text: &str, lines: &Lines<'_>, comments: &[(usize, String)]) -> Vec<Allowance> {
    let mut out = Vec::new();
    for (offset, comment) in comments {
        let Some(i) = comment.find("portcullis:") else {
            continue;
        };
        let rest = comment[i + "portcullis:".len()..].trim_start();
        let Some(rest) = rest.strip_prefix("allow-port") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(port) = words.next().and_then(text::port_number) else {
            continue;
        };
        let reason = words.collect::<Vec<_>>().join(" ");
        let reason = reason
            .trim_end_matches("*/")
            .trim_end_matches("-->")
            .trim()
            .to_owned();
        let (line, column) = lines.position(*offset);
        // A comment alone on its line speaks of the next line.
        let line_start = text[..*offset].rfind('\n').map_or(0, |n| n + 1);
        let alone = text[line_start..*offset].trim().is_empty();
        out.push(Allowance {
            line: if alone { line + 1 } else { line },
            comment_line: line,
            column,
            port,
            reason,
            used: false,
        });
    }
    out
}

/// Judges one file's candidates (deduplicated by position) and applies its allowances.
fn judge_file(
    policy: &Policy,
    file: &str,
    text: &str,
    mut candidates: Vec<Candidate>,
    comments: &[(usize, String)],
) -> Vec<Finding> {
    let lines = Lines::new(text);
    let mut allowances = allowances(text, &lines, comments);
    // The first detector to claim a position wins (a bind beats the URL reading of the same
    // digits).
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|c| seen.insert((c.offset, c.port)));
    candidates.sort_by_key(|c| c.offset);
    let mut findings = Vec::new();
    for c in candidates {
        let (line, column) = lines.position(c.offset);
        let Some((port, severity, rule, message)) = judge(policy, &c) else {
            continue;
        };
        let mut finding = Finding {
            file: Some(file.to_owned()),
            line: Some(line),
            column: Some(column),
            port,
            kind: c.kind.as_str(),
            scope: c.scope.as_str(),
            severity,
            rule,
            message,
            fingerprint: Some(super::adopt::fingerprint(lines.text_of(line), rule, port)),
        };
        // An allowance covers its port on its line: both sides of `8000:8000` included.
        if let Some(a) = allowances
            .iter_mut()
            .find(|a| a.line == line && a.port == port)
        {
            a.used = true;
            finding.severity = Severity::Note;
            finding.rule = "allowed";
            let reason = if a.reason.is_empty() {
                "no reason given".to_owned()
            } else {
                a.reason.clone()
            };
            finding.message = format!("allowed by comment ({reason}): {}", finding.message);
        }
        findings.push(finding);
    }
    for a in allowances.iter().filter(|a| !a.used) {
        findings.push(Finding {
            file: Some(file.to_owned()),
            line: Some(a.comment_line),
            column: Some(a.column),
            port: a.port,
            kind: "reference",
            scope: "host",
            severity: Severity::Note,
            rule: "unused-allow",
            message: format!("`portcullis: allow-port {}` allows nothing on line {}: no finding for port {} there", a.port, a.line, a.port),
            fingerprint: None,
        });
    }
    findings
}

/// The policy's verdict on one candidate; `None` when there is nothing to say.
fn judge(policy: &Policy, c: &Candidate) -> Option<Verdict> {
    if c.port == 0 {
        let message = format!("{}; check it by hand", c.what);
        return Some((0, Severity::Note, "unverified", message));
    }
    let exposure = match &c.dead {
        _ if c.kind == Kind::Reference || c.scope == Scope::Container => Exposure::Internal,
        Some(reason) => Exposure::NoEffect(reason),
        None if c.loopback => Exposure::Loopback("binds"),
        None => Exposure::Exposed,
    };
    policy.judge(c.port..=c.end, exposure, &c.what)
}

/// A file of each kind, for [`check_detectors`].
const KINDS: &[(FileKind, &str)] = &[
    (FileKind::PackageJson, "package.json"),
    (FileKind::Env, ".env"),
    (FileKind::Compose, "docker-compose.yml"),
    (FileKind::Workflow, "ci.yml"),
    (FileKind::Yaml, "k8s.yaml"),
    (FileKind::Dockerfile, "Dockerfile"),
    (FileKind::Procfile, "Procfile"),
    (FileKind::Script, "dev.sh"),
    (FileKind::Nginx, "site.conf"),
    (FileKind::SystemdSocket, "a.socket"),
    (FileKind::SystemdService, "a.service"),
    (FileKind::Python, "gunicorn.conf.py"),
    (FileKind::JavaScript, "vite.config.ts"),
    (FileKind::Text(CommentStyle::Slash), "x.json"),
    (FileKind::Text(CommentStyle::IniLine), "x.ini"),
    (FileKind::DevContainer, "devcontainer.json"),
    (FileKind::HaproxyCfg, "haproxy.cfg"),
    (FileKind::Traefik, "traefik.yml"),
    (FileKind::Properties, "application.properties"),
    (FileKind::Puma, "puma.rb"),
    (FileKind::Go, "main.go"),
    (FileKind::UwsgiIni, "uwsgi.ini"),
    (FileKind::SpringYaml, "application.yml"),
    (FileKind::Rust, "main.rs"),
    (FileKind::SystemdService, "web.container"),
    (
        FileKind::Text(CommentStyle::Marked {
            line: &["%"],
            block: None,
        }),
        "sys.config",
    ),
    (
        FileKind::Text(CommentStyle::Marked {
            line: &["#"],
            block: Some(("#[", "]#")),
        }),
        "app.nim",
    ),
    (
        FileKind::Text(CommentStyle::Marked {
            line: &[],
            block: Some(("(*", "*)")),
        }),
        "main.ml",
    ),
    (
        FileKind::Text(CommentStyle::Marked {
            line: &["#", "//"],
            block: Some(("/*", "*/")),
        }),
        "default.vcl",
    ),
];

/// Panics when the prefilter would drop `text` for a kind whose detectors find a port in it.
/// For the property tests and the `ports` fuzz target.
pub(crate) fn prefilter_keeps_what_is_found(text: &str) {
    static NEEDLES: std::sync::LazyLock<Needles> = std::sync::LazyLock::new(Needles::new);
    for (kind, name) in KINDS.iter().chain(PREFILTERED_KINDS) {
        let Some(prefilter) = NEEDLES.for_file(*kind, name) else {
            continue;
        };
        if prefilter.is_match(text.as_bytes()) {
            continue;
        }
        let (candidates, _) = detect(&|| Arc::new(Folder::default()), name, *kind, text);
        assert!(
            candidates.is_empty(),
            "{kind:?} {name}: the prefilter drops {text:?}, which holds {candidates:?}"
        );
    }
}

/// Kinds read only when their prefilter matches, besides those of [`KINDS`].
const PREFILTERED_KINDS: &[(FileKind, &str)] = &[
    (FileKind::Python, "app.py"),
    (FileKind::JavaScript, "server.js"),
    (FileKind::Text(CommentStyle::Slash), "Main.java"),
    (FileKind::Text(CommentStyle::Hash), "app.rb"),
    (
        FileKind::Text(CommentStyle::Marked {
            line: &[],
            block: Some(("<!--", "-->")),
        }),
        "pom.xml",
    ),
];

/// Runs every kind's detectors and the judgement over `text`; panics when an offset leaves the
/// text or a finding has no line and column. For the property tests and the `ports` fuzz target.
pub(crate) fn check_detectors(text: &str) {
    let policy = Policy {
        forbid: [3000, 8000].into_iter().collect(),
        allow: [(5555, None)].into_iter().collect(),
        ..Policy::default()
    };
    for (kind, name) in KINDS {
        let (candidates, comments) = detect(&|| Arc::new(Folder::default()), name, *kind, text);
        for c in &candidates {
            assert!(
                c.offset <= text.len(),
                "{kind:?}: offset past the end in {text:?}"
            );
        }
        for f in judge_file(&policy, name, text, candidates, &comments) {
            assert!(f.line.is_some_and(|l| l >= 1) && f.column.is_some_and(|c| c >= 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn files_are_classified_by_any_case_and_by_the_file_a_template_becomes() {
        let kind = |name: &str| classify(Path::new(name), name);
        assert_eq!(kind("api.R"), kind("api.r"));
        assert!(kind("api.R").is_some());
        assert_eq!(kind("app.jl"), Some(FileKind::Text(CommentStyle::Hash)));
        assert_eq!(kind("main.zig"), Some(FileKind::Text(CommentStyle::Slash)));
        assert_eq!(kind("docker-compose.yml.example"), Some(FileKind::Compose));
        assert_eq!(kind("nginx.conf.template"), Some(FileKind::Nginx));
        assert_eq!(kind(".envrc"), Some(FileKind::Script));
        assert_eq!(kind("Dockerfile_dagster"), Some(FileKind::Dockerfile));
        assert_eq!(kind(".dev.vars"), Some(FileKind::Env));
        assert_eq!(
            kind("service.bal"),
            Some(FileKind::Text(CommentStyle::Slash))
        );
        assert_eq!(kind("logo.png"), None);
        assert_eq!(kind("notes.example"), None);
    }

    /// Command values of a task runner's YAML are kept, other keys blanked, offsets unchanged.
    #[test]
    fn yaml_commands_keep_only_commands() {
        let text = "tasks:\n  web:\n    name: serve\n    cmds:\n      - npx serve -l 3000\n      - echo é\n    dir: x\n  run: python -m http.server 8000\n";
        let kept = yaml_commands(text);
        assert_eq!(kept.len(), text.len());
        assert!(!kept.contains("name: serve"), "{kept}");
        assert!(kept.contains("      - npx serve -l 3000\n"), "{kept}");
        assert!(
            kept.contains("  run: python -m http.server 8000\n"),
            "{kept}"
        );
        assert!(!kept.contains("dir: x"), "{kept}");
    }

    /// Pieces real files are made of, with the characters that trip offset arithmetic:
    /// multi-byte text next to digits, unbalanced quotes and brackets, lone `${`.
    const TOKENS: &[&str] = &[
        " ",
        "\n",
        "  ",
        "\t",
        "\\\n",
        "#",
        "//",
        "/*",
        "*/",
        ";",
        "\"",
        "'",
        "`",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ":",
        "=",
        ",",
        "-",
        "/",
        "$",
        "${",
        ":-",
        "é",
        "日本",
        "🚀",
        "3000",
        "8000",
        "5555",
        "0",
        "70000",
        "1.0.30001617",
        "PORT",
        "PORT=",
        "FLASK_RUN_PORT=",
        "-p",
        "--port",
        "--port=",
        "-b",
        "--bind",
        "--host",
        "-h",
        "next",
        "dev",
        "start",
        "vite",
        "preview",
        "serve",
        "flask",
        "run",
        "gunicorn",
        "uvicorn",
        "python",
        "-m",
        "http.server",
        "manage.py",
        "runserver",
        "docker",
        "&&",
        "|",
        "&",
        "localhost:",
        "127.0.0.1:",
        "0.0.0.0:",
        "[::1]:",
        "[::]:",
        ".listen(",
        "process.env.PORT",
        "||",
        "??",
        ".run(",
        "app",
        "Flask(",
        "port=",
        "bind ",
        "address",
        "server.port",
        "ListenAndServe(",
        "net.Listen(",
        "\"forwardPorts\"",
        "\"appPort\"",
        "\"portsAttributes\"",
        "host",
        "localhost\"",
        "*:",
        "ipv6@",
        "Bun.serve(",
        "Deno.serve(",
        "serve(",
        "run_app(",
        "HTTPServer((",
        "{ port: ",
        "host=",
        "environ.get(",
        "getenv(",
        "bind",
        "listen",
        "ListenStream=",
        "Environment=",
        "ExecStart=",
        "EXPOSE",
        "ENV",
        "ARG",
        "CMD",
        "services:",
        "ports:",
        "expose:",
        "- ",
        "published:",
        "target:",
        "apiVersion: v1",
        "kind: Service",
        "containerPort:",
        "nodePort:",
        "jobs:",
        "steps:",
        "run:",
        "env:",
        "command:",
        "---",
        "\"scripts\"",
        "portcullis: allow-port",
        "unix:",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            check_detectors(&text);
        }

        /// The prefilter drops only files the detectors would find nothing in: it is a
        /// shortcut, never a change in what a scan reports.
        #[test]
        fn the_prefilter_drops_no_file_with_a_finding(parts in proptest::collection::vec(any::<prop::sample::Index>(), 0..30)) {
            // Words near the prefilter's edge: the generic words it judges by what surrounds
            // them, and the detectors' words it does not list.
            const NEAR: &[&str] = &[
                " ", "\n", "\"", "'", ":", "=", ",", "(", ")", "[", "]", "{", "}", ".", "-", "_",
                "port", "Port", "PORT", "ports", "8000", "3000", "5555", "127.0.0.1", "0.0.0.0",
                "localhost", "://", "http", "run(", ".run(", "start(", "listen(", "serve(",
                "environ", ".get(", "getenv(", "os.", "Flask(", "app", "uvicorn", "socketio",
                "web", "-p ", "--port", "bind", "listen", "address", "addr", "host", "Server(",
                "as", "Undertow", "name=", "value=", "<", ">", "/", "or ", "int(", "Listen",
                "EXPOSE ", "ENV ", "#", "[0, 0, 0, 0]", "[127,0,0,1]", "listener ",
                "Network.Wai.Handler.Warp", "run ",
            ];
            let text: String = parts.iter().map(|i| NEAR[i.index(NEAR.len())]).collect();
            prefilter_keeps_what_is_found(&text);
        }

        #[test]
        fn file_shaped_text_never_panics(parts in proptest::collection::vec(any::<prop::sample::Index>(), 0..80)) {
            let text: String = parts.iter().map(|i| TOKENS[i.index(TOKENS.len())]).collect();
            check_detectors(&text);
        }
    }

    /// Each prefilter stays within the 64 words of the SIMD (Teddy) searcher: one more word
    /// silently turns every file's search into a slower one.
    #[test]
    fn prefilters_stay_on_the_fast_searcher() {
        let n = Needles::new();
        for (name, p) in [
            ("go", &n.go),
            ("rust", &n.rust),
            ("js", &n.js),
            ("python", &n.python),
            ("text", &n.text),
        ] {
            assert!(
                p.words.patterns_len() <= 64,
                "{name}: {}",
                p.words.patterns_len()
            );
        }
    }

    #[test]
    fn html_pages_are_read_without_their_comments() {
        let kind = classify(Path::new("widget.html"), "widget.html").expect("read");
        let text = "<!-- <script>var U=\"http://localhost:3002\"</script> -->\n\
                    <script>var BASE_URL=\"http://localhost:3000\";</script>\n";
        let (found, _) = detect(&|| Arc::new(Folder::default()), "widget.html", kind, text);
        assert_eq!(
            found.iter().map(|c| c.port).collect::<Vec<_>>(),
            [3000],
            "{found:?}"
        );
    }

    #[test]
    fn a_dev_server_takes_its_port_from_its_config_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = || Arc::new(Folder::read(dir.path()));
        let package = "{ \"scripts\": { \"dev\": \"nuxt dev\" } }\n";
        std::fs::write(dir.path().join("package.json"), package).expect("write");
        let ports =
            |found: Vec<Candidate>| found.iter().map(|c| (c.port, c.kind)).collect::<Vec<_>>();
        let (without, _) = detect(&folder, "package.json", FileKind::PackageJson, package);
        assert_eq!(ports(without), [(3000, Kind::Default)]);
        // A config that only mentions a port in a comment sets nothing.
        let config = dir.path().join("nuxt.config.ts");
        std::fs::write(
            &config,
            "export default { /* devServer: { port: 3002 } */ }\n",
        )
        .expect("write");
        let (commented, _) = detect(&folder, "package.json", FileKind::PackageJson, package);
        assert_eq!(ports(commented), [(3000, Kind::Default)]);
        std::fs::write(
            &config,
            "export default {\n  devServer: { port: 3002 },\n}\n",
        )
        .expect("write");
        let (with, _) = detect(&folder, "package.json", FileKind::PackageJson, package);
        assert!(with.is_empty(), "{with:?}");
    }

    #[test]
    fn gunicorn_reads_its_config_file_from_its_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = || Arc::new(Folder::read(dir.path()));
        let (without, _) = detect(
            &folder,
            "Procfile",
            FileKind::Procfile,
            "web: gunicorn app:app\n",
        );
        assert_eq!(
            without.iter().map(|c| (c.port, c.kind)).collect::<Vec<_>>(),
            [(8000, Kind::Default)]
        );
        std::fs::write(dir.path().join("gunicorn.conf.py"), "bind = ':5555'\n").expect("write");
        let (with, _) = detect(
            &folder,
            "Procfile",
            FileKind::Procfile,
            "web: gunicorn app:app\n",
        );
        assert!(with.is_empty(), "{with:?}");
    }
}
