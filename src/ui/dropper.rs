//! Freeing big values off the frame: a thread of its own drops what it is handed (a copy
//! of the view model with minutes of history takes milliseconds to free, which a frame
//! cannot spare). Started on first use; it ends when its owner is dropped.

use std::sync::mpsc;

/// Drops values on a thread of its own.
#[derive(Debug)]
pub struct Dropper<T: Send + 'static> {
    to_drop: Option<mpsc::Sender<Vec<T>>>,
}

impl<T: Send + 'static> Default for Dropper<T> {
    fn default() -> Self {
        Dropper { to_drop: None }
    }
}

impl<T: Send + 'static> Dropper<T> {
    /// Drops `values` on the dropping thread (here, if that thread cannot run).
    pub fn drop_later(&mut self, values: Vec<T>) {
        if values.is_empty() {
            return;
        }
        let sender = self.to_drop.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<Vec<T>>();
            let started = std::thread::Builder::new()
                .name("stickyscope-dropper".into())
                .spawn(move || {
                    for batch in rx {
                        drop(batch);
                    }
                });
            if let Err(e) = started {
                tracing::debug!("no dropping thread ({e}): values are dropped on the frame");
            }
            tx
        });
        // With no thread behind it the send fails and hands the values back: dropped here.
        let _ = sender.send(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn what_it_is_handed_is_dropped_on_another_thread_and_all_of_it() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut dropper = Dropper::default();
        dropper.drop_later((0..3).map(|_| Counted(Arc::clone(&dropped))).collect());
        dropper.drop_later(Vec::new());
        dropper.drop_later(vec![Counted(Arc::clone(&dropped))]);
        // Dropping the dropper ends its thread once the queue is empty; wait for the count
        // with a bound.
        drop(dropper);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while dropped.load(Ordering::SeqCst) < 4 {
            assert!(std::time::Instant::now() < deadline, "not all dropped");
            std::thread::yield_now();
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 4);
    }
}
