//! A balancer other than Traefik, with a sticky cookie of its own: real HAProxy (Debian's)
//! with `cookie SERVERID insert indirect nocache` in front of two official socket.io 4
//! servers. With `--sticky-cookie SERVERID` each answer is named by the cookie's value —
//! HAProxy's values are the servers' names — sticky polling stays on one server, and
//! round-robin polling breaks with the servers' own `Session ID unknown`. And a cookie
//! HAProxy sets `SameSite=None` without `Secure` is refused, as browsers refuse it: sticky
//! polling breaks, and the record says why.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{wait_for, Collected, NodeServer};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::IdentifyConfig;
use stickyscope_vocab::naming::Source;

/// HAProxy in the foreground; killed (and its folder removed) when dropped.
struct Haproxy {
    _child: tokio::process::Child,
    url: String,
    dir: std::path::PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cookie line of the stack most sites run.
const SERVERID: &str = "cookie SERVERID insert indirect nocache";

/// HAProxy round-robin over `servers`, with this `cookie` line.
async fn haproxy(servers: &[NodeServer], cookie: &str) -> Haproxy {
    let port = stickyscope::stack::chain::rundir::free_port().unwrap();
    let dir =
        std::env::temp_dir().join(format!("stickyscope-haproxy-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backends: String = servers
        .iter()
        .map(|s| {
            format!(
                "    server {name} {addr} cookie {name}\n",
                name = s.name,
                addr = s.label()
            )
        })
        .collect();
    let config = format!(
        "global\n    maxconn 256\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n    timeout tunnel 60s\n\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend apps\n\
         backend apps\n    balance roundrobin\n    {cookie}\n{backends}"
    );
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let binary = ["/usr/sbin/haproxy", "haproxy"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
        .unwrap_or("haproxy");
    let child = tokio::process::Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy runs (scripts/test.sh installs Debian's haproxy)");
    wait_for(
        Duration::from_secs(10),
        "haproxy listening",
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
    Haproxy {
        _child: child,
        url: format!("http://127.0.0.1:{port}"),
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxys_serverid_cookie_names_its_servers() {
    let servers = vec![
        NodeServer::start(4, "web-a", false).await,
        NodeServer::start(4, "web-b", false).await,
    ];
    let balancer = haproxy(&servers, SERVERID).await;
    let identify = IdentifyConfig {
        cookie: Some("SERVERID".into()),
        ..IdentifyConfig::default()
    };
    let names: BTreeSet<String> = servers.iter().map(|s| s.name.clone()).collect();

    // Sticky polling: up, and every answer named by HAProxy's cookie, on one server.
    let (sink, seen) = Collected::sink();
    let mut config = SessionConfig::new("agent", &balancer.url);
    config.naming = identify.naming();
    let sticky = ChatSession::start(config, sink.clone()).await.unwrap();
    wait_for(Duration::from_secs(15), "sticky polling connected", || {
        let seen = seen.clone();
        async move { seen.connected("agent") }
    })
    .await;
    sticky.shutdown().await;
    let named: BTreeSet<String> = seen
        .wire()
        .iter()
        .filter(|w| w.sid.is_some() && w.failure.is_none())
        .filter_map(|w| {
            assert_eq!(
                w.replica_source,
                Some(Source::CookieValue {
                    cookie: "SERVERID".into()
                }),
                "{w:?}"
            );
            w.replica.clone()
        })
        .collect();
    assert_eq!(named.len(), 1, "one server: {named:?}");
    assert!(
        named.is_subset(&names),
        "{named:?} are HAProxy's server names"
    );

    // Round-robin polling (the cookie withheld): the servers' own refusal.
    let (sink, seen) = Collected::sink();
    let mut config = SessionConfig::new("visitor", &balancer.url);
    config.naming = identify.naming();
    config.sticky = false;
    let round_robin = ChatSession::start(config, sink).await.unwrap();
    wait_for(Duration::from_secs(15), "Session ID unknown", || {
        let seen = seen.clone();
        async move { seen.reconnect_reason("visitor").as_deref() == Some("Session ID unknown") }
    })
    .await;
    round_robin.shutdown().await;

    // The probe says the same, naming what identified the servers.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args([
            "probe",
            "--duration",
            "3s",
            "--json",
            "--gateway",
            &balancer.url,
        ])
        .args(["--sticky-cookie", "SERVERID", "--sessions", "4"])
        .output()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    let replicas = json["replicas"].as_object().unwrap();
    for (name, counts) in replicas {
        assert!(names.contains(name), "{name}: {json:#}");
        assert_eq!(
            counts["identified_by"],
            "SERVERID cookie's value (one value, one server)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_browsers_refuse_is_refused_and_said() {
    let servers = vec![
        NodeServer::start(4, "web-a", false).await,
        NodeServer::start(4, "web-b", false).await,
    ];
    let balancer = haproxy(&servers, &format!("{SERVERID} attr SameSite=None")).await;
    let (sink, seen) = Collected::sink();
    let mut config = SessionConfig::new("agent", &balancer.url);
    config.naming = IdentifyConfig {
        cookie: Some("SERVERID".into()),
        ..IdentifyConfig::default()
    }
    .naming();
    let session = ChatSession::start(config, sink).await.unwrap();
    wait_for(
        Duration::from_secs(15),
        "Session ID unknown, the cookie not kept",
        || {
            let seen = seen.clone();
            async move { seen.reconnect_reason("agent").as_deref() == Some("Session ID unknown") }
        },
    )
    .await;
    session.shutdown().await;
    let said = seen
        .wire()
        .iter()
        .find_map(|w| w.note.clone())
        .expect("a record says why the cookie was not kept");
    assert!(
        said.contains("Set-Cookie SERVERID is SameSite=None without Secure: browsers reject it"),
        "{said}"
    );
}
