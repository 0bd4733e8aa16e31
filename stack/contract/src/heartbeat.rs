//! Engine.IO's heartbeat as the replicas run it, and the bounds on the durations a user types
//! for it (shared by `stickyscope-replica`, `stickyscope` and the scenario files): a duration
//! outside its range is refused by the flag parser with the range in the message, rather
//! than reaching a timer that panics on zero or overflows.

use std::ops::RangeInclusive;
use std::time::Duration;

/// Engine.IO heartbeat: the server pings every `interval`; a client that has not answered
/// within `timeout` after a ping is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// pingInterval.
    pub interval: Duration,
    /// pingTimeout.
    pub timeout: Duration,
}

impl Default for Heartbeat {
    /// stickyscope's stacks: pingInterval 3 s, pingTimeout 7 s (short, so a demo shows a
    /// dead session within seconds).
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_secs(3),
            timeout: Duration::from_secs(7),
        }
    }
}

impl Heartbeat {
    /// Whether both durations lie in [`HEARTBEAT_RANGE`].
    pub fn in_range(&self) -> bool {
        HEARTBEAT_RANGE.contains(&self.interval) && HEARTBEAT_RANGE.contains(&self.timeout)
    }
}

/// What Engine.IO's pingInterval and pingTimeout may be.
pub const HEARTBEAT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(600);

/// Parses a human duration (`3s`, `500ms`, `2m`) and checks it lies in `range`.
pub fn duration_in(text: &str, range: &RangeInclusive<Duration>) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if range.contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "{text} is out of range: give {} to {}",
            humantime::format_duration(*range.start()),
            humantime::format_duration(*range.end())
        ))
    }
}

/// A heartbeat duration (pingInterval or pingTimeout) for a flag parser.
pub fn heartbeat_duration(text: &str) -> Result<Duration, String> {
    duration_in(text, &HEARTBEAT_RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_outside_the_range_are_refused_with_it() {
        assert_eq!(heartbeat_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(
            heartbeat_duration("0s"),
            Err("0s is out of range: give 100ms to 10m".into())
        );
        assert!(heartbeat_duration("100000000000000000000y").is_err());
        assert!(heartbeat_duration("soon").unwrap_err().contains("soon"));
    }
}
