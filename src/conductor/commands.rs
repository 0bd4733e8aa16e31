//! The conductor's command loop: takes the UI's commands in order and carries them out. What
//! changes a session happens at once (sessions never wait on the network) and is said back on
//! the event stream ([`Event::Sticky`], [`Event::Transport`]), so the window learns every
//! setting from the stream alone; what waits on the network — replica operations through the
//! stack's [`ReplicaControl`], crowd changes — goes to a worker of its own, in order, and each
//! replica operation's end is said too ([`Event::StackDone`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stickyscope_contract::chat::USERS;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::events::{
    Command, Event, Notice, NoticeLevel, ReplicaAction, StackOperation, TransportChoice,
};
use stickyscope_vocab::naming::CookieScheme;
use stickyscope_vocab::stack::Adapter;
use stickyscope_vocab::topology::replica_name;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::crowd::Crowd;
use crate::event_sink::EventSink;
use crate::session::{ChatSession, SessionHandle};
use crate::stack::{ReplicaControl, UnexpectedExit};

/// Stack and crowd operations queued for their workers.
const WORK_QUEUE: usize = 64;
/// How long the workers may take to finish what is queued when the conductor stops.
const FINISH_BOUND: Duration = Duration::from_secs(30);

/// An operation on the stack's replicas, done in order by the stack worker.
enum StackOp {
    Add,
    Replica(String, ReplicaAction),
    Configure(Option<Heartbeat>, Option<Adapter>),
}

/// An operation on the crowd, done in order by the crowd worker.
enum CrowdOp {
    Resize(usize, TransportChoice, bool),
    Sticky(bool),
    Transport(TransportChoice),
}

/// Where the command loop hands work that waits on the network (replicas stopping, crowd
/// sessions starting), so that it never waits itself.
pub struct Workers {
    stack: mpsc::Sender<StackOp>,
    crowd: mpsc::Sender<CrowdOp>,
    controls: Option<Arc<dyn ReplicaControl>>,
    sink: EventSink,
    tasks: [JoinHandle<()>; 2],
}

impl Workers {
    /// Starts the stack worker (over `controls`, if the stack has them) and the crowd worker.
    pub fn start(
        controls: Option<Arc<dyn ReplicaControl>>,
        crowd: Arc<tokio::sync::Mutex<Crowd>>,
        sink: EventSink,
    ) -> Workers {
        let (stack, stack_rx) = mpsc::channel(WORK_QUEUE);
        let (crowd_ops, crowd_rx) = mpsc::channel(WORK_QUEUE);
        let tasks = [
            tokio::spawn(stack_worker(stack_rx, controls.clone(), sink.clone())),
            tokio::spawn(crowd_worker(crowd_rx, crowd, sink.clone())),
        ];
        Workers {
            stack,
            crowd: crowd_ops,
            controls,
            sink,
            tasks,
        }
    }

    /// Lets the workers finish what is queued (each operation is bounded), then returns.
    pub async fn finish(self) {
        let Workers {
            stack,
            crowd,
            tasks,
            ..
        } = self;
        drop((stack, crowd));
        for task in tasks {
            let _ = tokio::time::timeout(FINISH_BOUND, task).await;
        }
    }

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

/// Takes the UI's commands in order until [`Command::Shutdown`] (or the channel closes);
/// hands the workers back to be finished. `(transport, sticky)` are both users' at start.
pub async fn command_loop(
    mut rx: mpsc::Receiver<Command>,
    sessions: &HashMap<String, ChatSession>,
    workers: Workers,
    (mut transport, mut sticky): (TransportChoice, bool),
    mut doctor: super::doctoring::DoctorDesk,
) -> Workers {
    let sink = workers.sink.clone();
    for user in USERS {
        say_settings(&sink, user, Some(sticky), Some(transport)).await;
    }
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
                None => no_user(&sink, &user).await,
            },
            Command::SetSticky { user, on } => {
                if user.is_none() {
                    sticky = on;
                    workers.crowd(CrowdOp::Sticky(on)).await;
                }
                for session in targets(&user) {
                    session.set_sticky(on);
                    say_settings(&sink, session.user(), Some(on), None).await;
                }
            }
            Command::SetTransport { user, transport: t } => {
                if user.is_none() {
                    transport = t;
                    workers.crowd(CrowdOp::Transport(t)).await;
                }
                for session in targets(&user) {
                    session.set_transport(t);
                    say_settings(&sink, session.user(), None, Some(t)).await;
                }
            }
            Command::SetCrowd { size } => {
                workers
                    .crowd(CrowdOp::Resize(size, transport, sticky))
                    .await
            }
            Command::SetChat { dialect } => {
                targets(&None).iter().for_each(|s| s.set_chat(dialect));
                doctor.chat = dialect;
            }
            Command::RunDoctor { origin } => doctor.run(origin, &sink).await,
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
                    let controls = workers.controls.clone();
                    tokio::spawn(pin(session.handle(), replica, controls, sink.clone()));
                }
                None => no_user(&sink, &user).await,
            },
            Command::FetchStats => {
                match &workers.controls {
                    Some(controls) => {
                        let (controls, sink) = (Arc::clone(controls), sink.clone());
                        tokio::spawn(async move {
                            sink.send(Event::Stats(controls.read_stats().await)).await;
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
    workers
}

/// Says a user's stickiness and/or transport as they now are.
async fn say_settings(
    sink: &EventSink,
    user: &str,
    sticky: Option<bool>,
    transport: Option<TransportChoice>,
) {
    if let Some(on) = sticky {
        let user = user.to_owned();
        sink.send(Event::Sticky { user, on }).await;
    }
    if let Some(transport) = transport {
        let user = user.to_owned();
        sink.send(Event::Transport { user, transport }).await;
    }
}

/// Sends a user to a replica: Traefik's sticky cookie value for its server URL (the
/// built-in balancer computes it the same way). A replica of a stack stickyscope started is
/// found by id; any other server is named by its address.
async fn pin(
    session: SessionHandle,
    replica: String,
    controls: Option<Arc<dyn ReplicaControl>>,
    sink: EventSink,
) {
    let user = session.user().to_owned();
    let error = pin_to(session, &replica, controls.as_deref()).await.err();
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
    session: SessionHandle,
    replica: &str,
    controls: Option<&dyn ReplicaControl>,
) -> Result<(), String> {
    let url = if replica.contains("://") {
        Some(replica.to_owned())
    } else if replica.contains(':') {
        Some(format!("http://{replica}"))
    } else {
        match controls {
            Some(controls) => controls.replica_url(replica).await,
            None => None,
        }
    };
    let Some(url) = url else {
        return Err(if controls.is_some() {
            format!("there is no replica {replica:?} to pin to")
        } else {
            format!(
                "cannot pin to replica {replica:?}: on a stack stickyscope did not start, name the server by its address (host:port)"
            )
        });
    };
    let value = CookieScheme::TraefikSha256.value(&url);
    session.pin(value, replica_name(replica));
    Ok(())
}

/// A part of the local chain that died on its own: a banner with the end of its log.
pub async fn report_exits(mut exits: mpsc::Receiver<UnexpectedExit>, sink: EventSink) {
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

/// Carries out replica operations in order, each as long as it takes, and says when each is
/// done ([`Event::StackDone`]).
async fn stack_worker(
    mut ops: mpsc::Receiver<StackOp>,
    controls: Option<Arc<dyn ReplicaControl>>,
    sink: EventSink,
) {
    while let Some(op) = ops.recv().await {
        let done = match &op {
            StackOp::Add => StackOperation::Add,
            StackOp::Replica(id, action) => StackOperation::Replica(id.clone(), *action),
            StackOp::Configure(..) => StackOperation::Configure,
        };
        let Some(controls) = &controls else {
            notice(
                &sink,
                NoticeLevel::Info,
                "replica controls work on the stacks stickyscope runs (the embedded stack, the local chain); on Docker Swarm use `docker service scale`".to_owned(),
            )
            .await;
            sink.send(Event::StackDone {
                op: done,
                error: Some("no replica controls on this stack".to_owned()),
            })
            .await;
            continue;
        };
        let error = carry_out(controls.as_ref(), op, &sink).await;
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

/// One replica operation; what went wrong, if anything, and how badly.
async fn carry_out(
    controls: &dyn ReplicaControl,
    op: StackOp,
    sink: &EventSink,
) -> Option<(NoticeLevel, String)> {
    match op {
        StackOp::Add => controls
            .add()
            .await
            .err()
            .map(|e| (NoticeLevel::Error, format!("could not add a replica: {e}"))),
        StackOp::Replica(id, action) => controls
            .act(&id, action)
            .await
            .err()
            .map(|e| (NoticeLevel::Warning, e.to_string())),
        StackOp::Configure(heartbeat, adapter) => {
            let what = match (&heartbeat, &adapter) {
                (Some(h), _) => format!(
                    "heartbeat pingInterval {} ms, pingTimeout {} ms",
                    h.interval.as_millis(),
                    h.timeout.as_millis()
                ),
                (None, Some(a)) => format!("adapter {}", a.label()),
                (None, None) => "nothing".to_owned(),
            };
            match controls.reconfigure(heartbeat, adapter).await {
                Ok(()) => {
                    notice(
                        sink,
                        NoticeLevel::Info,
                        format!("replicas restarted with {what}"),
                    )
                    .await;
                    None
                }
                Err(e) => Some((NoticeLevel::Error, format!("reconfiguring failed: {e}"))),
            }
        }
    }
}

/// Carries out crowd changes in order. A crowd grows a step at a time (the lock is let go
/// between steps, so summaries go on), and a change that arrives meanwhile takes over; a
/// size beyond what the open-file limit holds is cut to it, with a notice saying why.
async fn crowd_worker(
    mut ops: mpsc::Receiver<CrowdOp>,
    crowd: Arc<tokio::sync::Mutex<Crowd>>,
    sink: EventSink,
) {
    let mut target: Option<(usize, TransportChoice, bool)> = None;
    loop {
        let op = match target {
            None => ops.recv().await,
            Some(_) => match tokio::time::timeout(super::crowd::GROWTH_EVERY, ops.recv()).await {
                Ok(op) => op,
                Err(_) => {
                    // No change meanwhile: the next step.
                    if let Some((size, transport, sticky)) = target {
                        if crowd.lock().await.grow_step(size, transport, sticky).await {
                            target = None;
                        }
                    }
                    continue;
                }
            },
        };
        let Some(op) = op else { return };
        let mut crowd = crowd.lock().await;
        match op {
            CrowdOp::Resize(size, transport, sticky) => {
                let size = match crowd.most() {
                    Some((most, soft)) if size > most => {
                        let text = format!(
                            "a crowd of {size} needs more open files than this process may have ({soft}): it stops at {most}. Raise the limit (`ulimit -n`) before starting stickyscope for more."
                        );
                        notice(&sink, NoticeLevel::Warning, text).await;
                        most
                    }
                    _ => size,
                };
                target = (!crowd.grow_step(size, transport, sticky).await)
                    .then_some((size, transport, sticky));
            }
            CrowdOp::Sticky(on) => {
                crowd.set_sticky(on);
                if let Some(t) = &mut target {
                    t.2 = on;
                }
            }
            CrowdOp::Transport(t) => {
                crowd.set_transport(t);
                if let Some(target) = &mut target {
                    target.1 = t;
                }
            }
        }
    }
}

async fn notice(sink: &EventSink, level: NoticeLevel, text: String) {
    sink.send(Event::Notice(Notice { level, text })).await;
}

async fn no_user(sink: &EventSink, user: &str) {
    notice(sink, NoticeLevel::Warning, format!("no user {user:?}")).await;
}
