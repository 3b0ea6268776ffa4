//! YAML files that declare ports: Docker Compose, Kubernetes manifests and GitHub Actions
//! workflows, read through the same span-keeping YAML parser as pipeline files so every
//! finding points at the digits in the file.

use super::command::{self, Context};
use super::text::{is_loopback_host, parse_port_value, port_number};
use super::{Candidate, EnvFiles, Kind, Scope};
use crate::config::yaml::{self, Node, NodeKind};

/// One `ports:` entry in short syntax: `[IP:][HOST:]CONTAINER[/PROTO]`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) ip: Option<String>,
    /// Host port or range (first, last) and the byte offset of its text in the entry.
    pub(crate) host: Option<(u16, u16, usize)>,
    pub(crate) host_var: Option<String>,
    /// A host side that is a variable with no default (`${HTTP_PORT}:8000`): its name and
    /// offset. The container side is still read.
    pub(crate) host_unset: Option<(String, usize)>,
    pub(crate) container: Option<(u16, u16, usize)>,
}

/// Reads a short-syntax port mapping; `None` when it cannot be read (reported by the caller
/// as a note: a mapping the scanner cannot verify is not silently passed).
pub(crate) fn parse_mapping(entry: &str) -> Option<Mapping> {
    let body = entry.split_once('/').map_or(entry, |(b, _)| b);
    // Split at `:` outside `[...]` and `${...}`.
    let mut parts: Vec<(usize, &str)> = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, b) in body.bytes().enumerate() {
        match b {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b':' if depth == 0 => {
                parts.push((start, &body[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push((start, &body[start..]));
    let range = |(at, text): (usize, &str)| -> Option<(u16, u16, usize, Option<String>)> {
        if text.starts_with("${") {
            let pv = parse_port_value(text)?;
            return Some((pv.port, pv.port, at + pv.at, pv.overridable));
        }
        match text.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port_number(a)?, port_number(b)?);
                (a <= b).then_some((a, b, at, None))
            }
            None => Some((port_number(text)?, port_number(text)?, at, None)),
        }
    };
    let n = parts.len();
    let container = range(parts[n - 1])?;
    let (host, ip) = match n {
        1 => (None, None),
        2 => (Some(parts[0]), None),
        _ => {
            let ip_end = parts[n - 2].0 - 1;
            (Some(parts[n - 2]), Some(body[..ip_end].to_owned()))
        }
    };
    let mut host_unset = None;
    let (host, host_var) = match host {
        Some((_, "")) | None => (None, None),
        Some(h) => match range(h) {
            Some((a, b, at, var)) => (Some((a, b, at)), var),
            None => {
                let name = h.1.strip_prefix("${")?.strip_suffix('}')?;
                let ok = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return None;
                }
                host_unset = Some((name.to_owned(), h.0));
                (None, None)
            }
        },
    };
    Some(Mapping {
        ip,
        host,
        host_var,
        host_unset,
        container: Some((container.0, container.1, container.2)),
    })
}

/// Parses every document of a YAML file; a file that does not parse gives nothing (it is not
/// this scanner's place to report YAML errors in other tools' files).
fn documents(text: &str) -> Vec<Node> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" && offset > start {
            docs.extend(parse_at(&text[start..offset], start));
            start = offset + line.len();
        } else if line.trim_end() == "---" {
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.extend(parse_at(&text[start..], start));
    docs
}

fn parse_at(doc: &str, base: usize) -> Option<Node> {
    let mut node = yaml::parse(doc).ok()?;
    if base > 0 {
        shift(&mut node, base);
    }
    Some(node)
}

fn shift(node: &mut Node, by: usize) {
    node.span = node.span.start + by..node.span.end + by;
    match &mut node.kind {
        NodeKind::Scalar { .. } => {}
        NodeKind::Seq(items) => items.iter_mut().for_each(|n| shift(n, by)),
        NodeKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            shift(k, by);
            shift(v, by);
        }),
    }
}

fn get<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn entries(node: &Node) -> &[(Node, Node)] {
    match &node.kind {
        NodeKind::Map(entries) => entries,
        _ => &[],
    }
}

fn items(node: &Node) -> &[Node] {
    match &node.kind {
        NodeKind::Seq(items) => items,
        _ => &[],
    }
}

/// Byte offset in the file where a scalar's value text starts (after an opening quote).
fn value_start(text: &str, node: &Node) -> usize {
    let start = node.span.start;
    match text.as_bytes().get(start) {
        Some(b'"' | b'\'') => start + 1,
        _ => start,
    }
}

/// Where `needle` is written inside a scalar node, as a file offset; falls back to the
/// node's start.
fn locate(text: &str, node: &Node, needle: &str) -> usize {
    let span = node.span.start..node.span.end.min(text.len());
    text.get(span.clone())
        .and_then(|raw| raw.find(needle))
        .map_or(value_start(text, node), |i| span.start + i)
}

/// Scans a command given as a string or as an exec-form list.
fn command_node(text: &str, node: &Node, cx: &Context, env: &EnvFiles, out: &mut Vec<Candidate>) {
    let loaded = |v: &str| env.has(v);
    match &node.kind {
        NodeKind::Seq(items) => {
            let pieces: Vec<(usize, &str)> = items
                .iter()
                .filter_map(|n| n.as_str().map(|s| (value_start(text, n), s)))
                .collect();
            command::scan_pieces(&pieces, cx, &loaded, out);
        }
        _ => {
            let span = node.span.start..node.span.end.min(text.len());
            if let Some(raw) = text.get(span.clone()) {
                command::scan(raw, span.start, cx, &loaded, out);
            }
        }
    }
}

/// `docker-compose.yml`, `compose.yaml` and their overrides.
pub(crate) fn compose(text: &str, env: &EnvFiles, out: &mut Vec<Candidate>) {
    for doc in documents(text) {
        let Some(services) = get(&doc, "services") else {
            continue;
        };
        for (name, service) in entries(services) {
            let name = name.as_str().unwrap_or("?");
            let host_network = get(service, "network_mode").and_then(Node::as_str) == Some("host");
            let inside = if host_network {
                Scope::Host
            } else {
                Scope::Container
            };
            if let Some(ports) = get(service, "ports") {
                for entry in items(ports) {
                    compose_port(
                        text,
                        &format!("compose service `{name}`"),
                        entry,
                        host_network,
                        env,
                        out,
                    );
                }
            }
            if let Some(expose) = get(service, "expose") {
                for entry in items(expose) {
                    let Some(value) = entry.as_str() else {
                        continue;
                    };
                    if let Some(m) = parse_mapping(value)
                        && let Some((p, e, _)) = m.container
                    {
                        out.push(Candidate {
                            offset: locate(text, entry, &p.to_string()),
                            port: p,
                            end: e,
                            kind: Kind::Bind,
                            scope: inside,
                            loopback: false,
                            what: format!(
                                "compose service `{name}` exposes port {p} to its network"
                            ),
                            dead: None,
                        });
                    }
                }
            }
            let port_env = environment_port(text, service, "environment", inside, name, out);
            let cx = Context {
                scope: inside,
                port_env_set: port_env,
                loads_env_files: false,
            };
            for key in ["command", "entrypoint"] {
                if let Some(cmd) = get(service, key) {
                    command_node(text, cmd, &cx, env, out);
                }
            }
        }
    }
}

/// `environment:` as a map or a `KEY=VALUE` list; reports `PORT` and says whether it is set.
fn environment_port(
    text: &str,
    service: &Node,
    key: &str,
    scope: Scope,
    name: &str,
    out: &mut Vec<Candidate>,
) -> bool {
    let Some(envs) = get(service, key) else {
        return false;
    };
    let mut set = false;
    let mut report = |node: &Node, value: &str| {
        set = true;
        if let Some(pv) = parse_port_value(value) {
            out.push(Candidate {
                offset: locate(text, node, &pv.port.to_string()),
                port: pv.port,
                end: pv.port,
                kind: Kind::Env,
                scope,
                loopback: false,
                what: format!("`PORT={}` in the environment of `{name}`", pv.port),
                dead: None,
            });
        }
    };
    for (k, v) in entries(envs) {
        if k.as_str() == Some("PORT")
            && let Some(value) = v.as_str()
        {
            report(v, value);
        }
    }
    for item in items(envs) {
        if let Some(value) = item.as_str().and_then(|s| s.strip_prefix("PORT=")) {
            report(item, value);
        }
    }
    set
}

fn compose_port(
    text: &str,
    service: &str,
    entry: &Node,
    host_network: bool,
    env: &EnvFiles,
    out: &mut Vec<Candidate>,
) {
    if let NodeKind::Map(_) = entry.kind {
        // Long syntax.
        let published = get(entry, "published");
        let target = get(entry, "target");
        let ip = get(entry, "host_ip").and_then(Node::as_str);
        let loopback = ip.is_some_and(is_loopback_host);
        if let Some((node, value)) = published.and_then(|n| n.as_str().map(|s| (n, s)))
            && let Some(m) = parse_mapping(value)
            && let Some((port, end, at)) = m.container
        {
            let var = parse_port_value(value).and_then(|pv| pv.overridable);
            let offset = value_start(text, node) + at;
            out.push(publish(
                service,
                (port, end, offset),
                var.as_deref(),
                loopback,
                env,
            ));
            // The container side too, when it differs: a forbidden port is forbidden wherever
            // it appears.
            if let Some(t) = target.and_then(|n| n.as_str().map(|s| (n, s)))
                && let Some(cport) = port_number(t.1)
                && cport != port
            {
                out.push(container_port(
                    (cport, cport, locate(text, t.0, t.1)),
                    host_network,
                    format!("{service} listens on container port {cport} (published on host port {port})"),
                ));
            }
        } else if let Some(t) = target.and_then(|n| n.as_str().map(|s| (n, s)))
            && let Some(port) = port_number(t.1)
        {
            out.push(container_port(
                (port, port, locate(text, t.0, t.1)),
                host_network,
                format!("{service} listens on container port {port}"),
            ));
        }
        return;
    }
    let Some(value) = entry.as_str() else { return };
    let base = value_start(text, entry);
    let Some(m) = parse_mapping(value) else {
        out.push(unverified(
            base,
            format!("{service}: cannot read the port mapping `{value}`"),
            "the mapping could not be read, so it was not verified",
        ));
        return;
    };
    let loopback = m.ip.as_deref().is_some_and(is_loopback_host);
    match (m.host, host_network) {
        (Some((port, end, at)), _) => {
            out.push(publish(
                service,
                (port, end, base + at),
                m.host_var.as_deref(),
                loopback,
                env,
            ));
            // The container side too, when it differs: a forbidden port is forbidden wherever
            // it appears.
            if let Some((cport, cend, cat)) = m.container.filter(|c| c.0 != port) {
                out.push(container_port(
                    (cport, cend, base + cat),
                    host_network,
                    format!("{service} listens on container port {cport} (published on host port {port})"),
                ));
            }
        }
        (None, host_network) => {
            if let Some((var, at)) = &m.host_unset {
                let resolved = env.get(var).and_then(|(v, _, _)| port_number(v));
                match resolved {
                    Some(port) => out.push(publish(
                        service,
                        (port, port, base + at),
                        Some(var),
                        loopback,
                        env,
                    )),
                    None => out.push(unverified(
                        base + at,
                        format!(
                            "{service}: the host port `${{{var}}}` has no default and no value in .env"
                        ),
                        "its value is only known when compose runs",
                    )),
                }
            }
            let host = match &m.host_unset {
                Some((var, _)) => format!("on host port `${{{var}}}`"),
                None => "on a random host port".to_owned(),
            };
            if let Some((port, end, at)) = m.container {
                out.push(container_port(
                    (port, end, base + at),
                    host_network,
                    format!("{service} publishes container port {port} {host}"),
                ));
            }
        }
    }
}

/// A published port the scan cannot know (reported as a note to check by hand).
fn unverified(offset: usize, what: String, why: &str) -> Candidate {
    Candidate {
        offset,
        port: 0,
        end: 0,
        kind: Kind::Publish,
        scope: Scope::Host,
        loopback: false,
        what,
        dead: Some(why.into()),
    }
}

/// A port a service listens on inside its container (on the host with `network_mode: host`).
fn container_port(
    (port, end, offset): (u16, u16, usize),
    host_network: bool,
    what: String,
) -> Candidate {
    let scope = if host_network {
        Scope::Host
    } else {
        Scope::Container
    };
    Candidate {
        offset,
        port,
        end,
        kind: Kind::Bind,
        scope,
        loopback: false,
        what,
        dead: None,
    }
}

/// A published host port; a `${VAR:-default}` is resolved from the project's `.env` the way
/// Compose does, so a dead default is not reported in place of the real port.
fn publish(
    service: &str,
    (mut port, mut end, offset): (u16, u16, usize),
    var: Option<&str>,
    loopback: bool,
    env: &EnvFiles,
) -> Candidate {
    let mut what = format!("{service} publishes host port {port}");
    if let Some(var) = var
        && let Some((value, file, line)) = env.get(var)
        && let Some(p) = port_number(value)
    {
        (port, end) = (p, p);
        what = format!("{service} publishes host port {port} (`{var}` from {file}:{line})");
    }
    Candidate {
        offset,
        port,
        end,
        kind: Kind::Publish,
        scope: Scope::Host,
        loopback,
        what,
        dead: None,
    }
}

/// Kubernetes manifests (documents with `apiVersion` and `kind`).
pub(crate) fn kubernetes(text: &str, out: &mut Vec<Candidate>) -> bool {
    let mut any = false;
    for doc in documents(text) {
        if get(&doc, "apiVersion").is_none() || get(&doc, "kind").is_none() {
            continue;
        }
        any = true;
        let kind = get(&doc, "kind")
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_owned();
        let exposed_service = get(&doc, "spec")
            .and_then(|s| get(s, "type"))
            .and_then(Node::as_str)
            // A NodePort service's `port` is its cluster IP's: only `nodePort` reaches the host.
            .is_some_and(|t| t == "LoadBalancer");
        let host_network = find_bool(&doc, "hostNetwork");
        k8s_walk(text, &doc, &kind, exposed_service, host_network, "", out);
    }
    any
}

fn find_bool(node: &Node, key: &str) -> bool {
    match &node.kind {
        NodeKind::Map(entries) => entries.iter().any(|(k, v)| {
            (k.as_str() == Some(key) && v.as_str() == Some("true")) || find_bool(v, key)
        }),
        NodeKind::Seq(items) => items.iter().any(|n| find_bool(n, key)),
        NodeKind::Scalar { .. } => false,
    }
}

fn k8s_walk(
    text: &str,
    node: &Node,
    kind: &str,
    exposed: bool,
    host_network: bool,
    parent: &str,
    out: &mut Vec<Candidate>,
) {
    match &node.kind {
        NodeKind::Seq(items) => {
            for n in items {
                k8s_walk(text, n, kind, exposed, host_network, parent, out);
            }
        }
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                let key = k.as_str().unwrap_or("");
                let port = v.as_str().and_then(port_number);
                let emit = |out: &mut Vec<Candidate>, k: Kind, scope: Scope, what: String| {
                    if let (Some(p), Some(s)) = (port, v.as_str()) {
                        out.push(Candidate {
                            offset: locate(text, v, s),
                            port: p,
                            end: p,
                            kind: k,
                            scope,
                            loopback: false,
                            what,
                            dead: None,
                        });
                    }
                };
                match key {
                    "containerPort" => {
                        let scope = if host_network {
                            Scope::Host
                        } else {
                            Scope::Container
                        };
                        emit(
                            out,
                            Kind::Bind,
                            scope,
                            format!("{kind} container listens on port {}", port.unwrap_or(0)),
                        );
                    }
                    "hostPort" => emit(
                        out,
                        Kind::Publish,
                        Scope::Host,
                        format!(
                            "{kind} hostPort {} opens a port on the node",
                            port.unwrap_or(0)
                        ),
                    ),
                    "nodePort" => emit(
                        out,
                        Kind::Publish,
                        Scope::Host,
                        format!(
                            "{kind} nodePort {} opens a port on every node",
                            port.unwrap_or(0)
                        ),
                    ),
                    "targetPort" => emit(
                        out,
                        Kind::Reference,
                        Scope::Container,
                        format!("{kind} targets container port {}", port.unwrap_or(0)),
                    ),
                    "port" if parent == "ports" && kind == "Service" => {
                        let scope = if exposed {
                            Scope::Host
                        } else {
                            Scope::Container
                        };
                        emit(
                            out,
                            Kind::Publish,
                            scope,
                            format!("Service port {}", port.unwrap_or(0)),
                        );
                    }
                    "port" if matches!(parent, "httpGet" | "tcpSocket" | "grpc") => {
                        emit(
                            out,
                            Kind::Reference,
                            Scope::Container,
                            format!("{kind} probe checks port {}", port.unwrap_or(0)),
                        );
                    }
                    "command" | "args" => {
                        let cx = Context {
                            scope: if host_network {
                                Scope::Host
                            } else {
                                Scope::Container
                            },
                            port_env_set: false,
                            loads_env_files: false,
                        };
                        command_node(text, v, &cx, &EnvFiles::default(), out);
                    }
                    "env" => {
                        for item in items(v) {
                            if get(item, "name").and_then(Node::as_str) == Some("PORT")
                                && let Some(value) = get(item, "value")
                                && let Some(s) = value.as_str()
                                && let Some(p) = port_number(s)
                            {
                                out.push(Candidate {
                                    offset: locate(text, value, s),
                                    port: p,
                                    end: p,
                                    kind: Kind::Env,
                                    scope: Scope::Container,
                                    loopback: false,
                                    what: format!(
                                        "`PORT={p}` in the {kind}'s container environment"
                                    ),
                                    dead: None,
                                });
                            }
                        }
                    }
                    _ => k8s_walk(text, v, kind, exposed, host_network, key, out),
                }
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

/// GitHub Actions workflows: service containers' published ports, `run:` steps and `PORT` in
/// `env:`; all run on the runner, so host scope.
pub(crate) fn workflow(text: &str, out: &mut Vec<Candidate>) {
    for doc in documents(text) {
        let Some(jobs) = get(&doc, "jobs") else {
            continue;
        };
        let mut port_env = env_port(text, get(&doc, "env"), out);
        for (_, job) in entries(jobs) {
            port_env |= env_port(text, get(job, "env"), out);
            if let Some(services) = get(job, "services") {
                for (name, service) in entries(services) {
                    let name = name.as_str().unwrap_or("?");
                    for entry in get(service, "ports").map(items).unwrap_or(&[]) {
                        compose_port(
                            text,
                            &format!("service container `{name}`"),
                            entry,
                            false,
                            &EnvFiles::default(),
                            out,
                        );
                    }
                }
            }
            for step in get(job, "steps").map(items).unwrap_or(&[]) {
                let step_env = env_port(text, get(step, "env"), out);
                if let Some(run) = get(step, "run") {
                    let cx = Context {
                        scope: Scope::Host,
                        port_env_set: port_env || step_env,
                        loads_env_files: false,
                    };
                    command_node(text, run, &cx, &EnvFiles::default(), out);
                }
            }
        }
    }
}

fn env_port(text: &str, env: Option<&Node>, out: &mut Vec<Candidate>) -> bool {
    let Some(env) = env else { return false };
    let mut set = false;
    for (k, v) in entries(env) {
        if k.as_str() == Some("PORT") {
            set = true;
            if let Some(s) = v.as_str()
                && let Some(p) = port_number(s)
            {
                out.push(Candidate {
                    offset: locate(text, v, s),
                    port: p,
                    end: p,
                    kind: Kind::Env,
                    scope: Scope::Host,
                    loopback: false,
                    what: format!("`PORT: {p}` in a workflow's environment"),
                    dead: None,
                });
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_mappings() {
        let m = |s: &str| parse_mapping(s).map(|m| (m.ip, m.host, m.container));
        assert_eq!(m("3000"), Some((None, None, Some((3000, 3000, 0)))));
        assert_eq!(
            m("8000:8000"),
            Some((None, Some((8000, 8000, 0)), Some((8000, 8000, 5))))
        );
        assert_eq!(
            m("127.0.0.1:8001:8001/tcp"),
            Some((
                Some("127.0.0.1".into()),
                Some((8001, 8001, 10)),
                Some((8001, 8001, 15))
            ))
        );
        assert_eq!(
            m("9090-9091:8080-8081"),
            Some((None, Some((9090, 9091, 0)), Some((8080, 8081, 10))))
        );
        assert_eq!(
            m("127.0.0.1::80"),
            Some((Some("127.0.0.1".into()), None, Some((80, 80, 11))))
        );
        assert_eq!(
            m("[::1]:6001:6001"),
            Some((
                Some("[::1]".into()),
                Some((6001, 6001, 6)),
                Some((6001, 6001, 11))
            ))
        );
        assert_eq!(m("::1:6000:6000").map(|t| t.0), Some(Some("::1".into())));
        assert_eq!(m("6060:6060/udp").map(|t| t.1), Some(Some((6060, 6060, 0))));
        assert_eq!(
            m("${WEB_PORT:-3001}:3001").map(|t| t.1),
            Some(Some((3001, 3001, 12)))
        );
        // A host side that is a variable with no default: the container side is still read.
        let unset = parse_mapping("${KONG_HTTP_PORT}:8000/tcp").expect("readable");
        assert_eq!(
            (unset.host, unset.host_unset, unset.container),
            (
                None,
                Some(("KONG_HTTP_PORT".into(), 0)),
                Some((8000, 8000, 18))
            )
        );
        assert_eq!(m("${A B}:8000"), None);
        assert_eq!(m("127.0.0.1:99999:80"), None);
        assert_eq!(m("localhost:x:80"), None);
    }
}
