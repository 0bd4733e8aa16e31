//! Plays a scenario on an engine, headless: the stack it asks for (or the one given), each
//! step's actions as the window's commands, then the event stream folded into the step's
//! check until every expectation is decided or the step's time is up. Network code: it
//! starts stacks and sessions; what holds is decided by [`StepCheck`] (pure).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::check::StepCheck;
use super::format::{Action, AdapterNeed, Capabilities, Scenario, ScenarioError, Target};
use super::report::{ScenarioReport, StepReport};
use crate::embedded::{StackAdapter, StackConfig};
use crate::engine::{Engine, EngineConfig, EngineError, GatewayConfig, IdentifyConfig};
use crate::events::sink::EventSink;
use crate::events::{Command, EngineIoChoice, Event, ReplicaAction, TransportChoice};
use crate::scenario::format::USERS;
use crate::session::SessionState;

/// Where a scenario runs.
#[derive(Debug, Clone)]
pub enum RunTarget {
    /// A fresh embedded stack, as the scenario's `[stack]` asks.
    Embedded,
    /// A fresh local chain from this configuration, with the scenario's `[stack]` applied.
    Chain(Box<crate::chain::ChainConfig>),
    /// A running stack, taken as it is.
    Gateway {
        /// Its gateway.
        url: String,
        /// Its Traefik API, if known.
        traefik_api: Option<String>,
        /// How to name its replicas.
        identify: IdentifyConfig,
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
            RunTarget::Gateway { .. } => Capabilities {
                controls: false,
                stats: false,
                numbered_replicas: false,
                redis_adapter: false,
            },
        }
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
    Start(#[from] EngineError),
    /// The gateway is not reachable.
    #[error("{0}")]
    Unreachable(String),
}

/// How often `/stats` is read while a step waits on it.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// How long a replica operation may take (a graceful stop drains its connections).
const STACK_OP_BOUND: Duration = Duration::from_secs(120);
/// How long a step waits for the counters at its start.
const STATS_BASELINE_WAIT: Duration = Duration::from_secs(5);

/// The engine's configuration for `scenario` on `target`.
fn engine_config(scenario: &Scenario, target: &RunTarget) -> EngineConfig {
    let heartbeat = stickyscope_replica::Heartbeat {
        interval: scenario.stack.heartbeat.0,
        timeout: scenario.stack.heartbeat.1,
    };
    let gateway = match target {
        RunTarget::Embedded => GatewayConfig::Embedded(StackConfig {
            replicas: scenario.stack.replicas,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            heartbeat,
            adapter: match scenario.stack.adapter {
                AdapterNeed::None => StackAdapter::None,
                // Refused before: check_against.
                AdapterNeed::Memory | AdapterNeed::Redis => StackAdapter::Memory,
            },
            ..StackConfig::default()
        }),
        RunTarget::Chain(config) => {
            let mut config = (**config).clone();
            config.replicas = scenario.stack.replicas;
            config.heartbeat = heartbeat;
            config.adapter = scenario.stack.adapter != AdapterNeed::None;
            GatewayConfig::Chain(config)
        }
        RunTarget::Gateway {
            url,
            traefik_api,
            identify,
        } => GatewayConfig::External {
            gateway: url.clone(),
            traefik_api: traefik_api.clone(),
            identify: identify.clone(),
            engineio: EngineIoChoice::Auto,
        },
    };
    EngineConfig {
        gateway,
        transport: scenario.start.transport,
        sticky: scenario.start.sticky,
        chat: scenario.start.chat,
    }
}

/// What the runner keeps of the event stream between steps, and the transport it asked
/// each user for.
#[derive(Debug, Default)]
struct Watch {
    states: BTreeMap<String, SessionState>,
    last_replica: BTreeMap<String, Option<String>>,
    transports: BTreeMap<String, TransportChoice>,
}

impl Watch {
    fn new(start: TransportChoice) -> Self {
        Watch {
            transports: USERS.iter().map(|u| ((*u).to_owned(), start)).collect(),
            ..Watch::default()
        }
    }

    fn fold(&mut self, event: &Event) {
        if let Event::Session { user, state } = event {
            if let SessionState::Connected {
                replica: Some(r), ..
            } = state
            {
                self.last_replica.insert(user.clone(), Some(r.clone()));
            }
            self.states.insert(user.clone(), state.clone());
        }
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
    let engine = Engine::start(engine_config(scenario, target), sink).await?;
    let commands = engine.commands();
    let mut watch = Watch::new(scenario.start.transport);
    let mut steps = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let step_started = Instant::now();
        let mut check = StepCheck::new(
            step.expect.clone(),
            watch.states.clone(),
            watch.last_replica.clone(),
        );
        if check.needs_stats() {
            let _ = commands.send(Command::FetchStats).await;
            let until = Instant::now() + STATS_BASELINE_WAIT;
            while !check.has_stats_baseline() && Instant::now() < until {
                pump(
                    &mut events,
                    &mut check,
                    &mut watch,
                    until.min(Instant::now() + STATS_EVERY),
                )
                .await;
            }
        }
        let mut action_errors = Vec::new();
        for action in &step.actions {
            drain(&mut events, &mut check, &mut watch);
            if let Action::Wait(d) = action {
                let until = Instant::now() + *d;
                while Instant::now() < until {
                    pump(&mut events, &mut check, &mut watch, until).await;
                }
                continue;
            }
            for user in restarted_by(action, &watch) {
                check.restarts(&user);
            }
            if let Action::Transport { who, transport } = action {
                for user in who.users() {
                    watch.transports.insert(user, *transport);
                }
            }
            match commands_for(action, &watch) {
                Ok(given) => {
                    for command in given {
                        let _ = commands.send(command).await;
                    }
                    // A replica operation is done before the next action: a pin after a
                    // restart must find the replica up.
                    if action.needs_controls() {
                        let until = Instant::now() + STACK_OP_BOUND;
                        let done = loop {
                            match tokio::time::timeout_at(until.into(), events.recv()).await {
                                Ok(Some(Event::StackDone { error })) => break Some(error),
                                Ok(Some(event)) => {
                                    watch.fold(&event);
                                    check.observe(&event);
                                }
                                Ok(None) | Err(_) => break None,
                            }
                        };
                        match done {
                            Some(None) => {}
                            Some(Some(error)) => action_errors.push(format!("{action}: {error}")),
                            None => action_errors.push(format!(
                                "{action}: not done within {} s",
                                STACK_OP_BOUND.as_secs()
                            )),
                        }
                    }
                }
                Err(why) => action_errors.push(why),
            }
        }
        let deadline = Instant::now() + step.within;
        let mut next_stats = Instant::now() + STATS_EVERY;
        while !check.decided() && Instant::now() < deadline {
            if check.needs_stats() && Instant::now() >= next_stats {
                let _ = commands.send(Command::FetchStats).await;
                next_stats = Instant::now() + STATS_EVERY;
            }
            let wake = if check.needs_stats() {
                deadline.min(next_stats)
            } else {
                deadline
            };
            pump(&mut events, &mut check, &mut watch, wake).await;
        }
        if check.needs_stats() {
            // The last word on counters: read them once more before judging.
            let _ = commands.send(Command::FetchStats).await;
            let until = Instant::now() + Duration::from_secs(2);
            let mut got = false;
            while !got && Instant::now() < until {
                got = pump_until_stats(&mut events, &mut check, &mut watch, until).await;
            }
        }
        drain(&mut events, &mut check, &mut watch);
        let report = StepReport::new(
            i + 1,
            &step.title,
            step_started.elapsed().as_secs_f64(),
            action_errors,
            check.outcomes(Instant::now() >= deadline),
        );
        on_step(&report);
        steps.push(report);
    }
    engine.shutdown().await;
    Ok(ScenarioReport {
        file: file.to_owned(),
        title: scenario.title.clone(),
        passed: steps.iter().all(|s| s.passed),
        duration_s: started.elapsed().as_secs_f64(),
        steps,
    })
}

/// The commands an action gives (none for a wait), or why it cannot be done now.
pub fn commands_for(action: &Action, now: &impl ReplicaOf) -> Result<Vec<Command>, String> {
    Ok(match action {
        Action::Stickiness { who, on } => vec![Command::SetSticky {
            user: who.as_option(),
            on: *on,
        }],
        Action::Transport { who, transport } => vec![Command::SetTransport {
            user: who.as_option(),
            transport: *transport,
        }],
        // On the chain any adapter but none is Redis.
        Action::Adapter { on } => vec![Command::ConfigureStack {
            heartbeat: None,
            adapter: Some(if *on {
                StackAdapter::Memory
            } else {
                StackAdapter::None
            }),
        }],
        Action::Heartbeat { interval, timeout } => vec![Command::ConfigureStack {
            heartbeat: Some(stickyscope_replica::Heartbeat {
                interval: *interval,
                timeout: *timeout,
            }),
            adapter: None,
        }],
        Action::Pin { user, replica } => vec![
            Command::SetSticky {
                user: Some(user.clone()),
                on: true,
            },
            Command::Pin {
                user: user.clone(),
                replica: replica.clone(),
            },
        ],
        Action::Replica { action, target } => {
            let id = match target {
                Target::Id(id) => id.clone(),
                Target::Holding(user) => now.replica_of(user).ok_or_else(|| {
                    format!(
                        "{} {target}: {user} is on no known replica",
                        super::format::action_word(*action)
                    )
                })?,
            };
            vec![Command::Replica {
                id,
                action: *action,
            }]
        }
        Action::AddReplica => vec![Command::AddReplica],
        Action::Send { user, text } => vec![Command::Send {
            user: user.clone(),
            text: text.clone(),
        }],
        Action::Reconnect { who } => who
            .users()
            .into_iter()
            .map(|user| Command::Reconnect { user })
            .collect(),
        Action::Wait(_) => Vec::new(),
    })
}

/// The users whose session `action` starts again: a new transport, a pin, a reconnect, a
/// heartbeat or adapter change (every replica restarts), and stopping, killing or
/// restarting the replica a user is on. Stickiness does not: a session keeps going until a
/// request of it is refused.
fn restarted_by(action: &Action, watch: &Watch) -> Vec<String> {
    let everyone = || USERS.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
    match action {
        Action::Transport { who, transport } => who
            .users()
            .into_iter()
            .filter(|u| watch.transports.get(u) != Some(transport))
            .collect(),
        Action::Pin { user, .. } => vec![user.clone()],
        Action::Reconnect { who } => who.users(),
        Action::Adapter { .. } | Action::Heartbeat { .. } => everyone(),
        Action::Replica {
            action: ReplicaAction::Stop | ReplicaAction::Kill | ReplicaAction::Restart,
            target,
        } => {
            let id = match target {
                Target::Id(id) => Some(id.clone()),
                Target::Holding(user) => watch.replica_of(user),
            };
            everyone()
                .into_iter()
                .filter(|u| id.is_some() && watch.replica_of(u) == id)
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Which replica a user is on now, if one is known.
pub trait ReplicaOf {
    /// The replica `user` is connected to, when something named it.
    fn replica_of(&self, user: &str) -> Option<String>;
}

impl ReplicaOf for Watch {
    fn replica_of(&self, user: &str) -> Option<String> {
        self.states
            .get(user)
            .and_then(|s| s.replica())
            .map(str::to_owned)
    }
}

impl ReplicaOf for BTreeMap<String, SessionState> {
    fn replica_of(&self, user: &str) -> Option<String> {
        self.get(user).and_then(|s| s.replica()).map(str::to_owned)
    }
}

/// Folds events until `until`.
async fn pump(
    events: &mut mpsc::Receiver<Event>,
    check: &mut StepCheck,
    watch: &mut Watch,
    until: Instant,
) {
    if let Ok(Some(event)) = tokio::time::timeout_at(until.into(), events.recv()).await {
        watch.fold(&event);
        check.observe(&event);
    }
    drain(events, check, watch);
}

/// Folds events until `until` or a `/stats` answer; true when one came.
async fn pump_until_stats(
    events: &mut mpsc::Receiver<Event>,
    check: &mut StepCheck,
    watch: &mut Watch,
    until: Instant,
) -> bool {
    match tokio::time::timeout_at(until.into(), events.recv()).await {
        Ok(Some(event)) => {
            let stats = matches!(event, Event::Stats(_));
            watch.fold(&event);
            check.observe(&event);
            stats
        }
        _ => false,
    }
}

/// Folds what has already arrived.
fn drain(events: &mut mpsc::Receiver<Event>, check: &mut StepCheck, watch: &mut Watch) {
    while let Ok(event) = events.try_recv() {
        watch.fold(&event);
        check.observe(&event);
    }
}

/// A TCP connection to the gateway within 5 s, or why not.
async fn reachable(url: &str) -> Result<(), RunError> {
    let authority = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .trim_end_matches('/');
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&authority),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(RunError::Unreachable(format!(
            "the gateway {url} is not reachable: {e}"
        ))),
        Err(_) => Err(RunError::Unreachable(format!(
            "the gateway {url} is not reachable: no TCP connection within 5 s"
        ))),
    }
}
