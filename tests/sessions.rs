//! Chat sessions through wire taps against the embedded stack.

mod common;

use std::time::Duration;

use common::{stack, wait_for, Collected};
use stickyscope::embedded::StackAdapter;
use stickyscope::events::{Event, OutboxStatus};
use stickyscope::session::{ChatSession, SessionConfig, SessionState, TransportChoice};

async fn pair(
    gateway: &str,
    transport: TransportChoice,
    sink: &stickyscope::events::sink::EventSink,
) -> (ChatSession, ChatSession) {
    let mut agent = SessionConfig::new("agent", gateway);
    agent.transport = transport;
    let mut visitor = SessionConfig::new("visitor", gateway);
    visitor.transport = transport;
    (
        ChatSession::start(agent, sink.clone()).await.unwrap(),
        ChatSession::start(visitor, sink.clone()).await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_and_visitor_chat_through_their_taps() {
    let stack = stack(3, StackAdapter::Memory).await;
    let (sink, seen) = Collected::sink();
    let (agent, visitor) = pair(&stack.gateway_url(), TransportChoice::Polling, &sink).await;
    wait_for(Duration::from_secs(10), "both connected", || {
        let seen = seen.clone();
        async move { seen.connected("agent") && seen.connected("visitor") }
    })
    .await;

    let id = agent.send("hello visitor").await.unwrap();
    wait_for(Duration::from_secs(10), "delivery receipt", || {
        let seen = seen.clone();
        let id = id.clone();
        async move {
            seen.events().iter().any(|e| matches!(e, Event::Outbox(u) if u.id == id && matches!(u.status, OutboxStatus::Delivered { .. })))
        }
    })
    .await;
    let got = seen.received("visitor");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message.text, "hello visitor");
    let visitor_replica = seen.state("visitor").unwrap();
    assert_eq!(got[0].delivered_by.as_deref(), visitor_replica.replica());

    // Every wire record of a sticky session names one replica per user.
    for user in ["agent", "visitor"] {
        let replicas: std::collections::BTreeSet<String> = seen
            .wire()
            .into_iter()
            .filter(|w| w.user == user)
            .filter_map(|w| w.replica)
            .collect();
        assert_eq!(replicas.len(), 1, "{user}: {replicas:?}");
    }
    agent.shutdown().await;
    visitor.shutdown().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_polling_shows_the_exact_refusal_and_recovers_when_sticky_again() {
    let stack = stack(3, StackAdapter::Memory).await;
    let (sink, seen) = Collected::sink();
    let mut config = SessionConfig::new("agent", &stack.gateway_url());
    config.sticky = false;
    let agent = ChatSession::start(config, sink.clone()).await.unwrap();
    wait_for(Duration::from_secs(10), "a Session ID unknown refusal", || {
        let seen = seen.clone();
        async move {
            matches!(seen.state("agent"), Some(SessionState::Reconnecting { reason, .. }) if reason == "Session ID unknown")
        }
    })
    .await;
    assert!(!seen.connected("agent"));
    agent.set_sticky(true);
    wait_for(Duration::from_secs(10), "connected once sticky", || {
        let seen = seen.clone();
        async move { seen.connected("agent") }
    })
    .await;
    agent.shutdown().await;
    stack.shutdown().await;
}
