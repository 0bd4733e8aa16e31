//! The wire tap on its own: it passes requests through unchanged but for the cookie, the
//! stickiness header and Host, names each failure exactly, and records what crossed in the
//! order it crossed, whichever of its paths (relay or proxy) it took.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{stack, wait_for};
use stickyscope::stack::ReplicaControl;
use stickyscope::wire::{Tap, TapConfig};
use stickyscope_contract::RequestKind;
use stickyscope_vocab::record::{FailureKind, WireKind, WireRecord};
use stickyscope_vocab::stack::Adapter;
use tokio::sync::mpsc;

/// A server that answers every request with its headers as JSON.
async fn header_echo() -> String {
    header_echo_held(None).await
}

/// A request reaching a held server: it is answered once the test says so.
type Arrival = tokio::sync::oneshot::Sender<()>;

/// [`header_echo`], but with `held`, each request is announced there and answered only
/// when the test lets it go.
async fn header_echo_held(held: Option<mpsc::Sender<Arrival>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let held = held.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let held = held.clone();
                        async move {
                            if let Some(held) = held {
                                let (go, wait) = tokio::sync::oneshot::channel();
                                held.send(go).await.unwrap();
                                wait.await.unwrap();
                            }
                            let headers: BTreeMap<String, String> = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
                                .collect();
                            let body = serde_json::to_vec(&headers).unwrap();
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .header("set-cookie", "sticky_replica=0123456789abcdef; Path=/")
                                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

async fn headers_via(url: &str) -> BTreeMap<String, String> {
    reqwest::Client::new()
        .get(format!("{url}/socket.io/?EIO=4&transport=polling"))
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_cookie_stickiness_and_host_change() {
    let upstream = header_echo().await;
    let (tx, _rx) = mpsc::channel(1024);
    let tap = Tap::start(TapConfig::new("agent", upstream.clone()), tx)
        .await
        .unwrap();

    let mut direct = headers_via(&upstream).await;
    let first = headers_via(&tap.url().expect("a listening tap")).await;
    assert!(!first.contains_key("cookie"), "nothing in the jar yet");
    let mut second = headers_via(&tap.url().expect("a listening tap")).await;
    assert_eq!(
        second.remove("cookie").as_deref(),
        Some("sticky_replica=0123456789abcdef")
    );
    direct.remove("host");
    second.remove("host");
    assert_eq!(second, direct, "all else as sent");

    tap.set_sticky(false);
    let mut off = headers_via(&tap.url().expect("a listening tap")).await;
    assert_eq!(off.remove("x-stickiness").as_deref(), Some("off"));
    assert!(!off.contains_key("cookie"), "sticky cookie withheld");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_a_request_sent_before_a_pin_does_not_undo_it() {
    let (held_tx, mut held) = mpsc::channel(4);
    let upstream = header_echo_held(Some(held_tx)).await;
    let (tx, _rx) = mpsc::channel(1024);
    let tap = Tap::start(TapConfig::new("visitor", upstream), tx)
        .await
        .unwrap();
    let url = tap.url().expect("a listening tap");
    let early = tokio::spawn(async move { headers_via(&url).await });
    let arrived = tokio::time::timeout(Duration::from_secs(10), held.recv())
        .await
        .expect("the request reaches the server")
        .unwrap();

    tap.pin("fedcba9876543210");
    arrived.send(()).unwrap();
    let answered = early.await.unwrap();
    assert!(!answered.contains_key("cookie"), "sent before the pin");
    assert_eq!(
        tap.sticky_cookie().as_deref(),
        Some("fedcba9876543210"),
        "the balancer's cookie in the earlier answer does not replace the pin"
    );

    // After the pin, the balancer's word is kept again (a server gone, a new cookie).
    let url = tap.url().expect("a listening tap");
    let later = tokio::spawn(async move { headers_via(&url).await });
    let arrived = tokio::time::timeout(Duration::from_secs(10), held.recv())
        .await
        .expect("the request reaches the server")
        .unwrap();
    arrived.send(()).unwrap();
    let answered = later.await.unwrap();
    assert_eq!(
        answered.get("cookie").map(String::as_str),
        Some("sticky_replica=fedcba9876543210"),
        "the pinned cookie is sent"
    );
    assert_eq!(
        tap.sticky_cookie().as_deref(),
        Some("0123456789abcdef"),
        "an answer to a request sent after the pin sets the cookie"
    );
}

async fn one_failure(gateway: String, timeout: Duration) -> WireRecord {
    let (tx, mut rx) = mpsc::channel(1024);
    let mut config = TapConfig::new("visitor", gateway);
    config.timeout = timeout;
    let tap = Tap::start(config, tx).await.unwrap();
    let _ = reqwest::Client::new()
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            tap.url().expect("a listening tap")
        ))
        .send()
        .await;
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_timeouts_and_no_replica_are_named() {
    let refused = one_failure("http://127.0.0.1:9".into(), Duration::from_secs(5)).await;
    let f = refused.failure.unwrap();
    assert_eq!(f.kind, FailureKind::ConnectionRefused);
    assert_eq!(f.reason, "connection refused by the gateway at 127.0.0.1:9");

    // A gateway that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let timed_out = one_failure(format!("http://{silent_addr}"), Duration::from_millis(300)).await;
    assert_eq!(timed_out.failure.unwrap().kind, FailureKind::Timeout);

    // A name that does not resolve: no TCP connection, and not called a refusal.
    let unresolved =
        one_failure("http://gateway.invalid:8000".into(), Duration::from_secs(5)).await;
    let f = unresolved.failure.unwrap();
    assert_eq!(f.kind, FailureKind::Unreachable, "{}", f.reason);
    assert!(
        f.reason
            .starts_with("cannot connect to the gateway at gateway.invalid:8000: "),
        "{}",
        f.reason
    );

    let stack = stack(1, Adapter::Memory).await;
    stack.stop("1").await.unwrap();
    let none_up = one_failure(stack.gateway_url(), Duration::from_secs(5)).await;
    let f = none_up.failure.unwrap();
    assert_eq!(f.kind, FailureKind::NoReplica);
    assert_eq!(
        f.reason,
        "no available server: the gateway has no replica in rotation (HTTP 503)"
    );
    assert_eq!(none_up.replica, None);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_websocket_replica_is_a_drop_with_its_name() {
    use stickyscope::session::{ChatSession, SessionConfig};
    use stickyscope_vocab::events::{SessionState, TransportChoice};
    let stack = stack(2, Adapter::Memory).await;
    let (sink, seen) = common::Collected::sink();
    let mut config = SessionConfig::new("agent", &stack.gateway_url());
    config.transport = TransportChoice::Websocket;
    let session = ChatSession::start(config, sink).await.unwrap();
    wait_for(Duration::from_secs(10), "connected", || {
        let seen = seen.clone();
        async move { seen.connected("agent") }
    })
    .await;
    let holder = seen.state("agent").unwrap().replica().unwrap().to_owned();
    stack.kill(&holder).await.unwrap();
    wait_for(Duration::from_secs(10), "the drop recorded", || {
        let seen = seen.clone();
        async move {
            seen.wire().iter().any(|w| {
                w.failure
                    .as_ref()
                    .is_some_and(|f| f.kind == FailureKind::Dropped)
            })
        }
    })
    .await;
    let drop = seen
        .wire()
        .into_iter()
        .find(|w| w.failure.is_some())
        .unwrap();
    assert_eq!(
        drop.failure.unwrap().reason,
        format!("WebSocket to replica {holder} closed without a close frame")
    );
    wait_for(Duration::from_secs(10), "back on the other replica", || {
        let seen = seen.clone();
        let holder = holder.clone();
        async move { matches!(seen.state("agent"), Some(SessionState::Connected { ref replica, .. }) if replica.as_deref() != Some(holder.as_str())) }
    })
    .await;
    session.shutdown().await;
    stack.shutdown().await;
}

/// A gateway that refuses an upgrade and then never finishes its answer's body: the tap
/// gives up within its bound, records the refusal, and hands the client no hop-by-hop
/// headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upgrade_is_bounded_and_loses_hop_by_hop_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = s.read(&mut head).await;
                // 400 with hop-by-hop headers and a body that never ends.
                let _ = s
                    .write_all(
                        b"HTTP/1.1 400 Bad Request\r\nConnection: keep-alive, x-hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nContent-Length: 100\r\n\r\n{\"code\"",
                    )
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let (tx, mut rx) = mpsc::channel(1024);
    let mut config = TapConfig::new("agent", format!("http://{addr}"));
    config.timeout = Duration::from_millis(500);
    let tap = Tap::start(config, tx).await.unwrap();
    let tap_addr = tap
        .url()
        .expect("a listening tap")
        .trim_start_matches("http://")
        .to_owned();
    let mut client = tokio::net::TcpStream::connect(&tap_addr).await.unwrap();
    client
        .write_all(
            b"GET /socket.io/?EIO=4&transport=websocket&sid=abc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut answer))
        .await
        .expect("the tap answered within its bound")
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 400"), "{head}");
    for hop in ["keep-alive:", "x-hop:"] {
        assert!(!head.contains(hop), "{hop} passed on: {head}");
    }
    let record = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.failure.unwrap().kind, FailureKind::Timeout);
}

/// `future`'s output, or a failed test after 10 s.
async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("within 10 s")
}

/// A gateway that answers one request per connection with `answer` and then closes it,
/// without saying so (no `Connection: close`), as servers do with idle connections; it
/// says on `served` what each request was (its first line, and its body) once it has
/// closed the connection.
async fn one_answer_then_close(answer: &'static [u8]) -> (String, mpsc::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (served, seen) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let (head_end, body_len) = loop {
                let Ok(n) = stream.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                request.extend_from_slice(&buf[..n]);
                if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                    let body_len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (end + 4, body_len);
                }
            };
            while request.len() < head_end + body_len {
                let n = stream.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer).await.unwrap();
            drop(stream);
            let text = String::from_utf8_lossy(&request);
            let first_line = text.lines().next().unwrap_or("").to_owned();
            let body = String::from_utf8_lossy(&request[head_end..]).into_owned();
            served.send(format!("{first_line} {body}")).await.unwrap();
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_connection_closed_while_idle_is_not_used_again_and_a_post_goes_once() {
    let (gateway, mut served) =
        one_answer_then_close(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n6").await;
    let (tx, mut records) = mpsc::channel(16);
    let tap = Tap::start(TapConfig::new("agent", gateway), tx)
        .await
        .unwrap();
    let url = tap.url().unwrap();
    // One client: its connection to the tap is kept between the two requests.
    let client = reqwest::Client::new();
    let path = "/socket.io/?EIO=4&transport=polling&sid=S";
    let first = client.get(format!("{url}{path}")).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "6");
    // The gateway has closed the tap's connection, idle now.
    assert!(within(served.recv())
        .await
        .unwrap()
        .starts_with("GET /socket.io/"));
    let post = client
        .post(format!("{url}{path}"))
        .body("42[\"chat\",1]")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200, "the post went on a new connection");
    assert_eq!(post.text().await.unwrap(), "6");
    assert_eq!(
        within(served.recv()).await.unwrap(),
        "POST /socket.io/?EIO=4&transport=polling&sid=S HTTP/1.1 42[\"chat\",1]"
    );
    for _ in 0..2 {
        let record = within(records.recv()).await.unwrap();
        assert_eq!(record.failure, None, "{record:?}");
    }
    assert!(
        served.try_recv().is_err(),
        "the post reached the gateway once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_chunks_is_passed_on_as_it_came_and_recorded_whole() {
    let (gateway, _served) = one_answer_then_close(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\n4\r\n1;x=y\r\n0\r\n0\r\n\r\n",
    )
    .await;
    let (tx, mut records) = mpsc::channel(16);
    let tap = Tap::start(TapConfig::new("agent", gateway), tx)
        .await
        .unwrap();
    let body = reqwest::get(format!(
        "{}/socket.io/?EIO=4&transport=polling&sid=S",
        tap.url().unwrap()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(body, "40");
    let record = within(records.recv()).await.unwrap();
    assert_eq!(record.failure, None, "{record:?}");
    assert_eq!(record.raw_down, "40");
    assert_eq!(record.bytes_down, 2);
    assert_eq!(record.packets_down.len(), 1, "{:?}", record.packets_down);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_mid_line_of_its_chunk_framing_waits_for_the_rest() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let (go_on, rest_may_go) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        // The first piece ends inside the CRLF after a chunk's data.
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\n4\r")
            .await
            .unwrap();
        let _ = rest_may_go.await;
        stream.write_all(b"\n1\r\n0\r\n0\r\n\r\n").await.unwrap();
        let _ = stream.read(&mut buf).await;
    });
    let (tx, mut records) = mpsc::channel(16);
    let tap = Tap::start(TapConfig::new("agent", gateway), tx)
        .await
        .unwrap();
    let answer = within(reqwest::get(format!(
        "{}/socket.io/?EIO=4&transport=polling&sid=S",
        tap.url().unwrap()
    )))
    .await
    .unwrap();
    // The head has reached the client; now the rest of the body.
    go_on.send(()).unwrap();
    assert_eq!(within(answer.text()).await.unwrap(), "40");
    let record = within(records.recv()).await.unwrap();
    assert_eq!(record.failure, None, "{record:?}");
    assert_eq!(record.raw_down, "40");
}

/// The thread of this process named `name`, if any: its id.
fn thread_named(name: &str) -> Option<String> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .find_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim_end() == name).then(|| task.file_name().to_string_lossy().into_owned())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_runs_at_the_lowest_priority_and_ends_with_the_tap() {
    let upstream = header_echo().await;
    let (tx, mut rx) = mpsc::channel(1024);
    let tap = Tap::start(TapConfig::new("agent", upstream), tx)
        .await
        .unwrap();
    let url = tap.url().expect("a listening tap");
    headers_via(&url).await;
    let record = within(rx.recv()).await.expect("a record of the exchange");
    assert!(
        matches!(
            record.kind,
            WireKind::Http {
                status: Some(200),
                ..
            }
        ),
        "{record:?}"
    );

    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let name = format!("tap-rec-{port}");
    let tid = thread_named(&name).expect("the tap's recorder thread");
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // Fields after the command's closing parenthesis: state is the 3rd, nice the 19th.
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let nice: i32 = after_comm.split(' ').nth(16).unwrap().parse().unwrap();
    assert_eq!(nice, 19, "the recorder gives way to every other thread");

    tap.shutdown();
    wait_for(
        Duration::from_secs(5),
        "the recorder's thread to end",
        || {
            let gone = thread_named(&name).is_none();
            async move { gone }
        },
    )
    .await;
}

/// Two threads that keep every core busy until dropped: the tap's recorder, at the lowest
/// priority, then runs late.
struct BusyCores(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl BusyCores {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        BusyCores(stop, threads)
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for thread in self.1.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A polling handshake the relay passes on, then at once the WebSocket upgrade the proxy
/// takes, over and over with every core kept busy: the handshake's record is always
/// numbered (and reaches the reader) before its upgrade's. (Out of order, a session read
/// the upgrade of a session it did not know yet and waited for one that had formed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_is_recorded_before_the_upgrade_after_it_whatever_the_load() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const ROUNDS: usize = 60;
    let stack = stack(1, Adapter::Memory).await;
    let (tx, mut rx) = mpsc::channel(4096);
    let tap = Tap::start(TapConfig::new("agent", stack.gateway_url()), tx)
        .await
        .unwrap();
    let tap_url = tap.url().expect("a listening tap");
    let tap_addr = tap_url.trim_start_matches("http://").to_owned();
    let http = reqwest::Client::new();
    let busy = BusyCores::start();
    let mut sids = Vec::new();
    for _ in 0..ROUNDS {
        let body = within(
            http.get(format!("{tap_url}/socket.io/?EIO=4&transport=polling"))
                .send(),
        )
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        let open: serde_json::Value =
            serde_json::from_str(body.strip_prefix('0').expect("an open packet")).unwrap();
        let sid = open["sid"].as_str().unwrap().to_owned();
        let mut ws = tokio::net::TcpStream::connect(&tap_addr).await.unwrap();
        let upgrade = format!(
            "GET /socket.io/?EIO=4&transport=websocket&sid={sid} HTTP/1.1\r\nHost: x\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        ws.write_all(upgrade.as_bytes()).await.unwrap();
        let mut answer = [0u8; 12];
        within(ws.read_exact(&mut answer)).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 101", "the upgrade was switched");
        sids.push(sid);
    }
    drop(busy);
    let mut seen: Vec<WireRecord> = Vec::new();
    let both_recorded = |seen: &[WireRecord]| {
        sids.iter().all(|sid| {
            seen.iter()
                .filter(|r| {
                    r.sid.as_deref() == Some(sid) && matches!(r.kind, WireKind::Http { .. })
                })
                .count()
                == 2
        })
    };
    while !both_recorded(&seen) {
        seen.push(within(rx.recv()).await.expect("the tap's records"));
    }
    for pair in seen.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "records reach the reader in order"
        );
    }
    for sid in &sids {
        let kinds: Vec<RequestKind> = seen
            .iter()
            .filter(|r| r.sid.as_deref() == Some(sid))
            .filter_map(|r| match r.kind {
                WireKind::Http { request, .. } => Some(request),
                WireKind::Ws { .. } => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [RequestKind::HandshakePolling, RequestKind::Upgrade],
            "session {sid}: its records in the wire's order"
        );
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_exchange_its_caller_gave_up_on_is_recorded_unless_the_tap_shuts_down() {
    let (arrivals_tx, mut arrivals) = mpsc::channel(4);
    let gateway = header_echo_held(Some(arrivals_tx)).await;
    let (tx, mut records) = mpsc::channel(16);
    let tap = Arc::new(Tap::direct(TapConfig::new("light", gateway), tx).unwrap());

    // A long poll the gateway holds; its caller stops waiting for it meanwhile.
    let poll = "/socket.io/?EIO=4&transport=polling&sid=held";
    let caller = tokio::spawn({
        let tap = Arc::clone(&tap);
        async move {
            tap.exchange(hyper::Method::GET, poll, bytes::Bytes::new())
                .await
        }
    });
    let let_go = within(arrivals.recv())
        .await
        .expect("the poll reaches the gateway");
    assert_eq!((tap.in_flight(), tap.polls_in_flight()), (1, 1));
    caller.abort();
    assert!(within(caller).await.is_err(), "the caller was stopped");
    assert_eq!(
        tap.in_flight(),
        1,
        "the exchange goes on without its caller"
    );
    let_go.send(()).unwrap();
    // What went out is recorded with what came back.
    let record = within(records.recv()).await.expect("a record");
    assert_eq!(record.request_kind(), Some(RequestKind::PollGet));
    assert!(
        matches!(
            record.kind,
            WireKind::Http {
                status: Some(200),
                ..
            }
        ),
        "{:?}",
        record.kind
    );
    within(tap.settled()).await;
    assert_eq!((tap.in_flight(), tap.polls_in_flight()), (0, 0));

    // A POST whose caller gives up, then the tap shuts down: it ends there, unrecorded.
    let post = "/socket.io/?EIO=4&transport=polling&sid=held";
    let caller = tokio::spawn({
        let tap = Arc::clone(&tap);
        async move {
            tap.exchange(hyper::Method::POST, post, bytes::Bytes::from_static(b"3"))
                .await
        }
    });
    let held = within(arrivals.recv())
        .await
        .expect("the post reaches the gateway");
    assert_eq!(
        (tap.in_flight(), tap.polls_in_flight()),
        (1, 0),
        "a post is no poll"
    );
    caller.abort();
    assert!(within(caller).await.is_err(), "the caller was stopped");
    assert_eq!(tap.in_flight(), 1);
    tap.shutdown();
    within(tap.settled()).await;
    assert!(records.try_recv().is_err(), "nothing recorded for it");
    let _ = held.send(());
}
