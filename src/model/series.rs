//! Plot series from wire records: round trips and long-poll holds per replica (see
//! [`stickyscope_vocab::timing`]: a long poll's time is mostly the server waiting for a packet, so
//! it is kept apart from the round trips), Engine.IO packets per replica per second,
//! failures per second. Ten minutes of history, bounded, for at most
//! [`MAX_REPLICAS`] replicas (a replica silent for the whole window leaves). Latency is kept
//! both as single requests (while they are few enough to draw one by one) and as
//! per-second summaries (what is drawn when they are not), so a busy window stays cheap to
//! draw.
//!
//! Records are stamped when their request started but arrive when it ended, so a long poll
//! arrives after shorter requests that started later: every series is kept in time order
//! whatever order records come in.

use std::collections::{BTreeMap, VecDeque};

use stickyscope_vocab::record::WireRecord;
use stickyscope_vocab::timing::Timing;

/// Seconds of history kept.
pub const WINDOW_SECS: f64 = 600.0;
/// Most single requests kept per replica for the latency plot; beyond this, within the
/// window, the plot shows per-second summaries instead.
pub const MAX_POINTS: usize = 400;
/// Most replicas with series of their own; the one heard from least recently leaves first.
pub const MAX_REPLICAS: usize = 64;

/// One second of one replica's requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySecond {
    /// The second (since the first record).
    pub second: i64,
    /// Requests answered in it.
    pub count: u32,
    /// The slowest, ms.
    pub max_ms: f64,
    /// Their mean, ms.
    pub mean_ms: f64,
}

/// One replica's latency: single requests, and per-second summaries.
#[derive(Debug, Default, Clone)]
pub struct LatencyTrack {
    /// (seconds since start, ms), the newest [`MAX_POINTS`].
    pub points: VecDeque<[f64; 2]>,
    /// Per-second summaries over the whole window.
    pub seconds: VecDeque<LatencySecond>,
    /// Time of the newest point dropped for room (not for age), if any.
    dropped_for_room: Option<f64>,
}

impl LatencyTrack {
    fn record(&mut self, t: f64, ms: f64) {
        let at = self.points.partition_point(|p| p[0] <= t);
        self.points.insert(at, [t, ms]);
        if self.points.len() > MAX_POINTS {
            if let Some(p) = self.points.pop_front() {
                self.dropped_for_room = Some(p[0]);
            }
        }
        let second = t.floor() as i64;
        let at = self.seconds.partition_point(|s| s.second < second);
        match self.seconds.get_mut(at) {
            Some(s) if s.second == second => {
                s.mean_ms = (s.mean_ms * f64::from(s.count) + ms) / f64::from(s.count + 1);
                s.count += 1;
                s.max_ms = s.max_ms.max(ms);
            }
            _ => self.seconds.insert(
                at,
                LatencySecond {
                    second,
                    count: 1,
                    max_ms: ms,
                    mean_ms: ms,
                },
            ),
        }
    }

    /// The newest time it holds.
    fn newest(&self) -> Option<f64> {
        self.points.back().map(|p| p[0])
    }

    /// Whether every request since `oldest` is still kept one by one.
    pub fn complete_since(&self, oldest: f64) -> bool {
        self.dropped_for_room.is_none_or(|t| t < oldest)
    }

    fn prune(&mut self, oldest: f64) {
        while self.points.front().is_some_and(|p| p[0] < oldest) {
            self.points.pop_front();
        }
        let oldest_second = oldest.floor() as i64;
        while self
            .seconds
            .front()
            .is_some_and(|s| s.second < oldest_second)
        {
            self.seconds.pop_front();
        }
    }
}

/// The series.
#[derive(Debug, Default, Clone)]
pub struct Series {
    start_ms: Option<u64>,
    /// Round trips per replica: requests answered at once, and the round-trip part of a
    /// long poll whose server said how long it held it.
    pub latency: BTreeMap<String, LatencyTrack>,
    /// Long polls per replica: how long the server held each until it had a packet to
    /// send (the whole time, when the server does not say).
    pub held: BTreeMap<String, LatencyTrack>,
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

    /// Whether the latency plot can show every request of the window one by one (else it
    /// shows per-second summaries for every replica).
    pub fn latency_is_complete(&self) -> bool {
        let oldest = self.latest - WINDOW_SECS;
        self.latency
            .values()
            .chain(self.held.values())
            .all(|t| t.complete_since(oldest))
    }

    /// Adds a record.
    pub fn record(&mut self, wire: &WireRecord) {
        let start = *self.start_ms.get_or_insert(wire.at_ms);
        let t = wire.at_ms.saturating_sub(start) as f64 / 1000.0;
        self.latest = self.latest.max(t);
        let second = t.floor() as i64;
        if let (Some(replica), Some(timing)) = (&wire.replica, wire.timing()) {
            let ms = |us: u64| us as f64 / 1000.0;
            let (round_trip, held) = match timing {
                Timing::RoundTrip { us } => (Some(us), None),
                Timing::Held {
                    held_us,
                    round_trip_us,
                } => (Some(round_trip_us), Some(held_us)),
                Timing::PollUnsplit { us } => (None, Some(us)),
            };
            if let Some(us) = round_trip {
                self.latency
                    .entry(replica.clone())
                    .or_default()
                    .record(t, ms(us));
            }
            if let Some(us) = held {
                self.held
                    .entry(replica.clone())
                    .or_default()
                    .record(t, ms(us));
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
        for tracks in [&mut self.latency, &mut self.held] {
            for track in tracks.values_mut() {
                track.prune(oldest);
            }
            // Replicas with nothing left in the window leave; beyond the cap, those heard
            // from least recently.
            tracks.retain(|_, t| !t.points.is_empty() || !t.seconds.is_empty());
            while tracks.len() > MAX_REPLICAS {
                let stalest = tracks
                    .iter()
                    .min_by(|a, b| {
                        let (a, b) = (a.1.newest(), b.1.newest());
                        a.unwrap_or(f64::MIN).total_cmp(&b.unwrap_or(f64::MIN))
                    })
                    .map(|(k, _)| k.clone());
                let Some(stalest) = stalest else { break };
                tracks.remove(&stalest);
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
        self.packets.retain(|_, c| !c.is_empty());
        while self.packets.len() > MAX_REPLICAS {
            let stalest = self
                .packets
                .iter()
                .min_by_key(|(_, c)| c.back().map_or(i64::MIN, |b| b.0))
                .map(|(k, _)| k.clone());
            let Some(stalest) = stalest else { break };
            self.packets.remove(&stalest);
        }
    }
}

/// Screen pixels per plotted point: a line gets one point per this many pixel columns, so
/// its points never crowd within a pixel (which would make the plot draw, and pay for, a
/// filled band instead of a line) and a wide window costs no more than a narrow one.
pub const PIXELS_PER_POINT: f32 = 3.0;

/// How many points (or bars) a plot `width` pixels wide gets.
pub fn points_for_width(width: f32) -> usize {
    if width.is_finite() {
        (width / PIXELS_PER_POINT).clamp(20.0, 600.0) as usize
    } else {
        20
    }
}

/// One bar of the failures plot: `seconds` seconds wide, standing for the busiest second in
/// it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureBar {
    /// Its centre (seconds since start).
    pub center: f64,
    /// Seconds it covers.
    pub seconds: u32,
    /// Failures in the busiest second it covers.
    pub peak: u32,
}

/// Per-second failure counts as at most `max_bars` bars: one per second while they fit,
/// else one per run of seconds, each as tall as the busiest second in it (a burst is never
/// averaged away).
pub fn failure_bars(counts: &VecDeque<(i64, u32)>, max_bars: usize) -> Vec<FailureBar> {
    let (Some(first), Some(last)) = (counts.front(), counts.back()) else {
        return Vec::new();
    };
    let span = (last.0 - first.0 + 1).max(1) as u64;
    let seconds = span.div_ceil(max_bars.max(1) as u64).max(1) as i64;
    let mut bars: Vec<FailureBar> = Vec::new();
    for &(second, n) in counts {
        let bin = second.div_euclid(seconds);
        let center = (bin * seconds) as f64 + seconds as f64 / 2.0;
        match bars.last_mut() {
            Some(bar) if bar.center == center => bar.peak = bar.peak.max(n),
            _ => bars.push(FailureBar {
                center,
                seconds: seconds as u32,
                peak: n,
            }),
        }
    }
    bars
}

/// Thins a line to at most `max` points by folding runs of neighbours into one (their mean
/// x, and `fold` of their y: the mean for rates and averages, the max for peaks), so a
/// long window costs no more to draw than the pixels it covers.
pub fn thin(points: &[[f64; 2]], max: usize, fold: Fold) -> Vec<[f64; 2]> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let run = points.len().div_ceil(max);
    points
        .chunks(run)
        .map(|chunk| {
            let n = chunk.len() as f64;
            let x = chunk.iter().map(|p| p[0]).sum::<f64>() / n;
            let y = match fold {
                Fold::Mean => chunk.iter().map(|p| p[1]).sum::<f64>() / n,
                Fold::Max => chunk.iter().map(|p| p[1]).fold(f64::MIN, f64::max),
            };
            [x, y]
        })
        .collect()
}

/// How [`thin`] folds values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Their mean.
    Mean,
    /// The largest.
    Max,
}

/// Adds `n` to `second`'s count, keeping the counts in time order.
fn bump(counts: &mut VecDeque<(i64, u32)>, second: i64, n: u32) {
    let at = counts.partition_point(|(s, _)| *s < second);
    match counts.get_mut(at) {
        Some((s, c)) if *s == second => *c = c.saturating_add(n),
        _ => counts.insert(at, (second, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flights::tests::sample_wire as long_poll;

    /// A poll that found a packet waiting: its time is a round trip.
    fn sample_wire() -> WireRecord {
        let mut w = long_poll();
        w.held_us = Some(0);
        w
    }

    #[test]
    fn long_polls_hold_apart_from_round_trips() {
        let mut s = Series::default();
        let mut held = long_poll();
        held.latency_us = Some(3_001_500);
        held.held_us = Some(3_000_000);
        s.record(&held);
        assert_eq!(s.held["1"].points[0][1], 3_000.0, "the hold");
        assert_eq!(s.latency["1"].points[0][1], 1.5, "the round trip");

        let mut s = Series::default();
        let mut unsplit = long_poll();
        unsplit.latency_us = Some(3_001_500);
        s.record(&unsplit);
        assert_eq!(s.held["1"].points[0][1], 3_001.5);
        assert!(s.latency.is_empty(), "not split, so not a round trip");

        let mut s = Series::default();
        let mut post = long_poll();
        post.kind = stickyscope_vocab::record::WireKind::Http {
            request: stickyscope_contract::RequestKind::PollPost,
            method: "POST".into(),
            status: Some(200),
        };
        post.held_us = Some(2_000_000);
        s.record(&post);
        assert_eq!(s.latency["1"].points[0][1], 1.5, "a POST is a round trip");
        assert!(s.held.is_empty());
    }

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
        assert_eq!(s.latency["1"].points.len(), 1);
        assert_eq!(s.latency["1"].seconds.len(), 1);
        w.failure = Some(stickyscope_vocab::record::Failure {
            kind: stickyscope_vocab::record::FailureKind::Timeout,
            reason: "t".into(),
        });
        s.record(&w);
        assert_eq!(s.failures.back(), Some(&(700, 1)));
    }

    #[test]
    fn records_arriving_out_of_order_are_kept_in_time_order() {
        let mut s = Series::default();
        let mut w = sample_wire();
        // A long poll that started at 1.0 s ends (and arrives) after requests that started
        // at 2.5 s and 3.2 s.
        for (ms, latency_ms) in [(0u64, 1u64), (2_500, 2), (3_200, 3), (1_000, 3_000)] {
            w.at_ms = 1_000 + ms;
            w.latency_us = Some(latency_ms * 1_000);
            s.record(&w);
        }
        let xs: Vec<f64> = s.latency["1"].points.iter().map(|p| p[0]).collect();
        assert_eq!(xs, [0.0, 1.0, 2.5, 3.2], "no zig-zag");
        let seconds: Vec<i64> = s.latency["1"].seconds.iter().map(|x| x.second).collect();
        assert_eq!(seconds, [0, 1, 2, 3]);
        let packets: Vec<(i64, u32)> = s.packets["1"].iter().copied().collect();
        assert_eq!(
            packets,
            [(0, 1), (1, 1), (2, 1), (3, 1)],
            "the late second is counted"
        );
    }

    #[test]
    fn replicas_leave_the_series_when_silent_for_the_window_and_beyond_the_cap() {
        let mut s = Series::default();
        let mut w = sample_wire();
        for i in 0..(MAX_REPLICAS + 5) {
            w.replica = Some(format!("r{i}"));
            w.at_ms = 1_000 + i as u64;
            s.record(&w);
        }
        assert_eq!(s.latency.len(), MAX_REPLICAS);
        assert_eq!(s.packets.len(), MAX_REPLICAS);
        assert!(!s.latency.contains_key("r0"), "the stalest left");
        w.replica = Some("late".into());
        w.at_ms += 700_000;
        s.record(&w);
        assert_eq!(s.latency.keys().collect::<Vec<_>>(), ["late"]);
        assert_eq!(s.packets.len(), 1);
    }

    #[test]
    fn thinning_keeps_short_lines_and_folds_long_ones() {
        let short = [[0.0, 1.0], [1.0, 2.0]];
        assert_eq!(thin(&short, 300, Fold::Mean), short);
        let long: Vec<[f64; 2]> = (0..600)
            .map(|i| [i as f64, (i % 2) as f64 * 10.0])
            .collect();
        let mean = thin(&long, 300, Fold::Mean);
        assert_eq!(mean.len(), 300);
        assert_eq!(mean[0], [0.5, 5.0]);
        let peak = thin(&long, 300, Fold::Max);
        assert!(peak.iter().all(|p| p[1] == 10.0), "no peak is lost");
        assert_eq!(thin(&long, 7, Fold::Mean).len(), 7);
    }

    #[test]
    fn plots_get_a_point_every_few_pixels() {
        assert_eq!(points_for_width(480.0), 160);
        assert_eq!(points_for_width(10.0), 20, "never fewer than 20");
        assert_eq!(points_for_width(f32::NAN), 20);
        assert_eq!(points_for_width(1e9), 600);
    }

    #[test]
    fn failure_bars_keep_each_second_while_they_fit_and_peaks_beyond() {
        let counts: VecDeque<(i64, u32)> = [(10, 1), (11, 4), (30, 2)].into_iter().collect();
        let bars = failure_bars(&counts, 100);
        assert_eq!(bars.len(), 3);
        assert_eq!(
            bars[1],
            FailureBar {
                center: 11.5,
                seconds: 1,
                peak: 4
            }
        );
        // 600 seconds of failures into at most 100 bars: 6 seconds each, the peak kept.
        let busy: VecDeque<(i64, u32)> = (0..600).map(|s| (s, (s % 7) as u32)).collect();
        let bars = failure_bars(&busy, 100);
        assert_eq!(bars.len(), 100);
        assert!(bars.iter().all(|b| b.seconds == 6));
        assert_eq!(bars[0].center, 3.0);
        assert_eq!(bars[0].peak, 5, "seconds 0..6 peak at 5");
        assert_eq!(bars.iter().map(|b| b.peak).max(), Some(6));
        assert!(failure_bars(&VecDeque::new(), 100).is_empty());
    }

    #[test]
    fn many_requests_fold_into_per_second_summaries() {
        let mut s = Series::default();
        let mut w = sample_wire();
        for i in 0..(MAX_POINTS as u64 * 3) {
            w.at_ms = 1_000 + i * 10;
            w.latency_us = Some(1_000 + (i % 10) * 1_000);
            s.record(&w);
        }
        assert!(!s.latency_is_complete(), "too many to draw one by one");
        let track = &s.latency["1"];
        assert_eq!(track.points.len(), MAX_POINTS);
        let first = track.seconds[0];
        assert_eq!(first.count, 100, "100 requests a second");
        assert_eq!(first.max_ms, 10.0);
        assert!((first.mean_ms - 5.5).abs() < 1e-9);
        // Ten minutes later the dropped points are out of the window: complete again.
        w.at_ms += 700_000;
        s.record(&w);
        assert!(s.latency_is_complete());
    }
}
