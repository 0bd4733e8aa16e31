//! Reads the topology API every second and sends the topology when it changes; says so
//! plainly when the API cannot be read, and keeps trying. [`read_once`] reads it once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::event_sink::EventSink;
use crate::stack::{ReplicaControl, TopologyApi};
use crate::traefik_client::TraefikApi;
use crate::wire::Learner;
use stickyscope_vocab::events::{Event, Notice, NoticeLevel};
use stickyscope_vocab::topology::Topology;
use stickyscope_vocab::traefik_model::{parse_document, ServiceInfo};
use stickyscope_vocab::traefik_reading::topology_from_api;

/// How often the API is read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

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
struct Readers {
    client: Client<HttpConnector, Empty<Bytes>>,
    traefik: Option<Result<TraefikApi, crate::traefik_client::TraefikError>>,
}

impl Readers {
    fn new(api: &TopologyApi) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(crate::http_serve::POOL_IDLE)
            .build_http();
        // One API client for the whole run (it holds a connection pool and TLS roots).
        let traefik = match api {
            TopologyApi::Traefik {
                url,
                credential: Some(credential),
                trust,
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
            } => Some(TraefikApi::new(url, trust)),
            _ => None,
        };
        Readers { client, traefik }
    }

    /// The topology now, and the label problems Traefik's API shows.
    async fn read(&self, source: &TopologySource) -> Result<(Topology, Vec<String>), String> {
        match &source.api {
            TopologyApi::Service { url, hops } => {
                let ids = source.ids_by_url().await;
                fetch_service(&self.client, url)
                    .await
                    .map(|s| (Topology::from_service(hops.clone(), &s, &ids), Vec::new()))
            }
            TopologyApi::Traefik { .. } => {
                let read = match &self.traefik {
                    Some(Ok(api)) => read_traefik(api).await,
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("no Traefik API".to_owned()),
                };
                let ids = source.ids_by_url().await;
                read.map(|(mut topology, problems)| {
                    topology.name_by_url(&ids);
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

/// Polls until aborted; teaches `learner` (so the taps) each topology that differs.
pub async fn run(source: TopologySource, sink: EventSink, learner: Learner) {
    let readers = Readers::new(&source.api);
    let mut last: Option<Topology> = None;
    let mut last_problems: Vec<String> = Vec::new();
    let mut failing = false;
    loop {
        let read = match readers.read(&source).await {
            Ok((topology, problems)) => {
                if problems != last_problems {
                    last_problems = problems.clone();
                    for problem in problems {
                        sink.send(Event::Notice(Notice {
                            level: NoticeLevel::Warning,
                            text: format!("Traefik labels: {problem}; drawing what the wire shows"),
                        }))
                        .await;
                    }
                }
                Ok(topology)
            }
            Err(reason) => Err(reason),
        };
        match read {
            Ok(topology) => {
                if failing {
                    failing = false;
                    sink.send(Event::Notice(Notice {
                        level: NoticeLevel::Info,
                        text: "topology API reachable again".into(),
                    }))
                    .await;
                }
                if last.as_ref() != Some(&topology) {
                    learner.learn(&topology);
                    last = Some(topology.clone());
                    sink.send(Event::Topology(topology)).await;
                }
            }
            Err(reason) => {
                if !failing {
                    failing = true;
                    sink.send(Event::Notice(Notice {
                        level: NoticeLevel::Warning,
                        text: format!(
                            "topology API unreachable ({reason}); drawing the replicas seen on the wire and retrying every second"
                        ),
                    }))
                    .await;
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
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
