//! Check 10, on a stack stickyscope runs (the embedded stack, the chain): the replica
//! holding a user's session is killed, and the user — the same jar, its cookie naming the
//! dead replica — must be re-stuck on another replica, with a fresh cookie, within the
//! balancer's health interval and a little. The killed replica is started again and
//! waited for, so the stack is left as it was found. Network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stickyscope_vocab::doctor::{CheckId, CheckResult, Outcome};
use stickyscope_vocab::naming::Identify;

use super::fixes;
use super::probes::Found;
use super::user::{Opened, PollingUser};
use super::wire::DoctorWire;
use crate::stack::{ReplicaControl, ReplicaState};

/// Re-stuck within this: PASS (the stacks stickyscope runs check health every second).
const GOOD: Duration = Duration::from_secs(3);
/// Not re-stuck within this: FAIL.
const BOUND: Duration = Duration::from_secs(10);

/// Check 10.
pub async fn failover(
    wire: &DoctorWire,
    identify: &Identify,
    found: &Found,
    controls: Option<&Arc<dyn ReplicaControl>>,
) -> CheckResult {
    let id = CheckId::Failover;
    let Some(controls) = controls else {
        return CheckResult::skipped(
            id,
            "only on a stack stickyscope runs (the embedded stack, --chain), where it may kill a replica",
        );
    };
    let user = match PollingUser::handshake(wire, identify, found.eio, None, &[]).await {
        Ok(Opened::Open(user)) => user,
        Ok(Opened::Not(seen)) => {
            return CheckResult::new(id, Outcome::Fail, format!("no session: {}", seen.line()))
        }
        Err(e) => return CheckResult::new(id, Outcome::Fail, format!("no session: {e}")),
    };
    let Some(holder) = user.replica().map(str::to_owned) else {
        return CheckResult::skipped(id, "which replica holds the session is not known");
    };
    let old_cookie = user.jar.get(&identify.cookie).map(str::to_owned);
    let mut evidence = vec![user.handshake_seen().line()];
    if let Err(e) = controls.kill(&holder).await {
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!("could not kill replica {holder}: {e}"),
        );
    }
    let killed = Instant::now();
    evidence.push(format!("replica {holder} killed"));
    let mut jar = user.jar.clone();
    let mut outcome = None;
    let mut tries = 0;
    while killed.elapsed() < BOUND {
        tries += 1;
        match PollingUser::handshake(wire, identify, found.eio, Some(jar.clone()), &[]).await {
            Ok(Opened::Open(again)) => {
                let seen = again.handshake_seen().clone();
                let fresh = seen.set_sticky.clone();
                jar = again.jar.clone();
                (*again).close(wire).await;
                if seen.replica.as_deref() != Some(holder.as_str()) {
                    outcome = Some((killed.elapsed(), seen, fresh));
                    break;
                }
            }
            Ok(Opened::Not(seen)) => {
                if tries <= 3 {
                    evidence.push(seen.line());
                }
            }
            Err(e) => {
                if tries <= 3 {
                    evidence.push(e.to_string());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Leave the stack as it was found.
    let _ = controls.restart(&holder).await;
    let back = Instant::now() + Duration::from_secs(10);
    while Instant::now() < back {
        let running = controls
            .statuses()
            .await
            .iter()
            .any(|s| s.id == holder && s.state == ReplicaState::Running);
        if running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some((after, seen, fresh)) = outcome else {
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!(
                "{} s after replica {holder} died, its users still got no session elsewhere: the balancer does not notice a dead replica",
                BOUND.as_secs()
            ),
        )
        .with_evidence(evidence)
        .with_fix(fixes::HEALTH_CHECK);
    };
    evidence.push(seen.line());
    let on = seen
        .replica
        .clone()
        .unwrap_or_else(|| "another replica".into());
    match fresh {
        Some(value) if Some(&value) != old_cookie.as_ref() => {
            evidence.push(format!("  a fresh cookie {}={value}", identify.cookie));
            let outcome = if after <= GOOD { Outcome::Pass } else { Outcome::Warn };
            CheckResult::new(
                id,
                outcome,
                format!(
                    "re-stuck on {on} {:.1} s after replica {holder} died, with a fresh cookie",
                    after.as_secs_f64()
                ),
            )
            .with_evidence(evidence)
        }
        _ if old_cookie.is_none() => CheckResult::new(
            id,
            Outcome::Pass,
            format!("on {on} {:.1} s after replica {holder} died (this stack pins by no cookie)", after.as_secs_f64()),
        )
        .with_evidence(evidence),
        _ => CheckResult::new(
            id,
            Outcome::Warn,
            format!(
                "on {on} {:.1} s after replica {holder} died, but without a fresh cookie: the next request may go anywhere",
                after.as_secs_f64()
            ),
        )
        .with_evidence(evidence),
    }
}
