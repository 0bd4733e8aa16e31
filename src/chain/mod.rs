//! The real chain on one machine: real nginx → real Traefik v3 → replica processes → real
//! Redis, as child processes on loopback, derived from the repository's own stack file and
//! nginx configuration — the swarm stack without Docker.
//!
//! - [`binaries`]: finding Traefik, nginx and redis-server, or saying how to install them;
//! - [`stackfile`]: Traefik's static flags and dynamic configuration from `docker-swarm.yml`
//!   (pure);
//! - [`nginx_conf`]: `stack/nginx/nginx.conf` with the few local changes (pure);
//! - [`children`]: child processes that never outlive stickyscope;
//! - [`rundir`]: the run folder, free ports, the API's password.
//!
//! [`Chain`] starts it all, is ready only when Traefik's API lists every replica UP, and
//! offers the same replica controls as the embedded stack: stop (SIGTERM), kill (SIGKILL),
//! restart (same port), add (a new process; Traefik's file provider picks up the rewritten
//! configuration), unhealthy/healthy (SIGUSR1/SIGUSR2), and new heartbeat or adapter
//! settings (replicas restarted with them).

pub mod binaries;
pub mod children;
pub mod nginx_conf;
pub mod rundir;
pub mod stackfile;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::stack::{Adapter, MAX_REPLICAS};
use tokio::sync::{mpsc, Mutex};

use crate::traefik_client::TraefikApi;
use binaries::{Binaries, Missing};
use children::{Child, ChildSpec, SpawnError, Spawner, UnexpectedExit};
use rundir::RunDir;
use stackfile::{StackFile, StackFileError};

/// The user of Traefik's API (the stack's basic auth).
pub const API_USER: &str = "stickyscope";
/// The secret the stack file's basic auth reads its users from.
const API_SECRET: &str = "traefik_api_users";
/// How long each part may take to come up.
const READY_BOUND: Duration = Duration::from_secs(20);
/// How long a stopped part may take to go before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The sticky service as Traefik's file provider names it.
pub const STICKY_SERVICE: &str = "replicas-sticky@file";

/// How the replica processes are started: a program and the arguments before the
/// replica's own flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaProgram {
    /// The program.
    pub program: PathBuf,
    /// Arguments before the replica's flags (`["replica"]` for `stickyscope replica`).
    pub args: Vec<String>,
}

impl ReplicaProgram {
    /// This very binary, as `stickyscope replica`: whatever built the app built the
    /// replicas.
    pub fn this_binary() -> std::io::Result<ReplicaProgram> {
        Ok(ReplicaProgram {
            program: std::env::current_exe()?,
            args: vec!["replica".to_owned()],
        })
    }
}

/// How to start a chain.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// Replica processes to start with.
    pub replicas: usize,
    /// nginx's port on 127.0.0.1 (the gateway); 0 picks a free one.
    pub port: u16,
    /// The replicas' heartbeat.
    pub heartbeat: Heartbeat,
    /// The adapter between the replicas: Redis, or none (they are processes, so
    /// [`Adapter::Memory`] is Redis here too).
    pub adapter: Adapter,
    /// What runs a replica.
    pub replica_program: ReplicaProgram,
    /// The stack file the chain is derived from (the one this build was made with).
    pub stack_file: StackFile,
    /// The nginx configuration (the repository's).
    pub nginx_conf: String,
    /// Servers stickyscope did not start (`http://host:port`, e.g. your own Socket.IO
    /// servers): the chain is then nginx and Traefik in front of them — no Redis, no replica
    /// processes, no replica controls.
    pub servers: Option<Vec<String>>,
}

impl ChainConfig {
    /// Three replicas on a free gateway port, default heartbeat, Redis adapter, from the
    /// stack file and nginx configuration this build was made with.
    pub fn new(replica_program: ReplicaProgram) -> Result<Self, StackFileError> {
        Ok(ChainConfig {
            replicas: 3,
            port: 0,
            heartbeat: Heartbeat::default(),
            adapter: Adapter::Redis,
            replica_program,
            stack_file: StackFile::built_in()?,
            nginx_conf: nginx_conf::NGINX_CONF.to_owned(),
            servers: None,
        })
    }
}

/// Why the chain (or an operation on it) failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A program is missing.
    #[error(transparent)]
    Missing(#[from] Missing),
    /// The stack file cannot be run locally.
    #[error(transparent)]
    StackFile(#[from] StackFileError),
    /// nginx.conf cannot be run locally.
    #[error(transparent)]
    NginxConf(#[from] nginx_conf::NotFound),
    /// The gateway port is taken.
    #[error("port {0} on 127.0.0.1 is taken: choose another with --port (or 0 for any)")]
    PortTaken(u16),
    /// A file or folder of the run.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A child could not start.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A part started but did not become ready.
    #[error("{part} did not come up: {why}. Its log ({}) ends:\n{}", log.display(), indent(tail))]
    NotReady {
        /// Which part.
        part: String,
        /// What was seen.
        why: String,
        /// Its log.
        log: PathBuf,
        /// The last lines of its log.
        tail: Vec<String>,
    },
    /// `nginx -t` refused the configuration.
    #[error("nginx refused the configuration (nginx -t):\n{0}")]
    NginxTest(String),
    /// No such replica.
    #[error("no replica {0:?}")]
    UnknownReplica(String),
    /// The replica is running.
    #[error("replica {0} is already running")]
    AlreadyRunning(String),
    /// The replica is not running.
    #[error("replica {0} is not running")]
    NotRunning(String),
    /// The chain is full.
    #[error("the chain holds at most {MAX_REPLICAS} replicas (stopped and killed ones count)")]
    Full,
    /// The chain runs in front of servers it did not start.
    #[error("this chain runs in front of servers it did not start: it has no replica controls")]
    NotOurs,
}

fn indent(lines: &[String]) -> String {
    if lines.is_empty() {
        return "  (nothing)".to_owned();
    }
    lines
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ChainError {
    let what = what.into();
    move |source| ChainError::Io { what, source }
}

/// What happened to a replica process last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "how")]
pub enum ReplicaState {
    /// Running.
    Running,
    /// Stopped by the operator (SIGTERM).
    Stopped,
    /// Killed by the operator (SIGKILL).
    Killed,
    /// Ended on its own, like this.
    Exited(String),
}

/// A replica process as [`Chain::replicas`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReplica {
    /// Its id (`X-Replica`).
    pub id: String,
    /// Its server URL at Traefik.
    pub url: String,
    /// Its state.
    pub state: ReplicaState,
    /// Its process id, while one runs.
    pub pid: Option<i32>,
    /// Its log.
    pub log: PathBuf,
}

struct Slot {
    id: String,
    port: u16,
    child: Option<Child>,
    state: ReplicaState,
}

/// Ports of the chain's parts on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// nginx (the gateway).
    pub gateway: u16,
    /// Traefik's `web` entry point (nginx's upstream).
    pub traefik: u16,
    /// Traefik's `api` entry point (API and dashboard, behind basic auth).
    pub api: u16,
    /// redis-server.
    pub redis: u16,
}

/// A running chain. Dropping it kills every part; [`Chain::shutdown`] stops them gracefully.
pub struct Chain {
    settings: std::sync::Mutex<(Heartbeat, Adapter)>,
    slots: Mutex<Vec<Slot>>,
    /// Held for each whole operation: operations run one after another.
    ops: Mutex<()>,
    exits: std::sync::Mutex<Option<mpsc::Receiver<UnexpectedExit>>>,
    nginx: Child,
    traefik: Child,
    /// None in front of servers the chain did not start.
    redis: Option<Child>,
    /// Servers the chain did not start, if that is what it runs in front of.
    external: Option<Vec<String>>,
    /// Last: the children above go before the spawner and the run folder.
    parts: Parts,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("ports", &self.parts.ports)
            .field("dir", &self.parts.dir.path())
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// Starts Redis, the replicas, Traefik and nginx, in that order, each ready before the
    /// next; fails with the part, what was seen and the end of its log, leaving nothing
    /// running.
    pub async fn start(config: ChainConfig) -> Result<Chain, ChainError> {
        let binaries = Binaries::find()?;
        let gateway = match config.port {
            0 => rundir::free_port().map_err(io("no free port"))?,
            port if rundir::port_is_free(port) => port,
            port => return Err(ChainError::PortTaken(port)),
        };
        let ports = Ports {
            gateway,
            traefik: rundir::free_port().map_err(io("no free port"))?,
            api: rundir::free_port().map_err(io("no free port"))?,
            redis: rundir::free_port().map_err(io("no free port"))?,
        };
        let dir = RunDir::create().map_err(io("cannot create the run folder"))?;
        let (exits_tx, exits) = mpsc::channel(64);
        let spawner = Spawner::start(exits_tx).map_err(io("cannot start the spawner thread"))?;
        let parts = Parts {
            stack: config.stack_file.clone(),
            nginx_conf: config.nginx_conf.clone(),
            binaries,
            program: config.replica_program.clone(),
            ports,
            password: rundir::password().map_err(io("no randomness for a password"))?,
            spawner,
            dir,
        };
        let settings = (config.heartbeat, config.adapter);
        check_traefik_version(&parts.binaries).await;

        let redis = match &config.servers {
            Some(_) => None,
            None => Some(parts.start_redis().await?),
        };
        let ours = if config.servers.is_some() {
            0
        } else {
            config.replicas.min(MAX_REPLICAS)
        };
        let mut slots = Vec::new();
        for n in 1..=ours {
            let id = n.to_string();
            let port = rundir::free_port().map_err(io("no free port"))?;
            let child = parts.start_replica(&id, port, settings).await?;
            slots.push(Slot {
                id,
                port,
                child: Some(child),
                state: ReplicaState::Running,
            });
        }
        let urls: Vec<String> = match &config.servers {
            Some(servers) => servers.clone(),
            None => slots.iter().map(|s| replica_url(s.port)).collect(),
        };
        parts.write_dynamic(&urls)?;
        let traefik = parts.start_traefik(&urls).await?;
        let nginx = parts.start_nginx().await?;
        tracing::info!(gateway = parts.ports.gateway, run = %parts.dir.path().display(), "chain ready");
        Ok(Chain {
            settings: std::sync::Mutex::new(settings),
            slots: Mutex::new(slots),
            ops: Mutex::new(()),
            exits: std::sync::Mutex::new(Some(exits)),
            nginx,
            traefik,
            redis,
            external: config.servers,
            parts,
        })
    }

    /// The gateway (nginx) URL.
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.parts.ports.gateway)
    }

    /// Traefik's API, without the credential.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.parts.ports.api)
    }

    /// Traefik's API with the credential in it, as `--traefik-api` takes it.
    pub fn api_url_with_credential(&self) -> String {
        format!(
            "http://{API_USER}:{}@127.0.0.1:{}",
            self.parts.password, self.parts.ports.api
        )
    }

    /// The dashboard, with the credential in it.
    pub fn dashboard_url(&self) -> String {
        format!("{}/dashboard/", self.api_url_with_credential())
    }

    /// The API's user and password.
    pub fn api_credential(&self) -> (String, String) {
        (API_USER.to_owned(), self.parts.password.clone())
    }

    /// The ports of its parts.
    pub fn ports(&self) -> Ports {
        self.parts.ports
    }

    /// Its run folder (configuration and logs).
    pub fn run_dir(&self) -> &std::path::Path {
        self.parts.dir.path()
    }

    /// Process ids of nginx, Traefik and (when the chain started replicas) redis-server.
    pub fn infrastructure_pids(&self) -> Vec<i32> {
        [Some(&self.nginx), Some(&self.traefik), self.redis.as_ref()]
            .into_iter()
            .flatten()
            .map(Child::pid)
            .collect()
    }

    /// The servers Traefik balances over: the chain's replicas, or the servers it was
    /// given.
    pub async fn server_urls(&self) -> Vec<String> {
        match &self.external {
            Some(servers) => servers.clone(),
            None => self
                .slots
                .lock()
                .await
                .iter()
                .map(|s| replica_url(s.port))
                .collect(),
        }
    }

    /// Parts that exit when nobody asked them to; taken once (by whoever reports them).
    pub fn take_exits(&self) -> Option<mpsc::Receiver<UnexpectedExit>> {
        self.exits.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Every replica ever started, in order.
    pub async fn replicas(&self) -> Vec<ChainReplica> {
        let slots = self.slots.lock().await;
        slots
            .iter()
            .map(|s| {
                let state = match (&s.child, &s.state) {
                    (Some(child), ReplicaState::Running) => match child.exited() {
                        Some(how) => ReplicaState::Exited(how),
                        None => ReplicaState::Running,
                    },
                    (_, state) => state.clone(),
                };
                ChainReplica {
                    id: s.id.clone(),
                    url: replica_url(s.port),
                    pid: s
                        .child
                        .as_ref()
                        .filter(|c| c.exited().is_none())
                        .map(Child::pid),
                    log: self.parts.dir.log(&format!("replica {}", s.id)),
                    state,
                }
            })
            .collect()
    }

    /// Starts one more replica and adds it to Traefik's servers; returns its id.
    pub async fn add(&self) -> Result<String, ChainError> {
        if self.external.is_some() {
            return Err(ChainError::NotOurs);
        }
        let _op = self.ops.lock().await;
        let mut slots = self.slots.lock().await;
        if slots.len() >= MAX_REPLICAS {
            return Err(ChainError::Full);
        }
        let id = (slots.len() + 1).to_string();
        let port = rundir::free_port().map_err(io("no free port"))?;
        let child = self.parts.start_replica(&id, port, self.settings()).await?;
        slots.push(Slot {
            id: id.clone(),
            port,
            child: Some(child),
            state: ReplicaState::Running,
        });
        let urls: Vec<String> = slots.iter().map(|s| replica_url(s.port)).collect();
        self.parts.write_dynamic(&urls)?;
        drop(slots);
        self.until_in_rotation(&replica_url(port)).await?;
        Ok(id)
    }

    /// Stops a replica gracefully (SIGTERM).
    pub async fn stop(&self, id: &str) -> Result<(), ChainError> {
        let _op = self.ops.lock().await;
        let child = self.take_running(id, ReplicaState::Stopped).await?;
        child.stop(STOP_GRACE).await;
        Ok(())
    }

    /// Kills a replica (SIGKILL): its connections die with it.
    pub async fn kill(&self, id: &str) -> Result<(), ChainError> {
        let _op = self.ops.lock().await;
        let child = self.take_running(id, ReplicaState::Killed).await?;
        child.kill().await;
        Ok(())
    }

    /// Starts a replica that is not running again, on its port; done when Traefik has it
    /// back in rotation.
    pub async fn restart(&self, id: &str) -> Result<(), ChainError> {
        let _op = self.ops.lock().await;
        let url = self.restart_now(id).await?;
        self.until_in_rotation(&url).await
    }

    /// Waits until Traefik lists `url` UP in the sticky service: until then a cookie that
    /// names it sends its user elsewhere (and Traefik gives that user a cookie for the
    /// other server).
    async fn until_in_rotation(&self, url: &str) -> Result<(), ChainError> {
        let api = self.parts.traefik_api()?;
        until_ready(&self.traefik, "traefik", || {
            let api = api.clone();
            async move {
                let up = sticky_statuses(&api)
                    .await?
                    .get(url)
                    .is_some_and(|status| status == stickyscope_vocab::traefik_model::UP);
                if up {
                    Ok(())
                } else {
                    Err(NotYet::Waiting(format!(
                        "{url} is not UP in {STICKY_SERVICE} yet"
                    )))
                }
            }
        })
        .await
    }

    /// Starts a stopped replica again; returns its server URL.
    async fn restart_now(&self, id: &str) -> Result<String, ChainError> {
        if self.external.is_some() {
            return Err(ChainError::NotOurs);
        }
        let mut slots = self.slots.lock().await;
        let slot = slots
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| ChainError::UnknownReplica(id.to_owned()))?;
        if slot.child.as_ref().is_some_and(|c| c.exited().is_none()) {
            return Err(ChainError::AlreadyRunning(id.to_owned()));
        }
        let child = self
            .parts
            .start_replica(id, slot.port, self.settings())
            .await?;
        slot.child = Some(child);
        slot.state = ReplicaState::Running;
        Ok(replica_url(slot.port))
    }

    /// Makes a replica's `/healthz` fail (`false`, SIGUSR1) or pass (SIGUSR2).
    pub async fn set_healthy(&self, id: &str, healthy: bool) -> Result<(), ChainError> {
        if self.external.is_some() {
            return Err(ChainError::NotOurs);
        }
        let _op = self.ops.lock().await;
        let slots = self.slots.lock().await;
        let slot = slots
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ChainError::UnknownReplica(id.to_owned()))?;
        let child = slot
            .child
            .as_ref()
            .filter(|c| c.exited().is_none())
            .ok_or_else(|| ChainError::NotRunning(id.to_owned()))?;
        child.signal(if healthy {
            libc::SIGUSR2
        } else {
            libc::SIGUSR1
        });
        Ok(())
    }

    /// New heartbeat and/or adapter (Redis on or off): every running replica is restarted
    /// with them, on its port, one at a time, each back in Traefik's rotation before the
    /// next goes (so the others carry the users meanwhile).
    pub async fn reconfigure(
        &self,
        heartbeat: Option<Heartbeat>,
        adapter: Option<Adapter>,
    ) -> Result<(), ChainError> {
        if self.external.is_some() {
            return Err(ChainError::NotOurs);
        }
        let _op = self.ops.lock().await;
        {
            let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(h) = heartbeat {
                settings.0 = h;
            }
            if let Some(a) = adapter {
                settings.1 = a;
            }
        }
        let running: Vec<String> = self
            .replicas()
            .await
            .into_iter()
            .filter(|r| r.state == ReplicaState::Running)
            .map(|r| r.id)
            .collect();
        for id in running {
            let child = self.take_running(&id, ReplicaState::Stopped).await?;
            child.stop(STOP_GRACE).await;
            let url = self.restart_now(&id).await?;
            self.until_in_rotation(&url).await?;
        }
        Ok(())
    }

    /// Stops everything gracefully: nginx, Traefik, the replicas, Redis; the run folder goes
    /// when the chain is dropped.
    pub async fn shutdown(&self) {
        let _op = self.ops.lock().await;
        self.nginx.stop(STOP_GRACE).await;
        self.traefik.stop(STOP_GRACE).await;
        let children: Vec<Child> = self
            .slots
            .lock()
            .await
            .iter_mut()
            .filter_map(|s| s.child.take())
            .collect();
        futures_util::future::join_all(children.iter().map(|c| c.stop(STOP_GRACE))).await;
        if let Some(redis) = &self.redis {
            redis.stop(STOP_GRACE).await;
        }
    }

    fn settings(&self) -> (Heartbeat, Adapter) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn take_running(&self, id: &str, next: ReplicaState) -> Result<Child, ChainError> {
        if self.external.is_some() {
            return Err(ChainError::NotOurs);
        }
        let mut slots = self.slots.lock().await;
        let slot = slots
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| ChainError::UnknownReplica(id.to_owned()))?;
        match slot.child.take() {
            Some(child) if child.exited().is_none() => {
                slot.state = next;
                Ok(child)
            }
            other => {
                slot.child = other;
                Err(ChainError::NotRunning(id.to_owned()))
            }
        }
    }
}

/// What starting children and writing configuration needs, from the start on.
struct Parts {
    stack: StackFile,
    nginx_conf: String,
    binaries: Binaries,
    program: ReplicaProgram,
    ports: Ports,
    password: String,
    spawner: Spawner,
    dir: RunDir,
}

impl Parts {
    /// A client of the chain's Traefik API, with its credential.
    fn traefik_api(&self) -> Result<TraefikApi, ChainError> {
        TraefikApi::with_credential(
            &format!("http://127.0.0.1:{}", self.ports.api),
            Some((API_USER.to_owned(), self.password.to_owned())),
        )
        .map_err(|e| ChainError::Io {
            what: "Traefik's API client".into(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    async fn spawn(
        &self,
        name: &str,
        program: &std::path::Path,
        args: Vec<OsString>,
        death_signal: i32,
    ) -> Result<Child, ChainError> {
        Ok(self
            .spawner
            .spawn(ChildSpec {
                name: name.to_owned(),
                program: program.to_owned(),
                args,
                env: vec![],
                log: self.dir.log(name),
                death_signal,
            })
            .await?)
    }

    async fn start_redis(&self) -> Result<Child, ChainError> {
        let port = self.ports.redis;
        let dir = self.dir.path().join("redis");
        let args = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            &dir.display().to_string(),
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let child = self
            .spawn("redis-server", &self.binaries.redis, args, libc::SIGKILL)
            .await?;
        until_ready(&child, "redis-server", || async move {
            redis_ping(port).await.map_err(NotYet::from)
        })
        .await?;
        Ok(child)
    }

    async fn start_replica(
        &self,
        id: &str,
        port: u16,
        (heartbeat, adapter): (Heartbeat, Adapter),
    ) -> Result<Child, ChainError> {
        let mut args: Vec<OsString> = self.program.args.iter().map(OsString::from).collect();
        for arg in [
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--id".to_owned(),
            id.to_owned(),
            "--redis-url".to_owned(),
            format!("redis://127.0.0.1:{}", self.ports.redis),
            "--adapter".to_owned(),
            if adapter.is_on() { "redis" } else { "none" }.to_owned(),
            "--ping-interval".to_owned(),
            format!("{}ms", heartbeat.interval.as_millis()),
            "--ping-timeout".to_owned(),
            format!("{}ms", heartbeat.timeout.as_millis()),
        ] {
            args.push(arg.into());
        }
        let name = format!("replica {id}");
        let child = self
            .spawn(&name, &self.program.program, args, libc::SIGKILL)
            .await?;
        let url = format!("{}/healthz", replica_url(port));
        until_ready(&child, &name, || {
            let url = url.clone();
            async move { http_ok(url, None).await.map_err(NotYet::from) }
        })
        .await?;
        Ok(child)
    }

    fn write_dynamic(&self, urls: &[String]) -> Result<(), ChainError> {
        let secret = self.dir.path().join("secrets").join(API_SECRET);
        std::fs::write(
            &secret,
            rundir::htpasswd_line(API_USER, &self.password) + "\n",
        )
        .map_err(io(format!("cannot write {}", secret.display())))?;
        let secrets: BTreeMap<String, PathBuf> = [(API_SECRET.to_owned(), secret)].into();
        let doc = self.stack.dynamic_config(urls, &secrets)?;
        let dynamic = self.dir.path().join("dynamic");
        let part = dynamic.join("stack.yml.part");
        // JSON is YAML; Traefik reads .yml files only, so the partial file is never read.
        std::fs::write(&part, doc.to_string())
            .map_err(io(format!("cannot write {}", part.display())))?;
        std::fs::rename(&part, dynamic.join("stack.yml"))
            .map_err(io("cannot replace Traefik's configuration"))?;
        Ok(())
    }

    async fn start_traefik(&self, urls: &[String]) -> Result<Child, ChainError> {
        let entry_ports: BTreeMap<String, u16> = self
            .stack
            .entry_points()
            .into_iter()
            .map(|name| {
                let port = match name.to_ascii_lowercase().as_str() {
                    "web" => Ok(self.ports.traefik),
                    "api" => Ok(self.ports.api),
                    _ => rundir::free_port(),
                };
                port.map(|p| (name, p))
            })
            .collect::<Result<_, _>>()
            .map_err(io("no free port"))?;
        let mut flags = self
            .stack
            .static_flags(&self.dir.path().join("dynamic"), &entry_ports)?;
        flags.push("--log.level=INFO".to_owned());
        let args = flags.into_iter().map(OsString::from).collect();
        let child = self
            .spawn("traefik", &self.binaries.traefik, args, libc::SIGKILL)
            .await?;
        let api = self.traefik_api()?;
        let expected = urls.len();
        until_ready(&child, "traefik", || {
            let api = api.clone();
            async move {
                let up = sticky_statuses(&api)
                    .await?
                    .values()
                    .filter(|s| *s == stickyscope_vocab::traefik_model::UP)
                    .count();
                if up != expected {
                    return Err(NotYet::Waiting(format!(
                        "{up} of {expected} servers UP in {STICKY_SERVICE}"
                    )));
                }
                // A router Traefik refused (a rule that does not parse, …) stays listed,
                // with its error: a chain with one is not the stack file's chain.
                let routers = api
                    .routers()
                    .await
                    .map_err(|e| NotYet::Waiting(e.to_string()))?;
                match routers
                    .iter()
                    .find(|r| r.provider == "file" && !r.error.is_empty())
                {
                    Some(r) => Err(NotYet::Refused(format!(
                        "Traefik refused router {}: {}",
                        r.name,
                        r.error.join("; ")
                    ))),
                    None => Ok(()),
                }
            }
        })
        .await?;
        Ok(child)
    }

    async fn start_nginx(&self) -> Result<Child, ChainError> {
        let prefix = self.dir.path().join("nginx");
        let conf = prefix.join("nginx.conf");
        let text =
            nginx_conf::local_conf(&self.nginx_conf, self.ports.gateway, self.ports.traefik)?;
        std::fs::write(&conf, text).map_err(io(format!("cannot write {}", conf.display())))?;
        let globals = nginx_conf::globals(&prefix.join("nginx.pid"), &self.dir.log("nginx"));
        let base_args: Vec<OsString> = vec![
            "-p".into(),
            format!("{}/", prefix.display()).into(),
            "-c".into(),
            conf.clone().into(),
        ];
        let test = tokio::process::Command::new(&self.binaries.nginx)
            .args(&base_args)
            .arg("-t")
            .arg("-g")
            .arg(&globals)
            .output()
            .await
            .map_err(io(format!(
                "cannot run {} -t",
                self.binaries.nginx.display()
            )))?;
        if !test.status.success() {
            return Err(ChainError::NginxTest(
                String::from_utf8_lossy(&test.stderr).trim().to_owned(),
            ));
        }
        let mut args = base_args;
        args.push("-g".into());
        args.push(globals.into());
        // nginx takes its workers down on SIGTERM; SIGKILL would orphan them.
        let child = self
            .spawn("nginx", &self.binaries.nginx, args, libc::SIGTERM)
            .await?;
        let url = format!("http://127.0.0.1:{}/healthz", self.ports.gateway);
        until_ready(&child, "nginx", || {
            let url = url.clone();
            async move { http_ok(url, None).await.map_err(NotYet::from) }
        })
        .await?;
        Ok(child)
    }
}

/// A replica's server URL, as Traefik names it.
pub fn replica_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Why a readiness check did not pass.
enum NotYet {
    /// Maybe later.
    Waiting(String),
    /// Never: no point waiting.
    Refused(String),
}

impl From<String> for NotYet {
    fn from(why: String) -> Self {
        NotYet::Waiting(why)
    }
}

/// Waits until `check` passes, the child exits, the check says never, or [`READY_BOUND`]
/// passes.
async fn until_ready<F, Fut>(child: &Child, part: &str, mut check: F) -> Result<(), ChainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), NotYet>>,
{
    let deadline = Instant::now() + READY_BOUND;
    let not_ready = |why: String| ChainError::NotReady {
        part: part.to_owned(),
        why,
        log: child.log().to_owned(),
        tail: children::log_tail(child.log(), children::LOG_TAIL_LINES),
    };
    loop {
        let last = match check().await {
            Ok(()) => return Ok(()),
            Err(NotYet::Refused(why)) => return Err(not_ready(why)),
            Err(NotYet::Waiting(why)) => why,
        };
        if let Some(how) = child.exited() {
            return Err(not_ready(format!("it exited ({how})")));
        }
        if Instant::now() >= deadline {
            return Err(not_ready(format!(
                "not ready within {} s ({last})",
                READY_BOUND.as_secs()
            )));
        }
        // A bounded wait on a condition: the check runs again shortly.
        if child.wait(Duration::from_millis(50)).await {
            return Err(not_ready(format!(
                "it exited ({})",
                child.exited().unwrap_or_default()
            )));
        }
    }
}

/// Each server's status (`UP`, `DOWN`) in the sticky service, as Traefik's API lists them.
async fn sticky_statuses(api: &TraefikApi) -> Result<BTreeMap<String, String>, NotYet> {
    let services = api
        .services()
        .await
        .map_err(|e| NotYet::Waiting(e.to_string()))?;
    services
        .into_iter()
        .find(|s| s.name == STICKY_SERVICE)
        .map(|s| s.server_status)
        .ok_or_else(|| NotYet::Waiting(format!("its API does not list {STICKY_SERVICE} yet")))
}

/// `PING` → `+PONG` on a Redis port.
async fn redis_ping(port: u16) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut answer = [0u8; 16];
        let n = stream.read(&mut answer).await?;
        Ok::<_, std::io::Error>(answer[..n].to_vec())
    };
    match tokio::time::timeout(Duration::from_secs(1), exchange).await {
        Ok(Ok(answer)) if answer.starts_with(b"+PONG") => Ok(()),
        Ok(Ok(answer)) => Err(format!(
            "PING answered {:?}",
            String::from_utf8_lossy(&answer)
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("PING unanswered for 1 s".into()),
    }
}

/// A GET that must answer 200.
async fn http_ok(url: String, credential: Option<(String, String)>) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client.get(&url);
    if let Some((user, password)) = credential {
        request = request.basic_auth(user, Some(password));
    }
    match request.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("{url} answered {}", resp.status())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

/// Warns when the Traefik found is not the one the stack pins (its sticky cookie values
/// may differ: 3.0–3.3.3 compute them otherwise).
async fn check_traefik_version(binaries: &Binaries) {
    let Ok(out) = tokio::process::Command::new(&binaries.traefik)
        .arg("version")
        .output()
        .await
    else {
        return;
    };
    let version = binaries::traefik_version(&String::from_utf8_lossy(&out.stdout));
    if version.as_deref() != Some(binaries::TRAEFIK_VERSION) {
        tracing::warn!(
            found = version.as_deref().unwrap_or("?"),
            pinned = binaries::TRAEFIK_VERSION,
            "this Traefik is not the version the stack file pins; stickiness works, but its cookie values may differ from the built-in balancer's"
        );
    }
}
