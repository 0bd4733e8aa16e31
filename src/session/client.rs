//! The Socket.IO client of one session attempt: rust_socketio for the two chat users on
//! Engine.IO v4 servers (a Socket.IO client others wrote, through the tap's listener), the
//! project's own [`EngineClient`] for v3 (Socket.IO 2) servers and for background sessions
//! (through the tap directly). The session reads what they do off the tap's records; here
//! they only connect, emit and leave. Network code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Payload, TransportType};

use super::engine_client::{Dial, EngineClient};
use crate::wire::Tap;
use stickyscope_vocab::events::TransportChoice;

/// One TLS connector for every Socket.IO client of the process. rust_socketio builds an HTTP
/// client for each connection attempt, and without a connector of its own each of those
/// loads the system's root certificates again (some 10 ms of CPU each, whether or not TLS is
/// ever used): a crowd of 100 polling sessions reconnecting spent both cores on it and
/// starved the replicas' health checks. Built once, cloned (cheaply) into every client.
fn shared_tls() -> Option<native_tls::TlsConnector> {
    static CONNECTOR: std::sync::OnceLock<Option<native_tls::TlsConnector>> =
        std::sync::OnceLock::new();
    CONNECTOR
        .get_or_init(|| match native_tls::TlsConnector::new() {
            Ok(connector) => Some(connector),
            Err(e) => {
                tracing::warn!("no shared TLS connector ({e}); each client loads its own");
                None
            }
        })
        .clone()
}

/// A connected client of either protocol.
#[derive(Clone)]
pub enum SessionClient {
    /// Engine.IO v4 (Socket.IO 3 and later servers), through rust_socketio, with the number
    /// of its chat acks not yet answered.
    V4(Client, Arc<AtomicUsize>),
    /// stickyscope's own, v3 or v4.
    Own(Arc<EngineClient>),
}

impl SessionClient {
    /// Connects to the Socket.IO server behind `tap` with `transport`, speaking v3 when
    /// `v3`: on Socket.IO's `path`, joining `namespace`, with `auth` as the `CONNECT`
    /// packet's payload (v4; v3 has none). `own` asks for stickyscope's own client even in
    /// v4 (it is used for v3 in any case); otherwise rust_socketio connects through the
    /// tap's listener.
    pub async fn connect(
        tap: &Arc<Tap>,
        (transport, v3, own): (TransportChoice, bool, bool),
        (path, namespace, auth): (&str, &str, Option<&serde_json::Value>),
    ) -> Result<Self, String> {
        if v3 || own {
            let dial = Dial {
                transport,
                v3,
                path,
                namespace,
                auth,
            };
            return EngineClient::connect(Arc::clone(tap), dial)
                .await
                .map(|c| SessionClient::Own(Arc::new(c)));
        }
        let Some(url) = tap.url() else {
            return Err("this session's tap has no listener for rust_socketio".to_owned());
        };
        let builder = ClientBuilder::new(format!("{url}{path}"))
            .namespace(namespace)
            .transport_type(match transport {
                TransportChoice::Polling => TransportType::Polling,
                TransportChoice::Websocket => TransportType::Websocket,
                TransportChoice::Upgrade => TransportType::WebsocketUpgrade,
            })
            .reconnect(false)
            .reconnect_on_disconnect(false);
        let builder = match auth {
            Some(auth) => builder.auth(auth.clone()),
            None => builder,
        };
        let builder = match shared_tls() {
            Some(tls) => builder.tls_config(tls),
            None => builder,
        };
        builder
            .connect()
            .await
            .map(|client| SessionClient::V4(client, Arc::default()))
            .map_err(|e| e.to_string())
    }

    /// Emits an event without an ack.
    pub async fn emit(
        &self,
        event: &'static str,
        payload: serde_json::Value,
    ) -> Result<(), String> {
        match self {
            SessionClient::V4(c, _) => c.emit(event, payload).await.map_err(|e| e.to_string()),
            SessionClient::Own(c) => c.emit(event, payload).await,
        }
    }

    /// Emits an event with an ack id (the ack is read off the wire) — on a v4 client, only
    /// when none of its earlier acks is still unanswered; otherwise without one.
    ///
    /// rust_socketio 0.6 draws ack ids at random from 0..999 and keeps an unanswered ack
    /// for the client's life; when an ack answers an id that two of them share, it removes
    /// both by stale index and panics, killing the client's receive task. One unanswered
    /// ack at a time cannot collide. An unanswered ack on a live session is rare (the
    /// replica took the message and lost the session's reply); the try that follows still
    /// reaches the replica and the other user, whose receipt marks it delivered.
    pub async fn emit_with_ack(
        &self,
        event: &'static str,
        payload: serde_json::Value,
    ) -> Result<(), String> {
        match self {
            SessionClient::V4(c, unanswered) => {
                if unanswered.load(Ordering::SeqCst) > 0 {
                    tracing::debug!("an earlier ack is unanswered: emitting without an ack id");
                    return c.emit(event, payload).await.map_err(|e| e.to_string());
                }
                unanswered.fetch_add(1, Ordering::SeqCst);
                let answered = Arc::clone(unanswered);
                c.emit_with_ack(
                    event,
                    payload,
                    Duration::from_secs(60),
                    move |_: Payload, _| {
                        answered.fetch_sub(1, Ordering::SeqCst);
                        async {}.boxed()
                    },
                )
                .await
                .map_err(|e| e.to_string())
            }
            SessionClient::Own(c) => c.emit_with_ack(event, payload).await,
        }
    }

    /// Leaves, in the background, bounded.
    pub fn disconnect_soon(self) {
        tokio::spawn(async move {
            let leave = async {
                match &self {
                    SessionClient::V4(c, _) => {
                        let _ = c.disconnect().await;
                    }
                    SessionClient::Own(c) => c.disconnect().await,
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), leave).await;
        });
    }
}
