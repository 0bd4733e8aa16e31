//! The command line: every subcommand's flags, checked by clap with their ranges, and the
//! parsers that check them (a header name, a cookie name, a server URL, durations in range).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use stickyscope::balancer::Upstream;
use stickyscope::stack::chain::MAX_TRAEFIKS;
use stickyscope_contract::heartbeat::{duration_in, heartbeat_duration};
use stickyscope_vocab::access::{self, Access};
use stickyscope_vocab::events::{ChatDialect, EngineIoChoice, TransportChoice};
use stickyscope_vocab::stack::Adapter;

/// See, teach and test how Socket.IO sessions survive (or break) behind load balancers.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// How a window shows, and what it saves before it closes (live or a recording).
#[derive(Debug, Clone, Args)]
pub struct WindowOutput {
    /// Start in presentation mode (large type, high contrast).
    #[arg(long)]
    pub presentation: bool,
    /// Save a PNG of the window to this path and exit (with --exit-after).
    #[arg(long, requires = "exit_after", group = "output")]
    pub screenshot: Option<std::path::PathBuf>,
    /// Record the window from the start to this animated GIF (15 frames a second) and exit
    /// (with --exit-after): a clip for slides.
    #[arg(long, requires = "exit_after", group = "output")]
    pub record: Option<std::path::PathBuf>,
    /// What --record records: the whole window or the topology alone.
    #[arg(long, value_enum, default_value_t = RecordAreaArg::Window, requires = "record")]
    pub record_area: RecordAreaArg,
    /// Seconds to run before the screenshot, or to record (0 to 86400).
    #[arg(long, requires = "output", value_parser = exit_after_seconds)]
    pub exit_after: Option<f64>,
    /// The window's size in points, e.g. 1280x720 or 1920x1080 (a projector's).
    #[arg(long, value_parser = window_size)]
    pub size: Option<[f32; 2]>,
}

/// Options of the desktop window (no subcommand).
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    #[command(flatten)]
    pub stack: StackChoice,
    /// Replicas of the embedded stack or chain.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub replicas: u16,
    /// Port of the embedded balancer or the chain's nginx (a free one is used if it is
    /// taken).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Open the doctor's tab and run its checklist on the stack at start (see
    /// `stickyscope doctor`).
    #[arg(long)]
    pub doctor: bool,
    /// The page's origin for the doctor's CORS check (https://app.example); with --doctor.
    #[arg(long, value_name = "URL", requires = "doctor", value_parser = origin_url)]
    pub origin: Option<String>,
    /// Stickiness of both users at start (default: as last time, else on).
    #[arg(long, value_enum)]
    pub stickiness: Option<OnOff>,
    /// Transport of both users at start (default: as last time, else polling).
    #[arg(long, value_enum)]
    pub transport: Option<TransportChoice>,
    /// Which chat the two users speak (default: as last time, else stickyscope): stickyscope's
    /// own (acks and receipts), the seed's (chat_message / chat_user, no acks), or none
    /// (heartbeats only).
    #[arg(long, value_enum)]
    pub chat: Option<ChatDialect>,
    /// Play a scenario from the start: a file, or a shipped one by name or number
    /// (`stickyscope scenario list`). The embedded stack or chain is started as it asks.
    #[arg(long, value_name = "FILE|NAME")]
    pub scenario: Option<String>,
    /// Background sessions at start (crowd mode, 0..=10000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=10_000))]
    pub crowd: u16,
    /// Record everything the window is shown to this file as it goes, a capture
    /// (`stickyscope open FILE` shows it again, `stickyscope inspect FILE` reports on it).
    #[arg(long, value_name = "PATH")]
    pub capture: Option<PathBuf>,
    /// The capture's size bound, e.g. 100MB or 2GB: past it nothing more is recorded.
    #[arg(long, value_name = "SIZE", default_value = "1GB", requires = "capture", value_parser = byte_size)]
    pub capture_max: u64,
    #[command(flatten)]
    pub output: WindowOutput,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded stack (replicas behind the built-in sticky balancer) without a
    /// window, until Ctrl-C.
    #[command(long_about = None)]
    ///
    /// Clients connect to http://127.0.0.1:PORT/socket.io/. Requests with
    /// `X-Stickiness: off` are balanced round-robin. The balancer also serves a
    /// Traefik-shaped topology API (GET /api/http/services/replicas-sticky@embedded) and
    /// controls (GET/POST /_stack/replicas, POST /_stack/replicas/ID/stop|kill|restart;
    /// a POST needs the header `X-Stickyscope-Control: 1`).
    #[command(alias = "stack")]
    Embedded(EmbeddedArgs),
    /// Run N sessions through wire taps for a while; print a table per replica and a
    /// verdict. Exit 0 when every session stayed up on one replica, 1 when any broke, 2 for
    /// usage or connection errors. Without --gateway it probes a fresh embedded stack.
    #[command(long_about = None)]
    Probe(Box<ProbeArgs>),
    /// Run a checklist against a stack and say what is wrong with it, with the evidence
    /// and the fix: stickiness, the cookie and what pins it, the WebSocket upgrade, long
    /// polls through every proxy, CORS, spread, an adapter between replicas, rate limits,
    /// failover. Exit 0 when nothing fails, 1 when something does, 2 for usage or an
    /// unreachable gateway. Without --gateway it checks a fresh embedded stack.
    #[command(long_about = None)]
    Doctor(Box<DoctorArgs>),
    /// Open a capture in the window instead of a live stack: the same topology, panes,
    /// plots and log, driven by a timeline (play, pause, speed, drag, next failure).
    #[command(long_about = None)]
    Open(OpenArgs),
    /// Read a capture (`probe --capture`, the window's export) and print probe's report
    /// and verdict from it, without a stack. Exit codes as probe's.
    #[command(long_about = None)]
    Inspect(InspectArgs),
    /// Run the real chain — nginx → Traefik v3 → replica processes → Redis — as local
    /// processes on loopback, from the repository's stack file, until Ctrl-C.
    #[command(long_about = None)]
    Chain(ChainArgs),
    /// Run one chat replica, as `stickyscope-replica` does (the local chain's replica
    /// processes are this). SIGTERM stops it; SIGUSR1 and SIGUSR2 make /healthz fail and
    /// pass.
    #[command(long_about = None)]
    Replica(stickyscope_replica::cli::ReplicaArgs),
    /// Scenarios: scripted steps with captions and expectations. `list` shows the shipped
    /// ones; `run FILE…` checks each step and exits 0 when all pass, 1 when any fails, 2
    /// for a bad file or a stack that cannot run it.
    #[command(subcommand, long_about = None)]
    Scenario(ScenarioCommand),
}

/// Which stack: a fresh embedded one (the default), a fresh local chain, or a running one.
#[derive(Debug, Clone, Args)]
pub struct StackChoice {
    /// A running stack's gateway (e.g. nginx at http://localhost:8000) instead of a fresh
    /// embedded stack.
    #[arg(long, conflicts_with = "chain", value_parser = gateway_url)]
    pub gateway: Option<String>,
    /// A fresh local chain (nginx → Traefik → replica processes → Redis) instead of the
    /// embedded stack (see `stickyscope chain`).
    #[arg(long)]
    pub chain: bool,
    /// The fresh chain's Traefik instances, side by side behind nginx (1 to 8; see
    /// `stickyscope chain --traefiks`); with --chain.
    #[arg(long, default_value_t = 1, requires = "chain", value_parser = clap::value_parser!(u8).range(1..=MAX_TRAEFIKS as i64))]
    pub traefiks: u8,
    /// Traefik's API of that running stack, for its topology and to name each replica by the
    /// sticky cookie (its server list and cookie name): http://localhost:9090, or with its
    /// basic-auth credential http://USER:PASSWORD@localhost:9090 (or set
    /// STICKYSCOPE_TRAEFIK_AUTH=USER:PASSWORD).
    #[arg(long, requires = "gateway")]
    pub traefik_api: Option<String>,
    /// Which Engine.IO to speak to the servers: auto (v4, switching to v3 when they answer
    /// in v3, as Socket.IO 2 servers do), 3 or 4 only; with --gateway.
    #[arg(long, value_enum, default_value_t = EngineIoChoice::Auto, requires = "gateway")]
    pub engineio: EngineIoChoice,
    /// The swarm stack's Docker engine (unix:///var/run/docker.sock), for replica controls
    /// on it: stop, kill, add (scale up), unhealthy; with --gateway.
    #[arg(long, value_name = "unix:///PATH", requires = "gateway", value_parser = docker_endpoint)]
    pub docker: Option<String>,
    #[command(flatten)]
    pub identify: IdentifyArgs,
    #[command(flatten)]
    pub access: AccessArgs,
}

impl StackChoice {
    /// The stack the flags name: the gateway given, a fresh chain, or a fresh embedded
    /// stack on a free port.
    pub fn gateway_config(&self) -> Result<stickyscope::stack::GatewayConfig, String> {
        use stickyscope::stack::chain::{ChainConfig, ReplicaProgram};
        use stickyscope::stack::embedded::EmbeddedConfig;
        use stickyscope::stack::GatewayConfig;
        if let Some(external) = self.external() {
            return Ok(external);
        }
        Ok(if self.chain {
            let program = ReplicaProgram::this_binary().map_err(|e| e.to_string())?;
            let mut config =
                ChainConfig::new(program).map_err(|e| format!("the chain could not start: {e}"))?;
            config.traefiks = usize::from(self.traefiks);
            GatewayConfig::Chain(config)
        } else {
            GatewayConfig::Embedded(EmbeddedConfig {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                ..EmbeddedConfig::default()
            })
        })
    }

    /// The running stack these options name, if `--gateway` names one.
    pub fn external(&self) -> Option<stickyscope::stack::GatewayConfig> {
        let gateway = self.gateway.clone()?;
        Some(stickyscope::stack::GatewayConfig::External {
            gateway,
            traefik_api: self.traefik_api.clone(),
            identify: self.identify.config(),
            engineio: self.engineio,
            access: self.access.access(),
            docker: self.docker.clone(),
        })
    }
}

/// Where Socket.IO lives on a running stack and who the users are to it. A value of
/// --auth, --header or --cookie can come from a file (`@PATH`) or an environment variable
/// (`env:NAME`), so that no secret has to sit on a command line where `ps` shows it; what
/// is shown, saved or reported masks them.
#[derive(Debug, Clone, Args)]
pub struct AccessArgs {
    /// Socket.IO's path on the servers (their `path` option), e.g. /ws/socket.io; with
    /// --gateway.
    #[arg(long, default_value = "/socket.io/", requires = "gateway", value_parser = access::parse_path)]
    pub path: String,
    /// The namespace the users join, e.g. /chat; with --gateway.
    #[arg(long, default_value = "/", requires = "gateway", value_parser = access::parse_namespace)]
    pub namespace: String,
    /// The CONNECT packet's auth payload, a JSON object: for both users, or for one with
    /// USER= before it (`--auth agent='{"token":"…"}'`); repeatable; with --gateway.
    #[arg(long = "auth", value_name = "[USER=]JSON|@PATH|env:NAME", requires = "gateway", value_parser = auth_arg)]
    pub auth: Vec<(Option<String>, serde_json::Value)>,
    /// A header sent on every request, the WebSocket upgrade included (`Authorization:
    /// Bearer …`); repeatable; with --gateway.
    #[arg(long = "header", value_name = "'NAME: VALUE'|@PATH|env:NAME", requires = "gateway", value_parser = header_arg)]
    pub headers: Vec<(String, String)>,
    /// A cookie every user's jar starts with, sent beside the balancer's (a login's
    /// session cookie); repeatable; with --gateway.
    #[arg(long = "cookie", value_name = "NAME=VALUE|@PATH|env:NAME", requires = "gateway", value_parser = cookie_arg)]
    pub cookies: Vec<(String, String)>,
    /// A private CA's certificate(s), PEM, that an https:// gateway's certificate (and an
    /// https:// --traefik-api's) is checked against beside the system's roots; with
    /// --gateway.
    #[arg(long, value_name = "PEM", requires = "gateway", value_parser = ca_file)]
    pub ca_file: Option<String>,
    /// Do not check an https:// gateway's (or --traefik-api's) certificate (a self-signed
    /// staging one): the window shows a banner and the probe's report says so; with
    /// --gateway.
    #[arg(long, requires = "gateway")]
    pub insecure: bool,
}

impl AccessArgs {
    /// What they say.
    pub fn access(&self) -> Access {
        let mut access = Access {
            path: self.path.clone(),
            namespace: self.namespace.clone(),
            headers: self.headers.clone(),
            cookies: self.cookies.clone(),
            ca_pem: self.ca_file.clone(),
            insecure: self.insecure,
            ..Access::default()
        };
        for (user, payload) in &self.auth {
            match user {
                Some(user) => {
                    access.auth_of.insert(user.clone(), payload.clone());
                }
                None => access.auth = Some(payload.clone()),
            }
        }
        access
    }
}

/// `--docker`: the engine's unix socket.
fn docker_endpoint(text: &str) -> Result<String, String> {
    stickyscope::stack::swarm::DockerApi::new(text)
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

/// `--gateway`: a URL every command takes the same way (or refuses with the same words).
fn gateway_url(text: &str) -> Result<String, String> {
    stickyscope::wire::tap::parse_gateway(text)
        .map(|_| text.trim_end_matches('/').to_owned())
        .map_err(|e| e.to_string())
}

/// A value given as it is, from a file (`@PATH`, its trailing newline dropped) or from an
/// environment variable (`env:NAME`).
fn from_source(text: &str) -> Result<String, String> {
    if let Some(path) = text.strip_prefix('@') {
        return std::fs::read_to_string(path)
            .map(|t| t.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| format!("cannot read {path}: {e}"));
    }
    if let Some(name) = text.strip_prefix("env:") {
        return std::env::var(name)
            .map_err(|_| format!("the environment variable {name} is not set"));
    }
    Ok(text.to_owned())
}

/// `--auth [USER=]JSON`, the JSON given or read from a file or the environment.
fn auth_arg(text: &str) -> Result<(Option<String>, serde_json::Value), String> {
    let users = stickyscope_contract::chat::USERS;
    let (user, rest) = match text.split_once('=') {
        Some((user, rest))
            if !user.is_empty()
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            if !users.contains(&user) {
                return Err(format!(
                    "{user:?} is not one of the users ({})",
                    users.join(", ")
                ));
            }
            (Some(user.to_owned()), rest)
        }
        _ => (None, text),
    };
    let (_, payload) = access::parse_auth(&from_source(rest)?)?;
    Ok((user, payload))
}

/// `--ca-file PEM`: the file's text, when it holds certificates that read.
fn ca_file(path: &str) -> Result<String, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    stickyscope::tls_trust::pem_certificates(&pem)
        .map_err(|e| format!("{path} is not a PEM certificate file: {e}"))?;
    Ok(pem)
}

/// `--tls-cert PEM`: a readable file holding certificates, as an absolute path (nginx and
/// Traefik run in another folder).
fn tls_cert_file(path: &str) -> Result<PathBuf, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    stickyscope::tls_trust::pem_certificates(&pem)
        .map_err(|e| format!("{path} is not a PEM certificate file: {e}"))?;
    std::path::absolute(path).map_err(|e| format!("{path}: {e}"))
}

/// `--tls-key PEM`: a readable file holding a private key, as an absolute path.
fn tls_key_file(path: &str) -> Result<PathBuf, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if !pem.contains("-----BEGIN") || !pem.contains("PRIVATE KEY-----") {
        return Err(format!(
            "{path} is not a PEM private key (no -----BEGIN … PRIVATE KEY----- block)"
        ));
    }
    std::path::absolute(path).map_err(|e| format!("{path}: {e}"))
}

/// `--header 'Name: value'`, given or read.
fn header_arg(text: &str) -> Result<(String, String), String> {
    access::parse_header(&from_source(text)?)
}

/// `--cookie name=value`, given or read.
fn cookie_arg(text: &str) -> Result<(String, String), String> {
    access::parse_cookie(&from_source(text)?)
}

/// How to tell which replica answered on a stack whose replicas send no `X-Replica`.
#[derive(Debug, Clone, Args)]
pub struct IdentifyArgs {
    /// A response header that names the replica that answered (e.g. a backend's
    /// hostname), for servers that send no X-Replica; with --gateway.
    #[arg(long, value_name = "NAME", requires = "gateway", value_parser = header_name)]
    pub replica_header: Option<String>,
    /// The balancer's sticky cookie (default: the one Traefik's API names, else
    /// sticky_replica); with --gateway.
    #[arg(long, value_name = "NAME", requires = "gateway", value_parser = cookie_name)]
    pub sticky_cookie: Option<String>,
    /// The balancer's server URLs (comma-separated, e.g. http://10.0.0.5:3000), so that
    /// the sticky cookie names its server when no Traefik API lists them; with --gateway.
    #[arg(long, value_name = "URL,…", value_delimiter = ',', requires = "gateway", value_parser = server_url)]
    pub servers: Vec<String>,
}

impl IdentifyArgs {
    pub fn config(&self) -> stickyscope::stack::IdentifyConfig {
        stickyscope::stack::IdentifyConfig {
            header: self.replica_header.clone(),
            cookie: self.sticky_cookie.clone(),
            servers: self.servers.clone(),
        }
    }
}

/// An HTTP header name.
pub fn header_name(text: &str) -> Result<String, String> {
    hyper::header::HeaderName::from_bytes(text.as_bytes())
        .map(|_| text.to_owned())
        .map_err(|_| format!("{text:?} is not an HTTP header name"))
}

/// A cookie name (an HTTP token).
pub fn cookie_name(text: &str) -> Result<String, String> {
    let token = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    token
        .then(|| text.to_owned())
        .ok_or_else(|| format!("{text:?} is not a cookie name"))
}

/// A server URL, `http://host:port` or `https://host:port`.
pub fn server_url(text: &str) -> Result<String, String> {
    let ok = (text.starts_with("http://") || text.starts_with("https://"))
        && text.parse::<hyper::Uri>().is_ok_and(|u| u.host().is_some());
    ok.then(|| text.trim_end_matches('/').to_owned())
        .ok_or_else(|| format!("{text:?} is not a server URL like http://10.0.0.5:3000"))
}

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub stack: StackChoice,
    /// Transport of every session.
    #[arg(long, value_enum, default_value_t = TransportChoice::Polling)]
    pub transport: TransportChoice,
    /// Stickiness of every session.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub stickiness: OnOff,
    /// How long to probe, e.g. 30s or 2m (1s to 7 days).
    #[arg(long, default_value = "30s", value_parser = probe_duration)]
    pub duration: Duration,
    /// Sessions at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub sessions: u16,
    /// Open the sessions evenly over this long instead of all at once, e.g. 30s (within
    /// --duration, which counts from the first).
    #[arg(long, value_name = "DURATION", value_parser = ramp_duration)]
    pub ramp: Option<Duration>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Log what happens on stderr (RUST_LOG sets the level too).
    #[arg(short, long)]
    pub verbose: bool,
    /// Which chat the sessions understand (they do not send messages).
    #[arg(long, value_enum, default_value_t = ChatDialect::Stickyscope)]
    pub chat: ChatDialect,
    /// Record what the sessions see to this file as they go, a capture
    /// (`stickyscope inspect FILE` reads it back).
    #[arg(long, value_name = "PATH")]
    pub capture: Option<PathBuf>,
    /// The capture's size bound, e.g. 100MB or 2GB: past it nothing more is recorded.
    #[arg(long, value_name = "SIZE", default_value = "1GB", requires = "capture", value_parser = byte_size)]
    pub capture_max: u64,
    /// Also write what crossed the wire as a HAR at the end, to open in any HAR viewer
    /// (and in `stickyscope open`).
    #[arg(long, value_name = "PATH")]
    pub har: Option<PathBuf>,
}

/// `--capture-max`: a size in bytes, with an optional KB, MB or GB (powers of 1000).
fn byte_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let (number, scale) = [
        ("GB", 1_000_000_000u64),
        ("MB", 1_000_000),
        ("KB", 1_000),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suffix, scale)| {
        upper
            .strip_suffix(suffix)
            .map(|n| (n.trim().to_owned(), *scale))
    })
    .unwrap_or((upper.clone(), 1));
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n >= 1_000)
        .ok_or_else(|| format!("{text:?} is not a size of at least 1KB: give e.g. 100MB or 2GB"))
}

#[derive(Debug, Clone, Args)]
pub struct OpenArgs {
    /// The capture (`probe --capture`, the window's `--capture` or export), or a browser's
    /// HAR.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Start paused at this many seconds into the recording (default: play from the start).
    #[arg(long, value_name = "SECONDS", value_parser = exit_after_seconds)]
    pub at: Option<f64>,
    /// Start paused at the first failure (a refused or broken request, a lost session).
    #[arg(long, conflicts_with = "at")]
    pub first_failure: bool,
    #[command(flatten)]
    pub naming: HarNaming,
    #[command(flatten)]
    pub output: WindowOutput,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The capture (`probe --capture`, the window's `--capture` or export), or a browser's
    /// HAR (DevTools' "Save all as HAR", Playwright's recordHar).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub naming: HarNaming,
}

/// How a browser's HAR names the replica behind each answer, when its servers send no
/// `X-Replica` (as live: the sticky cookie's value, a header).
#[derive(Debug, Clone, Args)]
pub struct HarNaming {
    /// A response header that names the replica that answered (a HAR only).
    #[arg(long, value_name = "NAME", value_parser = header_name)]
    pub replica_header: Option<String>,
    /// The balancer's sticky cookie (default sticky_replica): its values name replicas (a
    /// HAR only).
    #[arg(long, value_name = "NAME", value_parser = cookie_name)]
    pub sticky_cookie: Option<String>,
    /// The balancer's server URLs (comma-separated), so that Traefik's sticky cookie names
    /// its server (a HAR only).
    #[arg(long, value_name = "URL,…", value_delimiter = ',', value_parser = server_url)]
    pub servers: Vec<String>,
}

impl HarNaming {
    /// What names replicas in the HAR.
    pub fn identify(&self) -> stickyscope_vocab::naming::Identify {
        stickyscope::stack::IdentifyConfig {
            header: self.replica_header.clone(),
            cookie: self.sticky_cookie.clone(),
            servers: self.servers.clone(),
        }
        .identify()
    }
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub stack: StackChoice,
    /// The origin of the page that opens the sessions (https://app.example), for the CORS
    /// check; without it that check is skipped.
    #[arg(long, value_name = "URL", value_parser = origin_url)]
    pub origin: Option<String>,
    /// Which chat the app speaks, for the check across replicas (none skips it).
    #[arg(long, value_enum, default_value_t = ChatDialect::Stickyscope)]
    pub chat: ChatDialect,
    /// Print one JSON document instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JUnit XML (one test case per check) to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Log what happens on stderr (RUST_LOG sets the level too).
    #[arg(short, long)]
    pub verbose: bool,
}

/// `--origin`: `scheme://host[:port]`, nothing after.
fn origin_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| {
            format!(
                "{text:?} is not an origin: give http(s)://host[:port], e.g. https://app.example"
            )
        })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err(format!(
            "{text:?} is not an origin: give http(s)://host[:port] with no path, e.g. https://app.example"
        ));
    }
    Ok(text.to_owned())
}

#[derive(Debug, Clone, Args)]
pub struct ChainArgs {
    /// Replica processes to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub replicas: u16,
    /// Port of the gateway (nginx) on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Adapter between replicas: Redis, or none (users on different replicas then never see
    /// each other).
    #[arg(long, default_value = "redis", value_parser = chain_adapter)]
    pub adapter: Adapter,
    /// Engine.IO pingInterval of every replica, e.g. `3s` (100ms to 10m).
    #[arg(long, default_value = "3s", value_parser = heartbeat_duration)]
    pub ping_interval: Duration,
    /// Engine.IO pingTimeout of every replica, e.g. `7s` (100ms to 10m).
    #[arg(long, default_value = "7s", value_parser = heartbeat_duration)]
    pub ping_timeout: Duration,
    /// Run nginx and Traefik (as the stack file configures them) in front of these
    /// servers instead of replicas of its own: comma-separated URLs of your Socket.IO
    /// servers, e.g. http://127.0.0.1:3001,http://127.0.0.1:3002.
    #[arg(long, value_name = "URL,…", value_delimiter = ',', value_parser = server_url)]
    pub servers: Vec<String>,
    /// Serve the gateway (nginx) and Traefik's API over TLS with this certificate, PEM (for
    /// localhost: the URLs become https://localhost:PORT); with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key", value_parser = tls_cert_file)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM.
    #[arg(long, value_name = "PEM", requires = "tls_cert", value_parser = tls_key_file)]
    pub tls_key: Option<PathBuf>,
    /// Traefik instances side by side behind nginx, which takes them in turn; each honours
    /// the sticky cookie another set (1 to 8). Each holds two open files for every held
    /// poll, so past about 9,000 sessions one Traefik runs out of them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=MAX_TRAEFIKS as i64))]
    pub traefiks: u8,
}

#[derive(Debug, Clone, Args)]
pub struct EmbeddedArgs {
    /// Replicas to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub replicas: u16,
    /// Port of the balancer on 127.0.0.1.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Adapter between replicas: an in-process bus, a Redis server, or none (users on
    /// different replicas then never see each other).
    #[arg(long, value_enum, default_value_t = Adapter::Memory)]
    pub adapter: Adapter,
    /// Redis URL for `--adapter redis`.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Engine.IO pingInterval of every replica, e.g. `3s` (100ms to 10m).
    #[arg(long, default_value = "3s", value_parser = heartbeat_duration)]
    pub ping_interval: Duration,
    /// Engine.IO pingTimeout of every replica, e.g. `7s` (100ms to 10m).
    #[arg(long, default_value = "7s", value_parser = heartbeat_duration)]
    pub ping_timeout: Duration,
    /// Health-check interval of the balancer (100ms to 1m).
    #[arg(long, default_value = "1s", value_parser = health_interval)]
    pub health_interval: Duration,
    /// How the balancer speaks to the replicas: http1 (a connection for each request in
    /// flight, as Traefik by default) or h2c (HTTP/2 without TLS, one connection to each
    /// replica, as Traefik with h2c:// servers: a held poll then costs the stack one open
    /// file, not three).
    #[arg(long, default_value = "http1", value_parser = upstream)]
    pub upstream: Upstream,
}

/// `--upstream`: http1 or h2c.
fn upstream(text: &str) -> Result<Upstream, String> {
    match text {
        "http1" => Ok(Upstream::Http1),
        "h2c" => Ok(Upstream::H2c),
        other => Err(format!(
            "{other:?}: the balancer speaks http1 or h2c to its replicas"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// `--size`: WIDTHxHEIGHT, 900x600 to 7680x4320.
pub fn window_size(text: &str) -> Result<[f32; 2], String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT (e.g. 1280x720)"))?;
    let parse = |v: &str, what: &str, range: std::ops::RangeInclusive<u32>| {
        let n: u32 = v
            .trim()
            .parse()
            .map_err(|_| format!("{v:?} is not a {what} in points"))?;
        if range.contains(&n) {
            Ok(n as f32)
        } else {
            Err(format!(
                "a {what} of {n} is out of range: give {} to {}",
                range.start(),
                range.end()
            ))
        }
    };
    Ok([
        parse(w, "width", 900..=7680)?,
        parse(h, "height", 600..=4320)?,
    ])
}

/// What `--record` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordAreaArg {
    /// The whole window.
    Window,
    /// The topology alone.
    Topology,
}

/// The chain's `--adapter`: its replicas are processes, so Redis or none.
pub fn chain_adapter(text: &str) -> Result<Adapter, String> {
    match Adapter::from_label(text) {
        Some(a @ (Adapter::Redis | Adapter::None)) => Ok(a),
        _ => Err(format!(
            "{text:?}: the chain's replicas are processes, so their adapter is redis or none"
        )),
    }
}

/// `--exit-after`: seconds, 0 to a day.
pub fn exit_after_seconds(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if (0.0..=86_400.0).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{text} is out of range: give 0 to 86400 seconds"))
    }
}

/// `probe --duration`: 1 s to 7 days.
pub fn probe_duration(text: &str) -> Result<Duration, String> {
    duration_in(
        text,
        &(Duration::from_secs(1)..=Duration::from_secs(7 * 86_400)),
    )
}

/// `probe --ramp`: up to 7 days (and shorter than `--duration`, checked with it).
pub fn ramp_duration(text: &str) -> Result<Duration, String> {
    duration_in(text, &(Duration::ZERO..=Duration::from_secs(7 * 86_400)))
}

/// `embedded --health-interval`: 100 ms to a minute.
pub fn health_interval(text: &str) -> Result<Duration, String> {
    duration_in(
        text,
        &(Duration::from_millis(100)..=Duration::from_secs(60)),
    )
}

/// The `scenario` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// List the shipped scenarios (run one by its name or number).
    List,
    /// Run scenario files (or shipped scenarios by name) and check every step.
    Run(Box<RunArgs>),
}

/// `scenario run`'s options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files, or shipped scenarios by name (`2-round-robin`) or number (`2`).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Where the scenarios run (a running stack has no replica controls and no /stats).
    #[command(flatten)]
    pub stack: StackChoice,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write JUnit XML (a test case per step) to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<std::path::PathBuf>,
}
