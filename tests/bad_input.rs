//! Bad input gets a clear error, the replicas keep serving, and no other session suffers.

mod common;

use std::time::Duration;

use common::{acked_ok, raw_handshake, stack, ChatClient, ClientOptions};
use rust_socketio::{Payload, TransportType};
use serde_json::json;
use stickyscope::stack::ReplicaControl;
use stickyscope_vocab::stack::Adapter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chat_messages_get_error_acks_and_other_sessions_carry_on() {
    let stack = stack(1, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let mut bystander =
        ChatClient::connect(&gateway, TransportType::Websocket, ClientOptions::default())
            .await
            .unwrap();
    let sender = ChatClient::connect(&gateway, TransportType::Websocket, ClientOptions::default())
        .await
        .unwrap();

    let long = "x".repeat(5000);
    let cases = [
        (
            json!({"id": "b1", "from": "mallory", "text": "hi"}),
            "unknown sender \"mallory\"",
        ),
        (
            json!({"id": "b2", "from": "agent", "text": long}),
            "text is 5000 bytes; the limit is 4096",
        ),
        (json!({"from": "agent", "text": "hi"}), "missing id"),
        (
            json!({"id": "b4", "from": "agent", "text": 42}),
            "text must be a UTF-8 string, not binary data or another type",
        ),
        (
            json!({"id": "b5", "from": "agent", "text": ""}),
            "text is empty",
        ),
        (
            json!(["not", "an", "object"]),
            "chat payload must be an object",
        ),
    ];
    for (payload, expected) in cases {
        let ack = sender
            .send_raw(Payload::Text(vec![payload.clone()]), Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no ack for {payload}"));
        assert_eq!(ack["ok"], false, "{payload} → {ack}");
        let error = ack["error"].as_str().unwrap();
        assert!(error.starts_with(expected), "{payload} → {error:?}");
    }
    // Bytes where text belongs. rust_socketio 0.6 mislabels binary emits with an ack as
    // BINARY_ACK packets, so this one is spoken in raw Engine.IO polling.
    let ack = raw_binary_chat(&gateway).await;
    assert_eq!(ack["ok"], false, "{ack}");
    assert_eq!(
        ack["error"],
        "text must be a UTF-8 string, not binary data or another type"
    );

    assert!(acked_ok(&sender.send("good", "agent", "still fine").await));
    let got = bystander.chat_with_id("good", Duration::from_secs(5)).await;
    assert!(got.is_some(), "the bystander still receives");
    assert_eq!(
        bystander.next_chat(Duration::from_millis(100)).await,
        None,
        "no refused message was broadcast"
    );
    let stats = stack.stats("1").await.unwrap();
    assert_eq!((stats.chat.accepted, stats.chat.refused), (1, 7));
    stack.shutdown().await;
}

/// Sends `chat` with a binary attachment as `text` over raw polling; returns the ack.
async fn raw_binary_chat(gateway: &str) -> serde_json::Value {
    let http = reqwest::Client::new();
    let (_, _, sid) = raw_handshake(gateway, None).await;
    let url = format!("{gateway}/socket.io/?EIO=4&transport=polling&sid={sid}");
    let post = |body: Vec<u8>| http.post(&url).body(body).send();
    assert_eq!(post(b"40".to_vec()).await.unwrap().status(), 200);
    let mut event =
        br#"451-0["chat",{"id":"bin","from":"agent","text":{"_placeholder":true,"num":0}}]"#
            .to_vec();
    event.extend_from_slice(b"\x1eb//4A"); // record separator, then base64 of ff fe 00
    assert_eq!(post(event).await.unwrap().status(), 200);
    // Poll until the ack, answering the server's pings as a client does: on a loaded machine
    // the polls can take longer than the test stack's quick heartbeat allows a silent client.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let answer = http.get(&url).send().await.unwrap();
        assert_eq!(answer.status(), 200, "the session is still there");
        let body = answer.text().await.unwrap();
        for packet in body.split('\x1e') {
            if let Some(args) = packet.strip_prefix("430") {
                let args: serde_json::Value = serde_json::from_str(args).unwrap();
                return args[0].clone();
            }
            if packet == "2" {
                assert_eq!(post(b"3".to_vec()).await.unwrap().status(), 200);
            }
        }
    }
    panic!("no ack for the binary chat within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_cookies_are_ignored_and_replaced() {
    let stack = stack(2, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    for cookie in [
        "sticky_replica=not-hex-at-all",
        "sticky_replica=",
        "sticky_replica=ffffffffffffffff",
        ";;;==;sticky_replica",
        "sticky_replica=0123456789abcdef0123",
    ] {
        let (_, set_cookie, _) = raw_handshake(&gateway, Some(cookie)).await;
        let set_cookie = set_cookie.unwrap_or_else(|| panic!("no fresh cookie for {cookie:?}"));
        assert!(set_cookie.starts_with("sticky_replica="), "{set_cookie}");
    }
    // Bytes that are not UTF-8 in the Cookie header.
    let resp = reqwest::Client::new()
        .get(format!("{gateway}/socket.io/?EIO=4&transport=polling"))
        .header(
            "Cookie",
            reqwest::header::HeaderValue::from_bytes(b"sticky_replica=\xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("set-cookie"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_engine_io_requests_are_refused_with_reasons() {
    let stack = stack(1, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let http = reqwest::Client::new();
    let (_, cookie, sid) = raw_handshake(&gateway, None).await;
    let cookie = cookie.unwrap();

    let unknown = http
        .get(format!(
            "{gateway}/socket.io/?EIO=4&transport=polling&sid=nope"
        ))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(unknown.headers()["x-replica"], "1");
    assert!(unknown.text().await.unwrap().contains("Session ID unknown"));

    let transport = http
        .get(format!("{gateway}/socket.io/?EIO=4&transport=pigeon"))
        .send()
        .await
        .unwrap();
    assert_eq!(transport.status(), 400);

    let huge = http
        .post(format!(
            "{gateway}/socket.io/?EIO=4&transport=polling&sid={sid}"
        ))
        .header("Cookie", &cookie)
        .body(format!(
            "42[\"chat\",{{\"text\":\"{}\"}}]",
            "y".repeat(300_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    // Larger still, so the replica refuses long before the body is all sent: its 413
    // comes back through the balancer, not a broken pipe's 502.
    for _ in 0..3 {
        let (_, _, sid) = raw_handshake(&gateway, Some(&cookie)).await;
        let huger = http
            .post(format!(
                "{gateway}/socket.io/?EIO=4&transport=polling&sid={sid}"
            ))
            .header("Cookie", &cookie)
            .body(format!(
                "42[\"chat\",{{\"text\":\"{}\"}}]",
                "y".repeat(4_000_000)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(huger.status(), 413);
        assert_eq!(huger.headers()["x-replica"], "1", "the replica's own 413");
    }

    let (_, _, sid) = raw_handshake(&gateway, None).await;
    let bad_utf8 = http
        .post(format!(
            "{gateway}/socket.io/?EIO=4&transport=polling&sid={sid}"
        ))
        .body(vec![b'4', 0xff, 0xfe, 0xfd])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_utf8.status(), 400);

    let stats = stack.stats("1").await.unwrap();
    assert_eq!(
        stats.rejected_for("Session ID unknown"),
        1,
        "{:?}",
        stats.rejected
    );
    assert_eq!(
        stats.rejected_for("Transport unknown"),
        1,
        "{:?}",
        stats.rejected
    );
    assert_eq!(
        stats.rejected_for("HTTP 413 Payload Too Large"),
        4,
        "{:?}",
        stats.rejected
    );
    assert_eq!(
        stats.rejected_for("HTTP 400 Bad Request"),
        1,
        "{:?}",
        stats.rejected
    );

    // And the replica still serves a real session.
    let mut user =
        ChatClient::connect(&gateway, TransportType::Websocket, ClientOptions::default())
            .await
            .unwrap();
    assert!(acked_ok(&user.send("ok", "visitor", "fine").await));
    assert!(user
        .chat_with_id("ok", Duration::from_secs(5))
        .await
        .is_some());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_replica_up_is_traefiks_503_and_a_stopped_replica_is_routed_around() {
    let stack = stack(2, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let (holder, cookie, _) = raw_handshake(&gateway, None).await;
    let cookie = cookie.unwrap();

    stack.stop(&holder).await.unwrap();
    let (moved_to, new_cookie, _) = raw_handshake(&gateway, Some(&cookie)).await;
    assert_ne!(moved_to, holder);
    assert_ne!(new_cookie.unwrap(), cookie);

    stack.stop(&moved_to).await.unwrap();
    let resp = reqwest::Client::new()
        .get(format!("{gateway}/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body = resp.text().await.unwrap();
    assert_eq!(body, "no available server", "Traefik's words");

    stack.restart(&holder).await.unwrap();
    let (back_on, _, _) = raw_handshake(&gateway, Some(&cookie)).await;
    assert_eq!(
        back_on, holder,
        "same address, same cookie: back on the restarted replica"
    );
    stack.shutdown().await;
}

/// A client that trickles a request head (slow-loris) is cut off by the replica and by the
/// balancer once the header-read timeout passes, instead of holding a connection for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_off() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let bound = Duration::from_millis(300);
    let mut config = stickyscope_replica::ReplicaConfig::new("slow");
    config.header_read_timeout = bound;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let replica = stickyscope_replica::Replica::start(config, listener)
        .await
        .unwrap();
    let pool = Arc::new(stickyscope::balancer::pool::Pool::default());
    pool.upsert(replica.local_addr(), Some("slow".into()));
    let balancer_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let balancer = stickyscope::balancer::start(
        balancer_listener,
        pool,
        stickyscope::balancer::BalancerConfig {
            header_read_timeout: bound,
            ..Default::default()
        },
        None,
    )
    .unwrap();

    for (what, addr) in [
        ("replica", replica.local_addr()),
        ("balancer", balancer.local_addr()),
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(
            matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
            "the {what} kept a trickling client for 5 s"
        );
    }
    balancer.shutdown();
    replica.kill().await;
}
