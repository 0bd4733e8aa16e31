//! Browser HARs read as captures: a DevTools (or Playwright, or Firefox) HAR of a page that
//! spoke Socket.IO turned into what stickyscope's own taps record — each polling request,
//! WebSocket upgrade and (where the HAR has them, Chromium's `_webSocketMessages`) frame as
//! a wire record with its Engine.IO packets, its replica named from the recorded answer
//! (`X-Replica`, a header given, the sticky cookie set or sent, as live), refusals in the
//! wire's words; and the Engine.IO sessions rebuilt from their `sid`s, each a session of the
//! report (`sid 3f2aK9xQ`), connected when its handshake was answered, broken at its first
//! refused request. Requests that are not Socket.IO are counted and left out.
//!
//! A HAR is one JSON document, but it is never read whole: its entries are parsed one at a
//! time as the file streams by ([`format::stream`]), and only the Socket.IO ones are kept
//! (a page's other requests, images and scripts, are most of a HAR's size).

pub mod export;
pub mod format;

use std::collections::BTreeMap;
use std::path::Path;

use stickyscope_contract::request::{EngineQuery, RequestKind};
use stickyscope_vocab::events::{Event, SessionState};
use stickyscope_vocab::naming::Identify;
use stickyscope_vocab::protocol::engineio::decode_text_packet;
use stickyscope_vocab::protocol::framing::Framing;
use stickyscope_vocab::protocol::socketio::{cut, MAX_KEPT_DATA};
use stickyscope_vocab::protocol::EnginePacket;
use stickyscope_vocab::record::{Direction, Failure, FailureKind, Transport, WireKind, WireRecord};
use stickyscope_vocab::refusal::classify_refusal;

use format::{epoch_ms, header, Entry, Har};

/// Why a HAR cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HarError {
    /// The file could not be read.
    #[error("cannot read the HAR: {0}")]
    Io(#[from] std::io::Error),
    /// Not HAR 1.2 JSON.
    #[error("this is not a HAR (HAR 1.2, as browsers export it): {0}")]
    NotHar(String),
    /// No Socket.IO in it.
    #[error("the HAR holds {entries} request(s) and none of them is Socket.IO (no request with EIO= and transport= in its URL): record the page while it connects")]
    NoSocketIo {
        /// Requests it holds.
        entries: usize,
    },
}

/// A HAR, read.
#[derive(Debug)]
pub struct HarRead {
    /// What happened, in order, at its seconds from the first Socket.IO request.
    pub lines: Vec<(f64, Event)>,
    /// When the first Socket.IO request started (ms since the Unix epoch).
    pub started_ms: u64,
    /// Where Socket.IO was (`https://app.example`), from the first request.
    pub gateway: String,
    /// The Engine.IO sessions, by name, in the order they began.
    pub sessions: Vec<String>,
    /// What made the HAR (`WebInspector 537.36`).
    pub creator: String,
    /// Socket.IO requests read.
    pub socketio: usize,
    /// Other requests, left out.
    pub others: usize,
}

/// Whether `start` (a file's first bytes) looks like a HAR rather than a capture.
pub fn looks_like_har(start: &[u8]) -> bool {
    let text = String::from_utf8_lossy(start);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    text.starts_with('{')
        && text
            .get(1..)
            .is_some_and(|rest| rest.trim_start().starts_with("\"log\""))
}

/// Whether the file at `path` is a HAR: named `.har`, or starting as one.
pub fn is_har(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("har"))
    {
        return true;
    }
    let mut start = [0u8; 256];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut start))
        .unwrap_or(0);
    looks_like_har(&start[..read])
}

/// Reads the HAR at `path`, naming replicas as `identify` says.
pub fn read(path: &Path, identify: &Identify) -> Result<HarRead, HarError> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut requests = Vec::new();
    let mut total = 0;
    let creator = format::stream(file, |entry| {
        total += 1;
        if let Some(request) = socketio_request(entry) {
            requests.push(request);
        }
    })
    .map_err(|e| HarError::NotHar(e.to_string()))?;
    rebuilt(requests, total, creator, identify)
}

/// One Socket.IO request of the HAR.
struct Request {
    entry: Entry,
    at_ms: u64,
    origin: String,
    kind: RequestKind,
    sid: Option<String>,
    engineio: Option<u8>,
}

/// The HAR's Socket.IO requests as records and session states.
pub fn rebuild(har: Har, identify: &Identify) -> Result<HarRead, HarError> {
    let total = har.log.entries.len();
    let requests: Vec<Request> = har
        .log
        .entries
        .into_iter()
        .filter_map(socketio_request)
        .collect();
    let creator = har
        .log
        .creator
        .as_ref()
        .map(|c| format!("{} {}", c.name, c.version).trim().to_owned())
        .unwrap_or_default();
    rebuilt(requests, total, creator, identify)
}

/// The Socket.IO requests of a HAR of `total` requests made by `creator`, rebuilt.
fn rebuilt(
    mut requests: Vec<Request>,
    total: usize,
    creator: String,
    identify: &Identify,
) -> Result<HarRead, HarError> {
    if requests.is_empty() {
        return Err(HarError::NoSocketIo { entries: total });
    }
    requests.sort_by_key(|r| r.at_ms);
    let started_ms = requests[0].at_ms;
    let at_s = |ms: u64| ms.saturating_sub(started_ms) as f64 / 1000.0;
    let mut rebuilt = Rebuilt::default();
    for request in &requests {
        rebuilt.request(request, identify, &at_s);
    }
    let mut lines = rebuilt.lines;
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(HarRead {
        lines,
        started_ms,
        gateway: requests[0].origin.clone(),
        sessions: rebuilt.order,
        creator,
        socketio: requests.len(),
        others: total - requests.len(),
    })
}

/// The entry as a Socket.IO request, when its URL is one (`EIO=` and `transport=`).
fn socketio_request(entry: Entry) -> Option<Request> {
    let url = entry.request.url.as_str();
    let (before, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    let engine = EngineQuery::parse(query);
    engine.transport?;
    let engineio = engine.eio.and_then(|v| v.parse().ok());
    engineio?;
    let origin = match before.split_once("://") {
        Some((scheme, rest)) => {
            format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
        }
        None => before.to_owned(),
    };
    let kind = RequestKind::classify(&entry.request.method, Some(query));
    let sid = engine.sid.map(str::to_owned);
    Some(Request {
        at_ms: epoch_ms(&entry.started)?,
        origin,
        kind,
        sid,
        engineio,
        entry,
    })
}

/// What has been rebuilt so far.
#[derive(Default)]
struct Rebuilt {
    lines: Vec<(f64, Event)>,
    /// Session name by sid.
    names: BTreeMap<String, String>,
    /// Names in order.
    order: Vec<String>,
    /// Sessions already broken (their later refusals are records only).
    broken: std::collections::BTreeSet<String>,
    /// Records numbered per user.
    seq: BTreeMap<String, u64>,
}

/// Records of requests outside any session (a handshake that was refused).
const NO_SESSION: &str = "no session";

/// Said after a refusal's reason when the HAR kept no body to read the server's words from.
pub const BODY_NOT_KEPT: &str = " (the HAR kept no body: not the server's own words)";

/// The note on a request the HAR has no answer for.
pub const NO_ANSWER: &str = "no answer in the HAR: the page gave up on it (closing its socket aborts what is under way), or it was still under way when the HAR was saved";

impl Rebuilt {
    fn name_of(&mut self, sid: &str) -> String {
        if let Some(name) = self.names.get(sid) {
            return name.clone();
        }
        let mut name = format!("sid {}", cut(sid, 8));
        if self.order.contains(&name) {
            name = format!("sid {sid}");
        }
        self.names.insert(sid.to_owned(), name.clone());
        self.order.push(name.clone());
        name
    }

    fn request(&mut self, request: &Request, identify: &Identify, at_s: &dyn Fn(u64) -> f64) {
        let entry = &request.entry;
        let response = &entry.response;
        // No answer: 0 (Chromium) or -1 (Playwright, a request still under way).
        let status = u16::try_from(response.status).ok().filter(|s| *s > 0);
        let body = response.body();
        let up = entry
            .request
            .post_data
            .as_ref()
            .and_then(|p| p.text.clone())
            .unwrap_or_default();
        let websocket = matches!(
            request.kind,
            RequestKind::Upgrade | RequestKind::HandshakeWebsocket
        );
        // As the live tap: the request in the framing its `EIO=` asks for, a poll's answer
        // in that framing unless what crossed the wire says otherwise (a POST's answer,
        // `ok`, holds no packets).
        let asked = Framing::asked(request.engineio);
        let answered = status.is_some_and(|s| (200..300).contains(&s));
        let answer = (!websocket && answered && entry.request.method == "GET" && !body.is_empty())
            .then(|| asked.answering(&body));
        let packets_down = answer.map(|f| f.decode(&body)).unwrap_or_default();
        let opened = packets_down.iter().find_map(|p| match p {
            EnginePacket::Open(info) => Some(info.sid.clone()),
            _ => None,
        });
        let sid = request.sid.clone().or(opened.clone());
        let user = match &sid {
            Some(sid) if request.sid.is_some() || opened.is_some() => self.name_of(sid),
            _ => NO_SESSION.to_owned(),
        };
        let mut record = WireRecord::new(
            user.clone(),
            request.at_ms,
            if websocket {
                Transport::Websocket
            } else {
                Transport::Polling
            },
            WireKind::Http {
                request: request.kind,
                method: entry.request.method.clone(),
                status,
            },
        );
        record.sid = sid.clone();
        // A v3 server frames its answer as v3 whatever was asked: it speaks v3.
        record.engineio = if answer == Some(Framing::V3) {
            Some(3)
        } else {
            request.engineio
        };
        record.latency_us = entry
            .time
            .filter(|t| *t >= 0.0)
            .map(|t| (t * 1000.0).round() as u64);
        record.held_us = stickyscope_vocab::timing::held_us(
            response
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("server-timing"))
                .map(|h| h.value.as_str()),
        );
        record.bytes_up = up.len() as u64;
        record.bytes_down = body.len() as u64;
        record.packets_up = if up.is_empty() {
            Vec::new()
        } else {
            asked.decode(up.as_bytes())
        };
        record.packets_down = packets_down;
        record.raw_up = cut(&up, MAX_KEPT_DATA).to_owned();
        if entry.request.method == "GET" || status.is_some_and(|s| s >= 400) {
            record.raw_down = cut(&String::from_utf8_lossy(&body), MAX_KEPT_DATA).to_owned();
        }
        let x_replica = header(&response.headers, stickyscope_contract::names::X_REPLICA);
        let named = identify.identify(
            x_replica,
            identify
                .header
                .as_deref()
                .and_then(|name| header(&response.headers, name)),
            cookie(&response.cookies, &identify.cookie)
                .or_else(|| set_cookie(&response.headers, &identify.cookie)),
            cookie(&entry.request.cookies, &identify.cookie),
        );
        // stickyscope's own HAR export keeps what named the replica as it was recorded.
        let kept = entry
            .stickyscope
            .as_ref()
            .and_then(|k| Some((k.replica.clone()?, k.named_by.clone()?)));
        match (named, kept) {
            (Ok((id, source)), _) | (Err(_), Some((id, source))) => {
                record.replica = Some(id);
                record.replica_source = Some(source);
            }
            (Err(unnamed), None) => record.unnamed = Some(unnamed.to_string()),
        }
        record.failure = match status {
            // No answer: the browser says why (`net::ERR_CONNECTION_REFUSED`), or it gave
            // up on the request itself (a page closing its socket aborts what is under way:
            // `net::ERR_ABORTED`, or Playwright's -1), which is no failure of the stack.
            None => match entry.error.as_deref() {
                Some(error) if !error.contains("ERR_ABORTED") => Some(Failure {
                    kind: if error.contains("CONNECTION_REFUSED") {
                        FailureKind::ConnectionRefused
                    } else {
                        FailureKind::Gateway
                    },
                    reason: error.to_owned(),
                }),
                _ => {
                    record.note = Some(NO_ANSWER.to_owned());
                    None
                }
            },
            Some(status) if status >= 400 => {
                let mut failure =
                    classify_refusal(status, &response.status_text, &body, x_replica.is_some());
                if !response.kept_body() {
                    failure.reason.push_str(BODY_NOT_KEPT);
                }
                Some(failure)
            }
            _ => None,
        };
        let at = at_s(request.at_ms);
        let replica = record.replica.clone();
        let failure = record.failure.clone();
        *self.seq.entry(user.clone()).or_default() += 1;
        record.seq = self.seq[&user];
        let frames = if websocket && status == Some(101) {
            self.frames(&record, &entry.websocket_messages, at_s)
        } else {
            Vec::new()
        };
        self.lines
            .push((at, Event::Wire(std::sync::Arc::new(record))));
        // What became of the session, as far as this request tells.
        if user == NO_SESSION || self.broken.contains(&user) {
            self.lines.extend(frames);
            return;
        }
        let state = match (&failure, opened.is_some(), status.unwrap_or(0)) {
            (Some(f), _, _) => {
                self.broken.insert(user.clone());
                Some(SessionState::Failed {
                    reason: f.reason.clone(),
                })
            }
            (None, true, _) => Some(SessionState::Connected {
                replica,
                sid: sid.clone().unwrap_or_default(),
                websocket: false,
            }),
            (None, false, 101) => Some(SessionState::Connected {
                replica,
                sid: sid.clone().unwrap_or_default(),
                websocket: true,
            }),
            _ => None,
        };
        if let Some(state) = state {
            // Just after the record it follows from.
            self.lines.push((at + 1e-6, Event::Session { user, state }));
        }
        self.lines.extend(frames);
    }

    /// An upgrade's frames, each a record on the replica that answered the 101.
    fn frames(
        &mut self,
        upgrade: &WireRecord,
        messages: &[format::WebSocketMessage],
        at_s: &dyn Fn(u64) -> f64,
    ) -> Vec<(f64, Event)> {
        let mut out = Vec::new();
        for message in messages {
            let direction = if message.kind == "send" {
                Direction::Up
            } else {
                Direction::Down
            };
            let at_ms = format::frame_ms(message.time);
            let mut record = WireRecord::new(
                upgrade.user.clone(),
                at_ms,
                Transport::Websocket,
                WireKind::Ws { direction },
            );
            record.sid = upgrade.sid.clone();
            record.engineio = upgrade.engineio;
            record.replica = upgrade.replica.clone();
            record.replica_source = upgrade.replica_source.clone();
            record.unnamed = upgrade.unnamed.clone();
            let packets = if message.opcode == 2 {
                vec![EnginePacket::Binary {
                    len: message.data.len() * 3 / 4,
                }]
            } else {
                vec![decode_text_packet(&message.data)]
            };
            let raw = cut(&message.data, MAX_KEPT_DATA).to_owned();
            match direction {
                Direction::Up => {
                    record.bytes_up = message.data.len() as u64;
                    record.packets_up = packets;
                    record.raw_up = raw;
                }
                Direction::Down => {
                    record.bytes_down = message.data.len() as u64;
                    record.packets_down = packets;
                    record.raw_down = raw;
                }
            }
            *self.seq.entry(record.user.clone()).or_default() += 1;
            record.seq = self.seq[&record.user];
            out.push((at_s(at_ms), Event::Wire(std::sync::Arc::new(record))));
        }
        out
    }
}

/// The value of the cookie called `name` in a HAR's cookie list.
fn cookie<'a>(cookies: &'a [format::NameValue], name: &str) -> Option<&'a str> {
    cookies
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.value.as_str())
}

/// The value a `Set-Cookie` header gives the cookie called `name` (for HARs that list no
/// response cookies).
fn set_cookie<'a>(headers: &'a [format::NameValue], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("set-cookie"))
        .flat_map(|h| h.value.lines())
        .find_map(|line| {
            let (n, v) = line.split(';').next()?.split_once('=')?;
            (n.trim() == name).then(|| v.trim())
        })
}

#[cfg(test)]
mod tests;
