//! Reading a stack's topology: from its balancer's API (Traefik's, or the embedded
//! balancer's service document), its servers named by replica id where stickyscope runs the
//! stack, with the label problems Traefik's API shows. The conductor's poller reads it every
//! second; the doctor reads it once ([`read_once`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::stack::{ReplicaControl, TopologyApi};
use crate::traefik_client::TraefikApi;
use stickyscope_vocab::topology::Topology;
use stickyscope_vocab::traefik_model::{parse_document, ServiceInfo};
use stickyscope_vocab::traefik_reading::topology_from_api;

/// Where topology comes from: the stack's API, and (on a stack stickyscope runs) its replica
/// controls, which name each server URL by replica id.
pub struct TopologySource {
    /// Where the topology is read.
    pub api: TopologyApi,
    /// The replicas' ids by server URL come from here, when stickyscope runs the stack.
    pub controls: Option<Arc<dyn ReplicaControl>>,
}

impl TopologySource {
    /// Replica ids by server URL, from the stack's controls (none on a running stack).
    async fn ids_by_url(&self) -> BTreeMap<String, String> {
        match &self.controls {
            Some(controls) => controls
                .statuses()
                .await
                .into_iter()
                .map(|r| (r.url, r.id))
                .collect(),
            None => BTreeMap::new(),
        }
    }
}

/// What reads the topology: an HTTP client for a service document, Traefik's API client.
pub struct Readers {
    client: Client<HttpConnector, Empty<Bytes>>,
    traefik: Option<Result<TraefikApi, crate::traefik_client::TraefikError>>,
}

impl Readers {
    /// Readers for `api`.
    pub fn new(api: &TopologyApi) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(crate::http_serve::POOL_IDLE)
            .build_http();
        // One API client for the whole run (it holds a connection pool and TLS roots).
        let traefik = match api {
            TopologyApi::Traefik {
                url,
                credential: Some(credential),
                trust,
                ..
            } => Some(TraefikApi::with_credential(
                url,
                Some(credential.clone()),
                trust,
            )),
            // Its credential in the URL, or in STICKYSCOPE_TRAEFIK_AUTH.
            TopologyApi::Traefik {
                url,
                credential: None,
                trust,
                ..
            } => Some(TraefikApi::new(url, trust)),
            _ => None,
        };
        Readers { client, traefik }
    }

    /// The topology now, and the label problems Traefik's API shows.
    pub async fn read(&self, source: &TopologySource) -> Result<(Topology, Vec<String>), String> {
        match &source.api {
            TopologyApi::Service { url, hops } => {
                let ids = source.ids_by_url().await;
                fetch_service(&self.client, url)
                    .await
                    .map(|s| (Topology::from_service(hops.clone(), &s, &ids), Vec::new()))
            }
            TopologyApi::Traefik { instances, .. } => {
                let read = match &self.traefik {
                    Some(Ok(api)) => read_traefik(api).await,
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("no Traefik API".to_owned()),
                };
                let ids = source.ids_by_url().await;
                read.map(|(mut topology, problems)| {
                    topology.name_by_url(&ids);
                    topology.count_instances("traefik", *instances);
                    (topology, problems)
                })
            }
            TopologyApi::None => Ok((
                Topology {
                    hops: vec!["gateway".into()],
                    ..Topology::default()
                },
                Vec::new(),
            )),
        }
    }
}

/// The topology once, and the label problems Traefik's API shows (`stickyscope doctor`).
pub async fn read_once(source: &TopologySource) -> Result<(Topology, Vec<String>), String> {
    Readers::new(&source.api).read(source).await
}

/// Reads services and routers from a Traefik API; returns the topology of the sticky
/// service (nginx and Traefik as hops) and the label problems found.
async fn read_traefik(client: &TraefikApi) -> Result<(Topology, Vec<String>), String> {
    let services = client.services().await.map_err(|e| e.to_string())?;
    let routers = client.routers().await.map_err(|e| e.to_string())?;
    Ok(topology_from_api(&services, &routers))
}

async fn fetch_service(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
) -> Result<ServiceInfo, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let resp = tokio::time::timeout(Duration::from_secs(2), client.get(uri))
        .await
        .map_err(|_| format!("{url} did not answer in 2 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), 4 << 20)
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    parse_document(&body)
        .map_err(|e| format!("{url} sent something that is not a Traefik service: {e}"))
}
