//! Reading a scenario file into the types of [`super::format`]: the TOML is deserialized
//! with serde into raw tables that keep each value's place (`toml::Spanned`), then checked
//! whole — every action and expectation understood and no key left over, every user one
//! that exists, every replica named by number one that exists at its step (counting the
//! `add_replica`s before it), every duration in range — so that a bad file is refused with
//! its file, line and column (a [`ScenarioError`]) before anything runs. Pure.
//!
//! Whether the stack at hand can play what was read is [`super::capabilities`]' question.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use stickyscope_contract::chat::USERS;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::events::{ChatDialect, ReplicaAction, TransportChoice};
use stickyscope_vocab::stack::Adapter;

use super::format::{
    Action, Bounds, Counter, Expectation, Scenario, ScenarioError, StackNeeds, Start, Step, Target,
    Who, DEFAULT_WITHIN, MAX_STEPS, MAX_STEP_TIME,
};

/// The file as TOML gives it: each value the checks refuse keeps its place.
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

/// A step: its actions and expectations stay tables, read one key at a time by [`Fields`].
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

/// The file being read, to say where in it something is wrong.
struct Source<'a> {
    /// Its name, for errors.
    file: &'a str,
    /// Its text.
    text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column of byte `offset`.
    fn line_column(&self, offset: usize) -> (usize, usize) {
        line_column(self.text, offset)
    }

    /// The error `message` at the start of `span`.
    fn error(&self, span: Range<usize>, message: String) -> ScenarioError {
        let (line, column) = self.line_column(span.start);
        ScenarioError {
            file: self.file.to_owned(),
            line,
            column,
            message,
        }
    }
}

/// Reads a scenario: `file` names it in errors.
pub fn parse(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
    let src = Source { file, text: source };
    let raw: RawScenario = toml::from_str(source).map_err(|e| {
        src.error(
            e.span().unwrap_or(0..0),
            e.message().trim_end().replace('\n', " "),
        )
    })?;
    if raw.title.get_ref().trim().is_empty() {
        return Err(src.error(raw.title.span(), "the title is empty".into()));
    }
    let stack = match &raw.stack {
        Some(stack) => {
            let mut needs = read_stack(stack.get_ref()).map_err(|(s, m)| src.error(s, m))?;
            if let Some(adapter) = &stack.get_ref().adapter {
                needs.adapter_at = src.line_column(adapter.span().start);
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
        Some(start) => read_start(start.get_ref()).map_err(|(s, m)| src.error(s, m))?,
        None => Start {
            sticky: true,
            transport: TransportChoice::Polling,
            chat: ChatDialect::Stickyscope,
        },
    };
    if raw.steps.is_empty() {
        return Err(src.error(0..0, "no steps: add at least one [[step]]".into()));
    }
    if raw.steps.len() > MAX_STEPS {
        return Err(src.error(
            raw.steps[MAX_STEPS].span(),
            format!("more than {MAX_STEPS} steps"),
        ));
    }
    // Replica ids that exist at each point: 1..=N, and one more per `add_replica`.
    let mut replicas = stack.replicas;
    let mut steps = Vec::new();
    for raw_step in &raw.steps {
        steps.push(read_step(raw_step, &mut replicas, &src)?);
    }
    Ok(Scenario {
        title: raw.title.into_inner(),
        about: raw.about.trim_end().to_owned(),
        stack,
        start,
        steps,
    })
}

/// One step; `replicas` is how many exist as it starts, and grows with its `add_replica`s.
fn read_step(
    raw_step: &Spanned<RawStep>,
    replicas: &mut usize,
    src: &Source<'_>,
) -> Result<Step, ScenarioError> {
    let step = raw_step.get_ref();
    let mut actions = Vec::new();
    let mut action_at = Vec::new();
    for table in &step.actions {
        action_at.push(src.line_column(table.span().start));
        let action = read_action(table.get_ref()).map_err(|m| src.error(table.span(), m))?;
        count_replicas(&action, replicas).map_err(|m| src.error(table.span(), m))?;
        actions.push(action);
    }
    let within = match &step.within {
        Some(w) => duration(w.get_ref(), "within").map_err(|m| src.error(w.span(), m))?,
        None => DEFAULT_WITHIN,
    };
    let mut expect = Vec::new();
    let mut expect_at = Vec::new();
    for table in &step.expect {
        expect_at.push(src.line_column(table.span().start));
        let expectation =
            read_expectation(table.get_ref()).map_err(|m| src.error(table.span(), m))?;
        check_replica_ref(expectation.named_replica(), *replicas)
            .map_err(|m| src.error(table.span(), m))?;
        expect.push(expectation);
    }
    Ok(Step {
        title: step.title.clone(),
        caption: step.caption.trim_end().to_owned(),
        actions,
        within,
        expect,
        at: src.line_column(raw_step.span().start),
        action_at,
        expect_at,
    })
}

/// Counts the replica an `add_replica` adds (up to the stack's limit), and checks the one
/// an action names: replica controls take a number, and it must exist by then.
fn count_replicas(action: &Action, replicas: &mut usize) -> Result<(), String> {
    if let Action::AddReplica = action {
        *replicas += 1;
        if *replicas > stickyscope_vocab::stack::MAX_REPLICAS {
            return Err(format!(
                "one replica too many: a stack has at most {}",
                stickyscope_vocab::stack::MAX_REPLICAS
            ));
        }
    }
    if let Action::Replica {
        target: Target::Id(id),
        ..
    } = action
    {
        if id.contains(':') {
            return Err(format!("{action}: replica controls work on stickyscope's own replicas, named by number, not on a server at an address"));
        }
    }
    check_replica_ref(action.named_replica(), *replicas)
}

/// A replica named by a number must be one of the stack's `1..=replicas`; one named by
/// address (`10.0.1.7:3000`) is a server of a stack stickyscope did not start.
fn check_replica_ref(replica: Option<&str>, replicas: usize) -> Result<(), String> {
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

/// The one key of `keys` (a list like [`ACTIONS`]) that names what `table` is: an action or
/// an expectation (`what`), as `entry` (where it is written) must.
fn kind_of(
    table: &toml::Table,
    keys: &'static str,
    what: &str,
    entry: &str,
) -> Result<&'static str, String> {
    let named: Vec<&'static str> = keys
        .split(", ")
        .filter(|k| table.contains_key(*k))
        .collect();
    match named.as_slice() {
        [] => Err(format!("unknown {what}: {entry} names one of {keys}")),
        [one] => Ok(*one),
        many => Err(format!("one {what} per entry, not {}", many.join(" and "))),
    }
}

fn read_action(table: &toml::Table) -> Result<Action, String> {
    let mut f = Fields::new(table);
    let kind = kind_of(table, ACTIONS, "action", "a step's `do` entry")?;
    let action = match kind {
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
        "heartbeat" => read_heartbeat(&mut f)?,
        "pin" => Action::Pin {
            user: user(&f.required("pin")?)?,
            replica: f.required("replica")?,
        },
        "stop" | "kill" | "restart" | "unhealthy" | "healthy" => Action::Replica {
            action: replica_action(kind),
            target: target(&mut f, kind)?,
        },
        "add_replica" => {
            if !f.flag("add_replica")? {
                return Err("add_replica = true, or leave it out".into());
            }
            Action::AddReplica
        }
        "send" => Action::Send {
            user: user(&f.required("send")?)?,
            text: chat_text(f.required("text")?)?,
        },
        "reconnect" => Action::Reconnect {
            who: who(Some(f.required("reconnect")?))?,
        },
        _ => Action::Wait(duration(&f.required("wait")?, "wait")?),
    };
    f.done()?;
    Ok(action)
}

/// `{ heartbeat = "3s", ping_timeout = "7s" }`: pingInterval, and pingTimeout (7 s if not
/// given).
fn read_heartbeat(f: &mut Fields<'_>) -> Result<Action, String> {
    let interval = stickyscope_contract::heartbeat::heartbeat_duration(&f.required("heartbeat")?)
        .map_err(|m| format!("heartbeat: {m}"))?;
    let timeout = match f.string("ping_timeout")? {
        Some(t) => stickyscope_contract::heartbeat::heartbeat_duration(&t)
            .map_err(|m| format!("ping_timeout: {m}"))?,
        None => Duration::from_secs(7),
    };
    Ok(Action::Heartbeat { interval, timeout })
}

/// The replica action a key names (`stop`, `kill`, `restart`, `unhealthy`, `healthy`).
fn replica_action(key: &str) -> ReplicaAction {
    match key {
        "stop" => ReplicaAction::Stop,
        "kill" => ReplicaAction::Kill,
        "restart" => ReplicaAction::Restart,
        "unhealthy" => ReplicaAction::Unhealthy,
        _ => ReplicaAction::Healthy,
    }
}

/// The replica a replica action's `key` is for: by id (`"2"`, `2`), or
/// `{ holding = "agent" }`.
fn target(f: &mut Fields<'_>, key: &'static str) -> Result<Target, String> {
    f.read.push(key);
    let wrong = || format!("{key} takes a replica (\"2\") or {{ holding = \"agent\" }}");
    match f.table.get(key) {
        Some(toml::Value::String(id)) => Ok(Target::Id(id.clone())),
        Some(toml::Value::Integer(n)) => Ok(Target::Id(n.to_string())),
        Some(toml::Value::Table(t)) => match (t.get("holding"), t.len()) {
            (Some(toml::Value::String(u)), 1) => Ok(Target::Holding(user(u)?)),
            _ => Err(wrong()),
        },
        _ => Err(wrong()),
    }
}

/// A chat message's text: not empty, and not longer than the chat takes.
fn chat_text(text: String) -> Result<String, String> {
    if text.is_empty() || text.len() > stickyscope_contract::chat::MAX_TEXT_BYTES {
        return Err(format!(
            "text must be 1 to {} bytes",
            stickyscope_contract::chat::MAX_TEXT_BYTES
        ));
    }
    Ok(text)
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
    let kind = kind_of(table, EXPECTATIONS, "expectation", "an `expect` entry")?;
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
            counter: counter(&f.required("stats")?)?,
            replica: f.string("replica")?,
            bounds: bounds(&mut f, Some(1))?,
        },
    };
    f.done()?;
    Ok(expectation)
}

/// A `/stats` counter by its name (`requests.poll_get`, `rejected.REASON`, …).
fn counter(text: &str) -> Result<Counter, String> {
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

/// 1-based line and column of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset.min(source.len())).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A good file: read here, and checked against stacks in `capabilities`' tests.
    pub(in crate::scenario) const GOOD: &str = r#"title = "t"

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
