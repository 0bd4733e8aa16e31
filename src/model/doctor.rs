//! The doctor's panel as plain data: whether a checklist is running, each check as it
//! became known (in checklist order), the whole report when it is done, or why it could not
//! run. Pure.

use stickyscope_vocab::doctor::{CheckResult, DoctorReport, DoctorUpdate};

/// What the doctor's panel shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorView {
    /// The gateway of the run shown.
    pub gateway: Option<String>,
    /// Whether a run is going on.
    pub running: bool,
    /// The checks known so far, in checklist order.
    pub checks: Vec<CheckResult>,
    /// The finished report.
    pub report: Option<DoctorReport>,
    /// Why the last run could not run.
    pub failed: Option<String>,
}

impl DoctorView {
    /// Folds one update in.
    pub fn apply(&mut self, update: DoctorUpdate) {
        match update {
            DoctorUpdate::Started { gateway } => {
                *self = DoctorView {
                    gateway: Some(gateway),
                    running: true,
                    ..DoctorView::default()
                };
            }
            DoctorUpdate::Check(check) => {
                self.checks.retain(|c| c.id != check.id);
                self.checks.push(check);
                self.checks.sort_by_key(|c| c.id);
            }
            DoctorUpdate::Done(report) => {
                self.running = false;
                self.checks = report.checks.clone();
                self.report = Some(report);
            }
            DoctorUpdate::Failed(why) => {
                self.running = false;
                self.failed = Some(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_vocab::doctor::{CheckId, Outcome};

    #[test]
    fn checks_arrive_in_any_order_and_show_in_checklist_order_until_done() {
        let mut view = DoctorView::default();
        view.apply(DoctorUpdate::Started {
            gateway: "http://127.0.0.1:8000".into(),
        });
        assert!(view.running);
        view.apply(DoctorUpdate::Check(CheckResult::new(
            CheckId::Upgrade,
            Outcome::Fail,
            "400",
        )));
        view.apply(DoctorUpdate::Check(CheckResult::new(
            CheckId::Answers,
            Outcome::Pass,
            "ok",
        )));
        let ids: Vec<CheckId> = view.checks.iter().map(|c| c.id).collect();
        assert_eq!(ids, [CheckId::Answers, CheckId::Upgrade]);
        view.apply(DoctorUpdate::Failed("unreachable".into()));
        assert!(!view.running);
        assert_eq!(view.failed.as_deref(), Some("unreachable"));
        view.apply(DoctorUpdate::Started {
            gateway: "http://127.0.0.1:8000".into(),
        });
        assert!(view.checks.is_empty() && view.failed.is_none());
    }
}
