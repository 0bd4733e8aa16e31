//! `stickyscope scenario`: `list` shows the shipped scenarios; `run FILE…` plays each on a
//! fresh embedded stack (or the chain, or a running gateway) and reports every expectation
//! with what was observed — a table, JSON or JUnit XML. Exit 0 when all pass, 1 when any
//! fails, 2 for a bad file or a stack that cannot run it.

use stickyscope::scenario::report::{self, ScenarioReport};
use stickyscope::scenario::run::{run, RunError, RunTarget};
use stickyscope::scenario::shipped::{find, SHIPPED};
use stickyscope::stack::GatewayConfig;

use super::args::ScenarioCommand;

/// Runs a `scenario` subcommand; returns the exit code.
pub async fn run_scenario(command: ScenarioCommand) -> anyhow::Result<i32> {
    let args = match command {
        ScenarioCommand::List => {
            for shipped in SHIPPED {
                let title = stickyscope::scenario::parse(shipped.name, shipped.source)
                    .map(|s| s.title)
                    .unwrap_or_else(|e| format!("(unreadable: {e})"));
                println!("{:<30} {title}", shipped.name);
            }
            return Ok(0);
        }
        ScenarioCommand::Run(args) => args,
    };
    // Every file is read and checked before anything runs.
    let target = match (&args.stack.gateway, args.stack.chain) {
        (Some(url), _) => RunTarget::Gateway {
            url: url.clone(),
            config: Box::new(
                args.stack
                    .external()
                    .unwrap_or_else(|| GatewayConfig::external(url.clone(), None)),
            ),
        },
        (None, true) => {
            let program = stickyscope::stack::chain::ReplicaProgram::this_binary()?;
            let mut config = stickyscope::stack::chain::ChainConfig::new(program)?;
            config.traefiks = usize::from(args.stack.traefiks);
            RunTarget::Chain(Box::new(config))
        }
        (None, false) => RunTarget::Embedded,
    };
    let mut scenarios = Vec::new();
    for name in &args.files {
        let (file, source) = match std::fs::read_to_string(name) {
            Ok(source) => (name.clone(), source),
            Err(e) => match find(name) {
                Some(shipped) => (shipped.name.to_owned(), shipped.source.to_owned()),
                None => {
                    eprintln!(
                        "{name}: cannot read it ({e}), and no shipped scenario is called so (stickyscope scenario list)"
                    );
                    return Ok(2);
                }
            },
        };
        let scenario = match stickyscope::scenario::parse(&file, &source) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return Ok(2);
            }
        };
        if let Err(e) = scenario.check_against(&file, target.capabilities()) {
            eprintln!("{e}");
            return Ok(2);
        }
        scenarios.push((file, scenario));
    }
    let mut reports: Vec<ScenarioReport> = Vec::new();
    for (file, scenario) in &scenarios {
        if !args.json {
            eprintln!("running {} ({file})…", scenario.title);
        }
        let json = args.json;
        let result = run(file, scenario, &target, |step| {
            if !json {
                eprintln!(
                    "  step {} {}: {}",
                    step.number,
                    step.title,
                    if step.passed { "PASS" } else { "FAIL" }
                );
            }
        })
        .await;
        match result {
            Ok(r) => reports.push(r),
            Err(e @ (RunError::Refused(_) | RunError::Start(_) | RunError::Unreachable(_))) => {
                eprintln!("{file}: {e}");
                return Ok(2);
            }
        }
    }
    let passed = reports.iter().all(|r| r.passed);
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, report::junit(&reports)) {
            eprintln!("cannot write {}: {e}", path.display());
            return Ok(2);
        }
    }
    if args.json {
        let doc = serde_json::json!({ "passed": passed, "scenarios": reports });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", report::table(&reports));
    }
    Ok(if passed { 0 } else { 1 })
}
