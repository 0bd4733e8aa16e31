//! The doctor's report as people and CI read it: text for a terminal (each check's word,
//! what it found, its evidence indented, its fix), and JUnit XML with one test case per
//! check (FAIL a failure, SKIPPED skipped, WARN a pass with its words in system-out).
//! `--json` is the report itself ([`DoctorReport`] serialises as it is). Pure.

use std::fmt::Write as _;

use stickyscope_vocab::doctor::{CheckResult, DoctorReport, Outcome};
use stickyscope_vocab::xml::escaped as xml;

/// One check as text: `FAIL  4. the upgrade …` then what it found, the evidence and the
/// fix, indented.
pub fn check_text(check: &CheckResult) -> String {
    let mut out = format!(
        "{:<7} {:>2}. {}\n        {}\n",
        check.outcome.word(),
        check.id.number(),
        check.id.title(),
        check.summary
    );
    for line in &check.evidence {
        let _ = writeln!(out, "          | {line}");
    }
    if let Some(fix) = &check.fix {
        if check.outcome != Outcome::Pass {
            let _ = writeln!(out, "        fix: {fix}");
        }
    }
    out
}

/// The whole report as text, with a last line counting each outcome.
pub fn text(report: &DoctorReport) -> String {
    let version = report
        .engineio
        .map(|v| format!(", Engine.IO {v}"))
        .unwrap_or_default();
    let mut out = format!(
        "stickyscope doctor: {} ({}{version})\n\n",
        report.gateway, report.stack
    );
    for check in &report.checks {
        out.push_str(&check_text(check));
        out.push('\n');
    }
    let [pass, warn, fail, skipped] = report.counts();
    let _ = writeln!(
        out,
        "{pass} passed, {warn} warned, {fail} failed, {skipped} skipped in {:.1} s",
        report.millis as f64 / 1000.0
    );
    out
}

/// The report as JUnit XML: one test suite, one test case per check.
pub fn junit(report: &DoctorReport) -> String {
    let [_, _, fail, skipped] = report.counts();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"stickyscope doctor {}\" tests=\"{}\" failures=\"{fail}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        xml(&report.gateway),
        report.checks.len(),
        report.millis as f64 / 1000.0
    );
    for check in &report.checks {
        let _ = write!(
            out,
            "  <testcase classname=\"stickyscope.doctor\" name=\"{:02}_{}\" time=\"{:.3}\">",
            check.id.number(),
            check.id.name(),
            check.millis as f64 / 1000.0
        );
        let details = check_text(check);
        match check.outcome {
            Outcome::Fail => {
                let _ = write!(
                    out,
                    "\n    <failure message=\"{}\">{}</failure>\n  ",
                    xml(&check.summary),
                    xml(&details)
                );
            }
            Outcome::Skipped => {
                let _ = write!(
                    out,
                    "\n    <skipped message=\"{}\"/>\n  ",
                    xml(&check.summary)
                );
            }
            Outcome::Pass | Outcome::Warn => {
                let _ = write!(out, "\n    <system-out>{}</system-out>\n  ", xml(&details));
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_vocab::doctor::CheckId;

    fn report() -> DoctorReport {
        DoctorReport {
            gateway: "http://127.0.0.1:8000".into(),
            stack: "gateway".into(),
            engineio: Some(4),
            checks: vec![
                CheckResult::new(
                    CheckId::Answers,
                    Outcome::Pass,
                    "Engine.IO 4 at /socket.io/",
                ),
                CheckResult::new(
                    CheckId::Upgrade,
                    Outcome::Fail,
                    "the upgrade did not pass <a proxy>",
                )
                .with_evidence(vec!["GET /socket.io/?… → 400 {\"code\":3}".into()])
                .with_fix("proxy_set_header Upgrade $http_upgrade;"),
                CheckResult::skipped(CheckId::Cors, "give --origin"),
            ],
            millis: 1234,
        }
    }

    #[test]
    fn text_gives_each_check_its_word_evidence_and_fix() {
        let text = text(&report());
        assert!(
            text.contains("FAIL     4. the upgrade to WebSocket"),
            "{text}"
        );
        assert!(text.contains("| GET /socket.io/?… → 400"), "{text}");
        assert!(
            text.contains("fix: proxy_set_header Upgrade $http_upgrade;"),
            "{text}"
        );
        assert!(
            text.contains("1 passed, 0 warned, 1 failed, 1 skipped in 1.2 s"),
            "{text}"
        );
    }

    #[test]
    fn junit_has_one_escaped_case_per_check() {
        let xml = junit(&report());
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert!(xml.contains("name=\"04_upgrade\""), "{xml}");
        assert!(
            xml.contains("<failure message=\"the upgrade did not pass &lt;a proxy&gt;\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"give --origin\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
    }
}
