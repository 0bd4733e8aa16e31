//! Plots: request latency over time coloured by replica, Engine.IO packets per replica per
//! second, failures per second.

use eframe::egui;
use egui::Ui;
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points};

use super::theme::{replica_color, FAILURE};
use crate::model::series::{failure_bars, points_for_width, thin, Fold};
use crate::model::Series;
use crate::topology::replica_name;

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
            .legend(Legend::default().position(egui_plot::Corner::LeftTop))
    };
    ui.columns(3, |columns| {
        // Every request as a point while they are few; per-second mean (bold line) and max
        // (faint line) when they are too many to draw one by one.
        let complete = series.latency_is_complete();
        let height = title(
            &mut columns[0],
            if complete {
                "request latency (ms) by replica"
            } else {
                "request latency (ms) by replica: per-second mean (bold) and max (faint)"
            },
        );
        plot("latency")
            .height(height)
            .show(&mut columns[0], |plot| {
                let max_points = points_for_width(plot.transform().frame().width());
                for (replica, track) in &series.latency {
                    let color = replica_color(Some(replica));
                    let name = replica_name(replica);
                    if complete {
                        let pts: Vec<[f64; 2]> = track.points.iter().copied().collect();
                        plot.points(
                            Points::new(name, PlotPoints::from(pts))
                                .color(color)
                                .radius(2.5),
                        );
                        continue;
                    }
                    let at = |s: &crate::model::series::LatencySecond| s.second as f64 + 0.5;
                    let max: Vec<[f64; 2]> =
                        track.seconds.iter().map(|s| [at(s), s.max_ms]).collect();
                    let max = thin(&max, max_points, Fold::Max);
                    let mean: Vec<[f64; 2]> =
                        track.seconds.iter().map(|s| [at(s), s.mean_ms]).collect();
                    let mean = thin(&mean, max_points, Fold::Mean);
                    plot.line(
                        Line::new(name.clone(), PlotPoints::from(max))
                            .color(color.gamma_multiply(0.45))
                            .width(1.0),
                    );
                    plot.line(
                        Line::new(name, PlotPoints::from(mean))
                            .color(color)
                            .width(2.0),
                    );
                }
            });
        let height = title(&mut columns[1], "Engine.IO packets per second by replica");
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
