//! Reads the topology API every second (through [`crate::topology_read`]) and sends the
//! topology when it changes; says so plainly when the API cannot be read, and keeps trying.

use std::time::Duration;

use crate::event_sink::EventSink;
use crate::topology_read::Readers;
pub use crate::topology_read::TopologySource;
use crate::wire::Learner;
use stickyscope_vocab::events::{Event, Notice, NoticeLevel};
use stickyscope_vocab::topology::Topology;

/// How often the API is read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Polls until aborted; teaches `learner` (so the taps) each topology that differs.
pub async fn run(source: TopologySource, sink: EventSink, learner: Learner) {
    let readers = Readers::new(&source.api);
    let mut last: Option<Topology> = None;
    let mut last_problems: Vec<String> = Vec::new();
    let mut failing = false;
    loop {
        let read = match readers.read(&source).await {
            Ok((topology, problems)) => {
                if problems != last_problems {
                    last_problems = problems.clone();
                    for problem in problems {
                        sink.send(Event::Notice(Notice {
                            level: NoticeLevel::Warning,
                            text: format!("Traefik labels: {problem}; drawing what the wire shows"),
                        }))
                        .await;
                    }
                }
                Ok(topology)
            }
            Err(reason) => Err(reason),
        };
        match read {
            Ok(topology) => {
                if failing {
                    failing = false;
                    sink.send(Event::Notice(Notice {
                        level: NoticeLevel::Info,
                        text: "topology API reachable again".into(),
                    }))
                    .await;
                }
                if last.as_ref() != Some(&topology) {
                    learner.learn(&topology);
                    last = Some(topology.clone());
                    sink.send(Event::Topology(topology)).await;
                }
            }
            Err(reason) => {
                if !failing {
                    failing = true;
                    sink.send(Event::Notice(Notice {
                        level: NoticeLevel::Warning,
                        text: format!(
                            "topology API unreachable ({reason}); drawing the replicas seen on the wire and retrying every second"
                        ),
                    }))
                    .await;
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
