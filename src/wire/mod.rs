//! The wire tap: what each chat user's traffic looked like on the wire.
//!
//! [`event`] defines the record of one exchange or frame (pure data, exported as JSON
//! Lines); [`jar`] is a user's cookie jar (pure); [`identify`] names the replica behind an
//! answer from the best source there is (pure); [`timing`] says what a record's time was
//! spent on, a round trip or a long poll's hold (pure); [`tap`] is the transparent proxy that
//! records (network).

pub mod event;
pub mod identify;
pub mod jar;
pub mod tap;
pub mod timing;

pub use event::{Direction, Failure, FailureKind, Transport, WireEvent, WireKind};
pub use tap::{Tap, TapConfig};
