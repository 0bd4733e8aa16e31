//! The real chain on one machine — real nginx → real Traefik v3 → replica processes → real
//! Redis — with the app's sessions, the official JS client, the replica controls, Traefik's
//! real API, and the children's hygiene: none outlives the chain, however it ends.
//!
//! nginx, Traefik and redis-server must be installed (`scripts/install-chain.sh`, which
//! `scripts/test.sh` runs); a missing one fails the test and says which.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    alive, chain, chain_config, descendants, run_js_client, stats_at, wait_for, Collected,
};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::chain::{Chain, STICKY_SERVICE};
use stickyscope::stack::ReplicaControl;
use stickyscope::stack::{ControlError, ReplicaState};
use stickyscope::traefik_client::{TraefikApi, TraefikError};
use stickyscope_contract::RequestKind;
use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::stack::Adapter;
use stickyscope_vocab::traefik_reading::analyse;

async fn session(
    gateway: &str,
    user: &str,
    transport: TransportChoice,
    sticky: bool,
    sink: &stickyscope::event_sink::EventSink,
) -> ChatSession {
    let mut config = SessionConfig::new(user, gateway);
    config.transport = transport;
    config.sticky = sticky;
    ChatSession::start(config, sink.clone()).await.unwrap()
}

fn api(chain: &Chain) -> TraefikApi {
    api_at(chain, &chain.api_url())
}

/// A client of the chain's Traefik API at `url` (one instance's, when it runs several).
fn api_at(chain: &Chain, url: &str) -> TraefikApi {
    TraefikApi::with_credential(url, Some(chain.api_credential()), &Default::default()).unwrap()
}

/// Server URL → status in Traefik's sticky service.
async fn statuses(chain: &Chain) -> std::collections::BTreeMap<String, String> {
    statuses_at(chain, &chain.api_url()).await
}

/// The sticky service's server statuses in the Traefik API at `url`.
async fn statuses_at(chain: &Chain, url: &str) -> std::collections::BTreeMap<String, String> {
    api_at(chain, url)
        .services()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == STICKY_SERVICE)
        .map(|s| s.server_status)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_polling_chats_on_one_replica_and_round_robin_breaks_through_the_real_chain() {
    let chain = chain(3).await;
    let gateway = chain.gateway_url();
    let (sink, seen) = Collected::sink();
    let agent = session(&gateway, "agent", TransportChoice::Polling, true, &sink).await;
    let visitor = session(&gateway, "visitor", TransportChoice::Polling, true, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "both connected through nginx and Traefik",
        || {
            let seen = seen.clone();
            async move { seen.connected("agent") && seen.connected("visitor") }
        },
    )
    .await;
    agent.send("through the real chain").await.unwrap();
    wait_for(
        Duration::from_secs(15),
        "the visitor receives it (Redis between replicas)",
        || {
            let seen = seen.clone();
            async move {
                seen.received("visitor")
                    .iter()
                    .any(|r| r.message.text == "through the real chain")
            }
        },
    )
    .await;
    for user in ["agent", "visitor"] {
        let wire: Vec<_> = seen.wire().into_iter().filter(|w| w.user == user).collect();
        let replicas: BTreeSet<_> = wire.iter().filter_map(|w| w.replica.clone()).collect();
        assert_eq!(
            replicas.len(),
            1,
            "{user} stayed on one replica: {replicas:?}"
        );
        assert!(
            wire.iter().all(|w| w.failure.is_none()),
            "{user} was never refused"
        );
    }
    agent.shutdown().await;
    visitor.shutdown().await;

    // Round-robin polling: the next poll lands elsewhere and is refused.
    let (sink, seen) = Collected::sink();
    let stray = session(&gateway, "agent", TransportChoice::Polling, false, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "Session ID unknown through the chain",
        || {
            let seen = seen.clone();
            async move { seen.reconnect_reason("agent").as_deref() == Some("Session ID unknown") }
        },
    )
    .await;
    stray.shutdown().await;

    // WebSocket needs no stickiness.
    let (sink, seen) = Collected::sink();
    let ws = session(
        &gateway,
        "visitor",
        TransportChoice::Websocket,
        false,
        &sink,
    )
    .await;
    wait_for(
        Duration::from_secs(15),
        "connected over WebSocket, no stickiness",
        || {
            let seen = seen.clone();
            async move { seen.on_websocket("visitor") }
        },
    )
    .await;
    ws.shutdown().await;
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_js_client_chats_through_the_real_chain() {
    let chain = chain(3).await;
    let result = run_js_client(&chain.gateway_url(), "polling,websocket", false).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["ack"]["ok"], true, "{result}");
    assert_eq!(result["transport"], "websocket", "{result}");
    let holder = result["ack"]["replica"].as_str().unwrap().to_owned();
    for replica in chain.replicas().await {
        let stats = stats_at(&replica.url).await;
        if replica.id == holder {
            assert_eq!(stats.requests_of(RequestKind::Upgrade), 1, "{stats:?}");
            assert!(stats.rejected.is_empty(), "{:?}", stats.rejected);
        } else {
            assert_eq!(
                stats.total_requests(),
                0,
                "replica {} saw requests",
                replica.id
            );
        }
    }
    let broken = run_js_client(&chain.gateway_url(), "polling", true).await;
    assert_eq!(
        broken["ok"], false,
        "round-robin polling cannot form: {broken}"
    );
    chain.shutdown().await;
}

/// Failover: the replica holding a sticky session is killed; Traefik's health check (every
/// second) takes it out and the session is back on another replica within that interval
/// plus a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sticky_replica_moves_the_session_within_the_health_interval_and_a_second() {
    let chain = chain(3).await;
    let (sink, seen) = Collected::sink();
    let agent = session(
        &chain.gateway_url(),
        "agent",
        TransportChoice::Polling,
        true,
        &sink,
    )
    .await;
    wait_for(Duration::from_secs(15), "connected", || {
        let seen = seen.clone();
        async move { seen.connected("agent") }
    })
    .await;
    let holder = seen.state("agent").unwrap().replica().unwrap().to_owned();
    let killed = Instant::now();
    chain.kill(&holder).await.unwrap();
    let bound = Duration::from_secs(2);
    wait_for(bound, "back on another replica within 2 s", || {
        let seen = seen.clone();
        let holder = holder.clone();
        async move {
            seen.state("agent")
                .and_then(|s| s.replica().map(str::to_owned))
                .is_some_and(|r| r != holder)
        }
    })
    .await;
    eprintln!("failover through the real chain: {:?}", killed.elapsed());
    agent.shutdown().await;
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_controls_reach_traefik() {
    let chain = chain(2).await;
    let id = chain.add().await.unwrap();
    assert_eq!(id, "3");
    let url3 = chain.replicas().await[2].url.clone();
    // An added replica is done when Traefik's file provider has it in rotation.
    assert_eq!(
        statuses(&chain).await.get(&url3).map(String::as_str),
        Some("UP"),
        "replica 3 UP as soon as add returns"
    );
    let url1 = chain.replicas().await[0].url.clone();
    let status_of = |url: String| {
        let chain = &chain;
        async move { statuses(chain).await.get(&url).cloned() }
    };
    chain.set_healthy("1", false).await.unwrap();
    wait_for(Duration::from_secs(5), "an unhealthy replica DOWN", || {
        let f = status_of(url1.clone());
        async move { f.await.as_deref() == Some("DOWN") }
    })
    .await;
    chain.set_healthy("1", true).await.unwrap();
    wait_for(Duration::from_secs(5), "healthy again, UP", || {
        let f = status_of(url1.clone());
        async move { f.await.as_deref() == Some("UP") }
    })
    .await;
    chain.stop("1").await.unwrap();
    assert_eq!(chain.replicas().await[0].state, ReplicaState::Stopped);
    assert!(matches!(
        chain.stop("1").await,
        Err(ControlError::NotRunning(_))
    ));
    wait_for(Duration::from_secs(5), "a stopped replica DOWN", || {
        let f = status_of(url1.clone());
        async move { f.await.as_deref() == Some("DOWN") }
    })
    .await;
    chain.restart("1").await.unwrap();
    assert!(matches!(
        chain.restart("1").await,
        Err(ControlError::AlreadyRunning(_))
    ));
    assert_eq!(
        status_of(url1.clone()).await.as_deref(),
        Some("UP"),
        "restarted on its port and back in rotation as soon as restart returns"
    );
    let new = stickyscope_contract::heartbeat::Heartbeat {
        interval: Duration::from_millis(700),
        timeout: Duration::from_millis(900),
    };
    chain
        .reconfigure(Some(new), Some(Adapter::None))
        .await
        .unwrap();
    let after = statuses(&chain).await;
    for replica in chain.replicas().await {
        assert_eq!(
            after.get(&replica.url).map(String::as_str),
            Some("UP"),
            "every replica back in rotation when reconfigure returns: {after:?}"
        );
    }
    let open = reqwest::get(format!("{url1}/socket.io/?EIO=4&transport=polling"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(open.contains("\"pingInterval\":700"), "{open}");
    assert!(matches!(
        chain.kill("9").await,
        Err(ControlError::UnknownReplica(_))
    ));
    chain.shutdown().await;
}

/// The Traefik client against Traefik's real API, behind the stack's basic auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traefik_client_reads_the_real_api_and_names_a_missing_credential() {
    let chain = chain(2).await;
    let client = api(&chain);
    let services = client.services().await.unwrap();
    let routers = client.routers().await.unwrap();
    let analysis = analyse(&services, &routers);
    assert!(analysis.problems.is_empty(), "{:?}", analysis.problems);
    assert_eq!(analysis.sticky.unwrap().name, STICKY_SERVICE);

    let anonymous =
        TraefikApi::with_credential(&chain.api_url(), None, &Default::default()).unwrap();
    let err = anonymous.services().await.unwrap_err();
    assert!(matches!(err, TraefikError::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string().contains("http://USER:PASSWORD@host:port"),
        "{err}"
    );
    let wrong = TraefikApi::with_credential(
        &format!(
            "http://stickyscope:wrong@127.0.0.1:{}",
            chain.ports().traefik.api
        ),
        None,
        &Default::default(),
    )
    .unwrap();
    let err = wrong.services().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the password for \"stickyscope\" was refused"),
        "{err}"
    );
    chain.shutdown().await;
}

/// A deliberately wrong label set (no round-robin router): real Traefik serves it, and the
/// app names what is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_label_set_is_named_by_the_app() {
    let mut config = chain_config(2);
    config
        .swarm_file
        .replica_labels
        .retain(|(k, _)| !k.contains("routers.socketio-roundrobin"));
    let chain = Chain::start(config).await.unwrap();
    let client = api(&chain);
    let analysis = analyse(
        &client.services().await.unwrap(),
        &client.routers().await.unwrap(),
    );
    assert!(
        analysis
            .problems
            .iter()
            .any(|p| p.starts_with("no router matches X-Stickiness: off")),
        "{:?}",
        analysis.problems
    );
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_dies_is_reported_with_its_log() {
    let chain = chain(2).await;
    let mut exits = chain.take_exits().unwrap();
    let victim = chain.replicas().await[1].pid.unwrap();
    // SAFETY: a plain kill of a process this test's chain started.
    unsafe {
        libc::kill(victim, libc::SIGKILL);
    }
    let exit = tokio::time::timeout(Duration::from_secs(10), exits.recv())
        .await
        .expect("reported")
        .unwrap();
    assert_eq!(exit.name, "replica 2");
    assert_eq!(exit.status, "killed by signal 9");
    assert!(
        exit.tail.iter().any(|l| l.contains("replica 2 listening")),
        "{:?}",
        exit.tail
    );
    wait_for(Duration::from_secs(5), "replica 2 listed as exited", || {
        let chain = &chain;
        async move { matches!(chain.replicas().await[1].state, ReplicaState::Exited(_)) }
    })
    .await;
    chain.restart("2").await.expect("a dead replica restarts");
    chain.shutdown().await;
    // The log it names outlives the run folder, which went with the chain.
    let kept = std::fs::read_to_string(&exit.log)
        .unwrap_or_else(|e| panic!("{} is kept: {e}", exit.log.display()));
    assert!(kept.contains("replica 2 listening"), "{kept}");
    let _ = std::fs::remove_file(&exit.log);
}

/// `stickyscope chain` as users run it: its children die with it — on SIGTERM, Ctrl-C,
/// `kill -9` and an abort alike — and its run folder goes with a graceful end (the next run
/// removes one left behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chains_children_never_outlive_it() {
    use tokio::io::AsyncBufReadExt;
    // SIGABRT: what a panic that aborts, or a crash, looks like from outside.
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGKILL, libc::SIGABRT] {
        let mut chain = tokio::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
            .args(["chain", "--port", "0", "--replicas", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = chain.id().unwrap() as i32;
        let mut lines = tokio::io::BufReader::new(chain.stdout.take().unwrap()).lines();
        let mut stderr = chain.stderr.take().unwrap();
        let mut run_dir = None;
        let came_up = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("replicas: 2 (configuration and logs in ") {
                    run_dir = Some(std::path::PathBuf::from(rest.trim_end_matches(')')));
                }
                if line.starts_with("Ctrl-C stops it") {
                    return true;
                }
            }
            false
        })
        .await;
        if came_up != Ok(true) {
            let mut why = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut why).await;
            panic!("the chain did not come up: {why}");
        }
        // Its log lines are not needed; a full pipe must not stall it.
        tokio::spawn(async move {
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut stderr, &mut sink).await;
        });
        let run_dir = run_dir.expect("the chain names its run folder");
        let children = descendants(pid);
        // redis-server, 2 replicas, Traefik, nginx's master and its workers.
        assert!(children.len() >= 6, "{children:?}");
        // SAFETY: a signal to the chain process this test started.
        unsafe {
            libc::kill(pid, signal);
        }
        let status = tokio::time::timeout(Duration::from_secs(20), chain.wait())
            .await
            .expect("the chain ends")
            .unwrap();
        wait_for(Duration::from_secs(10), "every child gone", || {
            let children = children.clone();
            async move { children.iter().all(|p| !alive(*p)) }
        })
        .await;
        if signal == libc::SIGTERM || signal == libc::SIGINT {
            assert!(status.success(), "signal {signal}: {status:?}");
            assert!(!run_dir.exists(), "the run folder goes with the run");
        } else {
            assert!(run_dir.exists(), "nobody could remove it…");
            let next = chain_config(1);
            let next = Chain::start(next).await.unwrap();
            assert!(!run_dir.exists(), "…until the next run");
            next.shutdown().await;
        }
    }
}

/// The window's conductor on the chain: topology from Traefik's real API (nginx and Traefik as
/// hops, replicas named), a replica killed through a command goes DOWN, and a part that dies
/// on its own is a banner with its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_the_chain_with_its_controls_and_banners() {
    use stickyscope::conductor::{Conductor, ConductorConfig};
    use stickyscope::stack::GatewayConfig;
    use stickyscope_vocab::events::{Command, Event, NoticeLevel, ReplicaAction};
    let (sink, seen) = Collected::sink();
    let conductor = Conductor::start(
        ConductorConfig::new(GatewayConfig::Chain(chain_config(3))),
        sink,
    )
    .await
    .expect("the conductor starts the chain");
    let topology = |seen: &Collected| {
        seen.events().into_iter().rev().find_map(|e| match e {
            Event::Topology(t) => Some(t),
            _ => None,
        })
    };
    wait_for(
        Duration::from_secs(15),
        "a topology with every replica named",
        || {
            let t = topology(&seen);
            async move {
                t.is_some_and(|t| {
                    t.hops == ["nginx", "traefik"]
                        && t.replicas.len() == 3
                        && t.replicas.iter().all(|r| r.id.is_some() && r.up)
                })
            }
        },
    )
    .await;
    conductor
        .commands()
        .try_send(Command::Replica {
            id: "1".into(),
            action: ReplicaAction::Kill,
        })
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "replica 1 DOWN in Traefik's API",
        || {
            let t = topology(&seen);
            async move {
                t.is_some_and(|t| {
                    t.replicas
                        .iter()
                        .any(|r| r.id.as_deref() == Some("1") && !r.up)
                })
            }
        },
    )
    .await;
    // A replica that dies on its own.
    let victim = descendants(std::process::id() as i32)
        .into_iter()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("--id\u{0}2\u{0}"))
        })
        .expect("replica 2's process");
    // SAFETY: a kill of a process this test's chain started.
    unsafe {
        libc::kill(victim, libc::SIGKILL);
    }
    wait_for(Duration::from_secs(10), "a banner for replica 2", || {
        let seen = seen.clone();
        async move {
            seen.events().iter().any(|e| {
                matches!(e, Event::Notice(n) if n.level == NoticeLevel::Error
                    && n.text.starts_with("replica 2 exited unexpectedly (killed by signal 9)"))
            })
        }
    })
    .await;
    conductor.shutdown().await;
}

/// `chain --servers` with nothing listening at a server's address says so once it is up
/// (it still starts: the servers may come later, and Traefik takes them in when they do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_before_servers_nobody_runs_says_so() {
    use tokio::io::AsyncBufReadExt;
    let closed = stickyscope::stack::chain::rundir::free_port().unwrap();
    let server = format!("http://127.0.0.1:{closed}");
    let mut chain = tokio::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["chain", "--port", "0", "--servers", &server])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(chain.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let said = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with(&format!("note: nothing answers at {server} (")) {
                return true;
            }
            seen.push(line);
        }
        false
    })
    .await;
    assert_eq!(said, Ok(true), "stderr: {seen:?}");
    // SAFETY: a signal to the chain process this test started.
    unsafe {
        libc::kill(chain.id().unwrap() as i32, libc::SIGTERM);
    }
    let ended = tokio::time::timeout(Duration::from_secs(15), chain.wait()).await;
    assert!(ended.is_ok_and(|s| s.is_ok()), "the chain ends on SIGTERM");
}

/// Two Traefik instances behind nginx: the sticky cookie one sets routes the same way at the
/// other (it is a hash of the server's URL, not a table either keeps), so a polling session
/// whose requests alternate between them stays on its replica; nginx takes both in turn;
/// a replica added is in both rotations when `add` returns; no part outlives the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_traefik_instances_honour_each_others_sticky_cookie() {
    let before = descendants(std::process::id() as i32);
    let mut config = chain_config(3);
    config.traefiks = 2;
    let chain = Chain::start(config)
        .await
        .unwrap_or_else(|e| panic!("a chain of two Traefiks starts: {e}"));
    let ports = chain.ports().clone();
    assert_eq!(ports.more_traefiks.len(), 1);
    let web = [ports.traefik.web, ports.more_traefiks[0].web];
    let http = reqwest::Client::new();
    let mut replicas_seen = BTreeSet::new();
    for session in 0..6 {
        let first = format!("http://127.0.0.1:{}", web[session % 2]);
        let (replica, cookie, sid) = common::raw_handshake(&first, None).await;
        let cookie = cookie.expect("the first Traefik sets the sticky cookie");
        replicas_seen.insert(replica.clone());
        // Every later request of the session at the other instance, then back: the poll
        // that takes the opening ping, the pong, the namespace's CONNECT, the poll that
        // takes its answer — none of them held.
        let requests = [(false, ""), (true, "3"), (true, "40"), (false, "")];
        for (hop, (post, body)) in requests.into_iter().enumerate() {
            let at = web[(session + hop + 1) % 2];
            let url = format!("http://127.0.0.1:{at}/socket.io/?EIO=4&transport=polling&sid={sid}");
            let request = match post {
                true => http.post(url).body(body),
                false => http.get(url),
            };
            let resp = request.header("Cookie", &cookie).send().await.unwrap();
            let status = resp.status();
            let served_by = resp.headers()["x-replica"].to_str().unwrap().to_owned();
            assert_eq!(
                (status.as_u16(), served_by.as_str()),
                (200, replica.as_str()),
                "session {session}, request {hop} at Traefik on {at}: {:?}",
                resp.text().await
            );
        }
    }
    assert!(
        replicas_seen.len() > 1,
        "new sessions are spread over the replicas: {replicas_seen:?}"
    );

    // Through nginx, which takes the two in turn: sessions form and chat.
    let gateway = chain.gateway_url();
    let (sink, seen) = Collected::sink();
    let agent = session(&gateway, "agent", TransportChoice::Polling, true, &sink).await;
    let visitor = session(&gateway, "visitor", TransportChoice::Polling, true, &sink).await;
    wait_for(
        Duration::from_secs(15),
        "both connected through nginx",
        || {
            let seen = seen.clone();
            async move { seen.connected("agent") && seen.connected("visitor") }
        },
    )
    .await;
    agent.send("across two Traefiks").await.unwrap();
    wait_for(Duration::from_secs(15), "the visitor receives it", || {
        let seen = seen.clone();
        async move { !seen.received("visitor").is_empty() }
    })
    .await;

    // The window's topology says there are two, read from the first's API.
    let source = stickyscope::topology_read::TopologySource {
        api: chain.topology_api(),
        controls: None,
    };
    let (topology, problems) = stickyscope::topology_read::read_once(&source)
        .await
        .unwrap();
    assert_eq!(topology.hops, ["nginx", "traefik ×2"], "{problems:?}");
    assert_eq!(topology.replicas.len(), 3);

    let id = chain.add().await.unwrap();
    let url = chain.replicas().await[3].url.clone();
    for api in chain.api_urls() {
        assert_eq!(
            statuses_at(&chain, &api)
                .await
                .get(&url)
                .map(String::as_str),
            Some("UP"),
            "replica {id} UP at {api} as soon as add returns"
        );
    }
    agent.shutdown().await;
    visitor.shutdown().await;
    let children: Vec<i32> = descendants(std::process::id() as i32)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    chain.shutdown().await;
    drop(chain);
    wait_for(Duration::from_secs(10), "every part gone", || {
        let children = children.clone();
        async move { children.iter().all(|p| !alive(*p)) }
    })
    .await;
}
