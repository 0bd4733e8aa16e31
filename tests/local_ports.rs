//! This machine running out of ephemeral ports, for real: in a network namespace of its own
//! (`unshare -n`, as root) whose `net.ipv4.ip_local_port_range` is 20 ports wide, a stack
//! listens outside that range and the probe opens more polling sessions than the range has
//! ports. The sessions that got no local port are named as this machine's limit, with the
//! range, and left out of the stack's verdict; those that connected are judged as usual.

use std::process::Command;

/// Runs `script` in a fresh network namespace with loopback up and 20 ephemeral ports.
fn in_small_port_range(script: &str) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_stickyscope");
    let prelude =
        "set -e; ip link set lo up; echo '40000 40019' > /proc/sys/net/ipv4/ip_local_port_range;";
    Command::new("unshare")
        .args(["-n", "bash", "-c"])
        .arg(format!("{prelude} BIN={bin}; {script}"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("unshare runs (the tests run as root, as the swarm's do)")
}

#[test]
fn sessions_without_a_local_port_are_this_machines_limit_not_the_stacks() {
    // The stack's own listeners sit outside the range (the balancer on 30000; its replicas
    // take three ports of the twenty): the probe's connections to the balancer have about
    // seventeen local ports to use, for thirty sessions opened over two seconds (each holds
    // a poll, and its posts need a connection too).
    let out = in_small_port_range(
        "$BIN embedded --port 30000 --ping-interval 25s --ping-timeout 20s >/dev/null 2>&1 & \
         stack=$!; \
         for i in $(seq 100); do \
           (exec 3<>/dev/tcp/127.0.0.1/30000) 2>/dev/null && break; sleep 0.1; \
         done; \
         set +e; \
         $BIN probe --gateway http://127.0.0.1:30000 --sessions 30 --ramp 2s --duration 5s --json; \
         code=$?; kill $stack; wait $stack; exit $code",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Operation not permitted"),
        "unshare -n needs root: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("the probe's JSON ({e}): {stdout}\n{stderr}"));
    assert_eq!(report["verdict"], "not_all_tested", "{report:#}");
    assert_eq!(out.status.code(), Some(2));
    let ports = &report["local_ports_exhausted"];
    let limited = ports["sessions"].as_u64().expect("a count");
    assert!(limited >= 5, "{report:#}");
    let reason = ports["reason"].as_str().expect("words");
    assert!(
        reason.contains("no local port left on this machine")
            && reason.contains("40000–40019")
            && reason.contains("not the stack's"),
        "{reason}"
    );
    // Those that connected stayed up on their replica, and were counted there.
    let connected = report["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["broke"].is_null())
        .count();
    assert!(connected >= 3, "{report:#}");
    assert_eq!(connected as u64 + limited, 30, "{report:#}");
    let handshakes: u64 = report["replicas"]
        .as_object()
        .expect("replicas")
        .values()
        .map(|r| r["handshakes"].as_u64().unwrap_or(0))
        .sum();
    assert!(handshakes >= connected as u64, "{report:#}");
}

#[test]
fn the_table_says_whose_limit_it_is() {
    let out = in_small_port_range(
        "$BIN embedded --port 30000 >/dev/null 2>&1 & stack=$!; \
         for i in $(seq 100); do \
           (exec 3<>/dev/tcp/127.0.0.1/30000) 2>/dev/null && break; sleep 0.1; \
         done; \
         set +e; \
         $BIN probe --gateway http://127.0.0.1:30000 --sessions 40 --duration 3s; \
         code=$?; kill $stack; wait $stack; exit $code",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("NOT ALL TESTED: every session that connected stayed up")
            && stdout.contains("THIS MACHINE'S LIMIT:")
            && !stdout.contains("BROKEN"),
        "{stdout}"
    );
}
