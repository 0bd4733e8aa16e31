//! The scenario's caption over the topology: the step's title large, its lines under it,
//! each expectation marked passed, failed or pending live with what was observed, and Back / Again / Next.
//! → and PageDown go on, ← and PageUp go back (what presentation clickers send).

use eframe::egui;
use egui::{Color32, RichText, Ui};

use super::theme::{FAILURE, OK, WAITING};
use crate::scenario::{Outcome, Status};

/// What the caption shows.
#[derive(Debug, Clone)]
pub struct CaptionView<'a> {
    /// The scenario's title.
    pub scenario: &'a str,
    /// 1-based step number.
    pub number: usize,
    /// How many steps.
    pub steps: usize,
    /// The step's title.
    pub title: &'a str,
    /// The step's lines.
    pub caption: &'a str,
    /// Its expectations as they stand.
    pub outcomes: &'a [Outcome],
    /// Actions that could not be done.
    pub action_errors: &'a [String],
    /// Whether its actions are still being done.
    pub acting: bool,
    /// Presentation mode: larger still.
    pub big: bool,
}

/// What the presenter asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionAction {
    /// The step before.
    Back,
    /// This step again.
    Again,
    /// The step after.
    Next,
    /// Leave the scenario.
    Close,
}

/// Draws the caption; returns what was clicked.
pub fn caption_ui(ui: &mut Ui, view: &CaptionView<'_>) -> Option<CaptionAction> {
    let mut action = None;
    let (title_size, text_size) = if view.big { (34.0, 22.0) } else { (24.0, 16.0) };
    egui::Frame::group(ui.style())
        .fill(ui.visuals().extreme_bg_color)
        .inner_margin(egui::Margin::same(10))
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                if ui
                    .add_enabled(view.number > 1, egui::Button::new("back"))
                    .on_hover_text(
                        "Left arrow or PageUp: the step before, the stack put back as it starts",
                    )
                    .clicked()
                {
                    action = Some(CaptionAction::Back);
                }
                if ui
                    .button("again")
                    .on_hover_text("this step again, the stack put back as it starts")
                    .clicked()
                {
                    action = Some(CaptionAction::Again);
                }
                if ui
                    .add_enabled(view.number < view.steps, egui::Button::new("next"))
                    .on_hover_text("Right arrow or PageDown: the next step")
                    .clicked()
                {
                    action = Some(CaptionAction::Next);
                }
                if ui
                    .button("close")
                    .on_hover_text("leave the scenario")
                    .clicked()
                {
                    action = Some(CaptionAction::Close);
                }
                ui.label(
                    RichText::new(format!(
                        "{} · step {} of {}",
                        view.scenario, view.number, view.steps
                    ))
                    .weak(),
                );
            });
            ui.label(RichText::new(view.title).size(title_size).strong());
            if !view.caption.is_empty() {
                ui.add(egui::Label::new(RichText::new(view.caption).size(text_size)).wrap());
            }
            ui.add_space(4.0);
            if view.acting {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(RichText::new("doing the step's actions…").size(text_size * 0.8));
                });
            }
            for error in view.action_errors {
                ui.horizontal_wrapped(|ui| {
                    mark_ui(ui, Status::Failed, text_size * 0.8);
                    ui.colored_label(
                        FAILURE,
                        RichText::new(format!("could not {error}")).size(text_size * 0.8),
                    );
                });
            }
            for outcome in view.outcomes {
                let color: Color32 = match outcome.status {
                    Status::Passed => OK,
                    Status::Failed => FAILURE,
                    Status::Pending => WAITING,
                };
                ui.horizontal_wrapped(|ui| {
                    mark_ui(ui, outcome.status, text_size * 0.85);
                    ui.label(
                        RichText::new(&outcome.expectation)
                            .size(text_size * 0.85)
                            .strong()
                            .color(color),
                    );
                    ui.label(
                        RichText::new(&outcome.observed)
                            .size(text_size * 0.75)
                            .weak(),
                    );
                });
            }
        });
    action
}

/// A round mark drawn, not typed (the fonts have no check mark): a tick when passed, a
/// cross when failed, three dots while pending.
fn mark_ui(ui: &mut Ui, status: Status, size: f32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
    let painter = ui.painter();
    let c = rect.center();
    let r = size * 0.45;
    let white = egui::Stroke::new((size * 0.12).max(1.5), Color32::WHITE);
    match status {
        Status::Passed => {
            painter.circle_filled(c, r, OK);
            painter.line_segment(
                [
                    c + egui::vec2(-r * 0.5, 0.0),
                    c + egui::vec2(-r * 0.1, r * 0.4),
                ],
                white,
            );
            painter.line_segment(
                [
                    c + egui::vec2(-r * 0.1, r * 0.4),
                    c + egui::vec2(r * 0.55, -r * 0.45),
                ],
                white,
            );
        }
        Status::Failed => {
            painter.circle_filled(c, r, FAILURE);
            let d = r * 0.45;
            painter.line_segment([c + egui::vec2(-d, -d), c + egui::vec2(d, d)], white);
            painter.line_segment([c + egui::vec2(-d, d), c + egui::vec2(d, -d)], white);
        }
        Status::Pending => {
            painter.circle_stroke(c, r, egui::Stroke::new(1.5, WAITING));
            for dx in [-0.45, 0.0, 0.45] {
                painter.circle_filled(c + egui::vec2(r * dx, 0.0), r * 0.13, WAITING);
            }
        }
    }
}
