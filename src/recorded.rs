//! A capture opened for the window (`stickyscope open FILE`): read a line at a time into a
//! timeline the window plays and scrubs, as the live window would have folded it; a
//! browser's HAR is read the same way, its Engine.IO sessions as the users. Bounded:
//! past [`MAX_OPEN_EVENTS`] the rest of the file is left unread, and said (`inspect` reads
//! any size). A file cut short is read to its last whole line, and said.

use std::path::Path;

use stickyscope_vocab::capture::{CaptureHeader, Happened};
use stickyscope_vocab::events::Event;
use stickyscope_vocab::naming::Identify;

use crate::capture::{self, CaptureError};
use crate::model::timeline::Timeline;
use crate::model::ViewModel;

/// Most events the window holds from one capture (about 1 GB of memory at the most).
pub const MAX_OPEN_EVENTS: usize = 500_000;

/// A capture, ready to be shown.
#[derive(Debug)]
pub struct Opened {
    /// What the file says it is.
    pub header: CaptureHeader,
    /// Everything that happened, at its time from the start of the recording.
    pub timeline: Timeline,
    /// The model at the end (for whoever wants the last state without playing).
    pub last: ViewModel,
    /// The users the recording is about: the header's sessions, or (a format-0 file) the
    /// users on its wire, in order of first appearance.
    pub users: Vec<String>,
    /// What to say about how the file was read (cut short, only its beginning).
    pub notes: Vec<String>,
}

/// Why a file cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A capture that cannot be read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// A HAR that cannot be read.
    #[error(transparent)]
    Har(#[from] crate::har::HarError),
}

/// Reads the capture (or the browser's HAR, its replicas named as `identify` says) at
/// `path`.
pub fn open_any(path: &Path, identify: &Identify) -> Result<Opened, OpenError> {
    if crate::har::is_har(path) {
        Ok(open_har(path, identify)?)
    } else {
        Ok(open(path)?)
    }
}

/// A browser's HAR as a recording: its Engine.IO sessions are its users.
fn open_har(path: &Path, identify: &Identify) -> Result<Opened, crate::har::HarError> {
    let read = crate::har::read(path, identify)?;
    let header = CaptureHeader {
        stickyscope_capture: stickyscope_vocab::capture::FORMAT_VERSION,
        source: if read.creator.is_empty() {
            "a browser's HAR".to_owned()
        } else {
            format!("HAR ({})", read.creator)
        },
        stickyscope: String::new(),
        started_ms: read.started_ms,
        gateway: read.gateway.clone(),
        stack: "(a browser's HAR)".into(),
        transport: stickyscope_vocab::events::TransportChoice::Polling,
        sticky: true,
        sessions: read.sessions.clone(),
    };
    let names: Vec<&str> = read.sessions.iter().map(String::as_str).collect();
    let mut start = ViewModel::new(&names, true, header.transport);
    // A HAR does not say how the balancer routed its sessions, nor what the page asked for.
    start.sticky.clear();
    start.transport.clear();
    let mut last = start.clone();
    let mut timeline = Timeline::new(start, 0.0, None);
    let mut notes = Vec::new();
    for (at, event) in read.lines.into_iter().take(MAX_OPEN_EVENTS) {
        last.apply(event.clone(), at);
        timeline.push(at, event, &last);
    }
    let timeline = played_out(timeline);
    if read.others > 0 {
        notes.push(format!(
            "{} Socket.IO request(s) shown; {} other request(s) in the HAR left out",
            read.socketio, read.others
        ));
    }
    Ok(Opened {
        header,
        timeline,
        last,
        users: read.sessions,
        notes,
    })
}

/// The timeline, its end moved on until its last packets have landed and its last refusal
/// shows (a refusal shows once its request has flown to the replica).
fn played_out(mut timeline: Timeline) -> Timeline {
    let landed = timeline.end() + 4.0 * crate::model::flights::LEG_SECS;
    let last_failure = timeline.failures().map(|f| f.at).fold(0.0, f64::max);
    timeline.extend_to(landed.max(last_failure));
    timeline
}

/// Reads the capture at `path`.
pub fn open(path: &Path) -> Result<Opened, CaptureError> {
    let mut reader = capture::open(path)?;
    let header = reader.header.clone();
    let users: Vec<String> = header.sessions.clone();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let start = ViewModel::new(&names, header.sticky, header.transport);
    let mut last = start.clone();
    let mut timeline = Timeline::new(start, 0.0, None);
    let mut seen_users = users.clone();
    let mut notes = Vec::new();
    for line in reader.by_ref() {
        let line = line?;
        if timeline.len() >= MAX_OPEN_EVENTS {
            notes.push(format!(
                "only the first {MAX_OPEN_EVENTS} events of the capture are shown, up to {:.1} s: `stickyscope inspect` reads all of it",
                timeline.end()
            ));
            break;
        }
        match line.happened {
            Happened::End { .. } => timeline.extend_to(line.at_s),
            happened => {
                if let Some(event) = happened.into_event() {
                    if let Event::Wire(wire) = &event {
                        if !seen_users.contains(&wire.user) {
                            seen_users.push(wire.user.clone());
                        }
                    }
                    last.apply(event.clone(), line.at_s);
                    timeline.push(line.at_s, event, &last);
                }
            }
        }
    }
    let timeline = played_out(timeline);
    if let Some(n) = reader.truncated_at {
        notes.push(format!(
            "the capture is cut in line {n} (the recording did not end cleanly): shown up to the last whole line"
        ));
    }
    Ok(Opened {
        header,
        timeline,
        last,
        users: seen_users,
        notes,
    })
}
