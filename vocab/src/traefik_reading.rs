//! What the app takes from Traefik's API documents: the sticky service, the topology it
//! describes (nginx → Traefik → the sticky service's servers), and the problems with the
//! labels the stickiness switch relies on, in plain words.

use std::collections::BTreeMap;

use stickyscope_contract::names::STICKY_COOKIE;

use crate::topology::Topology;
use crate::traefik_model::{RouterInfo, ServiceInfo};

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
    use crate::traefik_model::{LoadBalancer, ServerInfo, Sticky, StickyCookie};

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
