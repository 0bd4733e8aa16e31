//! Chaos: for about a minute, replicas are killed and restarted at random every 3–8 s while
//! both users chat ten messages a second each, and stickiness and transport are switched
//! midway. Nothing is lost, nothing is shown twice, nothing panics, and every session whose
//! replica was killed is back — a new session, on another replica or on the same one once
//! restarted — within the failover bound.
//!
//! `STICKYSCOPE_CHAOS_SECS` sets the length (default 60), `STICKYSCOPE_CHAOS_SEED` replays a
//! schedule (the seed is printed). A failover past its bound prints what that user's session
//! and wire did meanwhile.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{embedded_conductor, wait_for, Collected};
use stickyscope_vocab::events::{Command, Event, OutboxStatus, ReplicaAction};
use stickyscope_vocab::events::{SessionState, TransportChoice};
use tokio::sync::mpsc::Sender;

/// A session whose replica dies is up again on another one within this.
const FAILOVER_BOUND: Duration = Duration::from_secs(2);
use stickyscope_contract::chat::USERS;

/// A small deterministic generator (xorshift64*), so a failing schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The replica and Engine.IO session id `user` is connected with, if connected.
fn session_of(seen: &Collected, user: &str) -> Option<(String, String)> {
    match seen.state(user) {
        Some(SessionState::Connected { replica, sid, .. }) => Some((replica?, sid)),
        _ => None,
    }
}

fn replica_ids(seen: &Collected) -> Vec<String> {
    seen.events()
        .into_iter()
        .rev()
        .find_map(|e| match e {
            Event::Topology(t) => Some(t.replicas.into_iter().filter_map(|r| r.id).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Restarts every replica in `dead` and forgets them.
fn restart_all(commands: &Sender<Command>, dead: &mut BTreeSet<String>) {
    for id in std::mem::take(dead) {
        commands
            .try_send(Command::Replica {
                id,
                action: ReplicaAction::Restart,
            })
            .expect("conductor takes commands");
    }
}

/// A kill that took a session down: when, which replica, whose session.
struct Loss {
    at: Instant,
    replica: String,
    sid: String,
    user: String,
}

/// How long after `loss` the user had a new session, if ever. The new session may be on the
/// same replica when the chaos restarted it meanwhile (the last kill of a run is followed at
/// once by a restart of every dead replica).
fn recovery(seen: &[(Instant, Event)], loss: &Loss) -> Option<Duration> {
    seen.iter().find_map(|(at, e)| match e {
        Event::Session {
            user,
            state: SessionState::Connected { sid, .. },
        } if *at >= loss.at && *user == loss.user && *sid != loss.sid => {
            Some(at.duration_since(loss.at))
        }
        _ => None,
    })
}

/// What `loss.user`'s session and wire did from the loss until `until` after it: printed for
/// a failover that broke its bound, so a failure says what the attempts met.
fn trace(seen: &[(Instant, Event)], loss: &Loss, until: Duration) {
    for (at, e) in seen {
        if *at < loss.at || at.duration_since(loss.at) > until {
            continue;
        }
        let t = at.duration_since(loss.at).as_secs_f64();
        match e {
            Event::Session { user, state } if *user == loss.user => {
                println!("chaos:   +{t:.3} s session {state:?}");
            }
            Event::Wire(r) if r.user == loss.user => {
                println!(
                    "chaos:   +{t:.3} s wire #{} {:?} {:?} sid {:?} replica {:?} {} µs up {:?} down {:?} failure {:?} note {:?}",
                    r.seq,
                    r.transport,
                    r.kind,
                    r.sid,
                    r.replica,
                    r.latency_us.unwrap_or(0),
                    r.packets_up,
                    r.packets_down,
                    r.failure,
                    r.note
                );
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_lost_or_doubled_while_replicas_die_at_random() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&panics);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let secs = env_u64("STICKYSCOPE_CHAOS_SECS").unwrap_or(60);
    let seed = env_u64("STICKYSCOPE_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
    });
    println!("chaos: {secs} s, STICKYSCOPE_CHAOS_SEED={seed}");
    let mut rng = Rng(seed | 1);

    let (sink, seen) = Collected::sink();
    let conductor = embedded_conductor(TransportChoice::Polling, true, sink).await;
    let commands = conductor.commands();
    wait_for(Duration::from_secs(15), "both users connected", || {
        let seen = seen.clone();
        async move { USERS.iter().all(|u| seen.connected(u)) && replica_ids(&seen).len() == 3 }
    })
    .await;

    let run = Duration::from_secs(secs);
    let started = Instant::now();
    let mut sent = 0usize;
    let mut dead: BTreeSet<String> = BTreeSet::new();
    let mut losses: Vec<Loss> = Vec::new();
    let mut kills = 0;
    let mut next_chaos = started + Duration::from_millis(3000 + rng.below(5000));
    let switches = [
        (0.35, "transport websocket"),
        (0.55, "stickiness off"),
        (0.75, "stickiness on, transport upgrade"),
    ];
    let mut switched = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while started.elapsed() < run {
        tick.tick().await;
        for user in USERS {
            sent += 1;
            commands
                .try_send(Command::Send {
                    user: user.into(),
                    text: format!("{user} #{sent}"),
                })
                .expect("conductor takes commands");
        }
        let now = Instant::now();
        if now >= next_chaos {
            next_chaos = now + Duration::from_millis(3000 + rng.below(5000));
            restart_all(&commands, &mut dead);
            let holders: Vec<String> = USERS
                .iter()
                .filter_map(|u| session_of(&seen, u).map(|(replica, _)| replica))
                .collect();
            let ids = replica_ids(&seen);
            let victim = if !holders.is_empty() && rng.below(3) < 2 {
                holders[rng.below(holders.len() as u64) as usize].clone()
            } else if !ids.is_empty() {
                ids[rng.below(ids.len() as u64) as usize].clone()
            } else {
                continue;
            };
            for user in USERS {
                if let Some((replica, sid)) = session_of(&seen, user) {
                    if replica == victim {
                        losses.push(Loss {
                            at: now,
                            replica,
                            sid,
                            user: user.to_owned(),
                        });
                    }
                }
            }
            commands
                .try_send(Command::Replica {
                    id: victim.clone(),
                    action: ReplicaAction::Kill,
                })
                .expect("conductor takes commands");
            dead.insert(victim);
            kills += 1;
        }
        if let Some((at, what)) = switches.get(switched) {
            if started.elapsed().as_secs_f64() >= run.as_secs_f64() * at {
                switched += 1;
                println!("chaos: {:.1} s: {what}", started.elapsed().as_secs_f64());
                let (sticky, transport) = match switched {
                    1 => (None, Some(TransportChoice::Websocket)),
                    2 => (Some(false), None),
                    _ => (Some(true), Some(TransportChoice::Upgrade)),
                };
                if let Some(on) = sticky {
                    commands
                        .try_send(Command::SetSticky { user: None, on })
                        .expect("conductor takes commands");
                }
                if let Some(transport) = transport {
                    commands
                        .try_send(Command::SetTransport {
                            user: None,
                            transport,
                        })
                        .expect("conductor takes commands");
                }
            }
        }
    }
    restart_all(&commands, &mut dead);
    println!(
        "chaos: {sent} messages sent, {kills} kills, {} sessions lost a replica",
        losses.len()
    );
    assert!(
        kills >= (secs / 8) as usize,
        "the schedule ran: {kills} kills"
    );

    wait_for(Duration::from_secs(60), "every message delivered", || {
        let seen = seen.clone();
        async move { seen.all_delivered(sent) }
    })
    .await;
    seen.assert_each_received_once_in_order(USERS);
    let refused: Vec<_> = seen
        .outbox()
        .into_iter()
        .filter(|(_, h)| h.iter().any(|s| matches!(s, OutboxStatus::Refused { .. })))
        .collect();
    assert!(refused.is_empty(), "messages refused: {refused:?}");

    // Every session that lost its replica had a new one within the bound. A kill in the last
    // instants of the run gets its whole bound before it is judged.
    let judge_at = losses.iter().map(|l| l.at + FAILOVER_BOUND).max();
    if let Some(judge_at) = judge_at {
        loop {
            let timed = seen.timed();
            let all_back = losses.iter().all(|l| recovery(&timed, l).is_some());
            if all_back || Instant::now() >= judge_at {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let timed = seen.timed();
    let mut times: Vec<Duration> = Vec::new();
    let mut never: Vec<String> = Vec::new();
    for loss in &losses {
        let lost_at = loss.at.duration_since(started).as_secs_f64();
        let what = format!(
            "{} lost replica {} at {lost_at:.1} s",
            loss.user, loss.replica
        );
        match recovery(&timed, loss) {
            Some(back) => {
                println!("chaos: {what}; back after {back:?}");
                if back > FAILOVER_BOUND {
                    trace(&timed, loss, back);
                }
                times.push(back);
            }
            None => {
                println!("chaos: {what}; never back");
                trace(&timed, loss, Duration::from_secs(60));
                never.push(what);
            }
        }
    }
    assert!(never.is_empty(), "sessions never came back: {never:?}");
    times.sort();
    if let Some(worst) = times.last() {
        println!(
            "chaos: failover over {} losses: median {:?}, worst {:?}",
            times.len(),
            times[times.len() / 2],
            worst
        );
        assert!(
            *worst <= FAILOVER_BOUND,
            "a session took {worst:?} to come back (bound {FAILOVER_BOUND:?})"
        );
    }
    conductor.shutdown().await;
    assert_eq!(panics.load(Ordering::SeqCst), 0, "something panicked");
}
