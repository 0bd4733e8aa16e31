//! Scenarios, headless: every shipped scenario passes on a fresh embedded stack; a wrong
//! expectation fails naming the step, the expectation and what was seen; `stickyscope
//! scenario run` exits 0, 1 or 2 as documented, with JSON and JUnit XML; a bad file and
//! an action the stack cannot do are refused with file, line and column before anything
//! runs.

mod common;

use std::process::Command;

use stickyscope::scenario::run::{run, RunTarget};
use stickyscope::scenario::shipped::SHIPPED;
use stickyscope::scenario::Status;
use stickyscope::stack::ReplicaControl;

async fn run_shipped(name: &str) {
    let shipped = SHIPPED.iter().find(|s| s.name == name).expect("shipped");
    let scenario = stickyscope::scenario::parse(shipped.name, shipped.source).unwrap();
    let report = run(shipped.name, &scenario, &RunTarget::Embedded, |_| {})
        .await
        .unwrap();
    assert!(
        report.passed,
        "{}",
        stickyscope::scenario::report::table(std::slice::from_ref(&report))
    );
    assert_eq!(report.steps.len(), scenario.steps.len());
}

macro_rules! shipped_passes {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                run_shipped($name).await;
            }
        )*
        /// Every shipped scenario has its test above.
        #[test]
        fn every_shipped_scenario_is_tested() {
            let tested = [$($name),*];
            for shipped in SHIPPED {
                assert!(tested.contains(&shipped.name), "{} has no test", shipped.name);
            }
        }
    };
}

shipped_passes! {
    shipped_1_one_replica => "1-one-replica",
    shipped_2_round_robin => "2-round-robin",
    shipped_3_sticky_cookie => "3-sticky-cookie",
    shipped_4_websocket_only => "4-websocket-only",
    shipped_5_upgrade_without_stickiness => "5-upgrade-without-stickiness",
    shipped_6_seed_flaw_adapter => "6-seed-flaw-adapter",
    shipped_7_failover => "7-failover",
}

const WRONG: &str = r#"title = "A wrong expectation"

[stack]
replicas = 3

[start]
stickiness = "off"

[[step]]
title = "Round-robin polling, expected to connect"
within = "3s"
expect = [{ connected = "agent" }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expectation_fails_naming_the_step_the_expectation_and_what_was_seen() {
    let scenario = stickyscope::scenario::parse("wrong.toml", WRONG).unwrap();
    let report = run("wrong.toml", &scenario, &RunTarget::Embedded, |_| {})
        .await
        .unwrap();
    assert!(!report.passed);
    let step = &report.steps[0];
    assert_eq!(step.title, "Round-robin polling, expected to connect");
    assert_eq!(step.outcomes[0].status, Status::Failed);
    assert_eq!(step.outcomes[0].expectation, "agent connected");
    assert!(
        step.outcomes[0].observed.contains("Session ID unknown"),
        "{:?}",
        step.outcomes[0]
    );
}

fn scratch(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stickyscope-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn scenario_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .arg("scenario")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_exits_0_and_1_with_json_and_junit() {
    let junit = std::env::temp_dir().join(format!("stickyscope-junit-{}.xml", std::process::id()));
    let junit_arg = junit.to_string_lossy().into_owned();
    let (code, out, err) = scenario_cli(&["run", "4", "--json", "--junit", &junit_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["scenarios"][0]["file"], "4-websocket-only");
    assert_eq!(
        doc["scenarios"][0]["steps"][0]["outcomes"][0]["status"],
        "passed"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(
            "<testsuite name=\"WebSocket only: no stickiness needed\" tests=\"2\" failures=\"0\""
        ),
        "{xml}"
    );

    let wrong = scratch("wrong.toml", WRONG);
    let (code, out, _) = scenario_cli(&["run", &wrong.to_string_lossy(), "--junit", &junit_arg]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("✗ agent connected"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<failure message=\"expected agent connected; saw agent"),
        "{xml}"
    );
}

#[test]
fn bad_files_and_impossible_actions_exit_2_before_anything_runs() {
    let bad = scratch(
        "bad.toml",
        "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ jump = \"high\" }]\n",
    );
    let (code, _, err) = scenario_cli(&["run", &bad.to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:4:7: unknown action"),
        "file, line and column: {err}"
    );

    let kill = scratch(
        "kill.toml",
        "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ kill = \"1\" }]\n",
    );
    // Refused before any connection is tried: the gateway is not even there.
    let (code, _, err) = scenario_cli(&[
        "run",
        &kill.to_string_lossy(),
        "--gateway",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("kill.toml:4:7: cannot kill replica 1 here"),
        "{err}"
    );

    // An unreachable gateway, and URLs that cannot be one: the same words as the probe's.
    let (code, _, err) = scenario_cli(&["run", "4", "--gateway", "http://127.0.0.1:9"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("connection refused by the gateway at 127.0.0.1:9"),
        "{err}"
    );
    for (url, words) in [
        ("notaurl", "is not of the form http://host[:port]"),
        ("ftp://127.0.0.1:9", "is not of the form http://host[:port]"),
        (
            "https://127.0.0.1:9",
            "connection refused by the gateway at 127.0.0.1:9",
        ),
    ] {
        let (code, _, err) = scenario_cli(&["run", "4", "--gateway", url]);
        assert_eq!(code, 2, "{url}: {err}");
        assert!(err.contains(words), "{url}: {err}");
        let probe = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
            .args(["probe", "--gateway", url])
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&probe.stdout),
            String::from_utf8_lossy(&probe.stderr)
        );
        assert_eq!(probe.status.code(), Some(2), "{url}: {said}");
        assert!(said.contains(words), "{url}: {said}");
    }

    let (code, _, err) = scenario_cli(&["run", "no-such-scenario"]);
    assert_eq!(code, 2);
    assert!(err.contains("no shipped scenario is called so"), "{err}");

    let (code, out, _) = scenario_cli(&["list"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), SHIPPED.len(), "{out}");
}

/// The seed's flaw on the real chain: Redis is the adapter the `adapter = "on"` step
/// starts, and Traefik computes the pins' cookies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_flaw_plays_on_the_real_chain() {
    let shipped = SHIPPED
        .iter()
        .find(|s| s.name == "6-seed-flaw-adapter")
        .unwrap();
    let scenario = stickyscope::scenario::parse(shipped.name, shipped.source).unwrap();
    let target = RunTarget::Chain(Box::new(common::chain_config(3)));
    let report = run(shipped.name, &scenario, &target, |_| {}).await.unwrap();
    assert!(
        report.passed,
        "{}",
        stickyscope::scenario::report::table(std::slice::from_ref(&report))
    );
}

/// On a running stack (`--gateway`), a scenario that needs no replica controls runs as it
/// would anywhere: the WebSocket scenario passes against a stack started elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_runs_on_a_stack_given_by_its_gateway() {
    let stack = common::stack(3, stickyscope_vocab::stack::Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["scenario", "run", "4-websocket-only", "--gateway", &gateway])
        .output()
        .await
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("PASS: 2 of 2 steps passed"), "{text}");
    stack.shutdown().await;
}
