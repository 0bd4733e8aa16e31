//! The embedded stack: N replicas and the built-in sticky balancer in this process, the same
//! shape as the swarm stack (minus nginx), so everything works without Docker. The balancer
//! speaks HTTP/1.1 to its replicas as Traefik does, or — asked for, to hold more sessions in
//! one process — HTTP/2 (h2c), one connection to each replica for every ordinary request,
//! so that a held poll costs an open file only where the client's connection arrives.
//!
//! Replicas listen on ephemeral loopback ports and broadcast to each other over a
//! [`MemoryBus`] (or Redis, or nothing). Operators add, stop, kill and restart replicas at
//! run time, through [`ReplicaControl`] or over HTTP (`/_stack/…` on the balancer).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper::Method;
use serde::Serialize;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_contract::stats::StatsSnapshot;
use stickyscope_replica::{AdapterChoice, MemoryBus, Replica, ReplicaConfig, ReplicaHandle, Stats};
use stickyscope_vocab::stack::Adapter;
use tokio::net::TcpListener;

use super::control::{
    ControlError, ControlFuture, ReplicaControl, ReplicaState, ReplicaStatus, TopologyApi,
};
use super::slots::{ReplicaSettings, Running, Slots};
use crate::balancer::pool::Pool;
use crate::balancer::{self, Admin, AdminFuture, BalancerConfig, BalancerHandle, Upstream};

/// How to build the stack.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// Replicas to start with.
    pub replicas: usize,
    /// Balancer address; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Heartbeat of every replica.
    pub heartbeat: Heartbeat,
    /// Adapter between replicas.
    pub adapter: Adapter,
    /// The Redis server of [`Adapter::Redis`].
    pub redis_url: Option<String>,
    /// Health-check interval of the balancer.
    pub health_interval: Duration,
    /// How the balancer speaks to the replicas: HTTP/1.1, a connection for each request in
    /// flight (Traefik's default, and the default here), or HTTP/2 by prior knowledge, one
    /// connection to each replica for every request (Traefik's `h2c://` servers), which
    /// spares the stack's process a file for every held poll.
    pub upstream: Upstream,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            replicas: 3,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8000),
            heartbeat: Heartbeat::default(),
            adapter: Adapter::Memory,
            redis_url: None,
            health_interval: Duration::from_secs(1),
            upstream: Upstream::Http1,
        }
    }
}

/// Why the embedded stack could not start, or a replica of it.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// Could not bind a listener.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A replica failed to start.
    #[error("replica {id} could not start: {source}")]
    Replica {
        /// Its id.
        id: String,
        /// The cause.
        source: stickyscope_replica::ReplicaError,
    },
    /// Redis asked for, with no Redis to use.
    #[error("the Redis adapter needs a Redis server: start the embedded stack with --redis-url (or REDIS_URL)")]
    NoRedis,
    /// A replica operation failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Some other I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<EmbeddedError> for ControlError {
    fn from(e: EmbeddedError) -> Self {
        match e {
            EmbeddedError::Control(e) => e,
            other => ControlError::stack(other),
        }
    }
}

/// A replica as listed by [`EmbeddedStack::replicas`].
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaInfo {
    /// Its id (`X-Replica`).
    pub id: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its server URL at the balancer.
    pub url: String,
    /// Its lifecycle state.
    pub state: ReplicaState,
    /// Its counters.
    pub stats: StatsSnapshot,
}

/// Where an embedded replica lives: its address (kept across restarts) and its counters (kept
/// too, so a restarted replica goes on counting).
#[derive(Clone)]
struct Place {
    addr: SocketAddr,
    stats: Arc<Stats>,
}

impl Place {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Running for ReplicaHandle {}

/// A running embedded stack. Dropping it stops the balancer; call
/// [`ReplicaControl::shutdown`] for a graceful end.
pub struct EmbeddedStack {
    config: EmbeddedConfig,
    /// Heartbeat and adapter for replicas started from now on.
    replica_settings: ReplicaSettings,
    bus: MemoryBus,
    pool: Arc<Pool>,
    balancer: BalancerHandle,
    slots: Slots<Place, ReplicaHandle>,
}

impl EmbeddedStack {
    /// Starts the replicas and the balancer.
    pub async fn start(config: EmbeddedConfig) -> Result<Arc<Self>, EmbeddedError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| EmbeddedError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let pool = Arc::new(Pool::default());
        let admin = Arc::new(HttpAdmin::default());
        let balancer = balancer::start(
            listener,
            Arc::clone(&pool),
            BalancerConfig {
                health_interval: config.health_interval,
                upstream: config.upstream,
                ..BalancerConfig::default()
            },
            Some(Arc::clone(&admin) as Arc<dyn Admin>),
        )?;
        let stack = Arc::new(EmbeddedStack {
            replica_settings: ReplicaSettings::new(config.heartbeat, config.adapter),
            config,
            bus: MemoryBus::new(),
            pool,
            balancer,
            slots: Slots::default(),
        });
        let _ = admin.stack.set(Arc::downgrade(&stack));
        for _ in 0..stack.config.replicas {
            stack.add().await?;
        }
        Ok(stack)
    }

    /// The balancer's address: the gateway clients connect to.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.balancer.local_addr()
    }

    /// The balancer's server list.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Every replica ever started, in order, with its state and counters.
    pub async fn replicas(&self) -> Vec<ReplicaInfo> {
        self.slots
            .map(|slot| ReplicaInfo {
                id: slot.id.clone(),
                addr: slot.place.addr,
                url: slot.place.url(),
                state: slot.state(),
                stats: slot.place.stats.snapshot(&slot.id),
            })
            .await
    }

    /// Counters of one replica.
    pub async fn stats(&self, id: &str) -> Result<StatsSnapshot, ControlError> {
        self.slots
            .map(|slot| (slot.id == id).then(|| slot.place.stats.snapshot(&slot.id)))
            .await
            .into_iter()
            .flatten()
            .next()
            .ok_or_else(|| ControlError::UnknownReplica(id.to_owned()))
    }

    /// Heartbeat and adapter of replicas started from now on.
    pub fn settings(&self) -> (Heartbeat, Adapter) {
        self.replica_settings.get()
    }

    async fn add_now(&self) -> Result<String, ControlError> {
        let (id, place) = self
            .slots
            .add(|id| async move {
                let place = Place {
                    addr: SocketAddr::new(self.config.listen.ip(), 0),
                    stats: Arc::new(Stats::default()),
                };
                let handle = self.spawn_replica(&id, &place).await?;
                Ok((
                    Place {
                        addr: handle.local_addr(),
                        ..place
                    },
                    handle,
                ))
            })
            .await?;
        self.pool.upsert(place.addr, Some(id.clone()));
        tracing::info!(replica = %id, addr = %place.addr, "replica added");
        Ok(id)
    }

    async fn stop_now(&self, id: &str) -> Result<(), ControlError> {
        let (place, handle) = self.slots.take_running(id, ReplicaState::Stopped).await?;
        // Out of rotation before the replica goes: no request is routed to a dying server.
        self.pool.set_enabled(place.addr, false);
        handle.stop().await;
        Ok(())
    }

    async fn restart_now(&self, id: &str) -> Result<(), ControlError> {
        let place = self
            .slots
            .restart(id, |place| async move {
                let handle = self.spawn_replica(id, &place).await?;
                place.stats.record_restart();
                Ok(handle)
            })
            .await?;
        self.pool.upsert(place.addr, Some(id.to_owned()));
        tracing::info!(replica = %id, "replica restarted");
        Ok(())
    }

    async fn spawn_replica(&self, id: &str, place: &Place) -> Result<ReplicaHandle, EmbeddedError> {
        let addr = place.addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EmbeddedError::Bind { addr, source })?;
        let (heartbeat, adapter) = self.settings();
        let adapter = match adapter {
            Adapter::Memory => AdapterChoice::Memory(self.bus.clone()),
            Adapter::Redis => AdapterChoice::Redis(
                self.config
                    .redis_url
                    .clone()
                    .ok_or(EmbeddedError::NoRedis)?,
            ),
            Adapter::None => AdapterChoice::None,
        };
        let config = ReplicaConfig {
            id: id.to_owned(),
            heartbeat,
            adapter,
            stats: Arc::clone(&place.stats),
            header_read_timeout: stickyscope_replica::HEADER_READ_TIMEOUT,
            // The embedded stack serves no page of another origin.
            cors_origins: Vec::new(),
        };
        Replica::start(config, listener)
            .await
            .map_err(|source| EmbeddedError::Replica {
                id: id.to_owned(),
                source,
            })
    }
}

impl ReplicaControl for EmbeddedStack {
    fn describe(&self) -> String {
        format!("embedded stack at {}", self.gateway_url())
    }

    fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway_addr())
    }

    fn topology_api(&self) -> TopologyApi {
        TopologyApi::Service {
            url: format!(
                "{}/api/http/services/{}",
                self.gateway_url(),
                crate::balancer::api::STICKY_SERVICE
            ),
            hops: vec!["balancer".to_owned()],
        }
    }

    fn statuses(&self) -> ControlFuture<'_, Vec<ReplicaStatus>> {
        Box::pin(async move {
            self.slots
                .map(|slot| ReplicaStatus {
                    id: slot.id.clone(),
                    url: slot.place.url(),
                    state: slot.state(),
                })
                .await
        })
    }

    fn add(&self) -> ControlFuture<'_, Result<String, ControlError>> {
        Box::pin(async move {
            let _op = self.slots.one_at_a_time().await;
            self.add_now().await
        })
    }

    fn stop<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let _op = self.slots.one_at_a_time().await;
            self.stop_now(id).await
        })
    }

    fn kill<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let _op = self.slots.one_at_a_time().await;
            let (place, handle) = self.slots.take_running(id, ReplicaState::Killed).await?;
            self.pool.set_enabled(place.addr, false);
            handle.kill().await;
            Ok(())
        })
    }

    fn restart<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let _op = self.slots.one_at_a_time().await;
            self.restart_now(id).await
        })
    }

    fn set_healthy<'a>(
        &'a self,
        id: &'a str,
        healthy: bool,
    ) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let _op = self.slots.one_at_a_time().await;
            self.slots
                .with_running(id, |_, handle| handle.set_healthy(healthy))
                .await
        })
    }

    fn reconfigure(
        &self,
        heartbeat: Option<Heartbeat>,
        adapter: Option<Adapter>,
    ) -> ControlFuture<'_, Result<(), ControlError>> {
        Box::pin(async move {
            if adapter == Some(Adapter::Redis) && self.config.redis_url.is_none() {
                return Err(ControlError::stack(EmbeddedError::NoRedis));
            }
            let _op = self.slots.one_at_a_time().await;
            self.replica_settings.change(heartbeat, adapter);
            for id in self.slots.running_ids().await {
                self.stop_now(&id).await?;
                self.restart_now(&id).await?;
            }
            Ok(())
        })
    }

    fn read_stats(&self) -> ControlFuture<'_, BTreeMap<String, StatsSnapshot>> {
        Box::pin(async move {
            self.replicas()
                .await
                .into_iter()
                .map(|r| (r.id, r.stats))
                .collect()
        })
    }

    fn shutdown(&self) -> ControlFuture<'_, ()> {
        Box::pin(async move {
            let _op = self.slots.one_at_a_time().await;
            let running = self.slots.take_all(ReplicaState::Stopped).await;
            for (place, _) in &running {
                self.pool.set_enabled(place.addr, false);
            }
            futures_util::future::join_all(running.into_iter().map(|(_, handle)| handle.stop()))
                .await;
            self.balancer.shutdown();
        })
    }
}

/// The stack's controls over HTTP, on the balancer:
///
/// | request | effect |
/// |---|---|
/// | `GET /_stack/replicas` | list replicas with state and counters |
/// | `POST /_stack/replicas` | add a replica |
/// | `POST /_stack/replicas/{id}/stop` | graceful stop |
/// | `POST /_stack/replicas/{id}/kill` | abrupt kill |
/// | `POST /_stack/replicas/{id}/restart` | start again |
/// | `POST /_stack/replicas/{id}/unhealthy`, `…/healthy` | make `/healthz` fail or pass |
#[derive(Default)]
struct HttpAdmin {
    stack: std::sync::OnceLock<Weak<EmbeddedStack>>,
}

impl Admin for HttpAdmin {
    fn handle(&self, method: Method, path: String) -> AdminFuture {
        let stack = self.stack.get().and_then(Weak::upgrade);
        Box::pin(async move {
            let Some(stack) = stack else {
                return (
                    503,
                    serde_json::json!({"error": "the stack is shutting down"}),
                );
            };
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            let result = match (method, parts.as_slice()) {
                (Method::GET, ["_stack", "replicas"]) => {
                    return (200, serde_json::json!(stack.replicas().await));
                }
                (Method::POST, ["_stack", "replicas"]) => stack.add().await.map(Some),
                (Method::POST, ["_stack", "replicas", id, action]) => match *action {
                    "stop" => stack.stop(id).await.map(|_| None),
                    "kill" => stack.kill(id).await.map(|_| None),
                    "restart" => stack.restart(id).await.map(|_| None),
                    "unhealthy" => stack.set_healthy(id, false).await.map(|_| None),
                    "healthy" => stack.set_healthy(id, true).await.map(|_| None),
                    other => {
                        return (
                            404,
                            serde_json::json!({"error": format!("unknown action {other:?}: use stop, kill, restart, healthy or unhealthy")}),
                        );
                    }
                },
                _ => {
                    return (
                        404,
                        serde_json::json!({"error": "unknown stack endpoint: see GET /_stack/replicas"}),
                    );
                }
            };
            match result {
                Ok(Some(id)) => (201, serde_json::json!({"ok": true, "id": id})),
                Ok(None) => (200, serde_json::json!({"ok": true})),
                Err(e @ ControlError::UnknownReplica(_)) => {
                    (404, serde_json::json!({"error": e.to_string()}))
                }
                Err(
                    e @ (ControlError::AlreadyRunning(_)
                    | ControlError::NotRunning(_)
                    | ControlError::Full),
                ) => (409, serde_json::json!({"error": e.to_string()})),
                Err(e) => (500, serde_json::json!({"error": e.to_string()})),
            }
        })
    }
}
