//! The scenarios that come with the app, from `assets/scenarios/`, built into the binary so
//! that `stickyscope scenario list` and the window's picker work wherever it runs. They tell
//! the seed's story in order. Pure.

/// One shipped scenario: its name (the file's, without `.toml`) and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    /// e.g. `2-round-robin`.
    pub name: &'static str,
    /// The TOML.
    pub source: &'static str,
}

macro_rules! shipped {
    ($($name:literal),* $(,)?) => {
        [$(Shipped {
            name: $name,
            source: include_str!(concat!("../../assets/scenarios/", $name, ".toml")),
        }),*]
    };
}

/// Every shipped scenario, in the order of the story.
pub const SHIPPED: [Shipped; 7] = shipped![
    "1-one-replica",
    "2-round-robin",
    "3-sticky-cookie",
    "4-websocket-only",
    "5-upgrade-without-stickiness",
    "6-seed-flaw-adapter",
    "7-failover",
];

/// The shipped scenario called `name` (with or without `.toml`, or by its number alone).
pub fn find(name: &str) -> Option<Shipped> {
    let name = name.trim_end_matches(".toml");
    SHIPPED
        .iter()
        .find(|s| s.name == name || s.name.split_once('-').is_some_and(|(n, _)| n == name))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_reads_and_fits_the_embedded_stack() {
        for shipped in SHIPPED {
            let scenario = crate::scenario::parse(shipped.name, shipped.source)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!scenario.steps.is_empty(), "{}", shipped.name);
            scenario
                .check_against(
                    shipped.name,
                    crate::scenario::capabilities::Capabilities {
                        controls: true,
                        stats: true,
                        numbered_replicas: true,
                        redis_adapter: false,
                    },
                )
                .unwrap_or_else(|e| panic!("{e}"));
            for step in &scenario.steps {
                assert!(!step.caption.is_empty(), "{}: {}", shipped.name, step.title);
                assert!(!step.expect.is_empty(), "{}: {}", shipped.name, step.title);
            }
        }
        assert_eq!(find("3").map(|s| s.name), Some("3-sticky-cookie"));
        assert_eq!(find("7-failover.toml").map(|s| s.name), Some("7-failover"));
        assert_eq!(find("8"), None);
    }
}
