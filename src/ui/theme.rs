//! Colours and styles: one colour per replica, the two themes, presentation mode.

use eframe::egui;
use egui::{Color32, Context, FontId, TextStyle, Visuals};

use super::settings::{Settings, ThemeChoice};

/// Colour-blind-friendly palette (Okabe–Ito), one per replica id.
const PALETTE: [Color32; 8] = [
    Color32::from_rgb(0, 114, 178),
    Color32::from_rgb(230, 159, 0),
    Color32::from_rgb(0, 158, 115),
    Color32::from_rgb(204, 121, 167),
    Color32::from_rgb(86, 180, 233),
    Color32::from_rgb(213, 94, 0),
    Color32::from_rgb(240, 228, 66),
    Color32::from_rgb(150, 150, 150),
];

/// Red for refusals.
pub const FAILURE: Color32 = Color32::from_rgb(220, 40, 40);
/// Green for "connected" and "UP".
pub const OK: Color32 = Color32::from_rgb(40, 170, 80);
/// Amber for "trying".
pub const WAITING: Color32 = Color32::from_rgb(230, 150, 0);

/// The colour of a replica.
pub fn replica_color(id: Option<&str>) -> Color32 {
    let Some(id) = id else {
        return Color32::GRAY;
    };
    let index = id
        .parse::<usize>()
        .map(|n| n.saturating_sub(1))
        .unwrap_or_else(|_| id.bytes().map(usize::from).sum());
    PALETTE[index % PALETTE.len()]
}

/// Applies theme and presentation mode.
pub fn apply(ctx: &Context, settings: &Settings) {
    let mut visuals = match settings.theme {
        ThemeChoice::Dark => Visuals::dark(),
        ThemeChoice::Light => Visuals::light(),
    };
    if settings.presentation {
        // High contrast: pure background, strong text, thicker strokes.
        let (bg, fg) = match settings.theme {
            ThemeChoice::Dark => (Color32::BLACK, Color32::WHITE),
            ThemeChoice::Light => (Color32::WHITE, Color32::BLACK),
        };
        visuals.panel_fill = bg;
        visuals.window_fill = bg;
        visuals.extreme_bg_color = bg;
        visuals.override_text_color = Some(fg);
        visuals.widgets.noninteractive.bg_stroke.width = 1.5;
    }
    ctx.set_visuals(visuals);
    let scale = if settings.presentation { 1.45 } else { 1.0 };
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (TextStyle::Heading, FontId::proportional(20.0 * scale)),
            (TextStyle::Body, FontId::proportional(14.5 * scale)),
            (TextStyle::Monospace, FontId::monospace(13.0 * scale)),
            (TextStyle::Button, FontId::proportional(14.5 * scale)),
            (TextStyle::Small, FontId::proportional(11.5 * scale)),
        ]
        .into();
    });
}

/// Text size for labels painted on the topology.
pub fn paint_size(settings: &Settings) -> f32 {
    if settings.presentation {
        19.0
    } else {
        13.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character outside ASCII that the window's source writes must have a glyph in
    /// egui's default fonts: a missing one is tofu on screen (and a panic in debug builds).
    #[test]
    fn every_character_the_ui_writes_has_a_glyph() {
        let sources = [
            include_str!("app.rs"),
            include_str!("chat_ui.rs"),
            include_str!("controls_ui.rs"),
            include_str!("help_ui.rs"),
            include_str!("log_ui.rs"),
            include_str!("plots_ui.rs"),
            include_str!("topology_ui.rs"),
            include_str!("placement.rs"),
            include_str!("recording.rs"),
            include_str!("../session/mod.rs"),
            include_str!("../model/flights.rs"),
        ];
        let ctx = Context::default();
        let mut output = ctx.run_ui(Default::default(), |_| {});
        output.textures_delta.clear();
        let missing: Vec<char> = ctx.fonts_mut(|fonts| {
            let mut missing: Vec<char> = sources
                .iter()
                .flat_map(|s| s.lines())
                .filter(|line| !line.trim_start().starts_with("//"))
                .flat_map(|line| line.chars())
                .filter(|c| !c.is_ascii())
                .filter(|c| !fonts.has_glyph(&FontId::proportional(14.0), *c))
                .collect();
            missing.sort();
            missing.dedup();
            missing
        });
        assert!(missing.is_empty(), "no glyph for {missing:?}");
    }
}
