//! The banners over the window: what the conductor noticed (a replica that would not start, an
//! API that cannot be read) and what the window says of its own doing (an export saved, a
//! scenario refused), newest last. Information fades after [`INFO_SECS`]; warnings and errors
//! stay until dismissed. Window state, written by the window alone: the view model holds only
//! what the event stream said.

use std::collections::VecDeque;

use stickyscope_vocab::events::{Notice, NoticeLevel};

/// Seconds of presentation time an information banner stays.
pub const INFO_SECS: f64 = 8.0;
/// Most banners kept.
const MAX_BANNERS: usize = 8;

/// The banners shown, each with the presentation time it came.
#[derive(Debug, Default)]
pub struct Banners {
    shown: VecDeque<(Notice, f64)>,
}

impl Banners {
    /// Shows `notice` from `now` on (past eight, the oldest goes).
    pub fn push(&mut self, notice: Notice, now: f64) {
        self.shown.push_back((notice, now));
        while self.shown.len() > MAX_BANNERS {
            self.shown.pop_front();
        }
    }

    /// Lets information banners older than [`INFO_SECS`] go.
    pub fn fade(&mut self, now: f64) {
        self.shown
            .retain(|(n, at)| n.level != NoticeLevel::Info || now - at < INFO_SECS);
    }

    /// Takes banner `index` away (the user dismissed it).
    pub fn dismiss(&mut self, index: usize) {
        self.shown.remove(index);
    }

    /// The banners, oldest first.
    pub fn shown(&self) -> Vec<(Notice, f64)> {
        self.shown.iter().cloned().collect()
    }

    /// Presentation seconds until the next information banner fades, if one is shown.
    pub fn next_fade(&self, now: f64) -> Option<f64> {
        self.shown
            .iter()
            .filter(|(n, _)| n.level == NoticeLevel::Info)
            .map(|(_, at)| now - at)
            .reduce(f64::max)
            .map(|age| (INFO_SECS - age).max(0.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(level: NoticeLevel, text: &str) -> Notice {
        Notice {
            level,
            text: text.into(),
        }
    }

    #[test]
    fn information_fades_and_warnings_stay_until_dismissed() {
        let mut banners = Banners::default();
        banners.push(notice(NoticeLevel::Info, "saved"), 0.0);
        banners.push(notice(NoticeLevel::Warning, "refused"), 1.0);
        assert_eq!(banners.next_fade(2.0), Some(INFO_SECS - 2.0));
        banners.fade(INFO_SECS + 0.5);
        let shown = banners.shown();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].0.text, "refused");
        assert_eq!(banners.next_fade(20.0), None);
        banners.dismiss(0);
        assert!(banners.shown().is_empty());
    }

    #[test]
    fn only_the_newest_are_kept() {
        let mut banners = Banners::default();
        for n in 0..20 {
            banners.push(notice(NoticeLevel::Error, &n.to_string()), 0.0);
        }
        let shown = banners.shown();
        assert_eq!(shown.len(), MAX_BANNERS);
        assert_eq!(shown[0].0.text, "12");
    }
}
