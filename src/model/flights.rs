//! Packets in flight: each wire record becomes a flight from the user through the gateway
//! hops to the replica that handled it (and back, for an HTTP answer), labelled by what it
//! carried. A refusal ends in a mark at the replica that refused (or at the gateway when no
//! replica answered), with the reason. Times are presentation-clock seconds.

use std::collections::VecDeque;
use std::sync::Arc;

use stickyscope_contract::RequestKind;

use stickyscope_vocab::protocol::{EnginePacket, SocketKind};
use stickyscope_vocab::record::{Direction, WireKind, WireRecord};

/// Presentation seconds one leg (user → replica, or back) takes.
pub const LEG_SECS: f64 = 0.6;
/// Presentation seconds a refusal mark stays.
pub const MARK_SECS: f64 = 10.0;
/// Most flights kept at once; the oldest go first.
pub const MAX_FLIGHTS: usize = 400;
/// Most marks kept.
pub const MAX_MARKS: usize = 64;

/// One leg of a flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    /// Up (to the replica) or down (to the user).
    pub direction: Direction,
    /// What it carried, in words.
    pub label: String,
    /// A refusal.
    pub failed: bool,
}

/// One record travelling.
#[derive(Debug, Clone, PartialEq)]
pub struct Flight {
    /// The user.
    pub user: String,
    /// The replica that handled it; `None` when it went no further than the gateway.
    pub replica: Option<String>,
    /// Legs, in order.
    pub legs: Vec<Leg>,
    /// Presentation time it starts.
    pub start: f64,
}

impl Flight {
    /// When it ends.
    pub fn end(&self) -> f64 {
        self.start + LEG_SECS * self.legs.len() as f64
    }

    /// Which leg it is on at `now`, and how far along (0..1).
    pub fn position(&self, now: f64) -> Option<(usize, f32)> {
        if now < self.start || now >= self.end() {
            return None;
        }
        let t = (now - self.start) / LEG_SECS;
        let leg = t.floor() as usize;
        Some((leg.min(self.legs.len() - 1), (t - leg as f64) as f32))
    }
}

/// A refusal, drawn where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectMark {
    /// The replica that refused; `None` for the gateway.
    pub replica: Option<String>,
    /// Whose request.
    pub user: String,
    /// The exact reason.
    pub reason: String,
    /// When it appeared (presentation time).
    pub at: f64,
}

/// Flights and marks.
#[derive(Debug, Default, Clone)]
pub struct Flights {
    /// Shared, so a copy of the model (the timeline keeps some) copies no flight.
    flights: VecDeque<Arc<Flight>>,
    marks: VecDeque<RejectMark>,
}

impl Flights {
    /// Starts the flight of `wire` at `now`.
    pub fn launch(&mut self, wire: &WireRecord, now: f64) {
        let legs = legs_of(wire);
        if legs.is_empty() {
            return;
        }
        let arrives = arrival(&legs, now);
        if let Some(failure) = &wire.failure {
            self.marks.push_back(RejectMark {
                replica: wire.replica.clone(),
                user: wire.user.clone(),
                reason: failure.reason.clone(),
                at: arrives,
            });
            while self.marks.len() > MAX_MARKS {
                self.marks.pop_front();
            }
        }
        self.flights.push_back(Arc::new(Flight {
            user: wire.user.clone(),
            replica: wire.replica.clone(),
            legs,
            start: now,
        }));
        while self.flights.len() > MAX_FLIGHTS {
            self.flights.pop_front();
        }
    }

    /// When a refusal of `wire`, launched at `now`, shows as a mark: once its request has
    /// flown to where it was refused.
    pub fn mark_shows_at(wire: &WireRecord, now: f64) -> f64 {
        arrival(&legs_of(wire), now)
    }

    /// Flights moving at `now`, with their position.
    pub fn active(&self, now: f64) -> impl Iterator<Item = (&Flight, usize, f32)> {
        self.flights
            .iter()
            .filter_map(move |f| f.position(now).map(|(leg, t)| (&**f, leg, t)))
    }

    /// Marks visible at `now`.
    pub fn marks(&self, now: f64) -> impl Iterator<Item = &RejectMark> {
        self.marks
            .iter()
            .filter(move |m| m.at <= now && now - m.at < MARK_SECS)
    }

    /// Flights kept: after [`prune`](Self::prune), those still moving or yet to start.
    pub fn len(&self) -> usize {
        self.flights.len()
    }

    /// Whether no flight is kept.
    pub fn is_empty(&self) -> bool {
        self.flights.is_empty()
    }

    /// Forgets what is over.
    pub fn prune(&mut self, now: f64) {
        self.flights.retain(|f| f.end() > now);
        self.marks.retain(|m| now - m.at < MARK_SECS);
    }

    /// Whether a packet moves after `now` (the window must keep repainting while one does).
    pub fn busy(&self, now: f64) -> bool {
        self.flights.iter().any(|f| f.end() > now)
    }

    /// When the next mark appears or disappears after `now`, if any: marks do not move, so
    /// the window repaints only then.
    pub fn next_mark_expiry(&self, now: f64) -> Option<f64> {
        self.marks
            .iter()
            .flat_map(|m| [m.at, m.at + MARK_SECS])
            .filter(|t| *t > now)
            .min_by(f64::total_cmp)
    }
}

/// When a flight launched at `now` reaches the end of its way up.
fn arrival(legs: &[Leg], now: f64) -> f64 {
    now + LEG_SECS
        * legs
            .iter()
            .take_while(|l| l.direction == Direction::Up)
            .count()
            .max(1) as f64
}

/// The legs of a record: an HTTP exchange goes up and comes down; a WebSocket message goes
/// one way.
pub fn legs_of(wire: &WireRecord) -> Vec<Leg> {
    match &wire.kind {
        WireKind::Http {
            request,
            method,
            status,
        } => {
            let up = if wire.packets_up.is_empty() {
                match request {
                    RequestKind::HandshakePolling => "handshake".to_owned(),
                    RequestKind::HandshakeWebsocket => "handshake (websocket)".to_owned(),
                    RequestKind::PollGet => "poll".to_owned(),
                    RequestKind::PollPost => "post".to_owned(),
                    RequestKind::Upgrade => "upgrade".to_owned(),
                    RequestKind::Other => method.clone(),
                }
            } else {
                labels(&wire.packets_up)
            };
            let (down, failed) = match (&wire.failure, status) {
                (Some(f), Some(s)) => (format!("{s} {}", f.reason), true),
                (Some(f), None) => (f.reason.clone(), true),
                (None, Some(101)) => ("101 switching to websocket".to_owned(), false),
                (None, Some(s)) if wire.packets_down.is_empty() => (s.to_string(), false),
                (None, _) => (labels(&wire.packets_down), false),
            };
            vec![
                Leg {
                    direction: Direction::Up,
                    label: up,
                    failed: false,
                },
                Leg {
                    direction: Direction::Down,
                    label: down,
                    failed,
                },
            ]
        }
        WireKind::Ws { direction } => {
            let packets = match direction {
                Direction::Up => &wire.packets_up,
                Direction::Down => &wire.packets_down,
            };
            let label = match (&wire.failure, &wire.note) {
                (Some(f), _) => f.reason.clone(),
                (None, _) if !packets.is_empty() => labels(packets),
                (None, Some(note)) => note.clone(),
                (None, None) => return Vec::new(),
            };
            vec![Leg {
                direction: *direction,
                label,
                failed: wire.failure.is_some(),
            }]
        }
    }
}

fn labels(packets: &[EnginePacket]) -> String {
    let mut out: Vec<String> = packets.iter().map(packet_label).collect();
    out.dedup();
    out.join(", ")
}

/// A packet in words: `handshake`, `ping`, `pong`, `message (chat)`, `upgrade`, …
pub fn packet_label(p: &EnginePacket) -> String {
    match p {
        EnginePacket::Message { socket: Some(sp) } => match (sp.kind, &sp.event) {
            (SocketKind::Event | SocketKind::BinaryEvent, Some(event)) => {
                format!("message ({event})")
            }
            (SocketKind::Connect, _) => "message (connect)".to_owned(),
            (SocketKind::Ack | SocketKind::BinaryAck, _) => "message (ack)".to_owned(),
            (kind, _) => format!("message ({})", kind.name()),
        },
        other => other.kind_name().to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use stickyscope_vocab::protocol::decode_payload;
    use stickyscope_vocab::record::{Failure, FailureKind, Transport};

    pub(crate) fn sample_wire() -> WireRecord {
        WireRecord {
            seq: 1,
            sid: Some("S".into()),
            engineio: Some(4),
            replica: Some("1".into()),
            latency_us: Some(1500),
            bytes_down: 1,
            packets_down: decode_payload(b"2"),
            raw_down: "2".into(),
            ..WireRecord::new(
                "agent",
                1_000,
                Transport::Polling,
                WireKind::Http {
                    request: RequestKind::PollGet,
                    method: "GET".into(),
                    status: Some(200),
                },
            )
        }
    }

    #[test]
    fn a_poll_goes_up_empty_and_comes_back_with_a_ping() {
        let legs = legs_of(&sample_wire());
        assert_eq!(legs[0].label, "poll");
        assert_eq!(legs[1].label, "ping");
        let mut f = Flights::default();
        f.launch(&sample_wire(), 10.0);
        let (_, leg, t) = f.active(10.0 + LEG_SECS * 1.5).next().unwrap();
        assert_eq!(leg, 1);
        assert!((t - 0.5).abs() < 1e-3);
        assert!(f.busy(11.0));
        assert_eq!(f.next_mark_expiry(11.0), None, "no refusal, no mark");
        f.prune(100.0);
        assert!(!f.busy(100.0));
    }

    #[test]
    fn a_refusal_is_marked_at_the_replica_that_refused_when_it_arrives() {
        let mut wire = sample_wire();
        wire.kind = WireKind::Http {
            request: RequestKind::PollGet,
            method: "GET".into(),
            status: Some(400),
        };
        wire.replica = Some("2".into());
        wire.packets_down.clear();
        wire.failure = Some(Failure {
            kind: FailureKind::Refused,
            reason: "Session ID unknown".into(),
        });
        let legs = legs_of(&wire);
        assert_eq!(legs[1].label, "400 Session ID unknown");
        assert!(legs[1].failed);
        let mut f = Flights::default();
        f.launch(&wire, 0.0);
        assert_eq!(f.marks(0.1).count(), 0, "not before the request gets there");
        assert_eq!(f.next_mark_expiry(0.0), Some(LEG_SECS));
        assert_eq!(
            f.next_mark_expiry(LEG_SECS + 0.1),
            Some(LEG_SECS + MARK_SECS)
        );
        let mark = f.marks(LEG_SECS + 0.1).next().unwrap();
        assert_eq!(mark.replica.as_deref(), Some("2"));
        assert_eq!(mark.reason, "Session ID unknown");
    }

    #[test]
    fn labels_name_the_kinds_people_look_for() {
        let p = decode_payload(
            br#"0{"sid":"x","upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":1}"#,
        );
        assert_eq!(packet_label(&p[0]), "handshake");
        let p = decode_payload(b"42[\"chat\",{}]\x1e3\x1e5\x1e40");
        let names: Vec<String> = p.iter().map(packet_label).collect();
        assert_eq!(
            names,
            ["message (chat)", "pong", "upgrade", "message (connect)"]
        );
    }

    #[test]
    fn flights_are_bounded() {
        let mut f = Flights::default();
        for i in 0..MAX_FLIGHTS + 10 {
            f.launch(&sample_wire(), i as f64 * 0.001);
        }
        assert_eq!(f.active(0.5).count(), MAX_FLIGHTS);
    }
}
