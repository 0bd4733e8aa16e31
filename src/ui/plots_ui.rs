//! Plots: round trips and long-poll holds over time coloured by replica (on a log scale, so
//! a 1 ms round trip and a 3 s hold both read), Engine.IO packets per replica per second,
//! failures per second.

use eframe::egui;
use egui::Ui;
use egui_plot::{
    Bar, BarChart, GridMark, HoverPosition, Line, LineStyle, MarkerShape, Plot, PlotPoints, Points,
};

use super::theme::{replica_color, FAILURE};
use crate::model::series::{failure_bars, points_for_width, thin, Fold, LatencyTrack};
use crate::model::Series;
use stickyscope_vocab::topology::replica_name;

/// A one-line title; returns the height left for the plot under it.
fn title(ui: &mut Ui, text: &str) -> f32 {
    ui.add(egui::Label::new(text).truncate());
    ui.available_height().max(40.0)
}

/// Draws the three plots side by side.
pub fn plots_ui(ui: &mut Ui, series: &Series) {
    // The last minute, from the session's start until a minute has passed (no negative time).
    let x_max = series.latest().max(10.0);
    let plot = |id: &str| {
        Plot::new(id.to_owned())
            .include_y(0.0)
            .include_x((x_max - 60.0).max(0.0))
            .include_x(x_max)
            .x_axis_label("s")
    };
    ui.columns(3, |columns| {
        latency_ui(&mut columns[0], series, plot("latency"));
        let height = title(&mut columns[1], "Engine.IO packets per second");
        plot("packets")
            .height(height)
            .show(&mut columns[1], |plot| {
                let max_points = points_for_width(plot.transform().frame().width());
                for (replica, counts) in &series.packets {
                    let pts: Vec<[f64; 2]> = counts
                        .iter()
                        .map(|(s, n)| [*s as f64, f64::from(*n)])
                        .collect();
                    let pts = thin(&pts, max_points, Fold::Mean);
                    plot.line(
                        Line::new(replica_name(replica), PlotPoints::from(pts))
                            .color(replica_color(Some(replica))),
                    );
                }
            });
        let bars = failure_bars(
            &series.failures,
            points_for_width(columns[2].available_width()),
        );
        let binned = bars.first().map_or(1, |b| b.seconds);
        let height = title(
            &mut columns[2],
            &if binned > 1 {
                format!("failures per second (peak of each {binned} s)")
            } else {
                "failures per second".to_owned()
            },
        );
        plot("failures")
            .include_y(3.0)
            .height(height)
            .show(&mut columns[2], |plot| {
                let bars: Vec<Bar> = bars
                    .iter()
                    .map(|b| {
                        Bar::new(b.center, f64::from(b.peak)).width(f64::from(b.seconds) * 0.9)
                    })
                    .collect();
                plot.bar_chart(BarChart::new("failures", bars).color(FAILURE));
            });
    });
}

/// The legend's name for long polls (one entry for every replica's).
const HELD_NAME: &str = "long polls, held until the next packet";

/// Plotted height of a time: its log, so decades are evenly spaced.
fn log_ms(ms: f64) -> f64 {
    ms.max(0.01).log10()
}

/// A time in ms (or s), for an axis mark or a hover.
fn ms_text(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms} ms")
    }
}

/// Round trips as dots and long-poll holds as rings, by replica, on a log scale; per-second
/// mean and max lines (dashed for holds) when there are too many to draw one by one.
fn latency_ui(ui: &mut Ui, series: &Series, plot: Plot<'_>) {
    let complete = series.latency_is_complete();
    ui.add(
        egui::Label::new(if complete {
            "latency (ms, log scale)"
        } else {
            "latency per second (ms, log scale)"
        })
        .truncate(),
    );
    key_ui(ui, complete);
    let height = ui.available_height().max(40.0);
    let plot = plot
        .height(height)
        .y_grid_spacer(|input| {
            // 10 µs to 11 days is all a latency can be; however far the plot is zoomed out,
            // a dozen marks at most.
            let (low, high) = (input.bounds.0.max(-2.0), input.bounds.1.min(9.0));
            // A decade at the very top would print its label over the title.
            let top = high - (high - low) * 0.06;
            let step = ((top - low) / 8.0).ceil().max(1.0) as i64;
            (low.floor() as i64..=top.floor() as i64)
                .filter(|decade| decade % step == 0)
                .map(|decade| GridMark {
                    value: decade as f64,
                    step_size: step as f64,
                })
                .collect()
        })
        .y_axis_formatter(|mark, _| ms_text(10f64.powf(mark.value)))
        .label_formatter(|hover| match hover {
            HoverPosition::NearDataPoint {
                plot_name,
                position,
                ..
            } => Some(format!(
                "{plot_name}\n{} at {:.1} s",
                ms_text((10f64.powf(position.y) * 10.0).round() / 10.0),
                position.x
            )),
            HoverPosition::Elsewhere { .. } => None,
        });
    plot.show(ui, |plot| {
        let max_points = points_for_width(plot.transform().frame().width());
        let tracks = |held: bool| {
            let map = if held { &series.held } else { &series.latency };
            map.iter()
                .map(move |(replica, track)| (replica, track, held))
        };
        for (replica, track, held) in tracks(false).chain(tracks(true)) {
            let color = replica_color(Some(replica));
            let name = if held {
                HELD_NAME.to_owned()
            } else {
                replica_name(replica)
            };
            if complete {
                let pts: Vec<[f64; 2]> =
                    track.points.iter().map(|p| [p[0], log_ms(p[1])]).collect();
                let points = Points::new(name, PlotPoints::from(pts)).color(color);
                plot.points(if held {
                    points.shape(MarkerShape::Circle).filled(false).radius(4.0)
                } else {
                    points.radius(2.5)
                });
                continue;
            }
            summary_lines(plot, track, &name, color, held, max_points);
        }
    });
}

/// The latency plot's key, in words and the marks themselves (`complete`: one mark per
/// request; else per-second lines): colours are the replicas'.
fn key_ui(ui: &mut Ui, complete: bool) {
    if !complete {
        ui.label(
            egui::RichText::new(
                "solid: round trips, dashed: long polls held until the next packet; bold: mean, faint: max",
            )
            .small(),
        );
        return;
    }
    ui.horizontal_wrapped(|ui| {
        let color = ui.visuals().text_color();
        let size = ui.text_style_height(&egui::TextStyle::Small);
        for (filled, words) in [
            (true, "round trip"),
            (false, "long poll, held until the next packet"),
        ] {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
            if filled {
                ui.painter()
                    .circle_filled(rect.center(), size * 0.25, color);
            } else {
                ui.painter().circle_stroke(
                    rect.center(),
                    size * 0.35,
                    egui::Stroke::new(1.2, color),
                );
            }
            ui.label(egui::RichText::new(words).small());
        }
    });
}

/// One track's per-second mean (bold) and max (faint) lines; dashed for holds.
fn summary_lines(
    plot: &mut egui_plot::PlotUi<'_>,
    track: &LatencyTrack,
    name: &str,
    color: egui::Color32,
    held: bool,
    max_points: usize,
) {
    let at = |s: &crate::model::series::LatencySecond| s.second as f64 + 0.5;
    let line = |fold: Fold, value: fn(&crate::model::series::LatencySecond) -> f64| {
        let pts: Vec<[f64; 2]> = track
            .seconds
            .iter()
            .map(|s| [at(s), log_ms(value(s))])
            .collect();
        thin(&pts, max_points, fold)
    };
    let style = if held {
        LineStyle::dashed_loose()
    } else {
        LineStyle::Solid
    };
    plot.line(
        Line::new(name, PlotPoints::from(line(Fold::Max, |s| s.max_ms)))
            .color(color.gamma_multiply(0.45))
            .style(style)
            .width(1.0),
    );
    plot.line(
        Line::new(name, PlotPoints::from(line(Fold::Mean, |s| s.mean_ms)))
            .color(color)
            .style(style)
            .width(2.0),
    );
}
