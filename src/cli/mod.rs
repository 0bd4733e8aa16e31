//! The `stickyscope` command's parts, one module a subcommand:
//!
//! - [`args`]: every flag, checked by clap with its range;
//! - [`window`]: the desktop window (no subcommand);
//! - [`probe`]: `stickyscope probe`, a verdict for QA and CI;
//! - [`inspect`]: `stickyscope inspect FILE`, probe's report from a capture;
//! - [`doctor`]: `stickyscope doctor`, what is wrong with a stack and how to fix it;
//! - [`stacks`]: `stickyscope embedded` and `stickyscope chain`, a stack until Ctrl-C;
//! - [`scenario`]: `stickyscope scenario list | run`.

pub mod args;
pub mod doctor;
pub mod inspect;
pub mod probe;
pub mod scenario;
pub mod stacks;
pub mod window;
