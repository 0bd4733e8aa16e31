//! The timeline: a capture opened in the window (`stickyscope open`) plays, stops at its
//! end, goes to any moment and jumps between failures, showing each moment's own model and
//! nothing that could change a stack; a live window steps back to a failure it just missed,
//! keeps following the stack behind it, and goes back to live.

mod common;

use common::window::{on_embedded, on_embedded_then, step_until};

use std::time::Duration;

use eframe::egui;
use eframe::egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use stickyscope::model::review::TimelineAction;
use stickyscope::ui::placement::Kind;
use stickyscope::ui::settings::Settings;
use stickyscope::ui::StickyscopeApp;

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "stickyscope-timeline-test-{}-{name}",
        std::process::id()
    ))
}

/// `stickyscope open ARGS` (for what it refuses before any window opens).
fn open_cli(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .arg("open")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_recording_plays_stops_at_its_end_and_jumps_between_its_failures() {
    let path = temp("off.jsonl");
    let file = path.display().to_string();
    // One session, round-robin: every poll after the handshake is refused.
    let (code, json, stderr) = common::probe_json(
        "3s",
        &["--sessions", "1", "--stickiness", "off", "--capture", &file],
    );
    assert_eq!(code, 1, "{json:#}\n{stderr}");
    let opened = stickyscope::recorded::open(&path).expect("the capture opens");
    assert!(opened.notes.is_empty(), "{:?}", opened.notes);
    let first_failure = opened.timeline.failures().next().expect("a failure").at;
    let end = opened.timeline.end();
    assert!(end >= 2.5, "the recording ran 3 s: {end}");
    let records_by = |at: f64| {
        opened
            .timeline
            .moment(at)
            .model
            .log
            .records()
            .filter(|r| r.failure.is_some())
            .count()
    };
    assert_eq!(records_by(0.0), 0);
    assert!(records_by(first_failure) >= 1);

    let mut h = Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .build_eframe(move |cc| {
            let settings = Settings {
                sticky: opened.header.sticky,
                ..Settings::default()
            };
            StickyscopeApp::recorded(&cc.egui_ctx, settings, opened, &file, None)
        });
    h.step();
    // It plays from its start; the switch is as it was, and nothing can be sent.
    assert!(h.state().looking_back());
    h.get_by_label("Stickiness: OFF");
    assert_eq!(
        h.get_all_by_label("a recording: nothing can be sent")
            .count(),
        1,
        "one pane: the probe's one session"
    );
    let started = h.state().shown_at();
    step_until(
        &mut h,
        Duration::from_secs(5),
        "the recording plays",
        |app| app.shown_at() > started + 0.2,
    );

    // The next failure: the first refusal, paused where it shows.
    h.state_mut().pause_at(0.0);
    h.get_by_label("failure »").click();
    h.step();
    let at = h.state().shown_at();
    assert!((at - first_failure).abs() < 1e-9, "{at} vs {first_failure}");
    // The moment its refusal shows: the log holds it, the replica's mark is drawn.
    assert!(h.state().shown().log.records().any(|r| r
        .failure
        .as_ref()
        .is_some_and(|f| f.reason == "Session ID unknown")));
    h.step();
    assert_eq!(h.state().shown_at(), at, "paused at the failure");
    let drawn = h.state().topology_drawn().expect("drawn");
    assert!(
        drawn
            .placed
            .iter()
            .any(|(_, kind)| matches!(kind, Kind::Mark)),
        "{:?}",
        drawn.placed
    );

    // Back to the start: nothing had failed yet.
    h.get_by_label("« failure").click();
    h.step();
    assert!(h.state().shown_at() <= at);
    h.state_mut().timeline_action(TimelineAction::Seek(0.0));
    h.step();
    assert!(h.state().shown().log.records().all(|r| r.failure.is_none()));

    // Played to its end, it stops there, with everything the file holds.
    h.state_mut()
        .timeline_action(TimelineAction::Seek(end - 0.3));
    h.get_by_label("play").click();
    step_until(
        &mut h,
        Duration::from_secs(5),
        "the end of the recording",
        |app| app.shown_at() >= end,
    );
    h.step();
    assert!(
        !h.state().looking_back() || h.get_all_by_label("play").count() == 1,
        "stopped at the end"
    );
    assert_eq!(
        h.state().shown().log.total(),
        h.state().model().log.total(),
        "the end is the last state"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn open_refuses_in_words_a_missing_file_and_a_first_failure_that_never_was() {
    let (code, stderr) = open_cli(&["/nonexistent/stickyscope.jsonl"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("cannot open /nonexistent/stickyscope.jsonl"),
        "{stderr}"
    );
    // A sticky probe: nothing fails.
    let path = temp("fine.jsonl");
    let file = path.display().to_string();
    let (code, json, _) = common::probe_json("1s", &["--sessions", "1", "--capture", &file]);
    assert_eq!(code, 0, "{json:#}");
    let (code, stderr) = open_cli(&[&file, "--first-failure"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("nothing failed in this capture"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_live_window_steps_back_to_the_failure_it_missed_and_returns_to_live() {
    let mut h = on_embedded();
    step_until(&mut h, Duration::from_secs(15), "sessions", |app| {
        app.model().log.total() > 4
    });
    h.get_by_label("Stickiness: ON").click();
    step_until(&mut h, Duration::from_secs(15), "a refusal", |app| {
        app.model().log.records().any(|r| r.failure.is_some())
    });
    h.get_by_label("Stickiness: OFF").click();
    step_until(&mut h, Duration::from_secs(5), "sticky again", |app| {
        app.model().sticky.values().all(|s| *s)
    });
    assert!(!h.state().looking_back());
    h.get_by_label("LIVE");

    // Back to a refusal while stickiness was off: the switch shows it as it was then, and
    // cannot be clicked. (A request sent before the switch went back on can be refused
    // after it did: that later failure comes first, going back, and shows stickiness on,
    // as it was when the refusal came.)
    for _ in 0..10 {
        h.get_by_label("« failure").click();
        h.step();
        h.step();
        if h.state().shown().sticky.values().any(|s| !s) {
            break;
        }
    }
    assert!(h.state().looking_back());
    let at = h.state().shown_at();
    assert!(h.state().shown().sticky.values().any(|s| !s));
    assert!(h
        .state()
        .shown()
        .log
        .records()
        .last()
        .is_some_and(|r| r.failure.is_some()));
    assert!(h
        .get_by_label("Stickiness: OFF")
        .accesskit_node()
        .is_disabled());
    assert_eq!(
        h.get_all_by_label("looking back: back to live to send")
            .count(),
        2,
        "both panes say why nothing can be sent"
    );
    // The stack goes on behind: the live model grows, the moment shown does not move.
    let (live, shown) = (h.state().model().log.total(), h.state().shown().log.total());
    step_until(
        &mut h,
        Duration::from_secs(10),
        "the stack going on",
        |app| app.model().log.total() > live + 2,
    );
    assert_eq!(h.state().shown().log.total(), shown);
    assert_eq!(h.state().shown_at(), at);

    h.get_by_label("back to live").click();
    h.step();
    assert!(!h.state().looking_back());
    assert!(h.state().shown().sticky.values().all(|s| *s));
    assert_eq!(h.state().shown().log.total(), h.state().model().log.total());
}

#[test]
fn what_a_live_window_recorded_and_exported_opens_as_it_was_shown() {
    let capture = temp("window.jsonl");
    let export = temp("export.jsonl");
    let path = capture.clone();
    let mut h = on_embedded_then(move |app| app.capture_to(path, 1_000_000_000));
    let connected = |app: &StickyscopeApp, user: &str| {
        matches!(
            app.model().sessions.get(user),
            Some(stickyscope_vocab::events::SessionState::Connected { .. })
        )
    };
    step_until(&mut h, Duration::from_secs(15), "both users", |app| {
        connected(app, "agent") && connected(app, "visitor")
    });
    // A message across: the capture holds the chat too.
    h.get_all_by_role(Role::TextInput).next().unwrap().focus();
    h.step();
    h.get_all_by_role(Role::TextInput)
        .next()
        .unwrap()
        .type_text("hello from the past");
    h.step();
    h.key_press(egui::Key::Enter);
    step_until(
        &mut h,
        Duration::from_secs(10),
        "the message delivered",
        |app| {
            app.model()
                .chats
                .get("visitor")
                .is_some_and(|c| c.entries.len() == 1)
        },
    );
    h.state_mut().export_to(export.clone());
    h.state_mut().end_capture();
    let live = h.state().model().clone();
    drop(h);

    // Beside the export, the same as a HAR: every HTTP exchange an entry, on its replica.
    let har = export.with_extension("har");
    let read = stickyscope::har::read(&har, &Default::default()).expect("the HAR reads");
    let exchanges = |records: &mut dyn Iterator<Item = &stickyscope_vocab::record::WireRecord>| {
        let mut seen: Vec<(Option<String>, String)> = records
            .filter(|r| r.request_kind().is_some())
            .map(|r| (r.replica.clone(), format!("{:?}", r.kind)))
            .collect();
        seen.sort();
        seen
    };
    let from_har = exchanges(&mut read.lines.iter().filter_map(|(_, e)| match e {
        stickyscope_vocab::events::Event::Wire(w) => Some(&**w),
        _ => None,
    }));
    assert_eq!(from_har, exchanges(&mut live.log.records()));
    let _ = std::fs::remove_file(&har);

    for (file, source) in [(&capture, "window"), (&export, "window export")] {
        let opened = stickyscope::recorded::open(file).expect("the capture opens");
        assert_eq!(opened.header.source, source);
        assert_eq!(opened.users, ["agent", "visitor"]);
        let end = opened.timeline.moment(opened.timeline.end()).model;
        assert_eq!(end.log.total(), live.log.total(), "{source}: every record");
        assert_eq!(end.sessions, live.sessions, "{source}");
        let said = |m: &stickyscope::model::ViewModel, user: &str| {
            m.chats[user]
                .entries
                .iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(said(&end, "visitor").len(), 1, "{source}: shown once");
        assert!(said(&end, "visitor")[0].contains("hello from the past"));
        assert_eq!(said(&end, "agent"), said(&live, "agent"), "{source}");
        let _ = std::fs::remove_file(file);
    }
}
