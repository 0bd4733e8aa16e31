//! Interop with the reference implementation: the official socket.io JS client (npm
//! `socket.io-client` v4) chats through the built-in balancer.
//!
//! `STICKYSCOPE_NODE_MODULES` must name a `node_modules` folder holding socket.io-client;
//! `scripts/test.sh` installs one into a temporary folder and sets it.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::stack;
use serde_json::Value;
use stickyscope::embedded::StackAdapter;
use stickyscope_replica::RequestKind;

async fn run_js_client(url: &str, transports: &str, round_robin: bool) -> Value {
    let modules = std::env::var("STICKYSCOPE_NODE_MODULES").expect(
        "STICKYSCOPE_NODE_MODULES is not set: run scripts/test.sh, which installs socket.io-client",
    );
    assert!(
        Path::new(&modules).join("socket.io-client").is_dir(),
        "{modules}/socket.io-client is missing: run scripts/test.sh"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/chat_client.js");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script).arg(url).arg(transports);
    if round_robin {
        cmd.arg("roundrobin");
    }
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        cmd.env("NODE_PATH", &modules)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node finishes")
    .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "node printed no JSON ({e}): stdout {stdout:?} stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_chats_through_the_sticky_balancer_over_polling() {
    let stack = stack(3, StackAdapter::Memory).await;
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
    let stack = stack(3, StackAdapter::Memory).await;
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
    let stack = stack(3, StackAdapter::Memory).await;
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
