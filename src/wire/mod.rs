//! The wire tap: what each chat user's traffic looked like on the wire.
//!
//! [`jar`] is a user's cookie jar (pure); [`tap`] is the transparent proxy that records
//! (network). What it records — [`stickyscope_vocab::record::WireRecord`] — and how it names
//! the replica behind an answer ([`stickyscope_vocab::naming`]) are words of the vocabulary.
//!
//! Naming flows one way: one [`Learner`] — whoever reads the balancer's API (the topology
//! poller, the probe) — writes what names replicas, and the taps only read it ([`Naming`]).

pub mod jar;
pub mod tap;

use stickyscope_vocab::naming::Identify;
use stickyscope_vocab::topology::Topology;
use tokio::sync::watch;

pub use tap::{Answer, NotSwitched, Tap, TapConfig};

/// What the taps read to name replicas: the latest [`Identify`] the [`Learner`] wrote.
pub type Naming = watch::Receiver<Identify>;

/// Naming that nobody will ever teach: `identify` for good.
pub fn fixed_naming(identify: Identify) -> Naming {
    watch::channel(identify).1
}

/// The one writer of a [`Naming`]: teaches the taps a balancer's servers and its sticky
/// cookie's name, keeping what the user gave by hand.
#[derive(Debug)]
pub struct Learner {
    writer: watch::Sender<Identify>,
    keep_cookie: bool,
    keep_servers: bool,
}

impl Learner {
    /// Starts from `identify`; `keep_cookie` and `keep_servers` say what the user gave by
    /// hand (it is never replaced). Returns the learner and what the taps read.
    pub fn start(identify: Identify, keep_cookie: bool, keep_servers: bool) -> (Learner, Naming) {
        let (writer, naming) = watch::channel(identify);
        (
            Learner {
                writer,
                keep_cookie,
                keep_servers,
            },
            naming,
        )
    }

    /// Takes in what the balancer's API says.
    pub fn learn(&self, topology: &Topology) {
        self.writer.send_modify(|identify| {
            identify.learn(topology, self.keep_cookie, self.keep_servers);
        });
    }
}
