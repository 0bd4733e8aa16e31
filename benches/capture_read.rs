//! Reading a large capture: `stickyscope inspect`'s path (the capture read as a stream and
//! folded into probe's tally) over a capture of about 1 GB, made here from a real probe's
//! records repeated (`--size-mb N` to change it). Prints the time, the rate, and this
//! process's peak resident memory before and after (VmHWM), to show the file is never held
//! whole.
//!
//! `cargo bench --bench capture_read [-- --size-mb 1000]`

mod common;

use std::io::Write;
use std::time::Instant;

use common::peak_mib;

use stickyscope::capture::{self, CaptureWriter};
use stickyscope::probe::Tally;
use stickyscope_contract::RequestKind;
use stickyscope_vocab::capture::{CaptureHeader, Happened, FORMAT_VERSION};
use stickyscope_vocab::events::{Event, TransportChoice};
use stickyscope_vocab::protocol::decode_payload;
use stickyscope_vocab::record::{Transport, WireKind, WireRecord};

fn record(user: &str, seq: u64, replica: &str) -> WireRecord {
    WireRecord {
        seq,
        sid: Some("k-DmaXLjjfiGPctG".into()),
        engineio: Some(4),
        replica: Some(replica.into()),
        latency_us: Some(2_997_000),
        bytes_down: 1,
        packets_down: decode_payload(b"2"),
        raw_down: "2".into(),
        ..WireRecord::new(
            user,
            1_764_000_000_000 + seq * 10,
            Transport::Polling,
            WireKind::Http {
                request: RequestKind::PollGet,
                method: "GET".into(),
                status: Some(200),
            },
        )
    }
}

fn main() -> anyhow::Result<()> {
    let size_mb: u64 = std::env::args()
        .skip_while(|a| a != "--size-mb")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let path =
        std::env::temp_dir().join(format!("stickyscope-bench-{}.capture", std::process::id()));
    let sessions: Vec<String> = (1..=100).map(|i| format!("probe-{i}")).collect();
    let header = CaptureHeader {
        stickyscope_capture: FORMAT_VERSION,
        source: "probe".into(),
        stickyscope: env!("CARGO_PKG_VERSION").into(),
        started_ms: 1_764_000_000_000,
        gateway: "http://127.0.0.1:8000".into(),
        stack: "bench".into(),
        transport: TransportChoice::Polling,
        sticky: true,
        sessions: sessions.clone(),
    };
    let made = Instant::now();
    let mut writer = CaptureWriter::create(&path, &header, u64::MAX)?;
    let target = size_mb * 1_000_000;
    let mut seq = 0u64;
    let mut bytes = 0u64;
    while bytes < target {
        seq += 1;
        let user = &sessions[(seq % 100) as usize];
        let replica = ["1", "2", "3"][(seq % 3) as usize];
        writer.add(
            seq as f64 * 0.01,
            Happened::Wire(Box::new(record(user, seq, replica))),
        )?;
        if seq.is_multiple_of(10_000) {
            bytes = std::fs::metadata(&path)?.len();
        }
    }
    let written = writer.finish(seq as f64 * 0.01)?;
    println!(
        "made a capture of {:.0} MB ({seq} records) in {:.1} s",
        written.bytes as f64 / 1e6,
        made.elapsed().as_secs_f64()
    );
    std::io::stdout().flush()?;

    let before = peak_mib();
    let started = Instant::now();
    let reader = capture::open(&path)?;
    let mut tally = Tally::new(&reader.header.sessions.clone());
    let mut lines = 0u64;
    for line in reader {
        let line = line?;
        lines += 1;
        if let Happened::Wire(wire) = line.happened {
            tally.fold(line.at_s, &Event::Wire(std::sync::Arc::from(wire)));
        }
    }
    let report = tally.finish((
        "http://127.0.0.1:8000",
        TransportChoice::Polling,
        true,
        seq as f64 * 0.01,
    ));
    let took = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    println!(
        "inspect's read of {:.0} MB: {lines} lines in {took:.1} s ({:.0} MB/s, {:.0} lines/s); peak memory {before:.0} MiB before reading, {:.0} MiB after; {} replicas counted",
        written.bytes as f64 / 1e6,
        written.bytes as f64 / 1e6 / took,
        lines as f64 / took,
        peak_mib(),
        report.replicas.len()
    );
    Ok(())
}
