//! When a part of the chain is ready: a check run until it passes, the part exits, the check
//! says never, or a bound passes; and the checks themselves (Redis answers PING, a URL
//! answers 200, Traefik lists a server UP), plus a warning when the Traefik found is not the
//! one the stack file pins.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::binaries::{self, Binaries};
use super::children::{self, Child};
use super::{ChainError, STICKY_SERVICE};
use crate::traefik_client::TraefikApi;

/// How long each part may take to come up.
const READY_BOUND: Duration = Duration::from_secs(20);

/// Why a readiness check did not pass.
pub(super) enum NotYet {
    /// Maybe later.
    Waiting(String),
    /// Never: no point waiting.
    Refused(String),
}

impl From<String> for NotYet {
    fn from(why: String) -> Self {
        NotYet::Waiting(why)
    }
}

/// Waits until `check` passes, the child exits, the check says never, or [`READY_BOUND`]
/// passes.
pub(super) async fn until_ready<F, Fut>(
    child: &Child,
    part: &str,
    mut check: F,
) -> Result<(), ChainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), NotYet>>,
{
    let deadline = Instant::now() + READY_BOUND;
    let not_ready = |why: String| ChainError::NotReady {
        part: part.to_owned(),
        why,
        log: children::kept_log(child.log(), part),
        tail: children::log_tail(child.log(), children::LOG_TAIL_LINES),
    };
    loop {
        let last = match check().await {
            Ok(()) => return Ok(()),
            Err(NotYet::Refused(why)) => return Err(not_ready(why)),
            Err(NotYet::Waiting(why)) => why,
        };
        if let Some(how) = child.exited() {
            return Err(not_ready(format!("it exited ({how})")));
        }
        if Instant::now() >= deadline {
            return Err(not_ready(format!(
                "not ready within {} s ({last})",
                READY_BOUND.as_secs()
            )));
        }
        // A bounded wait on a condition: the check runs again shortly.
        if child.wait(Duration::from_millis(50)).await {
            return Err(not_ready(format!(
                "it exited ({})",
                child.exited().unwrap_or_default()
            )));
        }
    }
}

/// Each server's status (`UP`, `DOWN`) in the sticky service, as Traefik's API lists them.
pub(super) async fn sticky_statuses(api: &TraefikApi) -> Result<BTreeMap<String, String>, NotYet> {
    let services = api
        .services()
        .await
        .map_err(|e| NotYet::Waiting(e.to_string()))?;
    services
        .into_iter()
        .find(|s| s.name == STICKY_SERVICE)
        .map(|s| s.server_status)
        .ok_or_else(|| NotYet::Waiting(format!("its API does not list {STICKY_SERVICE} yet")))
}

/// `PING` → `+PONG` on a Redis port.
pub(super) async fn redis_ping(port: u16) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut answer = [0u8; 16];
        let n = stream.read(&mut answer).await?;
        Ok::<_, std::io::Error>(answer[..n].to_vec())
    };
    match tokio::time::timeout(Duration::from_secs(1), exchange).await {
        Ok(Ok(answer)) if answer.starts_with(b"+PONG") => Ok(()),
        Ok(Ok(answer)) => Err(format!(
            "PING answered {:?}",
            String::from_utf8_lossy(&answer)
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("PING unanswered for 1 s".into()),
    }
}

/// A GET that must answer 200.
pub(super) async fn http_ok(
    url: String,
    credential: Option<(String, String)>,
    trust: &crate::tls_trust::Trust,
) -> Result<(), String> {
    let tls = crate::tls_trust::connector(trust).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client.get(&url);
    if let Some((user, password)) = credential {
        request = request.basic_auth(user, Some(password));
    }
    match request.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("{url} answered {}", resp.status())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

/// Warns when the Traefik found is not the one the stack pins (its sticky cookie values
/// may differ: 3.0–3.3.3 compute them otherwise).
pub(super) async fn check_traefik_version(binaries: &Binaries) {
    let Ok(out) = tokio::process::Command::new(&binaries.traefik)
        .arg("version")
        .output()
        .await
    else {
        return;
    };
    let version = binaries::traefik_version(&String::from_utf8_lossy(&out.stdout));
    if version.as_deref() != Some(binaries::TRAEFIK_VERSION) {
        tracing::warn!(
            found = version.as_deref().unwrap_or("?"),
            pinned = binaries::TRAEFIK_VERSION,
            "this Traefik is not the version the stack file pins; stickiness works, but its cookie values may differ from the built-in balancer's"
        );
    }
}
