//! Reading a real Traefik v3 API: services (paginated) and routers. What the app takes from
//! them (the topology, the problems with the labels) is read by
//! [`stickyscope_vocab::traefik_reading::topology_from_api`].
//!
//! An API behind basic auth (the swarm stack's, and the local chain's) takes its credential
//! from the URL (`http://user:password@host:9090`) or from `STICKYSCOPE_TRAEFIK_AUTH`
//! (`user:password`); a `401` says so in words. An `https://` API is trusted as the gateway
//! is ([`Trust`]: `--ca-file`, `--insecure`), and a certificate it refuses is said in a
//! sentence.

use std::time::Duration;

use stickyscope_vocab::traefik_model::{parse_document, RouterInfo, ServiceInfo};

use crate::tls_trust::{self, Trust};

/// Most pages followed before giving up (100 items a page).
const MAX_PAGES: u32 = 50;
/// Largest page read: a hundred services or routers take a few hundred KB at most.
pub const MAX_PAGE_BYTES: usize = 4 << 20;

/// Why the API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraefikError {
    /// The base URL is not usable.
    #[error("Traefik API URL {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// TLS toward an `https://` API cannot be set up as asked.
    #[error("Traefik API at {url}: TLS: {reason}")]
    Tls {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
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
    /// A client for `base`, with the credential in its URL or in [`AUTH_VARIABLE`], an
    /// `https://` one trusted as `trust` says.
    pub fn new(base: &str, trust: &Trust) -> Result<Self, TraefikError> {
        let from_env = std::env::var(AUTH_VARIABLE)
            .ok()
            .and_then(|v| v.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
        Self::with_credential(base, from_env, trust)
    }

    /// A client for `base`; a credential in its URL wins over `credential`.
    pub fn with_credential(
        base: &str,
        credential: Option<(String, String)>,
        trust: &Trust,
    ) -> Result<Self, TraefikError> {
        let trimmed = base.trim_end_matches('/');
        if !trimmed.starts_with("http://") && !trimmed.starts_with("https://") {
            return Err(TraefikError::BadUrl(base.to_owned()));
        }
        let (trimmed, from_url) = split_credential(trimmed);
        let credential = from_url.or(credential);
        let tls = tls_trust::connector(trust).map_err(|e| TraefikError::Tls {
            url: base.to_owned(),
            reason: e.to_string(),
        })?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .use_preconfigured_tls(tls)
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
                    reason: tls_trust::refusal_sentence(&e, &host_of(&self.base))
                        .unwrap_or_else(|| e.to_string()),
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

/// `host:port` of a base URL without a credential.
fn host_of(base: &str) -> String {
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

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
