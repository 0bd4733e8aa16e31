//! `docker-swarm.yml` deployed for real on a private Docker engine (Debian's dockerd, a
//! one-node swarm: `scripts/swarm-engine.sh`) with `stack/deploy.sh` — offline here, every
//! image built from a local Debian base — and `stack/swarm-no-ipvs.yml` (this kernel has no
//! IPVS). Through nginx on port 8000: sticky polling stays on one task, round robin breaks
//! with `Session ID unknown`, WebSocket needs no stickiness; replicas are named by
//! `X-Replica` = the task's slot; Traefik's swarm provider lists the three tasks behind its
//! basic auth; the window draws nginx and Traefik as hops; a message crosses tasks through
//! Redis; the sticky task killed, the user is on another within Traefik's health
//! interval plus 1 s, and Swarm's replacement is back in Traefik's list; scaled to
//! five, the new tasks get sessions; the app's replica controls through the engine's API
//! (`--docker`). `stack/teardown.sh` leaves no service, container,
//! network or secret — the network too when the swarm refuses its first removal (a container
//! still attached) — and the engine and its folder are gone at the end.
//!
//! Skipped, saying why, only when no engine can start here (not root, no `docker.io`,
//! another engine at `/var/run/docker.sock`); `scripts/test.sh` installs what it needs.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{probe_json, wait_for, Collected};
use stickyscope::session::{ChatSession, SessionConfig};
use stickyscope::stack::GatewayConfig;
use stickyscope::tls_trust::Trust;
use stickyscope::traefik_client::TraefikApi;
use stickyscope_vocab::events::TransportChoice;
use stickyscope_vocab::traefik_reading::topology_from_api;

const GATEWAY: &str = "http://127.0.0.1:8000";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The private engine; stopped (the stack torn down first) when dropped, panicking or not.
struct Engine {
    dir: PathBuf,
}

impl Engine {
    /// Starts it, or says why no engine can start here.
    fn start() -> Result<Engine, String> {
        let dir = std::env::temp_dir().join(format!("stickyscope-engine-{}", std::process::id()));
        let out = Command::new(repo().join("scripts/swarm-engine.sh"))
            .arg("start")
            .arg(&dir)
            .output()
            .map_err(|e| format!("scripts/swarm-engine.sh does not run: {e}"))?;
        let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        match out.status.code() {
            Some(0) => Ok(Engine { dir }),
            Some(3) => Err(said),
            _ => panic!(
                "the engine failed to start: {said} {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("stack/teardown.sh")).output();
        let out = Command::new(repo().join("scripts/swarm-engine.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
        if let Ok(out) = out {
            eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
        }
    }
}

/// `docker …` on the private engine; its standard output.
fn docker(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The replica binary `cargo test --workspace` built beside this test's `stickyscope`.
fn replica_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_stickyscope")).with_file_name("stickyscope-replica");
    assert!(
        bin.exists(),
        "no {} to build the replica image from: run `cargo build -p stickyscope-replica` \
         (scripts/test.sh's `cargo test --workspace` builds it)",
        bin.display()
    );
    bin
}

/// The URLs of the servers Traefik lists UP in the sticky service.
async fn up_servers(api: &str) -> Vec<String> {
    let Ok(client) = TraefikApi::new(api, &Trust::default()) else {
        return Vec::new();
    };
    let Ok(services) = client.services().await else {
        return Vec::new();
    };
    let mut up: Vec<String> = services
        .iter()
        .filter(|s| s.name.starts_with("replicas-sticky"))
        .flat_map(|s| s.server_status.iter())
        .filter(|(_, status)| *status == stickyscope_vocab::traefik_model::UP)
        .map(|(url, _)| url.clone())
        .collect();
    up.sort();
    up
}

#[test]
fn the_swarm_stack_deploys_and_holds_its_sessions_on_their_tasks() {
    let engine = match Engine::start() {
        Ok(engine) => engine,
        Err(why) => {
            eprintln!("SKIPPED: docker-swarm.yml was not deployed: {why}");
            return;
        }
    };

    // Deploy, offline: every image built here.
    let started = std::time::Instant::now();
    let out = Command::new(repo().join("stack/deploy.sh"))
        .args(["--offline", "--no-ipvs", "--replica-bin"])
        .arg(replica_binary())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stack/deploy.sh: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("deployed in {:.0} s", started.elapsed().as_secs_f64());
    let password = said
        .split("http://stickyscope:")
        .nth(1)
        .and_then(|rest| rest.split('@').next())
        .expect("deploy.sh prints the API's password once");
    let api = format!("http://stickyscope:{password}@127.0.0.1:9090");

    // Traefik's swarm provider: the three tasks, by IP, UP, behind its basic auth.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let anonymous =
            TraefikApi::with_credential("http://127.0.0.1:9090", None, &Trust::default())
                .unwrap()
                .services()
                .await
                .unwrap_err();
        assert!(anonymous.to_string().contains("401"), "{anonymous}");
        // deploy.sh returns once every task is healthy and the gateway answers; Traefik's
        // swarm provider reads the tasks on its own clock (every 15 s), so it may list the
        // last of them a little later.
        wait_for(
            Duration::from_secs(30),
            "Traefik to list the three tasks UP",
            || {
                let api = api.clone();
                async move { up_servers(&api).await.len() == 3 }
            },
        )
        .await;
        let client = TraefikApi::new(&api, &Trust::default()).unwrap();
        let (services, routers) = (
            client.services().await.unwrap(),
            client.routers().await.unwrap(),
        );
        let (topology, problems) = topology_from_api(&services, &routers);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(topology.hops, ["nginx", "traefik"]);
        assert_eq!(topology.sticky_cookie.as_deref(), Some("sticky_replica"));
        let up = topology.replicas.iter().filter(|r| r.up).count();
        assert_eq!(up, 3, "{topology:?}");
        // Task IPs, never a virtual IP: each server is one of the replica containers.
        let containers = docker(&[
            "ps",
            "-q",
            "--filter",
            "label=com.docker.swarm.service.name=stickyscope_replica",
        ]);
        let mut inspect = vec![
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        ];
        inspect.extend(containers.split_whitespace());
        let task_ips = docker(&inspect);
        for replica in &topology.replicas {
            let url = replica.url.as_deref().unwrap_or_default();
            let ip = url
                .trim_start_matches("http://")
                .split(':')
                .next()
                .unwrap_or_default();
            assert!(
                task_ips.split_whitespace().any(|t| t == ip),
                "{url} is not a task's address ({task_ips})"
            );
        }
    });

    // Sticky polling: every session on one task, named by X-Replica = its slot.
    let (code, json, stderr) = probe_json(
        "4s",
        &[
            "--gateway",
            GATEWAY,
            "--traefik-api",
            &api,
            "--sessions",
            "6",
        ],
    );
    assert_eq!(code, 0, "{json:#} {stderr}");
    let slots: BTreeSet<&str> = json["replicas"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(slots.len() >= 2, "six sessions on one task: {json:#}");
    assert!(slots.is_subset(&["1", "2", "3"].into()), "{json:#}");
    // Round-robin polling breaks with the replicas' own refusal; WebSocket needs no cookie.
    // Two sessions on three tasks: a session count that is a multiple of the tasks can step
    // in lockstep, each request landing on its session's task again by coincidence.
    let (code, json, _) = probe_json(
        "4s",
        &[
            "--gateway",
            GATEWAY,
            "--stickiness",
            "off",
            "--sessions",
            "2",
        ],
    );
    assert_eq!(code, 1, "{json:#}");
    assert!(
        json["replicas"]
            .as_object()
            .unwrap()
            .values()
            .any(|r| r["rejected"]["Session ID unknown"].as_u64() > Some(0)),
        "{json:#}"
    );
    let (code, json, _) = probe_json(
        "4s",
        &[
            "--gateway",
            GATEWAY,
            "--stickiness",
            "off",
            "--transport",
            "websocket",
            "--sessions",
            "3",
        ],
    );
    assert_eq!(code, 0, "{json:#}");

    // A message crosses tasks through Redis: the agent's accepted by its task, handed to
    // the visitor by another.
    runtime.block_on(async {
        let (sink, seen) = Collected::sink();
        let start = |user: &str| {
            let mut config = SessionConfig::new(user, GATEWAY);
            config.transport = TransportChoice::Websocket;
            config.sticky = false;
            ChatSession::start(config, sink.clone())
        };
        let agent = start("agent").await.unwrap();
        let visitor = start("visitor").await.unwrap();
        let replica = |user: &'static str| {
            let seen = seen.clone();
            move || {
                let seen = seen.clone();
                async move {
                    seen.state(user)
                        .and_then(|s| s.replica().map(str::to_owned))
                        .is_some()
                }
            }
        };
        wait_for(
            Duration::from_secs(15),
            "the agent on a task",
            replica("agent"),
        )
        .await;
        wait_for(
            Duration::from_secs(15),
            "the visitor on a task",
            replica("visitor"),
        )
        .await;
        let on = |user: &str| {
            seen.state(user)
                .and_then(|s| s.replica().map(str::to_owned))
        };
        // New WebSocket sessions go round robin: the visitor moves on until it is elsewhere.
        for _ in 0..6 {
            if on("visitor") != on("agent") {
                break;
            }
            visitor.reconnect();
            let before = on("agent");
            let seen = seen.clone();
            wait_for(
                Duration::from_secs(15),
                "the visitor reconnected",
                move || {
                    let seen = seen.clone();
                    let before = before.clone();
                    async move {
                        seen.connected("visitor")
                            && seen
                                .state("visitor")
                                .and_then(|s| s.replica().map(str::to_owned))
                                != before
                    }
                },
            )
            .await;
        }
        let (from, to) = (on("agent"), on("visitor"));
        assert_ne!(from, to, "the two users on different tasks");
        agent.send("across tasks").await;
        wait_for(Duration::from_secs(15), "delivered to the visitor", || {
            let seen = seen.clone();
            async move { !seen.received("visitor").is_empty() }
        })
        .await;
        let received = &seen.received("visitor")[0];
        assert_eq!(received.accepted_by, from, "{received:?}");
        assert_eq!(received.delivered_by, to, "{received:?}");
        agent.shutdown().await;
        visitor.shutdown().await;
    });

    // The window on it, under Xvfb: its screenshot kept beside the test binary.
    let shot = Path::new(env!("CARGO_BIN_EXE_stickyscope")).with_file_name("swarm-window.png");
    let _ = std::fs::remove_file(&shot);
    let out = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1600x1000x24"])
        .arg(env!("CARGO_BIN_EXE_stickyscope"))
        .args([
            "--gateway",
            GATEWAY,
            "--traefik-api",
            &api,
            "--exit-after",
            "8",
        ])
        .arg("--screenshot")
        .arg(&shot)
        .output()
        .expect("xvfb-run runs (scripts/test.sh installs xvfb)");
    assert!(out.status.success(), "the window on the swarm: {out:?}");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "{}: {size} bytes", shot.display());
    eprintln!("the window on the swarm: {}", shot.display());

    // The sticky task killed: the user is on another within Traefik's health interval + 1 s;
    // Swarm's replacement task is back in Traefik's list.
    runtime.block_on(async {
        let before = up_servers(&api).await;
        let (sink, seen) = Collected::sink();
        let agent = ChatSession::start(SessionConfig::new("agent", GATEWAY), sink)
            .await
            .unwrap();
        wait_for(Duration::from_secs(15), "sticky polling on a task", || {
            let seen = seen.clone();
            async move { seen.connected("agent") }
        })
        .await;
        let holder = seen.state("agent").unwrap().replica().unwrap().to_owned();
        let container = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("name=stickyscope_replica.{holder}."),
        ]);
        let killed = std::time::Instant::now();
        docker(&["kill", container.trim()]);
        // A killed task's IP goes dark (it never refuses): the first forward to it that
        // fails — the held poll's 502, or a retry's dial timing out (1 s) — takes it out of
        // rotation at once (the stack file's passive health check), and the session's next
        // try lands on a live task. The bound: Traefik's health interval + 1 s.
        let bound = Duration::from_secs(1 + 1);
        wait_for(bound, "on another task within 2 s", || {
            let seen = seen.clone();
            let holder = holder.clone();
            async move {
                seen.state("agent")
                    .and_then(|s| s.replica().map(str::to_owned))
                    .is_some_and(|r| r != holder)
            }
        })
        .await;
        eprintln!("failover across tasks: {:?}", killed.elapsed());
        agent.shutdown().await;
        wait_for(
            Duration::from_secs(60),
            "Swarm's replacement task UP in Traefik's list",
            || {
                let (api, before) = (api.clone(), before.clone());
                async move {
                    let now = up_servers(&api).await;
                    now.len() == 3 && now != before
                }
            },
        )
        .await;
        eprintln!(
            "replacement task in Traefik's list after {:?}",
            killed.elapsed()
        );
    });

    // Scaled to 5: the new tasks are in Traefik's list, and new sessions reach them.
    docker(&["service", "scale", "-d", "stickyscope_replica=5"]);
    runtime.block_on(wait_for(
        Duration::from_secs(60),
        "five tasks UP in Traefik's list",
        || {
            let api = api.clone();
            async move { up_servers(&api).await.len() == 5 }
        },
    ));
    let (code, json, stderr) = probe_json(
        "3s",
        &[
            "--gateway",
            GATEWAY,
            "--traefik-api",
            &api,
            "--sessions",
            "10",
        ],
    );
    assert_eq!(code, 0, "{json:#} {stderr}");
    let slots: BTreeSet<&str> = json["replicas"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        slots.contains("4") && slots.contains("5"),
        "the new tasks got no session: {json:#}"
    );

    // The app's replica controls on the swarm, through the engine's API: the tasks by slot
    // at the addresses Traefik routes to; add scales up; a killed task is replaced by Swarm
    // in its slot at a new address; what a swarm does not do is said.
    runtime.block_on(async {
        let stack = stickyscope::stack::start(GatewayConfig::External {
            gateway: GATEWAY.into(),
            traefik_api: Some(api.clone()),
            identify: Default::default(),
            engineio: Default::default(),
            access: Default::default(),
            docker: Some("unix:///var/run/docker.sock".into()),
        })
        .await
        .unwrap_or_else(|e| panic!("the swarm's controls: {e}"));
        let controls = stack.controls.expect("replica controls with --docker");
        let statuses = controls.statuses().await;
        let ids: Vec<&str> = statuses.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5"], "{statuses:?}");
        let mut urls: Vec<String> = statuses.iter().map(|s| s.url.clone()).collect();
        urls.sort();
        assert_eq!(urls, up_servers(&api).await, "where Traefik routes");
        assert_eq!(controls.add().await.unwrap(), "6");
        let before = controls.replica_url("6").await.unwrap();
        controls.kill("6").await.unwrap();
        wait_for(
            Duration::from_secs(60),
            "Swarm's replacement of task 6 at a new address",
            || {
                let (controls, before) = (controls.clone(), before.clone());
                async move {
                    controls.statuses().await.iter().any(|s| {
                        s.id == "6"
                            && s.state == stickyscope::stack::ReplicaState::Running
                            && !s.url.is_empty()
                            && s.url != before
                    })
                }
            },
        )
        .await;
        let refused = controls
            .reconfigure(Some(Default::default()), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("docker-swarm.yml"), "{refused}");
        assert!(matches!(
            controls.kill("9").await,
            Err(stickyscope::stack::ControlError::UnknownReplica(_))
        ));
    });

    // Teardown leaves nothing of the stack, even when the swarm refuses `stack rm`'s one
    // removal of the network: a container of the user's still attached to it (the network is
    // attachable) keeps it "in use by task" — as the stack's own tasks do while they stop
    // on a busy machine — until it leaves 5 s later.
    let attached = docker(&[
        "run",
        "--rm",
        "--detach",
        "--network",
        "stickyscope_net",
        "--entrypoint",
        "sleep",
        "stickyscope-replica:latest",
        "5",
    ]);
    let out = Command::new(repo().join("stack/teardown.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "stack/teardown.sh: {out:?}");
    // Running, it still held the network (Docker's `--rm` may remove it a moment later).
    assert_eq!(
        docker(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("id={}", attached.trim())
        ]),
        "",
        "teardown was done while the attached container still ran"
    );
    let label = "label=com.docker.stack.namespace=stickyscope";
    for (what, args) in [
        ("services", vec!["service", "ls", "-q", "--filter", label]),
        ("containers", vec!["ps", "-aq", "--filter", label]),
        ("networks", vec!["network", "ls", "-q", "--filter", label]),
        ("secrets", vec!["secret", "ls", "-q"]),
    ] {
        assert_eq!(docker(&args).trim(), "", "{what} left after teardown");
    }
    let dir = engine.dir.clone();
    drop(engine);
    assert!(!dir.exists(), "the engine's folder outlived it");
    assert!(
        !Path::new("/var/run/docker.sock").exists(),
        "the engine's socket outlived it"
    );
}
