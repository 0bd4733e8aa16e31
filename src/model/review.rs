//! Looking back: the window's timeline and where the window stands on it. A live window
//! follows the stack at the live edge and keeps its last minutes; the user can step back
//! to any moment of them (paused, or playing at a speed), jump between failures, and go
//! back to live. A recording (`stickyscope open`) has no live edge: it is always a moment
//! of the timeline, from its start to its end.
//!
//! Pure: no egui, no files. The window folds live events into its own model and hands them
//! here; what is drawn is [`Review::shown`].

use stickyscope_vocab::events::Event;

use super::timeline::{Playhead, Timeline, LIVE_KEEP_SECS};
use super::ViewModel;

/// What the user asked of the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimelineAction {
    /// Show the moment at this time.
    Seek(f64),
    /// Play or pause (a live window at the live edge steps back to pause there).
    PlayPause,
    /// Play at this speed.
    Speed(f32),
    /// The failure before the moment shown.
    PreviousFailure,
    /// The failure after it.
    NextFailure,
    /// Back to following the stack.
    Live,
}

/// The speeds offered.
pub const SPEEDS: [f32; 6] = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0];

/// The timeline and the playhead.
#[derive(Debug)]
pub struct Review {
    timeline: Timeline,
    /// `None`: following the stack (live only).
    playhead: Option<Playhead>,
    /// A recording: no live edge.
    recorded: bool,
}

impl Review {
    /// A live window's, from `start` (its empty model) at presentation time `at`.
    pub fn live(start: ViewModel, at: f64) -> Self {
        Review {
            timeline: Timeline::new(start, at, Some(LIVE_KEEP_SECS)),
            playhead: None,
            recorded: false,
        }
    }

    /// A recording's, standing at its start and playing.
    pub fn recorded(timeline: Timeline) -> Self {
        let mut playhead = Playhead::at(&timeline, timeline.start());
        playhead.playing = true;
        Review {
            timeline,
            playhead: Some(playhead),
            recorded: true,
        }
    }

    /// Keeps a live event, which happened at `at`; `after` is the live model with it folded in.
    pub fn keep(&mut self, at: f64, event: Event, after: &ViewModel) {
        if self.recorded || matches!(event, Event::Stats(_) | Event::StackDone { .. }) {
            return;
        }
        self.timeline.push(at, event, after);
    }

    /// Moves on: the live edge to presentation time `clock`, a playing playhead by
    /// `real_secs`; returns the events it passed (their notices are the window's to show).
    /// A live window's playhead reaching the live edge goes back to live.
    pub fn tick(&mut self, clock: f64, real_secs: f64) -> Vec<Event> {
        if !self.recorded {
            self.timeline.extend_to(clock);
        }
        let mut passed = Vec::new();
        if let Some(head) = &mut self.playhead {
            let ended = head.play(&self.timeline, real_secs, |e| {
                if matches!(e, Event::Notice(_)) {
                    passed.push(e.clone());
                }
            });
            if ended && !self.recorded {
                self.playhead = None;
            }
        }
        passed
    }

    /// Does what the user asked.
    pub fn act(&mut self, action: TimelineAction, clock: f64) {
        let at = self.at(clock);
        let timeline = &self.timeline;
        let head = self
            .playhead
            .get_or_insert_with(|| Playhead::at(timeline, at));
        match action {
            TimelineAction::Seek(t) => head.seek(timeline, t),
            TimelineAction::PlayPause => {
                if !head.playing && head.moment.at >= timeline.end() && self.recorded {
                    // At the end of a recording, play starts it over.
                    head.seek(timeline, timeline.start());
                }
                head.playing = !head.playing && head.moment.at < timeline.end();
            }
            TimelineAction::Speed(speed) => head.speed = speed.clamp(0.05, 16.0),
            TimelineAction::PreviousFailure => {
                if let Some(f) = timeline.previous_failure(head.moment.at) {
                    let t = f.at;
                    head.seek(timeline, t);
                    head.playing = false;
                }
            }
            TimelineAction::NextFailure => {
                if let Some(f) = timeline.next_failure(head.moment.at) {
                    let t = f.at;
                    head.seek(timeline, t);
                    head.playing = false;
                }
            }
            TimelineAction::Live => {
                if self.recorded {
                    head.seek(timeline, timeline.end());
                    head.playing = false;
                } else {
                    self.playhead = None;
                }
            }
        }
    }

    /// Whether the window shows a moment of the past (never the live stack).
    pub fn looking_back(&self) -> bool {
        self.playhead.is_some()
    }

    /// Whether this is a recording.
    pub fn is_recorded(&self) -> bool {
        self.recorded
    }

    /// The model to draw: the moment's, or `live`.
    pub fn shown<'a>(&'a self, live: &'a ViewModel) -> &'a ViewModel {
        self.playhead.as_ref().map_or(live, |h| &h.moment.model)
    }

    /// The same, to prune as time passes.
    pub fn shown_mut<'a>(&'a mut self, live: &'a mut ViewModel) -> &'a mut ViewModel {
        self.playhead.as_mut().map_or(live, |h| &mut h.moment.model)
    }

    /// The time shown: the moment's, or the presentation clock.
    pub fn at(&self, clock: f64) -> f64 {
        self.playhead.as_ref().map_or(clock, |h| h.moment.at)
    }

    /// Whether the playhead plays.
    pub fn playing(&self) -> bool {
        self.playhead.as_ref().is_some_and(|h| h.playing)
    }

    /// The playhead's speed (1 when live).
    pub fn speed(&self) -> f32 {
        self.playhead.as_ref().map_or(1.0, |h| h.speed)
    }

    /// The timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_vocab::events::{Notice, NoticeLevel, TransportChoice};

    fn model() -> ViewModel {
        ViewModel::new(&["agent"], true, TransportChoice::Polling)
    }

    fn feed(review: &mut Review, live: &mut ViewModel, at: f64, event: Event) {
        live.apply(event.clone(), at);
        review.keep(at, event, live);
    }

    fn sticky(on: bool) -> Event {
        Event::Sticky {
            user: "agent".into(),
            on,
        }
    }

    #[test]
    fn a_live_window_steps_back_keeps_following_behind_and_plays_back_to_live() {
        let mut live = model();
        let mut review = Review::live(live.clone(), 0.0);
        feed(&mut review, &mut live, 1.0, sticky(false));
        review.tick(2.0, 1.0);
        assert!(!review.looking_back());
        review.act(TimelineAction::Seek(0.5), 2.0);
        assert!(review.looking_back());
        assert!(review.shown(&live).sticky["agent"]);
        // The stack goes on meanwhile; the moment shown does not move while paused.
        feed(&mut review, &mut live, 3.0, sticky(true));
        review.tick(3.0, 1.0);
        assert_eq!(review.at(3.0), 0.5);
        assert!(review.shown(&live).sticky["agent"]);
        review.act(TimelineAction::Speed(2.0), 3.0);
        review.act(TimelineAction::PlayPause, 3.0);
        review.tick(3.2, 0.5);
        assert_eq!(review.at(3.2), 1.5);
        assert!(!review.shown(&live).sticky["agent"]);
        // Caught up: live again.
        review.tick(3.4, 10.0);
        assert!(!review.looking_back());
        assert_eq!(review.at(3.4), 3.4);
    }

    #[test]
    fn a_recording_plays_from_its_start_stops_at_its_end_and_hands_over_its_notices() {
        let mut live = model();
        let mut timeline = Timeline::new(live.clone(), 0.0, None);
        let notice = Event::Notice(Notice {
            level: NoticeLevel::Warning,
            text: "replica 2 stopped".into(),
        });
        for (at, event) in [(1.0, sticky(false)), (2.0, notice.clone())] {
            live.apply(event.clone(), at);
            timeline.push(at, event, &live);
        }
        timeline.extend_to(5.0);
        let mut review = Review::recorded(timeline);
        assert!(review.looking_back() && review.playing());
        assert_eq!(review.tick(100.0, 1.5), Vec::<Event>::new());
        assert!(!review.shown(&live).sticky["agent"]);
        assert_eq!(review.tick(100.0, 1.0), vec![notice]);
        review.tick(100.0, 60.0);
        assert_eq!((review.at(100.0), review.playing()), (5.0, false));
        assert!(review.looking_back(), "a recording has no live edge");
        // Live events never enter a recording's timeline.
        review.keep(6.0, sticky(true), &live);
        assert_eq!(review.timeline().len(), 2);
    }
}
