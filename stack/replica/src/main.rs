//! `stickyscope-replica`: one chat replica as a process, configured by flags or environment
//! (as in a container), stopped gracefully by SIGTERM or Ctrl-C (see
//! [`stickyscope_replica::cli`]).

use clap::Parser;
use stickyscope_replica::cli::{run, ReplicaArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    run(ReplicaArgs::parse()).await
}
