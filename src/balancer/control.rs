//! Who may use the embedded stack's controls (`/_stack/…`): this machine's own tools — the
//! app, curl, a test — and never a web page the user happens to have open.
//!
//! A page on another site can send a "simple" POST without asking (`fetch(url, {mode:
//! "no-cors", method: "POST"})`), and a page whose name resolves to 127.0.0.1 (DNS
//! rebinding) counts as same-origin. So a control request must
//!
//! - name this balancer in `Host` by a loopback name and its port (a rebinding page's
//!   requests carry its own name);
//! - if it has an `Origin`, come from that same origin (browsers send one on every POST);
//! - when it changes something (any method but GET and HEAD), carry the
//!   `X-Stickyscope-Control` header: a page cannot add a custom header without a CORS
//!   preflight, and preflights (OPTIONS) are refused here without any CORS header.
//!
//! Pure: method and headers in, a verdict out.

use std::net::SocketAddr;

use hyper::header::{self, HeaderMap};
use hyper::Method;
use stickyscope_contract::names::CONTROL_HEADER;

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A CORS preflight: cross-site pages get no permission here.
    #[error("cross-site requests are not allowed: preflight refused")]
    Preflight,
    /// `Host` is missing or names something other than this balancer on loopback.
    #[error(
        "Host {0:?} is not this balancer on loopback (127.0.0.1, localhost or [::1] with its port)"
    )]
    Host(String),
    /// `Origin` is another site.
    #[error("Origin {0:?} is not this balancer: controls are not for web pages")]
    Origin(String),
    /// A state-changing request without the control header.
    #[error("control requests must carry the header `X-Stickyscope-Control: 1`")]
    MissingHeader,
}

/// Checks one control request that arrived on `local` (the balancer's address).
pub fn check(method: &Method, headers: &HeaderMap, local: SocketAddr) -> Result<(), Refusal> {
    if method == Method::OPTIONS {
        return Err(Refusal::Preflight);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !is_loopback_host(host, local.port()) {
        return Err(Refusal::Host(host.to_owned()));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if origin != format!("http://{host}") {
            return Err(Refusal::Origin(origin.to_owned()));
        }
    }
    let reads_only = method == Method::GET || method == Method::HEAD;
    if !reads_only && !headers.contains_key(CONTROL_HEADER) {
        return Err(Refusal::MissingHeader);
    }
    Ok(())
}

/// Whether `host` (a `Host` header value) is a loopback name with `port`.
fn is_loopback_host(host: &str, port: u16) -> bool {
    let Some((name, host_port)) = host.rsplit_once(':') else {
        return false;
    };
    host_port.parse::<u16>().ok() == Some(port)
        && matches!(
            name.to_ascii_lowercase().as_str(),
            "127.0.0.1" | "localhost" | "[::1]"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const LOCAL: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8000);

    #[test]
    fn local_tools_pass() {
        let curl = headers(&[("host", "127.0.0.1:8000"), ("x-stickyscope-control", "1")]);
        assert_eq!(check(&Method::POST, &curl, LOCAL), Ok(()));
        let listing = headers(&[("host", "localhost:8000")]);
        assert_eq!(check(&Method::GET, &listing, LOCAL), Ok(()));
        let same_page = headers(&[
            ("host", "localhost:8000"),
            ("origin", "http://localhost:8000"),
            ("x-stickyscope-control", "1"),
        ]);
        assert_eq!(check(&Method::POST, &same_page, LOCAL), Ok(()));
    }

    #[test]
    fn web_pages_are_refused() {
        let no_cors = headers(&[
            ("host", "127.0.0.1:8000"),
            ("origin", "https://evil.example"),
            ("content-type", "text/plain;charset=UTF-8"),
        ]);
        assert_eq!(
            check(&Method::POST, &no_cors, LOCAL),
            Err(Refusal::Origin("https://evil.example".into()))
        );
        let without_header = headers(&[("host", "127.0.0.1:8000")]);
        assert_eq!(
            check(&Method::POST, &without_header, LOCAL),
            Err(Refusal::MissingHeader)
        );
        let rebinding = headers(&[
            ("host", "evil.example:8000"),
            ("x-stickyscope-control", "1"),
        ]);
        assert!(matches!(
            check(&Method::POST, &rebinding, LOCAL),
            Err(Refusal::Host(_))
        ));
        let wrong_port = headers(&[("host", "127.0.0.1:9000")]);
        assert!(check(&Method::GET, &wrong_port, LOCAL).is_err());
        assert!(check(&Method::GET, &HeaderMap::new(), LOCAL).is_err());
        assert_eq!(
            check(&Method::OPTIONS, &without_header, LOCAL),
            Err(Refusal::Preflight)
        );
    }
}
