//! The `stickyscope` command, the edge of the app: flags (checked by clap, with their ranges),
//! logging, the runtime, and errors for people (anyhow).
//!
//! With no subcommand it opens the desktop window on the embedded stack, on the local chain
//! (`--chain`) or on a running stack (`--gateway`); it can play a scenario, and save a
//! screenshot or record a GIF clip and exit. `stickyscope stack` runs the embedded stack
//! headless for any client (a browser, the JS client, curl); `stickyscope chain` the real
//! chain as local processes; `stickyscope probe` checks a stack's stickiness for QA and CI
//! and exits with a verdict; `stickyscope scenario` lists and runs scenarios headless.

mod scenario_cmd;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use eframe::egui;
use stickyscope::chain::{Chain, ChainConfig, ReplicaProgram};
use stickyscope::embedded::{EmbeddedConfig, EmbeddedStack};
use stickyscope_contract::heartbeat::{duration_in, heartbeat_duration, Heartbeat};
use stickyscope_vocab::events::{ChatDialect, EngineIoChoice, TransportChoice};
use stickyscope_vocab::stack::Adapter;
use tracing_subscriber::EnvFilter;

/// See, teach and test how Socket.IO sessions survive (or break) behind load balancers.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    window: WindowArgs,
}

/// Options of the desktop window (no subcommand).
#[derive(Debug, Clone, Args)]
struct WindowArgs {
    /// Use a running stack at this gateway (e.g. nginx at http://localhost:8000) instead of
    /// starting the embedded one.
    #[arg(long, conflicts_with = "chain")]
    gateway: Option<String>,
    /// Start the real chain (nginx → Traefik → replica processes → Redis) as local
    /// processes instead of the embedded stack (see `stickyscope chain`).
    #[arg(long)]
    chain: bool,
    /// Traefik's API for the topology, with --gateway: e.g. http://localhost:9090, or with
    /// its basic-auth credential, http://USER:PASSWORD@localhost:9090 (or set
    /// STICKYSCOPE_TRAEFIK_AUTH=USER:PASSWORD).
    #[arg(long, requires = "gateway")]
    traefik_api: Option<String>,
    /// Replicas of the embedded stack or chain.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    replicas: u16,
    /// Port of the embedded balancer or the chain's nginx (a free one is used if it is
    /// taken).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Start in presentation mode (large type, high contrast).
    #[arg(long)]
    presentation: bool,
    /// Stickiness of both users at start (default: as last time, else on).
    #[arg(long, value_enum)]
    stickiness: Option<OnOff>,
    /// Transport of both users at start (default: as last time, else polling).
    #[arg(long, value_enum)]
    transport: Option<TransportChoice>,
    /// Which chat the two users speak (default: as last time, else stickyscope): stickyscope's
    /// own (acks and receipts), the seed's (chat_message / chat_user, no acks), or none
    /// (heartbeats only).
    #[arg(long, value_enum)]
    chat: Option<ChatDialect>,
    /// Which Engine.IO to speak to the servers: auto (v4, switching to v3 when they answer
    /// in v3, as Socket.IO 2 servers do), 3 or 4 only; with --gateway.
    #[arg(long, value_enum, default_value_t = EngineIoChoice::Auto, requires = "gateway")]
    engineio: EngineIoChoice,
    /// Play a scenario from the start: a file, or a shipped one by name or number
    /// (`stickyscope scenario list`). The embedded stack or chain is started as it asks.
    #[arg(long, value_name = "FILE|NAME")]
    scenario: Option<String>,
    /// Background sessions at start (crowd mode, 0..=500).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=500))]
    crowd: u16,
    #[command(flatten)]
    identify: IdentifyArgs,
    /// Save a PNG of the window to this path and exit (with --exit-after).
    #[arg(long, requires = "exit_after", group = "output")]
    screenshot: Option<std::path::PathBuf>,
    /// Record the window from the start to this animated GIF (15 frames a second) and exit
    /// (with --exit-after): a clip for slides.
    #[arg(long, requires = "exit_after", group = "output")]
    record: Option<std::path::PathBuf>,
    /// What --record records: the whole window or the topology alone.
    #[arg(long, value_enum, default_value_t = RecordAreaArg::Window, requires = "record")]
    record_area: RecordAreaArg,
    /// Seconds to run before the screenshot, or to record (0 to 86400).
    #[arg(long, requires = "output", value_parser = exit_after_seconds)]
    exit_after: Option<f64>,
    /// The window's size in points, e.g. 1280x720 or 1920x1080 (a projector's).
    #[arg(long, value_parser = window_size)]
    size: Option<[f32; 2]>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded stack (replicas behind the built-in sticky balancer) without a
    /// window, until Ctrl-C.
    #[command(long_about = None)]
    ///
    /// Clients connect to http://127.0.0.1:PORT/socket.io/. Requests with
    /// `X-Stickiness: off` are balanced round-robin. The balancer also serves a
    /// Traefik-shaped topology API (GET /api/http/services/replicas-sticky@embedded) and
    /// controls (GET/POST /_stack/replicas, POST /_stack/replicas/ID/stop|kill|restart;
    /// a POST needs the header `X-Stickyscope-Control: 1`).
    Stack(StackArgs),
    /// Run N sessions through wire taps for a while; print a table per replica and a
    /// verdict. Exit 0 when every session stayed up on one replica, 1 when any broke, 2 for
    /// usage or connection errors. Without --gateway it probes a fresh embedded stack.
    #[command(long_about = None)]
    Probe(ProbeArgs),
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
    Scenario(scenario_cmd::ScenarioCommand),
}

/// How to tell which replica answered on a stack whose replicas send no `X-Replica`.
#[derive(Debug, Clone, Args)]
struct IdentifyArgs {
    /// A response header that names the replica that answered (e.g. a backend's
    /// hostname), for servers that send no X-Replica; with --gateway.
    #[arg(long, value_name = "NAME", requires = "gateway", value_parser = header_name)]
    replica_header: Option<String>,
    /// The balancer's sticky cookie (default: the one Traefik's API names, else
    /// sticky_replica); with --gateway.
    #[arg(long, value_name = "NAME", requires = "gateway", value_parser = cookie_name)]
    sticky_cookie: Option<String>,
    /// The balancer's server URLs (comma-separated, e.g. http://10.0.0.5:3000), so that
    /// the sticky cookie names its server when no Traefik API lists them; with --gateway.
    #[arg(long, value_name = "URL,…", value_delimiter = ',', requires = "gateway", value_parser = server_url)]
    servers: Vec<String>,
}

impl IdentifyArgs {
    fn config(&self) -> stickyscope::conductor::IdentifyConfig {
        stickyscope::conductor::IdentifyConfig {
            header: self.replica_header.clone(),
            cookie: self.sticky_cookie.clone(),
            servers: self.servers.clone(),
        }
    }
}

/// An HTTP header name.
fn header_name(text: &str) -> Result<String, String> {
    hyper::header::HeaderName::from_bytes(text.as_bytes())
        .map(|_| text.to_owned())
        .map_err(|_| format!("{text:?} is not an HTTP header name"))
}

/// A cookie name (an HTTP token).
fn cookie_name(text: &str) -> Result<String, String> {
    let token = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    token
        .then(|| text.to_owned())
        .ok_or_else(|| format!("{text:?} is not a cookie name"))
}

/// A server URL, `http://host:port` or `https://host:port`.
fn server_url(text: &str) -> Result<String, String> {
    let ok = (text.starts_with("http://") || text.starts_with("https://"))
        && text.parse::<hyper::Uri>().is_ok_and(|u| u.host().is_some());
    ok.then(|| text.trim_end_matches('/').to_owned())
        .ok_or_else(|| format!("{text:?} is not a server URL like http://10.0.0.5:3000"))
}

#[derive(Debug, Clone, Args)]
struct ProbeArgs {
    /// Gateway to probe, e.g. http://localhost:8000 (default: a fresh embedded stack).
    #[arg(long, conflicts_with = "chain")]
    gateway: Option<String>,
    /// Probe a fresh local chain (nginx → Traefik → replica processes → Redis).
    #[arg(long)]
    chain: bool,
    /// Traefik's API, to name each replica by the sticky cookie (its server list and
    /// cookie name), with --gateway: http://localhost:9090 or
    /// http://USER:PASSWORD@localhost:9090.
    #[arg(long, requires = "gateway")]
    traefik_api: Option<String>,
    #[command(flatten)]
    identify: IdentifyArgs,
    /// Transport of every session.
    #[arg(long, value_enum, default_value_t = TransportChoice::Polling)]
    transport: TransportChoice,
    /// Stickiness of every session.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    stickiness: OnOff,
    /// How long to probe, e.g. 30s or 2m (1s to 7 days).
    #[arg(long, default_value = "30s", value_parser = probe_duration)]
    duration: Duration,
    /// Sessions at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=500))]
    sessions: u16,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// Log what happens on stderr (RUST_LOG sets the level too).
    #[arg(short, long)]
    verbose: bool,
    /// Which chat the sessions understand (they do not send messages).
    #[arg(long, value_enum, default_value_t = ChatDialect::Stickyscope)]
    chat: ChatDialect,
    /// Which Engine.IO to speak to the servers: auto (v4, switching to v3 when they answer
    /// in v3, as Socket.IO 2 servers do), 3 or 4 only; with --gateway.
    #[arg(long, value_enum, default_value_t = EngineIoChoice::Auto, requires = "gateway")]
    engineio: EngineIoChoice,
}

#[derive(Debug, Clone, Args)]
struct ChainArgs {
    /// Replica processes to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    replicas: u16,
    /// Port of the gateway (nginx) on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Adapter between replicas: Redis, or none (users on different replicas then never see
    /// each other).
    #[arg(long, default_value = "redis", value_parser = chain_adapter)]
    adapter: Adapter,
    /// Engine.IO pingInterval of every replica, e.g. `3s` (100ms to 10m).
    #[arg(long, default_value = "3s", value_parser = heartbeat_duration)]
    ping_interval: Duration,
    /// Engine.IO pingTimeout of every replica, e.g. `7s` (100ms to 10m).
    #[arg(long, default_value = "7s", value_parser = heartbeat_duration)]
    ping_timeout: Duration,
    /// Run nginx and Traefik (as the stack file configures them) in front of these
    /// servers instead of replicas of its own: comma-separated URLs of your Socket.IO
    /// servers, e.g. http://127.0.0.1:3001,http://127.0.0.1:3002.
    #[arg(long, value_name = "URL,…", value_delimiter = ',', value_parser = server_url)]
    servers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
struct StackArgs {
    /// Replicas to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    replicas: u16,
    /// Port of the balancer on 127.0.0.1.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Adapter between replicas: an in-process bus, a Redis server, or none (users on
    /// different replicas then never see each other).
    #[arg(long, value_enum, default_value_t = Adapter::Memory)]
    adapter: Adapter,
    /// Redis URL for `--adapter redis`.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Engine.IO pingInterval of every replica, e.g. `3s` (100ms to 10m).
    #[arg(long, default_value = "3s", value_parser = heartbeat_duration)]
    ping_interval: Duration,
    /// Engine.IO pingTimeout of every replica, e.g. `7s` (100ms to 10m).
    #[arg(long, default_value = "7s", value_parser = heartbeat_duration)]
    ping_timeout: Duration,
    /// Health-check interval of the balancer (100ms to 1m).
    #[arg(long, default_value = "1s", value_parser = health_interval)]
    health_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// `--size`: WIDTHxHEIGHT, 900x600 to 7680x4320.
fn window_size(text: &str) -> Result<[f32; 2], String> {
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
enum RecordAreaArg {
    /// The whole window.
    Window,
    /// The topology alone.
    Topology,
}

/// The chain's `--adapter`: its replicas are processes, so Redis or none.
fn chain_adapter(text: &str) -> Result<Adapter, String> {
    match Adapter::from_label(text) {
        Some(a @ (Adapter::Redis | Adapter::None)) => Ok(a),
        _ => Err(format!(
            "{text:?}: the chain's replicas are processes, so their adapter is redis or none"
        )),
    }
}

/// `--exit-after`: seconds, 0 to a day.
fn exit_after_seconds(text: &str) -> Result<f64, String> {
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
fn probe_duration(text: &str) -> Result<Duration, String> {
    duration_in(
        text,
        &(Duration::from_secs(1)..=Duration::from_secs(7 * 86_400)),
    )
}

/// `stack --health-interval`: 100 ms to a minute.
fn health_interval(text: &str) -> Result<Duration, String> {
    duration_in(
        text,
        &(Duration::from_millis(100)..=Duration::from_secs(60)),
    )
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The probe's output is its table (or JSON): no log lines unless asked for.
    let default_filter = match &cli.command {
        Some(Command::Probe(probe)) if !probe.verbose => "off",
        Some(Command::Scenario(_)) => "off",
        Some(_) => "info",
        None => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .init();
    match cli.command {
        Some(Command::Stack(args)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(run_stack(args)),
        Some(Command::Probe(args)) => {
            let code = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(run_probe(args))?;
            std::process::exit(code);
        }
        Some(Command::Chain(args)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(run_chain(args)),
        Some(Command::Replica(args)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(stickyscope_replica::cli::run(args)),
        Some(Command::Scenario(command)) => {
            let code = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(scenario_cmd::run_scenario(command))?;
            std::process::exit(code);
        }
        None => run_window(cli.window),
    }
}

async fn run_probe(args: ProbeArgs) -> anyhow::Result<i32> {
    use std::io::{IsTerminal, Write};
    use stickyscope::conductor::controls::StackControls;
    let started: Result<Option<StackControls>, String> = match (&args.gateway, args.chain) {
        (Some(_), _) => Ok(None),
        (None, true) => {
            match ReplicaProgram::this_binary()
                .map_err(|e| e.to_string())
                .and_then(|program| ChainConfig::new(program).map_err(|e| e.to_string()))
            {
                Ok(config) => Chain::start(config)
                    .await
                    .map(|c| Some(StackControls::Chain(std::sync::Arc::new(c))))
                    .map_err(|e| format!("the chain could not start: {e}")),
                Err(e) => Err(format!("the chain could not start: {e}")),
            }
        }
        (None, false) => EmbeddedStack::start(EmbeddedConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            ..EmbeddedConfig::default()
        })
        .await
        .map(|s| Some(StackControls::Embedded(s)))
        .map_err(|e| format!("the embedded stack could not start: {e}")),
    };
    let embedded = match started {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("probe could not start: {e}");
            return Ok(2);
        }
    };
    let gateway = match (&args.gateway, &embedded) {
        (Some(g), _) => g.clone(),
        (None, Some(stack)) => stack.gateway_url(),
        (None, None) => unreachable!("a stack was started"),
    };
    let terminal = std::io::stderr().is_terminal() && !args.json;
    let identify = args.identify.config().shared();
    if let Some(api) = &args.traefik_api {
        learn_from_traefik(api, &args.identify, &identify).await;
    }
    let plan = stickyscope::probe::Plan {
        gateway: gateway.clone(),
        transport: args.transport,
        sticky: args.stickiness == OnOff::On,
        duration: args.duration,
        sessions: usize::from(args.sessions),
        identify,
        chat: args.chat,
        engineio: args.engineio,
    };
    let result = stickyscope::probe::run(&plan, |done| {
        if terminal {
            let width = 30;
            let filled = ((done.clamp(0.0, 1.0)) * width as f64) as usize;
            eprint!(
                "\r[{}{}] {:>3.0}%",
                "#".repeat(filled),
                " ".repeat(width - filled),
                done * 100.0
            );
            let _ = std::io::stderr().flush();
        }
    })
    .await;
    if terminal {
        eprintln!();
    }
    if let Some(stack) = embedded {
        stack.shutdown().await;
    }
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("probe could not start: {e}");
            return Ok(2);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", stickyscope::probe::table(&report));
    }
    Ok(report.exit_code)
}

/// Reads the sticky service's servers and cookie name from Traefik's API once, so that the
/// probe's records name each replica by the sticky cookie. An API that cannot be read is
/// said, and the probe goes on without it.
async fn learn_from_traefik(
    api: &str,
    given: &IdentifyArgs,
    identify: &stickyscope::wire::SharedIdentify,
) {
    let read = async {
        let client = stickyscope::traefik_client::TraefikApi::new(api)?;
        let services = client.services().await?;
        let routers = client.routers().await?;
        Ok::<_, stickyscope::traefik_client::TraefikError>(
            stickyscope_vocab::traefik_model::topology_from_api(&services, &routers),
        )
    };
    match read.await {
        Ok((topology, problems)) => {
            for problem in problems {
                eprintln!("Traefik labels: {problem}");
            }
            let mut identify = identify.write().unwrap_or_else(|e| e.into_inner());
            if given.sticky_cookie.is_none() {
                if let Some(cookie) = &topology.sticky_cookie {
                    identify.cookie = cookie.clone();
                }
            }
            if given.servers.is_empty() {
                identify.set_servers(topology.replicas.iter().filter_map(|r| r.url.as_deref()));
            }
        }
        Err(e) => eprintln!("{e}; replicas are named by what the answers carry only"),
    }
}

fn run_window(args: WindowArgs) -> anyhow::Result<()> {
    use stickyscope::conductor::GatewayConfig;
    use stickyscope::ui::settings::{Settings, STORAGE_KEY};
    use stickyscope::ui::{ScreenshotPlan, StickyscopeApp};

    let free_or_any = |port: u16| {
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            port
        } else {
            0
        }
    };
    // A scenario is read (and refused, with its place) before any window opens.
    let scenario = match &args.scenario {
        Some(name) => {
            let (file, source) = read_scenario(name)?;
            let scenario = stickyscope::scenario::parse(&file, &source)?;
            Some((file, source, scenario))
        }
        None => None,
    };
    let gateway = match args.gateway {
        Some(gateway) => GatewayConfig::External {
            gateway,
            traefik_api: args.traefik_api,
            identify: args.identify.config(),
            engineio: args.engineio,
        },
        None if args.chain => {
            let program = stickyscope::chain::ReplicaProgram::this_binary()
                .context("cannot find this program to run replicas")?;
            let mut config = stickyscope::chain::ChainConfig::new(program)?;
            config.replicas = usize::from(args.replicas);
            config.port = free_or_any(args.port);
            if let Some((_, _, s)) = &scenario {
                config.replicas = s.stack.replicas;
                config.adapter = s.stack.adapter;
                config.heartbeat = s.stack.heartbeat;
            }
            GatewayConfig::Chain(config)
        }
        None => {
            // The documented port when it is free; any free one otherwise.
            let port = free_or_any(args.port);
            let mut config = EmbeddedConfig {
                replicas: usize::from(args.replicas),
                listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                ..EmbeddedConfig::default()
            };
            if let Some((_, _, s)) = &scenario {
                config.replicas = s.stack.replicas;
                if s.stack.adapter == Adapter::None {
                    config.adapter = Adapter::None;
                }
                config.heartbeat = s.stack.heartbeat;
            }
            GatewayConfig::Embedded(config)
        }
    };
    if let Some((file, _, s)) = &scenario {
        let can = stickyscope::scenario::capabilities::Capabilities {
            controls: gateway.has_controls(),
            stats: gateway.has_controls(),
            numbered_replicas: gateway.has_controls(),
            redis_adapter: matches!(gateway, GatewayConfig::Chain(_)),
        };
        s.check_against(file, can)?;
    }
    let screenshot = match (args.screenshot, args.exit_after) {
        (Some(path), Some(secs)) => {
            let after = Duration::try_from_secs_f64(secs)
                .map_err(|_| anyhow::anyhow!("--exit-after {secs} is not a number of seconds"))?;
            Some((
                ScreenshotPlan { path, after },
                std::sync::Arc::new(std::sync::Mutex::new(None)),
            ))
        }
        _ => None,
    };
    let record = match (args.record, args.exit_after) {
        (Some(path), Some(secs)) => Some(stickyscope::ui::recording::RecordPlan {
            path,
            area: match args.record_area {
                RecordAreaArg::Window => stickyscope::ui::recording::ClipArea::Window,
                RecordAreaArg::Topology => stickyscope::ui::recording::ClipArea::Topology,
            },
            seconds: Duration::try_from_secs_f64(secs)
                .map_err(|_| anyhow::anyhow!("--exit-after {secs} is not a number of seconds"))?,
            outcome: std::sync::Arc::new(std::sync::Mutex::new(None)),
        }),
        _ => None,
    };
    let record_outcome = record.as_ref().map(|p| std::sync::Arc::clone(&p.outcome));
    let outcome = screenshot.as_ref().map(|(_, o)| std::sync::Arc::clone(o));
    let persist = screenshot.is_none() && record.is_none();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("stickyscope")
            .with_app_id("stickyscope")
            .with_icon(std::sync::Arc::new(
                eframe::icon_data::from_png_bytes(stickyscope::ui::ICON_PNG)
                    .context("the built-in icon is not a PNG")?,
            ))
            .with_inner_size(args.size.unwrap_or([1440.0, 900.0]))
            .with_min_inner_size([900.0, 600.0]),
        renderer: eframe::Renderer::Glow,
        persist_window: persist,
        // A screenshot run neither reads nor writes the user's saved state.
        persistence_path: (!persist)
            .then(|| std::env::temp_dir().join(format!("stickyscope-shot-{}", std::process::id()))),
        ..Default::default()
    };
    eframe::run_native(
        "stickyscope",
        options,
        Box::new(move |cc| {
            let mut settings: Settings = if persist {
                cc.storage
                    .and_then(|s| eframe::get_value(s, STORAGE_KEY))
                    .unwrap_or_default()
            } else {
                Settings::default()
            };
            settings.presentation |= args.presentation;
            if let Some(on) = args.stickiness {
                settings.sticky = on == OnOff::On;
            }
            if let Some(t) = args.transport {
                settings.transport = t;
            }
            if let Some(chat) = args.chat {
                settings.chat = chat;
            }
            if let Some((_, _, s)) = &scenario {
                settings.sticky = s.start.sticky;
                settings.transport = s.start.transport;
                settings.chat = s.start.chat;
                settings.ping_interval_ms = s.stack.heartbeat.interval.as_millis() as u64;
            }
            let mut app = StickyscopeApp::new(&cc.egui_ctx, settings, gateway, screenshot, persist);
            if args.crowd > 0 {
                app.set_crowd(usize::from(args.crowd));
            }
            if let Some(plan) = record {
                app.record(plan);
            }
            if let Some((file, source, _)) = &scenario {
                app.start_scenario(file, source);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window could not run: {e}"))?;
    if let Some(outcome) = record_outcome {
        let result = outcome.lock().ok().and_then(|mut o| o.take());
        match result {
            Some(Ok(said)) => println!("{said}"),
            Some(Err(e)) => anyhow::bail!("recording failed: {e}"),
            None => anyhow::bail!("the window closed before the clip was finished"),
        }
    }
    if let Some(outcome) = outcome {
        let result = outcome.lock().ok().and_then(|mut o| o.take());
        match result {
            Some(Ok(path)) => println!("screenshot saved to {}", path.display()),
            Some(Err(e)) => anyhow::bail!("screenshot failed: {e}"),
            None => anyhow::bail!("the window closed before the screenshot was taken"),
        }
    }
    Ok(())
}

/// A scenario's file name and text: a file, or a shipped scenario by name or number.
fn read_scenario(name: &str) -> anyhow::Result<(String, String)> {
    match std::fs::read_to_string(name) {
        Ok(source) => Ok((name.to_owned(), source)),
        Err(e) => stickyscope::scenario::shipped::find(name)
            .map(|s| (s.name.to_owned(), s.source.to_owned()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{name}: cannot read it ({e}), and no shipped scenario is called so (stickyscope scenario list)"
                )
            }),
    }
}

async fn run_chain(args: ChainArgs) -> anyhow::Result<()> {
    let mut config = ChainConfig::new(
        ReplicaProgram::this_binary().context("cannot find this program to run replicas")?,
    )?;
    config.replicas = usize::from(args.replicas);
    config.port = args.port;
    config.adapter = args.adapter;
    config.heartbeat = Heartbeat {
        interval: args.ping_interval,
        timeout: args.ping_timeout,
    };
    if !args.servers.is_empty() {
        config.servers = Some(args.servers.clone());
    }
    // Handlers first: a signal that comes while the chain starts, or right after it says it
    // is ready, still ends it in order.
    let mut stop = StopSignals::new().context("cannot handle SIGINT and SIGTERM")?;
    if args.servers.is_empty() {
        eprintln!(
            "starting redis-server, {} replicas, Traefik and nginx…",
            args.replicas
        );
    } else {
        eprintln!(
            "starting Traefik and nginx in front of {} server(s)…",
            args.servers.len()
        );
    }
    let chain = tokio::select! {
        chain = Chain::start(config) => chain?,
        _ = stop.next() => {
            eprintln!("stopped while starting");
            return Ok(());
        }
    };
    println!("gateway: {}", chain.gateway_url());
    println!("traefik api: {}", chain.api_url_with_credential());
    println!("dashboard: {}", chain.dashboard_url());
    match args.servers.is_empty() {
        true => println!(
            "replicas: {} (configuration and logs in {})",
            args.replicas,
            chain.run_dir().display()
        ),
        false => println!(
            "servers: {} (configuration and logs in {})",
            args.servers.join(", "),
            chain.run_dir().display()
        ),
    }
    println!("Ctrl-C stops it.");
    let mut exits = chain.take_exits();
    let report = async {
        while let Some(exit) = match exits.as_mut() {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        } {
            eprintln!(
                "{} exited unexpectedly ({}); its log ({}) ends:
  {}",
                exit.name,
                exit.status,
                exit.log.display(),
                exit.tail.join("\n  ")
            );
        }
    };
    tokio::select! {
        _ = stop.next() => {}
        _ = report => {}
    }
    eprintln!("stopping…");
    chain.shutdown().await;
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM, handled from the moment this is made.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next of either.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

async fn run_stack(args: StackArgs) -> anyhow::Result<()> {
    if args.adapter == Adapter::Redis && args.redis_url.is_none() {
        anyhow::bail!("--adapter redis needs --redis-url or REDIS_URL");
    }
    let config = EmbeddedConfig {
        replicas: usize::from(args.replicas),
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port),
        heartbeat: Heartbeat {
            interval: args.ping_interval,
            timeout: args.ping_timeout,
        },
        adapter: args.adapter,
        redis_url: args.redis_url,
        health_interval: args.health_interval,
    };
    let mut stop = StopSignals::new().context("cannot handle SIGINT and SIGTERM")?;
    let stack = EmbeddedStack::start(config)
        .await
        .context("the embedded stack could not start (is the port free? try --port)")?;
    let url = stack.gateway_url();
    println!(
        "stickyscope embedded stack: {} replicas behind {url}",
        args.replicas
    );
    println!("  Socket.IO:  {url}/socket.io/   (send `X-Stickiness: off` for round-robin)");
    println!("  topology:   {url}/api/http/services/replicas-sticky@embedded");
    println!(
        "  controls:   {url}/_stack/replicas   (POST …/ID/stop|kill|restart with header `X-Stickyscope-Control: 1`)"
    );
    println!("Ctrl-C stops it.");
    stop.next().await;
    println!("stopping…");
    stack.shutdown().await;
    Ok(())
}
