//! The scenario file: TOML read with serde, then checked whole — every action and
//! expectation understood, every user and replica one that exists, every duration in range —
//! so that a bad file is refused with its file, line and column before anything runs. Pure.
//!
//! ```toml
//! title = "Round-robin long-polling"
//! about = "Why a session needs every request on one replica."
//!
//! [stack]
//! replicas = 3          # 1..=64
//! adapter = "memory"    # memory | redis | none
//! heartbeat = "3s"      # pingInterval; ping_timeout = "7s"
//!
//! [start]
//! stickiness = "off"    # on | off
//! transport = "polling" # polling | websocket | upgrade
//! chat = "stickyscope"  # stickyscope | seed | none
//!
//! [[step]]
//! title = "Stickiness off"
//! caption = "The handshake lands on one replica, the next poll on another."
//! do = [{ wait = "1s" }]
//! within = "8s"
//! expect = [{ failures = "Session ID unknown", at_least = 1 }, { never_connects = "both" }]
//! ```

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use stickyscope_contract::chat::USERS;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::events::{ChatDialect, ReplicaAction, TransportChoice};
use stickyscope_vocab::stack::Adapter;
/// The longest `within` or `wait`.
pub const MAX_STEP_TIME: Duration = Duration::from_secs(600);
/// `within` when a step gives none.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);
/// The most steps in one scenario.
pub const MAX_STEPS: usize = 100;

/// A scenario, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its title.
    pub title: String,
    /// A few lines on what it shows.
    pub about: String,
    /// The stack it needs.
    pub stack: StackNeeds,
    /// How the users start.
    pub start: Start,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// The stack a scenario needs (built as such on the embedded stack and the chain; a running
/// stack at `--gateway` is taken as it is).
#[derive(Debug, Clone, PartialEq)]
pub struct StackNeeds {
    /// Replicas at the start.
    pub replicas: usize,
    /// The adapter between replicas (Redis is the chain's: a private Redis for the embedded
    /// stack is not started).
    pub adapter: Adapter,
    /// pingInterval and pingTimeout.
    pub heartbeat: Heartbeat,
    /// Where the adapter is asked for in the file.
    pub adapter_at: (usize, usize),
}

/// How both users start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// Stickiness of both.
    pub sticky: bool,
    /// Transport of both.
    pub transport: TransportChoice,
    /// The chat they speak.
    pub chat: ChatDialect,
}

/// One step: actions, then expectations decided within a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its title, shown large.
    pub title: String,
    /// A few lines under the title.
    pub caption: String,
    /// What it does, in order.
    pub actions: Vec<Action>,
    /// How long, from the end of its actions, its expectations have to be decided.
    pub within: Duration,
    /// What must be seen.
    pub expect: Vec<Expectation>,
    /// Where it starts in the file (line, column; 1-based).
    pub at: (usize, usize),
    /// Where each action is in the file.
    pub action_at: Vec<(usize, usize)>,
    /// Where each expectation is in the file.
    pub expect_at: Vec<(usize, usize)>,
}

/// A user, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// One user.
    One(String),
    /// Both users.
    Both,
}

impl Who {
    /// The users meant.
    pub fn users(&self) -> Vec<String> {
        match self {
            Who::One(u) => vec![u.clone()],
            Who::Both => USERS.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    /// The user, for commands that take an optional one (`None`: both).
    pub fn as_option(&self) -> Option<String> {
        match self {
            Who::One(u) => Some(u.clone()),
            Who::Both => None,
        }
    }
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::One(u) => f.write_str(u),
            Who::Both => f.write_str("both users"),
        }
    }
}

/// Which replica an action is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// By id (`2`), or by address at the balancer (`10.0.1.7:3000`).
    Id(String),
    /// The one a user's session is on when the action runs.
    Holding(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Id(id) => write!(f, "replica {id}"),
            Target::Holding(user) => write!(f, "the replica holding {user}"),
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Stickiness on or off.
    Stickiness {
        /// For whom.
        who: Who,
        /// On or off.
        on: bool,
    },
    /// Transport (reconnects).
    Transport {
        /// For whom.
        who: Who,
        /// Which.
        transport: TransportChoice,
    },
    /// The adapter on (the stack's) or off (restarts the replicas).
    Adapter {
        /// On or off.
        on: bool,
    },
    /// A new heartbeat (restarts the replicas).
    Heartbeat {
        /// pingInterval.
        interval: Duration,
        /// pingTimeout.
        timeout: Duration,
    },
    /// Send this user to this replica: the sticky cookie the balancer gives that replica,
    /// stickiness on, and a new session.
    Pin {
        /// The user.
        user: String,
        /// The replica, by id or address.
        replica: String,
    },
    /// Stop, kill, restart, or make a replica unhealthy or healthy.
    Replica {
        /// What.
        action: ReplicaAction,
        /// Which.
        target: Target,
    },
    /// Add a replica.
    AddReplica,
    /// Send a chat message.
    Send {
        /// The sender.
        user: String,
        /// The text.
        text: String,
    },
    /// A new session for a user, or both.
    Reconnect {
        /// For whom.
        who: Who,
    },
    /// Wait.
    Wait(Duration),
}

impl Action {
    /// Whether it needs replica controls (a stack stickyscope started).
    pub fn needs_controls(&self) -> bool {
        matches!(
            self,
            Action::Adapter { .. }
                | Action::Heartbeat { .. }
                | Action::Replica { .. }
                | Action::AddReplica
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Stickiness { who, on } => {
                write!(f, "stickiness {} for {who}", if *on { "on" } else { "off" })
            }
            Action::Transport { who, transport } => {
                write!(f, "transport {} for {who}", transport.label())
            }
            Action::Adapter { on } => write!(f, "adapter {}", if *on { "on" } else { "off" }),
            Action::Heartbeat { interval, timeout } => write!(
                f,
                "heartbeat {} / {}",
                humantime::format_duration(*interval),
                humantime::format_duration(*timeout)
            ),
            Action::Pin { user, replica } => write!(f, "pin {user} to replica {replica}"),
            Action::Replica { action, target } => write!(f, "{} {target}", action_word(*action)),
            Action::AddReplica => f.write_str("add a replica"),
            Action::Send { user, text } => write!(f, "{user} sends {text:?}"),
            Action::Reconnect { who } => write!(f, "reconnect {who}"),
            Action::Wait(d) => write!(f, "wait {}", humantime::format_duration(*d)),
        }
    }
}

/// The word for a replica action.
pub fn action_word(action: ReplicaAction) -> &'static str {
    match action {
        ReplicaAction::Stop => "stop",
        ReplicaAction::Kill => "kill",
        ReplicaAction::Restart => "restart",
        ReplicaAction::Unhealthy => "make unhealthy",
        ReplicaAction::Healthy => "make healthy",
    }
}

/// A counter of the replicas' `/stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counter {
    /// Engine.IO requests of a kind (`requests.poll_get`).
    Requests(stickyscope_contract::RequestKind),
    /// Refusals with this reason (`rejected.Session ID unknown`).
    Rejected(String),
    /// Sockets connected now (`sockets.connected`; a gauge, not counted from the step's start).
    SocketsConnected,
    /// Sockets ever connected (`sockets.total`).
    SocketsTotal,
    /// Chat messages accepted (`chat.accepted`).
    ChatAccepted,
    /// Chat re-sends (`chat.repeats`).
    ChatRepeats,
    /// Chat messages refused (`chat.refused`).
    ChatRefused,
}

impl Counter {
    fn parse(text: &str) -> Result<Counter, String> {
        use stickyscope_contract::RequestKind;
        let known = "requests.KIND (handshake_polling, handshake_websocket, poll_get, poll_post, upgrade, other), rejected.REASON, sockets.connected, sockets.total, chat.accepted, chat.repeats, chat.refused";
        Ok(match text {
            "sockets.connected" => Counter::SocketsConnected,
            "sockets.total" => Counter::SocketsTotal,
            "chat.accepted" => Counter::ChatAccepted,
            "chat.repeats" => Counter::ChatRepeats,
            "chat.refused" => Counter::ChatRefused,
            _ => {
                if let Some(kind) = text.strip_prefix("requests.") {
                    let kind = RequestKind::ALL
                        .into_iter()
                        .find(|k| k.as_str() == kind)
                        .ok_or_else(|| format!("unknown request kind {kind:?}: {known}"))?;
                    Counter::Requests(kind)
                } else if let Some(reason) = text.strip_prefix("rejected.") {
                    Counter::Rejected(reason.to_owned())
                } else {
                    return Err(format!("unknown counter {text:?}: {known}"));
                }
            }
        })
    }
}

impl std::fmt::Display for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Counter::Requests(kind) => write!(f, "requests.{}", kind.as_str()),
            Counter::Rejected(reason) => write!(f, "rejected.{reason}"),
            Counter::SocketsConnected => f.write_str("sockets.connected"),
            Counter::SocketsTotal => f.write_str("sockets.total"),
            Counter::ChatAccepted => f.write_str("chat.accepted"),
            Counter::ChatRepeats => f.write_str("chat.repeats"),
            Counter::ChatRefused => f.write_str("chat.refused"),
        }
    }
}

/// A count's bounds (`at_least`, `at_most`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The least, if any.
    pub at_least: Option<u64>,
    /// The most, if any.
    pub at_most: Option<u64>,
}

impl Bounds {
    /// Whether `n` lies within.
    pub fn holds(&self, n: u64) -> bool {
        self.at_least.is_none_or(|l| n >= l) && self.at_most.is_none_or(|m| n <= m)
    }
}

impl std::fmt::Display for Bounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.at_least, self.at_most) {
            (Some(l), Some(m)) if l == m => write!(f, "exactly {l}"),
            (Some(l), Some(m)) => write!(f, "{l} to {m}"),
            (Some(l), None) => write!(f, "at least {l}"),
            (None, Some(0)) => f.write_str("none"),
            (None, Some(m)) => write!(f, "at most {m}"),
            (None, None) => f.write_str("any number"),
        }
    }
}

/// What must be seen in a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// Connected at some moment of the step.
    Connected(Who),
    /// Not connected at any moment of the step.
    NeverConnects(Who),
    /// Connected to this replica.
    OnReplica {
        /// The user.
        user: String,
        /// The replica, by id or address.
        replica: String,
    },
    /// Connected to a replica other than the one it was on when the step began.
    Moved(String),
    /// Every answer to this user during the step came from one replica.
    OneReplica(String),
    /// Failures on the chat users' wire whose reason contains this (or any), counted.
    Failures {
        /// Part of the reason; `None` for any failure.
        reason: Option<String>,
        /// How many.
        bounds: Bounds,
    },
    /// The other user received this text.
    Delivered {
        /// The text.
        text: String,
        /// The receiver.
        to: String,
    },
    /// The other user did not receive this text within the step.
    NotDelivered {
        /// The text.
        text: String,
        /// The receiver.
        to: String,
    },
    /// A `/stats` counter over the step, of one replica or all summed.
    Stats {
        /// Which counter.
        counter: Counter,
        /// One replica, or all.
        replica: Option<String>,
        /// How many.
        bounds: Bounds,
    },
}

impl Expectation {
    /// Whether it reads the replicas' `/stats` (stacks stickyscope started).
    pub fn needs_stats(&self) -> bool {
        matches!(self, Expectation::Stats { .. })
    }
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expectation::Connected(who) => write!(f, "{who} connected"),
            Expectation::NeverConnects(who) => write!(f, "{who} never connected"),
            Expectation::OnReplica { user, replica } => write!(f, "{user} on replica {replica}"),
            Expectation::Moved(user) => write!(f, "{user} moved to another replica"),
            Expectation::OneReplica(user) => {
                write!(f, "every answer to {user} from one replica")
            }
            Expectation::Failures { reason, bounds } => match reason {
                Some(r) => write!(f, "failures \"{r}\": {bounds}"),
                None => write!(f, "failures: {bounds}"),
            },
            Expectation::Delivered { text, to } => write!(f, "{to} receives {text:?}"),
            Expectation::NotDelivered { text, to } => {
                write!(f, "{to} does not receive {text:?}")
            }
            Expectation::Stats {
                counter,
                replica,
                bounds,
            } => match replica {
                Some(r) => write!(f, "{counter} on replica {r}: {bounds}"),
                None => write!(f, "{counter}, all replicas: {bounds}"),
            },
        }
    }
}

/// Why a scenario file was refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScenarioError {
    /// The file (or shipped scenario's name).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    title: Spanned<String>,
    #[serde(default)]
    about: String,
    #[serde(default)]
    stack: Option<Spanned<RawStack>>,
    #[serde(default)]
    start: Option<Spanned<RawStart>>,
    #[serde(default, rename = "step")]
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    replicas: Option<Spanned<i64>>,
    adapter: Option<Spanned<String>>,
    heartbeat: Option<Spanned<String>>,
    ping_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStart {
    stickiness: Option<Spanned<String>>,
    transport: Option<Spanned<String>>,
    chat: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    title: String,
    #[serde(default)]
    caption: String,
    #[serde(default, rename = "do")]
    actions: Vec<Spanned<toml::Table>>,
    within: Option<Spanned<String>>,
    #[serde(default)]
    expect: Vec<Spanned<toml::Table>>,
}

/// Reads a scenario: `file` names it in errors.
pub fn parse(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
    let at = |span: Range<usize>, message: String| {
        let (line, column) = line_column(source, span.start);
        ScenarioError {
            file: file.to_owned(),
            line,
            column,
            message,
        }
    };
    let raw: RawScenario = toml::from_str(source).map_err(|e| {
        at(
            e.span().unwrap_or(0..0),
            e.message().trim_end().replace('\n', " "),
        )
    })?;
    if raw.title.get_ref().trim().is_empty() {
        return Err(at(raw.title.span(), "the title is empty".into()));
    }
    let stack = match &raw.stack {
        Some(stack) => {
            let mut needs = read_stack(stack.get_ref()).map_err(|(s, m)| at(s, m))?;
            if let Some(adapter) = &stack.get_ref().adapter {
                needs.adapter_at = line_column(source, adapter.span().start);
            }
            needs
        }
        None => StackNeeds {
            replicas: 3,
            adapter: Adapter::Memory,
            heartbeat: Heartbeat::default(),
            adapter_at: (1, 1),
        },
    };
    let start = match &raw.start {
        Some(start) => read_start(start.get_ref()).map_err(|(s, m)| at(s, m))?,
        None => Start {
            sticky: true,
            transport: TransportChoice::Polling,
            chat: ChatDialect::Stickyscope,
        },
    };
    if raw.steps.is_empty() {
        return Err(at(0..0, "no steps: add at least one [[step]]".into()));
    }
    if raw.steps.len() > MAX_STEPS {
        return Err(at(
            raw.steps[MAX_STEPS].span(),
            format!("more than {MAX_STEPS} steps"),
        ));
    }
    // Replica ids that exist at each point: 1..=N, and one more per `add_replica`.
    let mut replicas = stack.replicas;
    let mut steps = Vec::new();
    for raw_step in &raw.steps {
        let span = raw_step.span();
        let step = raw_step.get_ref();
        let mut actions = Vec::new();
        let mut action_at = Vec::new();
        for table in &step.actions {
            action_at.push(line_column(source, table.span().start));
            let action = read_action(table.get_ref()).map_err(|m| at(table.span(), m))?;
            if let Action::AddReplica = action {
                replicas += 1;
                if replicas > stickyscope_vocab::stack::MAX_REPLICAS {
                    return Err(at(
                        table.span(),
                        format!(
                            "one replica too many: a stack has at most {}",
                            stickyscope_vocab::stack::MAX_REPLICAS
                        ),
                    ));
                }
            }
            if let Action::Replica {
                target: Target::Id(id),
                ..
            } = &action
            {
                if id.contains(':') {
                    return Err(at(
                        table.span(),
                        format!("{action}: replica controls work on stickyscope's own replicas, named by number, not on a server at an address"),
                    ));
                }
            }
            check_replica_ref(&action_replica(&action), replicas)
                .map_err(|m| at(table.span(), m))?;
            actions.push(action);
        }
        let within = match &step.within {
            Some(w) => duration(w.get_ref(), "within").map_err(|m| at(w.span(), m))?,
            None => DEFAULT_WITHIN,
        };
        let mut expect = Vec::new();
        let mut expect_at = Vec::new();
        for table in &step.expect {
            expect_at.push(line_column(source, table.span().start));
            let expectation = read_expectation(table.get_ref()).map_err(|m| at(table.span(), m))?;
            check_replica_ref(&expectation_replica(&expectation), replicas)
                .map_err(|m| at(table.span(), m))?;
            expect.push(expectation);
        }
        steps.push(Step {
            title: step.title.clone(),
            caption: step.caption.trim_end().to_owned(),
            actions,
            within,
            expect,
            at: line_column(source, span.start),
            action_at,
            expect_at,
        });
    }
    Ok(Scenario {
        title: raw.title.into_inner(),
        about: raw.about.trim_end().to_owned(),
        stack,
        start,
        steps,
    })
}

fn action_replica(action: &Action) -> Option<String> {
    match action {
        Action::Pin { replica, .. } => Some(replica.clone()),
        Action::Replica {
            target: Target::Id(id),
            ..
        } => Some(id.clone()),
        _ => None,
    }
}

fn expectation_replica(expectation: &Expectation) -> Option<String> {
    match expectation {
        Expectation::OnReplica { replica, .. } => Some(replica.clone()),
        Expectation::Stats { replica, .. } => replica.clone(),
        _ => None,
    }
}

/// A replica named by a number must be one of the stack's `1..=replicas`; one named by
/// address (`10.0.1.7:3000`) is a server of a stack stickyscope did not start.
fn check_replica_ref(replica: &Option<String>, replicas: usize) -> Result<(), String> {
    let Some(id) = replica else { return Ok(()) };
    if id.contains(':') {
        return Ok(());
    }
    match id.parse::<usize>() {
        Ok(n) if (1..=replicas).contains(&n) => Ok(()),
        _ => Err(format!(
            "there is no replica {id:?} here: the stack has replicas 1 to {replicas} at this step (or name a server by its address, host:port)"
        )),
    }
}

fn read_stack(raw: &RawStack) -> Result<StackNeeds, (Range<usize>, String)> {
    let replicas = match &raw.replicas {
        Some(n) => {
            let max = stickyscope_vocab::stack::MAX_REPLICAS as i64;
            if !(1..=max).contains(n.get_ref()) {
                return Err((n.span(), format!("replicas must be 1 to {max}")));
            }
            *n.get_ref() as usize
        }
        None => 3,
    };
    let adapter = match &raw.adapter {
        Some(a) => Adapter::from_label(a.get_ref()).ok_or_else(|| {
            (
                a.span(),
                format!("unknown adapter {:?}: memory, redis or none", a.get_ref()),
            )
        })?,
        None => Adapter::Memory,
    };
    let heartbeat_of = |d: &Option<Spanned<String>>, default: Duration| match d {
        Some(d) => stickyscope_contract::heartbeat::heartbeat_duration(d.get_ref())
            .map_err(|m| (d.span(), format!("heartbeat: {m}"))),
        None => Ok(default),
    };
    let heartbeat = Heartbeat {
        interval: heartbeat_of(&raw.heartbeat, Heartbeat::default().interval)?,
        timeout: heartbeat_of(&raw.ping_timeout, Heartbeat::default().timeout)?,
    };
    Ok(StackNeeds {
        replicas,
        adapter,
        heartbeat,
        adapter_at: (1, 1),
    })
}

fn read_start(raw: &RawStart) -> Result<Start, (Range<usize>, String)> {
    let sticky = match &raw.stickiness {
        Some(s) => on_off(s.get_ref()).map_err(|m| (s.span(), m))?,
        None => true,
    };
    let transport = match &raw.transport {
        Some(t) => transport(t.get_ref()).map_err(|m| (t.span(), m))?,
        None => TransportChoice::Polling,
    };
    let chat = match &raw.chat {
        Some(c) => match c.get_ref().as_str() {
            "stickyscope" => ChatDialect::Stickyscope,
            "seed" => ChatDialect::Seed,
            "none" => ChatDialect::None,
            other => {
                return Err((
                    c.span(),
                    format!("unknown chat {other:?}: stickyscope, seed or none"),
                ))
            }
        },
        None => ChatDialect::Stickyscope,
    };
    Ok(Start {
        sticky,
        transport,
        chat,
    })
}

/// The actions a step can do, by the key that names them.
const ACTIONS: &str = "stickiness, transport, adapter, heartbeat, pin, stop, kill, restart, unhealthy, healthy, add_replica, send, reconnect, wait";
/// The expectations a step can state, by the key that names them.
const EXPECTATIONS: &str = "connected, never_connects, on_replica, moved, one_replica, failures, delivered, not_delivered, stats";

/// A table read one key at a time: each key read is ticked off, and a key left over is an
/// error, so a typo is never ignored.
struct Fields<'a> {
    table: &'a toml::Table,
    read: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(table: &'a toml::Table) -> Self {
        Fields {
            table,
            read: Vec::new(),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn string(&mut self, key: &'static str) -> Result<Option<String>, String> {
        self.read.push(key);
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(toml::Value::Integer(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(format!("{key} must be text, not {}", other.type_str())),
        }
    }

    fn required(&mut self, key: &'static str) -> Result<String, String> {
        self.string(key)?.ok_or_else(|| format!("{key} is missing"))
    }

    fn count(&mut self, key: &'static str) -> Result<Option<u64>, String> {
        self.read.push(key);
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
            Some(other) => Err(format!("{key} must be a whole number ≥ 0, not {other}")),
        }
    }

    fn flag(&mut self, key: &'static str) -> Result<bool, String> {
        self.read.push(key);
        match self.table.get(key) {
            None => Ok(false),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(format!("{key} must be true or false, not {other}")),
        }
    }

    fn done(self) -> Result<(), String> {
        match self.table.keys().find(|k| !self.read.contains(&k.as_str())) {
            Some(extra) => Err(format!("{extra:?} does not belong here")),
            None => Ok(()),
        }
    }
}

fn user(name: &str) -> Result<String, String> {
    if USERS.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!("unknown user {name:?}: agent or visitor"))
    }
}

fn who(name: Option<String>) -> Result<Who, String> {
    match name.as_deref() {
        None | Some("both") => Ok(Who::Both),
        Some(name) => user(name).map(Who::One),
    }
}

fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?}: on or off")),
    }
}

fn transport(text: &str) -> Result<TransportChoice, String> {
    match text {
        "polling" => Ok(TransportChoice::Polling),
        "websocket" => Ok(TransportChoice::Websocket),
        "upgrade" => Ok(TransportChoice::Upgrade),
        other => Err(format!(
            "unknown transport {other:?}: polling, websocket or upgrade"
        )),
    }
}

fn duration(text: &str, what: &str) -> Result<Duration, String> {
    let range = Duration::ZERO..=MAX_STEP_TIME;
    stickyscope_contract::heartbeat::duration_in(text, &range).map_err(|m| format!("{what}: {m}"))
}

fn read_action(table: &toml::Table) -> Result<Action, String> {
    let mut f = Fields::new(table);
    let named: Vec<&str> = ACTIONS
        .split(", ")
        .filter(|k| table.contains_key(*k))
        .collect();
    let action = match named.as_slice() {
        [] => {
            return Err(format!(
                "unknown action: a step's `do` entry names one of {ACTIONS}"
            ))
        }
        [one] => *one,
        many => return Err(format!("one action per entry, not {}", many.join(" and "))),
    };
    let action = match action {
        "stickiness" => {
            let on = on_off(&f.required("stickiness")?)?;
            Action::Stickiness {
                who: who(f.string("user")?)?,
                on,
            }
        }
        "transport" => {
            let t = transport(&f.required("transport")?)?;
            Action::Transport {
                who: who(f.string("user")?)?,
                transport: t,
            }
        }
        "adapter" => Action::Adapter {
            on: on_off(&f.required("adapter")?)?,
        },
        "heartbeat" => {
            let interval =
                stickyscope_contract::heartbeat::heartbeat_duration(&f.required("heartbeat")?)
                    .map_err(|m| format!("heartbeat: {m}"))?;
            let timeout = match f.string("ping_timeout")? {
                Some(t) => stickyscope_contract::heartbeat::heartbeat_duration(&t)
                    .map_err(|m| format!("ping_timeout: {m}"))?,
                None => Duration::from_secs(7),
            };
            Action::Heartbeat { interval, timeout }
        }
        "pin" => Action::Pin {
            user: user(&f.required("pin")?)?,
            replica: f.required("replica")?,
        },
        "stop" | "kill" | "restart" | "unhealthy" | "healthy" => {
            let replica_action = match action {
                "stop" => ReplicaAction::Stop,
                "kill" => ReplicaAction::Kill,
                "restart" => ReplicaAction::Restart,
                "unhealthy" => ReplicaAction::Unhealthy,
                _ => ReplicaAction::Healthy,
            };
            let key: &'static str = match action {
                "stop" => "stop",
                "kill" => "kill",
                "restart" => "restart",
                "unhealthy" => "unhealthy",
                _ => "healthy",
            };
            f.read.push(key);
            let target = match table.get(key) {
                Some(toml::Value::String(id)) => Target::Id(id.clone()),
                Some(toml::Value::Integer(n)) => Target::Id(n.to_string()),
                Some(toml::Value::Table(t)) => match (t.get("holding"), t.len()) {
                    (Some(toml::Value::String(u)), 1) => Target::Holding(user(u)?),
                    _ => {
                        return Err(format!(
                            "{key} takes a replica (\"2\") or {{ holding = \"agent\" }}"
                        ))
                    }
                },
                _ => {
                    return Err(format!(
                        "{key} takes a replica (\"2\") or {{ holding = \"agent\" }}"
                    ))
                }
            };
            Action::Replica {
                action: replica_action,
                target,
            }
        }
        "add_replica" => {
            if !f.flag("add_replica")? {
                return Err("add_replica = true, or leave it out".into());
            }
            Action::AddReplica
        }
        "send" => Action::Send {
            user: user(&f.required("send")?)?,
            text: {
                let text = f.required("text")?;
                if text.is_empty() || text.len() > stickyscope_contract::chat::MAX_TEXT_BYTES {
                    return Err(format!(
                        "text must be 1 to {} bytes",
                        stickyscope_contract::chat::MAX_TEXT_BYTES
                    ));
                }
                text
            },
        },
        "reconnect" => Action::Reconnect {
            who: who(Some(f.required("reconnect")?))?,
        },
        _ => Action::Wait(duration(&f.required("wait")?, "wait")?),
    };
    f.done()?;
    Ok(action)
}

fn bounds(f: &mut Fields<'_>, default_at_least: Option<u64>) -> Result<Bounds, String> {
    let at_least = f.count("at_least")?;
    let at_most = f.count("at_most")?;
    let bounds = match (at_least, at_most) {
        (None, None) => Bounds {
            at_least: default_at_least,
            at_most: None,
        },
        (l, m) => Bounds {
            at_least: l,
            at_most: m,
        },
    };
    if let (Some(l), Some(m)) = (bounds.at_least, bounds.at_most) {
        if l > m {
            return Err(format!("at_least {l} is more than at_most {m}"));
        }
    }
    Ok(bounds)
}

fn read_expectation(table: &toml::Table) -> Result<Expectation, String> {
    let mut f = Fields::new(table);
    let named: Vec<&str> = EXPECTATIONS.split(", ").filter(|k| f.has(k)).collect();
    let kind = match named.as_slice() {
        [] => {
            return Err(format!(
                "unknown expectation: an `expect` entry names one of {EXPECTATIONS}"
            ))
        }
        [one] => *one,
        many => {
            return Err(format!(
                "one expectation per entry, not {}",
                many.join(" and ")
            ))
        }
    };
    let expectation = match kind {
        "connected" => Expectation::Connected(who(Some(f.required("connected")?))?),
        "never_connects" => Expectation::NeverConnects(who(Some(f.required("never_connects")?))?),
        "on_replica" => Expectation::OnReplica {
            replica: f.required("on_replica")?,
            user: user(&f.required("user")?)?,
        },
        "moved" => Expectation::Moved(user(&f.required("moved")?)?),
        "one_replica" => Expectation::OneReplica(user(&f.required("one_replica")?)?),
        "failures" => {
            let reason = f.required("failures")?;
            Expectation::Failures {
                reason: (reason != "any").then_some(reason),
                bounds: bounds(&mut f, Some(1))?,
            }
        }
        "delivered" => Expectation::Delivered {
            text: f.required("delivered")?,
            to: user(&f.required("to")?)?,
        },
        "not_delivered" => Expectation::NotDelivered {
            text: f.required("not_delivered")?,
            to: user(&f.required("to")?)?,
        },
        _ => Expectation::Stats {
            counter: Counter::parse(&f.required("stats")?)?,
            replica: f.string("replica")?,
            bounds: bounds(&mut f, Some(1))?,
        },
    };
    f.done()?;
    Ok(expectation)
}

/// What the stack a scenario runs on can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Replica controls, heartbeat and adapter (a stack stickyscope started).
    pub controls: bool,
    /// The replicas' `/stats` (stickyscope's replicas, started by it).
    pub stats: bool,
    /// Replicas known by number (`1`, `2`, …): pins and expectations may name them so.
    pub numbered_replicas: bool,
    /// Redis between replicas (the chain).
    pub redis_adapter: bool,
}

impl Scenario {
    /// Refuses, with the place in `file`, what this stack cannot do: nothing runs
    /// half-done.
    pub fn check_against(&self, file: &str, can: Capabilities) -> Result<(), ScenarioError> {
        let refuse = |(line, column): (usize, usize), message: String| ScenarioError {
            file: file.to_owned(),
            line,
            column,
            message,
        };
        if self.stack.adapter == Adapter::Redis && can.controls && !can.redis_adapter {
            return Err(refuse(
                self.stack.adapter_at,
                "adapter \"redis\" needs the local chain (--chain); the embedded stack's is \"memory\"".into(),
            ));
        }
        for step in &self.steps {
            for (action, at) in step.actions.iter().zip(&step.action_at) {
                if action.needs_controls() && !can.controls {
                    return Err(refuse(
                        *at,
                        format!("cannot {action} here: only on a stack stickyscope started (the embedded stack or --chain), not on --gateway"),
                    ));
                }
                if let Action::Pin { replica, .. } = action {
                    if !can.numbered_replicas && !replica.contains(':') {
                        return Err(refuse(
                            *at,
                            format!("cannot pin to replica {replica:?} here: on a stack stickyscope did not start, name the server by its address (host:port)"),
                        ));
                    }
                    if can.numbered_replicas && replica.contains(':') {
                        return Err(refuse(
                            *at,
                            format!("cannot pin to {replica:?} here: this stack's replicas are named by number"),
                        ));
                    }
                }
            }
            for (expectation, at) in step.expect.iter().zip(&step.expect_at) {
                if let Some(replica) = expectation_replica(expectation) {
                    if can.numbered_replicas && replica.contains(':') {
                        return Err(refuse(
                            *at,
                            format!("{expectation} can never hold here: this stack's replicas are named by number"),
                        ));
                    }
                }
                if expectation.needs_stats() && !can.stats {
                    return Err(refuse(
                        *at,
                        format!("cannot check {expectation} here: /stats is read from stacks stickyscope started only"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// 1-based line and column of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset.min(source.len())).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"title = "t"

[[step]]
title = "one"
do = [{ stickiness = "off", user = "agent" }, { kill = { holding = "visitor" } }, { wait = "1s" }]
within = "5s"
expect = [{ failures = "Session ID unknown" }, { stats = "rejected.Session ID unknown", replica = 2, at_most = 3 }]
"#;

    fn error(source: &str) -> ScenarioError {
        parse("f.toml", source).expect_err("refused")
    }

    #[test]
    fn a_good_file_reads_with_its_defaults() {
        let s = parse("f.toml", GOOD).unwrap();
        assert_eq!(s.stack.replicas, 3);
        assert!(s.start.sticky);
        let step = &s.steps[0];
        assert_eq!(step.within, Duration::from_secs(5));
        assert_eq!(
            step.actions,
            [
                Action::Stickiness {
                    who: Who::One("agent".into()),
                    on: false
                },
                Action::Replica {
                    action: ReplicaAction::Kill,
                    target: Target::Holding("visitor".into())
                },
                Action::Wait(Duration::from_secs(1)),
            ]
        );
        assert_eq!(
            step.expect[0],
            Expectation::Failures {
                reason: Some("Session ID unknown".into()),
                bounds: Bounds {
                    at_least: Some(1),
                    at_most: None
                }
            }
        );
        assert_eq!(step.at, (3, 1));
        assert_eq!(step.action_at[1], (5, 47));
        assert_eq!(step.expect_at[1], (7, 48));
    }

    #[test]
    fn bad_files_are_refused_with_the_place_and_the_reason() {
        let cases: [(&str, (usize, usize), &str); 9] = [
            ("title = ", (1, 9), "string"),
            (
                "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ jump = 1 }]\n",
                (4, 7),
                "unknown action",
            ),
            (
                "title = \"t\"\n[[step]]\ntitle = \"s\"\nexpect = [{ happy = true }]\n",
                (4, 11),
                "unknown expectation",
            ),
            (
                "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ kill = \"4\" }]\n",
                (4, 7),
                "no replica \"4\"",
            ),
            (
                "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ add_replica = true }, { kill = \"4\" }]\n",
                (0, 0),
                "",
            ),
            (
                "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ stickiness = \"off\", usr = \"agent\" }]\n",
                (4, 7),
                "\"usr\" does not belong here",
            ),
            (
                "title = \"t\"\n[[step]]\ntitle = \"s\"\nwithin = \"forever\"\n",
                (4, 10),
                "within",
            ),
            ("title = \"t\"\n", (1, 1), "no steps"),
            (
                "title = \"t\"\n[stack]\nreplicas = 0\n[[step]]\ntitle = \"s\"\n",
                (3, 12),
                "replicas must be 1 to 64",
            ),
        ];
        for (source, at, words) in cases {
            if words.is_empty() {
                // Replica 4 exists once one was added.
                assert!(parse("f.toml", source).is_ok(), "{source}");
                continue;
            }
            let e = error(source);
            assert_eq!((e.line, e.column), at, "{source}: {e}");
            assert!(e.message.contains(words), "{source}: {e}");
            assert!(e
                .to_string()
                .starts_with(&format!("f.toml:{}:{}: ", at.0, at.1)));
        }
    }

    #[test]
    fn what_a_stack_cannot_do_is_refused_before_anything_runs() {
        let s = parse("f.toml", GOOD).unwrap();
        let gateway = Capabilities {
            controls: false,
            stats: false,
            numbered_replicas: false,
            redis_adapter: false,
        };
        let e = s.check_against("f.toml", gateway).unwrap_err();
        assert_eq!((e.line, e.column), (5, 47));
        assert!(
            e.message.contains("kill the replica holding visitor"),
            "{e}"
        );
        let pin = parse(
            "p.toml",
            "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ pin = \"agent\", replica = \"2\" }]\n",
        )
        .unwrap();
        assert!(pin.check_against("p.toml", gateway).is_err());
        let by_address = parse(
            "p.toml",
            "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ pin = \"agent\", replica = \"10.0.0.7:3000\" }]\n",
        )
        .unwrap();
        assert!(by_address.check_against("p.toml", gateway).is_ok());
        let embedded = Capabilities {
            controls: true,
            stats: true,
            numbered_replicas: true,
            redis_adapter: false,
        };
        let e = by_address.check_against("p.toml", embedded).unwrap_err();
        assert!(e.message.contains("named by number"), "{e}");
    }

    #[test]
    fn replica_controls_take_numbers_and_stop_at_the_cap() {
        let e =
            error("title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ kill = \"10.0.0.7:3000\" }]\n");
        assert!(e.message.contains("named by number"), "{e}");
        let adds = vec!["{ add_replica = true }"; 62].join(", ");
        let source = format!("title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{adds}]\n");
        assert!(parse("f.toml", &source).is_err(), "3 + 62 > 64");
        let adds = vec!["{ add_replica = true }"; 61].join(", ");
        let source = format!("title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{adds}]\n");
        assert!(parse("f.toml", &source).is_ok(), "3 + 61 = 64");
    }
}
