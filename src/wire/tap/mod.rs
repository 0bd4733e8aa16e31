//! The wire tap: a relay on 127.0.0.1 between one chat user's Socket.IO client and the
//! gateway (with a full HTTP proxy behind it for what the relay leaves to it).
//!
//! It keeps the user's cookie jar (this is how a client without one gets stickiness),
//! withholds the sticky cookie and adds `X-Stickiness: off` while the user's stickiness is
//! off, adds the user's own headers and login cookies, speaks TLS to an `https://`
//! gateway, and records every HTTP exchange and WebSocket message as a [`WireRecord`],
//! with the user's secrets masked. Requests and answers pass otherwise unchanged, but for
//! what any HTTP proxy changes: `Host` (set to the gateway's) and hop-by-hop headers. WebSocket frames pass byte for byte. Each record
//! names the replica that answered when something does (see [`Identify`]) and otherwise
//! says why not; failures carry the words the wire gave, and a sentence of its own for what
//! is not Engine.IO at all.
//!
//! Records are numbered in the order they are handed on, over a bounded channel: when the
//! session reading them falls behind, the tap waits (and with it the traffic it carries)
//! rather than buffer without end. A listening tap hands every record on through one
//! recorder, in the order its answers started back to the client (or, for the proxy's, its
//! records were made), whichever path (relay or proxy) they took.
//!
//! A light session's tap ([`Tap::direct`]) has no listener: its client, in this process,
//! hands it each request (`direct`), and everything else is the same — but that an exchange
//! its client stops waiting for still runs to its end and is recorded, and that the tap
//! can say when nothing is under way ([`Tap::settled`]).
//!
//! This module holds the tap itself — its configuration, starting and stopping it, the state
//! its connections share (the HTTP client toward the gateway: a tap's own, or the pool every
//! direct tap toward one gateway shares), and handing each request to the part that serves
//! it: `relay` relays the listening tap's exchanges and hands their copies to a recorder
//! thread, leaving upgrades and anything unusual to the proxy (`http1` reads the heads and
//! bodies it relays; `watchdog`, one timer per connection, bounds its waits); `direct`
//! takes a request from a client in this process; `http` proxies an HTTP exchange, `tunnel`
//! a WebSocket upgrade and the frames after it; `naming`
//! keeps the cookie jar and names the replica behind an answer; `tls` sets up TLS toward the
//! gateway; and `failures` says why an exchange failed.
//!
//! [`Identify`]: stickyscope_vocab::naming::Identify

mod direct;
mod failures;
mod http;
mod http1;
mod naming;
mod relay;
mod tls;
mod tunnel;
mod watchdog;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_tls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stickyscope_contract::{EngineQuery, RequestKind};
use stickyscope_vocab::naming::Identify;
use stickyscope_vocab::protocol::framing::Framing;
use stickyscope_vocab::protocol::socketio::{cut, MAX_KEPT_DATA};
use stickyscope_vocab::protocol::EnginePacket;
use stickyscope_vocab::record::{now_ms, Failure, FailureKind, Transport, WireKind, WireRecord};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::direct::{Answer, NotSwitched};
pub use self::failures::connect_failure;
use self::naming::{Jar, SentCookies};
use super::Naming;
use crate::http_serve::is_upgrade;

/// Largest HTTP body the tap buffers (Engine.IO's own limit is far lower).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long a TCP connection to the gateway may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start a tap.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// The chat user it serves.
    pub user: String,
    /// The gateway, `http://host:port`.
    pub gateway: String,
    /// Whether the user starts with stickiness on.
    pub sticky: bool,
    /// How long to wait for the gateway's answer (long polls included).
    pub timeout: Duration,
    /// How replicas are named (taught by whoever reads the balancer's API).
    pub naming: Naming,
    /// Headers sent on every request to the gateway (the WebSocket upgrade included).
    pub headers: Vec<(String, String)>,
    /// Cookies the jar starts with (a login's session cookie), sent beside the balancer's.
    pub cookies: Vec<(String, String)>,
    /// Values never spelled out in a record (auth tokens, header and cookie values).
    pub secrets: Vec<String>,
    /// A private CA's certificates (PEM) an `https://` gateway is checked against, beside
    /// the system's roots.
    pub ca_pem: Option<String>,
    /// Whether an `https://` gateway's certificate goes unchecked.
    pub insecure: bool,
}

impl TapConfig {
    /// A tap for `user` in front of `gateway`, sticky, with a 45 s timeout.
    pub fn new(user: impl Into<String>, gateway: impl Into<String>) -> Self {
        TapConfig {
            user: user.into(),
            gateway: gateway.into(),
            sticky: true,
            timeout: Duration::from_secs(45),
            naming: super::fixed_naming(Identify::default()),
            headers: Vec::new(),
            cookies: Vec::new(),
            secrets: Vec::new(),
            ca_pem: None,
            insecure: false,
        }
    }
}

/// Why a tap could not start.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The gateway URL is not `http(s)://host[:port]`.
    #[error("gateway URL {0:?} is not of the form http://host[:port] or https://host[:port]")]
    BadGateway(String),
    /// TLS toward the gateway cannot be set up as asked (a CA file that is not PEM).
    #[error("TLS: {0}")]
    Tls(String),
    /// A header the user gave cannot be sent.
    #[error("header {0:?} cannot be sent (not a header name, or a value with characters a header cannot carry)")]
    BadHeader(String),
    /// The local listener failed.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(#[from] std::io::Error),
}

/// A running tap. Dropping it stops it.
#[derive(Debug)]
pub struct Tap {
    /// Where it listens for the user's client; `None` for a tap a client in this process
    /// calls directly ([`Tap::direct`]).
    local_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

/// What a tap's connections share.
#[derive(Debug)]
struct Shared {
    user: String,
    authority: String,
    base: String,
    timeout: Duration,
    sticky: AtomicBool,
    jar: Mutex<Jar>,
    naming: Naming,
    /// Headers added to every request to the gateway.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Masked in every record.
    secrets: Vec<String>,
    /// The last record number handed on; held while a record is handed on, so numbers
    /// follow the order records reach the reader.
    seq: Mutex<u64>,
    /// A listening tap's recorder, which every record passes through (see [`Shared::emit`]);
    /// held open by the accept loop, each connection and each WebSocket tunnel.
    recorder: Option<mpsc::WeakSender<relay::Queued>>,
    /// The next place in the order the recorder hands records on in.
    places: AtomicU64,
    in_flight: AtomicUsize,
    /// Of those, long polls (see [`Tap::polls_in_flight`]).
    polls_in_flight: AtomicUsize,
    /// Told when the last exchange or tunnel under way has ended (see [`Tap::settled`]).
    settled: tokio::sync::Notify,
    client: GatewayClient,
    /// TLS toward the gateway, when it is `https://` (the host it names, the connector).
    tls: Option<(String, tokio_native_tls::TlsConnector)>,
    sink: mpsc::Sender<WireRecord>,
}

impl Tap {
    /// Starts a tap listening on loopback for the user's client; its records go to `sink`.
    pub async fn start(config: TapConfig, sink: mpsc::Sender<WireRecord>) -> Result<Tap, TapError> {
        let (recorder, queue) = mpsc::channel(relay::RECORDER_QUEUE);
        let shared = Shared::new(config, sink, Pool::Own, Some(recorder.downgrade()))?;
        let shared = Arc::new(shared);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        relay::start_recorder(Arc::clone(&shared), queue, local_addr.port());
        tokio::spawn(relay::accept_loop(
            Arc::clone(&shared),
            listener,
            shutdown.clone(),
            recorder,
        ));
        Ok(Tap {
            local_addr: Some(local_addr),
            shared,
            shutdown,
        })
    }

    /// A tap without a listener, for a client in this process that hands it each request
    /// ([`Tap::exchange`], [`Tap::websocket`]): the same jar, naming and records, without
    /// a loopback hop or a file for a listener. Its HTTP connections come from one pool
    /// that every direct tap toward the same gateway shares, as a browser shares one per
    /// origin across its tabs: a session's held poll keeps a connection of its own, and its
    /// posts take whichever is idle — one open file a polling session instead of two.
    /// (Each request still carries its own user's cookies; WebSockets get a connection
    /// each.)
    pub fn direct(config: TapConfig, sink: mpsc::Sender<WireRecord>) -> Result<Tap, TapError> {
        Ok(Tap {
            local_addr: None,
            shared: Arc::new(Shared::new(config, sink, Pool::Shared, None)?),
            shutdown: CancellationToken::new(),
        })
    }

    /// The URL the user's client connects to (none for a [`Tap::direct`] tap).
    pub fn url(&self) -> Option<String> {
        self.local_addr.map(|addr| format!("http://{addr}"))
    }

    /// Turns the user's stickiness on or off, from the next request on.
    pub fn set_sticky(&self, on: bool) {
        self.shared.sticky.store(on, Ordering::Relaxed);
    }

    /// Whether stickiness is on.
    pub fn sticky(&self) -> bool {
        self.shared.sticky.load(Ordering::Relaxed)
    }

    /// The sticky cookie value in the jar.
    pub fn sticky_cookie(&self) -> Option<String> {
        self.shared.sticky_cookie()
    }

    /// Puts this value of the sticky cookie in the jar, as if the balancer had set it: the
    /// next request carries it, and the balancer sends it to the server it names. An answer
    /// to a request sent before the pin does not overwrite it.
    pub fn pin(&self, value: &str) {
        self.shared.pin(value);
    }

    /// Exchanges and WebSocket tunnels under way.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Of the exchanges under way, a tap without a listener's long polls (`GET` on a
    /// polling session): a replica holds each until it has something to say, and counts
    /// none as a handshake or a refusal once it holds it.
    pub fn polls_in_flight(&self) -> usize {
        self.shared.polls_in_flight.load(Ordering::Relaxed)
    }

    /// Waits until nothing is under way ([`Tap::in_flight`] is 0). A tap without a listener
    /// ([`Tap::direct`]) has handed on the record of each exchange and tunnel by then; a
    /// listening tap's recorder may still hold the last ones for its rest.
    pub async fn settled(&self) {
        loop {
            let notified = self.shared.settled.notified();
            let mut notified = std::pin::pin!(notified);
            // Listening before looking: an end between the look and the wait is heard.
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Stops accepting; connections under way end as their peers close them. A tap
    /// without a listener ends the exchanges still under way that their callers stopped
    /// waiting for (see [`Tap::exchange`]), unrecorded.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A gateway's address, from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAddr {
    /// `host:port` (port 80, or 443 for `https://`, when the URL gives none).
    pub authority: String,
    /// The host, as TLS names it (SNI, the certificate's check).
    pub host: String,
    /// Whether it speaks TLS (`https://`).
    pub tls: bool,
}

impl GatewayAddr {
    /// Whether browsers take it for a secure origin: `https://`, or a loopback host
    /// (`localhost`, `127.0.0.0/8`, `::1`), where they keep `Secure` cookies over plain HTTP.
    pub fn secure_origin(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        self.tls
            || host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The gateway's address from its URL (`http://host[:port]` or `https://host[:port]`), or
/// why the URL cannot be a gateway — the one check every command makes of `--gateway`.
pub fn gateway_addr(url: &str) -> Result<GatewayAddr, TapError> {
    let bad = || TapError::BadGateway(url.to_owned());
    let scheme_of = |scheme: &str| {
        url.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            .then(|| &url[scheme.len()..])
    };
    let (rest, tls) = match (scheme_of("http://"), scheme_of("https://")) {
        (Some(rest), _) => (rest, false),
        (_, Some(rest)) => (rest, true),
        _ => return Err(bad()),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', ' ', '@']) {
        return Err(bad());
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']');
    let (host, with_port) = if has_port {
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        (host, authority.to_owned())
    } else {
        (
            authority,
            format!("{authority}:{}", if tls { 443 } else { 80 }),
        )
    };
    with_port.parse::<hyper::Uri>().map_err(|_| bad())?;
    Ok(GatewayAddr {
        authority: with_port,
        host: host.trim_matches(['[', ']']).to_owned(),
        tls,
    })
}

/// The gateway's `host:port` from its URL (see [`gateway_addr`]).
pub fn parse_gateway(url: &str) -> Result<String, TapError> {
    gateway_addr(url).map(|g| g.authority)
}

/// Whose connection pool a tap's HTTP requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    /// Its own.
    Own,
    /// The one every direct tap toward the same gateway, trusting the same, shares.
    Shared,
}

type GatewayClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP client toward a gateway, trusting `tls`, keeping at most `max_idle` idle
/// connections.
fn gateway_client(tls: &tokio_native_tls::TlsConnector, max_idle: usize) -> GatewayClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.enforce_http(false);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(crate::http_serve::POOL_IDLE)
        .pool_max_idle_per_host(max_idle)
        .build(HttpsConnector::from((connector, tls.clone())))
}

/// Idle connections the shared pool keeps: a session's poll and its post go out at once
/// when a ping arrives, so the pool has to open connections now and then; beyond this many
/// idle ones they are closed rather than kept (thousands would, measured, cost the server
/// as many open files, and the kernel's search for a free port slows every connect).
const SHARED_POOL_IDLE: usize = 128;

/// The client every direct tap toward `base` with `trust` shares (made once per process).
fn shared_client(
    base: &str,
    trust: &crate::tls_trust::Trust,
    tls: &tokio_native_tls::TlsConnector,
) -> GatewayClient {
    type Clients = std::collections::HashMap<(String, crate::tls_trust::Trust), GatewayClient>;
    static CLIENTS: Mutex<Option<Clients>> = Mutex::new(None);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    clients
        .get_or_insert_with(Default::default)
        .entry((base.to_owned(), trust.clone()))
        .or_insert_with(|| gateway_client(tls, SHARED_POOL_IDLE))
        .clone()
}

impl Shared {
    /// What a tap's connections share, from its configuration.
    fn new(
        config: TapConfig,
        sink: mpsc::Sender<WireRecord>,
        pool: Pool,
        recorder: Option<mpsc::WeakSender<relay::Queued>>,
    ) -> Result<Shared, TapError> {
        let gateway = gateway_addr(&config.gateway)?;
        let authority = gateway.authority.clone();
        let trust = crate::tls_trust::Trust {
            ca_pem: config.ca_pem.clone(),
            insecure: config.insecure,
        };
        let tls = tls::connector(&trust)?;
        let base = format!(
            "{}://{authority}",
            if gateway.tls { "https" } else { "http" }
        );
        let client = match pool {
            Pool::Own => gateway_client(&tls, usize::MAX),
            Pool::Shared => shared_client(&base, &trust, &tls),
        };
        let mut headers = Vec::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| TapError::BadHeader(name.clone()))?;
            let value =
                HeaderValue::from_str(value).map_err(|_| TapError::BadHeader(name.to_string()))?;
            headers.push((name, value));
        }
        let mut jar = Jar::for_origin(gateway.secure_origin());
        for (name, value) in &config.cookies {
            jar.keep(name, value);
        }
        Ok(Shared {
            user: config.user,
            base,
            authority,
            timeout: config.timeout,
            sticky: AtomicBool::new(config.sticky),
            jar: Mutex::new(jar),
            naming: config.naming,
            headers,
            secrets: config.secrets,
            seq: Mutex::new(0),
            recorder,
            places: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            polls_in_flight: AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
            client,
            tls: gateway.tls.then(|| (gateway.host.clone(), tls)),
            sink,
        })
    }
}

/// Counts an exchange or tunnel under way (and a long poll among them) while it lives.
struct InFlight {
    shared: Arc<Shared>,
    poll: bool,
}

impl InFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        InFlight::counting(shared, false)
    }

    /// Under way, and a long poll when `poll`: counted under way before it is counted a
    /// poll, and no longer a poll before it is no longer under way (never more polls than
    /// exchanges).
    fn counting(shared: &Arc<Shared>, poll: bool) -> Self {
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        if poll {
            shared.polls_in_flight.fetch_add(1, Ordering::Relaxed);
        }
        InFlight {
            shared: Arc::clone(shared),
            poll,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.poll {
            self.shared.polls_in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        if self.shared.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.shared.settled.notify_waiters();
        }
    }
}

/// What the tap learned about one HTTP request before forwarding it.
struct Outgoing {
    kind: RequestKind,
    /// The Engine.IO version asked for (`EIO=`).
    engineio: Option<u8>,
    /// How the exchange's polling payloads are decoded, chosen from `EIO=`.
    codec: Framing,
    method: String,
    sid: Option<String>,
    transport: Transport,
    started: Instant,
    at_ms: u64,
}

impl Outgoing {
    /// What a request going out with `method` to `uri` is, starting now.
    fn new(method: &hyper::Method, uri: &hyper::Uri) -> Self {
        Outgoing::since(method, uri, Instant::now(), now_ms())
    }

    /// What a request that went out with `method` to `uri` at `started` (`at_ms` on the
    /// wall clock) is.
    fn since(method: &hyper::Method, uri: &hyper::Uri, started: Instant, at_ms: u64) -> Self {
        let query = EngineQuery::parse(uri.query().unwrap_or(""));
        let engineio = query.eio.and_then(|v| v.parse().ok());
        Outgoing {
            kind: RequestKind::classify(method.as_str(), uri.query()),
            engineio,
            codec: Framing::asked(engineio),
            method: method.to_string(),
            sid: query.sid.map(str::to_owned),
            transport: if query.transport == Some("websocket") {
                Transport::Websocket
            } else {
                Transport::Polling
            },
            started,
            at_ms,
        }
    }
}

impl Shared {
    /// Serves one request from the user's client: an upgrade opens a WebSocket tunnel,
    /// anything else is one HTTP exchange.
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let _in_flight = InFlight::new(&self);
        let out = Outgoing::new(req.method(), req.uri());
        if is_upgrade(req.headers()) {
            return Ok(self.upgrade(req, out).await);
        }
        Ok(self.exchange(req, out).await)
    }

    /// Rewrites the request's headers for the gateway: Host, the user's own headers, cookie
    /// jar, stickiness. Returns what the request carries from the jar.
    fn prepare_headers(&self, headers: &mut HeaderMap) -> SentCookies {
        if let Ok(host) = HeaderValue::from_str(&self.authority) {
            headers.insert(header::HOST, host);
        }
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        self.carry_cookies(headers)
    }

    /// Reads an answer's body, within the tap's timeout and up to [`MAX_BODY`].
    async fn read_body(&self, body: Incoming) -> Result<Bytes, Failure> {
        match tokio::time::timeout(self.timeout, Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) => Err(Failure {
                kind: FailureKind::Gateway,
                reason: format!("response body failed: {e}"),
            }),
            Err(_) => Err(Failure {
                kind: FailureKind::Timeout,
                reason: format!("response body not complete within {:?}", self.timeout),
            }),
        }
    }

    /// Hands a record on. A listening tap's records all pass through its recorder, in the
    /// order they are given to it — the relay's exchanges and the proxy's records alike, so
    /// a handshake the relay passed on is never numbered after the upgrade that followed it
    /// through the proxy. Waits while the recorder or the reader is behind.
    async fn emit(&self, record: WireRecord) {
        let Some(recorder) = self.hold_recorder() else {
            return self.hand_on(record).await;
        };
        let reserved = recorder.reserve().await;
        match reserved {
            // The place is taken only once the record is sure to be queued.
            Ok(permit) => permit.send(relay::Queued {
                place: self.take_place(),
                what: relay::ToRecord::Record(record),
            }),
            Err(_) => self.hand_on(record).await,
        }
    }

    /// The next place in the recorder's order; whoever takes one must queue something in it.
    fn take_place(&self) -> u64 {
        self.places.fetch_add(1, Ordering::Relaxed)
    }

    /// A strong hold on the recorder's queue, while it is open: for a record about to be
    /// queued, or a task that may give it records after its connection has ended (a
    /// WebSocket tunnel).
    fn hold_recorder(&self) -> Option<mpsc::Sender<relay::Queued>> {
        self.recorder.as_ref().and_then(mpsc::WeakSender::upgrade)
    }

    /// Hands a record to the reader, numbered and with the secrets masked; waits while the
    /// reader is behind.
    async fn hand_on(&self, mut record: WireRecord) {
        if !self.secrets.is_empty() {
            mask_record(&mut record, &self.secrets);
        }
        let Ok(permit) = self.sink.reserve().await else {
            return;
        };
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        record.seq = *seq;
        permit.send(record);
    }

    /// A record of an HTTP exchange before its answer.
    fn http_record(&self, out: &Outgoing) -> WireRecord {
        let kind = WireKind::Http {
            request: out.kind,
            method: out.method.clone(),
            status: None,
        };
        let mut record = WireRecord::new(self.user.clone(), out.at_ms, out.transport, kind);
        record.sid = out.sid.clone();
        record.engineio = out.engineio;
        record
    }
}

/// Masks the secrets wherever a record shows what crossed the wire.
fn mask_record(record: &mut WireRecord, secrets: &[String]) {
    use stickyscope_vocab::access::masked;
    record.raw_up = masked(&record.raw_up, secrets);
    record.raw_down = masked(&record.raw_down, secrets);
    for packet in record
        .packets_up
        .iter_mut()
        .chain(record.packets_down.iter_mut())
    {
        if let EnginePacket::Message {
            socket: Some(socket),
        } = packet
        {
            socket.data = masked(&socket.data, secrets);
        }
    }
    if let Some(failure) = &mut record.failure {
        failure.reason = masked(&failure.reason, secrets);
    }
    if let Some(note) = &mut record.note {
        *note = masked(note, secrets);
    }
}

/// Puts the answer's status in an HTTP exchange's record.
fn set_status(record: &mut WireRecord, status: StatusCode) {
    if let WireKind::Http { status: s, .. } = &mut record.kind {
        *s = Some(status.as_u16());
    }
}

/// A header's value, when it is text.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A body as the record keeps it: text, cut to [`MAX_KEPT_DATA`].
fn text_of(body: &[u8]) -> String {
    cut(&String::from_utf8_lossy(body), MAX_KEPT_DATA).to_owned()
}

/// The tap's own plain-text answer to the client.
fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_are_checked() {
        assert_eq!(
            parse_gateway("http://127.0.0.1:8000").unwrap(),
            "127.0.0.1:8000"
        );
        assert_eq!(parse_gateway("http://localhost/").unwrap(), "localhost:80");
        assert_eq!(
            gateway_addr("https://staging.example/").unwrap(),
            GatewayAddr {
                authority: "staging.example:443".into(),
                host: "staging.example".into(),
                tls: true
            }
        );
        assert_eq!(
            gateway_addr("HTTPS://[::1]:8443").unwrap(),
            GatewayAddr {
                authority: "[::1]:8443".into(),
                host: "::1".into(),
                tls: true
            }
        );
        for bad in [
            "ftp://x",
            "127.0.0.1:8000",
            "http://",
            "http://a/b",
            "http://u@h:1",
        ] {
            assert!(parse_gateway(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secure_origins_are_https_and_loopback_as_browsers_take_them() {
        let secure = |url: &str| gateway_addr(url).unwrap().secure_origin();
        for yes in [
            "https://staging.example",
            "http://localhost:8000",
            "http://app.localhost",
            "http://127.0.0.1:8000",
            "http://127.8.0.1",
            "http://[::1]:8000",
        ] {
            assert!(secure(yes), "{yes}");
        }
        for no in [
            "http://staging.example",
            "http://10.0.0.5:8000",
            "http://localhost.example",
        ] {
            assert!(!secure(no), "{no}");
        }
    }
}
