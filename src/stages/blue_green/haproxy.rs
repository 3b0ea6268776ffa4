//! HAProxy's runtime API: the `switch: haproxy` router. Traffic moves by re-addressing and
//! re-weighting two server slots of a backend, never by a reload, so no client connection is
//! closed by a switch.
//!
//! The backend holds one server slot per colour, named `blue` and `green`:
//!
//! ```text
//! backend web
//!     server blue  127.0.0.1:1 disabled
//!     server green 127.0.0.1:1 disabled
//! ```
//!
//! A slot is pointed at a colour's container with `set server BACKEND/SLOT addr IP port P`,
//! given traffic with `weight` and `state ready`, and parked with `state maint`. An optional
//! third slot, `fallback`, declared `backup`, holds the old colour while the new one is
//! watched: HAProxy sends it the traffic if its health checks mark the new colour down. The slots are
//! the source of truth for the live colour: the running slot with weight that addresses a
//! colour's container. Every write is read back (`show servers state`), so a command HAProxy
//! refused is an error, not a silent no-op.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one runtime API command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The weight of a colour that takes all traffic; canary steps are percentages of it.
pub(crate) const FULL: u32 = 100;

/// One server slot, as `show servers state` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) address: String,
    /// `srv_op_state`: 2 is running.
    pub(crate) running: bool,
    /// `srv_admin_state` has the forced-maintenance bit.
    pub(crate) maint: bool,
    pub(crate) weight: u32,
}

impl Slot {
    /// Whether HAProxy sends new requests to it.
    pub(crate) fn serving(&self) -> bool {
        self.running && !self.maint && self.weight > 0
    }
}

/// The backend's slots: one per colour, and the optional `fallback`.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    pub(crate) colours: [Slot; 2],
    pub(crate) fallback: Option<Slot>,
}

/// The name of the optional backup slot.
pub(crate) const FALLBACK: &str = "fallback";

/// A server's counters from `show stat`, for the canary's analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Counters {
    /// Responses, by any status, plus requests that got none (connection or response errors).
    pub(crate) requests: u64,
    /// 5xx answers, connection errors and response errors.
    pub(crate) errors: u64,
    /// Average response time over the server's last 1024 requests, in milliseconds.
    pub(crate) rtime_ms: u64,
}

impl Counters {
    /// What happened between `before` and `self` (the average response time is `self`'s).
    pub(crate) fn since(&self, before: &Counters) -> Counters {
        Counters {
            requests: self.requests.saturating_sub(before.requests),
            errors: self.errors.saturating_sub(before.errors),
            rtime_ms: self.rtime_ms,
        }
    }
}

/// The runtime API of one HAProxy backend.
pub(crate) struct Runtime<'a> {
    /// A unix socket path, or `HOST:PORT` on loopback.
    pub(crate) socket: &'a str,
    pub(crate) backend: &'a str,
}

impl Runtime<'_> {
    /// Sends one command and returns HAProxy's answer.
    async fn command(&self, command: &str) -> Result<String, String> {
        let exchange = async {
            let mut answer = Vec::new();
            if self.socket.starts_with('/') {
                let mut stream = tokio::net::UnixStream::connect(self.socket).await?;
                stream.write_all(format!("{command}\n").as_bytes()).await?;
                stream.read_to_end(&mut answer).await?;
            } else {
                let mut stream = tokio::net::TcpStream::connect(self.socket).await?;
                stream.write_all(format!("{command}\n").as_bytes()).await?;
                stream.read_to_end(&mut answer).await?;
            }
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(format!(
                "cannot reach HAProxy's runtime API at `{}`: {e}; check `stats socket` in the \
                 HAProxy configuration (`level admin`)",
                self.socket
            )),
            Err(_) => Err(format!(
                "HAProxy's runtime API at `{}` did not answer `{command}` within {}s",
                self.socket,
                COMMAND_TIMEOUT.as_secs()
            )),
        }
    }

    /// Sends a `set server` command; anything but HAProxy's acknowledgements is an error.
    async fn set(&self, slot: &str, what: &str) -> Result<(), String> {
        let command = format!("set server {}/{slot} {what}", self.backend);
        let answer = self.command(&command).await?;
        let answer = answer.trim();
        let acknowledged = answer.is_empty()
            || answer.starts_with("IP changed")
            || answer.starts_with("no need to change")
            || answer.starts_with("port changed");
        if acknowledged {
            Ok(())
        } else {
            Err(format!("HAProxy refused `{command}`: {answer}"))
        }
    }

    /// The `blue` and `green` slots of the backend, and `fallback` when it has one; a missing
    /// colour slot is an error that says what the configuration needs.
    pub(crate) async fn slots(&self) -> Result<Slots, String> {
        let answer = self
            .command(&format!("show servers state {}", self.backend))
            .await?;
        if answer.contains("Can't find backend") {
            return Err(format!(
                "HAProxy has no backend `{}`; {}",
                self.backend,
                self.needed()
            ));
        }
        let mut found: [Option<Slot>; 3] = [None, None, None];
        for line in answer.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight
            // ... srv_port is the 19th field.
            if f.len() < 19 || f[1] != self.backend {
                continue;
            }
            let index = match f[3] {
                "blue" => 0,
                "green" => 1,
                FALLBACK => 2,
                _ => continue,
            };
            let admin: u32 = f[6].parse().unwrap_or(0);
            found[index] = Some(Slot {
                address: format!("{}:{}", f[4], f[18]),
                running: f[5] == "2",
                maint: admin & 0x01 != 0,
                weight: f[7].parse().unwrap_or(0),
            });
        }
        match found {
            [Some(blue), Some(green), fallback] => Ok(Slots {
                colours: [blue, green],
                fallback,
            }),
            _ => Err(format!(
                "HAProxy's backend `{}` lacks the server slots `blue` and `green`; {}",
                self.backend,
                self.needed()
            )),
        }
    }

    fn needed(&self) -> String {
        format!(
            "add to its configuration `backend {} / server blue 127.0.0.1:1 disabled / server \
             green 127.0.0.1:1 disabled` (portcullis re-addresses the slots) and a `stats socket \
             ... level admin`",
            self.backend
        )
    }

    /// The slot named `name` (`blue`, `green` or `fallback`).
    pub(crate) async fn slot(&self, name: &str) -> Result<Slot, String> {
        let Slots {
            colours: [blue, green],
            fallback,
        } = self.slots().await?;
        match name {
            "blue" => Ok(blue),
            "green" => Ok(green),
            _ => fallback.ok_or_else(|| {
                format!("HAProxy's backend `{}` has no slot `{name}`", self.backend)
            }),
        }
    }

    /// Points `colour`'s slot at `address` (`IP:PORT`) with `weight`, ready for traffic, and
    /// reads it back.
    pub(crate) async fn point(
        &self,
        colour: &str,
        address: &str,
        weight: u32,
    ) -> Result<(), String> {
        let (ip, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("`{address}` is not IP:PORT"))?;
        self.set(colour, &format!("addr {ip} port {port}")).await?;
        self.set(colour, &format!("weight {weight}")).await?;
        self.set(colour, "state ready").await?;
        let slot = self.slot(colour).await?;
        if slot.address != address || slot.weight != weight || slot.maint {
            return Err(format!(
                "HAProxy's slot `{}/{colour}` reads {slot:?} after being set to {address} with \
                 weight {weight}",
                self.backend
            ));
        }
        Ok(())
    }

    /// Sets `colour`'s weight (its share is the weight over the sum of both).
    pub(crate) async fn weigh(&self, colour: &str, weight: u32) -> Result<(), String> {
        self.set(colour, &format!("weight {weight}")).await?;
        let slot = self.slot(colour).await?;
        if slot.weight == weight {
            Ok(())
        } else {
            Err(format!(
                "HAProxy's slot `{}/{colour}` has weight {} after being set to {weight}",
                self.backend, slot.weight
            ))
        }
    }

    /// Takes `colour` out of the backend: no new requests; those it serves finish.
    pub(crate) async fn park(&self, colour: &str) -> Result<(), String> {
        self.set(colour, "weight 0").await?;
        self.set(colour, "state maint").await
    }

    /// Takes `colour` out of the backend, and the `fallback` slot with it when there is one:
    /// the state after a switch is settled, or undone.
    pub(crate) async fn retire(&self, colour: &str) -> Result<(), String> {
        self.park(colour).await?;
        if self.slots().await?.fallback.is_some() {
            self.park(FALLBACK).await?;
        }
        Ok(())
    }

    /// `colour`'s counters, from `show stat` of the backend.
    pub(crate) async fn counters(&self, colour: &str) -> Result<Counters, String> {
        let answer = self.command("show stat").await?;
        parse_stat(&answer, self.backend, colour).ok_or_else(|| {
            format!(
                "HAProxy's `show stat` has no row for `{}/{colour}`",
                self.backend
            )
        })
    }
}

/// The counters of `backend/server` in `show stat`'s CSV, found by the header's names.
pub(crate) fn parse_stat(csv: &str, backend: &str, server: &str) -> Option<Counters> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let row: Vec<&str> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&backend) && f.get(1) == Some(&server))?;
    let value = |name: &str| -> u64 {
        column(name)
            .and_then(|i| row.get(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let answered: u64 = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ]
    .iter()
    .map(|c| value(c))
    .sum();
    let failed = value("econ") + value("eresp");
    Some(Counters {
        requests: answered + failed,
        errors: value("hrsp_5xx") + failed,
        rtime_ms: value("rtime"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_rows_are_read_by_header() {
        let csv = "# pxname,svname,econ,eresp,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,rtime,\n\
                   web,blue,0,0,0,90,0,0,0,0,3,\n\
                   web,green,1,2,0,40,1,2,7,0,12,\n";
        let green = parse_stat(csv, "web", "green").expect("row");
        assert_eq!(
            green,
            Counters {
                requests: 53,
                errors: 10,
                rtime_ms: 12
            }
        );
        let before = Counters {
            requests: 50,
            errors: 9,
            rtime_ms: 1,
        };
        assert_eq!(
            green.since(&before),
            Counters {
                requests: 3,
                errors: 1,
                rtime_ms: 12
            }
        );
        assert_eq!(parse_stat(csv, "web", "red"), None);
        assert_eq!(parse_stat("", "web", "green"), None);
    }
}
