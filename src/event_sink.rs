//! The sending end of the event stream, handed to everything on the network side.
//!
//! Bounded: wire records are dropped (and counted) when the UI falls behind, while session
//! states, chat messages and topology wait for room, so none of those is ever lost. Every
//! send calls the waker, which the UI sets to "repaint", saying whether the event is news
//! or only a heartbeat (a resting window folds those in later); the network side never
//! sees a UI type.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use stickyscope_vocab::events::Event;
use stickyscope_vocab::record::WireRecord;

/// Default capacity of the stream.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// What just arrived, for a consumer deciding how soon to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something worth showing now.
    News,
    /// A record carrying nothing but heartbeats.
    Heartbeat,
}

/// A callback that tells the consumer there is something to read.
pub type Waker = Arc<dyn Fn(Wake) + Send + Sync>;

/// Sends events to the consumer.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Event>,
    waker: Waker,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl EventSink {
    /// A stream of `capacity` events; returns both ends.
    pub fn new(capacity: usize, waker: Waker) -> (EventSink, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity.max(16));
        (
            EventSink {
                tx,
                waker,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            rx,
        )
    }

    /// Sends a wire record, dropping it if the consumer is too far behind.
    pub fn wire(&self, record: WireRecord) {
        let wake = if record.is_heartbeat_only() {
            Wake::Heartbeat
        } else {
            Wake::News
        };
        match self.tx.try_send(Event::Wire(std::sync::Arc::new(record))) {
            Ok(()) => (self.waker)(wake),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Sends an event that must not be lost, waiting for room.
    pub async fn send(&self, event: Event) {
        if self.tx.send(event).await.is_ok() {
            (self.waker)(Wake::News);
        }
    }

    /// Wire records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
