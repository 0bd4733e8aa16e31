//! Plots: request latency over time coloured by replica, Engine.IO packets per replica per
//! second, failures per second.

use eframe::egui;
use egui::Ui;
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points};

use super::theme::{replica_color, FAILURE};
use crate::model::Series;

/// Draws the three plots side by side.
pub fn plots_ui(ui: &mut Ui, series: &Series) {
    let height = ui.available_height().max(120.0);
    let width = (ui.available_width() / 3.0 - 8.0).max(150.0);
    let x_max = series.latest().max(10.0);
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("request latency (ms) by replica");
            Plot::new("latency")
                .legend(Legend::default())
                .height(height - 24.0)
                .width(width)
                .include_y(0.0)
                .include_x(x_max - 60.0)
                .include_x(x_max)
                .x_axis_label("s")
                .show(ui, |plot| {
                    for (replica, points) in &series.latency {
                        let pts: Vec<[f64; 2]> = points.iter().copied().collect();
                        plot.points(
                            Points::new(format!("replica {replica}"), PlotPoints::from(pts))
                                .color(replica_color(Some(replica)))
                                .radius(2.5),
                        );
                    }
                });
        });
        ui.vertical(|ui| {
            ui.label("Engine.IO packets per second by replica");
            Plot::new("packets")
                .legend(Legend::default())
                .height(height - 24.0)
                .width(width)
                .include_y(0.0)
                .include_x(x_max - 60.0)
                .include_x(x_max)
                .x_axis_label("s")
                .show(ui, |plot| {
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
        });
        ui.vertical(|ui| {
            ui.label("failures per second");
            Plot::new("failures")
                .height(height - 24.0)
                .width(width)
                .include_y(0.0)
                .include_y(3.0)
                .include_x(x_max - 60.0)
                .include_x(x_max)
                .x_axis_label("s")
                .show(ui, |plot| {
                    let bars: Vec<Bar> = series
                        .failures
                        .iter()
                        .map(|(s, n)| Bar::new(*s as f64 + 0.5, f64::from(*n)).width(0.9))
                        .collect();
                    plot.bar_chart(BarChart::new("failures", bars).color(FAILURE));
                });
        });
    });
}
