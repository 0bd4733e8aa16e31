//! stickyscope: see, teach and test how Socket.IO sessions survive (or break) behind load
//! balancers.
//!
//! The words every part speaks — events and commands, wire records, replica naming,
//! topology, Traefik's API shapes, the protocol codecs — are the `stickyscope-vocab` crate
//! (pure, by its dependencies), above the `stickyscope-contract` the replicas share. This
//! crate, floor by floor (`tests/layering.rs` holds the floors):
//!
//! The window's side (pure but for the window itself):
//! - [`ui`]: the desktop window (egui); it draws the model and sends commands, and reaches
//!   the network only through its bridge to the conductor.
//! - [`model`]: what the window shows, folded from events (pure).
//! - [`scenario`]: scripted steps with captions and expectations, for talks and QA: the
//!   format, its reader and checks, the player (pure), the headless runner (network).
//! - [`clip`]: recording the window to an animated GIF, encoded on a thread of its own
//!   (frames to GIF pure).
//! - [`capture`]: captures on disk, written as they are recorded and read back as a stream;
//!   [`recorded`]: a capture read into a timeline for the window (`stickyscope open`);
//!   [`har`]: a browser's HAR read as a capture (pure but for reading the file).
//!
//! The network side:
//! - [`conductor`]: the network side as one piece: the stack, sessions, poller, crowd, and
//!   the command loop; it knows no stack by name.
//! - [`event_sink`]: the event stream's sending end, handed to everything on this side.
//! - [`probe`]: the headless probe's report (pure) and runner.
//! - [`doctor`]: the checklist run against a stack — what is wrong and how to fix it
//!   (the verdicts, fixes and rendering pure; the checks speak Engine.IO by hand).
//! - [`session`]: one supervised chat session per user (pure parts inside).
//! - [`wire`]: the wire tap that records each user's traffic, and the cookie jar.
//! - [`stack`]: the stack under test: which one, how it starts, and the one interface to the
//!   replicas of the stacks stickyscope runs (the embedded stack, the local chain).
//! - [`balancer`]: the built-in sticky balancer of the embedded stack.
//! - [`traefik_client`]: reading a real Traefik v3 API; [`topology_read`]: a stack's
//!   topology read from its balancer's API.
//! - [`tls_trust`]: how an `https://` peer (the gateway, Traefik's API) is trusted, and a
//!   refused certificate in words.
//! - [`http_serve`]: the accept loop of the balancer and the taps.
//! - [`open_files`]: the open files N sessions need, the limit raised, a low one named.

pub mod balancer;
pub mod capture;
pub mod clip;
pub mod conductor;
pub mod doctor;
pub mod event_sink;
pub mod har;
pub mod http_serve;
pub mod model;
pub mod open_files;
pub mod probe;
pub mod recorded;
pub mod scenario;
pub mod session;
pub mod stack;
pub mod tls_trust;
pub mod topology_read;
pub mod traefik_client;
pub mod ui;
pub mod wire;
