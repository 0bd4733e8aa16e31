//! Building the window: on a live stack (starting its conductor, with the heartbeat the
//! settings ask for), around a bridge given (benchmarks and tests), or on a recording
//! (`stickyscope open`: no conductor, the timeline standing at its start).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use stickyscope_contract::chat::USERS;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::events::NoticeLevel;
use stickyscope_vocab::stack::Adapter;

use super::super::banners::Banners;
use super::super::bridge::ConductorBridge;
use super::super::chat_ui::ChatInput;
use super::super::doctor_ui::DoctorPanel;
use super::super::log_ui::LogView;
use super::super::recording::Recording;
use super::super::settings::Settings;
use super::super::theme;
use super::{Screenshot, ScreenshotOutcome, ScreenshotPlan, StickyscopeApp};
use crate::conductor::ConductorConfig;
use crate::event_sink::Wake;
use crate::model::rest::REST_REFRESH_SECS;
use crate::model::review::{Review, TimelineAction};
use crate::model::{Rest, ViewModel};
use crate::scenario::capabilities::Capabilities;
use crate::stack::GatewayConfig;

impl StickyscopeApp {
    /// Builds the app and starts the conductor. `settings` come from storage (or defaults);
    /// `gateway` says which stack.
    pub fn new(
        ctx: &egui::Context,
        settings: Settings,
        mut gateway: GatewayConfig,
        screenshot: Option<(ScreenshotPlan, ScreenshotOutcome)>,
        persist: bool,
    ) -> Self {
        let capabilities = crate::scenario::run::capabilities_of(&gateway);
        let mode = gateway.mode();
        let mut adapter_on = true;
        let ping = Duration::from_millis(settings.ping_interval_ms.clamp(200, 600_000));
        let mut heartbeat = Heartbeat {
            interval: ping,
            timeout: Heartbeat::default().timeout.max(ping),
        };
        match &mut gateway {
            GatewayConfig::Embedded(stack) => {
                stack.heartbeat = Heartbeat {
                    interval: ping,
                    timeout: stack.heartbeat.timeout.max(ping),
                };
                heartbeat = stack.heartbeat;
                adapter_on = stack.adapter != Adapter::None;
            }
            GatewayConfig::Chain(chain) => {
                chain.heartbeat = Heartbeat {
                    interval: ping,
                    timeout: chain.heartbeat.timeout.max(ping),
                };
                heartbeat = chain.heartbeat;
                adapter_on = chain.adapter.is_on();
            }
            GatewayConfig::External { .. } => {}
        }
        let resting = Arc::new(AtomicBool::new(false));
        let repaint = ctx.clone();
        let waker_resting = Arc::clone(&resting);
        let bridge = ConductorBridge::start(
            ConductorConfig {
                gateway,
                transport: settings.transport,
                sticky: settings.sticky,
                chat: settings.chat,
            },
            Arc::new(move |wake| {
                if wake == Wake::Heartbeat && waker_resting.load(Ordering::Relaxed) {
                    repaint.request_repaint_after(Duration::from_secs_f64(REST_REFRESH_SECS));
                } else {
                    repaint.request_repaint();
                }
            }),
        );
        let mut app = Self::assemble(
            ctx,
            settings,
            bridge,
            (capabilities, mode, adapter_on),
            screenshot,
            persist,
            resting,
        );
        app.heartbeat = heartbeat;
        app
    }

    /// Builds the app around an existing bridge (a [detached] one in benchmarks and tests),
    /// nothing persisted; `controls` says whether the stack's replica controls apply.
    ///
    /// [detached]: ConductorBridge::detached
    pub fn with_bridge(
        ctx: &egui::Context,
        settings: Settings,
        bridge: ConductorBridge,
        controls: bool,
    ) -> Self {
        let mode = if controls {
            "embedded stack"
        } else {
            "gateway"
        }
        .to_owned();
        let capabilities = Capabilities {
            controls,
            stats: controls,
            numbered_replicas: controls,
            redis_adapter: false,
        };
        Self::assemble(
            ctx,
            settings,
            bridge,
            (capabilities, mode, true),
            None,
            false,
            Arc::new(AtomicBool::new(false)),
        )
    }

    /// Builds the app on a recording instead of a live stack: no conductor, nothing that
    /// would change a stack; the timeline plays it from its start. `file` names it.
    pub fn recorded(
        ctx: &egui::Context,
        settings: Settings,
        opened: crate::recorded::Opened,
        file: &str,
        screenshot: Option<(ScreenshotPlan, ScreenshotOutcome)>,
    ) -> Self {
        let header = &opened.header;
        let started = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis(header.started_ms),
        );
        let label = format!(
            "{file} · {} of {} · {started}",
            header.source, header.gateway
        );
        // No conductor: the bridge's other end is dropped at once.
        let (bridge, _) = ConductorBridge::detached(&label, 16);
        let capabilities = Capabilities {
            controls: false,
            stats: false,
            numbered_replicas: false,
            redis_adapter: false,
        };
        let mut app = Self::assemble(
            ctx,
            settings,
            bridge,
            (
                capabilities,
                super::super::controls_ui::RECORDING.to_owned(),
                true,
            ),
            screenshot,
            false,
            Arc::new(AtomicBool::new(false)),
        );
        // The chat panes: the agent and the visitor when the recording has them, else its
        // first users (a probe's sessions).
        let users = &opened.users;
        app.panes = if USERS.iter().all(|u| users.iter().any(|x| x == u)) {
            USERS.iter().map(|u| u.to_string()).collect()
        } else {
            users.iter().take(2).cloned().collect()
        };
        app.recorded_start_ms = Some(header.started_ms);
        for note in &opened.notes {
            app.local_notice(NoticeLevel::Warning, note.clone());
        }
        app.model = opened.last;
        app.review = Review::recorded(opened.timeline);
        app
    }

    /// Shows the moment `at` seconds into the timeline, paused there.
    pub fn pause_at(&mut self, at: f64) {
        self.timeline_action(TimelineAction::Seek(at));
        if self.review.playing() {
            self.timeline_action(TimelineAction::PlayPause);
        }
    }

    fn assemble(
        ctx: &egui::Context,
        settings: Settings,
        bridge: ConductorBridge,
        (capabilities, mode, adapter_on): (Capabilities, String, bool),
        screenshot: Option<(ScreenshotPlan, ScreenshotOutcome)>,
        persist: bool,
        resting: Arc<AtomicBool>,
    ) -> Self {
        theme::apply(ctx, &settings);
        let settings_style = (settings.theme, settings.presentation);
        let model = ViewModel::new(&USERS, settings.sticky, settings.transport);
        StickyscopeApp {
            bridge,
            review: Review::live(model.clone(), 0.0),
            model,
            panes: USERS.iter().map(|u| u.to_string()).collect(),
            recorded_start_ms: None,
            capture: None,
            inputs: USERS
                .iter()
                .map(|u| (u.to_string(), ChatInput::default()))
                .collect(),
            log_view: LogView::default(),
            doctor_panel: DoctorPanel::default(),
            capabilities,
            mode,
            adapter_on,
            paused: false,
            help: false,
            fullscreen: false,
            clock: 0.0,
            last_time: None,
            screenshot: screenshot.map(|(plan, outcome)| Screenshot {
                plan,
                started: Instant::now(),
                requested: false,
                outcome,
            }),
            settings,
            persist,
            crowd: 0,
            applied_style: (settings_style.0, settings_style.1),
            rest: Rest::default(),
            banners: Banners::default(),
            resting,
            heartbeat: Heartbeat::default(),
            scenario: None,
            waiting_scenario: None,
            topology_drawn: None,
            details_folded: settings_style.1,
            recording: Recording::default(),
        }
    }
}
