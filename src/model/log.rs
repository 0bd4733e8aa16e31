//! The packet log: the last wire records, bounded, with filters.

use std::collections::VecDeque;

use crate::wire::WireEvent;

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

/// The log.
#[derive(Debug, Default)]
pub struct PacketLog {
    records: VecDeque<WireEvent>,
    total: u64,
}

impl PacketLog {
    /// Adds a record, forgetting the oldest beyond [`MAX_RECORDS`].
    pub fn push(&mut self, record: WireEvent) {
        self.records.push_back(record);
        self.total += 1;
        while self.records.len() > MAX_RECORDS {
            self.records.pop_front();
        }
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
    pub fn records(&self) -> impl DoubleEndedIterator<Item = &WireEvent> + ExactSizeIterator {
        self.records.iter()
    }

    /// Indexes of records matching `filter`, oldest first.
    pub fn matching(&self, filter: &LogFilter) -> Vec<usize> {
        let kind = filter.kind.to_lowercase();
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| filter.user.as_ref().is_none_or(|u| &r.user == u))
            .filter(|(_, r)| {
                filter
                    .replica
                    .as_ref()
                    .is_none_or(|id| r.replica.as_deref() == Some(id.as_str()))
            })
            .filter(|(_, r)| !filter.failures_only || r.failure.is_some())
            .filter(|(_, r)| kind.is_empty() || kind_text(r).contains(&kind))
            .map(|(i, _)| i)
            .collect()
    }

    /// The record at `index`.
    pub fn get(&self, index: usize) -> Option<&WireEvent> {
        self.records.get(index)
    }
}

/// What a record is, in words: request kind and packet names.
pub fn kind_text(r: &WireEvent) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flights::tests::sample_wire;

    #[test]
    fn filters_by_user_replica_kind_and_failure() {
        let mut log = PacketLog::default();
        let mut a = sample_wire();
        a.replica = Some("1".into());
        let mut b = sample_wire();
        b.user = "visitor".into();
        b.replica = Some("2".into());
        b.failure = Some(crate::wire::Failure {
            kind: crate::wire::FailureKind::Refused,
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
    fn stays_bounded() {
        let mut log = PacketLog::default();
        for _ in 0..MAX_RECORDS + 5 {
            log.push(sample_wire());
        }
        assert_eq!(log.len(), MAX_RECORDS);
        assert_eq!(log.total(), (MAX_RECORDS + 5) as u64);
    }
}
