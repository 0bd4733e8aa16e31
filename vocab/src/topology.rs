//! The topology model: gateway hops and the replicas behind them, as the topology API
//! describes them plus the replicas actually seen on the wire. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::traefik_model::{ServiceInfo, UP};

/// How a replica is called on screen: `replica 2` or `replica web-a` for a name, the bare
/// address for a server known by its address (`10.0.1.7:3000`), which needs no prefix.
pub fn replica_name(id: &str) -> String {
    if id.contains(':') {
        id.to_owned()
    } else {
        format!("replica {id}")
    }
}

/// One replica as the topology knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaNode {
    /// Replica id (`X-Replica`), once known.
    pub id: Option<String>,
    /// Server URL at the balancer, when the API lists it.
    pub url: Option<String>,
    /// UP in the balancer's rotation (meaningful only when `listed`).
    pub up: bool,
    /// Whether the topology API lists it; otherwise it is known only from the wire, and
    /// whether it is in rotation is unknown.
    #[serde(default = "listed_default")]
    pub listed: bool,
}

fn listed_default() -> bool {
    true
}

/// Gateway hops and replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Hops from the users to the replicas, e.g. `["balancer"]` or `["nginx", "traefik"]`.
    pub hops: Vec<String>,
    /// Replicas, in the balancer's order, then those only seen on the wire.
    pub replicas: Vec<ReplicaNode>,
    /// The sticky cookie name, when the sticky service has one.
    pub sticky_cookie: Option<String>,
}

impl Topology {
    /// Builds the topology from the sticky service and a map server URL → replica id.
    pub fn from_service(
        hops: Vec<String>,
        service: &ServiceInfo,
        ids_by_url: &BTreeMap<String, String>,
    ) -> Topology {
        let lb = service.load_balancer.as_ref();
        let replicas = lb
            .map(|lb| {
                lb.servers
                    .iter()
                    .map(|s| ReplicaNode {
                        id: ids_by_url.get(&s.url).cloned(),
                        url: Some(s.url.clone()),
                        up: service.server_status.get(&s.url).map(String::as_str) == Some(UP),
                        listed: true,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Topology {
            hops,
            replicas,
            sticky_cookie: lb
                .and_then(|lb| lb.sticky.as_ref())
                .map(|s| s.cookie.name.clone()),
        }
    }

    /// Names the replicas whose server URL `ids_by_url` knows (a stack stickyscope runs knows
    /// which replica listens where).
    pub fn name_by_url(&mut self, ids_by_url: &BTreeMap<String, String>) {
        for node in &mut self.replicas {
            if node.id.is_none() {
                node.id = node.url.as_ref().and_then(|u| ids_by_url.get(u)).cloned();
            }
        }
    }

    /// Says that `hop` runs as `instances` processes side by side (the local chain's
    /// `--traefiks`): its name becomes `"{hop} ×{instances}"`. One instance changes nothing.
    pub fn count_instances(&mut self, hop: &str, instances: usize) {
        if instances < 2 {
            return;
        }
        for name in &mut self.hops {
            if name == hop {
                *name = format!("{hop} ×{instances}");
            }
        }
    }

    /// Adds a replica seen on the wire that the API did not list (or did not name).
    pub fn observe(&mut self, id: &str, addr: Option<&str>) {
        if self.replicas.iter().any(|r| r.id.as_deref() == Some(id)) {
            return;
        }
        if let Some(addr) = addr {
            let url = format!("http://{addr}");
            if let Some(node) = self
                .replicas
                .iter_mut()
                .find(|r| r.id.is_none() && r.url.as_deref() == Some(url.as_str()))
            {
                node.id = Some(id.to_owned());
                return;
            }
        }
        self.replicas.push(ReplicaNode {
            id: Some(id.to_owned()),
            url: None,
            up: true,
            listed: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_addresses_are_not() {
        assert_eq!(replica_name("2"), "replica 2");
        assert_eq!(replica_name("web-a"), "replica web-a");
        assert_eq!(replica_name("10.0.1.7:3000"), "10.0.1.7:3000");
        assert_eq!(replica_name("[::1]:3000"), "[::1]:3000");
    }
    use crate::traefik_model::{LoadBalancer, ServerInfo};

    fn service() -> ServiceInfo {
        ServiceInfo {
            name: "replicas-sticky@swarm".into(),
            provider: "swarm".into(),
            status: "enabled".into(),
            used_by: vec![],
            load_balancer: Some(LoadBalancer {
                servers: vec![
                    ServerInfo {
                        url: "http://10.0.0.5:3000".into(),
                    },
                    ServerInfo {
                        url: "http://10.0.0.6:3000".into(),
                    },
                ],
                sticky: None,
                health_check: None,
                pass_host_header: true,
            }),
            server_status: [("http://10.0.0.5:3000".to_owned(), "UP".to_owned())].into(),
        }
    }

    #[test]
    fn a_hop_run_as_several_instances_says_how_many() {
        let mut topo = Topology {
            hops: vec!["nginx".into(), "traefik".into()],
            ..Topology::default()
        };
        topo.count_instances("traefik", 1);
        assert_eq!(topo.hops, ["nginx", "traefik"]);
        topo.count_instances("traefik", 2);
        assert_eq!(topo.hops, ["nginx", "traefik ×2"]);
        topo.count_instances("haproxy", 3);
        assert_eq!(topo.hops, ["nginx", "traefik ×2"], "only the hop named");
    }

    #[test]
    fn joins_server_urls_with_replica_addresses_seen_on_the_wire() {
        let mut topo = Topology::from_service(
            vec!["nginx".into(), "traefik".into()],
            &service(),
            &BTreeMap::new(),
        );
        assert_eq!(topo.replicas.len(), 2);
        assert!(topo.replicas[0].up && !topo.replicas[1].up);
        topo.observe("2", Some("10.0.0.6:3000"));
        assert_eq!(topo.replicas[1].id.as_deref(), Some("2"));
        topo.observe("2", Some("10.0.0.6:3000"));
        topo.observe("9", None);
        assert_eq!(topo.replicas.len(), 3);
        assert!(topo.replicas[1].listed, "joined with the API's server");
        assert!(!topo.replicas[2].listed, "known from the wire only");
    }
}
