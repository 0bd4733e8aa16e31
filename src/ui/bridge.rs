//! Runs the conductor on its own tokio runtime thread and hands the window the two ends it
//! needs: a command sender and an event receiver. The waker repaints the window.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::conductor::{Conductor, ConductorConfig};
use crate::event_sink::{EventSink, Wake, Waker, DEFAULT_CAPACITY};
use stickyscope_contract::chat::USERS;
use stickyscope_vocab::events::{Command, Event, SessionState};

type Started = Result<(String, mpsc::Sender<Command>), String>;

/// The conductor's ends of a [detached](ConductorBridge::detached) bridge.
#[derive(Debug)]
pub struct DetachedConductor {
    /// Events for the window.
    pub events: mpsc::Sender<Event>,
    /// What the window asked for.
    pub commands: mpsc::Receiver<Command>,
}

/// The window's handle on the conductor.
pub struct ConductorBridge {
    commands: Option<mpsc::Sender<Command>>,
    events: mpsc::Receiver<Event>,
    startup: std::sync::mpsc::Receiver<Started>,
    /// The gateway URL once the conductor is up, or why it could not start.
    pub status: Option<Result<String, String>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pending: Vec<Command>,
}

impl ConductorBridge {
    /// Starts the conductor in a background thread; `waker` is called on every event.
    pub fn start(config: ConductorConfig, waker: Waker) -> Self {
        let (sink, events) = EventSink::new(DEFAULT_CAPACITY, Arc::clone(&waker));
        let (startup_tx, startup) = std::sync::mpsc::channel::<Started>();
        let thread = std::thread::Builder::new()
            .name("stickyscope-conductor".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = startup_tx.send(Err(format!("no async runtime: {e}")));
                        waker(Wake::News);
                        return;
                    }
                };
                runtime.block_on(async move {
                    let told = sink.clone();
                    match Conductor::start(config, sink).await {
                        Ok(conductor) => {
                            let _ = startup_tx
                                .send(Ok((conductor.gateway().to_owned(), conductor.commands())));
                            waker(Wake::News);
                            conductor.wait().await;
                        }
                        Err(e) => {
                            // No session will start: the users' panes say why, not
                            // `connecting…` for ever.
                            for user in USERS {
                                told.send(Event::Session {
                                    user: user.to_owned(),
                                    state: SessionState::Failed {
                                        reason: format!(
                                            "not started: the stack could not start: {e}"
                                        ),
                                    },
                                })
                                .await;
                            }
                            let _ = startup_tx.send(Err(e.to_string()));
                            waker(Wake::News);
                        }
                    }
                });
            })
            .ok();
        ConductorBridge {
            commands: None,
            events,
            startup,
            status: None,
            thread,
            pending: Vec::new(),
        }
    }

    /// A bridge with no conductor behind it: the returned [`DetachedConductor`] plays the conductor.
    /// Benchmarks and tests use it to feed the real window generated events.
    pub fn detached(gateway: &str, capacity: usize) -> (Self, DetachedConductor) {
        let (events_tx, events) = mpsc::channel(capacity.max(16));
        let (commands_tx, commands_rx) = mpsc::channel(crate::conductor::COMMAND_QUEUE);
        let (startup_tx, startup) = std::sync::mpsc::channel::<Started>();
        let _ = startup_tx.send(Ok((gateway.to_owned(), commands_tx)));
        (
            ConductorBridge {
                commands: None,
                events,
                startup,
                status: None,
                thread: None,
                pending: Vec::new(),
            },
            DetachedConductor {
                events: events_tx,
                commands: commands_rx,
            },
        )
    }

    /// Takes every event that arrived, and learns whether the conductor started.
    pub fn drain(&mut self, mut each: impl FnMut(Event)) {
        self.check_started();
        self.flush_pending();
        while let Ok(event) = self.events.try_recv() {
            each(event);
        }
    }

    /// Learns whether the conductor started (and its gateway), once it has.
    pub fn check_started(&mut self) {
        if self.status.is_none() {
            if let Ok(started) = self.startup.try_recv() {
                self.status = Some(match started {
                    Ok((gateway, commands)) => {
                        self.commands = Some(commands);
                        Ok(gateway)
                    }
                    Err(e) => Err(e),
                });
            }
        }
    }

    /// Hands queued commands to the conductor, in order, as far as its queue has room.
    fn flush_pending(&mut self) {
        let Some(tx) = &self.commands else { return };
        while let Some(command) = self.pending.first() {
            match tx.try_send(command.clone()) {
                Ok(()) => {
                    self.pending.remove(0);
                }
                Err(mpsc::error::TrySendError::Full(_)) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    /// Sends a command. The window never waits: when the conductor is not up yet or its
    /// queue is full, the command waits here, in order, and goes on the next frame.
    pub fn send(&mut self, command: Command) {
        self.pending.push(command);
        self.flush_pending();
    }

    /// Commands waiting for room in the conductor's queue.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Stops the conductor and waits for its thread (bounded by the conductor's own shutdown).
    pub fn shutdown(&mut self) {
        if self.commands.is_none() && self.status.is_none() {
            // Still starting: wait for it to finish starting, then stop it.
            if let Ok(Ok((_, tx))) = self
                .startup
                .recv_timeout(std::time::Duration::from_secs(15))
            {
                self.commands = Some(tx);
            }
        }
        self.flush_pending();
        if let Some(tx) = self.commands.take() {
            // The queue drains quickly; waiting for room is bounded.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut shutdown = Command::Shutdown;
            while let Err(mpsc::error::TrySendError::Full(back)) = tx.try_send(shutdown) {
                if std::time::Instant::now() >= deadline {
                    break;
                }
                shutdown = back;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ConductorBridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}
