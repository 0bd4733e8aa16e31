//! The window, driven headless with egui_kittest against the embedded stack: the switch,
//! the chat panes and the replica controls do what they say, end to end.

mod common;

use std::time::Duration;

use eframe::egui;
use eframe::egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use stickyscope::stack::embedded::EmbeddedConfig;
use stickyscope::stack::GatewayConfig;
use stickyscope::ui::settings::Settings;
use stickyscope::ui::StickyscopeApp;
use stickyscope_vocab::events::SessionState;
use stickyscope_vocab::stack::Adapter;

use common::window::{on_embedded as harness, step_until};

fn connected(app: &StickyscopeApp, user: &str) -> Option<String> {
    match app.model().sessions.get(user) {
        Some(SessionState::Connected { replica, .. }) => replica.clone(),
        _ => None,
    }
}

fn both_connected(h: &mut Harness<'_, StickyscopeApp>) {
    step_until(h, Duration::from_secs(15), "both users connected", |app| {
        connected(app, "agent").is_some() && connected(app, "visitor").is_some()
    });
}

#[test]
fn the_switch_changes_stickiness_and_the_next_requests_routing() {
    let mut h = harness();
    both_connected(&mut h);
    let seen_before = h.state().model().log.total();

    h.get_by_label("Stickiness: ON").click();
    // The switch is a command; the window shows it off when the conductor says so.
    step_until(
        &mut h,
        Duration::from_secs(5),
        "the switch shown off",
        |app| app.model().sticky.values().all(|s| !s),
    );
    step_until(
        &mut h,
        Duration::from_secs(15),
        "a round-robin refusal on the wire",
        |app| {
            app.model()
                .log
                .records()
                .skip_while(|r| r.seq == 0)
                .any(|r| {
                    r.failure
                        .as_ref()
                        .is_some_and(|f| f.reason == "Session ID unknown")
                })
                && app.model().log.total() > seen_before
        },
    );

    h.get_by_label("Stickiness: OFF").click();
    step_until(
        &mut h,
        Duration::from_secs(15),
        "sessions back once sticky",
        |app| connected(app, "agent").is_some() && connected(app, "visitor").is_some(),
    );
}

#[test]
fn a_message_typed_in_one_pane_appears_in_the_other() {
    let mut h = harness();
    both_connected(&mut h);
    let inputs = h.query_all_by_role(Role::TextInput).collect::<Vec<_>>();
    assert!(inputs.len() >= 2, "two chat inputs");
    inputs[0].focus();
    h.step();
    h.get_all_by_role(Role::TextInput)
        .next()
        .unwrap()
        .type_text("hello from the agent pane");
    h.step();
    h.key_press(egui::Key::Enter);
    step_until(
        &mut h,
        Duration::from_secs(15),
        "the visitor's pane shows it",
        |app| {
            app.model().chats["visitor"].entries.iter().any(|e| {
            matches!(e, stickyscope::model::ChatEntry::Peer { text, .. } if text == "hello from the agent pane")
        })
        },
    );
}

#[test]
fn killing_a_replica_shows_it_down_and_the_session_moving() {
    let mut h = harness();
    step_until(
        &mut h,
        Duration::from_secs(15),
        "agent connected and topology read",
        |app| connected(app, "agent").is_some() && app.model().topology.replicas.len() == 3,
    );
    let holder = connected(h.state(), "agent").unwrap();
    let index = h
        .state()
        .model()
        .topology
        .replicas
        .iter()
        .position(|r| r.id.as_deref() == Some(holder.as_str()))
        .unwrap();
    let kills: Vec<_> = h.query_all_by_label("kill").collect();
    assert_eq!(kills.len(), 3);
    kills[index].click();
    step_until(
        &mut h,
        Duration::from_secs(15),
        "replica DOWN and the agent elsewhere",
        |app| {
            let down = app
                .model()
                .topology
                .replicas
                .iter()
                .any(|r| r.id.as_deref() == Some(holder.as_str()) && !r.up);
            let moved = connected(app, "agent").is_some_and(|r| r != holder);
            down && moved
        },
    );
}

/// A wire record: a poll answered with `down` on replica 1.
fn poll_answered_with(seq: u64, down: &str) -> stickyscope_vocab::record::WireRecord {
    use stickyscope_vocab::record::{Transport, WireKind, WireRecord};
    WireRecord {
        seq,
        sid: Some("S".into()),
        engineio: Some(4),
        replica: Some("1".into()),
        latency_us: Some(3_000_000),
        bytes_down: down.len() as u64,
        packets_down: stickyscope_vocab::protocol::decode_payload(down.as_bytes()),
        raw_down: down.into(),
        ..WireRecord::new(
            "agent",
            1_000 + seq,
            Transport::Polling,
            WireKind::Http {
                request: stickyscope_contract::RequestKind::PollGet,
                method: "GET".into(),
                status: Some(200),
            },
        )
    }
}

#[test]
fn an_idle_window_rests_and_news_wakes_it() {
    use stickyscope::model::rest::REST_AFTER_SECS;
    use stickyscope::ui::bridge::ConductorBridge;
    use stickyscope_vocab::events::Event;

    let (bridge, conductor) = ConductorBridge::detached("http://127.0.0.1:1", 1024);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .with_step_dt(0.25)
        .build_eframe(move |cc| {
            StickyscopeApp::with_bridge(&cc.egui_ctx, Settings::default(), bridge, true)
        });
    let send = |event: Event| {
        conductor
            .events
            .try_send(event)
            .expect("room in the stream")
    };
    send(Event::Session {
        user: "agent".into(),
        state: SessionState::Connected {
            replica: Some("1".into()),
            sid: "S".into(),
            websocket: false,
        },
    });
    h.step();
    assert!(!h.state().resting(), "news just came");

    // Heartbeats every 3 s (12 steps of 0.25 s) do not keep it awake.
    let mut seq = 0;
    let steps = ((REST_AFTER_SECS + 1.0) / 0.25) as usize;
    for i in 0..steps {
        if i % 12 == 0 {
            seq += 1;
            send(Event::Wire(std::sync::Arc::new(poll_answered_with(
                seq, "2",
            ))));
        }
        h.step();
    }
    assert!(
        h.state().resting(),
        "only heartbeats for {REST_AFTER_SECS} s: it rests"
    );
    for _ in 0..8 {
        h.step();
    }
    assert!(
        h.state().model().flights.is_empty(),
        "earlier flights have landed"
    );

    // A heartbeat while resting is counted, not flown.
    let counted = h.state().model().heartbeats["agent"];
    seq += 1;
    send(Event::Wire(std::sync::Arc::new(poll_answered_with(
        seq, "2",
    ))));
    h.step();
    assert_eq!(h.state().model().heartbeats["agent"], counted + 1);
    assert!(
        h.state().model().flights.is_empty(),
        "a resting window does not fly heartbeats"
    );
    assert!(h.state().resting());

    // A chat message is news: it flies and wakes the window.
    seq += 1;
    send(Event::Wire(std::sync::Arc::new(poll_answered_with(
        seq,
        r#"42["chat",{"id":"m1","from":"visitor","text":"hi"}]"#,
    ))));
    h.step();
    assert_eq!(h.state().model().flights.len(), 1, "the message flies");
    assert!(!h.state().resting(), "news wakes it");
    h.step();
    seq += 1;
    send(Event::Wire(std::sync::Arc::new(poll_answered_with(
        seq, "2",
    ))));
    h.step();
    assert_eq!(
        h.state().model().flights.len(),
        2,
        "awake, heartbeats fly again"
    );
}

#[test]
fn twelve_replicas_fit_and_keep_their_controls_in_a_right_click_menu() {
    use stickyscope::ui::bridge::ConductorBridge;
    use stickyscope_vocab::events::{Command, Event, ReplicaAction};
    use stickyscope_vocab::topology::{ReplicaNode, Topology};

    let (bridge, mut conductor) = ConductorBridge::detached("http://127.0.0.1:1", 1024);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .build_eframe(move |cc| {
            StickyscopeApp::with_bridge(&cc.egui_ctx, Settings::default(), bridge, true)
        });
    let replicas = (1..=12)
        .map(|i| ReplicaNode {
            listed: true,
            id: Some(i.to_string()),
            url: Some(format!("http://127.0.0.1:{}", 5000 + i)),
            up: true,
        })
        .collect();
    conductor
        .events
        .try_send(Event::Topology(Topology {
            hops: vec!["balancer".into()],
            replicas,
            sticky_cookie: Some("sticky_replica".into()),
        }))
        .expect("room in the stream");
    h.run_steps(4);

    // No room for a row of buttons under each of 12 nodes: none is drawn (they would
    // overlap the next node), and each node has a menu instead.
    assert_eq!(h.query_all_by_label("kill").count(), 0);
    h.get_by_label("replica 7 controls (right-click)")
        .click_secondary();
    h.run_steps(2);
    h.get_by_label("kill").click();
    h.run_steps(2);
    let mut asked = Vec::new();
    while let Ok(command) = conductor.commands.try_recv() {
        if let Command::Replica { id, action } = command {
            asked.push((id, action));
        }
    }
    assert_eq!(asked, [("7".to_owned(), ReplicaAction::Kill)]);
}

#[test]
fn a_scenario_shows_its_caption_and_next_runs_the_next_steps_actions() {
    let mut h = harness();
    both_connected(&mut h);
    let shipped = stickyscope::scenario::shipped::find("3-sticky-cookie").unwrap();
    h.state_mut().start_scenario(shipped.name, shipped.source);
    h.step();
    assert_eq!(
        h.state().scenario_step().map(|(_, n, _)| n),
        Some(0),
        "at the first step"
    );
    h.get_by_label("Without the cookie: Session ID unknown");
    // The scenario starts round-robin: the stack is put into that state.
    step_until(&mut h, Duration::from_secs(5), "stickiness off", |app| {
        app.model().sticky.values().all(|on| !on)
    });
    h.key_press(egui::Key::ArrowRight);
    h.step();
    assert_eq!(
        h.state()
            .scenario_step()
            .map(|(_, n, title)| (n, title.to_owned())),
        Some((1, "Stickiness on".to_owned()))
    );
    h.get_by_label("Stickiness on");
    // Its action ran: stickiness on, and both users connect.
    step_until(&mut h, Duration::from_secs(5), "stickiness on", |app| {
        app.model().sticky.values().all(|on| *on)
    });
    both_connected(&mut h);
    // Back (PageUp, as a clicker sends) puts the first step's state back.
    h.key_press(egui::Key::PageUp);
    h.step();
    assert_eq!(h.state().scenario_step().map(|(_, n, _)| n), Some(0));
    step_until(
        &mut h,
        Duration::from_secs(5),
        "stickiness off again",
        |app| app.model().sticky.values().all(|on| !on),
    );
}

/// Picked in a running window (sticky, connected, another heartbeat), a scenario first
/// puts the stack into the state it starts from and starts the sessions afresh, so its
/// first step is judged on the restored stack: round-robin, nobody connects; one replica
/// (the others stopped), nothing refused.
#[test]
fn a_scenario_picked_in_a_running_window_is_judged_on_the_restored_stack() {
    for name in ["2-round-robin", "1-one-replica"] {
        let mut h = harness();
        both_connected(&mut h);
        let shipped = stickyscope::scenario::shipped::find(name).unwrap();
        h.state_mut().start_scenario(shipped.name, shipped.source);
        step_until(&mut h, Duration::from_secs(30), "the step judged", |app| {
            app.scenario_outcomes().is_some_and(|(done, _)| done)
        });
        let (_, outcomes) = h.state().scenario_outcomes().unwrap();
        for o in &outcomes {
            assert_eq!(
                o.status,
                stickyscope::scenario::Status::Passed,
                "{name}: {} — {}",
                o.expectation,
                o.observed
            );
        }
    }
}

/// A record of the busiest picture: `user` on `replica` (none: refused at the gateway),
/// `up` sent and `down` answered with `status`, refused with `refusal`.
fn exchange(
    seq: u64,
    user: &str,
    replica: Option<&str>,
    (request, up, down, status): (stickyscope_contract::RequestKind, &str, &str, u16),
    refusal: Option<&str>,
) -> stickyscope_vocab::record::WireRecord {
    use stickyscope_vocab::record::{Failure, FailureKind, WireKind};
    let mut w = poll_answered_with(seq, down);
    w.user = user.into();
    w.replica = replica.map(str::to_owned);
    w.kind = WireKind::Http {
        request,
        method: if request == stickyscope_contract::RequestKind::PollPost {
            "POST".into()
        } else {
            "GET".into()
        },
        status: Some(status),
    };
    w.packets_up = stickyscope_vocab::protocol::decode_payload(up.as_bytes());
    w.raw_up = up.into();
    w.failure = refusal.map(|reason| Failure {
        kind: if replica.is_some() {
            FailureKind::Refused
        } else {
            FailureKind::NoReplica
        },
        reason: reason.into(),
    });
    w
}

/// Whether any two of `rects` intersect; names them if so.
fn first_overlap(rects: &[(egui::Rect, String)]) -> Option<String> {
    for (i, (a, what_a)) in rects.iter().enumerate() {
        for (b, what_b) in &rects[i + 1..] {
            if a.intersects(*b) {
                return Some(format!("{what_a} at {a:?} and {what_b} at {b:?}"));
            }
        }
    }
    None
}

#[test]
fn nothing_overlaps_at_the_busiest() {
    use stickyscope::ui::bridge::ConductorBridge;
    use stickyscope::ui::placement::Kind;
    use stickyscope_contract::RequestKind::*;
    use stickyscope_vocab::events::Event;
    use stickyscope_vocab::topology::{ReplicaNode, Topology};

    for (width, height) in [(1280.0, 720.0), (1920.0, 1080.0)] {
        for presentation in [true, false] {
            let (bridge, conductor) = ConductorBridge::detached("http://127.0.0.1:1", 4096);
            let settings = Settings {
                presentation,
                sticky: false,
                ..Settings::default()
            };
            let mut h = Harness::builder()
                .with_size(egui::vec2(width, height))
                .with_step_dt(1.0 / 30.0)
                .build_eframe(move |cc| {
                    StickyscopeApp::with_bridge(&cc.egui_ctx, settings, bridge, true)
                });
            let send = |event: Event| {
                conductor
                    .events
                    .try_send(event)
                    .expect("room in the stream")
            };
            send(Event::Topology(Topology {
                hops: vec!["nginx".into(), "traefik".into()],
                replicas: (1..=12)
                    .map(|i| ReplicaNode {
                        listed: true,
                        id: Some(i.to_string()),
                        url: Some(format!("http://127.0.0.1:{}", 5000 + i)),
                        up: i != 12,
                    })
                    .collect(),
                sticky_cookie: Some("sticky_replica".into()),
            }));
            for user in ["agent", "visitor"] {
                send(Event::Session {
                    user: user.into(),
                    state: SessionState::Connected {
                        replica: Some("3".into()),
                        sid: "S".into(),
                        websocket: false,
                    },
                });
            }
            // Round robin: every request to the next replica; heartbeats, chat, handshakes
            // and the refusals they meet, several at once.
            let kinds = [
                (PollGet, "", "2", 200),
                (PollPost, "3", "ok", 200),
                (PollPost, r#"42["chat",{"id":"m1","text":"hi"}]"#, "ok", 200),
                (HandshakePolling, "", r#"0{"sid":"S"}"#, 200),
                (
                    PollGet,
                    "",
                    r#"{"code":1,"message":"Session ID unknown"}"#,
                    400,
                ),
            ];
            let mut seq = 0;
            let (mut labels_seen, mut marks_seen, mut most_labels) = (0, 0, 0);
            for frame in 0..90 {
                for _ in 0..(if frame % 3 == 0 { 3 } else { 0 }) {
                    seq += 1;
                    let user = if seq % 2 == 0 { "agent" } else { "visitor" };
                    let kind = kinds[(seq as usize) % kinds.len()];
                    let (replica, refusal) = match (seq % 7, kind.3) {
                        (0, _) => (None, Some("502 no replica is up")),
                        (_, 400) => (
                            Some(((seq % 11) + 1).to_string()),
                            Some("Session ID unknown"),
                        ),
                        _ => (Some(((seq % 11) + 1).to_string()), None),
                    };
                    send(Event::Wire(std::sync::Arc::new(exchange(
                        seq,
                        user,
                        replica.as_deref(),
                        kind,
                        refusal,
                    ))));
                }
                h.step();
                let drawn = h.state().topology_drawn().expect("the topology is drawn");
                let mut labels_and_marks = Vec::new();
                let mut label_texts = drawn.labels.iter();
                for (rect, kind) in &drawn.placed {
                    match kind {
                        Kind::Label => {
                            let text = label_texts.next().cloned().unwrap_or_default();
                            assert!(
                                drawn.area.contains_rect(*rect),
                                "label {text:?} outside the view at {width}x{height}"
                            );
                            for (other, other_kind) in &drawn.placed {
                                if !matches!(other_kind, Kind::Label | Kind::Mark)
                                    && other.intersects(*rect)
                                {
                                    panic!("{width}x{height} presentation {presentation}: label {text:?} at {rect:?} over a {other_kind:?} at {other:?}");
                                }
                            }
                            labels_and_marks.push((*rect, format!("label {text:?}")));
                            labels_seen += 1;
                        }
                        Kind::Mark => {
                            assert!(drawn.area.contains_rect(*rect), "mark outside the view");
                            for (other, other_kind) in &drawn.placed {
                                if matches!(other_kind, Kind::Node | Kind::Text | Kind::Dot)
                                    && other.intersects(*rect)
                                {
                                    panic!("{width}x{height} presentation {presentation}: mark at {rect:?} over a {other_kind:?} at {other:?}");
                                }
                            }
                            labels_and_marks.push((*rect, "mark".to_owned()));
                            marks_seen += 1;
                        }
                        _ => {}
                    }
                }
                let nodes: Vec<(egui::Rect, String)> = drawn
                    .placed
                    .iter()
                    .filter(|(_, kind)| *kind == Kind::Node)
                    .map(|(rect, _)| (*rect, "node".to_owned()))
                    .collect();
                if let Some(overlap) = first_overlap(&nodes) {
                    panic!("{width}x{height} presentation {presentation}: nodes touch: {overlap}");
                }
                most_labels = most_labels.max(drawn.labels.len());
                if let Some(overlap) = first_overlap(&labels_and_marks) {
                    panic!(
                        "{width}x{height} presentation {presentation}, frame {frame}: {overlap}"
                    );
                }
            }
            assert!(
                most_labels >= 6,
                "{width}x{height}: labels are drawn, not all dropped (at most {most_labels})"
            );
            assert!(
                labels_seen > 100 && marks_seen > 20,
                "{labels_seen} labels, {marks_seen} marks"
            );
        }
    }
}

#[test]
fn presentation_mode_gives_the_topology_the_stage_and_l_brings_the_details_back() {
    use stickyscope::ui::bridge::ConductorBridge;

    let (bridge, _conductor) = ConductorBridge::detached("http://127.0.0.1:1", 1024);
    let settings = Settings {
        presentation: true,
        ..Settings::default()
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 720.0))
        .build_eframe(move |cc| StickyscopeApp::with_bridge(&cc.egui_ctx, settings, bridge, true));
    h.run_steps(3);
    let topology_height =
        |h: &Harness<'_, StickyscopeApp>| h.state().topology_drawn().expect("drawn").area.height();
    let stage = topology_height(&h);
    assert_eq!(
        h.query_all_by_label("packet log").count(),
        0,
        "the log is folded away"
    );
    assert_eq!(
        h.query_all_by_label("sticky").count(),
        0,
        "the panes keep the conversation"
    );
    assert!(h.query_by_label("plots and packet log (L)").is_some());

    h.key_press(egui::Key::L);
    h.run_steps(3);
    assert!(
        h.query_by_label("packet log").is_some(),
        "L brings the plots and log back"
    );
    let beside_details = topology_height(&h);
    assert!(
        stage > beside_details + 150.0,
        "folded, the topology has the room: {stage} against {beside_details}"
    );
    h.key_press(egui::Key::L);
    h.run_steps(3);
    assert_eq!(
        h.query_all_by_label("packet log").count(),
        0,
        "and L folds them again"
    );
}

/// A window opened on a scenario (`stickyscope --scenario N`) runs exactly the stack its
/// `[stack]` says: the scenario starts when the stack has said which replicas it runs, and
/// adds none to a stack that already has them.
#[test]
fn a_window_opened_on_a_scenario_runs_exactly_its_stack() {
    for name in ["1-one-replica", "3-sticky-cookie"] {
        let shipped = stickyscope::scenario::shipped::find(name).unwrap();
        let scenario = stickyscope::scenario::parse(shipped.name, shipped.source).unwrap();
        let replicas = scenario.stack.replicas;
        let gateway = GatewayConfig::Embedded(EmbeddedConfig {
            replicas,
            listen: "127.0.0.1:0".parse().unwrap(),
            heartbeat: scenario.stack.heartbeat,
            adapter: Adapter::Memory,
            redis_url: None,
            health_interval: Duration::from_millis(200),
            ..Default::default()
        });
        let mut h = Harness::builder()
            .with_size(egui::vec2(1440.0, 900.0))
            .build_eframe(move |cc| {
                let mut app =
                    StickyscopeApp::new(&cc.egui_ctx, Settings::default(), gateway, None, false);
                app.start_scenario(shipped.name, shipped.source);
                app
            });
        step_until(
            &mut h,
            Duration::from_secs(30),
            "the first step judged",
            |app| app.scenario_outcomes().is_some_and(|(done, _)| done),
        );
        let listed: Vec<Option<String>> = h
            .state()
            .model()
            .topology
            .replicas
            .iter()
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(listed.len(), replicas, "{name}: {listed:?}");
    }
}

/// A stack that cannot start (a gateway that is not a URL) is named in the banner, and each
/// user's pane says its session was not started and why, not `connecting…` for ever.
#[test]
fn a_stack_that_cannot_start_leaves_no_pane_connecting() {
    let gateway = GatewayConfig::external("not a url", None);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .build_eframe(move |cc| {
            StickyscopeApp::new(&cc.egui_ctx, Settings::default(), gateway, None, false)
        });
    step_until(
        &mut h,
        Duration::from_secs(10),
        "both panes failed",
        |app| {
            ["agent", "visitor"].iter().all(|user| {
            matches!(
                app.model().sessions.get(*user),
                Some(SessionState::Failed { reason }) if reason.contains("the stack could not start")
            )
        })
        },
    );
    h.step();
    assert!(h.query_by_label_contains("connecting…").is_none());
}

#[test]
fn the_doctor_tab_runs_the_checklist_on_the_windows_stack_and_shows_each_check() {
    let mut h = harness();
    both_connected(&mut h);
    h.get_by_label("doctor").click();
    // The panel grows to fit the checklist: let it settle before clicking in it.
    for _ in 0..3 {
        h.step();
    }
    h.get_by_label("run the checklist").click();
    step_until(
        &mut h,
        Duration::from_secs(60),
        "the doctor's report",
        |app| {
            let doctor = &app.model().doctor;
            doctor.report.is_some() || doctor.failed.is_some()
        },
    );
    assert_eq!(h.state().model().doctor.failed, None);
    h.step();
    let report = h.state().model().doctor.report.clone().expect("a report");
    let outcomes: Vec<_> = report.checks.iter().map(|c| c.outcome.word()).collect();
    // The embedded stack allows no page origin, and none was given: CORS is skipped.
    assert_eq!(
        outcomes,
        ["PASS", "PASS", "PASS", "PASS", "PASS", "SKIPPED", "PASS", "PASS", "PASS", "PASS"],
        "{:#?}",
        report.checks
    );
    assert!(h
        .query_by_label_contains("9 passed, 0 warned, 0 failed, 1 skipped")
        .is_some());
    assert!(h
        .query_by_label_contains("2. a polling session stays on one replica")
        .is_some());
    // The failover check restarted the replica it killed, and both users are connected.
    both_connected(&mut h);
}
