//! Delivery under disruption: every message acked, received exactly once, in order per
//! sender, while replicas die and return and stickiness and transport change. And the storm
//! guard: when only long-poll GETs are misrouted, attempts stay at two a second or fewer.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{stack, wait_for, Collected};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::ReplicaControl;
use stickyscope_contract::RequestKind;
use stickyscope_vocab::events::OutboxStatus;
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::stack::Adapter;

async fn holder(seen: &Collected, user: &str) -> Option<String> {
    seen.state(user)
        .and_then(|s| s.replica().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_arrives_once_in_order_through_kills_and_switches() {
    let stack = stack(3, Adapter::Memory).await;
    let (sink, seen) = Collected::sink();
    let users = ["agent", "visitor"];
    let mut sessions = Vec::new();
    for user in users {
        let config = SessionConfig::new(user, &stack.gateway_url());
        sessions.push(ChatSession::start(config, sink.clone()).await.unwrap());
    }
    wait_for(Duration::from_secs(10), "both connected", || {
        let seen = seen.clone();
        async move { seen.connected("agent") && seen.connected("visitor") }
    })
    .await;

    let started = Instant::now();
    let mut step = 0;
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(16) {
        for (i, s) in sessions.iter().enumerate() {
            sent += 1;
            s.send(format!("{} #{sent}", users[i])).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let at = started.elapsed().as_secs();
        if at >= step * 2 + 2 {
            step += 1;
            match step {
                1 => {
                    if let Some(r) = holder(&seen, "agent").await {
                        stack.kill(&r).await.unwrap();
                    }
                }
                2 => {
                    for r in stack.replicas().await {
                        let _ = stack.restart(&r.id).await;
                    }
                }
                3 => sessions
                    .iter()
                    .for_each(|s| s.set_transport(TransportChoice::Websocket)),
                4 => sessions.iter().for_each(|s| s.set_sticky(false)),
                5 => sessions
                    .iter()
                    .for_each(|s| s.set_transport(TransportChoice::Polling)),
                6 => sessions.iter().for_each(|s| s.set_sticky(true)),
                7 => {
                    if let Some(r) = holder(&seen, "visitor").await {
                        stack.kill(&r).await.unwrap();
                    }
                    sessions[0].set_transport(TransportChoice::Upgrade);
                }
                _ => {}
            }
        }
    }
    for r in stack.replicas().await {
        let _ = stack.restart(&r.id).await;
    }

    wait_for(Duration::from_secs(60), "every message delivered", || {
        let seen = seen.clone();
        async move { seen.all_delivered(sent) }
    })
    .await;

    // Every message was accepted by a replica: its ack was seen, or — when the session died
    // between the broadcast and the ack — the peer received it from the replica that
    // accepted it (a replica broadcasts only what it accepted).
    let statuses = seen.outbox();
    let accepted_by: BTreeMap<String, String> = users
        .iter()
        .flat_map(|u| seen.received(u))
        .map(|r| (r.message.id, r.message.replica))
        .collect();
    for (id, history) in &statuses {
        let acked = history
            .iter()
            .any(|s| matches!(s, OutboxStatus::Acked { .. }));
        assert!(
            acked || accepted_by.contains_key(id),
            "{id} was never accepted: {history:?}"
        );
    }
    seen.assert_each_received_once_in_order(users);
    for s in sessions {
        s.shutdown().await;
    }
    stack.shutdown().await;
}

/// A gateway that sends long-poll GETs to replica B and everything else to replica A.
async fn misrouting_gateway(a: std::net::SocketAddr, b: std::net::SocketAddr) -> String {
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client: Client<_, hyper::body::Incoming> =
        Client::builder(TokioExecutor::new()).build_http();
    let client = Arc::new(client);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |mut req: hyper::Request<hyper::body::Incoming>| {
                        let client = Arc::clone(&client);
                        async move {
                            let kind =
                                RequestKind::classify(req.method().as_str(), req.uri().query());
                            let to = if kind == RequestKind::PollGet { b } else { a };
                            let pq = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_owned())
                                .unwrap_or_default();
                            *req.uri_mut() = format!("http://{to}{pq}").parse().unwrap();
                            let resp = client.request(req).await.unwrap();
                            let (parts, body) = resp.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            Ok::<_, Infallible>(hyper::Response::from_parts(
                                parts,
                                http_body_util::Full::new(body),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_guard_holds_when_only_long_poll_gets_are_misrouted() {
    let stack = stack(2, Adapter::Memory).await;
    let replicas = stack.replicas().await;
    let gateway = misrouting_gateway(replicas[0].addr, replicas[1].addr).await;
    let (sink, seen) = Collected::sink();
    let session = ChatSession::start(SessionConfig::new("agent", &gateway), sink)
        .await
        .unwrap();

    let window = Duration::from_secs(6);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let handshakes = stack
        .stats("1")
        .await
        .unwrap()
        .requests_of(RequestKind::HandshakePolling);
    let elapsed = started.elapsed().as_secs_f64();
    // At most 2 attempts a second, plus the first.
    assert!(
        (handshakes as f64) <= 2.0 * elapsed + 1.0,
        "{handshakes} attempts in {elapsed:.1} s"
    );
    assert!(handshakes >= 3, "it keeps trying: {handshakes}");
    let refused = stack
        .stats("2")
        .await
        .unwrap()
        .rejected_for("Session ID unknown");
    assert!(refused >= 1);
    assert!(
        matches!(seen.state("agent"), Some(SessionState::Reconnecting { ref reason, .. }) if reason == "Session ID unknown"),
        "{:?}",
        seen.state("agent")
    );
    session.shutdown().await;
    stack.shutdown().await;
}
