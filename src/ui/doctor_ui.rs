//! The doctor's panel: a button that runs `stickyscope doctor`'s checklist on the stack the
//! window shows (with the page's origin, for the CORS check), then each check as it comes —
//! its word in colour and what it found in a line that unfolds the evidence it saw, and its
//! fix with a button that copies it.

use eframe::egui;
use egui::{Color32, RichText, ScrollArea, Ui};
use stickyscope_vocab::doctor::{CheckId, Outcome};
use stickyscope_vocab::events::Command;

use super::theme::{FAILURE, OK, WAITING};
use crate::model::DoctorView;

/// The panel's own state: the origin being typed.
#[derive(Debug, Default)]
pub struct DoctorPanel {
    /// The page's origin for the CORS check (empty: skipped).
    pub origin: String,
}

fn outcome_color(outcome: Outcome) -> Color32 {
    match outcome {
        Outcome::Pass => OK,
        Outcome::Warn => WAITING,
        Outcome::Fail => FAILURE,
        Outcome::Skipped => Color32::GRAY,
    }
}

/// Draws the panel; returns the command to send when the user asked for a run.
pub fn doctor_ui(ui: &mut Ui, view: &DoctorView, panel: &mut DoctorPanel) -> Option<Command> {
    let mut command = None;
    ui.horizontal_wrapped(|ui| {
        let label = if view.running {
            "checking…"
        } else {
            "run the checklist"
        };
        let run = ui
            .add_enabled(!view.running, egui::Button::new(label))
            .on_hover_text(
                "stickyscope doctor on this stack: stickiness, cookie, upgrade, long polls, CORS, \
                 spread, adapter, rate limit, failover (kills and restarts one replica on a \
                 stack stickyscope runs); under a minute",
            );
        if run.clicked() {
            let origin = panel.origin.trim();
            command = Some(Command::RunDoctor {
                origin: (!origin.is_empty()).then(|| origin.to_owned()),
            });
        }
        ui.label("page origin (for CORS):");
        ui.add(
            egui::TextEdit::singleline(&mut panel.origin)
                .hint_text("https://app.example")
                .desired_width(180.0),
        );
        if let Some(report) = &view.report {
            let [pass, warn, fail, skipped] = report.counts();
            ui.label(format!(
                "{pass} passed, {warn} warned, {fail} failed, {skipped} skipped in {:.1} s",
                report.millis as f64 / 1000.0
            ));
        } else if view.running {
            ui.spinner();
            ui.label(format!(
                "{} of {} known",
                view.checks.len(),
                CheckId::ALL.len()
            ));
        }
    });
    if let Some(why) = &view.failed {
        ui.colored_label(FAILURE, format!("the checklist could not run: {why}"));
    }
    if view.checks.is_empty() && !view.running && view.failed.is_none() {
        ui.weak(
            "Nothing checked yet. What each check saw is shown here, with the fix for what fails.",
        );
        return command;
    }
    ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for check in &view.checks {
                check_row_ui(ui, check);
            }
        });
    command
}

/// One check: a line (its word, number and title, what it found) that unfolds the evidence
/// it saw; under it, for anything short of PASS, the fix with a button that copies it.
fn check_row_ui(ui: &mut Ui, check: &stickyscope_vocab::doctor::CheckResult) {
    let body = egui::TextStyle::Body.resolve(ui.style());
    let mono = egui::TextStyle::Monospace.resolve(ui.style());
    let format = |font_id: egui::FontId, color: Color32| egui::TextFormat {
        font_id,
        color,
        ..Default::default()
    };
    let mut line = egui::text::LayoutJob::default();
    // Wrapped within the panel (the header's arrow takes the first ~20 points).
    line.wrap.max_width = (ui.available_width() - 24.0).max(100.0);
    line.append(
        &format!("{:<7} ", check.outcome.word()),
        0.0,
        format(mono, outcome_color(check.outcome)),
    );
    line.append(
        &format!("{}. {} ", check.id.number(), check.id.title()),
        0.0,
        format(body.clone(), ui.visuals().strong_text_color()),
    );
    line.append(
        &format!("— {}", check.summary),
        0.0,
        format(body, ui.visuals().weak_text_color()),
    );
    // Laid out here: a header lays out its own text without wrapping.
    let line = ui.ctx().fonts_mut(|fonts| fonts.layout_job(line));
    egui::CollapsingHeader::new(egui::WidgetText::Galley(line))
        .id_salt(("doctor-evidence", check.id.number()))
        .show(ui, |ui| {
            if check.evidence.is_empty() {
                ui.weak("no evidence: nothing was sent");
            }
            for line in &check.evidence {
                ui.label(RichText::new(line).monospace().small());
            }
        });
    if let Some(fix) = check
        .fix
        .as_ref()
        .filter(|_| check.outcome != Outcome::Pass)
    {
        ui.indent(("doctor-fix", check.id.number()), |ui| {
            ui.horizontal_wrapped(|ui| {
                if ui.small_button("copy fix").clicked() {
                    ui.ctx().copy_text(fix.clone());
                }
                ui.add(
                    egui::Label::new(RichText::new(format!("fix: {fix}")).color(WAITING)).wrap(),
                );
            });
        });
    }
}
