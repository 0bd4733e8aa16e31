//! The embedded stack: N replicas and the built-in sticky balancer in this process, the same
//! shape as the swarm stack (minus nginx), so everything works without Docker.
//!
//! Replicas listen on ephemeral loopback ports and broadcast to each other over a
//! [`MemoryBus`] (or Redis, or nothing). Operators add, stop, kill and restart replicas at
//! run time, from code ([`EmbeddedStack`]) or over HTTP (`/_stack/…` on the balancer).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper::Method;
use serde::Serialize;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_contract::stats::StatsSnapshot;
use stickyscope_replica::{AdapterChoice, MemoryBus, Replica, ReplicaConfig, ReplicaHandle, Stats};
use stickyscope_vocab::stack::{Adapter, MAX_REPLICAS};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::balancer::pool::Pool;
use crate::balancer::{self, Admin, AdminFuture, BalancerConfig, BalancerHandle};

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
        }
    }
}

/// Why a stack operation failed.
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
    /// No such replica.
    #[error("no replica {0:?}")]
    UnknownReplica(String),
    /// The replica is already running.
    #[error("replica {0} is already running")]
    AlreadyRunning(String),
    /// The replica is not running.
    #[error("replica {0} is not running")]
    NotRunning(String),
    /// Redis asked for, with no Redis to use.
    #[error("the Redis adapter needs a Redis server: start the embedded stack with --redis-url (or REDIS_URL)")]
    NoRedis,
    /// The stack is full.
    #[error("the stack holds at most {MAX_REPLICAS} replicas (stopped and killed ones count)")]
    Full,
    /// Some other I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What happened to a replica last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Serving.
    Running,
    /// Stopped gracefully.
    Stopped,
    /// Killed.
    Killed,
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

struct Slot {
    id: String,
    addr: SocketAddr,
    stats: Arc<Stats>,
    handle: Option<ReplicaHandle>,
    state: ReplicaState,
}

/// A running embedded stack. Dropping it stops the balancer; call [`EmbeddedStack::shutdown`]
/// for a graceful end.
pub struct EmbeddedStack {
    config: EmbeddedConfig,
    /// Heartbeat and adapter for replicas started from now on.
    replica_settings: std::sync::Mutex<(Heartbeat, Adapter)>,
    bus: MemoryBus,
    pool: Arc<Pool>,
    balancer: BalancerHandle,
    slots: Mutex<Vec<Slot>>,
    /// Held for the whole of each operation, so operations run one after another: a kill
    /// that arrives while the replicas restart with new settings waits for them, and no
    /// replica is left on the old settings.
    ops: Mutex<()>,
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
                ..BalancerConfig::default()
            },
            Some(Arc::clone(&admin) as Arc<dyn Admin>),
        )?;
        let stack = Arc::new(EmbeddedStack {
            replica_settings: std::sync::Mutex::new((config.heartbeat, config.adapter)),
            config,
            bus: MemoryBus::new(),
            pool,
            balancer,
            slots: Mutex::new(Vec::new()),
            ops: Mutex::new(()),
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

    /// `http://` URL of the gateway.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway_addr())
    }

    /// The balancer's server list.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Every replica ever started, in order, with its state and counters.
    pub async fn replicas(&self) -> Vec<ReplicaInfo> {
        self.slots
            .lock()
            .await
            .iter()
            .map(|slot| ReplicaInfo {
                id: slot.id.clone(),
                addr: slot.addr,
                url: format!("http://{}", slot.addr),
                state: slot.state,
                stats: slot.stats.snapshot(&slot.id),
            })
            .collect()
    }

    /// Counters of one replica.
    pub async fn stats(&self, id: &str) -> Result<StatsSnapshot, EmbeddedError> {
        let slots = self.slots.lock().await;
        let slot = find(&slots, id)?;
        Ok(slot.stats.snapshot(&slot.id))
    }

    /// Starts one more replica and puts it in rotation; returns its id.
    pub async fn add(&self) -> Result<String, EmbeddedError> {
        let _op = self.ops.lock().await;
        let mut slots = self.slots.lock().await;
        if slots.len() >= MAX_REPLICAS {
            return Err(EmbeddedError::Full);
        }
        let id = (slots.len() + 1).to_string();
        let stats = Arc::new(Stats::default());
        let local = SocketAddr::new(self.config.listen.ip(), 0);
        let handle = self.spawn_replica(&id, local, Arc::clone(&stats)).await?;
        let addr = handle.local_addr();
        self.pool.upsert(addr, Some(id.clone()));
        slots.push(Slot {
            id: id.clone(),
            addr,
            stats,
            handle: Some(handle),
            state: ReplicaState::Running,
        });
        tracing::info!(replica = %id, %addr, "replica added");
        Ok(id)
    }

    /// Stops a replica gracefully; it leaves rotation first, so its sticky clients are
    /// remapped on their next request.
    pub async fn stop(&self, id: &str) -> Result<(), EmbeddedError> {
        let _op = self.ops.lock().await;
        self.stop_now(id).await
    }

    async fn stop_now(&self, id: &str) -> Result<(), EmbeddedError> {
        let handle = self.take_running(id, ReplicaState::Stopped).await?;
        handle.stop().await;
        Ok(())
    }

    /// Kills a replica: its connections are cut at once and its sessions are lost.
    pub async fn kill(&self, id: &str) -> Result<(), EmbeddedError> {
        let _op = self.ops.lock().await;
        let handle = self.take_running(id, ReplicaState::Killed).await?;
        handle.kill().await;
        Ok(())
    }

    /// Starts a stopped or killed replica again, on the same address (so with the same
    /// server URL and sticky cookie value), with fresh sessions.
    pub async fn restart(&self, id: &str) -> Result<(), EmbeddedError> {
        let _op = self.ops.lock().await;
        self.restart_now(id).await
    }

    async fn restart_now(&self, id: &str) -> Result<(), EmbeddedError> {
        let mut slots = self.slots.lock().await;
        let slot = find_mut(&mut slots, id)?;
        if slot.handle.is_some() {
            return Err(EmbeddedError::AlreadyRunning(id.to_owned()));
        }
        let handle = self
            .spawn_replica(&slot.id, slot.addr, Arc::clone(&slot.stats))
            .await?;
        slot.stats.record_restart();
        slot.handle = Some(handle);
        slot.state = ReplicaState::Running;
        self.pool.upsert(slot.addr, Some(slot.id.clone()));
        tracing::info!(replica = %id, "replica restarted");
        Ok(())
    }

    /// Makes a replica's `/healthz` fail (`false`) or pass again, to show health checks.
    pub async fn set_healthy(&self, id: &str, healthy: bool) -> Result<(), EmbeddedError> {
        let _op = self.ops.lock().await;
        let slots = self.slots.lock().await;
        let slot = find(&slots, id)?;
        let handle = slot
            .handle
            .as_ref()
            .ok_or_else(|| EmbeddedError::NotRunning(id.to_owned()))?;
        handle.set_healthy(healthy);
        Ok(())
    }

    /// Heartbeat and adapter of replicas started from now on.
    pub fn settings(&self) -> (Heartbeat, Adapter) {
        *self
            .replica_settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the heartbeat and/or the adapter, and restarts every running replica with
    /// them (sessions reconnect, as after a redeploy).
    pub async fn reconfigure(
        &self,
        heartbeat: Option<Heartbeat>,
        adapter: Option<Adapter>,
    ) -> Result<(), EmbeddedError> {
        if adapter == Some(Adapter::Redis) && self.config.redis_url.is_none() {
            return Err(EmbeddedError::NoRedis);
        }
        let _op = self.ops.lock().await;
        {
            let mut settings = self
                .replica_settings
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(h) = heartbeat {
                settings.0 = h;
            }
            if let Some(a) = adapter {
                settings.1 = a;
            }
        }
        let running: Vec<String> = self
            .slots
            .lock()
            .await
            .iter()
            .filter(|s| s.handle.is_some())
            .map(|s| s.id.clone())
            .collect();
        for id in running {
            self.stop_now(&id).await?;
            self.restart_now(&id).await?;
        }
        Ok(())
    }

    /// Stops every replica gracefully, then the balancer.
    pub async fn shutdown(&self) {
        let _op = self.ops.lock().await;
        let handles: Vec<ReplicaHandle> = {
            let mut slots = self.slots.lock().await;
            slots
                .iter_mut()
                .filter_map(|slot| {
                    self.pool.set_enabled(slot.addr, false);
                    slot.state = ReplicaState::Stopped;
                    slot.handle.take()
                })
                .collect()
        };
        futures_util::future::join_all(handles.into_iter().map(ReplicaHandle::stop)).await;
        self.balancer.shutdown();
    }

    async fn take_running(
        &self,
        id: &str,
        next: ReplicaState,
    ) -> Result<ReplicaHandle, EmbeddedError> {
        let mut slots = self.slots.lock().await;
        let slot = find_mut(&mut slots, id)?;
        let handle = slot
            .handle
            .take()
            .ok_or_else(|| EmbeddedError::NotRunning(id.to_owned()))?;
        slot.state = next;
        // Out of rotation before the replica goes: no request is routed to a dying server.
        self.pool.set_enabled(slot.addr, false);
        Ok(handle)
    }

    async fn spawn_replica(
        &self,
        id: &str,
        addr: SocketAddr,
        stats: Arc<Stats>,
    ) -> Result<ReplicaHandle, EmbeddedError> {
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
            stats,
            header_read_timeout: stickyscope_replica::HEADER_READ_TIMEOUT,
        };
        Replica::start(config, listener)
            .await
            .map_err(|source| EmbeddedError::Replica {
                id: id.to_owned(),
                source,
            })
    }
}

fn find<'a>(slots: &'a [Slot], id: &str) -> Result<&'a Slot, EmbeddedError> {
    slots
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| EmbeddedError::UnknownReplica(id.to_owned()))
}

fn find_mut<'a>(slots: &'a mut [Slot], id: &str) -> Result<&'a mut Slot, EmbeddedError> {
    slots
        .iter_mut()
        .find(|s| s.id == id)
        .ok_or_else(|| EmbeddedError::UnknownReplica(id.to_owned()))
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
                Err(e @ EmbeddedError::UnknownReplica(_)) => {
                    (404, serde_json::json!({"error": e.to_string()}))
                }
                Err(
                    e @ (EmbeddedError::AlreadyRunning(_)
                    | EmbeddedError::NotRunning(_)
                    | EmbeddedError::Full),
                ) => (409, serde_json::json!({"error": e.to_string()})),
                Err(e) => (500, serde_json::json!({"error": e.to_string()})),
            }
        })
    }
}
