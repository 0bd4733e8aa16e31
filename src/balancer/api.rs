//! The balancer's read-only topology API, in the shape of Traefik v3's
//! `/api/http/services` and `/api/http/routers`, so the app reads topology one way whether
//! the balancer is this one or a real Traefik.

use std::collections::BTreeMap;

use super::pool::Backend;
use super::routing::STICKY_COOKIE;
use stickyscope_vocab::traefik_model::{
    HealthCheck, LoadBalancer, RouterInfo, ServerInfo, ServiceInfo, Sticky, StickyCookie, DOWN, UP,
};

/// Provider suffix of the embedded balancer's names.
pub const PROVIDER: &str = "embedded";
/// The sticky service.
pub const STICKY_SERVICE: &str = "replicas-sticky@embedded";
/// The round-robin service.
pub const ROUND_ROBIN_SERVICE: &str = "replicas-roundrobin@embedded";

/// What an API path answers: a status and a JSON body.
pub fn respond(
    path: &str,
    backends: &[Backend],
    health_interval: &str,
) -> (u16, serde_json::Value) {
    let services = || {
        [
            service(STICKY_SERVICE, backends, true, health_interval),
            service(ROUND_ROBIN_SERVICE, backends, false, health_interval),
        ]
    };
    match path.trim_end_matches('/') {
        "/api/http/services" => (200, to_json(&services())),
        "/api/http/routers" => (200, to_json(&routers())),
        other => match other.strip_prefix("/api/http/services/") {
            Some(name) => match services().into_iter().find(|s| s.name == name) {
                Some(found) => (200, to_json(&found)),
                None => (404, serde_json::json!({"message": "service not found"})),
            },
            None => (404, serde_json::json!({"message": "404 page not found"})),
        },
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn service(name: &str, backends: &[Backend], sticky: bool, health_interval: &str) -> ServiceInfo {
    let server_status: BTreeMap<String, String> = backends
        .iter()
        .map(|b| (b.url.clone(), if b.is_up() { UP } else { DOWN }.to_owned()))
        .collect();
    let router = if sticky {
        "socketio-sticky@embedded"
    } else {
        "socketio-roundrobin@embedded"
    };
    ServiceInfo {
        name: name.to_owned(),
        provider: PROVIDER.to_owned(),
        status: "enabled".to_owned(),
        used_by: vec![router.to_owned()],
        load_balancer: Some(LoadBalancer {
            servers: backends
                .iter()
                .map(|b| ServerInfo { url: b.url.clone() })
                .collect(),
            sticky: sticky.then(|| Sticky {
                cookie: StickyCookie {
                    name: STICKY_COOKIE.to_owned(),
                    http_only: true,
                    secure: false,
                    same_site: "lax".to_owned(),
                },
            }),
            health_check: Some(HealthCheck {
                path: "/healthz".to_owned(),
                interval: health_interval.to_owned(),
            }),
            pass_host_header: true,
        }),
        server_status,
    }
}

fn routers() -> [RouterInfo; 2] {
    [
        RouterInfo {
            name: "socketio-sticky@embedded".to_owned(),
            rule: "PathPrefix(`/socket.io`)".to_owned(),
            service: "replicas-sticky".to_owned(),
            priority: 10,
            status: "enabled".to_owned(),
            provider: PROVIDER.to_owned(),
            error: Vec::new(),
        },
        RouterInfo {
            name: "socketio-roundrobin@embedded".to_owned(),
            rule: "PathPrefix(`/socket.io`) && Header(`X-Stickiness`, `off`)".to_owned(),
            service: "replicas-roundrobin".to_owned(),
            priority: 20,
            status: "enabled".to_owned(),
            provider: PROVIDER.to_owned(),
            error: Vec::new(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_vocab::traefik_model::ServiceInfo;

    fn backend(port: u16, up: bool) -> Backend {
        let url = format!("http://127.0.0.1:{port}");
        Backend {
            cookie: crate::balancer::routing::cookie_value(&url),
            url,
            addr: ([127, 0, 0, 1], port).into(),
            replica: None,
            enabled: up,
            healthy: true,
        }
    }

    #[test]
    fn sticky_service_reads_back_in_traefik_shape() {
        let (status, body) = respond(
            "/api/http/services/replicas-sticky@embedded",
            &[backend(1, true), backend(2, false)],
            "1s",
        );
        assert_eq!(status, 200);
        assert_eq!(
            body["loadBalancer"]["sticky"]["cookie"]["name"],
            STICKY_COOKIE
        );
        assert_eq!(body["serverStatus"]["http://127.0.0.1:2"], "DOWN");
        let parsed: ServiceInfo = serde_json::from_value(body).unwrap();
        assert_eq!(parsed.load_balancer.unwrap().servers.len(), 2);
    }

    #[test]
    fn round_robin_service_has_no_sticky_and_unknown_names_are_404() {
        let (_, body) = respond("/api/http/services/replicas-roundrobin@embedded", &[], "1s");
        assert!(body["loadBalancer"].get("sticky").is_none());
        assert_eq!(respond("/api/http/services/nope", &[], "1s").0, 404);
        assert_eq!(respond("/api/nothing", &[], "1s").0, 404);
        let (_, routers) = respond("/api/http/routers", &[], "1s");
        assert_eq!(routers.as_array().unwrap().len(), 2);
    }
}
