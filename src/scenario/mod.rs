//! Scenarios: short scripts of steps — actions, a caption, and what must be seen within a
//! time — that the window plays for a talk and `stickyscope scenario run` checks for QA.
//!
//! - [`format`]: the TOML file, read and checked whole before anything runs (pure).
//! - [`check`]: whether a step's expectations hold, from the event stream (pure).
//! - [`player`]: a step's actions as commands at the right moments, going to a step with
//!   the stack put back as it starts (pure: the runner and the window drive it).
//! - [`report`]: the results as a table, JSON and JUnit XML (pure).
//! - [`shipped`]: the scenarios that come with the app (`assets/scenarios/`).
//! - [`run`]: plays a scenario on a conductor, headless (network).

pub mod check;
pub mod format;
pub mod player;
pub mod report;
pub mod run;
pub mod shipped;

pub use check::{Outcome, Status, StepCheck};
pub use format::{parse, Action, Expectation, Scenario, ScenarioError, Step};
