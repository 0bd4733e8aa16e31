//! The wire tap: a transparent reverse proxy on 127.0.0.1 between one chat user's
//! Socket.IO client and the gateway.
//!
//! It keeps the user's cookie jar (this is how a client without one gets stickiness),
//! withholds the sticky cookie and adds `X-Stickiness: off` while the user's stickiness is
//! off, and records every HTTP exchange and WebSocket message as a [`WireRecord`]. Requests
//! and answers pass otherwise unchanged, but for what any HTTP proxy changes: `Host` (set to
//! the gateway's) and hop-by-hop headers. WebSocket frames pass byte for byte. Each record
//! names the replica that answered when something does (see [`super::identify`]) and
//! otherwise says why not; failures carry the words the wire gave, and a sentence of its
//! own for what is not Engine.IO at all.
//!
//! Records are numbered in the order they are handed on, over a bounded channel: when the
//! session reading them falls behind, the tap waits (and with it the traffic it carries)
//! rather than buffer without end.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use stickyscope_contract::names::{STICKINESS_HEADER, X_REPLICA, X_REPLICA_ADDR};
use stickyscope_contract::refusal::{
    engine_error_message, refusal_reason, UPGRADE_UNKNOWN_SESSION,
};
use stickyscope_contract::{EngineQuery, RequestKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::jar::CookieJar;
use super::SharedIdentify;
use crate::http_serve::{is_upgrade, strip_hop_by_hop, strip_hop_by_hop_keeping_upgrade};
use stickyscope_vocab::naming::{Identify, Source};
use stickyscope_vocab::protocol::socketio::{cut, MAX_KEPT_DATA};
use stickyscope_vocab::protocol::websocket::{FrameDecoder, WsMessage};
use stickyscope_vocab::protocol::{decode_payload, decode_text_packet, engineio_v3, EnginePacket};
use stickyscope_vocab::record::{Direction, Failure, FailureKind, Transport, WireKind, WireRecord};
use stickyscope_vocab::traefik_model::NO_SERVER;

/// Largest HTTP body the tap buffers (Engine.IO's own limit is far lower).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long a TCP connection to the gateway may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// How replicas are identified (shared with whoever learns the balancer's servers).
    pub identify: SharedIdentify,
}

impl TapConfig {
    /// A tap for `user` in front of `gateway`, sticky, with a 45 s timeout.
    pub fn new(user: impl Into<String>, gateway: impl Into<String>) -> Self {
        TapConfig {
            user: user.into(),
            gateway: gateway.into(),
            sticky: true,
            timeout: Duration::from_secs(45),
            identify: SharedIdentify::default(),
        }
    }
}

/// Why a tap could not start.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The gateway URL is not `http://host[:port]`.
    #[error("gateway URL {0:?} is not of the form http://host[:port]")]
    BadGateway(String),
    /// The gateway URL is `https://`: the taps speak plain HTTP to the gateway.
    #[error("gateway URL {0:?} is https: stickyscope speaks plain HTTP to the gateway for now; give the gateway's plain-HTTP address (e.g. nginx's port 80 behind the TLS terminator)")]
    Https(String),
    /// The local listener failed.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(#[from] std::io::Error),
}

/// A running tap. Dropping it stops it.
#[derive(Debug)]
pub struct Tap {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

/// The user's cookies, and how many times the user has been pinned: an answer to a request
/// sent before the latest pin must not put back the cookie the pin replaced.
#[derive(Debug, Default)]
struct Jar {
    cookies: CookieJar,
    pins: u64,
}

/// What a request carried from the jar.
struct SentCookies {
    /// The sticky cookie's value, when sent.
    sticky: Option<String>,
    /// The jar's pin count when the request went out.
    pins: u64,
}

#[derive(Debug)]
struct Shared {
    user: String,
    authority: String,
    base: String,
    timeout: Duration,
    sticky: AtomicBool,
    jar: Mutex<Jar>,
    identify: SharedIdentify,
    /// The last record number handed on; held while a record is handed on, so numbers
    /// follow the order records reach the reader.
    seq: Mutex<u64>,
    in_flight: AtomicUsize,
    client: Client<HttpConnector, Full<Bytes>>,
    sink: mpsc::Sender<WireRecord>,
}

impl Tap {
    /// Starts a tap; its events go to `sink`.
    pub async fn start(config: TapConfig, sink: mpsc::Sender<WireRecord>) -> Result<Tap, TapError> {
        let authority = parse_gateway(&config.gateway)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let shared = Arc::new(Shared {
            user: config.user,
            base: format!("http://{authority}"),
            authority,
            timeout: config.timeout,
            sticky: AtomicBool::new(config.sticky),
            jar: Mutex::new(Jar::default()),
            identify: config.identify,
            seq: Mutex::new(0),
            in_flight: AtomicUsize::new(0),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(crate::http_serve::POOL_IDLE)
                .build(connector),
            sink,
        });
        let shutdown = CancellationToken::new();
        let serving = Arc::clone(&shared);
        tokio::spawn(crate::http_serve::accept_loop(
            listener,
            shutdown.clone(),
            ("tap", crate::http_serve::HEADER_READ_TIMEOUT),
            move |_| {
                let shared = Arc::clone(&serving);
                service_fn(move |req| Arc::clone(&shared).handle(req))
            },
        ));
        Ok(Tap {
            local_addr,
            shared,
            shutdown,
        })
    }

    /// The URL the user's client connects to.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
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
        let name = self.shared.cookie_name();
        self.shared.jar().cookies.get(&name).map(str::to_owned)
    }

    /// Puts this value of the sticky cookie in the jar, as if the balancer had set it: the
    /// next request carries it, and the balancer sends it to the server it names. An answer
    /// to a request sent before the pin does not overwrite it.
    pub fn pin(&self, value: &str) {
        let name = self.shared.cookie_name();
        let mut jar = self.shared.jar();
        jar.cookies
            .store(format!("{name}={value}; Path=/").as_bytes());
        jar.pins += 1;
    }

    /// Exchanges and WebSocket tunnels under way.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Stops accepting; connections under way end as their peers close them.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn parse_gateway(url: &str) -> Result<String, TapError> {
    let bad = || TapError::BadGateway(url.to_owned());
    if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return Err(TapError::Https(url.to_owned()));
    }
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', ' ', '@']) {
        return Err(bad());
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    with_port.parse::<hyper::Uri>().map_err(|_| bad())?;
    Ok(with_port)
}

/// Decrements the in-flight counter when dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the tap learned about one HTTP request before forwarding it.
struct Outgoing {
    kind: RequestKind,
    /// The Engine.IO version asked for (`EIO=`).
    engineio: Option<u8>,
    method: String,
    sid: Option<String>,
    transport: Transport,
    started: Instant,
    at_ms: u64,
}

impl Shared {
    fn jar(&self) -> std::sync::MutexGuard<'_, Jar> {
        self.jar.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn identify(&self) -> std::sync::RwLockReadGuard<'_, Identify> {
        self.identify.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The balancer's sticky cookie's name.
    fn cookie_name(&self) -> String {
        self.identify().cookie.clone()
    }

    /// Names the replica behind an answer (see [`Identify`]) and records it. The sticky
    /// cookie names a server only for an answer a server gave (`from_server`: a success, a
    /// 101, an Engine.IO error); an error page of the balancer's own names none.
    fn name_replica(
        &self,
        event: &mut WireRecord,
        headers: &HeaderMap,
        sent_cookie: Option<&str>,
        from_server: bool,
    ) {
        let identify = self.identify();
        let set_cookie = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| cookie::Cookie::parse(v).ok())
            .find(|c| c.name() == identify.cookie)
            .map(|c| c.value_trimmed().to_owned());
        let named = identify
            .header
            .as_deref()
            .and_then(|h| header_text(headers, h));
        let (set_cookie, sent_cookie) = if from_server {
            (set_cookie, sent_cookie)
        } else {
            (None, None)
        };
        let found = identify.identify(
            header_text(headers, X_REPLICA).as_deref(),
            named.as_deref(),
            set_cookie.as_deref(),
            sent_cookie,
        );
        event.replica_addr = header_text(headers, X_REPLICA_ADDR);
        match found {
            Ok((replica, source)) => {
                if let Source::Cookie { .. } = source {
                    // The label is the server's address: the topology joins it with the
                    // API's.
                    event.replica_addr = Some(replica.clone());
                }
                event.replica = Some(replica);
                event.replica_source = Some(source);
            }
            Err(why) if from_server => event.unnamed = Some(why.to_string()),
            Err(_) => {}
        }
    }

    /// Hands a record on, numbered; waits while the reader is behind.
    async fn emit(&self, mut event: WireRecord) {
        let Ok(permit) = self.sink.reserve().await else {
            return;
        };
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        event.seq = *seq;
        permit.send(event);
    }

    fn blank_event(&self, out: &Outgoing, kind: WireKind) -> WireRecord {
        WireRecord {
            seq: 0,
            at_ms: out.at_ms,
            user: self.user.clone(),
            transport: out.transport,
            kind,
            sid: out.sid.clone(),
            engineio: out.engineio,
            replica: None,
            replica_source: None,
            unnamed: None,
            replica_addr: None,
            latency_us: None,
            held_us: None,
            bytes_up: 0,
            bytes_down: 0,
            packets_up: Vec::new(),
            packets_down: Vec::new(),
            raw_up: String::new(),
            raw_down: String::new(),
            failure: None,
            note: None,
        }
    }

    /// A record of an HTTP exchange before its answer.
    fn http_event(&self, out: &Outgoing) -> WireRecord {
        self.blank_event(
            out,
            WireKind::Http {
                request: out.kind,
                method: out.method.clone(),
                status: None,
            },
        )
    }

    /// Rewrites the request's headers for the gateway: Host, cookie jar, stickiness.
    /// Returns what the request carries from the jar.
    fn prepare_headers(&self, headers: &mut HeaderMap) -> SentCookies {
        if let Ok(host) = HeaderValue::from_str(&self.authority) {
            headers.insert(header::HOST, host);
        }
        let sticky = self.sticky.load(Ordering::Relaxed);
        let cookie_name = self.cookie_name();
        let withheld = (!sticky).then_some(cookie_name.as_str());
        let (from_jar, sent) = {
            let jar = self.jar();
            let sent = SentCookies {
                sticky: if sticky {
                    jar.cookies.get(&cookie_name).map(str::to_owned)
                } else {
                    None
                },
                pins: jar.pins,
            };
            (jar.cookies.header(withheld), sent)
        };
        let from_client: Vec<String> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        headers.remove(header::COOKIE);
        let all: Vec<String> = from_client.into_iter().chain(from_jar).collect();
        if let Ok(v) = HeaderValue::from_str(&all.join("; ")) {
            if !all.is_empty() {
                headers.insert(header::COOKIE, v);
            }
        }
        let stickiness = HeaderName::from_static(STICKINESS_HEADER);
        if sticky {
            headers.remove(&stickiness);
        } else {
            headers.insert(stickiness, HeaderValue::from_static("off"));
        }
        sent
    }

    /// Keeps the answer's cookies; the sticky cookie only when no pin came after the request.
    fn remember_cookies(&self, headers: &HeaderMap, sent: &SentCookies) {
        let cookie_name = self.cookie_name();
        let mut jar = self.jar();
        let pinned_since = jar.pins != sent.pins;
        for value in headers.get_all(header::SET_COOKIE) {
            if pinned_since {
                jar.cookies.store_except(value.as_bytes(), &cookie_name);
            } else {
                jar.cookies.store(value.as_bytes());
            }
        }
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let _in_flight = InFlight::new(&self);
        let query = EngineQuery::parse(req.uri().query().unwrap_or(""));
        let kind = RequestKind::classify(req.method().as_str(), req.uri().query());
        let out = Outgoing {
            kind,
            engineio: query.eio.and_then(|v| v.parse().ok()),
            method: req.method().to_string(),
            sid: query.sid.map(str::to_owned),
            transport: if query.transport == Some("websocket") {
                Transport::Websocket
            } else {
                Transport::Polling
            },
            started: Instant::now(),
            at_ms: now_ms(),
        };
        if is_upgrade(req.headers()) {
            return Ok(self.upgrade(req, out).await);
        }
        Ok(self.exchange(req, out).await)
    }

    async fn exchange(&self, req: Request<Incoming>, out: Outgoing) -> Response<Full<Bytes>> {
        let (mut parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("tap could not read the request body: {e}"),
                )
            }
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let Ok(uri) = format!("{}{path}", self.base).parse::<hyper::Uri>() else {
            return plain(StatusCode::BAD_REQUEST, "tap: unusable request path".into());
        };
        parts.uri = uri;
        strip_hop_by_hop(&mut parts.headers);
        let sent = self.prepare_headers(&mut parts.headers);

        let mut event = self.http_event(&out);
        event.bytes_up = body.len() as u64;
        if out.method == "POST" {
            event.packets_up = if out.engineio == Some(3) {
                engineio_v3::decode_payload(&body)
            } else {
                decode_payload(&body)
            };
            event.raw_up = text_of(&body);
        }

        let request = self
            .client
            .request(Request::from_parts(parts, Full::new(body)));
        let answer = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => Err(Failure {
                kind: FailureKind::Timeout,
                reason: format!("no answer from the gateway within {:?}", self.timeout),
            }),
            Ok(Err(e)) if e.is_connect() => Err(connect_failure(&e, &self.authority)),
            Ok(Err(e)) => Err(transport_failure(&e)),
            Ok(Ok(resp)) => {
                let (parts, body) = resp.into_parts();
                match tokio::time::timeout(self.timeout, Limited::new(body, MAX_BODY).collect())
                    .await
                {
                    Ok(Ok(collected)) => Ok((parts, collected.to_bytes())),
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
        };
        event.latency_us = Some(out.started.elapsed().as_micros() as u64);

        let (mut parts, body) = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                let status = if failure.kind == FailureKind::Timeout {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                let text = format!("stickyscope tap: {}\n", failure.reason);
                event.failure = Some(failure);
                self.emit(event).await;
                return plain(status, text);
            }
        };
        let status = parts.status;
        if let WireKind::Http { status: s, .. } = &mut event.kind {
            *s = Some(status.as_u16());
        }
        let from_server = status.is_success() || engine_error_message(&body).is_some();
        self.name_replica(
            &mut event,
            &parts.headers,
            sent.sticky.as_deref(),
            from_server,
        );
        event.bytes_down = body.len() as u64;
        event.held_us = stickyscope_vocab::timing::held_us(
            parts
                .headers
                .get_all("server-timing")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        self.remember_cookies(&parts.headers, &sent);
        if status.is_client_error() || status.is_server_error() {
            let from_replica = parts.headers.contains_key(X_REPLICA);
            let mut failure = classify_refusal(status, &body, from_replica);
            failure.reason = with_version_hint(failure.reason, out.engineio);
            event.failure = Some(failure);
            event.raw_down = text_of(&body);
        } else if out.method == "GET" {
            // What crossed the wire decides: a v3 server frames its answer as v3 whatever
            // the client asked for.
            event.packets_down = if out.engineio == Some(3) || engineio_v3::looks_like_v3(&body) {
                event.engineio = Some(3);
                engineio_v3::decode_payload(&body)
            } else {
                decode_payload(&body)
            };
            event.raw_down = text_of(&body);
            let nothing_decoded = !event.packets_down.is_empty()
                && event
                    .packets_down
                    .iter()
                    .all(|p| matches!(p, EnginePacket::Invalid { .. }));
            if nothing_decoded {
                event.failure = Some(not_engine_io(status, &parts.headers, &body));
            }
            if event.sid.is_none() {
                event.sid = event.packets_down.iter().find_map(|p| match p {
                    EnginePacket::Open(open) => Some(open.sid.clone()),
                    _ => None,
                });
            }
        }
        self.emit(event).await;
        strip_hop_by_hop(&mut parts.headers);
        Response::from_parts(parts, Full::new(body))
    }

    async fn upgrade(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        out: Outgoing,
    ) -> Response<Full<Bytes>> {
        let client_upgrade = hyper::upgrade::on(&mut req);
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let Ok(uri) = path.parse::<hyper::Uri>() else {
            return plain(StatusCode::BAD_REQUEST, "tap: unusable request path".into());
        };
        parts.uri = uri;
        strip_hop_by_hop_keeping_upgrade(&mut parts.headers);
        let sent = self.prepare_headers(&mut parts.headers);
        let mut event = self.http_event(&out);

        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.authority))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        let stream = match connected {
            Ok(stream) => stream,
            Err(e) => {
                let failure = connect_failure(&e, &self.authority);
                let text = format!("stickyscope tap: {}\n", failure.reason);
                event.failure = Some(failure);
                event.latency_us = Some(out.started.elapsed().as_micros() as u64);
                self.emit(event).await;
                return plain(StatusCode::BAD_GATEWAY, text);
            }
        };
        let _ = stream.set_nodelay(true);
        let handshake = async {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
            });
            sender.send_request(Request::from_parts(parts, body)).await
        };
        let resp = match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                event.failure = Some(transport_failure(&e));
                self.emit(event).await;
                return plain(
                    StatusCode::BAD_GATEWAY,
                    "stickyscope tap: upgrade request failed\n".into(),
                );
            }
            Err(_) => {
                event.failure = Some(Failure {
                    kind: FailureKind::Timeout,
                    reason: format!("no answer to the upgrade within {:?}", self.timeout),
                });
                self.emit(event).await;
                return plain(
                    StatusCode::GATEWAY_TIMEOUT,
                    "stickyscope tap: upgrade timed out\n".into(),
                );
            }
        };
        let (mut parts, body) = resp.into_parts();
        let status = parts.status;
        event.latency_us = Some(out.started.elapsed().as_micros() as u64);
        if let WireKind::Http { status: s, .. } = &mut event.kind {
            *s = Some(status.as_u16());
        }
        self.remember_cookies(&parts.headers, &sent);

        if status != StatusCode::SWITCHING_PROTOCOLS {
            // A refused upgrade: an ordinary answer, read within the same bound as any other.
            let read = tokio::time::timeout(self.timeout, Limited::new(body, MAX_BODY).collect());
            let body = match read.await {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) => {
                    event.failure = Some(Failure {
                        kind: FailureKind::Gateway,
                        reason: format!("response body failed: {e}"),
                    });
                    Bytes::new()
                }
                Err(_) => {
                    event.failure = Some(Failure {
                        kind: FailureKind::Timeout,
                        reason: format!("response body not complete within {:?}", self.timeout),
                    });
                    Bytes::new()
                }
            };
            let from_server = engine_error_message(&body).is_some();
            self.name_replica(
                &mut event,
                &parts.headers,
                sent.sticky.as_deref(),
                from_server,
            );
            if event.failure.is_none() && (status.is_client_error() || status.is_server_error()) {
                let from_replica = parts.headers.contains_key(X_REPLICA);
                let mut failure = classify_refusal(status, &body, from_replica);
                failure.reason = with_version_hint(failure.reason, out.engineio);
                event.failure = Some(failure);
            } else if event.failure.is_none() {
                // Anything but 101 or an error: whatever answered does not speak WebSocket
                // there.
                event.failure = Some(not_engine_io(status, &parts.headers, &body));
            }
            event.raw_down = text_of(&body);
            event.bytes_down = body.len() as u64;
            self.emit(event).await;
            strip_hop_by_hop(&mut parts.headers);
            return Response::from_parts(parts, Full::new(body));
        }
        // 101: the server switched protocols.
        self.name_replica(&mut event, &parts.headers, sent.sticky.as_deref(), true);

        let template = {
            let mut t = event.clone();
            t.kind = WireKind::Ws {
                direction: Direction::Up,
            };
            t.transport = Transport::Websocket;
            t.latency_us = None;
            t
        };
        let tunnel = Tunnel::new(
            Arc::clone(self),
            template,
            out.kind == RequestKind::Upgrade,
            out.sid.clone(),
        );
        self.emit(event).await;
        let mut server_upgrade = Response::from_parts(parts.clone(), body);
        let server_upgrade = hyper::upgrade::on(&mut server_upgrade);
        let in_flight = InFlight::new(self);
        tokio::spawn(async move {
            let _in_flight = in_flight;
            match tokio::join!(client_upgrade, server_upgrade) {
                (Ok(client), Ok(server)) => {
                    tunnel.run(TokioIo::new(client), TokioIo::new(server)).await
                }
                _ => tracing::debug!("tap: upgrade tunnel not established"),
            }
        });
        Response::from_parts(parts, Full::new(Bytes::new()))
    }
}

/// A WebSocket tunnel being watched.
struct Tunnel {
    shared: Arc<Shared>,
    template: WireRecord,
    is_upgrade: bool,
    /// The session id, learnt from the open packet on a WebSocket-only handshake.
    sid: Mutex<Option<String>>,
    /// Messages the server sent.
    server_frames: AtomicU64,
    /// Whether the server sent a close frame.
    server_closed_cleanly: AtomicBool,
    /// Who ended the tunnel: the first side to send a close frame or end its stream
    /// (`true`: the client).
    client_first: Mutex<Option<bool>>,
    /// The first bytes the server sent after its 101 (up to [`SERVER_PREFIX`]): a server
    /// may still answer in HTTP there (socket.io 4 refusing an `EIO=3` upgrade does).
    server_prefix: Mutex<Vec<u8>>,
}

/// How many of the server's first bytes after a 101 are kept to read.
const SERVER_PREFIX: usize = 1024;

impl Tunnel {
    fn new(
        shared: Arc<Shared>,
        template: WireRecord,
        is_upgrade: bool,
        sid: Option<String>,
    ) -> Self {
        Tunnel {
            shared,
            template,
            is_upgrade,
            sid: Mutex::new(sid),
            server_frames: AtomicU64::new(0),
            server_closed_cleanly: AtomicBool::new(false),
            client_first: Mutex::new(None),
            server_prefix: Mutex::new(Vec::new()),
        }
    }

    async fn run<C, S>(self, client: C, server: S)
    where
        C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (client_read, client_write) = tokio::io::split(client);
        let (server_read, server_write) = tokio::io::split(server);
        let this = Arc::new(self);
        let up = {
            let this = Arc::clone(&this);
            tokio::spawn(async move {
                pump(client_read, server_write, &this, Direction::Up).await;
                this.ended_by(true);
            })
        };
        let down_end = pump(server_read, client_write, &this, Direction::Down).await;
        this.ended_by(false);
        // The server side is gone: the client side cannot outlive it.
        up.abort();
        let _ = up.await;

        let client_ended_it = this
            .client_first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(false);
        if this.server_closed_cleanly.load(Ordering::Relaxed) {
            return;
        }
        let to = this
            .template
            .replica
            .as_deref()
            .map_or_else(|| "its server".to_owned(), |r| format!("replica {r}"));
        let prefix = this
            .server_prefix
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let failure = if let Some(reason) = http_after_101(&prefix, this.template.engineio) {
            Failure {
                kind: FailureKind::Refused,
                reason,
            }
        } else if this.server_frames.load(Ordering::Relaxed) == 0 && this.is_upgrade {
            // An upgrade the replica never answered with a single frame: engineioxide's
            // answer to an upgrade for a session it does not hold (the client may have
            // given up first; the replica counts it all the same).
            Failure {
                kind: FailureKind::UpgradeDropped,
                reason: UPGRADE_UNKNOWN_SESSION.to_owned(),
            }
        } else if client_ended_it {
            return;
        } else {
            let how = if down_end == PumpEnd::Eof {
                "closed"
            } else {
                "reset"
            };
            Failure {
                kind: FailureKind::Dropped,
                reason: format!("WebSocket to {to} {how} without a close frame"),
            }
        };
        let mut event = this.template.clone();
        event.kind = WireKind::Ws {
            direction: Direction::Down,
        };
        event.at_ms = now_ms();
        event.sid = this.current_sid();
        event.failure = Some(failure);
        this.shared.emit(event).await;
    }

    /// Notes that one side ended the tunnel, unless the other did first.
    fn ended_by(&self, client: bool) {
        let mut first = self.client_first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(client);
    }

    /// One whole message crossed the tunnel.
    async fn on_message(&self, direction: Direction, message: WsMessage) {
        let close = matches!(message, WsMessage::Close { .. });
        if direction == Direction::Down {
            self.server_frames.fetch_add(1, Ordering::Relaxed);
            if close {
                self.server_closed_cleanly.store(true, Ordering::Relaxed);
            }
        }
        if close {
            self.ended_by(direction == Direction::Up);
        }
        self.record(direction, message).await;
    }

    /// Keeps the server's first bytes.
    fn note_server_bytes(&self, bytes: &[u8]) {
        let mut prefix = self.server_prefix.lock().unwrap_or_else(|e| e.into_inner());
        let room = SERVER_PREFIX.saturating_sub(prefix.len());
        prefix.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    fn current_sid(&self) -> Option<String> {
        self.sid.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn record(&self, direction: Direction, message: WsMessage) {
        let mut event = self.template.clone();
        event.kind = WireKind::Ws { direction };
        event.at_ms = now_ms();
        let (packets, raw, bytes, note) = match message {
            WsMessage::Text(text) => {
                let packet = decode_text_packet(&text);
                if let EnginePacket::Open(open) = &packet {
                    *self.sid.lock().unwrap_or_else(|e| e.into_inner()) = Some(open.sid.clone());
                }
                (
                    vec![packet],
                    cut(&text, MAX_KEPT_DATA).to_owned(),
                    text.len(),
                    None,
                )
            }
            WsMessage::Binary(len) => {
                (vec![EnginePacket::Binary { len }], String::new(), len, None)
            }
            WsMessage::Close { code, reason } => {
                let code = code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "without code".into());
                (
                    Vec::new(),
                    String::new(),
                    0,
                    Some(
                        format!("WebSocket close {code} {reason}")
                            .trim_end()
                            .to_owned(),
                    ),
                )
            }
            WsMessage::Ping => (
                Vec::new(),
                String::new(),
                0,
                Some("WebSocket ping frame".into()),
            ),
            WsMessage::Pong => (
                Vec::new(),
                String::new(),
                0,
                Some("WebSocket pong frame".into()),
            ),
            WsMessage::Invalid(reason) => (
                Vec::new(),
                String::new(),
                0,
                Some(format!("not decoded further: {reason}")),
            ),
        };
        match direction {
            Direction::Up => {
                event.packets_up = packets;
                event.raw_up = raw;
                event.bytes_up = bytes as u64;
            }
            Direction::Down => {
                event.packets_down = packets;
                event.raw_down = raw;
                event.bytes_down = bytes as u64;
            }
        }
        event.note = note;
        event.sid = self.current_sid();
        self.shared.emit(event).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PumpEnd {
    Eof,
    Error,
}

/// Copies `from` to `to` unchanged, recording each whole message on the way.
async fn pump<R, W>(mut from: R, mut to: W, tunnel: &Tunnel, direction: Direction) -> PumpEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break PumpEnd::Eof,
            Ok(n) => n,
            Err(_) => break PumpEnd::Error,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break PumpEnd::Error;
        }
        if direction == Direction::Down {
            tunnel.note_server_bytes(&buf[..n]);
        }
        for message in decoder.push(&buf[..n]) {
            tunnel.on_message(direction, message).await;
        }
    };
    let _ = to.shutdown().await;
    end
}

/// A server that switched to WebSocket and then answered in HTTP all the same: its
/// answer's words (an Engine.IO error's message, else its body's first line, else its
/// status line), and that it came after the 101.
fn http_after_101(prefix: &[u8], engineio: Option<u8>) -> Option<String> {
    let text = String::from_utf8_lossy(prefix);
    if !text.starts_with("HTTP/1.") {
        return None;
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default().trim();
    let words = engine_error_message(body.as_bytes())
        .or_else(|| {
            body.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(|l| cut(l, 200).to_owned())
        })
        .unwrap_or_else(|| status_line.to_owned());
    Some(format!(
        "{}, answered in HTTP after the WebSocket's 101",
        with_version_hint(words, engineio)
    ))
}

/// Engine.IO's `Unsupported protocol version`, with the version that was asked for.
fn with_version_hint(reason: String, engineio: Option<u8>) -> String {
    match engineio {
        Some(v) if reason == "Unsupported protocol version" => format!(
            "{reason}: the server does not speak Engine.IO v{v}, which was asked for (--engineio)"
        ),
        _ => reason,
    }
}

fn classify_refusal(status: StatusCode, body: &[u8], from_replica: bool) -> Failure {
    if status == StatusCode::TOO_MANY_REQUESTS {
        let by = if from_replica {
            "a replica"
        } else {
            "the gateway"
        };
        return Failure {
            kind: FailureKind::RateLimited,
            reason: format!("rate-limited by {by} (HTTP 429 Too Many Requests)"),
        };
    }
    if from_replica {
        return Failure {
            kind: FailureKind::Refused,
            reason: refusal_reason(status.as_u16(), body),
        };
    }
    // An Engine.IO server's refusal, whoever runs it and whatever names it (or not): its
    // JSON error's message, however the JSON is spaced or ordered.
    if let Some(message) = engine_error_message(body) {
        return Failure {
            kind: FailureKind::Refused,
            reason: message,
        };
    }
    // An HTML error page's title (nginx: `400 The plain HTTP request was sent to HTTPS
    // port`), else the first line of text.
    let text = std::str::from_utf8(body).ok().and_then(|t| {
        html_title(t).or_else(|| {
            t.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('<'))
                .map(str::to_owned)
        })
    });
    let reason = text.unwrap_or_else(|| {
        let nothing_there = if status == StatusCode::NOT_FOUND {
            ": nothing serves Socket.IO's path /socket.io/ there"
        } else {
            ""
        };
        format!(
            "HTTP {} {} from the gateway{nothing_there}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
    });
    if status == StatusCode::SERVICE_UNAVAILABLE && reason == NO_SERVER {
        return Failure {
            kind: FailureKind::NoReplica,
            reason: format!("{NO_SERVER}: the gateway has no replica in rotation (HTTP 503)"),
        };
    }
    Failure {
        kind: FailureKind::Gateway,
        reason,
    }
}

/// The text of an HTML page's `<title>`, if it has a non-empty one.
fn html_title(page: &str) -> Option<String> {
    let lower = page.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower.get(start..)?.find("</title>")?;
    let title = page.get(start..end)?.trim();
    (!title.is_empty()).then(|| cut(title, 120).to_owned())
}

/// An answer that is not Engine.IO: what it was instead, in a few words, and what that
/// suggests.
fn not_engine_io(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
    let content_type = header_text(headers, "content-type")
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "no Content-Type".to_owned());
    let start: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect();
    let shown = if start.is_empty() {
        "an empty body".to_owned()
    } else {
        format!("{start:?}…")
    };
    Failure {
        kind: FailureKind::NotEngineIo,
        reason: format!(
            "not Engine.IO: HTTP {} with {content_type}, {shown} — no Socket.IO server answers at /socket.io/ behind this gateway",
            status.as_u16()
        ),
    }
}

/// What a connection closed without an answer may mean.
const TLS_HINT: &str = " (an https-only port? stickyscope speaks plain HTTP to the gateway)";

/// The kind of the first I/O error in `error`'s chain of causes.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    std::iter::from_fn(|| {
        let current = cause?;
        cause = current.source();
        Some(current)
    })
    .find_map(|e| e.downcast_ref::<std::io::Error>())
    .map(std::io::Error::kind)
}

/// Why an exchange with a reachable gateway broke without an HTTP answer, from the error's
/// chain of causes: the connection closed before an answer, or what came back was not HTTP
/// (a TLS port, another protocol).
fn transport_failure(error: &(dyn std::error::Error + 'static)) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let hyper_error = std::iter::from_fn(|| {
        let current = cause?;
        cause = current.source();
        Some(current)
    })
    .find_map(|e| e.downcast_ref::<hyper::Error>());
    let reason = match hyper_error {
        Some(e) if e.is_parse() || e.is_parse_status() => {
            "the gateway's answer is not HTTP/1.1: a TLS (https) port, or another protocol? stickyscope speaks plain HTTP to the gateway".to_owned()
        }
        Some(e) if e.is_incomplete_message() || e.is_closed() || e.is_canceled() => {
            format!("the gateway closed the connection without answering{TLS_HINT}")
        }
        _ if io_kind(error) == Some(std::io::ErrorKind::ConnectionReset) => {
            format!("the gateway reset the connection without answering{TLS_HINT}")
        }
        Some(e) => format!("the gateway connection failed: {e}"),
        None => format!("the gateway connection failed: {error}"),
    };
    Failure {
        kind: FailureKind::Gateway,
        reason,
    }
}

/// Why no TCP connection to the gateway came about, from the error's chain of causes:
/// refused, timed out, or another reason (name resolution, an unreachable network) in the
/// system's words.
fn connect_failure(error: &(dyn std::error::Error + 'static), authority: &str) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let io = std::iter::from_fn(|| {
        let current = cause?;
        cause = current.source();
        Some(current)
    })
    .find_map(|e| e.downcast_ref::<std::io::Error>());
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => Failure {
            kind: FailureKind::ConnectionRefused,
            reason: format!("connection refused by the gateway at {authority}"),
        },
        Some(std::io::ErrorKind::TimedOut) => Failure {
            kind: FailureKind::Unreachable,
            reason: format!(
                "no TCP connection to the gateway at {authority} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        },
        _ => Failure {
            kind: FailureKind::Unreachable,
            reason: format!(
                "cannot connect to the gateway at {authority}: {}",
                io.map(ToString::to_string)
                    .unwrap_or_else(|| error.to_string())
            ),
        },
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn text_of(body: &[u8]) -> String {
    cut(&String::from_utf8_lossy(body), MAX_KEPT_DATA).to_owned()
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
        for bad in [
            "https://x",
            "127.0.0.1:8000",
            "http://",
            "http://a/b",
            "http://u@h:1",
        ] {
            assert!(parse_gateway(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_http_answer_after_a_101_is_read_for_its_words() {
        // socket.io 4 (engine.io with ws) refusing an EIO=3 upgrade, as measured.
        let sent = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: 28\r\n\r\nUnsupported protocol version";
        assert_eq!(
            http_after_101(sent, Some(3)).as_deref(),
            Some("Unsupported protocol version: the server does not speak Engine.IO v3, which was asked for (--engineio), answered in HTTP after the WebSocket's 101")
        );
        assert_eq!(
            http_after_101(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", None).as_deref(),
            Some("HTTP/1.1 503 Service Unavailable, answered in HTTP after the WebSocket's 101")
        );
        // Frames are not HTTP.
        assert_eq!(http_after_101(b"\x81\x01x", None), None);
        assert_eq!(http_after_101(b"", None), None);
    }

    #[test]
    fn error_pages_are_read_for_their_words() {
        // nginx on a TLS port, asked in plain HTTP.
        let page = "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>…</body></html>";
        let r = classify_refusal(StatusCode::BAD_REQUEST, page.as_bytes(), false);
        assert_eq!(
            r.reason,
            "400 The plain HTTP request was sent to HTTPS port"
        );
        // A 404 with nothing to read says what it means for Socket.IO.
        let r = classify_refusal(StatusCode::NOT_FOUND, b"<html><body></body></html>", false);
        assert!(
            r.reason.contains("nothing serves Socket.IO's path"),
            "{}",
            r.reason
        );
        assert_eq!(html_title("<TITLE>  </TITLE>"), None);
        assert_eq!(html_title("<title>unclosed"), None);
        assert_eq!(
            html_title("<title>Ünïcode ok</title>").as_deref(),
            Some("Ünïcode ok")
        );
        // A 200 that is not Engine.IO says what it was.
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        let r = not_engine_io(StatusCode::OK, &headers, b"<html>\n<p>hi</p>");
        assert_eq!(r.kind, FailureKind::NotEngineIo);
        assert!(
            r.reason
                .starts_with("not Engine.IO: HTTP 200 with text/html, \"<html><p>hi</p>\""),
            "{}",
            r.reason
        );
        let r = not_engine_io(StatusCode::OK, &HeaderMap::new(), b"");
        assert!(
            r.reason.contains("no Content-Type, an empty body"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn refusals_are_classified_by_who_answered() {
        let r = classify_refusal(
            StatusCode::BAD_REQUEST,
            br#"{"code":"1","message":"Session ID unknown"}"#,
            true,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (FailureKind::Refused, "Session ID unknown")
        );
        // A Node socket.io server behind a proxy: no X-Replica, its own JSON spacing.
        let r = classify_refusal(
            StatusCode::BAD_REQUEST,
            br#"{"code":1,"message":"Session ID unknown"}"#,
            false,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (FailureKind::Refused, "Session ID unknown")
        );
        let r = classify_refusal(
            StatusCode::BAD_REQUEST,
            br#"{ "message": "Transport unknown", "code": 0 }"#,
            false,
        );
        assert_eq!(r.reason, "Transport unknown");
        let r = classify_refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            b"no available server",
            false,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (
                FailureKind::NoReplica,
                "no available server: the gateway has no replica in rotation (HTTP 503)"
            )
        );
        let r = classify_refusal(
            StatusCode::TOO_MANY_REQUESTS,
            b"<html><head><title>429 Too Many Requests</title></head></html>",
            false,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (
                FailureKind::RateLimited,
                "rate-limited by the gateway (HTTP 429 Too Many Requests)"
            )
        );
        let r = classify_refusal(
            StatusCode::BAD_GATEWAY,
            b"<html><body>bad</body></html>",
            false,
        );
        assert_eq!(r.kind, FailureKind::Gateway);
        assert_eq!(r.reason, "HTTP 502 Bad Gateway from the gateway");
    }
}
