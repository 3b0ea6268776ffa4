//! `uses: blue-green` — a zero-downtime cutover of one service between two colour containers,
//! through the Docker Engine API.
//!
//! The main type is [`BlueGreen`]. A run takes the service's lock, reads which colour is live
//! from the router and the containers' labels, starts the other colour from the new image,
//! gates it on health, switches traffic (keeping the old colour as a fallback while it watches
//! the new one through the router), and then drains and stops the old colour. Any failure
//! before the switch leaves live traffic untouched; any failure after it switches back. The
//! stage's rollback, run when a later stage of the pipeline fails, switches back as well.
//! [`docker`] talks to the engine, [`health`] decides health, [`router`] moves traffic.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BoxFuture, BuiltinStage, Kind, KindOutcome, StageContext};
use crate::config::errors::ConfigError;
use crate::config::validate::Validator;
use crate::config::yaml::Node;
use crate::runner::events::{CaseResult, CaseStatus};
use crate::runner::output::OutputSink;

mod docker;
mod haproxy;
mod health;
mod router;

use docker::{Colour, Engine};
use health::{HealthSpec, Probe};
use router::{Router, SwitchSpec};

const KEYS: &[&str] = &[
    "service",
    "image",
    "port",
    "network",
    "env",
    "health",
    "switch",
    "drain",
    "watch",
    "watch-url",
    "keep-old",
    "canary",
];
const CANARY_KEYS: &[&str] = &[
    "steps",
    "interval",
    "max-error-rate",
    "max-latency",
    "min-requests",
];
const HEALTH_KEYS: &[&str] = &[
    "path",
    "expect",
    "interval",
    "timeout",
    "healthy-after",
    "unhealthy-after",
    "within",
];
const SWITCH_KEYS: &[&str] = &["nginx", "alias", "command", "haproxy"];
const HAPROXY_KEYS: &[&str] = &["socket", "backend"];
const NGINX_KEYS: &[&str] = &["upstream-file", "upstream", "container", "command"];
const ALIAS_KEYS: &[&str] = &["network", "name"];

#[derive(Debug)]
pub(crate) struct BlueGreen {
    service: String,
    image: String,
    port: u16,
    network: Option<String>,
    env: Vec<String>,
    health: HealthSpec,
    switch: SwitchSpec,
    drain: Duration,
    watch: Duration,
    watch_url: Option<String>,
    keep_old: bool,
    canary: Option<CanarySpec>,
}

/// `canary:`: the new colour's share of traffic grows step by step, each step judged on the
/// router's own counters for it.
#[derive(Debug, Clone)]
pub(crate) struct CanarySpec {
    /// Percentages of the traffic, increasing, the last 100.
    steps: Vec<u32>,
    interval: Duration,
    /// The largest share of the new colour's requests that may fail (5xx, connection or
    /// response errors).
    max_error_rate: f64,
    /// The largest average response time of the new colour.
    max_latency: Option<Duration>,
    /// Fewer requests than this in a step judge nothing: the step fails.
    min_requests: u64,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 100
}

/// The string at `n`, when it is a [`valid_name`] for Docker; `object` is what it names, as
/// in "cannot name {object[0]}" and "not a {object[1]} name".
fn named(
    n: &Node,
    v: &mut Validator<'_>,
    what: &str,
    object: [&str; 2],
    help: &str,
) -> Option<String> {
    let s = v.string(n, what)?;
    if valid_name(&s) {
        return Some(s);
    }
    v.error(
        ConfigError::new(
            format!("`{s}` cannot name {}", object[0]),
            n.span.clone(),
            format!("not a {} name", object[1]),
        )
        .help(help),
    );
    None
}

impl Kind for BlueGreen {
    const NAME: &'static str = "blue-green";

    fn validate(with: &Node, v: &mut Validator<'_>) -> Option<BlueGreen> {
        let f = v.fields(with, "`with` of `blue-green`", KEYS)?;
        let before = v.errors.len();
        let missing = |key: &str, example: &str, v: &mut Validator<'_>| {
            v.error(
                ConfigError::new(
                    format!("`blue-green` needs `{key}`"),
                    f.span.clone(),
                    format!("no `{key}`"),
                )
                .help(format!("add `{key}: {example}`")),
            );
        };
        let service = match f.get("service") {
            Some(n) => named(
                n,
                v,
                "`service`",
                ["containers", "container"],
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
            ),
            None => {
                missing("service", "web", v);
                None
            }
        };
        let image = match f.get("image") {
            Some(n) => v.string(n, "`image`"),
            None => {
                missing("image", "myorg/web:${{ GIT_SHA }}", v);
                None
            }
        };
        let port = match f.get("port") {
            Some(n) => v.uint(n, "`port`", 1, 65535).map(|p| p as u16),
            None => {
                missing("port", "8080", v);
                None
            }
        };
        let network = f.get("network").and_then(|n| {
            named(
                n,
                v,
                "`network`",
                ["a network", "network"],
                "use letters, digits, `_`, `.` and `-`",
            )
        });
        let mut env = Vec::new();
        if let Some(n) = f.get("env") {
            for (text, node) in v.string_list(n, "`env`") {
                if !text.contains('=') || text.starts_with('=') {
                    v.error(
                        ConfigError::new(
                            format!("`{text}` is not `NAME=VALUE`"),
                            node.span.clone(),
                            "no `=`",
                        )
                        .help("write each entry as `NAME=VALUE`"),
                    );
                    continue;
                }
                env.push(text);
            }
        }
        let health = Self::validate_health(f.get("health"), v);
        let switch = match f.get("switch") {
            Some(n) => Self::validate_switch(n, v, service.as_deref(), network.as_deref()),
            None => {
                missing(
                    "switch",
                    "{ nginx: { upstream-file: /etc/nginx/conf.d/web-upstream.conf } }",
                    v,
                );
                None
            }
        };
        let drain = f
            .get("drain")
            .and_then(|n| v.duration(n, "`drain`"))
            .unwrap_or(Duration::from_secs(10));
        let watch = f
            .get("watch")
            .and_then(|n| v.duration(n, "`watch`"))
            .unwrap_or(Duration::from_secs(10));
        let watch_url = f.get("watch-url").and_then(|n| {
            let s = v.string(n, "`watch-url`")?;
            if !s.starts_with("http://") {
                v.error(
                    ConfigError::new(
                        format!("`{s}` is not an `http://` URL"),
                        n.span.clone(),
                        "not http://",
                    )
                    .help("give the URL through the router, e.g. `http://127.0.0.1/healthz`"),
                );
                return None;
            }
            Some(s)
        });
        let keep_old = f
            .get("keep-old")
            .and_then(|n| v.bool(n, "`keep-old`"))
            .unwrap_or(false);
        let canary = f.get("canary").and_then(|n| Self::validate_canary(n, v));
        if let (Some(n), Some(switch)) = (f.get("canary"), &switch)
            && !matches!(switch, SwitchSpec::Haproxy { .. })
        {
            v.error(
                ConfigError::new(
                    "`canary` needs `switch: haproxy`",
                    n.span.clone(),
                    "no weights with this switch",
                )
                .help(
                    "a canary splits traffic by weight and judges it on the router's counters: \
                     HAProxy's runtime API does both without a reload; nginx would reload at \
                     every step, and each reload resets idle keep-alive connections",
                ),
            );
        }
        if v.errors.len() != before {
            return None;
        }
        Some(BlueGreen {
            service: service?,
            image: image?,
            port: port?,
            network,
            env,
            health: health?,
            switch: switch?,
            drain,
            watch,
            watch_url,
            keep_old,
            canary,
        })
    }

    fn with_schema() -> Value {
        json!({
            "description": "Settings of `uses: blue-green`: cut a service over between two colour containers.",
            "type": "object",
            "additionalProperties": false,
            "required": ["service", "image", "port", "switch"],
            "properties": {
                "service": {
                    "description": "The service; its containers are `SERVICE-blue` and `SERVICE-green`.",
                    "type": "string",
                    "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
                },
                "image": { "description": "The image of the new colour; must be on the engine (never pulled).", "type": "string" },
                "port": { "description": "The container port that serves.", "type": "integer", "minimum": 1, "maximum": 65535 },
                "network": { "description": "The Docker network the colours join (default `bridge`); created when absent.", "type": "string" },
                "env": { "description": "`NAME=VALUE` entries for the colour's environment.", "$ref": "#/definitions/stringOrList" },
                "health": {
                    "description": "How a colour proves it is healthy, before and after the switch.",
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "path": { "description": "The HTTP path probed on the colour (default `/healthz`).", "type": "string" },
                        "expect": { "description": "The status a healthy colour answers (default 200).", "type": "integer", "minimum": 100, "maximum": 599 },
                        "interval": { "description": "Time between probes (default 1s).", "$ref": "#/definitions/duration" },
                        "timeout": { "description": "How long one probe may take (default 2s).", "$ref": "#/definitions/duration" },
                        "healthy-after": { "description": "Consecutive passing probes that make a colour healthy (default 3).", "type": "integer", "minimum": 1, "maximum": 1000 },
                        "unhealthy-after": { "description": "Consecutive failing probes that make it unhealthy (default 3).", "type": "integer", "minimum": 1, "maximum": 1000 },
                        "within": { "description": "The deadline for a new colour to become healthy (default 60s).", "$ref": "#/definitions/duration" }
                    }
                },
                "switch": {
                    "description": "How traffic is switched: exactly one of `nginx`, `alias`, `command`, `haproxy`.",
                    "type": "object",
                    "additionalProperties": false,
                    "minProperties": 1,
                    "maxProperties": 1,
                    "properties": {
                        "nginx": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["upstream-file"],
                            "properties": {
                                "upstream-file": { "description": "The file holding the service's `upstream` block, included by nginx.", "type": "string" },
                                "upstream": { "description": "The upstream's name (default: the service).", "type": "string" },
                                "container": { "description": "nginx runs in this container, reached with `docker exec`.", "type": "string" },
                                "command": { "description": "The nginx invocation `-t` and `-s reload` are appended to (default `nginx`).", "$ref": "#/definitions/stringOrList" }
                            }
                        },
                        "alias": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["network"],
                            "properties": {
                                "network": { "description": "The network on which the live colour holds the alias.", "type": "string" },
                                "name": { "description": "The alias (default: the service).", "type": "string" }
                            }
                        },
                        "command": { "description": "A command that points your router at `$PORTCULLIS_BG_ADDRESS`.", "$ref": "#/definitions/stringOrList" },
                        "haproxy": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["socket"],
                            "properties": {
                                "socket": { "description": "HAProxy's runtime API: a unix socket path, or `127.0.0.1:PORT`.", "type": "string" },
                                "backend": { "description": "The backend holding the server slots `blue` and `green` (default: the service).", "type": "string" }
                            }
                        }
                    }
                },
                "canary": {
                    "description": "Move traffic to the new colour in steps, each judged on HAProxy's counters for it (needs `switch: haproxy`).",
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "steps": { "description": "Increasing percentages of the traffic (default [5, 25, 50]); 100 ends it.", "type": "array", "items": { "type": ["integer", "string"] } },
                        "interval": { "description": "How long each step lasts before it is judged (default 30s).", "$ref": "#/definitions/duration" },
                        "max-error-rate": { "description": "The largest share of failed requests (5xx, connection and response errors), e.g. `1%` (default).", "type": ["string", "number"] },
                        "max-latency": { "description": "The largest average response time HAProxy reports for the new colour.", "$ref": "#/definitions/duration" },
                        "min-requests": { "description": "A step with fewer requests fails (default 10).", "type": "integer", "minimum": 0 }
                    }
                },
                "drain": { "description": "How long the colour being left keeps serving in-flight requests (default 10s).", "$ref": "#/definitions/duration" },
                "watch": { "description": "How long the new colour is watched after the switch (default 10s).", "$ref": "#/definitions/duration" },
                "watch-url": { "description": "A URL through the router, probed during the watch.", "type": "string" },
                "keep-old": { "description": "Keep the old colour's container, stopped, for rollback (default false).", "type": "boolean" }
            }
        })
    }
}

impl BlueGreen {
    fn validate_health(node: Option<&Node>, v: &mut Validator<'_>) -> Option<HealthSpec> {
        let mut spec = HealthSpec {
            path: "/healthz".into(),
            expect: 200,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            healthy_after: 3,
            unhealthy_after: 3,
            within: Duration::from_secs(60),
        };
        let Some(node) = node else {
            return Some(spec);
        };
        let f = v.fields(node, "`health`", HEALTH_KEYS)?;
        if let Some(n) = f.get("path") {
            match v.string(n, "`health.path`") {
                Some(p) if p.starts_with('/') => spec.path = p,
                Some(p) => v.error(
                    ConfigError::new(
                        format!("`{p}` is not a path"),
                        n.span.clone(),
                        "no leading `/`",
                    )
                    .help("write the path the colour answers on, e.g. `/healthz`"),
                ),
                None => {}
            }
        }
        if let Some(n) = f.get("expect") {
            spec.expect = v
                .uint(n, "`health.expect`", 100, 599)
                .map_or(200, |e| e as u16);
        }
        if let Some(n) = f.get("interval") {
            spec.interval = v.duration(n, "`health.interval`").unwrap_or(spec.interval);
        }
        if let Some(n) = f.get("timeout") {
            spec.timeout = v.duration(n, "`health.timeout`").unwrap_or(spec.timeout);
        }
        if let Some(n) = f.get("within") {
            spec.within = v.duration(n, "`health.within`").unwrap_or(spec.within);
        }
        if let Some(n) = f.get("healthy-after") {
            spec.healthy_after = v.uint(n, "`health.healthy-after`", 1, 1000).unwrap_or(3) as u32;
        }
        if let Some(n) = f.get("unhealthy-after") {
            spec.unhealthy_after =
                v.uint(n, "`health.unhealthy-after`", 1, 1000).unwrap_or(3) as u32;
        }
        Some(spec)
    }

    fn validate_canary(node: &Node, v: &mut Validator<'_>) -> Option<CanarySpec> {
        let f = v.fields(node, "`canary`", CANARY_KEYS)?;
        let before = v.errors.len();
        let mut steps = Vec::new();
        match f.get("steps") {
            Some(n) => {
                for (text, item) in v.string_list(n, "`canary.steps`") {
                    let number = text.trim().trim_end_matches('%').trim();
                    match number.parse::<u32>() {
                        Ok(p @ 1..=100) if steps.last().is_none_or(|last| p > *last) => steps.push(p),
                        _ => v.error(
                            ConfigError::new(
                                format!("`{text}` is not a step of the canary"),
                                item.span.clone(),
                                "not a larger percentage",
                            )
                            .help("write increasing percentages of the traffic, e.g. `[5, 25, 50, 100]`"),
                        ),
                    }
                }
            }
            None => steps = vec![5, 25, 50],
        }
        if steps.last() != Some(&100) {
            steps.push(100);
        }
        let interval = f
            .get("interval")
            .and_then(|n| v.duration(n, "`canary.interval`"))
            .unwrap_or(Duration::from_secs(30));
        let max_error_rate = match f.get("max-error-rate") {
            Some(n) => {
                let text = v.string(n, "`canary.max-error-rate`").unwrap_or_default();
                let rate = match text.trim().strip_suffix('%') {
                    Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
                    None => text.trim().parse::<f64>().ok(),
                };
                match rate {
                    Some(r) if (0.0..=1.0).contains(&r) => r,
                    _ => {
                        v.error(
                            ConfigError::new(
                                format!("`{text}` is not an error rate"),
                                n.span.clone(),
                                "not between 0% and 100%",
                            )
                            .help("write a percentage, e.g. `1%`, or a fraction, e.g. `0.01`"),
                        );
                        0.0
                    }
                }
            }
            None => 0.01,
        };
        let max_latency = f
            .get("max-latency")
            .and_then(|n| v.duration(n, "`canary.max-latency`"));
        let min_requests = f
            .get("min-requests")
            .and_then(|n| v.uint(n, "`canary.min-requests`", 0, 1_000_000_000))
            .unwrap_or(10);
        (v.errors.len() == before).then_some(CanarySpec {
            steps,
            interval,
            max_error_rate,
            max_latency,
            min_requests,
        })
    }

    fn validate_switch(
        node: &Node,
        v: &mut Validator<'_>,
        service: Option<&str>,
        network: Option<&str>,
    ) -> Option<SwitchSpec> {
        let f = v.fields(node, "`switch`", SWITCH_KEYS)?;
        let chosen: Vec<_> = f.iter().collect();
        let [(method, key, value)] = chosen.as_slice() else {
            v.error(
                ConfigError::new(
                    "`switch` takes exactly one method",
                    f.span.clone(),
                    format!("{} methods", chosen.len()),
                )
                .help("choose one of `nginx`, `alias`, `command`, `haproxy`"),
            );
            return None;
        };
        match *method {
            "nginx" => {
                let n = v.fields(value, "`switch.nginx`", NGINX_KEYS)?;
                let upstream_file = match n.get("upstream-file") {
                    Some(node) => v.string(node, "`upstream-file`"),
                    None => {
                        v.error(
                            ConfigError::new(
                                "`switch.nginx` needs `upstream-file`",
                                key.span.clone(),
                                "no `upstream-file`",
                            )
                            .help(
                                "name the file your nginx configuration includes, e.g. \
                                 `upstream-file: /etc/nginx/conf.d/web-upstream.conf`",
                            ),
                        );
                        None
                    }
                };
                let upstream = n
                    .get("upstream")
                    .and_then(|node| v.string(node, "`upstream`"))
                    .or_else(|| service.map(str::to_owned))?;
                let container = n
                    .get("container")
                    .and_then(|node| v.string(node, "`container`"));
                let command = match n.get("command") {
                    Some(node) => {
                        let words = v.string_list(node, "`command`");
                        if words.is_empty() {
                            v.error(
                                ConfigError::new(
                                    "`command` is empty",
                                    node.span.clone(),
                                    "no program",
                                )
                                .help("write the nginx invocation, e.g. `[nginx, -c, /etc/nginx/nginx.conf]`"),
                            );
                        }
                        words.into_iter().map(|(w, _)| w).collect()
                    }
                    None => vec!["nginx".to_owned()],
                };
                Some(SwitchSpec::Nginx {
                    upstream_file: upstream_file?,
                    upstream,
                    container,
                    command,
                })
            }
            "alias" => {
                let a = v.fields(value, "`switch.alias`", ALIAS_KEYS)?;
                let Some(net_node) = a.get("network") else {
                    v.error(
                        ConfigError::new(
                            "`switch.alias` needs `network`",
                            key.span.clone(),
                            "no `network`",
                        )
                        .help("name the network your router reaches the service on, e.g. `network: web-live`"),
                    );
                    return None;
                };
                let alias_network = v.string(net_node, "`switch.alias.network`")?;
                if Some(alias_network.as_str()) == network {
                    v.error(
                        ConfigError::new(
                            "the alias network must differ from the service's `network`",
                            net_node.span.clone(),
                            "same network",
                        )
                        .help(
                            "a container joins a network once, with its aliases fixed: use a \
                             separate network for the live alias",
                        ),
                    );
                    return None;
                }
                let name = a
                    .get("name")
                    .and_then(|node| v.string(node, "`switch.alias.name`"))
                    .or_else(|| service.map(str::to_owned))?;
                Some(SwitchSpec::Alias {
                    network: alias_network,
                    name,
                })
            }
            "haproxy" => {
                let h = v.fields(value, "`switch.haproxy`", HAPROXY_KEYS)?;
                let Some(socket_node) = h.get("socket") else {
                    v.error(
                        ConfigError::new(
                            "`switch.haproxy` needs `socket`",
                            key.span.clone(),
                            "no `socket`",
                        )
                        .help(
                            "name HAProxy's admin socket, e.g. `socket: /run/haproxy/admin.sock`",
                        ),
                    );
                    return None;
                };
                let socket = v.string(socket_node, "`switch.haproxy.socket`")?;
                if !socket.starts_with('/') && !loopback_address(&socket) {
                    v.error(
                        ConfigError::new(
                            format!("`{socket}` is neither a socket path nor a loopback `HOST:PORT`"),
                            socket_node.span.clone(),
                            "not a runtime API address",
                        )
                        .help(
                            "HAProxy's runtime API has no authentication: give the path of its unix \
                             socket, or `127.0.0.1:PORT`",
                        ),
                    );
                    return None;
                }
                let backend = h
                    .get("backend")
                    .and_then(|node| v.string(node, "`switch.haproxy.backend`"))
                    .or_else(|| service.map(str::to_owned))?;
                Some(SwitchSpec::Haproxy { socket, backend })
            }
            _ => {
                let words = v.string_list(value, "`switch.command`");
                if words.is_empty() {
                    v.error(
                        ConfigError::new(
                            "`switch.command` is empty",
                            value.span.clone(),
                            "no program",
                        )
                        .help(
                            "write the command that points your router at `$PORTCULLIS_BG_ADDRESS`",
                        ),
                    );
                    return None;
                }
                let argv = words.into_iter().map(|(w, _)| w).collect();
                Some(SwitchSpec::Command { argv })
            }
        }
    }
}

/// `HOST:PORT` with a loopback host.
fn loopback_address(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// The settings of one cutover or rollback.
struct Resolved {
    image: String,
    env: Vec<String>,
    switch: SwitchSpec,
    watch_url: Option<String>,
}

/// What a cutover did, for the outputs.
struct Done {
    colour: String,
    container: String,
    previous: Option<Colour>,
    switch_time: Duration,
}

impl BuiltinStage for BlueGreen {
    fn describe(&self) -> String {
        let method = match &self.switch {
            SwitchSpec::Nginx { .. } => "an nginx upstream",
            SwitchSpec::Alias { .. } => "a network alias",
            SwitchSpec::Command { .. } => "a switch command",
            SwitchSpec::Haproxy { .. } => "HAProxy's runtime API",
        };
        format!(
            "cut `{}` over to {} through {method}",
            self.service, self.image
        )
    }

    fn run<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            let resolved = match self.resolve() {
                Ok(r) => r,
                Err(e) => return KindOutcome::failed(e),
            };
            let mut steps = Vec::new();
            let result = self.locked(cx, &resolved, Mode::Deploy, &mut steps).await;
            let mut details = String::new();
            let mut outcome = match result {
                Ok(done) => {
                    let deploy_time = started.elapsed();
                    cx.log
                        .line(&format!(
                            "`{}` is live on `{}`; switch took {} ms, the whole deploy {} ms",
                            resolved.image,
                            done.colour,
                            done.switch_time.as_millis(),
                            deploy_time.as_millis()
                        ))
                        .await;
                    let mut o = KindOutcome::passed();
                    o.outputs = vec![
                        ("colour".into(), done.colour),
                        ("image".into(), resolved.image.clone()),
                        ("container".into(), done.container),
                        (
                            "previous-colour".into(),
                            done.previous
                                .as_ref()
                                .map(|p| p.colour.clone())
                                .unwrap_or_default(),
                        ),
                        (
                            "previous-image".into(),
                            done.previous
                                .as_ref()
                                .map(|p| p.image.clone())
                                .unwrap_or_default(),
                        ),
                        ("switch-ms".into(), done.switch_time.as_millis().to_string()),
                        ("deploy-ms".into(), deploy_time.as_millis().to_string()),
                    ];
                    o
                }
                Err(e) => {
                    for line in e.lines() {
                        cx.log.line(line).await;
                    }
                    details = e.clone();
                    KindOutcome::failed(summary(&e))
                }
            };
            outcome.cases.push(CaseResult {
                name: format!("blue-green `{}`", self.service),
                status: match &outcome.result {
                    Ok(()) => CaseStatus::Passed,
                    Err(message) => CaseStatus::Failed {
                        message: message.clone(),
                        body: details,
                    },
                },
                duration: started.elapsed(),
                location: None,
                output: String::new(),
            });
            outcome.cases.extend(steps);
            outcome
        })
    }

    fn has_rollback(&self) -> bool {
        true
    }

    fn rollback<'a>(&'a self, cx: &'a mut StageContext) -> BoxFuture<'a, KindOutcome> {
        Box::pin(async move {
            let mine = cx.outputs.get(&cx.stage).cloned().unwrap_or_default();
            let resolved = match self.resolve() {
                Ok(r) => r,
                Err(e) => return KindOutcome::failed(e),
            };
            let get = |k: &str| mine.get(k).cloned().unwrap_or_default();
            let (deployed, previous, previous_image) =
                (get("colour"), get("previous-colour"), get("previous-image"));
            if previous.is_empty() {
                cx.log
                    .line(&format!(
                        "`{}` had no live colour before this run: there is nothing to switch \
                         back to, so `{deployed}` keeps serving",
                        self.service
                    ))
                    .await;
                return KindOutcome::passed();
            }
            let mode = Mode::Rollback {
                deployed,
                previous,
                previous_image,
            };
            match self.locked(cx, &resolved, mode, &mut Vec::new()).await {
                Ok(done) => {
                    let mut o = KindOutcome::passed();
                    o.outputs = vec![("colour".into(), done.colour)];
                    o
                }
                Err(e) => {
                    for line in e.lines() {
                        cx.log.line(line).await;
                    }
                    KindOutcome::failed(summary(&e))
                }
            }
        })
    }
}

/// The first line of a failure, for the one-line reason; the rest (health log, the container's
/// last output) is in the stage log and the JUnit case.
fn summary(failure: &str) -> String {
    let mut lines = failure.lines();
    let first = lines.next().unwrap_or_default().to_owned();
    if lines.next().is_some() {
        format!("{first} (details in the stage log)")
    } else {
        first
    }
}

enum Mode {
    Deploy,
    Rollback {
        deployed: String,
        previous: String,
        previous_image: String,
    },
}

impl BlueGreen {
    /// The settings a cutover works from.
    fn resolve(&self) -> Result<Resolved, String> {
        Ok(Resolved {
            image: self.image.clone(),
            env: self.env.clone(),
            switch: self.switch.clone(),
            watch_url: self.watch_url.clone(),
        })
    }

    /// Connects, checks, takes the service's lock, runs `mode`, and releases the lock whatever
    /// happened.
    async fn locked(
        &self,
        cx: &mut StageContext,
        resolved: &Resolved,
        mode: Mode,
        steps: &mut Vec<CaseResult>,
    ) -> Result<Done, String> {
        let engine = Engine::connect(self.network.as_deref()).await?;
        let lock_image = match &mode {
            Mode::Deploy => resolved.image.clone(),
            Mode::Rollback { previous_image, .. } => previous_image.clone(),
        };
        engine.require_image(&lock_image).await?;
        if let Some(network) = &self.network {
            engine.ensure_network(network, &self.service).await?;
        }
        if let SwitchSpec::Alias { network, .. } = &resolved.switch {
            engine.ensure_network(network, &self.service).await?;
        }
        let lock = engine.lock(&self.service, &lock_image, &cx.run_id).await?;
        cx.log
            .line(&format!("took the deploy lock of `{}`", self.service))
            .await;
        let result = match mode {
            Mode::Deploy => self.cutover(cx, &engine, resolved, steps).await,
            Mode::Rollback {
                deployed,
                previous,
                previous_image,
            } => {
                self.switch_back(cx, &engine, resolved, &deployed, &previous, &previous_image)
                    .await
            }
        };
        if let Err(e) = engine.unlock(lock).await {
            cx.log.line(&format!("warning: {e}")).await;
        }
        result
    }

    fn router<'a>(
        &'a self,
        engine: &'a Engine,
        resolved: &'a Resolved,
        env: &'a [(String, String)],
    ) -> Router<'a> {
        Router {
            spec: &resolved.switch,
            engine,
            port: self.port,
            env,
        }
    }

    fn health_url(&self, colour: &Colour) -> Result<String, String> {
        router::address(colour, self.port)
            .map(|a| format!("http://{a}{}", self.health.path))
            .ok_or_else(|| {
                format!(
                    "`{}` has no address on network `{}`",
                    colour.container,
                    self.network.as_deref().unwrap_or("bridge")
                )
            })
    }

    async fn cutover(
        &self,
        cx: &mut StageContext,
        engine: &Engine,
        resolved: &Resolved,
        steps: &mut Vec<CaseResult>,
    ) -> Result<Done, String> {
        let env = cx.env.clone();
        let router = self.router(engine, resolved, &env);
        router.check().await?;
        let colours = engine.colours(&self.service).await?;
        let snapshot = router.snapshot().await?;
        let live = router.live(&colours, snapshot.as_deref()).await?.cloned();
        if live.is_none()
            && let Some(running) = colours.iter().find(|c| c.running)
        {
            // The router points at no colour, yet one runs: replacing it could take down what
            // the router really uses (a hand-edited upstream, a wrong `upstream-file`).
            return Err(format!(
                "the router sends no traffic to a colour of `{}`, but `{}` runs; not replacing a \
                 running colour the router may still use: check the switch settings, or remove \
                 it (`docker rm -f {}`) if it serves nothing",
                self.service, running.container, running.container
            ));
        }
        let next = match live.as_ref().map(|l| l.colour.as_str()) {
            Some("blue") => "green",
            _ => "blue",
        };
        match &live {
            Some(l) => {
                cx.log
                    .line(&format!(
                        "live: `{}` ({}); starting `{next}` from `{}`",
                        l.container, l.image, resolved.image
                    ))
                    .await;
            }
            None => {
                cx.log
                    .line(&format!(
                        "no live colour of `{}` yet: first deploy; starting `{next}` from `{}`",
                        self.service, resolved.image
                    ))
                    .await;
            }
        }
        let container = engine
            .start_colour(
                &self.service,
                next,
                &resolved.image,
                resolved.env.clone(),
                &cx.run_id,
            )
            .await?;
        let cancel = cx.cancel.clone();
        let probe = Probe {
            engine,
            spec: &self.health,
            cancel: &cancel,
        };
        // Until it is healthy, the new colour is removed on any failure.
        let gated = async {
            let new = self
                .started(engine, &container, next, &resolved.image)
                .await?;
            let health_url = self.health_url(&new)?;
            probe
                .gate(&container, &health_url, &mut cx.log)
                .await
                .map_err(|e| {
                    format!(
                        "the new colour never became healthy, so live traffic was not touched \
                         and `{container}` was removed: {e}"
                    )
                })?;
            Ok::<_, String>((new, health_url))
        }
        .await;
        let (new, health_url) = match gated {
            Ok(g) => g,
            Err(e) => {
                let _ = engine.remove(&container).await;
                return Err(e);
            }
        };
        cx.log
            .line(&format!("`{container}` is healthy at {health_url}"))
            .await;

        if let (Some(spec), Some(api), Some(old)) = (&self.canary, router.haproxy(), &live) {
            let target = router::address(&new, self.port)
                .ok_or_else(|| format!("`{container}` has no address on its network"))?;
            if let Err(e) = self.canary(cx, &api, spec, &new, old, &target, steps).await {
                drain(self.drain, &mut cx.log).await;
                let _ = engine.remove(&container).await;
                return Err(format!(
                    "the canary failed, so all traffic is back on `{}` and `{container}` was \
                     removed: {e}",
                    old.container
                ));
            }
        }
        let switch_started = Instant::now();
        if let Err(e) = router.switch(&new, live.as_ref(), &mut cx.log).await {
            let _ = engine.remove(&container).await;
            return Err(format!(
                "the switch failed, so live traffic stays on the old colour and `{container}` \
                 was removed: {e}"
            ));
        }
        let switch_time = switch_started.elapsed();

        let mut urls = vec![health_url];
        urls.extend(resolved.watch_url.clone());
        cx.log
            .line(&format!(
                "watching `{container}` for {}{}",
                crate::config::duration::format(self.watch),
                if resolved.watch_url.is_none() {
                    " (no `watch-url`: the colour is probed directly, not through the router)"
                } else {
                    ""
                }
            ))
            .await;
        let watched = match probe
            .watch(&container, &urls, self.watch, &mut cx.log)
            .await
        {
            // The old colour leaves the upstream only once the new one has proven itself.
            Ok(()) => router.settle(&new, &mut cx.log).await,
            Err(e) => Err(e),
        };
        if let Err(e) = watched {
            return Err(self
                .abandon(
                    cx,
                    engine,
                    &router,
                    &new,
                    live.as_ref(),
                    snapshot.as_deref(),
                    &e,
                )
                .await);
        }

        if let Some(old) = &live {
            self.retire(cx, engine, old).await;
        }
        Ok(Done {
            colour: next.to_owned(),
            container,
            previous: live,
            switch_time,
        })
    }

    /// Moves traffic to `new` in the canary's steps (HAProxy weights, no reload), judging each
    /// step below 100% on HAProxy's counters for `new` after its interval; one JUnit case per
    /// step, with its figures. A step that fails (or an interrupt) puts all traffic back on
    /// `old` and parks `new`'s slot. Passing every step leaves `new` with the traffic.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, every value is needed"
    )]
    async fn canary(
        &self,
        cx: &mut StageContext,
        api: &haproxy::Runtime<'_>,
        spec: &CanarySpec,
        new: &Colour,
        old: &Colour,
        target: &str,
        steps: &mut Vec<CaseResult>,
    ) -> Result<(), String> {
        api.point(&new.colour, target, 0).await?;
        for &share in spec.steps.iter().filter(|s| **s < haproxy::FULL) {
            let started = Instant::now();
            let judged = async {
                let before = api.counters(&new.colour).await?;
                api.weigh(&new.colour, share).await?;
                api.weigh(&old.colour, haproxy::FULL - share).await?;
                cx.log
                    .line(&format!(
                        "canary: {share}% of the traffic on `{}` for {}",
                        new.container,
                        crate::config::duration::format(spec.interval)
                    ))
                    .await;
                tokio::select! {
                    () = tokio::time::sleep(spec.interval) => {}
                    () = cx.cancel.cancelled() => return Err("interrupted".to_owned()),
                }
                let seen = api.counters(&new.colour).await?.since(&before);
                judge(spec, &seen)
            }
            .await;
            let status = match &judged {
                Ok(figures) => {
                    cx.log.line(&format!("canary {share}%: {figures}")).await;
                    CaseStatus::Passed
                }
                Err(why) => CaseStatus::Failed {
                    message: why.clone(),
                    body: String::new(),
                },
            };
            steps.push(CaseResult {
                name: format!("canary {share}% `{}`", self.service),
                status,
                duration: started.elapsed(),
                location: None,
                output: judged.clone().unwrap_or_default(),
            });
            if let Err(why) = judged {
                cx.log.line(&format!("canary {share}% failed: {why}")).await;
                api.weigh(&old.colour, haproxy::FULL).await?;
                api.park(&new.colour).await?;
                cx.log
                    .line(&format!(
                        "haproxy: all traffic back on `{}`, `{}` parked",
                        old.container, new.container
                    ))
                    .await;
                return Err(format!("at {share}%: {why}"));
            }
        }
        Ok(())
    }

    /// The started container as a [`Colour`], with its address.
    async fn started(
        &self,
        engine: &Engine,
        container: &str,
        colour: &str,
        image: &str,
    ) -> Result<Colour, String> {
        let info = engine
            .inspect(container)
            .await?
            .ok_or_else(|| format!("`{container}` disappeared right after it started"))?;
        Ok(Colour {
            colour: colour.to_owned(),
            container: container.to_owned(),
            image: image.to_owned(),
            running: true,
            ip: engine.ip_of(&info),
        })
    }

    /// The new colour failed after the switch: traffic goes back to the old colour (or the
    /// router's previous state on a first deploy), and the new colour is removed after `drain`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, every value is needed"
    )]
    async fn abandon(
        &self,
        cx: &mut StageContext,
        engine: &Engine,
        router: &Router<'_>,
        new: &Colour,
        old: Option<&Colour>,
        snapshot: Option<&str>,
        why: &str,
    ) -> String {
        let back = match old {
            Some(old) => router.switch(old, None, &mut cx.log).await,
            None => router.restore(snapshot, new).await,
        };
        let to = old.map_or("the router's previous state".to_owned(), |o| {
            format!("`{}`", o.container)
        });
        match back {
            Ok(()) => {
                cx.log.line(&format!("switched back to {to}")).await;
                drain(self.drain, &mut cx.log).await;
                let _ = engine.remove(&new.container).await;
                format!(
                    "`{}` failed after the switch; traffic is back on {to} and `{}` was removed: {why}",
                    new.colour, new.container
                )
            }
            Err(e) => format!(
                "`{}` failed after the switch: {why}\nswitching back to {to} failed too: {e}; \
                 `{}` was left running",
                new.colour, new.container
            ),
        }
    }

    /// After the drain, the old colour is stopped; it is kept (stopped) for instant rollback
    /// with `keep-old`, else removed (a rollback then recreates it from its image).
    async fn retire(&self, cx: &mut StageContext, engine: &Engine, old: &Colour) {
        drain(self.drain, &mut cx.log).await;
        let result = if self.keep_old {
            engine.stop(&old.container, 10).await
        } else {
            match engine.stop(&old.container, 10).await {
                Ok(()) => engine.remove(&old.container).await,
                Err(e) => Err(e),
            }
        };
        let line = match result {
            Ok(()) if self.keep_old => {
                format!("stopped `{}`; kept for rollback (keep-old)", old.container)
            }
            Ok(()) => format!("stopped and removed `{}`", old.container),
            Err(e) => format!("warning: {e}"),
        };
        cx.log.line(&line).await;
    }

    /// The pipeline's rollback: the previous colour serves again.
    async fn switch_back(
        &self,
        cx: &mut StageContext,
        engine: &Engine,
        resolved: &Resolved,
        deployed: &str,
        previous: &str,
        previous_image: &str,
    ) -> Result<Done, String> {
        let env = cx.env.clone();
        let router = self.router(engine, resolved, &env);
        router.check().await?;
        let colours = engine.colours(&self.service).await?;
        let snapshot = router.snapshot().await?;
        let live = router.live(&colours, snapshot.as_deref()).await?.cloned();
        let Some(live) = live.filter(|l| l.colour == deployed) else {
            return Err(format!(
                "the live colour of `{}` is no longer `{deployed}` (another deploy ran since); \
                 not switching",
                self.service
            ));
        };
        let old_name = format!("{}-{previous}", self.service);
        let kept = colours.iter().find(|c| c.container == old_name);
        let container = match kept {
            Some(c) if c.running => c.container.clone(),
            Some(c) => {
                cx.log
                    .line(&format!("starting the kept `{}`", c.container))
                    .await;
                engine.start(&c.container).await?;
                c.container.clone()
            }
            None => {
                cx.log
                    .line(&format!(
                        "`{old_name}` was removed; recreating it from `{previous_image}`"
                    ))
                    .await;
                engine
                    .start_colour(
                        &self.service,
                        previous,
                        previous_image,
                        resolved.env.clone(),
                        &cx.run_id,
                    )
                    .await?
            }
        };
        let old = self
            .started(engine, &container, previous, previous_image)
            .await?;
        let probe = Probe {
            engine,
            spec: &self.health,
            cancel: &cx.cancel,
        };
        let url = self.health_url(&old)?;
        probe
            .gate(&container, &url, &mut cx.log)
            .await
            .map_err(|e| {
                format!("the previous colour is not healthy, so traffic stays on `{deployed}`: {e}")
            })?;
        let switch_started = Instant::now();
        router.switch(&old, Some(&live), &mut cx.log).await?;
        router.settle(&old, &mut cx.log).await?;
        let switch_time = switch_started.elapsed();
        cx.log
            .line(&format!(
                "switched `{}` back to `{container}`; switch took {} ms",
                self.service,
                switch_time.as_millis()
            ))
            .await;
        drain(self.drain, &mut cx.log).await;
        engine.remove(&live.container).await?;
        cx.log.line(&format!("removed `{}`", live.container)).await;
        Ok(Done {
            colour: previous.to_owned(),
            container,
            previous: Some(live),
            switch_time,
        })
    }
}

/// A canary step's verdict on the new colour's counters: its figures, or why it fails.
fn judge(spec: &CanarySpec, seen: &haproxy::Counters) -> Result<String, String> {
    let rate = if seen.requests == 0 {
        0.0
    } else {
        seen.errors as f64 / seen.requests as f64
    };
    let figures = format!(
        "{} requests, {} failed ({:.2}%), average response {} ms",
        seen.requests,
        seen.errors,
        rate * 100.0,
        seen.rtime_ms
    );
    if seen.requests < spec.min_requests {
        return Err(format!(
            "{figures}: fewer than the {} requests (`min-requests`) a step needs to be judged",
            spec.min_requests
        ));
    }
    if rate > spec.max_error_rate {
        return Err(format!(
            "{figures}: more than the {:.2}% `max-error-rate`",
            spec.max_error_rate * 100.0
        ));
    }
    if let Some(max) = spec.max_latency
        && u128::from(seen.rtime_ms) > max.as_millis()
    {
        return Err(format!(
            "{figures}: slower than the {} ms `max-latency`",
            max.as_millis()
        ));
    }
    Ok(figures)
}

/// Gives in-flight requests on the colour being left `drain` to finish. Not cut short by a
/// cancel: stopping a colour that still serves would fail those requests.
async fn drain(time: Duration, log: &mut OutputSink) {
    if !time.is_zero() {
        log.line(&format!(
            "draining for {}",
            crate::config::duration::format(time)
        ))
        .await;
        tokio::time::sleep(time).await;
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn container_names() {
        for ok in ["web", "web-1", "a.b_c", "9x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-web", "we b", "web/1", "wéb"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
