//! Fidelity: what the taps recorded equals what the replicas counted, per replica and per
//! kind, and every failure reason the taps recorded is the one the replica gave.
//!
//! Each mode runs for `STICKYSCOPE_FIDELITY_SECS` seconds (default 30) with both users
//! chatting, then both sessions disconnect and the counts are compared once the wire is quiet.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{holds_within, stack, wait_for, Collected};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::ReplicaControl;
use stickyscope_contract::RequestKind;
use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::record::FailureKind;
use stickyscope_vocab::stack::Adapter;

type Counts = BTreeMap<(String, RequestKind), u64>;
type Reasons = BTreeMap<(String, String), u64>;

fn window() -> Duration {
    let secs = std::env::var("STICKYSCOPE_FIDELITY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

async fn replica_counts(stack: &stickyscope::stack::embedded::EmbeddedStack) -> (Counts, Reasons) {
    let mut counts = Counts::new();
    let mut reasons = Reasons::new();
    for r in stack.replicas().await {
        for (kind, n) in r.stats.requests {
            if n > 0 {
                counts.insert((r.id.clone(), kind), n);
            }
        }
        for (reason, n) in r.stats.rejected {
            reasons.insert((r.id.clone(), reason), n);
        }
    }
    (counts, reasons)
}

fn tap_counts(seen: &Collected) -> (Counts, Reasons) {
    let mut counts = Counts::new();
    let mut reasons = Reasons::new();
    for ev in seen.wire() {
        let Some(replica) = ev.replica.clone() else {
            continue;
        };
        if let Some(kind) = ev.request_kind() {
            *counts.entry((replica.clone(), kind)).or_default() += 1;
        }
        if let Some(f) = &ev.failure {
            if matches!(f.kind, FailureKind::Refused | FailureKind::UpgradeDropped) {
                *reasons.entry((replica, f.reason.clone())).or_default() += 1;
            }
        }
    }
    (counts, reasons)
}

async fn run_mode(transport: TransportChoice, sticky: bool) -> (Counts, Reasons, Collected) {
    let stack = stack(3, Adapter::Memory).await;
    let (sink, seen) = Collected::sink();
    let mut sessions = Vec::new();
    for user in ["agent", "visitor"] {
        let mut config = SessionConfig::new(user, &stack.gateway_url());
        config.transport = transport;
        config.sticky = sticky;
        sessions.push(ChatSession::start(config, sink.clone()).await.unwrap());
    }
    let end = Instant::now() + window();
    let mut n = 0;
    while Instant::now() < end {
        n += 1;
        sessions[n % 2].send(format!("message {n}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for s in &sessions {
        s.disconnect();
    }
    // Quiet: no exchange under way at either tap, and the replicas' counts stopped moving.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = replica_counts(&stack).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = replica_counts(&stack).await;
        let idle = sessions.iter().all(|s| s.tap().in_flight() == 0);
        if idle && now == last {
            break;
        }
        assert!(Instant::now() < deadline, "the wire never went quiet");
        last = now;
    }
    // The event stream is asynchronous: wait until the collector has every record the
    // taps numbered (each tap numbers its records 1, 2, …).
    wait_for(Duration::from_secs(5), "every record collected", || {
        let seen = seen.clone();
        async move {
            ["agent", "visitor"].iter().all(|user| {
                let seqs: Vec<u64> = seen
                    .wire()
                    .iter()
                    .filter(|w| &w.user == user)
                    .map(|w| w.seq)
                    .collect();
                seqs.iter().max().copied().unwrap_or(0) == seqs.len() as u64
            })
        }
    })
    .await;

    // A listening tap hands its records on after the answers (its recorder runs off the
    // relay's path, and numbers them as it does): some may still be on their way. The
    // replicas' counts have stopped moving; wait, with a bound, for the taps' to agree, and
    // show what still differs after it.
    let replicas = replica_counts(&stack).await;
    holds_within(Duration::from_secs(10), || {
        let agree = tap_counts(&seen) == replicas;
        async move { agree }
    })
    .await;
    let ((replica_side, replica_reasons), (tap_side, tap_reasons)) = (replicas, tap_counts(&seen));
    assert_eq!(
        tap_side, replica_side,
        "per replica and kind: taps vs /stats"
    );
    assert_eq!(
        tap_reasons, replica_reasons,
        "failure reasons: taps vs /stats"
    );
    for s in sessions {
        s.shutdown().await;
    }
    stack.shutdown().await;
    (tap_side, tap_reasons, seen)
}

/// How often each user's session formed.
fn sessions_formed(seen: &Collected, user: &str) -> usize {
    seen.events()
        .iter()
        .filter(|e| matches!(e, stickyscope_vocab::events::Event::Session { user: u, state: stickyscope_vocab::events::SessionState::Connected { .. } } if u == user))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_polling_counts_match_the_replicas() {
    let (counts, _, seen) = run_mode(TransportChoice::Polling, true).await;
    // Refusals may follow the final disconnect (a poll racing the close); before it, each
    // session formed once and never broke.
    for user in ["agent", "visitor"] {
        assert_eq!(sessions_formed(&seen, user), 1, "{user}");
    }
    let gets: u64 = counts
        .iter()
        .filter(|((_, k), _)| *k == RequestKind::PollGet)
        .map(|(_, n)| n)
        .sum();
    assert!(gets > 10, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_polling_counts_and_reasons_match_the_replicas() {
    let (_, reasons, seen) = run_mode(TransportChoice::Polling, false).await;
    assert_eq!(sessions_formed(&seen, "agent"), 0);
    assert!(
        reasons
            .keys()
            .any(|(_, reason)| reason == "Session ID unknown"),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_counts_match_the_replicas() {
    let (counts, reasons, seen) = run_mode(TransportChoice::Websocket, false).await;
    assert!(reasons.is_empty(), "{reasons:?}");
    assert_eq!(sessions_formed(&seen, "visitor"), 1);
    assert!(
        counts
            .keys()
            .all(|(_, k)| *k == RequestKind::HandshakeWebsocket),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_upgrade_reasons_match_the_replicas() {
    let (_, reasons, _) = run_mode(TransportChoice::Upgrade, false).await;
    assert!(
        !reasons.is_empty(),
        "round-robin upgrades must fail somewhere"
    );
}
