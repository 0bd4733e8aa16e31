//! The window: folds conductor events into the view model each frame, draws it, and turns what
//! the user does into commands. It repaints only while something moves, and rests (counts
//! heartbeats instead of animating them) when nothing but heartbeats happens for a while.
//! In presentation mode the plots and packet log fold away until `L` brings them back; a
//! clip being recorded is handed each frame it paints (see [`super::recording`]). Under the
//! topology, the timeline: the window keeps its last minutes and can show any moment of them
//! again, or (`stickyscope open`) shows a recording instead of a live stack; what it draws
//! is then that moment's model, and nothing that would change the stack can be clicked.

mod building;
mod capturing;
mod input;

use eframe::egui;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui::Ui;
use stickyscope_contract::heartbeat::Heartbeat;

use super::banners::Banners;
use super::bridge::ConductorBridge;
use super::chat_ui::{chat_pane_ui, ChatAction, ChatInput, Pane};
use super::controls_ui::{top_bar_ui, TopAction, TopBar};
use super::doctor_ui::{doctor_ui, DoctorPanel};
use super::help_ui::{banner_ui, help_ui};
use super::log_ui::{log_ui, LogView};
use super::plots_ui::plots_ui;
use super::recording::{ClipArea, RecordPlan, Recording};
use super::scenario_ui::{caption_ui, CaptionAction, CaptionView};
use super::settings::{BottomTab, Settings, STORAGE_KEY};
use super::theme;
use super::timeline_ui::{timeline_ui, TimelineView};
use super::topology_ui::{topology_ui, Drawn};
use crate::model::review::{Review, TimelineAction};
use crate::model::{Rest, ViewModel};
use crate::scenario::capabilities::Capabilities;
use crate::scenario::player::{Player, Settings as StackSettings};
use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::events::{Command, Event, Notice, NoticeLevel};

/// Take a screenshot after a while, save it, and close.
#[derive(Debug, Clone)]
pub struct ScreenshotPlan {
    /// Where to save the PNG.
    pub path: PathBuf,
    /// How long the window runs first.
    pub after: Duration,
}

/// How the screenshot went, read by `main` after the window closes.
pub type ScreenshotOutcome = Arc<Mutex<Option<Result<PathBuf, String>>>>;

struct Screenshot {
    plan: ScreenshotPlan,
    started: Instant,
    requested: bool,
    outcome: ScreenshotOutcome,
}

/// The application.
pub struct StickyscopeApp {
    bridge: ConductorBridge,
    /// The stack as it is now (a recording's: as it ended).
    model: ViewModel,
    /// The timeline, and the moment shown when it is not now.
    review: Review,
    /// The users with a chat pane: the agent on the left, the visitor on the right (a
    /// recording's own users when it has no agent or visitor).
    panes: Vec<String>,
    /// When a recording started (ms since the Unix epoch; `None`: a live stack).
    recorded_start_ms: Option<u64>,
    /// The capture recorded as the window goes (`--capture`).
    capture: Option<capturing::LiveCapture>,
    settings: Settings,
    inputs: BTreeMap<String, ChatInput>,
    log_view: LogView,
    doctor_panel: DoctorPanel,
    /// What the stack can do: replica controls (embedded stack, local chain, or a swarm
    /// whose engine was given), `/stats`, Redis.
    capabilities: Capabilities,
    /// What the gateway is, for the top bar.
    mode: String,
    adapter_on: bool,
    paused: bool,
    help: bool,
    fullscreen: bool,
    clock: f64,
    last_time: Option<f64>,
    screenshot: Option<Screenshot>,
    persist: bool,
    crowd: usize,
    /// Theme and presentation mode last applied to the context (restyling is not free).
    applied_style: (super::settings::ThemeChoice, bool),
    /// When the last news came (real time), to know when the window may rest.
    rest: Rest,
    /// The banners shown over the window.
    banners: Banners,
    /// Whether the window rests now; read by the waker on the conductor's thread.
    resting: Arc<AtomicBool>,
    /// The replicas' heartbeat as last set.
    heartbeat: Heartbeat,
    /// The scenario being played: its name and player.
    scenario: Option<(String, Player)>,
    /// A scenario asked for before the stack said which replicas it runs (its name and
    /// text): played once it does, so the player compares its `[stack]` with the real one
    /// instead of adding every replica to a stack that already has them.
    waiting_scenario: Option<(String, String)>,
    /// What the topology drew in the last frame.
    topology_drawn: Option<Drawn>,
    /// Clips being recorded or finished.
    recording: Recording,
    /// Whether the plots and the packet log are folded away (so in presentation mode, until
    /// `L` brings them back).
    details_folded: bool,
}

impl StickyscopeApp {
    /// Plays `source` (a scenario file's text; `name` names it): the stack is put into the
    /// state it starts from, then its first step runs. A file this stack cannot play is
    /// refused with a banner saying where and why. Asked for before the stack has said which
    /// replicas it runs (a window opened on a scenario), it starts when the stack does.
    pub fn start_scenario(&mut self, name: &str, source: &str) {
        let scenario = match crate::scenario::parse(name, source) {
            Ok(s) => s,
            Err(e) => return self.local_notice(NoticeLevel::Error, e.to_string()),
        };
        if let Err(e) = scenario.check_against(name, self.capabilities) {
            return self.local_notice(NoticeLevel::Error, e.to_string());
        }
        if self.capabilities.controls && self.model.topology.replicas.is_empty() {
            self.scenario = None;
            self.waiting_scenario = Some((name.to_owned(), source.to_owned()));
            return;
        }
        self.waiting_scenario = None;
        if scenario.start.chat != self.settings.chat {
            self.top_action(TopAction::SetChat(scenario.start.chat));
        }
        let current = StackSettings {
            sticky: self.model.sticky.clone(),
            transport: self.model.transport.clone(),
            adapter_on: self.adapter_on,
            heartbeat: self.heartbeat,
            pins: BTreeMap::new(),
            replicas: self
                .model
                .topology
                .replicas
                .iter()
                .filter_map(|r| r.id.clone().map(|id| (id, r.up)))
                .collect(),
            unhealthy: Default::default(),
        };
        let player = Player::starting_from(
            scenario,
            self.capabilities.controls,
            current,
            self.model.topology.clone(),
            self.model.sessions.clone(),
            Instant::now(),
        );
        self.scenario = Some((name.to_owned(), player));
    }

    /// The scenario being played: its name, current step (0-based) and title.
    pub fn scenario_step(&self) -> Option<(&str, usize, &str)> {
        self.scenario
            .as_ref()
            .map(|(name, p)| (name.as_str(), p.step_index(), p.step().title.as_str()))
    }

    /// Whether the scenario's current step is over, and its expectations as they stand.
    pub fn scenario_outcomes(&self) -> Option<(bool, Vec<crate::scenario::Outcome>)> {
        self.scenario
            .as_ref()
            .map(|(_, p)| (p.step_done(), p.outcomes()))
    }

    /// Goes to the scenario's step `n` (the stack put back as that step starts).
    fn scenario_go(&mut self, action: CaptionAction) {
        let Some((_, player)) = &mut self.scenario else {
            return;
        };
        let now = Instant::now();
        let step = player.step_index();
        let last = player.scenario().steps.len().saturating_sub(1);
        match action {
            CaptionAction::Back if step > 0 => player.go_to(step - 1, now),
            CaptionAction::Back => {}
            CaptionAction::Again => player.go_to(step, now),
            CaptionAction::Next if step < last => player.go_to(step + 1, now),
            CaptionAction::Next => {}
            CaptionAction::Close => {
                self.scenario = None;
                self.waiting_scenario = None;
            }
        }
    }

    /// Gives the commands the scenario's step asks for now, and shows what they set.
    fn drive_scenario(&mut self, ctx: &egui::Context) {
        if self.waiting_scenario.is_some() && !self.model.topology.replicas.is_empty() {
            if let Some((name, source)) = self.waiting_scenario.take() {
                self.start_scenario(&name, &source);
            }
        }
        let Some((_, player)) = &mut self.scenario else {
            return;
        };
        let now = Instant::now();
        let commands = player.poll(now);
        if let Some(wake) = player.next_wake(now) {
            ctx.request_repaint_after(
                wake.saturating_duration_since(now)
                    .max(Duration::from_millis(20)),
            );
        }
        for command in commands {
            if let Command::ConfigureStack { heartbeat, adapter } = &command {
                if let Some(h) = heartbeat {
                    self.heartbeat = *h;
                    self.settings.ping_interval_ms = h.interval.as_millis() as u64;
                }
                if let Some(a) = adapter {
                    self.adapter_on = a.is_on();
                }
            }
            self.bridge.send(command);
        }
    }

    /// Sends a command the user gave by hand; a scenario being played takes note.
    fn send_by_hand(&mut self, command: Command) {
        if let Some((_, player)) = &mut self.scenario {
            player.note_manual(&command);
        }
        self.bridge.send(command);
    }

    /// Whether the window rests (heartbeats counted, not animated).
    pub fn resting(&self) -> bool {
        self.resting.load(Ordering::Relaxed)
    }

    /// Shows the doctor's tab and runs its checklist on the stack.
    pub fn run_doctor(&mut self, origin: Option<String>) {
        self.settings.tab = BottomTab::Doctor;
        self.details_folded = false;
        if let Some(origin) = &origin {
            self.doctor_panel.origin = origin.clone();
        }
        self.send_by_hand(Command::RunDoctor { origin });
    }

    /// Runs `size` background sessions.
    pub fn set_crowd(&mut self, size: usize) {
        self.crowd = size;
        self.bridge.send(Command::SetCrowd { size });
    }

    /// Records a clip from the first frame as `plan` says, then closes the window.
    pub fn record(&mut self, plan: RecordPlan) {
        self.recording = Recording::planned(plan);
    }

    /// Starts recording a clip of `area`, or stops the one under way (it is saved as
    /// `stickyscope-clip-<time>.gif` in the working directory).
    pub fn toggle_recording(&mut self, area: ClipArea) {
        if let Err(e) = self.recording.toggle(area) {
            self.local_notice(NoticeLevel::Error, e);
        }
    }

    /// How long the clip under way has been recording.
    pub fn recording_for(&self) -> Option<Duration> {
        self.recording.under_way().map(|(d, _)| d)
    }

    /// What the topology drew in the last frame (where each node, mark and label went).
    pub fn topology_drawn(&self) -> Option<&Drawn> {
        self.topology_drawn.as_ref()
    }

    /// The view model of the stack now (for tests).
    pub fn model(&self) -> &ViewModel {
        &self.model
    }

    /// The view model drawn: the stack now, or the moment of the timeline shown.
    pub fn shown(&self) -> &ViewModel {
        self.review.shown(&self.model)
    }

    /// The time drawn: the presentation clock, or the moment shown.
    pub fn shown_at(&self) -> f64 {
        self.review.at(self.clock)
    }

    /// Whether the window shows a moment of the past (a recording always does).
    pub fn looking_back(&self) -> bool {
        self.review.looking_back()
    }

    /// Does what was asked of the timeline.
    pub fn timeline_action(&mut self, action: TimelineAction) {
        self.review.act(action, self.clock);
    }

    /// Presentation clock: advances with real time times speed, stops while paused.
    fn tick_clock(&mut self, real_now: f64) {
        if let Some(last) = self.last_time {
            if !self.paused {
                self.clock += (real_now - last).max(0.0) * f64::from(self.settings.speed);
            }
        }
        self.last_time = Some(real_now);
    }

    /// A banner of the window's own (an export saved, a scenario refused).
    fn local_notice(&mut self, level: NoticeLevel, text: String) {
        self.banners.push(Notice { level, text }, self.clock);
    }

    /// Asks for stickiness on or off; the view model shows it when the conductor says so.
    fn set_sticky(&mut self, user: Option<&str>, on: bool) {
        if user.is_none() {
            self.settings.sticky = on;
        }
        self.send_by_hand(Command::SetSticky {
            user: user.map(str::to_owned),
            on,
        });
    }

    /// Asks for a transport; the view model shows it when the conductor says so.
    fn set_transport(&mut self, user: Option<&str>, transport: TransportChoice) {
        if user.is_none() {
            self.settings.transport = transport;
        }
        self.send_by_hand(Command::SetTransport {
            user: user.map(str::to_owned),
            transport,
        });
    }

    fn all_sticky(&self) -> bool {
        self.model.all_sticky().unwrap_or(true)
    }

    fn common_transport(&self) -> Option<TransportChoice> {
        self.model.common_transport()
    }

    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(shot) = &mut self.screenshot else {
            return;
        };
        if shot.outcome.lock().map(|o| o.is_some()).unwrap_or(true) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if !shot.requested && shot.started.elapsed() >= shot.plan.after {
            shot.requested = true;
            let path = shot.plan.path.clone();
            let outcome = Arc::clone(&shot.outcome);
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let result = save_png(&path, &image).map(|_| path.clone());
                if let Ok(mut slot) = outcome.lock() {
                    *slot = Some(result);
                }
                repaint.request_repaint();
            });
        }
        ctx.request_repaint_after(Duration::from_millis(100));
    }
}

fn save_png(path: &std::path::Path, image: &egui::ColorImage) -> Result<(), String> {
    let [w, h] = image.size;
    let mut bytes = Vec::with_capacity(w * h * 4);
    for pixel in &image.pixels {
        bytes.extend_from_slice(&pixel.to_array());
    }
    let buffer = image::RgbaImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| "screenshot has the wrong size".to_owned())?;
    buffer
        .save(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The parts of one frame, in the order [`eframe::App::ui`] runs them.
impl StickyscopeApp {
    /// Moves the clock, takes every event that arrived into the view model (and the banners
    /// and the scenario being played); returns the real time now.
    fn fold_events(&mut self, ctx: &egui::Context) -> f64 {
        let (real_now, touched) = ctx.input(|i| (i.time, !i.events.is_empty()));
        let real_secs = self
            .last_time
            .map_or(0.0, |last| (real_now - last).max(0.0));
        self.tick_clock(real_now);
        if touched {
            self.rest.news(real_now);
        }
        self.bridge.check_started();
        self.begin_capture();
        let clock = self.clock;
        let capture = self.capture.as_ref();
        let model = &mut self.model;
        let review = &mut self.review;
        let banners = &mut self.banners;
        let rest = &mut self.rest;
        let mut player = self.scenario.as_mut().map(|(_, p)| p);
        self.bridge.drain(|event| {
            if !matches!(&event, Event::Wire(wire) if wire.is_heartbeat_only()) {
                rest.news(real_now);
            }
            if let Some(player) = player.as_deref_mut() {
                player.observe(&event);
            }
            if let Event::Notice(notice) = &event {
                banners.push(notice.clone(), clock);
            }
            Self::captured(capture, &event);
            model.apply(event.clone(), clock);
            review.keep(clock, event, model);
        });
        for passed in self.review.tick(clock, real_secs) {
            if let Event::Notice(notice) = passed {
                self.banners.push(notice, clock);
            }
        }
        if self.review.playing() {
            ctx.request_repaint();
        }
        real_now
    }

    /// Applies the theme and presentation mode when they changed.
    fn restyle(&mut self, ctx: &egui::Context) {
        let style = (self.settings.theme, self.settings.presentation);
        if style != self.applied_style {
            theme::apply(ctx, &self.settings);
            if style.1 != self.applied_style.1 {
                // Presentation mode gives the topology the stage; leaving it brings back
                // the plots and the log.
                self.details_folded = style.1;
            }
            self.applied_style = style;
        }
    }

    /// The top bar, the gateway's problem and the banners; then what was asked there.
    fn top_panel_ui(&mut self, ui: &mut Ui) {
        // The switch shows the stickiness of the moment shown (a HAR's: not recorded).
        let shown = self.review.shown(&self.model);
        let (shown_sticky, shown_transport) = (shown.all_sticky(), shown.common_transport());
        let bar = TopBar {
            gateway: self.bridge.status.as_ref(),
            sticky: shown_sticky,
            transport: shown_transport,
            paused: self.paused,
            controls: self.capabilities.controls,
            mode: &self.mode,
            adapter_on: self.adapter_on,
            crowd: self.crowd,
            scenario: self.scenario.as_ref().map(|(name, _)| name.as_str()),
            recording: self.recording_for(),
            looking_back: self.review.looking_back(),
        };
        let mut top_actions = Vec::new();
        egui::Panel::top("top").show(ui, |ui| {
            top_actions = top_bar_ui(ui, &bar, &mut self.settings);
            if let Some(problem) = self.review.shown(&self.model).gateway_problem() {
                ui.colored_label(theme::FAILURE, egui::RichText::new(problem).strong());
            }
            if let Some(i) = banner_ui(ui, &self.banners.shown()) {
                self.banners.dismiss(i);
            }
        });
        for action in top_actions {
            self.top_action(action);
        }
    }

    /// The agent's pane on the left, the visitor's on the right; then what was asked there.
    fn chat_panels_ui(&mut self, ui: &mut Ui, ctx: &egui::Context) {
        let mut chat_actions = Vec::new();
        // In presentation mode the panes keep to a fifth of the width each: the topology
        // has the stage.
        let pane_width = if self.settings.presentation {
            (ctx.content_rect().width() * 0.2).clamp(240.0, 360.0)
        } else {
            300.0
        };
        let read_only = if self.review.is_recorded() {
            Some("a recording: nothing can be sent")
        } else if self.review.looking_back() {
            Some("looking back: back to live to send")
        } else {
            None
        };
        // A countdown at a moment of the past counts from then.
        let now_ms = stickyscope_vocab::record::now_ms();
        let now_ms = match (&self.recorded_start_ms, self.review.looking_back()) {
            (Some(start), _) => start + (self.review.at(self.clock) * 1000.0) as u64,
            (None, true) => now_ms.saturating_sub(
                ((self.clock - self.review.at(self.clock)).max(0.0) * 1000.0) as u64,
            ),
            (None, false) => now_ms,
        };
        let panes = self.panes.clone();
        for (i, user) in panes.iter().enumerate() {
            let user = user.as_str();
            let panel = if i == 0 {
                egui::Panel::left((user, self.settings.presentation))
            } else {
                egui::Panel::right((user, self.settings.presentation))
            };
            panel
                .resizable(true)
                .default_size(pane_width)
                .show(ui, |ui| {
                    let empty = Default::default();
                    let shown = self.review.shown(&self.model);
                    let pane = Pane {
                        user,
                        state: shown.sessions.get(user),
                        unnamed: shown.unnamed.get(user).map(String::as_str),
                        engineio: shown.engineio.get(user).copied(),
                        log: shown.chats.get(user).unwrap_or(&empty),
                        sticky: shown.sticky.get(user).copied().unwrap_or(true),
                        transport: shown
                            .transport
                            .get(user)
                            .copied()
                            .unwrap_or(TransportChoice::Polling),
                        chat: self.settings.chat,
                        controls: !self.settings.presentation,
                        read_only,
                        now_ms,
                    };
                    let actions =
                        chat_pane_ui(ui, pane, self.inputs.entry(user.to_owned()).or_default());
                    chat_actions.extend(actions.into_iter().map(|a| (user, a)));
                });
        }
        for (user, action) in chat_actions {
            match action {
                ChatAction::Send(text) => self.bridge.send(Command::Send {
                    user: user.to_owned(),
                    text,
                }),
                ChatAction::SetSticky(on) => self.set_sticky(Some(user), on),
                ChatAction::SetTransport(t) => self.set_transport(Some(user), t),
                ChatAction::Reconnect => self.bridge.send(Command::Reconnect {
                    user: user.to_owned(),
                }),
            }
        }
    }

    /// The plots and the packet log at the bottom, or the button that brings them back.
    fn details_panel_ui(&mut self, ui: &mut Ui) {
        let mut export = false;
        let mut run_doctor = None;
        if self.details_folded {
            egui::Panel::bottom("folded").show(ui, |ui| {
                if ui
                    .small_button("plots and packet log (L)")
                    .on_hover_text("show the plots and the packet log again")
                    .clicked()
                {
                    self.details_folded = false;
                }
            });
        } else {
            // The doctor's ten checks need room to be read at once.
            let least = if self.settings.tab == BottomTab::Doctor {
                if self.settings.presentation {
                    420.0
                } else {
                    300.0
                }
            } else {
                80.0
            };
            egui::Panel::bottom("bottom")
                .resizable(true)
                .default_size(if self.settings.presentation {
                    260.0
                } else {
                    230.0
                })
                .min_size(least)
                .show(ui, |ui| {
                    let shown = self.review.shown(&self.model);
                    ui.horizontal(|ui| {
                        ui.selectable_value(&mut self.settings.tab, BottomTab::Plots, "plots");
                        ui.selectable_value(&mut self.settings.tab, BottomTab::Log, "packet log");
                        ui.selectable_value(&mut self.settings.tab, BottomTab::Doctor, "doctor");
                    });
                    match self.settings.tab {
                        BottomTab::Plots => plots_ui(ui, &shown.series),
                        BottomTab::Doctor => {
                            run_doctor = doctor_ui(ui, &shown.doctor, &mut self.doctor_panel);
                        }
                        BottomTab::Log => {
                            let users = &self.panes;
                            let replicas: Vec<String> = shown
                                .topology
                                .replicas
                                .iter()
                                .filter_map(|r| r.id.clone())
                                .collect();
                            export = log_ui(ui, &shown.log, &mut self.log_view, users, &replicas);
                        }
                    }
                });
        }
        if export {
            self.export();
        }
        if let Some(command) = run_doctor {
            self.send_by_hand(command);
        }
    }

    /// The timeline strip under the topology; then what was asked there.
    fn timeline_panel_ui(&mut self, ui: &mut Ui) {
        let view = TimelineView {
            timeline: self.review.timeline(),
            at: self.review.at(self.clock),
            live: !self.review.looking_back(),
            recorded: self.review.is_recorded(),
            playing: self.review.playing(),
            speed: self.review.speed(),
            big: self.settings.presentation,
        };
        let mut action = None;
        egui::Panel::bottom("timeline").show(ui, |ui| {
            action = timeline_ui(ui, &view);
        });
        if let Some(action) = action {
            self.timeline_action(action);
        }
    }

    /// The scenario's caption over the topology; then the replica controls and the
    /// scenario's buttons that were used.
    fn central_panel_ui(&mut self, ui: &mut Ui, resting: bool) {
        let mut replica_actions = Vec::new();
        let mut caption_action = None;
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some((_, player)) = &self.scenario {
                let step = player.step();
                let outcomes = player.outcomes();
                caption_action = caption_ui(
                    ui,
                    &CaptionView {
                        scenario: &player.scenario().title,
                        number: player.step_index() + 1,
                        steps: player.scenario().steps.len(),
                        title: &step.title,
                        caption: &step.caption,
                        outcomes: &outcomes,
                        action_errors: player.action_errors(),
                        acting: player.acting(),
                        big: self.settings.presentation,
                    },
                );
            }
            let mut drawn = topology_ui(
                ui,
                self.review.shown(&self.model),
                self.review.at(self.clock),
                &self.settings,
                self.capabilities.controls && !self.review.looking_back(),
                resting,
            );
            replica_actions = std::mem::take(&mut drawn.actions);
            self.topology_drawn = Some(drawn);
        });
        for (id, action) in replica_actions {
            self.send_by_hand(Command::Replica { id, action });
        }
        if let Some(action) = caption_action {
            self.scenario_go(action);
        }
    }

    /// Repaint only while something moves, at 30 frames a second (packets crossing the
    /// screen in under a second need no more); otherwise when a mark or notice expires, or
    /// when the window goes to rest (to say so).
    fn schedule_repaint(&self, ctx: &egui::Context, real_now: f64) {
        if let Some(left) = self.rest.rests_in(real_now) {
            ctx.request_repaint_after(Duration::from_secs_f64(left + 0.05));
        }
        let (shown, at) = (self.review.shown(&self.model), self.review.at(self.clock));
        if self.review.looking_back() {
            // A moment of the past moves only while the timeline plays (which repaints).
        } else if !self.paused && shown.flights.busy(at) {
            ctx.request_repaint_after(Duration::from_millis(33));
        } else if let Some(mark) = shown.flights.next_mark_expiry(at).filter(|_| !self.paused) {
            let left = (mark - at).max(0.05) / f64::from(self.settings.speed.max(0.05));
            ctx.request_repaint_after(Duration::from_secs_f64(left));
        } else if let Some(left) = self.banners.next_fade(self.clock) {
            let left = left / f64::from(self.settings.speed.max(0.05));
            ctx.request_repaint_after(Duration::from_secs_f64(left));
        }
    }
}

impl eframe::App for StickyscopeApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        let real_now = self.fold_events(&ctx);
        self.drive_scenario(&ctx);
        let resting = self.rest.resting(real_now);
        self.resting.store(resting, Ordering::Relaxed);
        self.model.animate_heartbeats = !resting;
        let at = self.review.at(self.clock);
        let shown = self.review.shown_mut(&mut self.model);
        shown.flights.prune(at);
        shown.age_out(at);
        self.banners.fade(self.clock);
        self.shortcuts(&ctx);
        self.restyle(&ctx);
        self.top_panel_ui(ui);
        self.chat_panels_ui(ui, &ctx);
        self.details_panel_ui(ui);
        self.timeline_panel_ui(ui);
        self.central_panel_ui(ui, resting);
        help_ui(&ctx, &mut self.help);
        self.screenshot_step(&ctx);
        let topology = self.topology_drawn.as_ref().map(|d| d.area.expand(12.0));
        for (level, text) in self.recording.frame(&ctx, topology) {
            self.local_notice(level, text);
        }
        if self.recording.plan_done() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        self.schedule_repaint(&ctx, real_now);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.persist {
            eframe::set_value(storage, STORAGE_KEY, &self.settings);
        }
    }

    fn persist_egui_memory(&self) -> bool {
        self.persist
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // A clip under way is finished, not lost.
        for outcome in self.recording.finish_now() {
            match outcome {
                Ok(saved) => println!("{}", super::recording::describe(&saved)),
                Err(e) => eprintln!("{e}"),
            }
        }
        self.end_capture();
        self.bridge.shutdown();
    }
}
