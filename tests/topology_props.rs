//! Property tests of the topology API parser (the fuzz target `topology_api` explores the
//! same code further): no answer, however malformed, panics; every well-formed services page
//! round-trips and yields one node per server with the health Traefik reported.

use std::collections::BTreeMap;

use proptest::prelude::*;
use stickyscope_vocab::traefik_model::{
    parse_document, LoadBalancer, RouterInfo, ServerInfo, ServiceInfo, Sticky, StickyCookie,
};
use stickyscope_vocab::traefik_reading::topology_from_api;

fn service() -> impl Strategy<Value = ServiceInfo> {
    (
        "[a-z-]{1,12}@swarm",
        proptest::collection::btree_map(
            "http://10\\.0\\.[0-9]{1,3}\\.[0-9]{1,3}:3000",
            any::<bool>(),
            0..8,
        ),
        proptest::option::of("[a-z_]{0,16}"),
    )
        .prop_map(|(name, servers, cookie)| ServiceInfo {
            name,
            provider: "swarm".into(),
            status: "enabled".into(),
            used_by: vec![],
            load_balancer: Some(LoadBalancer {
                servers: servers
                    .keys()
                    .map(|url| ServerInfo { url: url.clone() })
                    .collect(),
                sticky: cookie.map(|name| Sticky {
                    cookie: StickyCookie {
                        name,
                        http_only: true,
                        secure: false,
                        same_site: String::new(),
                    },
                }),
                health_check: None,
                pass_host_header: true,
            }),
            server_status: servers
                .into_iter()
                .map(|(url, up)| (url, if up { "UP" } else { "DOWN" }.to_owned()))
                .collect::<BTreeMap<_, _>>(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let services = parse_document::<Vec<ServiceInfo>>(&bytes).unwrap_or_default();
        let routers = parse_document::<Vec<RouterInfo>>(&bytes).unwrap_or_default();
        let _ = parse_document::<ServiceInfo>(&bytes);
        let _ = topology_from_api(&services, &routers);
    }

    #[test]
    fn json_shaped_garbage_never_panics(
        text in r#"\[\{("(name|loadBalancer|servers|url|sticky|cookie|serverStatus)":(\{|\[|"[a-z:/.0-9]{0,12}"|-?[0-9]{1,3}|null|true),?){0,8}(\}|\])*"#
    ) {
        let services = parse_document::<Vec<ServiceInfo>>(text.as_bytes()).unwrap_or_default();
        let _ = topology_from_api(&services, &[]);
    }

    #[test]
    fn well_formed_pages_round_trip_into_one_node_per_server(service in service()) {
        let page = serde_json::to_vec(&vec![service.clone()]).unwrap();
        let parsed: Vec<ServiceInfo> = parse_document(&page).unwrap();
        prop_assert_eq!(&parsed, &vec![service.clone()]);
        let (topology, _) = topology_from_api(&parsed, &[]);
        let lb = service.load_balancer.as_ref().unwrap();
        if lb.sticky.is_some() {
            prop_assert_eq!(topology.replicas.len(), lb.servers.len());
            for node in &topology.replicas {
                let url = node.url.as_deref().unwrap();
                prop_assert_eq!(node.up, service.server_status[url] == "UP");
            }
        } else {
            prop_assert!(topology.replicas.is_empty(), "no sticky service, no replicas drawn");
        }
    }
}
