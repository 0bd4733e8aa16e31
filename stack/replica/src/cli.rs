//! One chat replica as a process: its flags (or environment, as in a container) and its run
//! until SIGTERM or Ctrl-C (a graceful stop). `stickyscope-replica` is this and nothing
//! else; `stickyscope replica` runs the same, so one build of the app also gives the local
//! chain its replica processes.
//!
//! Signals: SIGTERM and SIGINT stop gracefully; SIGUSR1 makes `/healthz` fail (the replica
//! keeps serving, as a sick one would) and SIGUSR2 makes it pass again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use stickyscope_contract::heartbeat::{heartbeat_duration, Heartbeat};

use crate::{AdapterChoice, Replica, ReplicaConfig, ReplicaHandle, Stats};
use tokio::net::TcpListener;

/// A Socket.IO chat replica for stickyscope: every response says which replica answered.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct ReplicaArgs {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:3000")]
    listen: SocketAddr,
    /// Replica id sent as `X-Replica` (default: the hostname): 1 to 64 visible ASCII
    /// characters.
    #[arg(long, env = "REPLICA_ID", value_parser = stickyscope_contract::names::parse_replica_id)]
    id: Option<String>,
    /// Engine.IO pingInterval, e.g. `3s` or `500ms` (100ms to 10m).
    #[arg(long, env = "PING_INTERVAL", default_value = "3s", value_parser = heartbeat_duration)]
    ping_interval: Duration,
    /// Engine.IO pingTimeout, e.g. `7s` (100ms to 10m).
    #[arg(long, env = "PING_TIMEOUT", default_value = "7s", value_parser = heartbeat_duration)]
    ping_timeout: Duration,
    /// Redis URL for the adapter between replicas, e.g. `redis://redis:6379`.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Adapter: `auto` uses Redis when a URL is given; `none` keeps broadcasts on this
    /// replica (the seed demo's flaw, for showing it).
    #[arg(long, env = "ADAPTER", value_enum, default_value_t = AdapterArg::Auto)]
    adapter: AdapterArg,
    /// An origin whose pages may call this replica with credentials (so the browser
    /// sends the balancer's sticky cookie), e.g. https://app.example; `*` allows any
    /// origin without credentials; repeatable, or comma-separated in CORS_ORIGIN.
    #[arg(long = "cors-origin", env = "CORS_ORIGIN", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Check the replica listening on --listen (GET /healthz) and exit 0 when healthy, 1
    /// otherwise: the container health check, with no curl in the image.
    #[arg(long)]
    healthcheck: bool,
}

/// `--adapter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdapterArg {
    /// Redis when a URL is given, none otherwise.
    Auto,
    /// Redis (a URL is required).
    Redis,
    /// None: broadcasts stay on this replica.
    None,
}

/// Runs a replica (or `--healthcheck`) until a stop signal; the exit code is the result.
pub async fn run(args: ReplicaArgs) -> anyhow::Result<()> {
    if args.healthcheck {
        let port = args.listen.port();
        return match healthcheck(SocketAddr::from(([127, 0, 0, 1], port))).await {
            Ok(()) => Ok(()),
            Err(e) => {
                eprintln!("unhealthy: {e}");
                std::process::exit(1);
            }
        };
    }

    let adapter = match (args.adapter, args.redis_url) {
        (AdapterArg::None, _) => AdapterChoice::None,
        (AdapterArg::Auto, None) => AdapterChoice::None,
        (AdapterArg::Auto | AdapterArg::Redis, Some(url)) => AdapterChoice::Redis(url),
        (AdapterArg::Redis, None) => {
            anyhow::bail!("--adapter redis needs --redis-url or REDIS_URL")
        }
    };
    let id = args.id.unwrap_or_else(hostname);
    let config = ReplicaConfig {
        id: id.clone(),
        heartbeat: Heartbeat {
            interval: args.ping_interval,
            timeout: args.ping_timeout,
        },
        adapter,
        stats: Arc::new(Stats::default()),
        header_read_timeout: crate::HEADER_READ_TIMEOUT,
        cors_origins: args.cors_origins,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let replica = Replica::start(config, listener)
        .await
        .with_context(|| format!("replica {id} could not start"))?;
    println!("replica {id} listening on {}", replica.local_addr());

    until_stopped(&replica).await;
    replica.stop().await;
    Ok(())
}

/// One `GET /healthz` over a plain TCP connection, bounded to 2 s.
async fn healthcheck(addr: SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(2), check)
        .await
        .context("no answer within 2 s")??;
    let status_line = String::from_utf8_lossy(&answer);
    let status_line = status_line.lines().next().unwrap_or_default();
    anyhow::ensure!(status_line.contains(" 200 "), "{status_line}");
    Ok(())
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".to_owned())
}

/// Waits for SIGTERM or Ctrl-C; meanwhile SIGUSR1 and SIGUSR2 make `/healthz` fail and pass.
async fn until_stopped(replica: &ReplicaHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let signals = (
            signal(SignalKind::terminate()),
            signal(SignalKind::user_defined1()),
            signal(SignalKind::user_defined2()),
        );
        if let (Ok(mut term), Ok(mut sick), Ok(mut well)) = signals {
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                    _ = sick.recv() => {
                        tracing::info!("SIGUSR1: /healthz now fails");
                        replica.set_healthy(false);
                    }
                    _ = well.recv() => {
                        tracing::info!("SIGUSR2: /healthz passes again");
                        replica.set_healthy(true);
                    }
                }
            }
            tracing::info!("shutdown signal received");
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown signal received");
}
