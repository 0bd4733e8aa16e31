//! What the keyboard and the top bar ask of the window: shortcuts (the stickiness switch,
//! the transport, pause, the details, clips, help, export, and the timeline's keys), and
//! the top bar's actions turned into commands or settings.

use eframe::egui;
use egui::Key;
use std::time::Duration;
use stickyscope_contract::heartbeat::Heartbeat;

use super::super::controls_ui::TopAction;
use super::super::recording::ClipArea;
use super::super::scenario_ui::CaptionAction;
use super::StickyscopeApp;
use crate::model::review::TimelineAction;
use stickyscope_vocab::events::{Command, NoticeLevel, TransportChoice};
use stickyscope_vocab::stack::Adapter;

impl StickyscopeApp {
    pub(super) fn shortcuts(&mut self, ctx: &egui::Context) {
        let typing = ctx.egui_wants_keyboard_input();
        let (next, back) = ctx.input(|i| {
            (
                i.key_pressed(Key::ArrowRight) || i.key_pressed(Key::PageDown),
                i.key_pressed(Key::ArrowLeft) || i.key_pressed(Key::PageUp),
            )
        });
        if !typing && next {
            self.scenario_go(CaptionAction::Next);
        }
        if !typing && back {
            self.scenario_go(CaptionAction::Back);
        }
        let (s, t, p, l, r, f11, export, help, esc) = ctx.input(|i| {
            (
                i.key_pressed(Key::S),
                i.key_pressed(Key::T),
                i.key_pressed(Key::P),
                i.key_pressed(Key::L),
                i.key_pressed(Key::R).then_some(if i.modifiers.shift {
                    ClipArea::Topology
                } else {
                    ClipArea::Window
                }),
                i.key_pressed(Key::F11),
                i.modifiers.command && i.key_pressed(Key::E),
                i.key_pressed(Key::F1) || i.key_pressed(Key::Questionmark),
                i.key_pressed(Key::Escape),
            )
        });
        if export {
            self.export();
        }
        if f11 {
            self.fullscreen = !self.fullscreen;
            ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(self.fullscreen));
        }
        if esc {
            self.help = false;
        }
        if typing {
            return;
        }
        self.timeline_keys(ctx);
        let looking_back = self.review.looking_back();
        if s && !looking_back {
            let on = !self.all_sticky();
            self.set_sticky(None, on);
        }
        if t && !looking_back {
            let current = self.common_transport().unwrap_or(TransportChoice::Polling);
            let next = TransportChoice::ALL
                .iter()
                .cycle()
                .skip_while(|x| **x != current)
                .nth(1)
                .copied()
                .unwrap_or(TransportChoice::Polling);
            self.set_transport(None, next);
        }
        if p && looking_back {
            self.timeline_action(TimelineAction::PlayPause);
        } else if p {
            self.paused = !self.paused;
        }
        if l {
            self.details_folded = !self.details_folded;
        }
        if let Some(area) = r {
            self.toggle_recording(area);
        }
        if help {
            self.help = true;
        }
    }

    /// `[` and `]`: the failure before and after; Home: the first moment kept; End: back
    /// to live (a recording: its end).
    fn timeline_keys(&mut self, ctx: &egui::Context) {
        let (previous, next, home, end) = ctx.input(|i| {
            (
                i.key_pressed(Key::OpenBracket),
                i.key_pressed(Key::CloseBracket),
                i.key_pressed(Key::Home),
                i.key_pressed(Key::End),
            )
        });
        if previous {
            self.timeline_action(TimelineAction::PreviousFailure);
        }
        if next {
            self.timeline_action(TimelineAction::NextFailure);
        }
        if home {
            let start = self.review.timeline().start();
            self.timeline_action(TimelineAction::Seek(start));
        }
        if end {
            self.timeline_action(TimelineAction::Live);
        }
    }

    pub(super) fn top_action(&mut self, action: TopAction) {
        match action {
            TopAction::SetSticky(on) => self.set_sticky(None, on),
            TopAction::SetTransport(t) => self.set_transport(None, t),
            TopAction::SetChat(dialect) => {
                self.settings.chat = dialect;
                self.bridge.send(Command::SetChat { dialect });
            }
            TopAction::TogglePause => self.paused = !self.paused,
            TopAction::AddReplica => self.send_by_hand(Command::AddReplica),
            TopAction::SetAdapter(on) => {
                self.adapter_on = on;
                self.send_by_hand(Command::ConfigureStack {
                    heartbeat: None,
                    adapter: Some(if on { Adapter::Memory } else { Adapter::None }),
                });
            }
            TopAction::SetPingInterval(ms) => {
                self.settings.ping_interval_ms = ms;
                self.heartbeat = Heartbeat {
                    interval: Duration::from_millis(ms),
                    timeout: Duration::from_millis(ms).max(Heartbeat::default().timeout),
                };
                self.send_by_hand(Command::ConfigureStack {
                    heartbeat: Some(self.heartbeat),
                    adapter: None,
                });
            }
            TopAction::SetCrowd(size) => self.set_crowd(size),
            TopAction::PickScenario(Some(name)) => match crate::scenario::shipped::find(&name) {
                Some(shipped) => self.start_scenario(shipped.name, shipped.source),
                None => self.local_notice(NoticeLevel::Error, format!("no scenario {name:?}")),
            },
            TopAction::PickScenario(None) => {
                self.scenario = None;
                self.waiting_scenario = None;
            }
            TopAction::Help => self.help = true,
            TopAction::Export => self.export(),
            TopAction::ToggleRecording => self.toggle_recording(ClipArea::Window),
        }
    }
}
