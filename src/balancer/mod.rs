//! The built-in sticky balancer: a small HTTP/1.1 and WebSocket reverse proxy in front of
//! replicas on loopback, routing like the swarm stack's Traefik (see [`routing`]). Toward
//! its servers it speaks HTTP/1.1 or, for servers known to speak it, HTTP/2 by prior
//! knowledge ([`Upstream`]); a WebSocket upgrade always has an HTTP/1.1 connection of its own.
//!
//! It also answers a Traefik-shaped topology API under `/api/` ([`api`]) and hands
//! `/_stack/` requests to an optional [`Admin`] (the embedded stack's controls), once
//! [`control`] has let them through: only from this machine's own tools, never from a web
//! page.

pub mod api;
pub mod control;
pub mod health;
pub mod pool;
pub mod routing;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::http_serve::{is_upgrade, strip_hop_by_hop};
use pool::{Backend, Pool};
use routing::{Service, STICKINESS_HEADER};

/// Response bodies of the balancer: proxied or generated.
pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A future answering an admin request.
pub type AdminFuture = Pin<Box<dyn Future<Output = (u16, serde_json::Value)> + Send>>;

/// Handles `/_stack/…` requests: method and path in, status and JSON out.
pub trait Admin: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, method: Method, path: String) -> AdminFuture;
}

/// Settings of the balancer.
#[derive(Debug, Clone, Copy)]
pub struct BalancerConfig {
    /// Interval of active health checks (Traefik label: `healthcheck.interval`).
    pub health_interval: Duration,
    /// How long a request head may take ([`crate::http_serve::HEADER_READ_TIMEOUT`]).
    pub header_read_timeout: Duration,
    /// How ordinary requests travel to the servers (WebSocket upgrades always take an
    /// HTTP/1.1 connection of their own).
    pub upstream: Upstream,
}

/// How the balancer speaks to its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Upstream {
    /// HTTP/1.1 from a pool of connections, one held for each request in flight (Traefik's
    /// default, and any server's): a held long-poll holds a connection, a file on both ends.
    #[default]
    Http1,
    /// HTTP/2 without TLS, by prior knowledge (Traefik's `h2c://` servers): every request
    /// to a server shares one connection, however many polls are held. Only for servers
    /// known to speak it, as this stack's replicas do.
    H2c,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            health_interval: Duration::from_secs(1),
            header_read_timeout: crate::http_serve::HEADER_READ_TIMEOUT,
            upstream: Upstream::Http1,
        }
    }
}

/// A running balancer.
#[derive(Debug)]
pub struct BalancerHandle {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
}

impl BalancerHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes idle connections; proxied WebSockets end with their replicas.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for BalancerHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct Balancer {
    local_addr: SocketAddr,
    pool: Arc<Pool>,
    client: Client<HttpConnector, Incoming>,
    admin: Option<Arc<dyn Admin>>,
    health_interval: String,
}

/// Starts the balancer on `listener` over `pool`.
pub fn start(
    listener: TcpListener,
    pool: Arc<Pool>,
    config: BalancerConfig,
    admin: Option<Arc<dyn Admin>>,
) -> std::io::Result<BalancerHandle> {
    let local_addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    let balancer = Arc::new(Balancer {
        local_addr,
        pool: Arc::clone(&pool),
        client: Client::builder(TokioExecutor::new())
            .pool_idle_timeout(crate::http_serve::POOL_IDLE)
            .http2_only(config.upstream == Upstream::H2c)
            .build(connector),
        admin,
        health_interval: humantime::format_duration(config.health_interval).to_string(),
    });
    tokio::spawn(health::run(pool, config.health_interval, shutdown.clone()));
    tokio::spawn(crate::http_serve::accept_loop(
        listener,
        shutdown.clone(),
        ("balancer", config.header_read_timeout),
        move |peer| {
            let balancer = Arc::clone(&balancer);
            service_fn(move |req| Arc::clone(&balancer).handle(req, peer))
        },
    ));
    Ok(BalancerHandle {
        local_addr,
        shutdown,
    })
}

impl Balancer {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, Infallible> {
        let path = req.uri().path();
        if path.starts_with("/api/") {
            let (status, body) = api::respond(path, &self.pool.backends(), &self.health_interval);
            let mut resp = json_response(status, &body);
            resp.headers_mut()
                .insert("x-next-page", HeaderValue::from_static("1"));
            return Ok(resp);
        }
        if let (Some(admin), true) = (&self.admin, path.starts_with("/_stack/")) {
            if let Err(refusal) = control::check(req.method(), req.headers(), self.local_addr) {
                tracing::warn!(%peer, "control request refused: {refusal}");
                return Ok(json_response(
                    403,
                    &serde_json::json!({"error": refusal.to_string()}),
                ));
            }
            let (status, body) = admin.handle(req.method().clone(), path.to_owned()).await;
            return Ok(json_response(status, &body));
        }
        Ok(self.proxy(req, peer).await)
    }

    async fn proxy(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let service = if routing::stickiness_off(
            req.headers()
                .get(STICKINESS_HEADER)
                .map(HeaderValue::as_bytes),
        ) {
            Service::RoundRobin
        } else {
            Service::Sticky
        };
        let cookie = routing::sticky_cookie(
            req.headers()
                .get_all(header::COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
        );
        let Some((backend, decision)) = self.pool.route(service, cookie) else {
            // Traefik's answer, word for word (3.7.15, measured), so that the app and its
            // users meet the same thing on both stacks.
            return text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                stickyscope_vocab::traefik_model::NO_SERVER.to_owned(),
            );
        };

        let forwarded = if is_upgrade(req.headers()) {
            self.forward_upgrade(req, &backend, peer).await
        } else {
            self.forward(req, &backend, peer).await
        };
        let mut resp = match forwarded {
            Ok(resp) => resp,
            Err(failure) => {
                if failure.connect {
                    // Passive health: a server that refuses connections leaves rotation now;
                    // the next successful health check brings it back.
                    self.pool.set_healthy(backend.addr, false);
                }
                let who = backend.replica.as_deref().unwrap_or("?");
                tracing::info!(server = %backend.url, "proxy failure: {}", failure.reason);
                return text_response(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "502 Bad Gateway: replica {who} ({}) {}\n",
                        backend.url, failure.reason
                    ),
                );
            }
        };
        if let Some(value) = decision.set_cookie {
            if let Ok(v) = HeaderValue::from_str(&routing::set_cookie_header(&value)) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        resp
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        backend: &Backend,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ProxyFailure> {
        let path = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let uri = format!("{}{path}", backend.url)
            .parse::<hyper::Uri>()
            .map_err(|e| ProxyFailure::other(format!("bad upstream URI: {e}")))?;
        *req.uri_mut() = uri;
        strip_hop_by_hop(req.headers_mut());
        add_forwarded_for(req.headers_mut(), peer);
        let resp = self.client.request(req).await.map_err(|e| {
            if e.is_connect() {
                ProxyFailure::connect("refused the connection")
            } else {
                ProxyFailure::other(format!("failed: {e}"))
            }
        })?;
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            body.map_err(Into::into).boxed(),
        ))
    }

    async fn forward_upgrade(
        &self,
        mut req: Request<Incoming>,
        backend: &Backend,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ProxyFailure> {
        let client_upgrade = hyper::upgrade::on(&mut req);
        let path = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        *req.uri_mut() = path
            .parse()
            .map_err(|e| ProxyFailure::other(format!("bad upstream URI: {e}")))?;
        add_forwarded_for(req.headers_mut(), peer);

        let stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(backend.addr))
            .await
            .map_err(|_| ProxyFailure::connect("did not accept the connection in time"))?
            .map_err(|_| ProxyFailure::connect("refused the connection"))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ProxyFailure::other(format!("handshake failed: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::trace!("upstream upgrade connection ended: {e}");
            }
        });
        let mut resp = sender
            .send_request(req)
            .await
            .map_err(|e| ProxyFailure::other(format!("failed: {e}")))?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let server_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                match tokio::join!(client_upgrade, server_upgrade) {
                    (Ok(client), Ok(server)) => {
                        let mut client = TokioIo::new(client);
                        let mut server = TokioIo::new(server);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    (c, s) => tracing::debug!(
                        client_ok = c.is_ok(),
                        server_ok = s.is_ok(),
                        "upgrade tunnel not established"
                    ),
                }
            });
        }
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(
            parts,
            body.map_err(Into::into).boxed(),
        ))
    }
}

/// Why a request could not be proxied.
#[derive(Debug)]
struct ProxyFailure {
    reason: String,
    connect: bool,
}

impl ProxyFailure {
    fn connect(reason: &str) -> Self {
        ProxyFailure {
            reason: reason.to_owned(),
            connect: true,
        }
    }

    fn other(reason: String) -> Self {
        ProxyFailure {
            reason,
            connect: false,
        }
    }
}

fn add_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let ip = peer.ip().to_string();
    let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert("x-forwarded-for", v);
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn text_response(status: StatusCode, text: String) -> Response<Body> {
    let mut resp = Response::new(full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
