//! A small Engine.IO v3 / Socket.IO 2 client, for servers rust_socketio cannot speak to
//! (it speaks v4 only): socket.io 2.x servers, the seed's among them.
//!
//! It does what a session needs and no more: the handshake over polling or WebSocket, the
//! upgrade from one to the other (`2probe` → `3probe` → `5`), the client's pings (in v3 the
//! client pings and the server answers), emits (with or without an ack id) and a clean
//! disconnect. It reads nothing for the app: the session reads everything off the wire
//! tap it talks through, like all else. Network code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::protocol::engineio::{decode_text_packet, EnginePacket, OpenInfo};
use stickyscope_vocab::protocol::engineio_v3;
use stickyscope_vocab::record::now_ms;

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Packets waiting to go out.
const OUT_QUEUE: usize = 256;

/// A connected v3 client. Dropping it ends its tasks.
#[derive(Debug)]
pub struct V3Client {
    out: mpsc::Sender<String>,
    /// What Socket.IO packets for the namespace start with after their type: nothing for
    /// `/`, `/chat,` for `/chat`.
    namespace: String,
    next_ack: AtomicU64,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for V3Client {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl V3Client {
    /// Connects to the Socket.IO server behind `base` (`http://host:port`) with `transport`,
    /// on Socket.IO's `path` (`/socket.io/`), joining `namespace` (Socket.IO 2 joins `/` by
    /// itself; another is asked for with `40/chat`).
    pub async fn connect(
        base: &str,
        transport: TransportChoice,
        path: &str,
        namespace: &str,
    ) -> Result<V3Client, String> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(crate::http_serve::POOL_IDLE)
            .build()
            .map_err(|e| e.to_string())?;
        let polling = format!("{base}{path}?EIO=3&transport=polling");
        let ws_base = format!(
            "ws://{}{path}?EIO=3&transport=websocket",
            base.trim_start_matches("http://")
        );
        let (out, out_rx) = mpsc::channel(OUT_QUEUE);
        let mut tasks = Vec::new();
        match transport {
            TransportChoice::Websocket => {
                let (mut ws, _) = tokio_tungstenite::connect_async(ws_base.as_str())
                    .await
                    .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
                let open = read_open(&mut ws).await?;
                tasks.push(tokio::spawn(run_websocket(ws, out_rx, open.ping_interval)));
            }
            TransportChoice::Polling | TransportChoice::Upgrade => {
                let body = get(&http, &format!("{polling}&t={}", now_ms())).await?;
                let open = engineio_v3::decode_payload(body.as_bytes())
                    .into_iter()
                    .find_map(|p| match p {
                        EnginePacket::Open(open) => Some(open),
                        _ => None,
                    })
                    .ok_or_else(|| format!("no open packet in {:?}", cut(&body)))?;
                let session = format!("{polling}&sid={}", open.sid);
                let (upgraded_tx, upgraded) = watch::channel(false);
                tasks.push(tokio::spawn(poll_loop(
                    http.clone(),
                    session.clone(),
                    upgraded,
                )));
                let ws = if transport == TransportChoice::Upgrade
                    && open.upgrades.iter().any(|u| u == "websocket")
                {
                    Some(upgrade(&format!("{ws_base}&sid={}", open.sid)).await?)
                } else {
                    None
                };
                match ws {
                    Some(ws) => {
                        let _ = upgraded_tx.send(true);
                        tasks.push(tokio::spawn(run_websocket(ws, out_rx, open.ping_interval)));
                    }
                    None => tasks.push(tokio::spawn(run_polling(
                        http,
                        session,
                        out_rx,
                        open.ping_interval,
                    ))),
                }
            }
        }
        let client = V3Client {
            out,
            namespace: if namespace == "/" {
                String::new()
            } else {
                format!("{namespace},")
            },
            next_ack: AtomicU64::new(0),
            tasks,
        };
        if namespace != "/" {
            client.send(format!("40{namespace}")).await?;
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

fn cut(s: &str) -> &str {
    stickyscope_vocab::protocol::socketio::cut(s, 80)
}

async fn get(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", cut(&body)));
    }
    Ok(body)
}

async fn post(http: &reqwest::Client, url: &str, packets: &[String]) -> Result<(), String> {
    let body = engineio_v3::encode_payload(packets.iter().map(String::as_str));
    let resp = http
        .post(url)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", resp.status()))
    }
}

/// Reads the open packet a WebSocket-only session starts with.
async fn read_open(ws: &mut WsStream) -> Result<OpenInfo, String> {
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
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

/// The v3 upgrade of a polling session: probe, then switch.
async fn upgrade(url: &str) -> Result<WsStream, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("upgrade handshake failed: {e}"))?;
    ws.send(Message::text("2probe"))
        .await
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| "no answer to the upgrade probe within 10 s".to_owned())?
        .ok_or("the WebSocket closed during the upgrade")?
        .map_err(|e| e.to_string())?;
    if answer != Message::text("3probe") {
        return Err(format!("upgrade probe answered {answer:?}"));
    }
    ws.send(Message::text("5"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Long polls until the session closes, fails, or moved to WebSocket.
async fn poll_loop(http: reqwest::Client, session: String, upgraded: watch::Receiver<bool>) {
    loop {
        if *upgraded.borrow() {
            return;
        }
        let Ok(body) = get(&http, &format!("{session}&t={}", now_ms())).await else {
            return;
        };
        let packets = engineio_v3::decode_payload(body.as_bytes());
        if packets.iter().any(|p| matches!(p, EnginePacket::Close)) {
            return;
        }
    }
}

/// Sends over polling: queued packets in one POST, a ping every `ping_interval`.
async fn run_polling(
    http: reqwest::Client,
    session: String,
    mut out: mpsc::Receiver<String>,
    ping_interval: u64,
) {
    let mut ping = heartbeat(ping_interval);
    loop {
        let first = tokio::select! {
            packet = out.recv() => match packet {
                Some(packet) => packet,
                None => return,
            },
            _ = ping.tick() => "2".to_owned(),
        };
        let mut batch = vec![first];
        while let Ok(more) = out.try_recv() {
            batch.push(more);
        }
        let closing = batch.iter().any(|p| p == "1");
        if post(&http, &format!("{session}&t={}", now_ms()), &batch)
            .await
            .is_err()
            || closing
        {
            return;
        }
    }
}

/// Sends and reads over WebSocket: a ping every `ping_interval`; frames from the server are
/// read (the tap records them) until it closes.
async fn run_websocket(ws: WsStream, mut out: mpsc::Receiver<String>, ping_interval: u64) {
    let (mut sink, mut stream) = ws.split();
    let mut ping = heartbeat(ping_interval);
    loop {
        let packet = tokio::select! {
            packet = out.recv() => match packet {
                Some(packet) => packet,
                None => return,
            },
            _ = ping.tick() => "2".to_owned(),
            frame = stream.next() => match frame {
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

/// The client's ping timer (v3: the client pings every pingInterval), first tick after one
/// interval.
fn heartbeat(ping_interval: u64) -> tokio::time::Interval {
    let period = Duration::from_millis(ping_interval.clamp(100, 600_000));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping
}
