//! The network side as one piece: the stack (the embedded one, the local chain, or a running
//! one), one chat session per user, the topology poller, the crowd, and the command loop. It
//! talks to the UI only through the event stream ([`stickyscope_vocab::events::Event`] through
//! [`crate::event_sink::EventSink`]) and the command channel
//! ([`stickyscope_vocab::events::Command`]); nothing here knows about egui, and nothing here
//! knows which stack it runs on: replicas are controlled through
//! [`crate::stack::ReplicaControl`].
//!
//! - [`commands`]: the command loop and the workers that carry out what waits on the network;
//! - [`crowd`]: background sessions;
//! - [`doctoring`]: the doctor's checklist on the stack, when the window asks;
//! - [`topology_poller`]: the stack's topology, read every second.

pub mod commands;
pub mod crowd;
pub mod doctoring;
pub mod topology_poller;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stickyscope_contract::chat::USERS;
use stickyscope_vocab::events::{
    ChatDialect, Command, Event, Notice, NoticeLevel, TransportChoice,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::event_sink::EventSink;
use crate::session::{ChatSession, SessionConfig};
use crate::stack::{GatewayConfig, StackError};
use crate::wire::tap::TapError;
use topology_poller::TopologySource;

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
    pub chat: ChatDialect,
}

impl ConductorConfig {
    /// Both users sticky, long-polling, speaking stickyscope's chat, on `gateway`.
    pub fn new(gateway: GatewayConfig) -> Self {
        ConductorConfig {
            gateway,
            transport: TransportChoice::Polling,
            sticky: true,
            chat: ChatDialect::default(),
        }
    }
}

/// Why the conductor could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    /// The stack failed.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// A wire tap failed.
    #[error(transparent)]
    Tap(#[from] TapError),
}

/// Commands the UI may queue before the conductor takes them.
pub const COMMAND_QUEUE: usize = 1024;

/// A running conductor.
#[derive(Debug)]
pub struct Conductor {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    gateway: String,
}

impl Conductor {
    /// Starts the stack (or takes the running one), the sessions and the poller; events go
    /// to `sink`.
    pub async fn start(
        config: ConductorConfig,
        sink: EventSink,
    ) -> Result<Conductor, ConductorError> {
        let fixed = config.gateway.identify();
        let engineio = config.gateway.engineio();
        let access = config.gateway.access();
        if access.insecure {
            sink.send(Event::Notice(Notice {
                level: NoticeLevel::Warning,
                text: "--insecure: the gateway's TLS certificate is NOT checked; anyone between here and the gateway could read and change this traffic".to_owned(),
            }))
            .await;
        }
        let gateway_config = config.gateway.clone();
        let stack_in_process = matches!(gateway_config, GatewayConfig::Embedded(_));
        let stack = crate::stack::start(config.gateway).await?;
        let doctor = doctoring::DoctorDesk::new(
            crate::doctor::Target::of(&stack, &gateway_config),
            config.chat,
        );
        if let Some(exits) = stack.exits {
            tokio::spawn(commands::report_exits(exits, sink.clone()));
        }
        let (gateway, controls) = (stack.gateway, stack.controls);
        let (learner, naming) = fixed.learner();
        let mut sessions = HashMap::new();
        for user in USERS {
            let mut session = SessionConfig::new(user, &gateway);
            session.transport = config.transport;
            session.sticky = config.sticky;
            session.naming = naming.clone();
            session.chat = config.chat;
            session.engineio = engineio;
            session.access = access.clone();
            sessions.insert(
                user.to_owned(),
                ChatSession::start(session, sink.clone()).await?,
            );
        }
        let source = TopologySource {
            api: stack.topology,
            controls: controls.clone(),
        };
        let poller = tokio::spawn(topology_poller::run(source, sink.clone(), learner));
        let crowd = Arc::new(tokio::sync::Mutex::new(crowd::Crowd::new(
            &gateway,
            naming,
            engineio,
            access,
            stack_in_process,
        )));
        let crowd_reporter = tokio::spawn(crowd::report_loop(Arc::clone(&crowd), sink.clone()));
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let settings = (config.transport, config.sticky);
        let task = tokio::spawn(async move {
            let workers = commands::Workers::start(controls.clone(), Arc::clone(&crowd), sink);
            let workers = commands::command_loop(rx, &sessions, workers, settings, doctor).await;
            poller.abort();
            crowd_reporter.abort();
            // Operations already queued finish first (each is bounded), then everything
            // stops in order.
            workers.finish().await;
            crowd.lock().await.shutdown().await;
            futures_util::future::join_all(sessions.into_values().map(ChatSession::shutdown)).await;
            if let Some(controls) = controls {
                controls.shutdown().await;
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
