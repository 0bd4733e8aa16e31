//! The `stickyscope` command, the edge of the app: flags (checked by clap, with their ranges),
//! logging, the runtime, and errors for people (anyhow).
//!
//! With no subcommand it opens the desktop window on the embedded stack, on the local chain
//! (`--chain`) or on a running stack (`--gateway`); it can play a scenario, and save a
//! screenshot or record a GIF clip and exit. `stickyscope embedded` runs the embedded stack
//! headless for any client (a browser, the JS client, curl); `stickyscope chain` the real
//! chain as local processes; `stickyscope probe` checks a stack's stickiness for QA and CI
//! and exits with a verdict; `stickyscope scenario` lists and runs scenarios headless;
//! `stickyscope replica` is one replica process. Each lives in a module of [`cli`].

mod cli;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::args::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The probe's output is its table (or JSON): no log lines unless asked for.
    let default_filter = match &cli.command {
        Some(Command::Probe(probe)) if !probe.verbose => "off",
        Some(Command::Doctor(doctor)) if !doctor.verbose => "off",
        Some(Command::Scenario(_)) | Some(Command::Inspect(_)) => "off",
        Some(Command::Open(_)) => "warn",
        Some(_) => "info",
        None => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .init();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
    };
    match cli.command {
        Some(Command::Embedded(args)) => runtime()?.block_on(cli::stacks::run_embedded(args)),
        Some(Command::Chain(args)) => runtime()?.block_on(cli::stacks::run_chain(args)),
        Some(Command::Replica(args)) => runtime()?.block_on(stickyscope_replica::cli::run(args)),
        Some(Command::Probe(args)) => {
            let code = runtime()?.block_on(cli::probe::run_probe(*args))?;
            std::process::exit(code);
        }
        Some(Command::Doctor(args)) => {
            let code = runtime()?.block_on(cli::doctor::run_doctor(*args))?;
            std::process::exit(code);
        }
        Some(Command::Open(args)) => cli::window::run_open(args),
        Some(Command::Inspect(args)) => std::process::exit(cli::inspect::run_inspect(&args)?),
        Some(Command::Scenario(command)) => {
            let code = runtime()?.block_on(cli::scenario::run_scenario(command))?;
            std::process::exit(code);
        }
        None => cli::window::run_window(cli.window),
    }
}
