//! Reading a real Traefik v3 API: services (paginated), routers, and whether the labels give
//! the app what it relies on. The HTTP part is network code; [`analyse`] is pure.
//!
//! An API behind basic auth (the swarm stack's, and the local chain's) takes its credential
//! from the URL (`http://user:password@host:9090`) or from `STICKYSCOPE_TRAEFIK_AUTH`
//! (`user:password`); a `401` says so in words.

use std::time::Duration;

use std::collections::BTreeMap;
use stickyscope_contract::names::STICKY_COOKIE;

use crate::topology::Topology;
use crate::traefik_model::{parse_document, RouterInfo, ServiceInfo};

/// Most pages followed before giving up (100 items a page).
const MAX_PAGES: u32 = 50;
/// Largest page read: a hundred services or routers take a few hundred KB at most.
pub const MAX_PAGE_BYTES: usize = 4 << 20;

/// Why the API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraefikError {
    /// The base URL is not usable.
    #[error("Traefik API URL {0:?} is not an http:// URL")]
    BadUrl(String),
    /// No connection or no answer.
    #[error("Traefik API unreachable at {url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The API wants a (different) credential.
    #[error("Traefik API at {url} answered 401 Unauthorized: {why}")]
    Unauthorized {
        /// The URL asked.
        url: String,
        /// What to do about it.
        why: String,
    },
    /// An HTTP error status.
    #[error("Traefik API answered {status} for {url}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status.
        status: u16,
    },
    /// Not the JSON expected.
    #[error("Traefik API sent something unexpected for {url}: {reason}")]
    Garbage {
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A page larger than [`MAX_PAGE_BYTES`].
    #[error("Traefik API page {url} is larger than {MAX_PAGE_BYTES} bytes: not read")]
    TooLarge {
        /// The URL asked.
        url: String,
    },
    /// Pagination did not end.
    #[error("Traefik API pagination for {url} did not end after {MAX_PAGES} pages")]
    TooManyPages {
        /// The URL asked.
        url: String,
    },
}

/// A Traefik API at a base URL such as `http://localhost:9090`.
#[derive(Debug, Clone)]
pub struct TraefikApi {
    base: String,
    client: reqwest::Client,
    credential: Option<(String, String)>,
}

/// Environment variable with the API's credential, `user:password`.
pub const AUTH_VARIABLE: &str = "STICKYSCOPE_TRAEFIK_AUTH";

impl TraefikApi {
    /// A client for `base`, with the credential in its URL or in [`AUTH_VARIABLE`].
    pub fn new(base: &str) -> Result<Self, TraefikError> {
        let from_env = std::env::var(AUTH_VARIABLE)
            .ok()
            .and_then(|v| v.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
        Self::with_credential(base, from_env)
    }

    /// A client for `base`; a credential in its URL wins over `credential`.
    pub fn with_credential(
        base: &str,
        credential: Option<(String, String)>,
    ) -> Result<Self, TraefikError> {
        let trimmed = base.trim_end_matches('/');
        if !trimmed.starts_with("http://") && !trimmed.starts_with("https://") {
            return Err(TraefikError::BadUrl(base.to_owned()));
        }
        let (trimmed, from_url) = split_credential(trimmed);
        let credential = from_url.or(credential);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| TraefikError::Unreachable {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(TraefikApi {
            base: trimmed,
            client,
            credential,
        })
    }

    /// Every HTTP service, across pages.
    pub async fn services(&self) -> Result<Vec<ServiceInfo>, TraefikError> {
        self.paged("/api/http/services").await
    }

    /// Every HTTP router, across pages.
    pub async fn routers(&self) -> Result<Vec<RouterInfo>, TraefikError> {
        self.paged("/api/http/routers").await
    }

    async fn paged<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, TraefikError> {
        let mut all = Vec::new();
        let mut page = 1u32;
        loop {
            let url = format!("{}{path}?page={page}&per_page=100", self.base);
            let mut request = self.client.get(&url);
            if let Some((user, password)) = &self.credential {
                request = request.basic_auth(user, Some(password));
            }
            let resp = request
                .send()
                .await
                .map_err(|e| TraefikError::Unreachable {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                let why = match &self.credential {
                    Some((user, _)) => format!("the password for {user:?} was refused"),
                    None => format!(
                        "it wants a user and password: give them in the URL (http://USER:PASSWORD@host:port) or in {AUTH_VARIABLE}=USER:PASSWORD"
                    ),
                };
                return Err(TraefikError::Unauthorized { url, why });
            }
            if !status.is_success() {
                return Err(TraefikError::Status {
                    url,
                    status: status.as_u16(),
                });
            }
            // Traefik names the next page in X-Next-Page; on the last page it names page 1.
            let next = resp
                .headers()
                .get("x-next-page")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok());
            let body = read_capped(resp, &url).await?;
            let items: Vec<T> = parse_document(&body).map_err(|e| TraefikError::Garbage {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            all.extend(items);
            match next {
                Some(n) if n > page => page = n,
                _ => return Ok(all),
            }
            if page > MAX_PAGES {
                return Err(TraefikError::TooManyPages { url });
            }
        }
    }
}

/// `http://user:pass@host:port` → (`http://host:port`, Some((user, pass))). The credential
/// is percent-decoded.
fn split_credential(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (
        format!("{scheme}://{host}{path}"),
        Some((percent_decode(user), percent_decode(password))),
    )
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a response body of at most [`MAX_PAGE_BYTES`], chunk by chunk.
async fn read_capped(mut resp: reqwest::Response, url: &str) -> Result<Vec<u8>, TraefikError> {
    let too_large = || TraefikError::TooLarge {
        url: url.to_owned(),
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_PAGE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| TraefikError::Unreachable {
        url: url.to_owned(),
        reason: e.to_string(),
    })? {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What the app takes from Traefik's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// The sticky service, when there is one.
    pub sticky: Option<ServiceInfo>,
    /// Problems with the labels, in plain words.
    pub problems: Vec<String>,
}

/// The topology Traefik's services and routers describe (nginx → Traefik → the sticky
/// service's servers), and the problems with its labels. Pure.
pub fn topology_from_api(
    services: &[ServiceInfo],
    routers: &[RouterInfo],
) -> (Topology, Vec<String>) {
    let analysis = analyse(services, routers);
    let hops = vec!["nginx".to_owned(), "traefik".to_owned()];
    let topology = match &analysis.sticky {
        Some(service) => Topology::from_service(hops, service, &BTreeMap::new()),
        None => Topology {
            hops,
            ..Topology::default()
        },
    };
    (topology, analysis.problems)
}

/// Finds the sticky service and checks the routers the stickiness switch relies on.
pub fn analyse(services: &[ServiceInfo], routers: &[RouterInfo]) -> Analysis {
    let mut problems = Vec::new();
    let sticky = services
        .iter()
        .find(|s| {
            s.load_balancer
                .as_ref()
                .is_some_and(|lb| lb.sticky.is_some())
        })
        .cloned();
    match &sticky {
        None => problems.push(
            "no Traefik service has a sticky cookie: long-polling sessions cannot stay on one replica (check the replicas-sticky labels)".to_owned(),
        ),
        Some(s) => {
            let name = s
                .load_balancer
                .as_ref()
                .and_then(|lb| lb.sticky.as_ref())
                .map(|st| st.cookie.name.as_str())
                .unwrap_or_default();
            if name != STICKY_COOKIE {
                problems.push(format!(
                    "the sticky cookie is named {name:?}, not {STICKY_COOKIE:?}: the switch cannot withhold it"
                ));
            }
        }
    }
    let round_robin = routers
        .iter()
        .find(|r| r.rule.contains("X-Stickiness") && r.rule.contains("off"));
    let sticky_router = sticky.as_ref().and_then(|s| {
        let short = s.name.split('@').next().unwrap_or(&s.name);
        routers
            .iter()
            .find(|r| r.service == short || r.service == s.name)
    });
    for router in routers.iter().filter(|r| !r.error.is_empty()) {
        problems.push(format!(
            "Traefik refused router {}: {}",
            router.name,
            router.error.join("; ")
        ));
    }
    match (round_robin, sticky_router) {
        (None, _) => problems.push(
            "no router matches X-Stickiness: off: turning stickiness off will have no effect (check the socketio-roundrobin labels)".to_owned(),
        ),
        (Some(rr), Some(st)) if rr.priority <= st.priority => problems.push(format!(
            "router {} (priority {}) does not outrank {} (priority {}): X-Stickiness: off requests stay sticky",
            rr.name, rr.priority, st.name, st.priority
        )),
        _ => {}
    }
    Analysis { sticky, problems }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traefik_model::{LoadBalancer, ServerInfo, Sticky, StickyCookie};

    fn service(name: &str, cookie: Option<&str>) -> ServiceInfo {
        ServiceInfo {
            name: name.into(),
            provider: "swarm".into(),
            status: "enabled".into(),
            used_by: vec![],
            load_balancer: Some(LoadBalancer {
                servers: vec![ServerInfo {
                    url: "http://10.0.1.5:3000".into(),
                }],
                sticky: cookie.map(|c| Sticky {
                    cookie: StickyCookie {
                        name: c.into(),
                        http_only: true,
                        secure: false,
                        same_site: "lax".into(),
                    },
                }),
                health_check: None,
                pass_host_header: true,
            }),
            server_status: Default::default(),
        }
    }

    fn router(name: &str, rule: &str, service: &str, priority: i64) -> RouterInfo {
        RouterInfo {
            name: name.into(),
            rule: rule.into(),
            service: service.into(),
            priority,
            status: "enabled".into(),
            provider: "swarm".into(),
            error: Vec::new(),
        }
    }

    #[test]
    fn the_intended_labels_have_no_problem() {
        let a = analyse(
            &[
                service("replicas-sticky@swarm", Some("sticky_replica")),
                service("replicas-roundrobin@swarm", None),
            ],
            &[
                router(
                    "socketio-sticky@swarm",
                    "PathPrefix(`/socket.io`)",
                    "replicas-sticky",
                    10,
                ),
                router(
                    "socketio-roundrobin@swarm",
                    "PathPrefix(`/socket.io`) && Header(`X-Stickiness`, `off`)",
                    "replicas-roundrobin",
                    20,
                ),
            ],
        );
        assert_eq!(a.problems, Vec::<String>::new());
        assert_eq!(a.sticky.unwrap().name, "replicas-sticky@swarm");
    }

    #[test]
    fn wrong_labels_are_named_plainly() {
        let a = analyse(&[service("x@swarm", None)], &[]);
        assert_eq!(a.problems.len(), 2, "{:?}", a.problems);
        assert!(a.problems[0].starts_with("no Traefik service has a sticky cookie"));
        assert!(a.problems[1].starts_with("no router matches X-Stickiness: off"));

        let a = analyse(
            &[service("replicas-sticky@swarm", Some("other"))],
            &[
                router("s@swarm", "PathPrefix(`/socket.io`)", "replicas-sticky", 30),
                router(
                    "rr@swarm",
                    "Header(`X-Stickiness`, `off`)",
                    "replicas-roundrobin",
                    20,
                ),
            ],
        );
        assert_eq!(a.problems.len(), 2, "{:?}", a.problems);
        assert!(a.problems[0].contains("\"other\""));
        assert!(a.problems[1].contains("does not outrank"));
    }

    #[test]
    fn credentials_come_out_of_the_url() {
        assert_eq!(
            split_credential("http://stickyscope:p%40ss@127.0.0.1:9090"),
            (
                "http://127.0.0.1:9090".to_owned(),
                Some(("stickyscope".to_owned(), "p@ss".to_owned()))
            )
        );
        assert_eq!(
            split_credential("http://localhost:9090/x@y"),
            ("http://localhost:9090/x@y".to_owned(), None)
        );
    }
}
