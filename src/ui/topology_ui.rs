//! The topology view: users → gateway hops → replicas, with every wire record travelling
//! its real path to the replica that handled it, and refusals marked where they happened.
//! Labels and marks go where [`placement`] finds room, so none is printed over another, a
//! node or an edge's end; what was drawn where is handed back ([`Drawn`]). Where the nodes go
//! and how big things are is [`super::topology_scene`]'s.

use eframe::egui;
use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, StrokeKind, Ui, Vec2};

use super::placement::{self, Kind, Packet, Placer};
use super::settings::Settings;
use super::theme::{replica_color, FAILURE, OK, WAITING};
use super::topology_scene::Scene;
use crate::model::ViewModel;
use stickyscope_vocab::events::ReplicaAction;
use stickyscope_vocab::events::SessionState;
use stickyscope_vocab::record::Direction;
use stickyscope_vocab::topology::replica_name;

/// Most users named in the heartbeat line; the rest are summed up.
const HEARTBEAT_USERS_NAMED: usize = 3;
/// Most packets in the air that are labelled; beyond this they are drawn as dots only.
const LABELLED_FLIGHTS: usize = 24;
/// Said (after the count) when labels are hidden.
const HIDDEN_LABELS_NOTE: &str =
    "packets in the air: labels hidden above 24 (pause or slow down to read them)";

/// What one frame of the topology drew, and what the user clicked.
#[derive(Debug, Clone)]
pub struct Drawn {
    /// The area it drew in.
    pub area: Rect,
    /// Every rectangle taken, in order: nodes, text, marks, edges' ends, dots, labels.
    pub placed: Vec<(Rect, Kind)>,
    /// The labels drawn, in the order of their rectangles.
    pub labels: Vec<String>,
    /// Labels left out for want of room.
    pub dropped_labels: usize,
    /// Replica operations the user clicked.
    pub actions: Vec<(String, ReplicaAction)>,
}

/// Draws the topology, in layers, each over the ones before: edges, nodes (with their
/// controls), the lines of text along the top, packets, their labels, and refusal marks
/// over everything.
pub fn topology_ui(
    ui: &mut Ui,
    model: &ViewModel,
    now: f64,
    settings: &Settings,
    controls: bool,
    resting: bool,
) -> Drawn {
    let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::hover());
    let area = response.rect.shrink(12.0);
    let mut placer = Placer::new(area);
    let scene = Scene::new(ui.visuals(), area, model, settings, controls);

    edges_ui(&painter, &scene);
    for rect in scene.layout.node_rects(scene.scale.buttons) {
        placer.block(rect, Kind::Node);
    }
    users_ui(&painter, &scene, model);
    hops_ui(&painter, &scene);
    let actions = replicas_ui(ui, &painter, &scene, model, controls);
    crowd_ui(&painter, &mut placer, &scene, model);
    heartbeats_ui(&painter, &mut placer, &scene, model);
    if resting {
        resting_note_ui(&painter, &mut placer, &scene, model);
    }

    // Flights. Labels only while few are in the air: beyond that they would only smear
    // into each other (and cost a text layout each); the dots still show every packet.
    let in_air = model.flights.active(now).count();
    let labelled = in_air <= LABELLED_FLIGHTS;
    if !labelled {
        hidden_labels_note_ui(&painter, &mut placer, &scene, in_air);
    }
    let marks = place_marks(&painter, &mut placer, &scene, model, now);
    for rect in scene.layout.edge_ends() {
        placer.block(
            Rect::from_center_size(rect, Vec2::splat(scene.scale.dot_radius * 2.0)),
            Kind::EdgeEnd,
        );
    }
    let (packets, headings_and_colors) =
        dots_ui(&painter, &mut placer, &scene, model, now, labelled);
    let (labels, dropped_labels) = labels_ui(
        &painter,
        &mut placer,
        &scene,
        &packets,
        &headings_and_colors,
    );
    marks_ui(ui, &painter, marks, scene.scale.mark_radius);
    Drawn {
        area,
        placed: placer.into_taken(),
        labels,
        dropped_labels,
        actions,
    }
}

/// Draws the edges: users to the first hop, hop to hop, the last hop to each replica (faint
/// to a replica that is down).
fn edges_ui(painter: &egui::Painter, scene: &Scene) {
    let layout = &scene.layout;
    let edge = scene.edge;
    let first_hop = layout.hops.first().map(|(_, r)| r.left_center());
    let last_hop = layout.hops.last().map(|(_, r)| r.right_center());
    if let Some(first) = first_hop {
        for (_, r) in &layout.users {
            painter.line_segment([r.right_center(), first], edge);
        }
    }
    for pair in layout.hops.windows(2) {
        painter.line_segment([pair[0].1.right_center(), pair[1].1.left_center()], edge);
    }
    if let Some(last) = last_hop {
        for (_, up, r) in &layout.replicas {
            let stroke = if *up != Some(false) {
                edge
            } else {
                Stroke::new(edge.width, edge.color.gamma_multiply(0.3))
            };
            painter.line_segment([last, r.left_center()], stroke);
        }
    }
}

/// Draws each user's node: its name, where its session is, and how it is routed (sticky or
/// round robin, over which transport).
fn users_ui(painter: &egui::Painter, scene: &Scene, model: &ViewModel) {
    let (size, text, small) = (scene.scale.size, scene.text, &scene.small);
    for (user, rect) in &scene.layout.users {
        let (status, color, over) = session_status(model.sessions.get(user));
        // A browser's HAR does not say how its sessions were routed.
        let sticky = model.sticky.get(user).copied();
        node_ui(painter, *rect, color, &scene.visuals);
        painter.text(
            rect.center_top() + Vec2::new(0.0, size * 0.9),
            Align2::CENTER_CENTER,
            user,
            scene.font.clone(),
            text,
        );
        fitted_text_ui(painter, rect.center(), &status, small, text, rect.width());
        let (routing, tone) = match sticky {
            Some(true) => ("sticky", OK),
            Some(false) => ("round-robin", WAITING),
            None => ("routing not recorded", scene.visuals.weak_text_color()),
        };
        fitted_text_ui(
            painter,
            rect.center_bottom() - Vec2::new(0.0, size * 0.8),
            &over.map_or_else(|| routing.to_owned(), |over| format!("{routing} · {over}")),
            small,
            tone,
            rect.width(),
        );
    }
}

/// What a user's node says of its session, in which colour, and the transport it is
/// connected over.
fn session_status(state: Option<&SessionState>) -> (String, Color32, Option<&'static str>) {
    match state {
        Some(SessionState::Connected {
            replica, websocket, ..
        }) => (
            format!(
                "on {}",
                replica
                    .as_deref()
                    .map_or_else(|| "replica ?".to_owned(), replica_name)
            ),
            OK,
            Some(if *websocket { "websocket" } else { "polling" }),
        ),
        Some(SessionState::Reconnecting { .. }) => ("reconnecting".to_owned(), WAITING, None),
        Some(SessionState::Connecting) => ("connecting".to_owned(), WAITING, None),
        Some(SessionState::Failed { .. }) => ("disconnected".to_owned(), FAILURE, None),
        None => ("starting".to_owned(), WAITING, None),
    }
}

/// Draws each gateway hop's node with its name.
fn hops_ui(painter: &egui::Painter, scene: &Scene) {
    for (hop, rect) in &scene.layout.hops {
        node_ui(
            painter,
            *rect,
            scene.visuals.weak_text_color(),
            &scene.visuals,
        );
        let name = hop_name(hop);
        fitted_text_ui(
            painter,
            rect.center(),
            &name,
            &scene.font,
            scene.text,
            rect.width(),
        );
    }
}

/// A hop's name as the node shows it: `traefik ×2` (two instances side by side) as
/// `Traefik ×2`; the embedded stack's balancer by what it is, not by a mode — it routes
/// each user sticky or round robin as that user asks, and the user's node says which.
fn hop_name(hop: &str) -> std::borrow::Cow<'_, str> {
    match hop {
        "balancer" => "built-in balancer".into(),
        "traefik" => "Traefik".into(),
        other => match other.strip_prefix("traefik") {
            Some(instances) => format!("Traefik{instances}").into(),
            None => other.into(),
        },
    }
}

/// Draws each replica's node and, with `controls`, its buttons; returns the operations
/// clicked.
fn replicas_ui(
    ui: &mut Ui,
    painter: &egui::Painter,
    scene: &Scene,
    model: &ViewModel,
    controls: bool,
) -> Vec<(String, ReplicaAction)> {
    let mut actions = Vec::new();
    for (i, (id, _, _)) in scene.layout.replicas.iter().enumerate() {
        replica_ui(painter, scene, model, i);
        let Some(id) = id.as_deref().filter(|_| controls) else {
            continue;
        };
        replica_controls_ui(ui, scene, i, id, &mut actions);
    }
    actions
}

/// Draws the `i`th replica's node: its name, health and sessions, on one line when the
/// node is too short for two.
fn replica_ui(painter: &egui::Painter, scene: &Scene, model: &ViewModel, i: usize) {
    let (id, up, rect) = &scene.layout.replicas[i];
    let (size, text, small) = (scene.scale.size, scene.text, &scene.small);
    let color = if *up != Some(false) {
        replica_color(id.as_deref())
    } else {
        Color32::GRAY
    };
    node_ui(painter, *rect, color, &scene.visuals);
    let url = model
        .topology
        .replicas
        .get(i)
        .and_then(|r| r.url.as_deref());
    let name = replica_title(id.as_deref(), url);
    let sessions = id.as_deref().map(|id| model.sessions_on(id)).unwrap_or(0);
    let health = health(*up);
    let health_color = if *up == Some(false) { FAILURE } else { text };
    if rect.height() >= size * 2.6 {
        fitted_text_ui(
            painter,
            rect.center_top() + Vec2::new(0.0, size * 0.9),
            &name,
            &scene.font,
            text,
            rect.width(),
        );
        painter.text(
            rect.center() + Vec2::new(0.0, size * 0.3),
            Align2::CENTER_CENTER,
            format!(
                "{health} · {sessions} session{}",
                if sessions == 1 { "" } else { "s" }
            ),
            small.clone(),
            health_color,
        );
    } else {
        // One line: name, health, sessions.
        fitted_text_ui(
            painter,
            rect.center(),
            &format!("{name} · {health} · {sessions}"),
            small,
            health_color,
            rect.width(),
        );
    }
}

/// A replica's name on its node: a server no answer has named yet goes by its address at
/// the balancer.
fn replica_title(id: Option<&str>, url: Option<&str>) -> String {
    match (id, url) {
        (Some(id), _) => replica_name(id),
        (None, Some(url)) => url.trim_start_matches("http://").to_owned(),
        (None, None) => "replica ?".to_owned(),
    }
}

/// A replica's health on its node. A replica no API lists is known from the wire alone:
/// whether it is in rotation is not known, so it is not claimed.
fn health(up: Option<bool>) -> &'static str {
    match up {
        Some(true) => "UP",
        Some(false) => "DOWN",
        None => "seen on the wire",
    }
}

/// Adds the stop/kill/restart buttons of the `i`th replica, `id`: in a row under its node
/// when the layout left room, else in the node's right-click menu.
fn replica_controls_ui(
    ui: &mut Ui,
    scene: &Scene,
    i: usize,
    id: &str,
    actions: &mut Vec<(String, ReplicaAction)>,
) {
    let rect = scene.layout.replicas[i].2;
    if scene.layout.replica_buttons {
        let row = Rect::from_min_size(
            rect.left_bottom() + Vec2::new(0.0, 4.0),
            Vec2::new(rect.width(), scene.scale.buttons),
        );
        ui.scope_builder(
            egui::UiBuilder::new()
                .max_rect(row)
                .id_salt(("replica-controls", i)),
            |ui| ui.horizontal(|ui| replica_buttons_ui(ui, id, actions)),
        );
    } else {
        // No room under each node: the same buttons in the node's right-click menu.
        let menu = ui
            .interact(
                rect,
                ui.scope_id().with(("replica-menu", i)),
                Sense::click(),
            )
            .on_hover_text(format!("right-click: stop, kill or restart replica {id}"));
        menu.widget_info(|| {
            egui::WidgetInfo::labeled(
                egui::Role::Button,
                true,
                format!("replica {id} controls (right-click)"),
            )
        });
        menu.context_menu(|ui| {
            ui.horizontal(|ui| replica_buttons_ui(ui, id, actions));
        });
    }
}

/// Adds replica `id`'s stop, kill and restart buttons; a click is pushed to `actions` (and
/// closes the menu they are in).
fn replica_buttons_ui(ui: &mut Ui, id: &str, actions: &mut Vec<(String, ReplicaAction)>) {
    ui.spacing_mut().item_spacing.x = 3.0;
    for (label, action) in [
        ("stop", ReplicaAction::Stop),
        ("kill", ReplicaAction::Kill),
        ("restart", ReplicaAction::Restart),
    ] {
        let button = egui::Button::new(egui::RichText::new(label).small());
        if ui
            .add(button)
            .on_hover_text(format!("{label} replica {id}"))
            .clicked()
        {
            actions.push((id.to_owned(), action));
            ui.close();
        }
    }
}

/// Draws the crowd, when there is one: a bar left of each replica for the background
/// sessions it holds, and the crowd's line at the top left.
fn crowd_ui(painter: &egui::Painter, placer: &mut Placer, scene: &Scene, model: &ViewModel) {
    if model.crowd.size == 0 {
        return;
    }
    let (size, text) = (scene.scale.size, scene.text);
    let most = model
        .crowd
        .per_replica
        .values()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f32;
    // The longest bar: a quarter of the way back to the users, and never over a hop's node
    // (the middle replica's bar runs level with the hops), its number's room kept clear.
    let hops_right = scene
        .layout
        .hops
        .iter()
        .map(|(_, rect)| rect.right())
        .fold(scene.area.left(), f32::max);
    for (id, _, rect) in &scene.layout.replicas {
        let Some(id) = id else { continue };
        let n = model.crowd.per_replica.get(id).copied().unwrap_or(0);
        let longest = ((rect.left() - scene.area.left()) * 0.25)
            .min(rect.left() - 4.0 - hops_right - size * 3.0)
            .max(size);
        let bar_width = longest * n as f32 / most;
        let bar_height = (size * 0.8).min(rect.height() * 0.6);
        let bar = Rect::from_min_size(
            rect.left_bottom() - Vec2::new(bar_width + 4.0, bar_height + size * 0.3),
            Vec2::new(bar_width, bar_height),
        );
        painter.rect_filled(bar, 2.0, replica_color(Some(id)).gamma_multiply(0.8));
        let number = painter.text(
            bar.left_center() - Vec2::new(4.0, 0.0),
            Align2::RIGHT_CENTER,
            format!("{n}"),
            scene.small.clone(),
            text,
        );
        placer.block(bar.union(number), Kind::Text);
    }
    let line = painter.text(
        // Top left, under the heartbeat line: clear of the replica column, its crowd
        // bars and the users.
        scene.area.left_top() + Vec2::new(0.0, size * 1.3),
        Align2::LEFT_TOP,
        format!(
            "crowd: {} sessions · {} not connected · {} failures seen",
            model.crowd.size, model.crowd.connecting, model.crowd.failures
        ),
        scene.font.clone(),
        text,
    );
    placer.block(line, Kind::Text);
    if let Some(why) = crowd_rate_limit_line(&model.crowd) {
        let under = painter.text(
            scene.area.left_top() + Vec2::new(0.0, size * CROWD_LIMIT_ROW),
            Align2::LEFT_TOP,
            why,
            scene.small.clone(),
            scene.visuals.warn_fg_color,
        );
        placer.block(under, Kind::Text);
    }
}

/// Where the crowd's rate-limit line goes, in text sizes from the top (under its first
/// line, at 1.3).
const CROWD_LIMIT_ROW: f32 = 2.6;

/// What the crowd's failures were, when the gateway's rate limit refused its sessions, and
/// how fast it grows meanwhile.
fn crowd_rate_limit_line(crowd: &stickyscope_vocab::events::CrowdSummary) -> Option<String> {
    let limit = crowd.rate_limited.as_ref()?;
    let perhaps = if limit.certain { "" } else { ", perhaps" };
    let mut line = format!(
        "{} refused with HTTP {}{perhaps} by the gateway's rate limit (tripped at {} new sessions a second)",
        limit.refusals, limit.status, limit.openings_per_s
    );
    if let Some(per_s) = crowd.held_back_to_per_s {
        line.push_str(&format!(" · growing {per_s} a second"));
    }
    Some(line)
}

/// Draws the heartbeat line at the top left, when any were seen: pings and pongs are
/// counted always; while the window rests they are not animated (see [`resting_note_ui`]).
fn heartbeats_ui(painter: &egui::Painter, placer: &mut Placer, scene: &Scene, model: &ViewModel) {
    if model.heartbeats.is_empty() {
        return;
    }
    let line = model.heartbeat_line(HEARTBEAT_USERS_NAMED);
    let line = text_runs_ui(
        painter,
        scene.area.left_top(),
        &heartbeat_runs(&line),
        &scene.small,
        scene.visuals.weak_text_color(),
    );
    placer.block(line, Kind::Text);
}

/// The heartbeat line's words and numbers, in runs: fixed words and changing numbers are
/// laid out apart, so only the numbers are shaped again when they change (at thousands of
/// records a second, every frame). At most a few users are named; any more (a gateway
/// shared with other clients) are summed up, so the line stays one line.
fn heartbeat_runs(line: &crate::model::HeartbeatLine) -> Vec<std::borrow::Cow<'_, str>> {
    let mut runs: Vec<std::borrow::Cow<'_, str>> = vec!["pings + pongs seen:".into()];
    for (i, (user, n)) in line.named.iter().enumerate() {
        if i > 0 {
            runs.push("·".into());
        }
        runs.push(user.as_str().into());
        runs.push(n.to_string().into());
    }
    if line.others > 0 {
        runs.push("· and".into());
        runs.push(line.others.to_string().into());
        runs.push("more users".into());
        runs.push(line.others_beats.to_string().into());
    }
    runs
}

/// Draws the note that the window rests (heartbeats counted, not animated), under the lines
/// at the top left.
fn resting_note_ui(painter: &egui::Painter, placer: &mut Placer, scene: &Scene, model: &ViewModel) {
    // Under the crowd's lines, when it has them.
    let row = if model.crowd.rate_limited.is_some() {
        CROWD_LIMIT_ROW + 1.1
    } else if model.crowd.size > 0 {
        CROWD_LIMIT_ROW
    } else {
        1.3
    };
    let note = painter.text(
        scene.area.left_top() + Vec2::new(0.0, scene.scale.size * row),
        Align2::LEFT_TOP,
        "resting: only heartbeats for a while, so they are counted, not animated · move the mouse to watch them fly",
        scene.small.clone(),
        WAITING,
    );
    placer.block(note, Kind::Text);
}

/// Draws, at the top right, how many packets are in the air and that their labels are
/// hidden.
fn hidden_labels_note_ui(
    painter: &egui::Painter,
    placer: &mut Placer,
    scene: &Scene,
    in_air: usize,
) {
    let small = &scene.small;
    let note = painter.text(
        scene.area.right_top(),
        Align2::RIGHT_TOP,
        HIDDEN_LABELS_NOTE,
        small.clone(),
        scene.visuals.weak_text_color(),
    );
    let count = painter.text(
        note.left_top() - Vec2::new(small.size * 0.3, 0.0),
        Align2::RIGHT_TOP,
        in_air.to_string(),
        small.clone(),
        scene.visuals.weak_text_color(),
    );
    placer.block(note.union(count), Kind::Text);
}

/// Draws a dot for every packet in the air, where it is along its path; returns, when
/// `labelled`, each packet to label and beside it its heading and colour.
fn dots_ui(
    painter: &egui::Painter,
    placer: &mut Placer,
    scene: &Scene,
    model: &ViewModel,
    now: f64,
    labelled: bool,
) -> (Vec<Packet>, Vec<(Vec2, Color32)>) {
    let dot_radius = scene.scale.dot_radius;
    let mut packets = Vec::new();
    let mut headings_and_colors = Vec::new();
    for (flight, leg, t) in model.flights.active(now) {
        let Some(path) = scene.layout.path(flight) else {
            continue;
        };
        let leg_info = &flight.legs[leg];
        let along = match leg_info.direction {
            Direction::Up => t,
            Direction::Down => 1.0 - t,
        };
        let (pos, heading) = point_along(&path, along);
        let color = if leg_info.failed {
            FAILURE
        } else {
            replica_color(flight.replica.as_deref())
        };
        painter.circle_filled(pos, dot_radius, color);
        placer.block(
            Rect::from_center_size(pos, Vec2::splat(dot_radius * 2.0)),
            Kind::Dot,
        );
        if labelled {
            packets.push(Packet {
                at: pos,
                label: short_label(&leg_info.label),
                up: leg_info.direction == Direction::Up,
                rank: rank(leg_info),
            });
            headings_and_colors.push((heading, color));
        }
    }
    (packets, headings_and_colors)
}

/// Draws the packets' labels where the placer finds room, packets flying side by side
/// sharing one, with a thin line back to a packet whose label moved along its edge; returns
/// the labels drawn and how many were dropped for want of room.
fn labels_ui(
    painter: &egui::Painter,
    placer: &mut Placer,
    scene: &Scene,
    packets: &[Packet],
    headings_and_colors: &[(Vec2, Color32)],
) -> (Vec<String>, usize) {
    let (small, dot_radius) = (&scene.small, scene.scale.dot_radius);
    let mut labels = Vec::new();
    let mut dropped_labels = 0;
    for group in placement::group(packets, small.size * 1.4) {
        let first = group.members[0];
        // One colour when its packets share one; the text's colour when they do not.
        let (heading, first_color) = headings_and_colors[first];
        let color = if group
            .members
            .iter()
            .all(|&m| headings_and_colors[m].1 == first_color)
        {
            first_color
        } else {
            scene.text
        };
        let galley = painter.layout_no_wrap(group.text.clone(), small.clone(), color);
        let size = galley.size();
        let candidates = placement::label_candidates(group.at, dot_radius, size, heading);
        let Some((rect, leader)) = placer.place_label(candidates, group.at, dot_radius) else {
            dropped_labels += 1;
            continue;
        };
        // A label moved along its edge keeps a thin line to its packet.
        if let Some((from, to)) = leader {
            painter.line_segment([from, to], Stroke::new(1.0, color.gamma_multiply(0.6)));
        }
        painter.galley(rect.min, galley, color);
        labels.push(group.text);
    }
    (labels, dropped_labels)
}

/// Most characters of a packet label; the log has the whole of it.
const LABEL_CHARS: usize = 36;

/// A label cut to [`LABEL_CHARS`].
fn short_label(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_owned();
    }
    let cut: String = label.chars().take(LABEL_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Which labels keep their place when places are few: refusals, then what the story is
/// about (messages, handshakes, upgrades), then heartbeats and polls.
fn rank(leg: &crate::model::Leg) -> u8 {
    if leg.failed {
        3
    } else if leg.label.starts_with("message")
        || leg.label.starts_with("handshake")
        || leg.label.contains("upgrade")
        || leg.label.starts_with("101")
    {
        2
    } else {
        1
    }
}

/// A refusal mark, placed, to be painted over everything else.
struct PlacedMark {
    rect: Rect,
    center: Pos2,
    count: Option<std::sync::Arc<egui::Galley>>,
    hover: String,
}

/// Places the refusals where they happened: one mark per replica (or the gateway) with a
/// count, clear of the nodes, of each other and of where packets fly (the strips their
/// dots cross).
fn place_marks(
    painter: &egui::Painter,
    placer: &mut Placer,
    scene: &Scene,
    model: &ViewModel,
    now: f64,
) -> Vec<PlacedMark> {
    let layout = &scene.layout;
    let (r, dot_radius, small) = (
        scene.scale.mark_radius,
        scene.scale.dot_radius,
        &scene.small,
    );
    let mut placed = Vec::new();
    if model.flights.marks(now).next().is_none() {
        return placed;
    }
    // Marks keep off where packets fly, so none ever flies over one.
    for (a, b) in layout.flight_segments() {
        for square in placement::corridor(a, b, dot_radius * 2.5) {
            placer.block(square, Kind::Edge);
        }
    }
    let mut per_place: std::collections::BTreeMap<Option<String>, Vec<&crate::model::RejectMark>> =
        Default::default();
    for mark in model.flights.marks(now) {
        per_place
            .entry(mark.replica.clone())
            .or_default()
            .push(mark);
    }
    for (place, marks) in per_place {
        let count = (marks.len() > 1)
            .then(|| painter.layout_no_wrap(format!("×{}", marks.len()), small.clone(), FAILURE));
        let count_width = count.as_ref().map_or(0.0, |g| g.size().x + 3.0);
        let size = Vec2::new(r * 2.0 + count_width, r * 2.0);
        // Right of the replica that refused (below the gateway when none did): the circle
        // first, its count after it.
        let (anchor, away) = match &place {
            Some(id) => match layout.replica(id) {
                Some(rect) => (
                    rect.right_center() + Vec2::new(6.0 + size.x / 2.0, 0.0),
                    Vec2::X,
                ),
                None => continue,
            },
            None => match layout.hops.last() {
                Some((_, rect)) => (rect.center_bottom() + Vec2::new(0.0, r + 8.0), Vec2::Y),
                None => continue,
            },
        };
        let candidates = placement::mark_candidates(anchor, size, away);
        // A refusal is never hidden: with no clear place it goes where it happened.
        let fallback = candidates[0];
        let rect = placer.place(candidates, Kind::Mark).unwrap_or_else(|| {
            placer.block(fallback, Kind::Mark);
            fallback
        });
        let center = Pos2::new(rect.left() + r, rect.center().y);
        let mut reasons: Vec<String> = marks
            .iter()
            .map(|m| format!("{}: {}", m.user, m.reason))
            .collect();
        reasons.dedup();
        let where_ = place
            .map(|id| format!("refused by replica {id}"))
            .unwrap_or_else(|| "refused at the gateway".into());
        placed.push(PlacedMark {
            rect,
            center,
            count,
            hover: format!("{where_}\n{}", reasons.join("\n")),
        });
    }
    placer.forget(Kind::Edge);
    placed
}

/// Paints the marks (last: a mark that found no clear place is still seen), the reasons on
/// hover.
fn marks_ui(ui: &mut Ui, painter: &egui::Painter, marks: Vec<PlacedMark>, r: f32) {
    for mark in marks {
        let center = mark.center;
        painter.circle_filled(center, r, FAILURE);
        let cross = r * 0.5;
        let white = Stroke::new(2.5, Color32::WHITE);
        painter.line_segment(
            [
                center + Vec2::new(-cross, -cross),
                center + Vec2::new(cross, cross),
            ],
            white,
        );
        painter.line_segment(
            [
                center + Vec2::new(-cross, cross),
                center + Vec2::new(cross, -cross),
            ],
            white,
        );
        if let Some(count) = mark.count {
            let at = Pos2::new(center.x + r + 3.0, center.y - count.size().y / 2.0);
            painter.galley(at, count, FAILURE);
        }
        ui.interact(
            mark.rect,
            ui.scope_id()
                .with(("mark", center.x as i32, center.y as i32)),
            Sense::hover(),
        )
        .on_hover_text(mark.hover);
    }
}

/// Draws one line centred on `center` inside a node `width` wide: smaller type when it
/// would not fit (down to two thirds), then cut with `…`, so no label runs over its node.
fn fitted_text_ui(
    painter: &egui::Painter,
    center: Pos2,
    line: &str,
    font: &FontId,
    color: Color32,
    width: f32,
) {
    let room = (width - font.size).max(font.size);
    let mut font = font.clone();
    let mut galley = painter.layout_no_wrap(line.to_owned(), font.clone(), color);
    let least = font.size * 2.0 / 3.0;
    if galley.size().x > room {
        font.size = (font.size * room / galley.size().x).max(least);
        galley = painter.layout_no_wrap(line.to_owned(), font.clone(), color);
    }
    let mut shown: Vec<char> = line.chars().collect();
    while galley.size().x > room && shown.len() > 1 {
        shown.pop();
        let cut: String = shown.iter().collect::<String>() + "…";
        galley = painter.layout_no_wrap(cut, font.clone(), color);
    }
    painter.galley(center - galley.size() / 2.0, galley, color);
}

/// Draws `runs` left to right from `at`, a space apart, each laid out on its own; returns
/// the rectangle they cover.
fn text_runs_ui(
    painter: &egui::Painter,
    at: Pos2,
    runs: &[std::borrow::Cow<'_, str>],
    font: &FontId,
    color: Color32,
) -> Rect {
    let mut x = at.x;
    let mut covered = Rect::from_min_size(at, Vec2::ZERO);
    for run in runs {
        let rect = painter.text(
            Pos2::new(x, at.y),
            Align2::LEFT_TOP,
            run.as_ref(),
            font.clone(),
            color,
        );
        covered = covered.union(rect);
        x = rect.right() + font.size * 0.3;
    }
    covered
}

/// Draws a node's box, outlined in `accent`.
fn node_ui(painter: &egui::Painter, rect: Rect, accent: Color32, visuals: &egui::Visuals) {
    painter.rect_filled(rect, 8.0, visuals.faint_bg_color);
    painter.rect_stroke(rect, 8.0, Stroke::new(2.0, accent), StrokeKind::Inside);
}

/// The point a fraction `t` along a polyline, and the unit direction of the segment it is
/// on.
fn point_along(points: &[Pos2], t: f32) -> (Pos2, Vec2) {
    let lengths: Vec<f32> = points.windows(2).map(|w| w[0].distance(w[1])).collect();
    let total: f32 = lengths.iter().sum();
    if total <= 0.0 || points.len() < 2 {
        return (points.first().copied().unwrap_or_default(), Vec2::X);
    }
    let mut left = t.clamp(0.0, 1.0) * total;
    for (i, len) in lengths.iter().enumerate() {
        if left <= *len && *len > 0.0 {
            let heading = (points[i + 1] - points[i]) / *len;
            return (points[i].lerp(points[i + 1], left / len), heading);
        }
        left -= len;
    }
    (*points.last().unwrap_or(&Pos2::ZERO), Vec2::X)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hidden_labels_note_names_the_limit() {
        assert!(HIDDEN_LABELS_NOTE.contains(&format!("above {LABELLED_FLIGHTS} ")));
    }

    #[test]
    fn a_hop_is_named_as_its_node_shows_it_and_the_balancer_names_no_mode() {
        assert_eq!(hop_name("balancer"), "built-in balancer");
        assert_eq!(hop_name("traefik"), "Traefik");
        assert_eq!(hop_name("traefik ×2"), "Traefik ×2");
        assert_eq!(hop_name("nginx"), "nginx");
    }

    #[test]
    fn the_crowds_rate_limit_line_says_how_many_what_status_and_the_rate() {
        use stickyscope_vocab::events::{CrowdRateLimit, CrowdSummary};
        let mut crowd = CrowdSummary::default();
        assert_eq!(crowd_rate_limit_line(&crowd), None);
        crowd.rate_limited = Some(CrowdRateLimit {
            status: 429,
            certain: true,
            refusals: 58_000,
            openings_per_s: 200,
        });
        crowd.held_back_to_per_s = Some(20);
        assert_eq!(
            crowd_rate_limit_line(&crowd).as_deref(),
            Some("58000 refused with HTTP 429 by the gateway's rate limit (tripped at 200 new sessions a second) · growing 20 a second")
        );
        crowd.rate_limited = Some(CrowdRateLimit {
            status: 503,
            certain: false,
            refusals: 3,
            openings_per_s: 150,
        });
        crowd.held_back_to_per_s = None;
        assert_eq!(
            crowd_rate_limit_line(&crowd).as_deref(),
            Some("3 refused with HTTP 503, perhaps by the gateway's rate limit (tripped at 150 new sessions a second)")
        );
    }
}
