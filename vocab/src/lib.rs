//! stickyscope's vocabulary: the words every part of the app speaks, and nothing that acts.
//!
//! - [`events`]: the event stream from the network side and the command channel back — what
//!   happened and what the user asked for, the settings a user picks (transport, chat,
//!   Engine.IO), a session's state;
//! - [`record`]: one thing that crossed the wire (an HTTP exchange or a WebSocket message),
//!   with its replica and, for a failure, its reason; [`timing`] says what its time was spent
//!   on; [`refusal`] reads an error answer's reason;
//! - [`naming`]: which replica answered, from the best source there is (`X-Replica`, a header,
//!   a balancer's sticky cookie); [`rate_limit`]: which refusals were a gateway's rate limit,
//!   and the rate that tripped it;
//! - [`topology`]: gateway hops and replicas; [`traefik_model`]: the shapes of Traefik v3's
//!   API documents; [`traefik_reading`]: the topology and the label problems read from them;
//! - [`protocol`]: Engine.IO (v3, v4), Socket.IO and WebSocket codecs;
//! - [`access`]: where Socket.IO lives on a stack (path, namespace) and who the users are to
//!   it (auth, headers, cookies), and which of those are secrets;
//! - [`capture`]: the capture format, a recorded session as a file users keep;
//! - [`doctor`]: `stickyscope doctor`'s checks, what each found and the report they make;
//! - [`xml`]: text escaped for the JUnit reports;
//! - [`stack`]: what any stack is made of — the adapter between replicas, the replica limit.
//!
//! What the replicas themselves agree on with their observers (request kinds, the heartbeat,
//! `/stats`, the chat protocol, header names) is one floor lower, in `stickyscope-contract`.
//!
//! Pure: this crate has no dependency that could open a socket, spawn a task or draw
//! (`tests/pure.rs` holds its dependency list to that), so the view model, the scenarios and
//! the window can speak it without reaching the network.

pub mod access;
pub mod capture;
pub mod doctor;
pub mod events;
pub mod naming;
pub mod protocol;
pub mod rate_limit;
pub mod record;
pub mod refusal;
pub mod stack;
pub mod timing;
pub mod topology;
pub mod traefik_model;
pub mod traefik_reading;
pub mod xml;
