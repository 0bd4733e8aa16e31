//! The `stickyscope-replica` binary: `--healthcheck` (the container health check) says
//! healthy for a serving replica and unhealthy, exit 1, for nothing listening.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn healthcheck_flag_tells_serving_from_gone() {
    let bin = env!("CARGO_BIN_EXE_stickyscope-replica");
    let mut child = tokio::process::Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--id", "hc"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line.rsplit(' ').next().unwrap().to_owned();

    let healthy = Command::new(bin)
        .args(["--healthcheck", "--listen", &addr])
        .status()
        .unwrap();
    assert!(healthy.success());
    child.kill().await.unwrap();
    let _ = child.wait().await;
    let gone = Command::new(bin)
        .args(["--healthcheck", "--listen", &addr])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).starts_with("unhealthy:"));
}

#[test]
fn out_of_range_heartbeats_are_usage_errors_not_panics() {
    let bin = env!("CARGO_BIN_EXE_stickyscope-replica");
    for args in [["--ping-interval", "0s"], ["--ping-timeout", "11m"]] {
        let out = Command::new(bin)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("out of range"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn an_empty_or_unsendable_id_is_a_usage_error() {
    let bin = env!("CARGO_BIN_EXE_stickyscope-replica");
    for id in ["", "two words"] {
        let out = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--id", id])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{id:?}: {stderr}");
        assert!(stderr.contains("--id"), "{stderr}");
        assert!(stderr.contains("replica id"), "{stderr}");
    }
}
