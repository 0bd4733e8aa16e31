//! Helpers shared by the integration tests: a chat client over rust_socketio, raw
//! Engine.IO handshakes, bounded waits on conditions, and the window on an embedded stack.
#![allow(dead_code)]

pub mod nginx;
pub mod window;

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{json, Value};
use stickyscope::stack::embedded::{EmbeddedConfig, EmbeddedStack};
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::stack::Adapter;
use tokio::sync::{mpsc, oneshot};

/// A short heartbeat so that several ping cycles fit in a test.
pub const FAST_HEARTBEAT: Heartbeat = Heartbeat {
    interval: Duration::from_millis(200),
    timeout: Duration::from_millis(400),
};

/// Starts an embedded stack on an ephemeral port.
pub async fn stack(replicas: usize, adapter: Adapter) -> std::sync::Arc<EmbeddedStack> {
    EmbeddedStack::start(EmbeddedConfig {
        replicas,
        listen: "127.0.0.1:0".parse().unwrap(),
        heartbeat: FAST_HEARTBEAT,
        adapter,
        redis_url: None,
        health_interval: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .expect("embedded stack starts")
}

/// Polls `condition` until it holds or `bound` passes; panics with `what` on timeout.
pub async fn wait_for<F, Fut>(bound: Duration, what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        holds_within(bound, condition).await,
        "timed out after {bound:?} waiting for {what}"
    );
}

/// Polls `condition` until it holds (true) or `bound` passes (false), for a caller that
/// shows what still differs itself.
pub async fn holds_within<F, Fut>(bound: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw polling handshake through `gateway`; returns (replica, sticky cookie set, sid).
pub async fn raw_handshake(
    gateway: &str,
    cookie: Option<&str>,
) -> (String, Option<String>, String) {
    let client = reqwest::Client::new();
    let mut req = client.get(format!("{gateway}/socket.io/?EIO=4&transport=polling"));
    if let Some(cookie) = cookie {
        req = req.header("Cookie", cookie);
    }
    let resp = req.send().await.expect("handshake request");
    assert_eq!(resp.status(), 200, "handshake status");
    let replica = resp.headers()["x-replica"].to_str().unwrap().to_owned();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let body = resp.text().await.unwrap();
    let open: Value = serde_json::from_str(body.strip_prefix('0').expect("open packet")).unwrap();
    (
        replica,
        set_cookie,
        open["sid"].as_str().unwrap().to_owned(),
    )
}

/// How a test client connects.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `Cookie` header sent on every request.
    pub cookie: Option<String>,
    /// Send `X-Stickiness: off`.
    pub round_robin: bool,
}

/// A chat user over rust_socketio, reporting what it receives on channels.
pub struct ChatClient {
    pub client: Client,
    pub chats: mpsc::UnboundedReceiver<Value>,
    pub closed: mpsc::UnboundedReceiver<String>,
}

impl ChatClient {
    /// Connects to `url` with `transport`; reconnection is off so failures stay visible.
    pub async fn connect(
        url: &str,
        transport: TransportType,
        options: ClientOptions,
    ) -> Result<ChatClient, rust_socketio::Error> {
        let (chat_tx, chats) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let closed_tx2 = closed_tx.clone();
        let (open_tx, mut opened) = mpsc::unbounded_channel::<()>();
        let mut builder = ClientBuilder::new(url)
            .transport_type(transport)
            .reconnect(false)
            .reconnect_on_disconnect(false)
            .on("chat", move |payload: Payload, _| {
                let chat_tx = chat_tx.clone();
                async move {
                    if let Payload::Text(values) = payload {
                        for v in values {
                            let _ = chat_tx.send(v);
                        }
                    }
                }
                .boxed()
            })
            .on(Event::Connect, move |_, _| {
                let _ = open_tx.send(());
                async {}.boxed()
            })
            .on(Event::Close, move |_, _| {
                let _ = closed_tx.send("close".into());
                async {}.boxed()
            })
            .on(Event::Error, move |payload, _| {
                let _ = closed_tx2.send(format!("error: {payload:?}"));
                async {}.boxed()
            });
        if let Some(cookie) = options.cookie {
            builder = builder.opening_header("Cookie", cookie);
        }
        if options.round_robin {
            builder = builder.opening_header("X-Stickiness", "off");
        }
        let client = builder.connect().await?;
        // rust_socketio returns before the namespace CONNECT is answered; events sent
        // earlier are dropped by the server, so wait for it (bounded).
        if tokio::time::timeout(Duration::from_secs(3), opened.recv())
            .await
            .ok()
            .flatten()
            .is_none()
        {
            let _ = client.disconnect().await;
            return Err(rust_socketio::Error::IllegalActionBeforeOpen());
        }
        Ok(ChatClient {
            client,
            chats,
            closed,
        })
    }

    /// Emits `chat` with `payload` and returns the ack, or `None` if none came in `bound`.
    pub async fn send_raw(&self, payload: Payload, bound: Duration) -> Option<Value> {
        let (tx, rx) = oneshot::channel();
        let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
        let sent = self
            .client
            .emit_with_ack("chat", payload, bound, move |ack: Payload, _| {
                if let (Payload::Text(values), Some(tx)) = (ack, tx.lock().unwrap().take()) {
                    // rust_socketio hands ack arguments over as one JSON array.
                    let first = match values.into_iter().next() {
                        Some(Value::Array(args)) => args.into_iter().next(),
                        other => other,
                    };
                    let _ = tx.send(first.unwrap_or(Value::Null));
                }
                async {}.boxed()
            })
            .await;
        if sent.is_err() {
            return None;
        }
        tokio::time::timeout(bound, rx).await.ok()?.ok()
    }

    /// Sends a chat message and returns the ack.
    pub async fn send(&self, id: &str, from: &str, text: &str) -> Option<Value> {
        self.send_raw(
            Payload::Text(vec![json!({"id": id, "from": from, "text": text})]),
            Duration::from_secs(5),
        )
        .await
    }

    /// The next chat broadcast, if one arrives within `bound`.
    pub async fn next_chat(&mut self, bound: Duration) -> Option<Value> {
        tokio::time::timeout(bound, self.chats.recv()).await.ok()?
    }

    /// Waits for the chat with `id`, skipping others.
    pub async fn chat_with_id(&mut self, id: &str, bound: Duration) -> Option<Value> {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let msg = self.next_chat(left).await?;
            if msg["id"] == id {
                return Some(msg);
            }
        }
    }
}

/// Whether an ack accepted the message.
pub fn acked_ok(ack: &Option<Value>) -> bool {
    ack.as_ref().is_some_and(|a| a["ok"] == true)
}

/// Every event of a conductor-side stream, collected for assertions.
#[derive(Clone, Default)]
pub struct Collected(
    pub std::sync::Arc<std::sync::Mutex<Vec<(Instant, stickyscope_vocab::events::Event)>>>,
);

impl Collected {
    /// A sink whose events are collected.
    pub fn sink() -> (stickyscope::event_sink::EventSink, Collected) {
        let (sink, mut rx) =
            stickyscope::event_sink::EventSink::new(1 << 20, std::sync::Arc::new(|_| {}));
        let collected = Collected::default();
        let store = collected.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                store.0.lock().unwrap().push((Instant::now(), ev));
            }
        });
        (sink, collected)
    }

    /// A copy of what arrived so far.
    pub fn events(&self) -> Vec<stickyscope_vocab::events::Event> {
        self.timed().into_iter().map(|(_, e)| e).collect()
    }

    /// A copy of what arrived so far, with when each arrived.
    pub fn timed(&self) -> Vec<(Instant, stickyscope_vocab::events::Event)> {
        self.0.lock().unwrap().clone()
    }

    /// The wire records so far.
    pub fn wire(&self) -> Vec<stickyscope_vocab::record::WireRecord> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                stickyscope_vocab::events::Event::Wire(w) => {
                    Some(std::sync::Arc::unwrap_or_clone(w))
                }
                _ => None,
            })
            .collect()
    }

    /// The last session state of `user`.
    /// Why `user`'s session is not up, once it said why (reconnecting or failed).
    pub fn down_reason(&self, user: &str) -> Option<String> {
        use stickyscope_vocab::events::SessionState;
        match self.state(user)? {
            SessionState::Reconnecting { reason, .. } | SessionState::Failed { reason } => {
                Some(reason)
            }
            _ => None,
        }
    }

    pub fn state(&self, user: &str) -> Option<stickyscope_vocab::events::SessionState> {
        self.events().into_iter().rev().find_map(|e| match e {
            stickyscope_vocab::events::Event::Session { user: u, state } if u == user => {
                Some(state)
            }
            _ => None,
        })
    }

    /// Messages `user` received, in order.
    pub fn received(&self, user: &str) -> Vec<stickyscope_vocab::events::Received> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                stickyscope_vocab::events::Event::Received(r) if r.user == user => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Every message's outbox history, by id.
    pub fn outbox(
        &self,
    ) -> std::collections::BTreeMap<String, Vec<stickyscope_vocab::events::OutboxStatus>> {
        let mut out: std::collections::BTreeMap<String, Vec<_>> = Default::default();
        for e in self.events() {
            if let stickyscope_vocab::events::Event::Outbox(u) = e {
                out.entry(u.id).or_default().push(u.status);
            }
        }
        out
    }

    /// Whether `sent` messages were queued and every one is delivered.
    pub fn all_delivered(&self, sent: usize) -> bool {
        let outbox = self.outbox();
        outbox.len() == sent
            && outbox.values().all(|s| {
                matches!(
                    s.last(),
                    Some(stickyscope_vocab::events::OutboxStatus::Delivered { .. })
                )
            })
    }

    /// Ids `user` queued, in order (a message waits in the queue again after a lost
    /// session: it counts once).
    pub fn queued_ids(&self, user: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                stickyscope_vocab::events::Event::Outbox(u)
                    if u.user == user
                        && u.status == stickyscope_vocab::events::OutboxStatus::Queued =>
                {
                    Some(u.id)
                }
                _ => None,
            })
            .filter(|id| seen.insert(id.clone()))
            .collect()
    }

    /// Each of the two users received every message the other queued, once, in order.
    pub fn assert_each_received_once_in_order(&self, users: [&str; 2]) {
        for (i, user) in users.iter().enumerate() {
            let peer = users[1 - i];
            let expected = self.queued_ids(user);
            let got: Vec<String> = self
                .received(peer)
                .into_iter()
                .map(|r| r.message.id)
                .collect();
            let unique: std::collections::HashSet<&String> = got.iter().collect();
            assert_eq!(unique.len(), got.len(), "{peer} was shown a message twice");
            assert_eq!(
                got.len(),
                expected.len(),
                "{peer} lost messages from {user}"
            );
            assert_eq!(got, expected, "{peer} got {user}'s messages out of order");
        }
    }

    /// Whether `user` is connected.
    pub fn connected(&self, user: &str) -> bool {
        matches!(
            self.state(user),
            Some(stickyscope_vocab::events::SessionState::Connected { .. })
        )
    }

    /// Whether `user` is connected over WebSocket.
    pub fn on_websocket(&self, user: &str) -> bool {
        matches!(
            self.state(user),
            Some(stickyscope_vocab::events::SessionState::Connected {
                websocket: true,
                ..
            })
        )
    }

    /// Why `user` is reconnecting, if it is.
    pub fn reconnect_reason(&self, user: &str) -> Option<String> {
        match self.state(user) {
            Some(stickyscope_vocab::events::SessionState::Reconnecting { reason, .. }) => {
                Some(reason)
            }
            _ => None,
        }
    }
}

/// Runs `stickyscope probe --json --duration DURATION ARGS…`; returns its exit code, its
/// JSON document and what it wrote on stderr.
pub fn probe_json(duration: &str, args: &[&str]) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["probe", "--duration", duration, "--json"])
        .args(args)
        .output()
        .expect("the binary runs");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("probe {args:?} printed no JSON ({e}); exit {code}; stderr: {stderr}")
    });
    (code, json, stderr)
}

/// A conductor on a fresh embedded stack (3 replicas, fast heartbeat, memory bus).
pub async fn embedded_conductor(
    transport: stickyscope_vocab::events::TransportChoice,
    sticky: bool,
    sink: stickyscope::event_sink::EventSink,
) -> stickyscope::conductor::Conductor {
    stickyscope::conductor::Conductor::start(
        stickyscope::conductor::ConductorConfig {
            gateway: stickyscope::stack::GatewayConfig::Embedded(EmbeddedConfig {
                replicas: 3,
                listen: "127.0.0.1:0".parse().unwrap(),
                heartbeat: FAST_HEARTBEAT,
                adapter: Adapter::Memory,
                redis_url: None,
                health_interval: Duration::from_millis(200),
                ..Default::default()
            }),
            transport,
            sticky,
            chat: Default::default(),
        },
        sink,
    )
    .await
    .expect("conductor starts")
}

/// Runs the official socket.io JS client (`tests/js/chat_client.js`) against `url` and
/// returns the JSON line it prints. `STICKYSCOPE_NODE_MODULES` must name a `node_modules`
/// folder holding socket.io-client (`scripts/test.sh` installs one).
pub async fn run_js_client(url: &str, transports: &str, round_robin: bool) -> Value {
    use std::path::Path;
    let modules = std::env::var("STICKYSCOPE_NODE_MODULES").expect(
        "STICKYSCOPE_NODE_MODULES is not set: run scripts/test.sh, which installs socket.io-client",
    );
    assert!(
        Path::new(&modules).join("socket.io-client").is_dir(),
        "{modules}/socket.io-client is missing: run scripts/test.sh"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/chat_client.js");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script).arg(url).arg(transports);
    if round_robin {
        cmd.arg("roundrobin");
    }
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        cmd.env("NODE_PATH", &modules)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node finishes")
    .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "node printed no JSON ({e}): stdout {stdout:?} stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The local chain's replica processes are this test build's `stickyscope replica`.
pub fn chain_config(replicas: usize) -> stickyscope::stack::chain::ChainConfig {
    let program = stickyscope::stack::chain::ReplicaProgram {
        program: env!("CARGO_BIN_EXE_stickyscope").into(),
        args: vec!["replica".into()],
    };
    let mut config =
        stickyscope::stack::chain::ChainConfig::new(program).expect("the stack file reads");
    config.replicas = replicas;
    config.heartbeat = FAST_HEARTBEAT;
    config
}

/// Starts a local chain (real nginx, Traefik and Redis: `scripts/install-chain.sh`).
pub async fn chain(replicas: usize) -> stickyscope::stack::chain::Chain {
    stickyscope::stack::chain::Chain::start(chain_config(replicas))
        .await
        .unwrap_or_else(|e| panic!("the chain starts: {e}"))
}

/// Processes descended from `pid` (children, their children, …), from /proc.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some(ppid) = proc_stat(child).map(|(_, ppid)| ppid) {
            parents.push((child, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// (state, parent pid) of a process, from /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// `/stats` of a replica process at `url`.
pub async fn stats_at(url: &str) -> stickyscope_contract::stats::StatsSnapshot {
    reqwest::get(format!("{url}/stats"))
        .await
        .expect("/stats answers")
        .json()
        .await
        .expect("/stats is JSON")
}

/// The `node_modules` folder with socket.io-client and the socket.io servers
/// (`STICKYSCOPE_NODE_MODULES`, which `scripts/test.sh` installs and sets).
pub fn node_modules() -> String {
    let modules = std::env::var("STICKYSCOPE_NODE_MODULES").expect(
        "STICKYSCOPE_NODE_MODULES is not set: run scripts/test.sh, which installs socket.io-client and the socket.io servers",
    );
    for package in ["socket.io-client", "socket.io-v4", "socket.io-v2"] {
        assert!(
            std::path::Path::new(&modules).join(package).is_dir(),
            "{modules}/{package} is missing: run scripts/test.sh"
        );
    }
    modules
}

/// An official socket.io server from npm running the seed's chat (`tests/js/seed_server.js`):
/// a stack nobody here wrote. Killed when dropped.
pub struct NodeServer {
    child: tokio::process::Child,
    /// Its URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its name (what its `X-Backend` header says, when it sends one).
    pub name: String,
}

impl NodeServer {
    /// Starts one: socket.io `version` 4 or 2; `header` makes it answer with
    /// `X-Backend: NAME`.
    pub async fn start(version: u8, name: &str, header: bool) -> NodeServer {
        let mut args = vec![version.to_string()];
        let port = nginx::free_port();
        args.push(port.to_string());
        args.push(name.to_owned());
        if header {
            args.push("header".to_owned());
        }
        NodeServer::script("seed_server.js", &args, port, name).await
    }

    /// Starts `tests/js/SCRIPT ARGS…`, which listens on `port` and prints `listening PORT`.
    pub async fn script(script: &str, args: &[String], port: u16, name: &str) -> NodeServer {
        use tokio::io::AsyncBufReadExt;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/js")
            .join(script);
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .args(args)
            .env("NODE_PATH", node_modules())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (is Node.js installed?)");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .expect("the socket.io server starts")
            .unwrap()
            .unwrap_or_default();
        assert_eq!(line, format!("listening {port}"));
        NodeServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            name: name.to_owned(),
        }
    }

    /// Its address, `127.0.0.1:PORT` (how a balancer's server list names it).
    pub fn label(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The built-in balancer (its Traefik routing rules) in front of `servers`.
pub fn builtin_balancer_over(servers: &[NodeServer]) -> stickyscope::balancer::BalancerHandle {
    let pool = std::sync::Arc::new(stickyscope::balancer::pool::Pool::default());
    for server in servers {
        pool.upsert(server.label().parse().unwrap(), None);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    stickyscope::balancer::start(
        tokio::net::TcpListener::from_std(listener).unwrap(),
        pool,
        stickyscope::balancer::BalancerConfig::default(),
        None,
    )
    .unwrap()
}
