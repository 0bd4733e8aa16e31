//! The window's doctor: `stickyscope doctor`'s checklist run on the conductor's own stack
//! when the window asks ([`Command::RunDoctor`]), one run at a time, each check sent to the
//! window as it is known, then the whole report.
//!
//! [`Command::RunDoctor`]: stickyscope_vocab::events::Command::RunDoctor

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use stickyscope_vocab::doctor::DoctorUpdate;
use stickyscope_vocab::events::{ChatDialect, Event};
use tokio::sync::mpsc;

use crate::doctor::{self, DoctorOptions, Target};
use crate::event_sink::EventSink;

/// Runs the checklist on one stack, once at a time.
pub struct DoctorDesk {
    target: Arc<Target>,
    running: Arc<AtomicBool>,
    /// The chat both users speak now (the check across replicas speaks it too).
    pub chat: ChatDialect,
}

impl DoctorDesk {
    /// A desk for `target`, whose users speak `chat`.
    pub fn new(target: Target, chat: ChatDialect) -> Self {
        DoctorDesk {
            target: Arc::new(target),
            running: Arc::new(AtomicBool::new(false)),
            chat,
        }
    }

    /// Starts a run unless one is going on (then says so); returns at once.
    pub async fn run(&self, origin: Option<String>, sink: &EventSink) {
        if self.running.swap(true, Ordering::SeqCst) {
            sink.send(Event::Doctor(DoctorUpdate::Failed(
                "a checklist is already running".into(),
            )))
            .await;
            return;
        }
        let (target, running, sink) = (
            Arc::clone(&self.target),
            Arc::clone(&self.running),
            sink.clone(),
        );
        let options = DoctorOptions {
            origin,
            chat: self.chat,
            ..DoctorOptions::default()
        };
        tokio::spawn(async move {
            sink.send(Event::Doctor(DoctorUpdate::Started {
                gateway: target.gateway.clone(),
            }))
            .await;
            let (checks, mut known) = mpsc::unbounded_channel();
            let forward = {
                let sink = sink.clone();
                tokio::spawn(async move {
                    while let Some(check) = known.recv().await {
                        sink.send(Event::Doctor(DoctorUpdate::Check(check))).await;
                    }
                })
            };
            let result = doctor::run(&target, &options, |check| {
                let _ = checks.send(check.clone());
            })
            .await;
            drop(checks);
            let _ = forward.await;
            let update = match result {
                Ok(report) => DoctorUpdate::Done(report),
                Err(e) => DoctorUpdate::Failed(e.to_string()),
            };
            sink.send(Event::Doctor(update)).await;
            running.store(false, Ordering::SeqCst);
        });
    }
}
