//! Check 8: two chat users on different replicas reach each other — the adapter between
//! replicas, seen through the app's own chat sessions (the same code the window runs).
//! Known only where the chat dialect lets a message be recognised (stickyscope's, the
//! seed's) and the replicas are named. Network.

use std::time::Duration;

use stickyscope_vocab::doctor::{CheckId, CheckResult, Outcome};
use stickyscope_vocab::events::{ChatDialect, Event, SessionState};
use tokio::sync::mpsc;

use super::fixes;
use crate::event_sink::EventSink;
use crate::session::{ChatSession, SessionConfig};

/// How many visitors are opened to find one on another replica than the agent's.
const TRIES: usize = 8;

/// What the check's sessions are.
pub struct Users<'a> {
    /// The gateway.
    pub gateway: &'a str,
    /// A session's configuration (naming, access, Engine.IO, chat), for any user.
    pub template: &'a SessionConfig,
}

/// Waits for a user's session to connect: the replica, when named.
async fn connected(events: &mut mpsc::Receiver<Event>, user: &str) -> Option<Option<String>> {
    let wait = async {
        while let Some(event) = events.recv().await {
            if let Event::Session {
                user: who,
                state: SessionState::Connected { replica, .. },
                ..
            } = event
            {
                if who == user {
                    return Some(replica);
                }
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .ok()
        .flatten()
}

/// Starts `user`'s session.
async fn start(users: &Users<'_>, user: &str) -> Option<(ChatSession, mpsc::Receiver<Event>)> {
    let (sink, events) = EventSink::new(1 << 12, std::sync::Arc::new(|_| {}));
    let mut config = users.template.clone();
    config.user = user.to_owned();
    config.gateway = users.gateway.to_owned();
    ChatSession::start(config, sink)
        .await
        .ok()
        .map(|s| (s, events))
}

/// Check 8.
pub async fn across(users: Users<'_>) -> CheckResult {
    let id = CheckId::AcrossReplicas;
    if users.template.chat == ChatDialect::None {
        return CheckResult::skipped(
            id,
            "the chat is none (--chat none): what the app sends between users is not known",
        );
    }
    let Some((agent, mut agent_events)) = start(&users, "agent").await else {
        return CheckResult::new(id, Outcome::Fail, "the agent's session could not start");
    };
    let agent_on = match connected(&mut agent_events, "agent").await {
        Some(Some(on)) => on,
        Some(None) => {
            agent.shutdown().await;
            return CheckResult::skipped(
                id,
                "nothing names the agent's replica, so users on different replicas cannot be told apart: give --replica-header NAME or --sticky-cookie NAME",
            );
        }
        None => {
            agent.shutdown().await;
            return CheckResult::skipped(
                id,
                "the agent's session did not connect within 10 s (see the stickiness check)",
            );
        }
    };
    let mut evidence = vec![format!("agent connected on replica {agent_on}")];
    let mut found = None;
    for _ in 0..TRIES {
        let Some((visitor, mut events)) = start(&users, "visitor").await else {
            continue;
        };
        match connected(&mut events, "visitor").await {
            Some(Some(on)) if on != agent_on => {
                evidence.push(format!("visitor connected on replica {on}"));
                found = Some((visitor, events, on));
                break;
            }
            Some(Some(on)) => evidence.push(format!(
                "visitor connected on replica {on} (the same; another try)"
            )),
            _ => evidence.push("a visitor's session did not connect".into()),
        }
        visitor.shutdown().await;
    }
    let Some((visitor, mut visitor_events, visitor_on)) = found else {
        agent.shutdown().await;
        return CheckResult::skipped(
            id,
            format!("no visitor landed on a replica other than {agent_on} in {TRIES} tries (see the spread check)"),
        )
        .with_evidence(evidence);
    };
    let text = format!(
        "[stickyscope doctor] do replicas share messages? {}",
        crate::session::driver::run_id()
    );
    agent.send(text.clone()).await;
    evidence.push(format!("agent sent {text:?}"));
    let arrived = async {
        while let Some(event) = visitor_events.recv().await {
            if let Event::Received(received) = event {
                if received.user == "visitor" && received.message.text == text {
                    return true;
                }
            }
        }
        false
    };
    let arrived = tokio::time::timeout(Duration::from_secs(5), arrived)
        .await
        .unwrap_or(false);
    agent.shutdown().await;
    visitor.shutdown().await;
    if arrived {
        evidence.push("visitor received it".into());
        CheckResult::new(
            id,
            Outcome::Pass,
            format!(
                "agent on {agent_on} reached visitor on {visitor_on}: the replicas share messages"
            ),
        )
        .with_evidence(evidence)
    } else {
        evidence.push("visitor received nothing within 5 s".into());
        CheckResult::new(
            id,
            Outcome::Fail,
            format!("agent on {agent_on} did not reach visitor on {visitor_on} within 5 s: the replicas have no adapter between them"),
        )
        .with_evidence(evidence)
        .with_fix(fixes::ADAPTER)
    }
}
