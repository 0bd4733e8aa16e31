//! `stickyscope inspect FILE`: probe's report and verdict from a capture or a browser's HAR,
//! without a stack — for CI artifacts and tickets. The capture is read as a stream (never whole), folded
//! exactly as the probe folds what it sees live; a capture cut short is read to its last
//! whole line, and said.

use std::collections::BTreeSet;
use std::path::Path;

use stickyscope::capture::{self, CaptureError};
use stickyscope::probe::{table, Tally};
use stickyscope_contract::request::RequestKind;
use stickyscope_vocab::capture::Happened;
use stickyscope_vocab::events::{Event, TransportChoice};

use super::args::InspectArgs;

/// Reads the capture (or a browser's HAR); returns the exit code (0 held, 1 broke, 2
/// unreadable or unreachable).
pub fn run_inspect(args: &InspectArgs) -> anyhow::Result<i32> {
    let read = if stickyscope::har::is_har(&args.file) {
        inspect_har(&args.file, &args.naming.identify()).map_err(|e| e.to_string())
    } else {
        inspect(&args.file).map_err(|e| e.to_string())
    };
    match read {
        Ok((report, note)) => {
            if let Some(note) = note {
                eprintln!("inspect: {note}");
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", table(&report));
            }
            Ok(report.exit_code)
        }
        Err(e) => {
            eprintln!("inspect: {}: {e}", args.file.display());
            Ok(2)
        }
    }
}

/// The report of a browser's HAR: its Engine.IO sessions, rebuilt from their sids, folded
/// as the probe folds its own; and what to say of it (requests that were not Socket.IO).
fn inspect_har(
    path: &Path,
    identify: &stickyscope_vocab::naming::Identify,
) -> Result<(stickyscope::probe::Report, Option<String>), stickyscope::har::HarError> {
    let read = stickyscope::har::read(path, identify)?;
    let mut tally = Tally::new(&read.sessions);
    let mut last = 0.0_f64;
    let mut transport = TransportChoice::Polling;
    for (at, event) in &read.lines {
        last = last.max(*at);
        if let Event::Wire(wire) = event {
            match wire.request_kind() {
                Some(RequestKind::Upgrade) => transport = TransportChoice::Upgrade,
                Some(RequestKind::HandshakeWebsocket) => transport = TransportChoice::Websocket,
                _ => {}
            }
        }
        tally.fold(*at, event);
    }
    let mut report = tally.finish((&read.gateway, transport, true, last));
    report.sticky = None;
    report.from_har = Some(if read.creator.is_empty() {
        "a browser".to_owned()
    } else {
        read.creator.clone()
    });
    let note = (read.others > 0).then(|| {
        format!(
            "{} Socket.IO request(s) read; {} other request(s) in the HAR left out",
            read.socketio, read.others
        )
    });
    Ok((report, note))
}

/// The report, and what to say of the file (cut short).
fn inspect(path: &Path) -> Result<(stickyscope::probe::Report, Option<String>), CaptureError> {
    let mut reader = capture::open(path)?;
    // A capture of format 0 (bare wire records) names no sessions: its users are them.
    let names: Vec<String> = if reader.version() == 0 {
        let mut users = BTreeSet::new();
        for line in capture::open(path)? {
            if let Happened::Wire(wire) = line?.happened {
                users.insert(wire.user.clone());
            }
        }
        users.into_iter().collect()
    } else {
        reader.header.sessions.clone()
    };
    let header = reader.header.clone();
    let mut tally = Tally::new(&names);
    let mut last = 0.0_f64;
    for line in reader.by_ref() {
        let line = line?;
        last = last.max(line.at_s);
        match line.happened {
            Happened::Wire(wire) => tally.fold(line.at_s, &Event::Wire(std::sync::Arc::from(wire))),
            Happened::Session { user, state } => {
                tally.fold(line.at_s, &Event::Session { user, state })
            }
            // The probe's report is what crossed the wire and what became of the sessions.
            _ => {}
        }
    }
    let note = reader.truncated_at.map(|n| {
        format!("the capture is cut in line {n} (the recording did not end cleanly): read up to the last whole line")
    });
    let report = tally.finish((&header.gateway, header.transport, header.sticky, last));
    Ok((report, note))
}
