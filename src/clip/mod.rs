//! Recording the window to an animated GIF for slides, the fallback when a live demo fails
//! on stage. The window hands over a screenshot at most [`FPS`] times a second; a thread of
//! its own crops, scales, maps colours and encodes ([`encode`], [`palette`]), so recording
//! never holds up a frame: when that thread falls behind, frames are skipped (and counted),
//! never queued without bound.

pub mod encode;
pub mod palette;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eframe::egui::ColorImage;

pub use encode::{ClipSummary, Crop};

/// Frames a second.
pub const FPS: f64 = 15.0;
/// Widest clip, in pixels: a 30 s clip of the window stays a few MB.
pub const MAX_WIDTH: usize = 960;
/// Screenshots waiting for the encoder at most.
const QUEUE: usize = 8;

/// Why a clip could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The file could not be written.
    #[error("cannot write the clip: {0}")]
    Io(#[from] std::io::Error),
    /// The GIF encoder refused.
    #[error("cannot encode the clip: {0}")]
    Encoding(#[from] gif::EncodingError),
    /// A frame larger than GIF allows.
    #[error("the frame is larger than a GIF can hold")]
    TooLarge,
    /// A frame whose size is not the clip's.
    #[error("a frame changed size during the clip")]
    FrameSize,
    /// The encoding thread ended before the clip was finished.
    #[error("the encoder stopped unexpectedly")]
    Stopped,
}

enum Message {
    Frame {
        image: Arc<ColorImage>,
        at: Duration,
        crop: Option<Crop>,
    },
    Finish(Duration),
}

/// A clip being recorded.
pub struct Recorder {
    path: PathBuf,
    frames: SyncSender<Message>,
    worker: JoinHandle<Result<ClipSummary, ClipError>>,
    started: Instant,
    last_frame: Option<Instant>,
    skipped: Arc<AtomicUsize>,
    /// Screenshots handed to the encoder.
    handed: Arc<AtomicUsize>,
}

/// A clip whose last frames are being encoded.
pub struct Finishing {
    path: PathBuf,
    worker: JoinHandle<Result<ClipSummary, ClipError>>,
    skipped: Arc<AtomicUsize>,
}

/// A finished clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Where it is.
    pub path: PathBuf,
    /// What it came to.
    pub summary: ClipSummary,
    /// Its size in bytes.
    pub bytes: u64,
    /// Screenshots skipped because the encoder was behind.
    pub skipped: usize,
}

impl Recorder {
    /// Starts a clip at `path` (created now, so a path that cannot be written is said at
    /// once) of frames that paint `key_colors`.
    pub fn start(path: &Path, key_colors: Vec<[u8; 3]>) -> Result<Recorder, ClipError> {
        let file = std::fs::File::create(path)?;
        let (frames, rx) = sync_channel(QUEUE);
        let worker = std::thread::Builder::new()
            .name("clip-encoder".into())
            .spawn(move || encode_all(std::io::BufWriter::new(file), rx, &key_colors))?;
        Ok(Recorder {
            path: path.to_owned(),
            frames,
            worker,
            started: Instant::now(),
            last_frame: None,
            skipped: Arc::new(AtomicUsize::new(0)),
            handed: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Where the clip goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long it has been recording.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether a screenshot has reached the encoder yet (one arrives a frame or two after
    /// it is asked for).
    pub fn has_frame(&self) -> bool {
        self.handed.load(Ordering::Relaxed) > 0
    }

    /// Whether a frame is due at `now` (then the caller takes a screenshot and calls
    /// [`frame_sink`](Self::frame_sink)); the time of the next one otherwise.
    pub fn due(&mut self, now: Instant) -> Result<(), Duration> {
        let every = Duration::from_secs_f64(1.0 / FPS);
        match self.last_frame {
            Some(last) if now < last + every => Err(last + every - now),
            _ => {
                self.last_frame = Some(now);
                Ok(())
            }
        }
    }

    /// A function that hands a screenshot taken now to the encoder, `crop` cut out of it
    /// (in pixels); it never waits: a screenshot the encoder has no room for is skipped.
    pub fn frame_sink(&self, crop: Option<Crop>) -> impl FnOnce(Arc<ColorImage>) + Send + 'static {
        let frames = self.frames.clone();
        let skipped = Arc::clone(&self.skipped);
        let handed = Arc::clone(&self.handed);
        let at = self.started.elapsed();
        move |image| match frames.try_send(Message::Frame { image, at, crop }) {
            Ok(()) => {
                handed.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Stops recording now; the encoder finishes on its own thread.
    pub fn stop(self) -> Finishing {
        let _ = self.frames.send(Message::Finish(self.started.elapsed()));
        Finishing {
            path: self.path,
            worker: self.worker,
            skipped: self.skipped,
        }
    }
}

impl Finishing {
    /// Whether the file is complete.
    pub fn is_done(&self) -> bool {
        self.worker.is_finished()
    }

    /// Waits for the file to be complete.
    pub fn wait(self) -> Result<Saved, ClipError> {
        let summary = self.worker.join().map_err(|_| ClipError::Stopped)??;
        let bytes = std::fs::metadata(&self.path)?.len();
        Ok(Saved {
            path: self.path,
            summary,
            bytes,
            skipped: self.skipped.load(Ordering::Relaxed),
        })
    }
}

/// The encoder's thread: frames in, GIF out.
fn encode_all<W: std::io::Write>(
    out: W,
    frames: Receiver<Message>,
    key_colors: &[[u8; 3]],
) -> Result<ClipSummary, ClipError> {
    let mut out = Some(out);
    let mut writer: Option<encode::ClipWriter<W>> = None;
    let mut last_at = Duration::ZERO;
    while let Ok(message) = frames.recv() {
        match message {
            Message::Frame { image, at, crop } => {
                let rgba = encode::Rgba {
                    bytes: image.as_raw(),
                    width: image.size[0],
                    height: image.size[1],
                };
                let (bytes, width, height) = encode::scaled(rgba, crop, MAX_WIDTH);
                if width == 0 || height == 0 {
                    continue;
                }
                let writer = match (&mut writer, out.take()) {
                    (Some(writer), _) => writer,
                    (None, Some(out)) => {
                        let palette = palette::Palette::build(key_colors, &bytes);
                        writer.insert(encode::ClipWriter::new(out, width, height, palette)?)
                    }
                    (None, None) => return Err(ClipError::Stopped),
                };
                // The window (or the topology) resized mid-clip: the frame is fitted to the
                // clip's size, which the first frame set.
                let bytes = encode::fitted(bytes, (width, height), writer.size());
                writer.push(&bytes, at)?;
                last_at = at;
            }
            Message::Finish(end) => {
                return match writer {
                    Some(writer) => writer.finish(end.max(last_at)),
                    None => Err(ClipError::Io(std::io::Error::other(
                        "no frame was recorded",
                    ))),
                };
            }
        }
    }
    Err(ClipError::Stopped)
}
