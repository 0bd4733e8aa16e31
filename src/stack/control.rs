//! The one interface to the replicas of a stack stickyscope runs: [`ReplicaControl`]. The
//! embedded stack and the local chain implement it (a Docker Swarm stack would be one more
//! implementation), so the conductor, the probe and the scenarios carry out "stop replica 2"
//! without knowing which stack it is.
//!
//! Also here, what every implementation shares: what happened to a replica last
//! ([`ReplicaState`]), a replica as listed ([`ReplicaStatus`]), why an operation failed
//! ([`ControlError`]), where the stack's topology is read ([`TopologyApi`]) and a part that
//! ended on its own ([`UnexpectedExit`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_contract::stats::StatsSnapshot;
use stickyscope_vocab::events::ReplicaAction;
use stickyscope_vocab::stack::{Adapter, MAX_REPLICAS};

/// What a [`ReplicaControl`] operation returns: a boxed future, so that the interface can be
/// held as `Arc<dyn ReplicaControl>`.
pub type ControlFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What happened to a replica last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Serving.
    Running,
    /// Being started by the stack itself (a swarm's task not yet running).
    Starting,
    /// Stopped gracefully by the operator.
    Stopped,
    /// Killed by the operator.
    Killed,
    /// Ended on its own, like this (a replica process that died).
    Exited(String),
}

/// A replica as a stack lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaStatus {
    /// Its id (`X-Replica`).
    pub id: String,
    /// Its server URL at the balancer (what the sticky cookie's value is computed from).
    pub url: String,
    /// What happened to it last.
    pub state: ReplicaState,
}

/// Why a replica operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such replica.
    #[error("no replica {0:?}")]
    UnknownReplica(String),
    /// The replica is already running.
    #[error("replica {0} is already running")]
    AlreadyRunning(String),
    /// The replica is not running.
    #[error("replica {0} is not running")]
    NotRunning(String),
    /// The stack is full.
    #[error("the stack holds at most {MAX_REPLICAS} replicas (stopped and killed ones count)")]
    Full,
    /// The stack runs in front of servers stickyscope did not start.
    #[error("this chain runs in front of servers it did not start: it has no replica controls")]
    NotOurs,
    /// The stack could not carry it out, in its own words (a process that would not start,
    /// a port taken, a balancer that never took the replica back).
    #[error(transparent)]
    Stack(Box<dyn std::error::Error + Send + Sync>),
}

impl ControlError {
    /// The stack's own failure.
    pub fn stack(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        ControlError::Stack(Box::new(error))
    }
}

/// A part of a stack that ended when nobody asked it to (a process of the chain that died).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexpectedExit {
    /// The part's name (`replica 2`, `traefik`, …).
    pub name: String,
    /// How it ended, in words (`exit status 1`, `killed by signal 9`).
    pub status: String,
    /// A copy of its log, kept after the run folder goes.
    pub log: std::path::PathBuf,
    /// The last lines of its log.
    pub tail: Vec<String>,
}

/// Where a stack's topology (its servers, their state, the sticky cookie) is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologyApi {
    /// One service document in Traefik's shape (the built-in balancer serves it), drawn
    /// behind these hops.
    Service {
        /// The document's URL.
        url: String,
        /// The hops in front of the replicas.
        hops: Vec<String>,
    },
    /// A Traefik v3 API: services and routers (nginx and Traefik as hops).
    Traefik {
        /// Its base URL (a credential in it is taken out and used).
        url: String,
        /// Its basic-auth user and password, when not in the URL.
        credential: Option<(String, String)>,
        /// How an `https://` API's certificate is checked.
        trust: crate::tls_trust::Trust,
        /// Traefik processes side by side behind the gateway, all reading one configuration
        /// (the local chain's `--traefiks`); 1 when the stack is one or says nothing else.
        instances: usize,
    },
    /// Nothing to read: the gateway alone, replicas as the wire shows them.
    None,
}

/// The replicas of a stack stickyscope runs, and what can be done to them. Operations run one
/// after another: one asked for while another runs waits for it.
pub trait ReplicaControl: Send + Sync + 'static {
    /// What the stack is, in a few words, with its gateway.
    fn describe(&self) -> String;

    /// The gateway users connect to.
    fn gateway_url(&self) -> String;

    /// Where the stack's topology is read.
    fn topology_api(&self) -> TopologyApi;

    /// Every replica ever started, in order.
    fn statuses(&self) -> ControlFuture<'_, Vec<ReplicaStatus>>;

    /// Starts one more replica and puts it in rotation; returns its id.
    fn add(&self) -> ControlFuture<'_, Result<String, ControlError>>;

    /// Stops a replica gracefully; it leaves rotation first.
    fn stop<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>>;

    /// Kills a replica: its connections are cut at once and its sessions are lost.
    fn kill<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>>;

    /// Starts a replica that is not running again, at the same address (so with the same
    /// sticky cookie value); done when the balancer has it back in rotation.
    fn restart<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>>;

    /// Makes a replica's `/healthz` fail (`false`) or pass again.
    fn set_healthy<'a>(
        &'a self,
        id: &'a str,
        healthy: bool,
    ) -> ControlFuture<'a, Result<(), ControlError>>;

    /// Changes the heartbeat and/or the adapter, restarting every running replica with them
    /// (sessions reconnect, as after a redeploy).
    fn reconfigure(
        &self,
        heartbeat: Option<Heartbeat>,
        adapter: Option<Adapter>,
    ) -> ControlFuture<'_, Result<(), ControlError>>;

    /// Every replica's `/stats` that answers, by id.
    fn read_stats(&self) -> ControlFuture<'_, BTreeMap<String, StatsSnapshot>>;

    /// Stops everything gracefully.
    fn shutdown(&self) -> ControlFuture<'_, ()>;

    /// Carries out `action` on replica `id`.
    fn act<'a>(
        &'a self,
        id: &'a str,
        action: ReplicaAction,
    ) -> ControlFuture<'a, Result<(), ControlError>> {
        match action {
            ReplicaAction::Stop => self.stop(id),
            ReplicaAction::Kill => self.kill(id),
            ReplicaAction::Restart => self.restart(id),
            ReplicaAction::Unhealthy => self.set_healthy(id, false),
            ReplicaAction::Healthy => self.set_healthy(id, true),
        }
    }

    /// The server URL of replica `id` at the balancer.
    fn replica_url<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Option<String>> {
        Box::pin(async move {
            self.statuses()
                .await
                .into_iter()
                .find(|r| r.id == id)
                .map(|r| r.url)
        })
    }
}

impl std::fmt::Debug for dyn ReplicaControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
