//! The reason a refused Engine.IO request gives, in the words of the server that refused it.

/// Reason recorded when a WebSocket upgrade names a session the replica never issued.
///
/// engineioxide answers such an upgrade with `101 Switching Protocols` and then drops the
/// connection, so no HTTP status carries the refusal; this is the name both sides use for it.
pub const UPGRADE_UNKNOWN_SESSION: &str = "Session ID unknown (upgrade answered 101, then dropped)";

/// The `message` of an Engine.IO JSON error body (`{"code":1,"message":"Session ID
/// unknown"}`, whatever its spacing or key order), or `HTTP <status> <reason>` when the body
/// carries none.
pub fn refusal_reason(status: u16, body: &[u8]) -> String {
    engine_error_message(body).unwrap_or_else(|| status_line(status))
}

/// The words of an Engine.IO server's JSON error body, if `body` is one: the `message` of
/// an object (Node's engine.io, engineioxide: `{"code":1,"message":"Session ID unknown"}`)
/// or a bare JSON string (python-engineio: `"Invalid session abc"`), unquoted.
pub fn engine_error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let words = match &value {
        serde_json::Value::String(words) => words.as_str(),
        object => object.get("message")?.as_str()?,
    };
    let words = words.trim();
    (!words.is_empty()).then(|| words.to_owned())
}

/// `HTTP 400 Bad Request`: the status and its standard reason phrase.
pub fn status_line(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("HTTP {status} {reason}").trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_come_from_the_engine_body_or_the_status() {
        let body = br#"{"code":"1","message":"Session ID unknown"}"#;
        assert_eq!(refusal_reason(400, body), "Session ID unknown");
        let spaced = br#"{ "message" : "Bad handshake method", "code": 2 }"#;
        assert_eq!(refusal_reason(400, spaced), "Bad handshake method");
        assert_eq!(refusal_reason(413, b""), "HTTP 413 Payload Too Large");
        assert_eq!(
            refusal_reason(400, b"{\"message\":3}"),
            "HTTP 400 Bad Request"
        );
        assert_eq!(refusal_reason(599, b""), "HTTP 599");
        // python-engineio answers with a bare JSON string.
        assert_eq!(
            refusal_reason(400, br#""Invalid session abc""#),
            "Invalid session abc"
        );
        assert_eq!(refusal_reason(400, br#""""#), "HTTP 400 Bad Request");
    }
}
