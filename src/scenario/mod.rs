//! Scenarios: short scripts of steps — actions, a caption, and what must be seen within a
//! time — that the window plays for a talk and `stickyscope scenario run` checks for QA.
//!
//! - [`format`](mod@format): what a scenario is — its stack, how the users start, its
//!   steps (actions, expectations) — with where each part stands in its file (pure types).
//! - [`reader`]: the TOML file read into those, and checked whole before anything runs (pure).
//! - [`capabilities`]: what a stack can do, and refusing a scenario that asks for more (pure).
//! - [`check`]: whether a step's expectations hold, from the event stream (pure).
//! - [`player`]: a step's actions as commands at the right moments, going to a step with
//!   the stack put back as it starts (pure: the runner and the window drive it).
//! - [`report`]: the results as a table, JSON and JUnit XML (pure).
//! - [`shipped`]: the scenarios that come with the app (`assets/scenarios/`).
//! - [`run`]: plays a scenario on a conductor, headless (network).

pub mod capabilities;
pub mod check;
pub mod format;
pub mod player;
pub mod reader;
pub mod report;
pub mod run;
pub mod shipped;

pub use check::{Outcome, Status, StepCheck};
pub use format::{Action, Expectation, Scenario, ScenarioError, Step};
pub use reader::parse;
