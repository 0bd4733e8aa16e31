//! stickyscope's own small Socket.IO client, over Engine.IO v3 (Socket.IO 2 servers, which
//! rust_socketio cannot speak to) or v4 (the background sessions of a crowd or a probe,
//! thousands of them, where rust_socketio's HTTP client per attempt and the tap's loopback
//! hop cost too much). It hands every request to the user's tap directly
//! ([`Tap::exchange`], [`Tap::websocket`]), so each one is recorded exactly as a request
//! through the tap's listener is.
//!
//! It does what a session needs and no more: the handshake over polling or WebSocket, the
//! upgrade from one to the other (`2probe` → `3probe` → `5`), the heartbeat (in v3 the
//! client pings and the server answers; in v4 the server pings and the client answers), the
//! namespace's `CONNECT` (with auth in v4), emits (with or without an ack id) and a clean
//! disconnect. It reads nothing for the app: the session reads everything off the tap's
//! records, like all else. Network code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::task::AbortOnDropHandle;

use crate::wire::Tap;
use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::protocol::engineio::{decode_text_packet, EnginePacket, OpenInfo};
use stickyscope_vocab::protocol::engineio_v3;
use stickyscope_vocab::protocol::framing::Framing;
use stickyscope_vocab::record::now_ms;

type WsStream = WebSocketStream<tokio::io::DuplexStream>;

/// Packets waiting to go out.
const OUT_QUEUE: usize = 64;
/// How long the open packet, or the answer to the upgrade's probe, may take.
const HANDSHAKE_BOUND: Duration = Duration::from_secs(10);
/// How long an upgrade waits for the held poll to end before it switches all the same.
const POLL_PAUSE: Duration = Duration::from_secs(2);

/// The Engine.IO version spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V3,
    V4,
}

impl Version {
    fn number(self) -> u8 {
        match self {
            Version::V3 => 3,
            Version::V4 => 4,
        }
    }

    /// A polling payload of these packets.
    fn payload(self, packets: &[String]) -> String {
        match self {
            Version::V3 => engineio_v3::encode_payload(packets.iter().map(String::as_str)),
            Version::V4 => packets.join("\u{1e}"),
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone, Copy)]
pub struct Dial<'a> {
    /// The transport.
    pub transport: TransportChoice,
    /// Whether to speak Engine.IO v3 (else v4).
    pub v3: bool,
    /// Socket.IO's path on the gateway, `/socket.io/`.
    pub path: &'a str,
    /// The namespace to join, `/` or `/chat`.
    pub namespace: &'a str,
    /// The `CONNECT` packet's payload (v4 only).
    pub auth: Option<&'a serde_json::Value>,
}

/// A connected client. Dropping it ends its tasks (and with them its requests), as a
/// connect that fails or is given up ends the tasks it had started.
#[derive(Debug)]
pub struct EngineClient {
    out: mpsc::Sender<String>,
    /// What Socket.IO packets for the namespace start with after their type: nothing for
    /// `/`, `/chat,` for `/chat`.
    namespace: String,
    next_ack: AtomicU64,
    /// Held so that they end with the client.
    #[expect(
        dead_code,
        reason = "only dropped: dropping the handles ends the tasks"
    )]
    tasks: Vec<AbortOnDropHandle<()>>,
}

impl EngineClient {
    /// Opens a session through `tap` as `dial` says; returns once the Engine.IO handshake
    /// (and an upgrade, when asked for and offered) is done and the namespace's `CONNECT`
    /// is on its way.
    pub async fn connect(tap: Arc<Tap>, dial: Dial<'_>) -> Result<EngineClient, String> {
        let version = if dial.v3 { Version::V3 } else { Version::V4 };
        let query = format!("{}?EIO={}&transport=", dial.path, version.number());
        let (out, out_rx) = mpsc::channel(OUT_QUEUE);
        let mut tasks = Vec::new();
        match dial.transport {
            TransportChoice::Websocket => {
                let mut ws = open_websocket(&tap, &format!("{query}websocket")).await?;
                let open = read_open(&mut ws).await?;
                tasks.push(spawn(run_websocket(ws, out_rx, version, open)));
            }
            TransportChoice::Polling | TransportChoice::Upgrade => {
                let polling = format!("{query}polling");
                let open = handshake(&tap, &polling, version).await?;
                let session = format!("{polling}&sid={}", open.sid);
                let (upgrading_tx, upgrading) = watch::channel(false);
                // Ends if the upgrade fails: a failed attempt leaves no request behind.
                let mut polls = spawn(poll_loop(
                    Arc::clone(&tap),
                    session.clone(),
                    version,
                    upgrading,
                    out.clone(),
                ));
                let probed = if dial.transport == TransportChoice::Upgrade
                    && open.upgrades.iter().any(|u| u == "websocket")
                {
                    let url = format!("{query}websocket&sid={}", open.sid);
                    Some(probe_upgrade(&tap, &url).await?)
                } else {
                    None
                };
                match probed {
                    Some(mut ws) => {
                        // As Engine.IO's own client: no new poll, the one held ends (the
                        // server answers it with a noop once probed), then the switch.
                        let _ = upgrading_tx.send(true);
                        if tokio::time::timeout(POLL_PAUSE, &mut polls).await.is_err() {
                            tracing::debug!("the held poll did not end before the upgrade");
                            tasks.push(polls);
                        }
                        ws.send(Message::text("5"))
                            .await
                            .map_err(|e| e.to_string())?;
                        tasks.push(spawn(run_websocket(ws, out_rx, version, open)));
                    }
                    None => {
                        tasks.push(polls);
                        tasks.push(spawn(run_polling(tap, session, out_rx, version, open)));
                    }
                }
            }
        }
        let client = EngineClient {
            out,
            namespace: if dial.namespace == "/" {
                String::new()
            } else {
                format!("{},", dial.namespace)
            },
            next_ack: AtomicU64::new(0),
            tasks,
        };
        if let Some(connect) = connect_packet(version, dial.namespace, dial.auth) {
            client.send(connect).await?;
        }
        Ok(client)
    }

    /// Emits `event` with `payload`, no ack.
    pub async fn emit(&self, event: &str, payload: serde_json::Value) -> Result<(), String> {
        self.send(format!(
            "42{}{}",
            self.namespace,
            serde_json::json!([event, payload])
        ))
        .await
    }

    /// Emits `event` with `payload` and an ack id (the ack is read off the wire).
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: serde_json::Value,
    ) -> Result<(), String> {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        self.send(format!(
            "42{}{id}{}",
            self.namespace,
            serde_json::json!([event, payload])
        ))
        .await
    }

    /// Leaves: the Socket.IO disconnect and the Engine.IO close, then the tasks end.
    pub async fn disconnect(&self) {
        let _ = self
            .send(format!("41{}", self.namespace.trim_end_matches(',')))
            .await;
        let _ = self.send("1".to_owned()).await;
    }

    async fn send(&self, packet: String) -> Result<(), String> {
        self.out
            .send(packet)
            .await
            .map_err(|_| "the session has ended".to_owned())
    }
}

/// The namespace's `CONNECT`: v4 sends one for every namespace (with the auth payload when
/// there is one); Socket.IO 2 joins `/` by itself and is asked for another with `40/chat`.
fn connect_packet(
    version: Version,
    namespace: &str,
    auth: Option<&serde_json::Value>,
) -> Option<String> {
    let prefix = if namespace == "/" {
        String::new()
    } else {
        format!("{namespace},")
    };
    match (version, auth) {
        (Version::V3, _) if namespace == "/" => None,
        (Version::V3, _) => Some(format!("40{namespace}")),
        (Version::V4, Some(auth)) => Some(format!("40{prefix}{auth}")),
        (Version::V4, None) => Some(format!("40{}", prefix.trim_end_matches(','))),
    }
}

fn cut(s: &str) -> &str {
    stickyscope_vocab::protocol::socketio::cut(s, 80)
}

/// The packets of a poll's answer, or why there are none to read.
async fn get(tap: &Tap, url: &str, version: Version) -> Result<Vec<EnginePacket>, String> {
    let answer = tap
        .exchange(Method::GET, &format!("{url}&t={}", now_ms()), Bytes::new())
        .await;
    let text = String::from_utf8_lossy(&answer.body);
    if !answer.status.is_success() {
        return Err(format!("HTTP {}: {}", answer.status.as_u16(), cut(&text)));
    }
    let framing = Framing::asked(Some(version.number())).answering(&answer.body);
    if version == Version::V4 && framing == Framing::V3 {
        return Err("the server answered in Engine.IO v3 (Socket.IO 2)".to_owned());
    }
    Ok(framing.decode(&answer.body))
}

/// The polling handshake: the open packet of a new session.
async fn handshake(tap: &Tap, polling: &str, version: Version) -> Result<OpenInfo, String> {
    get(tap, polling, version)
        .await?
        .into_iter()
        .find_map(|p| match p {
            EnginePacket::Open(open) => Some(open),
            _ => None,
        })
        .ok_or_else(|| "no open packet in the handshake's answer".to_owned())
}

async fn post(tap: &Tap, url: &str, version: Version, packets: &[String]) -> Result<(), String> {
    let answer = tap
        .exchange(
            Method::POST,
            &format!("{url}&t={}", now_ms()),
            Bytes::from(version.payload(packets)),
        )
        .await;
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", answer.status.as_u16()))
    }
}

/// A WebSocket through the tap, as a client: small buffers, for thousands of them.
async fn open_websocket(tap: &Tap, url: &str) -> Result<WsStream, String> {
    let stream = tap.websocket(url).await.map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    Ok(WebSocketStream::from_raw_socket(stream, Role::Client, Some(config)).await)
}

/// Reads the open packet a WebSocket-only session starts with.
async fn read_open(ws: &mut WsStream) -> Result<OpenInfo, String> {
    let first = tokio::time::timeout(HANDSHAKE_BOUND, ws.next())
        .await
        .map_err(|_| "no open packet within 10 s".to_owned())?
        .ok_or("the WebSocket closed before the open packet")?
        .map_err(|e| e.to_string())?;
    match first {
        Message::Text(text) => match decode_text_packet(&text) {
            EnginePacket::Open(open) => Ok(open),
            other => Err(format!(
                "expected the open packet, got {}",
                other.kind_name()
            )),
        },
        other => Err(format!("expected the open packet, got {other:?}")),
    }
}

/// A task of the client's, ended when its handle is dropped.
fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(task))
}

/// The first half of a polling session's upgrade: the WebSocket, probed (`2probe` answered
/// by `3probe`); the switch (`5`) is the caller's, once polling has paused.
async fn probe_upgrade(tap: &Tap, url: &str) -> Result<WsStream, String> {
    let mut ws = open_websocket(tap, url).await?;
    ws.send(Message::text("2probe"))
        .await
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(HANDSHAKE_BOUND, ws.next())
        .await
        .map_err(|_| "no answer to the upgrade probe within 10 s".to_owned())?
        .ok_or("the WebSocket closed during the upgrade")?
        .map_err(|e| e.to_string())?;
    if answer != Message::text("3probe") {
        return Err(format!("upgrade probe answered {answer:?}"));
    }
    Ok(ws)
}

/// Long polls until the session closes, fails, or is moving to WebSocket (`upgrading`: no
/// new poll after the one held); in v4, answers each of the server's pings.
async fn poll_loop(
    tap: Arc<Tap>,
    session: String,
    version: Version,
    upgrading: watch::Receiver<bool>,
    out: mpsc::Sender<String>,
) {
    loop {
        if *upgrading.borrow() {
            return;
        }
        let Ok(packets) = get(&tap, &session, version).await else {
            return;
        };
        for packet in packets {
            match packet {
                EnginePacket::Close => return,
                EnginePacket::Ping { probe: false }
                    if version == Version::V4 && out.send("3".to_owned()).await.is_err() =>
                {
                    return
                }
                _ => {}
            }
        }
    }
}

/// Sends over polling: queued packets in one POST; in v3 a ping every pingInterval.
async fn run_polling(
    tap: Arc<Tap>,
    session: String,
    mut out: mpsc::Receiver<String>,
    version: Version,
    open: OpenInfo,
) {
    let mut ping = heartbeat(version, &open);
    loop {
        let first = tokio::select! {
            packet = out.recv() => match packet {
                Some(packet) => packet,
                None => return,
            },
            _ = tick(&mut ping) => "2".to_owned(),
        };
        let mut batch = vec![first];
        while let Ok(more) = out.try_recv() {
            batch.push(more);
        }
        let closing = batch.iter().any(|p| p == "1");
        if post(&tap, &session, version, &batch).await.is_err() || closing {
            return;
        }
    }
}

/// Sends and reads over WebSocket: in v3 a ping every pingInterval, in v4 a pong for each
/// of the server's pings; frames from the server are read (the tap records them) until it
/// closes.
async fn run_websocket(
    ws: WsStream,
    mut out: mpsc::Receiver<String>,
    version: Version,
    open: OpenInfo,
) {
    let (mut sink, mut stream) = ws.split();
    let mut ping = heartbeat(version, &open);
    loop {
        let packet = tokio::select! {
            packet = out.recv() => match packet {
                Some(packet) => packet,
                None => return,
            },
            _ = tick(&mut ping) => "2".to_owned(),
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) if version == Version::V4 && text.as_str() == "2" => "3".to_owned(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
        };
        let closing = packet == "1";
        if sink.send(Message::text(packet)).await.is_err() || closing {
            let _ = sink.close().await;
            return;
        }
    }
}

/// The client's ping timer: in v3 the client pings every pingInterval (first after one
/// interval); in v4 it has none.
fn heartbeat(version: Version, open: &OpenInfo) -> Option<tokio::time::Interval> {
    (version == Version::V3).then(|| {
        let period = Duration::from_millis(open.ping_interval.clamp(100, 600_000));
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping
    })
}

/// The next tick of `ping`, or never without one.
async fn tick(ping: &mut Option<tokio::time::Interval>) {
    match ping {
        Some(ping) => {
            ping.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packets_follow_each_version() {
        let auth = serde_json::json!({"token": "t"});
        assert_eq!(connect_packet(Version::V3, "/", None), None);
        assert_eq!(
            connect_packet(Version::V3, "/chat", None).as_deref(),
            Some("40/chat")
        );
        assert_eq!(
            connect_packet(Version::V4, "/", None).as_deref(),
            Some("40")
        );
        assert_eq!(
            connect_packet(Version::V4, "/chat", None).as_deref(),
            Some("40/chat")
        );
        assert_eq!(
            connect_packet(Version::V4, "/", Some(&auth)).as_deref(),
            Some(r#"40{"token":"t"}"#)
        );
        assert_eq!(
            connect_packet(Version::V4, "/chat", Some(&auth)).as_deref(),
            Some(r#"40/chat,{"token":"t"}"#)
        );
    }

    #[test]
    fn polling_payloads_are_framed_per_version() {
        let packets = ["3".to_owned(), r#"42["a",1]"#.to_owned()];
        assert_eq!(Version::V4.payload(&packets), "3\u{1e}42[\"a\",1]");
        assert_eq!(Version::V3.payload(&packets), "1:39:42[\"a\",1]");
    }
}
