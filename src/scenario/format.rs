//! What a scenario is, once read: its stack, how the users start, and its steps — each a
//! list of [`Action`]s, a caption, and [`Expectation`]s that must hold within a time — with
//! where each part stands in its file (line, column), so that later refusals can point there.
//! Pure types, their Display (the words the window, the reports and the errors use) and
//! the few limits of the format.
//!
//! [`super::reader`] reads them from a TOML file like this one; [`super::capabilities`]
//! checks one against what a stack can do.
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

use std::time::Duration;

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

    /// The replica it names by id or address, if any: a pin's, or a replica action's by id
    /// (not one named by the user it holds).
    pub fn named_replica(&self) -> Option<&str> {
        match self {
            Action::Pin { replica, .. } => Some(replica),
            Action::Replica {
                target: Target::Id(id),
                ..
            } => Some(id),
            _ => None,
        }
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

    /// The replica it names by id or address, if any.
    pub fn named_replica(&self) -> Option<&str> {
        match self {
            Expectation::OnReplica { replica, .. } => Some(replica),
            Expectation::Stats { replica, .. } => replica.as_deref(),
            _ => None,
        }
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

/// Why a scenario file was refused — by [`super::reader`], or as more than its stack can do
/// by [`super::capabilities`]: where, and what.
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
