//! The generic layer under the ecosystem detectors: the shapes a port takes in any language and
//! any configuration format, for the files and frameworks no detector was written for.
//!
//! - a setting whose name is a port word (`port`, `PORT`, `http_port`, `containerPort`,
//!   `server.port`, `port_value`, `:port`) given a number: `port: 8000`, `"port": 3000`,
//!   `port = 8000`, `set :port, 3000`, `{port, 8000}`, `.port(8000)`, `port = env("PORT") ||
//!   "8000"`; a block opened by a port word (`port:` / `ports:` / `variable "app_port" {`) whose
//!   fields hold numbers (`number: 3000`, `static = 8000`, `default = 8000`); a `name: PORT` /
//!   `key: PORT` entry whose `value:` follows;
//! - a URL with any host and a port (`http://api:8000`, `ws://*:3000`);
//! - a port flag of any program (`--port 3000`, `--port=3000`, `-p 3000`, `--bind 0.0.0.0:8000`);
//! - socket calls (`htons(8000)`, `ServerSocket(3000)`, `InetSocketAddress(8000)`,
//!   `bind(("", 8000))`), and server directives (`Listen 8000`, `<VirtualHost *:8000>`).
//!
//! Every candidate is inside the system (`Scope::Container`): forbidden ports are violations
//! wherever they are written, while a port the policy does not list is not one on this layer's
//! word alone, since it cannot tell whether the host exposes it. A setting is `Kind::Env` and a
//! flag or a server call `Kind::Bind` (they count in test trees too: a test server binds); a
//! URL or a client connection is `Kind::Reference` (a note in test and documentation files).
//! A name made of a word like `timeout`, `retries` or `size` besides `port` is not a port.

use super::files::{candidate, lines_at};
use super::text::{digits_at, is_loopback_host, port_number};
use super::{Candidate, Kind, Scope};

/// Name parts that make a `port` name mean something else (`port_timeout`, `max_ports`).
const NOT_A_PORT: &[&str] = &[
    "timeout", "ttl", "interval", "delay", "retries", "retry", "count", "max", "min", "limit",
    "size", "ms", "sec", "secs", "seconds", "wait", "range", "protocol", "name", "id",
];

/// Whether `word` names a port: one of its parts (split at `_`, `-`, `.`, `:`, `$` and camel
/// case) is `port` or `ports`, and no part is in [`NOT_A_PORT`].
pub(crate) fn is_port_word(word: &str) -> bool {
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in word.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts.iter().any(|p| p == "port" || p == "ports")
        && !parts.iter().any(|p| NOT_A_PORT.contains(&p.as_str()))
}

fn reference(offset: usize, port: u16, what: String) -> Candidate {
    of_kind(Kind::Reference, offset, port, what)
}

fn of_kind(kind: Kind, offset: usize, port: u16, what: String) -> Candidate {
    candidate(offset, port, kind, Scope::Container, false, what)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'$')
}

/// Numbers standing alone in `value` (not part of a word, a version or a decimal), with their
/// offsets in it.
pub(crate) fn standalone_numbers(value: &str) -> Vec<(usize, u16)> {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let before = start.checked_sub(1).map(|k| bytes[k]);
        let after = bytes.get(i).copied();
        // A sign makes a number, not a port (`= -8000`); not a range's `-` (`3000-3005`) nor
        // a shell default's (`${PORT:-3000}`).
        let signed = before == Some(b'-')
            && start.checked_sub(2).is_some_and(|k| {
                bytes[k].is_ascii_whitespace() || matches!(bytes[k], b'=' | b'(' | b'[' | b',')
            });
        let glued_before = signed
            || before.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+'));
        let glued_after = after.is_some_and(|b| {
            b.is_ascii_alphanumeric()
                || b == b'_'
                || b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
        });
        if glued_before || glued_after {
            continue;
        }
        if let Some(p) = port_number(&value[start..i]) {
            out.push((start, p));
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// What follows a port name on its line, when it assigns: the value's offset in the line, or
/// `None` when the name is not assigned here.
enum After {
    /// A value starts at this offset of the line.
    Value(usize),
    /// The name opens a block (`port:` at the end of a line, `port "http" {`).
    Block,
    None,
}

fn after_name(line: &str, name_start: usize, name_end: usize) -> After {
    let bytes = line.as_bytes();
    let mut i = name_end;
    // Closing quotes and brackets of the name: `"port": 1`, `['port'] = 1`.
    while i < bytes.len() && matches!(bytes[i], b'"' | b'\'' | b']' | b'`') {
        i += 1;
    }
    let spaced = bytes.get(i).is_some_and(|b| *b == b' ' || *b == b'\t');
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    let opener = name_start.checked_sub(1).map(|k| bytes[k]);
    let rest = &line[i..];
    // A flag in an argument list: `"--web-port", "3000"`.
    if opener == Some(b'-') && rest.starts_with(',') {
        let next = rest[1..].trim_start();
        let value = next.trim_start_matches(['"', '\'']);
        if value.starts_with(|c: char| c.is_ascii_digit()) {
            return After::Value(line.len() - value.len());
        }
    }
    // An option declared by name: `define("port", default=8000)` (tornado), `option("port",
    // default: 3000)`.
    if rest.starts_with(',') && matches!(opener, Some(b'"' | b'\'')) {
        let args = &rest[1..];
        for key in ["default=", "default =", "default:", "default :"] {
            if let Some(k) = args.find(key) {
                let value = args[k + key.len()..].trim_start();
                if value.starts_with(|c: char| c.is_ascii_digit()) {
                    return After::Value(line.len() - value.len());
                }
            }
        }
    }
    // A call given the port's name, then its value or default: `app.set('port', 3000)`,
    // `config().getInteger("http.port", 8000)`, `systemProperty("server.port", "8000")`,
    // `envOr("PORT", "8000")`.
    if rest.starts_with(',')
        && matches!(opener, Some(b'"' | b'\''))
        && line[..name_start - 1].trim_end().ends_with('(')
    {
        let value = rest[1..].trim_start().trim_start_matches(['"', '\'']);
        if value.starts_with(|c: char| c.is_ascii_digit()) {
            return After::Value(line.len() - value.len());
        }
    }
    // An XML element: `<http.port>8000</http.port>`, `<liberty.var.http.port>8000</...>`.
    if opener == Some(b'<') && rest.starts_with('>') {
        let value = &rest[1..];
        let value = &value[..value.find('<').unwrap_or(value.len())];
        return if value.trim().is_empty() {
            After::None
        } else {
            After::Value(i + 1)
        };
    }
    // An XML element named by an attribute, its value in another: `<variable
    // name="http.port" defaultValue="8000" />`, `<property name="server.port" value="8000"/>`.
    if matches!(opener, Some(b'"' | b'\'')) && line[..name_start - 1].trim_end().ends_with("name=")
    {
        let element = &rest[..rest.find('>').unwrap_or(rest.len())];
        let lower = element.to_ascii_lowercase();
        for key in ["value=\"", "value='", "default=\"", "default='"] {
            if let Some(k) = lower.find(key) {
                let value = &element[k + key.len()..];
                if value.starts_with(|c: char| c.is_ascii_digit()) {
                    return After::Value(line.len() - rest.len() + k + key.len());
                }
            }
        }
        return After::None;
    }
    // A template's default: `{{ nginx_port | default(8000) }}`.
    if let Some(filter) = rest.strip_prefix('|')
        && let Some(d) = filter.trim_start().strip_prefix("default(")
    {
        return After::Value(line.len() - d.len());
    }
    let op_len = if rest.starts_with("=>")
        || rest.starts_with(":=")
        // Haskell's and R's `port <- ...`.
        || rest.starts_with("<-")
        // `${PORT:-3000}` (a shell default), `PORT ?= 8000` (Make).
        || rest.starts_with(":-")
        || rest.starts_with("?=")
        || rest.starts_with("->")
        || rest.starts_with("||")
        || rest.starts_with("??")
    {
        // `ENV["PORT"] || 3000`, `env.PORT ?? 3000`: the default.
        2
    } else if rest.starts_with("==") || rest.starts_with("!=") || rest.starts_with("::") {
        return After::None;
    } else if rest.starts_with([':', '=', '(']) {
        1
    } else if rest.starts_with(',')
        && (matches!(opener, Some(b':' | b'{')) || line.contains("set_env("))
    {
        // `set :port, 3000` (Ruby), `{port, 8000}` and `application:set_env(app, port, 8000)`
        // (Erlang).
        1
    } else if (rest.starts_with('"') || rest.starts_with('{')) && line.trim_end().ends_with('{') {
        // `port "http" {` (HCL).
        return After::Block;
    } else if spaced
        && (line.trim_start().len() == line.len() - name_start
            && rest
                .trim_start_matches(['"', '\''])
                .starts_with(|c: char| c.is_ascii_digit() || c == '{' || c == '$')
            || rest.starts_with(|c: char| c.is_ascii_digit()))
    {
        // A directive at the start of its line (`port 6379`, `Port 22`), or a flag (`--port 3000`).
        0
    } else {
        return After::None;
    };
    let value_at = i + op_len;
    let value = line[value_at..].trim();
    if value.is_empty() || value == "{" || value == "|" || value == ">" || value == "[" {
        return After::Block;
    }
    After::Value(value_at)
}

/// The end of a value: the end of the line, or the first `,` / `;` outside brackets and quotes
/// when the value does not start with a bracket (a list is read whole).
fn value_end(value: &str) -> usize {
    let bytes = value.as_bytes();
    let list = value.trim_start().starts_with(['[', '(']);
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'(' | b'[' | b'{') => depth += 1,
            (None, b')' | b']' | b'}') => {
                depth -= 1;
                if depth < 0 {
                    return i;
                }
            }
            (None, b',' | b';') if depth == 0 && !list => return i,
            _ => {}
        }
    }
    let mut end = bytes.len().min(160);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Port names given numbers, blocks they open, and `name: PORT` entries.
pub(crate) fn port_settings(text: &str, out: &mut Vec<Candidate>) {
    if find_port(text).is_none() {
        return;
    }
    let lines: Vec<(usize, &str)> = lines_at(text).collect();
    for (n, &(start, line)) in lines.iter().enumerate() {
        let bytes = line.as_bytes();
        // Squid's `acl Safe_ports port 8000` matches requests to other hosts' ports.
        if line.trim_start().starts_with("acl ") {
            continue;
        }
        let mut from = 0;
        let mut found_on_line = false;
        while let Some(k) = find_port(&line[from..]).map(|k| from + k) {
            // The whole name around `port`.
            let mut a = k;
            while a > 0 && is_word_byte(bytes[a - 1]) {
                a -= 1;
            }
            let mut b = k + 4;
            while b < bytes.len() && is_word_byte(bytes[b]) {
                b += 1;
            }
            from = b.max(k + 4);
            let name = line[a..b].trim_start_matches(['-', '$', '.']);
            let name_start = b - name.len();
            if !is_port_word(name) {
                continue;
            }
            match after_name(line, name_start, b) {
                After::Value(at) => {
                    let value = &line[at..];
                    let value = &value[..value_end(value)];
                    let numbers = standalone_numbers(value);
                    if numbers.is_empty() {
                        continued_default(&lines, n, name, out);
                        found_on_line = true;
                        continue;
                    }
                    let list = value.trim_start().starts_with('[');
                    for (i, (off, port)) in numbers.iter().enumerate() {
                        if i > 0 && !list && !mapping(value, numbers[0].0, *off) {
                            break;
                        }
                        out.push(of_kind(
                            Kind::Env,
                            start + at + off,
                            *port,
                            format!("`{name}` is set to {port}"),
                        ));
                        found_on_line = true;
                    }
                }
                After::Block => {
                    block_values(&lines, n, name, out);
                    found_on_line = true;
                }
                After::None => {}
            }
        }
        if !found_on_line {
            named_entry(&lines, n, out);
        }
    }
}

/// A value whose default comes lines later, in a chain of calls or operators:
/// `let port = env::var("PORT")` / `.ok()` / `.unwrap_or(8000);`, `port = os.environ.get(` /
/// `"PORT") or 8000`. The first number of the lines that continue the statement (they start
/// with `.`, `?`, `|`, `:`, `or` or a closing bracket), up to four.
fn continued_default(lines: &[(usize, &str)], n: usize, name: &str, out: &mut Vec<Candidate>) {
    for &(start, line) in lines.iter().skip(n + 1).take(4) {
        let trimmed = line.trim_start();
        let continues =
            trimmed.starts_with(['.', '?', '|', ':', ')', '"', '\'']) || trimmed.starts_with("or ");
        if !continues {
            return;
        }
        if let Some(&(off, port)) = standalone_numbers(line).first() {
            out.push(of_kind(
                Kind::Env,
                start + off,
                port,
                format!("`{name}` defaults to {port}"),
            ));
            return;
        }
    }
}

/// `bind = "0.0.0.0:8000"`, `config.bind = ["127.0.0.1:3002"]`, `listen = *:3000`,
/// `address: ":8000"`: a setting named for a listening address, given one; a bind wherever
/// it is written, tests included.
pub(crate) fn bind_settings(text: &str, out: &mut Vec<Candidate>) {
    // Most files name no such setting: nothing to split into lines.
    let words: [&[u8]; 8] = [
        b"bind", b"BIND", b"Bind", b"listen", b"LISTEN", b"ddr", b"DDR", b"Listen",
    ];
    if !words
        .iter()
        .any(|w| memchr::memmem::find(text.as_bytes(), w).is_some())
    {
        return;
    }
    for (start, line) in lines_at(text) {
        let trimmed = line.trim_start();
        let Some(eq) = trimmed.find(['=', ':']) else {
            continue;
        };
        let key = trimmed[..eq].trim().trim_matches(['"', '\'']);
        let last = key
            .rsplit(['.', '_', '-'])
            .next()
            .unwrap_or(key)
            .to_ascii_lowercase();
        if !matches!(
            last.as_str(),
            "bind" | "listen" | "binds" | "address" | "addr" | "listeners"
        ) {
            continue;
        }
        let value = &trimmed[eq + 1..];
        let value_at = start + (line.len() - trimmed.len()) + eq + 1;
        for (off, _) in value.match_indices(':') {
            let host_start = value[..off]
                .rfind(|c: char| {
                    !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | '[' | ']'))
                })
                .map_or(0, |k| {
                    k + value[k..].chars().next().map_or(1, char::len_utf8)
                });
            let host = &value[host_start..off];
            if host.contains('/') || host.ends_with("http") || host.ends_with("https") {
                continue;
            }
            number_here(text, value_at + off + 1, &format!("`{key}` binds"), out);
        }
    }
}

/// `3000:3000` or `3000-3005`: a second number that belongs to the first.
fn mapping(value: &str, first: usize, second: usize) -> bool {
    let between = &value[first..second];
    between
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .len()
        == 1
        && matches!(between.as_bytes().last(), Some(b':' | b'-'))
}

/// The next `port` (any case) in `s`.
fn find_port(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr2(b'p', b'P', &bytes[from..]).map(|i| from + i) {
        if bytes.len() >= i + 4 && bytes[i + 1..i + 4].eq_ignore_ascii_case(b"ort") {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// The lines under a block a port name opens: each `key: N` / `key = N` / `- N` / `- "N:M"`
/// whose key is not in [`NOT_A_PORT`], up to the block's end (a line indented no deeper than the
/// opener, or its closing brace).
fn block_values(lines: &[(usize, &str)], opener: usize, name: &str, out: &mut Vec<Candidate>) {
    let base = indent(lines[opener].1);
    for &(start, line) in lines.iter().skip(opener + 1).take(8) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if indent(line) <= base && !trimmed.starts_with('-') || trimmed.starts_with('}') {
            break;
        }
        let body = trimmed.trim_start_matches(['-', ' ']);
        let (key, value) = match body.find([':', '=']) {
            Some(i) if !body[..i].contains(['"', '\'']) || body.starts_with(['"', '\'']) => {
                (body[..i].trim().trim_matches(['"', '\'']), &body[i + 1..])
            }
            _ => ("", body),
        };
        if key.contains(' ')
            || key
                .split(['_', '-', '.'])
                .any(|p| NOT_A_PORT.contains(&p.to_ascii_lowercase().as_str()))
        {
            continue;
        }
        if key.is_empty() && !trimmed.starts_with('-') {
            continue;
        }
        let value = value.trim().trim_matches(['"', '\'', ',']);
        let numbers = standalone_numbers(value);
        // A value that is only a port, or a `host:container` pair.
        let whole = value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b':' | b'/' | b'-'))
            || value.starts_with("${");
        if numbers.is_empty() || !whole && !value.starts_with("${") {
            continue;
        }
        let value_at = line.len() - line.trim_start().len() + trimmed.find(value).unwrap_or(0);
        for (off, port) in numbers {
            out.push(of_kind(
                Kind::Env,
                start + value_at + off,
                port,
                format!("`{key}` under `{name}` is port {port}"),
            ));
        }
    }
}

/// The keys whose value names a port given in a `value` beside or below: `name: PORT`,
/// `key: HTTP_PORT`, a JSON patch's `path: /spec/.../containerPort`.
const ENTRY_KEYS: &[&str] = &["name", "key", "path"];

/// `name: PORT` / `key: PORT` / `- name: HTTP_PORT` followed (within two lines) by
/// `value: N`: an environment entry of Kubernetes, Render and ECS.
fn named_entry(lines: &[(usize, &str)], n: usize, out: &mut Vec<Candidate>) {
    let line = lines[n].1.trim().trim_start_matches(['-', ' ', '{']);
    let Some(rest) = ENTRY_KEYS.iter().find_map(|k| {
        line.strip_prefix(k)
            .or_else(|| line.strip_prefix('"')?.strip_prefix(k)?.strip_prefix('"'))
    }) else {
        return;
    };
    let Some(value) = rest.trim_start().strip_prefix([':', '=']) else {
        return;
    };
    // The name is one word (`"PORT", "value": "8000"` names `PORT`), a path's segments
    // included.
    let value = value.trim().trim_start_matches(['"', '\'']);
    let value = &value[..value
        .bytes()
        .position(|b| !(is_word_byte(b) || b == b'/'))
        .unwrap_or(value.len())];
    // A JSON patch's `path: /spec/.../containerPort` names the port by its last segment.
    let last = value.rsplit('/').next().unwrap_or(value);
    if !is_port_word(last) {
        return;
    }
    let same = line.find("value");
    let candidates: Vec<(usize, &str)> = match same {
        Some(i) => vec![(
            lines[n].0 + lines[n].1.find(&line[i..]).unwrap_or(0),
            &line[i..],
        )],
        None => lines[n + 1..].iter().take(2).copied().collect(),
    };
    for (start, other) in candidates {
        let trimmed = other.trim_start();
        let Some(after) = trimmed
            .trim_start_matches(['"', '\''])
            .strip_prefix("value")
            .map(|r| r.trim_start_matches(['"', '\'']).trim_start())
            .and_then(|r| r.strip_prefix([':', '=']))
        else {
            continue;
        };
        let v = after
            .trim()
            .trim_end_matches([',', '}'])
            .trim()
            .trim_matches(['"', '\'']);
        if let Some(port) = port_number(v) {
            let at = other.len() - after.len() + after.find(v).unwrap_or(0);
            out.push(of_kind(
                Kind::Env,
                start + at,
                port,
                format!("`{value}` is set to {port}"),
            ));
            return;
        }
    }
}

/// URLs with a port, whatever the host: `http://api:8000`, `ws://[::]:3000`, `http://*:3000`.
pub(crate) fn urls(text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    for i in memchr::memmem::find_iter(bytes, b"://") {
        // A scheme before: letters.
        let scheme_start = bytes[..i]
            .iter()
            .rposition(|b| !b.is_ascii_alphanumeric() && *b != b'+')
            .map_or(0, |k| k + 1);
        if scheme_start == i {
            continue;
        }
        let scheme = &text[scheme_start..i];
        if !matches!(
            scheme.to_ascii_lowercase().as_str(),
            "http"
                | "https"
                | "ws"
                | "wss"
                | "tcp"
                | "grpc"
                | "h2c"
                | "redis"
                | "amqp"
                | "nats"
                | "mongodb"
                | "postgres"
                | "postgresql"
                | "mysql"
                | "ftp"
        ) {
            continue;
        }
        let host_start = i + 3;
        let mut j = host_start;
        if bytes.get(j) == Some(&b'[') {
            while j < bytes.len() && bytes[j] != b']' && bytes[j].is_ascii() && j - host_start < 48
            {
                j += 1;
            }
            if bytes.get(j) != Some(&b']') {
                continue;
            }
            j += 1;
        } else {
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric()
                    || matches!(bytes[j], b'.' | b'-' | b'_' | b'*' | b'+' | b'@'))
                && j - host_start < 128
            {
                j += 1;
            }
        }
        if j <= host_start || bytes.get(j) != Some(&b':') {
            continue;
        }
        let host = &text[host_start..j.min(text.len())];
        if is_remote_name(host) {
            continue;
        }
        let at = j + 1;
        let len = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let next = bytes.get(at + len).copied();
        if next.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
            continue;
        }
        if let Some(port) = port_number(&text[at..at + len]) {
            out.push(reference(
                at,
                port,
                format!("`{scheme}://{host}:{port}` points at port {port}"),
            ));
        }
    }
}

/// An address as an array and a port: `SocketAddr::from(([0, 0, 0, 0], 3000))` (Rust),
/// `.with_http_listener(([127, 0, 0, 1], 8000))`.
pub(crate) fn array_addresses(text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    for (needle, what) in [
        (&b"[0, 0, 0, 0]"[..], "the address `[0, 0, 0, 0]` with"),
        (b"[127, 0, 0, 1]", "the address `[127, 0, 0, 1]` with"),
        (b"[0,0,0,0]", "the address `[0,0,0,0]` with"),
        (b"[127,0,0,1]", "the address `[127,0,0,1]` with"),
    ] {
        for i in memchr::memmem::find_iter(bytes, needle) {
            let mut at = i + needle.len();
            if bytes.get(at) != Some(&b',') {
                continue;
            }
            at += 1;
            while matches!(bytes.get(at), Some(b' ' | b'\t')) {
                at += 1;
            }
            if let Some(mut c) = number_candidate(Kind::Bind, text, at, what) {
                c.loopback = needle.starts_with(b"[127");
                out.push(c);
            }
        }
    }
}

/// Port flags of any program, socket calls and server directives.
pub(crate) fn flags_and_calls(text: &str, out: &mut Vec<Candidate>) {
    flags_and_named_calls(text, out);
    server_calls(text, out);
}

/// [`flags_and_calls`] but the server calls of [`SERVER_CALLS`], for the files whose own
/// detector reads their server calls (JavaScript, Python, Go, Rust).
pub(crate) fn flags_and_named_calls(text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    // `-p 3000`, `-p=3000`; `--port` is a port name read by `port_settings`.
    for i in memchr::memmem::find_iter(bytes, b"-p") {
        if i > 0 && !matches!(bytes[i - 1], b' ' | b'\t' | b'"' | b'\'' | b'[' | b',') {
            continue;
        }
        let mut at = i + 2;
        if !matches!(bytes.get(at), Some(b' ' | b'=')) {
            continue;
        }
        while matches!(bytes.get(at), Some(b' ' | b'=' | b'"' | b'\'')) {
            at += 1;
        }
        // `-p 3001:8000` (a container runtime's publish): both sides.
        let len = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if len > 0 && bytes.get(at + len) == Some(&b':') {
            number_here(text, at + len + 1, "`-p` maps", out);
        }
        number_here(text, at, "`-p` gives the port", out);
    }
    // Bind addresses given to a flag: `--bind 0.0.0.0:8000`, `-b :8000`, `-a 0.0.0.0:8000`,
    // `--listen *:3000`.
    const FLAGS: &[&str] = &[
        "--bind",
        "-b",
        "-a",
        "--listen",
        "-l",
        "--address",
        "--addr",
        "-address",
        // Go's flag package: `-addr :8000`, `-listen=:3000`, `-http :8000`.
        "-addr",
        "-listen",
        "-http",
    ];
    // One pass for every flag; they overlap (`--addr` holds `-addr` and `-a`).
    static FLAG_WORDS: std::sync::LazyLock<aho_corasick::AhoCorasick> =
        std::sync::LazyLock::new(|| {
            aho_corasick::AhoCorasick::new(FLAGS).expect("fixed patterns build")
        });
    for m in FLAG_WORDS.find_overlapping_iter(bytes) {
        let flag = FLAGS[m.pattern().as_usize()];
        let i = m.start();
        // A flag of its own, or the end of a longer one (`--web.listen-address`).
        let own = flag != "-address";
        if i > 0 && own && !matches!(bytes[i - 1], b' ' | b'\t' | b'"' | b'\'') {
            continue;
        }
        if !own
            && !bytes[..i]
                .iter()
                .rev()
                .take_while(|b| !b.is_ascii_whitespace())
                .any(|b| *b == b'-')
        {
            continue;
        }
        let mut at = i + flag.len();
        if !matches!(bytes.get(at), Some(b' ' | b'=')) {
            continue;
        }
        at += 1;
        let end = bytes[at..]
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'"' | b'\'' | b'\n' | b','))
            .map_or(bytes.len(), |e| at + e);
        let word = &text[at..end];
        // `--mac-address=00:11:22:33:44:55` is no address with a port.
        if word.contains("://") || !word.starts_with('[') && word.matches(':').count() > 1 {
            continue;
        }
        if let Some(colon) = word.rfind(':') {
            // The whole flag's name: `--web.listen-address`.
            let name_start = bytes[..i]
                .iter()
                .rposition(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\''))
                .map_or(0, |k| k + 1);
            let name = &text[name_start..i + flag.len()];
            number_here(text, at + colon + 1, &format!("`{name}` binds"), out);
        } else if flag == "--listen" {
            number_here(text, at, "`--listen` binds", out);
        }
    }
    for call in [
        "htons(",
        "ServerSocket(",
        "InetSocketAddress(",
        "HTTPServer((",
        "bind((",
        "TCPServer((",
        "connect((",
        "create_connection((",
    ] {
        for i in memchr::memmem::find_iter(bytes, call.as_bytes()) {
            let from = i + call.len();
            let args_end = bytes[from..]
                .iter()
                .position(|b| matches!(b, b')' | b'\n'))
                .map_or(bytes.len(), |e| from + e);
            let args = &text[from..args_end];
            let at = if call.ends_with("((") || args.trim_start().starts_with(['"', '\'']) {
                // `("host", N)`: the number after the first comma.
                match args.find(',') {
                    Some(c) => {
                        from + c + 1 + (args[c + 1..].len() - args[c + 1..].trim_start().len())
                    }
                    None => continue,
                }
            } else {
                from + (args.len() - args.trim_start().len())
            };
            let name = call.trim_end_matches('(');
            let kind = if name.contains("connect") {
                Kind::Reference
            } else {
                Kind::Bind
            };
            number_of_kind(kind, text, at, &format!("`{name}(...)` opens"), out);
        }
    }
    host_pairs(text, out);
    bare_addresses(text, out);
    // `kubectl port-forward svc/api 8000:3002`: both sides.
    for i in memchr::memmem::find_iter(bytes, b"port-forward") {
        let end = bytes[i..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |e| i + e);
        let rest = &text[i + 12..end];
        for word in rest.split_whitespace().skip(1) {
            if word.starts_with('-') {
                continue;
            }
            let at = i + 12 + (word.as_ptr() as usize - rest.as_ptr() as usize);
            let mut offset = 0;
            for side in word.split(':') {
                number_of_kind(
                    Kind::Reference,
                    text,
                    at + offset,
                    "`port-forward` maps",
                    out,
                );
                offset += side.len() + 1;
            }
        }
    }
    // `scotty 3000` (Haskell), `TestServer(3002, app)`, `HttpServer(8000)`.
    for i in memchr::memmem::find_iter(bytes, b"scotty ") {
        if i == 0 || !is_word_byte(bytes[i - 1]) {
            number_here(text, i + 7, "`scotty` serves on", out);
        }
    }
    for i in memchr::memmem::find_iter(bytes, b"Server(") {
        number_here(text, i + 7, "a server constructed on", out);
        // http4k: `app.asServer(Undertow(3000))`, `asServer(Jetty(8000))`: the server
        // configuration given to `asServer` takes the port first.
        if text[..i].ends_with("as") {
            let args = &bytes[i + 7..bytes.len().min(i + 7 + 40)];
            let name = args
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if name > 0 && args.get(name) == Some(&b'(') {
                number_here(text, i + 7 + name + 1, "`asServer` serves on", out);
            }
        }
    }
    // Warp's `Warp.run 3002 app` (Haskell); a bare `run 3000 app` is read with the server
    // calls.
    for i in memchr::memmem::find_iter(bytes, b"Warp.run ") {
        number_here(text, i + 9, "`Warp.run` serves on", out);
    }
    // shadow-cljs: `:dev-http {8000 "public"}` serves a folder on each port it names.
    for i in memchr::memmem::find_iter(bytes, b":dev-http") {
        let mut at = i + 9;
        while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'{')) {
            at += 1;
        }
        number_here(text, at, "`:dev-http` serves on", out);
    }
    // `WireMockServer.Start(3002)`, `server.start(8000)`.
    for needle in [
        &b"Server.Start("[..],
        b"Server.start(",
        b"server.start(",
        b"server.Start(",
    ] {
        for i in memchr::memmem::find_iter(bytes, needle) {
            number_here(text, i + needle.len(), "a server started on", out);
        }
    }
    // Undertow's `addHttpListener(8000, "0.0.0.0")`, `Listener(3000)`.
    for i in memchr::memmem::find_iter(bytes, b"Listener(") {
        number_here(text, i + 9, "a listener on", out);
    }
    // `Listen 8000` (Apache) and `<VirtualHost *:8000>`; `EXPOSE`, Vagrant's forwarded ports.
    // (Mosquitto's `listener 8000` is read with the server calls.)
    let line_words: [&[u8]; 4] = [b"Listen ", b"<VirtualHost ", b"EXPOSE ", b"forwarded_port"];
    if !line_words
        .iter()
        .any(|w| memchr::memmem::find(bytes, w).is_some())
    {
        return;
    }
    for (start, line) in lines_at(text) {
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        if let Some(rest) = trimmed.strip_prefix("Listen ") {
            let value = rest.trim_start();
            let at = start + lead + 7 + (rest.len() - value.len());
            let port_at = value.rfind(':').map_or(at, |c| at + c + 1);
            number_here(text, port_at, "`Listen` binds", out);
        }
        // `EXPOSE 8000:8000`: Docker reads the container side; either number is written here.
        if let Some(rest) = trimmed.strip_prefix("EXPOSE ") {
            for (off, port) in standalone_numbers(rest) {
                out.push(reference(
                    start + lead + 7 + off,
                    port,
                    format!("`EXPOSE` names port {port}"),
                ));
            }
        }
        // Vagrant: `config.vm.network "forwarded_port", guest: 8000, host: 3002`.
        if trimmed.contains("forwarded_port") {
            for key in [
                "guest:",
                "host:",
                "guest =>",
                "host =>",
                ":guest =>",
                ":host =>",
            ] {
                for (off, _) in line.match_indices(key) {
                    if line[..off].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                        continue;
                    }
                    let value = &line[off + key.len()..];
                    let at = start + off + key.len() + (value.len() - value.trim_start().len());
                    number_here(
                        text,
                        at,
                        &format!(
                            "Vagrant forwards `{}`",
                            key.trim_end_matches([':', ' ', '=', '>'])
                        ),
                        out,
                    );
                }
            }
        }
        if let Some(rest) = trimmed.strip_prefix("<VirtualHost ") {
            for (off, _) in rest.match_indices(':') {
                let at = start + lead + 13 + off + 1;
                number_here(text, at, "a virtual host on", out);
            }
        }
    }
}

/// Whether a URL's host is a public name (`api.payments.example.com`): another machine, not a
/// port of this one. Names that resolve here or inside the project's own network stay: single
/// labels (`api`, a compose service), `localhost` and `*.localhost`, development domains
/// (`*.test`, `*.local`, `*.internal`, `lvh.me`, `*.nip.io`, `*.ddev.site`, `*.lndo.site`) and
/// cluster names (`*.svc`, `*.cluster.local`).
pub(crate) fn is_remote_name(host: &str) -> bool {
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let Some((_, tld)) = host.rsplit_once('.') else {
        return false;
    };
    if tld.len() < 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    let host = host.to_ascii_lowercase();
    let tld = &host[host.len() - tld.len()..];
    const LOCAL: &[&str] = &[
        "localhost",
        "local",
        "test",
        "internal",
        "svc",
        "docker",
        "lan",
        "home",
    ];
    const LOCAL_SUFFIXES: &[&str] = &[
        "lvh.me",
        "localtest.me",
        "nip.io",
        "sslip.io",
        "xip.io",
        "ddev.site",
        "lndo.site",
        "vcap.me",
    ];
    !LOCAL.contains(&tld)
        && !LOCAL_SUFFIXES.iter().any(|s| {
            host.strip_suffix(s)
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
        })
}

/// Calls that start a server, with the port as a number among their arguments.
/// `(name, how many leading arguments may hold the port)`: `up(8000, "0.0.0.0")` (Genie),
/// `Kemal.run(3002)`, `app.listen(8000)`, `serve(handler, "localhost", 8000)` (shelf),
/// `embeddedServer(Netty, 8000)` (Ktor), `Javalin.create().start(7070)`.
pub(crate) const SERVER_CALLS: &[(&str, usize)] = &[
    ("up(", 1),
    ("run(", 1),
    ("Run(", 1),
    ("listen(", 1),
    ("Listen(", 1),
    ("start(", 1),
    ("runApp(", 1),
    ("run_app(", 2),
    ("serve(", 3),
    ("embeddedServer(", 3),
    ("startServer(", 2),
    ("start_server(", 2),
];

/// Server calls and directives whose words are common in source code (`run(`, `start(`,
/// `listener`): read only in the files whose prefilter holds those words, not in JavaScript,
/// Python, Go and Rust, whose own detectors read their server calls.
fn server_calls(text: &str, out: &mut Vec<Candidate>) {
    // Mosquitto's `listener 8000 [address]`.
    if text.contains("listener ") {
        for (start, line) in lines_at(text) {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("listener ") {
                let value = rest.trim_start();
                let at = start + (line.len() - trimmed.len()) + 9 + (rest.len() - value.len());
                number_here(text, at, "`listener` binds", out);
            }
        }
    }
    // Warp's `run 3000 app` in a module that imports `Network.Wai.Handler.Warp` (elsewhere a
    // bare `run N` is too common to be a server).
    let bytes = text.as_bytes();
    if memchr::memmem::find(bytes, b"Network.Wai.Handler.Warp").is_some() {
        for i in memchr::memmem::find_iter(bytes, b"run ") {
            if i == 0 || !is_word_byte(bytes[i - 1]) && bytes[i - 1] != b'\'' {
                number_here(text, i + 4, "warp's `run` serves on", out);
            }
        }
    }
    /// Every name of [`SERVER_CALLS`], searched in one pass.
    static CALLS: std::sync::LazyLock<aho_corasick::AhoCorasick> = std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(SERVER_CALLS.iter().map(|(call, _)| call))
            .expect("fixed patterns build")
    });
    let bytes = text.as_bytes();
    for m in CALLS.find_iter(bytes) {
        let (call, positions) = SERVER_CALLS[m.pattern().as_usize()];
        let i = m.start();
        // A name of its own: `up(`, `.up(`, not `setup(` or `backup(`.
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue;
        }
        let line_start = memchr::memrchr(b'\n', &bytes[..i]).map_or(0, |k| k + 1);
        let receiver = text[line_start..i].to_ascii_lowercase();
        let plain = receiver.trim_end().is_empty() || !receiver.ends_with('.');
        // `start(` and `run(` of anything but an app or server are timers, tasks and
        // commands (`timer.start(3000)`, `subprocess.run(...)`).
        let serverish = [
            "app", "server", "javalin", "kemal", "genie", "create()", "vweb",
        ]
        .iter()
        .any(|w| receiver.contains(w));
        match call {
            "start(" | "Run(" if !serverish => continue,
            "run(" if !(serverish || plain) => continue,
            // `sock.listen(128)`: a backlog, not a port.
            "listen(" | "Listen(" if receiver.contains("sock") => continue,
            _ => {}
        }
        let from = i + call.len();
        let close = bytes[from..]
            .iter()
            .position(|b| matches!(b, b')' | b'\n'))
            .map_or(bytes.len(), |e| from + e);
        // A server's own `run` takes the app first: `vweb.run(&App{}, 8000)`.
        let positions = if call == "run(" && serverish {
            positions.max(2)
        } else {
            positions
        };
        let mut at = from;
        for arg in text[from..close].split([',', ';']).take(positions) {
            let lead = arg.len() - arg.trim_start().len();
            let value = arg.trim();
            let start = at + lead;
            at += arg.len() + 1;
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Some((port, _)) = digits_at(text, start) else {
                continue;
            };
            // Backlogs and buffer sizes are powers of two; ports below 1024 given to
            // these calls are counts more often than ports.
            if port < 1024 || port.is_power_of_two() {
                continue;
            }
            out.push(of_kind(
                Kind::Bind,
                start,
                port,
                format!("`{}...)` serves on port {port}", call),
            ));
            break;
        }
    }
}

/// `app:8000`, `"localhost:3000"`, `":8000"` and a Caddy site `:8000 {` without a scheme: a
/// host name (with a letter in it) or nothing, `:` and a port, as a token of its own (quotes,
/// spaces, brackets or commas around it; not followed by another `:` or a `.`).
fn bare_addresses(text: &str, out: &mut Vec<Candidate>) {
    out.extend(memchr::memchr_iter(b':', text.as_bytes()).filter_map(|c| bare_address(text, c)));
}

/// Whether `text` holds an address [`bare_addresses`] or [`host_pairs`] reads: what the
/// prefilter asks of a file none of its words matched, since these shapes have no word.
pub(crate) fn has_address(text: &str) -> bool {
    let bytes = text.as_bytes();
    // One pass for both; most hits end at the first test, a digit after the mark.
    memchr::memchr2_iter(b':', b',', bytes).any(|i| {
        if bytes[i] == b':' {
            bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && (bare_address(text, i).is_some() || in_bind_setting(text, i))
        } else {
            let at = i
                + 1
                + bytes[i + 1..]
                    .iter()
                    .take_while(|b| matches!(b, b' ' | b'\t'))
                    .count();
            bytes.get(at).is_some_and(u8::is_ascii_digit) && host_pair(text, i).is_some()
        }
    })
}

/// Whether the line around `colon` is a setting [`bind_settings`] reads (`bind: ":8000"`,
/// `address = "0.0.0.0:3000"`); every such setting has a colon before its port.
fn in_bind_setting(text: &str, colon: usize) -> bool {
    let bytes = text.as_bytes();
    let start = memchr::memrchr(b'\n', &bytes[..colon]).map_or(0, |k| k + 1);
    let end = memchr::memchr(b'\n', &bytes[colon..]).map_or(bytes.len(), |k| colon + k);
    let mut found = Vec::new();
    bind_settings(&text[start..end], &mut found);
    !found.is_empty()
}

/// The address whose port follows the colon at `colon`, if it is one (see [`bare_addresses`]).
fn bare_address(text: &str, colon: usize) -> Option<Candidate> {
    let bytes = text.as_bytes();
    let at = colon + 1;
    if !bytes.get(at).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let len = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let after = bytes.get(at + len).copied();
    if !matches!(
        after,
        None | Some(
            b'"' | b'\''
                | b' '
                | b'\t'
                | b'\n'
                | b'\r'
                | b','
                | b']'
                | b')'
                | b'/'
                | b'`'
                | b'}'
                | b';'
        )
    ) {
        return None;
    }
    let host_start = bytes[..colon]
        .iter()
        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')))
        .map_or(0, |k| k + 1);
    let host = &text[host_start..colon];
    let opener = host_start.checked_sub(1).map(|k| bytes[k]);
    if !matches!(
        opener,
        None | Some(b'"' | b'\'' | b' ' | b'\t' | b'\n' | b'[' | b',' | b'(' | b'=' | b'`' | b'@')
    ) {
        return None;
    }
    let named =
        host.bytes().any(|b| b.is_ascii_alphabetic()) && !host.ends_with('.') && host.len() <= 63;
    // `":8000"` (a Go or Node listen address, quoted whole: not the value of a JSON key,
    // `"balance":8000`) or a Caddy site at the start of its line.
    let bare = host.is_empty()
        && (matches!(opener, Some(b'"' | b'\'' | b'`')) && after == opener
            || opener == Some(b'\n')
            || opener.is_none());
    if !(named || bare) || is_remote_name(host) {
        return None;
    }
    let kind = if bare { Kind::Bind } else { Kind::Reference };
    let what = if bare {
        "an address".to_owned()
    } else {
        format!("`{host}`")
    };
    number_candidate(kind, text, at, &format!("{what} with"))
}

/// An address written as a host and a port side by side, in any language: `"0.0.0.0", 8000`,
/// `'localhost', 3002`, `"", 8000`, `InternetAddress.anyIPv4, 8000`, `INADDR_ANY, 3000`.
fn host_pairs(text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    out.extend(memchr::memchr_iter(b',', bytes).filter_map(|c| host_pair(text, c)));
    // The port first: `.request(HttpMethod.GET, 8000, "localhost", "/health")` (Vert.x),
    // `listen(8000, "0.0.0.0")`.
    const HOSTS: &[&str] = &[
        "\"localhost\"",
        "\"127.0.0.1\"",
        "\"0.0.0.0\"",
        "'localhost'",
        "'127.0.0.1'",
        "'0.0.0.0'",
    ];
    static HOST_WORDS: std::sync::LazyLock<aho_corasick::AhoCorasick> =
        std::sync::LazyLock::new(|| {
            aho_corasick::AhoCorasick::new(HOSTS).expect("fixed patterns build")
        });
    for m in HOST_WORDS.find_iter(bytes) {
        let (host, i) = (HOSTS[m.pattern().as_usize()], m.start());
        // The host, then the port as the next argument of a call without commas: servant's
        // `BaseUrl Http "localhost" 8000 ""`, Lisp's `(connect "localhost" 3000)`; read as
        // what it most often is, an address pointed at (a note in a test).
        let gap = bytes[m.end()..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if gap > 0 {
            let at = m.end() + gap;
            let name = &host[1..host.len() - 1];
            if let Some(mut c) = number_candidate(
                Kind::Reference,
                text,
                at,
                &format!("an address `{name}` with"),
            ) {
                c.loopback = is_loopback_host(name);
                out.push(c);
            }
        }
        let before = text[..i].trim_end_matches([' ', '\t']);
        let Some(before) = before.strip_suffix(',') else {
            continue;
        };
        let number = before.trim_end_matches([' ', '\t']);
        let digits = number.len() - number.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let at = number.len() - digits;
        if digits == 0 || at > 0 && (is_word_byte(bytes[at - 1]) || bytes[at - 1] == b'"') {
            continue;
        }
        let name = &host[1..host.len() - 1];
        let what = format!("an address `{name}` with");
        if let Some(mut c) = number_candidate(call_kind(text, at), text, at, &what) {
            c.loopback = is_loopback_host(name);
            out.push(c);
        }
    }
}

/// The address whose port follows the comma at `comma`, if it is one (see [`host_pairs`]).
fn host_pair(text: &str, comma: usize) -> Option<Candidate> {
    let bytes = text.as_bytes();
    let after = &text[comma + 1..];
    let lead = after.len() - after.trim_start_matches([' ', '\t']).len();
    let at = comma + 1 + lead;
    if !bytes.get(at).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let before = text[..comma].trim_end();
    let quoted_host = before.ends_with(['"', '\'']);
    let host = if let Some(quoted) = before.strip_suffix(['"', '\'']) {
        let quote = before.as_bytes()[before.len() - 1];
        match quoted.as_bytes().iter().rposition(|b| *b == quote) {
            Some(open) => &quoted[open + 1..],
            None => return None,
        }
    } else {
        let word_start = before
            .as_bytes()
            .iter()
            .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.')))
            .map_or(0, |k| k + 1);
        let word = &before[word_start..];
        let any = [
            "IPv4",
            "IPv6",
            "INADDR_ANY",
            "INADDR_LOOPBACK",
            "loopback",
            "anyIP",
        ];
        if !any.iter().any(|w| word.contains(w)) {
            return None;
        }
        word
    };
    let literal = host.is_empty()
        || host == "localhost"
        || host == "::"
        || host == "::1"
        || host == "*"
        || host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.matches('.').count() == 3;
    // A quoted host must be an address (not `"utf-8", 3000`); a constant was named above.
    if !literal && quoted_host {
        return None;
    }
    number_candidate(
        call_kind(text, comma),
        text,
        at,
        &format!("an address `{host}` with"),
    )
}

/// The arguments of a call whose name ends at `end`, up to its `)` (and, unless `multiline`,
/// its line's end), at most `window` bytes: what the prefilter looks at to tell a call given
/// a port.
fn call_args(bytes: &[u8], end: usize, window: usize, multiline: bool) -> &[u8] {
    let args = &bytes[end..bytes.len().min(end + window)];
    let close = args
        .iter()
        .position(|b| *b == b')' || *b == b'\n' && !multiline)
        .unwrap_or(args.len());
    &args[..close]
}

/// The kind of a port given with a host to the call around `at`: a client's connection is a
/// reference, anything else (`TCPSite`, `newServerAt`, `serve`, `bind_tcp`) opens the port.
fn call_kind(text: &str, at: usize) -> Kind {
    let call = text[..at]
        .rfind('(')
        .map(|open| {
            let mut from = open.saturating_sub(40);
            while !text.is_char_boundary(from) {
                from += 1;
            }
            &text[from..open]
        })
        .unwrap_or_default()
        .to_ascii_lowercase();
    let client = [
        "connect",
        "connection",
        "client",
        "dial",
        "request",
        "fetch",
        // Erlang's `gun:open("localhost", 3002)`, Ruby's `Net::HTTP.start(host, port)`.
        "open",
        "http.start",
        // Vert.x's `getNow(8000, "localhost", "/")`.
        "getnow",
    ]
    .iter()
    .any(|w| call.ends_with(w) || call.contains(&format!("{w}(")));
    if client { Kind::Reference } else { Kind::Bind }
}

/// Whether a prefilter match of one of the generic words at `start..end` of `bytes` could be
/// part of what this layer reads: a port name that is not the end of another word (`import`,
/// `Report`, `SUPPORT`), a URL whose host is followed by `:` and a digit, a flag or a call
/// followed by a number. Cheap, and only asked until one match says yes.
pub(crate) fn plausible(bytes: &[u8], start: usize, end: usize) -> bool {
    let word = &bytes[start..end];
    if word == b"://" {
        let rest = &bytes[end..bytes.len().min(end + 128)];
        let host = rest
            .iter()
            .position(|b| {
                !(b.is_ascii_alphanumeric()
                    || matches!(b, b'.' | b'-' | b'_' | b'*' | b'+' | b'@' | b'[' | b']'))
            })
            .unwrap_or(rest.len());
        return rest.get(host) == Some(&b':') && rest.get(host + 1).is_some_and(u8::is_ascii_digit);
    }
    let next_is_digit = |from: usize| {
        bytes[from.min(bytes.len())..]
            .iter()
            .take(3)
            .find(|b| !matches!(b, b' ' | b'=' | b'"' | b'\''))
            .is_some_and(u8::is_ascii_digit)
    };
    match word {
        // Python: `os.environ.get("PORT", 8000)`, `os.getenv("APP_PORT", "8000")`,
        // `environ["PORT"] or 8000`: the name read is a port's.
        b"environ" | b"getenv(" => {
            let rest = &bytes[end..bytes.len().min(end + 48)];
            return memchr::memmem::find(rest, b"PORT").is_some();
        }
        // Python's `uvicorn.run(app, port=8000)`, `socketio.run(app)`: the receivers the
        // Python detector reads without a port; any other `.run(` with a port number.
        b".run("
            if [&b"uvicorn"[..], b"socketio", b"web"]
                .iter()
                .any(|r| bytes[..start].ends_with(r)) =>
        {
            return true;
        }
        b".run(" => {
            return call_args(bytes, end, 400, true)
                .iter()
                .any(u8::is_ascii_digit);
        }
        // `EXPOSE 8000`: any number on the rest of its line.
        b"EXPOSE " => {
            let rest = &bytes[end..];
            let line = memchr::memchr(b'\n', rest).map_or(rest, |k| &rest[..k]);
            return line.iter().any(u8::is_ascii_digit);
        }
        // http4k's `asServer(Undertow(3000))`: the port inside the configuration's call.
        b"Server(" if start >= 2 && &bytes[start - 2..start] == b"as" => {
            let rest = &bytes[end..bytes.len().min(end + 40)];
            let name = rest
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            return next_is_digit(end)
                || rest.get(name) == Some(&b'(') && next_is_digit(end + name + 1);
        }
        // `HTTPServer(("", 8000), Handler)`: an address tuple.
        b"Server(" if bytes.get(end) == Some(&b'(') => {
            return call_args(bytes, end, 80, true)
                .iter()
                .any(u8::is_ascii_digit);
        }
        b"-p " | b"Server(" | b"scotty " | b"listener " | b"Warp.run " => {
            return next_is_digit(end);
        }
        // `addr: ':3002'`: a colon and digits in the quotes.
        b"addr: '" | b"addr: \"" | b"Addr: \"" | b"addr = \"" | b"addr = '" => {
            let rest = &bytes[end..bytes.len().min(end + 64)];
            let close = rest
                .iter()
                .position(|b| *b == word[word.len() - 1])
                .unwrap_or(rest.len());
            return rest[..close]
                .windows(2)
                .any(|w| w[0] == b':' && w[1].is_ascii_digit());
        }
        // `generic::SERVER_CALLS`: a number of four or five digits among the arguments.
        w if SERVER_CALLS.iter().any(|(call, _)| w == call.as_bytes()) => {
            // A name of its own: `up(`, `.up(`, not `setup(` or `backup(`.
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                return false;
            }
            return call_args(bytes, end, 120, false)
                .split(|b| !b.is_ascii_digit())
                .any(|run| (4..=5).contains(&run.len()));
        }
        // `ServerSocket(3000)`, `InetSocketAddress("0.0.0.0", 8000)`; not `WebSocket(url)`.
        b"Socket(" => {
            return call_args(bytes, end, 80, false)
                .iter()
                .any(u8::is_ascii_digit);
        }
        // `-b 0.0.0.0:8000`, `--bind :8000`.
        b"-b " | b"--bind" | b"--listen" | b"-address" | b"--addr" | b" -addr" | b" -listen"
        | b" -http" => {
            let rest = &bytes[end..bytes.len().min(end + 64)];
            let token_end = rest
                .iter()
                .skip_while(|b| matches!(b, b' ' | b'='))
                .position(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\''))
                .unwrap_or(rest.len());
            let token = &rest[..token_end.min(rest.len())];
            return token
                .windows(2)
                .any(|w| w[0] == b':' && w[1].is_ascii_digit());
        }
        // `Listen 8000`, `Listen *:80`, `addHttpListener(8000`.
        b"Listen" => {
            // `Listen = ":8000"` (a bind setting): an address on the rest of the line.
            let line = &bytes[end..bytes.len().min(end + 120)];
            let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
            if line
                .windows(2)
                .any(|w| w[0] == b':' && w[1].is_ascii_digit())
            {
                return true;
            }
            let rest = &bytes[end..bytes.len().min(end + 8)];
            let rest = rest
                .strip_prefix(b"er(")
                .or_else(|| rest.strip_prefix(b"("))
                .unwrap_or(rest);
            let first = rest.iter().find(|b| **b != b' ' && **b != b'\t');
            return first.is_some_and(|b| b.is_ascii_digit() || matches!(b, b'*' | b'[' | b':'));
        }
        _ => {}
    }
    let Some(p) = word
        .windows(4)
        .position(|w| w.eq_ignore_ascii_case(b"port"))
        .map(|i| start + i)
    else {
        return true;
    };
    let before = p.checked_sub(1).map(|i| bytes[i]);
    let name_ok = match bytes[p] {
        // `import`, `export`, `report`, `support`, `import_module`; `_port`, `.port` pass.
        b'p' => !before.is_some_and(|b| b.is_ascii_alphabetic()),
        // `IMPORT`, `REPORT`; `HTTP_PORT` passes.
        _ if bytes[p + 1] == b'O' => !before.is_some_and(|b| b.is_ascii_uppercase()),
        // `Port` with a capital is a name of its own (`Port:`) or camel case (`containerPort`).
        _ => true,
    };
    // A name that ends its line counts when upper case (`name: PORT`, its `value:` below) or
    // as the last segment of a JSON patch's path (`path: /spec/.../containerPort`).
    let segment = bytes[..p].iter().rposition(|b| !is_word_byte(*b));
    let path_end = segment.is_some_and(|k| bytes[k] == b'/');
    // The value of an entry [`named_entry`] reads (`name: PORT`, `{"name": "port", "value":
    // 8000}`, `name=port value=8000`), whose port is in a `value` beside or below it.
    let word_start = segment.map_or(0, |k| k + 1);
    let separator = bytes[..word_start]
        .iter()
        .rev()
        .take_while(|b| matches!(b, b'"' | b'\'' | b' ' | b'\t' | b':' | b'='))
        .collect::<Vec<_>>();
    let key = &bytes[..word_start - separator.len()];
    if name_ok
        && separator.iter().any(|b| matches!(b, b':' | b'='))
        && ENTRY_KEYS.iter().any(|k| key.ends_with(k.as_bytes()))
    {
        return true;
    }
    name_ok && assigned_after(bytes, p + 4, bytes[p + 1] == b'O' || path_end)
}

/// Whether what follows a port word (from `at`, the rest of its name skipped) gives it a value
/// the generic layer reads: an operator (`:`, `=`, `(`, `,`, `|`, `?`, `>`), a number, a
/// quoted label (`port "http" {`), `-forward`, or the end of the line after an upper-case name
/// (`name: PORT`, its `value:` below). Prose (`the port is`) and code that only mentions a
/// port (`port.close()`) are not.
fn assigned_after(bytes: &[u8], at: usize, upper: bool) -> bool {
    let mut i = at;
    let name_end = bytes[at..]
        .iter()
        .position(|b| !is_word_byte(*b))
        .map_or(bytes.len(), |k| at + k);
    if bytes[at..name_end].starts_with(b"-forward") {
        return true;
    }
    // `port "http" {` (HCL): the line opens a block.
    let line_end = memchr::memchr(b'\n', &bytes[name_end..]).map_or(bytes.len(), |k| name_end + k);
    if bytes[name_end..line_end].trim_ascii_end().ends_with(b"{") {
        return true;
    }
    i = i.max(name_end);
    let mut skipped = 0;
    while let Some(&b) = bytes.get(i) {
        if matches!(b, b' ' | b'\t') && i < line_end {
            i += 1;
            continue;
        }
        if matches!(b, b'"' | b'\'' | b']' | b'`') && skipped < 4 {
            i += 1;
            skipped += 1;
            continue;
        }
        return match b {
            b':' | b'=' | b'(' | b',' | b'|' | b'?' | b'>' => true,
            b'0'..=b'9' | b'"' | b'{' | b'$' => true,
            b'-' => bytes.get(i + 1) == Some(&b'>'),
            b'<' => bytes.get(i + 1) == Some(&b'-'),
            b'\n' | b'\r' => upper,
            _ => false,
        };
    }
    upper
}

/// A port number starting exactly at `at` of `text`, as a candidate.
fn number_here(text: &str, at: usize, what: &str, out: &mut Vec<Candidate>) {
    number_of_kind(Kind::Bind, text, at, what, out);
}

/// [`number_here`] for a candidate of another kind.
fn number_of_kind(kind: Kind, text: &str, at: usize, what: &str, out: &mut Vec<Candidate>) {
    out.extend(number_candidate(kind, text, at, what));
}

/// The candidate [`number_of_kind`] would add, for a caller that adjusts it first.
fn number_candidate(kind: Kind, text: &str, at: usize, what: &str) -> Option<Candidate> {
    if at >= text.len() || !text.is_char_boundary(at) {
        return None;
    }
    let (port, _) = digits_at(text, at)?;
    Some(of_kind(kind, at, port, format!("{what} port {port}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(f: fn(&str, &mut Vec<Candidate>), text: &str) -> Vec<(u16, usize)> {
        let mut out = Vec::new();
        f(text, &mut out);
        let mut got: Vec<(u16, usize)> = out
            .iter()
            .map(|c| (c.port, text[..c.offset].matches('\n').count() + 1))
            .collect();
        got.sort_unstable();
        got.dedup();
        got
    }

    #[test]
    fn port_words() {
        for w in [
            "port",
            "PORT",
            "Port",
            "http_port",
            "containerPort",
            "server.port",
            "port_value",
            "from_port",
            "internal_port",
            "HTTP_PORT",
            "ports",
            "--port",
            "sin_port",
            ":port",
        ] {
            assert!(is_port_word(w), "{w}");
        }
        for w in [
            "report",
            "import",
            "export",
            "support",
            "transport",
            "passport",
            "viewport",
            "portal",
            "port_timeout",
            "maxPorts",
            "REPORT_DIR",
            "portfolio",
            "ports_count",
        ] {
            assert!(!is_port_word(w), "{w}");
        }
    }

    #[test]
    fn haskell_binds_and_warp() {
        let text = "main = do\n  port <- maybe 8000 read <$> lookupEnv \"PORT\"\n";
        assert_eq!(ports(port_settings, text), [(8000, 2)]);
        let warp = "import Network.Wai.Handler.Warp (run)\nmain = run 3000 app\n\
                    serve = forkIO (run 3002 metrics)\n";
        assert_eq!(ports(flags_and_calls, warp), [(3000, 2), (3002, 3)]);
        // Without warp imported, `run 3000` is anything (a task, a count).
        assert_eq!(ports(flags_and_calls, "main = run 3000 app\n"), []);
        let mut out = Vec::new();
        host_pairs(
            "env = mkClientEnv mgr (BaseUrl Http \"localhost\" 8000 \"\")\n",
            &mut out,
        );
        let found: Vec<(u16, Kind)> = out.iter().map(|c| (c.port, c.kind)).collect();
        assert_eq!(found, [(8000, Kind::Reference)]);
    }

    #[test]
    fn xml_settings_and_http4k_servers() {
        let text = "<properties>\n  <liberty.var.http.port>8000</liberty.var.http.port>\n\
                    <port>3002</port>\n  <timeout>3000</timeout>\n</properties>\n\
                    <variable name=\"http.port\" defaultValue=\"3000\" />\n\
                    <property name=\"server.port\" value=\"5555\"/>\n\
                    <variable name=\"http.timeout\" value=\"8000\" />\n\
                    <entry name=\"port\" />\n";
        // (port, line)
        assert_eq!(
            ports(port_settings, text),
            [(3000, 6), (3002, 3), (5555, 7), (8000, 2)]
        );
        let text =
            "val server = app.asServer(Undertow(3000))\nJetty(8000)\nasServer(Netty(port))\n";
        assert_eq!(ports(flags_and_calls, text), [(3000, 1)]);
    }

    #[test]
    fn settings_in_many_formats() {
        let text = "port: 8000\n\"port\": 3002,\nserver.port = 3000\nset :port, 3000\n{port, 8000}\n\
                    c.ServerApp.port = 8000\nport = int(os.environ.get(\"PORT\", 8000))\n\
                    PORT = \"3000\"\nreport: 3000\ntimeout: 3000\nport_timeout: 3000\n\
                    ports: [3000, 3002]\nport: ${PORT:3002}\nversion = \"3.0.0\" # port\n";
        assert_eq!(
            ports(port_settings, text),
            [
                (3000, 3),
                (3000, 4),
                (3000, 8),
                (3000, 12),
                (3002, 2),
                (3002, 12),
                (3002, 13),
                (8000, 1),
                (8000, 5),
                (8000, 6),
                (8000, 7)
            ]
        );
    }

    #[test]
    fn blocks_and_named_entries() {
        let text = "port:\n  number: 3000\n  name: http\nvariable \"app_port\" {\n  type = number\n  default = 8000\n}\n\
                    env:\n  - name: PORT\n    value: \"3002\"\n  - name: WORKERS\n    value: \"3000\"\n";
        assert_eq!(
            ports(port_settings, text),
            [(3000, 2), (3002, 10), (8000, 6)]
        );
    }

    #[test]
    fn urls_with_any_host_but_a_public_name() {
        let text = "a http://api:8000/x b https://example.com:3000 c ws://*:3002\nhttp://host/3000 http://v:1.2\nhttp://web.test:3000\n";
        assert_eq!(ports(urls, text), [(3000, 3), (3002, 1), (8000, 1)]);
    }

    #[test]
    fn addresses_without_a_scheme() {
        let text = "targets: ['app:8000', 'worker-1:3002']\nlisten(\":8000\")\n:3000 {\n\
                    reverse_proxy app:3000\nat 10:30 ok\nimage: node:18\nratio 16:9\n\
                    kubectl port-forward svc/api 8000:3002\n.addHttpListener(3000, \"0.0.0.0\")\n";
        assert_eq!(
            ports(flags_and_calls, text),
            [
                (18, 6),
                (3000, 3),
                (3000, 4),
                (3000, 9),
                (3002, 1),
                (3002, 8),
                (8000, 1),
                (8000, 2),
                (8000, 8)
            ]
        );
    }

    #[test]
    fn a_default_given_lines_later() {
        let text = "let port: u16 = std::env::var(\"PORT\")\n    .ok()\n    .unwrap_or(8000);\n\
                    let port = env(\"PORT\");\nlet other = 3000;\n";
        assert_eq!(ports(port_settings, text), [(8000, 3)]);
    }

    #[test]
    fn flags_calls_and_directives() {
        let text = "hugo server -p 3000 --bind 0.0.0.0\ndaphne -b 0.0.0.0:8000 app\nsin_port = htons(8000);\n\
                    new ServerSocket(3000)\nserver.bind((\"\", 3002)); socket.create_connection((\"localhost\", 3000))\nListen 8000\n<VirtualHost *:8000>\n\
                    ulimit -n 30000\ntimeout 3000\nps -p $PID\n\
                    EXPOSE 8000:8000\n  config.vm.network \"forwarded_port\", guest: 3000, host: 3002, host_ip: \"127.0.0.1\"\n\
                    ExecStart=/usr/bin/node_exporter --web.listen-address=:3002 --net.mac-address=00:11:22:33:44:55\n";
        assert_eq!(
            ports(flags_and_calls, text),
            [
                (3000, 1),
                (3000, 4),
                (3000, 5),
                (3000, 12),
                (3002, 5),
                (3002, 12),
                (3002, 13),
                (8000, 2),
                (8000, 3),
                (8000, 6),
                (8000, 7),
                (8000, 11)
            ]
        );
    }

    #[test]
    fn remote_names_are_other_machines() {
        for host in [
            "api.payments.example.com",
            "suppliers.example.net",
            "user@db.example.org",
        ] {
            assert!(is_remote_name(host), "{host}");
        }
        for host in [
            "api",
            "localhost",
            "app.localhost",
            "web.test",
            "host.docker.internal",
            "api.default.svc",
            "shop.lndo.site",
            "127.0.0.1",
            "10.0.0.5",
            "my.lvh.me",
        ] {
            assert!(!is_remote_name(host), "{host}");
        }
        let text = "a = \"https://api.payments.example.com:8000/v2\"\nb = \"http://api:8000\"\nc = \"db.example.net:3000\"\nd = \"redis:3002\"\n";
        assert_eq!(ports(urls, text), [(8000, 2)]);
        assert_eq!(ports(flags_and_calls, text), [(3002, 4)]);
    }

    #[test]
    fn getters_tuples_and_directives() {
        let text = "x.listen(config().getInteger(\"http.port\", 8000))\n\
                    {port, 3002},\n\
                    ok = application:set_env(inventory, port, 3000),\n\
                    acl Safe_ports port 8000\n\
                    f(port, 3000)\n\
                    app.set('port', 3002);\n\
                    systemProperty(\"server.port\", \"8000\")\n\
                    addr := \":\" + envOr(\"PORT\", \"3000\")\n\
                    log(\"port\", name)\n";
        assert_eq!(
            ports(port_settings, text),
            [
                (3000, 3),
                (3000, 8),
                (3002, 2),
                (3002, 6),
                (8000, 1),
                (8000, 7)
            ]
        );
        let text = "listener 8000\nlistener 3002 127.0.0.1\n    _ <- forkIO $ Warp.run 3000 app\n\
                    let addr = SocketAddr::from(([127, 0, 0, 1], 3002));\n\
                    .with_http_listener(([0, 0, 0, 0], 8000))\n\
                    :dev-http {3000 \"public\"}\n\
                    .request(HttpMethod.GET, 8000, \"localhost\", \"/health\")\n\
                    v4 = [0, 0, 0, 0], other\n";
        let both = |text: &str, out: &mut Vec<Candidate>| {
            flags_and_calls(text, out);
            array_addresses(text, out);
        };
        assert_eq!(
            ports(both, text),
            [
                (3000, 3),
                (3000, 6),
                (3002, 2),
                (3002, 4),
                (8000, 1),
                (8000, 5),
                (8000, 7)
            ]
        );
        let mut out = Vec::new();
        flags_and_calls(
            ".request(HttpMethod.GET, 8000, \"localhost\", \"/\")\napp.listen(3002, \"0.0.0.0\")\n",
            &mut out,
        );
        let kinds: Vec<(u16, Kind)> = out.iter().map(|c| (c.port, c.kind)).collect();
        assert!(kinds.contains(&(8000, Kind::Reference)), "{kinds:?}");
        assert!(kinds.contains(&(3002, Kind::Bind)), "{kinds:?}");
    }

    #[test]
    fn go_flags_and_quoted_addresses() {
        let text = "\tgo run ./cmd/api -addr :8000\n./godoc -http=:3000\n\
                    addr: ':3002'\n\
                    w.Write([]byte(`{\"account\":\"a\",\"balance\":8000}`))\n\
                    {\"limit\":3000, \"port\":\"x\"}\n\
                    spawn vweb.run(&App{}, 8000)\n";
        assert_eq!(
            ports(flags_and_calls, text),
            [(3000, 2), (3002, 3), (8000, 1), (8000, 6)]
        );
        assert!(plausible(b"addr: ':3002'", 0, 7));
        assert!(!plausible(b"addr: 'db-host'", 0, 7));
    }

    #[test]
    fn servers_started_with_a_port_argument() {
        let text = "up(8000, \"0.0.0.0\", async = false)\nup(3002; async = true)\nKemal.run(3002)\n\
                    Javalin.create().start(3000)\nshelf_io.serve(handler, 'localhost', 8000)\n\
                    embeddedServer(Netty, 3002)\napp.listen(3000)\n\
                    sock.listen(1024)\ns.listen(5)\nasyncio.run(main(3000))\ntimer.start(3000)\n\
                    setup(3000)\nbackup(8000)\nrun(cmd, 3000)\nserver.listen(4096)\n";
        assert_eq!(
            ports(flags_and_calls, text),
            [
                (3000, 4),
                (3000, 7),
                (3002, 2),
                (3002, 3),
                (3002, 6),
                (8000, 1),
                (8000, 5)
            ]
        );
    }
}
