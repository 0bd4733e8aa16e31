//! `stickyscope inspect FILE`: probe's report and verdict from a capture, without a stack —
//! for CI artifacts and tickets. The capture is read as a stream (never whole), folded
//! exactly as the probe folds what it sees live; a capture cut short is read to its last
//! whole line, and said.

use std::collections::BTreeSet;
use std::path::Path;

use stickyscope::capture::{self, CaptureError};
use stickyscope::probe::{table, Tally};
use stickyscope_vocab::capture::Happened;
use stickyscope_vocab::events::Event;

use super::args::InspectArgs;

/// Reads the capture; returns the exit code (0 held, 1 broke, 2 unreadable or unreachable).
pub fn run_inspect(args: &InspectArgs) -> anyhow::Result<i32> {
    match inspect(&args.file) {
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
            Happened::Wire(wire) => tally.fold(line.at_s, &Event::Wire(wire)),
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
