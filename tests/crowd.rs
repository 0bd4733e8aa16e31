//! Crowd mode: 200 background sessions in round-robin WebSocket mode spread over every
//! replica, reported as a summary rather than as a flood of wire records.

mod common;

use std::time::Duration;

use common::{embedded_conductor, wait_for, Collected};
use stickyscope_vocab::events::{Command, CrowdSummary, Event};

use stickyscope_vocab::events::TransportChoice;

fn last_crowd(seen: &Collected) -> Option<CrowdSummary> {
    seen.events().into_iter().rev().find_map(|e| match e {
        Event::Crowd(c) => Some(c),
        _ => None,
    })
}

/// An embedded conductor whose users (and so its crowd) use `transport` and `sticky`, asked for
/// a crowd of `size`.
async fn conductor_with_crowd(
    transport: TransportChoice,
    sticky: bool,
    size: usize,
) -> (stickyscope::conductor::Conductor, Collected) {
    let (sink, seen) = Collected::sink();
    let conductor = embedded_conductor(transport, sticky, sink).await;
    conductor
        .commands()
        .try_send(Command::SetCrowd { size })
        .unwrap();
    (conductor, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_200_spreads_over_every_replica_in_round_robin_websocket() {
    let (conductor, seen) = conductor_with_crowd(TransportChoice::Websocket, false, 200).await;
    wait_for(
        Duration::from_secs(90),
        "200 sessions connected on all three replicas",
        || {
            let seen = seen.clone();
            async move {
                last_crowd(&seen).is_some_and(|c| {
                    c.size == 200
                        && c.connecting == 0
                        && c.per_replica.len() == 3
                        && c.per_replica.values().all(|n| *n > 0)
                })
            }
        },
    )
    .await;
    let crowd = last_crowd(&seen).unwrap();
    assert_eq!(crowd.per_replica.values().sum::<usize>(), 200);
    // Round-robin over three replicas: no replica holds most of the crowd.
    assert!(
        crowd.per_replica.values().all(|n| *n < 120),
        "{:?}",
        crowd.per_replica
    );
    let crowd_records = seen
        .wire()
        .iter()
        .filter(|w| w.user.starts_with("crowd-"))
        .count();
    assert_eq!(
        crowd_records, 0,
        "crowd wire records stay out of the UI stream"
    );

    conductor
        .commands()
        .try_send(Command::SetCrowd { size: 0 })
        .unwrap();
    wait_for(Duration::from_secs(30), "the crowd gone", || {
        let seen = seen.clone();
        async move { last_crowd(&seen).is_some_and(|c| c.size == 0) }
    })
    .await;
    conductor.shutdown().await;
}

/// A crowd of 100 long-polling sessions, sticky: every session forms and stays on one
/// replica, and the replicas stay healthy. (Each Socket.IO client used to load the system's
/// root certificates at every connection attempt; 100 of them starved the replicas' health
/// checks until every replica was marked DOWN and no session could form.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_100_sticky_polling_sessions_forms_and_leaves_the_replicas_up() {
    let (conductor, seen) = conductor_with_crowd(TransportChoice::Polling, true, 100).await;
    wait_for(
        Duration::from_secs(60),
        "100 polling sessions connected",
        || {
            let seen = seen.clone();
            async move { last_crowd(&seen).is_some_and(|c| c.size == 100 && c.connecting == 0) }
        },
    )
    .await;
    let crowd = last_crowd(&seen).unwrap();
    assert_eq!(crowd.per_replica.values().sum::<usize>(), 100);
    let down: Vec<String> = seen
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Topology(t) => Some(t),
            _ => None,
        })
        .flat_map(|t| t.replicas)
        .filter(|r| !r.up)
        .map(|r| format!("{:?}", r.id))
        .collect();
    assert!(down.is_empty(), "replicas marked DOWN meanwhile: {down:?}");
    conductor.shutdown().await;
}

/// A crowd grows in steps, as a ramp does (100 sessions every half second), not all at
/// once: the summaries on the way show it part-grown, and it ends whole, every session up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_600_grows_in_steps_and_forms_whole() {
    let (conductor, seen) = conductor_with_crowd(TransportChoice::Websocket, true, 600).await;
    wait_for(Duration::from_secs(90), "600 sessions connected", || {
        let seen = seen.clone();
        async move { last_crowd(&seen).is_some_and(|c| c.size == 600 && c.connecting == 0) }
    })
    .await;
    let sizes: Vec<usize> = seen
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Crowd(c) => Some(c.size),
            _ => None,
        })
        .collect();
    let part_grown: Vec<usize> = sizes
        .iter()
        .copied()
        .filter(|s| (1..600).contains(s))
        .collect();
    assert!(part_grown.len() >= 2, "sizes on the way: {sizes:?}");
    assert!(
        part_grown.iter().all(|s| s % 100 == 0),
        "a step at a time: {sizes:?}"
    );
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "it only grows: {sizes:?}"
    );
    conductor.shutdown().await;
}
