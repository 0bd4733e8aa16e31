//! A chat pane: the user's connection state, their own stickiness, transport and reconnect
//! (not in presentation mode), the conversation with the replicas that carried each message,
//! and the input line (Enter sends).

use eframe::egui;
use egui::{Color32, RichText, ScrollArea, Ui};
use stickyscope_contract::chat::MAX_TEXT_BYTES;

use super::theme::{replica_color, FAILURE, OK, WAITING};
use crate::model::chat::{own_status_line, peer_line, Tone};
use crate::model::{ChatEntry, ChatLog};
use stickyscope_vocab::events::ChatDialect;
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::topology::replica_name;

/// What the user asked for in a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAction {
    /// Send this text.
    Send(String),
    /// Stickiness for this user.
    SetSticky(bool),
    /// Transport for this user.
    SetTransport(TransportChoice),
    /// Reconnect this user.
    Reconnect,
}

/// The pane's input state.
#[derive(Debug, Default)]
pub struct ChatInput {
    /// Text being typed.
    pub text: String,
    /// Why the last send was refused locally.
    pub error: Option<String>,
}

/// The state line of a session, in words and a colour; `unnamed` says why nothing named
/// its server, when nothing did; `engineio` is the version its server spoke, said when it
/// is the older v3.
pub fn state_line(
    state: Option<&SessionState>,
    unnamed: Option<&str>,
    engineio: Option<u8>,
) -> (String, Color32) {
    match state {
        Some(SessionState::Connected {
            replica, websocket, ..
        }) => {
            let over = match (*websocket, engineio) {
                (true, Some(3)) => "websocket (Engine.IO 3)",
                (false, Some(3)) => "polling (Engine.IO 3)",
                (true, _) => "websocket",
                (false, _) => "polling",
            };
            let line = match replica {
                Some(replica) => format!("connected to {} over {over}", replica_name(replica)),
                None => format!(
                    "connected over {over} · replica unknown: {}",
                    unnamed.unwrap_or("nothing in its answers names it")
                ),
            };
            (line, OK)
        }
        Some(SessionState::Reconnecting { reason, attempt }) => (
            format!("reconnecting (attempt {}): {reason}", attempt + 1),
            WAITING,
        ),
        Some(SessionState::Connecting) | None => ("connecting…".to_owned(), WAITING),
        Some(SessionState::Failed { reason }) => (format!("not connected: {reason}"), FAILURE),
    }
}

/// What one chat pane shows.
#[derive(Debug, Clone, Copy)]
pub struct Pane<'a> {
    /// The user.
    pub user: &'a str,
    /// Their session's state.
    pub state: Option<&'a SessionState>,
    /// Why nothing named their server, when nothing did.
    pub unnamed: Option<&'a str>,
    /// The Engine.IO version their server spoke.
    pub engineio: Option<u8>,
    /// Their messages.
    pub log: &'a ChatLog,
    /// Their stickiness.
    pub sticky: bool,
    /// Their transport.
    pub transport: TransportChoice,
    /// The chat both users speak.
    pub chat: ChatDialect,
    /// Whether the user's own stickiness, transport and reconnect are shown (not in
    /// presentation mode: the room needs the conversation, the top bar has the switch).
    pub controls: bool,
    /// Why nothing can be sent or switched here, when nothing can (a recording, or a
    /// moment of the past).
    pub read_only: Option<&'a str>,
    /// Wall-clock time of the moment shown (ms since the Unix epoch), for countdowns.
    pub now_ms: u64,
}

/// Draws one pane; returns what the user asked for.
pub fn chat_pane_ui(ui: &mut Ui, pane: Pane<'_>, input: &mut ChatInput) -> Vec<ChatAction> {
    let Pane {
        user,
        state,
        unnamed,
        engineio,
        log,
        sticky,
        transport,
        chat,
        controls,
        read_only,
        now_ms,
    } = pane;
    let controls = controls && read_only.is_none();
    let mut actions = Vec::new();
    ui.heading(RichText::new(user).strong());
    let (line, color) = state_line(state, unnamed, engineio);
    // Wraps: a long reason must never widen the pane.
    ui.horizontal_wrapped(|ui| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
        ui.painter().circle_filled(rect.center(), 5.0, color);
        ui.add(egui::Label::new(RichText::new(line).color(color)).wrap());
    });
    ui.horizontal_wrapped(|ui| {
        if !controls {
            return;
        }
        let mut on = sticky;
        if ui
            .checkbox(&mut on, "sticky")
            .on_hover_text(format!("stickiness for {user}"))
            .changed()
        {
            actions.push(ChatAction::SetSticky(on));
        }
        let mut chosen = transport;
        egui::ComboBox::new(("transport", user), "transport")
            .selected_text(chosen.label())
            .show_ui(ui, |ui| {
                for t in TransportChoice::ALL {
                    ui.selectable_value(&mut chosen, t, t.label());
                }
            });
        if chosen != transport {
            actions.push(ChatAction::SetTransport(chosen));
        }
        if ui
            .button("reconnect")
            .on_hover_text(format!("drop {user}'s session and connect again"))
            .clicked()
        {
            actions.push(ChatAction::Reconnect);
        }
    });
    ui.separator();

    let input_height = ui.spacing().interact_size.y * 3.2 + ui.spacing().item_spacing.y * 4.0;
    ScrollArea::vertical()
        .id_salt(("chat", user))
        .stick_to_bottom(true)
        .auto_shrink([false, false])
        .max_height((ui.available_height() - input_height).max(60.0))
        .show(ui, |ui| {
            if log.entries.is_empty() && read_only.is_some() {
                ui.weak("No messages by this moment.");
            } else if log.entries.is_empty() {
                ui.weak(match chat {
                    ChatDialect::Stickyscope => "No messages yet. Type below and press Enter.",
                    ChatDialect::Seed => "No messages yet. The seed's chat: each message goes once, with no ack and no receipt; the server's echo back is all that can be known. Type below and press Enter.",
                    ChatDialect::None => "The chat is off: the sessions keep only their heartbeats. Choose a chat in the top bar to send messages.",
                });
            }
            for entry in log.entries.iter() {
                entry_ui(ui, entry, now_ms);
            }
        });

    ui.separator();
    if let Some(why) = read_only {
        ui.weak(why);
        return actions;
    }
    if chat == ChatDialect::None {
        return actions;
    }
    // The text field spans the pane; Send sits under it (Enter sends too).
    let edit = egui::TextEdit::singleline(&mut input.text).hint_text(format!("message as {user}"));
    let size = egui::vec2(ui.available_width(), ui.spacing().interact_size.y);
    let edit = ui.add_sized(size, edit);
    let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    if enter {
        edit.request_focus();
    }
    let clicked = ui.button("Send").clicked();
    let response = egui::InnerResponse::new(enter || clicked, edit);
    if response.inner {
        let text = input.text.trim().to_owned();
        if text.is_empty() {
            input.error = Some("type something first".into());
        } else if text.len() > MAX_TEXT_BYTES {
            input.error = Some(format!(
                "{} bytes; the limit is {MAX_TEXT_BYTES}",
                text.len()
            ));
        } else {
            input.error = None;
            input.text.clear();
            actions.push(ChatAction::Send(text));
        }
    }
    if let Some(error) = &input.error {
        ui.colored_label(FAILURE, error);
    }
    actions
}

fn entry_ui(ui: &mut Ui, entry: &ChatEntry, now_ms: u64) {
    match entry {
        ChatEntry::Own {
            text,
            status,
            accepted_by,
            ..
        } => {
            let (mark, tone, counting) = own_status_line(status, accepted_by.as_deref(), now_ms);
            if counting {
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_secs(1));
            }
            let color = match &tone {
                Tone::Waiting => WAITING,
                Tone::Replica(replica) => replica_color(Some(replica)),
                Tone::Ok => OK,
                Tone::Failure => FAILURE,
            };
            ui.with_layout(egui::Layout::top_down(egui::Align::Max), |ui| {
                ui.label(RichText::new(text).strong());
                ui.label(RichText::new(mark).small().color(color));
            });
        }
        ChatEntry::Peer {
            from,
            text,
            accepted_by,
            delivered_by,
            ..
        } => {
            ui.label(RichText::new(format!("{from}: {text}")));
            let via = peer_line(accepted_by.as_deref(), delivered_by.as_deref());
            ui.label(RichText::new(via).small().color(replica_color(
                delivered_by.as_deref().or(accepted_by.as_deref()),
            )));
        }
    }
    ui.add_space(4.0);
}
