//! The window, driven headless with egui_kittest against the embedded stack: the switch,
//! the chat panes and the replica controls do what they say, end to end.

use std::time::{Duration, Instant};

use eframe::egui;
use eframe::egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use stickyscope::embedded::{StackAdapter, StackConfig};
use stickyscope::engine::GatewayConfig;
use stickyscope::session::SessionState;
use stickyscope::ui::settings::Settings;
use stickyscope::ui::StickyscopeApp;
use stickyscope_replica::Heartbeat;

fn harness() -> Harness<'static, StickyscopeApp> {
    let settings = Settings {
        ping_interval_ms: 300,
        ..Settings::default()
    };
    let gateway = GatewayConfig::Embedded(StackConfig {
        replicas: 3,
        listen: "127.0.0.1:0".parse().unwrap(),
        heartbeat: Heartbeat {
            interval: Duration::from_millis(300),
            timeout: Duration::from_millis(600),
        },
        adapter: StackAdapter::Memory,
        health_interval: Duration::from_millis(200),
    });
    Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .build_eframe(move |cc| StickyscopeApp::new(&cc.egui_ctx, settings, gateway, None, false))
}

/// Steps the UI until `condition` holds on the app, or panics after `bound`.
fn step_until(
    harness: &mut Harness<'_, StickyscopeApp>,
    bound: Duration,
    what: &str,
    condition: impl Fn(&StickyscopeApp) -> bool,
) {
    let deadline = Instant::now() + bound;
    loop {
        harness.step();
        if condition(harness.state()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {bound:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    h.step();
    assert!(h.state().model().sticky.values().all(|s| !s));
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
fn poll_answered_with(seq: u64, down: &str) -> stickyscope::wire::WireEvent {
    use stickyscope::wire::{Transport, WireEvent, WireKind};
    WireEvent {
        seq,
        at_ms: 1_000 + seq,
        user: "agent".into(),
        transport: Transport::Polling,
        kind: WireKind::Http {
            request: stickyscope_replica::RequestKind::PollGet,
            method: "GET".into(),
            status: Some(200),
        },
        sid: Some("S".into()),
        engineio: Some(4),
        replica: Some("1".into()),
        replica_source: None,
        unnamed: None,
        replica_addr: None,
        latency_us: Some(3_000_000),
        bytes_up: 0,
        bytes_down: down.len() as u64,
        packets_up: vec![],
        packets_down: stickyscope::protocol::decode_payload(down.as_bytes()),
        raw_up: String::new(),
        raw_down: down.into(),
        failure: None,
        note: None,
    }
}

#[test]
fn an_idle_window_rests_and_news_wakes_it() {
    use stickyscope::events::Event;
    use stickyscope::model::rest::REST_AFTER_SECS;
    use stickyscope::ui::bridge::EngineBridge;

    let (bridge, engine) = EngineBridge::detached("http://127.0.0.1:1", 1024);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .with_step_dt(0.25)
        .build_eframe(move |cc| {
            StickyscopeApp::with_bridge(&cc.egui_ctx, Settings::default(), bridge, true)
        });
    let send = |event: Event| engine.events.try_send(event).expect("room in the stream");
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
            send(Event::Wire(Box::new(poll_answered_with(seq, "2"))));
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
    send(Event::Wire(Box::new(poll_answered_with(seq, "2"))));
    h.step();
    assert_eq!(h.state().model().heartbeats["agent"], counted + 1);
    assert!(
        h.state().model().flights.is_empty(),
        "a resting window does not fly heartbeats"
    );
    assert!(h.state().resting());

    // A chat message is news: it flies and wakes the window.
    seq += 1;
    send(Event::Wire(Box::new(poll_answered_with(
        seq,
        r#"42["chat",{"id":"m1","from":"visitor","text":"hi"}]"#,
    ))));
    h.step();
    assert_eq!(h.state().model().flights.len(), 1, "the message flies");
    assert!(!h.state().resting(), "news wakes it");
    h.step();
    seq += 1;
    send(Event::Wire(Box::new(poll_answered_with(seq, "2"))));
    h.step();
    assert_eq!(
        h.state().model().flights.len(),
        2,
        "awake, heartbeats fly again"
    );
}

#[test]
fn twelve_replicas_fit_and_keep_their_controls_in_a_right_click_menu() {
    use stickyscope::events::{Command, Event, ReplicaAction};
    use stickyscope::topology::{ReplicaNode, Topology};
    use stickyscope::ui::bridge::EngineBridge;

    let (bridge, mut engine) = EngineBridge::detached("http://127.0.0.1:1", 1024);
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
    engine
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
    while let Ok(command) = engine.commands.try_recv() {
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
