//! The session supervisor: one task per user that owns the Socket.IO client of the current
//! attempt ([`SessionClient`]: rust_socketio for the two users on Engine.IO v4, stickyscope's
//! own for v3 and for light sessions), the user's wire tap, the outbox and the tracker, and
//! turns commands and wire records into state.
//!
//! A light session ([`SessionConfig::light`]: a crowd's or a probe's, thousands of them) has
//! a tap without a listener that its client calls directly, and wakes only when something
//! is due (its heartbeat's deadline, its next attempt) or every few seconds, not four times
//! a second.
//!
//! rust_socketio's own reconnection is off: it does not retry a failed first connect and,
//! when only long-poll GETs fail, it loops about 11 times a second while `emit` keeps
//! returning Ok. Here every attempt is paced by the [`AttemptGuard`], and a session is
//! declared broken by what the wire shows (a refusal, a drop, a close, a silent heartbeat).
//!
//! Told to stop, a probe's session first lets what it has under way end
//! (`Driver::wind_down`, bounded), so what the replicas counted is on its records too; the
//! others (the two chat users, a crowd's) stop at once, as a window closing should.
//!
//! The supervisor never waits on the network: emits (over polling, a whole HTTP POST each)
//! go to an `Emitter` task of the current client, in order, so a slow gateway delays only
//! that user's emits, never their commands, timers or wire records. Its channels are
//! bounded: the tap waits when the supervisor is behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::SessionClient;
use serde_json::json;
use stickyscope_contract::chat::{CHAT_EVENT, RECEIPT_EVENT};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::guard::AttemptGuard;
use super::outbox::{Due, Outbox, DEFAULT_TRIES};
use super::tracker::{Observation, WireTracker};
use crate::event_sink::EventSink;
use crate::wire::tap::TapError;
use crate::wire::{Tap, TapConfig};
use std::collections::VecDeque;
use stickyscope_contract::chat::seed;
use stickyscope_vocab::access::Access;
use stickyscope_vocab::events::{
    ChatDialect, EngineIoChoice, Event, OutboxStatus, OutboxUpdate, Received,
};
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::record::WireRecord;

/// How often the supervisor checks timers when nothing else happens.
const TICK: Duration = Duration::from_millis(250);
/// The same for a light session, which also wakes at each deadline it knows.
const LIGHT_TICK: Duration = Duration::from_secs(5);
/// How long a client's failure to connect waits for the wire to say more: the tap records
/// a request when its answer is read (a tunnel when it closes), and the client's own error
/// (rust_socketio's "EngineIO Error", a WebSocket decoding error) often comes first.
const WIRE_GRACE: Duration = Duration::from_millis(300);
/// Wire records the tap may hand on before it waits for the supervisor.
const WIRE_QUEUE: usize = 1024;
/// Commands a session queues.
const COMMAND_QUEUE: usize = 256;
/// Emits queued for the current client.
const EMIT_QUEUE: usize = 64;
/// How long a session that is told to stop lets what it has under way end (see
/// `Driver::wind_down`): on a gateway that answers, milliseconds.
const WIND_DOWN: Duration = Duration::from_secs(3);
/// A refused request is answered within a round trip: a long poll still out this long
/// after a session's attempts have ended is one its replica holds.
const POLL_HELD: Duration = Duration::from_secs(1);

/// How to run one user's session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The user (`agent` or `visitor`).
    pub user: String,
    /// The gateway, `http://host:port`.
    pub gateway: String,
    /// Transport.
    pub transport: TransportChoice,
    /// Stickiness at start.
    pub sticky: bool,
    /// Makes message ids unique across runs.
    pub run: String,
    /// Re-emit a message with no ack after this long.
    pub ack_timeout: Duration,
    /// Re-emit an acked message with no receipt after this long.
    pub receipt_timeout: Duration,
    /// Tries a message gets (each waiting for an ack, then a receipt) before it is given
    /// up as not delivered.
    pub delivery_tries: u32,
    /// Give an attempt this long to reach "connected".
    pub connect_timeout: Duration,
    /// Give up after this many consecutive failed attempts (None: never).
    pub max_attempts: Option<u32>,
    /// How the tap names replicas (taught by whoever reads the balancer's API).
    pub naming: crate::wire::Naming,
    /// Which chat the user speaks.
    pub chat: ChatDialect,
    /// Which Engine.IO protocol the session speaks.
    pub engineio: EngineIoChoice,
    /// Where Socket.IO lives and who the user is to it (path, namespace, auth, headers,
    /// cookies).
    pub access: Access,
    /// A background session (a crowd's, a probe's): stickyscope's own client calling a tap
    /// without a listener, waking only when something is due. The two chat users are not
    /// light: rust_socketio (on v4) talks to their taps' listeners.
    pub light: bool,
    /// For a light session: told to stop, it first lets what it has under way end
    /// (bounded), so that what the replicas counted is on its records too — a probe's
    /// sessions, whose report is held against the replicas' own counts. A crowd's leave at
    /// once, as the two chat users do.
    pub wind_down: bool,
}

impl SessionConfig {
    /// Defaults for `user` on `gateway`.
    pub fn new(user: &str, gateway: &str) -> Self {
        SessionConfig {
            user: user.to_owned(),
            gateway: gateway.to_owned(),
            transport: TransportChoice::Polling,
            sticky: true,
            run: run_id(),
            ack_timeout: Duration::from_secs(3),
            receipt_timeout: Duration::from_secs(3),
            delivery_tries: DEFAULT_TRIES,
            connect_timeout: Duration::from_secs(8),
            max_attempts: None,
            naming: crate::wire::fixed_naming(Default::default()),
            chat: ChatDialect::default(),
            engineio: EngineIoChoice::default(),
            access: Access::default(),
            light: false,
            wind_down: false,
        }
    }
}

/// A short id for this run, so message ids do not repeat across runs.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}",
        (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
    )
}

enum SessionCommand {
    Send(String, oneshot::Sender<String>),
    SetChat(ChatDialect),
    SetSticky(bool),
    Pin(String, String),
    SetTransport(TransportChoice),
    Reconnect,
    Disconnect,
    Shutdown(oneshot::Sender<bool>),
}

/// A running chat session. Dropping it stops it; [`ChatSession::shutdown`] also disconnects
/// cleanly.
#[derive(Debug)]
pub struct ChatSession {
    user: String,
    commands: mpsc::Sender<SessionCommand>,
    tap: Arc<Tap>,
    task: JoinHandle<()>,
}

impl Drop for ChatSession {
    fn drop(&mut self) {
        self.task.abort();
        self.tap.shutdown();
    }
}

impl ChatSession {
    /// Starts the user's tap and session; events go to `sink`.
    pub async fn start(config: SessionConfig, sink: EventSink) -> Result<ChatSession, TapError> {
        let (wire_tx, wire_rx) = mpsc::channel(WIRE_QUEUE);
        let tap_config = TapConfig {
            user: config.user.clone(),
            gateway: config.gateway.clone(),
            sticky: config.sticky,
            timeout: Duration::from_secs(45),
            naming: config.naming.clone(),
            headers: config.access.headers.clone(),
            cookies: config.access.cookies.clone(),
            secrets: config.access.secrets(),
            ca_pem: config.access.ca_pem.clone(),
            insecure: config.access.insecure,
        };
        let tap = if config.light {
            Tap::direct(tap_config, wire_tx)?
        } else {
            Tap::start(tap_config, wire_tx).await?
        };
        let tap = Arc::new(tap);
        let (commands, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (connect_tx, connect_rx) = mpsc::channel(4);
        let speaks_v3 = config.engineio == EngineIoChoice::V3;
        let driver = Driver {
            outbox: Outbox::new(
                &config.user,
                &config.run,
                config.ack_timeout,
                config.receipt_timeout,
                config.delivery_tries,
            ),
            tracker: {
                let mut tracker = WireTracker::new(&config.user);
                tracker.set_dialect(config.chat);
                tracker.set_namespace(&config.access.namespace);
                tracker.set_v3(speaks_v3);
                tracker
            },
            guard: AttemptGuard::default(),
            config,
            tap: Arc::clone(&tap),
            sink,
            wire_rx,
            cmd_rx,
            connect_tx,
            connect_rx,
            client: None,
            emitter: None,
            seed_queue: VecDeque::new(),
            seed_sent: VecDeque::new(),
            seed_next: 0,
            speaks_v3,
            attempt_no: 0,
            attempts_under_way: 0,
            phase: Phase::Waiting {
                next_at: Instant::now(),
            },
            state: None,
            last_reason: None,
            client_failure: None,
        };
        let user = driver.config.user.clone();
        let task = tokio::spawn(driver.run());
        Ok(ChatSession {
            user,
            commands,
            tap,
            task,
        })
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's wire tap.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// Queues a message; returns its id once queued. Waits only for the supervisor, which
    /// never waits on the network.
    pub async fn send(&self, text: impl Into<String>) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(SessionCommand::Send(text.into(), tx))
            .await
            .ok()?;
        rx.await.ok()
    }

    fn command(&self, command: SessionCommand) {
        if let Err(e) = self.commands.try_send(command) {
            tracing::warn!(user = %self.user, "session command dropped: {e}");
        }
    }

    /// Which chat to speak from now on (messages still waiting in another are given up).
    pub fn set_chat(&self, dialect: ChatDialect) {
        self.command(SessionCommand::SetChat(dialect));
    }

    /// Stickiness on or off from the next request.
    pub fn set_sticky(&self, on: bool) {
        self.command(SessionCommand::SetSticky(on));
    }

    /// A handle that gives this session commands from another task.
    pub fn handle(&self) -> SessionHandle {
        SessionHandle {
            user: self.user.clone(),
            commands: self.commands.clone(),
        }
    }

    /// Changes transport (reconnects).
    pub fn set_transport(&self, transport: TransportChoice) {
        self.command(SessionCommand::SetTransport(transport));
    }

    /// Drops the session and connects again.
    pub fn reconnect(&self) {
        self.command(SessionCommand::Reconnect);
    }

    /// Drops the session and stays disconnected until [`ChatSession::reconnect`].
    pub fn disconnect(&self) {
        self.command(SessionCommand::Disconnect);
    }

    /// Disconnects and stops — a session that winds down ([`SessionConfig::wind_down`])
    /// once what it has under way has ended (bounded: 5 s at most). Returns whether it
    /// wound down whole: `false` when its attempt or exchange under way was cut off — the
    /// gateway may count a handshake or a refusal that the session's records lack.
    pub async fn shutdown(self) -> bool {
        let (tx, rx) = oneshot::channel();
        let asked = tokio::time::timeout(
            Duration::from_secs(5),
            self.commands.send(SessionCommand::Shutdown(tx)),
        )
        .await;
        if !matches!(asked, Ok(Ok(()))) {
            return false;
        }
        matches!(
            tokio::time::timeout(Duration::from_secs(5), rx).await,
            Ok(Ok(true))
        )
    }
}

/// Gives a session commands from another task than its owner's.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    user: String,
    commands: mpsc::Sender<SessionCommand>,
}

impl SessionHandle {
    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Sends the user to the server this sticky cookie value names (`what` says which, for
    /// people): stickiness on, the cookie in the jar, a new session.
    pub fn pin(&self, value: String, what: String) {
        if let Err(e) = self.commands.try_send(SessionCommand::Pin(value, what)) {
            tracing::warn!(user = %self.user, "session command dropped: {e}");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting to start the next attempt.
    Waiting { next_at: Instant },
    /// An attempt is under way.
    Attempting { started: Instant },
    /// Connected.
    Connected,
    /// Given up until told to reconnect.
    Stopped,
}

struct Driver {
    config: SessionConfig,
    tap: Arc<Tap>,
    sink: EventSink,
    wire_rx: mpsc::Receiver<WireRecord>,
    cmd_rx: mpsc::Receiver<SessionCommand>,
    connect_tx: mpsc::Sender<(u64, Result<SessionClient, String>)>,
    connect_rx: mpsc::Receiver<(u64, Result<SessionClient, String>)>,
    tracker: WireTracker,
    guard: AttemptGuard,
    outbox: Outbox,
    client: Option<SessionClient>,
    emitter: Option<Emitter>,
    /// The seed's chat: messages waiting for a session, and sent ones waiting for their echo.
    seed_queue: VecDeque<(String, String)>,
    seed_sent: VecDeque<(String, String)>,
    seed_next: u64,
    /// Whether attempts speak Engine.IO v3 (chosen, or detected from the server).
    speaks_v3: bool,
    attempt_no: u64,
    /// Attempts whose client has not said yet how connecting went.
    attempts_under_way: usize,
    phase: Phase,
    state: Option<SessionState>,
    last_reason: Option<String>,
    /// The client's failure to connect, and until when the wire may still name a better
    /// reason ([`WIRE_GRACE`]).
    client_failure: Option<(String, Instant)>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            let wake_at = self.next_wake(Instant::now());
            tokio::select! {
                biased;
                Some(ev) = self.wire_rx.recv() => self.on_wire(ev).await,
                Some(cmd) = self.cmd_rx.recv() => {
                    if let Some(done) = self.on_command(cmd).await {
                        let winds_down = self.config.light && self.config.wind_down;
                        let whole = !winds_down || self.wind_down().await;
                        self.drop_client();
                        self.tap.shutdown();
                        let _ = done.send(whole);
                        return;
                    }
                }
                Some((n, result)) = self.connect_rx.recv() => self.on_connect_result(n, result).await,
                _ = tokio::time::sleep_until(wake_at.into()) => {}
            }
            self.on_tick(Instant::now()).await;
        }
    }

    /// Lets what a probe's session has under way end before it stops, so that every
    /// handshake and refusal a replica counted is on the records too: no attempt starts from
    /// now on; the ones under way end (each request answered and recorded); a session not
    /// connected then waits until its tap has nothing under way (an upgrade a replica
    /// dropped is recorded when its tunnel closes) but long polls still out [`POLL_HELD`]
    /// after that (held by their replicas, which count none of them); the records made
    /// meanwhile are handed on. A connected session's held poll is not waited for (it ends with the
    /// session). Bounded by [`WIND_DOWN`]; returns whether everything else ended within it.
    async fn wind_down(&mut self) -> bool {
        let by = Instant::now() + WIND_DOWN;
        let mut attempts_ended = None;
        let whole = loop {
            let now = Instant::now();
            let wait_until = if self.attempts_under_way > 0 {
                by
            } else {
                let ended: Instant = *attempts_ended.get_or_insert(now);
                let in_flight = self.tap.in_flight();
                let only_held_polls =
                    in_flight == self.tap.polls_in_flight() && now >= ended + POLL_HELD;
                if self.phase == Phase::Connected || in_flight == 0 || only_held_polls {
                    break true;
                }
                (ended + POLL_HELD).min(by)
            };
            if now >= by {
                break false;
            }
            tokio::select! {
                biased;
                Some(ev) = self.wire_rx.recv() => self.on_wire(ev).await,
                Some((n, result)) = self.connect_rx.recv() => self.on_connect_result(n, result).await,
                _ = self.tap.settled(), if self.attempts_under_way == 0 => {}
                _ = tokio::time::sleep_until(wait_until.into()) => {}
            }
        };
        while let Ok(ev) = self.wire_rx.try_recv() {
            self.on_wire(ev).await;
        }
        whole
    }

    fn next_wake(&self, now: Instant) -> Instant {
        let tick = now + if self.config.light { LIGHT_TICK } else { TICK };
        let phase_at = match self.phase {
            Phase::Waiting { next_at } => next_at,
            Phase::Attempting { started } => started + self.config.connect_timeout,
            Phase::Connected => self.tracker.stalls_after().unwrap_or(tick),
            Phase::Stopped => tick,
        };
        let outbox_at = match self.outbox.due(now, self.phase == Phase::Connected) {
            Due::Emit { .. } | Due::GiveUp => now,
            Due::Wait(Some(at)) => at,
            Due::Wait(None) => tick,
        };
        let client_failure_at = self.client_failure.as_ref().map_or(tick, |(_, at)| *at);
        phase_at.min(outbox_at).min(client_failure_at).min(tick)
    }

    async fn on_tick(&mut self, now: Instant) {
        if self
            .client_failure
            .as_ref()
            .is_some_and(|(_, at)| *at <= now)
        {
            if let Some((reason, _)) = self.client_failure.take() {
                if matches!(self.phase, Phase::Attempting { .. }) {
                    self.break_session(reason, true).await;
                }
            }
        }
        match self.phase {
            Phase::Waiting { next_at } if next_at <= now => self.start_attempt(now).await,
            Phase::Attempting { started } if now >= started + self.config.connect_timeout => {
                let reason = format!(
                    "no session within {} s",
                    self.config.connect_timeout.as_secs_f32()
                );
                self.break_session(reason, true).await;
            }
            Phase::Connected => {
                if let Some(reason) = self.tracker.stalled(now) {
                    self.break_session(reason, true).await;
                }
            }
            _ => {}
        }
        self.flush_outbox(now).await;
    }

    async fn start_attempt(&mut self, now: Instant) {
        if let Some(max) = self.config.max_attempts {
            if self.guard.failures() >= max {
                self.phase = Phase::Stopped;
                let reason = format!(
                    "gave up after {max} attempts: {}",
                    self.last_reason.clone().unwrap_or_default()
                );
                self.set_state(SessionState::Failed { reason }).await;
                return;
            }
        }
        self.guard.started(now);
        self.attempt_no += 1;
        self.attempts_under_way += 1;
        self.tracker.attempt_started();
        self.phase = Phase::Attempting { started: now };
        let state = match &self.last_reason {
            None => SessionState::Connecting,
            Some(reason) => SessionState::Reconnecting {
                reason: reason.clone(),
                attempt: self.guard.failures(),
            },
        };
        self.set_state(state).await;

        let tx = self.connect_tx.clone();
        let n = self.attempt_no;
        let bound = self.config.connect_timeout;
        let tap = Arc::clone(&self.tap);
        let how = (self.config.transport, self.speaks_v3, self.config.light);
        let access = &self.config.access;
        let (path, namespace) = (access.path.clone(), access.namespace.clone());
        let auth = access.auth_for(&self.config.user).cloned();
        tokio::spawn(async move {
            let connect = SessionClient::connect(&tap, how, (&path, &namespace, auth.as_ref()));
            let result = match tokio::time::timeout(bound, connect).await {
                Ok(result) => result,
                Err(_) => Err("connect timed out".to_owned()),
            };
            if let Err(mpsc::error::SendError((_, Ok(client)))) = tx.send((n, result)).await {
                client.disconnect_soon();
            }
        });
    }

    async fn on_connect_result(&mut self, n: u64, result: Result<SessionClient, String>) {
        self.attempts_under_way = self.attempts_under_way.saturating_sub(1);
        match result {
            Ok(client)
                if n == self.attempt_no && self.phase != Phase::Stopped && self.phase_is_live() =>
            {
                self.emitter = Some(Emitter::start(client.clone(), &self.config.user));
                self.client = Some(client);
                self.flush_outbox(Instant::now()).await;
            }
            Ok(client) => client.disconnect_soon(),
            Err(e) if n == self.attempt_no && matches!(self.phase, Phase::Attempting { .. }) => {
                // rust_socketio says only "EngineIO Error"; the wire usually says more, and
                // then the session breaks with that reason. Else, after a moment, with this.
                self.client_failure =
                    Some((format!("connect failed ({e})"), Instant::now() + WIRE_GRACE));
            }
            Err(_) => {}
        }
    }

    fn phase_is_live(&self) -> bool {
        matches!(self.phase, Phase::Attempting { .. } | Phase::Connected)
    }

    async fn on_wire(&mut self, ev: WireRecord) {
        let now = Instant::now();
        let observations = self.tracker.observe(&ev, now);
        self.sink.wire(ev);
        for observation in observations {
            match observation {
                Observation::Connected {
                    replica,
                    sid,
                    websocket,
                } => {
                    self.phase = Phase::Connected;
                    self.guard.succeeded();
                    self.last_reason = None;
                    self.set_state(SessionState::Connected {
                        replica,
                        sid,
                        websocket,
                    })
                    .await;
                }
                Observation::SpeaksV3 => {
                    if self.config.engineio == EngineIoChoice::Auto {
                        self.speak_v3();
                    } else {
                        self.break_session(
                            "the server speaks Engine.IO v3 (Socket.IO 2), not the v4 asked for (--engineio 4)".to_owned(),
                            true,
                        )
                        .await;
                    }
                }
                Observation::Identified { replica } => {
                    if let Some(SessionState::Connected { sid, websocket, .. }) = self.state.clone()
                    {
                        self.set_state(SessionState::Connected {
                            replica: Some(replica),
                            sid,
                            websocket,
                        })
                        .await;
                    }
                }
                Observation::Upgraded => {
                    if let Some(SessionState::Connected { replica, sid, .. }) = self.state.clone() {
                        self.set_state(SessionState::Connected {
                            replica,
                            sid,
                            websocket: true,
                        })
                        .await;
                    }
                }
                Observation::Broken { reason } => {
                    if self.phase_is_live() {
                        self.break_session(reason, true).await;
                    }
                }
                Observation::Chat {
                    message,
                    delivered_by,
                    first_time,
                } => {
                    let stickyscope = self.config.chat == ChatDialect::Stickyscope;
                    if stickyscope {
                        self.send_receipt(&message.id);
                    }
                    if first_time {
                        let accepted_by = stickyscope.then(|| message.replica.clone());
                        self.sink
                            .send(Event::Received(Received {
                                user: self.config.user.clone(),
                                message,
                                accepted_by,
                                delivered_by,
                            }))
                            .await;
                    }
                }
                Observation::Echo { text, replica } => {
                    if let Some(at) = self.seed_sent.iter().position(|(_, t)| *t == text) {
                        if let Some((id, text)) = self.seed_sent.remove(at) {
                            self.outbox_update(&id, &text, OutboxStatus::Echoed { replica })
                                .await;
                        }
                    }
                }
                Observation::Acked { id, result } => self.on_ack(id, result).await,
                Observation::Receipt(receipt) => {
                    if let Some(done) = self.outbox.delivered(&receipt.id, receipt.replica) {
                        self.outbox_update(&done.id, &done.text, done.status).await;
                    }
                }
            }
        }
        self.flush_outbox(now).await;
    }

    async fn on_command(&mut self, cmd: SessionCommand) -> Option<oneshot::Sender<bool>> {
        match cmd {
            SessionCommand::Send(text, reply) => match self.config.chat {
                ChatDialect::Stickyscope => {
                    let id = self.outbox.push(text.clone());
                    let _ = reply.send(id.clone());
                    self.outbox_update(&id, &text, OutboxStatus::Queued).await;
                    self.flush_outbox(Instant::now()).await;
                }
                ChatDialect::Seed => {
                    let id = self.local_id("seed");
                    let _ = reply.send(id.clone());
                    self.outbox_update(&id, &text, OutboxStatus::Queued).await;
                    self.seed_queue.push_back((id, text));
                    self.flush_seed().await;
                }
                ChatDialect::None => {
                    let id = self.local_id("none");
                    let _ = reply.send(id.clone());
                    let reason = "not sent — the chat is off (--chat none): the sessions only keep their heartbeats".to_owned();
                    self.outbox_update(&id, &text, OutboxStatus::NotDelivered { reason })
                        .await;
                }
            },
            SessionCommand::SetChat(dialect) => {
                if dialect != self.config.chat {
                    let reason = format!(
                        "not delivered — the chat changed to {} before it was",
                        dialect.label()
                    );
                    for given_up in self.outbox.give_up_all(&reason) {
                        self.outbox_update(&given_up.id, &given_up.text, given_up.status)
                            .await;
                    }
                    for (id, text) in std::mem::take(&mut self.seed_queue) {
                        let status = OutboxStatus::NotDelivered {
                            reason: reason.clone(),
                        };
                        self.outbox_update(&id, &text, status).await;
                    }
                    self.seed_sent.clear();
                    self.config.chat = dialect;
                    self.tracker.set_dialect(dialect);
                }
            }
            SessionCommand::SetSticky(on) => {
                self.tap.set_sticky(on);
                self.retry_soon();
            }
            SessionCommand::Pin(value, what) => {
                self.tap.set_sticky(true);
                self.tap.pin(&value);
                self.restart(format!("pinned to {what}")).await;
            }
            SessionCommand::SetTransport(transport) => {
                if transport != self.config.transport {
                    self.config.transport = transport;
                    self.restart(format!("transport changed to {}", transport.label()))
                        .await;
                }
            }
            SessionCommand::Reconnect => self.restart("reconnect requested".to_owned()).await,
            SessionCommand::Disconnect => {
                self.break_session("disconnected by the user".to_owned(), false)
                    .await;
                self.phase = Phase::Stopped;
                self.set_state(SessionState::Failed {
                    reason: "disconnected by the user".to_owned(),
                })
                .await;
            }
            SessionCommand::Shutdown(done) => return Some(done),
        }
        None
    }

    /// After a change the user made, try again without waiting out the backoff.
    fn retry_soon(&mut self) {
        self.guard.reset_backoff();
        if let Phase::Waiting { .. } = self.phase {
            self.phase = Phase::Waiting {
                next_at: self.guard.next_allowed(Instant::now()),
            };
        }
    }

    /// The server answered in Engine.IO v3: the attempt starts again in v3, straight away.
    /// Nothing broke (the session never formed), so the state stays as it was.
    fn speak_v3(&mut self) {
        tracing::info!(user = %self.config.user, "the server speaks Engine.IO v3 (Socket.IO 2): speaking v3 from now on");
        self.speaks_v3 = true;
        self.tracker.set_v3(true);
        self.tracker.abandoned();
        self.drop_client();
        self.phase = Phase::Waiting {
            next_at: Instant::now(),
        };
    }

    async fn restart(&mut self, reason: String) {
        self.break_session(reason, false).await;
        self.retry_soon();
    }

    async fn break_session(&mut self, reason: String, failed: bool) {
        self.client_failure = None;
        tracing::info!(user = %self.config.user, "session broken: {reason}");
        self.tracker.abandoned();
        if let Some((id, text, status)) = self.outbox.session_lost() {
            self.outbox_update(&id, &text, status).await;
        }
        if failed {
            self.guard.failed();
        }
        self.drop_client();
        self.phase = Phase::Waiting {
            next_at: self.guard.next_allowed(Instant::now()),
        };
        self.last_reason = Some(reason.clone());
        self.set_state(SessionState::Reconnecting {
            reason,
            attempt: self.guard.failures(),
        })
        .await;
    }

    fn drop_client(&mut self) {
        // Emits still queued were for this session; the outbox sends again on the next.
        self.emitter = None;
        if let Some(client) = self.client.take() {
            client.disconnect_soon();
        }
    }

    /// An id for a message of a chat that has none of its own.
    fn local_id(&mut self, dialect: &str) -> String {
        self.seed_next += 1;
        format!(
            "{}-{}-{dialect}-{}",
            self.config.user, self.config.run, self.seed_next
        )
    }

    /// The seed's chat: each waiting message goes once, when a session is up.
    async fn flush_seed(&mut self) {
        if self.phase != Phase::Connected {
            return;
        }
        let Some((send_event, _)) = seed::events_of(&self.config.user) else {
            return;
        };
        while let Some((id, text)) = self.seed_queue.pop_front() {
            let queued = self
                .emitter
                .as_ref()
                .is_some_and(|e| e.queue(Emit::Event(send_event, json!(text))));
            if !queued {
                self.seed_queue.push_front((id, text));
                return;
            }
            let status = OutboxStatus::Sent {
                attempt: 1,
                gives_up_at_ms: None,
            };
            self.outbox_update(&id, &text, status).await;
            self.seed_sent.push_back((id, text));
            while self.seed_sent.len() > 256 {
                self.seed_sent.pop_front();
            }
        }
    }

    async fn flush_outbox(&mut self, now: Instant) {
        if self.config.chat == ChatDialect::Seed {
            return self.flush_seed().await;
        }
        loop {
            match self.outbox.due(now, self.phase == Phase::Connected) {
                Due::Wait(_) => return,
                Due::GiveUp => {
                    if let Some(given_up) = self.outbox.give_up() {
                        tracing::info!(user = %self.config.user, id = %given_up.id, "message given up");
                        self.outbox_update(&given_up.id, &given_up.text, given_up.status)
                            .await;
                    }
                }
                Due::Emit { id, text, .. } => {
                    let Some(emitter) = &self.emitter else {
                        return;
                    };
                    let payload = json!({"id": id, "from": self.config.user, "text": text});
                    // The ack itself is read off the wire by the tracker, in order with
                    // everything else. A full queue means the emitter is stuck on a slow
                    // gateway: the message goes on a later tick.
                    if !emitter.queue(Emit::Chat(payload)) {
                        return;
                    }
                    if let Some(status) = self.outbox.emitted(&id, now) {
                        self.outbox_update(&id, &text, status).await;
                    }
                    return;
                }
            }
        }
    }

    async fn on_ack(&mut self, id: String, result: Result<String, String>) {
        let text = self
            .outbox
            .pending()
            .find(|p| p.id == id)
            .map(|p| p.text.clone());
        if let (Some(status), Some(text)) = (self.outbox.acked(&id, result, Instant::now()), text) {
            self.outbox_update(&id, &text, status).await;
        }
    }

    fn send_receipt(&self, id: &str) {
        if let Some(emitter) = &self.emitter {
            // A receipt not sent is not lost: the sender re-sends until one arrives.
            emitter.queue(Emit::Event(
                RECEIPT_EVENT,
                json!({"id": id, "by": self.config.user}),
            ));
        }
    }

    async fn outbox_update(&self, id: &str, text: &str, status: OutboxStatus) {
        self.sink
            .send(Event::Outbox(OutboxUpdate {
                user: self.config.user.clone(),
                id: id.to_owned(),
                text: text.to_owned(),
                status,
            }))
            .await;
    }

    async fn set_state(&mut self, state: SessionState) {
        if self.state.as_ref() == Some(&state) {
            return;
        }
        self.state = Some(state.clone());
        self.sink
            .send(Event::Session {
                user: self.config.user.clone(),
                state,
            })
            .await;
    }
}

/// Something to emit on the current client.
enum Emit {
    /// A `chat` message, with an ack (read off the wire).
    Chat(serde_json::Value),
    /// Any other event, without an ack (a receipt; a message of the seed's chat).
    Event(&'static str, serde_json::Value),
}

/// The task that emits on one client, in order. Dropping it stops it (emits still queued
/// belonged to a session that is gone).
struct Emitter {
    queue: mpsc::Sender<Emit>,
    task: JoinHandle<()>,
}

impl Emitter {
    fn start(client: SessionClient, user: &str) -> Self {
        let (queue, mut rx) = mpsc::channel::<Emit>(EMIT_QUEUE);
        let user = user.to_owned();
        let task = tokio::spawn(async move {
            while let Some(emit) = rx.recv().await {
                let result = match emit {
                    Emit::Chat(payload) => client.emit_with_ack(CHAT_EVENT, payload).await,
                    Emit::Event(name, payload) => client.emit(name, payload).await,
                };
                if let Err(e) = result {
                    // The outbox re-sends chat messages; senders re-send until a receipt.
                    tracing::debug!(user = %user, "emit failed: {e}");
                }
            }
        });
        Emitter { queue, task }
    }

    /// Queues an emit; false when the queue is full.
    fn queue(&self, emit: Emit) -> bool {
        self.queue.try_send(emit).is_ok()
    }
}

impl Drop for Emitter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
