//! The `stickyscope` command.
//!
//! `stickyscope stack` runs the embedded stack headless for any client (a browser, the JS
//! client, curl). With no subcommand it starts the embedded stack the same way; the desktop
//! window will open on top of it once it exists.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use stickyscope::embedded::{EmbeddedStack, StackAdapter, StackConfig};
use stickyscope_replica::Heartbeat;
use tracing_subscriber::EnvFilter;

/// See, teach and test how Socket.IO sessions survive (or break) behind load balancers.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded stack (replicas behind the built-in sticky balancer) without a
    /// window, until Ctrl-C.
    ///
    /// Clients connect to http://127.0.0.1:PORT/socket.io/. Requests with
    /// `X-Stickiness: off` are balanced round-robin. The balancer also serves a
    /// Traefik-shaped topology API (GET /api/http/services/replicas-sticky@embedded) and
    /// controls (GET/POST /_stack/replicas, POST /_stack/replicas/ID/stop|kill|restart).
    Stack(StackArgs),
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
    #[arg(long, value_enum, default_value_t = AdapterArg::Memory)]
    adapter: AdapterArg,
    /// Redis URL for `--adapter redis`.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Engine.IO pingInterval of every replica, e.g. `3s`.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    ping_interval: Duration,
    /// Engine.IO pingTimeout of every replica, e.g. `7s`.
    #[arg(long, default_value = "7s", value_parser = humantime::parse_duration)]
    ping_timeout: Duration,
    /// Health-check interval of the balancer.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    health_interval: Duration,
}

impl Default for StackArgs {
    fn default() -> Self {
        StackArgs {
            replicas: 3,
            port: 8000,
            adapter: AdapterArg::Memory,
            redis_url: std::env::var("REDIS_URL").ok(),
            ping_interval: Duration::from_secs(3),
            ping_timeout: Duration::from_secs(7),
            health_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AdapterArg {
    Memory,
    Redis,
    None,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Stack(args)) => run_stack(args).await,
        None => run_stack(StackArgs::default()).await,
    }
}

async fn run_stack(args: StackArgs) -> anyhow::Result<()> {
    let adapter = match (args.adapter, args.redis_url) {
        (AdapterArg::Memory, _) => StackAdapter::Memory,
        (AdapterArg::None, _) => StackAdapter::None,
        (AdapterArg::Redis, Some(url)) => StackAdapter::Redis(url),
        (AdapterArg::Redis, None) => {
            anyhow::bail!("--adapter redis needs --redis-url or REDIS_URL")
        }
    };
    let config = StackConfig {
        replicas: usize::from(args.replicas),
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port),
        heartbeat: Heartbeat {
            interval: args.ping_interval,
            timeout: args.ping_timeout,
        },
        adapter,
        health_interval: args.health_interval,
    };
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
    println!("  controls:   {url}/_stack/replicas   (POST …/ID/stop|kill|restart)");
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!("stopping…");
    stack.shutdown().await;
    Ok(())
}
