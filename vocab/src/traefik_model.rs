//! The shapes of Traefik v3's HTTP API documents that stickyscope reads, and what the app
//! takes from them ([`topology_from_api`], [`analyse`]: the sticky service, the problems with
//! its labels).
//!
//! The built-in balancer serves its topology in these shapes and the app reads Traefik's
//! real API with them, so topology is read one way in both modes. Only the fields used
//! are modelled; unknown fields are ignored when parsing.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stickyscope_contract::names::STICKY_COOKIE;

use crate::topology::Topology;

/// Decodes one API document: a page of `/api/http/services` or `/api/http/routers` (a JSON
/// array), or one `/api/http/services/{name}`. Anything that is not that shape is an error,
/// never a panic; fields stickyscope does not use are ignored.
pub fn parse_document<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// `GET /api/http/services/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    /// e.g. `replicas-sticky@swarm`.
    pub name: String,
    /// e.g. `swarm`.
    #[serde(default)]
    pub provider: String,
    /// `enabled`, `disabled` or `warning`.
    #[serde(default)]
    pub status: String,
    /// Routers using this service.
    #[serde(default)]
    pub used_by: Vec<String>,
    /// The load balancer, absent for other service kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Server URL → `UP` or `DOWN`.
    #[serde(default)]
    pub server_status: BTreeMap<String, String>,
}

/// `loadBalancer` of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    /// The servers.
    #[serde(default)]
    pub servers: Vec<ServerInfo>,
    /// Sticky sessions, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    /// Active health check, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Whether the client's Host header is passed on.
    #[serde(default)]
    pub pass_host_header: bool,
}

/// One server of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// e.g. `http://10.0.1.5:3000`.
    pub url: String,
}

/// `loadBalancer.sticky`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sticky {
    /// The sticky cookie.
    pub cookie: StickyCookie,
}

/// `loadBalancer.sticky.cookie`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StickyCookie {
    /// Cookie name.
    #[serde(default)]
    pub name: String,
    /// `HttpOnly` flag.
    #[serde(default)]
    pub http_only: bool,
    /// `Secure` flag.
    #[serde(default)]
    pub secure: bool,
    /// `SameSite` value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub same_site: String,
}

/// `loadBalancer.healthCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Path probed.
    #[serde(default)]
    pub path: String,
    /// Probe interval, e.g. `1s`.
    #[serde(default)]
    pub interval: String,
}

/// One entry of `GET /api/http/routers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterInfo {
    /// e.g. `socketio-sticky@swarm`.
    pub name: String,
    /// Rule, e.g. ``PathPrefix(`/socket.io`)``.
    #[serde(default)]
    pub rule: String,
    /// Service name (without provider when in the same provider).
    #[serde(default)]
    pub service: String,
    /// Priority; higher wins.
    #[serde(default)]
    pub priority: i64,
    /// `enabled`, `disabled` or `warning`.
    #[serde(default)]
    pub status: String,
    /// Provider.
    #[serde(default)]
    pub provider: String,
    /// Why Traefik refused it, when it did (a rule that does not parse, a missing service).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
}

/// Server status values.
pub const UP: &str = "UP";
/// What Traefik answers, with `503 Service Unavailable`, when no server of a service is up
/// (the built-in balancer answers the same, word for word).
pub const NO_SERVER: &str = "no available server";
/// Server status values.
pub const DOWN: &str = "DOWN";

/// What the app takes from Traefik's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// The sticky service, when there is one.
    pub sticky: Option<ServiceInfo>,
    /// Problems with the labels, in plain words.
    pub problems: Vec<String>,
}

/// The topology Traefik's services and routers describe (nginx → Traefik → the sticky
/// service's servers), and the problems with its labels. Pure.
pub fn topology_from_api(
    services: &[ServiceInfo],
    routers: &[RouterInfo],
) -> (Topology, Vec<String>) {
    let analysis = analyse(services, routers);
    let hops = vec!["nginx".to_owned(), "traefik".to_owned()];
    let topology = match &analysis.sticky {
        Some(service) => Topology::from_service(hops, service, &BTreeMap::new()),
        None => Topology {
            hops,
            ..Topology::default()
        },
    };
    (topology, analysis.problems)
}

/// Finds the sticky service and checks the routers the stickiness switch relies on.
pub fn analyse(services: &[ServiceInfo], routers: &[RouterInfo]) -> Analysis {
    let mut problems = Vec::new();
    let sticky = services
        .iter()
        .find(|s| {
            s.load_balancer
                .as_ref()
                .is_some_and(|lb| lb.sticky.is_some())
        })
        .cloned();
    match &sticky {
        None => problems.push(
            "no Traefik service has a sticky cookie: long-polling sessions cannot stay on one replica (check the replicas-sticky labels)".to_owned(),
        ),
        Some(s) => {
            let name = s
                .load_balancer
                .as_ref()
                .and_then(|lb| lb.sticky.as_ref())
                .map(|st| st.cookie.name.as_str())
                .unwrap_or_default();
            if name != STICKY_COOKIE {
                problems.push(format!(
                    "the sticky cookie is named {name:?}, not {STICKY_COOKIE:?}: the switch cannot withhold it"
                ));
            }
        }
    }
    let round_robin = routers
        .iter()
        .find(|r| r.rule.contains("X-Stickiness") && r.rule.contains("off"));
    let sticky_router = sticky.as_ref().and_then(|s| {
        let short = s.name.split('@').next().unwrap_or(&s.name);
        routers
            .iter()
            .find(|r| r.service == short || r.service == s.name)
    });
    for router in routers.iter().filter(|r| !r.error.is_empty()) {
        problems.push(format!(
            "Traefik refused router {}: {}",
            router.name,
            router.error.join("; ")
        ));
    }
    match (round_robin, sticky_router) {
        (None, _) => problems.push(
            "no router matches X-Stickiness: off: turning stickiness off will have no effect (check the socketio-roundrobin labels)".to_owned(),
        ),
        (Some(rr), Some(st)) if rr.priority <= st.priority => problems.push(format!(
            "router {} (priority {}) does not outrank {} (priority {}): X-Stickiness: off requests stay sticky",
            rr.name, rr.priority, st.name, st.priority
        )),
        _ => {}
    }
    Analysis { sticky, problems }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, cookie: Option<&str>) -> ServiceInfo {
        ServiceInfo {
            name: name.into(),
            provider: "swarm".into(),
            status: "enabled".into(),
            used_by: vec![],
            load_balancer: Some(LoadBalancer {
                servers: vec![ServerInfo {
                    url: "http://10.0.1.5:3000".into(),
                }],
                sticky: cookie.map(|c| Sticky {
                    cookie: StickyCookie {
                        name: c.into(),
                        http_only: true,
                        secure: false,
                        same_site: "lax".into(),
                    },
                }),
                health_check: None,
                pass_host_header: true,
            }),
            server_status: Default::default(),
        }
    }

    fn router(name: &str, rule: &str, service: &str, priority: i64) -> RouterInfo {
        RouterInfo {
            name: name.into(),
            rule: rule.into(),
            service: service.into(),
            priority,
            status: "enabled".into(),
            provider: "swarm".into(),
            error: Vec::new(),
        }
    }

    #[test]
    fn the_intended_labels_have_no_problem() {
        let a = analyse(
            &[
                service("replicas-sticky@swarm", Some("sticky_replica")),
                service("replicas-roundrobin@swarm", None),
            ],
            &[
                router(
                    "socketio-sticky@swarm",
                    "PathPrefix(`/socket.io`)",
                    "replicas-sticky",
                    10,
                ),
                router(
                    "socketio-roundrobin@swarm",
                    "PathPrefix(`/socket.io`) && Header(`X-Stickiness`, `off`)",
                    "replicas-roundrobin",
                    20,
                ),
            ],
        );
        assert_eq!(a.problems, Vec::<String>::new());
        assert_eq!(a.sticky.unwrap().name, "replicas-sticky@swarm");
    }

    #[test]
    fn wrong_labels_are_named_plainly() {
        let a = analyse(&[service("x@swarm", None)], &[]);
        assert_eq!(a.problems.len(), 2, "{:?}", a.problems);
        assert!(a.problems[0].starts_with("no Traefik service has a sticky cookie"));
        assert!(a.problems[1].starts_with("no router matches X-Stickiness: off"));

        let a = analyse(
            &[service("replicas-sticky@swarm", Some("other"))],
            &[
                router("s@swarm", "PathPrefix(`/socket.io`)", "replicas-sticky", 30),
                router(
                    "rr@swarm",
                    "Header(`X-Stickiness`, `off`)",
                    "replicas-roundrobin",
                    20,
                ),
            ],
        );
        assert_eq!(a.problems.len(), 2, "{:?}", a.problems);
        assert!(a.problems[0].contains("\"other\""));
        assert!(a.problems[1].contains("does not outrank"));
    }
}
