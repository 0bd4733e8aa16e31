//! The replica server against the reference: the official Node.js socket.io v4 server
//! (`benches/node/server.js`), same machine, same load, one after the other. For 1,000 and
//! 5,000 WebSocket clients, each server fresh: connection setup rate, memory per connection
//! (resident memory of the server process after connecting, minus before, over the clients)
//! and broadcast deliveries per second (one client sends chat messages, each echoed to it and
//! broadcast to all the others, at most 32 not yet delivered everywhere; every client counts
//! what arrives).
//!
//! Run through `scripts/bench-replica-vs-node.sh`, which builds the replica, installs
//! socket.io into a temporary folder and passes `--replica BIN --node-modules DIR`. With
//! `--pin CORE` each server runs pinned to that core (`taskset`), and the script pins the
//! load generator (this process) to the other: the same share of the machine for both.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::rss_bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// Messages in flight from the sender.
const WINDOW: usize = 32;
/// Deliveries each run aims at (messages × clients).
const DELIVERIES: u64 = 2_000_000;

struct Server {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A command for `program`, pinned to `core` through taskset when one is given.
fn pinned(program: &str, core: Option<&str>) -> Command {
    match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.args(["-c", core, program]);
            command
        }
        None => Command::new(program),
    }
}

async fn start(
    name: &'static str,
    replica: &str,
    node_modules: &str,
    core: Option<&str>,
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let child = if name == "replica" {
        pinned(replica, core)
            .env("LISTEN", format!("127.0.0.1:{port}"))
            .env("REPLICA_ID", "1")
            .env("ADAPTER", "none")
            .env("PING_INTERVAL", "25s")
            .env("PING_TIMEOUT", "20s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {replica}"))?
    } else {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node/server.js");
        pinned("node", core)
            .arg(script)
            .arg(port.to_string())
            .env("NODE_PATH", node_modules)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start node")?
    };
    let server = Server { name, child, port };
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("{name} did not listen on {port}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(server)
}

/// One connected client: its outgoing queue.
struct Client {
    out: mpsc::UnboundedSender<String>,
}

/// Connects one Socket.IO client over WebSocket and runs it until the socket closes.
async fn connect(
    port: u16,
    received: Arc<AtomicU64>,
    acks: Arc<AtomicU64>,
) -> anyhow::Result<Client> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let open = ws.next().await.context("closed before open")??;
    if !open.to_text().unwrap_or("").starts_with('0') {
        bail!("no open packet: {open:?}");
    }
    ws.send(Message::text("40")).await?;
    loop {
        let msg = ws.next().await.context("closed before connect")??;
        if msg.to_text().unwrap_or("").starts_with("40") {
            break;
        }
    }
    let (out, mut outgoing) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = ws.next() => {
                    let Some(Ok(frame)) = frame else { return };
                    let text = frame.to_text().unwrap_or("");
                    if text == "2" {
                        if ws.send(Message::text("3")).await.is_err() { return; }
                    } else if text.starts_with("42[\"chat\"") {
                        received.fetch_add(1, Ordering::Relaxed);
                    } else if text.starts_with("43") {
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                }
                next = outgoing.recv() => {
                    let Some(text) = next else { return };
                    if ws.send(Message::text(text)).await.is_err() { return; }
                }
            }
        }
    });
    Ok(Client { out })
}

async fn run(server: &Server, clients: usize) -> anyhow::Result<()> {
    let pid = server.child.id();
    // What each client received, so the sender can wait for the slowest.
    let counters: Vec<Arc<AtomicU64>> = (0..clients).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let total = |counters: &[Arc<AtomicU64>]| -> u64 {
        counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    };
    let slowest = |counters: &[Arc<AtomicU64>]| -> u64 {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    };
    let acks = Arc::new(AtomicU64::new(0));
    // One client first, so the runtime's fixed cost is not charged to connections.
    let first = connect(server.port, Arc::clone(&counters[0]), Arc::clone(&acks)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes(pid);

    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(200));
    let mut pending = Vec::with_capacity(clients);
    for counter in &counters[1..] {
        let permit = Arc::clone(&gate).acquire_owned().await?;
        let (received, acks) = (Arc::clone(counter), Arc::new(AtomicU64::new(0)));
        let port = server.port;
        pending.push(tokio::spawn(async move {
            let client = connect(port, received, acks).await;
            drop(permit);
            client
        }));
    }
    let mut others = Vec::with_capacity(clients);
    for p in pending {
        others.push(p.await??);
    }
    let setup = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_bytes(pid);
    let per_conn = after.saturating_sub(before) as f64 / (clients - 1) as f64;

    let messages = (DELIVERIES / clients as u64).max(10);
    let expected = messages * clients as u64;
    // Flow control on deliveries, not acks (a server acks before its writes drain): the
    // slowest client is at most WINDOW messages behind, so neither server is pushed past
    // what its clients read.
    let started = Instant::now();
    for i in 0..messages {
        let deadline = Instant::now() + Duration::from_secs(30);
        while slowest(&counters) + (WINDOW as u64) < i + 1 {
            if Instant::now() > deadline {
                bail!(
                    "{}: deliveries stalled at {}",
                    server.name,
                    total(&counters)
                );
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let frame = format!(
            "42{i}[\"chat\",{{\"id\":\"m{i}\",\"from\":\"agent\",\"text\":\"benchmark message {i}\"}}]"
        );
        first.out.send(frame).context("sender closed")?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while total(&counters) < expected {
        if Instant::now() > deadline {
            bail!(
                "{}: only {} of {expected} deliveries in 120 s",
                server.name,
                total(&counters)
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    while acks.load(Ordering::Relaxed) < messages {
        if Instant::now() > deadline {
            bail!(
                "{}: only {} of {messages} messages acked",
                server.name,
                acks.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "{:>7}, {clients} websocket clients: setup {:.0} connections/s · {:.1} KB per connection (RSS {:.1} → {:.1} MB) · broadcast {:.0} deliveries/s ({messages} messages × {clients} in {:.2} s)",
        server.name,
        (clients - 1) as f64 / setup.as_secs_f64(),
        per_conn / 1024.0,
        before as f64 / 1e6,
        after as f64 / 1e6,
        expected as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
    );
    drop(others);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let servers: Vec<String> = arg("--servers")
        .unwrap_or_else(|| "replica,node".into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    if let Some(unknown) = servers.iter().find(|s| *s != "replica" && *s != "node") {
        bail!("unknown server {unknown:?} in --servers (replica, node)");
    }
    let (Some(replica), node_modules) = (arg("--replica"), arg("--node-modules")) else {
        bail!("usage: replica_vs_node --replica BIN [--node-modules DIR] [--clients N,M] [--servers replica,node] [--pin CORE] (see scripts/bench-replica-vs-node.sh)");
    };
    let node_modules = match node_modules {
        Some(dir) => dir,
        None if servers.iter().any(|s| s == "node") => {
            bail!("--node-modules DIR is needed to run the node server")
        }
        None => String::new(),
    };
    let sizes: Vec<usize> = match arg("--clients") {
        Some(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        None => vec![1000, 5000],
    };
    for clients in sizes {
        for name in &servers {
            let name = if name == "replica" { "replica" } else { "node" };
            let server = start(name, &replica, &node_modules, arg("--pin").as_deref()).await?;
            run(&server, clients).await?;
        }
    }
    Ok(())
}
