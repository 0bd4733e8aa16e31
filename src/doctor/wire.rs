//! The doctor's hands on the wire: one HTTP request, or one WebSocket upgrade, to the
//! gateway at a time, each on a fresh connection (plain or TLS as the gateway is, trusted
//! as the stack options say), with the user's headers and a cookie jar kept as a browser
//! keeps one. Each answer is kept whole — status, headers, body, time — so that a check can
//! show the very lines it judged by, with the user's secrets masked. Network; no egui.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use stickyscope_vocab::access::{masked, Access};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::tls_trust::{self, Trust};
use crate::wire::jar::CookieJar;
use crate::wire::tap::{gateway_addr, GatewayAddr};

/// How long a connection (TCP and TLS) may take.
const CONNECT_BOUND: Duration = Duration::from_secs(5);

/// An open WebSocket after an upgrade.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The gateway URL is not one.
    #[error("{0}")]
    BadGateway(String),
    /// No connection.
    #[error("cannot connect to {authority}: {reason}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// Why.
        reason: String,
    },
    /// The connection broke before an answer.
    #[error("{request}: the connection ended without an answer ({reason})")]
    NoAnswer {
        /// `GET /socket.io/?…`.
        request: String,
        /// What hyper said.
        reason: String,
    },
    /// No answer in time.
    #[error("{request}: no answer within {bound:?}")]
    Timeout {
        /// `GET /socket.io/?…`.
        request: String,
        /// The bound.
        bound: Duration,
    },
}

/// One answer, whole.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `GET /socket.io/?EIO=4&transport=polling`, masked.
    pub request: String,
    /// Its status.
    pub status: u16,
    /// Its headers, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// Its body (empty for a `101`).
    pub body: Bytes,
    /// From sending to the whole body.
    pub elapsed: Duration,
    /// `Set-Cookie`s the jar refused as browsers do, in words.
    pub refused_cookies: Vec<String>,
}

impl Answer {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie`.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value `Set-Cookie` gives cookie `name`, if it sets it.
    pub fn sets_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .filter_map(|line| cookie::Cookie::parse(line.to_owned()).ok())
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// The body as text, cut to `max` characters.
    pub fn body_text(&self, max: usize) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(max) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.to_owned(),
        }
    }

    /// `GET /socket.io/?… → 400 {"code":1,"message":"Session ID unknown"} (12 ms)`.
    pub fn line(&self) -> String {
        let body = self.body_text(80);
        let body = if body.is_empty() || self.status == 101 {
            String::new()
        } else {
            format!(" {body}")
        };
        format!(
            "{} → {}{body} ({} ms)",
            self.request,
            self.status,
            self.elapsed.as_millis()
        )
    }
}

/// The gateway, and how to reach it as the stack options say.
pub struct DoctorWire {
    addr: GatewayAddr,
    tls: Option<tokio_native_tls::TlsConnector>,
    access: Access,
    secrets: Vec<String>,
}

impl DoctorWire {
    /// The wire to `gateway` for users as `access` says.
    pub fn new(gateway: &str, access: &Access) -> Result<Self, WireError> {
        let addr = gateway_addr(gateway).map_err(|e| WireError::BadGateway(e.to_string()))?;
        let tls = if addr.tls {
            let connector = tls_trust::connector(&Trust::of(access))
                .map_err(|e| WireError::BadGateway(e.to_string()))?;
            Some(tokio_native_tls::TlsConnector::from(connector))
        } else {
            None
        };
        Ok(DoctorWire {
            addr,
            tls,
            access: access.clone(),
            secrets: access.secrets(),
        })
    }

    /// Where Socket.IO lives and who the users are.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Whether the gateway speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.addr.tls
    }

    /// A new user's jar: a browser's for this origin, with the login cookies given.
    pub fn new_jar(&self) -> CookieJar {
        let mut jar = CookieJar::for_origin(self.addr.secure_origin());
        for (name, value) in &self.access.cookies {
            let _ = jar.store(format!("{name}={value}").as_bytes());
        }
        jar
    }

    /// Text with the user's secrets masked.
    pub fn mask(&self, text: &str) -> String {
        masked(text, &self.secrets)
    }

    /// One request on a fresh connection, its answer read whole within `bound`; the
    /// answer's cookies go into `jar`.
    pub async fn send(
        &self,
        method: Method,
        target: &str,
        jar: Option<&mut CookieJar>,
        extra: &[(&str, String)],
        body: Option<String>,
        bound: Duration,
    ) -> Result<Answer, WireError> {
        let line = self.mask(&format!("{method} {target}"));
        let started = Instant::now();
        let request = self.request(method, target, jar.as_deref(), extra, body)?;
        let exchange = async {
            let response = self.exchange(request, &line).await?;
            let (parts, incoming) = response.into_parts();
            let body = incoming
                .collect()
                .await
                .map_err(|e| WireError::NoAnswer {
                    request: line.clone(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, WireError>((parts, body))
        };
        let (parts, body) =
            tokio::time::timeout(bound, exchange)
                .await
                .map_err(|_| WireError::Timeout {
                    request: line.clone(),
                    bound,
                })??;
        Ok(self.answer(line, parts, body, started, jar))
    }

    /// A WebSocket upgrade on a fresh connection: the answer's head, and the socket when it
    /// is a `101`.
    pub async fn upgrade(
        &self,
        target: &str,
        jar: Option<&mut CookieJar>,
        extra: &[(&str, String)],
        bound: Duration,
    ) -> Result<(Answer, Option<Socket>), WireError> {
        let line = self.mask(&format!("GET {target} (Upgrade: websocket)"));
        let started = Instant::now();
        let mut extra: Vec<(&str, String)> = extra.to_vec();
        extra.extend([
            ("connection", "Upgrade".to_owned()),
            ("upgrade", "websocket".to_owned()),
            ("sec-websocket-version", "13".to_owned()),
            ("sec-websocket-key", websocket_key()),
        ]);
        let request = self.request(Method::GET, target, jar.as_deref(), &extra, None)?;
        let response = tokio::time::timeout(bound, self.exchange(request, &line))
            .await
            .map_err(|_| WireError::Timeout {
                request: line.clone(),
                bound,
            })??;
        if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
            let (parts, incoming) = response.into_parts();
            let body = tokio::time::timeout(bound, incoming.collect())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Ok((self.answer(line, parts, body, started, jar), None));
        }
        let mut response = response;
        let upgraded = hyper::upgrade::on(&mut response);
        let (parts, _) = response.into_parts();
        let answer = self.answer(line.clone(), parts, Bytes::new(), started, jar);
        let socket = match tokio::time::timeout(bound, upgraded).await {
            Ok(Ok(upgraded)) => Some(
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await,
            ),
            _ => None,
        };
        Ok((answer, socket))
    }

    fn request(
        &self,
        method: Method,
        target: &str,
        jar: Option<&CookieJar>,
        extra: &[(&str, String)],
        body: Option<String>,
    ) -> Result<Request<BoxBody>, WireError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .header("host", self.addr.authority.as_str())
            .header(
                "user-agent",
                concat!("stickyscope-doctor/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &self.access.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in extra {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(cookies) = jar.and_then(|j| j.header(None)) {
            builder = builder.header("cookie", cookies);
        }
        let body = match body {
            Some(text) => {
                builder = builder.header("content-type", "text/plain;charset=UTF-8");
                Either::Left(Full::new(Bytes::from(text)))
            }
            None => Either::Right(Empty::new()),
        };
        builder
            .body(body)
            .map_err(|e| WireError::BadGateway(format!("{target}: {e}")))
    }

    /// Connects and sends `request`, keeping the connection for an upgrade.
    async fn exchange(
        &self,
        request: Request<BoxBody>,
        line: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, WireError> {
        let connect_error = |reason: String| WireError::Connect {
            authority: self.addr.authority.clone(),
            reason,
        };
        let tcp = tokio::time::timeout(CONNECT_BOUND, TcpStream::connect(&self.addr.authority))
            .await
            .map_err(|_| connect_error(format!("no connection within {CONNECT_BOUND:?}")))?
            .map_err(|e| connect_error(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let no_answer = |e: hyper::Error| WireError::NoAnswer {
            request: line.to_owned(),
            reason: e.to_string(),
        };
        match &self.tls {
            Some(connector) => {
                let stream =
                    tokio::time::timeout(CONNECT_BOUND, connector.connect(&self.addr.host, tcp))
                        .await
                        .map_err(|_| connect_error("no TLS handshake within 5 s".into()))?
                        .map_err(|e| {
                            connect_error(
                                tls_trust::refusal_sentence(&e, &self.addr.host)
                                    .unwrap_or_else(|| e.to_string()),
                            )
                        })?;
                send_on(TokioIo::new(stream), request)
                    .await
                    .map_err(no_answer)
            }
            None => send_on(TokioIo::new(tcp), request).await.map_err(no_answer),
        }
    }

    fn answer(
        &self,
        request: String,
        parts: hyper::http::response::Parts,
        body: Bytes,
        started: Instant,
        jar: Option<&mut CookieJar>,
    ) -> Answer {
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    self.mask(&String::from_utf8_lossy(v.as_bytes())),
                )
            })
            .collect();
        let mut refused_cookies = Vec::new();
        if let Some(jar) = jar {
            for value in parts.headers.get_all("set-cookie") {
                if let Err(refused) = jar.store(value.as_bytes()) {
                    refused_cookies.push(refused.to_string());
                }
            }
        }
        Answer {
            request,
            status: parts.status.as_u16(),
            headers,
            body,
            elapsed: started.elapsed(),
            refused_cookies,
        }
    }
}

/// A request's body: some text, or none.
type BoxBody = Either<Full<Bytes>, Empty<Bytes>>;

/// Sends `request` on `io` (HTTP/1.1, upgrades allowed).
async fn send_on<I>(
    io: I,
    request: Request<BoxBody>,
) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    sender.send_request(request).await
}

/// A `Sec-WebSocket-Key`: 16 bytes, base64, different each time.
fn websocket_key() -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = format!("{n}-{:?}", Instant::now());
    let digest = sha1::Sha1::digest(seed.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..16])
}
