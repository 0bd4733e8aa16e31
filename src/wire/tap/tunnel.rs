//! A WebSocket through the tap: the upgrade request forwarded on a connection of its own,
//! the gateway's answer recorded (a refusal like any HTTP answer), and after a 101 the
//! [`Tunnel`] that relays the frames byte for byte both ways ([`pump`]), records each whole
//! message, and says why it ended when it did not end with a close frame.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use stickyscope_contract::refusal::{engine_error_message, UPGRADE_UNKNOWN_SESSION};
use stickyscope_contract::RequestKind;
use stickyscope_vocab::protocol::socketio::{cut, MAX_KEPT_DATA};
use stickyscope_vocab::protocol::websocket::{FrameDecoder, WsMessage};
use stickyscope_vocab::protocol::{decode_text_packet, EnginePacket};
use stickyscope_vocab::record::{Direction, Failure, FailureKind, Transport, WireKind, WireRecord};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::failures::{connect_failure, http_after_101, not_engine_io, refusal, transport_failure};
use super::naming::SentCookies;
use super::{now_ms, plain, set_status, text_of, InFlight, Outgoing, Shared, CONNECT_TIMEOUT};
use crate::http_serve::{strip_hop_by_hop, strip_hop_by_hop_keeping_upgrade};

/// Why an upgrade request got no answer: TLS with the gateway, or HTTP.
enum UpgradeError {
    Tls(native_tls::Error),
    Http(hyper::Error),
}

/// Sends the upgrade request on `stream` (plain or TLS), keeping the connection for the
/// upgrade.
async fn send_on<S, B>(stream: S, request: Request<B>) -> Result<Response<Incoming>, UpgradeError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(UpgradeError::Http)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
        .send_request(request)
        .await
        .map_err(UpgradeError::Http)
}

/// What became of an upgrade request: refused (the answer to give the client), or switched
/// to WebSocket (the tunnel to watch, the server's side once it switches, the 101's head).
pub(super) enum Switched {
    Refused(Response<Full<Bytes>>),
    Open {
        tunnel: Box<Tunnel>,
        server: OnUpgrade,
        head: hyper::http::response::Parts,
    },
}

impl Shared {
    /// Forwards a WebSocket upgrade and records the gateway's answer; after a 101, relays
    /// the tunnel in a task of its own.
    pub(super) async fn upgrade(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        out: Outgoing,
    ) -> Response<Full<Bytes>> {
        let client_upgrade = hyper::upgrade::on(&mut req);
        let (parts, body) = req.into_parts();
        match self.switch(parts, body, out).await {
            Switched::Refused(answer) => answer,
            Switched::Open {
                tunnel,
                server,
                head,
            } => {
                self.relay(*tunnel, client_upgrade, server);
                Response::from_parts(head, Full::new(Bytes::new()))
            }
        }
    }

    /// Sends an upgrade request to the gateway and records its answer: a refusal like any
    /// HTTP answer, or a 101 and the tunnel that follows it.
    pub(super) async fn switch<B>(
        self: &Arc<Self>,
        mut parts: hyper::http::request::Parts,
        body: B,
        out: Outgoing,
    ) -> Switched
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let Ok(uri) = path.parse::<hyper::Uri>() else {
            return Switched::Refused(plain(
                StatusCode::BAD_REQUEST,
                "tap: unusable request path".into(),
            ));
        };
        parts.uri = uri;
        strip_hop_by_hop_keeping_upgrade(&mut parts.headers);
        let sent = self.prepare_headers(&mut parts.headers);
        let mut record = self.http_record(&out);

        let resp = match self
            .send_upgrade(Request::from_parts(parts, body), &out, &mut record)
            .await
        {
            Ok(resp) => resp,
            Err(answer) => {
                self.emit(record).await;
                return Switched::Refused(answer);
            }
        };
        let (parts, body) = resp.into_parts();
        let status = parts.status;
        record.latency_us = Some(out.started.elapsed().as_micros() as u64);
        set_status(&mut record, status);
        self.remember_cookies(&mut record, &parts.headers, &sent);

        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Switched::Refused(self.refused_upgrade(record, &out, parts, body, &sent).await);
        }
        // 101: the server switched protocols.
        self.name_replica(&mut record, &parts.headers, sent.sticky.as_deref(), true);
        let tunnel = Tunnel::new(
            Arc::clone(self),
            Tunnel::template(&record),
            out.kind == RequestKind::Upgrade,
            out.sid.clone(),
        );
        self.emit(record).await;
        let mut server_upgrade = Response::from_parts(parts.clone(), body);
        let server = hyper::upgrade::on(&mut server_upgrade);
        Switched::Open {
            tunnel: Box::new(tunnel),
            server,
            head: parts,
        }
    }

    /// Sends the upgrade request on a new connection to the gateway. Without an answer, the
    /// record says why and the client gets the tap's own answer.
    async fn send_upgrade<B>(
        &self,
        request: Request<B>,
        out: &Outgoing,
        record: &mut WireRecord,
    ) -> Result<Response<Incoming>, Response<Full<Bytes>>>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.authority))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        let stream = match connected {
            Ok(stream) => stream,
            Err(e) => {
                let failure = connect_failure(&e, &self.authority);
                let text = format!("stickyscope tap: {}\n", failure.reason);
                record.failure = Some(failure);
                record.latency_us = Some(out.started.elapsed().as_micros() as u64);
                return Err(plain(StatusCode::BAD_GATEWAY, text));
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = self.tls.clone();
        let handshake = async {
            match tls {
                Some((host, connector)) => {
                    let stream = connector
                        .connect(&host, stream)
                        .await
                        .map_err(UpgradeError::Tls)?;
                    send_on(stream, request).await
                }
                None => send_on(stream, request).await,
            }
        };
        match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(UpgradeError::Tls(e))) => {
                record.failure = Some(connect_failure(&e, &self.authority));
                Err(plain(
                    StatusCode::BAD_GATEWAY,
                    "stickyscope tap: TLS with the gateway failed\n".into(),
                ))
            }
            Ok(Err(UpgradeError::Http(e))) => {
                record.failure = Some(transport_failure(&e));
                Err(plain(
                    StatusCode::BAD_GATEWAY,
                    "stickyscope tap: upgrade request failed\n".into(),
                ))
            }
            Err(_) => {
                record.failure = Some(Failure {
                    kind: FailureKind::Timeout,
                    reason: format!("no answer to the upgrade within {:?}", self.timeout),
                });
                Err(plain(
                    StatusCode::GATEWAY_TIMEOUT,
                    "stickyscope tap: upgrade timed out\n".into(),
                ))
            }
        }
    }

    /// An upgrade answered with anything but 101: an ordinary answer, read within the same
    /// bound as any other, recorded with why it is not a WebSocket, and passed on.
    async fn refused_upgrade(
        &self,
        mut record: WireRecord,
        out: &Outgoing,
        mut parts: hyper::http::response::Parts,
        body: Incoming,
        sent: &SentCookies,
    ) -> Response<Full<Bytes>> {
        let status = parts.status;
        let body = self.read_body(body).await.unwrap_or_else(|failure| {
            record.failure = Some(failure);
            Bytes::new()
        });
        let from_server = engine_error_message(&body).is_some();
        self.name_replica(
            &mut record,
            &parts.headers,
            sent.sticky.as_deref(),
            from_server,
        );
        if record.failure.is_none() && (status.is_client_error() || status.is_server_error()) {
            record.failure = Some(refusal(status, &parts.headers, &body, out.engineio));
        } else if record.failure.is_none() {
            // Anything but 101 or an error: whatever answered does not speak WebSocket
            // there.
            record.failure = Some(not_engine_io(status, &parts.headers, &body));
        }
        record.raw_down = text_of(&body);
        record.bytes_down = body.len() as u64;
        self.emit(record).await;
        strip_hop_by_hop(&mut parts.headers);
        Response::from_parts(parts, Full::new(body))
    }

    /// Relays the tunnel once both sides have switched protocols, counted in flight.
    fn relay(self: &Arc<Self>, tunnel: Tunnel, client: OnUpgrade, server: OnUpgrade) {
        let in_flight = InFlight::new(self);
        // Its messages go on through the recorder after its connection's task has ended.
        let recorder = self.hold_recorder();
        tokio::spawn(async move {
            let (_in_flight, _recorder) = (in_flight, recorder);
            match tokio::join!(client, server) {
                (Ok(client), Ok(server)) => {
                    tunnel.run(TokioIo::new(client), TokioIo::new(server)).await
                }
                _ => tracing::debug!("tap: upgrade tunnel not established"),
            }
        });
    }

    /// Relays the tunnel to a client in this process once the server has switched
    /// protocols; returns the client's end, which carries the server's bytes after its 101.
    pub(super) fn relay_to_caller(
        self: &Arc<Self>,
        tunnel: Tunnel,
        server: OnUpgrade,
    ) -> tokio::io::DuplexStream {
        let (caller, ours) = tokio::io::duplex(DIRECT_BUFFER);
        let in_flight = InFlight::new(self);
        tokio::spawn(async move {
            let _in_flight = in_flight;
            match server.await {
                Ok(server) => tunnel.run(ours, TokioIo::new(server)).await,
                Err(_) => tracing::debug!("tap: upgrade tunnel not established"),
            }
        });
        caller
    }
}

/// The buffer between a direct tap's tunnel and its caller, each way: Engine.IO's
/// heartbeats and chat messages are far smaller.
const DIRECT_BUFFER: usize = 8 * 1024;

/// A WebSocket tunnel being watched.
pub(super) struct Tunnel {
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

    /// What the tunnel's records start from: the upgrade's record (its replica, session,
    /// Engine.IO version), as a WebSocket message without latency.
    fn template(upgrade: &WireRecord) -> WireRecord {
        let mut t = upgrade.clone();
        t.kind = WireKind::Ws {
            direction: Direction::Up,
        };
        t.transport = Transport::Websocket;
        t.latency_us = None;
        t
    }

    /// Relays both ways until the server side ends, then records why the tunnel ended
    /// when that was not a close frame's doing.
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

        let Some(failure) = this.why_it_ended(down_end) else {
            return;
        };
        let mut record = this.template.clone();
        record.kind = WireKind::Ws {
            direction: Direction::Down,
        };
        record.at_ms = now_ms();
        record.sid = this.current_sid();
        record.failure = Some(failure);
        this.shared.emit(record).await;
    }

    /// Why the tunnel ended, when it failed: the server answered in HTTP after its 101, an
    /// upgrade got not a single frame, or the server side ended without a close frame
    /// before the client ended it. `None` when it ended cleanly.
    fn why_it_ended(&self, down_end: PumpEnd) -> Option<Failure> {
        let client_ended_it = self
            .client_first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(false);
        if self.server_closed_cleanly.load(Ordering::Relaxed) {
            return None;
        }
        let to = self
            .template
            .replica
            .as_deref()
            .map_or_else(|| "its server".to_owned(), |r| format!("replica {r}"));
        let prefix = self
            .server_prefix
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(reason) = http_after_101(&prefix, self.template.engineio) {
            Some(Failure {
                kind: FailureKind::Refused,
                reason,
            })
        } else if self.server_frames.load(Ordering::Relaxed) == 0 && self.is_upgrade {
            // An upgrade the replica never answered with a single frame: engineioxide's
            // answer to an upgrade for a session it does not hold (the client may have
            // given up first; the replica counts it all the same).
            Some(Failure {
                kind: FailureKind::UpgradeDropped,
                reason: UPGRADE_UNKNOWN_SESSION.to_owned(),
            })
        } else if client_ended_it {
            None
        } else {
            let how = if down_end == PumpEnd::Eof {
                "closed"
            } else {
                "reset"
            };
            Some(Failure {
                kind: FailureKind::Dropped,
                reason: format!("WebSocket to {to} {how} without a close frame"),
            })
        }
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

    /// Records one message: its packet (a text message's is decoded; an open packet gives
    /// the session id), its text and size, or a note for a control frame.
    async fn record(&self, direction: Direction, message: WsMessage) {
        let mut record = self.template.clone();
        record.kind = WireKind::Ws { direction };
        record.at_ms = now_ms();
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
                record.packets_up = packets;
                record.raw_up = raw;
                record.bytes_up = bytes as u64;
            }
            Direction::Down => {
                record.packets_down = packets;
                record.raw_down = raw;
                record.bytes_down = bytes as u64;
            }
        }
        record.note = note;
        record.sid = self.current_sid();
        self.shared.emit(record).await;
    }
}

/// How a [`pump`] ended: its source's end of stream, or an error on either side.
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
