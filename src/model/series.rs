//! Plot series from wire records: latency per replica, Engine.IO packets per replica per
//! second, failures per second. Ten minutes of history, bounded.

use std::collections::{BTreeMap, VecDeque};

use crate::wire::WireEvent;

/// Seconds of history kept.
pub const WINDOW_SECS: f64 = 600.0;
/// Most latency points kept per replica.
pub const MAX_POINTS: usize = 50_000;

/// The series.
#[derive(Debug, Default)]
pub struct Series {
    start_ms: Option<u64>,
    /// (seconds since start, milliseconds) per replica.
    pub latency: BTreeMap<String, VecDeque<[f64; 2]>>,
    /// (second, packets) per replica.
    pub packets: BTreeMap<String, VecDeque<(i64, u32)>>,
    /// (second, failures).
    pub failures: VecDeque<(i64, u32)>,
    latest: f64,
}

impl Series {
    /// Seconds since the first record, for a record's time.
    pub fn t(&self, at_ms: u64) -> f64 {
        self.start_ms
            .map(|s| at_ms.saturating_sub(s) as f64 / 1000.0)
            .unwrap_or(0.0)
    }

    /// The newest time recorded.
    pub fn latest(&self) -> f64 {
        self.latest
    }

    /// Adds a record.
    pub fn record(&mut self, wire: &WireEvent) {
        let start = *self.start_ms.get_or_insert(wire.at_ms);
        let t = wire.at_ms.saturating_sub(start) as f64 / 1000.0;
        self.latest = self.latest.max(t);
        let second = t.floor() as i64;
        if let (Some(replica), Some(us)) = (&wire.replica, wire.latency_us) {
            let points = self.latency.entry(replica.clone()).or_default();
            points.push_back([t, us as f64 / 1000.0]);
            if points.len() > MAX_POINTS {
                points.pop_front();
            }
        }
        if let Some(replica) = &wire.replica {
            let n = (wire.packets_up.len() + wire.packets_down.len()) as u32;
            bump(self.packets.entry(replica.clone()).or_default(), second, n);
        }
        if wire.failure.is_some() {
            bump(&mut self.failures, second, 1);
        }
        self.prune();
    }

    fn prune(&mut self) {
        let oldest = self.latest - WINDOW_SECS;
        for points in self.latency.values_mut() {
            while points.front().is_some_and(|p| p[0] < oldest) {
                points.pop_front();
            }
        }
        let oldest_second = oldest.floor() as i64;
        for counts in self.packets.values_mut() {
            while counts.front().is_some_and(|c| c.0 < oldest_second) {
                counts.pop_front();
            }
        }
        while self.failures.front().is_some_and(|c| c.0 < oldest_second) {
            self.failures.pop_front();
        }
    }
}

fn bump(counts: &mut VecDeque<(i64, u32)>, second: i64, n: u32) {
    match counts.back_mut() {
        Some((s, c)) if *s == second => *c += n,
        Some((s, _)) if *s > second => {
            if let Some(slot) = counts.iter_mut().rev().find(|(s, _)| *s == second) {
                slot.1 += n;
            }
        }
        _ => counts.push_back((second, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flights::tests::sample_wire;

    #[test]
    fn counts_per_second_and_keeps_ten_minutes() {
        let mut s = Series::default();
        let mut w = sample_wire();
        for ms in [0u64, 200, 1_100, 700_000] {
            w.at_ms = 1_000 + ms;
            s.record(&w);
        }
        let counts: Vec<(i64, u32)> = s.packets["1"].iter().copied().collect();
        assert_eq!(counts, [(700, 1)], "older than ten minutes is gone");
        assert_eq!(s.latency["1"].len(), 1);
        w.failure = Some(crate::wire::Failure {
            kind: crate::wire::FailureKind::Timeout,
            reason: "t".into(),
        });
        s.record(&w);
        assert_eq!(s.failures.back(), Some(&(700, 1)));
    }
}
