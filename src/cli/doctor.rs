//! `stickyscope doctor`: the checklist on a stack (a fresh embedded one, a fresh local
//! chain, or a running gateway), printed as each check is known, or as one JSON document;
//! JUnit XML beside it on request; an exit code like `probe`'s.

use std::io::IsTerminal;

use stickyscope::doctor::{self, render, DoctorOptions};

use super::args::DoctorArgs;

/// Runs the checklist; returns its exit code (0 nothing failed, 1 something did, 2 could
/// not run).
pub async fn run_doctor(args: DoctorArgs) -> anyhow::Result<i32> {
    let config = match args.stack.gateway_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("doctor could not start: {e}");
            return Ok(2);
        }
    };
    let what = config.mode();
    let stack = match stickyscope::stack::start(config.clone()).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("doctor could not start: the {what} could not start: {e}");
            return Ok(2);
        }
    };
    let options = DoctorOptions {
        origin: args.origin.clone(),
        chat: args.chat,
        ..DoctorOptions::default()
    };
    let terminal = std::io::stderr().is_terminal() && !args.json;
    if terminal {
        eprintln!("checking {} ({what}): up to a minute…", stack.gateway);
    }
    let result = doctor::run(&doctor::Target::of(&stack, &config), &options, |check| {
        if terminal {
            eprintln!(
                "  {:<7} {:>2}. {}",
                check.outcome.word(),
                check.id.number(),
                check.id.title()
            );
        }
    })
    .await;
    if let Some(controls) = &stack.controls {
        if !matches!(config, stickyscope::stack::GatewayConfig::External { .. }) {
            controls.shutdown().await;
        }
    }
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("doctor could not run: {e}");
            return Ok(2);
        }
    };
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, render::junit(&report)) {
            eprintln!("doctor could not write {}: {e}", path.display());
            return Ok(2);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if terminal {
            eprintln!();
        }
        print!("{}", render::text(&report));
    }
    Ok(report.exit_code())
}
