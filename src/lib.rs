//! stickyscope: see, teach and test how Socket.IO sessions survive (or break) behind load
//! balancers.
//!
//! - [`balancer`]: the built-in sticky balancer (network).
//! - [`capture`]: wire records as JSON Lines.
//! - [`clip`]: recording the window to an animated GIF, encoded on a thread of its own
//!   (frames to GIF pure).
//! - [`chain`]: the real chain (nginx → Traefik → replica processes → Redis) as local
//!   child processes (processes; its stack-file reading pure).
//! - [`embedded`]: replicas and balancer in one process (network).
//! - [`conductor`]: the network side as one piece: stack, sessions, poller, command loop.
//! - [`events`]: the event stream and command channel between network and UI (pure types
//!   and the stream's sending end), below both.
//! - [`session`]: one supervised chat session per user (network; pure parts inside).
//! - [`topology`]: gateway hops and replicas (pure).
//! - [`http_serve`]: the accept loop of the balancer and the taps (network).
//! - [`model`]: what the window shows, folded from events (pure).
//! - [`probe`]: the headless probe's report (pure) and runner (network).
//! - [`protocol`]: Engine.IO (v3, v4), Socket.IO and WebSocket decoding (pure).
//! - [`scenario`]: scripted steps with captions and expectations, for talks and QA: the
//!   file and its checks (pure), the headless runner (network).
//! - [`traefik_client`]: reading a real Traefik v3 API (network; analysis pure).
//! - [`traefik_model`]: the Traefik v3 API documents both modes share (pure).
//! - [`ui`]: the desktop window (egui); it draws the model and sends commands.
//! - [`wire`]: the wire tap that records each user's traffic (network) and its records (pure).

pub mod balancer;
pub mod capture;
pub mod clip;
pub mod conductor;
pub mod event_sink;
pub mod http_serve;
pub mod model;
pub mod probe;
pub mod scenario;
pub mod session;
pub mod stack;
pub mod traefik_client;
pub mod ui;
pub mod wire;
