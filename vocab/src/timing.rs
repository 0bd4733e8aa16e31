//! What a record's time means. A handshake, a POST or an upgrade is answered at once, so its
//! time is a round trip. A long poll is held by the server until it has a packet to send
//! (up to the ping interval), so its time is mostly waiting: stickyscope's replicas say how
//! long they held it (`Server-Timing: held;dur=…`), which splits it into the hold and the
//! round trip; a server that does not say leaves the two together, and that is said too.
//! Pure.

use stickyscope_contract::names::SERVER_TIMING_HELD;
use stickyscope_contract::RequestKind;

/// A hold shorter than this is a poll that found a packet waiting: answered at once.
pub const HELD_AT_LEAST_US: u64 = 1_000;

/// The `held` metric of `Server-Timing` header values, in microseconds; `None` when absent
/// or malformed.
pub fn held_us<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<u64> {
    values
        .into_iter()
        .flat_map(|value| value.split(','))
        .find_map(|metric| {
            let mut params = metric.split(';').map(str::trim);
            if params.next()? != SERVER_TIMING_HELD {
                return None;
            }
            params.find_map(|param| {
                let (name, value) = param.split_once('=')?;
                if !name.trim().eq_ignore_ascii_case("dur") {
                    return None;
                }
                let ms: f64 = value.trim().trim_matches('"').parse().ok()?;
                (ms.is_finite() && ms >= 0.0).then(|| (ms * 1000.0).round() as u64)
            })
        })
}

/// What a record's time was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Answered at once (a handshake, a POST, an upgrade, a poll that found a packet
    /// waiting): the time is a round trip.
    RoundTrip {
        /// Microseconds.
        us: u64,
    },
    /// A long poll the server held until it had a packet to send, then answered.
    Held {
        /// How long the server says it held it.
        held_us: u64,
        /// The rest: the round trip.
        round_trip_us: u64,
    },
    /// A long poll from a server that does not say how long it held it: waiting and round
    /// trip together.
    PollUnsplit {
        /// Microseconds, request to answer.
        us: u64,
    },
}

impl Timing {
    /// The meaning of `latency_us` for a request of `kind`, with the server's `held_us`.
    pub fn of(kind: RequestKind, latency_us: u64, held_us: Option<u64>) -> Timing {
        if kind != RequestKind::PollGet {
            return Timing::RoundTrip { us: latency_us };
        }
        match held_us {
            None => Timing::PollUnsplit { us: latency_us },
            Some(held) if held < HELD_AT_LEAST_US => Timing::RoundTrip {
                us: latency_us.saturating_sub(held),
            },
            Some(held) => {
                let held = held.min(latency_us);
                Timing::Held {
                    held_us: held,
                    round_trip_us: latency_us - held,
                }
            }
        }
    }

    /// In a few words, for a row of the packet log.
    pub fn short(&self) -> String {
        match *self {
            Timing::RoundTrip { us } => ms(us),
            Timing::Held {
                held_us,
                round_trip_us,
            } => format!(
                "held {} until the next packet + {}",
                ms(held_us),
                ms(round_trip_us)
            ),
            Timing::PollUnsplit { us } => {
                format!("long poll {}, held until the next packet", ms(us))
            }
        }
    }

    /// In words, for the packet log.
    pub fn describe(&self) -> String {
        match *self {
            Timing::RoundTrip { us } => format!("round trip {}", ms(us)),
            Timing::Held {
                held_us,
                round_trip_us,
            } => format!(
                "held {} by the server until the next packet, round trip {}",
                ms(held_us),
                ms(round_trip_us)
            ),
            Timing::PollUnsplit { us } => format!(
                "long poll {}: held by the server until the next packet (it does not say how long, so this is not a round trip)",
                ms(us)
            ),
        }
    }
}

fn ms(us: u64) -> String {
    if us < 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{} ms", us / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_metric_is_read_among_others() {
        assert_eq!(held_us(["held;dur=2998.4"]), Some(2_998_400));
        assert_eq!(
            held_us(["cache;desc=\"hit\", held;desc=\"poll\";dur=12", "db;dur=3"]),
            Some(12_000)
        );
        assert_eq!(held_us(["db;dur=3", "held;dur=0.2"]), Some(200));
        assert_eq!(held_us(["held"]), None, "no duration");
        assert_eq!(held_us(["held;dur=-4"]), None);
        assert_eq!(held_us(["held;dur=NaN"]), None);
        assert_eq!(held_us(["holder;dur=4"]), None);
        assert_eq!(held_us([]), None);
    }

    #[test]
    fn only_long_polls_are_held_and_a_short_hold_is_a_round_trip() {
        use RequestKind::*;
        for kind in [HandshakePolling, PollPost, Upgrade] {
            assert_eq!(
                Timing::of(kind, 1_500, Some(900_000)),
                Timing::RoundTrip { us: 1_500 }
            );
        }
        assert_eq!(
            Timing::of(PollGet, 3_001_200, Some(2_999_900)),
            Timing::Held {
                held_us: 2_999_900,
                round_trip_us: 1_300
            }
        );
        assert_eq!(
            Timing::of(PollGet, 1_400, Some(300)),
            Timing::RoundTrip { us: 1_100 },
            "a poll that found a packet waiting"
        );
        assert_eq!(
            Timing::of(PollGet, 3_000_000, None),
            Timing::PollUnsplit { us: 3_000_000 }
        );
        assert_eq!(
            Timing::of(PollGet, 1_000, Some(5_000)),
            Timing::Held {
                held_us: 1_000,
                round_trip_us: 0
            },
            "a hold longer than the whole is cut to it"
        );
    }

    #[test]
    fn the_log_says_what_the_time_was() {
        assert_eq!(
            Timing::of(RequestKind::PollGet, 3_001_200, Some(2_999_900)).describe(),
            "held 2999 ms by the server until the next packet, round trip 1.3 ms"
        );
        assert_eq!(
            Timing::of(RequestKind::PollGet, 3_001_200, Some(2_999_900)).short(),
            "held 2999 ms until the next packet + 1.3 ms"
        );
        assert_eq!(
            Timing::of(RequestKind::PollPost, 1_234, None).short(),
            "1.2 ms"
        );
        assert!(Timing::of(RequestKind::PollGet, 3_000_000, None)
            .describe()
            .contains("not a round trip"));
    }
}
