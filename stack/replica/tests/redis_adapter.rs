//! Two `stickyscope-replica` processes that share nothing but `REDIS_URL` carry chat
//! messages to each other through a real Redis; with `ADAPTER=none` they do not.
//!
//! `REDIS_URL` must point at a running Redis 7 (`scripts/test.sh` starts Debian's
//! redis-server on a spare port and sets it).

use std::process::Stdio;
use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run scripts/test.sh, which starts redis-server")
}

/// Starts the replica binary; returns the process and its address.
async fn spawn_replica(id: &str, adapter: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stickyscope-replica"))
        .args(["--listen", "127.0.0.1:0", "--adapter", adapter])
        .env("REPLICA_ID", id)
        .env("REDIS_URL", redis_url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("replica binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("replica reports its address in time")
        .unwrap()
        .expect("replica printed a line");
    let addr = line
        .rsplit(' ')
        .next()
        .expect("`replica ID listening on ADDR`")
        .to_owned();
    (child, format!("http://{addr}"))
}

struct User {
    client: Client,
    chats: mpsc::UnboundedReceiver<Value>,
}

async fn connect(url: &str) -> User {
    let (tx, chats) = mpsc::unbounded_channel();
    let (open_tx, mut opened) = mpsc::unbounded_channel();
    let client = ClientBuilder::new(url)
        .transport_type(TransportType::Websocket)
        .reconnect(false)
        .on("chat", move |payload, _| {
            if let Payload::Text(values) = payload {
                values.into_iter().for_each(|v| {
                    let _ = tx.send(v);
                });
            }
            async {}.boxed()
        })
        .on(Event::Connect, move |_, _| {
            let _ = open_tx.send(());
            async {}.boxed()
        })
        .connect()
        .await
        .expect("client connects");
    tokio::time::timeout(Duration::from_secs(5), opened.recv())
        .await
        .expect("namespace connected in time");
    User { client, chats }
}

impl User {
    async fn say(&self, id: &str, from: &str) {
        self.client
            .emit("chat", json!({"id": id, "from": from, "text": "via redis"}))
            .await
            .expect("emit");
    }

    async fn receive(&mut self, id: &str, bound: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.chats.recv())
                .await
                .ok()??;
            if msg["id"] == id {
                return Some(msg);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_only_redis_url_exchange_messages() {
    let (_a, url_a) = spawn_replica("redis-a", "redis").await;
    let (_b, url_b) = spawn_replica("redis-b", "redis").await;
    let mut agent = connect(&url_a).await;
    let mut visitor = connect(&url_b).await;

    agent.say("r1", "agent").await;
    let got = visitor.receive("r1", Duration::from_secs(5)).await;
    assert_eq!(got.expect("crossed through redis")["replica"], "redis-a");
    visitor.say("r2", "visitor").await;
    let got = agent.receive("r2", Duration::from_secs(5)).await;
    assert_eq!(got.expect("and back")["replica"], "redis-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_without_adapter_do_not_exchange_messages() {
    let (_a, url_a) = spawn_replica("solo-a", "none").await;
    let (_b, url_b) = spawn_replica("solo-b", "none").await;
    let mut agent = connect(&url_a).await;
    let mut visitor = connect(&url_b).await;

    agent.say("n1", "agent").await;
    assert!(agent.receive("n1", Duration::from_secs(5)).await.is_some());
    // An observation window: nothing can arrive without an adapter.
    assert_eq!(visitor.receive("n1", Duration::from_secs(1)).await, None);
}
