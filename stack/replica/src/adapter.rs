//! The adapter between replicas, chosen at start-up.
//!
//! Replicas broadcast chat messages through socketioxide-redis's adapter. Its [`Driver`]
//! is what carries the adapter's messages: a real Redis ([`RedisDriver`]) or the in-process
//! [`MemoryBus`]. [`AdapterDriver`] is either, so both run the same adapter code. With
//! [`AdapterChoice::None`] a replica uses socketioxide's local adapter and broadcasts reach
//! only its own sockets — the flaw of the seed demo, kept for showing it.

use socketioxide_redis::drivers::redis::{redis_client, RedisDriver, RedisError};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};

use crate::bus::{BusDriver, BusError, MemoryBus};

/// Which adapter a replica uses.
#[derive(Debug, Clone, Default)]
pub enum AdapterChoice {
    /// No adapter: broadcasts stay on this replica.
    #[default]
    None,
    /// Replicas in one process, sharing this bus.
    Memory(MemoryBus),
    /// A Redis server (v7+, RESP3), by URL.
    Redis(String),
}

impl AdapterChoice {
    /// A short name for logs and the UI.
    pub fn name(&self) -> &'static str {
        match self {
            AdapterChoice::None => "none",
            AdapterChoice::Memory(_) => "memory",
            AdapterChoice::Redis(_) => "redis",
        }
    }
}

/// The driver behind the adapter: Redis or the memory bus.
#[derive(Clone)]
pub enum AdapterDriver {
    /// A real Redis.
    Redis(RedisDriver),
    /// The in-process bus.
    Memory(BusDriver),
}

impl AdapterDriver {
    /// Connects to Redis at `url`. RESP3 is required by the adapter; it is asked for
    /// when the URL does not say which protocol to use.
    pub async fn connect_redis(url: &str) -> Result<Self, DriverError> {
        let url = if url.contains("protocol=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&protocol=resp3")
        } else {
            format!("{url}?protocol=resp3")
        };
        let client = redis_client::Client::open(url.as_str()).map_err(RedisError::from)?;
        let driver = RedisDriver::new(&client).await.map_err(RedisError::from)?;
        Ok(AdapterDriver::Redis(driver))
    }

    /// A driver on the in-process bus.
    pub fn memory(bus: &MemoryBus) -> Self {
        AdapterDriver::Memory(bus.driver())
    }

    /// Leaves the bus at once (no-op for Redis, whose connection closes with the driver).
    pub fn leave(&self) {
        if let AdapterDriver::Memory(driver) = self {
            driver.leave();
        }
    }
}

/// An error of the adapter's transport.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Redis refused or failed.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// The memory bus failed (it does not).
    #[error(transparent)]
    Memory(#[from] BusError),
}

impl Driver for AdapterDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), DriverError> {
        match self {
            AdapterDriver::Redis(d) => Ok(d.publish(chan, val).await?),
            AdapterDriver::Memory(d) => Ok(d.publish(chan, val).await?),
        }
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, DriverError> {
        match self {
            AdapterDriver::Redis(d) => Ok(d.subscribe(chan, size).await?),
            AdapterDriver::Memory(d) => Ok(d.subscribe(chan, size).await?),
        }
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), DriverError> {
        match self {
            AdapterDriver::Redis(d) => Ok(d.unsubscribe(chan).await?),
            AdapterDriver::Memory(d) => Ok(d.unsubscribe(chan).await?),
        }
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, DriverError> {
        match self {
            AdapterDriver::Redis(d) => Ok(d.num_serv(chan).await?),
            AdapterDriver::Memory(d) => Ok(d.num_serv(chan).await?),
        }
    }
}
