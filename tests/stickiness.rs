//! The sticky-session problem, reproduced for real: rust_socketio clients through the
//! built-in balancer to socketioxide replicas, checked against the replicas' own counters.

mod common;

use std::time::{Duration, Instant};

use common::{acked_ok, raw_handshake, stack, wait_for, ChatClient, ClientOptions};
use rust_socketio::TransportType;
use stickyscope::stack::ReplicaControl;
use stickyscope_contract::refusal::UPGRADE_UNKNOWN_SESSION;
use stickyscope_contract::RequestKind;
use stickyscope_vocab::stack::Adapter;

const SESSION_UNKNOWN: &str = "Session ID unknown";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_polling_session_stays_on_one_replica_for_three_ping_cycles() {
    let stack = stack(3, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    // A browser's first handshake sets the cookie; its jar sends it from then on.
    let (holder, cookie, _) = raw_handshake(&gateway, None).await;
    let cookie = cookie.expect("sticky service sets its cookie");

    let user = ChatClient::connect(
        &gateway,
        TransportType::Polling,
        ClientOptions {
            cookie: Some(cookie),
            round_robin: false,
        },
    )
    .await
    .expect("sticky polling connects");

    // One POST carries the CONNECT packet; each ping cycle adds a pong POST.
    wait_for(
        Duration::from_secs(5),
        "three ping cycles on the holder",
        || {
            let stack = &stack;
            let holder = &holder;
            async move {
                let s = stack.stats(holder).await.unwrap();
                s.requests_of(RequestKind::PollPost) >= 4
            }
        },
    )
    .await;
    let ack = user.send("m1", "agent", "still here?").await;
    assert!(acked_ok(&ack), "ack after three ping cycles: {ack:?}");
    assert_eq!(ack.unwrap()["replica"], holder.as_str());

    for replica in stack.replicas().await {
        let s = replica.stats;
        if replica.id == holder {
            assert!(
                s.rejected.is_empty(),
                "holder refused nothing: {:?}",
                s.rejected
            );
            assert_eq!(s.sockets.total, 1, "one session, never re-established");
            assert_eq!(s.sockets.connected, 1);
        } else {
            assert_eq!(
                s.total_requests(),
                0,
                "replica {} saw requests: {s:?}",
                replica.id
            );
        }
    }
    user.client.disconnect().await.ok();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_polling_session_never_forms() {
    let stack = stack(3, Adapter::Memory).await;
    let options = ClientOptions {
        cookie: None,
        round_robin: true,
    };
    let connected =
        ChatClient::connect(&stack.gateway_url(), TransportType::Polling, options).await;
    if let Ok(user) = &connected {
        // rust_socketio may report success; the session must still be unusable.
        let ack = user.send("m1", "agent", "hello?").await;
        assert!(
            !acked_ok(&ack),
            "a round-robin polling session delivered: {ack:?}"
        );
    }

    wait_for(
        Duration::from_secs(5),
        "Session ID unknown refusals",
        || {
            let stack = &stack;
            async move {
                let total: u64 = stack
                    .replicas()
                    .await
                    .iter()
                    .map(|r| r.stats.rejected_for(SESSION_UNKNOWN))
                    .sum();
                total >= 1
            }
        },
    )
    .await;
    let replicas = stack.replicas().await;
    let handshakes: Vec<u64> = replicas
        .iter()
        .map(|r| r.stats.requests_of(RequestKind::HandshakePolling))
        .collect();
    let refusing = replicas
        .iter()
        .filter(|r| r.stats.rejected_for(SESSION_UNKNOWN) > 0)
        .count();
    assert!(handshakes.iter().sum::<u64>() >= 1, "{handshakes:?}");
    assert!(refusing >= 1);
    assert!(
        replicas.iter().all(|r| r.stats.sockets.total == 0),
        "no Socket.IO session may form: {replicas:?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_websocket_only_session_works() {
    let stack = stack(3, Adapter::Memory).await;
    let options = ClientOptions {
        cookie: None,
        round_robin: true,
    };
    let mut user = ChatClient::connect(&stack.gateway_url(), TransportType::Websocket, options)
        .await
        .expect("websocket-only needs no stickiness");
    let ack = user.send("w1", "visitor", "over one TCP connection").await;
    assert!(acked_ok(&ack), "{ack:?}");
    let echo = user.chat_with_id("w1", Duration::from_secs(5)).await;
    assert_eq!(echo.expect("own broadcast")["from"], "visitor");

    let replicas = stack.replicas().await;
    let ws: u64 = replicas
        .iter()
        .map(|r| r.stats.requests_of(RequestKind::HandshakeWebsocket))
        .sum();
    assert_eq!(ws, 1);
    assert!(replicas.iter().all(|r| r.stats.rejected.is_empty()));
    user.client.disconnect().await.ok();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_upgrade_is_dropped_by_the_wrong_replica() {
    let stack = stack(3, Adapter::Memory).await;
    let options = ClientOptions {
        cookie: None,
        round_robin: true,
    };
    let connected = ChatClient::connect(
        &stack.gateway_url(),
        TransportType::WebsocketUpgrade,
        options,
    )
    .await;
    if let Ok(user) = &connected {
        let ack = user.send("u1", "agent", "upgraded?").await;
        assert!(!acked_ok(&ack), "a round-robin upgrade delivered: {ack:?}");
    }
    // Handshake on replica 1, upgrade on replica 2: answered 101, then dropped.
    wait_for(Duration::from_secs(5), "the upgrade refusal", || {
        let stack = &stack;
        async move {
            stack
                .replicas()
                .await
                .iter()
                .any(|r| r.stats.rejected_for(UPGRADE_UNKNOWN_SESSION) >= 1)
        }
    })
    .await;
    let replicas = stack.replicas().await;
    assert_eq!(
        replicas[0].stats.requests_of(RequestKind::HandshakePolling),
        1
    );
    assert_eq!(replicas[1].stats.requests_of(RequestKind::Upgrade), 1);
    assert_eq!(replicas[1].stats.rejected_for(UPGRADE_UNKNOWN_SESSION), 1);
    assert!(replicas.iter().all(|r| r.stats.sockets.total == 0));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_upgrade_works() {
    let stack = stack(3, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let (holder, cookie, _) = raw_handshake(&gateway, None).await;
    let mut user = ChatClient::connect(
        &gateway,
        TransportType::WebsocketUpgrade,
        ClientOptions {
            cookie,
            round_robin: false,
        },
    )
    .await
    .expect("sticky upgrade connects");
    let ack = user.send("s1", "agent", "upgraded").await;
    assert!(acked_ok(&ack), "{ack:?}");
    assert!(user
        .chat_with_id("s1", Duration::from_secs(5))
        .await
        .is_some());
    let s = stack.stats(&holder).await.unwrap();
    assert_eq!(s.requests_of(RequestKind::Upgrade), 1);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    user.client.disconnect().await.ok();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sticky_replica_moves_the_session_within_bounds() {
    let stack = stack(3, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let (holder, cookie, _) = raw_handshake(&gateway, None).await;
    let cookie = cookie.unwrap();
    let mut user = ChatClient::connect(
        &gateway,
        TransportType::Polling,
        ClientOptions {
            cookie: Some(cookie.clone()),
            round_robin: false,
        },
    )
    .await
    .unwrap();
    assert!(acked_ok(&user.send("k1", "agent", "before").await));

    let killed_at = Instant::now();
    stack.kill(&holder).await.unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(5), user.closed.recv()).await;
    assert!(lost.is_ok(), "the client notices the dead replica");

    // As a browser would: the old cookie still goes out, the balancer remaps it and sets
    // a new one, and the jar keeps the new one.
    let (new_holder, new_cookie, _) = raw_handshake(&gateway, Some(&cookie)).await;
    assert_ne!(new_holder, holder);
    let new_cookie = new_cookie.expect("remapped cookie is set");
    assert_ne!(new_cookie, cookie);
    let moved = ChatClient::connect(
        &gateway,
        TransportType::Polling,
        ClientOptions {
            cookie: Some(new_cookie),
            round_robin: false,
        },
    )
    .await
    .expect("session on another replica");
    let ack = moved.send("k2", "agent", "after").await;
    let elapsed = killed_at.elapsed();
    assert!(acked_ok(&ack), "{ack:?}");
    assert_eq!(ack.unwrap()["replica"], new_holder.as_str());
    assert!(
        elapsed < Duration::from_secs(3),
        "failover took {elapsed:?}"
    );
    moved.client.disconnect().await.ok();
    stack.shutdown().await;
}
