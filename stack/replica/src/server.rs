//! One replica: a socketioxide server on its own listener, with a lifecycle.
//!
//! [`Replica::start`] serves on a bound listener until [`ReplicaHandle::stop`] (graceful:
//! stop accepting, close every Socket.IO session with a disconnect, let in-flight requests
//! finish) or [`ReplicaHandle::kill`] (abrupt: every TCP connection is cut at once, as when
//! a process dies). The HTTP routes are `/healthz`, `/stats` and the Engine.IO path, over
//! HTTP/1.1 (with WebSocket upgrades) or HTTP/2 by prior knowledge (h2c), told apart by a
//! connection's first bytes.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as HttpState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::adapter::{AdapterChoice, AdapterDriver, DriverError};
use crate::conn::ConnectionRegistry;
use crate::observe::{observe, ReplicaContext};
use crate::sessions::KnownSessions;
use crate::stats::Stats;
use stickyscope_contract::chat::{
    self, ChatAck, ChatBroadcast, ReceiptBroadcast, CHAT_EVENT, RECEIPT_EVENT,
};
use stickyscope_contract::heartbeat::{Heartbeat, HEARTBEAT_RANGE};

/// How long a graceful stop waits for in-flight requests before cutting them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may take to send a request's head (and an idle keep-alive
/// connection may wait for the next one) before it is closed: a client that trickles
/// headers (slow-loris) cannot hold a connection for ever. Longer than the idle time of the
/// app's own connection pools (10 s), so those never race a close.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything a replica needs to start.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The id sent as `X-Replica`.
    pub id: String,
    /// Heartbeat timing.
    pub heartbeat: Heartbeat,
    /// The adapter between replicas.
    pub adapter: AdapterChoice,
    /// Counters; pass the same ones to a restarted replica to keep counting.
    pub stats: Arc<Stats>,
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// The origins whose pages may call it, with credentials (`*`: any, without).
    pub cors_origins: Vec<String>,
}

impl ReplicaConfig {
    /// A config with fresh counters, default heartbeat and no adapter.
    pub fn new(id: impl Into<String>) -> Self {
        ReplicaConfig {
            id: id.into(),
            heartbeat: Heartbeat::default(),
            adapter: AdapterChoice::None,
            stats: Arc::new(Stats::default()),
            header_read_timeout: HEADER_READ_TIMEOUT,
            cors_origins: Vec::new(),
        }
    }
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The id cannot be sent as a header value.
    #[error("replica id {0:?} is not a valid header value")]
    BadId(String),
    /// pingInterval or pingTimeout is out of range.
    #[error("heartbeat {0:?} out of range: pingInterval and pingTimeout must lie within {1:?}")]
    BadHeartbeat(Heartbeat, std::ops::RangeInclusive<Duration>),
    /// The listener has no local address.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// The adapter's transport could not be reached.
    #[error("adapter: {0}")]
    Adapter(#[from] DriverError),
    /// The adapter could not subscribe to its channels.
    #[error("adapter initialisation: {0}")]
    AdapterInit(String),
}

type CloseIo = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A running replica.
pub struct Replica;

impl Replica {
    /// Starts serving on `listener`.
    pub async fn start(
        config: ReplicaConfig,
        listener: TcpListener,
    ) -> Result<ReplicaHandle, ReplicaError> {
        let local_addr = listener.local_addr()?;
        if !config.heartbeat.in_range() {
            return Err(ReplicaError::BadHeartbeat(
                config.heartbeat,
                HEARTBEAT_RANGE,
            ));
        }
        let replica = HeaderValue::from_str(&config.id)
            .map_err(|_| ReplicaError::BadId(config.id.clone()))?;
        let live = Arc::new(AtomicBool::new(true));
        let healthy = Arc::new(AtomicBool::new(true));
        let ctx = Arc::new(ReplicaContext {
            replica,
            stats: Arc::clone(&config.stats),
            sessions: Arc::new(KnownSessions::default()),
            cors: crate::cors::Cors::new(config.cors_origins.iter().cloned()),
        });
        let chat = ChatContext {
            replica: config.id.clone(),
            stats: Arc::clone(&config.stats),
            sessions: Arc::clone(&ctx.sessions),
            live: Arc::clone(&live),
        };

        let (router, close_io, driver) = match &config.adapter {
            AdapterChoice::None => {
                let (layer, io) = builder(config.heartbeat, chat).build_layer();
                io.ns(
                    "/",
                    on_connect::<LocalAdapter>.with(register_handlers::<LocalAdapter>),
                );
                (app_router(layer), close_fn(io), None)
            }
            AdapterChoice::Memory(bus) => {
                let driver = AdapterDriver::memory(bus);
                let (router, close) = remote_router(config.heartbeat, driver.clone(), chat).await?;
                (router, close, Some(driver))
            }
            AdapterChoice::Redis(url) => {
                let driver = AdapterDriver::connect_redis(url).await?;
                let (router, close) = remote_router(config.heartbeat, driver.clone(), chat).await?;
                (router, close, Some(driver))
            }
        };
        let router = router.with_state(AppState {
            id: config.id.clone(),
            stats: Arc::clone(&config.stats),
            healthy: Arc::clone(&healthy),
        });

        let accepting = CancellationToken::new();
        let draining = CancellationToken::new();
        let connections = Arc::new(ConnectionRegistry::default());
        let (done_tx, done_rx) = watch::channel(false);
        let serve = serve(
            listener,
            router,
            ctx,
            Arc::clone(&connections),
            (accepting.clone(), draining.clone()),
            config.header_read_timeout,
        );
        tokio::spawn(async move {
            serve.await;
            let _ = done_tx.send(true);
        });
        tracing::info!(replica = %config.id, %local_addr, adapter = config.adapter.name(), "replica serving");

        Ok(ReplicaHandle {
            id: config.id,
            local_addr,
            stats: config.stats,
            healthy,
            live,
            accepting,
            draining,
            connections,
            close_io,
            driver,
            done: done_rx,
        })
    }
}

/// Control over a running replica.
pub struct ReplicaHandle {
    id: String,
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    healthy: Arc<AtomicBool>,
    live: Arc<AtomicBool>,
    accepting: CancellationToken,
    draining: CancellationToken,
    connections: Arc<ConnectionRegistry>,
    close_io: CloseIo,
    driver: Option<AdapterDriver>,
    done: watch::Receiver<bool>,
}

impl std::fmt::Debug for ReplicaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaHandle")
            .field("id", &self.id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ReplicaHandle {
    /// The replica id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Makes `/healthz` answer 200 (`true`) or 503 (`false`), to simulate a sick replica.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Stops gracefully: no new connections, every session closed with a disconnect,
    /// in-flight requests given [`DRAIN_TIMEOUT`] to finish, then the rest cut.
    pub async fn stop(mut self) {
        tracing::info!(replica = %self.id, "replica stopping");
        self.accepting.cancel();
        (self.close_io)().await;
        self.retire();
        self.draining.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while !self.connections.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if drained.is_err() {
            let cut = self.connections.cut_all();
            tracing::warn!(replica = %self.id, cut, "connections still open after the drain timeout: cut");
        }
        let _ = self.done.wait_for(|done| *done).await;
        tracing::info!(replica = %self.id, "replica stopped");
    }

    /// Dies abruptly: every connection is cut at once and every session is lost.
    pub async fn kill(mut self) {
        self.accepting.cancel();
        self.draining.cancel();
        let cut = self.connections.cut_all();
        self.retire();
        // Release the dead instance's sessions; nothing reaches the network any more.
        tokio::spawn((self.close_io)());
        let _ = self.done.wait_for(|done| *done).await;
        tracing::info!(replica = %self.id, cut, "replica killed");
    }

    /// Detaches this instance from shared state: counters and the adapter bus.
    fn retire(&self) {
        self.live.store(false, Ordering::Relaxed);
        self.stats.sockets_reset();
        if let Some(driver) = &self.driver {
            driver.leave();
        }
    }
}

/// Initial read buffer of each WebSocket connection. Chat messages and heartbeats are small
/// (a chat message is at most 4 KB of text) and the buffer grows for a bigger frame;
/// engineioxide's default of 4 KiB was a fifth of what a connection costs at rest.
const WS_READ_BUFFER: usize = 256;

fn builder(heartbeat: Heartbeat, chat: ChatContext) -> socketioxide::SocketIoBuilder {
    SocketIo::builder()
        .ping_interval(heartbeat.interval)
        .ping_timeout(heartbeat.timeout)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .with_state(chat)
}

type RemoteAdapter = CustomRedisAdapter<socketioxide::adapter::Emitter, AdapterDriver>;

async fn remote_router(
    heartbeat: Heartbeat,
    driver: AdapterDriver,
    chat: ChatContext,
) -> Result<(Router<AppState>, CloseIo), ReplicaError> {
    let ctr = RedisAdapterCtr::new_with_driver(driver, RedisAdapterConfig::default());
    let (layer, io) = builder(heartbeat, chat)
        .with_adapter::<RemoteAdapter>(ctr)
        .build_layer();
    io.ns(
        "/",
        on_connect::<RemoteAdapter>.with(register_handlers::<RemoteAdapter>),
    )
    .await
    .map_err(|e| ReplicaError::AdapterInit(e.to_string()))?;
    Ok((app_router(layer), close_fn(io)))
}

fn close_fn<A: Adapter>(io: SocketIo<A>) -> CloseIo {
    Arc::new(move || {
        let io = io.clone();
        Box::pin(async move { io.close().await })
    })
}

#[derive(Clone)]
struct AppState {
    id: String,
    stats: Arc<Stats>,
    healthy: Arc<AtomicBool>,
}

fn app_router<A: Adapter>(layer: SocketIoLayer<A>) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/stats", get(stats))
        .layer(layer)
}

async fn healthz(HttpState(state): HttpState<AppState>) -> impl IntoResponse {
    if state.healthy.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy (set by the operator)\n",
        )
    }
}

async fn stats(HttpState(state): HttpState<AppState>) -> impl IntoResponse {
    Json(state.stats.snapshot(&state.id))
}

/// What chat handlers share.
#[derive(Clone)]
struct ChatContext {
    replica: String,
    stats: Arc<Stats>,
    sessions: Arc<KnownSessions>,
    live: Arc<AtomicBool>,
}

/// Runs before the Socket.IO CONNECT answer is sent (a connect middleware), so the event
/// handlers exist before the client can emit: socketioxide calls the connect handler
/// itself only after sending CONNECT, on another task.
async fn register_handlers<A: Adapter>(
    socket: SocketRef<A>,
    State(chat): State<ChatContext>,
) -> Result<(), std::convert::Infallible> {
    chat.stats.socket_connected();
    socket.on(CHAT_EVENT, on_chat::<A>);
    socket.on(RECEIPT_EVENT, on_receipt::<A>);
    socket.on_disconnect(on_disconnect::<A>);
    Ok(())
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    tracing::debug!(sid = %socket.id, "socket connected");
}

async fn on_chat<A: Adapter>(
    socket: SocketRef<A>,
    TryData(data): TryData<chat::WireChat>,
    ack: AckSender<A>,
    State(chat): State<ChatContext>,
) {
    chat.handle_chat(socket, data, ack).await;
}

async fn on_receipt<A: Adapter>(
    socket: SocketRef<A>,
    TryData(data): TryData<chat::WireReceipt>,
    State(chat): State<ChatContext>,
) {
    let checked = data
        .map_err(|_| chat::ChatError::NotAnObject)
        .and_then(|wire| chat::validate_receipt(&wire));
    match checked {
        Ok((id, by)) => {
            let out = ReceiptBroadcast {
                id,
                by,
                replica: chat.replica.clone(),
            };
            if let Err(e) = socket.emit(RECEIPT_EVENT, &out) {
                tracing::debug!("receipt echo failed: {e}");
            }
            if let Err(e) = socket.broadcast().emit(RECEIPT_EVENT, &out).await {
                tracing::warn!("receipt broadcast failed: {}", broadcast_failure(&e));
            }
        }
        Err(e) => tracing::debug!(sid = %socket.id, "receipt refused: {e}"),
    }
}

async fn on_disconnect<A: Adapter>(socket: SocketRef<A>, State(chat): State<ChatContext>) {
    chat.sessions.remove(&socket.id.to_string());
    if chat.live.load(Ordering::Relaxed) {
        chat.stats.socket_disconnected();
    }
}

impl ChatContext {
    async fn handle_chat<A: Adapter>(
        &self,
        socket: SocketRef<A>,
        data: Result<chat::WireChat, socketioxide::ParserError>,
        ack: AckSender<A>,
    ) {
        // Anything that does not decode as a map of fields is not the object we need.
        let checked = data
            .map_err(|_| chat::ChatError::NotAnObject)
            .and_then(|wire| chat::validate(&wire));
        let reply = match checked {
            Ok(msg) => {
                let id = msg.id.clone();
                let out = ChatBroadcast {
                    id: msg.id,
                    from: msg.from,
                    text: msg.text,
                    replica: self.replica.clone(),
                    at: chat::now_millis(),
                };
                if let Err(e) = socket.emit(CHAT_EVENT, &out) {
                    tracing::debug!("chat echo to sender failed: {e}");
                }
                match socket.broadcast().emit(CHAT_EVENT, &out).await {
                    Ok(()) => {
                        self.stats.record_chat_accepted(&id);
                        ChatAck::accepted(&self.replica)
                    }
                    Err(e) => {
                        let why = broadcast_failure(&e);
                        tracing::warn!("chat broadcast failed: {why}");
                        self.stats.record_chat_refused();
                        ChatAck::Refused {
                            ok: false,
                            error: format!("broadcast failed: {why}"),
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(sid = %socket.id, "chat refused: {e}");
                self.stats.record_chat_refused();
                ChatAck::refused(&e)
            }
        };
        if let Err(e) = ack.send(&reply) {
            tracing::debug!("chat ack not sent: {e}");
        }
    }
}

/// Requests one HTTP/2 connection may have in flight: a balancer that speaks h2c to the
/// replica (the embedded stack's) sends every held poll of every session here over one
/// connection, so the usual limit of a few hundred would queue sessions behind each other.
const H2_STREAMS_PER_CONNECTION: u32 = 1 << 20;

async fn serve(
    listener: TcpListener,
    router: Router,
    ctx: Arc<ReplicaContext>,
    connections: Arc<ConnectionRegistry>,
    (accepting, draining): (CancellationToken, CancellationToken),
    header_read_timeout: Duration,
) {
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = accepting.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(local_addr) = stream.local_addr() else {
            continue;
        };
        let tracked = match connections.track(stream) {
            Ok(tracked) => tracked,
            Err(e) => {
                tracing::warn!("could not track a connection: {e}");
                continue;
            }
        };
        let router = router.clone();
        let ctx = Arc::clone(&ctx);
        let draining = draining.clone();
        tasks.spawn(async move {
            let svc =
                service_fn(move |req| observe(req, router.clone(), Arc::clone(&ctx), local_addr));
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(H2_STREAMS_PER_CONNECTION);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tracked), svc);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!("connection ended: {e}");
                    }
                }
                _ = draining.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connection tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    draining.cancelled().await;
    while tasks.join_next().await.is_some() {}
}

/// A broadcast failure in one line: which errors, for how many sockets (socketioxide lists
/// one error per socket, thousands of them when many clients read too slowly).
pub fn broadcast_failure(e: &socketioxide::BroadcastError) -> String {
    match e {
        socketioxide::BroadcastError::Socket(errors) => {
            let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
            for error in errors {
                *counts.entry(error.to_string()).or_default() += 1;
            }
            let parts: Vec<String> = counts
                .into_iter()
                .map(|(what, n)| format!("{n} socket{}: {what}", if n == 1 { "" } else { "s" }))
                .collect();
            parts.join("; ")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_broadcast_failure_is_one_line_however_many_sockets_failed() {
        use socketioxide::{BroadcastError, SocketError};
        let mut errors = vec![SocketError::InternalChannelFull; 4987];
        errors.push(SocketError::Closed);
        let line = super::broadcast_failure(&BroadcastError::Socket(errors));
        assert_eq!(
            line,
            "4987 sockets: internal channel full error; 1 socket: socket closed"
        );
    }
}
