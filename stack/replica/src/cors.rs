//! CORS for a page on another origin, as Socket.IO's `cors` option does it: the origins a
//! replica allows (`--cors-origin`), the preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) answered by the replica itself, and the headers added
//! to every other answer. An allowed origin is echoed with
//! `Access-Control-Allow-Credentials: true`, so the browser sends the balancer's sticky
//! cookie; `*` allows any origin *without* credentials (what `cors: { origin: "*" }` gives,
//! and why a page's cookies then never reach the balancer). No origin allowed: no CORS
//! headers at all. Pure.

use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, StatusCode};

/// The origins allowed: exact origins (`https://app.example`) or `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
}

/// What to answer for one request's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsAnswer {
    /// Not a cross-origin request this replica answers for: nothing added.
    Nothing,
    /// A preflight, answered here with these headers (status 204).
    Preflight(Vec<(&'static str, String)>),
    /// These headers added to the server's answer.
    Headers(Vec<(&'static str, String)>),
}

impl Cors {
    /// CORS for these origins (`*` for any, without credentials).
    pub fn new(origins: impl IntoIterator<Item = String>) -> Self {
        Cors {
            origins: origins.into_iter().filter(|o| !o.is_empty()).collect(),
        }
    }

    /// What to answer for a request with this method and these headers.
    pub fn answer(&self, method: &Method, headers: &HeaderMap) -> CorsAnswer {
        let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
            return CorsAnswer::Nothing;
        };
        let mut lines: Vec<(&'static str, String)> = if self.origins.iter().any(|o| o == origin) {
            vec![
                ("access-control-allow-origin", origin.to_owned()),
                ("access-control-allow-credentials", "true".to_owned()),
                ("vary", "Origin".to_owned()),
            ]
        } else if self.origins.iter().any(|o| o == "*") {
            vec![("access-control-allow-origin", "*".to_owned())]
        } else {
            return CorsAnswer::Nothing;
        };
        let preflight =
            method == Method::OPTIONS && headers.contains_key("access-control-request-method");
        if !preflight {
            return CorsAnswer::Headers(lines);
        }
        lines.push(("access-control-allow-methods", "GET, POST".to_owned()));
        if let Some(asked) = headers
            .get("access-control-request-headers")
            .and_then(|v| v.to_str().ok())
        {
            lines.push(("access-control-allow-headers", asked.to_owned()));
        }
        CorsAnswer::Preflight(lines)
    }
}

/// The status a preflight is answered with.
pub const PREFLIGHT_STATUS: StatusCode = StatusCode::NO_CONTENT;

/// Adds `lines` to `headers` (values that cannot be header values are left out).
pub fn add(headers: &mut HeaderMap, lines: &[(&'static str, String)]) {
    for (name, value) in lines {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(*name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn an_allowed_origin_is_echoed_with_credentials_and_its_preflight_answered() {
        let cors = Cors::new(["https://app.example".to_owned()]);
        let get = cors.answer(&Method::GET, &headers(&[("origin", "https://app.example")]));
        let CorsAnswer::Headers(lines) = get else {
            panic!("{get:?}")
        };
        assert!(lines.contains(&("access-control-allow-origin", "https://app.example".into())));
        assert!(lines.contains(&("access-control-allow-credentials", "true".into())));
        let pre = cors.answer(
            &Method::OPTIONS,
            &headers(&[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ]),
        );
        let CorsAnswer::Preflight(lines) = pre else {
            panic!("{pre:?}")
        };
        assert!(lines.contains(&("access-control-allow-headers", "content-type".into())));
    }

    #[test]
    fn a_star_allows_any_origin_without_credentials_and_none_allows_nothing() {
        let star = Cors::new(["*".to_owned()]);
        let answer = star.answer(&Method::GET, &headers(&[("origin", "https://x.example")]));
        assert_eq!(
            answer,
            CorsAnswer::Headers(vec![("access-control-allow-origin", "*".into())])
        );
        let none = Cors::default();
        assert_eq!(
            none.answer(&Method::GET, &headers(&[("origin", "https://x.example")])),
            CorsAnswer::Nothing
        );
        let other = Cors::new(["https://app.example".to_owned()]);
        assert_eq!(
            other.answer(
                &Method::GET,
                &headers(&[("origin", "https://evil.example")])
            ),
            CorsAnswer::Nothing
        );
        assert_eq!(
            other.answer(&Method::GET, &HeaderMap::new()),
            CorsAnswer::Nothing
        );
    }
}
