//! Active health checks: every interval, `GET /healthz` on each enabled server; a server
//! that fails, or does not answer within the interval (at least 1 s, so a busy machine does
//! not flap healthy replicas), leaves rotation until a check succeeds again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

use super::pool::Pool;

/// Shortest interval between two rounds of checks, whatever the caller asks.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// Runs health checks until `cancel` fires.
pub async fn run(pool: Arc<Pool>, interval: Duration, cancel: CancellationToken) {
    let interval = interval.max(MIN_INTERVAL);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(crate::http_serve::POOL_IDLE)
        .build_http();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let checks = pool
            .backends()
            .into_iter()
            .filter(|b| b.enabled)
            .map(|backend| {
                let client = client.clone();
                async move {
                    let uri = format!("{}/healthz", backend.url);
                    let healthy = match uri.parse::<hyper::Uri>() {
                        Ok(uri) => matches!(
                            tokio::time::timeout(interval.max(Duration::from_secs(1)), client.get(uri)).await,
                            Ok(Ok(resp)) if resp.status().is_success()
                        ),
                        Err(_) => false,
                    };
                    (backend, healthy)
                }
            });
        for (backend, healthy) in futures_util::future::join_all(checks).await {
            if pool.set_healthy(backend.addr, healthy) {
                let state = if healthy { "UP" } else { "DOWN" };
                tracing::info!(server = %backend.url, replica = ?backend.replica, "health check: {state}");
            }
        }
    }
}
