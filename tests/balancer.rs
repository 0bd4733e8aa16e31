//! The built-in balancer's health handling, topology API and controls, over real sockets.

mod common;

use std::time::Duration;

use common::{raw_handshake, stack, wait_for};
use serde_json::Value;
use stickyscope::stack::ReplicaControl;
use stickyscope_vocab::stack::Adapter;
use stickyscope_vocab::traefik_model::ServiceInfo;

async fn service(gateway: &str, name: &str) -> ServiceInfo {
    reqwest::get(format!("{gateway}/api/http/services/{name}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn statuses(gateway: &str) -> Vec<String> {
    let s = service(gateway, "replicas-sticky@embedded").await;
    s.load_balancer
        .unwrap()
        .servers
        .iter()
        .map(|srv| s.server_status[&srv.url].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_failing_healthz_leaves_rotation_and_its_clients_move() {
    let stack = stack(2, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let (holder, cookie, _) = raw_handshake(&gateway, None).await;
    let cookie = cookie.unwrap();

    stack.set_healthy(&holder, false).await.unwrap();
    wait_for(
        Duration::from_secs(3),
        "the health check to mark it DOWN",
        || {
            let gateway = &gateway;
            async move { statuses(gateway).await.contains(&"DOWN".to_owned()) }
        },
    )
    .await;
    let (moved, new_cookie, _) = raw_handshake(&gateway, Some(&cookie)).await;
    assert_ne!(moved, holder);
    assert!(new_cookie.is_some());

    stack.set_healthy(&holder, true).await.unwrap();
    wait_for(
        Duration::from_secs(3),
        "the health check to mark it UP",
        || {
            let gateway = &gateway;
            async move { statuses(gateway).await == ["UP", "UP"] }
        },
    )
    .await;
    let (back, _, _) = raw_handshake(&gateway, Some(&cookie)).await;
    assert_eq!(back, holder, "the old cookie leads home again");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_api_tracks_kill_restart_and_add_in_traefik_shape() {
    let stack = stack(2, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let sticky = service(&gateway, "replicas-sticky@embedded").await;
    let lb = sticky.load_balancer.clone().unwrap();
    assert_eq!(lb.sticky.unwrap().cookie.name, "sticky_replica");
    assert_eq!(lb.servers.len(), 2);
    let rr = service(&gateway, "replicas-roundrobin@embedded").await;
    assert!(rr.load_balancer.unwrap().sticky.is_none());

    // Each server URL joins with the X-Replica-Addr its replica reports.
    let (replica, _, _) = raw_handshake(&gateway, None).await;
    let info = stack.replicas().await;
    let addr = &info.iter().find(|r| r.id == replica).unwrap().addr;
    assert!(lb.servers.iter().any(|s| s.url == format!("http://{addr}")));

    stack.kill("1").await.unwrap();
    assert_eq!(statuses(&gateway).await, ["DOWN", "UP"]);
    stack.restart("1").await.unwrap();
    assert_eq!(statuses(&gateway).await, ["UP", "UP"]);
    assert_eq!(stack.add().await.unwrap(), "3");
    assert_eq!(statuses(&gateway).await, ["UP", "UP", "UP"]);

    let routers: Vec<Value> = reqwest::get(format!("{gateway}/api/http/routers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rules: Vec<&str> = routers
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"PathPrefix(`/socket.io`) && Header(`X-Stickiness`, `off`)"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_controls_work_and_refuse_nonsense_clearly() {
    let stack = stack(2, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let http = reqwest::Client::new();
    let post = |path: &str| {
        http.post(format!("{gateway}/_stack/replicas{path}"))
            .header("X-Stickyscope-Control", "1")
            .send()
    };

    let added = post("").await.unwrap();
    assert_eq!(added.status(), 201);
    assert_eq!(added.json::<Value>().await.unwrap()["id"], "3");
    assert_eq!(post("/3/kill").await.unwrap().status(), 200);
    let again = post("/3/kill").await.unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"],
        "replica 3 is not running"
    );
    assert_eq!(post("/3/restart").await.unwrap().status(), 200);
    assert_eq!(post("/3/restart").await.unwrap().status(), 409);
    assert_eq!(post("/9/stop").await.unwrap().status(), 404);
    assert_eq!(post("/1/explode").await.unwrap().status(), 404);

    let list: Vec<Value> = http
        .get(format!("{gateway}/_stack/replicas"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[2]["stats"]["restarts"], 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_command_serves_until_interrupted() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["stack", "--port", "0", "--replicas", "2"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the stack reports its address")
        .unwrap()
        .unwrap();
    let gateway = first.rsplit(' ').next().unwrap().to_owned();
    assert!(
        first.contains("2 replicas behind http://127.0.0.1:"),
        "{first}"
    );
    let (replica, cookie, _) = raw_handshake(&gateway, None).await;
    assert!(["1", "2"].contains(&replica.as_str()));
    assert!(cookie.is_some());

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stops on Ctrl-C")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// What a web page can send to the controls without the user's say: a "simple" POST
/// (`fetch(url, {mode: "no-cors", method: "POST"})`, no custom header, its own Origin), a
/// CORS preflight, or — after DNS rebinding — a request naming its own host. All refused;
/// the replica keeps serving. And `add` stops at the stack's cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_cannot_use_the_controls_and_add_is_capped() {
    let stack = stack(2, Adapter::Memory).await;
    let gateway = stack.gateway_url();
    let port = stack.gateway_addr().port();
    let http = reqwest::Client::new();
    let kill = format!("{gateway}/_stack/replicas/1/kill");

    let no_cors = http
        .post(&kill)
        .header("Origin", "https://evil.example")
        .header("Content-Type", "text/plain;charset=UTF-8")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(no_cors.status(), 403);
    let why = no_cors.json::<Value>().await.unwrap()["error"].clone();
    assert!(why.as_str().unwrap().contains("not for web pages"), "{why}");

    let preflight = http
        .request(reqwest::Method::OPTIONS, &kill)
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-stickyscope-control")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    let rebound = http
        .post(&kill)
        .header("Host", format!("evil.example:{port}"))
        .header("X-Stickyscope-Control", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);

    let bare = http.post(&kill).send().await.unwrap();
    assert_eq!(bare.status(), 403, "no control header");
    let listed: Vec<Value> = http
        .get(format!("{gateway}/_stack/replicas"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["state"], "running", "replica 1 survived");

    // Add until the cap: the stack takes 64 replicas and refuses the 65th clearly.
    let add = || {
        http.post(format!("{gateway}/_stack/replicas"))
            .header("X-Stickyscope-Control", "1")
            .send()
    };
    for _ in 2..stickyscope_vocab::stack::MAX_REPLICAS {
        assert_eq!(add().await.unwrap().status(), 201);
    }
    let full = add().await.unwrap();
    assert_eq!(full.status(), 409);
    assert!(full.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("at most"));
    assert_eq!(
        stack.replicas().await.len(),
        stickyscope_vocab::stack::MAX_REPLICAS
    );
    stack.shutdown().await;
}

/// A kill that arrives while the replicas restart with a new heartbeat neither fails the
/// reconfiguration nor leaves a replica on the old heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_reconfiguration_leaves_no_replica_on_old_settings() {
    let stack = stack(3, Adapter::Memory).await;
    let new = stickyscope_contract::heartbeat::Heartbeat {
        interval: Duration::from_millis(700),
        timeout: Duration::from_millis(900),
    };
    let (reconfigured, killed) = tokio::join!(stack.reconfigure(Some(new), None), async {
        tokio::task::yield_now().await;
        stack.kill("2").await
    });
    reconfigured.expect("the reconfiguration completes");
    killed.expect("the kill is carried out in its turn");
    for r in stack.replicas().await {
        if r.state != stickyscope::stack::ReplicaState::Running {
            continue;
        }
        let open: Value = serde_json::from_str(
            reqwest::get(format!("{}/socket.io/?EIO=4&transport=polling", r.url))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .strip_prefix('0')
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            open["pingInterval"], 700,
            "replica {} on old settings",
            r.id
        );
    }
    assert_eq!(
        stack
            .replicas()
            .await
            .iter()
            .filter(|r| r.state == stickyscope::stack::ReplicaState::Running)
            .count(),
        2
    );
    stack.shutdown().await;
}

/// Connections established from this process to `port` (the balancer's side of its
/// connections to a replica), read from the kernel's table.
fn established_to(port: u16) -> usize {
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| text.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields
                .get(2)
                .and_then(|remote| remote.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            // State 01 is ESTABLISHED.
            remote_port == Some(port) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// Asked to, the embedded balancer speaks HTTP/2 to its replicas: forty polls held at once
/// travel to the replica over one connection (plus, at most, the health checks' own), not
/// forty. (Over HTTP/1.1, the default, they take forty.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_polls_share_one_connection_to_their_replica() {
    use stickyscope::stack::embedded::{EmbeddedConfig, EmbeddedStack};
    use stickyscope_contract::heartbeat::Heartbeat;
    use stickyscope_contract::request::RequestKind;

    let held = 40;
    let stack = EmbeddedStack::start(EmbeddedConfig {
        replicas: 1,
        listen: "127.0.0.1:0".parse().unwrap(),
        // Long enough that no ping ends a poll while the connections are counted.
        heartbeat: Heartbeat {
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(20),
        },
        adapter: Adapter::None,
        redis_url: None,
        health_interval: Duration::from_millis(200),
        upstream: stickyscope::balancer::Upstream::H2c,
    })
    .await
    .unwrap();
    let gateway = stack.gateway_url();
    let http = reqwest::Client::new();
    let mut polls = Vec::new();
    for _ in 0..held {
        let sid = raw_handshake(&gateway, None).await.2;
        let url = format!("{gateway}/socket.io/?EIO=4&transport=polling&sid={sid}");
        // The server pings as soon as a session opens: the first poll takes that ping.
        let first = http.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(first, "2", "the first poll carries the opening ping");
        // The second waits for the next ping, 20 s away.
        let http = http.clone();
        polls.push(tokio::spawn(async move { http.get(url).send().await }));
    }
    let polls_seen = || async {
        stack.replicas().await[0]
            .stats
            .requests_of(RequestKind::PollGet)
    };
    wait_for(
        Duration::from_secs(10),
        "every poll to reach the replica",
        || async { polls_seen().await == 2 * held as u64 },
    )
    .await;
    assert!(
        polls.iter().all(|poll| !poll.is_finished()),
        "the second polls are held"
    );
    let replica = stack.replicas().await.remove(0);
    let connections = established_to(replica.addr.port());
    assert!(
        (1..=2).contains(&connections),
        "{held} held polls reach the replica over {connections} connection(s)"
    );
    for poll in polls {
        poll.abort();
    }
    stack.shutdown().await;
}
