//! The window's side of recording a clip: starting and stopping (button, `R` for the
//! window, `Shift+R` for the topology alone, or `--record PATH --exit-after SECS`), asking
//! for a screenshot when a frame is due, and saying where the clip went once its encoder
//! (see [`crate::clip`]) has finished it. A clip started by hand is named by the time to
//! the millisecond and never written over another.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;

use super::theme;
use crate::clip::{Crop, Finishing, Recorder, Saved};
use stickyscope_vocab::events::NoticeLevel;

/// What a clip shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipArea {
    /// The whole window.
    Window,
    /// The topology alone.
    Topology,
}

/// Record from the start, to `path`, for `seconds`, then close the window.
#[derive(Debug, Clone)]
pub struct RecordPlan {
    /// Where the GIF goes.
    pub path: PathBuf,
    /// What it shows.
    pub area: ClipArea,
    /// How long.
    pub seconds: Duration,
    /// How it went (a sentence, or why it failed), once it is over.
    pub outcome: RecordOutcome,
}

/// How a planned clip went, read by `main` after the window closes.
pub type RecordOutcome = std::sync::Arc<std::sync::Mutex<Option<Result<String, String>>>>;

/// Recording state.
#[derive(Default)]
pub struct Recording {
    active: Option<(Recorder, ClipArea)>,
    finishing: Vec<Finishing>,
    plan: Option<RecordPlan>,
    /// The planned clip is done (or failed): the window closes.
    plan_done: bool,
    /// Seconds shown in the window's title (not in the clip: the title bar is not
    /// recorded).
    titled: Option<u64>,
    /// Whether the last frame asked for a screenshot (so this frame may be only the
    /// repaint that asking causes).
    captured_last_frame: bool,
}

/// Colours the window paints, exact in the clip.
fn key_colors() -> Vec<[u8; 3]> {
    let mut colors: Vec<egui::Color32> = vec![
        egui::Color32::WHITE,
        egui::Color32::BLACK,
        egui::Color32::GRAY,
        theme::FAILURE,
        theme::OK,
        theme::WAITING,
    ];
    colors.extend((1..=8).map(|i| theme::replica_color(Some(&i.to_string()))));
    colors.iter().map(|c| [c.r(), c.g(), c.b()]).collect()
}

impl Recording {
    /// Recording as `plan` says, from the first frame.
    pub fn planned(plan: RecordPlan) -> Recording {
        Recording {
            plan: Some(plan),
            ..Recording::default()
        }
    }

    /// How long the clip under way has been recording, and what it shows.
    pub fn under_way(&self) -> Option<(Duration, ClipArea)> {
        self.active.as_ref().map(|(r, area)| (r.elapsed(), *area))
    }

    /// Starts a clip of `area` at `path`; a path that cannot be written is the error.
    pub fn start(&mut self, area: ClipArea, path: PathBuf) -> Result<(), String> {
        if self.active.is_some() {
            return Ok(());
        }
        let recorder = Recorder::start(&path, key_colors())
            .map_err(|e| format!("cannot record to {}: {e}", path.display()))?;
        self.active = Some((recorder, area));
        Ok(())
    }

    /// Starts a clip of `area` named by the time, or stops the one under way.
    pub fn toggle(&mut self, area: ClipArea) -> Result<(), String> {
        match self.active.take() {
            Some((recorder, _)) => {
                self.finishing.push(recorder.stop());
                Ok(())
            }
            None => {
                // Milliseconds, and a number when taken: a clip never writes over another.
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let mut path = PathBuf::from(format!("stickyscope-clip-{stamp}.gif"));
                let mut n = 1;
                while path.exists() {
                    n += 1;
                    path = PathBuf::from(format!("stickyscope-clip-{stamp}-{n}.gif"));
                }
                self.start(area, path)
            }
        }
    }

    /// Once a frame: starts a planned clip, asks for a screenshot when a frame is due
    /// (`topology` is where the topology was drawn, in points), stops a planned clip when
    /// its time is up, and returns what finished clips came to.
    pub fn frame(
        &mut self,
        ctx: &egui::Context,
        topology: Option<egui::Rect>,
    ) -> Vec<(NoticeLevel, String)> {
        let mut said = Vec::new();
        if let Some(plan) = self.plan.clone() {
            if self.active.is_none() && self.finishing.is_empty() && !self.plan_done {
                if let Err(e) = self.start(plan.area, plan.path.clone()) {
                    if let Ok(mut slot) = plan.outcome.lock() {
                        *slot = Some(Err(e.clone()));
                    }
                    said.push((NoticeLevel::Error, e));
                    self.plan_done = true;
                }
            }
        }
        // At least one frame, however short the plan (unless none comes at all: a window
        // that cannot take screenshots stops a few seconds late, and the clip says why).
        let time_up = matches!((&self.plan, &self.active),
            (Some(plan), Some((recorder, _))) if recorder.elapsed() >= plan.seconds
                && (recorder.has_frame() || recorder.elapsed() >= plan.seconds + Duration::from_secs(5)));
        if time_up {
            if let Some((recorder, _)) = self.active.take() {
                self.finishing.push(recorder.stop());
            }
        }
        let seconds = self.active.as_ref().map(|(r, _)| r.elapsed().as_secs());
        if seconds != self.titled {
            self.titled = seconds;
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(match seconds {
                Some(s) => format!("stickyscope · recording a clip: {s} s (R to stop)"),
                None => "stickyscope".to_owned(),
            }));
        }
        // Frames are taken as the window paints them, at most FPS a second: a window with
        // nothing moving is not repainted for the clip (its last frame just lasts longer in
        // the GIF). A frame painted between two due times is caught up once, at the next.
        let captured_last_frame = std::mem::take(&mut self.captured_last_frame);
        if let Some((recorder, area)) = &mut self.active {
            match recorder.due(Instant::now()) {
                Ok(()) => {
                    let crop = match area {
                        ClipArea::Window => None,
                        ClipArea::Topology => topology.map(|r| pixels(r, ctx.pixels_per_point())),
                    };
                    ctx.request_screenshot(recorder.frame_sink(crop));
                    self.captured_last_frame = true;
                }
                Err(wait) if !captured_last_frame => ctx.request_repaint_after(wait),
                Err(_) => {}
            }
            // The title's seconds, and a planned clip's end.
            let elapsed = recorder.elapsed();
            let next_second = Duration::from_secs(elapsed.as_secs() + 1) - elapsed;
            let until_end = self
                .plan
                .as_ref()
                .map_or(next_second, |p| p.seconds.saturating_sub(elapsed));
            ctx.request_repaint_after(next_second.min(until_end));
        }
        // Most frames have no clip finishing: nothing to sort then.
        let done: Vec<Finishing> = if self.finishing.iter().any(Finishing::is_done) {
            let (done, still) = self.finishing.drain(..).partition(Finishing::is_done);
            self.finishing = still;
            done
        } else {
            Vec::new()
        };
        for finished in done {
            let outcome = finished
                .wait()
                .map(|saved| describe(&saved))
                .map_err(|e| format!("the clip failed: {e}"));
            if let Some(plan) = &self.plan {
                self.plan_done = true;
                if let Ok(mut slot) = plan.outcome.lock() {
                    *slot = Some(outcome.clone());
                }
            }
            said.push(match outcome {
                Ok(text) => (NoticeLevel::Info, text),
                Err(text) => (NoticeLevel::Error, text),
            });
        }
        if !self.finishing.is_empty() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        said
    }

    /// Whether a planned clip is finished, so the window may close.
    pub fn plan_done(&self) -> bool {
        self.plan.is_some() && self.plan_done
    }

    /// Stops and finishes whatever is under way, waiting for it (the window is closing);
    /// a planned clip's outcome is told to `main` as well.
    pub fn finish_now(&mut self) -> Vec<Result<Saved, String>> {
        if let Some((recorder, _)) = self.active.take() {
            self.finishing.push(recorder.stop());
        }
        let outcomes: Vec<Result<Saved, String>> = self
            .finishing
            .drain(..)
            .map(|f| f.wait().map_err(|e| format!("the clip failed: {e}")))
            .collect();
        if let (Some(plan), Some(last)) = (&self.plan, outcomes.last()) {
            if let Ok(mut slot) = plan.outcome.lock() {
                if slot.is_none() {
                    *slot = Some(last.as_ref().map(describe).map_err(Clone::clone));
                }
            }
        }
        outcomes
    }
}

/// A rectangle in points as pixels.
fn pixels(rect: egui::Rect, per_point: f32) -> Crop {
    let px = |v: f32| (v * per_point).round().max(0.0) as usize;
    Crop {
        x: px(rect.left()),
        y: px(rect.top()),
        width: px(rect.width()).max(1),
        height: px(rect.height()).max(1),
    }
}

/// A saved clip in a sentence.
pub fn describe(saved: &Saved) -> String {
    let s = &saved.summary;
    let skipped = if saved.skipped > 0 {
        format!(
            ", {} screenshots skipped while the encoder caught up",
            saved.skipped
        )
    } else {
        String::new()
    };
    format!(
        "clip saved to {}: {:.1} s, {} frames, {}×{}, {:.1} MB{skipped}",
        saved.path.display(),
        s.duration.as_secs_f64(),
        s.frames,
        s.width,
        s.height,
        saved.bytes as f64 / 1_000_000.0
    )
}
