//! One chat pane: the user's own messages with their status, and the other user's messages
//! with the replicas that accepted and delivered them. Bounded; a message id appears once.

use std::collections::VecDeque;

use crate::events::{OutboxStatus, OutboxUpdate, Received};

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
        /// The replica that accepted it.
        accepted_by: String,
        /// The replica that handed it to this user.
        delivered_by: Option<String>,
    },
}

/// A chat pane's content.
#[derive(Debug, Clone, Default)]
pub struct ChatLog {
    /// Entries, oldest first.
    pub entries: VecDeque<ChatEntry>,
}

impl ChatLog {
    /// Applies an outbox update of this user's message.
    pub fn outbox(&mut self, update: OutboxUpdate) {
        let accepted = match &update.status {
            OutboxStatus::Acked { replica } => Some(replica.clone()),
            _ => None,
        };
        for entry in self.entries.iter_mut().rev() {
            if let ChatEntry::Own {
                id,
                status,
                accepted_by,
                ..
            } = entry
            {
                if *id == update.id {
                    *status = update.status;
                    if accepted.is_some() {
                        *accepted_by = accepted;
                    }
                    return;
                }
            }
        }
        self.push(ChatEntry::Own {
            id: update.id,
            text: update.text,
            status: update.status,
            accepted_by: accepted,
        });
    }

    /// Adds a received message (the engine sends each id once).
    pub fn received(&mut self, received: Received) {
        let m = received.message;
        self.push(ChatEntry::Peer {
            id: m.id,
            from: m.from,
            text: m.text,
            accepted_by: m.replica,
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
        } = &log.entries[0]
        else {
            panic!()
        };
        assert!(matches!(status, OutboxStatus::Delivered { .. }));
        assert_eq!(accepted_by.as_deref(), Some("2"));
    }
}
