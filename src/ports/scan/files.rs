//! Line-oriented detectors: package.json scripts, `.env` files, Dockerfiles, Procfiles,
//! nginx, systemd units, shell scripts, Python and JavaScript sources, and local URLs in any
//! text. Each reads the comment-masked text and reports byte offsets into it.

use super::command::{self, Context};
use super::text::{digits_at, is_local_host, is_loopback_host, parse_port_value, port_number};
use super::{Candidate, EnvFiles, Kind, Scope};

pub(super) fn candidate(
    offset: usize,
    port: u16,
    kind: Kind,
    scope: Scope,
    loopback: bool,
    what: String,
) -> Candidate {
    Candidate {
        offset,
        port,
        end: port,
        kind,
        scope,
        loopback,
        what,
        dead: None,
    }
}

/// Lines of `text` with their byte offsets, continuation lines (`\` at the end) joined into
/// one logical line given as its pieces.
fn logical_lines(text: &str) -> Vec<Vec<(usize, &str)>> {
    let mut out = Vec::new();
    let mut current: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let continued = line.trim_end().ends_with('\\');
        current.push((at, line));
        if !continued {
            out.push(std::mem::take(&mut current));
        }
        at += raw.len();
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `package.json`: the commands in `scripts`.
pub(crate) fn package_json(text: &str, env: &EnvFiles, out: &mut Vec<Candidate>) {
    let Some(key) = text.find("\"scripts\"") else {
        return;
    };
    let Some(open) = text[key..].find('{').map(|i| key + i) else {
        return;
    };
    let end = matching_brace(text, open).unwrap_or(text.len());
    let cx = Context {
        scope: Scope::Host,
        port_env_set: false,
        loads_env_files: true,
    };
    let mut at = open + 1;
    for line in text[open + 1..end].split_inclusive('\n') {
        command::scan_pieces(&[(at, line)], &cx, &|v| env.has(v), out);
        at += line.len();
    }
}

fn matching_brace(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut i) = (0, false, open);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'{' if !in_string => depth += 1,
            b'}' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Settings that name a port something connects *to*, not one this project listens on.
const CLIENT_PREFIXES: &[&str] = &[
    "DB_", "DATABASE", "POSTGRES", "PG", "MYSQL", "MARIADB", "REDIS", "MONGO", "SMTP", "MAIL",
    "EMAIL", "RABBIT", "AMQP", "KAFKA", "ELASTIC", "ES_", "MEMCACHE", "CACHE_", "S3_", "MINIO",
    "SENTRY", "OTEL", "JAEGER", "STATSD", "LDAP", "IMAP", "POP3", "FTP", "SSH", "PROXY_",
];

/// Whether a setting names a port this project listens on: `PORT`, `FLASK_RUN_PORT`,
/// `API_PORT`, but not `DB_PORT` or `REDIS_PORT`.
fn listener_key(key: &str) -> bool {
    key == "PORT" || key.ends_with("_PORT") && !CLIENT_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// `.env`, `.env.*`, `.flaskenv`: `PORT`-like settings (and what reads them).
pub(crate) fn env_file(name: &str, text: &str, project: &Project, out: &mut Vec<Candidate>) {
    let template = [".example", ".sample", ".template", ".dist", ".tmpl"]
        .iter()
        .any(|s| name.ends_with(s));
    let mut at = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let body = line.trim_start();
        let lead = line.len() - body.len();
        let body_at = at + lead;
        let (body, body_at) = match body.strip_prefix("export ") {
            Some(rest) => (
                rest.trim_start(),
                body_at + (body.len() - rest.trim_start().len()),
            ),
            None => (body, body_at),
        };
        if let Some((key, value)) = body.split_once('=') {
            let key = key.trim();
            let value_at = body_at + body.find('=').unwrap_or(0) + 1;
            let trimmed = value.trim_start();
            let value_at = value_at + (value.len() - trimmed.len());
            let (value, value_at) = match trimmed.as_bytes().first() {
                Some(b'"' | b'\'') => (
                    trimmed[1..].trim_end_matches(['"', '\'']).trim_end(),
                    value_at + 1,
                ),
                _ => (trimmed.split_whitespace().next().unwrap_or(""), value_at),
            };
            let listener = listener_key(key) || matches!(key, "BIND" | "GUNICORN_BIND");
            if listener && let Some(pv) = parse_port_value(value) {
                let mut c = candidate(
                    value_at + pv.at,
                    pv.port,
                    Kind::Env,
                    Scope::Host,
                    pv.host.as_deref().is_some_and(is_loopback_host),
                    format!("`{key}={}` in `{name}`", pv.port),
                );
                if template {
                    c.dead = Some(format!("`{name}` is a template that nothing loads"));
                } else if key == "PORT" && project.next && !project.react_scripts {
                    c.dead = Some("Next.js does not read `PORT` from `.env` files: the server still binds its own port".into());
                } else if key == "FLASK_RUN_PORT" && name != ".flaskenv" && name != ".env" {
                    c.dead = Some(format!(
                        "`flask run` reads `.flaskenv` and `.env`, not `{name}`"
                    ));
                }
                out.push(c);
            }
        }
        at += raw.len();
    }
}

/// What a project folder uses, read from its `package.json`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Project {
    pub(crate) package_json: bool,
    pub(crate) next: bool,
    pub(crate) react_scripts: bool,
}

impl Project {
    pub(crate) fn read(dir: &std::path::Path) -> Project {
        match std::fs::read_to_string(dir.join("package.json")) {
            Ok(text) => Project {
                package_json: true,
                next: text.contains("\"next\""),
                react_scripts: text.contains("\"react-scripts\""),
            },
            Err(_) => Project::default(),
        }
    }
}

/// Dev container settings (JSON with comments): `forwardPorts` are forwarded to the
/// developer's machine on loopback, `appPort` is published like `docker run -p`; a
/// `portsAttributes` key names a port the container serves.
pub(crate) fn devcontainer(text: &str, out: &mut Vec<Candidate>) {
    for (key, kind, loopback) in [
        ("\"forwardPorts\"", Kind::Publish, true),
        ("\"appPort\"", Kind::Publish, false),
    ] {
        let Some(at) = text.find(key) else { continue };
        let rest = &text[at + key.len()..];
        let Some(colon) = rest.find(':') else {
            continue;
        };
        let value_at = at + key.len() + colon + 1;
        let value = &text[value_at..];
        // A list `[...]`, or one number or string.
        let end = if value.trim_start().starts_with('[') {
            value.find(']').map_or(value.len(), |e| e + 1)
        } else {
            value.find([',', '}', '\n']).unwrap_or(value.len())
        };
        for (i, item) in value[..end]
            .split(['[', ']', ','])
            .scan(0usize, |pos, item| {
                let start = *pos;
                *pos += item.len() + 1;
                Some((start, item))
            })
        {
            let word = item.trim().trim_matches('"');
            // `"db:5432"` forwards another service's port; `"8000:8000"` publishes host:container.
            let host_side = match word.split_once(':') {
                Some((h, _)) if kind == Kind::Publish && !loopback => h,
                Some(_) => continue,
                None => word,
            };
            let Some(port) = port_number(host_side) else {
                continue;
            };
            let offset = value_at + i + item.find(host_side).unwrap_or(0);
            let what = if loopback {
                format!("the dev container forwards port {port} to this machine")
            } else {
                format!("the dev container publishes host port {port}")
            };
            out.push(Candidate {
                offset,
                port,
                end: port,
                kind,
                scope: Scope::Host,
                loopback,
                what,
                dead: None,
            });
        }
    }
    if let Some(at) = text.find("\"portsAttributes\"") {
        let rest = &text[at..];
        let block = &rest[..rest.find('}').unwrap_or(rest.len())];
        // The quoted words of the block, each with its offset: every other piece between
        // quotes.
        let mut offset = 0;
        for (i, piece) in block.split('"').enumerate() {
            if i % 2 == 1
                && let Some(port) = port_number(piece)
            {
                out.push(Candidate {
                    offset: at + offset,
                    port,
                    end: port,
                    kind: Kind::Reference,
                    scope: Scope::Container,
                    loopback: false,
                    what: format!("the dev container describes its port {port}"),
                    dead: None,
                });
            }
            offset += piece.len() + 1;
        }
    }
}

/// Dockerfile: `EXPOSE`, `ENV PORT`, `ARG PORT`, `CMD`/`ENTRYPOINT`; all inside the container.
pub(crate) fn dockerfile(text: &str, out: &mut Vec<Candidate>) {
    // Each `ARG`/`ENV` variable given a port: its name, the port and where the digits are.
    let mut vars: Vec<(String, u16, usize)> = Vec::new();
    let mut port_env = false;
    for pieces in logical_lines(text) {
        let (at, first) = pieces[0];
        let trimmed = first.trim_start();
        let lead = first.len() - trimmed.len();
        let Some((instr, _)) = trimmed.split_once(char::is_whitespace) else {
            continue;
        };
        let rest_at = at + lead + instr.len();
        let rest = &first[lead + instr.len()..];
        // The instruction's words over all its lines (`ENV A=1 \` / `    PORT=8000`), with
        // their offsets in the file; the continuation marks are not words.
        let words: Vec<(usize, &str)> = std::iter::once((rest_at, rest))
            .chain(pieces[1..].iter().copied())
            .flat_map(|(at, piece)| words_at(piece).into_iter().map(move |(i, w)| (at + i, w)))
            .filter(|(_, w)| *w != "\\")
            .collect();
        match instr.to_ascii_uppercase().as_str() {
            "EXPOSE" => {
                for &(i, word) in &words {
                    let spec = word.split('/').next().unwrap_or(word);
                    let (port, end, digits) = match spec.split_once('-') {
                        Some((a, b)) => match (port_number(a), port_number(b)) {
                            (Some(a), Some(b)) if a <= b => (a, b, i),
                            _ => continue,
                        },
                        None => match port_number(spec) {
                            Some(p) => (p, p, i),
                            // `EXPOSE ${PORT}`: the port is where the variable was given it,
                            // so the finding is there, once, where it is changed.
                            None => match lookup(&vars, spec) {
                                Some((p, set_at)) => (p, p, set_at),
                                None => continue,
                            },
                        },
                    };
                    out.push(Candidate {
                        end,
                        ..candidate(
                            digits,
                            port,
                            Kind::Bind,
                            Scope::Container,
                            false,
                            format!("`EXPOSE {word}` declares container port {port}"),
                        )
                    });
                }
            }
            "ENV" | "ARG" => {
                // `ENV PORT 3000` (legacy) or `ENV PORT=3000 HOST=0.0.0.0`.
                let pairs: Vec<(usize, &str, &str)> = if words.len() == 2
                    && !words[0].1.contains('=')
                    && instr.eq_ignore_ascii_case("ENV")
                {
                    vec![(words[1].0, words[0].1, words[1].1)]
                } else {
                    words
                        .iter()
                        .filter_map(|&(i, w)| {
                            w.split_once('=').map(|(k, v)| (i + k.len() + 1, k, v))
                        })
                        .collect()
                };
                for (i, key, value) in pairs {
                    let value = value.trim_matches(['"', '\'']);
                    let quoted = usize::from(text[i..].starts_with(['"', '\'']));
                    if let Some(p) = port_number(value) {
                        vars.push((key.to_owned(), p, i + quoted));
                        if key == "PORT" {
                            port_env = true;
                            out.push(candidate(
                                i + quoted,
                                p,
                                Kind::Env,
                                Scope::Container,
                                false,
                                format!(
                                    "`{instr} PORT={p}` sets the port the image's server listens on"
                                ),
                            ));
                        }
                    } else if key == "PORT" {
                        port_env = true;
                    }
                }
            }
            "CMD" | "ENTRYPOINT" => {
                let cx = Context {
                    scope: Scope::Container,
                    port_env_set: port_env,
                    loads_env_files: false,
                };
                let mut pieces = pieces.clone();
                pieces[0] = (rest_at, rest);
                command::scan_pieces(&pieces, &cx, &|_| false, out);
            }
            _ => {}
        }
    }
}

/// The port and the offset of its digits that `${NAME}` (or `$NAME`) was last given.
fn lookup(vars: &[(String, u16, usize)], word: &str) -> Option<(u16, usize)> {
    let name = word
        .strip_prefix("${")
        .and_then(|w| w.strip_suffix('}'))
        .or_else(|| word.strip_prefix('$'))?;
    let name = name.split(":-").next().unwrap_or(name);
    vars.iter()
        .rev()
        .find(|(k, ..)| k == name)
        .map(|&(_, p, at)| (p, at))
}

/// Whitespace-separated words and their byte offsets.
fn words_at(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// Procfile (`web: gunicorn ...`), shell scripts and Makefiles: commands run on the host.
pub(crate) fn commands(text: &str, env: &EnvFiles, out: &mut Vec<Candidate>) {
    let cx = Context {
        scope: Scope::Host,
        port_env_set: false,
        loads_env_files: true,
    };
    for pieces in logical_lines(text) {
        command::scan_pieces(&pieces, &cx, &|v| env.has(v), out);
    }
}

/// nginx: `listen` binds; `proxy_pass` (and the other `*_pass`) and an `upstream`'s `server`
/// lines point at backends, whatever their host: a forbidden port there reveals a server on
/// it.
pub(crate) fn nginx(text: &str, scope: Scope, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&bytes[from..], b"listen").map(|i| from + i) {
        from = i + 6;
        let statement_start =
            text[..i].trim_end().ends_with(['{', ';', '}']) || text[..i].trim_end().is_empty();
        if !statement_start || !bytes.get(i + 6).is_some_and(u8::is_ascii_whitespace) {
            continue;
        }
        let rest = &text[i + 6..];
        let value_off = rest.len() - rest.trim_start().len();
        let value = rest
            .trim_start()
            .split([' ', '\t', '\n', ';'])
            .next()
            .unwrap_or("");
        let at = i + 6 + value_off;
        if value.starts_with("unix:") {
            continue;
        }
        let (port, off, host) = match parse_port_value(value) {
            Some(pv) => (pv.port, pv.at, pv.host),
            // `listen 127.0.0.1;` binds port 80.
            None if !value.is_empty() && !value.starts_with('$') => (80, 0, Some(value.to_owned())),
            None => continue,
        };
        let loopback = host.as_deref().is_some_and(is_loopback_host);
        out.push(candidate(
            at + off,
            port,
            Kind::Bind,
            scope,
            loopback,
            format!("nginx `listen {value}` binds port {port}"),
        ));
    }
    for directive in [
        "proxy_pass",
        "fastcgi_pass",
        "uwsgi_pass",
        "scgi_pass",
        "grpc_pass",
        "server",
    ] {
        let mut from = 0;
        while let Some(i) =
            memchr::memmem::find(&bytes[from..], directive.as_bytes()).map(|i| from + i)
        {
            from = i + directive.len();
            let before = text[..i].trim_end();
            let statement_start = before.is_empty() || before.ends_with(['{', ';', '}']);
            if !statement_start || !bytes.get(from).is_some_and(|b| *b == b' ' || *b == b'\t') {
                continue;
            }
            let rest = &text[from..];
            let lead = rest.len() - rest.trim_start().len();
            let value = rest
                .trim_start()
                .split([' ', '\t', '\n', ';'])
                .next()
                .unwrap_or("");
            let target = value.split_once("://").map_or(value, |(_, t)| t);
            let skipped = value.len() - target.len();
            let hostport = target.split('/').next().unwrap_or("");
            if hostport.starts_with("unix:") {
                continue;
            }
            if let Some(pv) = parse_port_value(hostport).filter(|pv| pv.host.is_some()) {
                let host = pv.host.clone().unwrap_or_default();
                let scope = if is_local_host(&host) {
                    Scope::Host
                } else {
                    Scope::Container
                };
                out.push(candidate(
                    from + lead + skipped + pv.at,
                    pv.port,
                    Kind::Reference,
                    scope,
                    is_loopback_host(&host),
                    format!(
                        "nginx `{directive} {value}` sends requests to port {}",
                        pv.port
                    ),
                ));
            }
        }
    }
}

/// systemd `.socket` units: `ListenStream=`/`ListenDatagram=`.
pub(crate) fn systemd_socket(text: &str, out: &mut Vec<Candidate>) {
    let mut at = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        for key in [
            "ListenStream=",
            "ListenDatagram=",
            "ListenSequentialPacket=",
        ] {
            if let Some(rest) = line.trim_start().strip_prefix(key) {
                let value_at = at + (line.len() - line.trim_start().len()) + key.len();
                let value = rest.trim();
                if value.starts_with('/') || value.starts_with('@') || value.starts_with("vsock:") {
                    continue;
                }
                let value = value.split('%').next().unwrap_or(value);
                if let Some(pv) = parse_port_value(value) {
                    let loopback = pv.host.as_deref().is_some_and(is_loopback_host);
                    out.push(candidate(
                        value_at + pv.at,
                        pv.port,
                        Kind::Bind,
                        Scope::Host,
                        loopback,
                        format!("socket unit `{key}{value}` listens on port {}", pv.port),
                    ));
                }
            }
        }
        at += raw.len();
    }
}

/// systemd `.service` units: `ExecStart=` commands and `Environment=PORT=`.
pub(crate) fn systemd_service(text: &str, out: &mut Vec<Candidate>) {
    let mut port_env = false;
    let mut at = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        if let Some(i) = line.find("PORT=")
            && line.trim_start().starts_with("Environment=")
            && (i == 0
                || !line.as_bytes()[i - 1].is_ascii_alphanumeric()
                    && line.as_bytes()[i - 1] != b'_')
        {
            port_env = true;
            if let Some((p, _)) = digits_at(line, i + 5) {
                out.push(candidate(
                    at + i + 5,
                    p,
                    Kind::Env,
                    Scope::Host,
                    false,
                    format!("`Environment=PORT={p}` in a service unit"),
                ));
            }
        }
        at += raw.len();
    }
    let cx = Context {
        scope: Scope::Host,
        port_env_set: port_env,
        loads_env_files: false,
    };
    for pieces in logical_lines(text) {
        let (at, first) = pieces[0];
        let trimmed = first.trim_start();
        if let Some(cmd) = ["ExecStart=", "ExecStartPre=", "ExecStartPost="]
            .iter()
            .find_map(|k| trimmed.strip_prefix(k))
        {
            let mut pieces = pieces.clone();
            pieces[0] = (at + first.len() - cmd.len(), cmd);
            command::scan_pieces(&pieces, &cx, &|_| false, out);
        }
        // A Podman Quadlet unit (`.container`, `.kube`, `.pod`): `PublishPort=[IP:]HOST:CONTAINER`.
        if let Some(value) = trimmed.strip_prefix("PublishPort=") {
            let value = value.trim_end();
            let value_at = at + first.len() - first.trim_start().len() + "PublishPort=".len();
            command::publish_flag("PublishPort=", value, value_at, &cx, out);
        }
    }
}

/// Python: `app.run(port=...)`, `uvicorn.run(..., port=...)`, `os.environ.get("PORT", 8000)`,
/// gunicorn config `bind = "..."`, and a Flask `app.run()` with no port.
pub(crate) fn python(name: &str, text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    let flask = text.contains("Flask(");
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&bytes[from..], b".run(").map(|i| from + i) {
        from = i + 5;
        let receiver_start = text[..i]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(0, |(j, c)| j + c.len_utf8());
        let receiver = &text[receiver_start..i];
        let close = call_end(text, i + 4).unwrap_or_else(|| floor(text, i + 400));
        let args = &text[i + 5..close];
        let (server, default, default_loopback) = match receiver {
            "uvicorn" => ("uvicorn.run", 8000, true),
            "socketio" => ("socketio.run", 5000, true),
            "web" => ("web.run_app", 8080, false),
            _ if flask => ("Flask app.run", 5000, true),
            _ => continue,
        };
        let host = keyword_string(args, "host");
        let loopback = host.as_deref().map_or(default_loopback, is_loopback_host);
        if let Some(p) = keyword_at(args, "port") {
            let value = &args[p..];
            let value_end = value.find([',', ')', '\n']).unwrap_or(value.len());
            if let Some((port, off)) = first_number(&value[..value_end.min(value.len())]) {
                let env =
                    value[..value_end].contains("environ") || value[..value_end].contains("getenv");
                let kind = if env { Kind::Default } else { Kind::Bind };
                out.push(candidate(
                    i + 5 + p + off,
                    port,
                    kind,
                    Scope::Host,
                    loopback,
                    format!("`{server}(port={port})`"),
                ));
            }
        } else if receiver != "web" && !args.contains("**") {
            out.push(candidate(
                receiver_start,
                default,
                Kind::Default,
                Scope::Host,
                loopback,
                format!("`{server}()` with no port listens on {default}, its default"),
            ));
        }
    }
    // `os.environ.get("PORT", 8000)`, `os.getenv('PORT', '8000')`, `environ["PORT"] or 8000`.
    for needle in ["environ.get(", "getenv("] {
        let mut from = 0;
        while let Some(i) =
            memchr::memmem::find(&bytes[from..], needle.as_bytes()).map(|i| from + i)
        {
            from = i + needle.len();
            let args_at = i + needle.len();
            let close = call_end(text, args_at - 1).unwrap_or_else(|| floor(text, args_at + 80));
            let args = &text[args_at..close];
            let Some((key, rest)) = args.split_once(',') else {
                continue;
            };
            let key = key.trim().trim_matches(['"', '\'']);
            if !listener_key(key) {
                continue;
            }
            if let Some((port, off)) = first_number(rest) {
                out.push(candidate(
                    args_at + key_len(args, rest) + off,
                    port,
                    Kind::Default,
                    Scope::Host,
                    false,
                    format!("`{key}` falls back to {port} when unset"),
                ));
            }
        }
    }
    if name.contains("gunicorn") {
        let mut at = 0;
        for raw in text.split_inclusive('\n') {
            let line = raw.trim_end_matches(['\n', '\r']);
            if let Some(rest) = line.strip_prefix("bind")
                && rest.trim_start().starts_with('=')
            {
                let mut search = 4;
                while let Some(q) = line[search..].find(['"', '\'']).map(|q| search + q) {
                    let end = line[q + 1..]
                        .find(['"', '\''])
                        .map_or(line.len(), |e| q + 1 + e);
                    if let Some(pv) = parse_port_value(&line[q + 1..end]) {
                        let loopback = pv.host.as_deref().is_some_and(is_loopback_host);
                        out.push(candidate(
                            at + q + 1 + pv.at,
                            pv.port,
                            Kind::Bind,
                            Scope::Host,
                            loopback,
                            format!("gunicorn `bind` listens on port {}", pv.port),
                        ));
                    }
                    search = end + 1;
                    if search >= line.len() {
                        break;
                    }
                }
            }
            at += raw.len();
        }
    }
}

/// `at`, or the end of the text, moved back to the start of the character it falls in.
fn floor(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn key_len(args: &str, rest: &str) -> usize {
    args.len() - rest.len()
}

/// The offset of a `)` closing the call whose `(` is at `open`.
fn call_end(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, b) in text.as_bytes()[open..].iter().enumerate().take(2000) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Offset (in `args`) of the value of keyword argument `key=`.
fn keyword_at(args: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = args[from..].find(key).map(|i| from + i) {
        from = i + key.len();
        let before_ok = i == 0
            || !args.as_bytes()[i - 1].is_ascii_alphanumeric() && args.as_bytes()[i - 1] != b'_';
        let after = args[i + key.len()..].trim_start();
        if before_ok && after.starts_with('=') && !after.starts_with("==") {
            let value = after[1..].trim_start();
            return Some(args.len() - value.len());
        }
    }
    None
}

fn keyword_string(args: &str, key: &str) -> Option<String> {
    let at = keyword_at(args, key)?;
    let value = args[at..].trim_start_matches(['"', '\'']);
    Some(
        value
            .split(['"', '\'', ',', ')'])
            .next()
            .unwrap_or("")
            .to_owned(),
    )
}

/// The first port-like integer literal in `s` and its offset.
fn first_number(s: &str) -> Option<(u16, usize)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit()
            && (i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'_'
                    || bytes[i - 1] == b'.'))
        {
            return digits_at(s, i).map(|(p, _)| (p, i));
        }
        i += 1;
    }
    None
}

/// Dev-server config files, where `port:` is the port the dev server binds.
pub(crate) fn is_dev_server_config(name: &str) -> bool {
    [
        "vite.config.",
        "vue.config.",
        "webpack.config.",
        "nuxt.config.",
        "astro.config.",
        "vitest.config.",
        "rspack.config.",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// JavaScript and TypeScript: `.listen(3000)`, `process.env.PORT || 3000`, and `port:` in
/// dev-server configs (`vite.config.ts`, `webpack.config.js`).
pub(crate) fn javascript(name: &str, text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&bytes[from..], b".listen(").map(|i| from + i) {
        from = i + 8;
        let arg = &text[i + 8..];
        let lead = arg.len() - arg.trim_start().len();
        if let Some((p, _)) = digits_at(arg, lead) {
            out.push(candidate(
                i + 8 + lead,
                p,
                Kind::Bind,
                Scope::Host,
                false,
                format!("`.listen({p})` binds port {p}"),
            ));
        }
    }
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&bytes[from..], b"process.env.PORT").map(|i| from + i)
    {
        from = i + 16;
        let rest = &text[i + 16..floor(text, i + 60)];
        let Some(op) = rest.find("||").or_else(|| rest.find("??")) else {
            continue;
        };
        if rest[..op].contains([';', '\n']) {
            continue;
        }
        let value = &rest[op + 2..];
        let lead = value.len() - value.trim_start_matches([' ', '"', '\'', '`']).len();
        if let Some((p, _)) = digits_at(value, lead) {
            out.push(candidate(
                i + 16 + op + 2 + lead,
                p,
                Kind::Default,
                Scope::Host,
                false,
                format!("`process.env.PORT` falls back to {p} when unset"),
            ));
        }
    }
    let config = is_dev_server_config(name);
    if config {
        let loopback = !(text.contains("host: true")
            || text.contains("host: '0.0.0.0'")
            || text.contains("host: \"0.0.0.0\""));
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&bytes[from..], b"port").map(|i| from + i) {
            from = i + 4;
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let rest = &text[i + 4..];
            let Some(after) = rest.trim_start().strip_prefix(':') else {
                continue;
            };
            let value = after.trim_start_matches([' ', '"', '\'']);
            let at = i + 4 + (rest.len() - value.len());
            if let Some((p, _)) = digits_at(text, at) {
                out.push(candidate(
                    at,
                    p,
                    Kind::Bind,
                    Scope::Host,
                    loopback,
                    format!("dev server `port: {p}` in `{name}`"),
                ));
            }
        }
    }
}

/// Local addresses with a port in any text: `http://localhost:8000`, `127.0.0.1:5555`,
/// `0.0.0.0:3000`, `[::1]:3002`. They point at a server on this machine; remote hosts are
/// never findings.
/// A local address written as separate fields (`{ host: "localhost", port: 3002 }`,
/// `connect(host="127.0.0.1", port=8000)`, a YAML `host:` with `port:` below): a `port` key
/// with a number, and a `host`/`hostname` key with a local host on the same line or the three
/// lines around it.
pub(crate) fn host_port_fields(text: &str, out: &mut Vec<Candidate>) {
    // Most files name no local host at all: nothing to split into lines.
    let local = ["localhost", "127.0.0.1", "0.0.0.0", "::1"];
    if !local
        .iter()
        .any(|h| memchr::memmem::find(text.as_bytes(), h.as_bytes()).is_some())
    {
        return;
    }
    let lines: Vec<(usize, &str)> = lines_at(text).collect();
    // The value of `key` on a line: after `key`, then `:` or `=`, quotes and spaces.
    let value_of = |line: &str, keys: &[&str]| -> Option<(usize, String)> {
        let lower = line.to_ascii_lowercase();
        for key in keys {
            let mut from = 0;
            while let Some(i) = lower[from..].find(key).map(|i| from + i) {
                from = i + key.len();
                let before = lower[..i].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &line[i + key.len()..];
                let rest = rest.trim_start_matches(['"', '\'']);
                let skipped = line.len() - rest.len();
                let Some(after) = rest.trim_start().strip_prefix([':', '=']) else {
                    continue;
                };
                let value = after.trim_start().trim_start_matches(['"', '\'']);
                let at = line.len() - value.len();
                let word: String = value
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                if !word.is_empty() && at >= skipped {
                    return Some((at, word));
                }
            }
        }
        None
    };
    for (n, &(start, line)) in lines.iter().enumerate() {
        if !["port", "Port", "PORT"].iter().any(|k| line.contains(k)) {
            continue;
        }
        let Some((at, word)) = value_of(line, &["port"]) else {
            continue;
        };
        let Some(port) = port_number(&word) else {
            continue;
        };
        // The host on the port's own line, else on a line of the same block: as indented,
        // with no less indented line between (`server:` ends `redis:`'s fields).
        let indent = |l: &str| l.len() - l.trim_start().len();
        let host = match value_of(line, &["hostname", "host"]) {
            Some((_, h)) => Some(h),
            None => {
                let mut found = None;
                for direction in [-1isize, 1] {
                    for step in 1..=3isize {
                        let Some(&(_, other)) = n
                            .checked_add_signed(direction * step)
                            .and_then(|i| lines.get(i))
                        else {
                            break;
                        };
                        if other.trim().is_empty() {
                            continue;
                        }
                        if indent(other) < indent(line) {
                            break;
                        }
                        if indent(other) == indent(line)
                            && let Some((_, h)) = value_of(other, &["hostname", "host"])
                        {
                            found = Some(h);
                            break;
                        }
                    }
                    if found.is_some() {
                        break;
                    }
                }
                found
            }
        };
        let local = host.filter(|h| is_local_host(h) && !h.is_empty() && h != "0");
        if let Some(host) = local {
            out.push(Candidate {
                offset: start + at,
                port,
                end: port,
                kind: Kind::Reference,
                scope: Scope::Host,
                loopback: false,
                what: format!(
                    "`host` {host} with `port` {port} points at port {port} on this machine"
                ),
                dead: None,
            });
        }
    }
}

pub(crate) fn local_urls(text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    for host in ["localhost:", "127.0.0.1:", "0.0.0.0:", "[::1]:", "[::]:"] {
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&bytes[from..], host.as_bytes()).map(|i| from + i)
        {
            from = i + host.len();
            if i > 0
                && (bytes[i - 1].is_ascii_alphanumeric()
                    || matches!(bytes[i - 1], b'.' | b'-' | b'_'))
            {
                continue;
            }
            let at = i + host.len();
            if let Some((p, _)) = digits_at(text, at) {
                let h = &host[..host.len() - 1];
                let what = if is_local_host(h) && !is_loopback_host(h) {
                    format!("`{h}:{p}` names port {p} on every interface")
                } else {
                    format!("`{h}:{p}` points at port {p} on this machine")
                };
                out.push(candidate(
                    at,
                    p,
                    Kind::Reference,
                    Scope::Host,
                    is_loopback_host(h),
                    what,
                ));
            }
        }
    }
}

/// Each line of `text` (without its `\n`) with the byte offset it starts at.
pub(super) fn lines_at(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n').scan(0, |at, line| {
        let start = *at;
        *at += line.len() + 1;
        Some((start, line))
    })
}

/// The first value of a line after `key` and `=` or `:` (quotes dropped), with its offset in
/// the line.
fn setting<'a>(line: &'a str, key: &str) -> Option<(usize, &'a str)> {
    let rest = line.trim_start().strip_prefix(key)?;
    let rest_at = line.len() - rest.len();
    let after = rest.trim_start().strip_prefix(['=', ':'])?;
    let value = after.trim_start().trim_start_matches(['"', '\'']);
    let at = line.len() - value.len();
    let end = value
        .find(['"', '\'', ' ', '\t', '#'])
        .unwrap_or(value.len());
    (at >= rest_at).then_some((at, &value[..end]))
}

/// A bind address as a server config writes it (`*:8000`, `:8000`, `0.0.0.0:8000`,
/// `127.0.0.1:8000`, `ipv6@:::8000`), as a candidate at `offset` of its text.
fn bind_address(offset: usize, value: &str, what: &str) -> Option<Candidate> {
    let bare = value
        .trim_start_matches("ipv4@")
        .trim_start_matches("ipv6@")
        .trim_start_matches('*');
    let skipped = value.len() - bare.len();
    let pv = parse_port_value(bare)?;
    let loopback = pv.host.as_deref().is_some_and(is_loopback_host);
    Some(candidate(
        offset + skipped + pv.at,
        pv.port,
        Kind::Bind,
        Scope::Host,
        loopback,
        format!("{what} listens on port {}", pv.port),
    ))
}

/// HAProxy's configuration: `bind` lines of frontends and listens.
pub(crate) fn haproxy_cfg(text: &str, out: &mut Vec<Candidate>) {
    for (at, line) in lines_at(text) {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("bind ") {
            let lead = line.len() - rest.len();
            let word_at = lead + (rest.len() - rest.trim_start().len());
            let word = rest.split_whitespace().next().unwrap_or("");
            // `bind 10.0.0.1:80,10.0.0.2:80`: each address.
            let mut offset = 0;
            for address in word.split(',') {
                if let Some(c) = bind_address(at + word_at + offset, address, "HAProxy") {
                    out.push(c);
                }
                offset += address.len() + 1;
            }
        }
    }
}

/// Traefik's static configuration: the `address` of each entry point.
pub(crate) fn traefik(text: &str, out: &mut Vec<Candidate>) {
    for (at, line) in lines_at(text) {
        if let Some((i, value)) = setting(line, "address")
            && let Some(c) = bind_address(at + i, value, "a Traefik entry point")
        {
            out.push(c);
        }
    }
}

/// Spring Boot's `application*.properties`: `server.port` and `management.server.port`.
pub(crate) fn properties(text: &str, out: &mut Vec<Candidate>) {
    for (at, line) in lines_at(text) {
        for key in ["server.port", "management.server.port"] {
            if let Some((i, value)) = setting(line, key)
                && let Some(port) = port_number(value)
            {
                out.push(candidate(
                    at + i,
                    port,
                    Kind::Bind,
                    Scope::Host,
                    false,
                    format!("`{key}` makes the application listen on port {port}"),
                ));
            }
        }
    }
}

/// Puma's `config/puma.rb`: `port 3000`, `port ENV.fetch("PORT") { 3000 }` (its default),
/// `bind "tcp://0.0.0.0:9292"`.
pub(crate) fn puma(text: &str, out: &mut Vec<Candidate>) {
    for (at, line) in lines_at(text) {
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        if let Some(rest) = trimmed.strip_prefix("port ") {
            // The first number standing alone: the literal, or the default in `{ 3000 }` (not
            // the `1` of a `127.0.0.1` later on the line).
            if let Some(&(start, port)) = super::generic::standalone_numbers(rest).first() {
                out.push(candidate(
                    at + lead + 5 + start,
                    port,
                    Kind::Bind,
                    Scope::Host,
                    false,
                    format!("puma listens on port {port}"),
                ));
            }
        } else if let Some(rest) = trimmed.strip_prefix("bind ") {
            let value = rest.trim().trim_matches(['"', '\'']);
            let offset = at + line.len() - rest.len() + rest.find(value).unwrap_or(0);
            if let Some(c) = bind_address(offset, value, "puma") {
                out.push(c);
            }
        }
    }
}

/// Go: `http.ListenAndServe(":3002", ...)`, `ListenAndServeTLS`, `net.Listen("tcp", ":8000")`,
/// gin's and echo's `.Run(":8080")` / `.Start(":8080")`: the first string of the call.
pub(crate) fn go(text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    for call in [
        "ListenAndServe(",
        "ListenAndServeTLS(",
        "net.Listen(",
        ".Run(",
        ".Start(",
    ] {
        for i in memchr::memmem::find_iter(bytes, call.as_bytes()) {
            let from = i + call.len();
            let args = &text[from..floor(text, from + 80)];
            let args = &args[..args.find(')').unwrap_or(args.len())];
            // `net.Listen("tcp", addr)`: the address is the second string.
            let mut strings = args.split('"').skip(1).step_by(2);
            let first = strings.next();
            let address = if call == "net.Listen(" {
                strings.next()
            } else {
                first
            };
            let Some(address) = address else { continue };
            let Some(inner) = args.find(&format!("\"{address}\"")).map(|k| k + 1) else {
                continue;
            };
            if let Some(c) = bind_address(from + inner, address, "the Go server") {
                out.push(c);
            }
        }
    }
}

/// The generic layer under the framework detectors, for JavaScript and Python: a call to a
/// function that serves (`serve`, `listen`, `run`, `run_app`, `start`, `createServer`) with a
/// `port` argument or key holding a number (`Bun.serve({ port: 3000 })`,
/// `web.run_app(app, port=8000)`, `waitress.serve(app, port=8080)`), and Python's socket
/// servers given an address tuple (`HTTPServer(("", 8000), Handler)`).
/// With `positional_listen`, `listen(8000)` counts too: a tornado application's port (in other
/// Python, `sock.listen(5)` is a socket's backlog; JavaScript's `.listen(N)` has its own
/// detector).
pub(crate) fn server_calls(text: &str, positional_listen: bool, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    for name in [
        "serve(",
        "listen(",
        "run(",
        "run_app(",
        "start(",
        "createServer(",
    ] {
        for i in memchr::memmem::find_iter(bytes, name.as_bytes()) {
            let from = i + name.len();
            // The function's own name, not the end of another (`preserve(`, `restart(`).
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let args = &text[from..floor(text, from + 300)];
            // Up to the call's closing parenthesis.
            let mut depth = 0usize;
            let end = args
                .char_indices()
                .find(|&(_, c)| match c {
                    '(' | '{' | '[' => {
                        depth += 1;
                        false
                    }
                    ')' | '}' | ']' if depth == 0 => true,
                    ')' | '}' | ']' => {
                        depth -= 1;
                        false
                    }
                    _ => false,
                })
                .map_or(args.len(), |(k, _)| k);
            let args = &args[..end];
            // `app.listen(8000)` (tornado): a number first.
            if name == "listen(" && positional_listen {
                let lead = args.len() - args.trim_start().len();
                if let Some((p, _)) = digits_at(args, lead) {
                    out.push(candidate(
                        from + lead,
                        p,
                        Kind::Bind,
                        Scope::Host,
                        false,
                        format!("`listen({p})` binds port {p}"),
                    ));
                    continue;
                }
            }
            let mut search = 0;
            while let Some(k) = args[search..].find("port").map(|k| search + k) {
                search = k + 4;
                let before = args[..k].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let rest = args[k + 4..].trim_start_matches(['"', '\'']);
                let Some(value) = rest.trim_start().strip_prefix([':', '=']) else {
                    continue;
                };
                let lead = args.len() - value.len() + (value.len() - value.trim_start().len());
                if let Some((p, _)) = digits_at(args, lead) {
                    let call = name.trim_end_matches('(');
                    out.push(candidate(
                        from + lead,
                        p,
                        Kind::Bind,
                        Scope::Host,
                        false,
                        format!("`{call}(...)` with port {p} serves on port {p}"),
                    ));
                }
            }
        }
    }
    for i in memchr::memmem::find_iter(bytes, b"Server((") {
        let from = i + 8;
        let args = &text[from..floor(text, from + 80)];
        let Some(comma) = args.find(',') else {
            continue;
        };
        let host = args[..comma].trim().trim_matches(['"', '\'']);
        let value = &args[comma + 1..];
        let lead = comma + 1 + (value.len() - value.trim_start().len());
        if let Some((p, _)) = digits_at(args, lead) {
            out.push(candidate(
                from + lead,
                p,
                Kind::Bind,
                Scope::Host,
                is_loopback_host(host),
                format!("a socket server bound to ({host:?}, {p}) listens on port {p}"),
            ));
        }
    }
}

/// uWSGI's ini: `http`, `https`, `http-socket`, `socket` and `uwsgi-socket` addresses.
pub(crate) fn uwsgi_ini(text: &str, out: &mut Vec<Candidate>) {
    for (at, line) in lines_at(text) {
        for key in ["http-socket", "https", "http", "uwsgi-socket", "socket"] {
            if let Some((i, value)) = setting(line, key) {
                // `https = :8443,cert,key`: the address is the first field.
                let address = value.split(',').next().unwrap_or(value);
                if let Some(c) = bind_address(at + i, address, "uWSGI") {
                    out.push(c);
                }
                break;
            }
        }
    }
}

/// Spring Boot's `application*.yml`: `port` under a top-level `server:` (and under
/// `management:` `server:`).
pub(crate) fn spring_yaml(text: &str, out: &mut Vec<Candidate>) {
    // The keys of the blocks that hold the current line, by indentation.
    let mut parents: Vec<(usize, String)> = Vec::new();
    for (at, line) in lines_at(text) {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            while parents.last().is_some_and(|(i, _)| *i >= indent) {
                parents.pop();
            }
            let in_server = parents.last().is_some_and(|(_, k)| k == "server");
            if in_server
                && let Some((i, value)) = setting(line, "port")
                && let Some(port) = port_number(value)
            {
                out.push(candidate(
                    at + i,
                    port,
                    Kind::Bind,
                    Scope::Host,
                    false,
                    format!("`server.port: {port}` makes the application listen on port {port}"),
                ));
            }
            if let Some(key) = trimmed.strip_suffix(':') {
                parents.push((indent, key.trim().to_owned()));
            }
        }
    }
}

/// Rust servers: `.bind(("127.0.0.1", 8000))` (actix), `.bind("0.0.0.0:8000")`,
/// `TcpListener::bind("127.0.0.1:3000")`.
pub(crate) fn rust(text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    for i in memchr::memmem::find_iter(bytes, b"bind(") {
        let from = i + 5;
        let args = &text[from..floor(text, from + 80)];
        let trimmed = args.trim_start();
        let lead = args.len() - trimmed.len();
        if let Some(tuple) = trimmed.strip_prefix('(') {
            // `(("127.0.0.1", 8000))`: a host string, then the port.
            let Some(comma) = tuple.find(',') else {
                continue;
            };
            let host = tuple[..comma].trim().trim_matches('"');
            let value = &tuple[comma + 1..];
            let at = lead + 1 + comma + 1 + (value.len() - value.trim_start().len());
            if let Some((p, _)) = digits_at(args, at) {
                out.push(candidate(
                    from + at,
                    p,
                    Kind::Bind,
                    Scope::Host,
                    is_loopback_host(host),
                    format!("the Rust server binds ({host:?}, {p})"),
                ));
            }
        } else if let Some(string) = trimmed.strip_prefix('"') {
            let Some(end) = string.find('"') else {
                continue;
            };
            if let Some(c) = bind_address(from + lead + 1, &string[..end], "the Rust server") {
                out.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(f: impl Fn(&mut Vec<Candidate>)) -> Vec<(u16, &'static str, usize)> {
        let mut out = Vec::new();
        f(&mut out);
        out.iter()
            .map(|c| (c.port, c.kind.as_str(), c.offset))
            .collect()
    }

    #[test]
    fn quadlet_units_publish_ports() {
        let text = "[Container]\nImage=docker.io/paperless\nPublishPort=127.0.0.1:3002:8000\n  PublishPort=3001:3000\n# PublishPort=8000:8000\n";
        let (masked, _) =
            super::super::text::mask_comments(text, super::super::text::CommentStyle::IniLine);
        let found = ports(|o| systemd_service(&masked, o));
        assert_eq!(
            found,
            [
                (3002, "publish", 60),
                (8000, "bind", 65),
                (3001, "publish", 84),
                (3000, "bind", 89)
            ]
        );
    }

    #[test]
    fn generic_server_calls() {
        let found = |t: &str| ports(|o| server_calls(t, false, o));
        assert_eq!(
            found("Bun.serve({ port: 3000, fetch })"),
            [(3000, "bind", 18)]
        );
        assert_eq!(found("web.run_app(app, port=8000)"), [(8000, "bind", 22)]);
        assert_eq!(
            found("waitress.serve(app, host='0.0.0.0', port=8080)"),
            [(8080, "bind", 41)]
        );
        assert_eq!(
            found("httpd = HTTPServer((\"\", 8000), Handler)"),
            [(8000, "bind", 24)]
        );
        // Not a server: a client's port, a name that only ends like one, a port not a number.
        assert_eq!(found("pg.connect({ port: 5432 })"), []);
        assert_eq!(found("preserve({ port: 3000 })"), []);
        assert_eq!(found("server.listen({ port: env.PORT })"), []);
        assert_eq!(found("run({ reportPort: 3000 })"), []);
        assert_eq!(found("serve(app)\nconst db = { port: 5432 }"), []);
        // A socket's backlog is no port; a tornado application's number is.
        assert_eq!(found("self.listen(5)"), []);
        assert_eq!(
            ports(|o| server_calls("app.listen(8000)", true, o)),
            [(8000, "bind", 11)]
        );
    }

    #[test]
    fn dockerfile_forms() {
        let text = "FROM node:20-alpine\nARG APP_PORT=8000\nENV PORT 3000\nEXPOSE 3000/tcp ${APP_PORT}\nCMD [\"node\", \"server.js\"]\nRUN addgroup --gid 1001 x\n";
        let found = ports(|o| dockerfile(text, o));
        assert_eq!(
            found.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
            [(3000, "env"), (3000, "bind"), (8000, "bind")]
        );
        let text = "FROM python:3.12\nCMD gunicorn \\\n  --bind 0.0.0.0:5555 app:app\n";
        assert_eq!(
            ports(|o| dockerfile(text, o)),
            [(5555, "bind", text.find("5555").unwrap())]
        );
        let text = "FROM python:3.12\nENV PORT=5555\nCMD gunicorn app:app\n";
        assert_eq!(
            ports(|o| dockerfile(text, o)),
            [(5555, "env", text.find("5555").unwrap())]
        );
        // An `ENV` over two lines still sets `PORT` (so gunicorn has no default to report),
        // and `EXPOSE ${PORT}` is the same port, found where it is given.
        let text = "FROM python:3.12\nENV PYTHONUNBUFFERED=1 \\\n    PORT=8000\nEXPOSE ${PORT}\n\
                    CMD set -xe; gunicorn mysite.wsgi:application\n";
        let found = ports(|o| dockerfile(text, o));
        assert!(
            found.iter().all(|f| f.2 == text.find("8000").unwrap()),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f.1 == "env"), "{found:?}");
        // An `EXPOSE` continued on the next line.
        let text = "FROM x\nEXPOSE 5555 \\\n  3002/tcp\n";
        assert_eq!(
            ports(|o| dockerfile(text, o)),
            [
                (5555, "bind", text.find("5555").unwrap()),
                (3002, "bind", text.find("3002").unwrap())
            ]
        );
    }

    #[test]
    fn python_forms() {
        let text = "app = Flask(__name__)\nif __name__ == '__main__':\n    app.run(host='0.0.0.0', port=int(os.environ.get('PORT', 5555)))\n";
        let found = ports(|o| python("app.py", text, o));
        assert_eq!(found[0], (5555, "default", text.find("5555").unwrap()));
        let text = "app = Flask(__name__)\napp.run(debug=True)\n";
        assert_eq!(
            ports(|o| python("app.py", text, o)),
            [(5000, "default", 22)]
        );
        let text = "uvicorn.run('main:app', host='0.0.0.0', port=8000)\npool_recycle=3000\n";
        assert_eq!(
            ports(|o| python("main.py", text, o)),
            [(8000, "bind", text.find("8000").unwrap())]
        );
        let text = "bind = \"0.0.0.0:5555\"\nmax_requests = 3000\ntimeout = 30\n";
        assert_eq!(
            ports(|o| python("gunicorn.conf.py", text, o)),
            [(5555, "bind", 16)]
        );
    }

    #[test]
    fn javascript_forms() {
        let text = "const port = parseInt(process.env.PORT || '3000', 10)\nsetTimeout(fn, 3000)\napp.listen(5555)\n";
        let found = ports(|o| javascript("server.js", text, o));
        assert_eq!(
            found,
            [
                (5555, "bind", text.find("5555").unwrap()),
                (3000, "default", text.find("3000").unwrap())
            ]
        );
        let text = "export default { server: { port: 3002, proxy: {} }, build: { chunkSizeWarningLimit: 3000 } }";
        assert_eq!(
            ports(|o| javascript("vite.config.ts", text, o)),
            [(3002, "bind", text.find("3002").unwrap())]
        );
    }

    #[test]
    fn urls_and_nginx() {
        let text =
            "A=http://localhost:8000/api\nB=postgres://u:p@db:5432/x\nC=https://example.com:3000\n";
        assert_eq!(ports(|o| local_urls(text, o)), [(8000, "reference", 19)]);
        let text = "server {\n  listen 80;\n  listen [::]:3001 ipv6only=on;\n  return 301 https://x;\n  client_max_body_size 3000;\n}\n";
        let text2 = "upstream api { server web:8000 max_fails=3; server 127.0.0.1:5555; }\nserver {\n  server_name x;\n  location / { proxy_pass http://api:8000/v1; }\n  location /s { proxy_pass http://unix:/run/a.sock; }\n}\n";
        assert_eq!(
            ports(|o| nginx(text2, Scope::Host, o))
                .iter()
                .map(|f| (f.0, f.1))
                .collect::<Vec<_>>(),
            [
                (8000, "reference"),
                (8000, "reference"),
                (5555, "reference")
            ]
        );
        assert_eq!(
            ports(|o| nginx(text, Scope::Host, o))
                .iter()
                .map(|f| f.0)
                .collect::<Vec<_>>(),
            [80, 3001]
        );
    }
}
