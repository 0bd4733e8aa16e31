//! One chat pane: the user's own messages with their status, and the other user's messages
//! with the replicas that accepted and delivered them. Bounded; a message id appears once.

use super::shared_deque::SharedDeque;

use stickyscope_vocab::events::{OutboxStatus, OutboxUpdate, Received};

/// Most entries kept per pane.
pub const MAX_ENTRIES: usize = 2_000;

/// One line of a chat pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEntry {
    /// Sent by this pane's user.
    Own {
        /// Message id.
        id: String,
        /// Text.
        text: String,
        /// Where it stands.
        status: OutboxStatus,
        /// The replica that accepted it, once one did.
        accepted_by: Option<String>,
    },
    /// Received from the other user.
    Peer {
        /// Message id.
        id: String,
        /// Sender.
        from: String,
        /// Text.
        text: String,
        /// The replica that accepted it, when the chat says.
        accepted_by: Option<String>,
        /// The replica that handed it to this user.
        delivered_by: Option<String>,
    },
}

/// A chat pane's content.
#[derive(Debug, Clone, Default)]
pub struct ChatLog {
    /// Entries, oldest first.
    pub entries: SharedDeque<ChatEntry>,
}

impl ChatLog {
    /// Applies an outbox update of this user's message.
    pub fn outbox(&mut self, update: OutboxUpdate) {
        let accepted = match &update.status {
            OutboxStatus::Acked { replica, .. } => Some(replica.clone()),
            _ => None,
        };
        let own =
            |entry: &ChatEntry| matches!(entry, ChatEntry::Own { id, .. } if *id == update.id);
        let found = self.entries.iter().rposition(own);
        if let Some(ChatEntry::Own {
            status,
            accepted_by,
            ..
        }) = found.and_then(|i| self.entries.get_mut(i))
        {
            *status = update.status;
            if accepted.is_some() {
                *accepted_by = accepted;
            }
            return;
        }
        self.push(ChatEntry::Own {
            id: update.id,
            text: update.text,
            status: update.status,
            accepted_by: accepted,
        });
    }

    /// Adds a received message (the conductor sends each id once).
    pub fn received(&mut self, received: Received) {
        let m = received.message;
        self.push(ChatEntry::Peer {
            id: m.id,
            from: m.from,
            text: m.text,
            accepted_by: received.accepted_by,
            delivered_by: received.delivered_by,
        });
    }

    fn push(&mut self, entry: ChatEntry) {
        self.entries.push_back(entry);
        while self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
        }
    }
}

/// How a status line should look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tone {
    /// Still on its way.
    Waiting,
    /// In the colour of this replica.
    Replica(String),
    /// Done.
    Ok,
    /// Failed.
    Failure,
}

/// The line under a message from the other user: which replicas accepted and delivered it,
/// as far as anything named them.
pub fn peer_line(accepted_by: Option<&str>, delivered_by: Option<&str>) -> String {
    match (accepted_by, delivered_by) {
        (Some(a), Some(d)) if a != d => {
            format!("accepted by replica {a}, delivered by replica {d}")
        }
        (Some(a), Some(_)) => format!("accepted and delivered by replica {a}"),
        (Some(a), None) => format!("accepted by replica {a}"),
        (None, Some(d)) => format!("delivered by replica {d}"),
        (None, None) => "from a replica nothing named".to_owned(),
    }
}

/// The line under one of the user's own messages at wall-clock `now_ms`: its status in
/// words, its tone, and whether it counts down (then it changes every second).
pub fn own_status_line(
    status: &OutboxStatus,
    accepted_by: Option<&str>,
    now_ms: u64,
) -> (String, Tone, bool) {
    let countdown = |at: &Option<u64>| {
        at.map(|at| {
            let secs = at.saturating_sub(now_ms).div_ceil(1000);
            format!(" · gives up in {secs} s")
        })
    };
    match status {
        OutboxStatus::Queued => ("queued".to_owned(), Tone::Waiting, false),
        OutboxStatus::Sent {
            attempt,
            gives_up_at_ms,
        } => {
            let what = if *attempt <= 1 {
                "sent…".to_owned()
            } else {
                format!("sent again (try {attempt})…")
            };
            let left = countdown(gives_up_at_ms);
            let counting = left.is_some();
            (
                format!("{what}{}", left.unwrap_or_default()),
                Tone::Waiting,
                counting,
            )
        }
        OutboxStatus::Acked {
            replica,
            gives_up_at_ms,
        } => {
            let left = countdown(gives_up_at_ms);
            let counting = left.is_some();
            (
                format!(
                    "accepted by replica {replica} · no receipt yet{}",
                    left.unwrap_or_default()
                ),
                Tone::Replica(replica.clone()),
                counting,
            )
        }
        OutboxStatus::Delivered { .. } => (
            match accepted_by {
                Some(r) => format!("delivered · accepted by replica {r}"),
                None => "delivered".to_owned(),
            },
            Tone::Ok,
            false,
        ),
        OutboxStatus::Refused { error } => (format!("refused: {error}"), Tone::Failure, false),
        OutboxStatus::NotDelivered { reason } => (reason.clone(), Tone::Failure, false),
        OutboxStatus::Echoed { replica } => (
            match replica {
                Some(r) => {
                    format!("echoed to everyone by replica {r} · the seed's chat has no receipts")
                }
                None => "echoed to everyone · the seed's chat has no receipts".to_owned(),
            },
            replica.clone().map_or(Tone::Ok, Tone::Replica),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, status: OutboxStatus) -> OutboxUpdate {
        OutboxUpdate {
            user: "agent".into(),
            id: id.into(),
            text: "hi".into(),
            status,
        }
    }

    #[test]
    fn own_messages_update_in_place() {
        let mut log = ChatLog::default();
        log.outbox(update("a", OutboxStatus::Queued));
        log.outbox(update(
            "a",
            OutboxStatus::Acked {
                replica: "2".into(),
                gives_up_at_ms: None,
            },
        ));
        log.outbox(update(
            "a",
            OutboxStatus::Delivered {
                replica: "1".into(),
            },
        ));
        assert_eq!(log.entries.len(), 1);
        let ChatEntry::Own {
            status,
            accepted_by,
            ..
        } = log.entries.get(0).expect("one entry")
        else {
            panic!()
        };
        assert!(matches!(status, OutboxStatus::Delivered { .. }));
        assert_eq!(accepted_by.as_deref(), Some("2"));
    }

    #[test]
    fn peer_lines_say_only_what_is_known() {
        assert_eq!(
            peer_line(Some("1"), Some("2")),
            "accepted by replica 1, delivered by replica 2"
        );
        assert_eq!(
            peer_line(Some("1"), Some("1")),
            "accepted and delivered by replica 1"
        );
        assert_eq!(peer_line(None, Some("2")), "delivered by replica 2");
        assert_eq!(peer_line(None, None), "from a replica nothing named");
        let echoed = OutboxStatus::Echoed {
            replica: Some("3".into()),
        };
        assert_eq!(
            own_status_line(&echoed, None, 0).0,
            "echoed to everyone by replica 3 · the seed's chat has no receipts"
        );
    }

    #[test]
    fn status_lines_count_down_to_the_give_up_and_say_why_it_failed() {
        let acked = OutboxStatus::Acked {
            replica: "2".into(),
            gives_up_at_ms: Some(10_000),
        };
        let (line, tone, counting) = own_status_line(&acked, Some("2"), 2_500);
        assert_eq!(
            line,
            "accepted by replica 2 · no receipt yet · gives up in 8 s"
        );
        assert_eq!((tone, counting), (Tone::Replica("2".into()), true));
        let (line, _, _) = own_status_line(&acked, Some("2"), 20_000);
        assert!(line.ends_with("gives up in 0 s"), "{line}");
        let failed = OutboxStatus::NotDelivered {
            reason: "not delivered — no receipt".into(),
        };
        assert_eq!(
            own_status_line(&failed, Some("2"), 0),
            ("not delivered — no receipt".into(), Tone::Failure, false)
        );
        let (line, _, counting) = own_status_line(
            &OutboxStatus::Sent {
                attempt: 2,
                gives_up_at_ms: None,
            },
            None,
            0,
        );
        assert_eq!((line.as_str(), counting), ("sent again (try 2)…", false));
    }
}
