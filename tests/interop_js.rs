//! Interop with the reference implementation: the official socket.io JS client (npm
//! `socket.io-client` v4) chats through the built-in balancer.
//!
//! `STICKYSCOPE_NODE_MODULES` must name a `node_modules` folder holding socket.io-client;
//! `scripts/test.sh` installs one into a temporary folder and sets it.

mod common;

use common::{run_js_client, stack};
use stickyscope::stack::ReplicaControl;
use stickyscope_contract::RequestKind;
use stickyscope_vocab::stack::Adapter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_chats_through_the_sticky_balancer_over_polling() {
    let stack = stack(3, Adapter::Memory).await;
    let result = run_js_client(&stack.gateway_url(), "polling", false).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["ack"]["ok"], true, "{result}");
    assert_eq!(result["echo"]["from"], "visitor");
    assert!(result["pings"].as_u64().unwrap() >= 3);
    let holder = result["ack"]["replica"].as_str().unwrap().to_owned();

    for replica in stack.replicas().await {
        let s = replica.stats;
        if replica.id == holder {
            assert!(s.requests_of(RequestKind::PollGet) >= 3, "{s:?}");
            assert!(s.rejected.is_empty(), "{:?}", s.rejected);
        } else {
            assert_eq!(
                s.total_requests(),
                0,
                "replica {} saw requests: {s:?}",
                replica.id
            );
        }
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_upgrades_to_websocket_through_the_sticky_balancer() {
    let stack = stack(3, Adapter::Memory).await;
    let result = run_js_client(&stack.gateway_url(), "polling,websocket", false).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["transport"], "websocket", "{result}");
    let holder = result["ack"]["replica"].as_str().unwrap().to_owned();
    let s = stack.stats(&holder).await.unwrap();
    assert_eq!(s.requests_of(RequestKind::Upgrade), 1);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_fails_round_robin_polling_with_session_id_unknown() {
    let stack = stack(3, Adapter::Memory).await;
    let result = run_js_client(&stack.gateway_url(), "polling", true).await;
    assert_eq!(result["ok"], false, "{result}");
    let refused: u64 = stack
        .replicas()
        .await
        .iter()
        .map(|r| r.stats.rejected_for("Session ID unknown"))
        .sum();
    assert!(refused >= 1, "replicas refused the strays");
    stack.shutdown().await;
}
