//! One user's cookie jar for the gateway: what a browser would keep and send back.
//!
//! The gateway is one origin, so cookies are kept by name. `Set-Cookie` values are read with
//! the `cookie` crate; a cookie whose `Max-Age` is zero or less, or whose `Expires` lies in
//! the past (`Max-Age` wins when both are given), is deleted, and one with a future expiry is
//! no longer sent once it has passed. Path, domain and the other attributes do not matter
//! for one origin and are ignored, except where browsers (Chromium, Firefox) refuse a
//! cookie outright: a `Secure` one set over plain `http://` to a host other than loopback,
//! and a `SameSite=None` one without `Secure`; those are not kept, and said
//! ([`Rejected`]). Pure: the time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use cookie::{Cookie, Expiration, SameSite};

/// Cookies by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieJar {
    cookies: BTreeMap<String, Stored>,
    /// Whether the gateway is a secure origin to a browser: `https://`, or loopback.
    secure_origin: bool,
}

/// A `Set-Cookie` browsers refuse, so the jar does too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// `Secure`, set by a plain `http://` origin that is not loopback.
    #[error("Set-Cookie {0} is Secure but the gateway is plain http:// (and not loopback): browsers drop it, and so does stickyscope")]
    SecureOverHttp(String),
    /// `SameSite=None` without `Secure`.
    #[error("Set-Cookie {0} is SameSite=None without Secure: browsers reject it, and so does stickyscope")]
    SameSiteNoneWithoutSecure(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    value: String,
    expires: Option<SystemTime>,
}

impl CookieJar {
    /// An empty jar for a gateway that browsers take for a secure origin (`https://`, or
    /// loopback) or not.
    pub fn for_origin(secure_origin: bool) -> Self {
        CookieJar {
            cookies: BTreeMap::new(),
            secure_origin,
        }
    }

    /// Stores one `Set-Cookie` header value received now; malformed ones are ignored, and
    /// ones browsers refuse are refused.
    pub fn store(&mut self, set_cookie: &[u8]) -> Result<(), Rejected> {
        self.store_at(set_cookie, SystemTime::now())
    }

    /// Stores one `Set-Cookie` header value received now, unless it sets the cookie named
    /// `except` (one the user has chosen since the request went out).
    pub fn store_except(&mut self, set_cookie: &[u8], except: &str) -> Result<(), Rejected> {
        self.store_filtered(set_cookie, SystemTime::now(), Some(except))
    }

    /// Stores one `Set-Cookie` header value received at `now`.
    pub fn store_at(&mut self, set_cookie: &[u8], now: SystemTime) -> Result<(), Rejected> {
        self.store_filtered(set_cookie, now, None)
    }

    fn store_filtered(
        &mut self,
        set_cookie: &[u8],
        now: SystemTime,
        except: Option<&str>,
    ) -> Result<(), Rejected> {
        let Ok(text) = std::str::from_utf8(set_cookie) else {
            return Ok(());
        };
        let Ok(cookie) = Cookie::parse(text) else {
            return Ok(());
        };
        let name = cookie.name();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Ok(());
        }
        let secure = cookie.secure() == Some(true);
        if secure && !self.secure_origin {
            return Err(Rejected::SecureOverHttp(name.to_owned()));
        }
        if cookie.same_site() == Some(SameSite::None) && !secure {
            return Err(Rejected::SameSiteNoneWithoutSecure(name.to_owned()));
        }
        if except == Some(name) {
            return Ok(());
        }
        let expires = match cookie.max_age() {
            Some(age) if age <= cookie::time::Duration::ZERO => Some(now),
            Some(age) => Some(now + Duration::from_secs(age.whole_seconds().unsigned_abs())),
            None => match cookie.expires() {
                Some(Expiration::DateTime(at)) => Some(SystemTime::from(at)),
                Some(Expiration::Session) | None => None,
            },
        };
        if expires.is_some_and(|at| at <= now) {
            self.cookies.remove(name);
        } else {
            self.cookies.insert(
                name.to_owned(),
                Stored {
                    value: cookie.value_trimmed().to_owned(),
                    expires,
                },
            );
        }
        Ok(())
    }

    /// The value of a cookie now.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_at(name, SystemTime::now())
    }

    /// The value of a cookie at `now` (none once it has expired).
    pub fn get_at(&self, name: &str, now: SystemTime) -> Option<&str> {
        self.cookies
            .get(name)
            .filter(|c| live(c, now))
            .map(|c| c.value.as_str())
    }

    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// The `Cookie` header to send now, leaving out `withheld`; `None` when empty.
    pub fn header(&self, withheld: Option<&str>) -> Option<String> {
        self.header_at(withheld, SystemTime::now())
    }

    /// The `Cookie` header to send at `now`, leaving out `withheld` and expired cookies.
    pub fn header_at(&self, withheld: Option<&str>, now: SystemTime) -> Option<String> {
        let pairs: Vec<String> = self
            .pairs_at(withheld, now)
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// The name and value of each cookie to send at `now`, leaving out `withheld` and
    /// expired cookies, in the order the `Cookie` header lists them.
    pub fn pairs_at<'a>(
        &'a self,
        withheld: Option<&'a str>,
        now: SystemTime,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.cookies
            .iter()
            .filter(move |(name, c)| Some(name.as_str()) != withheld && live(c, now))
            .map(|(name, c)| (name.as_str(), c.value.as_str()))
    }
}

fn live(cookie: &Stored, now: SystemTime) -> bool {
    cookie.expires.is_none_or(|at| at > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_replaces_withholds_and_deletes() {
        let mut jar = CookieJar::default();
        jar.store(b"sticky_replica=aaaa; Path=/; HttpOnly; SameSite=Lax")
            .unwrap();
        jar.store(b"other=1").unwrap();
        assert_eq!(
            jar.header(None).as_deref(),
            Some("other=1; sticky_replica=aaaa")
        );
        jar.store(b"sticky_replica=bbbb; Path=/").unwrap();
        assert_eq!(jar.get("sticky_replica"), Some("bbbb"));
        assert_eq!(
            jar.header(Some("sticky_replica")).as_deref(),
            Some("other=1")
        );
        jar.store_except(b"sticky_replica=cccc; Path=/", "sticky_replica")
            .unwrap();
        assert_eq!(jar.get("sticky_replica"), Some("bbbb"));
        jar.store(b"other=; Max-Age=0").unwrap();
        assert_eq!(jar.header(Some("sticky_replica")), None);
        jar.store(b"quoted=\"x\"").unwrap();
        assert_eq!(jar.get("quoted"), Some("x"));
    }

    #[test]
    fn honours_expires_in_the_past_and_in_the_future() {
        let mut jar = CookieJar::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        jar.store_at(b"sticky_replica=aaaa", now).unwrap();
        // Traefik removes a cookie with an Expires in the past.
        jar.store_at(
            b"sticky_replica=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            now,
        )
        .unwrap();
        assert_eq!(jar.get_at("sticky_replica", now), None);
        // 1_800_000_000 is Fri, 15 Jan 2027 08:00:00 GMT; this expires 8 hours later.
        jar.store_at(b"short=1; Expires=Fri, 15 Jan 2027 16:00:00 GMT", now)
            .unwrap();
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + 28_800);
        assert_eq!(jar.get_at("short", now), Some("1"));
        assert_eq!(jar.get_at("short", expiry), None, "not sent once expired");
        assert_eq!(jar.header_at(None, expiry), None);
        // Max-Age wins over Expires.
        jar.store_at(
            b"both=1; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            now,
        )
        .unwrap();
        assert_eq!(jar.get_at("both", now), Some("1"));
        assert_eq!(jar.get_at("both", now + Duration::from_secs(61)), None);
        jar.store_at(b"neg=1; Max-Age=-5", now).unwrap();
        assert_eq!(jar.get_at("neg", now), None);
    }

    #[test]
    fn ignores_garbage() {
        let mut jar = CookieJar::default();
        for bad in [&b"novalue"[..], b"=x", b"\xff=1", b"a b=1", b""] {
            assert_eq!(jar.store(bad), Ok(()));
        }
        assert_eq!(jar, CookieJar::default());
    }

    #[test]
    fn refuses_what_browsers_refuse() {
        let secure = b"sticky_replica=aaaa; Path=/; Secure; HttpOnly";
        let none_plain = b"lb=1; SameSite=None";
        let mut over_tls = CookieJar::for_origin(true);
        assert_eq!(over_tls.store(secure), Ok(()));
        assert_eq!(
            over_tls.get("sticky_replica"),
            Some("aaaa"),
            "kept over TLS"
        );
        assert_eq!(over_tls.store(b"lb=2; SameSite=None; Secure"), Ok(()));
        assert_eq!(
            over_tls.store(none_plain),
            Err(Rejected::SameSiteNoneWithoutSecure("lb".into()))
        );
        assert_eq!(
            over_tls.get("lb"),
            Some("2"),
            "the refused one changed nothing"
        );
        let mut over_http = CookieJar::for_origin(false);
        let refused = over_http.store(secure).unwrap_err();
        assert_eq!(refused, Rejected::SecureOverHttp("sticky_replica".into()));
        assert!(refused.to_string().contains("browsers drop it"));
        assert_eq!(over_http.get("sticky_replica"), None);
        assert!(over_http.store(none_plain).is_err());
        assert_eq!(over_http.store(b"plain=1; SameSite=Lax"), Ok(()));
    }
}
