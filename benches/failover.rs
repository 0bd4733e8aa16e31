//! Failover: kill the replica holding a sticky session and time how long until the session
//! is connected again on another replica, as the app's own session supervisor sees it (the
//! same code the window runs). Embedded stack with the app's defaults: 3 replicas, health
//! checks every second, the app's default heartbeat (ping every 3 s). Each trial restarts
//! the killed replica and waits for it to be UP before the next. With `--chain`, the same
//! through the real chain: nginx → Traefik 3.7.15 (health checks every second, from the
//! stack file) → replica processes (SIGKILL) → Redis. With `--swarm`, across the tasks of
//! the swarm stack `stack/deploy.sh` deployed on this machine (gateway :8000, Traefik's API
//! :9090 with `STICKYSCOPE_TRAEFIK_AUTH=stickyscope:PASSWORD`, the engine at
//! /var/run/docker.sock): the task holding the session is killed through the engine, and
//! Swarm replaces it by itself (each trial waits until Traefik's list has dropped the dead
//! task's address and has three UP).
//!
//! `cargo bench --bench failover [-- [--chain | --swarm] TRIALS]` (default 20 per
//! transport).

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

/// Waits for the next Connected state, up to `bound`. With `STICKYSCOPE_BENCH_TRACE` set,
/// prints every state the session passes through on the way, in ms since `since`.
async fn connected(
    events: &mut mpsc::Receiver<Event>,
    bound: Duration,
    since: Instant,
) -> anyhow::Result<(String, Instant)> {
    let trace = std::env::var_os("STICKYSCOPE_BENCH_TRACE").is_some();
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("no connection in time")?
            .context("event stream closed")?;
        if trace {
            if let Event::Session { state, .. } = &event {
                eprintln!("  {:>6} ms  {state:?}", since.elapsed().as_millis());
            }
        }
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

/// Which stack the trials run on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Under {
    Embedded,
    Chain,
    Swarm,
}

/// The stack under test: the embedded one, the local chain, or the deployed swarm.
async fn start(under: Under) -> anyhow::Result<Stack> {
    let config = if under == Under::Swarm {
        GatewayConfig::External {
            gateway: "http://127.0.0.1:8000".into(),
            traefik_api: Some("http://127.0.0.1:9090".into()),
            identify: Default::default(),
            engineio: Default::default(),
            access: Default::default(),
            docker: Some("unix:///var/run/docker.sock".into()),
        }
    } else if under == Under::Chain {
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
            ..Default::default()
        })
    };
    Ok(stickyscope::stack::start(config).await?)
}

/// The servers UP at the balancer, as its topology API says.
async fn up(stack: &Stack) -> anyhow::Result<Vec<String>> {
    let service: ServiceInfo = match &stack.topology {
        TopologyApi::Service { url, .. } => reqwest::get(url).await?.json().await?,
        TopologyApi::Traefik {
            url,
            credential,
            trust,
            ..
        } => match credential {
            Some(credential) => TraefikApi::with_credential(url, Some(credential.clone()), trust)?,
            // The swarm's API credential comes from STICKYSCOPE_TRAEFIK_AUTH.
            None => TraefikApi::new(url, trust)?,
        }
        .services()
        .await?
        .into_iter()
        // `replicas-sticky@file` on the chain, `@swarm` on the swarm.
        .find(|s| s.name.split('@').next() == STICKY_SERVICE.split('@').next())
        .context("Traefik lists no sticky service")?,
        TopologyApi::None => bail!("this stack has no topology API"),
    };
    Ok(service
        .server_status
        .into_iter()
        .filter(|(_, status)| status == UP)
        .map(|(url, _)| url)
        .collect())
}

async fn trials(transport: TransportChoice, count: usize, under: Under) -> anyhow::Result<()> {
    let stack = start(under).await?;
    let controls = stack
        .controls
        .clone()
        .context("a stack stickyscope runs has controls")?;
    let (sink, mut events) = EventSink::new(1 << 16, std::sync::Arc::new(|_| {}));
    let mut config = SessionConfig::new("agent", &stack.gateway);
    config.transport = transport;
    let session = ChatSession::start(config, sink).await?;
    let (mut holder, _) = connected(&mut events, Duration::from_secs(10), Instant::now()).await?;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let killed_url = controls
            .statuses()
            .await
            .into_iter()
            .find(|r| r.id == holder)
            .map(|r| r.url)
            .context("the replica holding the session is not among the stack's replicas")?;
        let killed_at = Instant::now();
        controls.kill(&holder).await?;
        let (now_on, at) = connected(&mut events, Duration::from_secs(30), killed_at).await?;
        if now_on == holder {
            bail!(
                "came back on the killed replica {holder}, {} ms after the kill",
                at.duration_since(killed_at).as_millis()
            );
        }
        times.push(at.duration_since(killed_at));
        // Every kill starts from three replicas UP. Swarm replaces a killed task by itself,
        // at a new address (its provider sees it within 15 s); until Traefik's list has
        // dropped the dead address, it may still call it UP.
        let (swarm, bound) = if under == Under::Swarm {
            (true, Duration::from_secs(60))
        } else {
            controls.restart(&holder).await?;
            (false, Duration::from_secs(10))
        };
        let deadline = Instant::now() + bound;
        loop {
            let servers = up(&stack).await?;
            if servers.len() >= 3 && !(swarm && servers.contains(&killed_url)) {
                break;
            }
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
        match under {
            Under::Embedded => "",
            Under::Chain => " through the real chain",
            Under::Swarm => " across the swarm's tasks",
        },
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
    let under = if std::env::args().any(|a| a == "--swarm") {
        Under::Swarm
    } else if std::env::args().any(|a| a == "--chain") {
        Under::Chain
    } else {
        Under::Embedded
    };
    for transport in [
        TransportChoice::Polling,
        TransportChoice::Websocket,
        TransportChoice::Upgrade,
    ] {
        trials(transport, count, under).await?;
    }
    Ok(())
}
