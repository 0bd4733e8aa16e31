//! The outermost layer of every HTTP exchange a replica answers.
//!
//! It answers a CORS preflight for the origins allowed ([`crate::cors`]) and adds CORS
//! headers to the other answers; it stamps each response — Engine.IO 200s and 400s, 101 upgrades, 404s — with
//! `X-Replica` and `X-Replica-Addr` (and each long-poll answer with `Server-Timing: held`,
//! how long the poll waited for a packet), and counts Engine.IO requests and refusals in [`Stats`]:
//! the ground truth the app and the tests compare their own observations against. It also
//! copies each handshake's URI and headers out of hyper's read buffer ([`detached`]) before
//! Socket.IO keeps them for the life of the socket the handshake opens, and reads each
//! polling POST's body whole before Socket.IO sees it, so a refusal of a body too large
//! reaches the client instead of being lost to a connection reset.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use tower::ServiceExt;

use crate::cors::{self, Cors, CorsAnswer};
use crate::sessions::{sid_from_open_packet, KnownSessions};
use crate::stats::Stats;
use stickyscope_contract::names;
use stickyscope_contract::refusal::{refusal_reason, UPGRADE_UNKNOWN_SESSION};
use stickyscope_contract::{EngineQuery, RequestKind};

/// Header naming the replica that answered.
pub const X_REPLICA: HeaderName = HeaderName::from_static(names::X_REPLICA);
/// Header naming the local address the request arrived on.
pub const X_REPLICA_ADDR: HeaderName = HeaderName::from_static(names::X_REPLICA_ADDR);
/// The Engine.IO path prefix.
pub const ENGINE_PATH: &str = "/socket.io";

/// Engine.IO error bodies are a few dozen bytes; anything larger is not read for a reason.
const MAX_REASON_BODY: usize = 4096;

/// What every request of one replica instance shares.
#[derive(Debug)]
pub struct ReplicaContext {
    /// `X-Replica` value.
    pub replica: HeaderValue,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Session ids issued and not yet closed.
    pub sessions: Arc<KnownSessions>,
    /// The origins whose pages may call it (`--cors-origin`).
    pub cors: Cors,
}

/// Answers one request with `router`, observing and stamping it.
pub async fn observe(
    req: Request<Incoming>,
    router: Router,
    ctx: Arc<ReplicaContext>,
    local_addr: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let arrived = std::time::Instant::now();
    let cors = ctx.cors.answer(req.method(), req.headers());
    if let CorsAnswer::Preflight(lines) = &cors {
        let mut preflight = Response::new(Body::empty());
        *preflight.status_mut() = cors::PREFLIGHT_STATUS;
        cors::add(preflight.headers_mut(), lines);
        return Ok(stamped(preflight, &ctx, local_addr));
    }
    let engine_kind = is_engine_path(req.uri().path())
        .then(|| RequestKind::classify(req.method().as_str(), req.uri().query()));
    if let Some(kind) = engine_kind {
        ctx.stats.record_request(kind);
        if kind == RequestKind::Upgrade {
            let query = EngineQuery::parse(req.uri().query().unwrap_or(""));
            if let Some(sid) = query.sid {
                if !ctx.sessions.contains(sid) {
                    ctx.stats.record_rejection(UPGRADE_UNKNOWN_SESSION);
                }
            }
        }
    }

    // Only a handshake's parts are kept (by the socket it opens); other requests go as they are.
    let opens_a_session = matches!(
        engine_kind,
        Some(RequestKind::HandshakePolling | RequestKind::HandshakeWebsocket)
    );
    let req = if opens_a_session { detached(req) } else { req };
    let req = if engine_kind == Some(RequestKind::PollPost) {
        match read_whole_post(req).await {
            Ok(req) => req,
            Err(too_large) => return Ok(stamped(too_large, &ctx, local_addr)),
        }
    } else {
        req.map(Body::new)
    };
    let Ok(mut response) = router.oneshot(req).await;

    if let Some(kind) = engine_kind {
        let status = response.status();
        let is_refusal = status.is_client_error() || status.is_server_error();
        if is_refusal || (kind == RequestKind::HandshakePolling && status == StatusCode::OK) {
            let (parts, body) = response.into_parts();
            let bytes = read_small_body(body).await;
            if is_refusal {
                ctx.stats
                    .record_rejection(&refusal_reason(status.as_u16(), &bytes));
            } else if let Some(sid) = sid_from_open_packet(&bytes) {
                ctx.sessions.insert(&sid);
            }
            response = Response::from_parts(parts, Body::from(bytes));
        }
    }

    let headers = response.headers_mut();
    if let CorsAnswer::Headers(lines) = &cors {
        cors::add(headers, lines);
    }
    if engine_kind == Some(RequestKind::PollGet) {
        // The answer's head goes out when there is a packet to send: until then the poll
        // was held.
        let held_ms = arrived.elapsed().as_secs_f64() * 1000.0;
        let timing = format!("{};dur={held_ms:.1}", names::SERVER_TIMING_HELD);
        if let Ok(value) = HeaderValue::from_str(&timing) {
            headers.insert(
                hyper::header::HeaderName::from_static("server-timing"),
                value,
            );
        }
    }
    Ok(stamped(response, &ctx, local_addr))
}

/// The answer with the headers naming this replica and the address it was reached on.
fn stamped(
    mut response: Response<Body>,
    ctx: &ReplicaContext,
    local_addr: SocketAddr,
) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(X_REPLICA, ctx.replica.clone());
    if let Ok(addr) = HeaderValue::from_str(&local_addr.to_string()) {
        headers.insert(X_REPLICA_ADDR, addr);
    }
    response
}

/// Most a polling POST's body may hold here (Engine.IO's own limit, maxHttpBufferSize, is
/// far lower; this only bounds what is read before the server sees it).
const MAX_POST_BODY: usize = 16 << 20;

/// A polling POST with its body read whole before the server sees it. A server refusing a
/// body too large answers before reading it and closes; the bytes left unread make the
/// kernel reset the connection, which can lose the answer on its way, so a proxy in front
/// says 502 instead of passing on the 413. Read whole, the refusal arrives. A body beyond
/// [`MAX_POST_BODY`] is refused here.
async fn read_whole_post(req: Request<Incoming>) -> Result<Request<Body>, Response<Body>> {
    let (parts, body) = req.into_parts();
    match http_body_util::Limited::new(body, MAX_POST_BODY)
        .collect()
        .await
    {
        Ok(collected) => Ok(Request::from_parts(parts, Body::from(collected.to_bytes()))),
        Err(e) => {
            tracing::debug!("a polling POST's body was not read: {e}");
            let mut refusal = Response::new(Body::from(format!(
                "413 Payload Too Large: a polling POST of more than {MAX_POST_BODY} bytes"
            )));
            *refusal.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            Err(refusal)
        }
    }
}

/// The request with its URI and header values copied into allocations of their own.
///
/// hyper hands them over as slices of the buffer the request was read into (8 KiB or more),
/// and engineioxide keeps the handshake request's parts for as long as the socket lives; so,
/// left as they are, every open socket would keep a whole read buffer alive for the sake of a
/// few hundred bytes of headers. Copied, they cost their own size.
pub fn detached<B>(req: Request<B>) -> Request<B> {
    let (mut parts, body) = req.into_parts();
    if let Ok(uri) = parts.uri.to_string().parse::<Uri>() {
        parts.uri = uri;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        // A value that was valid stays valid when copied; the fallback only keeps it as is.
        let copied = HeaderValue::from_bytes(value.as_bytes())
            .map(|mut v| {
                v.set_sensitive(value.is_sensitive());
                v
            })
            .unwrap_or_else(|_| value.clone());
        headers.append(name.clone(), copied);
    }
    parts.headers = headers;
    Request::from_parts(parts, body)
}

/// Whether `path` is under the Engine.IO path.
pub fn is_engine_path(path: &str) -> bool {
    path.strip_prefix(ENGINE_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

async fn read_small_body(body: Body) -> Bytes {
    match http_body_util::Limited::new(body, MAX_REASON_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::debug!("could not read a response body: {e}");
            Bytes::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_requests_keep_everything_but_the_read_buffer() {
        // A request as hyper builds it: URI and header values are slices of one big buffer.
        let mut raw = b"/socket.io/?EIO=4&transport=websocket&sid=abc".to_vec();
        let uri_len = raw.len();
        raw.extend_from_slice(b"sticky_replica=1f2e");
        raw.resize(8192, 0);
        let buffer = Bytes::from(raw);
        let inside = |p: *const u8| buffer.as_ptr_range().contains(&p);
        let uri = Uri::from_maybe_shared(buffer.slice(..uri_len)).expect("uri");
        let cookie =
            HeaderValue::from_maybe_shared(buffer.slice(uri_len..uri_len + 19)).expect("cookie");
        let mut token = HeaderValue::from_static("secret");
        token.set_sensitive(true);
        let req = Request::builder()
            .method("GET")
            .uri(uri)
            .header("cookie", cookie)
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-for", "10.0.0.2")
            .header("authorization", token)
            .body(())
            .expect("request");
        assert!(inside(req.uri().path().as_ptr()), "the test's premise");
        assert!(inside(req.headers()["cookie"].as_bytes().as_ptr()));

        let req = detached(req);
        assert_eq!(
            req.uri().to_string(),
            "/socket.io/?EIO=4&transport=websocket&sid=abc"
        );
        assert_eq!(req.headers()["cookie"], "sticky_replica=1f2e");
        let forwarded: Vec<_> = req.headers().get_all("x-forwarded-for").iter().collect();
        assert_eq!(forwarded, ["10.0.0.1", "10.0.0.2"]);
        assert!(req.headers()["authorization"].is_sensitive());
        assert!(!inside(req.uri().path().as_ptr()), "the URI is a copy");
        assert!(!inside(
            req.uri().query().map_or(std::ptr::null(), str::as_ptr)
        ));
        assert!(
            !inside(req.headers()["cookie"].as_bytes().as_ptr()),
            "header values are copies"
        );
    }

    #[test]
    fn engine_path_matches_only_the_engine_prefix() {
        assert!(is_engine_path("/socket.io/"));
        assert!(is_engine_path("/socket.io"));
        assert!(!is_engine_path("/socket.iox/"));
        assert!(!is_engine_path("/stats"));
    }
}
