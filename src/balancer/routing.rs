//! Pure routing decisions of the built-in balancer, the same contract as the swarm stack's
//! Traefik routers.
//!
//! - A request carrying `X-Stickiness: off` goes to the round-robin service: the next up
//!   server in turn, any sticky cookie ignored, none set.
//! - Any other request goes to the sticky service: the server named by its
//!   `sticky_replica` cookie when that server is up; otherwise the next up server in turn,
//!   and the response sets the cookie to it. A malformed or unknown cookie counts as absent,
//!   as in Traefik.
//!
//! The cookie value is Traefik v3's: the first 16 hex digits of SHA-256 of the server URL.

use sha2::{Digest, Sha256};

pub use stickyscope_contract::names::{STICKINESS_HEADER, STICKY_COOKIE};

/// Traefik v3's sticky cookie value for a server URL.
pub fn cookie_value(server_url: &str) -> String {
    let digest = Sha256::digest(server_url.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Set-Cookie` header value pinning a client to a server.
pub fn set_cookie_header(value: &str) -> String {
    format!("{STICKY_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax")
}

/// Finds the sticky cookie's value in `Cookie` header values: the first `sticky_replica`
/// pair decides, as in Traefik (3.7.15, measured: `sticky_replica=zzz;
/// sticky_replica=<valid>` is re-stuck, not routed by the second). A value that is not 16
/// hex digits names no server: `None`, and the request is balanced and given a new cookie.
/// Pairs without `=` are skipped.
pub fn sticky_cookie<'a>(cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> Option<&'a str> {
    cookie_headers
        .into_iter()
        .filter_map(|raw| std::str::from_utf8(raw).ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == STICKY_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| value.len() == 16 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the stickiness header asks for round-robin.
pub fn stickiness_off(header: Option<&[u8]>) -> bool {
    header.is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"off"))
}

/// Which of the two services a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Sticky cookie.
    Sticky,
    /// Plain round-robin.
    RoundRobin,
}

/// A server as routing sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its sticky cookie value.
    pub cookie: &'a str,
    /// Whether it is in rotation.
    pub up: bool,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Index of the chosen server in the candidate list.
    pub server: usize,
    /// The service that chose it.
    pub service: Service,
    /// `Some(value)` when the response must set the sticky cookie.
    pub set_cookie: Option<String>,
}

/// Chooses a server. `turn` is the service's round-robin counter value for this request.
/// `None` when no server is up.
pub fn decide(
    candidates: &[Candidate<'_>],
    service: Service,
    cookie: Option<&str>,
    turn: usize,
) -> Option<Decision> {
    if service == Service::Sticky {
        if let Some(value) = cookie {
            if let Some(server) = candidates.iter().position(|c| c.up && c.cookie == value) {
                return Some(Decision {
                    server,
                    service,
                    set_cookie: None,
                });
            }
        }
    }
    let up: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].up)
        .collect();
    if up.is_empty() {
        return None;
    }
    let server = up[turn % up.len()];
    let set_cookie = (service == Service::Sticky).then(|| candidates[server].cookie.to_owned());
    Some(Decision {
        server,
        service,
        set_cookie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_value_is_sha256_prefix_of_the_url() {
        // `printf abc | sha256sum` starts with ba7816bf8f01cfea.
        assert_eq!(cookie_value("abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn finds_the_sticky_cookie_among_others_and_ignores_garbage() {
        let headers: [&[u8]; 2] = [b"a=1; junk; sticky_replica=0123456789abcdef", b"b=2"];
        assert_eq!(sticky_cookie(headers), Some("0123456789abcdef"));
        let quoted: [&[u8]; 1] = [b"sticky_replica=\"0123456789abcdef\""];
        assert_eq!(sticky_cookie(quoted), Some("0123456789abcdef"));
        // As in Traefik, the first cookie of the name decides, even when malformed.
        let first_decides: [&[u8]; 1] = [b"sticky_replica=zzz; sticky_replica=0123456789abcdef"];
        assert_eq!(sticky_cookie(first_decides), None);
        let two_headers: [&[u8]; 2] = [b"sticky_replica=zzz", b"sticky_replica=0123456789abcdef"];
        assert_eq!(sticky_cookie(two_headers), None);
        for bad in [
            &b"sticky_replica="[..],
            b"sticky_replica=xyz",
            b"sticky_replica=0123456789abcdeg",
            b";;;=",
            b"\xff\xfe",
            b"sticky_replica",
        ] {
            assert_eq!(
                sticky_cookie([bad]),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn stickiness_header_is_case_and_space_insensitive() {
        assert!(stickiness_off(Some(b"off")));
        assert!(stickiness_off(Some(b" OFF ")));
        assert!(!stickiness_off(Some(b"on")));
        assert!(!stickiness_off(None));
    }

    fn three(up: [bool; 3]) -> Vec<Candidate<'static>> {
        ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"]
            .iter()
            .zip(up)
            .map(|(cookie, up)| Candidate { cookie, up })
            .collect()
    }

    #[test]
    fn sticky_follows_a_live_cookie_and_sets_none() {
        let d = decide(
            &three([true; 3]),
            Service::Sticky,
            Some("bbbbbbbbbbbbbbbb"),
            0,
        )
        .unwrap();
        assert_eq!((d.server, d.set_cookie), (1, None));
    }

    #[test]
    fn sticky_remaps_a_cookie_whose_server_is_down() {
        let d = decide(
            &three([true, false, true]),
            Service::Sticky,
            Some("bbbbbbbbbbbbbbbb"),
            1,
        )
        .unwrap();
        assert_eq!(d.server, 2);
        assert_eq!(d.set_cookie.as_deref(), Some("cccccccccccccccc"));
    }

    #[test]
    fn round_robin_ignores_cookies_and_rotates_over_up_servers() {
        let servers = three([true, false, true]);
        let picks: Vec<usize> = (0..4)
            .map(|turn| {
                let d = decide(
                    &servers,
                    Service::RoundRobin,
                    Some("aaaaaaaaaaaaaaaa"),
                    turn,
                )
                .unwrap();
                assert_eq!(d.set_cookie, None);
                d.server
            })
            .collect();
        assert_eq!(picks, [0, 2, 0, 2]);
    }

    #[test]
    fn nothing_up_means_no_decision() {
        assert_eq!(decide(&three([false; 3]), Service::Sticky, None, 0), None);
        assert_eq!(decide(&[], Service::RoundRobin, None, 0), None);
    }
}
