//! What the benchmarks share: an embedded stack, percentiles, a one-line report, and what a
//! process costs (CPU, resident and peak memory).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use stickyscope::stack::embedded::{EmbeddedConfig, EmbeddedStack};
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::stack::Adapter;

/// An embedded stack of `replicas` on a free port, default heartbeat.
pub async fn stack(
    replicas: usize,
    health_interval: Duration,
) -> anyhow::Result<Arc<EmbeddedStack>> {
    Ok(EmbeddedStack::start(EmbeddedConfig {
        replicas,
        listen: "127.0.0.1:0".parse()?,
        heartbeat: Heartbeat::default(),
        adapter: Adapter::Memory,
        redis_url: None,
        health_interval,
        ..Default::default()
    })
    .await?)
}

/// The `p`-th percentile (0..=100) of sorted `values`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Microseconds, for printing.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU seconds this process used so far (user + system, every thread).
/// CPU time the calling thread has used (not wall time: time the host gave to other work
/// is not counted).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_THREAD_CPUTIME_ID is a clock every
    // Linux supports; clock_gettime writes only into `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

pub fn process_cpu() -> f64 {
    cpu_seconds_of("self")
}

/// CPU seconds a process (`self` or a pid) used so far (user + system, every thread).
pub fn cpu_seconds_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's peak resident memory, in MiB (Linux's VmHWM).
pub fn peak_mib() -> f64 {
    peak_mib_of("self")
}

/// A process's (`self` or a pid) peak resident memory, in MiB (Linux's VmHWM).
pub fn peak_mib_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resident memory of a process, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
