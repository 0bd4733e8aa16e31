//! Plots: request latency over time coloured by replica, Engine.IO packets per replica per
//! second, failures per second.

use eframe::egui;
use egui::Ui;
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points};

use super::theme::{replica_color, FAILURE};
use crate::model::Series;

/// A one-line title; returns the height left for the plot under it.
fn title(ui: &mut Ui, text: &str) -> f32 {
    ui.add(egui::Label::new(text).truncate());
    ui.available_height().max(40.0)
}

/// Draws the three plots side by side.
pub fn plots_ui(ui: &mut Ui, series: &Series) {
    let x_max = series.latest().max(10.0);
    let plot = |id: &str| {
        Plot::new(id.to_owned())
            .include_y(0.0)
            .include_x(x_max - 60.0)
            .include_x(x_max)
            .x_axis_label("s")
            .legend(Legend::default().position(egui_plot::Corner::LeftTop))
    };
    ui.columns(3, |columns| {
        columns[0].label("request latency (ms) by replica");
        let height = columns[0].available_height();
        plot("latency")
            .height(height)
            .show(&mut columns[0], |plot| {
                for (replica, points) in &series.latency {
                    let pts: Vec<[f64; 2]> = points.iter().copied().collect();
                    plot.points(
                        Points::new(format!("replica {replica}"), PlotPoints::from(pts))
                            .color(replica_color(Some(replica)))
                            .radius(2.5),
                    );
                }
            });
        let height = title(&mut columns[1], "Engine.IO packets per second by replica");
        plot("packets")
            .height(height)
            .show(&mut columns[1], |plot| {
                for (replica, counts) in &series.packets {
                    let pts: Vec<[f64; 2]> = counts
                        .iter()
                        .map(|(s, n)| [*s as f64, f64::from(*n)])
                        .collect();
                    plot.line(
                        Line::new(format!("replica {replica}"), PlotPoints::from(pts))
                            .color(replica_color(Some(replica))),
                    );
                }
            });
        let height = title(&mut columns[2], "failures per second");
        plot("failures")
            .include_y(3.0)
            .height(height)
            .show(&mut columns[2], |plot| {
                let bars: Vec<Bar> = series
                    .failures
                    .iter()
                    .map(|(s, n)| Bar::new(*s as f64 + 0.5, f64::from(*n)).width(0.9))
                    .collect();
                plot.bar_chart(BarChart::new("failures", bars).color(FAILURE));
            });
    });
}
