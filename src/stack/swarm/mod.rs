//! A Docker Swarm stack stickyscope did not start (`stack/deploy.sh`), with replica controls
//! through the engine's API when its socket is given (`--docker unix:///…`). Its replicas
//! are the tasks of the replica service, named by slot (what `X-Replica` says), at their
//! addresses on the stack's network (where Traefik routes). Swarm keeps the count: a task
//! stopped or killed is replaced by a new one in the same slot, at a new address (so with a
//! new sticky cookie value), as on any swarm; "add" scales the service up by one.

mod docker_api;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_contract::stats::StatsSnapshot;
use stickyscope_vocab::stack::Adapter;

pub use self::docker_api::{DockerApi, DockerError, Task};
use super::control::{
    ControlError, ControlFuture, ReplicaControl, ReplicaState, ReplicaStatus, TopologyApi,
};

/// How long an added task may take to run.
const TASK_BOUND: Duration = Duration::from_secs(90);

/// What the swarm's controls need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmConfig {
    /// The engine's socket, `unix:///var/run/docker.sock`.
    pub docker: String,
    /// The replica service (`stickyscope_replica`).
    pub service: String,
    /// The network Traefik reaches the tasks on (`stickyscope_net`).
    pub network: String,
    /// The port the replicas listen on.
    pub port: u16,
}

impl SwarmConfig {
    /// The stack `stack/deploy.sh` deploys, on the engine at `docker`.
    pub fn deployed(docker: &str) -> Self {
        SwarmConfig {
            docker: docker.to_owned(),
            service: "stickyscope_replica".into(),
            network: "stickyscope_net".into(),
            port: 3000,
        }
    }
}

/// What the swarm cannot do that the other stacks can.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// The engine failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// Not done on a swarm, and what to do instead.
    #[error("{0}")]
    NotHere(&'static str),
    /// Swarm did not do it in time.
    #[error("{0}")]
    NotDone(String),
}

/// A running swarm stack and its engine.
pub struct SwarmStack {
    config: SwarmConfig,
    api: DockerApi,
    gateway: String,
    topology: TopologyApi,
    /// One operation at a time.
    busy: tokio::sync::Mutex<()>,
}

impl SwarmStack {
    /// The stack at `gateway` whose engine `config` names: checked by reading its replica
    /// service once.
    pub async fn connect(
        config: SwarmConfig,
        gateway: String,
        topology: TopologyApi,
    ) -> Result<Self, SwarmError> {
        let api = DockerApi::new(&config.docker)?;
        api.service(&config.service).await?;
        Ok(SwarmStack {
            config,
            api,
            gateway,
            topology,
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// The latest task of each slot.
    async fn latest_tasks(&self) -> Result<BTreeMap<u64, Task>, SwarmError> {
        let mut latest: BTreeMap<u64, Task> = BTreeMap::new();
        for task in self.api.tasks(&self.config.service).await? {
            let newer = latest
                .get(&task.slot)
                .is_none_or(|t| t.created_at < task.created_at);
            if newer {
                latest.insert(task.slot, task);
            }
        }
        Ok(latest)
    }

    /// The container of slot `id`'s running task.
    async fn running_container(&self, id: &str) -> Result<String, ControlError> {
        let slot: u64 = id
            .parse()
            .map_err(|_| ControlError::UnknownReplica(id.to_owned()))?;
        let tasks = self.latest_tasks().await.map_err(ControlError::stack)?;
        let task = tasks
            .get(&slot)
            .ok_or_else(|| ControlError::UnknownReplica(id.to_owned()))?;
        match (&task.status.state[..], &task.status.container) {
            ("running", Some(container)) if !container.id.is_empty() => Ok(container.id.clone()),
            _ => Err(ControlError::NotRunning(id.to_owned())),
        }
    }

    fn url_of(&self, task: &Task) -> Option<String> {
        task.address_on(&self.config.network)
            .map(|ip| format!("http://{ip}:{}", self.config.port))
    }
}

/// A task's state as the other stacks say theirs.
fn state_of(task: &Task) -> ReplicaState {
    match task.status.state.as_str() {
        "running" => ReplicaState::Running,
        "new" | "pending" | "assigned" | "accepted" | "preparing" | "ready" | "starting" => {
            ReplicaState::Starting
        }
        "failed" | "rejected" => ReplicaState::Exited(if task.status.err.is_empty() {
            task.status.state.clone()
        } else {
            task.status.err.clone()
        }),
        _ => ReplicaState::Stopped,
    }
}

impl ReplicaControl for SwarmStack {
    fn describe(&self) -> String {
        format!(
            "Docker Swarm stack at {} (service {} on {})",
            self.gateway,
            self.config.service,
            self.api.socket().display()
        )
    }

    fn gateway_url(&self) -> String {
        self.gateway.clone()
    }

    fn topology_api(&self) -> TopologyApi {
        self.topology.clone()
    }

    fn statuses(&self) -> ControlFuture<'_, Vec<ReplicaStatus>> {
        Box::pin(async move {
            let Ok(tasks) = self.latest_tasks().await else {
                return Vec::new();
            };
            tasks
                .values()
                .map(|task| ReplicaStatus {
                    id: task.slot.to_string(),
                    url: self.url_of(task).unwrap_or_default(),
                    state: state_of(task),
                })
                .collect()
        })
    }

    fn add(&self) -> ControlFuture<'_, Result<String, ControlError>> {
        Box::pin(async move {
            let _one = self.busy.lock().await;
            let before = self.latest_tasks().await.map_err(ControlError::stack)?;
            let slot = before.keys().max().copied().unwrap_or(0) + 1;
            self.api
                .scale(&self.config.service, slot)
                .await
                .map_err(ControlError::stack)?;
            let deadline = Instant::now() + TASK_BOUND;
            loop {
                let tasks = self.latest_tasks().await.map_err(ControlError::stack)?;
                if tasks
                    .get(&slot)
                    .is_some_and(|t| t.status.state == "running")
                {
                    return Ok(slot.to_string());
                }
                if Instant::now() >= deadline {
                    return Err(ControlError::stack(SwarmError::NotDone(format!(
                        "Swarm has not started task {slot} of {} within {} s",
                        self.config.service,
                        TASK_BOUND.as_secs()
                    ))));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    }

    fn stop<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let _one = self.busy.lock().await;
            let container = self.running_container(id).await?;
            self.api
                .stop(&container, 10)
                .await
                .map_err(ControlError::stack)
        })
    }

    fn kill<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let _one = self.busy.lock().await;
            let container = self.running_container(id).await?;
            self.api
                .signal(&container, "SIGKILL")
                .await
                .map_err(ControlError::stack)
        })
    }

    fn restart<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            match self.running_container(id).await {
                Ok(_) => Err(ControlError::AlreadyRunning(id.to_owned())),
                Err(ControlError::NotRunning(_)) => Err(ControlError::stack(SwarmError::NotHere(
                    "Swarm replaces a stopped or killed task by itself, in the same slot at a new address",
                ))),
                Err(e) => Err(e),
            }
        })
    }

    fn set_healthy<'a>(
        &'a self,
        id: &'a str,
        healthy: bool,
    ) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let _one = self.busy.lock().await;
            let container = self.running_container(id).await?;
            // The replica's /healthz fails after SIGUSR1 and passes after SIGUSR2 (Docker's
            // own health check then fails too, and Swarm replaces the task after its retries).
            let signal = if healthy { "SIGUSR2" } else { "SIGUSR1" };
            self.api
                .signal(&container, signal)
                .await
                .map_err(ControlError::stack)
        })
    }

    fn reconfigure(
        &self,
        _heartbeat: Option<Heartbeat>,
        _adapter: Option<Adapter>,
    ) -> ControlFuture<'_, Result<(), ControlError>> {
        Box::pin(async move {
            Err(ControlError::stack(SwarmError::NotHere(
                "on Swarm the heartbeat and adapter are the replica service's environment: change PING_INTERVAL, PING_TIMEOUT or REDIS_URL in docker-swarm.yml and run stack/deploy.sh again",
            )))
        })
    }

    fn read_stats(&self) -> ControlFuture<'_, BTreeMap<String, StatsSnapshot>> {
        // The tasks' addresses are on the overlay network, which this machine does not reach.
        Box::pin(async { BTreeMap::new() })
    }

    fn shutdown(&self) -> ControlFuture<'_, ()> {
        // stickyscope did not start it: stack/teardown.sh removes it.
        Box::pin(async {})
    }
}
