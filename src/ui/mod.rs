//! The desktop window (eframe/egui). It draws the view model and turns clicks and keys into
//! commands; it never opens a socket: the conductor runs on its own runtime behind
//! [`bridge::ConductorBridge`].
//!
//! Drawing functions are named `*_ui`.

pub mod app;
pub mod banners;
pub mod bridge;
pub mod chat_ui;
pub mod controls_ui;
pub mod doctor_ui;
pub mod help_ui;
pub mod log_ui;
pub mod placement;
pub mod plots_ui;
pub mod recording;
pub mod scenario_ui;
pub mod settings;
pub mod theme;
pub mod timeline_ui;
pub mod topology_scene;
pub mod topology_ui;

pub use app::{ScreenshotPlan, StickyscopeApp};

/// The window's icon (`assets/icon.png`, drawn by `scripts/make-icon.sh`).
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/icon.png");
