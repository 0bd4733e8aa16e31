//! Tap overhead: the latency a tap adds to a polling request. The same HTTP client sends the
//! same Engine.IO requests to the same embedded gateway, once directly and once through a
//! tap, interleaved so both sides see the same machine; the report is the difference of the
//! medians and of the 99th percentiles. Two request kinds: the handshake (a new session
//! each time) and a message POST on an established session.
//!
//! `cargo bench --bench tap_overhead [-- ROUNDS]` (default 3000).

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::{percentile, stack, us};
use stickyscope::wire::{Tap, TapConfig};

/// One polling session's base URL and cookie.
struct Session {
    url: String,
    cookie: Option<String>,
}

async fn handshake(
    client: &reqwest::Client,
    base: &str,
    cookie: Option<&str>,
) -> anyhow::Result<(Session, Duration)> {
    let mut req = client.get(format!("{base}/socket.io/?EIO=4&transport=polling"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let started = Instant::now();
    let resp = req.send().await?;
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body = resp.text().await?;
    let took = started.elapsed();
    let open: serde_json::Value =
        serde_json::from_str(body.strip_prefix('0').context("no open packet")?)?;
    let sid = open["sid"].as_str().context("no sid")?;
    Ok((
        Session {
            url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}"),
            cookie: set_cookie.or(cookie.map(str::to_owned)),
        },
        took,
    ))
}

async fn post(
    client: &reqwest::Client,
    session: &Session,
    body: &'static str,
) -> anyhow::Result<Duration> {
    let mut req = client.post(&session.url).body(body);
    if let Some(c) = &session.cookie {
        req = req.header("cookie", c);
    }
    let started = Instant::now();
    let resp = req.send().await?;
    let status = resp.status();
    let _ = resp.bytes().await?;
    let took = started.elapsed();
    if !status.is_success() {
        bail!("POST answered {status}");
    }
    Ok(took)
}

fn report(what: &str, direct: &mut [Duration], tapped: &mut [Duration]) {
    direct.sort();
    tapped.sort();
    let (d50, d99) = (percentile(direct, 50.0), percentile(direct, 99.0));
    let (t50, t99) = (percentile(tapped, 50.0), percentile(tapped, 99.0));
    println!(
        "tap overhead, {what} ({} each): direct median {:.0} µs p99 {:.0} µs · through the tap median {:.0} µs p99 {:.0} µs · added median {:.0} µs (target ≤ 100), p99 {:.0} µs (target ≤ 500)",
        direct.len(),
        us(d50),
        us(d99),
        us(t50),
        us(t99),
        us(t50) - us(d50),
        us(t99) - us(d99),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3000);
    let stack = stack(3, Duration::from_secs(1)).await?;
    let gateway = stack.gateway_url();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let tap = Tap::start(TapConfig::new("bench", gateway.clone()), tx).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;

    // Warm both paths (connections, allocators).
    for _ in 0..50 {
        handshake(&client, &gateway, None).await?;
        handshake(&client, &tap.url(), None).await?;
    }

    // Handshakes: a new session each time.
    let handshakes = rounds / 3;
    let (mut direct, mut tapped) = (Vec::new(), Vec::new());
    for _ in 0..handshakes {
        direct.push(handshake(&client, &gateway, None).await?.1);
        tapped.push(handshake(&client, &tap.url(), None).await?.1);
    }
    report("polling handshake GET", &mut direct, &mut tapped);

    // Message POSTs on one session per path (Socket.IO connect first, then events).
    let (direct_session, _) = handshake(&client, &gateway, None).await?;
    let (tap_session, _) = handshake(&client, &tap.url(), None).await?;
    post(&client, &direct_session, "40").await?;
    post(&client, &tap_session, "40").await?;
    let (mut direct, mut tapped) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        direct.push(post(&client, &direct_session, "42[\"bench\",1]").await?);
        tapped.push(post(&client, &tap_session, "42[\"bench\",1]").await?);
    }
    report("message POST", &mut direct, &mut tapped);
    tap.shutdown();
    stack.shutdown().await;
    Ok(())
}
