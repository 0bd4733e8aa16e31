//! The user's cookie jar as the tap uses it, and naming the replica behind an answer.
//!
//! Each request carries the jar's cookies after the client's own, without the sticky cookie
//! and with `X-Stickiness: off` while the user's stickiness is off; each answer's
//! `Set-Cookie`s go back into the jar, except the sticky cookie when the jar was pinned
//! after the request went out, and a cookie browsers refuse (said on the record). The
//! replica behind an answer is named the way [`Identify`] says, from the answer's headers
//! and the sticky cookie the request carried.

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::SystemTime;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use stickyscope_contract::names::{STICKINESS_HEADER, X_REPLICA, X_REPLICA_ADDR};
use stickyscope_vocab::naming::{Identify, Source};
use stickyscope_vocab::record::WireRecord;
use tokio::sync::watch;

use super::{header_text, Shared};
use crate::wire::jar::{CookieJar, Rejected};

/// The user's cookies, and how many times the user has been pinned: an answer to a request
/// sent before the latest pin must not put back the cookie the pin replaced.
#[derive(Debug, Default)]
pub(super) struct Jar {
    cookies: CookieJar,
    pins: u64,
}

/// What a request carried from the jar.
pub(super) struct SentCookies {
    /// The sticky cookie's value, when sent.
    pub(super) sticky: Option<String>,
    /// The jar's pin count when the request went out.
    pins: u64,
    /// Whether the request went with `X-Stickiness: off`.
    pub(super) stickiness_off: bool,
}

impl Jar {
    /// An empty jar for a gateway browsers take for a secure origin or not.
    pub(super) fn for_origin(secure_origin: bool) -> Self {
        Jar {
            cookies: CookieJar::for_origin(secure_origin),
            pins: 0,
        }
    }

    /// Keeps a cookie the user gave (a login's), for every request to the gateway.
    pub(super) fn keep(&mut self, name: &str, value: &str) {
        // Without attributes, nothing a browser refuses.
        let _ = self
            .cookies
            .store(format!("{name}={value}; Path=/").as_bytes());
    }
}

impl Shared {
    fn jar(&self) -> MutexGuard<'_, Jar> {
        self.jar.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What names replicas now (as last taught).
    fn identify(&self) -> watch::Ref<'_, Identify> {
        self.naming.borrow()
    }

    /// The balancer's sticky cookie's name.
    fn cookie_name(&self) -> String {
        self.identify().cookie.clone()
    }

    /// The sticky cookie's value in the jar.
    pub(super) fn sticky_cookie(&self) -> Option<String> {
        let name = self.cookie_name();
        self.jar().cookies.get(&name).map(str::to_owned)
    }

    /// Puts this value of the sticky cookie in the jar and counts the pin.
    pub(super) fn pin(&self, value: &str) {
        let name = self.cookie_name();
        let mut jar = self.jar();
        // Without attributes, nothing a browser refuses.
        let _ = jar
            .cookies
            .store(format!("{name}={value}; Path=/").as_bytes());
        jar.pins += 1;
    }

    /// Names the replica behind an answer (see [`Identify`]) and records it. The sticky
    /// cookie names a server only for an answer a server gave (`from_server`: a success, a
    /// 101, an Engine.IO error); an error page of the balancer's own names none.
    pub(super) fn name_replica(
        &self,
        record: &mut WireRecord,
        headers: &HeaderMap,
        sent_cookie: Option<&str>,
        from_server: bool,
    ) {
        let identify = self.identify();
        let set_cookie = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| cookie::Cookie::parse(v).ok())
            .find(|c| c.name() == identify.cookie)
            .map(|c| c.value_trimmed().to_owned());
        let named = identify
            .header
            .as_deref()
            .and_then(|h| header_text(headers, h));
        let (set_cookie, sent_cookie) = if from_server {
            (set_cookie, sent_cookie)
        } else {
            (None, None)
        };
        let found = identify.identify(
            header_text(headers, X_REPLICA).as_deref(),
            named.as_deref(),
            set_cookie.as_deref(),
            sent_cookie,
        );
        record.replica_addr = header_text(headers, X_REPLICA_ADDR);
        match found {
            Ok((replica, source)) => {
                if let Source::Cookie { .. } = source {
                    // The label is the server's address: the topology joins it with the
                    // API's.
                    record.replica_addr = Some(replica.clone());
                }
                record.replica = Some(replica);
                record.replica_source = Some(source);
            }
            Err(why) if from_server => record.unnamed = Some(why.to_string()),
            Err(_) => {}
        }
    }

    /// Sets the request's cookies (the client's, then the jar's) and its stickiness header.
    /// Returns what the request carries from the jar.
    pub(super) fn carry_cookies(&self, headers: &mut HeaderMap) -> SentCookies {
        let from_client: Vec<String> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        let mut cookie = Vec::new();
        let sent = self.write_cookies(from_client.iter().map(String::as_str), &mut cookie);
        headers.remove(header::COOKIE);
        let value = std::str::from_utf8(&cookie).ok().filter(|c| !c.is_empty());
        if let Some(v) = value.and_then(|c| HeaderValue::from_str(c).ok()) {
            headers.insert(header::COOKIE, v);
        }
        let stickiness = HeaderName::from_static(STICKINESS_HEADER);
        if sent.stickiness_off {
            headers.insert(stickiness, HeaderValue::from_static("off"));
        } else {
            headers.remove(&stickiness);
        }
        sent
    }

    /// Appends to `to` the `Cookie` header's value a request carries — the client's own
    /// cookies, then the jar's, without the sticky cookie while the user's stickiness is off
    /// (nothing when there are none) — and returns what it carries from the jar.
    pub(super) fn write_cookies<'a>(
        &self,
        from_client: impl Iterator<Item = &'a str>,
        to: &mut Vec<u8>,
    ) -> SentCookies {
        let sticky = self.sticky.load(Ordering::Relaxed);
        let cookie_name = self.cookie_name();
        let withheld = (!sticky).then_some(cookie_name.as_str());
        let jar = self.jar();
        let mut first = true;
        let mut separate = |to: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                to.extend_from_slice(b"; ");
            }
        };
        for cookie in from_client {
            separate(to);
            to.extend_from_slice(cookie.as_bytes());
        }
        for (name, value) in jar.cookies.pairs_at(withheld, SystemTime::now()) {
            separate(to);
            to.extend_from_slice(name.as_bytes());
            to.push(b'=');
            to.extend_from_slice(value.as_bytes());
        }
        SentCookies {
            sticky: if sticky {
                jar.cookies.get(&cookie_name).map(str::to_owned)
            } else {
                None
            },
            pins: jar.pins,
            stickiness_off: !sticky,
        }
    }

    /// Keeps the answer's cookies — the sticky cookie only when no pin came after the
    /// request — and says on `record` each one browsers refuse (not kept).
    pub(super) fn remember_cookies(
        &self,
        record: &mut WireRecord,
        headers: &HeaderMap,
        sent: &SentCookies,
    ) {
        let refused = self.keep_cookies(
            headers
                .get_all(header::SET_COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
            sent,
        );
        add_note(record, refused);
    }

    /// Keeps the cookies an answer sets (`Set-Cookie` values) as
    /// [`Shared::remember_cookies`] does; returns what to say of those browsers refuse.
    pub(super) fn keep_cookies<'a>(
        &self,
        set_cookies: impl Iterator<Item = &'a [u8]>,
        sent: &SentCookies,
    ) -> Option<String> {
        let cookie_name = self.cookie_name();
        let mut refused: Vec<Rejected> = Vec::new();
        {
            let mut jar = self.jar();
            let pinned_since = jar.pins != sent.pins;
            for value in set_cookies {
                let stored = if pinned_since {
                    jar.cookies.store_except(value, &cookie_name)
                } else {
                    jar.cookies.store(value)
                };
                refused.extend(stored.err());
            }
        }
        let mut said: Option<String> = None;
        for rejected in refused {
            tracing::debug!(user = %self.user, "{rejected}");
            said = Some(match said {
                Some(before) => format!("{before}; {rejected}"),
                None => rejected.to_string(),
            });
        }
        said
    }
}

/// Adds `said` to what the record notes.
pub(super) fn add_note(record: &mut WireRecord, said: Option<String>) {
    let Some(said) = said else { return };
    record.note = Some(match record.note.take() {
        Some(note) => format!("{note}; {said}"),
        None => said,
    });
}
