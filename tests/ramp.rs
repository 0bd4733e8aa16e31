//! `probe --ramp` and rate limits, through the real chain with nginx's limit on new
//! sessions made tight (20 a second, a burst of 5): sixty sessions opened at once are
//! refused with `429`, and the probe names the rate limit and the rate that tripped it,
//! never a stickiness failure; the same sixty over a ramp at 10 a second all hold; a ramp
//! as long as the probe is refused before anything starts. The window's crowd, on the same
//! kind of limit (50 a second), names it (its refusals, the rate that tripped it), grows
//! slower, and forms whole.

mod common;

use stickyscope::stack::ReplicaControl;

/// The chain's config with nginx's limit on new sessions made tight: `per_s` a second, a
/// burst of 5.
fn tight_chain_config(per_s: u32) -> stickyscope::stack::chain::ChainConfig {
    let mut config = common::chain_config(3);
    let nginx = changed(
        &config.nginx_conf,
        "zone=new_sessions:10m rate=100r/s",
        &format!("zone=new_sessions:10m rate={per_s}r/s"),
    );
    config.nginx_conf = changed(
        &nginx,
        "limit_req zone=new_sessions burst=600 nodelay;",
        "limit_req zone=new_sessions burst=5 nodelay;",
    );
    config
}

/// `text` with `from` replaced by `to`; `from` must be there.
fn changed(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is no longer in nginx.conf");
    text.replace(from, to)
}

/// Runs `stickyscope probe ARGS…` (off the runtime's threads); exit code, stdout, stderr.
async fn probe(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
            .arg("probe")
            .args(&args)
            .output()
            .expect("the binary runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("the probe ran")
}

fn args(gateway: &str, extra: &[&str]) -> Vec<String> {
    ["--gateway", gateway, "--sessions", "60"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_trips_the_gateways_rate_limit_and_a_ramp_under_it_holds() {
    let chain = stickyscope::stack::chain::Chain::start(tight_chain_config(20))
        .await
        .unwrap_or_else(|e| panic!("the chain starts: {e}"));
    let gateway = chain.gateway_url();

    // All sixty at once: more than the burst, faster than 20 a second.
    let (code, out, err) = probe(args(&gateway, &["--duration", "4s", "--json"])).await;
    assert_eq!(code, 1, "{out}\n{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let limit = &json["rate_limited"];
    assert_eq!(limit["status"], 429, "{json:#}");
    assert_eq!(limit["certain"], true);
    // More sessions than the burst, faster than the rate: that is what tripped it.
    assert!(limit["openings"].as_u64().unwrap() > 5, "{json:#}");
    assert!(limit["openings_per_s"].as_f64().unwrap() > 20.0, "{json:#}");
    assert!(limit["refusals"].as_u64().unwrap() >= 1);
    assert!(json.get("ramp_s").is_none());
    // The refused sessions broke on the rate limit, in its words, not on stickiness.
    let reasons: Vec<&str> = json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["broke"]["reason"].as_str())
        .collect();
    assert!(!reasons.is_empty(), "{json:#}");
    assert!(
        reasons.iter().all(|r| r.contains("429")),
        "every breakage is the rate limit: {reasons:?}"
    );

    // The table says it, with the rate and a gentler ramp.
    let (code, out, _) = probe(args(&gateway, &["--duration", "4s"])).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("RATE-LIMITED: rate-limited by the gateway (HTTP 429"),
        "{out}"
    );
    assert!(
        out.contains("It tripped while sessions were being opened at "),
        "{out}"
    );
    assert!(out.contains("--ramp "), "{out}");
    eprintln!("{out}");

    // Over 6 s, 10 a second: under the limit, every session holds.
    let (code, out, err) = probe(args(
        &gateway,
        &["--duration", "9s", "--ramp", "6s", "--json"],
    ))
    .await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(code, 0, "{json:#}\n{err}");
    assert_eq!(json["verdict"], "ok");
    assert_eq!(json["ramp_s"], 6.0);
    assert!(json.get("rate_limited").is_none(), "{json:#}");
    // Opened over the ramp: the last connected about 6 s after the first.
    let mut connected: Vec<f64> = json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["connected_after_s"].as_f64().unwrap())
        .collect();
    connected.sort_by(f64::total_cmp);
    let spread = connected[connected.len() - 1] - connected[0];
    assert!((5.0..7.5).contains(&spread), "opened over {spread:.2} s");

    // A ramp as long as the probe: refused before anything starts.
    let (code, out, err) = probe(args(&gateway, &["--duration", "5s", "--ramp", "5s"])).await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("--ramp 5s must be shorter than --duration 5s"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");

    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crowd_the_rate_limit_refuses_names_it_grows_slower_and_forms_whole() {
    use stickyscope_vocab::events::{Command, Event, NoticeLevel, TransportChoice};
    let (sink, seen) = common::Collected::sink();
    let conductor = stickyscope::conductor::Conductor::start(
        stickyscope::conductor::ConductorConfig {
            gateway: stickyscope::stack::GatewayConfig::Chain(tight_chain_config(50)),
            transport: TransportChoice::Polling,
            sticky: true,
            chat: Default::default(),
        },
        sink,
    )
    .await
    .expect("the conductor starts on the chain");
    // 200 at 50 a second admitted: 4 s at the least; a first step of 100 trips the limit.
    conductor
        .commands()
        .try_send(Command::SetCrowd { size: 200 })
        .unwrap();
    let crowds = || {
        seen.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Crowd(c) => Some(c),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    common::wait_for(
        std::time::Duration::from_secs(120),
        "a crowd of 200, every session connected",
        || {
            let last = crowds().pop();
            async move { last.is_some_and(|c| c.size == 200 && c.connecting == 0) }
        },
    )
    .await;
    let summaries = crowds();
    let last = summaries.last().unwrap();
    assert_eq!(last.per_replica.values().sum::<usize>(), 200, "{last:?}");
    // Its failures were the rate limit's, said as such, with the rate that tripped it.
    let limit = last.rate_limited.as_ref().expect("the rate limit named");
    assert_eq!((limit.status, limit.certain), (429, true), "{limit:?}");
    assert!(
        limit.refusals >= 1 && limit.refusals <= last.failures,
        "{last:?}"
    );
    assert!(limit.openings_per_s > 50, "{limit:?}");
    // It grew slower meanwhile, and says so no more once it has its size.
    assert!(
        summaries
            .iter()
            .any(|c| c.held_back_to_per_s.is_some_and(|per_s| per_s < 200)),
        "{summaries:?}"
    );
    assert_eq!(last.held_back_to_per_s, None);
    // Said once, as a warning, in words.
    let told: Vec<String> = seen
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Notice(n) if n.text.contains("rate limit refused the crowd") => {
                assert_eq!(n.level, NoticeLevel::Warning);
                Some(n.text)
            }
            _ => None,
        })
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("(HTTP 429) when they came at "),
        "{told:?}"
    );
    conductor.shutdown().await;
}
