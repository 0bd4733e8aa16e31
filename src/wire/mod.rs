//! The wire tap: what each chat user's traffic looked like on the wire.
//!
//! [`jar`] is a user's cookie jar (pure); [`tap`] is the transparent proxy that records
//! (network). What it records — [`stickyscope_vocab::record::WireRecord`] — and how it names
//! the replica behind an answer ([`stickyscope_vocab::naming`]) are words of the vocabulary.

pub mod jar;
pub mod tap;

pub use tap::{Tap, TapConfig};

/// One [`stickyscope_vocab::naming::Identify`] shared by the taps and whoever learns the
/// server list (the topology poller).
pub type SharedIdentify = std::sync::Arc<std::sync::RwLock<stickyscope_vocab::naming::Identify>>;
