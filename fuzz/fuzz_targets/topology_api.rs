//! Fuzzes the topology API parser: whatever a Traefik (or something pretending to be one)
//! answers on /api/http/services and /api/http/routers is decoded and, when it decodes,
//! turned into a topology and label problems. The input is split at its first NUL into the
//! services page and the routers page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stickyscope_vocab::traefik_reading::topology_from_api;
use stickyscope_vocab::traefik_model::{parse_document, RouterInfo, ServiceInfo};

fuzz_target!(|data: &[u8]| {
    let (services, routers) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"[]"[..]),
    };
    let _ = parse_document::<ServiceInfo>(services);
    let services: Vec<ServiceInfo> = parse_document(services).unwrap_or_default();
    let routers: Vec<RouterInfo> = parse_document(routers).unwrap_or_default();
    let (topology, _problems) = topology_from_api(&services, &routers);
    assert_eq!(topology.hops, ["nginx", "traefik"]);
});
