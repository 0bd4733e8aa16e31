//! The window driven headless (egui_kittest) on a fresh embedded stack, and bounded waits on
//! what it shows.

use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use stickyscope::stack::embedded::EmbeddedConfig;
use stickyscope::stack::GatewayConfig;
use stickyscope::ui::settings::Settings;
use stickyscope::ui::StickyscopeApp;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::stack::Adapter;

/// The window at 1440×900 on an embedded stack of 3 replicas with a 300 ms heartbeat.
pub fn on_embedded() -> Harness<'static, StickyscopeApp> {
    on_embedded_then(|_| {})
}

/// The same, `setup` given the app before its first frame.
pub fn on_embedded_then(
    setup: impl FnOnce(&mut StickyscopeApp) + 'static,
) -> Harness<'static, StickyscopeApp> {
    let settings = Settings {
        ping_interval_ms: 300,
        ..Settings::default()
    };
    let gateway = GatewayConfig::Embedded(EmbeddedConfig {
        replicas: 3,
        listen: "127.0.0.1:0".parse().unwrap(),
        heartbeat: Heartbeat {
            interval: Duration::from_millis(300),
            timeout: Duration::from_millis(600),
        },
        adapter: Adapter::Memory,
        redis_url: None,
        health_interval: Duration::from_millis(200),
        ..Default::default()
    });
    Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .build_eframe(move |cc| {
            let mut app = StickyscopeApp::new(&cc.egui_ctx, settings, gateway, None, false);
            setup(&mut app);
            app
        })
}

/// Steps the UI until `condition` holds on the app, or panics after `bound`.
pub fn step_until(
    harness: &mut Harness<'_, StickyscopeApp>,
    bound: Duration,
    what: &str,
    condition: impl Fn(&StickyscopeApp) -> bool,
) {
    let deadline = Instant::now() + bound;
    loop {
        harness.step();
        if condition(harness.state()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {bound:?} waiting for {what}; doctor: {:?}",
            harness.state().model().doctor
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
