//! `stickyscope probe`: exit codes and the JSON document against fresh embedded stacks.

mod common;

use std::process::Command;

fn probe(args: &[&str]) -> (i32, serde_json::Value) {
    let (code, json, _) = common::probe_json("4s", args);
    (code, json)
}

#[test]
fn sticky_polling_stays_up() {
    let (code, json) = probe(&["--sessions", "2"]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["verdict"], "ok");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["sessions"].as_array().unwrap().len(), 2);
    let pongs: u64 = json["replicas"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["pongs"].as_u64().unwrap())
        .sum();
    assert!(pongs >= 2, "{json:#}");
}

#[test]
fn round_robin_polling_breaks_with_session_id_unknown() {
    let (code, json) = probe(&["--stickiness", "off"]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["verdict"], "broken");
    let broke = &json["sessions"][0]["broke"];
    assert_eq!(broke["reason"], "Session ID unknown");
    assert!(broke["replica"].is_string(), "where it broke: {broke}");
    let refused: u64 = json["replicas"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|r| r["rejected"]["Session ID unknown"].as_u64())
        .sum();
    assert!(refused >= 1);
}

#[test]
fn round_robin_websocket_stays_up() {
    let (code, json) = probe(&["--stickiness", "off", "--transport", "websocket"]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["verdict"], "ok");
}

/// An unreachable gateway is known at once: the probe stops there (exit 2) rather than
/// waiting out its duration; bad usage exits 2 too.
#[test]
fn an_unreachable_gateway_and_bad_usage_exit_2() {
    let (code, json, _) = common::probe_json("60s", &["--gateway", "http://127.0.0.1:9"]);
    assert_eq!(code, 2, "{json:#}");
    assert_eq!(json["verdict"], "unreachable");
    let probed = json["duration_s"].as_f64().unwrap();
    assert!(probed < 30.0, "stopped once unreachable: {json:#}");
    let usage = Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["probe", "--sessions", "0"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let bad_url = Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["probe", "--gateway", "ftp://nope", "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(bad_url.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad_url.stderr).contains("is not of the form http://host[:port]")
    );
}

/// `probe --chain`: the same verdicts through real nginx and Traefik, on a fresh local chain.
#[test]
fn probe_chain_gives_the_same_verdicts_through_the_real_chain() {
    let (code, json) = probe(&["--chain", "--sessions", "2"]);
    assert_eq!(code, 0, "{json:#}");
    assert!(json["gateway"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let (code, json) = probe(&["--chain", "--stickiness", "off"]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["sessions"][0]["broke"]["reason"], "Session ID unknown");
    let (code, json) = probe(&["--chain", "--stickiness", "off", "--transport", "websocket"]);
    assert_eq!(code, 0, "{json:#}");
}

/// A chain whose program is missing says which, how to install it, and exits 2.
#[test]
fn probe_chain_names_a_missing_program() {
    let out = Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["probe", "--chain", "--duration", "1s"])
        .env("STICKYSCOPE_NGINX", "/nonexistent/nginx")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "nginx not found: STICKYSCOPE_NGINX=/nonexistent/nginx is not an executable file"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/install-chain.sh"), "{stderr}");
}
