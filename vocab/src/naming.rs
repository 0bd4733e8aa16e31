//! Which replica answered a request, from the best source the stack offers, and saying which:
//!
//! 1. `X-Replica`, which stickyscope's replicas send;
//! 2. a response header the user names (`--replica-header`), e.g. a backend's hostname;
//! 3. the sticky cookie: the value a balancer sets (or the client sent and the balancer
//!    honoured) names a server. Traefik's values are functions of the server URL, so with
//!    the server list (from Traefik's API, or given by hand) a value maps back to its
//!    server. Four generations are known, all measured or read from their code:
//!    Traefik ≥ 3.3.4 (first 16 hex digits of SHA-256), Traefik 3.0.4–3.3.3
//!    (`%x` of FNV-1 64 of the zero-padded hex of FNV-1a 64), Traefik v2's hashed values
//!    (`%x` of FNV-1a 64) and its older plain URLs;
//!    A balancer whose values are no function stickyscope knows (ingress-nginx's
//!    `INGRESSCOOKIE`, HAProxy's `SERVERID`, AWS's `AWSALB`, an app's own) still keeps one
//!    value per server: when the user names its cookie (`--sticky-cookie`), a value no
//!    server list maps names its server by itself — as it is when it reads as a name
//!    (HAProxy's `cookie SERVERID insert` values are the servers' names), else shortened
//!    (`INGRESSCOOKIE …3f2a`);
//! 4. otherwise nothing: the record says the replica is unknown and [`Unnamed`] says why
//!    (and what would make it known).
//!
//! Pure.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::topology::Topology;

/// How a replica was identified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Source {
    /// The `X-Replica` header (stickyscope's replicas).
    ReplicaHeader,
    /// A response header the user named.
    Header {
        /// Its name.
        name: String,
    },
    /// The sticky cookie's value, mapped to a server the balancer lists.
    Cookie {
        /// How the balancer computes the value.
        scheme: CookieScheme,
    },
    /// The value of a sticky cookie the user named, which no server list maps: one value,
    /// one server.
    CookieValue {
        /// The cookie's name.
        cookie: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::ReplicaHeader => f.write_str("X-Replica"),
            Source::Header { name } => write!(f, "header {name}"),
            Source::Cookie { scheme } => write!(f, "sticky cookie ({})", scheme.label()),
            Source::CookieValue { cookie } => {
                write!(f, "{cookie} cookie's value (one value, one server)")
            }
        }
    }
}

/// Why nothing named the server behind an answer, and what would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unnamed {
    /// No `X-Replica`, no header the user named, no sticky cookie either way.
    NoSource {
        /// The header the user named, if any.
        header: Option<String>,
        /// The sticky cookie's name.
        cookie: String,
    },
    /// A sticky cookie, but no server list to map its value back with.
    NoServerList {
        /// The sticky cookie's name.
        cookie: String,
    },
    /// The cookie's value is none of the values the known servers' URLs give.
    CookieNamesNoServer {
        /// The sticky cookie's name.
        cookie: String,
        /// How many servers are known.
        servers: usize,
    },
}

impl std::fmt::Display for Unnamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unnamed::NoSource {
                header: Some(header),
                cookie,
            } => write!(
                f,
                "no X-Replica, no {header} header and no {cookie} cookie in the answer: stickyscope cannot tell which server it was"
            ),
            Unnamed::NoSource {
                header: None,
                cookie,
            } => write!(
                f,
                "no X-Replica and no {cookie} cookie in the answer: give --replica-header NAME for a header your servers set, or --sticky-cookie NAME for your balancer's cookie"
            ),
            Unnamed::NoServerList { cookie } => write!(
                f,
                "the {cookie} cookie names a server, but no server list maps it back: give --traefik-api URL or --servers URL,…"
            ),
            Unnamed::CookieNamesNoServer { cookie, servers } => write!(
                f,
                "the {cookie} cookie's value matches none of the {servers} known server(s): the list is out of date, or the balancer makes its values in a way stickyscope cannot read"
            ),
        }
    }
}

/// How a balancer derives a sticky cookie's value from a server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CookieScheme {
    /// Traefik 3.3.4 and later: the first 16 hex digits of SHA-256 of the URL.
    TraefikSha256,
    /// Traefik 3.0.4 to 3.3.3: `%x` of FNV-1 64 of the 16-digit hex of FNV-1a 64 of the URL.
    TraefikFnv,
    /// Traefik v2 (hashed values): `%x` of FNV-1a 64 of the URL.
    TraefikV2Hash,
    /// Traefik v2 (and v1) plain values: the URL itself.
    PlainUrl,
}

impl CookieScheme {
    /// Every scheme, newest first.
    pub const ALL: [CookieScheme; 4] = [
        CookieScheme::TraefikSha256,
        CookieScheme::TraefikFnv,
        CookieScheme::TraefikV2Hash,
        CookieScheme::PlainUrl,
    ];

    /// A few words for people.
    pub fn label(self) -> &'static str {
        match self {
            CookieScheme::TraefikSha256 => "Traefik ≥ 3.3.4",
            CookieScheme::TraefikFnv => "Traefik 3.0–3.3.3",
            CookieScheme::TraefikV2Hash => "Traefik v2, hashed",
            CookieScheme::PlainUrl => "Traefik v2, plain URL",
        }
    }

    /// The value this scheme gives `url`.
    pub fn value(self, url: &str) -> String {
        match self {
            CookieScheme::TraefikSha256 => sha2::Sha256::digest(url.as_bytes())[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            CookieScheme::TraefikFnv => {
                let inner = format!("{:016x}", fnv1a64(url.as_bytes()));
                format!("{:x}", fnv1_64(inner.as_bytes()))
            }
            CookieScheme::TraefikV2Hash => format!("{:x}", fnv1a64(url.as_bytes())),
            CookieScheme::PlainUrl => url.to_owned(),
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
    })
}

fn fnv1_64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(FNV_OFFSET, |h, b| h.wrapping_mul(FNV_PRIME) ^ u64::from(*b))
}

/// A replica as a balancer's server list names it: `host:port` of its URL.
pub fn server_label(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.trim_end_matches('/').to_owned()
}

/// What the tap needs to identify replicas: the sticky cookie's name, an optional header,
/// and the balancer's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identify {
    /// A response header naming the replica, besides `X-Replica`.
    pub header: Option<String>,
    /// The sticky cookie's name (the balancer's; `sticky_replica` on stickyscope's stacks).
    pub cookie: String,
    /// The balancer's servers, by every cookie value that names them.
    by_cookie: HashMap<String, (String, CookieScheme)>,
    /// How many servers the list has.
    servers: usize,
    /// Whether the user named the sticky cookie: then a value no server list maps still
    /// names its server, by itself.
    pub by_value: bool,
}

impl Default for Identify {
    fn default() -> Self {
        Identify::new(None)
    }
}

impl Identify {
    /// Identification by `X-Replica` and, if given, `header`; the sticky cookie is
    /// `sticky_replica` until told otherwise.
    pub fn new(header: Option<String>) -> Self {
        Identify {
            header,
            cookie: stickyscope_contract::names::STICKY_COOKIE.to_owned(),
            by_cookie: HashMap::new(),
            servers: 0,
            by_value: false,
        }
    }

    /// Takes what a balancer's API says — its sticky cookie's name and its servers — except
    /// what the user gave by hand (`keep_cookie`, `keep_servers`).
    pub fn learn(&mut self, topology: &Topology, keep_cookie: bool, keep_servers: bool) {
        if !keep_cookie {
            if let Some(cookie) = &topology.sticky_cookie {
                self.cookie = cookie.clone();
            }
        }
        if !keep_servers {
            self.set_servers(topology.replicas.iter().filter_map(|r| r.url.as_deref()));
        }
    }

    /// The balancer's server URLs, from its API or given by hand.
    pub fn set_servers<'a>(&mut self, urls: impl IntoIterator<Item = &'a str>) {
        self.by_cookie.clear();
        self.servers = 0;
        for url in urls {
            self.servers += 1;
            let label = server_label(url);
            for scheme in CookieScheme::ALL {
                self.by_cookie
                    .insert(scheme.value(url), (label.clone(), scheme));
            }
        }
    }

    /// The replica behind one answer: its `X-Replica`, the named header, else the sticky
    /// cookie the answer set or the request carried (the balancer honours a cookie naming a
    /// server that is up and replaces one that does not, so an answer without a new cookie
    /// came from the server the request named).
    pub fn identify(
        &self,
        x_replica: Option<&str>,
        header: Option<&str>,
        set_cookie: Option<&str>,
        sent_cookie: Option<&str>,
    ) -> Result<(String, Source), Unnamed> {
        if let Some(id) = x_replica {
            return Ok((id.to_owned(), Source::ReplicaHeader));
        }
        if let (Some(value), Some(name)) = (header, &self.header) {
            return Ok((value.to_owned(), Source::Header { name: name.clone() }));
        }
        let cookie = self.cookie.clone();
        let Some(value) = set_cookie.or(sent_cookie) else {
            return Err(Unnamed::NoSource {
                header: self.header.clone(),
                cookie,
            });
        };
        let value = value.trim_matches('"');
        if let Some((label, scheme)) = self.by_cookie.get(value) {
            return Ok((label.clone(), Source::Cookie { scheme: *scheme }));
        }
        if self.by_value && !value.is_empty() {
            return Ok((value_label(&cookie, value), Source::CookieValue { cookie }));
        }
        if self.servers == 0 {
            return Err(Unnamed::NoServerList { cookie });
        }
        Err(Unnamed::CookieNamesNoServer {
            cookie,
            servers: self.servers,
        })
    }
}

/// How a server is named by its sticky cookie's value: as it is when it reads as a name
/// (`web-a`, HAProxy's), else by the cookie and the value's last four characters
/// (`INGRESSCOOKIE …3f2a`).
pub fn value_label(cookie: &str, value: &str) -> String {
    let name_like = value.len() <= 24
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !(value.len() >= 12 && value.chars().all(|c| c.is_ascii_hexdigit()));
    if name_like {
        return value.to_owned();
    }
    let tail: String = value
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{cookie} …{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_traefik_generation_maps_back_to_its_server() {
        // Measured: Traefik 3.7.15 and 3.3.3 set these for these URLs.
        assert_eq!(
            CookieScheme::TraefikSha256.value("http://127.0.0.1:18001"),
            "ce73baa54a05997d"
        );
        assert_eq!(
            CookieScheme::TraefikFnv.value("http://127.0.0.1:18001"),
            "675f91c38384e36d"
        );
        assert_eq!(
            CookieScheme::TraefikFnv.value("http://127.0.0.1:18002"),
            "a23d3150d8421c46"
        );
        // FNV-1a 64 of "a" is af63dc4c8601ec8c (the reference vectors).
        assert_eq!(CookieScheme::TraefikV2Hash.value("a"), "af63dc4c8601ec8c");
        let mut id = Identify::new(None);
        id.set_servers(["http://10.0.1.7:3000", "http://10.0.1.8:3000"]);
        for scheme in CookieScheme::ALL {
            let value = scheme.value("http://10.0.1.8:3000");
            assert_eq!(
                id.identify(None, None, None, Some(&value)),
                Ok(("10.0.1.8:3000".into(), Source::Cookie { scheme })),
                "{scheme:?}"
            );
        }
    }

    #[test]
    fn a_cookie_the_user_named_names_its_server_by_its_value() {
        let mut id = Identify::new(None);
        id.cookie = "SERVERID".into();
        assert!(id.identify(None, None, Some("web-a"), None).is_err());
        id.by_value = true;
        let by_value = Source::CookieValue {
            cookie: "SERVERID".into(),
        };
        assert_eq!(
            id.identify(None, None, Some("web-a"), None),
            Ok(("web-a".into(), by_value.clone()))
        );
        assert_eq!(
            id.identify(None, None, None, Some("\"web-b\"")),
            Ok(("web-b".into(), by_value))
        );
        assert_eq!(
            value_label("INGRESSCOOKIE", "1733313130.123.45.678|9b8c1d3f2a"),
            "INGRESSCOOKIE …3f2a"
        );
        assert_eq!(value_label("AWSALB", "deadbeefdeadbeef"), "AWSALB …beef");
        // A server list still maps Traefik's values to their servers first.
        id.set_servers(["http://10.0.1.7:3000"]);
        let traefik = CookieScheme::TraefikSha256.value("http://10.0.1.7:3000");
        assert_eq!(
            id.identify(None, None, Some(&traefik), None)
                .map(|(l, _)| l),
            Ok("10.0.1.7:3000".into())
        );
    }

    #[test]
    fn the_best_source_wins_and_nothing_is_guessed() {
        let mut id = Identify::new(Some("X-Backend".into()));
        id.set_servers(["http://10.0.1.7:3000"]);
        let cookie = CookieScheme::TraefikSha256.value("http://10.0.1.7:3000");
        assert_eq!(
            id.identify(Some("2"), Some("web-a"), Some(&cookie), None),
            Ok(("2".into(), Source::ReplicaHeader))
        );
        assert_eq!(
            id.identify(None, Some("web-a"), Some(&cookie), None),
            Ok((
                "web-a".into(),
                Source::Header {
                    name: "X-Backend".into()
                }
            ))
        );
        // A new cookie in the answer names the server that answered, over the one sent.
        let other = CookieScheme::TraefikSha256.value("http://10.0.9.9:3000");
        assert_eq!(
            id.identify(None, None, Some(&cookie), Some(&other))
                .map(|(l, _)| l),
            Ok("10.0.1.7:3000".into())
        );
        assert_eq!(
            id.identify(None, None, None, Some("deadbeefdeadbeef")),
            Err(Unnamed::CookieNamesNoServer {
                cookie: "sticky_replica".into(),
                servers: 1
            })
        );
        assert_eq!(
            id.identify(None, None, None, None),
            Err(Unnamed::NoSource {
                header: Some("X-Backend".into()),
                cookie: "sticky_replica".into()
            })
        );
        assert_eq!(
            Identify::new(None).identify(None, Some("web-a"), None, None),
            Err(Unnamed::NoSource {
                header: None,
                cookie: "sticky_replica".into()
            }),
            "a header nobody named is not read"
        );
        assert_eq!(
            Identify::new(None).identify(None, None, Some(&cookie), None),
            Err(Unnamed::NoServerList {
                cookie: "sticky_replica".into()
            }),
        );
        // Each reason says what would make the server known.
        for (why, hint) in [
            (
                Identify::new(None).identify(None, None, None, None),
                "--replica-header",
            ),
            (
                Identify::new(None).identify(None, None, Some(&cookie), None),
                "--traefik-api",
            ),
            (
                id.identify(None, None, None, Some("deadbeefdeadbeef")),
                "none of the 1 known server",
            ),
        ] {
            let why = why.unwrap_err().to_string();
            assert!(why.contains(hint), "{why}");
        }
    }
}
