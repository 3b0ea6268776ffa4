//! The Docker Engine side of `blue-green`: the colour containers, their labels, and the
//! per-service deploy lock.
//!
//! The main type is [`Engine`], a negotiated bollard client. Everything the stage knows about a
//! service's colours it reads back from the engine (labels and state), so any machine that
//! reaches the engine can run the next deploy. The lock is a created-never-started container
//! with a fixed name: creating a container whose name exists fails with 409 Conflict, which
//! makes the engine itself the arbiter between two runners, even on two machines.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

/// Label keys; every container the stage creates carries `SERVICE`.
pub(crate) const SERVICE: &str = "dev.portcullis.blue-green.service";
pub(crate) const COLOUR: &str = "dev.portcullis.blue-green.colour";
pub(crate) const IMAGE: &str = "dev.portcullis.blue-green.image";
pub(crate) const RUN_ID: &str = "dev.portcullis.blue-green.run-id";
const LOCK: &str = "dev.portcullis.blue-green.lock";
const LOCK_HOST: &str = "dev.portcullis.blue-green.lock-host";
const LOCK_PID: &str = "dev.portcullis.blue-green.lock-pid";
const LOCK_PID_START: &str = "dev.portcullis.blue-green.lock-pid-start";
const LOCK_SINCE: &str = "dev.portcullis.blue-green.lock-since";

/// A colour container as the engine reports it.
#[derive(Debug, Clone)]
pub(crate) struct Colour {
    pub(crate) colour: String,
    pub(crate) container: String,
    pub(crate) image: String,
    pub(crate) running: bool,
    /// Its address on the service's network, when it has one (a stopped container has none).
    pub(crate) ip: Option<String>,
}

pub(crate) struct Engine {
    pub(crate) docker: Docker,
    /// The network colours join; `bridge` (Docker's default) when the stage names none.
    pub(crate) network: String,
}

pub(crate) fn is_status(e: &Error, status: u16) -> bool {
    matches!(e, Error::DockerResponseServerError { status_code, .. } if *status_code == status)
}

/// The engine's own message for a failed request, without bollard's wrapping.
pub(crate) fn message(e: &Error) -> String {
    match e {
        Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

impl Engine {
    /// Connects as the `docker` CLI would (`DOCKER_HOST`, else the local socket) and agrees on
    /// an API version the engine speaks: bollard's default is newer than older engines accept.
    pub(crate) async fn connect(network: Option<&str>) -> Result<Engine, String> {
        let where_ = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
        let unreachable = |e: Error| {
            format!(
                "cannot reach the Docker engine at `{where_}`: {e}; nothing was changed \
                 (is the daemon running, and may this user use its socket?)"
            )
        };
        let docker = Docker::connect_with_local_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Engine {
            docker,
            network: network.unwrap_or("bridge").to_owned(),
        })
    }

    /// Fails unless `image` is on this engine: the stage never pulls.
    pub(crate) async fn require_image(&self, image: &str) -> Result<(), String> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Err(format!(
                "image `{image}` is not on the Docker engine; blue-green never pulls, so build \
                 or load it in an earlier stage"
            )),
            Err(e) => Err(format!("cannot inspect image `{image}`: {}", message(&e))),
        }
    }

    /// Creates the service's network when it does not exist yet.
    pub(crate) async fn ensure_network(&self, name: &str, service: &str) -> Result<(), String> {
        match self.docker.inspect_network(name, None).await {
            Ok(_) => return Ok(()),
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(format!("cannot inspect network `{name}`: {}", message(&e))),
        }
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([(SERVICE.to_owned(), service.to_owned())])),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Another runner created it in between.
            Err(e) if is_status(&e, 409) => Ok(()),
            Err(e) => Err(format!("cannot create network `{name}`: {}", message(&e))),
        }
    }

    /// The service's colour containers, running or not.
    pub(crate) async fn colours(&self, service: &str) -> Result<Vec<Colour>, String> {
        let filters = HashMap::from([("label", vec![format!("{SERVICE}={service}")])]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| format!("cannot list the containers of `{service}`: {}", message(&e)))?;
        let mut colours = Vec::new();
        for summary in list {
            let labels = summary.labels.unwrap_or_default();
            let Some(colour) = labels.get(COLOUR) else {
                continue;
            };
            let Some(id) = summary.id else { continue };
            let Some(info) = self.inspect(&id).await? else {
                continue;
            };
            colours.push(Colour {
                colour: colour.clone(),
                container: container_name(&info).unwrap_or(id),
                image: labels.get(IMAGE).cloned().unwrap_or_default(),
                running: info.state.as_ref().and_then(|s| s.running).unwrap_or(false),
                ip: self.ip_of(&info),
            });
        }
        Ok(colours)
    }

    pub(crate) async fn inspect(
        &self,
        container: &str,
    ) -> Result<Option<ContainerInspectResponse>, String> {
        match self.docker.inspect_container(container, None).await {
            Ok(info) => Ok(Some(info)),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(format!("cannot inspect `{container}`: {}", message(&e))),
        }
    }

    pub(crate) fn ip_of(&self, info: &ContainerInspectResponse) -> Option<String> {
        endpoint(info, &self.network)?
            .ip_address
            .clone()
            .filter(|ip| !ip.is_empty())
    }

    /// Creates and starts one colour; returns its container name.
    pub(crate) async fn start_colour(
        &self,
        service: &str,
        colour: &str,
        image: &str,
        env: Vec<String>,
        run_id: &str,
    ) -> Result<String, String> {
        let name = format!("{service}-{colour}");
        self.remove(&name).await?;
        let mut env = env;
        env.push(format!("PORTCULLIS_SERVICE={service}"));
        env.push(format!("PORTCULLIS_COLOUR={colour}"));
        let labels = HashMap::from([
            (SERVICE.to_owned(), service.to_owned()),
            (COLOUR.to_owned(), colour.to_owned()),
            (IMAGE.to_owned(), image.to_owned()),
            (RUN_ID.to_owned(), run_id.to_owned()),
        ]);
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            env: Some(env),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(self.network.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| format!("cannot create `{name}` from `{image}`: {}", message(&e)))?;
        self.start(&name).await?;
        Ok(name)
    }

    pub(crate) async fn start(&self, name: &str) -> Result<(), String> {
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| format!("cannot start `{name}`: {}", message(&e)))
    }

    /// Stops a container, giving it `grace_secs` after SIGTERM; a missing one is fine.
    pub(crate) async fn stop(&self, name: &str, grace_secs: i32) -> Result<(), String> {
        match self
            .docker
            .stop_container(
                name,
                Some(StopContainerOptionsBuilder::default().t(grace_secs).build()),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) || is_status(&e, 304) => Ok(()),
            Err(e) => Err(format!("cannot stop `{name}`: {}", message(&e))),
        }
    }

    /// Removes a container, running or not; a missing one is fine.
    pub(crate) async fn remove(&self, name: &str) -> Result<(), String> {
        match self
            .docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(format!("cannot remove `{name}`: {}", message(&e))),
        }
    }

    /// The last lines a container printed, for a failure message.
    pub(crate) async fn logs_tail(&self, name: &str, lines: usize) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(name, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text
    }

    /// Runs `cmd` in a running container; returns its exit code and output.
    pub(crate) async fn exec(
        &self,
        container: &str,
        cmd: &[String],
    ) -> Result<(i64, String), String> {
        let created = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("cannot exec in `{container}`: {}", message(&e)))?;
        let mut output = String::new();
        match self.docker.start_exec(&created.id, None).await {
            Ok(StartExecResults::Attached { output: mut o, .. }) => {
                while let Some(Ok(chunk)) = o.next().await {
                    output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                }
            }
            Ok(StartExecResults::Detached) => {}
            Err(e) => return Err(format!("cannot exec in `{container}`: {}", message(&e))),
        }
        let inspected = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| format!("cannot exec in `{container}`: {}", message(&e)))?;
        Ok((inspected.exit_code.unwrap_or(-1), output))
    }

    /// Connects a container to `network` under `alias`; already connected is fine.
    pub(crate) async fn connect_alias(
        &self,
        network: &str,
        container: &str,
        alias: &str,
    ) -> Result<(), String> {
        if let Some(info) = self.inspect(container).await?
            && let Some(endpoint) = endpoint(&info, network)
        {
            if holds(endpoint, alias) {
                return Ok(());
            }
            // Aliases cannot be edited on a live endpoint: reconnect.
            self.disconnect(network, container).await?;
        }
        self.docker
            .connect_network(
                network,
                NetworkConnectRequest {
                    container: container.to_owned(),
                    endpoint_config: Some(EndpointSettings {
                        aliases: Some(vec![alias.to_owned()]),
                        ..Default::default()
                    }),
                },
            )
            .await
            .map_err(|e| {
                format!(
                    "cannot connect `{container}` to `{network}` as `{alias}`: {}",
                    message(&e)
                )
            })
    }

    pub(crate) async fn disconnect(&self, network: &str, container: &str) -> Result<(), String> {
        match self
            .docker
            .disconnect_network(
                network,
                NetworkDisconnectRequest {
                    container: container.to_owned(),
                    force: Some(true),
                },
            )
            .await
        {
            Ok(()) => Ok(()),
            // Not connected, or gone.
            Err(e) if is_status(&e, 404) || is_status(&e, 403) => Ok(()),
            Err(e) => Err(format!(
                "cannot disconnect `{container}` from `{network}`: {}",
                message(&e)
            )),
        }
    }

    /// Whether `container` holds `alias` on `network`.
    pub(crate) async fn has_alias(
        &self,
        network: &str,
        container: &str,
        alias: &str,
    ) -> Result<bool, String> {
        Ok(self
            .inspect(container)
            .await?
            .is_some_and(|info| endpoint(&info, network).is_some_and(|e| holds(e, alias))))
    }

    /// Takes the service's deploy lock, breaking it only when its holder is provably gone.
    pub(crate) async fn lock(
        &self,
        service: &str,
        image: &str,
        run_id: &str,
    ) -> Result<Lock, String> {
        let name = format!("{service}-portcullis-lock");
        let me = process_identity(std::process::id());
        for _attempt in 0..20 {
            let labels = HashMap::from([
                (SERVICE.to_owned(), service.to_owned()),
                (LOCK.to_owned(), service.to_owned()),
                (RUN_ID.to_owned(), run_id.to_owned()),
                (LOCK_HOST.to_owned(), me.0.clone()),
                (LOCK_PID.to_owned(), std::process::id().to_string()),
                (LOCK_PID_START.to_owned(), me.1.clone()),
                (LOCK_SINCE.to_owned(), jiff::Timestamp::now().to_string()),
            ]);
            let body = ContainerCreateBody {
                image: Some(image.to_owned()),
                labels: Some(labels),
                // Never started; the command only documents what the container is.
                cmd: Some(vec!["portcullis-deploy-lock".into()]),
                ..Default::default()
            };
            match self
                .docker
                .create_container(
                    Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                    body,
                )
                .await
            {
                Ok(_) => return Ok(Lock { name }),
                Err(e) if is_status(&e, 409) => {}
                Err(e) => {
                    return Err(format!(
                        "cannot take the deploy lock `{name}`: {}",
                        message(&e)
                    ));
                }
            }
            let Some(info) = self.inspect(&name).await? else {
                // Released in between, or still being created (the engine reserves the name
                // before the container can be inspected): try again shortly.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
            let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let holder_host = get(LOCK_HOST);
            let holder_pid: u32 = get(LOCK_PID).parse().unwrap_or(0);
            let stale = holder_host == me.0
                && holder_pid != 0
                && process_identity(holder_pid).1 != get(LOCK_PID_START);
            if stale {
                self.remove(&name).await?;
                continue;
            }
            return Err(format!(
                "another deploy of `{service}` holds the lock `{name}` (run `{}` on host `{holder_host}`, \
                 pid {holder_pid}, since {}); wait for it to finish, or if that run is gone, \
                 `docker rm {name}`",
                get(RUN_ID),
                get(LOCK_SINCE)
            ));
        }
        Err(format!(
            "cannot take the deploy lock `{name}`: it keeps coming back"
        ))
    }

    pub(crate) async fn unlock(&self, lock: Lock) -> Result<(), String> {
        self.remove(&lock.name).await
    }
}

/// The deploy lock, held until [`Engine::unlock`]; a runner killed while holding it leaves it
/// behind, and the next runner on the same host sees that its process is gone.
#[derive(Debug)]
pub(crate) struct Lock {
    name: String,
}

/// The container's endpoint on `network`, when it is connected to it.
fn endpoint<'i>(info: &'i ContainerInspectResponse, network: &str) -> Option<&'i EndpointSettings> {
    info.network_settings
        .as_ref()?
        .networks
        .as_ref()?
        .get(network)
}

/// Whether the endpoint carries `alias`.
fn holds(endpoint: &EndpointSettings, alias: &str) -> bool {
    endpoint
        .aliases
        .as_ref()
        .is_some_and(|a| a.iter().any(|a| a == alias))
}

fn container_name(info: &ContainerInspectResponse) -> Option<String> {
    info.name
        .as_ref()
        .map(|n| n.trim_start_matches('/').to_owned())
}

/// This host's name and a process's start time (in clock ticks since boot, from
/// `/proc/PID/stat`): together with the pid they identify one process, so a reused pid does
/// not look alive. The start time is empty when the process does not exist.
fn process_identity(pid: u32) -> (String, String) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let start = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The command name (field 2) may hold spaces; fields after it are plain.
            let after = stat.rsplit_once(')')?.1.to_owned();
            after.split_whitespace().nth(19).map(str::to_owned)
        })
        .unwrap_or_default();
    (host, start)
}
