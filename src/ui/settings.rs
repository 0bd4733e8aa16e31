//! What the window remembers across runs.

use serde::{Deserialize, Serialize};

use stickyscope_vocab::events::ChatDialect;
use stickyscope_vocab::events::TransportChoice;

/// Key under which settings are stored.
pub const STORAGE_KEY: &str = "stickyscope-settings";

/// Light or dark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThemeChoice {
    /// Dark background.
    Dark,
    /// Light background.
    Light,
}

/// The bottom panel's tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BottomTab {
    /// Latency, packets, failures.
    Plots,
    /// The packet log.
    Log,
    /// The doctor's checklist.
    Doctor,
}

/// Persisted settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Theme.
    pub theme: ThemeChoice,
    /// Large type, high contrast, big switch.
    pub presentation: bool,
    /// Presentation speed of packet flights (1 = real time).
    pub speed: f32,
    /// Stickiness at start.
    pub sticky: bool,
    /// Transport at start.
    pub transport: TransportChoice,
    /// pingInterval of the embedded replicas, ms.
    pub ping_interval_ms: u64,
    /// Bottom tab.
    pub tab: BottomTab,
    /// Which chat the users speak.
    pub chat: ChatDialect,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            theme: ThemeChoice::Dark,
            presentation: false,
            speed: 1.0,
            sticky: true,
            transport: TransportChoice::Polling,
            ping_interval_ms: 3000,
            tab: BottomTab::Plots,
            chat: ChatDialect::Stickyscope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_round_trip_and_old_files_fill_in_defaults() {
        let saved = Settings {
            theme: ThemeChoice::Light,
            presentation: true,
            speed: 0.25,
            sticky: false,
            transport: TransportChoice::Upgrade,
            ping_interval_ms: 1000,
            tab: BottomTab::Log,
            chat: ChatDialect::Seed,
        };
        let text = serde_json::to_string(&saved).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&text).unwrap(), saved);
        // A file from an older version, with fields missing, still loads.
        let old: Settings = serde_json::from_str(r#"{"theme":"Light"}"#).unwrap();
        assert_eq!(old.theme, ThemeChoice::Light);
        assert_eq!(old.speed, Settings::default().speed);
    }
}
