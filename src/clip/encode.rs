//! Frames into an animated GIF: each frame cropped, scaled to the clip's width, mapped to
//! the palette, and only the rectangle that changed since the frame before is written
//! (kept over the earlier one); a frame that changed nothing only lengthens the one
//! before. Delays come from the frames' own times, so a window that rested for two seconds
//! shows as two seconds. Pure but for the `Write` it is given.

use std::io::Write;
use std::time::Duration;

use gif::{DisposalMethod, Encoder, Frame, Repeat};

use super::palette::Palette;
use super::ClipError;

/// A frame: RGBA bytes `width` × `height`.
#[derive(Debug, Clone, Copy)]
pub struct Rgba<'a> {
    /// Pixels, 4 bytes each, row by row.
    pub bytes: &'a [u8],
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// A region of a frame, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left edge.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

/// `frame` cut to `crop` (kept inside it) and scaled down to at most `max_width` pixels
/// wide, as RGBA bytes with their size.
pub fn scaled(frame: Rgba<'_>, crop: Option<Crop>, max_width: usize) -> (Vec<u8>, usize, usize) {
    if frame.width == 0 || frame.height == 0 || frame.bytes.len() < frame.width * frame.height * 4 {
        return (Vec::new(), 0, 0);
    }
    let full = Crop {
        x: 0,
        y: 0,
        width: frame.width,
        height: frame.height,
    };
    let mut c = crop.unwrap_or(full);
    c.x = c.x.min(frame.width.saturating_sub(1));
    c.y = c.y.min(frame.height.saturating_sub(1));
    c.width = c.width.clamp(1, frame.width - c.x);
    c.height = c.height.clamp(1, frame.height - c.y);
    let mut cut = Vec::with_capacity(c.width * c.height * 4);
    for row in c.y..c.y + c.height {
        let start = (row * frame.width + c.x) * 4;
        cut.extend_from_slice(&frame.bytes[start..start + c.width * 4]);
    }
    if c.width <= max_width {
        return (cut, c.width, c.height);
    }
    let width = max_width.max(1);
    let height = ((c.height * width) as f64 / c.width as f64)
        .round()
        .max(1.0) as usize;
    let Some(image) = image::RgbaImage::from_raw(c.width as u32, c.height as u32, cut) else {
        return (Vec::new(), 0, 0);
    };
    let small = image::imageops::resize(
        &image,
        width as u32,
        height as u32,
        image::imageops::FilterType::Triangle,
    );
    (small.into_raw(), width, height)
}

/// `rgba` (`width` × `height`) stretched to exactly `to_width` × `to_height`: a frame
/// taken after the window (or the topology) changed size, fitted to the clip.
pub fn fitted(
    rgba: Vec<u8>,
    (width, height): (usize, usize),
    (to_width, to_height): (usize, usize),
) -> Vec<u8> {
    if (width, height) == (to_width, to_height) {
        return rgba;
    }
    match image::RgbaImage::from_raw(width as u32, height as u32, rgba) {
        Some(image) => image::imageops::resize(
            &image,
            to_width as u32,
            to_height as u32,
            image::imageops::FilterType::Triangle,
        )
        .into_raw(),
        None => Vec::new(),
    }
}

/// What a clip came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipSummary {
    /// Frames written (frames that changed nothing are not).
    pub frames: usize,
    /// Its size in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// How long it plays.
    pub duration: Duration,
}

/// A frame waiting for the next one, which says how long it shows.
struct Pending {
    indices: Vec<u8>,
    left: usize,
    top: usize,
    width: usize,
    height: usize,
}

/// Writes a GIF frame by frame.
pub struct ClipWriter<W: Write> {
    encoder: Encoder<W>,
    palette: Palette,
    width: usize,
    height: usize,
    /// The whole picture as shown so far, as palette indices.
    shown: Vec<u8>,
    pending: Option<Pending>,
    /// When the first frame was taken.
    start: Duration,
    /// Centiseconds written so far.
    written_cs: u64,
    frames: usize,
}

impl<W: Write> ClipWriter<W> {
    /// Starts a clip of `width` × `height` frames with `palette`, looping forever.
    pub fn new(out: W, width: usize, height: usize, palette: Palette) -> Result<Self, ClipError> {
        let (w, h) = (dimension(width)?, dimension(height)?);
        let mut encoder = Encoder::new(out, w, h, &palette.rgb_bytes())?;
        encoder.set_repeat(Repeat::Infinite)?;
        Ok(ClipWriter {
            encoder,
            palette,
            width,
            height,
            shown: Vec::new(),
            pending: None,
            start: Duration::ZERO,
            written_cs: 0,
            frames: 0,
        })
    }

    /// The clip's size in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Adds a frame (RGBA, the clip's size) taken at `at`.
    pub fn push(&mut self, rgba: &[u8], at: Duration) -> Result<(), ClipError> {
        if rgba.len() != self.width * self.height * 4 {
            return Err(ClipError::FrameSize);
        }
        let indices: Vec<u8> = rgba
            .chunks_exact(4)
            .map(|px| self.palette.index(px[0], px[1], px[2]))
            .collect();
        if self.shown.is_empty() {
            self.start = at;
            self.shown = indices.clone();
            self.pending = Some(Pending {
                indices,
                left: 0,
                top: 0,
                width: self.width,
                height: self.height,
            });
            return Ok(());
        }
        let Some((left, top, width, height)) = changed(&self.shown, &indices, self.width) else {
            return Ok(());
        };
        let mut region = Vec::with_capacity(width * height);
        for row in top..top + height {
            let start = row * self.width + left;
            region.extend_from_slice(&indices[start..start + width]);
        }
        self.shown = indices;
        self.write_pending(at)?;
        self.pending = Some(Pending {
            indices: region,
            left,
            top,
            width,
            height,
        });
        Ok(())
    }

    /// Writes the frame waiting, shown until `until`.
    fn write_pending(&mut self, until: Duration) -> Result<(), ClipError> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        // Delays from the running total, so rounding never adds up.
        let end_cs = ((until.saturating_sub(self.start)).as_millis() as u64).div_ceil(10);
        let delay = end_cs
            .saturating_sub(self.written_cs)
            .clamp(2, u64::from(u16::MAX));
        self.written_cs += delay;
        let frame = Frame {
            delay: delay as u16,
            dispose: DisposalMethod::Keep,
            left: dimension(p.left)?,
            top: dimension(p.top)?,
            width: dimension(p.width)?,
            height: dimension(p.height)?,
            buffer: std::borrow::Cow::Owned(p.indices),
            ..Frame::default()
        };
        self.encoder.write_frame(&frame)?;
        self.frames += 1;
        Ok(())
    }

    /// Ends the clip at `end`; returns what it came to.
    pub fn finish(mut self, end: Duration) -> Result<ClipSummary, ClipError> {
        self.write_pending(end)?;
        let summary = ClipSummary {
            frames: self.frames,
            width: self.width,
            height: self.height,
            duration: Duration::from_millis(self.written_cs * 10),
        };
        self.encoder.get_mut().flush()?;
        Ok(summary)
    }
}

fn dimension(n: usize) -> Result<u16, ClipError> {
    u16::try_from(n).map_err(|_| ClipError::TooLarge)
}

/// The smallest rectangle (left, top, width, height) holding every pixel that differs.
fn changed(before: &[u8], after: &[u8], width: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut left, mut right, mut top, mut bottom) = (usize::MAX, 0, usize::MAX, 0);
    for (row, (a, b)) in before.chunks(width).zip(after.chunks(width)).enumerate() {
        if a == b {
            continue;
        }
        let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
        let last = width
            - 1
            - a.iter()
                .rev()
                .zip(b.iter().rev())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
        left = left.min(first);
        right = right.max(last);
        top = top.min(row);
        bottom = row;
    }
    (top != usize::MAX).then(|| (left, top, right - left + 1, bottom - top + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: usize, height: usize, c: [u8; 3]) -> Vec<u8> {
        std::iter::repeat_n([c[0], c[1], c[2], 255], width * height)
            .flatten()
            .collect()
    }

    fn paint(frame: &mut [u8], width: usize, x: usize, y: usize, c: [u8; 3]) {
        let i = (y * width + x) * 4;
        frame[i..i + 3].copy_from_slice(&c);
    }

    #[test]
    fn only_what_changed_is_written_and_times_are_kept() {
        let (w, h) = (40, 30);
        let black = solid(w, h, [0, 0, 0]);
        let palette = Palette::build(&[[220, 40, 40]], &black);
        let mut out = Vec::new();
        let mut clip = ClipWriter::new(&mut out, w, h, palette).unwrap();
        clip.push(&black, Duration::from_millis(1000)).unwrap();
        let mut dot = black.clone();
        paint(&mut dot, w, 10, 12, [220, 40, 40]);
        paint(&mut dot, w, 13, 14, [220, 40, 40]);
        clip.push(&dot, Duration::from_millis(1500)).unwrap();
        // Nothing new for a while: no frame, the one before shows longer.
        clip.push(&dot, Duration::from_millis(1566)).unwrap();
        clip.push(&black, Duration::from_millis(3500)).unwrap();
        let summary = clip.finish(Duration::from_millis(4000)).unwrap();
        assert_eq!(summary.frames, 3);
        assert_eq!(summary.duration, Duration::from_secs(3));

        let mut decoder = gif::DecodeOptions::new();
        decoder.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = decoder.read_info(out.as_slice()).unwrap();
        let mut frames = Vec::new();
        while let Some(f) = decoder.read_next_frame().unwrap() {
            frames.push((f.left, f.top, f.width, f.height, f.delay));
        }
        assert_eq!(
            frames,
            [(0, 0, 40, 30, 50), (10, 12, 4, 3, 200), (10, 12, 4, 3, 50)],
            "whole, then the changed rectangle; delays in centiseconds"
        );
    }

    #[test]
    fn frames_are_cut_and_scaled_to_the_clip() {
        let (w, h) = (100, 60);
        let mut frame = solid(w, h, [0, 0, 0]);
        paint(&mut frame, w, 50, 30, [255, 255, 255]);
        let rgba = Rgba {
            bytes: &frame,
            width: w,
            height: h,
        };
        let (bytes, sw, sh) = scaled(rgba, None, 50);
        assert_eq!((sw, sh, bytes.len()), (50, 30, 50 * 30 * 4));
        let crop = Crop {
            x: 40,
            y: 20,
            width: 20,
            height: 20,
        };
        let (bytes, sw, sh) = scaled(rgba, Some(crop), 960);
        assert_eq!((sw, sh), (20, 20), "never scaled up");
        assert_eq!(&bytes[(10 * 20 + 10) * 4..][..3], &[255, 255, 255]);
        let outside = Crop {
            x: 500,
            y: 500,
            width: 50,
            height: 50,
        };
        let (_, sw, sh) = scaled(rgba, Some(outside), 960);
        assert_eq!((sw, sh), (1, 1), "a crop outside is cut to the frame");
        let empty = Rgba {
            bytes: &[],
            width: 0,
            height: 0,
        };
        assert_eq!(scaled(empty, None, 960).1, 0, "an empty frame is no frame");
        let (bytes, _, _) = scaled(rgba, None, 50);
        assert_eq!(fitted(bytes, (50, 30), (40, 20)).len(), 40 * 20 * 4);
    }

    #[test]
    fn a_frame_of_the_wrong_size_is_an_error_not_a_panic() {
        let palette = Palette::build(&[], &solid(4, 4, [0, 0, 0]));
        let mut clip = ClipWriter::new(Vec::new(), 4, 4, palette).unwrap();
        assert!(matches!(
            clip.push(&[0; 12], Duration::ZERO),
            Err(ClipError::FrameSize)
        ));
    }
}
