//! Plays a scenario on a conductor, headless: starts the stack it asks for (or takes the one
//! given), then lets a [`Player`] turn each step into the conductor's commands and judge it
//! from the event stream. Network code: it starts stacks and sessions and carries
//! commands and events; every decision is the player's (pure).

use std::time::{Duration, Instant};

use super::capabilities::Capabilities;
use super::format::{Scenario, ScenarioError};
use super::player::Player;
use super::report::{ScenarioReport, StepReport};
use crate::conductor::{Conductor, ConductorConfig, ConductorError};
use crate::event_sink::EventSink;
use crate::stack::embedded::EmbeddedConfig;
use crate::stack::GatewayConfig;
use stickyscope_vocab::stack::Adapter;

/// Where a scenario runs.
#[derive(Debug, Clone)]
pub enum RunTarget {
    /// A fresh embedded stack, as the scenario's `[stack]` asks.
    Embedded,
    /// A fresh local chain from this configuration, with the scenario's `[stack]` applied.
    Chain(Box<crate::stack::chain::ChainConfig>),
    /// A running stack, taken as it is (no /stats; replica controls only on a swarm whose
    /// engine was given).
    Gateway {
        /// Its gateway.
        url: String,
        /// How to reach and name it: a [`GatewayConfig::External`].
        config: Box<GatewayConfig>,
    },
}

impl RunTarget {
    /// What the target can do.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            RunTarget::Embedded => Capabilities {
                controls: true,
                stats: true,
                numbered_replicas: true,
                redis_adapter: false,
            },
            RunTarget::Chain(_) => Capabilities {
                controls: true,
                stats: true,
                numbered_replicas: true,
                redis_adapter: true,
            },
            RunTarget::Gateway { config, .. } => capabilities_of(config),
        }
    }
}

/// What a stack started from `gateway` can do for a scenario — the window's and the
/// headless runner's one answer: controls where stickyscope runs it (or a swarm's engine
/// was given), `/stats` where its replicas are reached, Redis where they share one.
pub fn capabilities_of(gateway: &GatewayConfig) -> Capabilities {
    Capabilities {
        controls: gateway.has_controls(),
        stats: gateway.has_stats(),
        numbered_replicas: gateway.has_controls(),
        redis_adapter: gateway.has_redis(),
    }
}

/// Why a scenario could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The file asks for what the stack cannot do.
    #[error(transparent)]
    Refused(#[from] ScenarioError),
    /// The stack or the sessions could not start.
    #[error("the stack could not start: {0}")]
    Start(#[from] ConductorError),
    /// The gateway is not reachable.
    #[error("{0}")]
    Unreachable(String),
}

/// The conductor's configuration for `scenario` on `target`.
fn conductor_config(scenario: &Scenario, target: &RunTarget) -> ConductorConfig {
    let heartbeat = scenario.stack.heartbeat;
    let gateway = match target {
        RunTarget::Embedded => GatewayConfig::Embedded(EmbeddedConfig {
            replicas: scenario.stack.replicas,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            heartbeat,
            adapter: match scenario.stack.adapter {
                Adapter::None => Adapter::None,
                // Refused before: check_against.
                Adapter::Memory | Adapter::Redis => Adapter::Memory,
            },
            ..EmbeddedConfig::default()
        }),
        RunTarget::Chain(config) => {
            let mut config = (**config).clone();
            config.replicas = scenario.stack.replicas;
            config.heartbeat = heartbeat;
            config.adapter = scenario.stack.adapter;
            GatewayConfig::Chain(config)
        }
        RunTarget::Gateway { config, .. } => (**config).clone(),
    };
    ConductorConfig {
        gateway,
        transport: scenario.start.transport,
        sticky: scenario.start.sticky,
        chat: scenario.start.chat,
    }
}

/// Runs `scenario` (read from `file`) on `target`; `on_step` hears each step's report as
/// it ends.
pub async fn run(
    file: &str,
    scenario: &Scenario,
    target: &RunTarget,
    mut on_step: impl FnMut(&StepReport),
) -> Result<ScenarioReport, RunError> {
    scenario.check_against(file, target.capabilities())?;
    if let RunTarget::Gateway { url, .. } = target {
        reachable(url).await?;
    }
    let started = Instant::now();
    let (sink, mut events) = EventSink::new(1 << 14, std::sync::Arc::new(|_| {}));
    let conductor = Conductor::start(conductor_config(scenario, target), sink).await?;
    let commands = conductor.commands();
    let mut player = Player::new(
        scenario.clone(),
        target.capabilities().controls,
        Instant::now(),
    );
    let mut steps = Vec::new();
    for n in 0..scenario.steps.len() {
        if n > 0 {
            player.go_to(n, Instant::now());
        }
        let report = loop {
            for command in player.poll(Instant::now()) {
                let _ = commands.send(command).await;
            }
            if let Some(report) = player.report(Instant::now()) {
                break report;
            }
            let wake = player
                .next_wake(Instant::now())
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            if let Ok(Some(event)) = tokio::time::timeout_at(wake.into(), events.recv()).await {
                player.observe(&event);
                while let Ok(event) = events.try_recv() {
                    player.observe(&event);
                }
            }
        };
        on_step(&report);
        steps.push(report);
    }
    conductor.shutdown().await;
    Ok(ScenarioReport {
        file: file.to_owned(),
        title: scenario.title.clone(),
        passed: steps.iter().all(|s| s.passed),
        duration_s: started.elapsed().as_secs_f64(),
        steps,
    })
}

/// A TCP connection to the gateway within 5 s, or why not.
async fn reachable(url: &str) -> Result<(), RunError> {
    let authority =
        crate::wire::tap::parse_gateway(url).map_err(|e| RunError::Unreachable(e.to_string()))?;
    let connect = tokio::net::TcpStream::connect(&authority);
    match tokio::time::timeout(crate::wire::tap::CONNECT_TIMEOUT, connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(RunError::Unreachable(
            crate::wire::tap::connect_failure(&e, &authority).reason,
        )),
        Err(_) => {
            let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
            Err(RunError::Unreachable(
                crate::wire::tap::connect_failure(&timed_out, &authority).reason,
            ))
        }
    }
}
