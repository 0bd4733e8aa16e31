//! The few calls of the Docker Engine API the swarm stack's controls need, over the
//! engine's unix socket (`unix:///var/run/docker.sock`): a service read and scaled, its
//! tasks listed, a task's container killed, stopped or signalled. One HTTP/1.1 connection
//! per call; errors in the engine's own words.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read (a task list of a few hundred tasks is well under this).
const MAX_ANSWER: usize = 8 << 20;

/// Why a call to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// `--docker` is not `unix:///path`.
    #[error("--docker {0:?} is not unix:///PATH (the engine's socket, e.g. unix:///var/run/docker.sock)")]
    BadEndpoint(String),
    /// No connection to the socket.
    #[error("the Docker engine at {socket} does not answer: {reason}")]
    Unreachable {
        /// The socket.
        socket: String,
        /// What happened.
        reason: String,
    },
    /// The engine said no.
    #[error("the Docker engine answered {status} to {what}: {message}")]
    Refused {
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// An answer that is not what the API documents.
    #[error("the Docker engine's answer to {what} does not read: {reason}")]
    Garbage {
        /// What was asked.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

/// The engine at a unix socket.
#[derive(Debug, Clone)]
pub struct DockerApi {
    socket: PathBuf,
}

/// A swarm service, as much as scaling it needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    /// Its id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its version, which an update must name.
    #[serde(rename = "Version")]
    pub version: ObjectVersion,
    /// Its spec, sent back whole with the replica count changed.
    #[serde(rename = "Spec")]
    pub spec: serde_json::Value,
}

/// A swarm object's version.
#[derive(Debug, Clone, Deserialize)]
pub struct ObjectVersion {
    /// The index an update must name.
    #[serde(rename = "Index")]
    pub index: u64,
}

/// A task of a service.
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    /// Its id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its slot (1, 2, …): the replica's `X-Replica` in the stack.
    #[serde(rename = "Slot", default)]
    pub slot: u64,
    /// When it was made.
    #[serde(rename = "CreatedAt", default)]
    pub created_at: String,
    /// What Swarm wants of it (`running`, `shutdown`).
    #[serde(rename = "DesiredState", default)]
    pub desired_state: String,
    /// What it is.
    #[serde(rename = "Status")]
    pub status: TaskStatus,
    /// Its addresses on the service's networks.
    #[serde(rename = "NetworksAttachments", default)]
    pub networks: Vec<NetworkAttachment>,
}

/// A task's state and container.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskStatus {
    /// `running`, `failed`, `shutdown`, `complete`, …
    #[serde(rename = "State", default)]
    pub state: String,
    /// Why, in the engine's words (`task: non-zero exit (137)`).
    #[serde(rename = "Err", default)]
    pub err: String,
    /// Its container.
    #[serde(rename = "ContainerStatus", default)]
    pub container: Option<ContainerStatus>,
}

/// A task's container.
#[derive(Debug, Clone, Deserialize)]
pub struct ContainerStatus {
    /// Its id.
    #[serde(rename = "ContainerID", default)]
    pub id: String,
}

/// A task's place on one network.
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkAttachment {
    /// The network.
    #[serde(rename = "Network")]
    pub network: AttachedNetwork,
    /// Its addresses there, with their prefix (`10.0.1.5/24`).
    #[serde(rename = "Addresses", default)]
    pub addresses: Vec<String>,
}

/// The network of an attachment.
#[derive(Debug, Clone, Deserialize)]
pub struct AttachedNetwork {
    /// Its spec.
    #[serde(rename = "Spec")]
    pub spec: NetworkSpec,
}

/// A network's name.
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkSpec {
    /// e.g. `stickyscope_net`.
    #[serde(rename = "Name", default)]
    pub name: String,
}

impl Task {
    /// Its IP address on `network` (the one Traefik routes to).
    pub fn address_on(&self, network: &str) -> Option<String> {
        self.networks
            .iter()
            .find(|n| n.network.spec.name == network)
            .and_then(|n| n.addresses.first())
            .map(|a| a.split('/').next().unwrap_or(a).to_owned())
    }
}

impl DockerApi {
    /// The engine at `endpoint` (`unix:///var/run/docker.sock`).
    pub fn new(endpoint: &str) -> Result<Self, DockerError> {
        let path = endpoint
            .strip_prefix("unix://")
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| DockerError::BadEndpoint(endpoint.to_owned()))?;
        Ok(DockerApi {
            socket: PathBuf::from(path),
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A service by name.
    pub async fn service(&self, name: &str) -> Result<Service, DockerError> {
        self.read(&format!("/services/{name}")).await
    }

    /// Sets a service's replica count.
    pub async fn scale(&self, name: &str, replicas: u64) -> Result<(), DockerError> {
        let service = self.service(name).await?;
        let mut spec = service.spec;
        let Some(count) = spec.pointer_mut("/Mode/Replicated/Replicas") else {
            return Err(DockerError::Garbage {
                what: format!("service {name}"),
                reason: "it is not a replicated service".into(),
            });
        };
        *count = replicas.into();
        let path = format!(
            "/services/{}/update?version={}",
            service.id, service.version.index
        );
        self.call(Method::POST, &path, Some(spec.to_string()))
            .await
            .map(drop)
    }

    /// The tasks of a service, every one Swarm still lists.
    pub async fn tasks(&self, service: &str) -> Result<Vec<Task>, DockerError> {
        let filters = serde_json::json!({ "service": { service: true } }).to_string();
        self.read(&format!("/tasks?filters={}", percent_encode(&filters)))
            .await
    }

    /// Sends `signal` to a container (`SIGKILL`, `SIGUSR1`, …).
    pub async fn signal(&self, container: &str, signal: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{container}/kill?signal={signal}");
        self.call(Method::POST, &path, None).await.map(drop)
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace_s`.
    pub async fn stop(&self, container: &str, grace_s: u64) -> Result<(), DockerError> {
        let path = format!("/containers/{container}/stop?t={grace_s}");
        self.call(Method::POST, &path, None).await.map(drop)
    }

    async fn read<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, DockerError> {
        let body = self.call(Method::GET, path, None).await?;
        serde_json::from_slice(&body).map_err(|e| DockerError::Garbage {
            what: format!("GET {path}"),
            reason: e.to_string(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Bytes, DockerError> {
        let what = format!("{method} {path}");
        tokio::time::timeout(CALL_TIMEOUT, self.exchange(method, path, body))
            .await
            .map_err(|_| DockerError::Unreachable {
                socket: self.socket.display().to_string(),
                reason: format!("{what} unanswered for {} s", CALL_TIMEOUT.as_secs()),
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Bytes, DockerError> {
        let what = format!("{method} {path}");
        let unreachable = |reason: String| DockerError::Unreachable {
            socket: self.socket.display().to_string(),
            reason,
        };
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "docker")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| unreachable(e.to_string()))?;
        let answer = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = answer.status();
        let bytes = Limited::new(answer.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| DockerError::Garbage {
                what: what.clone(),
                reason: e.to_string(),
            })?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_owned());
            return Err(DockerError::Refused {
                what,
                status: status.as_u16(),
                message,
            });
        }
        Ok(bytes)
    }
}

/// Percent-encodes a query value.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_unix_socket_is_an_endpoint() {
        assert!(DockerApi::new("unix:///var/run/docker.sock").is_ok());
        for bad in [
            "/var/run/docker.sock",
            "tcp://127.0.0.1:2375",
            "unix://relative",
        ] {
            let err = DockerApi::new(bad).unwrap_err().to_string();
            assert!(err.contains("is not unix:///PATH"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_task_reads_as_the_engine_lists_it() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "ID": "t1", "Slot": 2, "CreatedAt": "2026-12-04T21:00:00Z", "DesiredState": "running",
            "Status": {"State": "running", "ContainerStatus": {"ContainerID": "c1"}},
            "NetworksAttachments": [
                {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.9/24"]},
                {"Network": {"Spec": {"Name": "stickyscope_net"}}, "Addresses": ["10.0.1.5/24"]}
            ]
        }))
        .unwrap();
        assert_eq!(task.slot, 2);
        assert_eq!(
            task.address_on("stickyscope_net").as_deref(),
            Some("10.0.1.5")
        );
        assert_eq!(task.status.container.unwrap().id, "c1");
        assert_eq!(percent_encode(r#"{"a":1}"#), "%7B%22a%22%3A1%7D");
    }
}
