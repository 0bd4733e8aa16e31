//! The network side as one piece: the stack (embedded or external), one chat session per
//! user, the topology poller, and the command loop. It talks to the UI only through the
//! event stream ([`crate::events::Event`] through [`crate::events::sink::EventSink`]) and the
//! command channel ([`crate::events::Command`]); nothing here knows about egui.

pub mod crowd;
pub mod topology_poller;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::embedded::{EmbeddedStack, StackConfig, StackError};
use crate::session::{ChatSession, SessionConfig, TransportChoice};
use crate::wire::tap::TapError;
use crate::events::sink::EventSink;
use crate::events::{Command, Event, Notice, NoticeLevel, ReplicaAction};
use topology_poller::TopologySource;

/// The two chat users.
pub const USERS: [&str; 2] = ["agent", "visitor"];

/// Where the stack is.
#[derive(Debug, Clone)]
pub enum GatewayConfig {
    /// Start the embedded stack in this process.
    Embedded(StackConfig),
    /// Use a running stack: its gateway (nginx) and, if known, Traefik's API.
    External {
        /// e.g. `http://localhost:8000`.
        gateway: String,
        /// e.g. `http://localhost:9090`.
        traefik_api: Option<String>,
    },
}

/// How to start the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The stack.
    pub gateway: GatewayConfig,
    /// Transport of both users at start.
    pub transport: TransportChoice,
    /// Stickiness of both users at start.
    pub sticky: bool,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The embedded stack failed.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// A wire tap failed.
    #[error(transparent)]
    Tap(#[from] TapError),
}

/// A running engine.
#[derive(Debug)]
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
    gateway: String,
}

impl Engine {
    /// Starts the stack (if embedded), the sessions and the poller; events go to `sink`.
    pub async fn start(config: EngineConfig, sink: EventSink) -> Result<Engine, EngineError> {
        let (stack, gateway, source) = match config.gateway {
            GatewayConfig::Embedded(stack_config) => {
                let stack = EmbeddedStack::start(stack_config).await?;
                let gateway = stack.gateway_url();
                let source = TopologySource::embedded(Arc::clone(&stack));
                (Some(stack), gateway, source)
            }
            GatewayConfig::External {
                gateway,
                traefik_api,
            } => {
                let source = TopologySource::traefik(traefik_api);
                (None, gateway, source)
            }
        };
        let mut sessions = HashMap::new();
        for user in USERS {
            let mut session = SessionConfig::new(user, &gateway);
            session.transport = config.transport;
            session.sticky = config.sticky;
            sessions.insert(
                user.to_owned(),
                ChatSession::start(session, sink.clone()).await?,
            );
        }
        let poller = tokio::spawn(topology_poller::run(source, sink.clone()));
        let crowd = Arc::new(tokio::sync::Mutex::new(crowd::Crowd::new(&gateway)));
        let crowd_reporter = tokio::spawn(crowd::report_loop(Arc::clone(&crowd), sink.clone()));
        let (commands, rx) = mpsc::unbounded_channel();
        let settings = (config.transport, config.sticky);
        let task = tokio::spawn(async move {
            command_loop(rx, sessions, stack, sink, crowd, settings).await;
            poller.abort();
            crowd_reporter.abort();
        });
        Ok(Engine {
            commands,
            task,
            gateway,
        })
    }

    /// The gateway URL the users talk to.
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// A sender for commands.
    pub fn commands(&self) -> mpsc::UnboundedSender<Command> {
        self.commands.clone()
    }

    /// Waits until the engine stops (after a [`Command::Shutdown`]).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Stops everything and waits for it.
    pub async fn shutdown(self) {
        let _ = self.commands.send(Command::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn command_loop(
    mut rx: mpsc::UnboundedReceiver<Command>,
    mut sessions: HashMap<String, ChatSession>,
    stack: Option<Arc<EmbeddedStack>>,
    sink: EventSink,
    crowd: Arc<tokio::sync::Mutex<crowd::Crowd>>,
    (mut transport, mut sticky): (TransportChoice, bool),
) {
    while let Some(command) = rx.recv().await {
        let targets = |user: &Option<String>| -> Vec<String> {
            match user {
                Some(u) => vec![u.clone()],
                None => USERS.iter().map(|u| u.to_string()).collect(),
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
                    crowd.lock().await.set_sticky(on);
                }
                for u in targets(&user) {
                    if let Some(s) = sessions.get(&u) {
                        s.set_sticky(on);
                    }
                }
            }
            Command::SetTransport { user, transport: t } => {
                if user.is_none() {
                    transport = t;
                    crowd.lock().await.set_transport(t);
                }
                for u in targets(&user) {
                    if let Some(s) = sessions.get(&u) {
                        s.set_transport(t);
                    }
                }
            }
            Command::SetCrowd { size } => crowd.lock().await.resize(size, transport, sticky).await,
            Command::Reconnect { user } => {
                if let Some(s) = sessions.get(&user) {
                    s.reconnect();
                }
            }
            Command::AddReplica => match &stack {
                Some(stack) => {
                    if let Err(e) = stack.add().await {
                        notice(
                            &sink,
                            NoticeLevel::Error,
                            format!("could not add a replica: {e}"),
                        )
                        .await;
                    }
                }
                None => external_only(&sink).await,
            },
            Command::Replica { id, action } => match &stack {
                Some(stack) => {
                    let result = match action {
                        ReplicaAction::Stop => stack.stop(&id).await,
                        ReplicaAction::Kill => stack.kill(&id).await,
                        ReplicaAction::Restart => stack.restart(&id).await,
                        ReplicaAction::Unhealthy => stack.set_healthy(&id, false).await,
                        ReplicaAction::Healthy => stack.set_healthy(&id, true).await,
                    };
                    if let Err(e) = result {
                        notice(&sink, NoticeLevel::Warning, e.to_string()).await;
                    }
                }
                None => external_only(&sink).await,
            },
            Command::ConfigureStack { heartbeat, adapter } => match &stack {
                Some(stack) => {
                    let what = match (&heartbeat, &adapter) {
                        (Some(h), _) => format!(
                            "heartbeat pingInterval {} ms, pingTimeout {} ms",
                            h.interval.as_millis(),
                            h.timeout.as_millis()
                        ),
                        (None, Some(a)) => format!("adapter {a:?}"),
                        (None, None) => "nothing".to_owned(),
                    };
                    match stack.reconfigure(heartbeat, adapter).await {
                        Ok(()) => {
                            notice(
                                &sink,
                                NoticeLevel::Info,
                                format!("replicas restarted with {what}"),
                            )
                            .await
                        }
                        Err(e) => {
                            notice(
                                &sink,
                                NoticeLevel::Error,
                                format!("reconfiguring failed: {e}"),
                            )
                            .await
                        }
                    }
                }
                None => external_only(&sink).await,
            },
            Command::Shutdown => break,
        }
    }
    crowd.lock().await.shutdown().await;
    for (_, session) in sessions.drain() {
        session.shutdown().await;
    }
    if let Some(stack) = stack {
        stack.shutdown().await;
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
