//! The shapes of Traefik v3's HTTP API documents that stickyscope reads (what it takes from
//! them is read in [`crate::traefik_reading`]).
//!
//! The built-in balancer serves its topology in these shapes and the app reads Traefik's
//! real API with them, so topology is read one way in both modes. Only the fields used
//! are modelled; unknown fields are ignored when parsing.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Decodes one API document: a page of `/api/http/services` or `/api/http/routers` (a JSON
/// array), or one `/api/http/services/{name}`. Anything that is not that shape is an error,
/// never a panic; fields stickyscope does not use are ignored.
pub fn parse_document<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// `GET /api/http/services/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    /// e.g. `replicas-sticky@swarm`.
    pub name: String,
    /// e.g. `swarm`.
    #[serde(default)]
    pub provider: String,
    /// `enabled`, `disabled` or `warning`.
    #[serde(default)]
    pub status: String,
    /// Routers using this service.
    #[serde(default)]
    pub used_by: Vec<String>,
    /// The load balancer, absent for other service kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Server URL → `UP` or `DOWN`.
    #[serde(default)]
    pub server_status: BTreeMap<String, String>,
}

/// `loadBalancer` of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    /// The servers.
    #[serde(default)]
    pub servers: Vec<ServerInfo>,
    /// Sticky sessions, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    /// Active health check, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Whether the client's Host header is passed on.
    #[serde(default)]
    pub pass_host_header: bool,
}

/// One server of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// e.g. `http://10.0.1.5:3000`.
    pub url: String,
}

/// `loadBalancer.sticky`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sticky {
    /// The sticky cookie.
    pub cookie: StickyCookie,
}

/// `loadBalancer.sticky.cookie`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StickyCookie {
    /// Cookie name.
    #[serde(default)]
    pub name: String,
    /// `HttpOnly` flag.
    #[serde(default)]
    pub http_only: bool,
    /// `Secure` flag.
    #[serde(default)]
    pub secure: bool,
    /// `SameSite` value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub same_site: String,
}

/// `loadBalancer.healthCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Path probed.
    #[serde(default)]
    pub path: String,
    /// Probe interval, e.g. `1s`.
    #[serde(default)]
    pub interval: String,
}

/// One entry of `GET /api/http/routers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterInfo {
    /// e.g. `socketio-sticky@swarm`.
    pub name: String,
    /// Rule, e.g. ``PathPrefix(`/socket.io`)``.
    #[serde(default)]
    pub rule: String,
    /// Service name (without provider when in the same provider).
    #[serde(default)]
    pub service: String,
    /// Priority; higher wins.
    #[serde(default)]
    pub priority: i64,
    /// `enabled`, `disabled` or `warning`.
    #[serde(default)]
    pub status: String,
    /// Provider.
    #[serde(default)]
    pub provider: String,
    /// Why Traefik refused it, when it did (a rule that does not parse, a missing service).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
}

/// Server status values.
pub const UP: &str = "UP";
/// What Traefik answers, with `503 Service Unavailable`, when no server of a service is up
/// (the built-in balancer answers the same, word for word).
pub const NO_SERVER: &str = "no available server";
/// Server status values.
pub const DOWN: &str = "DOWN";
