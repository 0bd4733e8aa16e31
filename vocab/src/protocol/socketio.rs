//! Socket.IO protocol v5 packets, as carried in Engine.IO message packets.
//!
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]`, where type is `0` connect,
//! `1` disconnect, `2` event, `3` ack, `4` connect_error, `5` binary event, `6` binary ack;
//! the namespace is present only when it is not `/`.

use serde::{Deserialize, Serialize};

/// Longest data kept verbatim in a decoded packet; longer data is cut (on a char boundary).
pub const MAX_KEPT_DATA: usize = 64 * 1024;

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketKind {
    /// `0`.
    Connect,
    /// `1`.
    Disconnect,
    /// `2`.
    Event,
    /// `3`.
    Ack,
    /// `4`.
    ConnectError,
    /// `5`.
    BinaryEvent,
    /// `6`.
    BinaryAck,
}

impl SocketKind {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            SocketKind::Connect => "connect",
            SocketKind::Disconnect => "disconnect",
            SocketKind::Event => "event",
            SocketKind::Ack => "ack",
            SocketKind::ConnectError => "connect_error",
            SocketKind::BinaryEvent => "binary_event",
            SocketKind::BinaryAck => "binary_ack",
        }
    }
}

/// One decoded Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketPacket {
    /// Its type.
    pub kind: SocketKind,
    /// Namespace, `/` when absent.
    pub namespace: String,
    /// Ack id, for events that want an ack and for acks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_id: Option<u64>,
    /// Number of binary attachments that follow (binary types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<u32>,
    /// The event name, for events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The JSON data, verbatim (cut to [`MAX_KEPT_DATA`] bytes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
}

/// Why a string is not a Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketDecodeError {
    /// Nothing to decode.
    #[error("empty Socket.IO packet")]
    Empty,
    /// The type digit is not 0–6.
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownType(char),
    /// The attachment count is malformed.
    #[error("bad attachment count")]
    BadAttachments,
    /// The data is not JSON.
    #[error("data is not JSON")]
    BadData,
    /// The ack id does not fit.
    #[error("ack id out of range")]
    BadAckId,
}

/// Decodes the data of an Engine.IO message packet as a Socket.IO packet.
pub fn decode(text: &str) -> Result<SocketPacket, SocketDecodeError> {
    let mut chars = text.chars();
    let kind = match chars.next().ok_or(SocketDecodeError::Empty)? {
        '0' => SocketKind::Connect,
        '1' => SocketKind::Disconnect,
        '2' => SocketKind::Event,
        '3' => SocketKind::Ack,
        '4' => SocketKind::ConnectError,
        '5' => SocketKind::BinaryEvent,
        '6' => SocketKind::BinaryAck,
        other => return Err(SocketDecodeError::UnknownType(other)),
    };
    let mut rest = chars.as_str();

    let mut attachments = None;
    if matches!(kind, SocketKind::BinaryEvent | SocketKind::BinaryAck) {
        let (count, after) = rest
            .split_once('-')
            .ok_or(SocketDecodeError::BadAttachments)?;
        attachments = Some(
            count
                .parse()
                .map_err(|_| SocketDecodeError::BadAttachments)?,
        );
        rest = after;
    }

    let mut namespace = "/".to_owned();
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        namespace = rest[..end].to_owned();
        rest = rest.get(end + 1..).unwrap_or("");
    }

    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 {
        Some(
            rest[..digits]
                .parse()
                .map_err(|_| SocketDecodeError::BadAckId)?,
        )
    } else {
        None
    };
    rest = &rest[digits..];

    let mut event = None;
    if !rest.is_empty() {
        let value: serde_json::Value =
            serde_json::from_str(rest).map_err(|_| SocketDecodeError::BadData)?;
        if matches!(kind, SocketKind::Event | SocketKind::BinaryEvent) {
            event = value
                .as_array()
                .and_then(|args| args.first())
                .and_then(|name| name.as_str())
                .map(str::to_owned);
        }
    }
    Ok(SocketPacket {
        kind,
        namespace,
        ack_id,
        attachments,
        event,
        data: cut(rest, MAX_KEPT_DATA).to_owned(),
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Examples from the Socket.IO v5 protocol specification.
    #[test]
    fn decodes_the_specification_examples() {
        let connect = decode("0").unwrap();
        assert_eq!(
            (connect.kind, connect.namespace.as_str()),
            (SocketKind::Connect, "/")
        );

        let admin = decode(r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#).unwrap();
        assert_eq!(admin.namespace, "/admin");
        assert_eq!(admin.data, r#"{"sid":"oSO0OpakMV_3jnilAAAA"}"#);

        let err = decode(r#"4{"message":"Not authorized"}"#).unwrap();
        assert_eq!(err.kind, SocketKind::ConnectError);

        let event = decode(r#"2["foo"]"#).unwrap();
        assert_eq!(event.event.as_deref(), Some("foo"));

        let with_ack = decode(r#"2/admin,12["bar"]"#).unwrap();
        assert_eq!(
            (with_ack.ack_id, with_ack.event.as_deref()),
            (Some(12), Some("bar"))
        );

        let ack = decode(r#"3/admin,13["bar"]"#).unwrap();
        assert_eq!((ack.kind, ack.ack_id), (SocketKind::Ack, Some(13)));

        let binary = decode(r#"51-["baz",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(
            (binary.kind, binary.attachments),
            (SocketKind::BinaryEvent, Some(1))
        );
        assert_eq!(binary.event.as_deref(), Some("baz"));

        let binary_ack = decode(r#"61-/admin,15[{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(binary_ack.ack_id, Some(15));

        assert_eq!(decode("1/admin,").unwrap().kind, SocketKind::Disconnect);
    }

    #[test]
    fn refuses_malformed_packets() {
        assert_eq!(decode(""), Err(SocketDecodeError::Empty));
        assert_eq!(decode("9"), Err(SocketDecodeError::UnknownType('9')));
        assert_eq!(decode("5x-[]"), Err(SocketDecodeError::BadAttachments));
        assert_eq!(decode("5[]"), Err(SocketDecodeError::BadAttachments));
        assert_eq!(decode("2[\"unterminated"), Err(SocketDecodeError::BadData));
        assert_eq!(
            decode("299999999999999999999999[]"),
            Err(SocketDecodeError::BadAckId)
        );
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }
}
