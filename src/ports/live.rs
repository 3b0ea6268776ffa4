//! Live mode: what listens on this machine now, and what running containers publish.
//!
//! Listening sockets come from `/proc/net/{tcp,tcp6,udp,udp6}`, parsed by hand into
//! [`Socket`]s. All four tables are read because a dual-stack socket (bound to `::` without
//! `IPV6_V6ONLY`) serves IPv4 too but has a row only in `tcp6`/`udp6`. The tables describe the
//! network namespace of portcullis itself, so listeners inside containers are not seen; what a
//! container exposes on the host is asked from the Docker engine instead ([`docker_published`]),
//! because with `userland-proxy: false` a published port has no listening socket at all, only
//! a DNAT rule.
//!
//! Owners are found by scanning `/proc/*/fd` for `socket:[INODE]` links: best effort, since
//! another user's descriptors are unreadable without privilege; such a socket is still
//! reported, with its uid. [`evaluate`] turns what was found into findings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::{Exposure, Finding, Policy, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        })
    }
}

/// A listening TCP socket, or a bound unconnected UDP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Socket {
    pub(crate) proto: Proto,
    pub(crate) addr: IpAddr,
    pub(crate) port: u16,
    pub(crate) inode: u64,
    pub(crate) uid: u32,
}

/// TCP_LISTEN in `include/net/tcp_states.h`.
const TCP_LISTEN: &str = "0A";
/// TCP_CLOSE: the state of a UDP socket that is bound but not connected.
const UDP_UNCONNECTED: &str = "07";

/// Parses one `/proc/net/{tcp,tcp6,udp,udp6}` table, keeping only listeners. Malformed rows
/// are skipped: the kernel's format is fixed, and one odd row must not hide the others.
pub(crate) fn parse_table(text: &str, proto: Proto) -> Vec<Socket> {
    let wanted = match proto {
        Proto::Tcp => TCP_LISTEN,
        Proto::Udp => UDP_UNCONNECTED,
    };
    text.lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (local, remote, state) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
            if !state.eq_ignore_ascii_case(wanted) {
                return None;
            }
            let (addr, port) = parse_address(local)?;
            // A UDP socket with a remote address is connected: a client, not a listener.
            let (_, remote_port) = parse_address(remote)?;
            if port == 0 || (proto == Proto::Udp && remote_port != 0) {
                return None;
            }
            Some(Socket {
                proto,
                addr,
                port,
                uid: fields.get(7)?.parse().ok()?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// `0100007F:15B3` -> 127.0.0.1:5555. The address is printed as 32-bit words in host byte
/// order (`%08X`), so each word's bytes are reversed on little-endian machines; the port is
/// already in host order.
fn parse_address(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(native(u32::from_str_radix(addr, 16).ok()?))),
        32 => {
            let mut octets = [0u8; 16];
            for (i, chunk) in octets.chunks_mut(4).enumerate() {
                let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&native(w));
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// The bytes of a word as the kernel stored them: it printed the in-memory word as a host
/// integer, so the memory order is the native byte order of that integer.
fn native(w: u32) -> [u8; 4] {
    w.to_ne_bytes()
}

/// Reads the four tables of portcullis's own network namespace. A missing table (IPv6
/// disabled) is simply empty.
pub(crate) fn read_sockets() -> Vec<Socket> {
    let tables = [
        ("tcp", Proto::Tcp),
        ("tcp6", Proto::Tcp),
        ("udp", Proto::Udp),
        ("udp6", Proto::Udp),
    ];
    tables
        .iter()
        .flat_map(|(name, proto)| {
            std::fs::read_to_string(format!("/proc/net/{name}"))
                .map(|text| parse_table(&text, *proto))
                .unwrap_or_default()
        })
        .collect()
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Owner {
    pub(crate) pid: u32,
    pub(crate) name: String,
}

/// Maps each of `inodes` to the processes holding it, by reading every `/proc/PID/fd` link.
/// Processes that vanish or cannot be read are skipped.
pub(crate) fn socket_owners(inodes: &BTreeSet<u64>) -> BTreeMap<u64, Vec<Owner>> {
    let mut owners: BTreeMap<u64, Vec<Owner>> = BTreeMap::new();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return owners;
    };
    for entry in proc_dir.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let mut name = None;
        for fd in fds.filter_map(Result::ok) {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if !inodes.contains(&inode) {
                continue;
            }
            let name = name
                .get_or_insert_with(|| {
                    std::fs::read_to_string(entry.path().join("comm"))
                        .map(|c| c.trim_end().to_owned())
                        .unwrap_or_else(|_| "?".to_owned())
                })
                .clone();
            let list = owners.entry(inode).or_default();
            let owner = Owner { pid, name };
            if !list.contains(&owner) {
                list.push(owner);
            }
        }
    }
    owners
}

/// A port a running container publishes on the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Published {
    pub(crate) port: u16,
    pub(crate) proto: Proto,
    pub(crate) container: String,
    /// The host address it is published on (`0.0.0.0`, `::`, `127.0.0.1`).
    pub(crate) ip: String,
}

/// What the container engine said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Docker {
    Reachable(Vec<Published>),
    /// No engine, or it did not answer: why, for the note.
    Unreachable(String),
}

/// Asks the Docker engine (or Podman's compatible API) which ports running containers
/// publish: `$DOCKER_HOST` when it is a `unix://` address, else `/var/run/docker.sock`.
pub(crate) fn docker_published() -> Docker {
    let socket = match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => match host.strip_prefix("unix://") {
            Some(path) => PathBuf::from(path),
            None => {
                return Docker::Unreachable(format!(
                    "`DOCKER_HOST={host}` is not a `unix://` socket, the only kind portcullis asks"
                ));
            }
        },
        _ => PathBuf::from("/var/run/docker.sock"),
    };
    let body = match http_get(&socket, "/containers/json") {
        Ok(body) => body,
        Err(why) => return Docker::Unreachable(format!("`{}`: {why}", socket.display())),
    };
    match parse_containers(&body) {
        Ok(published) => Docker::Reachable(published),
        Err(why) => Docker::Unreachable(format!("`{}`: {why}", socket.display())),
    }
}

/// A minimal HTTP/1.0 GET over a unix socket: one request, the body read to the end.
fn http_get(socket: &std::path::Path, path: &str) -> Result<String, String> {
    let timeout = Some(Duration::from_secs(5));
    let mut stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(timeout)
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("the engine answered `{status}`"));
    }
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if chunked {
        dechunk(body).ok_or_else(|| "malformed chunked answer".to_owned())
    } else {
        Ok(body.to_owned())
    }
}

/// Decodes a chunked body (engines answer HTTP/1.0 plainly, but a proxy might not).
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// Parses `GET /containers/json`: each container's `Names` and `Ports[]` with a `PublicPort`.
/// The same port published on `0.0.0.0` and `::` is one entry.
pub(crate) fn parse_containers(json: &str) -> Result<Vec<Published>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable container list: {e}"))?;
    let containers = value.as_array().ok_or("the container list is not a list")?;
    let mut found = BTreeSet::new();
    for c in containers {
        let name = c["Names"]
            .as_array()
            .and_then(|n| n.first())
            .and_then(|n| n.as_str())
            .map(|n| n.trim_start_matches('/').to_owned())
            .or_else(|| c["Id"].as_str().map(|id| id.chars().take(12).collect()))
            .unwrap_or_else(|| "?".to_owned());
        for p in c["Ports"].as_array().into_iter().flatten() {
            let Some(port) = p["PublicPort"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let proto = if p["Type"].as_str() == Some("udp") {
                Proto::Udp
            } else {
                Proto::Tcp
            };
            let ip = p["IP"].as_str().unwrap_or("0.0.0.0").to_owned();
            found.insert((port, proto, name.clone(), ip));
        }
    }
    // One entry per container, port and protocol; keep the first address (sorted: `0.0.0.0`
    // before `::`), which is what an operator would write.
    let mut seen = BTreeSet::new();
    Ok(found
        .into_iter()
        .filter(|(port, proto, name, _)| seen.insert((*port, *proto, name.clone())))
        .map(|(port, proto, container, ip)| Published {
            port,
            proto,
            container,
            ip,
        })
        .collect())
}

/// Whether an address only accepts connections from this machine.
fn is_loopback(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

fn is_loopback_text(ip: &str) -> bool {
    ip.parse::<IpAddr>().is_ok_and(|a| is_loopback(&a))
}

fn owners_text(owners: &[Owner], uid: u32) -> String {
    if owners.is_empty() {
        return format!("owner unknown (uid {uid}; its process cannot be read)");
    }
    owners
        .iter()
        .map(|o| format!("pid {} ({})", o.pid, o.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn socket_text(proto: Proto, addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{proto} {a}:{port}"),
        IpAddr::V6(a) => format!("{proto} [{a}]:{port}"),
    }
}

/// Judges what was found (see README, "Port law (live mode)"):
/// - a forbidden port is a violation on any address, loopback included, TCP or UDP, listened
///   on or published;
/// - an unlisted port (neither allowed nor forbidden) is a violation when it is reachable from
///   other machines (a wildcard or non-loopback address, or a published port not bound to
///   loopback), and a note when it listens on loopback only;
/// - a required port with no listener (any protocol and address) and no published port is a
///   violation.
///
/// Several rows for one socket address (`SO_REUSEPORT`, forked workers) make one finding.
pub(crate) fn evaluate(
    policy: &Policy,
    sockets: &[Socket],
    owners: &BTreeMap<u64, Vec<Owner>>,
    docker: &Docker,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut grouped: BTreeMap<(u16, Proto, IpAddr), (BTreeSet<Owner>, u32)> = BTreeMap::new();
    for s in sockets {
        let entry = grouped
            .entry((s.port, s.proto, s.addr))
            .or_insert_with(|| (BTreeSet::new(), s.uid));
        entry
            .0
            .extend(owners.get(&s.inode).into_iter().flatten().cloned());
    }
    for ((port, proto, addr), (owners, uid)) in &grouped {
        let owners: Vec<Owner> = owners.iter().cloned().collect();
        let what = format!(
            "{} is listening: {}",
            socket_text(*proto, addr, *port),
            owners_text(&owners, *uid)
        );
        if let Some(f) = judge(policy, *port, "listen", is_loopback(addr), what) {
            findings.push(f);
        }
    }
    let published = match docker {
        Docker::Reachable(published) => published.as_slice(),
        Docker::Unreachable(why) => {
            findings.push(Finding::live(
                0,
                "publish",
                Severity::Note,
                "docker",
                format!("Docker not reachable: published ports not checked ({why})"),
            ));
            &[]
        }
    };
    for p in published {
        let what = format!(
            "{} port {} is published on `{}` by container `{}`",
            p.proto, p.port, p.ip, p.container
        );
        if let Some(f) = judge(policy, p.port, "publish", is_loopback_text(&p.ip), what) {
            findings.push(f);
        }
    }
    for &port in &policy.require_listening {
        let listening = grouped.keys().any(|(p, _, _)| *p == port);
        if !listening && !published.iter().any(|p| p.port == port) {
            findings.push(Finding::live(
                port,
                "listen",
                Severity::Violation,
                "not-listening",
                format!(
                    "port {port} must be listening, but nothing listens on it and no container publishes it"
                ),
            ));
        }
    }
    findings
        .sort_by(|a, b| (a.severity, a.port, &a.message).cmp(&(b.severity, b.port, &b.message)));
    findings
}

fn judge(
    policy: &Policy,
    port: u16,
    kind: &'static str,
    loopback: bool,
    what: String,
) -> Option<Finding> {
    let exposure = if loopback {
        Exposure::Loopback("listens on")
    } else {
        Exposure::Exposed
    };
    let (port, severity, rule, message) = policy.judge(port..=port, exposure, &what)?;
    Some(Finding::live(port, kind, severity, rule, message))
}

/// The whole live check: this machine's sockets with their owners and Docker's published
/// ports, judged against the policy.
pub(crate) fn check(policy: &Policy) -> Vec<Finding> {
    let sockets = read_sockets();
    let inodes: BTreeSet<u64> = sockets.iter().map(|s| s.inode).collect();
    let owners = socket_owners(&inodes);
    evaluate(policy, &sockets, &owners, &docker_published())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:15B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12432 1 0000000000000000 100 0 0 10 0
   1: 0100007F:15B3 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 12999 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F40 0100007F:D2F2 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3 0000000000000000
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0BB9 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 22001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 22002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 22003 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0BBA 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 33001 2 0000000000000000 0
  101: 0100007F:CE80 0100007F:0BBA 01 00000000:00000000 00:00000000 00000000  1000        0 33002 2 0000000000000000 0
  102: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 33003 2 0000000000000000 0
";

    fn sock(proto: Proto, addr: &str, port: u16, inode: u64, uid: u32) -> Socket {
        Socket {
            proto,
            addr: addr.parse().expect("address"),
            port,
            inode,
            uid,
        }
    }

    #[test]
    fn tcp_keeps_listeners_only() {
        assert_eq!(
            parse_table(TCP, Proto::Tcp),
            [sock(Proto::Tcp, "127.0.0.1", 5555, 12432, 1000)]
        );
    }

    #[test]
    fn tcp6_dual_stack_loopback_and_mapped() {
        assert_eq!(
            parse_table(TCP6, Proto::Tcp),
            [
                sock(Proto::Tcp, "::", 3001, 22001, 1000),
                sock(Proto::Tcp, "::1", 8000, 22002, 1000),
                sock(Proto::Tcp, "::ffff:127.0.0.1", 3000, 22003, 1000),
            ]
        );
    }

    #[test]
    fn udp_keeps_bound_unconnected_sockets() {
        assert_eq!(
            parse_table(UDP, Proto::Udp),
            [
                sock(Proto::Udp, "0.0.0.0", 3002, 33001, 1000),
                sock(Proto::Udp, "127.0.0.53", 53, 33003, 991),
            ]
        );
    }

    #[test]
    fn malformed_rows_are_skipped() {
        let text = "header\n 0: zz:15B3 00000000:0000 0A 0 0 0 0 0 1\n 1: 0100007F 0A\n";
        assert!(parse_table(text, Proto::Tcp).is_empty());
    }

    #[test]
    fn containers_published_ports_are_deduplicated() {
        let json = r#"[{"Id":"abc","Names":["/web"],"Ports":[
            {"IP":"0.0.0.0","PrivatePort":3000,"PublicPort":8000,"Type":"tcp"},
            {"IP":"::","PrivatePort":3000,"PublicPort":8000,"Type":"tcp"},
            {"PrivatePort":9000,"Type":"tcp"},
            {"IP":"127.0.0.1","PrivatePort":53,"PublicPort":5353,"Type":"udp"}]},
            {"Id":"0123456789abcdef","Names":[],"Ports":[]}]"#;
        let published = parse_containers(json).expect("parse");
        assert_eq!(
            published,
            [
                Published {
                    port: 5353,
                    proto: Proto::Udp,
                    container: "web".into(),
                    ip: "127.0.0.1".into()
                },
                Published {
                    port: 8000,
                    proto: Proto::Tcp,
                    container: "web".into(),
                    ip: "0.0.0.0".into()
                },
            ]
        );
        assert!(parse_containers("{}").is_err());
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk("3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n").as_deref(),
            Some("[1,2]")
        );
        assert_eq!(dechunk("zz\r\n"), None);
    }

    fn policy() -> Policy {
        Policy {
            allow: [(3001, Some("frontend".into())), (5555, None)].into(),
            forbid: [3000, 8000].into(),
            require_listening: [3001, 5555].into(),
            ..Policy::default()
        }
    }

    #[test]
    fn evaluation_follows_the_policy() {
        let sockets = [
            sock(Proto::Tcp, "::", 3001, 1, 1000),
            sock(Proto::Tcp, "::", 3001, 2, 1000),
            sock(Proto::Tcp, "::ffff:127.0.0.1", 3000, 3, 1000),
            sock(Proto::Udp, "0.0.0.0", 3002, 4, 1000),
            sock(Proto::Udp, "127.0.0.53", 53, 5, 991),
        ];
        let owners = BTreeMap::from([
            (
                1,
                vec![Owner {
                    pid: 10,
                    name: "node".into(),
                }],
            ),
            (
                3,
                vec![Owner {
                    pid: 11,
                    name: "next-server".into(),
                }],
            ),
        ]);
        let docker = Docker::Reachable(vec![Published {
            port: 8000,
            proto: Proto::Tcp,
            container: "api".into(),
            ip: "0.0.0.0".into(),
        }]);
        let found = evaluate(&policy(), &sockets, &owners, &docker);
        let summary: Vec<(Severity, u16, &str, &str)> = found
            .iter()
            .map(|f| (f.severity, f.port, f.rule, f.kind))
            .collect();
        assert_eq!(
            summary,
            [
                (Severity::Violation, 3000, "forbidden", "listen"),
                (Severity::Violation, 3002, "unlisted", "listen"),
                (Severity::Violation, 5555, "not-listening", "listen"),
                (Severity::Violation, 8000, "forbidden", "publish"),
                (Severity::Note, 53, "unlisted", "listen"),
            ]
        );
        assert!(
            found[0].message.contains("pid 11 (next-server)"),
            "{found:?}"
        );
        assert!(
            found[1].message.contains("owner unknown (uid 1000"),
            "{found:?}"
        );
        assert!(found[3].message.contains("container `api`"), "{found:?}");
    }

    #[test]
    fn a_published_port_satisfies_a_requirement_and_docker_absence_is_a_note() {
        let docker = Docker::Reachable(vec![Published {
            port: 5555,
            proto: Proto::Tcp,
            container: "api".into(),
            ip: "0.0.0.0".into(),
        }]);
        let sockets = [sock(Proto::Tcp, "0.0.0.0", 3001, 1, 0)];
        assert!(evaluate(&policy(), &sockets, &BTreeMap::new(), &docker).is_empty());
        let found = evaluate(
            &policy(),
            &sockets,
            &BTreeMap::new(),
            &Docker::Unreachable("no socket".into()),
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (found[1].severity, found[1].rule),
            (Severity::Note, "docker")
        );
        assert!(
            found[1]
                .message
                .starts_with("Docker not reachable: published ports not checked")
        );
    }

    #[test]
    fn findings_serialise_with_the_documented_fields() {
        let f = Finding::live(3000, "listen", Severity::Violation, "forbidden", "m".into());
        assert_eq!(
            serde_json::to_string(&f).expect("json"),
            r#"{"file":null,"line":null,"column":null,"port":3000,"kind":"listen","scope":"host","severity":"violation","rule":"forbidden","message":"m"}"#
        );
    }
}
