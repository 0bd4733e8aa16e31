//! The real nginx configuration (`stack/nginx/nginx.conf`) with Debian's nginx: it passes
//! `nginx -t`, and with only Traefik's address rewritten to the built-in balancer it carries
//! sticky polling, WebSocket, and the round-robin failure, with the app's own sessions.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::nginx::{free_port, globals, nginx_binary, scratch, NginxProcess};
use common::{stack, wait_for, Collected};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::ReplicaControl;
use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::stack::Adapter;

fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("stack/nginx/nginx.conf")
}

#[test]
fn nginx_accepts_the_real_configuration() {
    let dir = scratch();
    let out = std::process::Command::new(nginx_binary())
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(config_path())
        .arg("-g")
        .arg(globals(&dir, true))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Real nginx with the real configuration, Traefik's address rewritten to `upstream`.
struct Nginx {
    _process: NginxProcess,
    url: String,
}

impl Nginx {
    async fn start(upstream: &str) -> Nginx {
        let dir = scratch();
        let port = free_port();
        let original = std::fs::read_to_string(config_path()).unwrap();
        assert!(original.contains("set $traefik http://traefik:80;"));
        assert!(original.contains("listen 80;"));
        let rewritten = original
            .replace(
                "set $traefik http://traefik:80;",
                &format!("set $traefik {upstream};"),
            )
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
        let process = NginxProcess::start(&dir, &rewritten);
        let url = format!("http://127.0.0.1:{port}");
        wait_for(Duration::from_secs(10), "nginx listening", || {
            let url = url.clone();
            async move {
                reqwest::get(format!("{url}/healthz"))
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        Nginx {
            _process: process,
            url,
        }
    }
}

async fn session(
    gateway: &str,
    user: &str,
    transport: TransportChoice,
    sticky: bool,
    sink: &stickyscope::event_sink::EventSink,
) -> ChatSession {
    let mut config = SessionConfig::new(user, gateway);
    config.transport = transport;
    config.sticky = sticky;
    ChatSession::start(config, sink.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_polling_and_chat_work_through_real_nginx() {
    let stack = stack(3, Adapter::Memory).await;
    let nginx = Nginx::start(&stack.gateway_url()).await;
    let (sink, seen) = Collected::sink();
    let agent = session(&nginx.url, "agent", TransportChoice::Polling, true, &sink).await;
    let visitor = session(&nginx.url, "visitor", TransportChoice::Polling, true, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "both connected through nginx",
        || {
            let seen = seen.clone();
            async move { seen.connected("agent") && seen.connected("visitor") }
        },
    )
    .await;
    agent.send("through nginx").await;
    wait_for(Duration::from_secs(15), "the visitor receives it", || {
        let seen = seen.clone();
        async move {
            seen.received("visitor")
                .iter()
                .any(|r| r.message.text == "through nginx")
        }
    })
    .await;
    // Several ping cycles later, each user is still on one replica, never refused.
    let gets = |seen: &Collected| {
        seen.wire()
            .iter()
            .filter(|w| {
                w.user == "agent"
                    && w.request_kind() == Some(stickyscope_contract::RequestKind::PollGet)
            })
            .count()
    };
    let before = gets(&seen);
    wait_for(Duration::from_secs(15), "three more polls", || {
        let seen = seen.clone();
        async move { gets(&seen) >= before + 3 }
    })
    .await;
    for user in ["agent", "visitor"] {
        let wire: Vec<_> = seen.wire().into_iter().filter(|w| w.user == user).collect();
        let replicas: std::collections::BTreeSet<_> =
            wire.iter().filter_map(|w| w.replica.clone()).collect();
        assert_eq!(
            replicas.len(),
            1,
            "{user} stayed on one replica: {replicas:?}"
        );
        assert!(
            wire.iter().all(|w| w.failure.is_none()),
            "{user} was never refused"
        );
    }
    agent.shutdown().await;
    visitor.shutdown().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_needs_no_stickiness_through_real_nginx() {
    let stack = stack(3, Adapter::Memory).await;
    let nginx = Nginx::start(&stack.gateway_url()).await;
    let (sink, seen) = Collected::sink();
    let agent = session(
        &nginx.url,
        "agent",
        TransportChoice::Websocket,
        false,
        &sink,
    )
    .await;
    wait_for(Duration::from_secs(15), "connected over websocket", || {
        let seen = seen.clone();
        async move { seen.on_websocket("agent") }
    })
    .await;
    agent.shutdown().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_polling_fails_through_real_nginx_with_the_exact_reason() {
    let stack = stack(3, Adapter::Memory).await;
    let nginx = Nginx::start(&stack.gateway_url()).await;
    let (sink, seen) = Collected::sink();
    let agent = session(&nginx.url, "agent", TransportChoice::Polling, false, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "Session ID unknown, passed through nginx",
        || {
            let seen = seen.clone();
            async move { seen.reconnect_reason("agent").as_deref() == Some("Session ID unknown") }
        },
    )
    .await;
    assert!(!seen.connected("agent"));
    agent.shutdown().await;
    stack.shutdown().await;
}

/// The repository's rate limits fit a load test from one machine: 300 sessions through
/// real nginx all start and stay up (with the seed's 100 requests a second per address,
/// every one broke with a 503 within the first second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_sessions_from_one_address_pass_the_rate_limits() {
    // The default heartbeat (3 s / 7 s): the tests' fast one leaves 300 polling sessions
    // on two cores too little time to answer pings.
    let stack = stickyscope::stack::embedded::EmbeddedStack::start(
        stickyscope::stack::embedded::EmbeddedConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let nginx = Nginx::start(&stack.gateway_url()).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["probe", "--gateway", &nginx.url, "--sessions", "300"])
        .args(["--duration", "6s", "--json"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let broke: Vec<&serde_json::Value> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["broke"].is_null())
        .collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} broke, first: {:?}",
        broke.len(),
        broke.first()
    );
    stack.shutdown().await;
}

/// A request refused by nginx's rate limit is named as one: 429, and the tap's record says
/// "rate-limited by the gateway", not a generic gateway error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_refusal_is_named_as_what_it_is() {
    use stickyscope::wire::{Tap, TapConfig};
    use stickyscope_vocab::record::FailureKind;
    let stack = stack(1, Adapter::Memory).await;
    let nginx = Nginx::start(&stack.gateway_url()).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let tap = Tap::start(TapConfig::new("agent", nginx.url.clone()), tx)
        .await
        .unwrap();
    // Far more new sessions at once than the per-address burst allows.
    let client = reqwest::Client::new();
    let url = format!(
        "{}/socket.io/?EIO=4&transport=polling",
        tap.url().expect("a listening tap")
    );
    let answers = futures_util::future::join_all((0..900).map(|_| client.get(&url).send())).await;
    let limited = answers
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|r| r.status() == 429))
        .count();
    assert!(limited > 0, "no request was rate-limited");
    // The tap answers first and records after (off the answer's path): one record for each
    // request, some still on their way when the last answer is in.
    let mut named = 0;
    for n in 0..answers.len() {
        let record = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{n} of {} requests recorded", answers.len()))
            .expect("the tap records until it is dropped");
        if let Some(f) = record.failure {
            assert_eq!(f.kind, FailureKind::RateLimited, "{}", f.reason);
            assert_eq!(
                f.reason,
                "rate-limited by the gateway (HTTP 429 Too Many Requests)"
            );
            named += 1;
        }
    }
    assert_eq!(named, limited);
    assert!(rx.try_recv().is_err(), "a request recorded twice");
    stack.shutdown().await;
}
