//! What the app's own HTTP proxies (the built-in balancer and the wire taps) share: the
//! accept loop (HTTP/1.1 with upgrades, one task per connection, a bound on how long a
//! request head may take, graceful shutdown on a token), the idle time of their client
//! pools, and hop-by-hop header handling.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long a client may take to send a request head (or keep an idle connection waiting
/// for its next one) before the connection is closed; bounds slow-loris clients. Longer
/// than the idle time of the app's own connection pools ([`POOL_IDLE`]).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the app's HTTP clients keep an idle connection: shorter than any server's
/// header-read timeout here, so a request never races the server closing it.
pub const POOL_IDLE: Duration = Duration::from_secs(10);

/// Serves connections from `listener` until `shutdown`; `service_for(peer)` answers each
/// connection's requests. `what` names the server in logs; `header_read_timeout` bounds
/// how long a request head may take ([`HEADER_READ_TIMEOUT`] normally).
pub async fn accept_loop<F, S, B>(
    listener: TcpListener,
    shutdown: CancellationToken,
    (what, header_read_timeout): (&'static str, Duration),
    service_for: F,
) where
    F: Fn(SocketAddr) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("{what} accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = service_for(peer);
        tokio::spawn(serve_connection(
            stream,
            shutdown.clone(),
            header_read_timeout,
            service,
        ));
    }
}

/// Serves one connection's requests with `service` (HTTP/1.1, upgrades allowed) until the
/// client closes it, or, once `shutdown` fires, until the request under way is answered.
pub async fn serve_connection<I, S, B>(
    stream: I,
    shutdown: CancellationToken,
    header_read_timeout: Duration,
    service: S,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Whether a request asks to switch protocols (`Upgrade` plus `Connection: upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && has_token(headers, header::CONNECTION, "upgrade")
}

/// Whether a comma-separated header (`Connection`, `Transfer-Encoding`) lists `token`, in
/// any case.
pub fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| lists_token(v.as_bytes(), token))
}

/// Whether one comma-separated header value lists `token`, in any case.
pub fn lists_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, those named by `Connection` included, before forwarding.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Removes hop-by-hop headers from an upgrade request but for the two that make it one
/// (`Connection: upgrade` and `Upgrade`), which go on to the next hop.
pub fn strip_hop_by_hop_keeping_upgrade(headers: &mut HeaderMap) {
    let upgrade = headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(headers);
    if let Some(upgrade) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("upgrade"),
        );
    }
}
