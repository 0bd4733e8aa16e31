//! The capture format: a recorded session as a file users keep. JSON Lines: the first line
//! says what the file is — `{"stickyscope_capture": 1, …}`, the format's version, what
//! recorded it, the gateway, the settings, the sessions' names — and every line after it is
//! one thing that happened, at its time from the start: a wire record, a session's new
//! state, a user's stickiness or transport, a chat message sent or received, the topology
//! the balancer's API reported, the crowd, a notice; a last `end` line says how long the
//! recording ran and why it stopped, when it stopped cleanly. A file from before this format (JSON
//! Lines of bare wire records, the window's old export) reads as version 0.
//!
//! Pure: lines in, items out; the file's streaming is `stickyscope::capture`'s.

use serde::{Deserialize, Serialize};

use crate::events::{CrowdSummary, Event, Notice, OutboxUpdate, Received};
use crate::events::{SessionState, TransportChoice};
use crate::record::WireRecord;
use crate::topology::Topology;

/// The version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// What the first line says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureHeader {
    /// The format's version.
    pub stickyscope_capture: u32,
    /// What recorded it: `probe`, `window`.
    pub source: String,
    /// The stickyscope that recorded it (`0.1.0`).
    pub stickyscope: String,
    /// When the recording started, milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// The gateway the sessions talked to.
    pub gateway: String,
    /// What the stack was (`embedded stack`, `gateway`, …).
    pub stack: String,
    /// The sessions' transport at the start.
    pub transport: TransportChoice,
    /// The sessions' stickiness at the start.
    pub sticky: bool,
    /// The sessions recorded, by name.
    pub sessions: Vec<String>,
}

/// One thing that happened, as a line after the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Happened {
    /// Something crossed the wire.
    Wire(Box<WireRecord>),
    /// A session's state changed.
    Session {
        /// The session (user).
        user: String,
        /// Its new state.
        state: SessionState,
    },
    /// A user's stickiness is now `on`.
    Sticky {
        /// The user.
        user: String,
        /// On or off.
        on: bool,
    },
    /// A user's transport changed.
    Transport {
        /// The user.
        user: String,
        /// The transport.
        transport: TransportChoice,
    },
    /// A message a user sent changed status.
    Outbox(OutboxUpdate),
    /// A user received a message.
    Received(Received),
    /// The balancer's API reported this topology.
    Topology(Topology),
    /// The crowd of background sessions.
    Crowd(CrowdSummary),
    /// A notice the window showed as a banner.
    Notice(Notice),
    /// The recording ended cleanly.
    End {
        /// Why: `done`, `size limit`, `closed`.
        why: String,
    },
}

impl Happened {
    /// What of an event a capture keeps: everything the window shows — what crossed the
    /// wire, the sessions' states, the users' stickiness and transport, the chat, the
    /// topology, the crowd, notices — but not counters read from the replicas, the doctor's
    /// checklist or the ends of replica operations.
    pub fn of(event: &Event) -> Option<Happened> {
        Some(match event {
            Event::Wire(wire) => Happened::Wire(Box::new(WireRecord::clone(wire))),
            Event::Session { user, state } => Happened::Session {
                user: user.clone(),
                state: state.clone(),
            },
            Event::Sticky { user, on } => Happened::Sticky {
                user: user.clone(),
                on: *on,
            },
            Event::Transport { user, transport } => Happened::Transport {
                user: user.clone(),
                transport: *transport,
            },
            Event::Outbox(update) => Happened::Outbox(update.clone()),
            Event::Received(received) => Happened::Received(received.clone()),
            Event::Topology(topology) => Happened::Topology(topology.clone()),
            Event::Crowd(crowd) => Happened::Crowd(crowd.clone()),
            Event::Notice(notice) => Happened::Notice(notice.clone()),
            Event::Stats(_) | Event::Doctor(_) | Event::StackDone { .. } => return None,
        })
    }

    /// The event it was ([`Happened::End`] was none).
    pub fn into_event(self) -> Option<Event> {
        Some(match self {
            Happened::Wire(wire) => Event::Wire(std::sync::Arc::from(wire)),
            Happened::Session { user, state } => Event::Session { user, state },
            Happened::Sticky { user, on } => Event::Sticky { user, on },
            Happened::Transport { user, transport } => Event::Transport { user, transport },
            Happened::Outbox(update) => Event::Outbox(update),
            Happened::Received(received) => Event::Received(received),
            Happened::Topology(topology) => Event::Topology(topology),
            Happened::Crowd(crowd) => Event::Crowd(crowd),
            Happened::Notice(notice) => Event::Notice(notice),
            Happened::End { .. } => return None,
        })
    }
}

/// A line after the header: what happened, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureLine {
    /// Seconds from the start of the recording.
    pub at_s: f64,
    /// What happened.
    #[serde(flatten)]
    pub happened: Happened,
}

/// Why a line cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The first line is neither a header nor (version 0) a wire record.
    #[error("this is not a stickyscope capture: its first line is neither a capture header nor a wire record ({0})")]
    NotACapture(String),
    /// Written by a newer stickyscope.
    #[error("this capture is format {found}, newer than the format {reads} this stickyscope reads: open it with a newer stickyscope")]
    Newer {
        /// The file's version.
        found: u32,
        /// The newest this build reads.
        reads: u32,
    },
    /// A line after the first is not one.
    #[error("{0}")]
    Bad(String),
}

/// What the first line of a file says it is.
#[derive(Debug, Clone, PartialEq)]
pub enum First {
    /// A capture of this format (or an older one).
    Header(Box<CaptureHeader>),
    /// Version 0: bare wire records; this is the first.
    Legacy(Box<WireRecord>),
}

/// Reads a file's first line.
pub fn first_line(line: &str) -> Result<First, LineError> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| LineError::NotACapture(e.to_string()))?;
    if let Some(version) = value.get("stickyscope_capture") {
        let found = version
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| LineError::NotACapture(format!("version {version}")))?;
        if found > FORMAT_VERSION {
            return Err(LineError::Newer {
                found,
                reads: FORMAT_VERSION,
            });
        }
        return serde_json::from_value(value)
            .map(|h| First::Header(Box::new(h)))
            .map_err(|e| LineError::NotACapture(e.to_string()));
    }
    serde_json::from_value(value)
        .map(|w| First::Legacy(Box::new(w)))
        .map_err(|e| LineError::NotACapture(e.to_string()))
}

/// Reads a line after the first, of a capture (`legacy`: of bare wire records, whose time
/// is taken from the record's own start, `at_ms`, against `legacy_start_ms`).
pub fn line(text: &str, legacy_start_ms: Option<u64>) -> Result<CaptureLine, LineError> {
    match legacy_start_ms {
        None => serde_json::from_str(text).map_err(|e| LineError::Bad(e.to_string())),
        Some(start) => serde_json::from_str::<WireRecord>(text)
            .map(|w| legacy(w, start))
            .map_err(|e| LineError::Bad(e.to_string())),
    }
}

/// A bare wire record as a line of a capture, timed from `start_ms`.
pub fn legacy(wire: WireRecord, start_ms: u64) -> CaptureLine {
    CaptureLine {
        at_s: wire.at_ms.saturating_sub(start_ms) as f64 / 1000.0,
        happened: Happened::Wire(Box::new(wire)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> CaptureHeader {
        CaptureHeader {
            stickyscope_capture: FORMAT_VERSION,
            source: "probe".into(),
            stickyscope: "0.1.0".into(),
            started_ms: 1_000,
            gateway: "http://127.0.0.1:8000".into(),
            stack: "gateway".into(),
            transport: TransportChoice::Polling,
            sticky: true,
            sessions: vec!["probe-1".into()],
        }
    }

    #[test]
    fn a_header_and_lines_read_back_as_written() {
        let text = serde_json::to_string(&header()).unwrap();
        assert_eq!(first_line(&text), Ok(First::Header(Box::new(header()))));
        let happened = CaptureLine {
            at_s: 1.5,
            happened: Happened::Session {
                user: "probe-1".into(),
                state: SessionState::Connecting,
            },
        };
        let text = serde_json::to_string(&happened).unwrap();
        assert!(text.starts_with("{\"at_s\":1.5,\"session\":"), "{text}");
        assert_eq!(line(&text, None), Ok(happened));
    }

    #[test]
    fn a_newer_format_is_refused_naming_both_versions() {
        let mut newer = serde_json::to_value(header()).unwrap();
        newer["stickyscope_capture"] = 7.into();
        let err = first_line(&newer.to_string()).unwrap_err();
        assert_eq!(
            err,
            LineError::Newer {
                found: 7,
                reads: FORMAT_VERSION
            }
        );
        assert!(err.to_string().contains("format 7") && err.to_string().contains("format 1"));
    }

    #[test]
    fn something_else_is_not_a_capture() {
        assert!(matches!(
            first_line("{\"log\":{\"version\":\"1.2\"}}"),
            Err(LineError::NotACapture(_))
        ));
        assert!(matches!(
            first_line("not json"),
            Err(LineError::NotACapture(_))
        ));
    }
}
