//! `stickyscope probe`: N sessions through wire taps on a stack (a fresh embedded one, a fresh
//! local chain, or a running gateway) for a while; a table per replica, or JSON, and an exit
//! code that is the verdict.

use std::io::{IsTerminal, Write};

use stickyscope::stack::GatewayConfig;

use stickyscope::tls_trust::Trust;
use stickyscope::traefik_client::{TraefikApi, TraefikError};
use stickyscope::wire::Learner;
use stickyscope_vocab::traefik_reading::topology_from_api;

use super::args::{OnOff, ProbeArgs};

/// Runs the probe; returns its exit code (0 held, 1 broke, 2 could not run).
pub async fn run_probe(args: ProbeArgs) -> anyhow::Result<i32> {
    let gateway = match which_stack(&args) {
        Ok(gateway) => gateway,
        Err(e) => {
            eprintln!("probe could not start: {e}");
            return Ok(2);
        }
    };
    let ramp = args.ramp.unwrap_or_default();
    if ramp >= args.duration {
        eprintln!(
            "probe could not start: --ramp {} must be shorter than --duration {}, which counts \
             from the first session: give a longer --duration",
            humantime::format_duration(ramp),
            humantime::format_duration(args.duration)
        );
        return Ok(2);
    }
    let what = gateway.mode();
    let access = gateway.access();
    // Enough open files for every session, known before anything starts.
    let in_process = matches!(gateway, GatewayConfig::Embedded(_));
    if let Err(e) = stickyscope::open_files::ensure(usize::from(args.sessions), in_process) {
        eprintln!("probe could not start: {e}");
        return Ok(2);
    }
    let stack = match stickyscope::stack::start(gateway).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("probe could not start: the {what} could not start: {e}");
            return Ok(2);
        }
    };
    let terminal = std::io::stderr().is_terminal() && !args.json;
    let (learner, naming) = args.stack.identify.config().learner();
    if let Some(api) = &args.stack.traefik_api {
        learn_from_traefik(api, &Trust::of(&access), &learner).await;
    }
    let plan = stickyscope::probe::Plan {
        gateway: stack.gateway.clone(),
        transport: args.transport,
        sticky: args.stickiness == OnOff::On,
        duration: args.duration,
        sessions: usize::from(args.sessions),
        ramp,
        naming,
        chat: args.chat,
        engineio: args.stack.engineio,
        access,
        har: args.har.clone(),
        capture: args
            .capture
            .clone()
            .map(|path| stickyscope::probe::CapturePlan {
                path,
                limit: args.capture_max,
                stack: what.clone(),
            }),
    };
    let result = stickyscope::probe::run(&plan, |now| {
        if terminal {
            progress_line(&now);
        }
    })
    .await;
    if terminal {
        eprintln!();
    }
    if let Some(controls) = stack.controls {
        controls.shutdown().await;
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

/// The stack the flags name: the gateway given, a fresh chain, or a fresh embedded stack on
/// a free port.
fn which_stack(args: &ProbeArgs) -> Result<GatewayConfig, String> {
    if let Some((user, _)) = args
        .stack
        .access
        .auth
        .iter()
        .find(|(user, _)| user.is_some())
    {
        let user = user.as_deref().unwrap_or_default();
        return Err(format!(
            "--auth {user}=… is the chat user {user}'s, and probe's sessions are not the chat \
             users: give --auth JSON (no user) for the payload every session sends"
        ));
    }
    args.stack.gateway_config()
}

/// `[#####      ]  42%  opened 300/500 · up 298 · broken 2 · rate-limited 0` on stderr,
/// over itself.
fn progress_line(now: &stickyscope::probe::Progress) {
    let width = 24;
    let done = now.done.clamp(0.0, 1.0);
    let filled = (done * width as f64) as usize;
    let limited = match now.standing.rate_limited {
        0 => String::new(),
        n => format!(" · rate-limited {n}"),
    };
    eprint!(
        "\r[{}{}] {:>3.0}%  opened {}/{} · up {} · broken {}{limited}\x1b[K",
        "#".repeat(filled),
        " ".repeat(width - filled),
        done * 100.0,
        now.opened,
        now.sessions,
        now.standing.connected,
        now.standing.broken,
    );
    let _ = std::io::stderr().flush();
}

/// Reads the sticky service's servers and cookie name from Traefik's API once, so that the
/// probe's records name each replica by the sticky cookie. An API that cannot be read is
/// said, and the probe goes on without it.
async fn learn_from_traefik(api: &str, trust: &Trust, learner: &Learner) {
    let read = async {
        let client = TraefikApi::new(api, trust)?;
        let services = client.services().await?;
        let routers = client.routers().await?;
        Ok::<_, TraefikError>(topology_from_api(&services, &routers))
    };
    match read.await {
        Ok((topology, problems)) => {
            for problem in problems {
                eprintln!("Traefik labels: {problem}");
            }
            learner.learn(&topology);
        }
        Err(e) => eprintln!("{e}; replicas are named by what the answers carry only"),
    }
}
