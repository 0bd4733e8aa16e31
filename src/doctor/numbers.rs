//! The doctor's checks made of many sessions: where sessions land (7), and whether opening
//! many at once trips a rate limit (9). Network; judged by [`super::verdicts`].

use std::time::Duration;

use stickyscope_vocab::doctor::CheckResult;
use stickyscope_vocab::naming::Identify;

use super::probes::Found;
use super::user::{Opened, PollingUser, Seen};
use super::verdicts;
use super::wire::DoctorWire;

/// Check 7: `count` sessions opened one after another, each with a second request (its
/// namespace's CONNECT, answered at once), by replica.
pub async fn spread(
    wire: &DoctorWire,
    identify: &Identify,
    found: &Found,
    count: usize,
    up: Option<usize>,
) -> CheckResult {
    let mut sessions: Vec<(Seen, Option<Seen>)> = Vec::with_capacity(count);
    for _ in 0..count {
        match PollingUser::handshake(wire, identify, found.eio, None, &[]).await {
            Ok(Opened::Open(mut user)) => {
                let second = user.post(wire, &["40"]).await.ok().cloned();
                let first = user.handshake_seen().clone();
                (*user).close(wire).await;
                sessions.push((first, second));
            }
            Ok(Opened::Not(seen)) => sessions.push((*seen, None)),
            Err(_) => {}
        }
    }
    verdicts::spread(&sessions, up)
}

/// Check 9: `count` handshakes sent at once.
pub async fn headroom(
    wire: &DoctorWire,
    identify: &Identify,
    found: &Found,
    count: usize,
) -> CheckResult {
    let tries = (0..count).map(|_| async {
        match PollingUser::handshake(wire, identify, found.eio, None, &[]).await {
            Ok(Opened::Open(user)) => {
                let seen = user.handshake_seen().clone();
                (*user).close(wire).await;
                Ok(seen)
            }
            Ok(Opened::Not(seen)) => Ok(*seen),
            Err(e) => Err(e.to_string()),
        }
    });
    let answers = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(tries),
    )
    .await
    .unwrap_or_else(|_| vec![Err("no answer within 30 s".to_owned())]);
    verdicts::headroom(&answers)
}
