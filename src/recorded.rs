//! A capture opened for the window (`stickyscope open FILE`): read a line at a time into a
//! timeline the window plays and scrubs, as the live window would have folded it. Bounded:
//! past [`MAX_OPEN_EVENTS`] the rest of the file is left unread, and said (`inspect` reads
//! any size). A file cut short is read to its last whole line, and said.

use std::path::Path;

use stickyscope_vocab::capture::{CaptureHeader, Happened};
use stickyscope_vocab::events::Event;

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
