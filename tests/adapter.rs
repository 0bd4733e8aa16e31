//! Broadcast across replicas: agent and visitor on different replicas see each other's
//! messages through the adapter, and do not when it is switched off.

mod common;

use std::time::Duration;

use common::{acked_ok, stack, ChatClient, ClientOptions};
use rust_socketio::TransportType;
use stickyscope::stack::ReplicaControl;
use stickyscope_vocab::stack::Adapter;

async fn users_on_replicas_1_and_2(
    stack: &stickyscope::stack::embedded::EmbeddedStack,
) -> (ChatClient, ChatClient) {
    let replicas = stack.replicas().await;
    let direct = |i: usize| format!("http://{}", replicas[i].addr);
    let agent = ChatClient::connect(
        &direct(0),
        TransportType::Websocket,
        ClientOptions::default(),
    )
    .await
    .expect("agent connects to replica 1");
    let visitor = ChatClient::connect(
        &direct(1),
        TransportType::Websocket,
        ClientOptions::default(),
    )
    .await
    .expect("visitor connects to replica 2");
    (agent, visitor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bus_carries_messages_between_replicas_both_ways() {
    let stack = stack(2, Adapter::Memory).await;
    let (mut agent, mut visitor) = users_on_replicas_1_and_2(&stack).await;

    let ack = agent.send("a1", "agent", "hello visitor").await;
    assert_eq!(ack.as_ref().unwrap()["replica"], "1", "{ack:?}");
    let got = visitor.chat_with_id("a1", Duration::from_secs(5)).await;
    let got = got.expect("visitor on replica 2 receives agent's message");
    assert_eq!(
        (got["from"].as_str(), got["replica"].as_str()),
        (Some("agent"), Some("1"))
    );

    assert!(acked_ok(
        &visitor.send("v1", "visitor", "hello agent").await
    ));
    let got = agent.chat_with_id("v1", Duration::from_secs(5)).await;
    assert_eq!(got.expect("agent receives the reply")["replica"], "2");

    agent.client.disconnect().await.ok();
    visitor.client.disconnect().await.ok();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_adapter_users_on_different_replicas_never_meet() {
    let stack = stack(2, Adapter::None).await;
    let (mut agent, mut visitor) = users_on_replicas_1_and_2(&stack).await;

    assert!(acked_ok(&agent.send("a1", "agent", "anyone?").await));
    // The sender's own copy proves the broadcast happened on replica 1.
    assert!(agent
        .chat_with_id("a1", Duration::from_secs(5))
        .await
        .is_some());
    // An observation window, not a synchronisation: nothing can arrive, so wait a while.
    let leaked = visitor.next_chat(Duration::from_secs(1)).await;
    assert_eq!(leaked, None, "no adapter, yet a message crossed replicas");

    agent.client.disconnect().await.ok();
    visitor.client.disconnect().await.ok();
    stack.shutdown().await;
}
