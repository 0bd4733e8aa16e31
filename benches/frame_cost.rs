//! App frame cost and memory: the real window (`StickyscopeApp`, every panel) driven headless
//! by egui_kittest, fed by a detached bridge instead of a conductor: a topology of 12 replicas,
//! a crowd of 200 sessions, 2,000 wire records a second (polls, posts, pings, pongs, chat
//! messages and refusals, spread over the replicas), after 10 minutes of plot history. Each
//! frame is timed from the start of `step` (draining events, folding them, laying out every
//! panel) to the end of tessellation, i.e. all the CPU work of a frame but the GPU driver's,
//! both as the CPU time of the thread (what the target is about; time the host gave to other
//! work does not count) and as wall time.
//!
//! `cargo bench --bench frame_cost` times frames (plots tab, then packet-log tab);
//! `STICKYSCOPE_BENCH_CROWD=10000` makes the crowd that large (its summary, and the users
//! the crowd's share of the records is spread over).
//! `cargo bench --bench frame_cost -- --memory MINUTES` runs in real time at 2,000 records a
//! second and 30 frames a second, printing the resident memory every minute.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{ms, percentile, process_cpu, rss_bytes, thread_cpu};
use eframe::egui;
use egui_kittest::Harness;
use stickyscope::ui::bridge::{ConductorBridge, DetachedConductor};
use stickyscope::ui::settings::{BottomTab, Settings};
use stickyscope::ui::StickyscopeApp;
use stickyscope_contract::RequestKind;
use stickyscope_vocab::events::SessionState;
use stickyscope_vocab::events::{CrowdSummary, Event};
use stickyscope_vocab::protocol::decode_payload;
use stickyscope_vocab::record::{Direction, Failure, FailureKind, Transport, WireKind, WireRecord};
use stickyscope_vocab::topology::{ReplicaNode, Topology};

const REPLICAS: usize = 12;
/// The crowd's size: 200, or `STICKYSCOPE_BENCH_CROWD`.
fn crowd_size() -> usize {
    std::env::var("STICKYSCOPE_BENCH_CROWD")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}
const RECORDS_PER_SEC: u64 = 2000;
const FPS: u64 = 30;
const HISTORY_SECS: u64 = 600;

/// Generates a believable mix of wire records on a synthetic clock.
struct Feed {
    seq: u64,
    at_ms: u64,
    crowd: u64,
}

impl Feed {
    fn record(&mut self) -> WireRecord {
        self.seq += 1;
        let n = self.seq;
        let replica = (n % REPLICAS as u64 + 1).to_string();
        let user = match n % 5 {
            0 => "agent".to_owned(),
            1 => "visitor".to_owned(),
            k => format!("crowd-{}", (n / 5 + k) % self.crowd),
        };
        let (kind, up, down, failure, transport) = match n % 10 {
            0..=3 => (
                WireKind::Http {
                    request: RequestKind::PollGet,
                    method: "GET".into(),
                    status: Some(200),
                },
                "",
                "2",
                None,
                Transport::Polling,
            ),
            4..=6 => (
                WireKind::Http {
                    request: RequestKind::PollPost,
                    method: "POST".into(),
                    status: Some(200),
                },
                "3",
                "",
                None,
                Transport::Polling,
            ),
            7 | 8 => (
                WireKind::Ws {
                    direction: if n.is_multiple_of(2) {
                        Direction::Up
                    } else {
                        Direction::Down
                    },
                },
                r#"42["chat",{"id":"m1","from":"agent","text":"hello from the benchmark"}]"#,
                "",
                None,
                Transport::Websocket,
            ),
            _ => (
                WireKind::Http {
                    request: RequestKind::PollGet,
                    method: "GET".into(),
                    status: Some(400),
                },
                "",
                r#"{"code":1,"message":"Session ID unknown"}"#,
                Some(Failure {
                    kind: FailureKind::Refused,
                    reason: "Session ID unknown".into(),
                }),
                Transport::Polling,
            ),
        };
        WireRecord {
            seq: n,
            sid: Some(format!("sid{}", n % 400)),
            engineio: Some(4),
            replica: Some(replica.clone()),
            replica_addr: Some(format!("127.0.0.1:{}", 5000 + n % REPLICAS as u64)),
            latency_us: Some(300 + (n * 7919) % 3000),
            bytes_up: up.len() as u64,
            bytes_down: down.len() as u64,
            packets_up: decode_payload(up.as_bytes()),
            packets_down: if failure.is_some() {
                Vec::new()
            } else {
                decode_payload(down.as_bytes())
            },
            raw_up: up.to_owned(),
            raw_down: down.to_owned(),
            failure,
            ..WireRecord::new(user, self.at_ms, transport, kind)
        }
    }

    /// One frame's worth of records, `ms` of synthetic time.
    fn frame(&mut self, ms: u64) -> Vec<Event> {
        let count = RECORDS_PER_SEC * ms / 1000;
        let step = ms as f64 / count.max(1) as f64;
        let start = self.at_ms;
        let records = (0..count)
            .map(|i| {
                self.at_ms = start + (i as f64 * step) as u64;
                Event::Wire(std::sync::Arc::new(self.record()))
            })
            .collect();
        self.at_ms = start + ms;
        records
    }
}

fn scene() -> Vec<Event> {
    let topology = Topology {
        hops: vec!["balancer".into()],
        replicas: (1..=REPLICAS)
            .map(|i| ReplicaNode {
                listed: true,
                id: Some(i.to_string()),
                url: Some(format!("http://127.0.0.1:{}", 5000 + i)),
                up: i != 4,
            })
            .collect(),
        sticky_cookie: Some("sticky_replica".into()),
    };
    let size = crowd_size();
    let crowd = CrowdSummary {
        size,
        per_replica: (1..=REPLICAS)
            .map(|i| (i.to_string(), size / REPLICAS))
            .collect::<BTreeMap<_, _>>(),
        connecting: size % REPLICAS,
        failures: 12,
        ..CrowdSummary::default()
    };
    let mut events = vec![Event::Topology(topology), Event::Crowd(crowd)];
    for (user, replica) in [("agent", "1"), ("visitor", "7")] {
        events.push(Event::Session {
            user: user.into(),
            state: SessionState::Connected {
                replica: Some(replica.into()),
                sid: "s".into(),
                websocket: false,
            },
        });
    }
    events
}

fn harness(tab: BottomTab) -> (Harness<'static, StickyscopeApp>, DetachedConductor) {
    let (bridge, conductor) = ConductorBridge::detached("http://127.0.0.1:8000", 1 << 20);
    let settings = Settings {
        tab,
        ..Settings::default()
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .build_eframe(move |cc| StickyscopeApp::with_bridge(&cc.egui_ctx, settings, bridge, true));
    harness.step();
    (harness, conductor)
}

fn feed(conductor: &DetachedConductor, events: Vec<Event>) {
    for event in events {
        if conductor.events.try_send(event).is_err() {
            panic!("the window's event stream is full");
        }
    }
}

/// What one frame cost.
struct FrameCost {
    /// CPU time of this thread.
    cpu: Duration,
    /// Wall time.
    wall: Duration,
}

/// One frame: step (drain, fold, lay out) and tessellate; returns what it cost. The harness
/// only lends its output, so the shapes are cloned for tessellation; the clone is not timed
/// (eframe hands them over without one).
fn frame(harness: &mut Harness<'static, StickyscopeApp>) -> FrameCost {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    harness.step();
    let stepped = FrameCost {
        cpu: thread_cpu() - cpu,
        wall: wall.elapsed(),
    };
    let shapes = harness.output().shapes.clone();
    let ppp = harness.ctx.pixels_per_point();
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let primitives = harness.ctx.tessellate(shapes, ppp);
    let tessellated = FrameCost {
        cpu: thread_cpu() - cpu,
        wall: wall.elapsed(),
    };
    std::hint::black_box(primitives);
    FrameCost {
        cpu: stepped.cpu + tessellated.cpu,
        wall: stepped.wall + tessellated.wall,
    }
}

/// 10 minutes of history, folded in big gulps (not timed).
fn prefill(
    harness: &mut Harness<'static, StickyscopeApp>,
    conductor: &DetachedConductor,
    feed_: &mut Feed,
) {
    feed(conductor, scene());
    let gulp_ms = 5_000;
    for _ in 0..(HISTORY_SECS * 1000 / gulp_ms) {
        feed(conductor, feed_.frame(gulp_ms));
        harness.step();
    }
}

fn time_frames(tab: BottomTab, frames: usize) {
    let (mut harness, conductor) = harness(tab);
    let mut records = Feed {
        crowd: crowd_size() as u64,
        seq: 0,
        at_ms: 1_000_000,
    };
    prefill(&mut harness, &conductor, &mut records);
    let frame_ms = 1000 / FPS;
    let mut cpu_times = Vec::with_capacity(frames);
    let mut wall_times = Vec::with_capacity(frames);
    let cpu_before = process_cpu();
    for _ in 0..frames {
        feed(&conductor, records.frame(frame_ms));
        let cost = frame(&mut harness);
        if std::env::var_os("FRAMEDBG").is_some() && cost.cpu > Duration::from_millis(4) {
            eprintln!("FRAME {:?}", cost.cpu);
        }
        cpu_times.push(cost.cpu);
        wall_times.push(cost.wall);
    }
    let cpu = process_cpu() - cpu_before;
    cpu_times.sort();
    wall_times.sort();
    println!(
        "frame cost, {tab:?} tab ({frames} frames, {REPLICAS} replicas, crowd {}, {RECORDS_PER_SEC} records/s, {} min history): CPU median {:.2} ms, p99 {:.2} ms (target ≤ 4), max {:.2} ms · wall median {:.2} ms, p99 {:.2} ms · process CPU {:.2} ms per frame (with the untimed shape clone)",
        crowd_size(),
        HISTORY_SECS / 60,
        ms(percentile(&cpu_times, 50.0)),
        ms(percentile(&cpu_times, 99.0)),
        ms(*cpu_times.last().unwrap_or(&Duration::ZERO)),
        ms(percentile(&wall_times, 50.0)),
        ms(percentile(&wall_times, 99.0)),
        cpu * 1000.0 / frames as f64,
    );
}

fn memory(minutes: u64) {
    let (mut harness, conductor) = harness(BottomTab::Plots);
    let mut records = Feed {
        crowd: crowd_size() as u64,
        seq: 0,
        at_ms: 1_000_000,
    };
    feed(&conductor, scene());
    let pid = std::process::id();
    println!("memory: start RSS {:.1} MB", rss_bytes(pid) as f64 / 1e6);
    let frame_time = Duration::from_millis(1000 / FPS);
    let started = Instant::now();
    let mut next_frame = started;
    let mut minute = 0;
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        feed(&conductor, records.frame(1000 / FPS));
        frame(&mut harness);
        next_frame += frame_time;
        if let Some(wait) = next_frame.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let elapsed_min = started.elapsed().as_secs() / 60;
        if elapsed_min > minute {
            minute = elapsed_min;
            println!(
                "memory: after {minute} min at {RECORDS_PER_SEC} records/s: RSS {:.1} MB",
                rss_bytes(pid) as f64 / 1e6
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--memory") {
        let minutes = args.get(i + 1).and_then(|m| m.parse().ok()).unwrap_or(10);
        memory(minutes);
        return;
    }
    let frames = std::env::var("STICKYSCOPE_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let tabs = match args
        .iter()
        .position(|a| a == "--tab")
        .and_then(|i| args.get(i + 1))
    {
        Some(t) if t == "log" => vec![BottomTab::Log],
        Some(t) if t == "plots" => vec![BottomTab::Plots],
        _ => vec![BottomTab::Plots, BottomTab::Log],
    };
    for tab in tabs {
        time_frames(tab, frames);
    }
}
