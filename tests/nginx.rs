//! The real nginx configuration (`stack/nginx/nginx.conf`) with Debian's nginx: it passes
//! `nginx -t`, and with only Traefik's address rewritten to the built-in balancer it carries
//! sticky polling, WebSocket, and the round-robin failure, with the app's own sessions.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{stack, wait_for, Collected};
use stickyscope::embedded::StackAdapter;
use stickyscope::session::{ChatSession, SessionConfig, SessionState, TransportChoice};

fn nginx_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("nginx is not installed: run scripts/test.sh, which installs Debian's nginx");
}

fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("stack/nginx/nginx.conf")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stickyscope-nginx-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    // nginx's workers (nobody, when the master is root) write their temp files here.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn globals(dir: &Path, daemon: bool) -> String {
    format!(
        "{}pid {}/nginx.pid; error_log {}/error.log;",
        if daemon { "" } else { "daemon off; " },
        dir.display(),
        dir.display()
    )
}

#[test]
fn nginx_accepts_the_real_configuration() {
    let dir = scratch();
    let out = std::process::Command::new(nginx_binary())
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(config_path())
        .arg("-g")
        .arg(globals(&dir, true))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Real nginx with the real configuration, Traefik's address rewritten to `upstream`.
struct Nginx {
    child: tokio::process::Child,
    url: String,
}

impl Nginx {
    async fn start(upstream: &str) -> Nginx {
        let dir = scratch();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let original = std::fs::read_to_string(config_path()).unwrap();
        assert!(original.contains("set $traefik http://traefik:80;"));
        assert!(original.contains("listen 80;"));
        let rewritten = original
            .replace(
                "set $traefik http://traefik:80;",
                &format!("set $traefik {upstream};"),
            )
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, rewritten).unwrap();
        let child = tokio::process::Command::new(nginx_binary())
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg(globals(&dir, false))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        let url = format!("http://127.0.0.1:{port}");
        wait_for(Duration::from_secs(10), "nginx listening", || {
            let url = url.clone();
            async move {
                reqwest::get(format!("{url}/healthz"))
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        Nginx { child, url }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn session(
    gateway: &str,
    user: &str,
    transport: TransportChoice,
    sticky: bool,
    sink: &stickyscope::events::sink::EventSink,
) -> ChatSession {
    let mut config = SessionConfig::new(user, gateway);
    config.transport = transport;
    config.sticky = sticky;
    ChatSession::start(config, sink.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_polling_and_chat_work_through_real_nginx() {
    let stack = stack(3, StackAdapter::Memory).await;
    let nginx = Nginx::start(&stack.gateway_url()).await;
    let (sink, seen) = Collected::sink();
    let agent = session(&nginx.url, "agent", TransportChoice::Polling, true, &sink).await;
    let visitor = session(&nginx.url, "visitor", TransportChoice::Polling, true, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "both connected through nginx",
        || {
            let seen = seen.clone();
            async move { seen.connected("agent") && seen.connected("visitor") }
        },
    )
    .await;
    agent.send("through nginx").await;
    wait_for(Duration::from_secs(15), "the visitor receives it", || {
        let seen = seen.clone();
        async move {
            seen.received("visitor")
                .iter()
                .any(|r| r.message.text == "through nginx")
        }
    })
    .await;
    // Several ping cycles later, each user is still on one replica, never refused.
    let gets = |seen: &Collected| {
        seen.wire()
            .iter()
            .filter(|w| {
                w.user == "agent"
                    && w.request_kind() == Some(stickyscope_replica::RequestKind::PollGet)
            })
            .count()
    };
    let before = gets(&seen);
    wait_for(Duration::from_secs(15), "three more polls", || {
        let seen = seen.clone();
        async move { gets(&seen) >= before + 3 }
    })
    .await;
    for user in ["agent", "visitor"] {
        let wire: Vec<_> = seen.wire().into_iter().filter(|w| w.user == user).collect();
        let replicas: std::collections::BTreeSet<_> =
            wire.iter().filter_map(|w| w.replica.clone()).collect();
        assert_eq!(
            replicas.len(),
            1,
            "{user} stayed on one replica: {replicas:?}"
        );
        assert!(
            wire.iter().all(|w| w.failure.is_none()),
            "{user} was never refused"
        );
    }
    agent.shutdown().await;
    visitor.shutdown().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_needs_no_stickiness_through_real_nginx() {
    let stack = stack(3, StackAdapter::Memory).await;
    let nginx = Nginx::start(&stack.gateway_url()).await;
    let (sink, seen) = Collected::sink();
    let agent = session(
        &nginx.url,
        "agent",
        TransportChoice::Websocket,
        false,
        &sink,
    )
    .await;
    wait_for(Duration::from_secs(15), "connected over websocket", || {
        let seen = seen.clone();
        async move {
            matches!(
                seen.state("agent"),
                Some(SessionState::Connected {
                    websocket: true,
                    ..
                })
            )
        }
    })
    .await;
    agent.shutdown().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_polling_fails_through_real_nginx_with_the_exact_reason() {
    let stack = stack(3, StackAdapter::Memory).await;
    let nginx = Nginx::start(&stack.gateway_url()).await;
    let (sink, seen) = Collected::sink();
    let agent = session(&nginx.url, "agent", TransportChoice::Polling, false, &sink).await;
    wait_for(Duration::from_secs(15), "Session ID unknown, passed through nginx", || {
        let seen = seen.clone();
        async move {
            matches!(seen.state("agent"), Some(SessionState::Reconnecting { ref reason, .. }) if reason == "Session ID unknown")
        }
    })
    .await;
    assert!(!seen.connected("agent"));
    agent.shutdown().await;
    stack.shutdown().await;
}
