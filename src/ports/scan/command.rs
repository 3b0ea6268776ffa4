//! Server command lines: `next dev -p 3001`, `PORT=3002 next start`, `gunicorn -b
//! 0.0.0.0:5555 app:app`, `python manage.py runserver`, `["uvicorn", "m:app", "--port",
//! "8000"]`.
//!
//! The same reader serves every place a command is written: package.json scripts, Procfiles,
//! Dockerfile `CMD`/`ENTRYPOINT`, compose and Kubernetes `command:`, systemd `ExecStart=`,
//! workflow `run:` steps and shell scripts. Text is split into words (quotes, brackets and
//! commas separate words, so JSON exec form reads like a shell line), then into simple
//! commands at `&&`, `||`, `;`, `|` and `&`. In each simple command the first word that names a
//! known server (by its file name, so `./node_modules/.bin/next` counts) decides the grammar:
//! its port flags, and the port it binds when none is given.

use super::text::{PortValue, is_loopback_host, parse_port_value};
use super::{Candidate, Kind, Scope};

#[derive(Debug, Clone, Copy)]
struct Word<'a> {
    text: &'a str,
    /// Byte offset in the file.
    at: usize,
    op: bool,
}

/// Splits `text` (which starts at byte `base` of the file) into words and operators.
fn words(text: &str, base: usize) -> Vec<Word<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(b, b'&' | b'|' | b';') {
            let len = if bytes.get(i + 1) == Some(&b) { 2 } else { 1 };
            out.push(Word {
                text: &text[i..i + len],
                at: base + i,
                op: true,
            });
            i += len;
            continue;
        }
        if is_separator(b) {
            i += 1;
            continue;
        }
        let start = i;
        let mut depth = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c == b'{' {
                depth += 1;
            } else if c == b'}' && depth > 0 {
                depth -= 1;
            } else if depth == 0 && (is_separator(c) || matches!(c, b'&' | b'|' | b';')) {
                break;
            }
            i += 1;
        }
        out.push(Word {
            text: &text[start..i],
            at: base + start,
            op: false,
        });
    }
    out
}

fn is_separator(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'"' | b'\'' | b'`' | b',' | b'[' | b']' | b'(' | b')' | b'\\'
        )
}

/// Where a command is written, which decides the scope of what it binds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub(crate) scope: Scope,
    /// The environment already sets `PORT` (a Dockerfile `ENV PORT`, a unit's
    /// `Environment=PORT=`): servers that read it bind that, not their default.
    pub(crate) port_env_set: bool,
    /// Commands here run from the project folder, so servers that load `.env`-style files
    /// see the ones next to this file.
    pub(crate) loads_env_files: bool,
}

/// Finds the ports bound by the commands in `text`, which starts at byte `base` of the file.
pub(crate) fn scan(
    text: &str,
    base: usize,
    cx: &Context,
    loaded_env: &dyn Fn(&str) -> bool,
    out: &mut Vec<Candidate>,
) {
    let ws = words(text, base);
    for cmd in ws.split(|w| w.op) {
        simple_command(cmd, cx, loaded_env, out);
    }
}

/// Scans one command written in pieces (continuation lines, exec-form list items), each
/// `(file offset, text)`, as if joined by spaces.
pub(crate) fn scan_pieces(
    pieces: &[(usize, &str)],
    cx: &Context,
    loaded_env: &dyn Fn(&str) -> bool,
    out: &mut Vec<Candidate>,
) {
    // Joined with spaces, keeping a map back to file offsets.
    let mut joined = String::new();
    let mut map: Vec<(usize, usize)> = Vec::new(); // (joined offset, file offset)
    for (at, piece) in pieces {
        map.push((joined.len(), *at));
        joined.push_str(piece);
        joined.push(' ');
    }
    let mut found = Vec::new();
    scan(&joined, 0, cx, loaded_env, &mut found);
    for mut c in found {
        let i = map.partition_point(|(j, _)| *j <= c.offset) - 1;
        c.offset = map[i].1 + (c.offset - map[i].0);
        out.push(c);
    }
}

/// Asked of `loaded_env`: whether the folder holds gunicorn's default config file.
pub(crate) const GUNICORN_CONF: &str = "gunicorn.conf.py";
/// Asked of the folder's files: a dev-server config there sets a port.
pub(crate) const DEV_CONFIG: &str = "dev-server config";

/// What a server program reads.
struct Grammar {
    name: &'static str,
    /// Flags taking a port (or `host:port`) value.
    flags: &'static [&'static str],
    /// The port used when no flag is given, and whether that default is loopback only.
    default: Option<(u16, bool)>,
    /// Environment variables the server reads its port from.
    env: &'static [&'static str],
    /// Takes the port as its first positional argument (`runserver 8080`, `http.server 8000`).
    positional: bool,
    /// Of `env`, the variables it also reads from `.env`-style files (Create React App reads
    /// `PORT` from `.env`, `flask run` reads `FLASK_RUN_PORT` from `.flaskenv`; Next.js reads
    /// `PORT` only from the real environment).
    file_env: &'static [&'static str],
}

const NEXT_DEV: Grammar = Grammar {
    name: "next dev",
    flags: &["-p", "--port"],
    default: Some((3000, false)),
    env: &["PORT"],
    positional: false,
    file_env: &[],
};
const NEXT_START: Grammar = Grammar {
    name: "next start",
    flags: &["-p", "--port"],
    default: Some((3000, false)),
    env: &["PORT"],
    positional: false,
    file_env: &[],
};
const VITE: Grammar = Grammar {
    name: "vite",
    flags: &["--port"],
    default: Some((5173, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const VITE_PREVIEW: Grammar = Grammar {
    name: "vite preview",
    flags: &["--port"],
    default: Some((4173, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const SERVE: Grammar = Grammar {
    name: "serve",
    flags: &["-l", "--listen", "-p"],
    default: Some((3000, false)),
    env: &["PORT"],
    positional: false,
    file_env: &[],
};
const REACT_SCRIPTS: Grammar = Grammar {
    name: "react-scripts start",
    flags: &[],
    default: Some((3000, false)),
    env: &["PORT"],
    positional: false,
    file_env: &["PORT"],
};
const FLASK: Grammar = Grammar {
    name: "flask run",
    flags: &["-p", "--port"],
    default: Some((5000, true)),
    env: &["FLASK_RUN_PORT"],
    positional: false,
    file_env: &["FLASK_RUN_PORT"],
};
const GUNICORN: Grammar = Grammar {
    name: "gunicorn",
    flags: &["-b", "--bind"],
    default: Some((8000, true)),
    env: &["PORT"],
    positional: false,
    file_env: &[],
};
const UVICORN: Grammar = Grammar {
    name: "uvicorn",
    flags: &["--port"],
    default: Some((8000, true)),
    env: &["UVICORN_PORT"],
    positional: false,
    file_env: &[],
};
const HYPERCORN: Grammar = Grammar {
    name: "hypercorn",
    flags: &["-b", "--bind"],
    default: Some((8000, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const FASTAPI: Grammar = Grammar {
    name: "fastapi",
    flags: &["--port"],
    default: Some((8000, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const RUNSERVER: Grammar = Grammar {
    name: "manage.py runserver",
    flags: &[],
    default: Some((8000, true)),
    env: &[],
    positional: true,
    file_env: &[],
};
const HTTP_SERVER: Grammar = Grammar {
    name: "python -m http.server",
    flags: &[],
    default: Some((8000, false)),
    env: &[],
    positional: true,
    file_env: &[],
};
const GATSBY: Grammar = Grammar {
    name: "gatsby develop",
    flags: &["-p", "--port"],
    default: Some((8000, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const ARTISAN_SERVE: Grammar = Grammar {
    name: "php artisan serve",
    flags: &["--port"],
    default: Some((8000, true)),
    env: &["SERVER_PORT"],
    positional: false,
    file_env: &[],
};
const STREAMLIT: Grammar = Grammar {
    name: "streamlit run",
    flags: &["--server.port"],
    default: Some((8501, false)),
    env: &["STREAMLIT_SERVER_PORT"],
    positional: false,
    file_env: &[],
};
const REMIX_SERVE: Grammar = Grammar {
    name: "remix-serve",
    flags: &[],
    default: Some((3000, false)),
    env: &["PORT"],
    positional: false,
    file_env: &[],
};
const RAILS: Grammar = Grammar {
    name: "rails server",
    flags: &["-p", "--port"],
    default: Some((3000, true)),
    env: &["PORT"],
    positional: false,
    file_env: &[],
};
const PUMA: Grammar = Grammar {
    name: "puma",
    flags: &["-p", "--port"],
    default: Some((9292, false)),
    env: &["PORT"],
    positional: false,
    file_env: &[],
};
const ASTRO: Grammar = Grammar {
    name: "astro dev",
    flags: &["--port"],
    default: Some((4321, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const NUXT: Grammar = Grammar {
    name: "nuxt dev",
    flags: &["--port", "-p"],
    default: Some((3000, true)),
    env: &["PORT", "NUXT_PORT", "NITRO_PORT"],
    positional: false,
    file_env: &[],
};
const NG_SERVE: Grammar = Grammar {
    name: "ng serve",
    flags: &["--port"],
    default: Some((4200, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const HUGO: Grammar = Grammar {
    name: "hugo server",
    flags: &["-p", "--port"],
    default: Some((1313, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const JEKYLL: Grammar = Grammar {
    name: "jekyll serve",
    flags: &["-P", "--port"],
    default: Some((4000, true)),
    env: &[],
    positional: false,
    file_env: &[],
};
const STORYBOOK: Grammar = Grammar {
    name: "storybook",
    flags: &["-p", "--port"],
    default: Some((6006, false)),
    env: &[],
    positional: false,
    file_env: &[],
};
const HTTP_SERVER_NODE: Grammar = Grammar {
    name: "http-server",
    flags: &["-p", "--port"],
    default: Some((8080, false)),
    env: &["PORT"],
    positional: false,
    file_env: &[],
};
const DOCKER_RUN: Grammar = Grammar {
    name: "docker run",
    flags: &["-p", "--publish"],
    default: None,
    env: &[],
    positional: false,
    file_env: &[],
};

/// Flags that take a value which is not a port, per program, so the value is not read as a
/// positional argument.
const VALUE_FLAGS: &[&str] = &[
    "--app",
    "-A",
    "-w",
    "--workers",
    "-k",
    "--worker-class",
    "-c",
    "--config",
    "-H",
    "--hostname",
    "--host",
    "-h",
    "--env-file",
    "--log-level",
    "--settings",
    "--name",
    "-e",
    "--env",
    "-v",
    "--volume",
    "--network",
    "--uds",
    "--fd",
];

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Whether the word at `i` is where a program name goes: first, or after a label
/// (`"start":`, `web:`), an environment assignment or a launcher (`npx`, `exec`, `pnpm dlx`).
fn command_position(cmd: &[Word<'_>], i: usize) -> bool {
    let Some(prev) = i.checked_sub(1).map(|p| cmd[p].text) else {
        return true;
    };
    prev.ends_with(':')
        || prev.contains('=')
        || matches!(
            prev,
            "npx" | "bunx" | "exec" | "dlx" | "--" | "env" | "cross-env" | "nohup" | "sudo" | "-"
        )
}

/// Which server a word at `i` starts, and where its arguments begin.
fn program(cmd: &[Word<'_>], i: usize) -> Option<(&'static Grammar, usize)> {
    // A command that names a server without starting it (`pkill -f gunicorn`, `which vite`).
    if cmd.first().is_some_and(|w| {
        matches!(
            basename(w.text),
            "pkill"
                | "pgrep"
                | "killall"
                | "which"
                | "whereis"
                | "type"
                | "man"
                | "ps"
                | "echo"
                | "printf"
        )
    }) {
        return None;
    }
    let w = basename(cmd[i].text);
    let next = cmd.get(i + 1).map(|w| w.text);
    let after_flags = |from: usize| {
        let mut j = from;
        while let Some(w) = cmd.get(j) {
            if VALUE_FLAGS.contains(&w.text) {
                j += 2;
            } else if w.text.starts_with('-') {
                j += 1;
            } else {
                break;
            }
        }
        j
    };
    match w {
        "next" => match next {
            Some("dev") => Some((&NEXT_DEV, i + 2)),
            Some("start") => Some((&NEXT_START, i + 2)),
            _ => None,
        },
        "vite" => match next {
            None => Some((&VITE, i + 1)),
            Some("dev" | "serve") => Some((&VITE, i + 2)),
            Some("preview") => Some((&VITE_PREVIEW, i + 2)),
            Some(n) if n.starts_with('-') => Some((&VITE, i + 1)),
            _ => None,
        },
        // `serve` is also a subcommand (`vue-cli-service serve`, `ng serve`): only the program
        // itself, in command position, counts.
        "serve" if !command_position(cmd, i) => None,
        "serve" => match next {
            Some(n) if n.contains(':') && !n.starts_with("tcp:") => None,
            // Ray Serve's CLI (`serve run config.yaml`, `serve deploy`): its port is in the
            // config file, not the static server's 3000.
            Some("run" | "deploy" | "build" | "status" | "shutdown" | "config" | "start") => None,
            _ => Some((&SERVE, i + 1)),
        },
        "react-scripts" => (next == Some("start")).then_some((&REACT_SCRIPTS, i + 2)),
        "flask" => {
            let j = after_flags(i + 1);
            (cmd.get(j).map(|w| w.text) == Some("run")).then_some((&FLASK, j + 1))
        }
        "gunicorn" => Some((&GUNICORN, i + 1)),
        "uvicorn" => Some((&UVICORN, i + 1)),
        "hypercorn" => Some((&HYPERCORN, i + 1)),
        "fastapi" => matches!(next, Some("dev" | "run")).then_some((&FASTAPI, i + 2)),
        "manage.py" | "django-admin" => {
            matches!(next, Some("runserver" | "runserver_plus")).then_some((&RUNSERVER, i + 2))
        }
        "http.server" if i > 0 && cmd[i - 1].text == "-m" => Some((&HTTP_SERVER, i + 1)),
        "storybook" => (next == Some("dev")).then_some((&STORYBOOK, i + 2)),
        "start-storybook" => Some((&STORYBOOK, i + 1)),
        "http-server" => Some((&HTTP_SERVER_NODE, i + 1)),
        "rails" => matches!(next, Some("server" | "s")).then_some((&RAILS, i + 2)),
        "remix-serve" => Some((&REMIX_SERVE, i + 1)),
        "gatsby" => (next == Some("develop")).then_some((&GATSBY, i + 2)),
        "artisan" => (next == Some("serve")).then_some((&ARTISAN_SERVE, i + 2)),
        "streamlit" => (next == Some("run")).then_some((&STREAMLIT, i + 2)),
        "puma" => Some((&PUMA, i + 1)),
        "astro" => (next == Some("dev")).then_some((&ASTRO, i + 2)),
        "nuxt" | "nuxi" => (next == Some("dev")).then_some((&NUXT, i + 2)),
        "ng" => matches!(next, Some("serve" | "s")).then_some((&NG_SERVE, i + 2)),
        "hugo" => matches!(next, Some("server" | "serve")).then_some((&HUGO, i + 2)),
        "jekyll" => matches!(next, Some("serve" | "s")).then_some((&JEKYLL, i + 2)),
        "docker" | "podman" => (next == Some("run")).then_some((&DOCKER_RUN, i + 2)),
        _ => None,
    }
}

fn simple_command(
    cmd: &[Word<'_>],
    cx: &Context,
    loaded_env: &dyn Fn(&str) -> bool,
    out: &mut Vec<Candidate>,
) {
    // `PORT=3002 next start`, `cross-env PORT=3002 next start`, `env PORT=3002 ...`.
    let mut assigned: Vec<(&str, Word<'_>)> = Vec::new();
    for i in 0..cmd.len() {
        if let Some((name, _)) = cmd[i].text.split_once('=')
            && !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            assigned.push((name, cmd[i]));
            continue;
        }
        let Some((grammar, args)) = program(cmd, i) else {
            continue;
        };
        server(
            grammar,
            &cmd[i],
            &cmd[args.min(cmd.len())..],
            &assigned,
            cx,
            loaded_env,
            out,
        );
        return;
    }
}

fn server(
    g: &Grammar,
    word: &Word<'_>,
    args: &[Word<'_>],
    assigned: &[(&str, Word<'_>)],
    cx: &Context,
    loaded_env: &dyn Fn(&str) -> bool,
    out: &mut Vec<Candidate>,
) {
    let mut found = false;
    let mut host: Option<String> = None;
    let mut j = 0;
    let mut positional_done = !g.positional;
    while j < args.len() {
        let a = args[j];
        let (flag, value) = match a.text.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some((v, a.at + f.len() + 1))),
            _ => (a.text, None),
        };
        let host_flag = (matches!(flag, "-H" | "--hostname" | "--host" | "-h")
            && g.name != "gunicorn")
            || (g.name == "rails server" && matches!(flag, "-b" | "--binding"));
        if host_flag {
            host = value
                .map(|(v, _)| v.to_owned())
                .or_else(|| args.get(j + 1).map(|w| w.text.to_owned()));
        }
        if g.flags.contains(&flag) {
            let value = value.or_else(|| args.get(j + 1).map(|w| (w.text, w.at)));
            if let Some((v, at)) = value {
                if g.name == "docker run" {
                    publish_flag("docker run -p ", v, at, cx, out);
                } else if let Some(pv) = parse_port_value(v) {
                    out.push(bind(g, at, &pv, host.as_deref(), cx));
                }
                found = true;
            }
            j += if a.text.contains('=') { 1 } else { 2 };
            continue;
        }
        // A server given its config file (`--config FILE`; gunicorn's and hypercorn's `-c`,
        // puma's `-C`, vite's `-c`) takes the port from the file, which is scanned on its own.
        if flag == "--config"
            || matches!(g.name, "gunicorn" | "hypercorn") && flag == "-c"
            || g.name == "puma" && flag == "-C"
            || g.name.starts_with("vite") && flag == "-c"
        {
            found = true;
        }
        if VALUE_FLAGS.contains(&flag) && value.is_none() {
            if flag == "--uds" || flag == "--fd" {
                found = true;
            }
            // A flag whose value is optional (`vite --host --config FILE`) takes no flag as it.
            let takes_next = args.get(j + 1).is_some_and(|w| !w.text.starts_with('-'));
            j += if takes_next { 2 } else { 1 };
            continue;
        }
        if !positional_done && !a.text.starts_with('-') {
            positional_done = true;
            if let Some(pv) = parse_port_value(a.text) {
                out.push(bind(g, a.at, &pv, None, cx));
                found = true;
            }
        }
        j += 1;
    }
    if found {
        return;
    }
    // No flag: the port comes from the environment the command sets, or the default.
    for (name, w) in assigned {
        if g.env.contains(name) {
            let value = &w.text[name.len() + 1..];
            if let Some(pv) = parse_port_value(value) {
                let at = w.at + name.len() + 1 + pv.at;
                out.push(Candidate {
                    offset: at,
                    port: pv.port,
                    end: pv.port,
                    kind: Kind::Env,
                    scope: cx.scope,
                    loopback: false,
                    what: format!("`{name}={}` sets the port `{}` listens on", pv.port, g.name),
                    dead: None,
                });
            }
            return;
        }
    }
    if g.env.contains(&"PORT") && cx.port_env_set {
        return;
    }
    // gunicorn reads `gunicorn.conf.py` from the folder it starts in.
    if cx.loads_env_files && g.name == "gunicorn" && loaded_env(GUNICORN_CONF) {
        return;
    }
    if cx.loads_env_files && g.file_env.iter().any(|e| loaded_env(e)) {
        return;
    }
    // `nuxt dev` next to a `nuxt.config.ts` that sets `devServer: { port }` binds that port
    // (the config's line is the finding).
    if cx.loads_env_files
        && matches!(g.name, "nuxt dev" | "vite" | "astro dev")
        && loaded_env(DEV_CONFIG)
    {
        return;
    }
    if let Some((port, loopback)) = g.default {
        let loopback = match &host {
            Some(h) => is_loopback_host(h),
            None => loopback,
        };
        out.push(Candidate {
            offset: word.at,
            port,
            end: port,
            kind: Kind::Default,
            scope: cx.scope,
            loopback,
            what: format!("`{}` with no port listens on {port}, its default", g.name),
            dead: None,
        });
    }
}

fn bind(g: &Grammar, at: usize, pv: &PortValue, host: Option<&str>, cx: &Context) -> Candidate {
    let host = pv.host.as_deref().or(host);
    let loopback = host.map_or(g.default.is_some_and(|(_, l)| l), is_loopback_host);
    let mut what = format!("`{}` listens on port {}", g.name, pv.port);
    if let Some(var) = &pv.overridable {
        what.push_str(&format!(" (the default of `${var}`)"));
    }
    Candidate {
        offset: at + pv.at,
        port: pv.port,
        end: pv.port,
        kind: Kind::Bind,
        scope: cx.scope,
        loopback,
        what,
        dead: None,
    }
}

/// `docker run -p [IP:]HOST:CONTAINER[/proto]`.
/// Also a Podman Quadlet's `PublishPort=` (`flag`).
pub(crate) fn publish_flag(flag: &str, v: &str, at: usize, cx: &Context, out: &mut Vec<Candidate>) {
    let Some(m) = super::compose::parse_mapping(v) else {
        return;
    };
    if let Some((port, end, off)) = m.host {
        out.push(Candidate {
            offset: at + off,
            port,
            end,
            kind: Kind::Publish,
            scope: cx.scope,
            loopback: m.ip.as_deref().is_some_and(is_loopback_host),
            what: format!("`{flag}{v}` publishes host port {port}"),
            dead: None,
        });
    }
    // The container side when it differs from the host's, or has no host side (`-p 8000`, a
    // random host port; `-p ${PORT}:8000`), as compose's: a forbidden port is forbidden
    // wherever it appears.
    if let Some((cport, cend, coff)) = m
        .container
        .filter(|c| m.host.is_none_or(|(port, _, _)| c.0 != port))
    {
        out.push(Candidate {
            offset: at + coff,
            port: cport,
            end: cend,
            kind: Kind::Bind,
            scope: Scope::Container,
            loopback: false,
            what: format!("`{flag}{v}`: the container listens on port {cport}"),
            dead: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(u16, &'static str, usize)> {
        let cx = Context {
            scope: Scope::Host,
            port_env_set: false,
            loads_env_files: false,
        };
        let mut out = Vec::new();
        scan(text, 0, &cx, &|_| false, &mut out);
        out.iter()
            .map(|c| (c.port, c.kind.as_str(), c.offset))
            .collect()
    }

    #[test]
    fn next_forms() {
        assert_eq!(found("next dev -p 3001"), [(3001, "bind", 12)]);
        assert_eq!(found("next dev --port=3002"), [(3002, "bind", 16)]);
        assert_eq!(
            found("next start --port 3001 -H 0.0.0.0"),
            [(3001, "bind", 18)]
        );
        assert_eq!(found("next dev"), [(3000, "default", 0)]);
        assert_eq!(found("next dev --turbopack"), [(3000, "default", 0)]);
        assert_eq!(found("PORT=3002 next start"), [(3002, "env", 5)]);
        assert_eq!(found("cross-env PORT=3002 next dev"), [(3002, "env", 15)]);
        assert_eq!(found("next start -p ${PORT:-3001}"), [(3001, "bind", 22)]);
        assert_eq!(
            found("next build && next start -p 3001"),
            [(3001, "bind", 28)]
        );
        assert_eq!(found("next build"), []);
        assert_eq!(
            found("./node_modules/.bin/next dev"),
            [(3000, "default", 0)]
        );
    }

    #[test]
    fn python_servers() {
        assert_eq!(
            found("gunicorn -w 4 -b 0.0.0.0:5555 app:app"),
            [(5555, "bind", 25)]
        );
        assert_eq!(found("gunicorn --bind=:8000 app:app"), [(8000, "bind", 17)]);
        assert_eq!(found("gunicorn --bind unix:/run/g.sock app:app"), []);
        assert_eq!(found("gunicorn app:app"), [(8000, "default", 0)]);
        assert_eq!(
            found("uvicorn main:app --host 0.0.0.0 --port 8000 --reload"),
            [(8000, "bind", 39)]
        );
        assert_eq!(found("uvicorn main:app --uds /tmp/u.sock"), []);
        assert_eq!(
            found("python -m flask --app api run -p 5328"),
            [(5328, "bind", 33)]
        );
        assert_eq!(found("flask run"), [(5000, "default", 0)]);
        assert_eq!(
            found("python manage.py runserver 0.0.0.0:8001"),
            [(8001, "bind", 35)]
        );
        assert_eq!(found("python manage.py runserver"), [(8000, "default", 7)]);
        assert_eq!(found("python manage.py migrate"), []);
        assert_eq!(found("python3 -m http.server 9000"), [(9000, "bind", 23)]);
        assert_eq!(
            found(r#"["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]"#).len(),
            1
        );
    }

    #[test]
    fn not_servers() {
        assert_eq!(found("tsc -b"), []);
        assert_eq!(found("jest --testTimeout=8000"), []);
        assert_eq!(found("node --max-old-space-size=3000 server.js"), []);
        assert_eq!(found("vite build"), []);
        assert_eq!(
            found("docker run -p 8080:80 nginx"),
            [(8080, "publish", 14), (80, "bind", 19)]
        );
        assert_eq!(found("serve -s build -l 3001"), [(3001, "bind", 18)]);
        // The config file gives the port; it is scanned on its own.
        assert_eq!(found("vite --config ./config/vite.config.js"), []);
        assert_eq!(found("vite -c vite.config.ts"), []);
        assert_eq!(found("vite --host --config ./config/vite.config.js"), []);
        assert_eq!(found("npx serve -s build"), [(3000, "default", 4)]);
        assert_eq!(found("serve run serve/serve_config.yaml"), []);
        assert_eq!(found("serve deploy config.yaml"), []);
        assert_eq!(
            found("\"start\": \"serve -s build\""),
            [(3000, "default", 10)]
        );
        assert_eq!(found("vue-cli-service serve"), []);
        // `serve` as a subcommand is not the `serve` program; `ng serve` is Angular's server.
        assert_eq!(found("ng serve --port 4200"), [(4200, "bind", 16)]);
        assert_eq!(found("bin/rails s -p 3002"), [(3002, "bind", 15)]);
        assert_eq!(found("bundle exec puma -p 9000"), [(9000, "bind", 20)]);
        assert_eq!(found("npx nuxi dev"), [(3000, "default", 4)]);
    }
}
