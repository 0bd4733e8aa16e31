//! `stickyscope doctor`: a checklist run against a stack, each check PASS, WARN, FAIL or
//! SKIPPED with the evidence it saw and, short of PASS, the fix. The checks speak
//! Engine.IO by hand ([`user`], over [`wire`]) so that every request and answer can be
//! shown; their judging lives next to them ([`probes`], [`numbers`], [`across`],
//! [`failover`]) or, for the ones with many causes, in [`verdicts`] (pure); the fixes are
//! [`fixes`]; [`render`] prints the report as text or JUnit.
//!
//! Order: check 1 first (nothing else can run without an Engine.IO server); 2–8 at once
//! (the held session takes about two ping intervals, at most 40 s); then 9 (a burst of
//! sessions, which could trip a limit the others pass through), then 10 (it kills a
//! replica, so nothing else may run beside it).

pub mod across;
pub mod failover;
pub mod fixes;
pub mod numbers;
pub mod probes;
pub mod render;
pub mod user;
pub mod verdicts;
pub mod wire;

use std::time::{Duration, Instant};

use stickyscope_vocab::doctor::{CheckId, CheckResult, DoctorReport};
use stickyscope_vocab::events::ChatDialect;
use stickyscope_vocab::naming::Identify;

use crate::session::SessionConfig;
use crate::topology_read::{read_once, TopologySource};
use std::sync::Arc;

use crate::stack::{GatewayConfig, ReplicaControl, Stack, TopologyApi};
use probes::Found;
use user::{Joined, Opened, PollingUser};
use verdicts::{CookieRules, Ended};
use wire::DoctorWire;

/// What the checks need besides the stack.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The page's origin, for the CORS check.
    pub origin: Option<String>,
    /// The chat the app speaks, for the check across replicas.
    pub chat: ChatDialect,
    /// Sessions opened one after another for the spread check.
    pub spread_sessions: usize,
    /// Sessions opened at once for the headroom check.
    pub burst: usize,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            origin: None,
            chat: ChatDialect::default(),
            spread_sessions: 12,
            burst: 50,
        }
    }
}

/// What the checklist runs on: a started stack, and the configuration it came from.
#[derive(Clone)]
pub struct Target {
    /// The gateway URL.
    pub gateway: String,
    /// Where the stack's topology is read.
    pub topology: TopologyApi,
    /// Its replica controls, on a stack stickyscope runs (or a swarm's, never used here).
    pub controls: Option<Arc<dyn ReplicaControl>>,
    /// The configuration it was started from: naming, access, Engine.IO, which stack.
    pub config: GatewayConfig,
}

impl Target {
    /// `stack`, started from `config`.
    pub fn of(stack: &Stack, config: &GatewayConfig) -> Self {
        Target {
            gateway: stack.gateway.clone(),
            topology: stack.topology.clone(),
            controls: stack.controls.clone(),
            config: config.clone(),
        }
    }
}

/// Why the checklist could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// The gateway does not answer (exit 2, like `probe`).
    #[error("{0}")]
    Unreachable(String),
}

/// How long the held session is held: two ping intervals and a second, within 4 to 40 s.
pub fn hold_for(found: &Found) -> Duration {
    let two = user::heartbeat_ms(found.open.ping_interval) * 2 + Duration::from_secs(1);
    two.clamp(Duration::from_secs(4), Duration::from_secs(40))
}

/// Runs the checklist on `stack`; `on_check` hears each result as it is known.
pub async fn run(
    stack: &Target,
    options: &DoctorOptions,
    mut on_check: impl FnMut(&CheckResult),
) -> Result<DoctorReport, DoctorError> {
    let config = &stack.config;
    let started = Instant::now();
    let access = config.access();
    let wire = DoctorWire::new(&stack.gateway, &access)
        .map_err(|e| DoctorError::Unreachable(e.to_string()))?;
    let given = config.identify();
    let mut identify = given.identify();
    let source = TopologySource {
        api: stack.topology.clone(),
        controls: stack.controls.clone(),
    };
    let mut up = None;
    if let Ok((topology, _)) = read_once(&source).await {
        identify.learn(&topology, given.cookie.is_some(), !given.servers.is_empty());
        let listed: Vec<_> = topology.replicas.iter().filter(|r| r.listed).collect();
        if !listed.is_empty() {
            up = Some(listed.iter().filter(|r| r.up).count());
        }
    }
    if up.is_none() {
        // A stack stickyscope runs knows its replicas even when its balancer's API lists
        // no sticky service.
        if let Some(controls) = &stack.controls {
            let running = controls
                .statuses()
                .await
                .iter()
                .filter(|s| s.state == crate::stack::ReplicaState::Running)
                .count();
            up = (running > 0).then_some(running);
        }
    }
    let mut report = DoctorReport {
        gateway: stack.gateway.clone(),
        stack: config.mode(),
        engineio: None,
        checks: Vec::new(),
        millis: 0,
    };
    let mut add = |report: &mut DoctorReport, result: CheckResult| {
        on_check(&result);
        report.checks.push(result);
    };

    let first = Instant::now();
    let (mut answers, found) = probes::answers(&wire, &identify, config.engineio())
        .await
        .map_err(|e| DoctorError::Unreachable(e.to_string()))?;
    answers.millis = first.elapsed().as_millis() as u64;
    add(&mut report, answers);
    let Some(found) = found else {
        for id in CheckId::ALL.into_iter().skip(1) {
            add(
                &mut report,
                CheckResult::skipped(id, "Socket.IO does not answer at the path (check 1)"),
            );
        }
        report.millis = started.elapsed().as_millis() as u64;
        return Ok(report);
    };
    report.engineio = Some(found.eio);

    let template = session_template(config, options.chat);
    let ((sticky, long_poll), cookie_on_upgrade, upgrade, cors, spread, across) = tokio::join!(
        timed_pair(held_session(&wire, &identify, &found)),
        timed(probes::cookie_on_upgrade(&wire, &identify, &found)),
        timed(probes::upgrade(&wire, &identify, &found)),
        timed(probes::cors(&wire, &found, options.origin.as_deref())),
        timed(numbers::spread(
            &wire,
            &identify,
            &found,
            options.spread_sessions,
            up
        )),
        timed(across::across(across::Users {
            gateway: &stack.gateway,
            template: &template,
        })),
    );
    for result in [
        sticky,
        cookie_on_upgrade,
        upgrade,
        long_poll,
        cors,
        spread,
        across,
    ] {
        add(&mut report, result);
    }
    let headroom = timed(numbers::headroom(&wire, &identify, &found, options.burst)).await;
    add(&mut report, headroom);
    // Only on a stack stickyscope runs: a running stack's replicas are not its to kill.
    let controls = match config {
        GatewayConfig::External { .. } => None,
        _ => stack.controls.as_ref(),
    };
    let failover = timed(failover::failover(&wire, &identify, &found, controls)).await;
    add(&mut report, failover);
    report.checks.sort_by_key(|c| c.id);
    report.millis = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The check's result with how long it took.
async fn timed(check: impl std::future::Future<Output = CheckResult>) -> CheckResult {
    let started = Instant::now();
    let mut result = check.await;
    result.millis = started.elapsed().as_millis() as u64;
    result
}

async fn timed_pair(
    checks: impl std::future::Future<Output = (CheckResult, CheckResult)>,
) -> (CheckResult, CheckResult) {
    let started = Instant::now();
    let (mut a, mut b) = checks.await;
    a.millis = started.elapsed().as_millis() as u64;
    b.millis = a.millis;
    (a, b)
}

/// Checks 2 and 5: one session, joined to its namespace and held for about two ping
/// intervals.
async fn held_session(
    wire: &DoctorWire,
    identify: &Identify,
    found: &Found,
) -> (CheckResult, CheckResult) {
    let hold = hold_for(found);
    let rules = CookieRules {
        name: &identify.cookie,
        path: &wire.access().path,
        tls: wire.is_tls(),
    };
    let interval = user::heartbeat_ms(found.open.ping_interval);
    let timeout = user::heartbeat_ms(found.open.ping_timeout);
    let mut user = match PollingUser::handshake(wire, identify, found.eio, None, &[]).await {
        Ok(Opened::Open(user)) => user,
        Ok(Opened::Not(seen)) => {
            let seen = [*seen];
            return (
                verdicts::sticky(&seen, &Ended::Held, &rules, Duration::ZERO),
                verdicts::long_poll(&seen, &Ended::Held, interval, timeout),
            );
        }
        Err(e) => {
            let why = Ended::NoAnswer(e.to_string());
            return (
                verdicts::sticky(&[], &why, &rules, Duration::ZERO),
                verdicts::long_poll(&[], &why, interval, timeout),
            );
        }
    };
    let ended = match user.join(wire).await {
        Ok(Joined::Yes) => user
            .hold(wire, hold)
            .await
            .unwrap_or_else(|e| Ended::NoAnswer(e.to_string())),
        // The refusal is in what was seen.
        Ok(Joined::Refused) => Ended::Held,
        Ok(Joined::AppRefused(words)) => Ended::AppRefused(words),
        Ok(Joined::NoAnswer(words)) => Ended::NoAnswer(words),
        Err(e) => Ended::NoAnswer(e.to_string()),
    };
    let seen = user.seen.clone();
    let sticky = verdicts::sticky(&seen, &ended, &rules, hold);
    let long_poll = verdicts::long_poll(&seen, &ended, interval, timeout);
    (*user).close(wire).await;
    (sticky, long_poll)
}

/// The chat sessions' configuration for the check across replicas.
fn session_template(config: &GatewayConfig, chat: ChatDialect) -> SessionConfig {
    let mut template = SessionConfig::new("agent", "");
    template.naming = config.identify().naming();
    template.chat = chat;
    template.engineio = config.engineio();
    template.access = config.access();
    template.connect_timeout = Duration::from_secs(8);
    template
}
