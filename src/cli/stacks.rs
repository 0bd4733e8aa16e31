//! `stickyscope embedded` and `stickyscope chain`: a stack stickyscope runs, headless, for any
//! client, until Ctrl-C or SIGTERM — then stopped in order.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use stickyscope::stack::chain::{Chain, ChainConfig, ChainTls, ReplicaProgram};
use stickyscope::stack::embedded::{EmbeddedConfig, EmbeddedError, EmbeddedStack};
use stickyscope::stack::ReplicaControl;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_replica::ReplicaError;
use stickyscope_vocab::stack::Adapter;

use super::args::{ChainArgs, EmbeddedArgs};

/// `stickyscope chain`: the real chain until Ctrl-C or SIGTERM, parts that die said on stderr.
pub async fn run_chain(args: ChainArgs) -> anyhow::Result<()> {
    // nginx, Traefik and the replicas inherit it: each held poll costs them open files.
    raise_open_files();
    let mut config = ChainConfig::new(
        ReplicaProgram::this_binary().context("cannot find this program to run replicas")?,
    )?;
    config.replicas = usize::from(args.replicas);
    config.port = args.port;
    config.adapter = args.adapter;
    config.traefiks = usize::from(args.traefiks);
    config.heartbeat = Heartbeat {
        interval: args.ping_interval,
        timeout: args.ping_timeout,
    };
    if !args.servers.is_empty() {
        config.servers = Some(args.servers.clone());
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(ChainTls {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    // Handlers first: a signal that comes while the chain starts, or right after it says it
    // is ready, still ends it in order.
    let mut stop = StopSignals::new().context("cannot handle SIGINT and SIGTERM")?;
    if args.servers.is_empty() {
        eprintln!(
            "starting redis-server, {} replicas, {} and nginx…",
            args.replicas,
            traefiks_said(args.traefiks)
        );
    } else {
        eprintln!(
            "starting {} and nginx in front of {} server(s)…",
            traefiks_said(args.traefiks),
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
    for (index, api) in chain.api_urls().iter().enumerate().skip(1) {
        println!("traefik {} api: {api} (the same credential)", index + 1);
    }
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
    for (server, why) in unanswered(&args.servers).await {
        eprintln!(
            "note: nothing answers at {server} ({why}); Traefik keeps it out of rotation until it does"
        );
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

/// "Traefik", or how many instances of it.
fn traefiks_said(traefiks: u8) -> String {
    match traefiks {
        1 => "Traefik".to_owned(),
        n => format!("{n} Traefik instances"),
    }
}

/// The servers (URLs) nothing answers at now — no TCP connection within a second — each
/// with why.
async fn unanswered(servers: &[String]) -> Vec<(String, String)> {
    let checks = servers.iter().map(|server| async move {
        let authority = match stickyscope::wire::tap::parse_gateway(server) {
            Ok(authority) => authority,
            Err(e) => return Some((server.clone(), e.to_string())),
        };
        let connect = tokio::net::TcpStream::connect(authority);
        match tokio::time::timeout(std::time::Duration::from_secs(1), connect).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some((server.clone(), e.to_string())),
            Err(_) => Some((server.clone(), "no answer within 1 s".to_owned())),
        }
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
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

/// `stickyscope embedded`: the embedded stack until Ctrl-C or SIGTERM.
pub async fn run_embedded(args: EmbeddedArgs) -> anyhow::Result<()> {
    raise_open_files();
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
        upstream: args.upstream,
    };
    let redis = config.redis_url.as_deref().map(without_password);
    let mut stop = StopSignals::new().context("cannot handle SIGINT and SIGTERM")?;
    let stack = EmbeddedStack::start(config).await.map_err(|e| {
        let e = anyhow::Error::new(e);
        let redis_down = e.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<ReplicaError>(),
                Some(ReplicaError::Adapter(_) | ReplicaError::AdapterInit(_))
            )
        });
        let port_taken = e
            .chain()
            .any(|cause| matches!(cause.downcast_ref::<EmbeddedError>(), Some(EmbeddedError::Bind { .. })));
        let why = if redis_down {
            format!(
                "the embedded stack could not start: the Redis adapter cannot use {} (is redis-server running there?)",
                redis.as_deref().unwrap_or("Redis")
            )
        } else if port_taken {
            "the embedded stack could not start (is the port free? try --port)".to_owned()
        } else {
            "the embedded stack could not start".to_owned()
        };
        e.context(why)
    })?;
    let url = stack.gateway_url();
    let hop = match args.upstream {
        stickyscope::balancer::Upstream::Http1 => "",
        stickyscope::balancer::Upstream::H2c => " (which reaches them over HTTP/2, h2c)",
    };
    println!(
        "stickyscope embedded stack: {} replicas behind {url}{hop}",
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

/// `url` with any password in it hidden (`redis://:…@host:6379`), for messages.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:…@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// Raises the open-file limit as far as this process may, for a stack that holds many
/// sessions (a balancer holds two files for each held poll); says so when it cannot.
fn raise_open_files() {
    if let Err(e) = stickyscope::open_files::raise() {
        tracing::warn!("the open-file limit could not be raised: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            without_password("redis://:secret@127.0.0.1:6379/0"),
            "redis://:…@127.0.0.1:6379/0"
        );
        assert_eq!(
            without_password("redis://me:secret@redis"),
            "redis://me:…@redis"
        );
        assert_eq!(
            without_password("redis://127.0.0.1:1"),
            "redis://127.0.0.1:1"
        );
        assert_eq!(without_password("not a url"), "not a url");
    }
}
