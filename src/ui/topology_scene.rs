//! Where the topology's parts go in one frame, and how big they are: the nodes' rectangles
//! (users, gateway hops, replicas), the paths packets fly along, and the sizes of type,
//! dots and marks, which grow on a projector with the room they have. Pure geometry: it
//! reads the view model and the settings, and draws nothing ([`super::topology_ui`] does).

use eframe::egui;
use egui::{Color32, FontId, Pos2, Rect, Stroke, Vec2};

use super::settings::Settings;
use super::theme;
use crate::model::{Flight, ViewModel};

/// Where things are drawn.
pub(super) struct Layout {
    pub(super) users: Vec<(String, Rect)>,
    pub(super) hops: Vec<(String, Rect)>,
    pub(super) replicas: Vec<(Option<String>, Option<bool>, Rect)>,
    /// Whether each replica has room for its stop/kill/restart buttons under it (else they
    /// are in its right-click menu).
    pub(super) replica_buttons: bool,
}

/// Least height of a replica node (one line of text).
const COMPACT_NODE_HEIGHT: f32 = 22.0;

impl Layout {
    /// `buttons` is the height of a replica's button row, 0 without controls; `zoom`
    /// scales the nodes with the type; `gutter` is kept free right of the replicas, for
    /// their refusal marks.
    pub(super) fn new(
        area: Rect,
        model: &ViewModel,
        big: bool,
        (buttons, zoom, gutter): (f32, f32, f32),
    ) -> Layout {
        let node = if big {
            Vec2::new(170.0, 78.0)
        } else {
            Vec2::new(132.0, 62.0)
        } * zoom;
        let at = |fx: f32, fy: f32| {
            Rect::from_center_size(
                Pos2::new(
                    area.left() + area.width() * fx,
                    area.top() + area.height() * fy,
                ),
                node,
            )
        };
        // Users hug the left edge and replicas the right one, whatever the node width.
        let left_x = (node.x * 0.5 + 6.0) / area.width().max(1.0);
        let right_x = 1.0 - (node.x * 0.5 + 6.0 + gutter) / area.width().max(1.0);
        let users: Vec<String> = model.chats.keys().cloned().collect();
        let user_rects = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                (
                    u.clone(),
                    at(left_x, (i as f32 + 0.5) / users.len().max(1) as f32),
                )
            })
            .collect();
        // Hops share the lane between users and replicas evenly, narrower than the other
        // nodes when the lane is short, never overlapping.
        let hops = &model.topology.hops;
        let lane_left = area.left() + 6.0 + node.x;
        let lane = (area.width() - 2.0 * (6.0 + node.x) - gutter).max(1.0);
        let spacing = lane / (hops.len() + 1) as f32;
        let hop_size = Vec2::new(node.x.min(spacing - 16.0).max(24.0), node.y);
        let hop_rects = hops
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let center = Pos2::new(
                    lane_left + spacing * (i + 1) as f32,
                    area.top() + area.height() * 0.5,
                );
                (h.clone(), Rect::from_center_size(center, hop_size))
            })
            .collect();
        // Replicas share the height: each keeps its buttons under it while they fit, then
        // gives them up (to a right-click menu), then shrinks to one line of text.
        let replicas = &model.topology.replicas;
        let n = replicas.len().max(1) as f32;
        let slot = area.height() / n;
        let gap = 6.0;
        let replica_buttons = buttons == 0.0 || slot >= node.y + buttons + gap;
        let replica_height = if replica_buttons {
            node.y
        } else {
            (slot - gap).clamp(COMPACT_NODE_HEIGHT, node.y)
        };
        let replica_rects = replicas
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut rect = at(right_x, (i as f32 + 0.5) / n);
                if replica_buttons && buttons > 0.0 {
                    // Centre node and buttons together in the slot.
                    rect = rect.translate(Vec2::new(0.0, -(buttons + 4.0) / 2.0));
                }
                let rect =
                    Rect::from_center_size(rect.center(), Vec2::new(rect.width(), replica_height));
                (r.id.clone(), r.listed.then_some(r.up), rect)
            })
            .collect();
        Layout {
            users: user_rects,
            hops: hop_rects,
            replicas: replica_rects,
            replica_buttons,
        }
    }

    pub(super) fn user(&self, name: &str) -> Option<Rect> {
        self.users.iter().find(|(u, _)| u == name).map(|(_, r)| *r)
    }

    pub(super) fn replica(&self, id: &str) -> Option<Rect> {
        self.replicas
            .iter()
            .find(|(r, _, _)| r.as_deref() == Some(id))
            .map(|(_, _, r)| *r)
    }

    /// Every node, with the button row under a replica when it has one.
    pub(super) fn node_rects(&self, buttons: f32) -> Vec<Rect> {
        let mut out: Vec<Rect> = self.users.iter().map(|(_, r)| *r).collect();
        out.extend(self.hops.iter().map(|(_, r)| *r));
        for (id, _, rect) in &self.replicas {
            let with_buttons = self.replica_buttons && buttons > 0.0 && id.is_some();
            out.push(if with_buttons {
                rect.union(Rect::from_min_size(
                    rect.left_bottom(),
                    Vec2::new(rect.width(), buttons + 4.0),
                ))
            } else {
                *rect
            });
        }
        out
    }

    /// Every segment a packet flies along (see [`Layout::path`]): users to the first hop's
    /// centre, hop to hop, the last hop's centre to each replica.
    pub(super) fn flight_segments(&self) -> Vec<(Pos2, Pos2)> {
        let mut out = Vec::new();
        if let Some((_, first)) = self.hops.first() {
            out.extend(
                self.users
                    .iter()
                    .map(|(_, r)| (r.right_center(), first.center())),
            );
        }
        for pair in self.hops.windows(2) {
            out.push((pair[0].1.center(), pair[1].1.center()));
        }
        if let Some((_, last)) = self.hops.last() {
            out.extend(
                self.replicas
                    .iter()
                    .map(|(_, _, r)| (last.center(), r.left_center())),
            );
        }
        out
    }

    /// Where edges meet nodes.
    pub(super) fn edge_ends(&self) -> Vec<Pos2> {
        let mut out: Vec<Pos2> = self.users.iter().map(|(_, r)| r.right_center()).collect();
        for (_, r) in &self.hops {
            out.push(r.left_center());
            out.push(r.right_center());
        }
        out.extend(self.replicas.iter().map(|(_, _, r)| r.left_center()));
        out
    }

    /// The path of a flight from its user to where it ended.
    pub(super) fn path(&self, flight: &Flight) -> Option<Vec<Pos2>> {
        let mut points = vec![self.user(&flight.user)?.right_center()];
        for (_, hop) in &self.hops {
            points.push(hop.center());
        }
        if let Some(id) = &flight.replica {
            points.push(self.replica(id)?.left_center());
        }
        Some(points)
    }
}

/// Sizes of one frame: the type, nodes, packets and marks grow on a projector with the room
/// they have.
pub(super) struct Scale {
    /// How much the nodes grow with the type (1 off a projector).
    pub(super) zoom: f32,
    /// Type size of the node names.
    pub(super) size: f32,
    /// Height of a replica's button row, 0 without controls.
    pub(super) buttons: f32,
    /// Radius of a packet's dot.
    pub(super) dot_radius: f32,
    /// Radius of a refusal mark.
    pub(super) mark_radius: f32,
    /// Room kept free right of the replicas, for their refusal marks.
    pub(super) gutter: f32,
}

impl Scale {
    /// The sizes for drawing in `area`.
    pub(super) fn new(settings: &Settings, area: Rect, controls: bool) -> Scale {
        // On a projector the picture grows with the room it has: type, nodes, packets.
        let zoom = if settings.presentation {
            (area.height() / 560.0)
                .min(area.width() / 900.0)
                .clamp(1.0, 1.6)
        } else {
            1.0
        };
        let size = theme::paint_size(settings) * zoom;
        let buttons = if controls {
            theme::paint_size(settings) * 1.6
        } else {
            0.0
        };
        let dot_radius = if settings.presentation { 9.0 } else { 6.5 } * zoom;
        let mark_radius = if settings.presentation { 13.0 } else { 10.0 } * zoom;
        // Room right of the replicas for a refusal mark and its count (`×12`): no edge runs
        // there, so no packet flies over a mark.
        let gutter = mark_radius * 2.0 + size * 0.85 * 2.2 + 10.0;
        Scale {
            zoom,
            size,
            buttons,
            dot_radius,
            mark_radius,
            gutter,
        }
    }
}

/// What every layer of one frame shares: where it draws, where the nodes are, how big, and
/// with which colours, strokes and type.
pub(super) struct Scene {
    pub(super) area: Rect,
    pub(super) scale: Scale,
    pub(super) layout: Layout,
    pub(super) visuals: egui::Visuals,
    /// Colour of the text.
    pub(super) text: Color32,
    /// Stroke of the edges.
    pub(super) edge: Stroke,
    /// Type of the node names.
    pub(super) font: FontId,
    /// Type of everything else.
    pub(super) small: FontId,
}

impl Scene {
    /// The scene for drawing `model` in `area`, `controls` with replica buttons.
    pub(super) fn new(
        visuals: &egui::Visuals,
        area: Rect,
        model: &ViewModel,
        settings: &Settings,
        controls: bool,
    ) -> Scene {
        let scale = Scale::new(settings, area, controls);
        let layout = Layout::new(
            area,
            model,
            settings.presentation,
            (scale.buttons, scale.zoom, scale.gutter),
        );
        let visuals = visuals.clone();
        let text = visuals.strong_text_color();
        let edge = Stroke::new(
            if settings.presentation {
                2.0 * scale.zoom
            } else {
                1.2
            },
            visuals.weak_text_color(),
        );
        let font = FontId::proportional(scale.size);
        let small = FontId::proportional(scale.size * 0.85);
        Scene {
            area,
            scale,
            layout,
            visuals,
            text,
            edge,
            font,
            small,
        }
    }
}
