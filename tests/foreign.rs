//! Stacks nobody here wrote: three official socket.io v4 servers from npm (the seed's chat,
//! no X-Replica), behind the built-in balancer's routing rules and behind the real chain
//! (nginx → Traefik 3.7.15). stickyscope tells the truth about them: sessions connect by the
//! protocol alone, each request's replica is named by the sticky cookie (with the server
//! list from Traefik's API or given by hand) or by a header the servers set, and failures
//! carry the servers' own reasons.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{builtin_balancer_over, wait_for, Collected, NodeServer};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::chain::{Chain, ChainConfig, ReplicaProgram};
use stickyscope::stack::IdentifyConfig;
use stickyscope::stack::ReplicaControl;
use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::naming::{CookieScheme, Source};

async fn servers(header: bool) -> Vec<NodeServer> {
    servers_of(4, header).await
}

async fn servers_of(version: u8, header: bool) -> Vec<NodeServer> {
    let mut all = Vec::new();
    for name in ["web-a", "web-b", "web-c"] {
        all.push(NodeServer::start(version, name, header).await);
    }
    all
}

async fn session(
    gateway: &str,
    transport: TransportChoice,
    sticky: bool,
    identify: &IdentifyConfig,
    sink: &stickyscope::event_sink::EventSink,
) -> ChatSession {
    let mut config = SessionConfig::new("agent", gateway);
    config.transport = transport;
    config.sticky = sticky;
    config.naming = identify.naming();
    ChatSession::start(config, sink.clone()).await.unwrap()
}

/// Sticky polling stays up, every record names one server by the cookie; round-robin
/// polling breaks with the servers' own `Session ID unknown`; WebSocket needs no
/// stickiness (and, with no cookie, nothing names its server: it says so).
async fn the_truth_through(gateway: &str, servers: &[NodeServer]) {
    let identify = IdentifyConfig {
        servers: servers.iter().map(|s| s.url.clone()).collect(),
        ..IdentifyConfig::default()
    };
    let labels: BTreeSet<String> = servers.iter().map(NodeServer::label).collect();

    let (sink, seen) = Collected::sink();
    let sticky = session(gateway, TransportChoice::Polling, true, &identify, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "connected to a plain socket.io server",
        || {
            let seen = seen.clone();
            async move { seen.connected("agent") }
        },
    )
    .await;
    let on = seen.state("agent").unwrap().replica().map(str::to_owned);
    let on = on.expect("the sticky cookie names the server");
    assert!(labels.contains(&on), "{on} is one of {labels:?}");
    // Two heartbeats later (every 3 s: v4 servers ping and the client answers, v3 clients
    // ping and the server answers), still there.
    let pongs = |seen: &Collected| {
        seen.wire()
            .iter()
            .filter(|w| {
                w.packets().any(|p| {
                    matches!(
                        p,
                        stickyscope_vocab::protocol::EnginePacket::Pong { probe: false }
                    )
                })
            })
            .count()
    };
    wait_for(Duration::from_secs(15), "two heartbeats answered", || {
        let seen = seen.clone();
        async move { pongs(&seen) >= 2 }
    })
    .await;
    assert!(seen.connected("agent"), "{:?}", seen.state("agent"));
    let wire = seen.wire();
    assert!(wire.iter().all(|w| w.failure.is_none()), "never refused");
    let named: BTreeSet<_> = wire.iter().filter_map(|w| w.replica.clone()).collect();
    assert_eq!(named, [on.clone()].into(), "every record on one server");
    assert!(
        wire.iter().all(|w| w.replica_source
            == Some(Source::Cookie {
                scheme: CookieScheme::TraefikSha256
            })),
        "named by the cookie"
    );
    sticky.shutdown().await;

    let (sink, seen) = Collected::sink();
    let stray = session(gateway, TransportChoice::Polling, false, &identify, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "the servers' own Session ID unknown",
        || {
            let seen = seen.clone();
            async move { seen.reconnect_reason("agent").as_deref() == Some("Session ID unknown") }
        },
    )
    .await;
    stray.shutdown().await;

    let (sink, seen) = Collected::sink();
    let ws = session(gateway, TransportChoice::Websocket, false, &identify, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "connected over WebSocket without stickiness",
        || {
            let seen = seen.clone();
            async move {
                seen.on_websocket("agent")
                    && seen.state("agent").is_some_and(|s| s.replica().is_none())
            }
        },
    )
    .await;
    ws.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_socketio_v4_servers_behind_the_built_in_balancer() {
    let servers = servers(false).await;
    let balancer = builtin_balancer_over(&servers);
    the_truth_through(&format!("http://{}", balancer.local_addr()), &servers).await;
    balancer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_socketio_v4_servers_behind_the_real_chain() {
    the_truth_through_the_real_chain(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_2_servers_behind_the_real_chain() {
    the_truth_through_the_real_chain(2).await;
}

/// nginx → Traefik 3.7.15 in front of three servers of one Socket.IO major: the sessions'
/// truths, then the window's conductor learning servers and cookie from Traefik's API.
async fn the_truth_through_the_real_chain(version: u8) {
    let servers = servers_of(version, false).await;
    let mut config = ChainConfig::new(ReplicaProgram {
        program: env!("CARGO_BIN_EXE_stickyscope").into(),
        args: vec![],
    })
    .unwrap();
    config.servers = Some(servers.iter().map(|s| s.url.clone()).collect());
    let chain = Chain::start(config).await.unwrap();
    the_truth_through(&chain.gateway_url(), &servers).await;

    // The window's conductor learns the servers and the cookie from Traefik's API itself.
    use stickyscope::conductor::{Conductor, ConductorConfig};
    use stickyscope::stack::GatewayConfig;
    let (sink, seen) = Collected::sink();
    let conductor = Conductor::start(
        ConductorConfig::new(GatewayConfig::external(
            chain.gateway_url(),
            Some(chain.api_url_with_credential()),
        )),
        sink,
    )
    .await
    .unwrap();
    let labels: BTreeSet<String> = servers.iter().map(NodeServer::label).collect();
    wait_for(
        Duration::from_secs(20),
        "both users on named servers",
        || {
            let seen = seen.clone();
            let labels = labels.clone();
            async move {
                ["agent", "visitor"].iter().all(|u| {
                    seen.state(u)
                        .and_then(|s| s.replica().map(str::to_owned))
                        .is_some_and(|r| labels.contains(&r))
                })
            }
        },
    )
    .await;
    conductor.shutdown().await;

    // The probe, told only Traefik's API, names every server by the cookie, quietly.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["probe", "--duration", "7s", "--sessions", "2", "--json"])
        .args(["--gateway", &chain.gateway_url()])
        .args(["--traefik-api", &chain.api_url_with_credential()])
        .output()
        .await
        .expect("the probe runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(json["verdict"], "ok", "socket.io {version}: {json:#}");
    assert!(out.stderr.is_empty(), "quiet without -v");
    let replicas = json["replicas"].as_object().cloned().unwrap_or_default();
    assert!(
        !replicas.is_empty() && !replicas.contains_key("?"),
        "{json:#}"
    );
    for (label, counts) in &replicas {
        assert!(labels.contains(label), "{label} is one of {labels:?}");
        assert_eq!(counts["identified_by"], "sticky cookie (Traefik ≥ 3.3.4)");
        assert!(counts["pongs"].as_u64().unwrap_or(0) >= 1, "{json:#}");
    }
    let expected = if version == 2 { 3 } else { 4 };
    for session in json["sessions"].as_array().cloned().unwrap_or_default() {
        assert_eq!(session["engineio"], expected, "{session}");
    }
    chain.shutdown().await;
}

/// Servers (socket.io 4 and 2) that name themselves in a header of their own:
/// `--replica-header X-Backend`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_the_servers_set_names_them() {
    for version in [4, 2] {
        a_header_names_servers_of(version).await;
    }
}

async fn a_header_names_servers_of(version: u8) {
    let servers = servers_of(version, true).await;
    let balancer = builtin_balancer_over(&servers);
    let identify = IdentifyConfig {
        header: Some("X-Backend".into()),
        ..IdentifyConfig::default()
    };
    let (sink, seen) = Collected::sink();
    let agent = session(
        &format!("http://{}", balancer.local_addr()),
        TransportChoice::Polling,
        true,
        &identify,
        &sink,
    )
    .await;
    wait_for(
        Duration::from_secs(15),
        "connected, named by X-Backend",
        || {
            let seen = seen.clone();
            async move {
                seen.state("agent")
                    .and_then(|s| s.replica().map(str::to_owned))
                    .is_some_and(|r| r.starts_with("web-"))
            }
        },
    )
    .await;
    assert!(
        seen.wire().iter().all(|w| w.replica_source
            == Some(Source::Header {
                name: "X-Backend".into()
            })),
        "socket.io {version}: every record named by X-Backend"
    );
    agent.shutdown().await;
    balancer.shutdown();
}

/// The seed's chat (`--chat seed`) with the seed's own events on a plain socket.io server:
/// the agent's `chat_message` reaches the visitor as `message_from_kaushik`, the visitor's
/// `chat_user` the agent as `message_from_user`; each sender sees its echo, which is all that
/// chat lets anyone know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_chat_between_agent_and_visitor() {
    use stickyscope_vocab::events::{ChatDialect, OutboxStatus};
    let servers = vec![NodeServer::start(4, "web-a", false).await];
    let balancer = builtin_balancer_over(&servers);
    let gateway = format!("http://{}", balancer.local_addr());
    let (sink, seen) = Collected::sink();
    let mut users = Vec::new();
    for user in ["agent", "visitor"] {
        let mut config = SessionConfig::new(user, &gateway);
        config.chat = ChatDialect::Seed;
        config.naming = IdentifyConfig {
            servers: vec![servers[0].url.clone()],
            ..IdentifyConfig::default()
        }
        .naming();
        users.push(ChatSession::start(config, sink.clone()).await.unwrap());
    }
    wait_for(Duration::from_secs(15), "both connected", || {
        let seen = seen.clone();
        async move { seen.connected("agent") && seen.connected("visitor") }
    })
    .await;
    let sent = users[0].send("hello visitor").await.unwrap();
    users[1].send("hello agent").await.unwrap();
    wait_for(Duration::from_secs(10), "each receives the other's", || {
        let seen = seen.clone();
        async move { !seen.received("visitor").is_empty() && !seen.received("agent").is_empty() }
    })
    .await;
    let to_visitor = &seen.received("visitor")[0];
    assert_eq!(
        (
            to_visitor.message.from.as_str(),
            to_visitor.message.text.as_str()
        ),
        ("agent", "hello visitor")
    );
    assert_eq!(
        to_visitor.accepted_by, None,
        "the seed's chat says nothing of it"
    );
    assert_eq!(
        to_visitor.delivered_by.as_deref(),
        Some(servers[0].label().as_str())
    );
    assert_eq!(seen.received("agent")[0].message.text, "hello agent");
    wait_for(Duration::from_secs(10), "the agent sees its echo", || {
        let seen = seen.clone();
        let sent = sent.clone();
        async move {
            seen.outbox()
                .get(&sent)
                .and_then(|h| h.last().cloned())
                .is_some_and(|s| matches!(s, OutboxStatus::Echoed { replica: Some(_) }))
        }
    })
    .await;
    assert_eq!(
        seen.received("agent").len(),
        1,
        "its own echo is not a received message"
    );
    for user in users {
        user.shutdown().await;
    }
    balancer.shutdown();
}

/// socket.io 2 servers (Engine.IO v3, the seed's own server): detected at the handshake and
/// spoken to in v3, with the same truths as v4 servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_2_servers_behind_the_built_in_balancer_are_spoken_to_in_v3() {
    let servers = servers_of(2, false).await;
    let balancer = builtin_balancer_over(&servers);
    the_truth_through(&format!("http://{}", balancer.local_addr()), &servers).await;
    balancer.shutdown();
}

/// The seed's two users chat through the seed's original server (socket.io 2) with the
/// seed's chat, over polling, WebSocket and the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_users_chat_through_the_seeds_server_over_every_transport() {
    use stickyscope_vocab::events::ChatDialect;
    let server = NodeServer::start(2, "seed", false).await;
    for transport in [
        TransportChoice::Polling,
        TransportChoice::Websocket,
        TransportChoice::Upgrade,
    ] {
        let (sink, seen) = Collected::sink();
        let mut users = Vec::new();
        for user in ["agent", "visitor"] {
            let mut config = SessionConfig::new(user, &server.url);
            config.chat = ChatDialect::Seed;
            config.transport = transport;
            users.push(ChatSession::start(config, sink.clone()).await.unwrap());
        }
        wait_for(Duration::from_secs(15), "both connected in v3", || {
            let seen = seen.clone();
            async move { seen.connected("agent") && seen.connected("visitor") }
        })
        .await;
        if transport == TransportChoice::Upgrade {
            wait_for(
                Duration::from_secs(10),
                "both upgraded to WebSocket",
                || {
                    let seen = seen.clone();
                    async move { seen.on_websocket("agent") && seen.on_websocket("visitor") }
                },
            )
            .await;
        }
        users[0].send("hello visitor").await.unwrap();
        users[1].send("hello agent").await.unwrap();
        wait_for(Duration::from_secs(10), "each receives the other's", || {
            let seen = seen.clone();
            async move {
                seen.received("visitor")
                    .iter()
                    .any(|r| r.message.text == "hello visitor")
                    && seen
                        .received("agent")
                        .iter()
                        .any(|r| r.message.text == "hello agent")
            }
        })
        .await;
        for (user, text) in [("visitor", "hello visitor"), ("agent", "hello agent")] {
            let times = seen
                .received(user)
                .iter()
                .filter(|r| r.message.text == text)
                .count();
            assert_eq!(times, 1, "{transport:?}: {user} shows {text:?} once");
        }
        assert!(
            seen.wire().iter().all(|w| w.failure.is_none()),
            "{transport:?}: nothing refused"
        );
        for user in users {
            user.shutdown().await;
        }
    }
}

/// A server that never acks `chat` (the seed's, spoken to in stickyscope's own chat): the
/// first try asks for an ack, the tries after it do not — rust_socketio 0.6 panics when an
/// ack answers an id two unanswered ones share, so a client holds one unanswered ack at a
/// time — and the message is given up, saying no replica acknowledged it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unanswered_ack_at_a_time_on_a_server_that_never_acks() {
    use stickyscope_vocab::events::OutboxStatus;
    use stickyscope_vocab::protocol::{EnginePacket, SocketKind};
    let servers = vec![NodeServer::start(4, "web-a", false).await];
    let balancer = builtin_balancer_over(&servers);
    let gateway = format!("http://{}", balancer.local_addr());
    let (sink, seen) = Collected::sink();
    let mut config = SessionConfig::new("agent", &gateway);
    config.ack_timeout = Duration::from_millis(300);
    config.delivery_tries = 4;
    let agent = ChatSession::start(config, sink.clone()).await.unwrap();
    wait_for(Duration::from_secs(15), "connected", || {
        let seen = seen.clone();
        async move { seen.connected("agent") }
    })
    .await;
    let sent = agent.send("anyone there?").await.unwrap();
    wait_for(Duration::from_secs(15), "given up", || {
        let seen = seen.clone();
        let sent = sent.clone();
        async move {
            seen.outbox()
                .get(&sent)
                .and_then(|h| h.last().cloned())
                .is_some_and(|s| matches!(s, OutboxStatus::NotDelivered { .. }))
        }
    })
    .await;
    let chat_ack_ids = |seen: &Collected| -> Vec<Option<u64>> {
        seen.wire()
            .iter()
            .flat_map(|w| w.packets_up.clone())
            .filter_map(|p| match p {
                EnginePacket::Message { socket: Some(s) }
                    if s.kind == SocketKind::Event && s.event.as_deref() == Some("chat") =>
                {
                    Some(s.ack_id)
                }
                _ => None,
            })
            .collect()
    };
    // The give-up follows the last try's timeout, not its record: the tap hands that on after
    // the answer, off the relay's path, so it may still be on its way.
    wait_for(Duration::from_secs(5), "the fourth try recorded", || {
        let seen = seen.clone();
        async move { chat_ack_ids(&seen).len() >= 4 }
    })
    .await;
    let chat_ack_ids = chat_ack_ids(&seen);
    assert_eq!(chat_ack_ids.len(), 4, "{chat_ack_ids:?}");
    assert!(chat_ack_ids[0].is_some(), "{chat_ack_ids:?}");
    assert!(
        chat_ack_ids[1..].iter().all(Option::is_none),
        "{chat_ack_ids:?}"
    );
    let Some(OutboxStatus::NotDelivered { reason }) =
        seen.outbox().get(&sent).and_then(|h| h.last().cloned())
    else {
        panic!("given up")
    };
    assert!(reason.contains("no replica acknowledged it"), "{reason}");
    agent.shutdown().await;
    balancer.shutdown();
}
