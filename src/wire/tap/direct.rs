//! A tap's calls for a client in this process ([`Tap::direct`]): one HTTP exchange, or a
//! WebSocket whose frames after the 101 come through an in-memory pipe. The same records,
//! jar and naming as a request through the tap's listener, without the loopback hop. An
//! exchange is its own task: a caller that stops waiting does not cut it short.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

use super::tunnel::Switched;
use super::{InFlight, Outgoing, Tap};
use stickyscope_contract::RequestKind;

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

impl Answer {
    /// The tap's own answer to a request it cannot make from `path_and_query`.
    fn unusable(path_and_query: &str) -> Answer {
        Answer {
            status: StatusCode::BAD_REQUEST,
            body: Bytes::from(format!("unusable request path {path_and_query:?}")),
        }
    }

    /// What a response the tap gave says: its status and whole body.
    async fn of(response: hyper::Response<http_body_util::Full<Bytes>>) -> Answer {
        use http_body_util::BodyExt as _;
        let (head, body) = response.into_parts();
        Answer {
            status: head.status,
            body: body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default(),
        }
    }
}

impl Tap {
    /// Sends one request to the gateway — `path_and_query` on it, `body` as Engine.IO's
    /// `text/plain` payload when there is one — and records the exchange. The exchange runs
    /// to its end even if the caller stops waiting for it: what went out is recorded with
    /// what came back (a refusal a replica counted among them) — until the tap shuts down,
    /// which ends it unrecorded.
    pub async fn exchange(&self, method: Method, path_and_query: &str, body: Bytes) -> Answer {
        let shared = Arc::clone(&self.shared);
        let request = Request::builder().method(method).uri(path_and_query);
        let request = if body.is_empty() {
            request
        } else {
            request.header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        };
        let Ok(request) = request.body(()) else {
            return Answer::unusable(path_and_query);
        };
        let (parts, ()) = request.into_parts();
        let out = Outgoing::new(&parts.method, &parts.uri);
        let under_way = InFlight::counting(&shared, out.kind == RequestKind::PollGet);
        let shutdown = self.shutdown.clone();
        let exchange = tokio::spawn(async move {
            let _under_way = under_way;
            tokio::select! {
                answer = shared.exchange_whole(parts, body, out) => Answer::of(answer).await,
                _ = shutdown.cancelled() => Answer {
                    status: StatusCode::BAD_GATEWAY,
                    body: Bytes::from_static(b"stickyscope tap: shut down before the answer"),
                },
            }
        });
        exchange.await.unwrap_or_else(|_| Answer {
            status: StatusCode::BAD_GATEWAY,
            body: Bytes::from_static(b"stickyscope tap: the exchange ended without an answer"),
        })
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
                answer: Answer::unusable(path_and_query),
            });
        };
        let (parts, body) = request.into_parts();
        let out = Outgoing::new(&parts.method, &parts.uri);
        match shared.switch(parts, body, out).await {
            Switched::Open { tunnel, server, .. } => Ok(shared.relay_to_caller(*tunnel, server)),
            Switched::Refused(answer) => Err(NotSwitched {
                answer: Answer::of(answer).await,
            }),
        }
    }
}
