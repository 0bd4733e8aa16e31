//! Plays a scenario's steps: turns each step's actions into the conductor's commands at the
//! right moments (a wait waits; a replica operation is finished before the next action;
//! `/stats` is read at the step's start and while a step needs it), folds the event stream
//! into the step's [`StepCheck`], and says when the step is over. Going to a step — next,
//! back, or the same one again — first puts the stack back into the state that step starts
//! from. Pure: time is passed in; the headless runner and the window drive the same player.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::check::{Outcome, StepCheck};
use super::format::{Action, Scenario, Step, Target, Who};
use super::report::StepReport;
use stickyscope_contract::chat::USERS;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::events::SessionState;
use stickyscope_vocab::events::{Command, Event, ReplicaAction, StackOperation, TransportChoice};
use stickyscope_vocab::stack::Adapter;
use stickyscope_vocab::topology::Topology;

/// How often `/stats` is read while a step needs it.
pub const STATS_EVERY: Duration = Duration::from_millis(500);
/// How long a step waits for the counters at its start.
pub const STATS_BASELINE_WAIT: Duration = Duration::from_secs(5);
/// How long a replica operation may take (a graceful stop drains its connections).
pub const STACK_OP_BOUND: Duration = Duration::from_secs(120);
/// How long the counters may take to answer before a step is judged.
pub const LAST_STATS_WAIT: Duration = Duration::from_secs(2);

/// What the stack is set to, as far as the scenario's actions (and the user's own, when
/// told) go.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Stickiness per user.
    pub sticky: BTreeMap<String, bool>,
    /// Transport per user.
    pub transport: BTreeMap<String, TransportChoice>,
    /// Whether the replicas have an adapter between them.
    pub adapter_on: bool,
    /// pingInterval and pingTimeout.
    pub heartbeat: Heartbeat,
    /// The replica each user was last pinned to.
    pub pins: BTreeMap<String, String>,
    /// Replicas by id, and whether each should be running.
    pub replicas: BTreeMap<String, bool>,
    /// Replicas made unhealthy (`/healthz` failing) and not made healthy since.
    pub unhealthy: std::collections::BTreeSet<String>,
}

impl Settings {
    /// What `scenario` starts from.
    pub fn initial(scenario: &Scenario) -> Self {
        Settings {
            sticky: USERS
                .iter()
                .map(|u| ((*u).to_owned(), scenario.start.sticky))
                .collect(),
            transport: USERS
                .iter()
                .map(|u| ((*u).to_owned(), scenario.start.transport))
                .collect(),
            adapter_on: scenario.stack.adapter != Adapter::None,
            heartbeat: scenario.stack.heartbeat,
            pins: BTreeMap::new(),
            replicas: (1..=scenario.stack.replicas)
                .map(|n| (n.to_string(), true))
                .collect(),
            unhealthy: Default::default(),
        }
    }

    /// Takes in what `action` sets; `resolved` is the replica an action on "the replica
    /// holding a user" went to, when it ran.
    pub fn apply(&mut self, action: &Action, resolved: Option<&str>) {
        match action {
            Action::Stickiness { who, on } => {
                for u in who.users() {
                    self.sticky.insert(u, *on);
                }
            }
            Action::Transport { who, transport } => {
                for u in who.users() {
                    self.transport.insert(u, *transport);
                }
            }
            Action::Adapter { on } => self.adapter_on = *on,
            Action::Heartbeat { interval, timeout } => {
                self.heartbeat = Heartbeat {
                    interval: *interval,
                    timeout: *timeout,
                }
            }
            Action::Pin { user, replica } => {
                self.sticky.insert(user.clone(), true);
                self.pins.insert(user.clone(), replica.clone());
            }
            Action::Replica { action, target } => {
                let id = match target {
                    Target::Id(id) => Some(id.as_str()),
                    Target::Holding(_) => resolved,
                };
                if let Some(id) = id {
                    match action {
                        ReplicaAction::Stop | ReplicaAction::Kill => {
                            self.replicas.insert(id.to_owned(), false);
                        }
                        ReplicaAction::Restart => {
                            self.replicas.insert(id.to_owned(), true);
                            self.unhealthy.remove(id);
                        }
                        ReplicaAction::Unhealthy => {
                            self.unhealthy.insert(id.to_owned());
                        }
                        ReplicaAction::Healthy => {
                            self.unhealthy.remove(id);
                        }
                    }
                }
            }
            Action::AddReplica => {
                let next = self.replicas.len() + 1;
                self.replicas.insert(next.to_string(), true);
            }
            Action::Send { .. } | Action::Reconnect { .. } | Action::Wait(_) => {}
        }
    }

    /// Takes in a command the user gave by hand.
    pub fn note(&mut self, command: &Command) {
        match command {
            Command::SetSticky { user, on } => {
                for u in Who::from_option(user).users() {
                    self.sticky.insert(u, *on);
                }
            }
            Command::SetTransport { user, transport } => {
                for u in Who::from_option(user).users() {
                    self.transport.insert(u, *transport);
                }
            }
            Command::ConfigureStack { heartbeat, adapter } => {
                if let Some(h) = heartbeat {
                    self.heartbeat = *h;
                }
                if let Some(a) = adapter {
                    self.adapter_on = *a != Adapter::None;
                }
            }
            Command::Replica { id, action } => {
                self.apply(
                    &Action::Replica {
                        action: *action,
                        target: Target::Id(id.clone()),
                    },
                    None,
                );
            }
            Command::AddReplica => self.apply(&Action::AddReplica, None),
            Command::Pin { user, replica } => {
                self.pins.insert(user.clone(), replica.clone());
            }
            _ => {}
        }
    }

    /// The actions that take the stack from `self` (what was last set) to `target`: each
    /// setting that differs; with replica controls, the adapter and heartbeat, replicas
    /// started, stopped, added and made healthy or not (running as last set, else as the
    /// topology shows); then, when anything was restored, every session started afresh —
    /// pinned users pinned again, the others reconnected — so that the step starts from
    /// new sessions on the restored stack.
    pub fn restore_to(
        &self,
        target: &Settings,
        topology: &Topology,
        controls: bool,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for user in USERS {
            let one = || Who::One(user.to_owned());
            if let Some(&on) = target.sticky.get(user) {
                if self.sticky.get(user) != Some(&on) {
                    actions.push(Action::Stickiness { who: one(), on });
                }
            }
            if let Some(&t) = target.transport.get(user) {
                if self.transport.get(user) != Some(&t) {
                    actions.push(Action::Transport {
                        who: one(),
                        transport: t,
                    });
                }
            }
        }
        if controls {
            actions.extend(self.restore_stack(target, topology));
        }
        if actions.is_empty() {
            return actions;
        }
        for user in USERS {
            match target.pins.get(user) {
                Some(replica) if controls || replica.contains(':') => actions.push(Action::Pin {
                    user: user.to_owned(),
                    replica: replica.clone(),
                }),
                _ => actions.push(Action::Reconnect {
                    who: Who::One(user.to_owned()),
                }),
            }
        }
        actions
    }

    /// Adapter, heartbeat and replicas, from `self` to `target`.
    fn restore_stack(&self, target: &Settings, topology: &Topology) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.adapter_on != target.adapter_on {
            actions.push(Action::Adapter {
                on: target.adapter_on,
            });
        }
        if self.heartbeat != target.heartbeat {
            actions.push(Action::Heartbeat {
                interval: target.heartbeat.interval,
                timeout: target.heartbeat.timeout,
            });
        }
        // Whether a replica runs: as last set, else as the topology shows (where "up" also
        // needs it healthy).
        let listed = |id: &str| {
            topology
                .replicas
                .iter()
                .find(|r| r.id.as_deref() == Some(id))
        };
        let running = |id: &str| {
            self.replicas
                .get(id)
                .copied()
                .or_else(|| listed(id).map(|r| r.up))
        };
        let replica = |action, id: &str| Action::Replica {
            action,
            target: Target::Id(id.to_owned()),
        };
        for (id, &want) in &target.replicas {
            let exists = self.replicas.contains_key(id) || listed(id).is_some();
            match (want, exists, running(id)) {
                (true, false, _) => actions.push(Action::AddReplica),
                (true, true, Some(false)) => actions.push(replica(ReplicaAction::Restart, id)),
                (false, true, Some(true)) => actions.push(replica(ReplicaAction::Stop, id)),
                _ => {}
            }
            let want_healthy = !target.unhealthy.contains(id);
            if want && want_healthy && self.unhealthy.contains(id) {
                actions.push(replica(ReplicaAction::Healthy, id));
            }
            if want && !want_healthy && !self.unhealthy.contains(id) {
                actions.push(replica(ReplicaAction::Unhealthy, id));
            }
        }
        // Replicas beyond the target's (added later, or there before) are stopped.
        let extra: std::collections::BTreeSet<&String> = self
            .replicas
            .iter()
            .filter(|(_, up)| **up)
            .map(|(id, _)| id)
            .chain(
                topology
                    .replicas
                    .iter()
                    .filter(|r| r.up)
                    .filter_map(|r| r.id.as_ref()),
            )
            .filter(|id| !target.replicas.contains_key(*id))
            .collect();
        for id in extra {
            actions.push(replica(ReplicaAction::Stop, id));
        }
        actions
    }
}

impl Who {
    /// `None` means both.
    pub fn from_option(user: &Option<String>) -> Who {
        match user {
            Some(u) => Who::One(u.clone()),
            None => Who::Both,
        }
    }
}

/// What holds the step's actions back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Blocked {
    /// Nothing.
    No,
    /// The counters at the step's start, until this time.
    StatsBaseline(Instant),
    /// A wait action, until this time.
    Waiting(Instant),
    /// This replica operation (of this action), until it is done or this time.
    StackOp(StackOperation, String, Instant),
}

/// Where the step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Putting the stack back into the state the step starts from.
    Restoring,
    /// Doing its actions.
    Acting,
    /// Watching until every expectation is decided or this time.
    Watching(Instant),
    /// Reading the counters once more before judging, until this time.
    LastStats(Instant),
    /// Over.
    Done,
}

/// A scenario being played.
#[derive(Debug)]
pub struct Player {
    scenario: Scenario,
    /// Whether the stack has replica controls (and `/stats`).
    controls: bool,
    step: usize,
    started: Instant,
    /// An instant and the wall-clock time then (ms since the Unix epoch): wire records are
    /// stamped by the wall clock, the player's steps by instants.
    wall_anchor: (Instant, u64),
    queue: VecDeque<Action>,
    blocked: Blocked,
    phase: Phase,
    check: StepCheck,
    /// The outcomes as judged when the step ended (later events do not change them).
    judged: Option<Vec<Outcome>>,
    action_errors: Vec<String>,
    next_stats: Instant,
    /// What was last set.
    applied: Settings,
    /// The replica each "holding" action went to, by (step, action).
    resolved: BTreeMap<(usize, usize), String>,
    /// Which action of the step runs next.
    next_action: usize,
    /// Users whose session the restore started afresh.
    restored_users: Vec<String>,
    states: BTreeMap<String, SessionState>,
    last_replica: BTreeMap<String, Option<String>>,
    topology: Topology,
    /// Whether the step's time ran out before every expectation was decided.
    time_up: bool,
    /// Whether the counters answered after the step stopped watching.
    stats_seen_at_judging: bool,
}

impl Player {
    /// A player of `scenario` on a stack started as its `[stack]` and `[start]` say, at its
    /// first step; `controls` says whether the stack has replica controls.
    pub fn new(scenario: Scenario, controls: bool, now: Instant) -> Self {
        let applied = Settings::initial(&scenario);
        Self::starting_from(
            scenario,
            controls,
            applied,
            Topology::default(),
            BTreeMap::new(),
            now,
        )
    }

    /// A player of `scenario` on a stack already running, set as `current` says, with this
    /// topology and these session states: its first step starts by putting the stack into
    /// the state the scenario starts from.
    pub fn starting_from(
        scenario: Scenario,
        controls: bool,
        current: Settings,
        topology: Topology,
        states: BTreeMap<String, SessionState>,
        now: Instant,
    ) -> Self {
        let last_replica = states
            .iter()
            .filter_map(|(u, s)| s.replica().map(|r| (u.clone(), Some(r.to_owned()))))
            .collect();
        let mut player = Player {
            controls,
            step: 0,
            started: now,
            wall_anchor: (now, stickyscope_vocab::record::now_ms()),
            queue: VecDeque::new(),
            blocked: Blocked::No,
            phase: Phase::Done,
            check: StepCheck::new(Vec::new(), BTreeMap::new(), BTreeMap::new()),
            judged: None,
            action_errors: Vec::new(),
            next_stats: now,
            applied: current,
            resolved: BTreeMap::new(),
            next_action: 0,
            restored_users: Vec::new(),
            states,
            last_replica,
            topology,
            time_up: false,
            stats_seen_at_judging: false,
            scenario,
        };
        player.go_to(0, now);
        player
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The current step's index (0-based).
    pub fn step_index(&self) -> usize {
        self.step
    }

    /// The current step.
    pub fn step(&self) -> &Step {
        &self.scenario.steps[self.step]
    }

    /// Goes to step `n` (clamped): the stack is first put back into the state that step
    /// starts from (and, if anything had to be put back, every session starts afresh);
    /// then its expectations are watched anew and its actions run.
    pub fn go_to(&mut self, n: usize, now: Instant) {
        let n = n.min(self.scenario.steps.len().saturating_sub(1));
        self.step = n;
        self.started = now;
        let target = self.settings_before(n);
        let restore = self
            .applied
            .restore_to(&target, &self.topology, self.controls);
        self.restored_users = restore
            .iter()
            .filter_map(|a| match a {
                Action::Pin { user, .. } => Some(vec![user.clone()]),
                Action::Reconnect { who } => Some(who.users()),
                _ => None,
            })
            .flatten()
            .collect();
        self.queue = restore.into();
        self.next_action = 0;
        self.judged = None;
        self.action_errors.clear();
        self.time_up = false;
        self.blocked = Blocked::No;
        self.phase = Phase::Restoring;
    }

    /// The restore is done: the step proper begins, its check watching from now.
    fn begin_step(&mut self, now: Instant) {
        let step = &self.scenario.steps[self.step];
        let (anchor, anchor_ms) = self.wall_anchor;
        let began_ms = anchor_ms + now.saturating_duration_since(anchor).as_millis() as u64;
        self.check = StepCheck::new(
            step.expect.clone(),
            self.states.clone(),
            self.last_replica.clone(),
        )
        .since_ms(began_ms);
        // Sessions the restore started afresh count once their new session forms.
        for user in std::mem::take(&mut self.restored_users) {
            self.check.restarts(&user);
        }
        self.queue = step.actions.iter().cloned().collect();
        self.next_action = 0;
        self.phase = Phase::Acting;
        self.blocked = if self.check.needs_stats() {
            Blocked::StatsBaseline(now + STATS_BASELINE_WAIT)
        } else {
            Blocked::No
        };
        self.next_stats = now;
    }

    /// The settings step `n` starts from: the start, and every action of the steps before.
    fn settings_before(&self, n: usize) -> Settings {
        let mut settings = Settings::initial(&self.scenario);
        for (i, step) in self.scenario.steps.iter().take(n).enumerate() {
            for (j, action) in step.actions.iter().enumerate() {
                settings.apply(action, self.resolved.get(&(i, j)).map(String::as_str));
            }
        }
        settings
    }

    /// Takes in a command the user gave by hand, so that going to a step later knows what
    /// to put back.
    pub fn note_manual(&mut self, command: &Command) {
        self.applied.note(command);
    }

    /// Folds an event in.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Session { user, state } => {
                if let SessionState::Connected {
                    replica: Some(r), ..
                } = state
                {
                    self.last_replica.insert(user.clone(), Some(r.clone()));
                }
                self.states.insert(user.clone(), state.clone());
            }
            Event::Topology(topology) => self.topology = topology.clone(),
            Event::StackDone { op, error } => {
                if let Blocked::StackOp(awaited, action, _) = &self.blocked {
                    if awaited == op {
                        if let Some(error) = error {
                            self.action_errors.push(format!("{action}: {error}"));
                        }
                        self.blocked = Blocked::No;
                    }
                }
            }
            Event::Stats(_) => {
                if let Blocked::StatsBaseline(_) = self.blocked {
                    self.blocked = Blocked::No;
                }
                if let Phase::LastStats(_) = self.phase {
                    self.stats_seen_at_judging = true;
                }
            }
            _ => {}
        }
        if self.judged.is_none() {
            self.check.observe(event);
        }
    }

    /// The commands to give now; call again at [`Player::next_wake`] or after an event.
    pub fn poll(&mut self, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        loop {
            match self.phase {
                Phase::Restoring | Phase::Acting => {
                    match &self.blocked {
                        Blocked::No => {}
                        Blocked::StatsBaseline(until) => {
                            if now >= self.next_stats && now < *until {
                                out.push(Command::FetchStats);
                                self.next_stats = *until;
                            }
                            if now < *until {
                                return out;
                            }
                        }
                        Blocked::Waiting(until) => {
                            if now < *until {
                                return out;
                            }
                        }
                        Blocked::StackOp(_, action, until) => {
                            if now < *until {
                                return out;
                            }
                            self.action_errors.push(format!(
                                "{action}: not done within {} s",
                                STACK_OP_BOUND.as_secs()
                            ));
                        }
                    }
                    self.blocked = Blocked::No;
                    let Some(action) = self.queue.pop_front() else {
                        if self.phase == Phase::Restoring {
                            self.begin_step(now);
                        } else {
                            self.phase = Phase::Watching(now + self.step().within);
                            self.next_stats = now;
                        }
                        continue;
                    };
                    let number = (self.phase == Phase::Acting).then(|| {
                        self.next_action += 1;
                        self.next_action - 1
                    });
                    out.extend(self.act(&action, number, now));
                }
                Phase::Watching(deadline) => {
                    if self.check.decided() || now >= deadline {
                        self.time_up = now >= deadline;
                        if self.check.needs_stats() {
                            out.push(Command::FetchStats);
                            self.phase = Phase::LastStats(now + LAST_STATS_WAIT);
                            self.stats_seen_at_judging = false;
                        } else {
                            self.finish();
                        }
                        continue;
                    }
                    if self.check.needs_stats() && now >= self.next_stats {
                        out.push(Command::FetchStats);
                        self.next_stats = now + STATS_EVERY;
                    }
                    return out;
                }
                Phase::LastStats(until) => {
                    if self.stats_seen_at_judging || now >= until {
                        self.finish();
                        continue;
                    }
                    return out;
                }
                Phase::Done => return out,
            }
        }
    }

    /// Judges the step: its outcomes stay as they are now.
    fn finish(&mut self) {
        self.judged = Some(self.check.outcomes(self.time_up));
        self.phase = Phase::Done;
    }

    /// Does one action: its commands, what it restarts, what it sets.
    fn act(&mut self, action: &Action, number: Option<usize>, now: Instant) -> Vec<Command> {
        if let Action::Wait(d) = action {
            self.blocked = Blocked::Waiting(now + *d);
            return Vec::new();
        }
        if self.phase == Phase::Acting {
            for user in restarted_by(action, &self.applied, &self.states) {
                self.check.restarts(&user);
            }
        }
        let commands = match commands_for(action, &self.states) {
            Ok(commands) => commands,
            Err(why) => {
                self.action_errors.push(why);
                return Vec::new();
            }
        };
        let resolved = match action {
            Action::Replica {
                target: Target::Holding(user),
                ..
            } => replica_of(&self.states, user),
            _ => None,
        };
        if let (Some(number), Some(id)) = (number, &resolved) {
            self.resolved.insert((self.step, number), id.clone());
        }
        self.applied.apply(action, resolved.as_deref());
        let awaited = commands.iter().find_map(|c| match c {
            Command::AddReplica => Some(StackOperation::Add),
            Command::Replica { id, action } => Some(StackOperation::Replica(id.clone(), *action)),
            Command::ConfigureStack { .. } => Some(StackOperation::Configure),
            Command::Pin { user, .. } => Some(StackOperation::Pin(user.clone())),
            _ => None,
        });
        if let Some(op) = awaited {
            self.blocked = Blocked::StackOp(op, action.to_string(), now + STACK_OP_BOUND);
        }
        commands
    }

    /// When [`Player::poll`] next has something to do without an event.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        match self.phase {
            Phase::Restoring | Phase::Acting => match &self.blocked {
                Blocked::No => Some(now),
                Blocked::StatsBaseline(until) => Some((*until).min(self.next_stats.max(now))),
                Blocked::Waiting(until) | Blocked::StackOp(_, _, until) => Some(*until),
            },
            Phase::Watching(deadline) => Some(if self.check.needs_stats() {
                deadline.min(self.next_stats)
            } else {
                deadline
            }),
            Phase::LastStats(until) => Some(until),
            Phase::Done => None,
        }
    }

    /// Whether the current step is over.
    pub fn step_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the current step is still putting the stack back or doing its actions.
    pub fn acting(&self) -> bool {
        matches!(self.phase, Phase::Restoring | Phase::Acting)
    }

    /// The current step's expectations as they stand (as judged, once the step is over).
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.judged
            .clone()
            .unwrap_or_else(|| self.check.outcomes(self.time_up))
    }

    /// Actions of the current step that could not be done.
    pub fn action_errors(&self) -> &[String] {
        &self.action_errors
    }

    /// The current step's report, once it is over.
    pub fn report(&self, now: Instant) -> Option<StepReport> {
        self.step_done().then(|| {
            StepReport::new(
                self.step + 1,
                &self.step().title,
                now.saturating_duration_since(self.started).as_secs_f64(),
                self.action_errors.clone(),
                self.outcomes(),
            )
        })
    }
}

fn replica_of(states: &BTreeMap<String, SessionState>, user: &str) -> Option<String> {
    states
        .get(user)
        .and_then(|s| s.replica())
        .map(str::to_owned)
}

/// The users whose session `action` starts again: a new transport, a pin, a reconnect, a
/// heartbeat or adapter change (every replica restarts), and stopping, killing or
/// restarting the replica a user is on. Stickiness does not: a session keeps going until a
/// request of it is refused.
fn restarted_by(
    action: &Action,
    applied: &Settings,
    states: &BTreeMap<String, SessionState>,
) -> Vec<String> {
    let everyone = || USERS.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
    match action {
        Action::Transport { who, transport } => who
            .users()
            .into_iter()
            .filter(|u| applied.transport.get(u) != Some(transport))
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
                Target::Holding(user) => replica_of(states, user),
            };
            everyone()
                .into_iter()
                .filter(|u| id.is_some() && replica_of(states, u) == id)
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The commands an action gives (none for a wait), or why it cannot be done now.
pub fn commands_for(
    action: &Action,
    states: &BTreeMap<String, SessionState>,
) -> Result<Vec<Command>, String> {
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
            adapter: Some(if *on { Adapter::Memory } else { Adapter::None }),
        }],
        Action::Heartbeat { interval, timeout } => vec![Command::ConfigureStack {
            heartbeat: Some(Heartbeat {
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
                Target::Holding(user) => replica_of(states, user).ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"title = "t"
[start]
stickiness = "off"

[[step]]
title = "one"
do = [{ stickiness = "on" }, { wait = "2s" }, { kill = "2" }]
within = "3s"
expect = [{ connected = "agent" }]

[[step]]
title = "two"
do = [{ transport = "websocket", user = "visitor" }]
expect = [{ connected = "visitor" }]
"#;

    fn player(now: Instant) -> Player {
        Player::new(crate::scenario::parse("t", SCENARIO).unwrap(), true, now)
    }

    fn done(id: &str, action: ReplicaAction) -> Event {
        Event::StackDone {
            op: StackOperation::Replica(id.into(), action),
            error: None,
        }
    }

    #[test]
    fn actions_wait_for_waits_and_for_their_replica_operation_to_be_done() {
        let t0 = Instant::now();
        let mut p = player(t0);
        assert_eq!(
            p.poll(t0),
            [Command::SetSticky {
                user: None,
                on: true
            }]
        );
        assert!(p.poll(t0 + Duration::from_secs(1)).is_empty(), "waiting");
        let kill = p.poll(t0 + Duration::from_secs(2));
        assert_eq!(
            kill,
            [Command::Replica {
                id: "2".into(),
                action: ReplicaAction::Kill
            }]
        );
        assert!(p.acting(), "until the kill is done");
        // Another operation (given by hand) finishing does not count.
        p.observe(&done("3", ReplicaAction::Stop));
        assert!(p.poll(t0 + Duration::from_secs(3)).is_empty());
        assert!(p.acting());
        p.observe(&done("2", ReplicaAction::Kill));
        p.poll(t0 + Duration::from_secs(3));
        assert!(!p.acting());
        // Nothing connected within 3 s of the actions' end: judged, failed.
        p.poll(t0 + Duration::from_secs(7));
        let report = p.report(t0 + Duration::from_secs(7)).expect("over");
        assert!(!report.passed);
        assert_eq!(report.outcomes[0].observed, "agent connecting");
        // Judged is judged: a connection now does not change the verdict.
        p.observe(&Event::Session {
            user: "agent".into(),
            state: SessionState::Connected {
                replica: Some("1".into()),
                sid: "s".into(),
                websocket: false,
            },
        });
        assert!(!p.report(t0 + Duration::from_secs(8)).expect("over").passed);
    }

    #[test]
    fn going_back_puts_back_what_later_steps_and_hands_changed_then_starts_afresh() {
        let t0 = Instant::now();
        let mut p = player(t0);
        p.poll(t0);
        p.poll(t0 + Duration::from_secs(2));
        p.observe(&done("2", ReplicaAction::Kill));
        // Step two starts from what step one left: nothing to put back.
        p.go_to(1, t0 + Duration::from_secs(3));
        assert_eq!(
            p.poll(t0 + Duration::from_secs(3)),
            [Command::SetTransport {
                user: Some("visitor".into()),
                transport: TransportChoice::Websocket
            }]
        );
        // The presenter turns stickiness off by hand, then goes back to step one.
        p.note_manual(&Command::SetSticky {
            user: None,
            on: false,
        });
        p.go_to(0, t0 + Duration::from_secs(4));
        assert_eq!(p.step().title, "one");
        assert_eq!(
            p.poll(t0 + Duration::from_secs(4)),
            [
                // Step one starts with stickiness off: already so.
                Command::SetTransport {
                    user: Some("visitor".into()),
                    transport: TransportChoice::Polling
                },
                Command::Replica {
                    id: "2".into(),
                    action: ReplicaAction::Restart
                },
            ]
        );
        p.observe(&done("2", ReplicaAction::Restart));
        assert_eq!(
            p.poll(t0 + Duration::from_secs(4)),
            [
                Command::Reconnect {
                    user: "agent".into()
                },
                Command::Reconnect {
                    user: "visitor".into()
                },
                // Then step one's own actions.
                Command::SetSticky {
                    user: None,
                    on: true
                },
            ]
        );
    }

    #[test]
    fn a_pin_that_could_not_be_given_is_the_steps_error() {
        let t0 = Instant::now();
        let source = "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ pin = \"agent\", replica = \"2\" }]\nexpect = [{ connected = \"agent\" }]\n";
        let mut p = Player::new(crate::scenario::parse("t", source).unwrap(), true, t0);
        let given = p.poll(t0);
        assert_eq!(given.len(), 2, "stickiness on, then the pin: {given:?}");
        assert!(p.acting(), "until the pin is given");
        p.observe(&Event::StackDone {
            op: StackOperation::Pin("agent".into()),
            error: Some("there is no replica \"2\" to pin to".into()),
        });
        p.poll(t0);
        assert_eq!(
            p.action_errors(),
            ["pin agent to replica 2: there is no replica \"2\" to pin to"]
        );
    }
}
