//! An in-memory pub/sub bus for replicas that share one process.
//!
//! It implements socketioxide-redis's [`Driver`] trait, the adapter's own extension point,
//! so replicas of the embedded stack run the very same adapter code as replicas that talk
//! through a real Redis: only the transport of the adapter's messages differs. Like Redis
//! pub/sub, a publish reaches every current subscriber of the channel, the publisher's own
//! subscription included, and is dropped (with a warning) when a subscriber's buffer is full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

type Subscribers = HashMap<String, Vec<(u64, mpsc::Sender<ChanItem>)>>;

/// The shared hub. Clone it into every replica that should hear the others.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    channels: Arc<Mutex<Subscribers>>,
    next_member: Arc<AtomicU64>,
}

impl MemoryBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A driver for one replica: its subscriptions are its own, its publishes reach all.
    pub fn driver(&self) -> BusDriver {
        BusDriver {
            bus: self.clone(),
            member: self.next_member.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One replica's handle on a [`MemoryBus`].
#[derive(Debug, Clone)]
pub struct BusDriver {
    bus: MemoryBus,
    member: u64,
}

impl BusDriver {
    /// Drops every subscription of this member (its replica is gone).
    pub fn leave(&self) {
        let mut channels = self.bus.lock();
        for subscribers in channels.values_mut() {
            subscribers.retain(|(member, _)| *member != self.member);
        }
        channels.retain(|_, subscribers| !subscribers.is_empty());
    }
}

/// The bus never fails; this type exists because [`Driver`] needs one.
#[derive(Debug, thiserror::Error)]
#[error("memory bus error")]
pub struct BusError;

impl Driver for BusDriver {
    type Error = BusError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), BusError> {
        let mut channels = self.bus.lock();
        if let Some(subscribers) = channels.get_mut(&chan) {
            subscribers.retain(|(_, tx)| !tx.is_closed());
            for (_, tx) in subscribers.iter() {
                if let Err(e) = tx.try_send((chan.clone(), val.clone())) {
                    tracing::warn!(%chan, "memory bus subscriber full, message dropped: {e}");
                }
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, BusError> {
        let (tx, rx) = mpsc::channel(size.max(1));
        let mut channels = self.bus.lock();
        let subscribers = channels.entry(chan).or_default();
        subscribers.retain(|(member, _)| *member != self.member);
        subscribers.push((self.member, tx));
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), BusError> {
        let mut channels = self.bus.lock();
        if let Some(subscribers) = channels.get_mut(&chan) {
            subscribers.retain(|(member, _)| *member != self.member);
            if subscribers.is_empty() {
                channels.remove(&chan);
            }
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, BusError> {
        let channels = self.bus.lock();
        let count = channels
            .get(chan)
            .map(|subscribers| subscribers.iter().filter(|(_, tx)| !tx.is_closed()).count())
            .unwrap_or(0);
        Ok(u16::try_from(count).unwrap_or(u16::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn publish_reaches_every_subscriber_and_counts_servers() {
        let bus = MemoryBus::new();
        let (a, b) = (bus.driver(), bus.driver());
        let mut a_stream = a.subscribe("ch".into(), 4).await.unwrap();
        let mut b_stream = b.subscribe("ch".into(), 4).await.unwrap();
        assert_eq!(a.num_serv("ch").await.unwrap(), 2);

        b.publish("ch".into(), vec![1, 2]).await.unwrap();
        assert_eq!(a_stream.next().await, Some(("ch".into(), vec![1, 2])));
        assert_eq!(b_stream.next().await, Some(("ch".into(), vec![1, 2])));

        b.leave();
        assert_eq!(a.num_serv("ch").await.unwrap(), 1);
        a.unsubscribe("ch".into()).await.unwrap();
        assert_eq!(a.num_serv("ch").await.unwrap(), 0);
    }
}
