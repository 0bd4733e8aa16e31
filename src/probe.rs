//! `stickyscope probe`: N sessions through taps for a while, then a table per replica and a
//! verdict. [`Report`] is built from the event stream alone (pure); [`run`] drives the
//! sessions (network).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::events::sink::EventSink;
use crate::events::Event;
use crate::protocol::EnginePacket;
use crate::session::{ChatSession, SessionConfig, SessionState, TransportChoice};
use crate::wire::{FailureKind, WireEvent};

/// Counts for one replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaCounts {
    /// Handshakes (polling or WebSocket).
    pub handshakes: u64,
    /// Pings from the replica.
    pub pings: u64,
    /// Pongs to the replica.
    pub pongs: u64,
    /// Engine.IO message packets, both ways.
    pub messages: u64,
    /// Refusals by reason.
    pub rejected: BTreeMap<String, u64>,
}

/// How one session fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionOutcome {
    /// Its name.
    pub name: String,
    /// The replica it connected to first, if it ever did.
    pub replica: Option<String>,
    /// Seconds from the start until it first connected.
    pub connected_after_s: Option<f64>,
    /// The first failure, if it broke or never formed.
    pub broke: Option<Breakage>,
}

/// Where, when and why a session broke.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakage {
    /// Seconds from the start.
    pub at_s: f64,
    /// The replica that refused or dropped it, when one did.
    pub replica: Option<String>,
    /// The exact reason.
    pub reason: String,
}

/// The probe's result, printed as a table or as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The gateway probed.
    pub gateway: String,
    /// Transport used.
    pub transport: TransportChoice,
    /// Stickiness used.
    pub sticky: bool,
    /// Seconds probed.
    pub duration_s: f64,
    /// Per replica.
    pub replicas: BTreeMap<String, ReplicaCounts>,
    /// Per session.
    pub sessions: Vec<SessionOutcome>,
    /// `ok` when every session stayed up on one replica, `broken` when any broke,
    /// `unreachable` when the gateway could not be reached at all.
    pub verdict: Verdict,
    /// The exit code that goes with the verdict.
    pub exit_code: i32,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every session stayed up on one replica (exit 0).
    Ok,
    /// At least one session broke or never formed (exit 1).
    Broken,
    /// The gateway could not be reached (exit 2).
    Unreachable,
}

/// Folds the event stream of a probe into a report. `started_ms` is the wall clock at the
/// start; `names` are the sessions probed.
pub fn report(
    events: &[(Instant, Event)],
    started: Instant,
    names: &[String],
    header: (&str, TransportChoice, bool, f64),
) -> Report {
    let mut replicas: BTreeMap<String, ReplicaCounts> = BTreeMap::new();
    let mut outcomes: BTreeMap<&str, SessionOutcome> = names
        .iter()
        .map(|n| {
            (
                n.as_str(),
                SessionOutcome {
                    name: n.clone(),
                    replica: None,
                    connected_after_s: None,
                    broke: None,
                },
            )
        })
        .collect();
    let mut unreachable = 0usize;
    for (at, event) in events {
        let secs = at.saturating_duration_since(started).as_secs_f64();
        match event {
            Event::Wire(w) => count(&mut replicas, w),
            Event::Session { user, state } => {
                let Some(outcome) = outcomes.get_mut(user.as_str()) else {
                    continue;
                };
                match state {
                    SessionState::Connected { replica, .. } => {
                        if outcome.connected_after_s.is_none() {
                            outcome.connected_after_s = Some(secs);
                            outcome.replica = Some(replica.clone());
                        } else if outcome.broke.is_none()
                            && outcome.replica.as_deref() != Some(replica)
                        {
                            outcome.broke = Some(Breakage {
                                at_s: secs,
                                replica: Some(replica.clone()),
                                reason: format!("moved to replica {replica}"),
                            });
                        }
                    }
                    SessionState::Reconnecting { reason, .. } | SessionState::Failed { reason } => {
                        if outcome.broke.is_none() {
                            if reason.starts_with("connection refused by the gateway") {
                                unreachable += 1;
                            }
                            outcome.broke = Some(Breakage {
                                at_s: secs,
                                replica: None,
                                reason: reason.clone(),
                            });
                        }
                    }
                    SessionState::Connecting => {}
                }
            }
            _ => {}
        }
    }
    // Name the replica behind each breakage from the failure the wire recorded.
    for (at, event) in events {
        let Event::Wire(w) = event else { continue };
        let (Some(f), Some(outcome)) = (&w.failure, outcomes.get_mut(w.user.as_str())) else {
            continue;
        };
        if let Some(b) = &mut outcome.broke {
            if b.replica.is_none()
                && b.reason == f.reason
                && at.saturating_duration_since(started).as_secs_f64() <= b.at_s + 0.001
            {
                b.replica = w.replica.clone();
            }
        }
    }
    let sessions: Vec<SessionOutcome> = outcomes.into_values().collect();
    let all_up = sessions
        .iter()
        .all(|s| s.connected_after_s.is_some() && s.broke.is_none());
    let verdict = if all_up {
        Verdict::Ok
    } else if unreachable == sessions.len()
        && sessions.iter().all(|s| s.connected_after_s.is_none())
    {
        Verdict::Unreachable
    } else {
        Verdict::Broken
    };
    let sessions = sessions
        .into_iter()
        .map(|mut s| {
            if s.connected_after_s.is_none() && s.broke.is_none() {
                s.broke = Some(Breakage {
                    at_s: header.3,
                    replica: None,
                    reason: "never connected".to_owned(),
                });
            }
            s
        })
        .collect();
    Report {
        gateway: header.0.to_owned(),
        transport: header.1,
        sticky: header.2,
        duration_s: header.3,
        replicas,
        sessions,
        verdict,
        exit_code: match verdict {
            Verdict::Ok => 0,
            Verdict::Broken => 1,
            Verdict::Unreachable => 2,
        },
    }
}

fn count(replicas: &mut BTreeMap<String, ReplicaCounts>, w: &WireEvent) {
    let Some(replica) = &w.replica else { return };
    let c = replicas.entry(replica.clone()).or_default();
    use stickyscope_contract::RequestKind::{HandshakePolling, HandshakeWebsocket};
    if matches!(
        w.request_kind(),
        Some(HandshakePolling | HandshakeWebsocket)
    ) {
        c.handshakes += 1;
    }
    for p in &w.packets_down {
        match p {
            EnginePacket::Ping { probe: false } => c.pings += 1,
            EnginePacket::Message { .. } => c.messages += 1,
            _ => {}
        }
    }
    for p in &w.packets_up {
        match p {
            EnginePacket::Pong { probe: false } => c.pongs += 1,
            EnginePacket::Message { .. } => c.messages += 1,
            _ => {}
        }
    }
    if let Some(f) = &w.failure {
        if matches!(f.kind, FailureKind::Refused | FailureKind::UpgradeDropped) {
            *c.rejected.entry(f.reason.clone()).or_default() += 1;
        }
    }
}

/// Renders the report as a table and a verdict line.
pub fn table(r: &Report) -> String {
    let mut out = format!(
        "probe of {} · {} · stickiness {} · {:.0} s · {} session(s)\n\n",
        r.gateway,
        r.transport.label(),
        if r.sticky { "on" } else { "off" },
        r.duration_s,
        r.sessions.len()
    );
    out.push_str(&format!(
        "{:<10} {:>10} {:>7} {:>7} {:>9}  rejected\n",
        "replica", "handshakes", "pings", "pongs", "messages"
    ));
    for (id, c) in &r.replicas {
        let rejected = if c.rejected.is_empty() {
            "-".to_owned()
        } else {
            c.rejected
                .iter()
                .map(|(k, v)| format!("{v}× {k}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        out.push_str(&format!(
            "{:<10} {:>10} {:>7} {:>7} {:>9}  {rejected}\n",
            id, c.handshakes, c.pings, c.pongs, c.messages
        ));
    }
    out.push('\n');
    match r.verdict {
        Verdict::Ok => out.push_str(&format!(
            "OK: every session stayed up on one replica for {:.0} s\n",
            r.duration_s
        )),
        _ => {
            let broken: Vec<&SessionOutcome> =
                r.sessions.iter().filter(|s| s.broke.is_some()).collect();
            out.push_str(&format!(
                "{}: {} of {} session(s) broke\n",
                if r.verdict == Verdict::Unreachable {
                    "UNREACHABLE"
                } else {
                    "BROKEN"
                },
                broken.len(),
                r.sessions.len()
            ));
            if let Some(first) = broken
                .iter()
                .filter_map(|s| s.broke.as_ref().map(|b| (s, b)))
                .min_by(|a, b| a.1.at_s.total_cmp(&b.1.at_s))
            {
                out.push_str(&format!(
                    "first: {} at {:.2} s{}: {}\n",
                    first.0.name,
                    first.1.at_s,
                    first
                        .1
                        .replica
                        .as_deref()
                        .map(|r| format!(" on replica {r}"))
                        .unwrap_or_default(),
                    first.1.reason
                ));
            }
        }
    }
    out
}

/// Runs `sessions` probe sessions against `gateway` for `duration`; `progress` is called
/// with the fraction done about ten times a second.
pub async fn run(
    gateway: &str,
    transport: TransportChoice,
    sticky: bool,
    duration: Duration,
    sessions: usize,
    mut progress: impl FnMut(f64),
) -> Result<Report, crate::wire::tap::TapError> {
    let (sink, mut rx) = EventSink::new(1 << 20, std::sync::Arc::new(|_| {}));
    let started = Instant::now();
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push((Instant::now(), e));
        }
        events
    });
    let names: Vec<String> = (1..=sessions).map(|i| format!("probe-{i}")).collect();
    let mut running = Vec::new();
    for name in &names {
        let mut config = SessionConfig::new(name, gateway);
        config.transport = transport;
        config.sticky = sticky;
        running.push(ChatSession::start(config, sink.clone()).await?);
    }
    drop(sink);
    while started.elapsed() < duration {
        progress(started.elapsed().as_secs_f64() / duration.as_secs_f64());
        tokio::time::sleep(
            Duration::from_millis(100).min(duration.saturating_sub(started.elapsed())),
        )
        .await;
    }
    progress(1.0);
    for s in running {
        s.shutdown().await;
    }
    let events = collector.await.unwrap_or_default();
    Ok(report(
        &events,
        started,
        &names,
        (gateway, transport, sticky, duration.as_secs_f64()),
    ))
}
