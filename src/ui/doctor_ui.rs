//! The doctor's panel: a button that runs `stickyscope doctor`'s checklist on the stack the
//! window shows (with the page's origin, for the CORS check), then each check as it comes —
//! its word in colour and what it found in a line, its fix with a button that copies it,
//! and the evidence it saw folded under it.

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

/// One check in a line or two: its word, number and title, what it found; the fix (with a
/// copy button) for anything short of PASS; the evidence folded under it.
fn check_row_ui(ui: &mut Ui, check: &stickyscope_vocab::doctor::CheckResult) {
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new(format!("{:<7}", check.outcome.word()))
                .monospace()
                .strong()
                .color(outcome_color(check.outcome)),
        );
        ui.label(RichText::new(format!("{:>2}. {}", check.id.number(), check.id.title())).strong());
        ui.label(RichText::new(format!("— {}", check.summary)).weak());
    });
    let fix = check
        .fix
        .as_ref()
        .filter(|_| check.outcome != Outcome::Pass);
    if fix.is_none() && check.evidence.is_empty() {
        return;
    }
    ui.indent(("doctor-check", check.id.number()), |ui| {
        if let Some(fix) = fix {
            ui.horizontal_wrapped(|ui| {
                if ui.small_button("copy fix").clicked() {
                    ui.ctx().copy_text(fix.clone());
                }
                ui.label(RichText::new(format!("fix: {fix}")).color(WAITING));
            });
        }
        if !check.evidence.is_empty() {
            egui::CollapsingHeader::new(format!("evidence ({} lines)", check.evidence.len()))
                .id_salt(("doctor-evidence", check.id.number()))
                .show(ui, |ui| {
                    for line in &check.evidence {
                        ui.label(RichText::new(line).monospace().small());
                    }
                });
        }
    });
}
