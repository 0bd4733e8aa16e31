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
use stickyscope::event_sink::EventSink;
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::chain::{ChainConfig, ReplicaProgram, STICKY_SERVICE};
use stickyscope::stack::embedded::EmbeddedConfig;
use stickyscope::stack::{GatewayConfig, Stack, TopologyApi};
use stickyscope::traefik_client::TraefikApi;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::events::Event;
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::stack::Adapter;
use stickyscope_vocab::traefik_model::{ServiceInfo, UP};
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

const HEARTBEAT: Heartbeat = Heartbeat {
    interval: Duration::from_secs(3),
    timeout: Duration::from_secs(20),
};

/// The stack under test: the embedded one, or the local chain.
async fn start(chain: bool) -> anyhow::Result<Stack> {
    let config = if chain {
        let program = ReplicaProgram {
            program: env!("CARGO_BIN_EXE_stickyscope").into(),
            args: vec!["replica".into()],
        };
        let mut config = ChainConfig::new(program)?;
        config.heartbeat = HEARTBEAT;
        GatewayConfig::Chain(config)
    } else {
        GatewayConfig::Embedded(EmbeddedConfig {
            replicas: 3,
            listen: "127.0.0.1:0".parse()?,
            heartbeat: HEARTBEAT,
            adapter: Adapter::Memory,
            redis_url: None,
            health_interval: Duration::from_secs(1),
        })
    };
    Ok(stickyscope::stack::start(config).await?)
}

/// Servers UP at the balancer, as its topology API says.
async fn up(stack: &Stack) -> anyhow::Result<usize> {
    let service: ServiceInfo = match &stack.topology {
        TopologyApi::Service { url, .. } => reqwest::get(url).await?.json().await?,
        TopologyApi::Traefik {
            url,
            credential,
            trust,
        } => TraefikApi::with_credential(url, credential.clone(), trust)?
            .services()
            .await?
            .into_iter()
            .find(|s| s.name == STICKY_SERVICE)
            .context("Traefik lists no sticky service")?,
        TopologyApi::None => bail!("this stack has no topology API"),
    };
    Ok(service.server_status.values().filter(|v| *v == UP).count())
}

async fn trials(transport: TransportChoice, count: usize, chain: bool) -> anyhow::Result<()> {
    let stack = start(chain).await?;
    let controls = stack
        .controls
        .clone()
        .context("a stack stickyscope runs has controls")?;
    let (sink, mut events) = EventSink::new(1 << 16, std::sync::Arc::new(|_| {}));
    let mut config = SessionConfig::new("agent", &stack.gateway);
    config.transport = transport;
    let session = ChatSession::start(config, sink).await?;
    let (mut holder, _) = connected(&mut events, Duration::from_secs(10)).await?;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let killed_at = Instant::now();
        controls.kill(&holder).await?;
        let (now_on, at) = connected(&mut events, Duration::from_secs(30)).await?;
        if now_on == holder {
            bail!("came back on the killed replica {holder}");
        }
        times.push(at.duration_since(killed_at));
        controls.restart(&holder).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while up(&stack).await? < 3 {
            if Instant::now() > deadline {
                bail!("replica {holder} did not come back UP");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        holder = now_on;
    }
    session.shutdown().await;
    controls.shutdown().await;
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
