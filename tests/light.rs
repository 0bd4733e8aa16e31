//! Light sessions (a probe's, a crowd's: stickyscope's own client calling taps without a
//! listener), hundreds at once: every session's replica and verdict, and every count per
//! replica, equal what the replicas themselves counted (`/stats`).

use std::collections::BTreeMap;
use std::time::Duration;

use stickyscope::probe::{run, Plan, Report, Verdict};
use stickyscope::stack::embedded::{EmbeddedConfig, EmbeddedStack};
use stickyscope::stack::ReplicaControl;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_contract::RequestKind;
use stickyscope_vocab::events::{ChatDialect, EngineIoChoice, TransportChoice};
use stickyscope_vocab::stack::Adapter;

const SESSIONS: usize = 300;

/// The replicas' own counts once they stop moving: (handshakes, refusals by reason, sockets
/// ever connected), per replica.
type Counted = BTreeMap<String, (u64, BTreeMap<String, u64>, u64)>;

async fn counted(stack: &EmbeddedStack) -> Counted {
    stack
        .replicas()
        .await
        .into_iter()
        .map(|r| {
            let handshakes = r.stats.requests_of(RequestKind::HandshakePolling)
                + r.stats.requests_of(RequestKind::HandshakeWebsocket);
            (
                r.id,
                (handshakes, r.stats.rejected.clone(), r.stats.sockets.total),
            )
        })
        .collect()
}

/// A probe of `gateway` with no chat: one session, 1 s, all at once (callers say more).
fn plan_for(gateway: String, transport: TransportChoice, sticky: bool) -> Plan {
    Plan {
        gateway,
        transport,
        sticky,
        duration: Duration::from_secs(1),
        sessions: 1,
        ramp: Duration::ZERO,
        naming: stickyscope::wire::fixed_naming(Default::default()),
        chat: ChatDialect::None,
        engineio: EngineIoChoice::Auto,
        access: Default::default(),
        har: None,
        capture: None,
    }
}

async fn probe(transport: TransportChoice, sticky: bool) -> (Report, Counted) {
    // A heartbeat for hundreds of sessions on a debug build sharing two cores with the
    // other tests (the suite's 200 ms one is for two).
    let stack = EmbeddedStack::start(EmbeddedConfig {
        replicas: 3,
        listen: "127.0.0.1:0".parse().expect("an address"),
        heartbeat: Heartbeat {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
        },
        adapter: Adapter::Memory,
        redis_url: None,
        health_interval: Duration::from_millis(500),
        ..Default::default()
    })
    .await
    .expect("embedded stack starts");
    let plan = Plan {
        duration: Duration::from_secs(6),
        sessions: SESSIONS,
        ramp: Duration::from_secs(2),
        ..plan_for(stack.gateway_url(), transport, sticky)
    };
    let report = run(&plan, |_| {}).await.expect("the probe runs");
    // The probe has shut its sessions down; wait until the replicas' counts stop moving.
    let settled_by = std::time::Instant::now() + Duration::from_secs(10);
    let mut last = counted(&stack).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = counted(&stack).await;
        if now == last {
            break;
        }
        assert!(
            std::time::Instant::now() < settled_by,
            "the replicas' counts never settled"
        );
        last = now;
    }
    stack.shutdown().await;
    (report, last)
}

/// The probe's table per replica: (handshakes, refusals by reason, sessions that connected
/// there first).
fn reported(report: &Report) -> Counted {
    let mut connected: BTreeMap<String, u64> = BTreeMap::new();
    for s in &report.sessions {
        if let Some(replica) = &s.replica {
            *connected.entry(replica.clone()).or_default() += 1;
        }
    }
    report
        .replicas
        .iter()
        .filter(|(name, _)| name.as_str() != stickyscope::probe::UNIDENTIFIED)
        .map(|(name, c)| {
            (
                name.clone(),
                (
                    c.handshakes,
                    c.rejected.clone(),
                    connected.get(name).copied().unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// The sessions that broke, and why.
fn broken(report: &Report) -> String {
    report
        .sessions
        .iter()
        .filter_map(|s| s.broke.as_ref().map(|b| format!("{}: {b:?}", s.name)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_sticky_polling_sessions_are_counted_as_the_replicas_count_them() {
    let (report, replicas) = probe(TransportChoice::Polling, true).await;
    assert_eq!(report.verdict, Verdict::Ok, "{}", broken(&report));
    assert_eq!(report.sessions.len(), SESSIONS);
    assert!(report.sessions.iter().all(|s| s.replica.is_some()));
    assert_eq!(reported(&report), replicas, "probe vs /stats");
    // Spread over all three by the balancer.
    assert!(replicas.values().all(|(handshakes, _, _)| *handshakes > 50));
    assert_eq!(report.records_dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_websocket_sessions_need_no_stickiness_and_are_counted_exactly() {
    let (report, replicas) = probe(TransportChoice::Websocket, false).await;
    assert_eq!(report.verdict, Verdict::Ok, "{}", broken(&report));
    assert_eq!(reported(&report), replicas, "probe vs /stats");
    let pongs: u64 = report.replicas.values().map(|c| c.pongs).sum();
    assert!(pongs >= SESSIONS as u64, "every session answered a ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_round_robin_upgrades_break_with_the_replicas_words() {
    let (report, replicas) = probe(TransportChoice::Upgrade, false).await;
    assert_eq!(report.verdict, Verdict::Broken);
    // Each handshake and refusal the probe counted on a replica is one the replica counted,
    // word for word. (Sessions reconnect after breaking, so the replicas' sockets ever
    // connected outnumber the first connections the report keeps.)
    let without_sockets = |counted: Counted| -> BTreeMap<String, (u64, BTreeMap<String, u64>)> {
        counted
            .into_iter()
            .map(|(name, (handshakes, reasons, _))| (name, (handshakes, reasons)))
            .collect()
    };
    // Each session lets its attempt under way end before it stops (breaking sessions retry
    // at spread-out times, so some are mid-attempt at the end): nothing is cut off, and the
    // counts are the replicas' exactly.
    assert_eq!(report.cut_off, None, "sessions cut off at the end");
    assert_eq!(
        without_sockets(reported(&report)),
        without_sockets(replicas.clone()),
        "probe vs /stats"
    );
    let refusals: u64 = replicas
        .values()
        .flat_map(|(_, reasons, _)| reasons.values())
        .sum();
    assert!(refusals > 0, "round robin must refuse somewhere");
    let broken = report.sessions.iter().filter(|s| s.broke.is_some()).count();
    assert!(broken > SESSIONS / 3, "{broken} of {SESSIONS} broke");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stopped_with_an_attempt_still_under_way_are_said_to_be_cut_off() {
    // A gateway that accepts and never answers: every handshake stays under way.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let gateway = format!("http://{}", silent.local_addr().expect("an address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let plan = Plan {
        sessions: 3,
        ..plan_for(gateway, TransportChoice::Polling, true)
    };
    let report = run(&plan, |_| {}).await.expect("the probe runs");
    assert_eq!(report.cut_off, Some(3));
    assert!(
        stickyscope::probe::table(&report)
            .contains("3 session(s) still had a request under way when the probe stopped them"),
        "{}",
        stickyscope::probe::table(&report)
    );
}
