//! Saying why an error answer (4xx, 5xx) refused a request, in the words the wire gave: an
//! Engine.IO error's message, an error page's title, the balancer's "no available server",
//! a rate limit. Pure: the live tap and a browser's HAR read the same answers the same way.

use stickyscope_contract::refusal::{engine_error_message, refusal_reason};

use crate::protocol::socketio::cut;
use crate::record::{Failure, FailureKind};
use crate::traefik_model::NO_SERVER;

/// An error answer's failure — rate-limited, refused (by a replica, or by any Engine.IO
/// server in its JSON error's words), no replica in rotation, or the gateway's own error in
/// its page's words (else its status) — from its `status`, the status's reason phrase
/// (`Not Found`), its body, and whether a replica gave it (`X-Replica`).
pub fn classify_refusal(status: u16, phrase: &str, body: &[u8], from_replica: bool) -> Failure {
    if status == 429 {
        let by = if from_replica {
            "a replica"
        } else {
            "the gateway"
        };
        return Failure {
            kind: FailureKind::RateLimited,
            reason: format!("rate-limited by {by} (HTTP 429 Too Many Requests)"),
        };
    }
    if from_replica {
        return Failure {
            kind: FailureKind::Refused,
            reason: refusal_reason(status, body),
        };
    }
    // An Engine.IO server's refusal, whoever runs it and whatever names it (or not): its
    // JSON error's message, however the JSON is spaced or ordered.
    if let Some(message) = engine_error_message(body) {
        return Failure {
            kind: FailureKind::Refused,
            reason: message,
        };
    }
    // An HTML error page's title (nginx: `400 The plain HTTP request was sent to HTTPS
    // port`), else the first line of text.
    let text = std::str::from_utf8(body).ok().and_then(|t| {
        html_title(t).or_else(|| {
            t.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('<'))
                .map(|l| cut(l, 120).to_owned())
        })
    });
    let status_line = format!("HTTP {status} {phrase}");
    // A 404 says what it means whatever page comes with it (python's `Error response`,
    // nginx's `404 Not Found`): nothing serves Socket.IO's path there.
    let reason = match text {
        _ if status == 404 => {
            let page = text
                .filter(|t| !t.contains("404"))
                .map(|t| format!(" ({t:?})"))
                .unwrap_or_default();
            format!("{status_line} from the gateway{page}: nothing serves Socket.IO's path /socket.io/ there")
        }
        Some(text) => text,
        None => format!("{} from the gateway", status_line.trim_end()),
    };
    if status == 503 && reason == NO_SERVER {
        return Failure {
            kind: FailureKind::NoReplica,
            reason: format!("{NO_SERVER}: the gateway has no replica in rotation (HTTP 503)"),
        };
    }
    Failure {
        kind: FailureKind::Gateway,
        reason,
    }
}

/// The text of an HTML page's `<title>`, if it has a non-empty one.
fn html_title(page: &str) -> Option<String> {
    let lower = page.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower.get(start..)?.find("</title>")?;
    let title = page.get(start..end)?.trim();
    (!title.is_empty()).then(|| cut(title, 120).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pages_are_read_for_their_words() {
        // nginx on a TLS port, asked in plain HTTP.
        let page = "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>…</body></html>";
        let r = classify_refusal(400, "Bad Request", page.as_bytes(), false);
        assert_eq!(
            r.reason,
            "400 The plain HTTP request was sent to HTTPS port"
        );
        // A 404 with nothing to read says what it means for Socket.IO.
        let r = classify_refusal(404, "Not Found", b"<html><body></body></html>", false);
        assert!(
            r.reason.contains("nothing serves Socket.IO's path"),
            "{}",
            r.reason
        );
        // A 404 with a page of its own says so too, with the page's title.
        let page = "<html><head><title>Error response</title></head><body>404</body></html>";
        let r = classify_refusal(404, "Not Found", page.as_bytes(), false);
        assert_eq!(
            r.reason,
            "HTTP 404 Not Found from the gateway (\"Error response\"): nothing serves Socket.IO's path /socket.io/ there"
        );
        assert_eq!(html_title("<TITLE>  </TITLE>"), None);
        assert_eq!(html_title("<title>unclosed"), None);
        assert_eq!(
            html_title("<title>Ünïcode ok</title>").as_deref(),
            Some("Ünïcode ok")
        );
    }
}
