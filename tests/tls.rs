//! `https://` gateways: real nginx terminating TLS (with a certificate for `localhost`
//! signed by a CA the test makes) in front of the embedded stack. With the CA
//! (`--ca-file`) the users connect over polling and WebSocket (`wss://` upstream); without
//! it the certificate is refused as signed by an unknown issuer, under another name as the
//! wrong name — each in a sentence naming the flag that fixes it — and `--insecure`
//! connects anyway, saying so. And the local chain served over TLS, its sticky cookie
//! `Secure`, with probe and the window going through it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::nginx::{free_port, scratch, NginxProcess};
use common::{wait_for, Collected};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::embedded::{EmbeddedConfig, EmbeddedStack};
use stickyscope::stack::{GatewayConfig, ReplicaControl};
use stickyscope::ui::settings::Settings;
use stickyscope::ui::StickyscopeApp;
use stickyscope_vocab::access::Access;
use stickyscope_vocab::events::{SessionState, TransportChoice};

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a certificate for `localhost` it signed (`cert.pem`, `key.pem`).
fn certificates(dir: &Path) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=stickyscope test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "cert.csr",
        ],
    );
    std::fs::write(dir.join("san.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "cert.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            "cert.pem",
        ],
    );
    dir.join("ca.pem")
}

/// nginx terminating TLS on a free port in front of `upstream` (`127.0.0.1:PORT`).
async fn tls_front(dir: &Path, upstream: &str) -> (NginxProcess, u16) {
    let port = free_port();
    let conf = format!(
        r#"worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"#,
        dir = dir.display()
    );
    let nginx = NginxProcess::start(dir, &conf);
    wait_for(Duration::from_secs(10), "nginx listening", || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    (nginx, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_gateways_are_checked_and_said_in_sentences() {
    let dir = scratch();
    let ca = std::fs::read_to_string(certificates(&dir)).unwrap();
    let stack = EmbeddedStack::start(EmbeddedConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EmbeddedConfig::default()
    })
    .await
    .unwrap();
    let upstream = stack.gateway_url().trim_start_matches("http://").to_owned();
    let (_nginx, port) = tls_front(&dir, &upstream).await;
    let by_name = format!("https://localhost:{port}");
    let by_address = format!("https://127.0.0.1:{port}");

    // With the CA: up over every transport, every answer named by its replica.
    for transport in [
        TransportChoice::Polling,
        TransportChoice::Websocket,
        TransportChoice::Upgrade,
    ] {
        let (sink, seen) = Collected::sink();
        let mut config = SessionConfig::new("agent", &by_name);
        config.transport = transport;
        config.access = Access {
            ca_pem: Some(ca.clone()),
            ..Access::default()
        };
        let session = ChatSession::start(config, sink).await.unwrap();
        wait_for(
            Duration::from_secs(15),
            &format!("{transport:?} through TLS"),
            || {
                let seen = seen.clone();
                async move { seen.connected("agent") }
            },
        )
        .await;
        session.shutdown().await;
        assert!(seen.wire().iter().any(|w| w.replica.is_some()));
    }

    // Without it, at another name, and with no check at all.
    for (gateway, access, words) in [
        (&by_name, Access::default(), "signed by an unknown issuer"),
        (
            &by_address,
            Access {
                ca_pem: Some(ca.clone()),
                ..Access::default()
            },
            "wrong name",
        ),
    ] {
        let (sink, seen) = Collected::sink();
        let mut config = SessionConfig::new("visitor", gateway);
        config.access = access;
        let session = ChatSession::start(config, sink).await.unwrap();
        wait_for(Duration::from_secs(15), words, || {
            let seen = seen.clone();
            async move {
                seen.down_reason("visitor")
                    .is_some_and(|r| r.contains(words))
            }
        })
        .await;
        let reason = seen.down_reason("visitor").unwrap();
        assert!(reason.contains("--insecure"), "{reason}");
        session.shutdown().await;
    }
    let (sink, seen) = Collected::sink();
    let mut config = SessionConfig::new("visitor", &by_address);
    config.access = Access {
        insecure: true,
        ..Access::default()
    };
    let session = ChatSession::start(config, sink).await.unwrap();
    wait_for(Duration::from_secs(15), "--insecure connects", || {
        let seen = seen.clone();
        async move { seen.connected("visitor") }
    })
    .await;
    session.shutdown().await;

    // The probe: the CA from a file; --insecure said on the report.
    let probe = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
            .args(["probe", "--duration", "2s"])
            .args(args)
            .output()
            .unwrap()
    };
    let ca_file = dir.join("ca.pem");
    let out = probe(&[
        "--json",
        "--gateway",
        &by_name,
        "--ca-file",
        &ca_file.to_string_lossy(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    assert_eq!(json["tls"], "verified");
    let out = probe(&["--gateway", &by_address, "--insecure"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(
        table.starts_with("WARNING: the gateway's TLS certificate was NOT checked (--insecure)"),
        "{table}"
    );
    let out = probe(&["--gateway", &by_name, "--ca-file", "Cargo.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--ca-file"), "{stderr}");
    assert!(stderr.contains("not a PEM certificate file"), "{stderr}");
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The local chain served over TLS (`stickyscope chain --tls-cert --tls-key`): nginx and
/// Traefik's API entry point serve a certificate for localhost the test's CA signed, and
/// Traefik's sticky cookie is `Secure`. With `--ca-file`, probe and the window go through
/// `https://localhost`: the cookie is kept and sent back over TLS (polling holds on two
/// replicas; without stickiness it breaks), and the topology is read from Traefik's API
/// over https. Without the CA, the API's certificate is refused in a sentence.
#[test]
fn the_chain_over_tls_keeps_its_secure_sticky_cookie() {
    use stickyscope::stack::chain::{Chain, ChainTls};
    use stickyscope::tls_trust::Trust;
    use stickyscope::traefik_client::TraefikApi;

    let dir = scratch();
    let ca_file = certificates(&dir);
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = common::chain_config(2);
    config.tls = Some(ChainTls {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    });
    config.swarm_file.replica_labels.push((
        "traefik.http.services.replicas-sticky.loadbalancer.sticky.cookie.secure".into(),
        "true".into(),
    ));
    let chain = runtime
        .block_on(Chain::start(config))
        .unwrap_or_else(|e| panic!("the chain starts over TLS: {e}"));
    let gateway = chain.gateway_url();
    let api = chain.api_url_with_credential();
    assert!(gateway.starts_with("https://localhost:"), "{gateway}");
    assert!(
        api.contains("@localhost:") && api.starts_with("https://"),
        "{api}"
    );

    // What Traefik sets, read with the CA: the sticky cookie, Secure.
    let set_cookie = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .build()
            .unwrap();
        let answer = client
            .get(format!("{gateway}/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .unwrap();
        answer
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("sticky_replica="))
    });
    let set_cookie = set_cookie.expect("Traefik sets its sticky cookie");
    assert!(set_cookie.contains("Secure"), "{set_cookie}");

    // Traefik's API over https: refused without the CA, in a sentence; read with it.
    runtime.block_on(async {
        let refused = TraefikApi::new(&api, &Trust::default())
            .unwrap()
            .services()
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("signed by an unknown issuer"), "{refused}");
        assert!(refused.contains("--ca-file"), "{refused}");
        assert!(!refused.contains(&chain.api_credential().1), "{refused}");
        let trusted = Trust {
            ca_pem: Some(ca.clone()),
            insecure: false,
        };
        let services = TraefikApi::new(&api, &trusted)
            .unwrap()
            .services()
            .await
            .unwrap();
        assert!(!services.is_empty());
    });

    // probe: polling held by the Secure cookie over TLS; broken without stickiness.
    // Five sessions on two replicas: a multiple of the replicas could step in lockstep
    // without stickiness, each request landing on its session's replica by coincidence.
    let probe = |stickiness: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
            .args(["probe", "--duration", "3s", "--json", "--sessions", "5"])
            .args(["--transport", "polling", "--stickiness", stickiness])
            .args(["--gateway", &gateway, "--traefik-api", &api, "--ca-file"])
            .arg(&ca_file)
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        });
        (
            out.status.code(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, json, stderr) = probe("on");
    assert_eq!(code, Some(0), "{json:#} {stderr}");
    assert_eq!(json["tls"], "verified");
    assert!(!stderr.contains("Traefik API"), "{stderr}");
    let replicas: Vec<&String> = json["replicas"].as_object().unwrap().keys().collect();
    assert_eq!(replicas, ["1", "2"], "{json:#}");
    let (code, json, _) = probe("off");
    assert_eq!(code, Some(1), "{json:#}");

    // The window: both users through https://localhost, the topology from the API.
    let window = GatewayConfig::External {
        gateway: gateway.clone(),
        traefik_api: Some(api.clone()),
        identify: Default::default(),
        engineio: Default::default(),
        access: Access {
            ca_pem: Some(ca.clone()),
            ..Access::default()
        },
        docker: None,
    };
    let mut h = egui_kittest::Harness::builder()
        .with_size(eframe::egui::vec2(1440.0, 900.0))
        .build_eframe(move |cc| {
            StickyscopeApp::new(&cc.egui_ctx, Settings::default(), window, None, false)
        });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ready = |app: &StickyscopeApp| {
        let model = app.model();
        let up = model
            .topology
            .replicas
            .iter()
            .filter(|r| r.listed && r.up)
            .count();
        let connected = ["agent", "visitor"].iter().all(|u| {
            matches!(
                model.sessions.get(*u),
                Some(SessionState::Connected {
                    replica: Some(_),
                    ..
                })
            )
        });
        up == 2 && connected && model.topology.hops == ["nginx", "traefik"]
    };
    while !ready(h.state()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the window through TLS: {:?} {:?}",
            h.state().model().topology,
            h.state().model().sessions
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(h);
    runtime.block_on(chain.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}
