//! The packet log: a filterable table of wire records; the selected one shows its raw
//! payload and decoding.

use eframe::egui;
use egui::{RichText, ScrollArea, Ui};

use super::theme::{replica_color, FAILURE};
use crate::model::log::{row_text, LogFilter, Matches};
use crate::model::PacketLog;
use stickyscope_vocab::record::WireRecord;

/// The log's own UI state.
#[derive(Debug, Default)]
pub struct LogView {
    /// Filters.
    pub filter: LogFilter,
    /// Selected record (its log id, so it stays selected while older records go).
    pub selected: Option<u64>,
    /// The records passing the filter, kept up to date.
    matches: Matches,
}

/// Draws the log; returns true when the user asked to export.
pub fn log_ui(
    ui: &mut Ui,
    log: &PacketLog,
    view: &mut LogView,
    users: &[String],
    replicas: &[String],
) -> bool {
    let mut export = false;
    ui.horizontal_wrapped(|ui| {
        combo(ui, "log-user", "user", &mut view.filter.user, users);
        combo(
            ui,
            "log-replica",
            "replica",
            &mut view.filter.replica,
            replicas,
        );
        ui.label("kind");
        ui.add(
            egui::TextEdit::singleline(&mut view.filter.kind)
                .hint_text("ping, chat, upgrade…")
                .desired_width(120.0),
        );
        ui.checkbox(&mut view.filter.failures_only, "failures only");
        ui.label(RichText::new(format!("{} kept of {} seen", log.len(), log.total())).weak());
        if ui.button("export JSON Lines").clicked() {
            export = true;
        }
    });
    let rows = view.matches.update(log, &view.filter);
    let detail_height = if view.selected.is_some() {
        ui.available_height() * 0.45
    } else {
        0.0
    };
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 4.0;
    ScrollArea::vertical()
        .id_salt("log-rows")
        .stick_to_bottom(true)
        .auto_shrink([false, false])
        .max_height(ui.available_height() - detail_height)
        .show_rows(ui, row_height, rows.len(), |ui, range| {
            for &id in rows.range(range) {
                let Some(record) = log.get(id) else {
                    continue;
                };
                let selected = view.selected == Some(id);
                let text = RichText::new(row_text(record))
                    .monospace()
                    .color(row_color(record));
                if ui.selectable_label(selected, text).clicked() {
                    view.selected = if selected { None } else { Some(id) };
                }
            }
        });
    if let Some(record) = view.selected.and_then(|i| log.get(i)) {
        ui.separator();
        ScrollArea::vertical()
            .id_salt("log-detail")
            .show(ui, |ui| detail_ui(ui, record));
    }
    export
}

fn combo(ui: &mut Ui, id: &str, label: &str, value: &mut Option<String>, options: &[String]) {
    egui::ComboBox::new(id, label)
        .selected_text(value.as_deref().unwrap_or("any"))
        .show_ui(ui, |ui| {
            ui.selectable_value(value, None, "any");
            for o in options {
                ui.selectable_value(value, Some(o.clone()), o);
            }
        });
}

fn row_color(r: &WireRecord) -> egui::Color32 {
    if r.failure.is_some() {
        FAILURE
    } else {
        replica_color(r.replica.as_deref())
    }
}

fn detail_ui(ui: &mut Ui, r: &WireRecord) {
    ui.label(
        RichText::new(format!(
            "{} · {:?} · sid {} · replica {} ({}) · {} · up {} B, down {} B",
            r.user,
            r.transport,
            r.sid.as_deref().unwrap_or("-"),
            r.replica.as_deref().unwrap_or("-"),
            r.replica_addr.as_deref().unwrap_or("-"),
            r.timing()
                .map(|t| t.describe())
                .or_else(|| r.latency_us.map(|us| format!("{us} us")))
                .unwrap_or_else(|| "-".into()),
            r.bytes_up,
            r.bytes_down
        ))
        .strong(),
    );
    match (&r.replica_source, &r.unnamed) {
        (Some(source), _) => {
            ui.label(format!("replica named by {source}"));
        }
        (None, Some(why)) => {
            ui.label(format!("replica unknown: {why}"));
        }
        (None, None) => {}
    }
    if let Some(engineio) = r.engineio {
        ui.label(format!("Engine.IO v{engineio}"));
    }
    if let Some(f) = &r.failure {
        ui.colored_label(FAILURE, format!("failure ({:?}): {}", f.kind, f.reason));
    }
    if let Some(note) = &r.note {
        ui.label(note);
    }
    for (title, raw, packets) in [
        ("client to server", &r.raw_up, &r.packets_up),
        ("server to client", &r.raw_down, &r.packets_down),
    ] {
        if raw.is_empty() && packets.is_empty() {
            continue;
        }
        ui.label(RichText::new(title).strong());
        ui.label(RichText::new(raw.replace('\u{1e}', "<RS>")).monospace());
        for p in packets {
            let text = serde_json::to_string(p).unwrap_or_default();
            ui.label(RichText::new(format!("  {text}")).monospace().weak());
        }
    }
}
