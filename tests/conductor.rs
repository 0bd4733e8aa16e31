//! The conductor end to end: one event stream out, one command channel in.

mod common;

use std::time::Duration;

use common::{embedded_conductor, wait_for, Collected};
use stickyscope::conductor::{Conductor, ConductorConfig};
use stickyscope::stack::GatewayConfig;
use stickyscope_vocab::events::{Command, Event, ReplicaAction};
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::topology::Topology;

fn last_topology(seen: &Collected) -> Option<Topology> {
    seen.events().into_iter().rev().find_map(|e| match e {
        Event::Topology(t) => Some(t),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_events_out_on_the_embedded_stack() {
    let (sink, seen) = Collected::sink();
    let conductor = embedded_conductor(TransportChoice::Polling, true, sink).await;
    let commands = conductor.commands();

    wait_for(
        Duration::from_secs(10),
        "topology and both sessions",
        || {
            let seen = seen.clone();
            async move {
                let topo = last_topology(&seen);
                topo.is_some_and(|t| {
                    t.replicas.len() == 3 && t.replicas.iter().all(|r| r.up && r.id.is_some())
                }) && seen.connected("agent")
                    && seen.connected("visitor")
            }
        },
    )
    .await;
    let topo = last_topology(&seen).unwrap();
    assert_eq!(topo.hops, ["balancer"]);
    assert_eq!(topo.sticky_cookie.as_deref(), Some("sticky_replica"));

    commands
        .try_send(Command::Send {
            user: "visitor".into(),
            text: "hello agent".into(),
        })
        .unwrap();
    wait_for(Duration::from_secs(10), "the agent receives it", || {
        let seen = seen.clone();
        async move {
            seen.received("agent")
                .iter()
                .any(|r| r.message.text == "hello agent")
        }
    })
    .await;

    let holder = seen.state("agent").unwrap().replica().unwrap().to_owned();
    commands
        .try_send(Command::Replica {
            id: holder.clone(),
            action: ReplicaAction::Kill,
        })
        .unwrap();
    wait_for(Duration::from_secs(10), "the replica DOWN and the agent elsewhere", || {
        let seen = seen.clone();
        let holder = holder.clone();
        async move {
            let down = last_topology(&seen).is_some_and(|t| {
                t.replicas.iter().any(|r| r.id.as_deref() == Some(holder.as_str()) && !r.up)
            });
            let moved = matches!(seen.state("agent"), Some(SessionState::Connected { ref replica, .. }) if replica.as_deref() != Some(holder.as_str()));
            down && moved
        }
    })
    .await;

    commands
        .try_send(Command::SetSticky {
            user: None,
            on: false,
        })
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "round-robin polling breaks both",
        || {
            let seen = seen.clone();
            async move {
                ["agent", "visitor"]
                    .iter()
                    .all(|u| matches!(seen.state(u), Some(SessionState::Reconnecting { .. })))
            }
        },
    )
    .await;
    commands
        .try_send(Command::SetTransport {
            user: None,
            transport: TransportChoice::Websocket,
        })
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "websocket needs no stickiness",
        || {
            let seen = seen.clone();
            async move { seen.connected("agent") && seen.connected("visitor") }
        },
    )
    .await;

    commands.try_send(Command::AddReplica).unwrap();
    wait_for(Duration::from_secs(10), "a fourth replica", || {
        let seen = seen.clone();
        async move { last_topology(&seen).is_some_and(|t| t.replicas.len() == 4) }
    })
    .await;
    conductor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_and_api_are_reported_not_fatal() {
    let (sink, seen) = Collected::sink();
    // Nothing listens on port 9 of loopback.
    let conductor = Conductor::start(
        ConductorConfig::new(GatewayConfig::external(
            "http://127.0.0.1:9",
            Some("http://127.0.0.1:9".into()),
        )),
        sink,
    )
    .await
    .unwrap();
    wait_for(Duration::from_secs(10), "both problems named", || {
        let seen = seen.clone();
        async move {
            let api = seen.events().iter().any(|e| matches!(e, Event::Notice(n) if n.text.starts_with("topology API unreachable")));
            let gateway = matches!(seen.state("agent"), Some(SessionState::Reconnecting { ref reason, .. }) if reason.contains("connection refused by the gateway"));
            api && gateway
        }
    })
    .await;
    conductor.commands().try_send(Command::AddReplica).unwrap();
    wait_for(Duration::from_secs(5), "controls explained", || {
        let seen = seen.clone();
        async move {
            seen.events()
                .iter()
                .any(|e| matches!(e, Event::Notice(n) if n.text.starts_with("replica controls work on the stacks stickyscope runs")))
        }
    })
    .await;
    conductor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_says_how_long_it_was_held_and_the_rest_is_a_round_trip() {
    use stickyscope_contract::RequestKind;
    use stickyscope_vocab::timing::Timing;

    let (sink, seen) = Collected::sink();
    let conductor = embedded_conductor(TransportChoice::Polling, true, sink).await;
    let held_polls = |seen: &Collected| {
        seen.wire()
            .into_iter()
            .filter(
                |w| matches!(w.timing(), Some(Timing::Held { held_us, .. }) if held_us >= 100_000),
            )
            .count()
    };
    wait_for(
        Duration::from_secs(10),
        "three long polls held until a ping",
        || {
            let seen = seen.clone();
            async move { held_polls(&seen) >= 3 }
        },
    )
    .await;
    conductor.shutdown().await;

    let records = seen.wire();
    for w in &records {
        match (w.request_kind(), w.timing()) {
            (
                Some(RequestKind::PollGet),
                Some(Timing::Held {
                    held_us,
                    round_trip_us,
                }),
            ) => {
                // The replica's own clock says how long it held the poll: it is most of it.
                let whole = w.latency_us.unwrap();
                assert_eq!(held_us + round_trip_us, whole, "{w:?}");
            }
            (Some(RequestKind::PollGet), Some(Timing::RoundTrip { .. })) => {
                assert!(
                    w.held_us.is_some_and(|h| h < 1_000),
                    "found a packet waiting: {w:?}"
                );
            }
            (Some(RequestKind::PollGet), other) if w.failure.is_none() => {
                panic!("our replicas say how long they held each poll: {other:?} in {w:?}")
            }
            (Some(_), Some(timing)) => {
                assert!(
                    matches!(timing, Timing::RoundTrip { .. }),
                    "only long polls are held: {w:?}"
                );
                assert_eq!(w.held_us, None, "only long polls carry a hold");
            }
            _ => {}
        }
    }
    let pings: Vec<u64> = records
        .iter()
        .filter_map(|w| match w.timing() {
            Some(Timing::Held { held_us, .. }) => Some(held_us),
            _ => None,
        })
        .collect();
    let longest = pings.iter().max().copied().unwrap_or(0);
    assert!(
        longest >= common::FAST_HEARTBEAT.interval.as_micros() as u64 / 2,
        "a poll waits for the next ping (every {:?} here): the longest hold was {longest} us",
        common::FAST_HEARTBEAT.interval
    );
}
