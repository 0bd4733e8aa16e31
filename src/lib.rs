//! stickyscope: see, teach and test how Socket.IO sessions survive (or break) behind load
//! balancers.
//!
//! - [`balancer`]: the built-in sticky balancer (network).
//! - [`embedded`]: replicas and balancer in one process (network).
//! - [`traefik_model`]: the Traefik v3 API documents both modes share (pure).

pub mod balancer;
pub mod embedded;
pub mod traefik_model;
