//! The desktop window (no subcommand, or `open FILE` on a capture): which stack it opens on,
//! a scenario read (and refused with its place) before any window opens, a capture read
//! (and refused in words) before it opens, the window's options, the settings it starts
//! with, and what it says when it was asked for a screenshot or a clip and closes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use eframe::egui;
use stickyscope::scenario::format::Scenario;
use stickyscope::stack::chain::{ChainConfig, ReplicaProgram};
use stickyscope::stack::embedded::EmbeddedConfig;
use stickyscope::stack::GatewayConfig;
use stickyscope::ui::app::ScreenshotOutcome;
use stickyscope::ui::recording::{ClipArea, RecordOutcome, RecordPlan};
use stickyscope::ui::settings::{Settings, STORAGE_KEY};
use stickyscope::ui::{ScreenshotPlan, StickyscopeApp};
use stickyscope_vocab::stack::Adapter;

use super::args::{OnOff, OpenArgs, RecordAreaArg, WindowArgs, WindowOutput};

/// A scenario to play: its file name, its text, and what it says.
type Chosen = (String, String, Scenario);

/// Opens the window and runs it until it closes.
pub fn run_window(args: WindowArgs) -> anyhow::Result<()> {
    // A scenario is read (and refused, with its place) before any window opens.
    let scenario = match &args.scenario {
        Some(name) => {
            let (file, source) = read_scenario(name)?;
            let scenario = stickyscope::scenario::parse(&file, &source)?;
            Some((file, source, scenario))
        }
        None => None,
    };
    let gateway = gateway(&args, scenario.as_ref())?;
    // The crowd asked for at start, the two users, their taps: enough open files, or said
    // now (the limit is raised as far as it goes either way, for a crowd added later).
    let in_process = matches!(gateway, GatewayConfig::Embedded(_));
    stickyscope::open_files::ensure(usize::from(args.crowd) + 2, in_process)?;
    if let Some((file, _, s)) = &scenario {
        s.check_against(file, stickyscope::scenario::run::capabilities_of(&gateway))?;
    }
    let output = args.output.clone();
    show(&output, move |cc, screenshot, persist| {
        let settings = starting_settings(&args, scenario.as_ref(), persist, cc.storage);
        let mut app = StickyscopeApp::new(&cc.egui_ctx, settings, gateway, screenshot, persist);
        if args.crowd > 0 {
            app.set_crowd(usize::from(args.crowd));
        }
        if let Some(path) = &args.capture {
            app.capture_to(path.clone(), args.capture_max);
        }
        if args.doctor {
            app.run_doctor(args.origin.clone());
        }
        if let Some((file, source, _)) = &scenario {
            app.start_scenario(file, source);
        }
        app
    })
}

/// Opens the window on a capture and runs it until it closes.
pub fn run_open(args: OpenArgs) -> anyhow::Result<()> {
    let opened = stickyscope::recorded::open_any(&args.file, &args.naming.identify())
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    for note in &opened.notes {
        eprintln!("{}: {note}", args.file.display());
    }
    let start = if args.first_failure {
        let first = opened.timeline.failures().next().map(|f| f.at);
        Some(first.ok_or_else(|| {
            anyhow::anyhow!("{}: nothing failed in this capture", args.file.display())
        })?)
    } else {
        args.at
    };
    let file = args.file.display().to_string();
    let output = args.output.clone();
    show(&output, move |cc, screenshot, _| {
        let mut settings = Settings {
            presentation: args.output.presentation,
            ..Settings::default()
        };
        settings.sticky = opened.header.sticky;
        settings.transport = opened.header.transport;
        let mut app = StickyscopeApp::recorded(&cc.egui_ctx, settings, opened, &file, screenshot);
        if let Some(at) = start {
            app.pause_at(at);
        }
        app
    })
}

/// Runs a window `make` builds until it closes: with the screenshot or clip the flags ask
/// for (then nothing is persisted), saying where they went.
fn show(
    output: &WindowOutput,
    make: impl FnOnce(
            &eframe::CreationContext<'_>,
            Option<(ScreenshotPlan, ScreenshotOutcome)>,
            bool,
        ) -> StickyscopeApp
        + 'static,
) -> anyhow::Result<()> {
    let exit_after = match output.exit_after {
        Some(secs) => Some(
            Duration::try_from_secs_f64(secs)
                .map_err(|_| anyhow::anyhow!("--exit-after {secs} is not a number of seconds"))?,
        ),
        None => None,
    };
    let screenshot = match (&output.screenshot, exit_after) {
        (Some(path), Some(after)) => Some((
            ScreenshotPlan {
                path: path.clone(),
                after,
            },
            ScreenshotOutcome::default(),
        )),
        _ => None,
    };
    let record = match (&output.record, exit_after) {
        (Some(path), Some(seconds)) => Some(RecordPlan {
            path: path.clone(),
            area: match output.record_area {
                RecordAreaArg::Window => ClipArea::Window,
                RecordAreaArg::Topology => ClipArea::Topology,
            },
            seconds,
            outcome: Arc::new(Mutex::new(None)),
        }),
        _ => None,
    };
    let record_outcome = record.as_ref().map(|p| Arc::clone(&p.outcome));
    let shot_outcome = screenshot.as_ref().map(|(_, o)| Arc::clone(o));
    let persist = screenshot.is_none() && record.is_none();
    eframe::run_native(
        "stickyscope",
        native_options(output, persist)?,
        Box::new(move |cc| {
            let mut app = make(cc, screenshot, persist);
            if let Some(plan) = record {
                app.record(plan);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window could not run: {e}"))?;
    say_outcomes(record_outcome, shot_outcome)
}

/// The stack the flags (and a scenario's `[stack]`) name.
fn gateway(args: &WindowArgs, scenario: Option<&Chosen>) -> anyhow::Result<GatewayConfig> {
    let free_or_any = |port: u16| {
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            port
        } else {
            0
        }
    };
    Ok(match &args.stack.gateway {
        Some(_) => args
            .stack
            .external()
            .context("--gateway names the running stack")?,
        None if args.stack.chain => {
            let program = ReplicaProgram::this_binary()
                .context("cannot find this program to run replicas")?;
            let mut config = ChainConfig::new(program)?;
            config.replicas = usize::from(args.replicas);
            config.port = free_or_any(args.port);
            config.traefiks = usize::from(args.stack.traefiks);
            if let Some((_, _, s)) = scenario {
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
            if let Some((_, _, s)) = scenario {
                config.replicas = s.stack.replicas;
                if s.stack.adapter == Adapter::None {
                    config.adapter = Adapter::None;
                }
                config.heartbeat = s.stack.heartbeat;
            }
            GatewayConfig::Embedded(config)
        }
    })
}

/// The window's title, icon, size and persistence.
fn native_options(args: &WindowOutput, persist: bool) -> anyhow::Result<eframe::NativeOptions> {
    Ok(eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("stickyscope")
            .with_app_id("stickyscope")
            .with_icon(Arc::new(
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
    })
}

/// The settings the window starts with: saved ones (unless this run keeps nothing), then
/// the flags, then what a scenario starts from.
fn starting_settings(
    args: &WindowArgs,
    scenario: Option<&Chosen>,
    persist: bool,
    storage: Option<&dyn eframe::Storage>,
) -> Settings {
    let mut settings: Settings = if persist {
        storage
            .and_then(|s| eframe::get_value(s, STORAGE_KEY))
            .unwrap_or_default()
    } else {
        Settings::default()
    };
    settings.presentation |= args.output.presentation;
    if let Some(on) = args.stickiness {
        settings.sticky = on == OnOff::On;
    }
    if let Some(t) = args.transport {
        settings.transport = t;
    }
    if let Some(chat) = args.chat {
        settings.chat = chat;
    }
    if let Some((_, _, s)) = scenario {
        settings.sticky = s.start.sticky;
        settings.transport = s.start.transport;
        settings.chat = s.start.chat;
        settings.ping_interval_ms = s.stack.heartbeat.interval.as_millis() as u64;
    }
    settings
}

/// Says where the clip and the screenshot went, or why they did not.
fn say_outcomes(
    record: Option<RecordOutcome>,
    shot: Option<ScreenshotOutcome>,
) -> anyhow::Result<()> {
    if let Some(outcome) = record {
        let result = outcome.lock().ok().and_then(|mut o| o.take());
        match result {
            Some(Ok(said)) => println!("{said}"),
            Some(Err(e)) => anyhow::bail!("recording failed: {e}"),
            None => anyhow::bail!("the window closed before the clip was finished"),
        }
    }
    if let Some(outcome) = shot {
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
