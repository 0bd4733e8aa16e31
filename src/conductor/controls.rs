//! The replica controls of the stacks stickyscope runs itself — the embedded stack and the
//! local chain — behind one face, so the conductor carries out "stop replica 2" the same way on
//! both. A stack stickyscope did not start has none.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_contract::stats::StatsSnapshot;
use stickyscope_vocab::stack::Adapter;

use crate::chain::Chain;
use crate::embedded::EmbeddedStack;
use stickyscope_vocab::events::ReplicaAction;

/// A stack with replica controls.
#[derive(Clone)]
pub enum StackControls {
    /// Replicas and balancer in this process.
    Embedded(Arc<EmbeddedStack>),
    /// nginx → Traefik → replica processes → Redis, as child processes.
    Chain(Arc<Chain>),
}

impl std::fmt::Debug for StackControls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StackControls::Embedded(s) => write!(f, "Embedded({})", s.gateway_url()),
            StackControls::Chain(c) => write!(f, "Chain({})", c.gateway_url()),
        }
    }
}

impl StackControls {
    /// The gateway users connect to.
    pub fn gateway_url(&self) -> String {
        match self {
            StackControls::Embedded(s) => s.gateway_url(),
            StackControls::Chain(c) => c.gateway_url(),
        }
    }

    /// Adds a replica; returns its id.
    pub async fn add(&self) -> Result<String, String> {
        match self {
            StackControls::Embedded(s) => s.add().await.map_err(|e| e.to_string()),
            StackControls::Chain(c) => c.add().await.map_err(|e| e.to_string()),
        }
    }

    /// Carries out `action` on replica `id`.
    pub async fn act(&self, id: &str, action: ReplicaAction) -> Result<(), String> {
        match self {
            StackControls::Embedded(s) => match action {
                ReplicaAction::Stop => s.stop(id).await,
                ReplicaAction::Kill => s.kill(id).await,
                ReplicaAction::Restart => s.restart(id).await,
                ReplicaAction::Unhealthy => s.set_healthy(id, false).await,
                ReplicaAction::Healthy => s.set_healthy(id, true).await,
            }
            .map_err(|e| e.to_string()),
            StackControls::Chain(c) => match action {
                ReplicaAction::Stop => c.stop(id).await,
                ReplicaAction::Kill => c.kill(id).await,
                ReplicaAction::Restart => c.restart(id).await,
                ReplicaAction::Unhealthy => c.set_healthy(id, false).await,
                ReplicaAction::Healthy => c.set_healthy(id, true).await,
            }
            .map_err(|e| e.to_string()),
        }
    }

    /// Restarts the replicas with a new heartbeat and/or adapter (on the chain, any adapter
    /// but `None` is Redis).
    pub async fn configure(
        &self,
        heartbeat: Option<Heartbeat>,
        adapter: Option<Adapter>,
    ) -> Result<(), String> {
        match self {
            StackControls::Embedded(s) => s
                .reconfigure(heartbeat, adapter)
                .await
                .map_err(|e| e.to_string()),
            StackControls::Chain(c) => c
                .reconfigure(heartbeat, adapter)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// The server URL of replica `id` at the balancer.
    pub async fn replica_url(&self, id: &str) -> Option<String> {
        match self {
            StackControls::Embedded(s) => s
                .replicas()
                .await
                .into_iter()
                .find(|r| r.id == id)
                .map(|r| r.url),
            StackControls::Chain(c) => c
                .replicas()
                .await
                .into_iter()
                .find(|r| r.id == id)
                .map(|r| r.url),
        }
    }

    /// Every replica's `/stats` that answers (the chain's within 2 s each).
    pub async fn stats(&self) -> BTreeMap<String, StatsSnapshot> {
        match self {
            StackControls::Embedded(s) => s
                .replicas()
                .await
                .into_iter()
                .map(|r| (r.id, r.stats))
                .collect(),
            StackControls::Chain(c) => {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build();
                let Ok(client) = client else {
                    return BTreeMap::new();
                };
                let reads = c.replicas().await.into_iter().map(|r| {
                    let client = client.clone();
                    async move {
                        let snapshot = client
                            .get(format!("{}/stats", r.url))
                            .send()
                            .await
                            .ok()?
                            .json::<StatsSnapshot>()
                            .await
                            .ok()?;
                        Some((r.id, snapshot))
                    }
                });
                futures_util::future::join_all(reads)
                    .await
                    .into_iter()
                    .flatten()
                    .collect()
            }
        }
    }

    /// Stops the stack.
    pub async fn shutdown(&self) {
        match self {
            StackControls::Embedded(s) => s.shutdown().await,
            StackControls::Chain(c) => c.shutdown().await,
        }
    }
}
