//! What the stack a scenario runs on can do — replica controls, the replicas' `/stats`,
//! replicas known by number, Redis between replicas — and the check that refuses a scenario
//! asking for more, with its place in the file, so that nothing runs half-done. Pure.
//!
//! The file's own consistency (replicas that exist, known users) is [`super::reader`]'s.

use stickyscope_vocab::stack::Adapter;

use super::format::{Action, Expectation, Scenario, ScenarioError};

/// What the stack a scenario runs on can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Replica controls (a stack stickyscope started, or a swarm through its engine).
    pub controls: bool,
    /// The replicas' `/stats` (stickyscope's replicas, started by it).
    pub stats: bool,
    /// Replicas known by number (`1`, `2`, …): pins and expectations may name them so.
    pub numbered_replicas: bool,
    /// Redis between replicas (the chain, the swarm stack).
    pub redis_adapter: bool,
}

impl Scenario {
    /// Refuses, with the place in `file`, what this stack cannot do: nothing runs
    /// half-done.
    pub fn check_against(&self, file: &str, can: Capabilities) -> Result<(), ScenarioError> {
        let refuse = |(line, column): (usize, usize), message: String| ScenarioError {
            file: file.to_owned(),
            line,
            column,
            message,
        };
        if self.stack.adapter == Adapter::Redis && can.controls && !can.redis_adapter {
            return Err(refuse(
                self.stack.adapter_at,
                "adapter \"redis\" needs the local chain (--chain); the embedded stack's is \"memory\"".into(),
            ));
        }
        for step in &self.steps {
            for (action, at) in step.actions.iter().zip(&step.action_at) {
                if let Some(message) = can.refuses_action(action) {
                    return Err(refuse(*at, message));
                }
            }
            for (expectation, at) in step.expect.iter().zip(&step.expect_at) {
                if let Some(message) = can.refuses_expectation(expectation) {
                    return Err(refuse(*at, message));
                }
            }
        }
        Ok(())
    }
}

impl Capabilities {
    /// Why this stack cannot do `action`, if it cannot.
    fn refuses_action(&self, action: &Action) -> Option<String> {
        if action.needs_controls() && !self.controls {
            return Some(format!("cannot {action} here: only on a stack stickyscope started (the embedded stack or --chain) or a swarm whose engine is given (--docker), not on --gateway alone"));
        }
        if let Action::Pin { replica, .. } = action {
            if !self.numbered_replicas && !replica.contains(':') {
                return Some(format!("cannot pin to replica {replica:?} here: on a stack stickyscope did not start, name the server by its address (host:port)"));
            }
            if self.numbered_replicas && replica.contains(':') {
                return Some(format!(
                    "cannot pin to {replica:?} here: this stack's replicas are named by number"
                ));
            }
        }
        None
    }

    /// Why `expectation` cannot be checked, or can never hold, on this stack, if so.
    fn refuses_expectation(&self, expectation: &Expectation) -> Option<String> {
        if let Some(replica) = expectation.named_replica() {
            if self.numbered_replicas && replica.contains(':') {
                return Some(format!(
                    "{expectation} can never hold here: this stack's replicas are named by number"
                ));
            }
        }
        if expectation.needs_stats() && !self.stats {
            return Some(format!("cannot check {expectation} here: /stats is read from stacks stickyscope started only"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::reader::parse;
    use crate::scenario::reader::tests::GOOD;

    #[test]
    fn what_a_stack_cannot_do_is_refused_before_anything_runs() {
        let s = parse("f.toml", GOOD).unwrap();
        let gateway = Capabilities {
            controls: false,
            stats: false,
            numbered_replicas: false,
            redis_adapter: false,
        };
        let e = s.check_against("f.toml", gateway).unwrap_err();
        assert_eq!((e.line, e.column), (5, 47));
        assert!(
            e.message.contains("kill the replica holding visitor"),
            "{e}"
        );
        let pin = parse(
            "p.toml",
            "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ pin = \"agent\", replica = \"2\" }]\n",
        )
        .unwrap();
        assert!(pin.check_against("p.toml", gateway).is_err());
        let by_address = parse(
            "p.toml",
            "title = \"t\"\n[[step]]\ntitle = \"s\"\ndo = [{ pin = \"agent\", replica = \"10.0.0.7:3000\" }]\n",
        )
        .unwrap();
        assert!(by_address.check_against("p.toml", gateway).is_ok());
        let embedded = Capabilities {
            controls: true,
            stats: true,
            numbered_replicas: true,
            redis_adapter: false,
        };
        let e = by_address.check_against("p.toml", embedded).unwrap_err();
        assert!(e.message.contains("named by number"), "{e}");
    }
}
