//! The network side as one piece: the stack (embedded, the local chain, or external), one
//! chat session per user, the topology poller, and the command loop. It talks to the UI only through the
//! event stream ([`stickyscope_vocab::events::Event`] through [`crate::event_sink::EventSink`]) and the
//! command channel ([`stickyscope_vocab::events::Command`]); nothing here knows about egui.

pub mod controls;
pub mod crowd;
pub mod topology_poller;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stickyscope_contract::chat::USERS;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::chain::{Chain, ChainConfig, ChainError};
use crate::embedded::{EmbeddedConfig, EmbeddedError, EmbeddedStack};
use crate::event_sink::EventSink;
use crate::session::{ChatSession, SessionConfig};
use crate::wire::tap::TapError;
use crate::wire::SharedIdentify;
use controls::StackControls;
use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::events::{
    Command, EngineIoChoice, Event, Notice, NoticeLevel, ReplicaAction, StackOperation,
};
use stickyscope_vocab::naming::Identify;
use topology_poller::TopologySource;

/// Where the stack is.
#[derive(Debug, Clone)]
pub enum GatewayConfig {
    /// Start the embedded stack in this process.
    Embedded(EmbeddedConfig),
    /// Start the real chain (nginx → Traefik → replica processes → Redis) as child
    /// processes.
    Chain(ChainConfig),
    /// Use a running stack: its gateway (nginx) and, if known, Traefik's API.
    External {
        /// e.g. `http://localhost:8000`.
        gateway: String,
        /// e.g. `http://localhost:9090`.
        traefik_api: Option<String>,
        /// How to tell which replica answered, besides `X-Replica`.
        identify: IdentifyConfig,
        /// Which Engine.IO to speak (auto: v4, or v3 when the servers answer in v3).
        engineio: stickyscope_vocab::events::EngineIoChoice,
    },
}

impl GatewayConfig {
    /// A running stack at `gateway`, named by `X-Replica` (and what Traefik's API at
    /// `traefik_api` teaches), spoken to in whichever Engine.IO it answers.
    pub fn external(gateway: impl Into<String>, traefik_api: Option<String>) -> Self {
        GatewayConfig::External {
            gateway: gateway.into(),
            traefik_api,
            identify: IdentifyConfig::default(),
            engineio: stickyscope_vocab::events::EngineIoChoice::default(),
        }
    }

    /// Whether the stack has replica controls (stickyscope started it).
    pub fn has_controls(&self) -> bool {
        match self {
            GatewayConfig::Embedded(_) => true,
            GatewayConfig::Chain(chain) => chain.servers.is_none(),
            GatewayConfig::External { .. } => false,
        }
    }

    /// What the gateway is, in a few words.
    pub fn mode(&self) -> &'static str {
        match self {
            GatewayConfig::Embedded(_) => "embedded stack",
            GatewayConfig::Chain(_) => "local chain (nginx, Traefik)",
            GatewayConfig::External { .. } => "gateway",
        }
    }
}

/// How to start the conductor.
#[derive(Debug, Clone)]
pub struct ConductorConfig {
    /// The stack.
    pub gateway: GatewayConfig,
    /// Transport of both users at start.
    pub transport: TransportChoice,
    /// Stickiness of both users at start.
    pub sticky: bool,
    /// Which chat both users speak at start.
    pub chat: stickyscope_vocab::events::ChatDialect,
}

impl ConductorConfig {
    /// Both users sticky, long-polling, speaking stickyscope's chat, on `gateway`.
    pub fn new(gateway: GatewayConfig) -> Self {
        ConductorConfig {
            gateway,
            transport: TransportChoice::Polling,
            sticky: true,
            chat: stickyscope_vocab::events::ChatDialect::default(),
        }
    }
}

/// How to tell which replica answered on a stack whose replicas do not send `X-Replica`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentifyConfig {
    /// A response header that names the replica (e.g. a backend's hostname).
    pub header: Option<String>,
    /// The sticky cookie's name, when it is not the balancer API's or `sticky_replica`.
    pub cookie: Option<String>,
    /// The balancer's server URLs, when no API lists them.
    pub servers: Vec<String>,
}

impl IdentifyConfig {
    /// The shared identification the taps use, seeded from this.
    pub fn shared(&self) -> SharedIdentify {
        let mut identify = Identify::new(self.header.clone());
        if let Some(cookie) = &self.cookie {
            identify.cookie = cookie.clone();
        }
        identify.set_servers(self.servers.iter().map(String::as_str));
        Arc::new(std::sync::RwLock::new(identify))
    }
}

/// Why the conductor could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    /// The embedded stack failed.
    #[error(transparent)]
    Stack(#[from] EmbeddedError),
    /// The local chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A wire tap failed.
    #[error(transparent)]
    Tap(#[from] TapError),
}

/// Commands the UI may queue before the conductor takes them.
pub const COMMAND_QUEUE: usize = 1024;
/// Stack and crowd operations queued for their workers.
const WORK_QUEUE: usize = 64;

/// A running conductor.
#[derive(Debug)]
pub struct Conductor {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    gateway: String,
}

impl Conductor {
    /// Starts the stack (if embedded), the sessions and the poller; events go to `sink`.
    pub async fn start(
        config: ConductorConfig,
        sink: EventSink,
    ) -> Result<Conductor, ConductorError> {
        let (fixed, engineio) = match &config.gateway {
            GatewayConfig::External {
                identify, engineio, ..
            } => (identify.clone(), *engineio),
            _ => (IdentifyConfig::default(), EngineIoChoice::Auto),
        };
        let (stack, gateway, source) = match config.gateway {
            GatewayConfig::Embedded(stack_config) => {
                let stack = EmbeddedStack::start(stack_config).await?;
                let gateway = stack.gateway_url();
                let source = TopologySource::embedded(Arc::clone(&stack));
                (Some(StackControls::Embedded(stack)), gateway, source)
            }
            GatewayConfig::Chain(chain_config) => {
                let chain = Arc::new(Chain::start(chain_config).await?);
                let gateway = chain.gateway_url();
                let source = TopologySource::chain(Arc::clone(&chain));
                if let Some(exits) = chain.take_exits() {
                    tokio::spawn(report_exits(exits, sink.clone()));
                }
                (Some(StackControls::Chain(chain)), gateway, source)
            }
            GatewayConfig::External {
                gateway,
                traefik_api,
                ..
            } => {
                let source = TopologySource::traefik(traefik_api);
                (None, gateway, source)
            }
        };
        let identify = fixed.shared();
        let mut sessions = HashMap::new();
        for user in USERS {
            let mut session = SessionConfig::new(user, &gateway);
            session.transport = config.transport;
            session.sticky = config.sticky;
            session.identify = Arc::clone(&identify);
            session.chat = config.chat;
            session.engineio = engineio;
            sessions.insert(
                user.to_owned(),
                ChatSession::start(session, sink.clone()).await?,
            );
        }
        let learns = topology_poller::Learn {
            identify: Arc::clone(&identify),
            cookie_fixed: fixed.cookie.is_some(),
            servers_fixed: !fixed.servers.is_empty(),
        };
        let poller = tokio::spawn(topology_poller::run(source, sink.clone(), learns));
        let crowd = Arc::new(tokio::sync::Mutex::new(crowd::Crowd::new(
            &gateway,
            Arc::clone(&identify),
            engineio,
        )));
        let crowd_reporter = tokio::spawn(crowd::report_loop(Arc::clone(&crowd), sink.clone()));
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let (stack_ops, stack_rx) = mpsc::channel(WORK_QUEUE);
        let stack_worker = tokio::spawn(stack_worker(stack_rx, stack.clone(), sink.clone()));
        let (crowd_ops, crowd_rx) = mpsc::channel(WORK_QUEUE);
        let crowd_worker = tokio::spawn(crowd_worker(crowd_rx, Arc::clone(&crowd)));
        let settings = (config.transport, config.sticky);
        let task = tokio::spawn(async move {
            let mut workers = Workers {
                stack: stack_ops,
                crowd: crowd_ops,
                sink: sink.clone(),
            };
            command_loop(rx, &sessions, &mut workers, settings, stack.clone()).await;
            poller.abort();
            crowd_reporter.abort();
            // Operations already queued finish first (each is bounded), then everything
            // stops in order.
            drop(workers);
            let _ = tokio::time::timeout(Duration::from_secs(30), stack_worker).await;
            let _ = tokio::time::timeout(Duration::from_secs(30), crowd_worker).await;
            crowd.lock().await.shutdown().await;
            futures_util::future::join_all(sessions.into_values().map(ChatSession::shutdown)).await;
            if let Some(stack) = stack {
                stack.shutdown().await;
            }
        });
        Ok(Conductor {
            commands,
            task,
            gateway,
        })
    }

    /// The gateway URL the users talk to.
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// A sender for commands (bounded: [`COMMAND_QUEUE`]).
    pub fn commands(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    /// Waits until the conductor stops (after a [`Command::Shutdown`]).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Stops everything and waits for it.
    pub async fn shutdown(self) {
        let _ = self.commands.send(Command::Shutdown).await;
        let _ = tokio::time::timeout(Duration::from_secs(40), self.task).await;
    }
}

/// An operation on the embedded stack, done in order by the stack worker.
enum StackOp {
    Add,
    Replica(String, ReplicaAction),
    Configure(
        Option<stickyscope_contract::heartbeat::Heartbeat>,
        Option<stickyscope_vocab::stack::Adapter>,
    ),
}

/// An operation on the crowd, done in order by the crowd worker.
enum CrowdOp {
    Resize(usize, TransportChoice, bool),
    Sticky(bool),
    Transport(TransportChoice),
}

/// Where the command loop hands work that waits on the network (replicas stopping, crowd
/// sessions starting), so that it never waits itself.
struct Workers {
    stack: mpsc::Sender<StackOp>,
    crowd: mpsc::Sender<CrowdOp>,
    sink: EventSink,
}

impl Workers {
    async fn stack(&self, op: StackOp) {
        if self.stack.try_send(op).is_err() {
            notice(
                &self.sink,
                NoticeLevel::Warning,
                "replica operations are queued faster than the stack carries them out: this one was dropped".to_owned(),
            )
            .await;
        }
    }

    async fn crowd(&self, op: CrowdOp) {
        if self.crowd.try_send(op).is_err() {
            notice(
                &self.sink,
                NoticeLevel::Warning,
                "crowd changes are queued faster than they are carried out: this one was dropped"
                    .to_owned(),
            )
            .await;
        }
    }
}

/// Takes the UI's commands in order. Session commands return at once (sessions never wait
/// on the network); stack and crowd operations go to their workers.
async fn command_loop(
    mut rx: mpsc::Receiver<Command>,
    sessions: &HashMap<String, ChatSession>,
    workers: &mut Workers,
    (mut transport, mut sticky): (TransportChoice, bool),
    stack: Option<StackControls>,
) {
    let sink = workers.sink.clone();
    while let Some(command) = rx.recv().await {
        let targets = |user: &Option<String>| -> Vec<&ChatSession> {
            match user {
                Some(u) => sessions.get(u).into_iter().collect(),
                None => USERS.iter().filter_map(|u| sessions.get(*u)).collect(),
            }
        };
        match command {
            Command::Send { user, text } => match sessions.get(&user) {
                Some(s) => {
                    s.send(text).await;
                }
                None => notice(&sink, NoticeLevel::Warning, format!("no user {user:?}")).await,
            },
            Command::SetSticky { user, on } => {
                if user.is_none() {
                    sticky = on;
                    workers.crowd(CrowdOp::Sticky(on)).await;
                }
                targets(&user).iter().for_each(|s| s.set_sticky(on));
            }
            Command::SetTransport { user, transport: t } => {
                if user.is_none() {
                    transport = t;
                    workers.crowd(CrowdOp::Transport(t)).await;
                }
                targets(&user).iter().for_each(|s| s.set_transport(t));
            }
            Command::SetCrowd { size } => {
                workers
                    .crowd(CrowdOp::Resize(size, transport, sticky))
                    .await
            }
            Command::SetChat { dialect } => {
                targets(&None).iter().for_each(|s| s.set_chat(dialect));
            }
            Command::Reconnect { user } => {
                if let Some(s) = sessions.get(&user) {
                    s.reconnect();
                }
            }
            Command::AddReplica => workers.stack(StackOp::Add).await,
            Command::Replica { id, action } => workers.stack(StackOp::Replica(id, action)).await,
            Command::ConfigureStack { heartbeat, adapter } => {
                workers.stack(StackOp::Configure(heartbeat, adapter)).await
            }
            Command::Pin { user, replica } => match sessions.get(&user) {
                Some(session) => {
                    // Finding a replica's URL may wait on a stack operation under way.
                    tokio::spawn(pin(session.handle(), replica, stack.clone(), sink.clone()));
                }
                None => notice(&sink, NoticeLevel::Warning, format!("no user {user:?}")).await,
            },
            Command::FetchStats => {
                match &stack {
                    Some(stack) => {
                        let (stack, sink) = (stack.clone(), sink.clone());
                        tokio::spawn(async move {
                            sink.send(Event::Stats(stack.stats().await)).await;
                        });
                    }
                    None => notice(
                        &sink,
                        NoticeLevel::Warning,
                        "replica counters (/stats) are read from stacks stickyscope started only"
                            .to_owned(),
                    )
                    .await,
                }
            }
            Command::Shutdown => break,
        }
    }
}

/// Sends a user to a replica: Traefik's sticky cookie value for its server URL (the
/// built-in balancer computes it the same way). A replica of a stack stickyscope started is
/// found by id; any other server is named by its address.
async fn pin(
    session: crate::session::SessionHandle,
    replica: String,
    stack: Option<StackControls>,
    sink: EventSink,
) {
    let user = session.user().to_owned();
    let error = pin_to(session, &replica, stack.as_ref()).await.err();
    if let Some(why) = &error {
        notice(&sink, NoticeLevel::Warning, why.clone()).await;
    }
    sink.send(Event::StackDone {
        op: StackOperation::Pin(user),
        error,
    })
    .await;
}

/// Finds the replica's URL and gives the session its cookie, or says why not.
async fn pin_to(
    session: crate::session::SessionHandle,
    replica: &str,
    stack: Option<&StackControls>,
) -> Result<(), String> {
    let url = if replica.contains("://") {
        Some(replica.to_owned())
    } else if replica.contains(':') {
        Some(format!("http://{replica}"))
    } else {
        match stack {
            Some(stack) => stack.replica_url(replica).await,
            None => None,
        }
    };
    let Some(url) = url else {
        return Err(if stack.is_some() {
            format!("there is no replica {replica:?} to pin to")
        } else {
            format!(
                "cannot pin to replica {replica:?}: on a stack stickyscope did not start, name the server by its address (host:port)"
            )
        });
    };
    let value = stickyscope_vocab::naming::CookieScheme::TraefikSha256.value(&url);
    session.pin(value, stickyscope_vocab::topology::replica_name(replica));
    Ok(())
}

/// A part of the local chain that died on its own: a banner with the end of its log.
async fn report_exits(
    mut exits: mpsc::Receiver<crate::chain::children::UnexpectedExit>,
    sink: EventSink,
) {
    while let Some(exit) = exits.recv().await {
        notice(
            &sink,
            NoticeLevel::Error,
            format!(
                "{} exited unexpectedly ({}); its log ({}) ends: {}",
                exit.name,
                exit.status,
                exit.log.display(),
                match exit.tail.len() {
                    0 => "(empty)".to_owned(),
                    n => exit.tail[n.saturating_sub(3)..].join(" / "),
                }
            ),
        )
        .await;
    }
}

/// Carries out stack operations in order, each as long as it takes, and says when each is
/// done ([`Event::StackDone`]).
async fn stack_worker(
    mut ops: mpsc::Receiver<StackOp>,
    stack: Option<StackControls>,
    sink: EventSink,
) {
    while let Some(op) = ops.recv().await {
        let done = match &op {
            StackOp::Add => StackOperation::Add,
            StackOp::Replica(id, action) => StackOperation::Replica(id.clone(), *action),
            StackOp::Configure(..) => StackOperation::Configure,
        };
        let Some(stack) = &stack else {
            external_only(&sink).await;
            sink.send(Event::StackDone {
                op: done,
                error: Some("no replica controls on this stack".to_owned()),
            })
            .await;
            continue;
        };
        let error = match op {
            StackOp::Add => stack
                .add()
                .await
                .err()
                .map(|e| (NoticeLevel::Error, format!("could not add a replica: {e}"))),
            StackOp::Replica(id, action) => stack
                .act(&id, action)
                .await
                .err()
                .map(|e| (NoticeLevel::Warning, e)),
            StackOp::Configure(heartbeat, adapter) => {
                let what = match (&heartbeat, &adapter) {
                    (Some(h), _) => format!(
                        "heartbeat pingInterval {} ms, pingTimeout {} ms",
                        h.interval.as_millis(),
                        h.timeout.as_millis()
                    ),
                    (None, Some(a)) => format!("adapter {a:?}"),
                    (None, None) => "nothing".to_owned(),
                };
                match stack.configure(heartbeat, adapter).await {
                    Ok(()) => {
                        notice(
                            &sink,
                            NoticeLevel::Info,
                            format!("replicas restarted with {what}"),
                        )
                        .await;
                        None
                    }
                    Err(e) => Some((NoticeLevel::Error, format!("reconfiguring failed: {e}"))),
                }
            }
        };
        if let Some((level, text)) = &error {
            notice(&sink, *level, text.clone()).await;
        }
        sink.send(Event::StackDone {
            op: done,
            error: error.map(|(_, text)| text),
        })
        .await;
    }
}

/// Carries out crowd changes in order.
async fn crowd_worker(
    mut ops: mpsc::Receiver<CrowdOp>,
    crowd: Arc<tokio::sync::Mutex<crowd::Crowd>>,
) {
    while let Some(op) = ops.recv().await {
        let mut crowd = crowd.lock().await;
        match op {
            CrowdOp::Resize(size, transport, sticky) => crowd.resize(size, transport, sticky).await,
            CrowdOp::Sticky(on) => crowd.set_sticky(on),
            CrowdOp::Transport(t) => crowd.set_transport(t),
        }
    }
}

async fn notice(sink: &EventSink, level: NoticeLevel, text: String) {
    sink.send(Event::Notice(Notice { level, text })).await;
}

async fn external_only(sink: &EventSink) {
    notice(
        sink,
        NoticeLevel::Info,
        "replica controls work on the embedded stack only; on Docker Swarm use `docker service scale`".to_owned(),
    )
    .await;
}
