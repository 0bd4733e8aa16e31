//! A tap's calls for a client in this process ([`Tap::direct`]): one HTTP exchange, or a
//! WebSocket whose frames after the 101 come through an in-memory pipe. The same records,
//! jar and naming as a request through the tap's listener, without the loopback hop.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

use super::tunnel::Switched;
use super::{InFlight, Outgoing, Tap};

/// What came back for a request: the gateway's status and body, or the tap's own
/// (`502`/`504` with why, when nothing answered — the record says the same).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
}

/// Why a WebSocket did not open: the answer given instead of a 101.
#[derive(Debug, Clone, thiserror::Error)]
#[error("HTTP {} instead of a WebSocket: {}", answer.status.as_u16(), String::from_utf8_lossy(&answer.body).trim())]
pub struct NotSwitched {
    /// What came back.
    pub answer: Answer,
}

impl Tap {
    /// Sends one request to the gateway — `path_and_query` on it, `body` as Engine.IO's
    /// `text/plain` payload when there is one — and records the exchange.
    pub async fn exchange(&self, method: Method, path_and_query: &str, body: Bytes) -> Answer {
        let shared = &self.shared;
        let _in_flight = InFlight::new(shared);
        let request = Request::builder().method(method).uri(path_and_query);
        let request = if body.is_empty() {
            request
        } else {
            request.header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        };
        let Ok(request) = request.body(()) else {
            return Answer {
                status: StatusCode::BAD_REQUEST,
                body: Bytes::from(format!("unusable request path {path_and_query:?}")),
            };
        };
        let (parts, ()) = request.into_parts();
        let out = Outgoing::new(&parts.method, &parts.uri);
        let (head, body) = shared.exchange_whole(parts, body, out).await.into_parts();
        use http_body_util::BodyExt as _;
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Answer {
            status: head.status,
            body,
        }
    }

    /// Opens a WebSocket at `path_and_query` on the gateway and records it like the tap's
    /// tunnel does; gives back the stream of what follows the 101 (the caller speaks
    /// WebSocket frames on it, as a client), or the answer that came instead.
    pub async fn websocket(
        &self,
        path_and_query: &str,
    ) -> Result<tokio::io::DuplexStream, NotSwitched> {
        let shared = Arc::clone(&self.shared);
        let _in_flight = InFlight::new(&shared);
        let request = Request::builder()
            .method(Method::GET)
            .uri(path_and_query)
            .header(header::CONNECTION, HeaderValue::from_static("Upgrade"))
            .header(header::UPGRADE, HeaderValue::from_static("websocket"))
            .header(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            )
            .header(header::SEC_WEBSOCKET_KEY, generate_key())
            .body(Empty::<Bytes>::new());
        let Ok(request) = request else {
            return Err(NotSwitched {
                answer: Answer {
                    status: StatusCode::BAD_REQUEST,
                    body: Bytes::from(format!("unusable request path {path_and_query:?}")),
                },
            });
        };
        let (parts, body) = request.into_parts();
        let out = Outgoing::new(&parts.method, &parts.uri);
        match shared.switch(parts, body, out).await {
            Switched::Open { tunnel, server, .. } => Ok(shared.relay_to_caller(*tunnel, server)),
            Switched::Refused(answer) => {
                let (head, body) = answer.into_parts();
                use http_body_util::BodyExt as _;
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Err(NotSwitched {
                    answer: Answer {
                        status: head.status,
                        body,
                    },
                })
            }
        }
    }
}
