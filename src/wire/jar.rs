//! One user's cookie jar for the gateway: what a browser would keep and send back.
//!
//! The gateway is one origin, so cookies are kept by name; attributes other than an expiry
//! in the past (`Max-Age=0`, which deletes) are not needed for sticky sessions and are
//! ignored.

use std::collections::BTreeMap;

/// Cookies by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieJar {
    cookies: BTreeMap<String, String>,
}

impl CookieJar {
    /// Stores one `Set-Cookie` header value; malformed ones are ignored.
    pub fn store(&mut self, set_cookie: &[u8]) {
        let Ok(text) = std::str::from_utf8(set_cookie) else {
            return;
        };
        let mut parts = text.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
            return;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return;
        }
        let deleted = parts.any(|attr| {
            let attr = attr.trim().to_ascii_lowercase();
            attr == "max-age=0" || attr.starts_with("max-age=-")
        });
        if deleted {
            self.cookies.remove(name);
        } else {
            self.cookies
                .insert(name.to_owned(), value.trim().trim_matches('"').to_owned());
        }
    }

    /// The value of a cookie.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// The `Cookie` header to send, leaving out `withheld`; `None` when empty.
    pub fn header(&self, withheld: Option<&str>) -> Option<String> {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|(name, _)| Some(name.as_str()) != withheld)
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_replaces_withholds_and_deletes() {
        let mut jar = CookieJar::default();
        jar.store(b"sticky_replica=aaaa; Path=/; HttpOnly; SameSite=Lax");
        jar.store(b"other=1");
        assert_eq!(
            jar.header(None).as_deref(),
            Some("other=1; sticky_replica=aaaa")
        );
        jar.store(b"sticky_replica=bbbb; Path=/");
        assert_eq!(jar.get("sticky_replica"), Some("bbbb"));
        assert_eq!(
            jar.header(Some("sticky_replica")).as_deref(),
            Some("other=1")
        );
        jar.store(b"other=; Max-Age=0");
        assert_eq!(jar.header(Some("sticky_replica")), None);
    }

    #[test]
    fn ignores_garbage() {
        let mut jar = CookieJar::default();
        for bad in [&b"novalue"[..], b"=x", b"\xff=1", b"a b=1", b""] {
            jar.store(bad);
        }
        assert_eq!(jar, CookieJar::default());
    }
}
