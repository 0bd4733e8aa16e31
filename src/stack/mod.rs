//! The stack under test — whatever stands between the users and the replicas — and the stacks
//! stickyscope can run itself.
//!
//! - `control`: the one interface to a stack's replicas ([`ReplicaControl`]) that every
//!   stack stickyscope runs implements, and what they share;
//! - `slots`: the replicas of a stack stickyscope runs, as slots (ids, places, one operation
//!   at a time), kept by the embedded stack and the chain alike;
//! - [`embedded`]: replicas and the built-in balancer in this process;
//! - [`chain`]: nginx → Traefik → replica processes → Redis, as local child processes;
//! - [`swarm`]: a Docker Swarm stack stickyscope did not start, its replicas controlled
//!   through the engine's API when its socket is given.
//!
//! [`GatewayConfig`] says which stack; [`start`] starts it (or takes a running one) and hands
//! back its gateway, its replica controls when stickyscope runs it, and where its topology is
//! read — so nothing above this module picks between stacks.

pub mod chain;
mod control;
pub mod embedded;
mod slots;
pub mod swarm;

use std::sync::Arc;

use stickyscope_vocab::access::Access;
use stickyscope_vocab::events::EngineIoChoice;
use stickyscope_vocab::naming::Identify;
use tokio::sync::mpsc;

pub use control::{
    ControlError, ReplicaControl, ReplicaState, ReplicaStatus, TopologyApi, UnexpectedExit,
};

use chain::{Chain, ChainConfig, ChainError};
use embedded::{EmbeddedConfig, EmbeddedError, EmbeddedStack};
use swarm::{SwarmConfig, SwarmError, SwarmStack};

/// Where the stack is.
#[derive(Debug, Clone)]
pub enum GatewayConfig {
    /// Start the embedded stack in this process.
    Embedded(EmbeddedConfig),
    /// Start the real chain (nginx → Traefik → replica processes → Redis) as child
    /// processes.
    Chain(ChainConfig),
    /// Use a running stack: its gateway (nginx) and, if known, Traefik's API.
    External {
        /// e.g. `http://localhost:8000`.
        gateway: String,
        /// e.g. `http://localhost:9090`.
        traefik_api: Option<String>,
        /// How to tell which replica answered, besides `X-Replica`.
        identify: IdentifyConfig,
        /// Which Engine.IO to speak (auto: v4, or v3 when the servers answer in v3).
        engineio: EngineIoChoice,
        /// Where Socket.IO lives on it and who the users are to it.
        access: Access,
        /// Its Docker engine's socket (`unix:///var/run/docker.sock`), when it is the swarm
        /// stack (`stack/deploy.sh`): its replicas are then controlled through the engine.
        docker: Option<String>,
    },
}

impl GatewayConfig {
    /// A running stack at `gateway`, named by `X-Replica` (and what Traefik's API at
    /// `traefik_api` teaches), spoken to in whichever Engine.IO it answers.
    pub fn external(gateway: impl Into<String>, traefik_api: Option<String>) -> Self {
        GatewayConfig::External {
            gateway: gateway.into(),
            traefik_api,
            identify: IdentifyConfig::default(),
            engineio: EngineIoChoice::default(),
            access: Access::default(),
            docker: None,
        }
    }

    /// Whether the stack has replica controls (stickyscope started it, or its Docker
    /// engine was given).
    pub fn has_controls(&self) -> bool {
        match self {
            GatewayConfig::Embedded(_) => true,
            GatewayConfig::Chain(chain) => chain.servers.is_none(),
            GatewayConfig::External { docker, .. } => docker.is_some(),
        }
    }

    /// Whether the replicas' `/stats` can be read (not on a swarm: its tasks' addresses are
    /// on an overlay network this machine does not reach).
    pub fn has_stats(&self) -> bool {
        match self {
            GatewayConfig::External { .. } => false,
            _ => self.has_controls(),
        }
    }

    /// Whether its replicas can use Redis between them (the chain runs its own; the swarm
    /// stack's share one, docker-swarm.yml).
    pub fn has_redis(&self) -> bool {
        match self {
            GatewayConfig::Chain(_) => true,
            GatewayConfig::External { docker, .. } => docker.is_some(),
            GatewayConfig::Embedded(_) => false,
        }
    }

    /// What the gateway is, in a few words.
    pub fn mode(&self) -> String {
        match self {
            GatewayConfig::Embedded(_) => "embedded stack".to_owned(),
            GatewayConfig::Chain(chain) if chain.traefiks > 1 => {
                format!("local chain (nginx, {} Traefiks)", chain.traefiks)
            }
            GatewayConfig::Chain(_) => "local chain (nginx, Traefik)".to_owned(),
            GatewayConfig::External { .. } => "gateway".to_owned(),
        }
    }

    /// How replicas are named on it: what the user said for a running stack, `X-Replica` and
    /// the stack's own sticky cookie otherwise.
    pub fn identify(&self) -> IdentifyConfig {
        match self {
            GatewayConfig::External { identify, .. } => identify.clone(),
            _ => IdentifyConfig::default(),
        }
    }

    /// Which Engine.IO to speak: as the user said for a running stack; stickyscope's own
    /// stacks speak both.
    pub fn engineio(&self) -> EngineIoChoice {
        match self {
            GatewayConfig::External { engineio, .. } => *engineio,
            _ => EngineIoChoice::Auto,
        }
    }

    /// Where Socket.IO lives and who the users are: as the user said for a running stack;
    /// the defaults (`/socket.io/`, namespace `/`, nobody in particular) on stickyscope's own.
    pub fn access(&self) -> Access {
        match self {
            GatewayConfig::External { access, .. } => access.clone(),
            _ => Access::default(),
        }
    }
}

/// How to tell which replica answered on a stack whose replicas do not send `X-Replica`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentifyConfig {
    /// A response header that names the replica (e.g. a backend's hostname).
    pub header: Option<String>,
    /// The sticky cookie's name, when it is not the balancer API's or `sticky_replica`.
    pub cookie: Option<String>,
    /// The balancer's server URLs, when no API lists them.
    pub servers: Vec<String>,
}

impl IdentifyConfig {
    /// The identification the taps start from.
    pub fn identify(&self) -> Identify {
        let mut identify = Identify::new(self.header.clone());
        if let Some(cookie) = &self.cookie {
            identify.cookie = cookie.clone();
            identify.by_value = true;
        }
        identify.set_servers(self.servers.iter().map(String::as_str));
        identify
    }

    /// What names replicas, for good (nobody teaches it more).
    pub fn naming(&self) -> crate::wire::Naming {
        crate::wire::fixed_naming(self.identify())
    }

    /// What names replicas from this on, and its one writer (which keeps what this gives
    /// by hand).
    pub fn learner(&self) -> (crate::wire::Learner, crate::wire::Naming) {
        crate::wire::Learner::start(
            self.identify(),
            self.cookie.is_some(),
            !self.servers.is_empty(),
        )
    }
}

/// Why a stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The embedded stack failed.
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    /// The local chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The swarm's engine could not be used.
    #[error(transparent)]
    Swarm(#[from] SwarmError),
}

/// A stack, started or found.
pub struct Stack {
    /// The gateway users connect to.
    pub gateway: String,
    /// Its replica controls, when stickyscope runs it.
    pub controls: Option<Arc<dyn ReplicaControl>>,
    /// Where its topology is read.
    pub topology: TopologyApi,
    /// Its parts that die on their own (the chain's processes), taken once.
    pub exits: Option<mpsc::Receiver<UnexpectedExit>>,
}

/// Starts the stack `config` names (or takes the running one it points at).
pub async fn start(config: GatewayConfig) -> Result<Stack, StackError> {
    let (controls, exits): (Arc<dyn ReplicaControl>, _) = match config {
        GatewayConfig::Embedded(config) => (EmbeddedStack::start(config).await?, None),
        GatewayConfig::Chain(config) => {
            let chain = Chain::start(config).await?;
            let exits = chain.take_exits();
            (Arc::new(chain), exits)
        }
        GatewayConfig::External {
            gateway,
            traefik_api,
            access,
            docker,
            ..
        } => {
            let topology = match traefik_api {
                Some(url) => TopologyApi::Traefik {
                    url,
                    credential: None,
                    trust: crate::tls_trust::Trust::of(&access),
                    instances: 1,
                },
                None => TopologyApi::None,
            };
            let controls: Option<Arc<dyn ReplicaControl>> = match docker {
                Some(docker) => Some(Arc::new(
                    SwarmStack::connect(
                        SwarmConfig::deployed(&docker),
                        gateway.clone(),
                        topology.clone(),
                    )
                    .await?,
                )),
                None => None,
            };
            return Ok(Stack {
                gateway,
                controls,
                topology,
                exits: None,
            });
        }
    };
    Ok(Stack {
        gateway: controls.gateway_url(),
        topology: controls.topology_api(),
        controls: Some(controls),
        exits,
    })
}
