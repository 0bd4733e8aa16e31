//! The window's captures: recording one as it goes (`--capture PATH`, written on a thread
//! of its own, begun once the stack has said its gateway) and the export (Ctrl+E: what the
//! timeline keeps, the last minutes, as a capture `stickyscope open` and `inspect` read, and
//! beside it the same as a HAR for any HAR viewer).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::StickyscopeApp;
use crate::capture::CaptureTee;
use crate::model::ViewModel;
use stickyscope_vocab::capture::{CaptureHeader, Happened, FORMAT_VERSION};
use stickyscope_vocab::events::{Event, NoticeLevel, TransportChoice};

/// A capture the window records as it goes.
pub(super) enum LiveCapture {
    /// Asked for; begins when the stack says its gateway.
    Waiting {
        /// Where.
        path: PathBuf,
        /// Its size bound.
        limit: u64,
    },
    /// Under way: the writer, and when it began.
    Writing(CaptureTee, Instant),
}

impl StickyscopeApp {
    /// Records everything the window is shown to a capture at `path` (bounded to `limit`
    /// bytes) until it closes.
    pub fn capture_to(&mut self, path: PathBuf, limit: u64) {
        self.capture = Some(LiveCapture::Waiting { path, limit });
    }

    /// Begins the capture asked for, once the gateway is known.
    pub(super) fn begin_capture(&mut self) {
        let Some(LiveCapture::Waiting { path, limit }) = &self.capture else {
            return;
        };
        let Some(Ok(_)) = &self.bridge.status else {
            return;
        };
        let header = self.header(
            "window",
            stickyscope_vocab::record::now_ms(),
            self.settings.sticky,
            self.settings.transport,
        );
        let path = path.clone();
        match CaptureTee::start(&path, &header, *limit) {
            Ok(tee) => self.capture = Some(LiveCapture::Writing(tee, Instant::now())),
            Err(e) => {
                self.capture = None;
                self.local_notice(
                    NoticeLevel::Error,
                    format!("cannot record the capture to {}: {e}", path.display()),
                );
            }
        }
    }

    /// Ends the capture under way, saying where it went.
    pub fn end_capture(&mut self) {
        if let Some(LiveCapture::Writing(tee, started)) = self.capture.take() {
            let path = tee.path().display().to_string();
            match tee.finish(started.elapsed().as_secs_f64()) {
                Ok(written) => println!(
                    "capture saved to {path} ({} bytes{})",
                    written.bytes,
                    if written.full {
                        ", stopped at its size bound"
                    } else {
                        ""
                    }
                ),
                Err(e) => eprintln!("the capture {path} could not be finished: {e}"),
            }
        }
    }

    /// Exports what the timeline keeps as a capture in the working directory.
    pub(super) fn export(&mut self) {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.export_to(PathBuf::from(format!("stickyscope-capture-{stamp}.jsonl")));
    }

    /// Exports what the timeline keeps as a capture at `path`, saying so in a banner.
    pub fn export_to(&mut self, path: PathBuf) {
        let timeline = self.review.timeline();
        let start = timeline.start();
        let first = timeline.first_model();
        let sticky = first
            .and_then(ViewModel::all_sticky)
            .unwrap_or(self.settings.sticky);
        let transport = first
            .and_then(ViewModel::common_transport)
            .unwrap_or(TransportChoice::Polling);
        let started_ms = match self.recorded_start_ms {
            Some(ms) => ms + Duration::from_secs_f64(start.max(0.0)).as_millis() as u64,
            None => stickyscope_vocab::record::now_ms().saturating_sub(
                Duration::from_secs_f64((self.clock - start).max(0.0)).as_millis() as u64,
            ),
        };
        let header = self.header("window export", started_ms, sticky, transport);
        let lines: Vec<(f64, Happened)> = timeline
            .events()
            .filter_map(|(at, event)| Happened::of(event).map(|h| (at - start, h)))
            .collect();
        let seconds = timeline.end() - start;
        // The same, as a HAR for any HAR viewer.
        let har_path = path.with_extension("har");
        let har = crate::har::export::har_of(
            &crate::har::export::Target {
                gateway: &header.gateway,
                path: "/socket.io/",
            },
            timeline.events().filter_map(|(_, event)| match event {
                Event::Wire(wire) => Some(&**wire),
                _ => None,
            }),
        );
        let har_written = std::fs::File::create(&har_path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                serde_json::to_writer(std::io::BufWriter::new(f), &har).map_err(|e| e.to_string())
            });
        match (crate::capture::export_file(&path, &header, lines), har_written) {
            (Ok(n), Ok(())) => self.local_notice(
                NoticeLevel::Info,
                format!(
                    "exported the last {seconds:.0} s ({n} events) to {} (stickyscope open reads it) and {} (any HAR viewer)",
                    path.display(),
                    har_path.display()
                ),
            ),
            (Err(e), _) => self.local_notice(NoticeLevel::Error, format!("export failed: {e}")),
            (Ok(_), Err(e)) => self.local_notice(
                NoticeLevel::Error,
                format!("the HAR {} could not be written: {e}", har_path.display()),
            ),
        }
    }

    /// Hands a live event to the capture under way.
    pub(super) fn captured(capture: Option<&LiveCapture>, event: &Event) {
        if let Some(LiveCapture::Writing(tee, started)) = capture {
            if let Some(happened) = Happened::of(event) {
                tee.add(started.elapsed().as_secs_f64(), happened);
            }
        }
    }

    fn header(
        &self,
        source: &str,
        started_ms: u64,
        sticky: bool,
        transport: TransportChoice,
    ) -> CaptureHeader {
        let gateway = match &self.bridge.status {
            Some(Ok(url)) => url.clone(),
            _ => String::new(),
        };
        CaptureHeader {
            stickyscope_capture: FORMAT_VERSION,
            source: source.to_owned(),
            stickyscope: env!("CARGO_PKG_VERSION").into(),
            started_ms,
            gateway,
            stack: self.mode.to_owned(),
            transport,
            sticky,
            sessions: self.panes.clone(),
        }
    }
}
