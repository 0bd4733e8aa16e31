//! stickyscope: see, teach and test how Socket.IO sessions survive (or break) behind load
//! balancers.
//!
//! - [`balancer`]: the built-in sticky balancer (network).
//! - [`embedded`]: replicas and balancer in one process (network).
//! - [`protocol`]: Engine.IO, Socket.IO and WebSocket decoding (pure).
//! - [`traefik_model`]: the Traefik v3 API documents both modes share (pure).

pub mod balancer;
pub mod embedded;
pub mod protocol;
pub mod traefik_model;
