//! Proxying one HTTP exchange (a poll, a post, anything but a WebSocket upgrade) to the
//! gateway and recording it: the request's and the answer's Engine.IO payloads, decoded by
//! the one [`Framing`] the request chose; the answer's status, latency, hold and replica; and
//! what failed, when something did.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use stickyscope_contract::refusal::engine_error_message;
use stickyscope_vocab::protocol::framing::Framing;
use stickyscope_vocab::protocol::EnginePacket;
use stickyscope_vocab::record::{Failure, WireRecord};

use super::failures::{
    connect_failure, no_answer_within, not_engine_io, refusal, status_for, transport_failure,
};
use super::naming::SentCookies;
use super::{plain, set_status, text_of, Outgoing, Shared, MAX_BODY};
use crate::http_serve::strip_hop_by_hop;

/// A forwarded request's answer: its head and whole body, or why there is none.
type Answer = Result<(hyper::http::response::Parts, Bytes), Failure>;

impl Shared {
    /// Forwards one HTTP request to the gateway, records the exchange, and gives the client
    /// the gateway's answer (or the tap's word on why there is none).
    pub(super) async fn exchange(
        &self,
        req: Request<Incoming>,
        out: Outgoing,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("tap could not read the request body: {e}"),
                )
            }
        };
        self.exchange_whole(parts, body, out).await
    }

    /// Forwards one HTTP request whose body is already read, records the exchange, and
    /// gives back the gateway's answer (or the tap's word on why there is none).
    pub(super) async fn exchange_whole(
        &self,
        mut parts: hyper::http::request::Parts,
        body: Bytes,
        out: Outgoing,
    ) -> Response<Full<Bytes>> {
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let Ok(uri) = format!("{}{path}", self.base).parse::<hyper::Uri>() else {
            return plain(StatusCode::BAD_REQUEST, "tap: unusable request path".into());
        };
        parts.uri = uri;
        strip_hop_by_hop(&mut parts.headers);
        let sent = self.prepare_headers(&mut parts.headers);

        let mut record = self.http_record(&out);
        record_request(&mut record, &out, &body);

        let answer = self
            .forward(Request::from_parts(parts, Full::new(body)))
            .await;
        record.latency_us = Some(out.started.elapsed().as_micros() as u64);

        let (mut parts, body) = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                let status = status_for(&failure);
                let text = format!("stickyscope tap: {}\n", failure.reason);
                record.failure = Some(failure);
                self.emit(record).await;
                return plain(status, text);
            }
        };
        self.record_answer(&mut record, &out, &parts, &body, &sent);
        self.emit(record).await;
        strip_hop_by_hop(&mut parts.headers);
        Response::from_parts(parts, Full::new(body))
    }

    /// Sends a request to the gateway and reads its whole answer, within the tap's timeout.
    async fn forward(&self, request: Request<Full<Bytes>>) -> Answer {
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(no_answer_within(self.timeout)),
            Ok(Err(e)) if e.is_connect() => Err(connect_failure(&e, &self.authority)),
            Ok(Err(e)) => Err(transport_failure(&e)),
            Ok(Ok(resp)) => {
                let (parts, body) = resp.into_parts();
                Ok((parts, self.read_body(body).await?))
            }
        }
    }

    /// Records what the gateway answered: its status, replica, size, hold and cookies, and
    /// then a refusal for an error, or the packets of a poll's answer.
    fn record_answer(
        &self,
        record: &mut WireRecord,
        out: &Outgoing,
        parts: &hyper::http::response::Parts,
        body: &Bytes,
        sent: &SentCookies,
    ) {
        self.remember_cookies(record, &parts.headers, sent);
        self.describe_answer(record, out, (parts.status, &parts.headers), body, sent);
    }

    /// Records what an answer says (all of [`Shared::record_answer`] but keeping its
    /// cookies, which the relay does before the answer goes on).
    pub(super) fn describe_answer(
        &self,
        record: &mut WireRecord,
        out: &Outgoing,
        (status, headers): (StatusCode, &HeaderMap),
        body: &[u8],
        sent: &SentCookies,
    ) {
        set_status(record, status);
        let from_server = status.is_success() || engine_error_message(body).is_some();
        self.name_replica(record, headers, sent.sticky.as_deref(), from_server);
        record.bytes_down = body.len() as u64;
        record.held_us = stickyscope_vocab::timing::held_us(
            headers
                .get_all("server-timing")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        if status.is_client_error() || status.is_server_error() {
            record.failure = Some(refusal(status, headers, body, out.engineio));
            record.raw_down = text_of(body);
        } else if out.method == "GET" {
            record_poll(record, out.codec, status, headers, body);
        }
    }
}

/// Records what a request carried: its size, and a post's packets.
pub(super) fn record_request(record: &mut WireRecord, out: &Outgoing, body: &[u8]) {
    record.bytes_up = body.len() as u64;
    if out.method == "POST" {
        record.packets_up = out.codec.decode(body);
        record.raw_up = text_of(body);
    }
}

/// Records a poll's answer: its packets (in the framing that crossed the wire), the session
/// id an open packet gives, and that it was not Engine.IO when nothing in it decoded.
fn record_poll(
    record: &mut WireRecord,
    codec: Framing,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) {
    let codec = codec.answering(body);
    if codec == Framing::V3 {
        record.engineio = Some(3);
    }
    record.packets_down = codec.decode(body);
    record.raw_down = text_of(body);
    let nothing_decoded = !record.packets_down.is_empty()
        && record
            .packets_down
            .iter()
            .all(|p| matches!(p, EnginePacket::Invalid { .. }));
    if nothing_decoded {
        record.failure = Some(not_engine_io(status, headers, body));
    }
    if record.sid.is_none() {
        record.sid = record.packets_down.iter().find_map(|p| match p {
            EnginePacket::Open(open) => Some(open.sid.clone()),
            _ => None,
        });
    }
}
