//! The listening tap's fast path: each connection from the user's client is paired with one
//! connection to the gateway, and every HTTP exchange on it is relayed as it comes — the
//! request's head rewritten only where the tap must (`Host`, cookies, `X-Stickiness`, the
//! user's own headers; written from the head's own bytes, every other line as it came), the
//! answer's bytes passed on untouched as they arrive — while a copy of each goes to the tap's
//! recorder, a thread of the lowest CPU priority, which decodes it and hands the record on.
//! Nothing a record needs is worked out before the answer's last byte has gone to the client
//! but the cookies the answer sets (the next request must carry them) and the exchange's
//! place in the records' order. The proxy's records pass through the same recorder, which
//! hands everything on in the order of those places.
//!
//! What it does not relay itself it hands, bytes read so far included, to the tap's HTTP
//! proxy (`http`, `tunnel`): a WebSocket upgrade, a request body in chunks or waiting for
//! `100 Continue`, HTTP/1.0, `CONNECT`, a target not of the `/…` form, a head it cannot
//! read. What goes wrong with the gateway (no connection, no answer in time, a connection
//! closed without one) is said in the proxy's words, with its status (502, 504). A kept
//! gateway connection idle for `POOL_IDLE` or closed meanwhile is not used again, and no
//! request is ever sent twice.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use stickyscope_contract::names::STICKINESS_HEADER;
use stickyscope_vocab::record::{now_ms, Failure, FailureKind, WireRecord};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::failures::{
    closed_without_answer, connect_failure, no_answer_within, not_http, reset_without_answer,
    status_for,
};
use super::http::record_request;
use super::http1::{
    answer_headers, parse_answer_head, parse_request_head, AnswerError, AnswerHead, BodyFraming,
    ChunkedBody, RequestHead, MAX_HEAD,
};
use super::naming::{add_note, SentCookies};
use super::watchdog::Watchdog;
use super::{InFlight, Outgoing, Shared, CONNECT_TIMEOUT, MAX_BODY};
use crate::http_serve::{HEADER_READ_TIMEOUT, POOL_IDLE};

/// What a connection's request buffer holds before it must grow: a polling request's head
/// and a small body.
const REQUEST_BUFFER: usize = 1024;

/// What a connection's answer buffer holds before it must grow.
const ANSWER_BUFFER: usize = 4 * 1024;

/// The most a connection's request or answer buffer keeps between exchanges.
const KEPT_BUFFER: usize = 64 * 1024;

/// Exchanges and records waiting for the recorder before a connection waits for it.
pub(super) const RECORDER_QUEUE: usize = 1024;

/// How long the recorder rests between looks at its queue while exchanges keep coming,
/// rather than being woken for each: waking it cost each exchange the relay passed on
/// ~4 µs more (docs/BENCHMARKS.md, stop 36). Records reach the reader this much later at
/// most.
const RECORDER_REST: std::time::Duration = std::time::Duration::from_millis(1);

/// A connection to the gateway, plain or TLS.
trait GatewayIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> GatewayIo for T {}

/// One exchange as it crossed, for the recorder once the answer has gone on: what the
/// record is made of, nothing worked out yet but the cookies the answer set.
pub(super) struct Exchange {
    /// Its place in the records' order, once taken (see [`Queued`]).
    place: Option<u64>,
    method: Method,
    /// The request's target as it came (an origin-form one: see `parse_request_head`),
    /// read as a URI by the recorder, off the relay's path.
    target: Bytes,
    /// When the request's head had come in (monotonic, and ms on the wall clock).
    started: std::time::Instant,
    at_ms: u64,
    latency_us: u64,
    request_body: Bytes,
    /// The answer's head as it came and its body (up to `MAX_BODY`), or why there is none
    /// (`None` until the exchange is over: then the connection closed under it).
    answer: Option<Result<(Bytes, Bytes), Failure>>,
    sent: SentCookies,
    /// What to say of cookies the answer set that browsers refuse.
    cookie_note: Option<String>,
}

/// What a listening tap's recorder turns into records.
pub(super) enum ToRecord {
    /// An exchange the relay passed on, still to be decoded.
    Exchange(Exchange),
    /// A record the tap's HTTP proxy made (an upgrade, a WebSocket message, an exchange it
    /// relayed itself).
    Record(WireRecord),
}

/// Something for the recorder, with its place in the records' order: taken by the relay
/// before the first byte of an answer goes to the client, by the proxy when it makes a
/// record — so whatever the client did after hearing an answer comes after it, even when
/// the relay's task is held up between passing the answer on and queueing it.
pub(super) struct Queued {
    /// From 0, one for each thing queued, none skipped.
    pub(super) place: u64,
    /// What to record.
    pub(super) what: ToRecord,
}

/// Puts what the recorder was given back in the order of its places.
struct InOrder<T> {
    /// The place whose turn it is.
    next: u64,
    /// What came before its turn.
    early: std::collections::BTreeMap<u64, T>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder {
            next: 0,
            early: std::collections::BTreeMap::new(),
        }
    }
}

impl<T> InOrder<T> {
    fn put(&mut self, place: u64, what: T) {
        self.early.insert(place, what);
    }

    /// The next thing in order, once it has come. Should a place not come (one taken for
    /// an answer a client is very slow to read; none is ever dropped untaken), waiting for
    /// it ends once [`RECORDER_QUEUE`] things wait behind it: the records go on without it,
    /// and it goes on as soon as it comes.
    fn take(&mut self) -> Option<T> {
        let (&first, _) = self.early.first_key_value()?;
        if first > self.next && self.early.len() > RECORDER_QUEUE {
            tracing::warn!(
                "tap recorder: places {}..{first} held back too long",
                self.next
            );
            self.next = first;
        }
        if first > self.next {
            return None;
        }
        if first == self.next {
            self.next += 1;
        }
        self.early.pop_first().map(|(_, what)| what)
    }
}

/// Starts the recorder of one listening tap on a thread of its own at the lowest CPU
/// priority (nice 19), so decoding and handing on records takes only CPU the relays — and
/// the rest of the machine — leave idle, and never runs in a relay's place on the runtime.
/// (Not `SCHED_IDLE`: on a machine kept busy a recorder that never ran would fill its queue
/// and then hold up the relay.) While exchanges keep coming it rests [`RECORDER_REST`]
/// between looks at its queue, so the relay wakes it only for the first exchange after a
/// quiet spell. A task on the runtime if no thread can be had (woken for each: a task must
/// not sleep on a runtime thread). The thread is named `tap-rec-PORT`, after the tap's
/// listening port.
pub(super) fn start_recorder(shared: Arc<Shared>, queue: mpsc::Receiver<Queued>, port: u16) {
    let runtime = tokio::runtime::Handle::current();
    let handed = Arc::new(std::sync::Mutex::new(Some((shared, queue))));
    let taken = Arc::clone(&handed);
    let spawned = std::thread::Builder::new()
        .name(format!("tap-rec-{port}"))
        .spawn(move || {
            let Some((shared, queue)) = taken.lock().ok().and_then(|mut h| h.take()) else {
                return;
            };
            // Linux: `PRIO_PROCESS` with 0 is the calling thread. Lowering one's own
            // priority needs no privilege; if it fails the recorder runs as any thread.
            // SAFETY: a plain system call with no pointers.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
            // The recorder waits only on channels, which need none of the runtime's drivers.
            runtime.block_on(record_in_order(shared, queue, Some(RECORDER_REST)));
        });
    if let Err(e) = spawned {
        tracing::warn!("no thread for the tap's recorder ({e}); it runs as a task");
        if let Some((shared, queue)) = handed.lock().ok().and_then(|mut h| h.take()) {
            tokio::spawn(record_in_order(shared, queue, None));
        }
    }
}

/// Hands on the records of what is queued in the order of their places, off the relay's
/// path. With a `rest` (on a thread of its own), once it has taken what was queued it
/// sleeps that long and looks again, for as long as each look finds something; a look that
/// finds nothing sends it back to waiting to be woken by the next exchange.
async fn record_in_order(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Queued>,
    rest: Option<std::time::Duration>,
) {
    let mut in_order = InOrder::default();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        loop {
            // Everything queued so far.
            while let Some(Queued { place, what }) = next {
                in_order.put(place, what);
                while let Some(what) = in_order.take() {
                    let record = match what {
                        ToRecord::Exchange(exchange) => record_of(&shared, exchange),
                        ToRecord::Record(record) => record,
                    };
                    shared.hand_on(record).await;
                }
                next = queue.try_recv().ok();
            }
            let Some(rest) = rest else { break };
            std::thread::sleep(rest);
            match queue.try_recv() {
                Ok(queued) => next = Some(queued),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// The record of an exchange the relay passed on.
fn record_of(shared: &Shared, exchange: Exchange) -> WireRecord {
    let Exchange {
        place: _,
        method,
        target,
        started,
        at_ms,
        latency_us,
        request_body,
        answer,
        sent,
        cookie_note,
    } = exchange;
    // httparse and `http` take the same bytes in a target's path and query: a target the
    // relay took reads as a URI (were one not to, its record says so).
    let (uri, unread) = match hyper::Uri::from_maybe_shared(target) {
        Ok(uri) => (uri, None),
        Err(e) => (
            hyper::Uri::from_static("/"),
            Some(format!("the request's target is not a URI ({e})")),
        ),
    };
    let out = Outgoing::since(&method, &uri, started, at_ms);
    let mut record = shared.http_record(&out);
    add_note(&mut record, unread);
    record.latency_us = Some(latency_us);
    record_request(&mut record, &out, &request_body);
    add_note(&mut record, cookie_note);
    match answer.unwrap_or_else(|| Err(closed_without_answer())) {
        Ok((head, body)) => {
            let (status, headers) = answer_headers(&head);
            shared.describe_answer(&mut record, &out, (status, &headers), &body, &sent)
        }
        Err(failure) => record.failure = Some(failure),
    }
    record
}

/// What reading a request head came to.
enum Read {
    /// A head the relay takes, and what its rewrite carries from the jar.
    Head(RequestHead, SentCookies),
    /// One for the HTTP proxy: hand it the connection.
    NotMine,
    /// The client closed, or went quiet mid-head.
    Closed,
}

/// Accepts the user's client's connections until `shutdown`, relaying each.
/// (It and each connection hold the recorder's queue open: see `Shared::emit`.)
pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    recorder: mpsc::Sender<Queued>,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("tap accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(
            Arc::clone(&shared),
            stream,
            shutdown.clone(),
            recorder.clone(),
        ));
    }
}

/// Relays the exchanges of one connection from the user's client.
pub(super) async fn serve(
    shared: Arc<Shared>,
    mut client: TcpStream,
    shutdown: CancellationToken,
    recorder: mpsc::Sender<Queued>,
) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut gateway: Option<Box<dyn GatewayIo>> = None;
    // Every wait on this connection is bounded through one timer.
    let mut watch = Watchdog::new();
    // When the gateway's connection last finished an answer.
    let mut idle_since = Instant::now();
    // The request as it goes on (its head rewritten as soon as it is read whole) and the
    // answer as it comes: one of each for the connection's life, emptied for each exchange.
    let (mut request, mut answer) = (Vec::new(), BytesMut::new());
    // Waited on between requests; made once, so it is not registered anew for each.
    let mut cancelled = std::pin::pin!(shutdown.clone().cancelled_owned());
    loop {
        renew_buffers(&mut request, &mut answer);
        let head = tokio::select! {
            // The read first: a head that has come needs no look at the shutdown.
            biased;
            read = read_request_head(&shared, &mut watch, &mut client, &mut buf, &mut request) => read,
            _ = &mut cancelled, if buf.is_empty() => return,
        };
        let (started, at_ms) = (std::time::Instant::now(), now_ms());
        let (head, sent) = match head {
            Read::Head(head, sent) => (head, sent),
            Read::Closed => return,
            Read::NotMine => return hand_to_proxy(shared, client, buf, shutdown).await,
        };
        // The body (Engine.IO's are small), within the bound a head has, then the exchange.
        let body_by = Instant::from_std(started) + HEADER_READ_TIMEOUT;
        while buf.len() < head.len + head.body_len {
            match watch.within(body_by, client.read_buf(&mut buf)).await {
                Ok(Ok(0) | Err(_)) | Err(_) => return,
                Ok(Ok(_)) => {}
            }
        }
        let mut raw = buf.split_to(head.len + head.body_len).freeze();
        let request_body = raw.split_off(head.len);
        let target = raw.slice(head.path.clone());
        let _in_flight = InFlight::new(&shared);
        request.extend_from_slice(&request_body);

        // A kept connection idle for long, or that the gateway closed while the client was
        // quiet (servers close idle ones), is not used again: a request on it could find it
        // closed. (As the proxy's own pool lets idle connections go after POOL_IDLE.)
        if gateway.is_some()
            && (idle_since.elapsed() >= POOL_IDLE || gateway.as_mut().is_some_and(closed_meanwhile))
        {
            gateway = None;
        }
        let mut exchange = Exchange {
            place: None,
            method: head.method,
            target,
            started,
            at_ms,
            latency_us: 0,
            request_body,
            answer: None,
            sent,
            cookie_note: None,
        };
        if gateway.is_none() {
            match connect(&shared).await {
                Ok(io) => gateway = Some(io),
                // Nothing reached the gateway; said as the proxy says it.
                Err(failure) => fail(&shared, &mut client, &mut exchange, failure).await,
            }
        }
        let ended = if gateway.is_some() {
            relay_exchange(
                &shared,
                &mut watch,
                &mut gateway,
                (&request, &mut answer),
                &mut client,
                &mut exchange,
            )
            .await
        } else {
            Ended::GatewayClosed
        };
        let ended_at = Instant::now();
        idle_since = ended_at;
        exchange.latency_us = ended_at.into_std().duration_since(started).as_micros() as u64;
        // Every place taken is queued: the recorder waits for each in turn.
        let place = exchange.place.unwrap_or_else(|| shared.take_place());
        let what = ToRecord::Exchange(exchange);
        if recorder.send(Queued { place, what }).await.is_err() {
            return;
        }
        match ended {
            // Looked at now, while the client reads its answer: the same look before the
            // next request then costs no system call unless the gateway has sent or closed
            // something meanwhile (the connection's readiness is cleared here).
            Ended::KeepGoing => {
                if gateway.as_mut().is_some_and(closed_meanwhile) {
                    gateway = None;
                }
            }
            Ended::GatewayClosed => gateway = None,
            Ended::Close => return,
        }
    }
}

/// Empties a connection's request and answer buffers for its next exchange, keeping their
/// allocations: a fresh 4 KiB answer buffer each exchange cost 2.3 µs on the path here
/// (a block past glibc's per-thread cache, 1,032 bytes, takes its arena's slower way). What
/// an earlier answer left in the buffer was the earlier gateway connection's (see
/// `relay_answer`: the connection is let go). A buffer a large exchange grew past
/// `KEPT_BUFFER` is let go rather than kept for the connection's life.
fn renew_buffers(request: &mut Vec<u8>, answer: &mut BytesMut) {
    if request.capacity() > KEPT_BUFFER {
        *request = Vec::new();
    }
    request.clear();
    request.reserve(REQUEST_BUFFER);
    if answer.capacity() > KEPT_BUFFER {
        *answer = BytesMut::new();
    }
    answer.clear();
    // Takes the whole allocation back once the pieces passed on are gone.
    answer.reserve(ANSWER_BUFFER);
}

/// Whether a kept gateway connection has closed (or said something unasked) since its last
/// answer: a read that does not wait says so.
fn closed_meanwhile(io: &mut Box<dyn GatewayIo>) -> bool {
    let mut byte = [0u8; 1];
    futures_util::FutureExt::now_or_never(io.read(&mut byte)).is_some()
}

/// Gives the connection to the tap's HTTP proxy, with what was read of it so far.
async fn hand_to_proxy(
    shared: Arc<Shared>,
    client: TcpStream,
    read: BytesMut,
    shutdown: CancellationToken,
) {
    let stream = Rewind {
        read: read.freeze(),
        inner: client,
    };
    let service = service_fn(move |req| Arc::clone(&shared).handle(req));
    crate::http_serve::serve_connection(stream, shutdown, HEADER_READ_TIMEOUT, service).await;
}

/// How an exchange left the two connections.
enum Ended {
    /// Both can carry the next one.
    KeepGoing,
    /// The gateway's connection is done with (closed, or an answer cut short); the client's
    /// goes on.
    GatewayClosed,
    /// The client's connection ends too.
    Close,
}

/// Sends one request and relays its answer as it comes; fills in `exchange.answer`.
async fn relay_exchange(
    shared: &Shared,
    watch: &mut Watchdog,
    gateway: &mut Option<Box<dyn GatewayIo>>,
    (request, answer): (&[u8], &mut BytesMut),
    client: &mut TcpStream,
    exchange: &mut Exchange,
) -> Ended {
    // Never sent twice: a connection that closes under a request (a replica killed under a
    // held poll) is what the client must hear of, and what the record says. (A kept one
    // that went stale while idle was let go before the request: see `serve`.)
    let Some(io) = gateway.as_mut() else {
        fail(shared, client, exchange, closed_without_answer()).await;
        return Ended::GatewayClosed;
    };
    let deadline = Instant::now() + shared.timeout;
    let sent = matches!(
        watch.within(deadline, io.write_all(request)).await,
        Ok(Ok(()))
    );
    let head = if sent {
        let head_request = exchange.method == Method::HEAD;
        watch
            .within(deadline, read_answer_head(io, answer, head_request))
            .await
    } else {
        Ok(Err(AnswerError::Closed))
    };
    let failure = match head {
        Ok(Ok(head)) => {
            let deadline = Instant::now() + shared.timeout;
            let answer = (head, answer);
            return relay_answer(shared, watch, deadline, io, answer, client, exchange).await;
        }
        Err(_) => no_answer_within(shared.timeout),
        Ok(Err(AnswerError::Closed)) => closed_without_answer(),
        Ok(Err(AnswerError::Reset)) => reset_without_answer(),
        Ok(Err(AnswerError::NotHttp)) => not_http(),
    };
    fail(shared, client, exchange, failure).await;
    Ended::GatewayClosed
}

/// No answer from the gateway: the record says why, and the client gets the tap's own
/// answer, as the proxy gives it (see `failures::status_for`).
async fn fail(shared: &Shared, client: &mut TcpStream, exchange: &mut Exchange, failure: Failure) {
    exchange.place.get_or_insert_with(|| shared.take_place());
    let _ = answer_plain(client, status_for(&failure), &failure.reason).await;
    exchange.answer = Some(Err(failure));
}

/// The tap's own plain-text answer.
async fn answer_plain(
    client: &mut TcpStream,
    status: StatusCode,
    reason: &str,
) -> std::io::Result<()> {
    let text = format!("stickyscope tap: {reason}\n");
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        text.len()
    );
    let mut whole = head.into_bytes();
    whole.extend_from_slice(text.as_bytes());
    match tokio::time::timeout(HEADER_READ_TIMEOUT, client.write_all(&whole)).await {
        Ok(written) => written,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Reads an answer head into `buf` (1xx answers but a 101 are passed over as HTTP allows).
async fn read_answer_head(
    io: &mut Box<dyn GatewayIo>,
    buf: &mut BytesMut,
    head_request: bool,
) -> Result<AnswerHead, AnswerError> {
    loop {
        if let Some(head) = parse_answer_head(buf, head_request)? {
            let informational =
                head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS;
            if !informational {
                return Ok(head);
            }
            buf.advance(head.len);
            continue;
        }
        if buf.len() > MAX_HEAD {
            return Err(AnswerError::NotHttp);
        }
        match io.read_buf(buf).await {
            Ok(0) => return Err(AnswerError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(AnswerError::Reset)
            }
            Err(_) => return Err(AnswerError::Closed),
        }
    }
}

/// Passes an answer on as it comes: the head at once (its cookies kept first), the body as
/// it arrives, a copy of both kept for the recorder.
async fn relay_answer(
    shared: &Shared,
    watch: &mut Watchdog,
    deadline: Instant,
    io: &mut Box<dyn GatewayIo>,
    (head, buf): (AnswerHead, &mut BytesMut),
    client: &mut TcpStream,
    exchange: &mut Exchange,
) -> Ended {
    // Its place in the records' order, before the client can hear of it.
    exchange.place.get_or_insert_with(|| shared.take_place());
    // The next request carries the cookies this answer sets.
    if !head.set_cookies.is_empty() {
        let set_cookies = head.set_cookies.iter().map(|at| &buf[at.clone()]);
        exchange.cookie_note = shared.keep_cookies(set_cookies, &exchange.sent);
    }
    // The copies the recorder gets are taken once the client has what they copy.
    let mut head_copy = Bytes::new();
    // The head goes on with the first piece of the body, in one write, as a relay would
    // pass on what it read (two would cost the client a wake-up more).
    let mut unsent_head = Some(buf.split_to(head.len));
    let mut client_ok = true;
    let mut body = BytesMut::new();
    let mut chunks = ChunkedBody::default();
    let mut left = match head.framing {
        BodyFraming::Length(n) => n,
        _ => usize::MAX,
    };
    let mut complete = matches!(head.framing, BodyFraming::None | BodyFraming::Length(0));
    let mut cut_short = false;
    // Whether what is left in `buf` cannot be taken until more comes (part of a line of
    // a chunked body's framing).
    let mut stalled = false;
    while !complete {
        if buf.is_empty() || stalled {
            if let Some(head_bytes) = unsent_head.take() {
                client_ok = write_within(watch, deadline, client, &head_bytes).await;
                head_copy = Bytes::copy_from_slice(&head_bytes);
            }
            let read = watch.within(deadline, io.read_buf(buf)).await;
            match read {
                Ok(Ok(n)) if n > 0 => {}
                // A body that ends with the connection has ended.
                Ok(Ok(_)) if matches!(head.framing, BodyFraming::UntilClose) => break,
                _ => {
                    cut_short = true;
                    break;
                }
            }
        }
        let take = match head.framing {
            BodyFraming::Length(_) => buf.len().min(left),
            BodyFraming::Chunked => chunks.feed(buf, &mut body),
            _ => buf.len(),
        };
        if chunks.broken() {
            cut_short = true;
            break;
        }
        stalled = take == 0;
        let piece = buf.split_to(take);
        let head_sent = unsent_head.as_ref().map_or(0, BytesMut::len);
        let to_send = match unsent_head.take() {
            Some(mut head_bytes) => {
                head_bytes.unsplit(piece);
                head_bytes
            }
            None => piece,
        };
        if client_ok && !to_send.is_empty() {
            client_ok = write_within(watch, deadline, client, &to_send).await;
        }
        if head_sent > 0 {
            head_copy = Bytes::copy_from_slice(&to_send[..head_sent]);
        }
        if !matches!(head.framing, BodyFraming::Chunked) && body.len() < MAX_BODY {
            body.extend_from_slice(&to_send[head_sent..]);
        }
        match head.framing {
            BodyFraming::Length(_) => {
                left -= take;
                complete = left == 0;
            }
            BodyFraming::Chunked => complete = chunks.done(),
            _ => {}
        }
    }
    if let Some(head_bytes) = unsent_head.take() {
        client_ok = client_ok && write_within(watch, deadline, client, &head_bytes).await;
        head_copy = Bytes::copy_from_slice(&head_bytes);
    }
    exchange.answer = Some(if cut_short {
        Err(Failure {
            kind: FailureKind::Gateway,
            reason:
                "response body failed: the gateway closed the connection before the answer's end"
                    .into(),
        })
    } else {
        Ok((head_copy, body.freeze()))
    });
    if !client_ok || (cut_short && !matches!(head.framing, BodyFraming::UntilClose)) {
        return Ended::Close;
    }
    if head.status == StatusCode::SWITCHING_PROTOCOLS
        || matches!(head.framing, BodyFraming::UntilClose)
    {
        return Ended::Close;
    }
    if head.closes || cut_short || !buf.is_empty() {
        return Ended::GatewayClosed;
    }
    Ended::KeepGoing
}

/// Writes `bytes` to the client by `deadline`: a client that stops reading is let go.
async fn write_within(
    watch: &mut Watchdog,
    deadline: Instant,
    client: &mut TcpStream,
    bytes: &[u8],
) -> bool {
    matches!(
        watch.within(deadline, client.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Reads a request head into `buf` and, for one the relay takes, writes it into `request`
/// as it goes on. An idle client, or one slow to send its head, has [`HEADER_READ_TIMEOUT`]
/// (as the proxy gives it).
async fn read_request_head(
    shared: &Shared,
    watch: &mut Watchdog,
    client: &mut TcpStream,
    buf: &mut BytesMut,
    request: &mut Vec<u8>,
) -> Read {
    let deadline = Instant::now() + HEADER_READ_TIMEOUT;
    loop {
        if !buf.is_empty() {
            match parse_request_head(buf, |parsed| rewrite_request_head(shared, parsed, request)) {
                Ok(Some((head, sent))) => return Read::Head(head, sent),
                Ok(None) => {}
                Err(()) => return Read::NotMine,
            }
            if buf.len() > MAX_HEAD {
                return Read::NotMine;
            }
        }
        match watch.within(deadline, client.read_buf(buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return Read::Closed,
            Ok(Ok(_)) => {}
        }
    }
}

/// Writes the request head `parsed` as it goes to the gateway — what the proxy's
/// `prepare_headers` makes of it: `Host` the gateway's, the user's own headers in place of
/// the client's of the same name, the client's cookies then the jar's, and `X-Stickiness:
/// off` while the user's stickiness is off — every other line as it came. Returns what the
/// request carries from the jar.
fn rewrite_request_head(
    shared: &Shared,
    parsed: &httparse::Request<'_, '_>,
    to: &mut Vec<u8>,
) -> SentCookies {
    to.extend_from_slice(parsed.method.unwrap_or("GET").as_bytes());
    to.push(b' ');
    to.extend_from_slice(parsed.path.unwrap_or("/").as_bytes());
    to.extend_from_slice(b" HTTP/1.1\r\n");
    let line = |to: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        to.extend_from_slice(name);
        to.extend_from_slice(b": ");
        to.extend_from_slice(value);
        to.extend_from_slice(b"\r\n");
    };
    let mut from_client: Vec<&str> = Vec::new();
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("cookie") {
            from_client.extend(std::str::from_utf8(h.value).ok());
            continue;
        }
        let replaced = h.name.eq_ignore_ascii_case("host")
            || h.name.eq_ignore_ascii_case(STICKINESS_HEADER)
            || shared
                .headers
                .iter()
                .any(|(name, _)| h.name.eq_ignore_ascii_case(name.as_str()));
        if !replaced {
            line(to, h.name.as_bytes(), h.value);
        }
    }
    line(to, b"host", shared.authority.as_bytes());
    for (name, value) in &shared.headers {
        line(to, name.as_str().as_bytes(), value.as_bytes());
    }
    let before_cookies = to.len();
    to.extend_from_slice(b"cookie: ");
    let value_at = to.len();
    let sent = shared.write_cookies(from_client.into_iter(), to);
    if to.len() == value_at {
        to.truncate(before_cookies);
    } else {
        to.extend_from_slice(b"\r\n");
    }
    if sent.stickiness_off {
        line(to, STICKINESS_HEADER.as_bytes(), b"off");
    }
    to.extend_from_slice(b"\r\n");
    sent
}

/// A new connection to the gateway (TLS when it is `https://`), or why none came about, in
/// the words the proxy uses.
async fn connect(shared: &Shared) -> Result<Box<dyn GatewayIo>, Failure> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&shared.authority))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        .map_err(|e| connect_failure(&e, &shared.authority))?;
    let _ = tcp.set_nodelay(true);
    match &shared.tls {
        None => Ok(Box::new(tcp)),
        Some((host, connector)) => {
            match tokio::time::timeout(shared.timeout, connector.connect(host, tcp)).await {
                Ok(Ok(tls)) => Ok(Box::new(tls)),
                Ok(Err(e)) => Err(connect_failure(&e, &shared.authority)),
                Err(_) => Err(Failure {
                    kind: FailureKind::Timeout,
                    reason: format!(
                        "no TLS handshake with the gateway at {} within {:?}",
                        shared.authority, shared.timeout
                    ),
                }),
            }
        }
    }
}

/// A stream with bytes already read put back in front.
struct Rewind {
    read: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            let piece = self.read.split_to(n);
            buf.put_slice(&piece);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_comes_before_its_turn_waits_and_nothing_is_skipped() {
        let mut in_order = InOrder::default();
        in_order.put(1, "b");
        in_order.put(2, "c");
        assert_eq!(in_order.take(), None, "place 0 has not come");
        in_order.put(0, "a");
        assert_eq!(in_order.take(), Some("a"));
        assert_eq!(in_order.take(), Some("b"));
        assert_eq!(in_order.take(), Some("c"));
        assert_eq!(in_order.take(), None);
        in_order.put(4, "e");
        assert_eq!(in_order.take(), None, "place 3 has not come");
        in_order.put(3, "d");
        assert_eq!((in_order.take(), in_order.take()), (Some("d"), Some("e")));
    }

    #[test]
    fn a_connections_buffers_are_emptied_and_kept_for_its_next_exchange() {
        let (mut request, mut answer) = (Vec::new(), BytesMut::new());
        renew_buffers(&mut request, &mut answer);
        let (request_at, answer_at) = (request.as_ptr(), answer.as_ptr());
        request.extend_from_slice(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n");
        answer.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody");
        // The answer goes on in pieces split off the buffer, as `relay_answer` passes it.
        let head = answer.split_to(38);
        let body = answer.split_to(4);
        drop((head, body));
        renew_buffers(&mut request, &mut answer);
        assert!(request.is_empty() && answer.is_empty());
        assert!(request.capacity() >= REQUEST_BUFFER && answer.capacity() >= ANSWER_BUFFER);
        assert_eq!(request.as_ptr(), request_at, "the request buffer is kept");
        assert_eq!(
            answer.as_ptr(),
            answer_at,
            "the answer buffer takes its allocation back"
        );
    }

    #[test]
    fn a_buffer_a_large_exchange_grew_is_let_go() {
        let (mut request, mut answer) = (Vec::new(), BytesMut::new());
        request.resize(KEPT_BUFFER + 1, b'x');
        answer.resize(KEPT_BUFFER + 1, b'x');
        renew_buffers(&mut request, &mut answer);
        assert!(request.is_empty() && answer.is_empty());
        assert!(request.capacity() <= KEPT_BUFFER, "{}", request.capacity());
        assert!(answer.capacity() <= KEPT_BUFFER, "{}", answer.capacity());
    }

    #[test]
    fn a_place_that_does_not_come_holds_the_records_back_only_so_long() {
        let mut in_order = InOrder::default();
        let queue = RECORDER_QUEUE as u64;
        for place in 1..=queue {
            in_order.put(place, place);
            assert_eq!(in_order.take(), None, "place 0 is still awaited");
        }
        in_order.put(queue + 1, queue + 1);
        let went_on: Vec<u64> = std::iter::from_fn(|| in_order.take()).collect();
        assert_eq!(went_on, (1..=queue + 1).collect::<Vec<_>>());
        in_order.put(queue + 2, queue + 2);
        assert_eq!(in_order.take(), Some(queue + 2), "and in order after it");
        in_order.put(0, 0);
        assert_eq!(
            in_order.take(),
            Some(0),
            "the late one goes on as soon as it comes"
        );
        assert_eq!(in_order.take(), None);
        in_order.put(queue + 3, queue + 3);
        assert_eq!(in_order.take(), Some(queue + 3), "and the order goes on");
    }

    /// A record the proxy would have made, told apart by its time.
    fn proxy_record(at_ms: u64) -> ToRecord {
        use stickyscope_contract::request::RequestKind;
        use stickyscope_vocab::record::{Transport, WireKind};
        let kind = WireKind::Http {
            request: RequestKind::PollGet,
            method: "GET".into(),
            status: Some(200),
        };
        ToRecord::Record(WireRecord::new("agent", at_ms, Transport::Polling, kind))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_resting_recorder_hands_on_every_record_once_and_in_order() {
        let config = super::super::TapConfig::new("agent", "http://gateway.test:8000");
        let (sink, mut records) = mpsc::channel(1024);
        let (recorder, queue) = mpsc::channel(RECORDER_QUEUE);
        let shared = Shared::new(config, sink, super::super::Pool::Own, None).expect("a tap");
        // A rest long enough that what is queued after the first record waits for a look.
        let rest = std::time::Duration::from_millis(50);
        let runtime = tokio::runtime::Handle::current();
        let recording = std::thread::spawn(move || {
            runtime.block_on(record_in_order(Arc::new(shared), queue, Some(rest)))
        });
        async fn next(records: &mut mpsc::Receiver<WireRecord>) -> WireRecord {
            let bound = std::time::Duration::from_secs(10);
            let record = tokio::time::timeout(bound, records.recv()).await;
            record
                .expect("a record within the bound")
                .expect("the sink open")
        }
        let queue_at = |place: u64| Queued {
            place,
            what: proxy_record(place),
        };
        // The first wakes the recorder.
        recorder.send(queue_at(0)).await.expect("recorder open");
        assert_eq!(next(&mut records).await.at_ms, 0);
        // A burst while it rests, one of them out of order: every one comes, in order.
        for place in (1..=200).chain([202, 201]) {
            recorder.send(queue_at(place)).await.expect("recorder open");
        }
        for place in 1..=202 {
            let record = next(&mut records).await;
            assert_eq!((record.at_ms, record.seq), (place, place + 1));
        }
        // And one after it, whether it finds the recorder resting or waiting.
        recorder.send(queue_at(203)).await.expect("recorder open");
        assert_eq!(next(&mut records).await.at_ms, 203);
        // Nothing twice: the queue closed, the recorder ends with nothing more handed on.
        drop(recorder);
        let ended = tokio::task::spawn_blocking(move || recording.join());
        tokio::time::timeout(std::time::Duration::from_secs(10), ended)
            .await
            .expect("the recorder ends within the bound once its queue is closed")
            .expect("joined")
            .expect("the recorder ended without a panic");
        assert!(records.recv().await.is_none(), "nothing after the last");
    }

    /// A tap's shared state toward `http://gateway.test:8000` with `config` changed as given.
    fn shared_with(change: impl FnOnce(&mut super::super::TapConfig)) -> Shared {
        let mut config = super::super::TapConfig::new("agent", "http://gateway.test:8000");
        change(&mut config);
        let (sink, _) = mpsc::channel(1);
        Shared::new(config, sink, super::super::Pool::Own, None).expect("a valid tap configuration")
    }

    fn rewritten(shared: &Shared, raw: &[u8]) -> (String, SentCookies) {
        let mut to = Vec::new();
        let Ok(Some((_, sent))) =
            parse_request_head(raw, |parsed| rewrite_request_head(shared, parsed, &mut to))
        else {
            panic!("a head the relay takes");
        };
        (String::from_utf8(to).expect("a head in text"), sent)
    }

    #[test]
    fn a_request_head_is_rewritten_only_where_the_tap_must() {
        let shared = shared_with(|c| {
            c.headers = vec![("Authorization".into(), "Bearer t".into())];
            c.cookies = vec![("session".into(), "s1".into())];
        });
        let raw = b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\n\
            Host: 127.0.0.1:4000\r\nCookie: mine=1\r\nauthorization: Basic old\r\n\
            X-Stickiness: off\r\nAccept: */*\r\nX-Twice: a\r\nX-Twice: b\r\n\
            Content-Length: 2\r\n\r\n";
        let (head, sent) = rewritten(&shared, raw);
        assert_eq!(
            head,
            "POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\n\
             Accept: */*\r\nX-Twice: a\r\nX-Twice: b\r\nContent-Length: 2\r\n\
             host: gateway.test:8000\r\nauthorization: Bearer t\r\n\
             cookie: mine=1; session=s1\r\n\r\n"
        );
        assert!(!sent.stickiness_off);
    }

    #[test]
    fn with_stickiness_off_the_sticky_cookie_stays_home_and_the_replica_is_told() {
        let shared = shared_with(|c| c.sticky = false);
        shared.pin("0123456789abcdef");
        let raw = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\n\r\n";
        let (head, sent) = rewritten(&shared, raw);
        assert_eq!(
            head,
            "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nhost: gateway.test:8000\r\n\
             x-stickiness: off\r\n\r\n"
        );
        assert!(sent.stickiness_off && sent.sticky.is_none());

        let shared = shared_with(|_| {});
        shared.pin("0123456789abcdef");
        let (head, sent) = rewritten(&shared, raw);
        let cookie = stickyscope_vocab::naming::Identify::default().cookie;
        assert!(
            head.ends_with(&format!("cookie: {cookie}=0123456789abcdef\r\n\r\n")),
            "{head}"
        );
        assert_eq!(sent.sticky.as_deref(), Some("0123456789abcdef"));
    }
}
