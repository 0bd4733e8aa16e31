//! The real chain on one machine: real nginx → real Traefik v3 → replica processes → real
//! Redis, as child processes on loopback, derived from the repository's own stack file and
//! nginx configuration — the swarm stack without Docker.
//!
//! - [`binaries`]: finding Traefik, nginx and redis-server, or saying how to install them;
//! - [`swarm_file`]: Traefik's static flags and dynamic configuration from `docker-swarm.yml`
//!   (pure);
//! - [`nginx_conf`]: `stack/nginx/nginx.conf` with the few local changes (pure);
//! - [`children`]: child processes that never outlive stickyscope;
//! - [`rundir`]: the run folder, free ports, the API's password;
//! - `parts`: starting each part, ready, and writing the configuration it reads;
//! - `readiness`: waiting for a part to be ready, and the checks that say so.
//!
//! One Traefik, or several instances of it side by side (`traefiks`), each its own process
//! reading the same configuration: nginx then takes them in turn, and a sticky cookie one
//! instance set is honoured by the others, being a hash of the server's URL (how a real
//! deployment runs more than one balancer, and how a chain holds more sessions than one
//! process's open files allow).
//!
//! [`Chain`] starts it all, is ready only when every Traefik's API lists every replica UP, and
//! implements [`ReplicaControl`] as the embedded stack does: stop (SIGTERM), kill (SIGKILL),
//! restart (same port), add (a new process; Traefik's file provider picks up the rewritten
//! configuration), unhealthy/healthy (SIGUSR1/SIGUSR2), and new heartbeat or adapter
//! settings (replicas restarted with them). Add, restart and reconfigure are done only when
//! Traefik has the replica back in rotation.

pub mod binaries;
pub mod children;
pub mod nginx_conf;
mod parts;
mod readiness;
pub mod rundir;
pub mod swarm_file;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_contract::stats::StatsSnapshot;
use stickyscope_vocab::stack::{Adapter, MAX_REPLICAS};
use tokio::sync::mpsc;

use super::control::UnexpectedExit;
use super::control::{
    ControlError, ControlFuture, ReplicaControl, ReplicaState, ReplicaStatus, TopologyApi,
};
use super::slots::{ReplicaSettings, Running, Slots};
use binaries::{Binaries, Missing};
use children::{Child, SpawnError, Spawner};
use parts::Parts;
use readiness::{check_traefik_version, sticky_statuses, until_ready, NotYet};
use rundir::RunDir;
use swarm_file::{SwarmFile, SwarmFileError};

/// The user of Traefik's API (the stack's basic auth).
pub const API_USER: &str = "stickyscope";
/// How long a stopped part may take to go before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The sticky service as Traefik's file provider names it.
pub const STICKY_SERVICE: &str = "replicas-sticky@file";
/// The most Traefik instances a chain runs side by side.
pub const MAX_TRAEFIKS: usize = 8;

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
    pub swarm_file: SwarmFile,
    /// The nginx configuration (the repository's).
    pub nginx_conf: String,
    /// Servers stickyscope did not start (`http://host:port`, e.g. your own Socket.IO
    /// servers): the chain is then nginx and Traefik in front of them — no Redis, no replica
    /// processes, no replica controls.
    pub servers: Option<Vec<String>>,
    /// A certificate for nginx (the gateway) and Traefik's API entry point to serve, both
    /// then `https://localhost:PORT`; none: both plain HTTP on 127.0.0.1.
    pub tls: Option<ChainTls>,
    /// Traefik instances behind nginx, 1 to [`MAX_TRAEFIKS`].
    pub traefiks: usize,
}

/// The certificate the chain's gateway and Traefik's API serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTls {
    /// The certificate (chain), PEM; for `localhost`, the name the chain's URLs use.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
}

impl ChainConfig {
    /// Three replicas on a free gateway port, default heartbeat, Redis adapter, from the
    /// stack file and nginx configuration this build was made with.
    pub fn new(replica_program: ReplicaProgram) -> Result<Self, SwarmFileError> {
        Ok(ChainConfig {
            replicas: 3,
            port: 0,
            heartbeat: Heartbeat::default(),
            adapter: Adapter::Redis,
            replica_program,
            swarm_file: SwarmFile::built_in()?,
            nginx_conf: nginx_conf::NGINX_CONF.to_owned(),
            servers: None,
            tls: None,
            traefiks: 1,
        })
    }
}

/// Why the chain could not start, or a replica of it.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A program is missing.
    #[error(transparent)]
    Missing(#[from] Missing),
    /// The stack file cannot be run locally.
    #[error(transparent)]
    SwarmFile(#[from] SwarmFileError),
    /// nginx.conf cannot be run locally.
    #[error(transparent)]
    NginxConf(#[from] nginx_conf::NotFound),
    /// The gateway port is taken.
    #[error("port {0} on 127.0.0.1 is taken: choose another with --port (or 0 for any)")]
    PortTaken(u16),
    /// Not a number of Traefik instances the chain runs.
    #[error("{0} Traefik instances: a chain runs 1 to {MAX_TRAEFIKS}")]
    Traefiks(usize),
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
        /// A copy of its log, kept after the run folder goes.
        log: PathBuf,
        /// The last lines of its log.
        tail: Vec<String>,
    },
    /// `nginx -t` refused the configuration.
    #[error("nginx refused the configuration (nginx -t):\n{0}")]
    NginxTest(String),
    /// A replica operation failed.
    #[error(transparent)]
    Control(ControlError),
}

impl From<ControlError> for ChainError {
    /// The chain's own failure back in its own words; any other as a replica operation's.
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Stack(e) => match e.downcast::<ChainError>() {
                Ok(chain) => *chain,
                Err(other) => ChainError::Control(ControlError::Stack(other)),
            },
            other => ChainError::Control(other),
        }
    }
}

impl From<ChainError> for ControlError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::Control(e) => e,
            other => ControlError::stack(other),
        }
    }
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

impl Running for Child {
    fn exited(&self) -> Option<String> {
        Child::exited(self)
    }
}

/// Ports of the chain's parts on 127.0.0.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// nginx (the gateway).
    pub gateway: u16,
    /// The first Traefik: the one whose API the app reads (every instance reads the same
    /// configuration and lists the same servers).
    pub traefik: TraefikPorts,
    /// Further Traefik instances, when the chain runs several.
    pub more_traefiks: Vec<TraefikPorts>,
    /// redis-server.
    pub redis: u16,
}

impl Ports {
    /// Every Traefik instance's ports, the first first.
    pub fn traefiks(&self) -> impl Iterator<Item = TraefikPorts> + '_ {
        std::iter::once(self.traefik).chain(self.more_traefiks.iter().copied())
    }
}

/// Ports of one Traefik instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraefikPorts {
    /// Its `web` entry point (nginx's upstream).
    pub web: u16,
    /// Its `api` entry point (API and dashboard, behind basic auth).
    pub api: u16,
}

/// A running chain. Dropping it kills every part; [`ReplicaControl::shutdown`] stops them
/// gracefully.
pub struct Chain {
    settings: ReplicaSettings,
    /// The replica processes, by port.
    slots: Slots<u16, Child>,
    exits: std::sync::Mutex<Option<mpsc::Receiver<UnexpectedExit>>>,
    nginx: Child,
    /// Every Traefik instance, the first (whose API the app reads) first.
    traefiks: Vec<(TraefikPorts, Child)>,
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
        if !(1..=MAX_TRAEFIKS).contains(&config.traefiks) {
            return Err(ChainError::Traefiks(config.traefiks));
        }
        let binaries = Binaries::find()?;
        let gateway = match config.port {
            0 => rundir::free_port().map_err(io("no free port"))?,
            port if rundir::port_is_free(port) => port,
            port => return Err(ChainError::PortTaken(port)),
        };
        let traefik_ports = || -> Result<TraefikPorts, ChainError> {
            Ok(TraefikPorts {
                web: rundir::free_port().map_err(io("no free port"))?,
                api: rundir::free_port().map_err(io("no free port"))?,
            })
        };
        let ports = Ports {
            gateway,
            traefik: traefik_ports()?,
            more_traefiks: (1..config.traefiks)
                .map(|_| traefik_ports())
                .collect::<Result<_, _>>()?,
            redis: rundir::free_port().map_err(io("no free port"))?,
        };
        let dir = RunDir::create().map_err(io("cannot create the run folder"))?;
        let (exits_tx, exits) = mpsc::channel(64);
        let spawner = Spawner::start(exits_tx).map_err(io("cannot start the spawner thread"))?;
        let parts = Parts {
            swarm_file: config.swarm_file.clone(),
            nginx_conf: config.nginx_conf.clone(),
            binaries,
            program: config.replica_program.clone(),
            ports,
            password: rundir::password().map_err(io("no randomness for a password"))?,
            spawner,
            dir,
            tls: config.tls.clone(),
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
        let slots = Slots::default();
        for _ in 0..ours {
            slots.add(|id| start_replica(&parts, id, settings)).await?;
        }
        let urls: Vec<String> = match &config.servers {
            Some(servers) => servers.clone(),
            None => slots.map(|s| replica_url(s.place)).await,
        };
        parts.write_dynamic(&urls)?;
        let mut traefiks = Vec::new();
        for (index, ports) in parts.ports.traefiks().enumerate() {
            let name = traefik_name(index, config.traefiks);
            traefiks.push((ports, parts.start_traefik(&name, ports, &urls).await?));
        }
        let nginx = parts.start_nginx().await?;
        tracing::info!(gateway = parts.ports.gateway, run = %parts.dir.path().display(), "chain ready");
        Ok(Chain {
            settings: ReplicaSettings::new(settings.0, settings.1),
            slots,
            exits: std::sync::Mutex::new(Some(exits)),
            nginx,
            traefiks,
            redis,
            external: config.servers,
            parts,
        })
    }

    /// Traefik's API (the first instance's), without the credential.
    pub fn api_url(&self) -> String {
        self.parts.url(self.parts.ports.traefik.api)
    }

    /// Every Traefik instance's API, without the credential, the first first.
    pub fn api_urls(&self) -> Vec<String> {
        self.parts
            .ports
            .traefiks()
            .map(|t| self.parts.url(t.api))
            .collect()
    }

    /// Traefik's API with the credential in it, as `--traefik-api` takes it.
    pub fn api_url_with_credential(&self) -> String {
        let (scheme, host) = self.parts.origin();
        format!(
            "{scheme}://{API_USER}:{}@{host}:{}",
            self.parts.password, self.parts.ports.traefik.api
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
    pub fn ports(&self) -> &Ports {
        &self.parts.ports
    }

    /// Its run folder (configuration and logs).
    pub fn run_dir(&self) -> &std::path::Path {
        self.parts.dir.path()
    }

    /// Parts that exit when nobody asked them to; taken once (by whoever reports them).
    pub fn take_exits(&self) -> Option<mpsc::Receiver<UnexpectedExit>> {
        self.exits.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Every replica process ever started, in order, with its process and log.
    pub async fn replicas(&self) -> Vec<ChainReplica> {
        self.slots
            .map(|s| ChainReplica {
                id: s.id.clone(),
                url: replica_url(s.place),
                state: s.state(),
                pid: s.running().map(Child::pid),
                log: self.parts.dir.log(&format!("replica {}", s.id)),
            })
            .await
    }

    fn settings(&self) -> (Heartbeat, Adapter) {
        self.settings.get()
    }

    /// Replica controls need replicas of its own.
    fn ours(&self) -> Result<(), ControlError> {
        match self.external {
            Some(_) => Err(ControlError::NotOurs),
            None => Ok(()),
        }
    }

    /// Starts a replica that is not running again, on its port; returns its server URL.
    async fn restart_now(&self, id: &str) -> Result<String, ControlError> {
        let settings = self.settings();
        let port = self
            .slots
            .restart(id, |port| async move {
                Ok(self.parts.start_replica(id, port, settings).await?)
            })
            .await?;
        Ok(replica_url(port))
    }

    /// Waits until every Traefik lists `url` UP in the sticky service: until then a cookie
    /// that names it sends its user elsewhere (and Traefik gives that user a cookie for the
    /// other server).
    async fn until_in_rotation(&self, url: &str) -> Result<(), ChainError> {
        for (index, (ports, traefik)) in self.traefiks.iter().enumerate() {
            let name = traefik_name(index, self.traefiks.len());
            self.until_listed_up(&name, *ports, traefik, url).await?;
        }
        Ok(())
    }

    /// Waits until the Traefik instance on `ports` lists `url` UP in the sticky service.
    async fn until_listed_up(
        &self,
        name: &str,
        ports: TraefikPorts,
        traefik: &Child,
        url: &str,
    ) -> Result<(), ChainError> {
        let api = self.parts.traefik_api(ports)?;
        until_ready(traefik, name, || {
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
}

/// Starts replica `id` on a free port, ready.
async fn start_replica(
    parts: &Parts,
    id: String,
    settings: (Heartbeat, Adapter),
) -> Result<(u16, Child), ControlError> {
    let port = rundir::free_port().map_err(io("no free port"))?;
    let child = parts.start_replica(&id, port, settings).await?;
    Ok((port, child))
}

impl ReplicaControl for Chain {
    fn describe(&self) -> String {
        format!("local chain at {}", self.gateway_url())
    }

    fn gateway_url(&self) -> String {
        self.parts.url(self.parts.ports.gateway)
    }

    fn topology_api(&self) -> TopologyApi {
        TopologyApi::Traefik {
            url: self.api_url(),
            credential: Some(self.api_credential()),
            trust: self.parts.own_trust(),
            instances: self.traefiks.len(),
        }
    }

    fn statuses(&self) -> ControlFuture<'_, Vec<ReplicaStatus>> {
        Box::pin(async move {
            self.slots
                .map(|s| ReplicaStatus {
                    id: s.id.clone(),
                    url: replica_url(s.place),
                    state: s.state(),
                })
                .await
        })
    }

    fn add(&self) -> ControlFuture<'_, Result<String, ControlError>> {
        Box::pin(async move {
            self.ours()?;
            let _op = self.slots.one_at_a_time().await;
            let settings = self.settings();
            let (id, port) = self
                .slots
                .add(|id| start_replica(&self.parts, id, settings))
                .await?;
            let urls = self.slots.map(|s| replica_url(s.place)).await;
            self.parts.write_dynamic(&urls)?;
            self.until_in_rotation(&replica_url(port)).await?;
            Ok(id)
        })
    }

    fn stop<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.ours()?;
            let _op = self.slots.one_at_a_time().await;
            let (_, child) = self.slots.take_running(id, ReplicaState::Stopped).await?;
            child.stop(STOP_GRACE).await;
            Ok(())
        })
    }

    fn kill<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.ours()?;
            let _op = self.slots.one_at_a_time().await;
            let (_, child) = self.slots.take_running(id, ReplicaState::Killed).await?;
            child.kill().await;
            Ok(())
        })
    }

    fn restart<'a>(&'a self, id: &'a str) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.ours()?;
            let _op = self.slots.one_at_a_time().await;
            let url = self.restart_now(id).await?;
            Ok(self.until_in_rotation(&url).await?)
        })
    }

    fn set_healthy<'a>(
        &'a self,
        id: &'a str,
        healthy: bool,
    ) -> ControlFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.ours()?;
            let _op = self.slots.one_at_a_time().await;
            self.slots
                .with_running(id, |_, child| {
                    child.signal(if healthy {
                        libc::SIGUSR2
                    } else {
                        libc::SIGUSR1
                    })
                })
                .await
        })
    }

    /// New heartbeat and/or adapter (Redis on or off): every running replica is restarted
    /// with them, on its port, one at a time, each back in Traefik's rotation before the
    /// next goes (so the others carry the users meanwhile).
    fn reconfigure(
        &self,
        heartbeat: Option<Heartbeat>,
        adapter: Option<Adapter>,
    ) -> ControlFuture<'_, Result<(), ControlError>> {
        Box::pin(async move {
            self.ours()?;
            let _op = self.slots.one_at_a_time().await;
            self.settings.change(heartbeat, adapter);
            for id in self.slots.running_ids().await {
                let (_, child) = self.slots.take_running(&id, ReplicaState::Stopped).await?;
                child.stop(STOP_GRACE).await;
                let url = self.restart_now(&id).await?;
                self.until_in_rotation(&url).await?;
            }
            Ok(())
        })
    }

    /// Each replica's `/stats`, within 2 s each.
    fn read_stats(&self) -> ControlFuture<'_, BTreeMap<String, StatsSnapshot>> {
        Box::pin(async move {
            let Ok(client) = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
            else {
                return BTreeMap::new();
            };
            let reads = self.statuses().await.into_iter().map(|r| {
                let client = client.clone();
                async move {
                    let snapshot = client
                        .get(format!("{}/stats", r.url))
                        .send()
                        .await
                        .ok()?
                        .json::<StatsSnapshot>()
                        .await
                        .ok()?;
                    Some((r.id, snapshot))
                }
            });
            futures_util::future::join_all(reads)
                .await
                .into_iter()
                .flatten()
                .collect()
        })
    }

    /// Stops everything gracefully: nginx, Traefik, the replicas, Redis; the run folder goes
    /// when the chain is dropped.
    fn shutdown(&self) -> ControlFuture<'_, ()> {
        Box::pin(async move {
            let _op = self.slots.one_at_a_time().await;
            self.nginx.stop(STOP_GRACE).await;
            futures_util::future::join_all(self.traefiks.iter().map(|(_, t)| t.stop(STOP_GRACE)))
                .await;
            let children = self.slots.take_all(ReplicaState::Stopped).await;
            futures_util::future::join_all(children.iter().map(|(_, c)| c.stop(STOP_GRACE))).await;
            if let Some(redis) = &self.redis {
                redis.stop(STOP_GRACE).await;
            }
        })
    }
}

/// A Traefik instance's name, for its log and its errors: `traefik` when it is the only
/// one, else `traefik 1`, `traefik 2`, ….
fn traefik_name(index: usize, of: usize) -> String {
    match of {
        1 => "traefik".to_owned(),
        _ => format!("traefik {}", index + 1),
    }
}

/// A replica's server URL, as Traefik names it.
pub fn replica_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}
