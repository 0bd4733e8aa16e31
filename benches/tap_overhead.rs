//! Tap overhead: the latency a tap adds to a polling request. The same HTTP client sends the
//! same Engine.IO requests to the same embedded gateway, once directly and once through a
//! tap, interleaved so both sides see the same machine; the report is the difference of the
//! medians and of the 99th percentiles. Two request kinds: the handshake (a new session
//! each time) and a message POST on an established session. For scale, the same handshakes
//! and posts also go through a bare TCP relay (bytes copied both ways, nothing parsed or
//! recorded): the least any extra loopback hop can add on this machine. The three paths take
//! turns request by request, in an order shuffled each round, and the tap's added latency is
//! given as a multiple of the relay's (median and p99; the target is 1.5×), round by round:
//! what a request took through the tap (or the relay) less what the direct request of the
//! same round took. (A difference of p99s taken apart is mostly the machine's noise here:
//! the direct path's own p99 moves by hundreds of µs between runs, and the relay's "added
//! p99" comes out negative as often as not.)
//!
//! Every path's requests go to one replica: the tap's cookie jar sends the balancer's sticky
//! cookie with each request (a new session's handshake too, as a browser does), so the direct
//! and relayed requests carry the same cookie and the tap is pinned to its value.
//!
//! The client is a process of its own (this program started again with `--client-of`, its
//! runtime one thread, as a Node client's event loop), as a user's client — a browser, a Node
//! or Python Socket.IO client — is: its connections' tasks do not share the two worker
//! threads that run the tap, the relay, the gateway and the replicas. Sharing them, the
//! client's task was often run, with no wake-up, by the worker that had just written the
//! answer, if that worker was free at once — which a bare relay's nearly always is, and the
//! tap's, which still hands the exchange to its recorder, less often: a scheduling effect
//! no client outside the process meets. `--client-shares-runtime` measures that way (as
//! this benchmark did up to 2026-12-06).
//!
//! With `--chain` the gateway is the real chain's nginx (→ Traefik 3.7.15 → replica
//! processes): the tap's cost in front of a real stack. nginx's rate limits (new sessions
//! 100 a second per address, requests 50 a second per session) apply there, so requests are
//! paced under them (one pair every 25 ms) and the default is 600 rounds.
//!
//! While it runs the benchmark holds the CPUs out of their deeper idle states (it writes 0 to
//! `/dev/cpu_dma_latency` and keeps the file open, as latency tools such as `cyclictest` do;
//! this needs root), and says whether it could: on a VM a CPU woken from idle costs tens of µs,
//! more or less from run to run depending on how recently it slept, which swamps what one
//! loopback hop costs. `--idle-as-is` measures with the machine's idle states as they are.
//!
//! `--pace=MS` sends one round every MS ms (on the embedded stack too): each request then
//! finds the CPUs and their caches cold, as a user's polls, seconds apart, do.
//!
//! `cargo bench --bench tap_overhead [-- [--chain] [--idle-as-is] [--client-shares-runtime]
//! [--pace=MS] ROUNDS]` (default 3000).

mod common;

use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use anyhow::{bail, Context};
use common::{percentile, stack, us};
use stickyscope::stack::ReplicaControl;
use stickyscope::wire::{Tap, TapConfig};

/// The three ways a request goes.
#[derive(Clone, Copy)]
enum Path {
    Direct,
    Tap,
    Relay,
}

/// The order of the three paths in each round, shuffled round by round, so that what one
/// request leaves behind (a record still being decoded, a wake-up) falls on each path alike.
struct Order(u64);

impl Order {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Order(seed | 1)
    }

    fn next(&mut self) -> [Path; 3] {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        const ORDERS: [[Path; 3]; 6] = [
            [Path::Direct, Path::Tap, Path::Relay],
            [Path::Direct, Path::Relay, Path::Tap],
            [Path::Tap, Path::Direct, Path::Relay],
            [Path::Tap, Path::Relay, Path::Direct],
            [Path::Relay, Path::Direct, Path::Tap],
            [Path::Relay, Path::Tap, Path::Direct],
        ];
        ORDERS[(self.0 % 6) as usize]
    }
}

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

/// What each request of `through` took more than the direct one of the same round, in µs,
/// sorted.
fn added_per_round(direct: &[Duration], through: &[Duration]) -> Vec<f64> {
    let mut added: Vec<f64> = direct
        .iter()
        .zip(through)
        .map(|(d, t)| us(*t) - us(*d))
        .collect();
    added.sort_by(f64::total_cmp);
    added
}

fn percentile_of(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len().saturating_sub(1)) as f64).round() as usize;
    sorted.get(rank).copied().unwrap_or(0.0)
}

/// Prints the tap's added latency over a bare relay's, round by round, median and p99
/// (target ≤ 1.5×).
fn ratio(what: &str, direct: &[Duration], tapped: &[Duration], relayed: &[Duration]) {
    let by_tap = added_per_round(direct, tapped);
    let by_relay = added_per_round(direct, relayed);
    let (t50, t99) = (percentile_of(&by_tap, 50.0), percentile_of(&by_tap, 99.0));
    let (r50, r99) = (
        percentile_of(&by_relay, 50.0),
        percentile_of(&by_relay, 99.0),
    );
    println!(
        "{what}, added per round (through − direct): tap median {t50:.0} µs p99 {t99:.0} µs · relay median {r50:.0} µs p99 {r99:.0} µs · the tap adds {:.2}× a bare relay's median and {:.2}× its p99 (target ≤ 1.5×)",
        t50 / r50.max(1.0),
        t99 / r99.max(1.0),
    );
}

/// Prints the added latency of `through` (the tap, or the relay) over `direct`: the
/// difference of their medians and of their p99s.
fn report(what: &str, through_what: &str, direct: &[Duration], through: &[Duration]) {
    let mut direct = direct.to_vec();
    let mut through = through.to_vec();
    direct.sort();
    through.sort();
    let (direct, through) = (&direct, &through);
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
}

/// What the client is to measure: where each path's requests go, the balancer's sticky
/// cookie for the direct and relayed ones, how many rounds, and how far apart.
struct Run {
    gateway: String,
    tap: String,
    relay: String,
    sticky: Option<String>,
    rounds: usize,
    pace: Option<Duration>,
}

/// What the benchmark's own program is started with to be the client of a run.
const CLIENT_OF: &str = "--client-of";

impl Run {
    /// The arguments after [`CLIENT_OF`] that give a client's process this run.
    fn to_args(&self) -> Vec<String> {
        vec![
            self.gateway.clone(),
            self.tap.clone(),
            self.relay.clone(),
            self.sticky.clone().unwrap_or_else(|| "-".into()),
            self.rounds.to_string(),
            self.pace.map_or(0, |p| p.as_millis()).to_string(),
        ]
    }

    fn from_args(args: &[String]) -> anyhow::Result<Run> {
        let [gateway, tap, relay, sticky, rounds, pace_ms] = args else {
            bail!("{CLIENT_OF} GATEWAY TAP RELAY STICKY|- ROUNDS PACE_MS");
        };
        let pace_ms: u64 = pace_ms.parse()?;
        Ok(Run {
            gateway: gateway.clone(),
            tap: tap.clone(),
            relay: relay.clone(),
            sticky: (sticky != "-").then(|| sticky.clone()),
            rounds: rounds.parse()?,
            pace: (pace_ms > 0).then(|| Duration::from_millis(pace_ms)),
        })
    }
}

/// Warms every path, then sends the handshakes and the posts, each round's three in a
/// shuffled order, and prints what the tap and the relay added.
async fn measure(run: Run) -> anyhow::Result<()> {
    let Run {
        gateway,
        tap: tap_url,
        relay,
        sticky,
        rounds,
        pace,
    } = run;
    let paced = || async move {
        if let Some(p) = pace {
            tokio::time::sleep(p).await;
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let sticky = sticky.as_deref();

    // Warm every path (connections, allocators).
    for _ in 0..50 {
        handshake(&client, &gateway, sticky).await?;
        handshake(&client, &tap_url, None).await?;
        handshake(&client, &relay, sticky).await?;
        paced().await;
    }

    // Handshakes: a new session each time; direct, tapped and relayed in turn.
    let handshakes = rounds / 3;
    let (mut direct, mut tapped, mut relayed) = (Vec::new(), Vec::new(), Vec::new());
    let mut order = Order::new();
    for _ in 0..handshakes {
        for path in order.next() {
            match path {
                Path::Direct => direct.push(handshake(&client, &gateway, sticky).await?.1),
                Path::Tap => tapped.push(handshake(&client, &tap_url, None).await?.1),
                Path::Relay => relayed.push(handshake(&client, &relay, sticky).await?.1),
            }
        }
        paced().await;
    }
    report(
        "tap overhead, polling handshake GET",
        "the tap",
        &direct,
        &tapped,
    );
    report(
        "for scale, polling handshake GET",
        "a bare TCP relay",
        &direct,
        &relayed,
    );
    ratio("polling handshake GET", &direct, &tapped, &relayed);

    // Message POSTs on one session per path (Socket.IO connect first, then events).
    let (direct_session, _) = handshake(&client, &gateway, sticky).await?;
    let (tap_session, _) = handshake(&client, &tap_url, None).await?;
    let (relay_session, _) = handshake(&client, &relay, sticky).await?;
    for session in [&direct_session, &tap_session, &relay_session] {
        post(&client, session, "40").await?;
    }
    let (mut direct, mut tapped, mut relayed) = (Vec::new(), Vec::new(), Vec::new());
    let mut answered = Instant::now();
    for _ in 0..rounds {
        for path in order.next() {
            let (session, into) = match path {
                Path::Direct => (&direct_session, &mut direct),
                Path::Tap => (&tap_session, &mut tapped),
                Path::Relay => (&relay_session, &mut relayed),
            };
            into.push(post(&client, session, "42[\"bench\",1]").await?);
        }
        paced().await;
        // Long runs outlast pingInterval + pingTimeout: answer the server's pings (which no
        // poll collects) every second so the sessions live; not measured.
        if answered.elapsed() >= Duration::from_secs(1) {
            for session in [&direct_session, &tap_session, &relay_session] {
                post(&client, session, "3").await?;
            }
            answered = Instant::now();
        }
    }
    report("tap overhead, message POST", "the tap", &direct, &tapped);
    report(
        "for scale, message POST",
        "a bare TCP relay",
        &direct,
        &relayed,
    );
    ratio("message POST", &direct, &tapped, &relayed);
    Ok(())
}

/// Holds every CPU in its shallowest idle state for as long as the file returned stays open
/// (the kernel's PM QoS: a wake-up latency of 0 µs asked for).
fn hold_shallowest_idle() -> std::io::Result<std::fs::File> {
    use std::io::Write;
    let mut qos = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/cpu_dma_latency")?;
    qos.write_all(&0i32.to_ne_bytes())?;
    Ok(qos)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == CLIENT_OF) {
        // The client's process: a runtime of one thread, as a Node client's event loop.
        let run = Run::from_args(&args[at + 1..])?;
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(measure(run));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(serve_and_measure(&args))
}

/// Starts the stack (embedded, or the chain), the tap and the relay, and has the client
/// measure through them.
async fn serve_and_measure(args: &[String]) -> anyhow::Result<()> {
    let flag = |name: &str| args.iter().any(|a| a == name);
    let on_chain = flag("--chain");
    let _idle_held = if flag("--idle-as-is") {
        println!("idle states: as the machine has them (--idle-as-is)");
        None
    } else {
        match hold_shallowest_idle() {
            Ok(held) => {
                println!(
                    "idle states: held at the shallowest for the run (/dev/cpu_dma_latency = 0)"
                );
                Some(held)
            }
            Err(e) => {
                println!("idle states: as the machine has them — could not hold them ({e}: /dev/cpu_dma_latency needs root); waking an idle CPU adds to every path, by more or less from run to run");
                None
            }
        }
    };
    let rounds: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if on_chain { 600 } else { 3000 });
    // One round every `--pace=MS`; under nginx's rate limits on the chain; as fast as it
    // goes otherwise.
    let pace = match args.iter().find_map(|a| a.strip_prefix("--pace=")) {
        Some(ms) => Some(Duration::from_millis(
            ms.parse().context("--pace=MS: a whole number of ms")?,
        )),
        None => on_chain.then_some(Duration::from_millis(25)),
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
    let relay = tcp_relay(&gateway).await?;

    // One replica for every path: the tap's cookie jar sends the balancer's sticky cookie
    // with each request, a new session's handshake too (as a browser does), so the direct
    // and relayed requests carry the same cookie, and the tap is pinned to it. Otherwise
    // the tap's requests all go to one replica and the others' take turns over three.
    let (first, _) = handshake(&reqwest::Client::new(), &gateway, None).await?;
    let sticky = first.cookie;
    if let Some((_, value)) = sticky.as_deref().and_then(|c| c.split_once('=')) {
        tap.pin(value);
    }
    let run = Run {
        gateway,
        tap: tap.url().expect("a listening tap"),
        relay,
        sticky,
        rounds,
        pace,
    };
    if flag("--client-shares-runtime") {
        println!("client: on the runtime that runs the tap, the relay and the stack (--client-shares-runtime)");
        measure(run).await?;
    } else {
        println!("client: a process of its own (this benchmark's program, {CLIENT_OF} …)");
        let status = tokio::process::Command::new(std::env::current_exe()?)
            .arg(CLIENT_OF)
            .args(run.to_args())
            .kill_on_drop(true)
            .status()
            .await?;
        if !status.success() {
            bail!("the client's process ended with {status}");
        }
    }
    tap.shutdown();
    stack.shutdown().await;
    if let Some(chain) = chain {
        chain.shutdown().await;
    }
    Ok(())
}
