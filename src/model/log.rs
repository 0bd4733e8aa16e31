//! The packet log: the last wire records, bounded, with filters. Each record has a log id
//! (its position among every record ever pushed), so a selection or a filtered view stays on
//! the same record while older ones are forgotten; [`Matches`] keeps a filtered view up to
//! date by looking only at records pushed since its last update.

use std::collections::VecDeque;
use std::sync::Arc;

use stickyscope_vocab::record::{Direction, WireKind, WireRecord};

use super::shared_deque::SharedDeque;

/// Most records kept.
pub const MAX_RECORDS: usize = 20_000;

/// Filters of the packet log (empty means any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// User name.
    pub user: Option<String>,
    /// Text that must appear in the kind (request kind or packet names).
    pub kind: String,
    /// Replica id.
    pub replica: Option<String>,
    /// Only failures.
    pub failures_only: bool,
}

/// The log. Records are shared, in chunks copies share too, so a copy of the log (the
/// timeline keeps some) costs a pointer per few hundred records.
#[derive(Debug, Default, Clone)]
pub struct PacketLog {
    records: SharedDeque<Arc<WireRecord>>,
    total: u64,
}

impl PacketLog {
    /// Adds a record, forgetting the oldest beyond [`MAX_RECORDS`].
    pub fn push(&mut self, record: impl Into<Arc<WireRecord>>) {
        self.records.push_back(record.into());
        self.total += 1;
        while self.records.len() > MAX_RECORDS {
            self.records.pop_front();
        }
    }

    /// The records, in chunks, to be let go of piecemeal (see [`SharedDeque::into_chunks`]).
    pub fn into_chunks(self) -> VecDeque<Arc<Vec<Arc<WireRecord>>>> {
        self.records.into_chunks()
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records ever seen.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// All kept records, oldest first.
    pub fn records(&self) -> impl DoubleEndedIterator<Item = &WireRecord> + ExactSizeIterator {
        self.records.iter().map(|r| &**r)
    }

    /// Log id of the oldest record kept (ids count every record ever pushed, from 0).
    pub fn first_id(&self) -> u64 {
        self.total - self.records.len() as u64
    }

    /// The record with log id `id`, while kept.
    pub fn get(&self, id: u64) -> Option<&WireRecord> {
        let index = id.checked_sub(self.first_id())?;
        self.records.get(usize::try_from(index).ok()?).map(|r| &**r)
    }

    /// Log ids of the kept records matching `filter`, oldest first.
    pub fn matching(&self, filter: &LogFilter) -> Vec<u64> {
        let mut matches = Matches::default();
        matches.update(self, filter);
        matches.ids.into()
    }

    /// Kept records from log id `from` on, with their ids.
    fn since_id(&self, from: u64) -> impl Iterator<Item = (u64, &WireRecord)> {
        let first = self.first_id();
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        self.records
            .iter()
            .enumerate()
            .skip(skip)
            .map(move |(i, r)| (first + i as u64, &**r))
    }
}

impl LogFilter {
    /// Whether `record` passes. `kind` is the filter's kind text, lowercased.
    fn passes(&self, record: &WireRecord, kind: &str) -> bool {
        self.user.as_ref().is_none_or(|u| &record.user == u)
            && self
                .replica
                .as_ref()
                .is_none_or(|id| record.replica.as_deref() == Some(id.as_str()))
            && (!self.failures_only || record.failure.is_some())
            && (kind.is_empty() || kind_text(record).contains(kind))
    }
}

/// The log ids matching a filter, kept up to date: an update looks only at the records
/// pushed since the last one (or at all of them when the filter changed), so a window showing
/// a filtered log of thousands of records pays per frame only for what arrived.
#[derive(Debug, Default)]
pub struct Matches {
    filter: Option<LogFilter>,
    /// Next log id to look at.
    next_id: u64,
    ids: VecDeque<u64>,
}

impl Matches {
    /// Brings the matches up to date with `log` under `filter`; returns them, oldest first.
    pub fn update(&mut self, log: &PacketLog, filter: &LogFilter) -> &VecDeque<u64> {
        // A new filter, or another log (fewer records ever than already looked at): start over.
        if self.filter.as_ref() != Some(filter) || log.total() < self.next_id {
            self.filter = Some(filter.clone());
            self.next_id = 0;
            self.ids.clear();
        }
        let first = log.first_id();
        while self.ids.front().is_some_and(|&id| id < first) {
            self.ids.pop_front();
        }
        let kind = filter.kind.to_lowercase();
        for (id, record) in log.since_id(self.next_id) {
            if filter.passes(record, &kind) {
                self.ids.push_back(id);
            }
        }
        self.next_id = log.total();
        &self.ids
    }
}

/// What a record is, in words: request kind and packet names.
pub fn kind_text(r: &WireRecord) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(kind) = r.request_kind() {
        parts.push(kind.as_str().replace('_', " "));
    } else {
        parts.push("ws".into());
    }
    for p in r.packets() {
        parts.push(super::flights::packet_label(p));
    }
    parts.join(" ").to_lowercase()
}

/// One row of the packet log: number, user, method and status, replica, what it carried,
/// what its time was spent on (a round trip, or a long poll's hold), and why it failed.
pub fn row_text(r: &WireRecord) -> String {
    let what = match &r.kind {
        WireKind::Http { method, status, .. } => format!(
            "{method:<4} {}",
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "---".into())
        ),
        WireKind::Ws {
            direction: Direction::Up,
        } => "ws up   ".into(),
        WireKind::Ws {
            direction: Direction::Down,
        } => "ws down ".into(),
    };
    let failure = r
        .failure
        .as_ref()
        .map(|f| format!("  FAILED: {}", f.reason))
        .unwrap_or_default();
    let timing = r
        .timing()
        .filter(|_| r.failure.is_none())
        .map(|t| format!("  ({})", t.short()))
        .unwrap_or_default();
    format!(
        "#{:<5} {:<8} {what} replica {:<3} {}{timing}{failure}",
        r.seq,
        r.user,
        r.replica.as_deref().unwrap_or("-"),
        kind_text(r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flights::tests::sample_wire;

    #[test]
    fn a_row_says_whether_its_time_was_a_round_trip_or_a_hold() {
        let mut held = sample_wire();
        held.latency_us = Some(3_001_300);
        held.held_us = Some(2_999_900);
        let row = row_text(&held);
        assert!(
            row.contains("held 2999 ms until the next packet + 1.4 ms"),
            "{row}"
        );
        held.held_us = None;
        let row = row_text(&held);
        assert!(
            row.contains("long poll 3001 ms, held until the next packet"),
            "{row}"
        );
        held.held_us = Some(200);
        assert!(row_text(&held).contains("(3001 ms)"), "{}", row_text(&held));
    }

    #[test]
    fn filters_by_user_replica_kind_and_failure() {
        let mut log = PacketLog::default();
        let mut a = sample_wire();
        a.replica = Some("1".into());
        let mut b = sample_wire();
        b.user = "visitor".into();
        b.replica = Some("2".into());
        b.failure = Some(stickyscope_vocab::record::Failure {
            kind: stickyscope_vocab::record::FailureKind::Refused,
            reason: "Session ID unknown".into(),
        });
        log.push(a);
        log.push(b);
        assert_eq!(log.matching(&LogFilter::default()), [0, 1]);
        let by_user = LogFilter {
            user: Some("visitor".into()),
            ..Default::default()
        };
        assert_eq!(log.matching(&by_user), [1]);
        let by_replica = LogFilter {
            replica: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(log.matching(&by_replica), [0]);
        let failures = LogFilter {
            failures_only: true,
            ..Default::default()
        };
        assert_eq!(log.matching(&failures), [1]);
        let by_kind = LogFilter {
            kind: "ping".into(),
            ..Default::default()
        };
        assert_eq!(log.matching(&by_kind), [0, 1]);
    }

    #[test]
    fn ids_and_matches_follow_records_as_old_ones_are_forgotten() {
        let mut log = PacketLog::default();
        let visitor = |n: u64| {
            let mut w = sample_wire();
            w.user = if n.is_multiple_of(2) {
                "visitor"
            } else {
                "agent"
            }
            .into();
            w.seq = n;
            w
        };
        let filter = LogFilter {
            user: Some("visitor".into()),
            ..Default::default()
        };
        let mut matches = Matches::default();
        for n in 0..10 {
            log.push(visitor(n));
        }
        assert_eq!(matches.update(&log, &filter).len(), 5);
        // Push past the bound: the first ids are forgotten, the rest keep their records.
        for n in 10..(MAX_RECORDS as u64 + 10) {
            log.push(visitor(n));
        }
        assert_eq!(log.first_id(), 10);
        assert!(log.get(9).is_none());
        assert_eq!(log.get(10).map(|r| r.seq), Some(10));
        let ids: Vec<u64> = matches.update(&log, &filter).iter().copied().collect();
        assert_eq!(ids.len(), MAX_RECORDS / 2);
        assert_eq!(ids.first(), Some(&10));
        assert!(ids
            .iter()
            .all(|&id| log.get(id).is_some_and(|r| r.user == "visitor")));
        assert_eq!(
            ids,
            log.matching(&filter),
            "incremental equals from scratch"
        );
        // A new filter starts over.
        let agent = LogFilter {
            user: Some("agent".into()),
            ..Default::default()
        };
        assert_eq!(matches.update(&log, &agent).front(), Some(&11));
        // Another, younger log: the matches are its own.
        let mut young = PacketLog::default();
        young.push(visitor(1));
        assert_eq!(
            matches.update(&young, &agent).iter().collect::<Vec<_>>(),
            [&0]
        );
    }

    #[test]
    fn stays_bounded() {
        let mut log = PacketLog::default();
        for _ in 0..MAX_RECORDS + 5 {
            log.push(sample_wire());
        }
        assert_eq!(log.len(), MAX_RECORDS);
        assert_eq!(log.total(), (MAX_RECORDS + 5) as u64);
    }
}
