//! A crowd asked for beyond what the process's open-file limit holds stops at what it
//! holds, and a notice says why and what to do. (A test binary of its own: it lowers its
//! own process's limit.)

mod common;

use std::time::Duration;

use common::{embedded_conductor, wait_for, Collected};
use stickyscope_vocab::events::{Command, Event, NoticeLevel, TransportChoice};

/// Lowers this process's soft open-file limit to `soft`.
#[allow(clippy::unnecessary_cast)]
fn lower_open_files(soft: u64) {
    let (_, hard) = stickyscope::open_files::limits().expect("the limit reads");
    let limit = libc::rlimit {
        rlim_cur: soft.min(hard) as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct it is given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_beyond_the_open_file_limit_stops_there_and_says_why() {
    lower_open_files(1_000);
    let most = stickyscope::open_files::most_sessions(1_000, true) - 2;
    let (sink, seen) = Collected::sink();
    let conductor = embedded_conductor(TransportChoice::Websocket, true, sink).await;
    conductor
        .commands()
        .try_send(Command::SetCrowd { size: 5_000 })
        .expect("the command queues");
    wait_for(
        Duration::from_secs(60),
        "the crowd formed as far as the limit holds",
        || {
            let seen = seen.clone();
            async move {
                seen.events().iter().rev().find_map(|e| match e {
                    Event::Crowd(c) => Some(c.size == most && c.connecting == 0),
                    _ => None,
                }) == Some(true)
            }
        },
    )
    .await;
    let notice = seen
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Notice(n) if n.level == NoticeLevel::Warning => Some(n.text),
            _ => None,
        })
        .expect("a notice");
    assert!(
        notice.contains(&format!(
            "a crowd of 5000 needs more open files than this process may have (1000): it stops at {most}"
        )) && notice.contains("ulimit -n"),
        "{notice}"
    );
    // Nothing broke for want of a file on the way.
    let failures = seen.events().iter().rev().find_map(|e| match e {
        Event::Crowd(c) => Some(c.failures),
        _ => None,
    });
    assert_eq!(failures, Some(0));
    conductor.shutdown().await;
}
