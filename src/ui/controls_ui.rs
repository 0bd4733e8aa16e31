//! The top bar: the stickiness switch, the transport and chat selectors, pause and slow
//! motion, the crowd, stack controls (embedded stack or local chain), the scenario picker,
//! theme, presentation mode, recording a clip, export and help. It wraps onto more rows when
//! the window is narrow.

use eframe::egui;
use egui::{Color32, RichText, Ui};

use super::settings::{Settings, ThemeChoice};
use super::theme::{FAILURE, OK};
use stickyscope_vocab::events::ChatDialect;
use stickyscope_vocab::events::TransportChoice;

/// What the user asked for in the top bar.
#[derive(Debug, Clone, PartialEq)]
pub enum TopAction {
    /// Stickiness for both users.
    SetSticky(bool),
    /// Transport for both users.
    SetTransport(TransportChoice),
    /// Which chat both users speak.
    SetChat(ChatDialect),
    /// Pause or resume the animation.
    TogglePause,
    /// Add a replica (embedded stack or chain).
    AddReplica,
    /// Adapter between replicas on (memory bus) or off (embedded stack or chain).
    SetAdapter(bool),
    /// pingInterval in ms (embedded stack or chain).
    SetPingInterval(u64),
    /// Background sessions.
    SetCrowd(usize),
    /// Play a shipped scenario (by name), or none.
    PickScenario(Option<String>),
    /// Show the help overlay.
    Help,
    /// Export the packet log.
    Export,
    /// Start or stop recording a clip of the window.
    ToggleRecording,
}

/// The mode of a window on a recording (`stickyscope open`).
pub const RECORDING: &str = "recording";

/// What the top bar shows.
pub struct TopBar<'a> {
    /// Gateway, or the startup error.
    pub gateway: Option<&'a Result<String, String>>,
    /// Whether both users are sticky (`None`: not recorded, a browser's HAR).
    pub sticky: Option<bool>,
    /// Both users' transport, when they agree.
    pub transport: Option<TransportChoice>,
    /// Animation paused.
    pub paused: bool,
    /// Replica controls shown (embedded stack or local chain).
    pub controls: bool,
    /// What the gateway is ("embedded stack", "local chain", "gateway").
    pub mode: &'a str,
    /// Adapter on (embedded stack or chain).
    pub adapter_on: bool,
    /// Crowd size asked for.
    pub crowd: usize,
    /// The scenario being played, if any.
    pub scenario: Option<&'a str>,
    /// How long the clip under way has been recording (the button then stops it).
    pub recording: Option<std::time::Duration>,
    /// The window shows a moment of the past (or a recording): what would change the
    /// stack is shown as it was, and cannot be clicked.
    pub looking_back: bool,
}

/// Draws the top bar; `settings` holds speed, theme and presentation, changed in place.
pub fn top_bar_ui(ui: &mut Ui, bar: &TopBar<'_>, settings: &mut Settings) -> Vec<TopAction> {
    let mut actions = Vec::new();
    ui.horizontal_wrapped(|ui| {
        status_ui(ui, bar);
        // Looking back, the switches show the moment's settings and the timeline sets the
        // pace; a recording has no stack to change at all.
        switches_ui(ui, bar, settings, &mut actions);
        if !bar.looking_back {
            pace_ui(ui, bar, settings, &mut actions);
            stack_ui(ui, bar, settings, &mut actions);
        }
        window_ui(ui, bar, settings, &mut actions);
    });
    actions
}

/// The name, and the stack it runs on (or why it could not start).
fn status_ui(ui: &mut Ui, bar: &TopBar<'_>) {
    ui.label(RichText::new("stickyscope").heading().strong());
    match bar.gateway {
        Some(Ok(gateway)) => {
            ui.label(RichText::new(format!("{} · {gateway}", bar.mode)).weak());
        }
        Some(Err(e)) => {
            ui.colored_label(FAILURE, format!("could not start: {e}"));
        }
        None => {
            ui.spinner();
            ui.label("starting…");
        }
    }
    ui.separator();
}

/// The stickiness switch, the transport and the chat of both users.
fn switches_ui(ui: &mut Ui, bar: &TopBar<'_>, settings: &Settings, actions: &mut Vec<TopAction>) {
    let (text, fill) = match bar.sticky {
        Some(true) => ("Stickiness: ON", OK),
        Some(false) => ("Stickiness: OFF", FAILURE),
        None => ("Stickiness: not recorded", Color32::DARK_GRAY),
    };
    let big = settings.presentation;
    let label = RichText::new(text)
        .strong()
        .color(Color32::WHITE)
        .size(if big { 28.0 } else { 15.0 });
    let button = egui::Button::new(label).fill(fill).min_size(if big {
        egui::vec2(300.0, 54.0)
    } else {
        egui::vec2(150.0, 26.0)
    });
    let hover = if bar.sticky.is_none() {
        "a browser's HAR does not say whether the balancer kept its sessions sticky"
    } else if bar.looking_back {
        "as it was at the moment shown"
    } else {
        "S: turn stickiness on or off for both users"
    };
    if ui
        .add_enabled(!bar.looking_back, button)
        .on_disabled_hover_text(hover)
        .on_hover_text(hover)
        .clicked()
    {
        actions.push(TopAction::SetSticky(bar.sticky != Some(true)));
    }
    if bar.looking_back {
        // The moment's transport (a HAR's sessions say theirs on their nodes); the chat is
        // the window's.
        if let Some(transport) = bar.transport {
            ui.label(transport.label());
        } else if bar.sticky.is_some() {
            ui.label("mixed");
        }
        ui.separator();
        return;
    }

    let mut transport = bar.transport;
    egui::ComboBox::from_id_salt("transport-all")
        .selected_text(transport.map(TransportChoice::label).unwrap_or("mixed"))
        .show_ui(ui, |ui| {
            for t in TransportChoice::ALL {
                ui.selectable_value(&mut transport, Some(t), t.label());
            }
        })
        .response
        .on_hover_text("T: next transport for both users");
    if let Some(t) = transport.filter(|t| Some(*t) != bar.transport) {
        actions.push(TopAction::SetTransport(t));
    }
    let mut chat = settings.chat;
    egui::ComboBox::from_id_salt("chat-dialect")
        .selected_text(format!("chat: {}", chat.label()))
        .show_ui(ui, |ui| {
            for d in ChatDialect::ALL {
                ui.selectable_value(&mut chat, d, d.label());
            }
        })
        .response
        .on_hover_text(
            "which chat the users speak: stickyscope's (acks, receipts), the seed's (chat_message / chat_user, no acks), or none (heartbeats only)",
        );
    if chat != settings.chat {
        actions.push(TopAction::SetChat(chat));
    }
    ui.separator();
}

/// Pause and the speed of the presentation clock.
fn pace_ui(ui: &mut Ui, bar: &TopBar<'_>, settings: &mut Settings, actions: &mut Vec<TopAction>) {
    if ui
        .button(if bar.paused { "resume" } else { "pause" })
        .on_hover_text("P: freeze the packets on screen")
        .clicked()
    {
        actions.push(TopAction::TogglePause);
    }
    // A slider lays itself out in a row of its own, which does not wrap: it goes to the
    // next row whole when the rest of this one is too short for it.
    let slider_width = ui.spacing().slider_width + ui.spacing().interact_size.x * 3.0;
    if ui.available_size_before_wrap().x < slider_width {
        ui.end_row();
    }
    ui.add(
        egui::Slider::new(&mut settings.speed, 0.05..=1.0)
            .text("speed")
            .fixed_decimals(2),
    )
    .on_hover_text("slow motion for presenting: 1 = real time");
    ui.separator();
}

/// The crowd, and on a stack stickyscope runs its replica controls.
fn stack_ui(ui: &mut Ui, bar: &TopBar<'_>, settings: &Settings, actions: &mut Vec<TopAction>) {
    let mut crowd = bar.crowd;
    let response = ui
        .add(
            egui::DragValue::new(&mut crowd)
                .range(0..=stickyscope_vocab::events::MAX_CROWD)
                .prefix("crowd "),
        )
        .on_hover_text("background sessions (0–10,000): how the balancer spreads a crowd");
    if response.changed() && crowd != bar.crowd {
        actions.push(TopAction::SetCrowd(crowd));
    }

    if bar.controls {
        ui.separator();
        if ui.button("+ replica").clicked() {
            actions.push(TopAction::AddReplica);
        }
        let mut adapter = bar.adapter_on;
        if ui
            .checkbox(&mut adapter, "adapter")
            .on_hover_text("the bus between replicas: off, users on different replicas never meet (restarts replicas)")
            .changed()
        {
            actions.push(TopAction::SetAdapter(adapter));
        }
        let mut ping = settings.ping_interval_ms;
        egui::ComboBox::from_id_salt("ping-interval")
            .selected_text(format!("ping {} s", ping as f32 / 1000.0))
            .show_ui(ui, |ui| {
                for ms in [1000, 3000, 10_000, 25_000] {
                    ui.selectable_value(&mut ping, ms, format!("{} s", ms / 1000));
                }
            })
            .response
            .on_hover_text("pingInterval of the replicas (restarts them)");
        if ping != settings.ping_interval_ms {
            actions.push(TopAction::SetPingInterval(ping));
        }
    }
    ui.separator();
}

/// Scenarios, theme, presentation mode, clips, export and help.
fn window_ui(ui: &mut Ui, bar: &TopBar<'_>, settings: &mut Settings, actions: &mut Vec<TopAction>) {
    if bar.mode != RECORDING {
        scenario_picker_ui(ui, bar, actions);
    }
    let dark = settings.theme == ThemeChoice::Dark;
    if ui
        .button(if dark { "light theme" } else { "dark theme" })
        .clicked()
    {
        settings.theme = if dark {
            ThemeChoice::Light
        } else {
            ThemeChoice::Dark
        };
    }
    ui.toggle_value(&mut settings.presentation, "presentation")
        .on_hover_text("large type, high contrast, a big switch");
    // Quiet while recording (it is in the clip): the window's title counts the seconds.
    let record = egui::Button::new(if bar.recording.is_some() {
        "stop clip"
    } else {
        "record clip"
    });
    if ui
        .add(record)
        .on_hover_text("R: record the window to an animated GIF for slides (Shift+R: the topology alone); again to stop")
        .clicked()
    {
        actions.push(TopAction::ToggleRecording);
    }
    if ui
        .button("export")
        .on_hover_text(
            "Ctrl+E: save the last minutes as a capture (stickyscope open reads it) and as a HAR",
        )
        .clicked()
    {
        actions.push(TopAction::Export);
    }
    if ui
        .button("?")
        .on_hover_text("F1: keyboard shortcuts")
        .clicked()
    {
        actions.push(TopAction::Help);
    }
}

/// The shipped scenarios, to play one.
fn scenario_picker_ui(ui: &mut Ui, bar: &TopBar<'_>, actions: &mut Vec<TopAction>) {
    let mut picked = bar.scenario.map(str::to_owned);
    egui::ComboBox::from_id_salt("scenario")
        .selected_text(match bar.scenario {
            Some(name) => format!("scenario {name}"),
            None => "scenario…".to_owned(),
        })
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut picked, None, "none");
            for shipped in crate::scenario::shipped::SHIPPED {
                ui.selectable_value(&mut picked, Some(shipped.name.to_owned()), shipped.name);
            }
        })
        .response
        .on_hover_text("play a scenario: captions and checks, step by step (Right arrow or PageDown: next; Left arrow or PageUp: back)");
    if picked.as_deref() != bar.scenario {
        actions.push(TopAction::PickScenario(picked));
    }
}
