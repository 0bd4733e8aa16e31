//! A browser's HAR, made by a real browser: Debian's Chromium, headless, driven by
//! Playwright over the local chain (real nginx → Traefik → replica processes), loads the
//! official socket.io client in a page of the gateway's origin and opens a sticky socket
//! and a round-robin one (`tests/js/record_har.js`); Playwright records the HAR, frames
//! included. `stickyscope inspect` reads it back, and what it says — requests per replica
//! and kind, refusals per replica and reason, sessions connected and broken — is compared
//! with the replicas' own `/stats`. `stickyscope open` shows the same HAR in the window.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{chain, stats_at};
use serde_json::Value;
use stickyscope::stack::ReplicaControl;
use stickyscope_vocab::events::Event;

/// `node_modules` with socket.io-client and playwright-core (`scripts/test.sh` installs both).
fn playwright_modules() -> String {
    let modules = common::node_modules();
    assert!(
        Path::new(&modules).join("playwright-core").is_dir(),
        "{modules}/playwright-core is missing: run scripts/test.sh, which installs it"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/test.sh, which installs Debian's chromium"
    );
    modules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromium_har_over_the_chain_reads_as_the_replicas_counted_it() {
    let modules = playwright_modules();
    let chain = chain(3).await;
    let har = std::env::temp_dir().join(format!("stickyscope-chromium-{}.har", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/record_har.js");
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new("node")
            .arg(script)
            .arg(chain.gateway_url())
            .arg(&har)
            .env("NODE_PATH", &modules)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser finishes")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let page: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(page["sticky"], "connected", "{page}");
    assert_eq!(page["stickyTransport"], "websocket", "{page}");
    assert_eq!(page["offBroke"].as_array().map(Vec::len), Some(3), "{page}");

    // What the replicas counted.
    let mut stats = BTreeMap::new();
    for replica in chain.replicas().await {
        stats.insert(replica.id.clone(), stats_at(&replica.url).await);
    }

    // What inspect reads from the browser's HAR.
    let inspect = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["inspect", "--json"])
        .arg(&har)
        .output()
        .expect("inspect runs");
    let report: Value = serde_json::from_slice(&inspect.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&inspect.stderr));
    });
    assert_eq!(
        inspect.status.code(),
        Some(1),
        "a session broke: {report:#}"
    );
    assert_eq!(report["verdict"], "broken");
    assert!(report["from_har"].as_str().is_some(), "{report:#}");
    assert_eq!(
        report["sticky"],
        Value::Null,
        "a HAR does not say: {report:#}"
    );
    // Handshakes are always answered: each replica counted exactly the ones the HAR names it
    // for.
    for (id, counted) in &stats {
        assert_eq!(
            report["replicas"][id]["handshakes"].as_u64().unwrap_or(0),
            counted.requests_of(stickyscope_contract::RequestKind::HandshakePolling)
                + counted.requests_of(stickyscope_contract::RequestKind::HandshakeWebsocket),
            "replica {id}: {report:#}\n{counted:?}"
        );
    }
    let refusals: u64 = stats
        .values()
        .map(|s| s.rejected.get("Session ID unknown").copied().unwrap_or(0))
        .sum();
    assert!(
        refusals >= 1,
        "the round-robin socket was refused: {stats:?}"
    );

    // Every answered request of the HAR was counted by the replica it names, for its kind;
    // the replicas counted no more than that and the requests the page gave up on (a page
    // closing a socket aborts what is under way: the HAR has no answer, so no replica, for
    // those).
    let read = stickyscope::har::read(&har, &Default::default()).expect("the HAR reads");
    let mut named: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut refused: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut unanswered = 0u64;
    for (_, event) in &read.lines {
        let Event::Wire(wire) = event else { continue };
        let Some(kind) = wire.request_kind() else {
            continue;
        };
        match &wire.replica {
            Some(replica) => {
                *named
                    .entry((replica.clone(), kind.as_str().to_owned()))
                    .or_default() += 1;
                if let Some(failure) = &wire.failure {
                    *refused
                        .entry((replica.clone(), failure.reason.clone()))
                        .or_default() += 1;
                }
            }
            None => {
                assert_eq!(
                    wire.note.as_deref(),
                    Some(stickyscope::har::NO_ANSWER),
                    "{wire:?}"
                );
                unanswered += 1;
            }
        }
    }
    let counted_requests: BTreeMap<(String, String), u64> = stats
        .iter()
        .flat_map(|(id, s)| {
            s.requests
                .iter()
                .map(move |(kind, n)| ((id.clone(), kind.as_str().to_owned()), *n))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let counted_refusals: BTreeMap<(String, String), u64> = stats
        .iter()
        .flat_map(|(id, s)| {
            s.rejected
                .iter()
                .map(move |(why, n)| ((id.clone(), why.clone()), *n))
        })
        .collect();
    for (what, n) in &named {
        assert!(
            counted_requests.get(what).copied().unwrap_or(0) >= *n,
            "{what:?}: the HAR names {n}; /stats {counted_requests:?}"
        );
    }
    for ((replica, why), n) in &refused {
        // A refusal whose body the HAR did not keep is the replica's all the same, in
        // words the HAR cannot give.
        let counted = if why.ends_with(stickyscope::har::BODY_NOT_KEPT) {
            counted_refusals
                .iter()
                .filter(|((r, _), _)| r == replica)
                .map(|(_, n)| n)
                .sum()
        } else {
            counted_refusals
                .get(&(replica.clone(), why.clone()))
                .copied()
                .unwrap_or(0)
        };
        assert!(
            counted >= *n,
            "{replica} {why:?}: the HAR names {n}; /stats {counted_refusals:?}"
        );
    }
    let more_requests = counted_requests.values().sum::<u64>() - named.values().sum::<u64>();
    let more_refusals = counted_refusals.values().sum::<u64>() - refused.values().sum::<u64>();
    assert!(
        more_requests <= unanswered && more_refusals <= unanswered,
        "/stats counted {more_requests} request(s) and {more_refusals} refusal(s) more than the HAR names, with {unanswered} unanswered"
    );
    // The sticky session's frames are in the HAR (Playwright embeds them).
    let frames = read
        .lines
        .iter()
        .filter(|(_, e)| {
            matches!(e, Event::Wire(w) if matches!(w.kind, stickyscope_vocab::record::WireKind::Ws { .. }))
        })
        .count();
    assert!(frames >= 3, "probe, its answer and the upgrade: {frames}");
    // One session stayed up (and moved to WebSocket), the round-robin ones broke.
    let sessions = report["sessions"].as_array().unwrap();
    assert!(sessions.iter().any(|s| s["broke"].is_null()), "{report:#}");
    assert!(
        sessions.iter().filter(|s| !s["broke"].is_null()).all(|s| {
            let why = s["broke"]["reason"].as_str().unwrap_or_default();
            why == "Session ID unknown" || why.ends_with(stickyscope::har::BODY_NOT_KEPT)
        }),
        "{report:#}"
    );

    // The window shows it: a recording whose sessions are the HAR's.
    let opened = stickyscope::recorded::open_any(&har, &Default::default()).expect("it opens");
    assert_eq!(opened.users, read.sessions);
    assert!(opened.timeline.failures().next().is_some());
    chain.shutdown().await;
    let _ = std::fs::remove_file(&har);
}
