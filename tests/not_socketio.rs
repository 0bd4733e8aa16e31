//! Bad input from stacks: a gateway that is not Socket.IO at all (real nginx serving an HTML
//! page, its 404, a TLS port, a connection closed without an answer; Python's http.server
//! and its own 404 page), a Socket.IO 2 server
//! asked for Engine.IO v4, and a sticky cookie that names no known server. Each gets a clear
//! reason in the sessions (the window's) and in the probe, within a bound, never a hang.

mod common;

use std::time::Duration;

use common::nginx::{free_port, scratch, NginxProcess};
use common::{builtin_balancer_over, wait_for, Collected, NodeServer};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope_vocab::events::EngineIoChoice;
use stickyscope_vocab::events::{SessionState, TransportChoice};

/// What each gateway is, and the words its failure must carry.
struct NotSocketIo {
    what: &'static str,
    url: String,
    reason: &'static str,
}

/// Python's `http.server` serving an empty folder: its 404 page is titled `Error response`.
struct PythonHttpServer(std::process::Child);

impl Drop for PythonHttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Real nginx playing four gateways that are not Socket.IO, and Python's http.server a fifth.
async fn gateways() -> ((NginxProcess, PythonHttpServer), Vec<NotSocketIo>) {
    let dir = scratch();
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let [html, missing, tls, closing, python] = [
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    ];
    let empty = scratch();
    let python_server = PythonHttpServer(
        std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &python.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(&empty)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs (scripts/test.sh installs it)"),
    );
    let conf = format!(
        r#"worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    server {{ listen 127.0.0.1:{html};
        location / {{ default_type text/html;
            return 200 "<html><body><h1>Welcome to nginx!</h1></body></html>"; }} }}
    server {{ listen 127.0.0.1:{missing}; location / {{ return 404; }} }}
    server {{ listen 127.0.0.1:{tls} ssl;
        ssl_certificate {dir}/cert.pem; ssl_certificate_key {dir}/key.pem;
        location / {{ return 200 "hello over TLS"; }} }}
    server {{ listen 127.0.0.1:{closing}; location / {{ return 444; }} }}
}}
"#,
        dir = dir.display()
    );
    let process = NginxProcess::start(&dir, &conf);
    for port in [html, missing, tls, closing, python] {
        wait_for(Duration::from_secs(10), "nginx listening", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
    }
    let at = |port: u16| format!("http://127.0.0.1:{port}");
    let gateways = vec![
        NotSocketIo {
            what: "an HTML page",
            url: at(html),
            reason: "not Engine.IO: HTTP 200 with text/html",
        },
        NotSocketIo {
            what: "nginx's 404",
            url: at(missing),
            reason: "HTTP 404 Not Found from the gateway: nothing serves Socket.IO's path /socket.io/ there",
        },
        NotSocketIo {
            what: "Python's 404 page",
            url: at(python),
            reason: "HTTP 404 Not Found from the gateway (\"Error response\"): nothing serves Socket.IO's path /socket.io/ there",
        },
        NotSocketIo {
            what: "a TLS port",
            url: at(tls),
            reason: "The plain HTTP request was sent to HTTPS port",
        },
        NotSocketIo {
            what: "a gateway that closes the connection",
            url: at(closing),
            reason: "closed the connection without answering",
        },
    ];
    ((process, python_server), gateways)
}

fn probe(args: &[&str]) -> (i32, serde_json::Value) {
    let (code, json, stderr) = common::probe_json("2s", args);
    assert!(stderr.is_empty(), "the probe is quiet without -v: {stderr}");
    (code, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_that_are_not_socketio_get_a_clear_reason() {
    let (_nginx, gateways) = gateways().await;
    for gateway in &gateways {
        for transport in [TransportChoice::Polling, TransportChoice::Websocket] {
            let (sink, seen) = Collected::sink();
            let mut config = SessionConfig::new("agent", &gateway.url);
            config.transport = transport;
            let session = ChatSession::start(config, sink).await.unwrap();
            let what = format!("{} over {transport:?}: {:?}", gateway.what, gateway.reason);
            wait_for(Duration::from_secs(10), &what, || {
                let seen = seen.clone();
                async move {
                    seen.down_reason("agent")
                        .is_some_and(|r| r.contains(gateway.reason))
                }
            })
            .await;
            session.shutdown().await;
        }
        let (code, json) = probe(&["--gateway", &gateway.url]);
        assert_eq!(code, 1, "{}: {json:#}", gateway.what);
        let reason = json["sessions"][0]["broke"]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains(gateway.reason),
            "{}: {reason:?}",
            gateway.what
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socketio_2_server_asked_for_v4_says_it_speaks_v3() {
    let server = NodeServer::start(2, "seed", false).await;
    let (sink, seen) = Collected::sink();
    let mut config = SessionConfig::new("agent", &server.url);
    config.engineio = EngineIoChoice::V4;
    let session = ChatSession::start(config, sink).await.unwrap();
    wait_for(
        Duration::from_secs(10),
        "the session says the server speaks v3",
        || {
            let seen = seen.clone();
            async move {
                seen.down_reason("agent").is_some_and(|r| {
                    r.contains("speaks Engine.IO v3 (Socket.IO 2), not the v4 asked for")
                })
            }
        },
    )
    .await;
    session.shutdown().await;

    let (code, json) = probe(&["--gateway", &server.url, "--engineio", "4"]);
    assert_eq!(code, 1, "{json:#}");
    assert!(json["sessions"][0]["broke"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("speaks Engine.IO v3")));
    // Left to choose, it speaks v3 and stays up, and says so.
    let (code, json) = probe(&["--gateway", &server.url]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["sessions"][0]["engineio"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_cookie_that_names_no_known_server_says_so() {
    let mut servers = Vec::new();
    for name in ["web-a", "web-b"] {
        servers.push(NodeServer::start(4, name, false).await);
    }
    let balancer = builtin_balancer_over(&servers);
    let gateway = format!("http://{}", balancer.local_addr());
    // A server list out of date: none of its URLs is a server behind this balancer.
    let stale = "http://127.0.0.1:1";
    let (sink, seen) = Collected::sink();
    let mut config = SessionConfig::new("agent", &gateway);
    config.naming = stickyscope::stack::IdentifyConfig {
        servers: vec![stale.to_owned()],
        ..Default::default()
    }
    .naming();
    let session = ChatSession::start(config, sink).await.unwrap();
    wait_for(
        Duration::from_secs(10),
        "connected, its server unnamed",
        || {
            let seen = seen.clone();
            async move {
                matches!(
                    seen.state("agent"),
                    Some(SessionState::Connected { replica: None, .. })
                )
            }
        },
    )
    .await;
    let wire = seen.wire();
    assert!(wire.iter().all(|w| w.replica.is_none()), "nothing guessed");
    assert!(
        wire.iter().any(|w| w
            .unnamed
            .as_deref()
            .is_some_and(|why| why.contains("matches none of the 1 known server"))),
        "the records say why: {:?}",
        wire.iter().map(|w| &w.unnamed).collect::<Vec<_>>()
    );
    session.shutdown().await;

    let (code, json) = probe(&["--gateway", &gateway, "--servers", stale]);
    assert_eq!(code, 0, "a healthy stack is OK even unnamed: {json:#}");
    let why = json["replicas"]["?"]["unnamed_because"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        why.keys()
            .any(|k| k.contains("matches none of the 1 known server")),
        "{json:#}"
    );
    balancer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socketio_4_server_asked_for_v3_says_it_does_not_speak_it() {
    let server = NodeServer::start(4, "v4", false).await;
    for transport in [TransportChoice::Polling, TransportChoice::Websocket] {
        let (sink, seen) = Collected::sink();
        let mut config = SessionConfig::new("agent", &server.url);
        config.engineio = EngineIoChoice::V3;
        config.transport = transport;
        let session = ChatSession::start(config, sink).await.unwrap();
        wait_for(
            Duration::from_secs(10),
            &format!("{transport:?}: the session says the server does not speak v3"),
            || {
                let seen = seen.clone();
                async move {
                    seen.down_reason("agent").is_some_and(|r| {
                        r.contains(
                            "Unsupported protocol version: the server does not speak Engine.IO v3",
                        )
                    })
                }
            },
        )
        .await;
        session.shutdown().await;
        // The probe names the first breakage: the server's words, not the client's error
        // that came before the wire's record.
        let transport = format!("{transport:?}").to_lowercase();
        let (code, json) = probe(&[
            "--gateway",
            &server.url,
            "--engineio",
            "3",
            "--transport",
            &transport,
        ]);
        assert_eq!(code, 1, "{json:#}");
        let reason = json["sessions"][0]["broke"]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains("Unsupported protocol version: the server does not speak Engine.IO v3"),
            "{transport}: {reason:?}"
        );
    }
}
