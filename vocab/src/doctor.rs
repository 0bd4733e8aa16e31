//! `stickyscope doctor`'s words: the checks it runs on a stack, what each found (PASS, WARN,
//! FAIL or SKIPPED, with the evidence it saw and the fix), and the report they make, with
//! its exit code; and what the network side tells the window of a run ([`DoctorUpdate`]).
//! The command line prints it, `--json` writes it as it is, and the window shows it as a
//! panel. Pure.

use serde::{Deserialize, Serialize};

/// One check of the checklist, in the order they are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// Socket.IO answers at the path: Engine.IO versions, pingInterval and pingTimeout.
    Answers,
    /// A polling session holds on one replica for several ping intervals; what pins it.
    Sticky,
    /// A WebSocket-first connection's `101` sets the sticky cookie.
    CookieOnUpgrade,
    /// The upgrade passes every proxy and lands on the session's replica.
    Upgrade,
    /// A long poll held for the whole ping interval survives every hop.
    LongPoll,
    /// The CORS preflight and answers allow credentials for the page's origin.
    Cors,
    /// Many sessions land on more than one replica, each staying on its own.
    Spread,
    /// Two users on different replicas reach each other (an adapter between replicas).
    AcrossReplicas,
    /// Opening many sessions at once is not refused by a rate limit.
    Headroom,
    /// The sticky replica killed: the user is re-stuck on another, with a fresh cookie.
    Failover,
}

impl CheckId {
    /// Every check, in order.
    pub const ALL: [CheckId; 10] = [
        CheckId::Answers,
        CheckId::Sticky,
        CheckId::CookieOnUpgrade,
        CheckId::Upgrade,
        CheckId::LongPoll,
        CheckId::Cors,
        CheckId::Spread,
        CheckId::AcrossReplicas,
        CheckId::Headroom,
        CheckId::Failover,
    ];

    /// Its number in the checklist, from 1.
    pub fn number(self) -> usize {
        CheckId::ALL.iter().position(|c| *c == self).unwrap_or(0) + 1
    }

    /// What it checks, in a line.
    pub fn title(self) -> &'static str {
        match self {
            CheckId::Answers => "Socket.IO answers at the path",
            CheckId::Sticky => "a polling session stays on one replica",
            CheckId::CookieOnUpgrade => "a WebSocket-first connection is pinned",
            CheckId::Upgrade => "the upgrade to WebSocket passes and stays on the replica",
            CheckId::LongPoll => "a long poll survives the whole ping interval",
            CheckId::Cors => "CORS allows credentials for the page's origin",
            CheckId::Spread => "sessions spread over the replicas",
            CheckId::AcrossReplicas => "users on different replicas reach each other",
            CheckId::Headroom => "opening many sessions at once is not rate-limited",
            CheckId::Failover => "the sticky replica killed, the user is re-stuck elsewhere",
        }
    }

    /// A short machine name (`sticky`, `cookie_on_upgrade`, …): JUnit's test case name.
    pub fn name(self) -> &'static str {
        match self {
            CheckId::Answers => "answers",
            CheckId::Sticky => "sticky",
            CheckId::CookieOnUpgrade => "cookie_on_upgrade",
            CheckId::Upgrade => "upgrade",
            CheckId::LongPoll => "long_poll",
            CheckId::Cors => "cors",
            CheckId::Spread => "spread",
            CheckId::AcrossReplicas => "across_replicas",
            CheckId::Headroom => "headroom",
            CheckId::Failover => "failover",
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    /// As it should be.
    Pass,
    /// Works here, but will not everywhere (a browser, another client), or could not be
    /// fully known.
    Warn,
    /// Broken: sessions fail this way.
    Fail,
    /// Not checked, and why is in the summary.
    Skipped,
}

impl Outcome {
    /// `PASS`, `WARN`, `FAIL`, `SKIPPED`.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "SKIPPED",
        }
    }
}

/// What one check found, what it saw, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which check.
    pub id: CheckId,
    /// What it found.
    pub outcome: Outcome,
    /// What it found, in a sentence (for SKIPPED: why not checked).
    pub summary: String,
    /// What it saw: requests, statuses, header lines, in order.
    pub evidence: Vec<String>,
    /// For anything short of PASS that can be fixed: the exact label, directive or option.
    pub fix: Option<String>,
    /// How long it took, in milliseconds.
    pub millis: u64,
}

impl CheckResult {
    /// A result with no evidence yet.
    pub fn new(id: CheckId, outcome: Outcome, summary: impl Into<String>) -> Self {
        CheckResult {
            id,
            outcome,
            summary: summary.into(),
            evidence: Vec::new(),
            fix: None,
            millis: 0,
        }
    }

    /// Skipped, saying why.
    pub fn skipped(id: CheckId, why: impl Into<String>) -> Self {
        CheckResult::new(id, Outcome::Skipped, why)
    }

    /// With this evidence.
    pub fn with_evidence(mut self, evidence: Vec<String>) -> Self {
        self.evidence = evidence;
        self
    }

    /// With this fix.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The whole checklist's results on one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// The gateway checked.
    pub gateway: String,
    /// What the stack is (`embedded`, `chain`, `gateway`).
    pub stack: String,
    /// The Engine.IO version the checks spoke (3 or 4), when the server answered.
    pub engineio: Option<u8>,
    /// Each check's result, in checklist order.
    pub checks: Vec<CheckResult>,
    /// How long the whole checklist took, in milliseconds.
    pub millis: u64,
}

impl DoctorReport {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome == Outcome::Fail)
    }

    /// `probe`'s exit codes: 0 when nothing failed, 1 when something did.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed())
    }

    /// How many checks came out each way: PASS, WARN, FAIL, SKIPPED.
    pub fn counts(&self) -> [usize; 4] {
        let count = |o| self.checks.iter().filter(|c| c.outcome == o).count();
        [
            count(Outcome::Pass),
            count(Outcome::Warn),
            count(Outcome::Fail),
            count(Outcome::Skipped),
        ]
    }

    /// One check's result.
    pub fn check(&self, id: CheckId) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// What the network side says of a checklist the window asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoctorUpdate {
    /// It began, on this gateway.
    Started {
        /// The gateway checked.
        gateway: String,
    },
    /// One check is known.
    Check(CheckResult),
    /// All are known.
    Done(DoctorReport),
    /// It could not run, and why (an unreachable gateway, one already running).
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_numbered_in_order_and_named_uniquely() {
        let numbers: Vec<usize> = CheckId::ALL.iter().map(|c| c.number()).collect();
        assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
        let mut names: Vec<&str> = CheckId::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 10);
    }

    #[test]
    fn one_failure_makes_the_exit_code_one_and_warnings_do_not() {
        let mut report = DoctorReport {
            gateway: "http://127.0.0.1:8000".into(),
            stack: "gateway".into(),
            engineio: Some(4),
            checks: vec![
                CheckResult::new(CheckId::Answers, Outcome::Pass, "ok"),
                CheckResult::new(CheckId::Sticky, Outcome::Warn, "meh"),
                CheckResult::skipped(CheckId::Cors, "no --origin"),
            ],
            millis: 1,
        };
        assert_eq!(report.exit_code(), 0);
        assert_eq!(report.counts(), [1, 1, 0, 1]);
        report
            .checks
            .push(CheckResult::new(CheckId::Upgrade, Outcome::Fail, "400"));
        assert_eq!(report.exit_code(), 1);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][3]["outcome"], "FAIL");
        assert_eq!(json["checks"][1]["id"], "sticky");
        let back: DoctorReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
