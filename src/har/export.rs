//! Wire records written as HAR 1.2, so what stickyscope recorded opens in any HAR viewer
//! (DevTools' Network panel, Firefox's, har-viewers): each HTTP exchange an entry — its URL
//! rebuilt from the gateway, Socket.IO's path and the request's Engine.IO parameters, its
//! status, timing and bodies — and each WebSocket frame a `_webSocketMessages` item on its
//! upgrade's entry, as Chromium writes them. What a record does not keep is said in the
//! entry's comment (headers other than the replica's, bodies past what a record keeps);
//! `_stickyscope` keeps the replica and what named it, so the HAR reads back as it was.
//! Built in memory (the window's last minutes, a probe's run), then written. Pure.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use stickyscope_contract::request::RequestKind;
use stickyscope_vocab::record::{Direction, Transport, WireKind, WireRecord};

/// Where the records went: the gateway (`http://127.0.0.1:8000`) and Socket.IO's path.
pub struct Target<'a> {
    /// The gateway.
    pub gateway: &'a str,
    /// Socket.IO's path (`/socket.io/`).
    pub path: &'a str,
}

/// What each entry's comment says a record does not keep.
const NOT_KEPT: &str = "rebuilt by stickyscope from its wire record: only the replica's header is kept, bodies as far as the record keeps them";

/// The HAR document of `records` (in order).
pub fn har_of<'a>(target: &Target<'_>, records: impl IntoIterator<Item = &'a WireRecord>) -> Value {
    let mut entries: Vec<Value> = Vec::new();
    // The open upgrade (its entry's index) per user and session.
    let mut sockets: HashMap<(String, Option<String>), usize> = HashMap::new();
    for record in records {
        match record.kind {
            WireKind::Http {
                request,
                ref method,
                status,
            } => {
                let entry = http_entry(target, record, request, method, status);
                if matches!(
                    request,
                    RequestKind::Upgrade | RequestKind::HandshakeWebsocket
                ) && status == Some(101)
                {
                    sockets.insert((record.user.clone(), record.sid.clone()), entries.len());
                }
                entries.push(entry);
            }
            WireKind::Ws { direction } => {
                let Some(&index) = sockets.get(&(record.user.clone(), record.sid.clone())) else {
                    continue;
                };
                let data = match direction {
                    Direction::Up => &record.raw_up,
                    Direction::Down => &record.raw_down,
                };
                if let Some(messages) = entries[index]["_webSocketMessages"].as_array_mut() {
                    messages.push(json!({
                        "type": if direction == Direction::Up { "send" } else { "receive" },
                        "time": record.at_ms as f64 / 1000.0,
                        "opcode": 1,
                        "data": data,
                    }));
                }
            }
        }
    }
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "stickyscope", "version": env!("CARGO_PKG_VERSION")},
            "pages": [],
            "entries": entries,
        }
    })
}

fn http_entry(
    target: &Target<'_>,
    record: &WireRecord,
    request: RequestKind,
    method: &str,
    status: Option<u16>,
) -> Value {
    let transport = match (request, record.transport) {
        (RequestKind::Upgrade | RequestKind::HandshakeWebsocket, _) | (_, Transport::Websocket) => {
            "websocket"
        }
        _ => "polling",
    };
    let mut query = format!("EIO={}&transport={transport}", record.engineio.unwrap_or(4));
    if let Some(sid) = &record.sid {
        if !matches!(
            request,
            RequestKind::HandshakePolling | RequestKind::HandshakeWebsocket
        ) {
            query.push_str(&format!("&sid={sid}"));
        }
    }
    let url = format!(
        "{}/{}/?{query}",
        target.gateway.trim_end_matches('/'),
        target.path.trim_matches('/')
    );
    let started =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(record.at_ms))
            .to_string();
    let time_ms = record.latency_us.map_or(-1.0, |us| us as f64 / 1000.0);
    let mut response_headers = Vec::new();
    if let Some(replica) = &record.replica {
        if record.replica_source == Some(stickyscope_vocab::naming::Source::ReplicaHeader) {
            response_headers.push(json!({"name": "X-Replica", "value": replica}));
        }
    }
    if let Some(held) = record.held_us {
        response_headers.push(json!({
            "name": "Server-Timing",
            "value": format!("held;dur={:.1}", held as f64 / 1000.0),
        }));
    }
    let post = (method == "POST")
        .then(|| json!({"mimeType": "text/plain;charset=UTF-8", "text": record.raw_up}));
    let mut entry = json!({
        "startedDateTime": started,
        "time": time_ms,
        "request": {
            "method": method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [],
            "queryString": [],
            "headersSize": -1,
            "bodySize": record.bytes_up,
        },
        "response": {
            "status": status.map_or(0, i64::from),
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": response_headers,
            "content": {
                "size": record.bytes_down,
                "mimeType": "text/plain; charset=UTF-8",
                "text": record.raw_down,
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": record.bytes_down,
        },
        "cache": {},
        "timings": {"send": 0, "wait": time_ms.max(0.0), "receive": 0},
        "comment": NOT_KEPT,
        "_stickyscope": {
            "user": record.user,
            "replica": record.replica,
            "named_by": record.replica_source,
            "failure": record.failure.as_ref().map(|f| f.reason.clone()),
        },
    });
    if let Some(post) = post {
        entry["request"]["postData"] = post;
    }
    if status.is_none() {
        if let Some(failure) = &record.failure {
            entry["_error"] = json!(failure.reason);
        }
    }
    if status == Some(101) {
        entry["_resourceType"] = json!("websocket");
        entry["_webSocketMessages"] = json!([]);
    }
    entry
}
