//! `stickyscope probe`: N sessions through taps for a while, opened at once or over a ramp,
//! then a table per replica and a verdict. [`Tally`] folds the event stream into counts as
//! it arrives and makes the [`Report`] (pure; the vocabulary's `rate_limit` tells a rate limit
//! from a broken stack); [`run`] drives the sessions (network).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::event_sink::EventSink;
use crate::session::{ChatSession, SessionConfig};
use stickyscope_vocab::events::Event;
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::protocol::EnginePacket;
use stickyscope_vocab::record::{FailureKind, WireRecord};

use stickyscope_vocab::rate_limit::{RateLimitWatch, RateLimited};

/// Counts for one replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaCounts {
    /// What named it (`X-Replica`, `header X-Backend`, `sticky cookie (Traefik ≥ 3.3.4)`), or
    /// `unidentified` for the records nothing named (counted together under `?`).
    pub identified_by: String,
    /// Handshakes (polling or WebSocket).
    pub handshakes: u64,
    /// Heartbeat pings, whoever sent them: the replica in Engine.IO v4, the client in v3.
    pub pings: u64,
    /// Heartbeat pongs answering them.
    pub pongs: u64,
    /// Engine.IO message packets, both ways.
    pub messages: u64,
    /// Refusals by reason.
    pub rejected: BTreeMap<String, u64>,
    /// For `?`: why nothing named the servers that answered, with how many records each.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unnamed_because: BTreeMap<String, u64>,
}

/// How one session fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionOutcome {
    /// Its name.
    pub name: String,
    /// The replica it connected to first, if it ever did and something named it.
    pub replica: Option<String>,
    /// The Engine.IO version its server spoke at the handshake (3 or 4), once one answered.
    pub engineio: Option<u8>,
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
    /// Stickiness used (`null` for a browser's HAR, which does not say).
    pub sticky: Option<bool>,
    /// For a report read from a browser's HAR: what recorded it (`WebInspector 537.36`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_har: Option<String>,
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
    /// Wire records the probe could not count because it fell behind (0 normally).
    pub records_dropped: u64,
    /// For an `https://` gateway, whether its certificate was checked: `verified`, or
    /// `NOT verified (--insecure)`; absent for plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Where the probe recorded what it saw (`--capture`), and how much, or why it could
    /// not; absent without `--capture`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
    /// Where the probe wrote what crossed the wire as a HAR (`--har`), or why it could
    /// not; absent without `--har`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub har: Option<String>,
    /// Seconds over which the sessions were opened (`--ramp`); absent when all at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp_s: Option<f64>,
    /// A rate limit the sessions ran into, and the rate that tripped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limited: Option<RateLimited>,
    /// Sessions that broke because this machine had no local port left to connect from:
    /// stickyscope's own limit, left out of the stack's verdict (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ports_exhausted: Option<LocalPorts>,
    /// Sessions stopped at the end with a request still under way after the time they are
    /// given to end (a gateway slow to answer): a replica may count a handshake or a
    /// refusal of theirs that this report lacks (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_off: Option<usize>,
}

/// Sessions this machine could not connect for lack of local ports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalPorts {
    /// How many sessions broke on it.
    pub sessions: usize,
    /// The machine's own words (its port range and what to do).
    pub reason: String,
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
    /// Every session that could connect stayed up, but this machine ran out of local ports
    /// for others: not all were tested (exit 2).
    NotAllTested,
}

/// A probe's result so far, folded from the event stream as it arrives: counts, not
/// records, so a probe of hours at hundreds of sessions holds no more than a short one.
#[derive(Debug)]
pub struct Tally {
    replicas: BTreeMap<String, ReplicaCounts>,
    outcomes: BTreeMap<String, SessionOutcome>,
    /// Each session's latest failure on the wire: (reason, replica, kind).
    last_failure: BTreeMap<String, (String, Option<String>, FailureKind)>,
    /// Sessions whose first breakage was the gateway not being reachable at all.
    unreachable: usize,
    /// Sessions whose first breakage was this machine having no local port left, with
    /// the words of the first.
    out_of_ports: (BTreeSet<String>, Option<String>),
    /// Sessions connected at least once.
    connected: usize,
    /// Sessions broken (or moved) so far.
    broken: usize,
    /// Rate limits met.
    rate: RateLimitWatch,
}

/// How a probe stands while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Sessions connected at least once.
    pub connected: usize,
    /// Sessions broken (or moved) so far.
    pub broken: usize,
    /// Requests refused by a rate limit so far.
    pub rate_limited: u64,
}

impl Tally {
    /// An empty tally for the sessions `names`.
    pub fn new(names: &[String]) -> Self {
        Tally {
            replicas: BTreeMap::new(),
            outcomes: names
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        SessionOutcome {
                            name: n.clone(),
                            replica: None,
                            engineio: None,
                            connected_after_s: None,
                            broke: None,
                        },
                    )
                })
                .collect(),
            last_failure: BTreeMap::new(),
            unreachable: 0,
            out_of_ports: (BTreeSet::new(), None),
            connected: 0,
            broken: 0,
            rate: RateLimitWatch::default(),
        }
    }

    /// How the probe stands so far.
    pub fn standing(&self) -> Standing {
        Standing {
            connected: self.connected,
            broken: self.broken,
            rate_limited: self.rate.refusals(),
        }
    }

    /// Folds in one event that arrived `at_s` seconds into the probe.
    pub fn fold(&mut self, at_s: f64, event: &Event) {
        match event {
            Event::Wire(w) => {
                count(&mut self.replicas, w);
                self.rate.fold(at_s, w);
                if let Some(outcome) = self.outcomes.get_mut(w.user.as_str()) {
                    let handshake = w
                        .packets_down
                        .iter()
                        .any(|p| matches!(p, EnginePacket::Open(_)));
                    if handshake && w.engineio.is_some() {
                        outcome.engineio = w.engineio;
                    }
                }
                if let Some(f) = &w.failure {
                    self.last_failure.insert(
                        w.user.clone(),
                        (f.reason.clone(), w.replica.clone(), f.kind),
                    );
                }
            }
            Event::Session { user, state } => {
                let Some(outcome) = self.outcomes.get_mut(user.as_str()) else {
                    return;
                };
                match state {
                    SessionState::Connected { replica, .. } => {
                        if outcome.connected_after_s.is_none() {
                            outcome.connected_after_s = Some(at_s);
                            outcome.replica = replica.clone();
                            self.connected += 1;
                        } else if let Some(now_on) = replica
                            .as_ref()
                            .filter(|r| outcome.replica.as_ref() != Some(*r))
                        {
                            if outcome.broke.is_none() {
                                self.broken += 1;
                                outcome.broke = Some(Breakage {
                                    at_s,
                                    replica: Some(now_on.clone()),
                                    reason: format!("moved to replica {now_on}"),
                                });
                            }
                        }
                    }
                    SessionState::Reconnecting { reason, .. } | SessionState::Failed { reason } => {
                        if outcome.broke.is_some() {
                            return;
                        }
                        // The wire records a failure before the session breaks on it: name
                        // the replica (and whether the gateway was reachable) from it.
                        let wire = self
                            .last_failure
                            .get(user.as_str())
                            .filter(|(why, _, _)| why == reason);
                        match wire.map(|(_, _, kind)| kind) {
                            Some(FailureKind::ConnectionRefused | FailureKind::Unreachable) => {
                                self.unreachable += 1
                            }
                            Some(FailureKind::LocalPortsExhausted) => {
                                self.out_of_ports.0.insert(user.clone());
                                self.out_of_ports.1.get_or_insert_with(|| reason.clone());
                            }
                            _ => {}
                        }
                        self.broken += 1;
                        outcome.broke = Some(Breakage {
                            at_s,
                            replica: wire.and_then(|(_, replica, _)| replica.clone()),
                            reason: reason.clone(),
                        });
                    }
                    SessionState::Connecting => {}
                }
            }
            _ => {}
        }
    }

    /// Whether every session broke on a gateway it could not reach, none having connected:
    /// nothing more is to be learnt by waiting.
    pub fn all_unreachable(&self) -> bool {
        self.unreachable == self.outcomes.len()
            && self
                .outcomes
                .values()
                .all(|s| s.connected_after_s.is_none())
    }

    /// The report: `header` is (gateway, transport, stickiness, seconds probed).
    pub fn finish(self, header: (&str, TransportChoice, bool, f64)) -> Report {
        let unreachable = self.all_unreachable();
        let sessions: Vec<SessionOutcome> = self.outcomes.into_values().collect();
        let (out_of_ports, ports_reason) = self.out_of_ports;
        // Sessions this machine could not connect say nothing about the stack.
        let tested = |s: &&SessionOutcome| !out_of_ports.contains(&s.name);
        let all_up = sessions
            .iter()
            .filter(tested)
            .all(|s| s.connected_after_s.is_some() && s.broke.is_none());
        let verdict = if all_up && out_of_ports.is_empty() {
            Verdict::Ok
        } else if all_up {
            Verdict::NotAllTested
        } else if unreachable {
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
            sticky: Some(header.2),
            from_har: None,
            har: None,
            duration_s: header.3,
            replicas: self.replicas,
            sessions,
            verdict,
            exit_code: match verdict {
                Verdict::Ok => 0,
                Verdict::Broken => 1,
                Verdict::Unreachable | Verdict::NotAllTested => 2,
            },
            records_dropped: 0,
            tls: None,
            capture: None,
            ramp_s: None,
            rate_limited: self.rate.into_finding(),
            local_ports_exhausted: ports_reason.map(|reason| LocalPorts {
                sessions: out_of_ports.len(),
                reason,
            }),
            cut_off: None,
        }
    }
}

/// The key under which records no source named are counted.
pub const UNIDENTIFIED: &str = "?";

fn count(replicas: &mut BTreeMap<String, ReplicaCounts>, w: &WireRecord) {
    // A record that never reached a server (refused connection, timeout) names none, and
    // is counted nowhere; one that reached an unnamed server counts under `?`.
    let reached = matches!(
        w.kind,
        stickyscope_vocab::record::WireKind::Http {
            status: Some(_),
            ..
        }
    ) || matches!(w.kind, stickyscope_vocab::record::WireKind::Ws { .. });
    let key = match &w.replica {
        Some(replica) => replica.clone(),
        None if reached && w.failure.is_none() => UNIDENTIFIED.to_owned(),
        None if matches!(
            w.failure.as_ref().map(|f| f.kind),
            Some(FailureKind::Refused | FailureKind::UpgradeDropped)
        ) =>
        {
            UNIDENTIFIED.to_owned()
        }
        None => return,
    };
    let c = replicas.entry(key).or_default();
    if let (None, Some(why)) = (&w.replica, &w.unnamed) {
        *c.unnamed_because.entry(why.clone()).or_default() += 1;
    }
    if c.identified_by.is_empty() {
        c.identified_by = w
            .replica_source
            .as_ref()
            .map_or_else(|| "unidentified".to_owned(), ToString::to_string);
    }
    use stickyscope_contract::RequestKind::{HandshakePolling, HandshakeWebsocket};
    if matches!(
        w.request_kind(),
        Some(HandshakePolling | HandshakeWebsocket)
    ) {
        c.handshakes += 1;
    }
    for p in w.packets_down.iter().chain(&w.packets_up) {
        match p {
            EnginePacket::Ping { probe: false } => c.pings += 1,
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
    let versions: std::collections::BTreeSet<u8> =
        r.sessions.iter().filter_map(|s| s.engineio).collect();
    let spoken = versions
        .iter()
        .map(|v| match v {
            3 => " · Engine.IO 3 (Socket.IO 2)".to_owned(),
            4 => " · Engine.IO 4".to_owned(),
            v => format!(" · Engine.IO {v}"),
        })
        .collect::<String>();
    let what = match (&r.from_har, r.sticky) {
        (Some(by), _) => format!(
            "a browser's HAR ({by}) of {} · {}",
            r.gateway,
            r.transport.label()
        ),
        (None, Some(on)) => format!(
            "probe of {} · {} · stickiness {}",
            r.gateway,
            r.transport.label(),
            if on { "on" } else { "off" }
        ),
        (None, None) => format!("probe of {} · {}", r.gateway, r.transport.label()),
    };
    let ramp = r
        .ramp_s
        .map(|s| format!(" opened over {s:.0} s"))
        .unwrap_or_default();
    let mut out = format!(
        "{what} · {:.0} s · {} session(s){ramp}{spoken}\n\n",
        r.duration_s,
        r.sessions.len()
    );
    if let Some(tls) = &r.tls {
        if tls.starts_with("NOT") {
            out.insert_str(
                0,
                "WARNING: the gateway's TLS certificate was NOT checked (--insecure)\n",
            );
        }
    }
    out.push_str(&format!(
        "{:<16} {:>10} {:>7} {:>7} {:>9}  {:<32}  rejected\n",
        "replica", "handshakes", "pings", "pongs", "messages", "identified by"
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
            "{:<16} {:>10} {:>7} {:>7} {:>9}  {:<32}  {rejected}\n",
            id, c.handshakes, c.pings, c.pongs, c.messages, c.identified_by
        ));
    }
    if let Some(unnamed) = r.replicas.get(UNIDENTIFIED) {
        if unnamed.unnamed_because.is_empty() {
            out.push_str("(?: answers nothing named)\n");
        }
        for why in unnamed.unnamed_because.keys() {
            out.push_str(&format!("(?: {why})\n"));
        }
    }
    if r.records_dropped > 0 {
        out.push_str(&format!(
            "({} wire record(s) arrived faster than they could be counted and are missing above)\n",
            r.records_dropped
        ));
    }
    if let Some(cut_off) = r.cut_off {
        out.push_str(&format!(
            "({cut_off} session(s) still had a request under way when the probe stopped them: a replica may count a handshake or a refusal of theirs that is missing above)\n"
        ));
    }
    if let Some(capture) = &r.capture {
        out.push_str(&format!("capture: {capture}\n"));
    }
    if let Some(har) = &r.har {
        out.push_str(&format!("HAR: {har}\n"));
    }
    out.push('\n');
    match r.verdict {
        Verdict::Ok => out.push_str(&format!(
            "OK: every session stayed up on one replica for {:.0} s\n",
            r.duration_s
        )),
        Verdict::NotAllTested => out.push_str(&format!(
            "NOT ALL TESTED: every session that connected stayed up on one replica for {:.0} s; \
             the others never got a connection from this machine (below)\n",
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
    if let Some(limit) = &r.rate_limited {
        out.push_str(&rate_limit_words(limit, r.sessions.len()));
    }
    if let Some(ports) = &r.local_ports_exhausted {
        out.push_str(&format!(
            "THIS MACHINE'S LIMIT: {} session(s) broke for want of a local port — {}\n",
            ports.sessions, ports.reason
        ));
    }
    out
}

/// The rate limit the sessions met, the rate that tripped it, and what to do.
fn rate_limit_words(limit: &RateLimited, sessions: usize) -> String {
    let what = if limit.certain {
        format!("RATE-LIMITED: {}", limit.reason)
    } else {
        format!(
            "PERHAPS RATE-LIMITED: HTTP {} ({}) — nginx's limit_req answers 503 unless \
             limit_req_status says otherwise",
            limit.status, limit.reason
        )
    };
    format!(
        "{what}, first at {:.2} s, {} refusal(s) in all. It tripped while sessions were being \
         opened at {:.0} a second ({} in the {:.2} s before the first refusal; {} requests in \
         all). Open them more slowly — --ramp {}s opens {sessions} at half that rate, and if \
         that trips it too, slower still — or raise the gateway's limit.\n",
        limit.first_at_s,
        limit.refusals,
        limit.openings_per_s,
        limit.openings,
        limit.window_s,
        limit.requests,
        limit.gentler_ramp_s(sessions)
    )
}

/// What a probe does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The gateway, `http://host:port`.
    pub gateway: String,
    /// Every session's transport.
    pub transport: TransportChoice,
    /// Every session's stickiness.
    pub sticky: bool,
    /// How long.
    pub duration: Duration,
    /// Sessions at once.
    pub sessions: usize,
    /// Over how long the sessions are opened, evenly spread (zero: all at once). Counted
    /// within `duration`.
    pub ramp: Duration,
    /// How replicas are named.
    pub naming: crate::wire::Naming,
    /// Which chat the sessions understand.
    pub chat: stickyscope_vocab::events::ChatDialect,
    /// Which Engine.IO the sessions speak.
    pub engineio: stickyscope_vocab::events::EngineIoChoice,
    /// Where Socket.IO lives and who the sessions are to it.
    pub access: stickyscope_vocab::access::Access,
    /// Where to write what crossed the wire as a HAR at the end (`--har`), if anywhere.
    pub har: Option<std::path::PathBuf>,
    /// Where to record what the sessions see, if anywhere.
    pub capture: Option<CapturePlan>,
}

/// Most wire records a probe keeps for its HAR (`--har`): about a gigabyte of memory.
pub const MAX_HAR_RECORDS: usize = 500_000;

/// Writes `records` as a HAR at `path`; says where and how much, or why not.
fn write_har(
    path: &std::path::Path,
    gateway: &str,
    socketio_path: &str,
    records: &[stickyscope_vocab::record::WireRecord],
) -> String {
    let target = crate::har::export::Target {
        gateway,
        path: socketio_path,
    };
    let document = crate::har::export::har_of(&target, records);
    let entries = document["log"]["entries"].as_array().map_or(0, Vec::len);
    let written = std::fs::File::create(path)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            serde_json::to_writer(std::io::BufWriter::new(f), &document).map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => format!(
            "{} ({entries} requests{})",
            path.display(),
            if records.len() >= MAX_HAR_RECORDS {
                format!(", only the first {MAX_HAR_RECORDS} records")
            } else {
                String::new()
            }
        ),
        Err(e) => format!("{} could not be written: {e}", path.display()),
    }
}

/// A capture the probe writes as it goes (`probe --capture PATH`).
#[derive(Debug, Clone)]
pub struct CapturePlan {
    /// The file.
    pub path: std::path::PathBuf,
    /// Its size bound, in bytes.
    pub limit: u64,
    /// What the stack is, for the capture's header.
    pub stack: String,
}

/// Why a probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A session's tap could not start.
    #[error(transparent)]
    Tap(#[from] crate::wire::tap::TapError),
    /// The capture could not be created.
    #[error("the capture could not be written: {0}")]
    Capture(#[from] crate::capture::CaptureError),
}

/// Runs the plan's sessions for its duration — or until every one of them has found the
/// gateway unreachable, which is known in a moment and does not change by waiting;
/// `progress` is called with the fraction done about ten times a second. Events are folded
/// as they arrive.
/// How a running probe is getting on, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Of the duration, 0.0 to 1.0.
    pub done: f64,
    /// Sessions opened so far.
    pub opened: usize,
    /// Sessions in all.
    pub sessions: usize,
    /// How they stand.
    pub standing: Standing,
}

/// Runs the probe, telling `progress` how it gets on about ten times a second.
pub async fn run(plan: &Plan, mut progress: impl FnMut(Progress)) -> Result<Report, ProbeError> {
    let (gateway, transport, sticky, duration) = (
        plan.gateway.as_str(),
        plan.transport,
        plan.sticky,
        plan.duration,
    );
    let (sink, mut rx) = EventSink::new(1 << 16, std::sync::Arc::new(|_| {}));
    let started = Instant::now();
    let names: Vec<String> = (1..=plan.sessions).map(|i| format!("probe-{i}")).collect();
    let mut tally = Tally::new(&names);
    let mut capture = match &plan.capture {
        Some(c) => {
            let header = stickyscope_vocab::capture::CaptureHeader {
                stickyscope_capture: stickyscope_vocab::capture::FORMAT_VERSION,
                source: "probe".into(),
                stickyscope: env!("CARGO_PKG_VERSION").into(),
                started_ms: stickyscope_vocab::record::now_ms(),
                gateway: gateway.to_owned(),
                stack: c.stack.clone(),
                transport,
                sticky,
                sessions: names.clone(),
            };
            Some(crate::capture::CaptureWriter::create(
                &c.path, &header, c.limit,
            )?)
        }
        None => None,
    };
    let unreachable = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let found_unreachable = std::sync::Arc::clone(&unreachable);
    let standing = std::sync::Arc::new(std::sync::Mutex::new(Standing::default()));
    let stands = std::sync::Arc::clone(&standing);
    let keep_wire = plan.har.is_some();
    let collector = tokio::spawn(async move {
        let mut capture_failed = None;
        let mut wire: Vec<stickyscope_vocab::record::WireRecord> = Vec::new();
        while let Some(e) = rx.recv().await {
            let at_s = started.elapsed().as_secs_f64();
            tally.fold(at_s, &e);
            if let (true, Event::Wire(record)) = (keep_wire, &e) {
                if wire.len() < MAX_HAR_RECORDS {
                    wire.push((**record).clone());
                }
            }
            if let (Some(writer), Some(happened)) = (
                capture.as_mut(),
                stickyscope_vocab::capture::Happened::of(&e),
            ) {
                if let Err(failed) = writer.add(at_s, happened) {
                    capture_failed = Some(failed.to_string());
                    capture = None;
                }
            }
            if tally.all_unreachable() {
                found_unreachable.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if let Ok(mut now) = stands.lock() {
                *now = tally.standing();
            }
        }
        (tally, capture, capture_failed, wire)
    });
    let stood = |opened: usize| Progress {
        done: (started.elapsed().as_secs_f64() / duration.as_secs_f64()).min(1.0),
        opened,
        sessions: names.len(),
        standing: standing.lock().map(|s| *s).unwrap_or_default(),
    };
    let mut running = Vec::new();
    let mut told = Instant::now();
    for (i, name) in names.iter().enumerate() {
        if !plan.ramp.is_zero() {
            // Evenly over the ramp: session i opens at i/n of it.
            let at = started + plan.ramp.mul_f64(i as f64 / names.len() as f64);
            tokio::time::sleep_until(at.into()).await;
        }
        if told.elapsed() >= Duration::from_millis(100) {
            progress(stood(i));
            told = Instant::now();
        }
        let mut config = SessionConfig::new(name, gateway);
        config.light = true;
        // Its counts are held against the replicas': what is under way ends first.
        config.wind_down = true;
        config.transport = transport;
        config.sticky = sticky;
        config.naming = plan.naming.clone();
        config.chat = plan.chat;
        config.engineio = plan.engineio;
        config.access = plan.access.clone();
        match ChatSession::start(config, sink.clone()).await {
            Ok(session) => running.push(session),
            Err(e) => {
                // Nothing started stays running.
                futures_util::future::join_all(running.into_iter().map(ChatSession::shutdown))
                    .await;
                return Err(e.into());
            }
        }
    }
    let dropped = sink.clone();
    drop(sink);
    while started.elapsed() < duration && !unreachable.load(std::sync::atomic::Ordering::SeqCst) {
        progress(stood(names.len()));
        tokio::time::sleep(
            Duration::from_millis(100).min(duration.saturating_sub(started.elapsed())),
        )
        .await;
    }
    progress(Progress {
        done: 1.0,
        ..stood(names.len())
    });
    let probed = started.elapsed().min(duration);
    // Each session lets its attempt under way end first, so the counts match the replicas'.
    let wound_down =
        futures_util::future::join_all(running.into_iter().map(ChatSession::shutdown)).await;
    let cut_off = wound_down.iter().filter(|whole| !**whole).count();
    let lost = dropped.dropped();
    drop(dropped);
    let (tally, capture, capture_failed, wire) = collector.await.unwrap_or_else(|_| {
        (
            Tally::new(&names),
            None,
            Some("the recorder stopped".into()),
            Vec::new(),
        )
    });
    let mut report = tally.finish((gateway, transport, sticky, probed.as_secs_f64()));
    report.records_dropped = lost;
    report.cut_off = (cut_off > 0).then_some(cut_off);
    report.ramp_s = (!plan.ramp.is_zero()).then_some(plan.ramp.as_secs_f64());
    if let Some(c) = &plan.capture {
        let finished = capture.map(|w| w.finish(probed.as_secs_f64()));
        report.capture = Some(match (finished, capture_failed) {
            (_, Some(failed)) => format!("{} could not be written: {failed}", c.path.display()),
            (Some(Ok(written)), None) => format!(
                "{} ({} bytes{})",
                c.path.display(),
                written.bytes,
                if written.full {
                    ", stopped at its size bound"
                } else {
                    ""
                }
            ),
            (Some(Err(failed)), None) => {
                format!("{} could not be finished: {failed}", c.path.display())
            }
            (None, None) => format!("{}: not written", c.path.display()),
        });
    }
    if let Some(path) = &plan.har {
        report.har = Some(write_har(path, gateway, &plan.access.path, &wire));
    }
    report.tls = crate::wire::tap::gateway_addr(gateway)
        .is_ok_and(|g| g.tls)
        .then(|| {
            if plan.access.insecure {
                "NOT verified (--insecure)".to_owned()
            } else {
                "verified".to_owned()
            }
        });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_contract::RequestKind;
    use stickyscope_vocab::record::{Failure, Transport, WireKind};

    fn refused(user: &str, replica: Option<&str>, kind: FailureKind, reason: &str) -> Event {
        Event::Wire(std::sync::Arc::new(WireRecord {
            seq: 1,
            sid: Some("S".into()),
            engineio: Some(4),
            replica: replica.map(str::to_owned),
            latency_us: Some(1_000),
            failure: Some(Failure {
                kind,
                reason: reason.into(),
            }),
            ..WireRecord::new(
                user,
                0,
                Transport::Polling,
                WireKind::Http {
                    request: RequestKind::PollGet,
                    method: "GET".into(),
                    status: replica.map(|_| 400),
                },
            )
        }))
    }

    fn state(user: &str, state: SessionState) -> Event {
        Event::Session {
            user: user.into(),
            state,
        }
    }

    const HEADER: (&str, TransportChoice, bool, f64) =
        ("http://g", TransportChoice::Polling, false, 4.0);

    #[test]
    fn a_breakage_is_named_after_the_failure_the_wire_recorded_before_it() {
        let names = vec!["probe-1".to_owned()];
        let mut tally = Tally::new(&names);
        let reason = "Session ID unknown";
        tally.fold(
            0.1,
            &state(
                "probe-1",
                SessionState::Connected {
                    replica: Some("1".into()),
                    sid: "S".into(),
                    websocket: false,
                },
            ),
        );
        tally.fold(
            0.2,
            &refused("probe-1", Some("3"), FailureKind::Refused, reason),
        );
        tally.fold(
            0.2,
            &state(
                "probe-1",
                SessionState::Reconnecting {
                    reason: reason.into(),
                    attempt: 1,
                },
            ),
        );
        let report = tally.finish(HEADER);
        assert_eq!((report.verdict, report.exit_code), (Verdict::Broken, 1));
        let broke = report.sessions[0].broke.clone().unwrap();
        assert_eq!(
            (broke.replica.as_deref(), broke.reason.as_str()),
            (Some("3"), reason)
        );
        assert_eq!(report.replicas["3"].rejected[reason], 1);
    }

    #[test]
    fn a_gateway_nobody_reaches_is_unreachable_whatever_the_cause() {
        let names = vec!["probe-1".to_owned(), "probe-2".to_owned()];
        let mut tally = Tally::new(&names);
        for (user, kind, reason) in [
            (
                "probe-1",
                FailureKind::ConnectionRefused,
                "connection refused by the gateway at 127.0.0.1:9",
            ),
            (
                "probe-2",
                FailureKind::Unreachable,
                "no TCP connection to the gateway at 10.9.9.9:80 within 5 s",
            ),
        ] {
            tally.fold(0.1, &refused(user, None, kind, reason));
            tally.fold(
                0.1,
                &state(
                    user,
                    SessionState::Reconnecting {
                        reason: reason.into(),
                        attempt: 1,
                    },
                ),
            );
        }
        let report = tally.finish(HEADER);
        assert_eq!(
            (report.verdict, report.exit_code),
            (Verdict::Unreachable, 2)
        );
    }

    #[test]
    fn v3_heartbeats_count_whoever_pings_and_the_version_is_reported() {
        use stickyscope_vocab::protocol::engineio_v3;
        let names = vec!["probe-1".to_owned()];
        let mut tally = Tally::new(&names);
        let Event::Wire(handshake) = refused("probe-1", Some("web-a"), FailureKind::Refused, "")
        else {
            unreachable!("refused() makes a wire record")
        };
        let mut handshake = std::sync::Arc::unwrap_or_clone(handshake);
        handshake.failure = None;
        handshake.engineio = Some(3);
        let open =
            r#"0{"sid":"S","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}"#;
        let framed = format!("{}:{open}2:40", open.len());
        handshake.packets_down = engineio_v3::decode_payload(framed.as_bytes());
        let mut ping = handshake.clone();
        ping.packets_down = vec![];
        ping.packets_up = vec![EnginePacket::Ping { probe: false }];
        let mut pong = handshake.clone();
        pong.packets_down = vec![EnginePacket::Pong { probe: false }];
        for w in [handshake, ping, pong] {
            tally.fold(0.1, &Event::Wire(std::sync::Arc::new(w)));
        }
        let report = tally.finish(HEADER);
        let counts = &report.replicas["web-a"];
        assert_eq!((counts.pings, counts.pongs), (1, 1));
        assert_eq!(report.sessions[0].engineio, Some(3));
        assert!(table(&report).contains("Engine.IO 3 (Socket.IO 2)"));
    }
}
