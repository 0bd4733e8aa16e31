//! Failover: kill the replica holding a sticky session and time how long until the session
//! is connected again on another replica, as the app's own session supervisor sees it (the
//! same code the window runs). Embedded stack with the app's defaults: 3 replicas, health
//! checks every second, the app's default heartbeat (ping every 3 s). Each trial restarts
//! the killed replica and waits for it to be UP before the next. With `--chain`, the same
//! through the real chain: nginx → Traefik 3.7.15 (health checks every second, from the
//! stack file) → replica processes (SIGKILL) → Redis.
//!
//! `cargo bench --bench failover [-- [--chain] TRIALS]` (default 20 per transport).

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::{ms, percentile};
use stickyscope::chain::{Chain, ChainConfig, ReplicaProgram, STICKY_SERVICE};
use stickyscope::embedded::{EmbeddedConfig, EmbeddedStack};
use stickyscope::event_sink::EventSink;
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::traefik_client::TraefikApi;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::events::Event;
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::stack::Adapter;
use tokio::sync::mpsc;

/// Waits for the next Connected state, up to `bound`.
async fn connected(
    events: &mut mpsc::Receiver<Event>,
    bound: Duration,
) -> anyhow::Result<(String, Instant)> {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("no connection in time")?
            .context("event stream closed")?;
        if let Event::Session {
            state: SessionState::Connected { replica, .. },
            ..
        } = event
        {
            let replica = replica.context("a stickyscope replica always names itself")?;
            return Ok((replica, Instant::now()));
        }
    }
}

/// The stack under test: the embedded one, or the local chain.
enum Stack {
    Embedded(std::sync::Arc<EmbeddedStack>),
    Chain(Box<Chain>),
}

const HEARTBEAT: Heartbeat = Heartbeat {
    interval: Duration::from_secs(3),
    timeout: Duration::from_secs(20),
};

impl Stack {
    async fn start(chain: bool) -> anyhow::Result<Stack> {
        if chain {
            let program = ReplicaProgram {
                program: env!("CARGO_BIN_EXE_stickyscope").into(),
                args: vec!["replica".into()],
            };
            let mut config = ChainConfig::new(program)?;
            config.heartbeat = HEARTBEAT;
            return Ok(Stack::Chain(Box::new(Chain::start(config).await?)));
        }
        Ok(Stack::Embedded(
            EmbeddedStack::start(EmbeddedConfig {
                replicas: 3,
                listen: "127.0.0.1:0".parse()?,
                heartbeat: HEARTBEAT,
                adapter: Adapter::Memory,
                redis_url: None,
                health_interval: Duration::from_secs(1),
            })
            .await?,
        ))
    }

    fn gateway(&self) -> String {
        match self {
            Stack::Embedded(s) => s.gateway_url(),
            Stack::Chain(c) => c.gateway_url(),
        }
    }

    async fn kill(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Stack::Embedded(s) => s.kill(id).await?,
            Stack::Chain(c) => c.kill(id).await?,
        }
        Ok(())
    }

    async fn restart(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Stack::Embedded(s) => s.restart(id).await?,
            Stack::Chain(c) => c.restart(id).await?,
        }
        Ok(())
    }

    /// Servers UP at the balancer.
    async fn up(&self) -> anyhow::Result<usize> {
        Ok(match self {
            Stack::Embedded(s) => s.pool().up_count(),
            Stack::Chain(c) => {
                let api = TraefikApi::with_credential(&c.api_url(), Some(c.api_credential()))?;
                api.services()
                    .await?
                    .into_iter()
                    .find(|s| s.name == STICKY_SERVICE)
                    .map(|s| s.server_status.values().filter(|v| *v == "UP").count())
                    .unwrap_or(0)
            }
        })
    }

    async fn shutdown(self) {
        match self {
            Stack::Embedded(s) => s.shutdown().await,
            Stack::Chain(c) => c.shutdown().await,
        }
    }
}

async fn trials(transport: TransportChoice, count: usize, chain: bool) -> anyhow::Result<()> {
    let stack = Stack::start(chain).await?;
    let (sink, mut events) = EventSink::new(1 << 16, std::sync::Arc::new(|_| {}));
    let mut config = SessionConfig::new("agent", &stack.gateway());
    config.transport = transport;
    let session = ChatSession::start(config, sink).await?;
    let (mut holder, _) = connected(&mut events, Duration::from_secs(10)).await?;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let killed_at = Instant::now();
        stack.kill(&holder).await?;
        let (now_on, at) = connected(&mut events, Duration::from_secs(30)).await?;
        if now_on == holder {
            bail!("came back on the killed replica {holder}");
        }
        times.push(at.duration_since(killed_at));
        stack.restart(&holder).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while stack.up().await? < 3 {
            if Instant::now() > deadline {
                bail!("replica {holder} did not come back UP");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        holder = now_on;
    }
    session.shutdown().await;
    stack.shutdown().await;
    times.sort();
    println!(
        "failover{}, {transport:?} ({count} kills of the replica holding the session): median {:.0} ms, p95 {:.0} ms (target ≤ 2000), max {:.0} ms",
        if chain { " through the real chain" } else { "" },
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 95.0)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let chain = std::env::args().any(|a| a == "--chain");
    for transport in [
        TransportChoice::Polling,
        TransportChoice::Websocket,
        TransportChoice::Upgrade,
    ] {
        trials(transport, count, chain).await?;
    }
    Ok(())
}
