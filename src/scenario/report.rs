//! A scenario run's results: per step, each expectation with what was observed; printed as
//! a table, as one JSON document, or as JUnit XML (one test case per step) for CI
//! dashboards. Pure.

use serde::Serialize;

use super::check::{Outcome, Status};
use stickyscope_vocab::xml::escaped as xml;

/// One step's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// 1-based.
    pub number: usize,
    /// Its title.
    pub title: String,
    /// Whether every expectation passed and every action could be done.
    pub passed: bool,
    /// Seconds it took.
    pub duration_s: f64,
    /// Actions that could not be done, with why.
    pub action_errors: Vec<String>,
    /// Every expectation, decided.
    pub outcomes: Vec<Outcome>,
}

/// One scenario's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// The file (or shipped scenario) it came from.
    pub file: String,
    /// Its title.
    pub title: String,
    /// Whether every step passed.
    pub passed: bool,
    /// Seconds it took.
    pub duration_s: f64,
    /// Its steps, in order.
    pub steps: Vec<StepReport>,
}

impl StepReport {
    /// A step's report from its outcomes and action errors.
    pub fn new(
        number: usize,
        title: &str,
        duration_s: f64,
        action_errors: Vec<String>,
        outcomes: Vec<Outcome>,
    ) -> Self {
        let passed =
            action_errors.is_empty() && outcomes.iter().all(|o| o.status == Status::Passed);
        StepReport {
            number,
            title: title.to_owned(),
            passed,
            duration_s,
            action_errors,
            outcomes,
        }
    }

    /// Why it failed, in lines: each action that could not be done, each expectation that
    /// did not hold with what was seen.
    pub fn failures(&self) -> Vec<String> {
        self.action_errors
            .iter()
            .map(|e| format!("could not {e}"))
            .chain(
                self.outcomes
                    .iter()
                    .filter(|o| o.status != Status::Passed)
                    .map(|o| format!("expected {}; saw {}", o.expectation, o.observed)),
            )
            .collect()
    }
}

/// The results as a table: a line per step, a line per expectation, a verdict.
pub fn table(reports: &[ScenarioReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!("{} ({})\n", r.title, r.file));
        for step in &r.steps {
            out.push_str(&format!(
                "  step {:<2} {:<52} {}  {:.1} s\n",
                step.number,
                step.title,
                if step.passed { "PASS" } else { "FAIL" },
                step.duration_s
            ));
            for e in &step.action_errors {
                out.push_str(&format!("      ✗ could not {e}\n"));
            }
            for o in &step.outcomes {
                let mark = match o.status {
                    Status::Passed => '✓',
                    Status::Failed | Status::Pending => '✗',
                };
                out.push_str(&format!(
                    "      {mark} {} — {}\n",
                    o.expectation, o.observed
                ));
            }
        }
        let passed = r.steps.iter().filter(|s| s.passed).count();
        out.push_str(&format!(
            "{}: {passed} of {} steps passed in {:.1} s\n\n",
            if r.passed { "PASS" } else { "FAIL" },
            r.steps.len(),
            r.duration_s
        ));
    }
    out
}

/// The results as JUnit XML: a test suite per scenario, a test case per step.
pub fn junit(reports: &[ScenarioReport]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = reports.iter().map(|r| r.steps.len()).sum();
    let failures: usize = reports
        .iter()
        .map(|r| r.steps.iter().filter(|s| !s.passed).count())
        .sum();
    let time: f64 = reports.iter().map(|r| r.duration_s).sum();
    out.push_str(&format!(
        "<testsuites name=\"stickyscope scenarios\" tests=\"{tests}\" failures=\"{failures}\" time=\"{time:.3}\">\n"
    ));
    for r in reports {
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
            xml(&r.title),
            r.steps.len(),
            r.steps.iter().filter(|s| !s.passed).count(),
            r.duration_s
        ));
        for step in &r.steps {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"step {}: {}\" time=\"{:.3}\"",
                xml(&r.file),
                step.number,
                xml(&step.title),
                step.duration_s
            ));
            if step.passed {
                out.push_str("/>\n");
                continue;
            }
            let failures = step.failures();
            out.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml(failures.first().map_or("", String::as_str)),
                xml(&failures.join("\n"))
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ScenarioReport {
        ScenarioReport {
            file: "a<b>.toml".into(),
            title: "T & \"q\"".into(),
            passed: false,
            duration_s: 3.0,
            steps: vec![
                StepReport::new(1, "ok", 1.0, vec![], vec![]),
                StepReport::new(
                    2,
                    "bad",
                    2.0,
                    vec![],
                    vec![Outcome {
                        expectation: "agent connected".into(),
                        status: Status::Failed,
                        observed: "agent reconnecting: Session ID unknown\u{1}".into(),
                    }],
                ),
            ],
        }
    }

    #[test]
    fn junit_names_the_failing_step_the_expectation_and_what_was_seen() {
        let xml = junit(&[report()]);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("name=\"T &amp; &quot;q&quot;\""), "{xml}");
        assert!(xml.contains("classname=\"a&lt;b&gt;.toml\" name=\"step 1: ok\" time=\"1.000\"/>"));
        assert!(xml.contains(
            "<failure message=\"expected agent connected; saw agent reconnecting: Session ID unknown\">"
        ));
        assert!(!xml.contains('\u{1}'));
    }

    #[test]
    fn the_table_marks_each_expectation() {
        let text = table(&[report()]);
        assert!(text.contains("step 2  bad"), "{text}");
        assert!(
            text.contains("✗ agent connected — agent reconnecting"),
            "{text}"
        );
        assert!(text.contains("FAIL: 1 of 2 steps passed"), "{text}");
    }
}
