//! The help overlay and the notice banner.

use eframe::egui;
use egui::{Context, RichText, Ui};

use super::theme::{FAILURE, WAITING};
use stickyscope_vocab::events::{Notice, NoticeLevel};

/// Keyboard shortcuts, as listed in the overlay.
pub const SHORTCUTS: [(&str, &str); 15] = [
    ("S", "stickiness on / off for both users"),
    ("T", "next transport for both users"),
    (
        "P",
        "pause / resume the packets (looking back: play / pause the timeline)",
    ),
    ("[ and ]", "the failure before / after, on the timeline"),
    ("Home", "the first moment the timeline keeps"),
    ("End", "back to live (a recording: its end)"),
    ("L", "show / fold the plots and the packet log"),
    ("R", "record the window to a GIF clip / stop"),
    ("Shift+R", "record the topology alone / stop"),
    ("F11", "full screen"),
    (
        "Ctrl+E",
        "export the last minutes as a capture (stickyscope open reads it)",
    ),
    ("Right or PageDown", "a scenario's next step"),
    ("Left or PageUp", "a scenario's step before"),
    ("F1 or ?", "this help"),
    ("Esc", "close this help"),
];

/// Draws the help overlay while `open`.
pub fn help_ui(ctx: &Context, open: &mut bool) {
    if !*open {
        return;
    }
    let modal = egui::Modal::new(egui::Id::unique("stickyscope-help")).show(ctx, |ui| {
        ui.heading("Keyboard shortcuts");
        egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
            for (key, what) in SHORTCUTS {
                ui.label(RichText::new(key).monospace().strong());
                ui.label(what);
                ui.end_row();
            }
        });
        ui.add_space(8.0);
        ui.label("Packets travel from the user through the gateway to the replica that handled them,");
        ui.label("coloured by replica. A red cross marks a refusal where it happened: hover it for the reason.");
        ui.add_space(8.0);
        if ui.button("Close").clicked() {
            ui.close();
        }
    });
    if modal.should_close() {
        *open = false;
    }
}

/// Draws the banner of current notices; returns the index of one the user dismissed.
pub fn banner_ui(ui: &mut Ui, notices: &[(Notice, f64)]) -> Option<usize> {
    let mut dismissed = None;
    for (i, (notice, _)) in notices.iter().enumerate() {
        let color = match notice.level {
            NoticeLevel::Info => ui.visuals().weak_text_color(),
            NoticeLevel::Warning => WAITING,
            NoticeLevel::Error => FAILURE,
        };
        ui.horizontal(|ui| {
            ui.colored_label(color, RichText::new(&notice.text).strong());
            if ui
                .small_button("dismiss")
                .on_hover_text("dismiss")
                .clicked()
            {
                dismissed = Some(i);
            }
        });
    }
    dismissed
}
