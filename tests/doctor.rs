//! `stickyscope doctor` against the real programs: the healthy local chain (nginx →
//! Traefik 3.7.15 → replica processes → Redis), where every check passes, and the chain
//! broken in one way at a time — through its nginx.conf, the stack file's Traefik labels,
//! or its replicas — where the check for that fault fails and names its cause. A doctor
//! that cannot fail is no doctor.
//!
//! Needs nginx, redis-server and Traefik (`scripts/install-chain.sh`); a missing one fails
//! the test, saying which.

mod common;

use std::time::Duration;

use stickyscope::doctor::{self, render, DoctorOptions};
use stickyscope::stack::chain::swarm_file::SwarmFile;
use stickyscope::stack::chain::ChainConfig;
use stickyscope::stack::GatewayConfig;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::doctor::{CheckId, DoctorReport, Outcome};
use stickyscope_vocab::stack::Adapter;

/// The page's origin the healthy chain's replicas allow.
const ORIGIN: &str = "http://app.localhost:8080";

/// A heartbeat that keeps the held session short (held 4 s).
const QUICK: Heartbeat = Heartbeat {
    interval: Duration::from_secs(1),
    timeout: Duration::from_secs(2),
};

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` with each `(from, to)` replaced; each `from` must be there.
fn changed(text: &str, changes: &[(&str, &str)]) -> String {
    let mut text = text.to_owned();
    for (from, to) in changes {
        assert!(text.contains(from), "{from:?} is no longer in the file");
        text = text.replace(from, to);
    }
    text
}

/// The chain with three replicas that allow [`ORIGIN`], a quick heartbeat, and the stack
/// file's labels and nginx.conf as `labels` and `nginx` change them.
fn chain(labels: &[(&str, &str)], nginx: &[(&str, &str)]) -> ChainConfig {
    let mut config = common::chain_config(3);
    config.heartbeat = QUICK;
    config.replica_program.args = vec!["replica".into(), "--cors-origin".into(), ORIGIN.into()];
    config.swarm_file = SwarmFile::parse(&changed(&repo_file("docker-swarm.yml"), labels))
        .expect("the changed stack file reads");
    config.nginx_conf = changed(&repo_file("stack/nginx/nginx.conf"), nginx);
    config
}

/// One chain at a time: each runs six processes and a burst of sessions, and the checks
/// time what they see.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The doctor's report on the chain `config` makes.
async fn doctor_on(config: ChainConfig, origin: Option<&str>) -> DoctorReport {
    let _one = ONE_AT_A_TIME.lock().await;
    let gateway = GatewayConfig::Chain(config);
    let stack = stickyscope::stack::start(gateway.clone())
        .await
        .unwrap_or_else(|e| panic!("the chain starts: {e}"));
    let options = DoctorOptions {
        origin: origin.map(str::to_owned),
        ..DoctorOptions::default()
    };
    let report = doctor::run(&doctor::Target::of(&stack, &gateway), &options, |_| {})
        .await
        .unwrap_or_else(|e| panic!("the doctor runs: {e}"));
    if let Some(controls) = stack.controls {
        controls.shutdown().await;
    }
    // The report as the command prints it (`--nocapture` shows it).
    println!("{}", render::text(&report));
    report
}

/// Check `id` failed, and its summary (or fix) says each of `words`.
fn assert_fails(report: &DoctorReport, id: CheckId, words: &[&str]) {
    let text = render::text(report);
    let check = report
        .check(id)
        .unwrap_or_else(|| panic!("no check {id:?}:\n{text}"));
    assert_eq!(
        check.outcome,
        Outcome::Fail,
        "check {id:?} should fail:\n{text}"
    );
    let said = format!(
        "{} {}",
        check.summary,
        check.fix.clone().unwrap_or_default()
    );
    for word in words {
        assert!(
            said.contains(word),
            "check {id:?} does not say {word:?}:\n{text}"
        );
    }
    assert_eq!(report.exit_code(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_healthy_chain_passes_every_check() {
    let report = doctor_on(chain(&[], &[]), Some(ORIGIN)).await;
    let text = render::text(&report);
    println!("{text}");
    for check in &report.checks {
        assert_eq!(check.outcome, Outcome::Pass, "{:?}:\n{text}", check.id);
    }
    assert_eq!(report.checks.len(), CheckId::ALL.len());
    assert_eq!(report.exit_code(), 0);
    assert!(report.millis < 60_000, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_router_on_the_round_robin_service_breaks_stickiness_and_is_named() {
    // The round-robin router matches every Socket.IO request, not only those that ask for
    // it, and outranks the sticky one: the sticky service is configured, and unused.
    let report = doctor_on(
        chain(
            &[(
                "traefik.http.routers.socketio-roundrobin.rule=PathPrefix(`/socket.io`) && Header(`X-Stickiness`, `off`)",
                "traefik.http.routers.socketio-roundrobin.rule=PathPrefix(`/socket.io`)",
            )],
            &[],
        ),
        None,
    )
    .await;
    assert_fails(
        &report,
        CheckId::Sticky,
        &[
            "Session ID unknown",
            "set no sticky cookie sticky_replica",
            "routers.<router>.service",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_samesite_none_cookie_without_secure_is_refused_as_browsers_do_and_named() {
    let report = doctor_on(
        chain(
            &[("sticky.cookie.sameSite=lax", "sticky.cookie.sameSite=none")],
            &[],
        ),
        None,
    )
    .await;
    assert_fails(
        &report,
        CheckId::Sticky,
        &[
            "browsers refuse the balancer's cookie",
            "sticky.cookie.secure=true",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_router_without_the_sticky_service_leaves_websocket_first_clients_unpinned() {
    let ws_router = "        - \"traefik.http.routers.socketio-ws.entrypoints=web\"\n        - \"traefik.http.routers.socketio-ws.rule=PathPrefix(`/socket.io`) && Query(`transport`, `websocket`)\"\n        - \"traefik.http.routers.socketio-ws.priority=30\"\n        - \"traefik.http.routers.socketio-ws.service=replicas-roundrobin\"\n";
    let anchor =
        "        - \"traefik.http.routers.socketio-roundrobin.service=replicas-roundrobin\"\n";
    let report = doctor_on(
        chain(&[(anchor, &format!("{anchor}{ws_router}"))], &[]),
        None,
    )
    .await;
    assert_fails(
        &report,
        CheckId::CookieOnUpgrade,
        &[
            "the 101 sets no cookie sticky_replica",
            "WebSocket-first client is never pinned",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_drops_the_upgrade_header_is_named_with_the_directives() {
    let report = doctor_on(
        chain(
            &[],
            &[
                ("proxy_set_header Upgrade $http_upgrade;", ""),
                ("proxy_set_header Connection $connection_upgrade;", ""),
            ],
        ),
        None,
    )
    .await;
    assert_fails(
        &report,
        CheckId::Upgrade,
        &[
            "did not pass a proxy",
            "proxy_set_header Upgrade $http_upgrade;",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_timeout_below_the_ping_interval_cuts_long_polls_and_is_named() {
    let mut config = chain(
        &[],
        &[("proxy_read_timeout 75s;", "proxy_read_timeout 1s;")],
    );
    config.heartbeat = Heartbeat {
        interval: Duration::from_secs(3),
        timeout: Duration::from_secs(7),
    };
    let report = doctor_on(config, None).await;
    assert_fails(
        &report,
        CheckId::LongPoll,
        &[
            "cut after",
            "504",
            "proxy_read_timeout 20s; # > pingInterval 3 s + pingTimeout 7 s",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_cors_credentials_is_named_with_the_option() {
    let mut config = chain(&[], &[]);
    config.replica_program.args = vec!["replica".into(), "--cors-origin".into(), "*".into()];
    let report = doctor_on(config, Some(ORIGIN)).await;
    assert_fails(
        &report,
        CheckId::Cors,
        &[
            "allows any origin (*)",
            "credentials: true",
            "--cors-origin http://app.localhost:8080",
        ],
    );
    let mut config = chain(&[], &[]);
    config.replica_program.args = vec!["replica".into()];
    let report = doctor_on(config, Some(ORIGIN)).await;
    assert_fails(&report, CheckId::Cors, &["no Access-Control-Allow-Origin"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balancer_that_hashes_the_client_address_puts_every_session_on_one_replica() {
    let report = doctor_on(
        chain(
            &[
                (
                    "traefik.http.services.replicas-sticky.loadbalancer.sticky.cookie=true",
                    "traefik.http.services.replicas-sticky.loadbalancer.strategy=hrw",
                ),
                ("        - \"traefik.http.services.replicas-sticky.loadbalancer.sticky.cookie.name=sticky_replica\"\n", ""),
                ("        - \"traefik.http.services.replicas-sticky.loadbalancer.sticky.cookie.httpOnly=true\"\n", ""),
                ("        - \"traefik.http.services.replicas-sticky.loadbalancer.sticky.cookie.sameSite=lax\"\n", ""),
            ],
            &[],
        ),
        None,
    )
    .await;
    assert_fails(
        &report,
        CheckId::Spread,
        &["while 3 are up", "by client address"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_without_an_adapter_never_reach_each_others_users() {
    let mut config = chain(&[], &[]);
    config.adapter = Adapter::None;
    let report = doctor_on(config, None).await;
    assert_fails(
        &report,
        CheckId::AcrossReplicas,
        &["no adapter", "@socket.io/redis-adapter"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tight_rate_limit_refuses_a_burst_of_sessions_and_is_named() {
    let report = doctor_on(
        chain(
            &[],
            &[
                (
                    "zone=new_sessions:10m rate=100r/s",
                    "zone=new_sessions:10m rate=2r/s",
                ),
                (
                    "limit_req zone=new_sessions burst=600 nodelay;",
                    "limit_req zone=new_sessions burst=5 nodelay;",
                ),
            ],
        ),
        None,
    )
    .await;
    assert_fails(
        &report,
        CheckId::Headroom,
        &["429 Too Many Requests", "burst=600"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balancer_without_a_health_check_keeps_a_dead_replicas_users_and_is_named() {
    let report = doctor_on(
        chain(
            &[
                ("        - \"traefik.http.services.replicas-sticky.loadbalancer.healthcheck.path=/healthz\"\n", ""),
                ("        - \"traefik.http.services.replicas-sticky.loadbalancer.healthcheck.interval=1s\"\n", ""),
                ("        - \"traefik.http.services.replicas-sticky.loadbalancer.healthcheck.timeout=1s\"\n", ""),
                // The passive check too: it alone would also take a dead replica out.
                ("        - \"traefik.http.services.replicas-sticky.loadbalancer.passivehealthcheck.maxfailedattempts=1\"\n", ""),
                ("        - \"traefik.http.services.replicas-sticky.loadbalancer.passivehealthcheck.failurewindow=3s\"\n", ""),
            ],
            &[],
        ),
        None,
    )
    .await;
    assert_fails(
        &report,
        CheckId::Failover,
        &[
            "does not notice a dead replica",
            "healthcheck.path=/healthz",
        ],
    );
}

/// `stickyscope doctor ARGS`: exit code, stdout, stderr.
fn doctor_cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .arg("doctor")
        .args(args)
        .output()
        .expect("stickyscope runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_reports_a_broken_gateway_as_json_and_junit_and_exits_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut config = chain(&[], &[]);
    config.adapter = Adapter::None;
    let gateway = GatewayConfig::Chain(config);
    let stack = stickyscope::stack::start(gateway)
        .await
        .unwrap_or_else(|e| panic!("the chain starts: {e}"));
    let junit = std::env::temp_dir().join(format!("stickyscope-doctor-{}.xml", std::process::id()));
    let url = stack.gateway.clone();
    let junit_arg = junit.display().to_string();
    let wrong_path_url = url.clone();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        doctor_cli(&["--gateway", &url, "--json", "--junit", &junit_arg])
    })
    .await
    .unwrap();
    // Socket.IO asked for where it is not: check 1 fails, naming the path, and nothing
    // else can be checked.
    let (wrong_code, wrong_stdout, wrong_stderr) = tokio::task::spawn_blocking(move || {
        doctor_cli(&["--gateway", &wrong_path_url, "--path", "/ws/socket.io/"])
    })
    .await
    .unwrap();
    if let Some(controls) = stack.controls {
        controls.shutdown().await;
    }
    assert_eq!(wrong_code, Some(1), "{wrong_stdout}\n{wrong_stderr}");
    assert!(
        wrong_stdout.contains("FAIL     1. Socket.IO answers at the path")
            && wrong_stdout.contains("nothing at /ws/socket.io/: 404")
            && wrong_stdout.contains("path: \"/ws/socket.io/\"")
            && wrong_stdout.contains("0 passed, 0 warned, 1 failed, 9 skipped"),
        "{wrong_stdout}"
    );
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let report: DoctorReport =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        report.check(CheckId::AcrossReplicas).map(|c| c.outcome),
        Some(Outcome::Fail),
        "{stdout}"
    );
    assert_eq!(
        report.check(CheckId::Sticky).map(|c| c.outcome),
        Some(Outcome::Pass),
        "{stdout}"
    );
    // On a running gateway the doctor kills nothing.
    assert_eq!(
        report.check(CheckId::Failover).map(|c| c.outcome),
        Some(Outcome::Skipped),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file is written");
    let _ = std::fs::remove_file(&junit);
    assert_eq!(xml.matches("<testcase ").count(), 10, "{xml}");
    assert!(xml.contains("name=\"08_across_replicas\""), "{xml}");
    assert!(xml.contains("<failure message=\"agent on"), "{xml}");
}

#[test]
fn an_unreachable_gateway_or_a_bad_origin_is_exit_two_in_words() {
    let (code, _, stderr) = doctor_cli(&["--gateway", "http://127.0.0.1:9"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("doctor could not run: cannot connect to 127.0.0.1:9"),
        "{stderr}"
    );
    let (code, _, stderr) = doctor_cli(&["--origin", "app.example"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--origin") && stderr.contains("is not an origin"),
        "{stderr}"
    );
    let (code, _, stderr) = doctor_cli(&["--origin", "https://app.example/page"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("with no path"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_socket_io_servers_two_and_four_are_checked_in_their_own_engine_io() {
    for (version, eio) in [(2u8, 3u8), (4, 4)] {
        let server = common::NodeServer::start(version, &format!("v{version}"), true).await;
        let identify = stickyscope::stack::IdentifyConfig {
            header: Some("X-Backend".into()),
            ..Default::default()
        };
        let config = GatewayConfig::External {
            gateway: server.url.clone(),
            traefik_api: None,
            identify,
            engineio: Default::default(),
            access: Default::default(),
            docker: None,
        };
        let stack = stickyscope::stack::start(config.clone()).await.unwrap();
        let options = DoctorOptions {
            chat: stickyscope_vocab::events::ChatDialect::Seed,
            ..DoctorOptions::default()
        };
        let report = doctor::run(&doctor::Target::of(&stack, &config), &options, |_| {})
            .await
            .unwrap_or_else(|e| panic!("the doctor runs: {e}"));
        let text = render::text(&report);
        assert_eq!(report.engineio, Some(eio), "{text}");
        // The session is held for about two ping intervals (v3: while this client pings),
        // a held poll comes back from the server, the upgrade passes: one server, so
        // everything on it, and the seed's server allows no page origin.
        for id in [
            CheckId::Answers,
            CheckId::Sticky,
            CheckId::Upgrade,
            CheckId::LongPoll,
            CheckId::Headroom,
        ] {
            assert_eq!(
                report.check(id).map(|c| c.outcome),
                Some(Outcome::Pass),
                "socket.io {version}, {id:?}:\n{text}"
            );
        }
        assert_eq!(
            report.check(CheckId::Spread).map(|c| c.outcome),
            Some(Outcome::Warn),
            "{text}"
        );
        assert!(
            report
                .check(CheckId::Upgrade)
                .is_some_and(|c| c.summary.contains(&format!("replica v{version}"))),
            "{text}"
        );
    }
}
