//! Tap overhead: the latency a tap adds to a polling request. The same HTTP client sends the
//! same Engine.IO requests to the same embedded gateway, once directly and once through a
//! tap, interleaved so both sides see the same machine; the report is the difference of the
//! medians and of the 99th percentiles. Two request kinds: the handshake (a new session
//! each time) and a message POST on an established session. For scale, the same handshakes
//! and posts also go through a bare TCP relay (bytes copied both ways, nothing parsed or
//! recorded): the least any extra loopback hop can add on this machine. The three paths take
//! turns request by request, and the tap's added latency is given as a multiple of the
//! relay's (median and p99; the target is 1.5×).
//!
//! With `--chain` the gateway is the real chain's nginx (→ Traefik 3.7.15 → replica
//! processes): the tap's cost in front of a real stack. nginx's rate limits (new sessions
//! 100 a second per address, requests 50 a second per session) apply there, so requests are
//! paced under them (one pair every 25 ms) and the default is 600 rounds.
//!
//! `cargo bench --bench tap_overhead [-- [--chain] ROUNDS]` (default 3000).

mod common;

use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use anyhow::{bail, Context};
use common::{percentile, stack, us};
use stickyscope::stack::ReplicaControl;
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

/// A bare TCP relay in front of `gateway` (`http://host:port`); returns its URL.
async fn tcp_relay(gateway: &str) -> anyhow::Result<String> {
    let upstream = gateway
        .strip_prefix("http://")
        .context("gateway URL is not http://")?
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    Ok(url)
}

/// Prints the tap's added latency over a bare relay's, median and p99 (target ≤ 1.5×).
fn ratio(what: &str, tap: (f64, f64), relay: (f64, f64)) {
    println!(
        "{what}: the tap adds {:.2}× a bare relay's median and {:.2}× its p99 (target ≤ 1.5×)",
        tap.0 / relay.0.max(1.0),
        tap.1 / relay.1.max(1.0),
    );
}

/// Prints the added latency of `through` (the tap, or the relay) over `direct`; returns it
/// (median, p99) in µs.
fn report(
    what: &str,
    through_what: &str,
    direct: &mut [Duration],
    through: &mut [Duration],
) -> (f64, f64) {
    direct.sort();
    through.sort();
    let (d50, d99) = (percentile(direct, 50.0), percentile(direct, 99.0));
    let (t50, t99) = (percentile(through, 50.0), percentile(through, 99.0));
    let targets = through_what == "the tap";
    println!(
        "{what} ({} each): direct median {:.0} µs p99 {:.0} µs · through {through_what} median {:.0} µs p99 {:.0} µs · added median {:.0} µs{}, p99 {:.0} µs{}",
        direct.len(),
        us(d50),
        us(d99),
        us(t50),
        us(t99),
        us(t50) - us(d50),
        if targets { " (target ≤ 100)" } else { "" },
        us(t99) - us(d99),
        if targets { " (target ≤ 500)" } else { "" },
    );
    (us(t50) - us(d50), us(t99) - us(d99))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let on_chain = std::env::args().any(|a| a == "--chain");
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if on_chain { 600 } else { 3000 });
    // Under nginx's rate limits on the chain; as fast as it goes otherwise.
    let pace = on_chain.then_some(Duration::from_millis(25));
    let paced = || async move {
        if let Some(p) = pace {
            tokio::time::sleep(p).await;
        }
    };
    let chain = if on_chain {
        let program = stickyscope::stack::chain::ReplicaProgram {
            program: env!("CARGO_BIN_EXE_stickyscope").into(),
            args: vec!["replica".into()],
        };
        Some(
            stickyscope::stack::chain::Chain::start(stickyscope::stack::chain::ChainConfig::new(
                program,
            )?)
            .await?,
        )
    } else {
        None
    };
    let stack = stack(3, Duration::from_secs(1)).await?;
    let gateway = match &chain {
        Some(chain) => {
            println!("gateway: the real chain's nginx → Traefik → replica processes");
            chain.gateway_url()
        }
        None => stack.gateway_url(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let tap = Tap::start(TapConfig::new("bench", gateway.clone()), tx).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;

    let relay = tcp_relay(&gateway).await?;

    // Warm every path (connections, allocators).
    for _ in 0..50 {
        handshake(&client, &gateway, None).await?;
        handshake(&client, &tap.url().expect("a listening tap"), None).await?;
        handshake(&client, &relay, None).await?;
        paced().await;
    }

    // Handshakes: a new session each time; direct, tapped and relayed in turn.
    let tap_url = tap.url().expect("a listening tap");
    let handshakes = rounds / 3;
    let (mut direct, mut tapped, mut relayed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..handshakes {
        direct.push(handshake(&client, &gateway, None).await?.1);
        tapped.push(handshake(&client, &tap_url, None).await?.1);
        relayed.push(handshake(&client, &relay, None).await?.1);
        paced().await;
    }
    let by_tap = report(
        "tap overhead, polling handshake GET",
        "the tap",
        &mut direct.clone(),
        &mut tapped,
    );
    let by_relay = report(
        "for scale, polling handshake GET",
        "a bare TCP relay",
        &mut direct,
        &mut relayed,
    );
    ratio("polling handshake GET", by_tap, by_relay);

    // Message POSTs on one session per path (Socket.IO connect first, then events).
    let (direct_session, _) = handshake(&client, &gateway, None).await?;
    let (tap_session, _) = handshake(&client, &tap_url, None).await?;
    let (relay_session, _) = handshake(&client, &relay, None).await?;
    for session in [&direct_session, &tap_session, &relay_session] {
        post(&client, session, "40").await?;
    }
    let (mut direct, mut tapped, mut relayed) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        direct.push(post(&client, &direct_session, "42[\"bench\",1]").await?);
        tapped.push(post(&client, &tap_session, "42[\"bench\",1]").await?);
        relayed.push(post(&client, &relay_session, "42[\"bench\",1]").await?);
        paced().await;
        // Paced runs last longer than pingInterval + pingTimeout: answer the server's pings
        // (which no poll collects) so the sessions live; not measured.
        if pace.is_some() && round % 50 == 49 {
            for session in [&direct_session, &tap_session, &relay_session] {
                post(&client, session, "3").await?;
            }
        }
    }
    let by_tap = report(
        "tap overhead, message POST",
        "the tap",
        &mut direct.clone(),
        &mut tapped,
    );
    let by_relay = report(
        "for scale, message POST",
        "a bare TCP relay",
        &mut direct,
        &mut relayed,
    );
    ratio("message POST", by_tap, by_relay);
    tap.shutdown();
    stack.shutdown().await;
    if let Some(chain) = chain {
        chain.shutdown().await;
    }
    Ok(())
}
