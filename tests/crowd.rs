//! Crowd mode: 200 background sessions in round-robin WebSocket mode spread over every
//! replica, reported as a summary rather than as a flood of wire records.

mod common;

use std::time::Duration;

use common::{embedded_engine, wait_for, Collected};
use stickyscope::engine::event::{Command, CrowdSummary, Event};

use stickyscope::session::TransportChoice;

fn last_crowd(seen: &Collected) -> Option<CrowdSummary> {
    seen.events().into_iter().rev().find_map(|e| match e {
        Event::Crowd(c) => Some(c),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_200_spreads_over_every_replica_in_round_robin_websocket() {
    let (sink, seen) = Collected::sink();
    let engine = embedded_engine(TransportChoice::Websocket, false, sink).await;
    engine
        .commands()
        .send(Command::SetCrowd { size: 200 })
        .unwrap();
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

    engine
        .commands()
        .send(Command::SetCrowd { size: 0 })
        .unwrap();
    wait_for(Duration::from_secs(30), "the crowd gone", || {
        let seen = seen.clone();
        async move { last_crowd(&seen).is_some_and(|c| c.size == 0) }
    })
    .await;
    engine.shutdown().await;
}
