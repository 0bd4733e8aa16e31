//! The built-in balancer against real Traefik (the version the stack file pins), on the same
//! replicas: the same request sequences through both, and their decisions compared — the
//! sticky cookie (name, attributes, value per server), stickiness held, the `X-Stickiness:
//! off` router, malformed, unknown and repeated cookies, a cookie whose server is DOWN, no
//! server up (status and body), health-check timing, and WebSocket upgrades. The differences
//! that remain are asserted too, as the README lists them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::wait_for;
use stickyscope::balancer::routing::cookie_value;
use stickyscope::stack::chain::{Chain, ChainConfig, ReplicaProgram};
use stickyscope::stack::embedded::{EmbeddedConfig, EmbeddedStack};
use stickyscope::stack::ReplicaControl;
use stickyscope::traefik_client::TraefikApi;
use stickyscope_vocab::stack::Adapter;

/// What a balancer answered to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    replica: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

async fn handshake(base: &str, cookie: Option<&str>, stickiness_off: bool) -> Answer {
    let mut request =
        reqwest::Client::new().get(format!("{base}/socket.io/?EIO=4&transport=polling"));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    if stickiness_off {
        request = request.header("X-Stickiness", "off");
    }
    let resp = request.send().await.expect("an answer");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        status: resp.status().as_u16(),
        replica: header("x-replica"),
        set_cookie: header("set-cookie"),
        body: String::new(),
    }
    .with_body(resp.text().await.unwrap_or_default())
}

impl Answer {
    fn with_body(mut self, body: String) -> Self {
        self.body = body;
        self
    }

    /// The cookie's value and its attributes, as set.
    fn cookie(&self) -> Option<(String, String)> {
        let set = self.set_cookie.as_ref()?;
        let (pair, attributes) = set.split_once("; ").unwrap_or((set, ""));
        let value = pair.strip_prefix("sticky_replica=")?;
        Some((value.to_owned(), attributes.to_owned()))
    }
}

/// The two balancers over one embedded stack's replicas.
struct Both {
    stack: std::sync::Arc<EmbeddedStack>,
    /// nginx and Traefik in front of the embedded stack's replicas.
    traefik: Chain,
    /// Replica id → server URL.
    urls: BTreeMap<String, String>,
}

impl Both {
    async fn start() -> Both {
        let stack = EmbeddedStack::start(EmbeddedConfig {
            replicas: 3,
            listen: "127.0.0.1:0".parse().unwrap(),
            heartbeat: common::FAST_HEARTBEAT,
            adapter: Adapter::Memory,
            redis_url: None,
            // The stack file's Traefik checks health every second: so does the built-in.
            health_interval: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .unwrap();
        let urls: BTreeMap<String, String> = stack
            .replicas()
            .await
            .into_iter()
            .map(|r| (r.id, r.url))
            .collect();
        let mut config = ChainConfig::new(ReplicaProgram {
            program: env!("CARGO_BIN_EXE_stickyscope").into(),
            args: vec!["replica".into()],
        })
        .unwrap();
        config.servers = Some(urls.values().cloned().collect());
        let traefik = Chain::start(config)
            .await
            .unwrap_or_else(|e| panic!("Traefik over the embedded replicas: {e}"));
        Both {
            stack,
            traefik,
            urls,
        }
    }

    fn bases(&self) -> [(&'static str, String); 2] {
        [
            ("built-in", self.stack.gateway_url()),
            ("traefik", self.traefik_url()),
        ]
    }

    /// Traefik's own entry point (the chain's nginx is not part of this comparison).
    fn traefik_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.traefik.ports().traefik.web)
    }

    fn cookie_for(&self, replica: &str) -> String {
        format!("sticky_replica={}", cookie_value(&self.urls[replica]))
    }

    /// Server statuses (URL → UP/DOWN) each balancer reports.
    async fn statuses(&self) -> [BTreeMap<String, String>; 2] {
        let builtin: stickyscope_vocab::traefik_model::ServiceInfo = reqwest::get(format!(
            "{}/api/http/services/replicas-sticky@embedded",
            self.stack.gateway_url()
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let traefik = TraefikApi::with_credential(
            &self.traefik.api_url(),
            Some(self.traefik.api_credential()),
            &Default::default(),
        )
        .unwrap()
        .services()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == stickyscope::stack::chain::STICKY_SERVICE)
        .unwrap();
        [builtin.server_status, traefik.server_status]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_balancer_decides_as_traefik_does() {
    let both = Both::start().await;
    let replicas: BTreeSet<String> = both.urls.keys().cloned().collect();

    for (name, base) in both.bases() {
        // A first request is balanced and pinned: the cookie names its server by Traefik's
        // value, with Traefik's attributes.
        let first = handshake(&base, None, false).await;
        assert_eq!(first.status, 200, "{name}: {first:?}");
        let holder = first.replica.clone().expect("X-Replica");
        let (value, attributes) = first
            .cookie()
            .unwrap_or_else(|| panic!("{name}: {first:?}"));
        assert_eq!(value, cookie_value(&both.urls[&holder]), "{name}");
        assert_eq!(attributes, "Path=/; HttpOnly; SameSite=Lax", "{name}");

        // Held: the cookie keeps every request on its server, and is not set again.
        for _ in 0..6 {
            let again = handshake(&base, Some(&both.cookie_for(&holder)), false).await;
            assert_eq!(again.replica.as_deref(), Some(holder.as_str()), "{name}");
            assert_eq!(again.set_cookie, None, "{name}");
        }
        // A quoted cookie is the same cookie.
        let quoted = format!("sticky_replica=\"{}\"", cookie_value(&both.urls[&holder]));
        let q = handshake(&base, Some(&quoted), false).await;
        assert_eq!(
            (q.replica.as_deref(), q.set_cookie),
            (Some(holder.as_str()), None),
            "{name}"
        );

        // X-Stickiness: off goes round-robin, ignores the cookie, sets none.
        let mut seen = BTreeSet::new();
        for _ in 0..6 {
            let rr = handshake(&base, Some(&both.cookie_for(&holder)), true).await;
            assert_eq!(rr.set_cookie, None, "{name}: {rr:?}");
            seen.extend(rr.replica);
        }
        assert_eq!(seen, replicas, "{name}: round-robin visits every replica");

        // Malformed, unknown, and a malformed one first: re-stuck with a valid cookie.
        for cookie in [
            "sticky_replica=zzz".to_owned(),
            "sticky_replica=0000000000000000".to_owned(),
            format!("sticky_replica=zzz; {}", both.cookie_for(&holder)),
        ] {
            let answer = handshake(&base, Some(&cookie), false).await;
            let (value, _) = answer
                .cookie()
                .unwrap_or_else(|| panic!("{name}: {cookie} is not re-stuck: {answer:?}"));
            let server = answer.replica.clone().unwrap();
            assert_eq!(value, cookie_value(&both.urls[&server]), "{name}: {cookie}");
        }
    }

    // A server whose health check fails leaves both rotations within the check's interval
    // and timeout, and its cookie is re-stuck.
    let victim = "2";
    let failed = Instant::now();
    both.stack.set_healthy(victim, false).await.unwrap();
    let url = both.urls[victim].clone();
    let detected = std::sync::Arc::new(std::sync::Mutex::new([None; 2]));
    wait_for(Duration::from_secs(5), "both mark it DOWN", || {
        let statuses = both.statuses();
        let detected = std::sync::Arc::clone(&detected);
        let url = url.clone();
        async move {
            let statuses = statuses.await;
            let mut detected = detected.lock().unwrap();
            for (i, s) in statuses.iter().enumerate() {
                if s.get(&url).map(String::as_str) == Some("DOWN") && detected[i].is_none() {
                    detected[i] = Some(failed.elapsed());
                }
            }
            detected.iter().all(Option::is_some)
        }
    })
    .await;
    let detected = *detected.lock().unwrap();
    eprintln!("health check: DOWN after {detected:?} (built-in, traefik)");
    for (name, base) in both.bases() {
        let answer = handshake(&base, Some(&both.cookie_for(victim)), false).await;
        assert_eq!(answer.status, 200, "{name}");
        assert_ne!(answer.replica.as_deref(), Some(victim), "{name}");
        assert!(
            answer.cookie().is_some(),
            "{name}: a new cookie: {answer:?}"
        );
    }

    // No server up: the same status and body.
    for id in both.urls.keys() {
        both.stack.set_healthy(id, false).await.unwrap();
    }
    wait_for(Duration::from_secs(5), "everything DOWN in both", || {
        let statuses = both.statuses();
        async move {
            statuses
                .await
                .iter()
                .all(|s| s.values().all(|v| v == "DOWN"))
        }
    })
    .await;
    let [builtin, traefik] = [
        handshake(&both.stack.gateway_url(), None, false).await,
        handshake(&both.traefik_url(), None, false).await,
    ];
    assert_eq!(
        (builtin.status, builtin.body.trim()),
        (traefik.status, traefik.body.trim()),
        "no server up"
    );
    assert_eq!(traefik.status, 503);
    for id in both.urls.keys() {
        both.stack.set_healthy(id, true).await.unwrap();
    }
    wait_for(Duration::from_secs(5), "everything UP again", || {
        let statuses = both.statuses();
        async move { statuses.await.iter().all(|s| s.values().all(|v| v == "UP")) }
    })
    .await;

    // WebSocket upgrades: a sticky one reaches its server; both answer 101 the same way.
    for (name, base) in both.bases() {
        let holder = "3";
        let (status, replica, set_cookie) = upgrade(&base, Some(&both.cookie_for(holder))).await;
        assert_eq!(status, 101, "{name}");
        assert_eq!(replica.as_deref(), Some(holder), "{name}");
        assert_eq!(set_cookie, None, "{name}");
        let (status, _, set_cookie) = upgrade(&base, None).await;
        assert_eq!(status, 101, "{name}");
        assert!(
            set_cookie.is_some(),
            "{name}: a fresh WebSocket session is pinned too"
        );
    }
    both.traefik.shutdown().await;
    both.stack.shutdown().await;
}

/// A WebSocket handshake (`transport=websocket`) over a raw connection: status, X-Replica
/// and Set-Cookie of the answer.
async fn upgrade(base: &str, cookie: Option<&str>) -> (u16, Option<String>, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{cookie}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(n, 1, "the connection closed mid-answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    (status, header("x-replica"), header("set-cookie"))
}
