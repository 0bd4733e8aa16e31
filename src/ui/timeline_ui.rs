//! The timeline strip under the topology: play and pause, the speed, the previous and next
//! failure, a track to drag to any moment (failures marked on it in red, named on hover),
//! the time shown, and — on a live window — whether it follows the stack or looks back,
//! with the way back to live.

use eframe::egui;
use egui::{Color32, RichText, Sense, Stroke, Ui};

use super::theme::{FAILURE, OK};
use crate::model::review::{TimelineAction, SPEEDS};
use crate::model::timeline::Timeline;

/// What the strip shows.
pub struct TimelineView<'a> {
    /// The events and failures.
    pub timeline: &'a Timeline,
    /// The moment shown.
    pub at: f64,
    /// Following the stack (a live window at its live edge).
    pub live: bool,
    /// A recording (no live edge).
    pub recorded: bool,
    /// Whether the playhead plays.
    pub playing: bool,
    /// Its speed.
    pub speed: f32,
    /// Presentation mode: bigger.
    pub big: bool,
}

/// Draws the strip; returns what was asked.
pub fn timeline_ui(ui: &mut Ui, view: &TimelineView<'_>) -> Option<TimelineAction> {
    let mut action = None;
    let size = if view.big { 18.0 } else { 13.0 };
    let text = |s: &str| RichText::new(s).size(size);
    ui.horizontal(|ui| {
        let has_failures = view.timeline.failures().next().is_some();
        if ui
            .add_enabled(has_failures, egui::Button::new(text("« failure")))
            .on_hover_text("[ : the failure before the moment shown")
            .clicked()
        {
            action = Some(TimelineAction::PreviousFailure);
        }
        // Live is playing: pausing steps back to the moment shown.
        let play = if view.playing || view.live {
            "pause"
        } else {
            "play"
        };
        if ui
            .button(text(play))
            .on_hover_text(if view.live {
                "P: pause the timeline here and look back"
            } else {
                "P: play or pause what was recorded"
            })
            .clicked()
        {
            action = Some(TimelineAction::PlayPause);
        }
        if ui
            .add_enabled(has_failures, egui::Button::new(text("failure »")))
            .on_hover_text("] : the failure after the moment shown")
            .clicked()
        {
            action = Some(TimelineAction::NextFailure);
        }
        if !view.live {
            let mut speed = view.speed;
            egui::ComboBox::from_id_salt("timeline-speed")
                .width(60.0)
                .selected_text(text(&speed_label(speed)))
                .show_ui(ui, |ui| {
                    for s in SPEEDS {
                        ui.selectable_value(&mut speed, s, speed_label(s));
                    }
                });
            if speed != view.speed {
                action = Some(TimelineAction::Speed(speed));
            }
        }
        let right = if view.big { 260.0 } else { 190.0 };
        let width = (ui.available_width() - right).max(120.0);
        if let Some(t) = track_ui(ui, view, width) {
            action = Some(TimelineAction::Seek(t));
        }
        ui.label(text(&position_label(view)).monospace());
        if view.live {
            let (dot, _) = ui.allocate_exact_size(egui::vec2(size, size), Sense::hover());
            ui.painter().circle_filled(dot.center(), size * 0.35, OK);
            ui.label(text("LIVE").strong().color(OK))
                .on_hover_text("following the stack: drag the track or pause to look back");
        } else if !view.recorded {
            let back = egui::Button::new(text("back to live").color(Color32::WHITE)).fill(OK);
            if ui
                .add(back)
                .on_hover_text("End: follow the stack again")
                .clicked()
            {
                action = Some(TimelineAction::Live);
            }
        }
    });
    action
}

/// The track: what is kept, the moment shown, the failures; returns the time dragged or
/// clicked to.
fn track_ui(ui: &mut Ui, view: &TimelineView<'_>, width: f32) -> Option<f64> {
    let height = if view.big { 26.0 } else { 18.0 };
    let (rect, response) =
        ui.allocate_exact_size(egui::vec2(width, height), Sense::click_and_drag());
    let (start, end) = (view.timeline.start(), view.timeline.end());
    let span = (end - start).max(1e-6);
    let x_of = |t: f64| rect.left() + ((t - start) / span).clamp(0.0, 1.0) as f32 * rect.width();
    let painter = ui.painter_at(rect.expand(2.0));
    let visuals = ui.visuals();
    let mid = rect.center().y;
    let track = egui::Rect::from_min_max(
        egui::pos2(rect.left(), mid - 3.0),
        egui::pos2(rect.right(), mid + 3.0),
    );
    painter.rect_filled(track, 3.0, visuals.widgets.inactive.bg_fill);
    let played = egui::Rect::from_min_max(track.min, egui::pos2(x_of(view.at), track.max.y));
    painter.rect_filled(played, 3.0, visuals.selection.bg_fill);
    let mut nearest: Option<(f32, &str)> = None;
    let pointer = response.hover_pos();
    // Marks come in time order; those within a pixel of the last one drawn draw as one, so
    // minutes of refusals (thousands of marks) cost no more than the track is wide.
    let mut drawn_at = f32::NEG_INFINITY;
    for failure in view.timeline.failures() {
        let x = x_of(failure.at);
        if x - drawn_at >= 1.0 {
            painter.line_segment(
                [
                    egui::pos2(x, rect.top() + 2.0),
                    egui::pos2(x, rect.bottom() - 2.0),
                ],
                Stroke::new(2.0, FAILURE),
            );
            drawn_at = x;
        }
        if let Some(p) = pointer {
            let d = (p.x - x).abs();
            if d <= 5.0 && nearest.is_none_or(|(best, _)| d < best) {
                nearest = Some((d, failure.what.as_str()));
            }
        }
    }
    let head = egui::pos2(x_of(view.at), mid);
    painter.circle(
        head,
        height * 0.4,
        if view.live {
            OK
        } else {
            visuals.strong_text_color()
        },
        Stroke::new(1.5, visuals.panel_fill),
    );
    let response = match nearest {
        Some((_, what)) => response.on_hover_text(what.to_owned()),
        None => response.on_hover_text("drag to any moment kept"),
    };
    if response.dragged() || response.clicked() {
        let x = response.interact_pointer_pos()?.x;
        let t = start + f64::from(((x - rect.left()) / rect.width()).clamp(0.0, 1.0)) * span;
        return Some(t);
    }
    None
}

/// `0.25×`.
fn speed_label(speed: f32) -> String {
    format!("{speed}×")
}

/// Where the moment shown is: from the start of a recording (`12.3 s / 65.0 s`), or behind
/// the live edge (`42.1 s ago`).
pub fn position_label(view: &TimelineView<'_>) -> String {
    let (start, end) = (view.timeline.start(), view.timeline.end());
    if view.recorded {
        format!("{:.1} s / {:.1} s", view.at - start, end - start)
    } else if view.live {
        format!("last {:.0} s kept", end - start)
    } else {
        format!("{:.1} s ago", (end - view.at).max(0.0))
    }
}
