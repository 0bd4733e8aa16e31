//! The Traefik API client against JSON in the shape of Traefik v3's answers: pagination
//! through X-Next-Page, HTTP errors, garbage; and the conductor drawing nginx and Traefik from it.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use common::{wait_for, Collected};
use stickyscope::conductor::{Conductor, ConductorConfig};
use stickyscope::stack::GatewayConfig;
use stickyscope::traefik_client::{TraefikApi, TraefikError};
use stickyscope_vocab::events::Event;
use stickyscope_vocab::traefik_reading::analyse;

/// A service exactly as Traefik v3 serves it (fields the app does not use included).
fn sticky_service() -> serde_json::Value {
    serde_json::json!({
        "loadBalancer": {
            "sticky": {"cookie": {"name": "sticky_replica", "httpOnly": true, "sameSite": "lax"}},
            "servers": [{"url": "http://10.0.1.5:3000"}, {"url": "http://10.0.1.6:3000"}, {"url": "http://10.0.1.7:3000"}],
            "healthCheck": {"path": "/healthz", "interval": "1s", "timeout": "1s"},
            "passHostHeader": true,
            "responseForwarding": {"flushInterval": "100ms"}
        },
        "status": "enabled",
        "usedBy": ["socketio-sticky@swarm"],
        "serverStatus": {"http://10.0.1.5:3000": "UP", "http://10.0.1.6:3000": "UP", "http://10.0.1.7:3000": "DOWN"},
        "name": "replicas-sticky@swarm",
        "provider": "swarm",
        "type": "loadbalancer"
    })
}

fn other_service(name: &str) -> serde_json::Value {
    serde_json::json!({
        "loadBalancer": {"servers": [{"url": "http://10.0.1.5:3000"}], "passHostHeader": true},
        "status": "enabled", "usedBy": [], "name": name, "provider": "swarm", "type": "loadbalancer"
    })
}

fn routers(with_round_robin: bool) -> serde_json::Value {
    let mut list = vec![serde_json::json!({
        "entryPoints": ["web"], "service": "replicas-sticky", "rule": "PathPrefix(`/socket.io`)",
        "priority": 10, "status": "enabled", "using": ["web"], "name": "socketio-sticky@swarm", "provider": "swarm"
    })];
    if with_round_robin {
        list.push(serde_json::json!({
            "entryPoints": ["web"], "service": "replicas-roundrobin",
            "rule": "PathPrefix(`/socket.io`) && Header(`X-Stickiness`, `off`)",
            "priority": 20, "status": "enabled", "using": ["web"], "name": "socketio-roundrobin@swarm", "provider": "swarm"
        }));
    }
    serde_json::Value::Array(list)
}

type Answer = (u16, Option<u32>, String);

/// Serves `answer(path, page)` as (status, X-Next-Page, body).
async fn fake_api(answer: impl Fn(&str, u32) -> Answer + Send + Sync + 'static) -> String {
    let answer = Arc::new(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let page = req
                            .uri()
                            .query()
                            .unwrap_or("")
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("page="))
                            .and_then(|p| p.parse().ok())
                            .unwrap_or(1);
                        let (status, next, body) = answer(req.uri().path(), page);
                        let mut resp = hyper::Response::builder().status(status);
                        if let Some(n) = next {
                            resp = resp.header("x-next-page", n.to_string());
                        }
                        async move {
                            Ok::<_, Infallible>(
                                resp.body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn services_are_followed_across_pages() {
    let api = fake_api(|path, page| match (path, page) {
        ("/api/http/services", 1) => (
            200,
            Some(2),
            serde_json::json!([other_service("a@swarm")]).to_string(),
        ),
        ("/api/http/services", 2) => (
            200,
            Some(1),
            serde_json::json!([sticky_service()]).to_string(),
        ),
        ("/api/http/routers", _) => (200, Some(1), routers(true).to_string()),
        _ => (404, None, "404 page not found".into()),
    })
    .await;
    let client = TraefikApi::new(&api, &Default::default()).unwrap();
    let services = client.services().await.unwrap();
    assert_eq!(services.len(), 2);
    let analysis = analyse(&services, &client.routers().await.unwrap());
    assert!(analysis.problems.is_empty(), "{:?}", analysis.problems);
    let sticky = analysis.sticky.unwrap();
    assert_eq!(sticky.server_status["http://10.0.1.7:3000"], "DOWN");
}

#[tokio::test]
async fn errors_and_garbage_are_typed_not_panics() {
    let api = fake_api(|path, _| match path {
        "/api/http/services" => (500, None, "internal".into()),
        "/api/http/routers" => (200, None, "<html>not json</html>".into()),
        _ => (404, None, String::new()),
    })
    .await;
    let client = TraefikApi::new(&api, &Default::default()).unwrap();
    assert!(matches!(
        client.services().await,
        Err(TraefikError::Status { status: 500, .. })
    ));
    assert!(matches!(
        client.routers().await,
        Err(TraefikError::Garbage { .. })
    ));

    let looping = fake_api(|_, page| (200, Some(page + 1), "[]".into())).await;
    let client = TraefikApi::new(&looping, &Default::default()).unwrap();
    assert!(matches!(
        client.services().await,
        Err(TraefikError::TooManyPages { .. })
    ));

    let huge = fake_api(|_, _| (200, None, format!("[{}]", " ".repeat(5 << 20)))).await;
    let client = TraefikApi::new(&huge, &Default::default()).unwrap();
    assert!(matches!(
        client.services().await,
        Err(TraefikError::TooLarge { .. })
    ));

    let nobody = TraefikApi::new("http://127.0.0.1:9", &Default::default()).unwrap();
    let err = nobody.services().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Traefik API unreachable at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(matches!(
        TraefikApi::new("localhost:9090", &Default::default()),
        Err(TraefikError::BadUrl(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_draws_nginx_and_traefik_and_names_wrong_labels() {
    let api = fake_api(|path, _| match path {
        "/api/http/services" => (
            200,
            Some(1),
            serde_json::json!([sticky_service()]).to_string(),
        ),
        "/api/http/routers" => (200, Some(1), routers(false).to_string()),
        _ => (404, None, String::new()),
    })
    .await;
    let (sink, seen) = Collected::sink();
    let conductor = Conductor::start(
        ConductorConfig::new(GatewayConfig::external("http://127.0.0.1:9", Some(api))),
        sink,
    )
    .await
    .unwrap();
    wait_for(Duration::from_secs(10), "topology and the label problem", || {
        let seen = seen.clone();
        async move {
            let events = seen.events();
            let topology = events.iter().any(|e| {
                matches!(e, Event::Topology(t) if t.hops == ["nginx", "traefik"] && t.replicas.len() == 3 && t.sticky_cookie.as_deref() == Some("sticky_replica"))
            });
            let problem = events.iter().any(|e| {
                matches!(e, Event::Notice(n) if n.text.contains("no router matches X-Stickiness: off"))
            });
            topology && problem
        }
    })
    .await;
    conductor.shutdown().await;
}
