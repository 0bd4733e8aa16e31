//! Scale: what N idle light sessions cost stickyscope itself. For each N, a stack runs as
//! a process of its own (`stickyscope embedded --upstream h2c`, or with `--chain` the real
//! chain, nginx → Traefik → replica processes → Redis) with Socket.IO's default heartbeat
//! (pingInterval 25 s, pingTimeout 20 s), and `stickyscope probe --sessions N` opens its
//! polling sessions over a ramp (300 a second; 80 through the chain, under its nginx's limit
//! on new sessions) and holds them. Once every session is up and a heartbeat has passed,
//! the probe process's CPU is read over two more heartbeats (50 s), with its resident
//! memory and open files; the stack's CPU beside it, and the most open files one of its
//! processes holds. At the end the probe's JSON report is checked against the replicas' own
//! `/stats`: every session up, and per replica the handshakes and the sockets that
//! connected equal.
//!
//! `cargo bench --bench scale [-- [--chain [--traefiks N] | --replica] [--transport websocket]
//! N …]` (default 1000 5000 10000). A proxy holds two open files for each held poll (the
//! client's connection and its own to the server), more at 10,000 than this machine's limit
//! of 20,000 a process: so the embedded balancer reaches its replicas over HTTP/2 (one
//! connection each), and `--traefiks 2` runs the chain's Traefik as two instances behind
//! nginx, each holding half. `--replica` puts one replica process behind no balancer. The
//! bench raises its open-file limit as far as it may; the stack and probe inherit it.

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::cpu_seconds_of;

/// Socket.IO's default heartbeat.
const PING_INTERVAL: &str = "25s";
const PING_TIMEOUT: &str = "20s";
/// Sessions opened a second: under the chain's nginx limit on new sessions (100 a second
/// from one address, `stack/nginx/nginx.conf`), and faster elsewhere.
fn open_rate(kind: StackKind) -> usize {
    match kind {
        StackKind::Chain => 80,
        StackKind::Embedded | StackKind::Replica => 300,
    }
}
/// How long CPU is read over: two heartbeats.
const WINDOW: Duration = Duration::from_secs(50);

/// A child process, killed with its group when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        // SAFETY: signals the child's own process group, which `process_group(0)` made.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> anyhow::Result<Running> {
    use std::os::unix::process::CommandExt;
    let child = Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .with_context(|| format!("stickyscope {}", args.join(" ")))?;
    Ok(Running(child))
}

/// Raises this process's open-file limit (soft and, as root, hard) for the children.
#[allow(clippy::unnecessary_cast)]
fn raise_open_files(to: u64) {
    let limit = libc::rlimit {
        rlim_cur: to as libc::rlim_t,
        rlim_max: to as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        let _ = stickyscope::open_files::raise();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Resident memory and open files of a process.
fn rss_mib(pid: u32) -> f64 {
    common::rss_bytes(pid) as f64 / (1024.0 * 1024.0)
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The processes of a stack process and its children (nginx, Traefik, replicas, Redis),
/// whichever of its threads started them.
fn family(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", all[i]))
            .map(|d| d.flatten().map(|t| t.path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for task in tasks {
            let children = std::fs::read_to_string(task.join("children")).unwrap_or_default();
            all.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    all
}

fn cpu_of_family(pid: u32) -> f64 {
    family(pid)
        .iter()
        .map(|p| cpu_seconds_of(&p.to_string()))
        .sum()
}

/// Waits until the balancer's API lists its servers, every one UP (without a handshake of
/// the bench's own, which the replicas would count).
async fn wait_up(api: &str, bound: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + bound;
    loop {
        let service: Option<serde_json::Value> = match reqwest::get(api).await {
            Ok(answer) => answer.json().await.ok(),
            Err(_) => None,
        };
        let all_up = service.is_some_and(|s| {
            s["serverStatus"]
                .as_object()
                .is_some_and(|servers| !servers.is_empty() && servers.values().all(|v| v == "UP"))
        });
        if all_up {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{api} did not list every server UP within {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The servers the balancer's API lists.
async fn servers_of(api: &str) -> anyhow::Result<Vec<String>> {
    let service: serde_json::Value = reqwest::get(api).await?.json().await?;
    service["loadBalancer"]["servers"]
        .as_array()
        .context("servers")?
        .iter()
        .map(|s| s["url"].as_str().map(str::to_owned).context("a server url"))
        .collect()
}

/// The replicas' `/stats`.
async fn replica_stats(
    servers: &[String],
) -> anyhow::Result<Vec<stickyscope_contract::stats::StatsSnapshot>> {
    let mut all = Vec::new();
    for url in servers {
        all.push(reqwest::get(format!("{url}/stats")).await?.json().await?);
    }
    Ok(all)
}

struct Measured {
    sessions: usize,
    up: usize,
    probe_cpu_pct: f64,
    stack_cpu_pct: f64,
    rss_mib: f64,
    peak_mib: f64,
    files: usize,
    /// The most open files any one process of the stack held (the limit is per process).
    stack_files: usize,
    agrees: String,
}

/// What the sessions go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackKind {
    /// `stickyscope embedded --upstream h2c`: three replicas behind the built-in balancer,
    /// one process.
    Embedded,
    /// `stickyscope chain`: nginx → Traefik → three replica processes → Redis.
    Chain,
    /// One replica process, no balancer: for more sessions than a proxy here can hold.
    Replica,
}

impl StackKind {
    fn words(self) -> &'static str {
        match self {
            StackKind::Embedded => "the embedded stack (its own process, h2c to its replicas)",
            StackKind::Chain => "the chain (nginx → Traefik → replica processes → Redis)",
            StackKind::Replica => "one replica process, no balancer",
        }
    }
}

/// What to run and how.
struct Options {
    kind: StackKind,
    transport: String,
    /// Traefik instances of the chain.
    traefiks: String,
}

async fn measure(sessions: usize, options: &Options) -> anyhow::Result<Measured> {
    let (kind, transport) = (options.kind, options.transport.as_str());
    let port = free_port()?.to_string();
    let listen = format!("127.0.0.1:{port}");
    let heartbeat = [
        "--ping-interval",
        PING_INTERVAL,
        "--ping-timeout",
        PING_TIMEOUT,
    ];
    let mut stack_args: Vec<&str> = match kind {
        // One connection from the balancer to each replica: over HTTP/1.1 the stack's process
        // would hold three files a held poll, 30,000 at 10,000 sessions.
        StackKind::Embedded => vec!["embedded", "--port", &port, "--upstream", "h2c"],
        StackKind::Chain => vec!["chain", "--port", &port, "--traefiks", &options.traefiks],
        StackKind::Replica => vec!["replica", "--listen", &listen, "--id", "1"],
    };
    stack_args.extend(heartbeat);
    let mut stack = spawn(&stack_args)?;
    let gateway = format!("http://127.0.0.1:{port}");
    if kind == StackKind::Replica {
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{gateway}/stats")).await.is_err() {
            if Instant::now() > deadline {
                bail!("the replica did not come up");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let api = if kind == StackKind::Chain {
        // The chain prints where Traefik's API is.
        let out = stack.0.stdout.take().context("the chain's output")?;
        let mut api = None;
        for line in std::io::BufReader::new(out).lines() {
            let line = line?;
            if let Some(url) = line.strip_prefix("traefik api: ") {
                api = Some(format!(
                    "{}/api/http/services/{}",
                    url.trim().trim_end_matches('/'),
                    stickyscope::stack::chain::STICKY_SERVICE
                ));
                break;
            }
        }
        api.context("the chain said where its API is")?
    } else {
        format!("{gateway}/api/http/services/replicas-sticky@embedded")
    };
    let servers = if kind == StackKind::Replica {
        vec![gateway.clone()]
    } else {
        wait_up(&api, Duration::from_secs(60)).await?;
        servers_of(&api).await?
    };

    let ramp = Duration::from_secs((sessions / open_rate(kind)).max(3) as u64);
    let settle = Duration::from_secs(30);
    let duration = ramp + settle + WINDOW + Duration::from_secs(5);
    let (sessions_s, ramp_s, duration_s) = (
        sessions.to_string(),
        format!("{}s", ramp.as_secs()),
        format!("{}s", duration.as_secs()),
    );
    let mut probe = spawn(&[
        "probe",
        "--gateway",
        &gateway,
        "--sessions",
        &sessions_s,
        "--ramp",
        &ramp_s,
        "--duration",
        &duration_s,
        "--transport",
        transport,
        "--json",
    ])?;
    let pid = probe.0.id();
    let stack_pid = stack.0.id();
    tokio::time::sleep(ramp + settle).await;
    let (probe_before, stack_before, at) = (
        cpu_seconds_of(&pid.to_string()),
        cpu_of_family(stack_pid),
        Instant::now(),
    );
    tokio::time::sleep(WINDOW).await;
    let elapsed = at.elapsed().as_secs_f64();
    let probe_cpu_pct = (cpu_seconds_of(&pid.to_string()) - probe_before) / elapsed * 100.0;
    let stack_cpu_pct = (cpu_of_family(stack_pid) - stack_before) / elapsed * 100.0;
    let rss = rss_mib(pid);
    let peak = common::peak_mib_of(&pid.to_string());
    let files = open_files(pid);
    let stack_files = family(stack_pid)
        .into_iter()
        .map(open_files)
        .max()
        .unwrap_or(0);
    let stats = replica_stats(&servers).await?;

    let mut out = String::new();
    let mut stdout = probe.0.stdout.take().context("the probe's output")?;
    let read = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let out = tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .context("the probe did not finish")??;
    let _ = probe.0.wait();
    let report: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("the probe's JSON: {out:.300}"))?;
    let up = report["sessions"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|s| s["broke"].is_null()).count());
    // Per replica: handshakes, and sessions that connected there (by the probe) against
    // handshakes and sockets now connected (by the replica, read before the probe left).
    let mut by_probe: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (name, counts) in report["replicas"].as_object().context("replicas")? {
        by_probe.entry(name.clone()).or_default().0 = counts["handshakes"].as_u64().unwrap_or(0);
    }
    for s in report["sessions"].as_array().context("sessions")? {
        if let Some(replica) = s["replica"].as_str() {
            by_probe.entry(replica.to_owned()).or_default().1 += 1;
        }
    }
    let by_replicas: BTreeMap<String, (u64, u64)> = stats
        .iter()
        .map(|s| {
            (
                s.replica.clone(),
                (
                    s.requests_of(stickyscope_contract::RequestKind::HandshakePolling)
                        + s.requests_of(stickyscope_contract::RequestKind::HandshakeWebsocket),
                    s.sockets.connected,
                ),
            )
        })
        .collect();
    let agrees = if by_probe == by_replicas {
        format!("yes {by_probe:?}")
    } else {
        format!("NO: probe {by_probe:?} vs /stats {by_replicas:?}")
    };
    drop(stack);
    Ok(Measured {
        sessions,
        up,
        probe_cpu_pct,
        stack_cpu_pct,
        rss_mib: rss,
        peak_mib: peak,
        files,
        stack_files,
        agrees,
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let kind = if args.iter().any(|a| a == "--chain") {
        StackKind::Chain
    } else if args.iter().any(|a| a == "--replica") {
        StackKind::Replica
    } else {
        StackKind::Embedded
    };
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let options = Options {
        kind,
        transport: value_of("--transport").unwrap_or_else(|| "polling".to_owned()),
        traefiks: value_of("--traefiks").unwrap_or_else(|| "1".to_owned()),
    };
    // Session counts: the numbers that are not a flag's value.
    let takes_value = ["--transport", "--traefiks"];
    let counts: Vec<usize> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || !takes_value.contains(&args[i - 1].as_str()))
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1000, 5000, 10_000]
    } else {
        counts
    };
    raise_open_files(1 << 20);
    let runtime = tokio::runtime::Runtime::new()?;
    let instances = match (kind, options.traefiks.as_str()) {
        (StackKind::Chain, n) if n != "1" => format!(", {n} Traefik instances"),
        _ => String::new(),
    };
    println!(
        "scale: idle {} sessions through {}{instances}, pingInterval {PING_INTERVAL}",
        options.transport,
        kind.words()
    );
    println!(
        "{:>8} {:>8} {:>10} {:>12} {:>10} {:>10} {:>12} {:>12} {:>8} {:>12}  agrees with /stats",
        "sessions",
        "up",
        "probe CPU",
        "per 1k",
        "RSS MiB",
        "peak MiB",
        "KiB/session",
        "stack CPU",
        "files",
        "stack files"
    );
    for n in counts {
        let m = runtime.block_on(measure(n, &options))?;
        println!(
            "{:>8} {:>8} {:>9.1}% {:>11.2}% {:>10.0} {:>10.0} {:>12.0} {:>11.1}% {:>8} {:>12}  {}",
            m.sessions,
            m.up,
            m.probe_cpu_pct,
            m.probe_cpu_pct / m.sessions as f64 * 1000.0,
            m.rss_mib,
            m.peak_mib,
            m.rss_mib * 1024.0 / m.sessions as f64,
            m.stack_cpu_pct,
            m.files,
            m.stack_files,
            m.agrees
        );
    }
    Ok(())
}
