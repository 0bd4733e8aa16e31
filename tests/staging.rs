//! Stacks as QA meets them on staging: an official socket.io 4 server from npm with
//! Socket.IO on its own path (`/ws/socket.io`), the users in a namespace (`/chat`) and a
//! middleware that refuses a CONNECT without the right token, tenant header and login
//! cookie (`tests/js/app_server.js`). The users connect with what `--path`, `--namespace`,
//! `--auth`, `--header` and `--cookie` say; a refusal is the app's, in its words; no
//! secret is spelled out in what is recorded or reported.

mod common;

use std::time::Duration;

use common::{wait_for, Collected, NodeServer};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope_vocab::access::{Access, MASK};
use stickyscope_vocab::events::TransportChoice;

const TOKEN: &str = "tok-3f2a9c";
/// The visitor's own token, where each user has one.
const VISITOR_TOKEN: &str = "tok-v-81d0";

/// The app's server (`tests/js/app_server.js`), letting in either token; killed when
/// dropped.
async fn app_server() -> NodeServer {
    let port = common::nginx::free_port();
    let tokens = format!("{TOKEN},{VISITOR_TOKEN}");
    let args = [port.to_string(), "web-a".to_owned(), tokens];
    NodeServer::script("app_server.js", &args, port, "web-a").await
}

/// What the app asks of its users, with `token` as the auth payload's.
fn access(token: &str) -> Access {
    Access {
        path: "/ws/socket.io/".into(),
        namespace: "/chat".into(),
        auth: Some(serde_json::json!({ "token": token })),
        headers: vec![("X-Tenant".into(), "acme".into())],
        cookies: vec![("session".into(), "s-1".into())],
        ..Access::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_connect_on_the_apps_path_and_namespace_with_its_credentials() {
    let app = app_server().await;
    for transport in [
        TransportChoice::Polling,
        TransportChoice::Websocket,
        TransportChoice::Upgrade,
    ] {
        let (sink, seen) = Collected::sink();
        let mut config = SessionConfig::new("agent", &app.url);
        config.transport = transport;
        config.access = access(TOKEN);
        let session = ChatSession::start(config, sink).await.unwrap();
        wait_for(
            Duration::from_secs(15),
            &format!("{transport:?}: connected in /chat"),
            || {
                let seen = seen.clone();
                async move { seen.connected("agent") }
            },
        )
        .await;
        session.shutdown().await;
        // The token went on the wire in the CONNECT packet; no record spells it out.
        let records = serde_json::to_string(&seen.wire()).unwrap();
        assert!(!records.contains(TOKEN), "{transport:?}: {records}");
        assert!(
            records.contains(MASK),
            "{transport:?}: the CONNECT shows it masked"
        );
        assert!(
            records.contains("/chat"),
            "{transport:?}: the namespace is on the wire"
        );
    }
}

/// Each user with a token of its own (`--auth agent=… --auth visitor=…`): both let in,
/// and stickyscope's chat goes both ways in the namespace, each message received once and
/// confirmed by the other user's receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_with_their_own_tokens_chat_in_the_apps_namespace() {
    let app = app_server().await;
    let mut per_user = access("tok-nobody");
    per_user.auth = None;
    per_user.auth_of = [
        ("agent".to_owned(), serde_json::json!({ "token": TOKEN })),
        (
            "visitor".to_owned(),
            serde_json::json!({ "token": VISITOR_TOKEN }),
        ),
    ]
    .into();
    let (sink, seen) = Collected::sink();
    let mut sessions = Vec::new();
    for user in ["agent", "visitor"] {
        let mut config = SessionConfig::new(user, &app.url);
        config.access = per_user.clone();
        sessions.push(ChatSession::start(config, sink.clone()).await.unwrap());
    }
    wait_for(Duration::from_secs(15), "both connected in /chat", || {
        let seen = seen.clone();
        async move { seen.connected("agent") && seen.connected("visitor") }
    })
    .await;
    for (i, session) in sessions.iter().enumerate() {
        for n in 0..3 {
            session.send(format!("message {n} from user {i}")).await;
        }
    }
    wait_for(Duration::from_secs(15), "all six delivered", || {
        let seen = seen.clone();
        async move { seen.all_delivered(6) }
    })
    .await;
    seen.assert_each_received_once_in_order(["agent", "visitor"]);
    let records = serde_json::to_string(&seen.wire()).unwrap();
    for token in [TOKEN, VISITOR_TOKEN] {
        assert!(!records.contains(token), "{token} spelled out: {records}");
    }
    for session in sessions {
        session.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_the_app_refuses_is_the_apps_refusal_in_its_words() {
    let app = app_server().await;
    let wrong_token = access("tok-wrong");
    let mut no_tenant = access(TOKEN);
    no_tenant.headers.clear();
    let mut no_login = access(TOKEN);
    no_login.cookies.clear();
    for (access, words) in [
        (wrong_token, "not authorized"),
        (no_tenant, "unknown tenant"),
        (no_login, "not logged in"),
    ] {
        let (sink, seen) = Collected::sink();
        let mut config = SessionConfig::new("visitor", &app.url);
        config.access = access;
        let session = ChatSession::start(config, sink).await.unwrap();
        let expected = format!("refused by the app: {words}");
        wait_for(Duration::from_secs(15), &expected, || {
            let seen = seen.clone();
            let expected = expected.clone();
            async move { seen.down_reason("visitor").is_some_and(|r| r == expected) }
        })
        .await;
        session.shutdown().await;
    }
}

/// The same through `probe`, with the secrets read from a file and the environment, not
/// the command line; a refusal is reported in the app's words and the report spells out no
/// secret.
#[test]
fn probe_takes_its_secrets_from_files_and_the_environment() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(app_server());
    let dir = std::env::temp_dir().join(format!("stickyscope-staging-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cookie = dir.join("cookie");
    std::fs::write(&cookie, "session=s-1\n").unwrap();
    let probe = |token: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
            .args(["probe", "--duration", "3s", "--json", "--gateway", &app.url])
            .args(["--path", "/ws/socket.io", "--namespace", "/chat"])
            .args(["--auth", "env:APP_AUTH", "--header", "X-Tenant: acme"])
            .arg("--cookie")
            .arg(format!("@{}", cookie.display()))
            .env("APP_AUTH", format!("{{\"token\":\"{token}\"}}"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let json: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), json, stdout)
    };
    let (code, json, _) = probe(TOKEN);
    assert_eq!(code, Some(0), "{json:#}");
    let (code, json, stdout) = probe("tok-wrong");
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(
        json["sessions"][0]["broke"]["reason"],
        "refused by the app: not authorized"
    );
    assert!(!stdout.contains("tok-wrong"), "{stdout}");
    // A user's own payload is the window's and the scenarios': probe's sessions are not
    // the chat users, and it says so rather than send them nothing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["probe", "--gateway", &app.url, "--auth", "agent={}"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--auth agent=… is the chat user agent's"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each flag's bad input is refused before anything starts, naming the flag.
#[test]
fn bad_access_flags_are_usage_errors_naming_the_flag() {
    let cases: [(&[&str], &str); 6] = [
        (&["--path", "ws/socket.io"], "--path"),
        (&["--namespace", "chat"], "--namespace"),
        (&["--header", "X-Tenant acme"], "--header"),
        (&["--cookie", "session"], "--cookie"),
        (&["--auth", "[1]"], "--auth"),
        (&["--auth", "@/nonexistent/auth.json"], "--auth"),
    ];
    for (args, flag) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
            .args(["probe", "--gateway", "http://127.0.0.1:9"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

/// `scenario run` on the app: each user with a token of its own, read from a file and the
/// environment; both connect in its namespace and chat. With the visitor's token wrong, the
/// report says the app refused the visitor, in its words.
#[test]
fn a_scenario_runs_on_the_app_with_each_users_token() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(app_server());
    let dir = std::env::temp_dir().join(format!("stickyscope-staging-sc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("staging.toml");
    std::fs::write(
        &scenario,
        r#"title = "Staging: both users in the app's namespace"
[[step]]
title = "Both let in"
within = "6s"
expect = [{ connected = "both" }]
[[step]]
title = "They chat"
do = [{ send = "agent", text = "hello staging" }]
within = "6s"
expect = [{ delivered = "hello staging", to = "visitor" }]
"#,
    )
    .unwrap();
    let visitor_auth = dir.join("visitor.json");
    let run = |visitor_token: &str| {
        std::fs::write(&visitor_auth, format!("{{\"token\":\"{visitor_token}\"}}")).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
            .args(["scenario", "run"])
            .arg(&scenario)
            .args([
                "--gateway",
                &app.url,
                "--path",
                "/ws/socket.io",
                "--namespace",
                "/chat",
            ])
            .args(["--auth", "agent=env:AGENT_AUTH", "--auth"])
            .arg(format!("visitor=@{}", visitor_auth.display()))
            .args(["--header", "X-Tenant: acme", "--cookie", "session=s-1"])
            .env("AGENT_AUTH", format!("{{\"token\":\"{TOKEN}\"}}"))
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    };
    let (code, said) = run(VISITOR_TOKEN);
    assert_eq!(code, Some(0), "{said}");
    let (code, said) = run("tok-wrong");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("visitor reconnecting: refused by the app: not authorized")
            || said.contains("visitor not connected: refused by the app: not authorized"),
        "{said}"
    );
    assert!(
        !said.contains(TOKEN) && !said.contains("tok-wrong"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
