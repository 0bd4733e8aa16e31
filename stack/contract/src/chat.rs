//! The chat protocol between the two hardcoded users, `agent` and `visitor`.
//!
//! A client emits `chat` with `{id, from, text}` and an ack callback. The replica validates
//! the message ([`validate`], pure) and acks `{ok: true, replica}` or `{ok: false, error}`;
//! an accepted message is broadcast to every socket on every replica the adapter reaches as
//! `chat` `{id, from, text, replica, at}`, where `replica` is the one that accepted it and
//! `at` its clock in milliseconds since the Unix epoch. Delivery is at least once across
//! client retries: receivers deduplicate by `id`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// The seed's chat (the blog post's socket.io 2 server): each user emits an event of its own
/// with the text alone, and the server emits another to every socket, the sender's
/// included. No ids, no acks, no receipts.
pub mod seed {
    /// The agent emits this, with the text.
    pub const AGENT_SENDS: &str = "chat_message";
    /// The visitor emits this, with the text.
    pub const VISITOR_SENDS: &str = "chat_user";
    /// The server emits this to all for an agent's message.
    pub const FROM_AGENT: &str = "message_from_kaushik";
    /// The server emits this to all for a visitor's message.
    pub const FROM_VISITOR: &str = "message_from_user";

    /// What `user` emits to send a message, and what the server emits for it.
    pub fn events_of(user: &str) -> Option<(&'static str, &'static str)> {
        match user {
            "agent" => Some((AGENT_SENDS, FROM_AGENT)),
            "visitor" => Some((VISITOR_SENDS, FROM_VISITOR)),
            _ => None,
        }
    }
}

/// The event name for chat messages, both ways.
pub const CHAT_EVENT: &str = "chat";
/// The event name for delivery receipts, both ways.
pub const RECEIPT_EVENT: &str = "receipt";
/// The only two users.
pub const USERS: [&str; 2] = ["agent", "visitor"];
/// Longest accepted text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Longest accepted message id, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// A chat message as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Client-chosen id, unique per message; receivers deduplicate by it.
    pub id: String,
    /// `agent` or `visitor`.
    pub from: String,
    /// 1..=4096 bytes of UTF-8.
    pub text: String,
}

/// A chat message as the replicas broadcast it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatBroadcast {
    /// The sender's id for the message.
    pub id: String,
    /// `agent` or `visitor`.
    pub from: String,
    /// The text.
    pub text: String,
    /// The replica that accepted the message.
    pub replica: String,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub at: u64,
}

/// The ack for a chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatAck {
    /// Accepted by `replica` and broadcast.
    Accepted {
        /// Always `true`.
        ok: bool,
        /// The replica that accepted it.
        replica: String,
    },
    /// Refused, with the reason.
    Refused {
        /// Always `false`.
        ok: bool,
        /// Why, in words for a person.
        error: String,
    },
}

impl ChatAck {
    /// An acceptance by `replica`.
    pub fn accepted(replica: &str) -> Self {
        ChatAck::Accepted {
            ok: true,
            replica: replica.to_owned(),
        }
    }

    /// A refusal for `error`.
    pub fn refused(error: &ChatError) -> Self {
        ChatAck::Refused {
            ok: false,
            error: error.to_string(),
        }
    }
}

/// Why a chat message was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChatError {
    /// The payload was not an object.
    #[error("chat payload must be an object {{id, from, text}}")]
    NotAnObject,
    /// `id` is absent.
    #[error("missing id")]
    MissingId,
    /// `id` is not a string of 1..=128 bytes.
    #[error("id must be a non-empty string of at most {MAX_ID_BYTES} bytes")]
    BadId,
    /// `from` is absent or not a string.
    #[error("missing from: expected \"agent\" or \"visitor\"")]
    MissingFrom,
    /// `from` is not one of the two users.
    #[error("unknown sender {0:?}: expected \"agent\" or \"visitor\"")]
    UnknownSender(String),
    /// `text` is absent.
    #[error("missing text")]
    MissingText,
    /// `text` is not a string (binary data, a number, …).
    #[error("text must be a UTF-8 string, not binary data or another type")]
    TextNotString,
    /// `text` is empty.
    #[error("text is empty")]
    EmptyText,
    /// `text` is longer than [`MAX_TEXT_BYTES`].
    #[error("text is {0} bytes; the limit is {MAX_TEXT_BYTES}")]
    TextTooLong(usize),
}

/// A `chat` payload as it arrives, before validation: each field may be missing, a
/// string, binary data (a Socket.IO attachment) or anything else. Only a map decodes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WireChat {
    /// `id` as sent.
    pub id: Option<WireField>,
    /// `from` as sent.
    pub from: Option<WireField>,
    /// `text` as sent.
    pub text: Option<WireField>,
}

impl<'de> Deserialize<'de> for WireChat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(WireChatVisitor)
    }
}

struct WireChatVisitor;

impl<'de> serde::de::Visitor<'de> for WireChatVisitor {
    type Value = WireChat;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object {id, from, text}")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<WireChat, A::Error> {
        let mut out = WireChat::default();
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "id" => &mut out.id,
                "from" => &mut out.from,
                "text" => &mut out.text,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<WireField>()?);
        }
        Ok(out)
    }
}

/// One field of a [`WireChat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireField {
    /// A string.
    Str(String),
    /// Binary data.
    Binary,
    /// null.
    Null,
    /// A number, boolean, array or object.
    Other,
}

impl<'de> Deserialize<'de> for WireField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireFieldVisitor)
    }
}

struct WireFieldVisitor;

impl<'de> serde::de::Visitor<'de> for WireFieldVisitor {
    type Value = WireField;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E>(self, v: &str) -> Result<WireField, E> {
        Ok(WireField::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<WireField, E> {
        Ok(WireField::Str(v))
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<WireField, E> {
        Ok(WireField::Binary)
    }
    fn visit_byte_buf<E>(self, _: Vec<u8>) -> Result<WireField, E> {
        Ok(WireField::Binary)
    }
    fn visit_unit<E>(self) -> Result<WireField, E> {
        Ok(WireField::Null)
    }
    fn visit_none<E>(self) -> Result<WireField, E> {
        Ok(WireField::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<WireField, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, _: bool) -> Result<WireField, E> {
        Ok(WireField::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<WireField, E> {
        Ok(WireField::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<WireField, E> {
        Ok(WireField::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<WireField, E> {
        Ok(WireField::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<WireField, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(WireField::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<WireField, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(WireField::Other)
    }
}

/// Checks a decoded `chat` payload and returns the message it carries.
pub fn validate(payload: &WireChat) -> Result<ChatRequest, ChatError> {
    let id = check_id(payload.id.as_ref())?;
    let from = match &payload.from {
        Some(WireField::Str(from)) => from,
        _ => return Err(ChatError::MissingFrom),
    };
    if !USERS.contains(&from.as_str()) {
        return Err(ChatError::UnknownSender(truncate(from, 32)));
    }
    let text = match &payload.text {
        None | Some(WireField::Null) => return Err(ChatError::MissingText),
        Some(WireField::Str(text)) => text,
        Some(_) => return Err(ChatError::TextNotString),
    };
    if text.is_empty() {
        return Err(ChatError::EmptyText);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(ChatError::TextTooLong(text.len()));
    }
    Ok(ChatRequest {
        id,
        from: from.clone(),
        text: text.clone(),
    })
}

/// A message id: present, a string of 1..=128 bytes.
fn check_id(id: Option<&WireField>) -> Result<String, ChatError> {
    match id {
        None | Some(WireField::Null) => Err(ChatError::MissingId),
        Some(WireField::Str(id)) if !id.is_empty() && id.len() <= MAX_ID_BYTES => Ok(id.clone()),
        Some(_) => Err(ChatError::BadId),
    }
}

/// Decodes and checks a JSON value (for callers that hold one).
pub fn validate_json(payload: &Value) -> Result<ChatRequest, ChatError> {
    let wire: WireChat =
        serde_json::from_value(payload.clone()).map_err(|_| ChatError::NotAnObject)?;
    validate(&wire)
}

/// A delivery receipt as the replicas broadcast it: `by` received message `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBroadcast {
    /// The message id.
    pub id: String,
    /// The user who received it.
    pub by: String,
    /// The replica that relayed the receipt.
    pub replica: String,
}

/// Checks a `receipt` payload `{id, by}`; returns `(id, by)`.
pub fn validate_receipt(payload: &WireReceipt) -> Result<(String, String), ChatError> {
    let id = check_id(payload.id.as_ref())?;
    match &payload.by {
        Some(WireField::Str(by)) if USERS.contains(&by.as_str()) => Ok((id, by.clone())),
        Some(WireField::Str(by)) => Err(ChatError::UnknownSender(truncate(by, 32))),
        _ => Err(ChatError::MissingFrom),
    }
}

/// A `receipt` payload as it arrives.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WireReceipt {
    /// `id` as sent.
    pub id: Option<WireField>,
    /// `by` as sent.
    pub by: Option<WireField>,
}

/// Milliseconds since the Unix epoch, 0 if the clock is before it.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_well_formed_message() {
        let msg = validate_json(&json!({"id": "m1", "from": "agent", "text": "hi"})).unwrap();
        assert_eq!(msg.from, "agent");
        assert_eq!(msg.text, "hi");
    }

    #[test]
    fn refuses_each_kind_of_bad_message() {
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        let cases = [
            (json!("hello"), ChatError::NotAnObject),
            (json!(["m", "agent", "hi"]), ChatError::NotAnObject),
            (json!(null), ChatError::NotAnObject),
            (json!({"from": "agent", "text": "hi"}), ChatError::MissingId),
            (
                json!({"id": 7, "from": "agent", "text": "hi"}),
                ChatError::BadId,
            ),
            (
                json!({"id": "", "from": "agent", "text": "hi"}),
                ChatError::BadId,
            ),
            (json!({"id": "m", "text": "hi"}), ChatError::MissingFrom),
            (
                json!({"id": "m", "from": "mallory", "text": "hi"}),
                ChatError::UnknownSender("mallory".into()),
            ),
            (json!({"id": "m", "from": "agent"}), ChatError::MissingText),
            (
                json!({"id": "m", "from": "agent", "text": [1, 2]}),
                ChatError::TextNotString,
            ),
            (
                json!({"id": "m", "from": "agent", "text": ""}),
                ChatError::EmptyText,
            ),
            (
                json!({"id": "m", "from": "agent", "text": long}),
                ChatError::TextTooLong(MAX_TEXT_BYTES + 1),
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(validate_json(&payload), Err(want), "{payload}");
        }
    }

    #[test]
    fn binary_text_is_refused_as_not_a_string() {
        use serde::de::value::{BytesDeserializer, Error};
        let field = WireField::deserialize(BytesDeserializer::<Error>::new(b"\xff\xfe")).unwrap();
        let wire = WireChat {
            id: Some(WireField::Str("m".into())),
            from: Some(WireField::Str("agent".into())),
            text: Some(field),
        };
        assert_eq!(validate(&wire), Err(ChatError::TextNotString));
    }

    #[test]
    fn text_limit_counts_bytes_not_chars() {
        let four_byte_chars = "😀".repeat(MAX_TEXT_BYTES / 4);
        assert!(
            validate_json(&json!({"id": "m", "from": "visitor", "text": four_byte_chars})).is_ok()
        );
        let one_more = format!("{four_byte_chars}a");
        assert_eq!(
            validate_json(&json!({"id": "m", "from": "visitor", "text": one_more})),
            Err(ChatError::TextTooLong(MAX_TEXT_BYTES + 1))
        );
    }

    #[test]
    fn acks_serialize_to_the_documented_shape() {
        let ok = serde_json::to_value(ChatAck::accepted("r2")).unwrap();
        assert_eq!(ok, json!({"ok": true, "replica": "r2"}));
        let err = serde_json::to_value(ChatAck::refused(&ChatError::EmptyText)).unwrap();
        assert_eq!(err, json!({"ok": false, "error": "text is empty"}));
    }
}
