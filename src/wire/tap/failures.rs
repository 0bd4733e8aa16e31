//! Saying why an exchange failed, in the words the wire gave: a refusal (an Engine.IO
//! error's message, an error page's title, the balancer's "no available server", a rate
//! limit), an answer that is not Engine.IO at all, a server that answered in HTTP after its
//! WebSocket's 101, a connection that broke without an answer, and a gateway that could not
//! be reached. Pure: each takes what came back (or the error) and gives a [`Failure`].

use hyper::header::HeaderMap;
use hyper::StatusCode;
use stickyscope_contract::names::X_REPLICA;
use stickyscope_contract::refusal::engine_error_message;
use stickyscope_vocab::protocol::socketio::cut;
use stickyscope_vocab::record::{Failure, FailureKind};
use stickyscope_vocab::refusal::classify_refusal;

use super::{header_text, CONNECT_TIMEOUT};

/// A server that switched to WebSocket and then answered in HTTP all the same: its
/// answer's words (an Engine.IO error's message, else its body's first line, else its
/// status line), and that it came after the 101.
pub(super) fn http_after_101(prefix: &[u8], engineio: Option<u8>) -> Option<String> {
    let text = String::from_utf8_lossy(prefix);
    if !text.starts_with("HTTP/1.") {
        return None;
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default().trim();
    let words = engine_error_message(body.as_bytes())
        .or_else(|| {
            body.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(|l| cut(l, 200).to_owned())
        })
        .unwrap_or_else(|| status_line.to_owned());
    Some(format!(
        "{}, answered in HTTP after the WebSocket's 101",
        with_version_hint(words, engineio)
    ))
}

/// Engine.IO's `Unsupported protocol version`, with the version that was asked for.
fn with_version_hint(reason: String, engineio: Option<u8>) -> String {
    match engineio {
        Some(v) if reason == "Unsupported protocol version" => format!(
            "{reason}: the server does not speak Engine.IO v{v}, which was asked for (--engineio)"
        ),
        _ => reason,
    }
}

/// An error answer (4xx or 5xx), classified by who gave it (a replica says so with
/// `X-Replica`), with the version hint when it is Engine.IO's `Unsupported protocol version`.
pub(super) fn refusal(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    engineio: Option<u8>,
) -> Failure {
    let from_replica = headers.contains_key(X_REPLICA);
    let mut failure = classify_refusal(
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body,
        from_replica,
    );
    failure.reason = with_version_hint(failure.reason, engineio);
    failure
}

/// An answer that is not Engine.IO: what it was instead, in a few words, and what that
/// suggests.
pub(super) fn not_engine_io(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
    let content_type = header_text(headers, "content-type")
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "no Content-Type".to_owned());
    let start: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect();
    let shown = if start.is_empty() {
        "an empty body".to_owned()
    } else {
        format!("{start:?}…")
    };
    Failure {
        kind: FailureKind::NotEngineIo,
        reason: format!(
            "not Engine.IO: HTTP {} with {content_type}, {shown} — no Socket.IO server answers at /socket.io/ behind this gateway",
            status.as_u16()
        ),
    }
}

/// This machine's ephemeral port range (`net.ipv4.ip_local_port_range`).
fn local_port_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut ports = text.split_whitespace().map(|p| p.parse::<u16>().ok());
    Some((ports.next()??, ports.next()??))
}

/// What a connection closed without an answer may mean.
const TLS_HINT: &str = " (an https-only port? give the gateway as https://…)";

/// The kind of the first I/O error in `error`'s chain of causes.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    std::iter::from_fn(|| {
        let current = cause?;
        cause = current.source();
        Some(current)
    })
    .find_map(|e| e.downcast_ref::<std::io::Error>())
    .map(std::io::Error::kind)
}

/// The gateway closed the connection before any answer.
pub(super) fn closed_without_answer() -> Failure {
    gateway_failure(format!(
        "the gateway closed the connection without answering{TLS_HINT}"
    ))
}

/// The gateway reset the connection before any answer.
pub(super) fn reset_without_answer() -> Failure {
    gateway_failure(format!(
        "the gateway reset the connection without answering{TLS_HINT}"
    ))
}

/// What came back was not HTTP/1.1.
pub(super) fn not_http() -> Failure {
    gateway_failure("the gateway's answer is not HTTP/1.1: a TLS (https) port, or another protocol? an https gateway is given as https://…".to_owned())
}

/// No answer within the tap's `timeout`.
pub(super) fn no_answer_within(timeout: std::time::Duration) -> Failure {
    Failure {
        kind: FailureKind::Timeout,
        reason: format!("no answer from the gateway within {timeout:?}"),
    }
}

/// The status of the tap's own answer when the gateway gave none: 504 for a timeout, 502
/// otherwise.
pub(super) fn status_for(failure: &Failure) -> StatusCode {
    if failure.kind == FailureKind::Timeout {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    }
}

fn gateway_failure(reason: String) -> Failure {
    Failure {
        kind: FailureKind::Gateway,
        reason,
    }
}

/// Why an exchange with a reachable gateway broke without an HTTP answer, from the error's
/// chain of causes: the connection closed before an answer, or what came back was not HTTP
/// (a TLS port, another protocol).
pub(super) fn transport_failure(error: &(dyn std::error::Error + 'static)) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let hyper_error = std::iter::from_fn(|| {
        let current = cause?;
        cause = current.source();
        Some(current)
    })
    .find_map(|e| e.downcast_ref::<hyper::Error>());
    match hyper_error {
        Some(e) if e.is_parse() || e.is_parse_status() => not_http(),
        Some(e) if e.is_incomplete_message() || e.is_closed() || e.is_canceled() => {
            closed_without_answer()
        }
        _ if io_kind(error) == Some(std::io::ErrorKind::ConnectionReset) => reset_without_answer(),
        Some(e) => gateway_failure(format!("the gateway connection failed: {e}")),
        None => gateway_failure(format!("the gateway connection failed: {error}")),
    }
}

/// Why no connection to the gateway at `authority` came about, from the error's chain of
/// causes: refused, timed out, a certificate TLS refused, or another reason (name
/// resolution, an unreachable network) in the system's words.
pub fn connect_failure(error: &(dyn std::error::Error + 'static), authority: &str) -> Failure {
    if let Some(failure) = super::tls::tls_failure(error, authority) {
        return failure;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let io = std::iter::from_fn(|| {
        let current = cause?;
        cause = current.source();
        Some(current)
    })
    .find_map(|e| e.downcast_ref::<std::io::Error>());
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => Failure {
            kind: FailureKind::ConnectionRefused,
            reason: format!("connection refused by the gateway at {authority}"),
        },
        // EADDRNOTAVAIL on connect: no local port left to connect from.
        Some(std::io::ErrorKind::AddrNotAvailable) => Failure {
            kind: FailureKind::LocalPortsExhausted,
            reason: format!(
                "no local port left on this machine to connect to the gateway at {authority} from (its ephemeral ports{} are all in use or in TIME_WAIT): stickyscope's own limit, not the stack's — fewer sessions, a wider net.ipv4.ip_local_port_range, or more client addresses",
                local_port_range()
                    .map(|(low, high)| format!(", {low}–{high},"))
                    .unwrap_or_default()
            ),
        },
        Some(std::io::ErrorKind::TimedOut) => Failure {
            kind: FailureKind::Unreachable,
            reason: format!(
                "no TCP connection to the gateway at {authority} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        },
        _ => Failure {
            kind: FailureKind::Unreachable,
            reason: format!(
                "cannot connect to the gateway at {authority}: {}",
                io.map(ToString::to_string)
                    .unwrap_or_else(|| error.to_string())
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    /// The refusal of an answer with `status`, as the tap reads it.
    fn classify(status: StatusCode, body: &[u8], from_replica: bool) -> Failure {
        classify_refusal(
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body,
            from_replica,
        )
    }

    #[test]
    fn running_out_of_local_ports_is_named_as_this_machines_limit_not_the_stacks() {
        let error = std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        let failure = connect_failure(&error, "127.0.0.1:8000");
        assert_eq!(failure.kind, FailureKind::LocalPortsExhausted);
        assert!(
            failure.reason.starts_with(
                "no local port left on this machine to connect to the gateway at 127.0.0.1:8000 from"
            ) && failure.reason.contains("not the stack's"),
            "{}",
            failure.reason
        );
        let refused = connect_failure(
            &std::io::Error::from_raw_os_error(libc::ECONNREFUSED),
            "127.0.0.1:8000",
        );
        assert_eq!(refused.kind, FailureKind::ConnectionRefused);
    }

    #[test]
    fn an_answer_that_is_not_engine_io_says_what_it_was() {
        // A 200 that is not Engine.IO says what it was.
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        let r = not_engine_io(StatusCode::OK, &headers, b"<html>\n<p>hi</p>");
        assert_eq!(r.kind, FailureKind::NotEngineIo);
        assert!(
            r.reason
                .starts_with("not Engine.IO: HTTP 200 with text/html, \"<html><p>hi</p>\""),
            "{}",
            r.reason
        );
        let r = not_engine_io(StatusCode::OK, &HeaderMap::new(), b"");
        assert!(
            r.reason.contains("no Content-Type, an empty body"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn an_http_answer_after_a_101_is_read_for_its_words() {
        // socket.io 4 (engine.io with ws) refusing an EIO=3 upgrade, as measured.
        let sent = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: 28\r\n\r\nUnsupported protocol version";
        assert_eq!(
            http_after_101(sent, Some(3)).as_deref(),
            Some("Unsupported protocol version: the server does not speak Engine.IO v3, which was asked for (--engineio), answered in HTTP after the WebSocket's 101")
        );
        assert_eq!(
            http_after_101(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", None).as_deref(),
            Some("HTTP/1.1 503 Service Unavailable, answered in HTTP after the WebSocket's 101")
        );
        // Frames are not HTTP.
        assert_eq!(http_after_101(b"\x81\x01x", None), None);
        assert_eq!(http_after_101(b"", None), None);
    }

    #[test]
    fn refusals_are_classified_by_who_answered() {
        let r = classify(
            StatusCode::BAD_REQUEST,
            br#"{"code":"1","message":"Session ID unknown"}"#,
            true,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (FailureKind::Refused, "Session ID unknown")
        );
        // A Node socket.io server behind a proxy: no X-Replica, its own JSON spacing.
        let r = classify(
            StatusCode::BAD_REQUEST,
            br#"{"code":1,"message":"Session ID unknown"}"#,
            false,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (FailureKind::Refused, "Session ID unknown")
        );
        let r = classify(
            StatusCode::BAD_REQUEST,
            br#"{ "message": "Transport unknown", "code": 0 }"#,
            false,
        );
        assert_eq!(r.reason, "Transport unknown");
        // python-socketio, behind any balancer: a bare JSON string, unquoted, a refusal.
        let r = classify(StatusCode::BAD_REQUEST, br#""Invalid session abc""#, false);
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (FailureKind::Refused, "Invalid session abc")
        );
        let r = classify(
            StatusCode::SERVICE_UNAVAILABLE,
            b"no available server",
            false,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (
                FailureKind::NoReplica,
                "no available server: the gateway has no replica in rotation (HTTP 503)"
            )
        );
        let r = classify(
            StatusCode::TOO_MANY_REQUESTS,
            b"<html><head><title>429 Too Many Requests</title></head></html>",
            false,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (
                FailureKind::RateLimited,
                "rate-limited by the gateway (HTTP 429 Too Many Requests)"
            )
        );
        let r = classify(
            StatusCode::BAD_GATEWAY,
            b"<html><body>bad</body></html>",
            false,
        );
        assert_eq!(r.kind, FailureKind::Gateway);
        assert_eq!(r.reason, "HTTP 502 Bad Gateway from the gateway");
    }
}
