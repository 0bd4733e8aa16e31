//! The timeline: what happened, kept so the window can show any moment of it again — a
//! recorded capture from its start to its end, or a live window's last minutes. It keeps
//! every event at its presentation time and, every few seconds, a copy of the view model as
//! it stood then (a checkpoint), so showing any moment is one copy and a few seconds of
//! events folded in, never the whole history. Checkpoints share with the live model what did
//! not change (see [`ViewModel`]); one let go is freed a few records at a time, on the
//! caller's thread, rather than all at once. It also knows where the failures are (refused
//! or broken requests, sessions lost), for jumping from one to the next.
//!
//! Pure: no egui, no files; the caller folds events into its own live model and hands the
//! timeline that model after each event, for checkpoints.

use std::collections::VecDeque;
use std::sync::Arc;

use stickyscope_vocab::events::{Event, SessionState, TransportChoice};
use stickyscope_vocab::record::WireRecord;

use super::ViewModel;

/// How much of a live window the timeline keeps: its last five minutes (a little more,
/// up to one checkpoint's worth)…
pub const LIVE_KEEP_SECS: f64 = 300.0;
/// …or its last 30,000 events when that is less (a stack sending 2,000 records a second
/// fills five minutes with 600,000, and its checkpoints with them), so that a busy
/// window's memory stays bounded. The strip says how much is kept.
pub const LIVE_KEEP_EVENTS: u64 = 30_000;
/// A checkpoint at least this often, in presentation seconds…
pub const CHECKPOINT_SECS: f64 = 5.0;
/// …or after this many events, whichever comes first.
pub const CHECKPOINT_EVENTS: usize = 5_000;
/// Records of let-go checkpoints freed at each push, at most: a checkpoint let go holds a
/// span's worth of records nothing else holds (5,000 at 2,000 a second, measured 12 ms to
/// free at once), so they go a few at a time, faster than they come.
const RELEASED_PER_PUSH: usize = 3;

/// Records of a packet log, in shared chunks.
type RecordChunks = VecDeque<Arc<Vec<Arc<WireRecord>>>>;

/// A failure on the timeline: when, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureMark {
    /// Presentation time.
    pub at: f64,
    /// Whose, and what the wire said (`visitor: 400 Session ID unknown`).
    pub what: String,
}

/// The view model as it stood at a moment, and where folding on from there starts.
#[derive(Debug, Clone)]
pub struct Moment {
    /// The model at [`Moment::at`].
    pub model: ViewModel,
    /// The moment.
    pub at: f64,
    /// Index of the first event after it.
    pub next: u64,
}

#[derive(Debug)]
struct Checkpoint {
    /// The model after every event before `next`.
    model: ViewModel,
    at: f64,
    next: u64,
}

/// Events and checkpoints.
#[derive(Debug)]
pub struct Timeline {
    events: VecDeque<(f64, Event)>,
    /// Index of `events[0]` among every event ever pushed.
    first: u64,
    checkpoints: VecDeque<Checkpoint>,
    failures: VecDeque<FailureMark>,
    /// Live: how many seconds back to keep; a recording keeps everything.
    keep_secs: Option<f64>,
    /// The packet logs of checkpoints no longer kept, being freed a few records at each
    /// push ([`RELEASED_PER_PUSH`]).
    releasing: RecordChunks,
    /// Live: events before this index are no longer shown and are let go a few at each
    /// push, not all at once (a second of a busy stack is thousands of records, and
    /// freeing them together would stall the frame that does it).
    forget_before: u64,
    since_checkpoint: usize,
    end: f64,
}

impl Timeline {
    /// A timeline starting at `at` from `start` (the empty model the window began with);
    /// `keep_secs` bounds a live one, `None` keeps everything (a recording).
    pub fn new(start: ViewModel, at: f64, keep_secs: Option<f64>) -> Self {
        Timeline {
            events: VecDeque::new(),
            first: 0,
            checkpoints: VecDeque::from([Checkpoint {
                model: start,
                at,
                next: 0,
            }]),
            failures: VecDeque::new(),
            keep_secs,
            releasing: VecDeque::new(),
            forget_before: 0,
            since_checkpoint: 0,
            end: at,
        }
    }

    /// Keeps `event`, which happened at `at` (never before the last one: times are clamped
    /// forward); `after` is the caller's model with the event folded in. A refused request
    /// is marked where its refusal shows on the topology: once the request has flown there.
    pub fn push(&mut self, at: f64, event: Event, after: &ViewModel) {
        let at = at.max(self.end);
        if let Some(what) = failure_of(&event) {
            let at = match &event {
                Event::Wire(wire) => super::Flights::mark_shows_at(wire, at),
                _ => at,
            };
            // A burst of the same failure (every poll refused) is one mark per second.
            let repeat = self
                .failures
                .iter()
                .rev()
                .take(8)
                .any(|f| f.what == what && (at - f.at).abs() < 1.0);
            if !repeat {
                // Kept in the order they show (a refusal shows after its flight).
                let place = self
                    .failures
                    .iter()
                    .rposition(|f| f.at <= at)
                    .map_or(0, |i| i + 1);
                self.failures.insert(place, FailureMark { at, what });
            }
        }
        self.events.push_back((at, event));
        // Two old ones out for each new one: the backlog of a checkpoint span is gone well
        // before the next span is due.
        for _ in 0..2 {
            if self.first >= self.forget_before || self.events.pop_front().is_none() {
                break;
            }
            self.first += 1;
        }
        self.release(RELEASED_PER_PUSH);
        self.end = at;
        self.since_checkpoint += 1;
        let last = self.checkpoints.back().map_or(at, |c| c.at);
        if self.since_checkpoint >= CHECKPOINT_EVENTS || at - last >= CHECKPOINT_SECS {
            self.checkpoints.push_back(Checkpoint {
                model: after.clone(),
                at,
                next: self.first + self.events.len() as u64,
            });
            self.since_checkpoint = 0;
            self.forget_old();
        }
    }

    /// Moves the end on to `at` without an event (time passes on a quiet live window, or a
    /// recording's end line comes after its last event).
    pub fn extend_to(&mut self, at: f64) {
        self.end = self.end.max(at);
    }

    /// Live: forgets whole checkpoint spans older than what is kept.
    fn forget_old(&mut self) {
        let Some(keep) = self.keep_secs else {
            return;
        };
        let pushed = self.first + self.events.len() as u64;
        while self.checkpoints.len() >= 2
            && (self.checkpoints[1].at <= self.end - keep
                || pushed - self.checkpoints[1].next >= LIVE_KEEP_EVENTS)
        {
            if let Some(gone) = self.checkpoints.pop_front() {
                // Everything but its log is shared with newer copies, or small; its log
                // holds records nothing newer does, to be freed a few at a time.
                let mut model = gone.model;
                let log = std::mem::take(&mut model.log);
                drop(model);
                self.releasing.extend(log.into_chunks());
            }
        }
        let Some(oldest) = self.checkpoints.front() else {
            return;
        };
        self.forget_before = oldest.next;
        while self.failures.front().is_some_and(|f| f.at < oldest.at) {
            self.failures.pop_front();
        }
    }

    /// Frees up to `budget` records of let-go checkpoints' logs: a chunk shared with a
    /// newer copy is only let go of (whoever holds it last frees it), one held only here is
    /// emptied a record at a time.
    fn release(&mut self, mut budget: usize) {
        while budget > 0 {
            let Some(chunk) = self.releasing.front_mut() else {
                return;
            };
            match Arc::get_mut(chunk).map(Vec::pop) {
                Some(Some(record)) => drop(record),
                Some(None) | None => {
                    self.releasing.pop_front();
                }
            }
            budget -= 1;
        }
    }

    /// Records of let-go checkpoints waiting here to be freed (in chunks held only here).
    #[cfg(test)]
    fn releasing(&self) -> usize {
        self.releasing
            .iter()
            .filter(|c| Arc::strong_count(c) == 1)
            .map(|c| c.len())
            .sum()
    }

    /// The earliest moment that can be shown.
    pub fn start(&self) -> f64 {
        self.checkpoints.front().map_or(self.end, |c| c.at)
    }

    /// The latest: the last event, or later when time was moved on.
    pub fn end(&self) -> f64 {
        self.end
    }

    /// Events kept.
    pub fn len(&self) -> usize {
        self.events.len() - self.letting_go()
    }

    /// Events still held but no longer shown (before the oldest checkpoint).
    fn letting_go(&self) -> usize {
        usize::try_from(self.forget_before.saturating_sub(self.first))
            .unwrap_or(usize::MAX)
            .min(self.events.len())
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The model at `at` (clamped to what is kept): the last checkpoint at or before it,
    /// with every event up to `at` folded in at its own time.
    pub fn moment(&self, at: f64) -> Moment {
        let at = at.clamp(self.start(), self.end);
        let checkpoint = self
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.at <= at)
            .or(self.checkpoints.front());
        let (mut model, next) = match checkpoint {
            Some(c) => (c.model.clone(), c.next),
            None => (
                ViewModel::new(&[], true, TransportChoice::Polling),
                self.first,
            ),
        };
        let next = self.fold(&mut model, next, at, |_| {});
        Moment { model, at, next }
    }

    /// Folds into `model` the events from index `next` up to time `to`, calling `each`
    /// with every one first; returns the index of the first event after `to`.
    pub fn fold(
        &self,
        model: &mut ViewModel,
        next: u64,
        to: f64,
        mut each: impl FnMut(&Event),
    ) -> u64 {
        let mut index = next.max(self.first);
        while let Some((at, event)) = usize::try_from(index - self.first)
            .ok()
            .and_then(|i| self.events.get(i))
        {
            if *at > to {
                break;
            }
            each(event);
            model.apply(event.clone(), *at);
            index += 1;
        }
        index
    }

    /// Every event kept, with its time, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &(f64, Event)> {
        self.events.iter().skip(self.letting_go())
    }

    /// The model at the earliest moment kept.
    pub fn first_model(&self) -> Option<&ViewModel> {
        self.checkpoints.front().map(|c| &c.model)
    }

    /// Every failure kept, in the order they happened.
    pub fn failures(&self) -> impl Iterator<Item = &FailureMark> {
        self.failures.iter()
    }

    /// The first failure after `at` (more than a frame after, so pressing again moves on).
    pub fn next_failure(&self, at: f64) -> Option<&FailureMark> {
        self.failures.iter().find(|f| f.at > at + 0.01)
    }

    /// The last failure before `at` (more than a frame before).
    pub fn previous_failure(&self, at: f64) -> Option<&FailureMark> {
        self.failures.iter().rev().find(|f| f.at < at - 0.01)
    }
}

/// Where a window looking back stands on a timeline, and whether it plays on from there.
#[derive(Debug, Clone)]
pub struct Playhead {
    /// The moment shown.
    pub moment: Moment,
    /// Whether it moves on with time.
    pub playing: bool,
    /// How fast it plays (1 = as it happened).
    pub speed: f32,
}

impl Playhead {
    /// Stands at `at`, paused.
    pub fn at(timeline: &Timeline, at: f64) -> Self {
        Playhead {
            moment: timeline.moment(at),
            playing: false,
            speed: 1.0,
        }
    }

    /// Goes to `at`: folding on when it is a little later, from a checkpoint otherwise.
    pub fn seek(&mut self, timeline: &Timeline, at: f64) {
        let at = at.clamp(timeline.start(), timeline.end());
        if at >= self.moment.at && at - self.moment.at < CHECKPOINT_SECS {
            self.moment.next = timeline.fold(&mut self.moment.model, self.moment.next, at, |_| {});
            self.moment.at = at;
        } else {
            self.moment = timeline.moment(at);
        }
    }

    /// Plays on for `real_secs` of real time at its speed, calling `each` with every event
    /// passed; returns whether it reached the end (and stopped there).
    pub fn play(&mut self, timeline: &Timeline, real_secs: f64, each: impl FnMut(&Event)) -> bool {
        if !self.playing {
            return false;
        }
        let to = (self.moment.at + real_secs.max(0.0) * f64::from(self.speed))
            .clamp(timeline.start(), timeline.end());
        self.moment.next = timeline.fold(&mut self.moment.model, self.moment.next, to, each);
        self.moment.at = to;
        if to >= timeline.end() {
            self.playing = false;
            return true;
        }
        false
    }
}

/// What failed in `event`, if it is a failure: a request refused or broken, a session lost.
pub fn failure_of(event: &Event) -> Option<String> {
    match event {
        Event::Wire(wire) => wire
            .failure
            .as_ref()
            .map(|f| format!("{}: {}", wire.user, f.reason)),
        Event::Session {
            user,
            state: SessionState::Reconnecting { reason, .. } | SessionState::Failed { reason },
        } => Some(format!("{user}: {reason}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Flights;
    use stickyscope_contract::request::RequestKind;
    use stickyscope_vocab::record::{Failure, FailureKind, Transport, WireKind, WireRecord};

    fn model() -> ViewModel {
        ViewModel::new(&["agent", "visitor"], true, TransportChoice::Polling)
    }

    fn sticky(user: &str, on: bool) -> Event {
        Event::Sticky {
            user: user.into(),
            on,
        }
    }

    fn refused(user: &str, at_ms: u64) -> Event {
        let mut wire = WireRecord::new(
            user,
            at_ms,
            Transport::Polling,
            WireKind::Http {
                request: RequestKind::PollGet,
                method: "GET".into(),
                status: Some(400),
            },
        );
        wire.failure = Some(Failure {
            kind: FailureKind::Refused,
            reason: "Session ID unknown".into(),
        });
        Event::Wire(std::sync::Arc::new(wire))
    }

    /// Feeds `events` (time, event) as the window would: folded into its live model, then
    /// kept.
    fn recorded(events: Vec<(f64, Event)>, keep: Option<f64>) -> (Timeline, ViewModel) {
        let mut live = model();
        let mut timeline = Timeline::new(model(), 0.0, keep);
        for (at, event) in events {
            live.apply(event.clone(), at);
            timeline.push(at, event, &live);
        }
        (timeline, live)
    }

    #[test]
    fn any_moment_is_the_model_as_it_stood_then() {
        // Stickiness flips every second for a minute: checkpoints fall between the flips.
        let events: Vec<(f64, Event)> = (0..60)
            .map(|i| (f64::from(i) + 0.5, sticky("visitor", i % 2 == 1)))
            .collect();
        let (timeline, live) = recorded(events, None);
        assert!(timeline.moment(0.2).model.sticky["visitor"]);
        assert!(!timeline.moment(0.7).model.sticky["visitor"]);
        assert!(timeline.moment(1.7).model.sticky["visitor"]);
        assert!(!timeline.moment(42.6).model.sticky["visitor"]);
        let end = timeline.moment(1e9);
        assert_eq!(end.at, 59.5);
        assert_eq!(end.model.sticky, live.sticky);
        assert_eq!(end.next, 60);
        // Folding on from a moment reaches the same state as jumping there.
        let mut from = timeline.moment(10.0);
        from.next = timeline.fold(&mut from.model, from.next, 43.0, |_| {});
        assert_eq!(from.model.sticky, timeline.moment(43.0).model.sticky);
        assert_eq!(from.next, timeline.moment(43.0).next);
    }

    #[test]
    fn the_packet_log_at_a_moment_holds_what_had_crossed_by_then() {
        let events: Vec<(f64, Event)> = (0..30)
            .map(|i| {
                (
                    f64::from(i),
                    refused("visitor", 1_000 * u64::from(i as u32)),
                )
            })
            .collect();
        let (timeline, _) = recorded(events, None);
        assert_eq!(timeline.moment(12.5).model.log.len(), 13);
        assert_eq!(timeline.moment(0.0).model.log.len(), 1);
        assert_eq!(timeline.moment(29.0).model.log.len(), 30);
    }

    #[test]
    fn failures_are_found_forward_and_back_a_burst_once_a_second() {
        let mut events = vec![(1.0, sticky("visitor", false))];
        // Ten refusals within half a second: one mark.
        events.extend((0..10).map(|i| (2.0 + f64::from(i) * 0.05, refused("visitor", 2_000))));
        events.push((
            7.0,
            Event::Session {
                user: "agent".into(),
                state: SessionState::Reconnecting {
                    reason: "transport close".into(),
                    attempt: 1,
                },
            },
        ));
        let (timeline, _) = recorded(events, None);
        let marks: Vec<(f64, &str)> = timeline
            .failures()
            .map(|f| (f.at, f.what.as_str()))
            .collect();
        // The refusal is marked where it shows: once its request has reached the replica.
        let shows = match refused("visitor", 2_000) {
            Event::Wire(wire) => Flights::mark_shows_at(&wire, 2.0),
            _ => unreachable!(),
        };
        assert!(shows > 2.0);
        assert_eq!(
            marks,
            [
                (shows, "visitor: Session ID unknown"),
                (7.0, "agent: transport close")
            ]
        );
        assert_eq!(timeline.next_failure(0.0).map(|f| f.at), Some(shows));
        assert_eq!(timeline.next_failure(shows).map(|f| f.at), Some(7.0));
        assert_eq!(timeline.next_failure(7.0), None);
        assert_eq!(timeline.previous_failure(7.0).map(|f| f.at), Some(shows));
        assert_eq!(timeline.previous_failure(shows), None);
        // At the moment it shows, the topology has the mark.
        let moment = timeline.moment(shows);
        assert_eq!(moment.model.flights.marks(shows).count(), 1);
    }

    #[test]
    fn a_live_timeline_keeps_its_last_minutes_and_no_more() {
        let events: Vec<(f64, Event)> = (0..1_000)
            .map(|i| (f64::from(i), sticky("agent", i % 2 == 0)))
            .collect();
        let (timeline, live) = recorded(events, Some(LIVE_KEEP_SECS));
        let kept = timeline.end() - timeline.start();
        assert!(
            (LIVE_KEEP_SECS..=LIVE_KEEP_SECS + CHECKPOINT_SECS + 1.0).contains(&kept),
            "{kept}"
        );
        assert!(timeline.len() <= 310, "{}", timeline.len());
        // The oldest moment kept is still right, and earlier ones are clamped to it.
        let oldest = timeline.moment(0.0);
        assert_eq!(oldest.at, timeline.start());
        let expected = (oldest.at as i64) % 2 == 0;
        assert_eq!(oldest.model.sticky["agent"], expected);
        assert_eq!(timeline.moment(1e9).model.sticky, live.sticky);
    }

    #[test]
    fn checkpoints_let_go_free_their_records_a_few_at_a_time_and_all_of_them() {
        // 2,000 records a second for two minutes, kept 5 minutes but at most
        // LIVE_KEEP_EVENTS: checkpoints are let go all along, and the records only they held
        // are freed a few per push, never thousands at once, never piling up.
        let mut live = model();
        let mut timeline = Timeline::new(model(), 0.0, Some(LIVE_KEEP_SECS));
        let Event::Wire(first) = refused("visitor", 0) else {
            unreachable!("refused() makes a wire record")
        };
        let first_kept = Arc::downgrade(&first);
        let mut most_releasing = 0;
        for i in 0..240_000u64 {
            let at = i as f64 / 2000.0;
            let event = if i == 0 {
                Event::Wire(Arc::clone(&first))
            } else {
                refused("visitor", i / 2)
            };
            live.apply(event.clone(), at);
            let before = timeline.releasing();
            timeline.push(at, event, &live);
            let after = timeline.releasing();
            // At most RELEASED_PER_PUSH freed by a push that lets no checkpoint go.
            assert!(after + RELEASED_PER_PUSH >= before || after > before);
            most_releasing = most_releasing.max(after);
        }
        drop(first);
        assert!(
            first_kept.upgrade().is_none(),
            "the first record is freed once nothing shows it"
        );
        // What waits to be freed stays within one log's worth of records.
        assert!(most_releasing > 0, "checkpoints were let go");
        assert!(
            most_releasing <= super::super::log::MAX_RECORDS,
            "{most_releasing}"
        );
        assert!(timeline.events.len() as u64 <= LIVE_KEEP_EVENTS + CHECKPOINT_EVENTS as u64);
    }

    #[test]
    fn a_busy_live_timeline_lets_old_events_go_a_few_at_a_time_and_never_hoards_them() {
        // 100 events a second for 20 minutes, kept 5: each second's backlog is let go over
        // the pushes that follow, never all at once, and never piles up.
        let mut live = model();
        let mut timeline = Timeline::new(model(), 0.0, Some(LIVE_KEEP_SECS));
        let mut most_held = 0;
        for i in 0..120_000u32 {
            let at = f64::from(i) / 100.0;
            let event = sticky("agent", i % 2 == 0);
            live.apply(event.clone(), at);
            let held_before = timeline.events.len();
            timeline.push(at, event, &live);
            // One in, at most two out.
            assert!(timeline.events.len() + 1 >= held_before);
            most_held = most_held.max(timeline.events.len());
        }
        let shown = timeline.len();
        assert!(
            (LIVE_KEEP_SECS * 100.0..=(LIVE_KEEP_SECS + CHECKPOINT_SECS + 1.0) * 100.0)
                .contains(&(shown as f64)),
            "{shown}"
        );
        // What is held beyond what is shown is less than one checkpoint span's worth.
        assert!(
            most_held - shown <= CHECKPOINT_EVENTS,
            "held {most_held}, shown {shown}"
        );
        assert_eq!(timeline.events().count(), shown);
        assert_eq!(timeline.moment(1e9).model.sticky, live.sticky);
        let oldest = timeline.moment(0.0);
        assert_eq!(oldest.at, timeline.start());
    }

    #[test]
    fn a_live_timeline_busier_than_its_event_bound_keeps_less_time_and_says_so() {
        // 1,000 events a second for two minutes: five minutes would be 300,000 events;
        // it keeps about the last LIVE_KEEP_EVENTS (30 s of them), and its start says how
        // far back.
        let mut live = model();
        let mut timeline = Timeline::new(model(), 0.0, Some(LIVE_KEEP_SECS));
        for i in 0..120_000u32 {
            let at = f64::from(i) / 1000.0;
            let event = sticky("agent", i % 2 == 0);
            live.apply(event.clone(), at);
            timeline.push(at, event, &live);
        }
        let shown = timeline.len() as u64;
        assert!(
            (LIVE_KEEP_EVENTS..=LIVE_KEEP_EVENTS + CHECKPOINT_EVENTS as u64).contains(&shown),
            "{shown}"
        );
        let kept = timeline.end() - timeline.start();
        let least = LIVE_KEEP_EVENTS as f64 / 1000.0;
        assert!(
            (least..=least + CHECKPOINT_EVENTS as f64 / 1000.0 + 0.5).contains(&kept),
            "{kept}"
        );
        assert!(timeline.events.len() as u64 <= shown + CHECKPOINT_EVENTS as u64);
        assert_eq!(timeline.moment(1e9).model.sticky, live.sticky);
    }

    #[test]
    fn time_never_runs_back_and_a_quiet_end_moves_on() {
        let (mut timeline, _) = recorded(vec![(5.0, sticky("agent", false))], None);
        timeline.push(3.0, sticky("agent", true), &model());
        assert_eq!(timeline.end(), 5.0);
        timeline.extend_to(9.0);
        assert_eq!(timeline.end(), 9.0);
        assert!(timeline.moment(8.0).model.sticky["agent"]);
    }

    #[test]
    fn a_playhead_plays_at_its_speed_passes_every_event_once_and_stops_at_the_end() {
        let events: Vec<(f64, Event)> = (0..20)
            .map(|i| (f64::from(i), sticky("agent", i % 2 == 0)))
            .collect();
        let (timeline, _) = recorded(events, None);
        let mut head = Playhead::at(&timeline, 2.5);
        assert!(head.moment.model.sticky["agent"]);
        assert!(!head.play(&timeline, 1.0, |_| panic!("paused: nothing passes")));
        head.playing = true;
        head.speed = 2.0;
        let mut passed = 0;
        assert!(!head.play(&timeline, 1.0, |_| passed += 1));
        assert_eq!((head.moment.at, passed), (4.5, 2));
        assert!(head.moment.model.sticky["agent"]);
        assert!(head.play(&timeline, 100.0, |_| passed += 1));
        assert_eq!((head.moment.at, passed, head.playing), (19.0, 17, false));
        // Back, then a little forward: the same as jumping there.
        head.seek(&timeline, 3.2);
        head.seek(&timeline, 5.1);
        assert_eq!(head.moment.next, timeline.moment(5.1).next);
        assert_eq!(head.moment.model.sticky, timeline.moment(5.1).model.sticky);
    }
}
