//! Telling a rate limit from a broken stack: which refusals were a gateway's rate limit
//! (`429`, certainly; a `503` that is not the balancer's "no available server", perhaps —
//! nginx's `limit_req` answers 503 unless `limit_req_status` says otherwise), when the first
//! came, how many followed, and how fast sessions were being opened and requests sent in
//! the second before it: the rate that tripped it. The probe's verdict and the window's
//! crowd both read it. Pure.

use std::collections::VecDeque;

use serde::Serialize;
use stickyscope_contract::RequestKind::{HandshakePolling, HandshakeWebsocket};

use crate::record::{FailureKind, WireKind, WireRecord};

/// How far back from the first refusal's start the rate that tripped it is counted.
const WINDOW_MS: u64 = 1_000;
/// How long records are kept after they arrive, to count the ones that started in that
/// second but were answered after the refusal was (a slow handshake behind a quick 429).
const KEEP_S: f64 = 5.0;

/// A rate limit the sessions ran into.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimited {
    /// The status it answered with (429, or 503).
    pub status: u16,
    /// Its first refusal's reason, in the wire's words.
    pub reason: String,
    /// `true` for a 429, which says it is a rate limit; `false` for a 503, which may be one.
    pub certain: bool,
    /// Seconds from the start to the first refusal's arrival.
    pub first_at_s: f64,
    /// Refusals like it, in all.
    pub refusals: u64,
    /// The stretch the rate is measured over: the second up to the first refused
    /// request's start, or less when the run had not been going that long.
    pub window_s: f64,
    /// Sessions opened in it (handshakes sent, refused ones included).
    pub openings: u64,
    /// Requests and messages of every kind started in it.
    pub requests: u64,
    /// Sessions opened a second in it: the rate that tripped the limit.
    pub openings_per_s: f64,
    /// Requests sent a second in it.
    pub requests_per_s: f64,
    /// The stretch, in ms since the Unix epoch.
    #[serde(skip)]
    window_ms: (u64, u64),
}

impl RateLimited {
    /// A ramp that opens `sessions` at half the rate that tripped the limit, in whole
    /// seconds (at least 1).
    pub fn gentler_ramp_s(&self, sessions: usize) -> u64 {
        let half = (self.openings_per_s / 2.0).max(0.1);
        ((sessions as f64 / half).ceil() as u64).max(1)
    }

    fn in_window(&self, started_ms: u64) -> bool {
        (self.window_ms.0..=self.window_ms.1).contains(&started_ms)
    }

    /// The counts as rates over the stretch (at least 10 ms of it, so that one quick
    /// refusal does not read as thousands a second).
    fn rates(&mut self) {
        let seconds = self.window_s.max(0.01);
        self.openings_per_s = self.openings as f64 / seconds;
        self.requests_per_s = self.requests as f64 / seconds;
    }
}

/// Watches wire records as they arrive for a rate limit.
#[derive(Debug, Default)]
pub struct RateLimitWatch {
    /// Records of the last seconds: (arrived, started in ms since the epoch, opened a session).
    recent: VecDeque<(f64, u64, bool)>,
    /// The earliest start of any record seen: when the run's traffic began.
    first_ms: Option<u64>,
    found: Option<RateLimited>,
}

impl RateLimitWatch {
    /// Folds in one record that arrived `at_s` seconds into the run.
    pub fn fold(&mut self, at_s: f64, w: &WireRecord) {
        let opening = matches!(
            w.request_kind(),
            Some(HandshakePolling | HandshakeWebsocket)
        );
        let first_ms = *self.first_ms.get_or_insert(w.at_ms);
        self.first_ms = Some(first_ms.min(w.at_ms));
        if let Some(found) = &mut self.found {
            // A request of that stretch answered after the refusal was.
            if found.in_window(w.at_ms) {
                found.requests += 1;
                found.openings += u64::from(opening);
            }
            if limit_of(w).is_some_and(|(status, _)| status == found.status) {
                found.refusals += 1;
            }
            return;
        }
        self.recent.push_back((at_s, w.at_ms, opening));
        while self
            .recent
            .front()
            .is_some_and(|(t, _, _)| *t < at_s - KEEP_S)
        {
            self.recent.pop_front();
        }
        let Some((status, certain)) = limit_of(w) else {
            return;
        };
        let from_ms = w.at_ms.saturating_sub(WINDOW_MS);
        let mut found = RateLimited {
            status,
            reason: w
                .failure
                .as_ref()
                .map(|f| f.reason.clone())
                .unwrap_or_default(),
            certain,
            first_at_s: at_s,
            refusals: 1,
            window_s: WINDOW_MS as f64 / 1000.0,
            openings: 0,
            requests: 0,
            openings_per_s: 0.0,
            requests_per_s: 0.0,
            window_ms: (from_ms, w.at_ms),
        };
        for (_, started_ms, opening) in &self.recent {
            if found.in_window(*started_ms) {
                found.requests += 1;
                found.openings += u64::from(*opening);
            }
        }
        self.recent.clear();
        self.found = Some(found);
    }

    /// Refusals by the rate limit found so far.
    pub fn refusals(&self) -> u64 {
        self.found.as_ref().map_or(0, |f| f.refusals)
    }

    /// What it found, if anything, with its rates: over the second up to the first
    /// refused request's start, or from the run's first request when that was later (a
    /// slow handshake sent before the refusal may be answered after it, so this is known
    /// only at the end).
    pub fn into_finding(self) -> Option<RateLimited> {
        self.finding()
    }

    /// What it has found so far (as [`RateLimitWatch::into_finding`], while it goes on).
    pub fn finding(&self) -> Option<RateLimited> {
        let first_ms = self.first_ms;
        self.found.clone().map(|mut found| {
            let (from_ms, to_ms) = found.window_ms;
            let from_ms = from_ms.max(first_ms.unwrap_or(from_ms));
            found.window_s = to_ms.saturating_sub(from_ms) as f64 / 1000.0;
            found.rates();
            found
        })
    }
}

/// Whether `w` was refused by a rate limit: (status, whether certainly).
fn limit_of(w: &WireRecord) -> Option<(u16, bool)> {
    let failure = w.failure.as_ref()?;
    let status = match w.kind {
        WireKind::Http { status, .. } => status,
        WireKind::Ws { .. } => None,
    };
    match (failure.kind, status) {
        (FailureKind::RateLimited, status) => Some((status.unwrap_or(429), true)),
        (FailureKind::Gateway, Some(503)) => Some((503, false)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Failure, Transport};
    use stickyscope_contract::RequestKind;

    fn record(
        request: RequestKind,
        started_ms: u64,
        status: u16,
        failure: Option<(FailureKind, &str)>,
    ) -> WireRecord {
        let mut w = WireRecord::new(
            "probe-1",
            started_ms,
            Transport::Polling,
            WireKind::Http {
                request,
                method: "GET".into(),
                status: Some(status),
            },
        );
        w.failure = failure.map(|(kind, reason)| Failure {
            kind,
            reason: reason.into(),
        });
        w
    }

    const LIMITED: (FailureKind, &str) = (
        FailureKind::RateLimited,
        "rate-limited by the gateway (HTTP 429 Too Many Requests)",
    );

    #[test]
    fn the_first_429_is_found_with_the_opening_rate_of_the_second_before_it() {
        let mut watch = RateLimitWatch::default();
        let t0 = 1_000_000;
        // Two seconds of calm: one handshake and one poll a second.
        for s in 0..2u64 {
            let at = s as f64;
            watch.fold(
                at,
                &record(RequestKind::HandshakePolling, t0 + s * 1000, 200, None),
            );
            watch.fold(
                at + 0.1,
                &record(RequestKind::PollGet, t0 + s * 1000 + 100, 200, None),
            );
        }
        assert_eq!(watch.refusals(), 0);
        // Then 40 handshakes sent within 0.4 s; the last sent is refused at once, and its
        // 429 arrives before twenty of the others are answered.
        let sent = |i: u64| t0 + 2000 + i * 10;
        for i in 0..19 {
            watch.fold(
                2.0 + i as f64 * 0.01,
                &record(RequestKind::HandshakePolling, sent(i), 200, None),
            );
        }
        watch.fold(
            2.40,
            &record(RequestKind::HandshakePolling, sent(39), 429, Some(LIMITED)),
        );
        for i in 19..39 {
            watch.fold(
                2.45,
                &record(RequestKind::HandshakePolling, sent(i), 200, None),
            );
        }
        watch.fold(
            2.5,
            &record(RequestKind::HandshakePolling, sent(40), 429, Some(LIMITED)),
        );
        // A long poll sent long before, answered now, is not of that second.
        watch.fold(2.6, &record(RequestKind::PollGet, t0, 200, None));
        assert_eq!(watch.refusals(), 2);
        let found = watch.into_finding().expect("a rate limit");
        assert_eq!(found.status, 429);
        assert!(found.certain);
        assert_eq!(found.first_at_s, 2.40);
        // The 40 sent from 2.0 s to 2.39 s, the refused one included; not the calm ones
        // before 1.39 s, nor the handshake sent after the refusal.
        assert_eq!(found.window_s, 1.0);
        assert_eq!((found.openings, found.requests), (40, 40));
        assert_eq!(found.openings_per_s, 40.0);
        assert!(found.reason.contains("429"));
        // Half of 40 a second: 200 sessions in 10 s.
        assert_eq!(found.gentler_ramp_s(200), 10);
    }

    #[test]
    fn a_limit_met_within_the_first_second_is_a_rate_over_what_went_before() {
        let mut watch = RateLimitWatch::default();
        let t0 = 5_000;
        // 10 handshakes in the first 190 ms, the tenth refused: 10 in 0.19 s.
        for i in 0..9u64 {
            watch.fold(
                0.01 * i as f64,
                &record(RequestKind::HandshakePolling, t0 + i * 20, 200, None),
            );
        }
        watch.fold(
            0.2,
            &record(RequestKind::HandshakePolling, t0 + 190, 429, Some(LIMITED)),
        );
        let found = watch.into_finding().expect("a rate limit");
        assert_eq!(found.window_s, 0.19);
        assert_eq!(found.openings, 10);
        assert!(
            (found.openings_per_s - 52.6).abs() < 0.1,
            "{}",
            found.openings_per_s
        );
    }

    #[test]
    fn a_503_that_is_not_no_available_server_may_be_one_and_a_refusal_by_a_replica_is_not() {
        let mut watch = RateLimitWatch::default();
        watch.fold(
            0.1,
            &record(
                RequestKind::PollGet,
                100,
                400,
                Some((FailureKind::Refused, "Session ID unknown")),
            ),
        );
        watch.fold(
            0.2,
            &record(
                RequestKind::HandshakePolling,
                200,
                503,
                Some((
                    FailureKind::NoReplica,
                    "no available server: the gateway has no replica in rotation (HTTP 503)",
                )),
            ),
        );
        assert_eq!(watch.refusals(), 0);
        watch.fold(
            0.3,
            &record(
                RequestKind::HandshakePolling,
                300,
                503,
                Some((FailureKind::Gateway, "503 Service Temporarily Unavailable")),
            ),
        );
        let found = watch.into_finding().expect("perhaps a rate limit");
        assert_eq!((found.status, found.certain), (503, false));
        assert_eq!((found.openings, found.requests), (2, 3));
    }
}
