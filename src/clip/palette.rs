//! The clip's 256 colours and a fast way to find the nearest. A screen of stickyscope is a
//! few flat colours (the theme, one per replica) and their anti-aliased blends with the
//! background, so the palette holds: the key colours the window paints, each blended with
//! the background in steps; the colours the first frame uses most; and a coarse colour
//! cube for anything else. A 15-bit table maps any colour to its nearest entry, so indexing
//! a frame is one lookup per pixel. Pure.

/// Colours in a GIF palette.
pub const SIZE: usize = 256;
/// Blends of each key colour with the background (not counting either end).
const BLEND_STEPS: u16 = 3;
/// Levels per channel of the fallback colour cube.
const CUBE_LEVELS: u16 = 4;

/// A palette with its lookup table.
#[derive(Debug, Clone)]
pub struct Palette {
    colors: Vec<[u8; 3]>,
    /// Index of the nearest colour for each 5-bit-per-channel colour.
    nearest: Vec<u8>,
}

/// The 15-bit key of a colour.
fn key(r: u8, g: u8, b: u8) -> usize {
    (usize::from(r >> 3) << 10) | (usize::from(g >> 3) << 5) | usize::from(b >> 3)
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    // Weighted for the eye: green counts most, blue least.
    let d = |i: usize| (i32::from(a[i]) - i32::from(b[i])).unsigned_abs();
    2 * d(0) * d(0) + 4 * d(1) * d(1) + 3 * d(2) * d(2)
}

impl Palette {
    /// A palette for frames like `first` (RGBA bytes) that paint `key_colors`.
    pub fn build(key_colors: &[[u8; 3]], first: &[u8]) -> Palette {
        let mut histogram = vec![0u32; 1 << 15];
        for px in first.chunks_exact(4) {
            histogram[key(px[0], px[1], px[2])] += 1;
        }
        let background = histogram
            .iter()
            .enumerate()
            .max_by_key(|(_, n)| **n)
            .map(|(k, _)| expand(k))
            .unwrap_or([0, 0, 0]);

        let mut colors: Vec<[u8; 3]> = Vec::with_capacity(SIZE);
        let add = |c: [u8; 3], colors: &mut Vec<[u8; 3]>| {
            if colors.len() < SIZE && !colors.contains(&c) {
                colors.push(c);
            }
        };
        add(background, &mut colors);
        for &c in key_colors {
            add(c, &mut colors);
            for step in 1..=BLEND_STEPS {
                add(blend(background, c, step, BLEND_STEPS + 1), &mut colors);
            }
        }
        // The fallback cube, kept for last but its room reserved.
        let cube: Vec<[u8; 3]> = (0..CUBE_LEVELS.pow(3))
            .map(|i| {
                let level = |n: u16| (n * 255 / (CUBE_LEVELS - 1)) as u8;
                [
                    level(i / (CUBE_LEVELS * CUBE_LEVELS)),
                    level(i / CUBE_LEVELS % CUBE_LEVELS),
                    level(i % CUBE_LEVELS),
                ]
            })
            .collect();
        let room = SIZE.saturating_sub(colors.len() + cube.len());
        let mut popular: Vec<(usize, u32)> = histogram
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k, *n))
            .collect();
        popular.sort_by_key(|(k, n)| (std::cmp::Reverse(*n), *k));
        for (k, _) in popular.into_iter().take(room) {
            add(expand(k), &mut colors);
        }
        for c in cube {
            add(c, &mut colors);
        }
        let nearest = (0..1usize << 15)
            .map(|k| {
                let c = expand(k);
                colors
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, p)| distance(**p, c))
                    .map_or(0, |(i, _)| i as u8)
            })
            .collect();
        Palette { colors, nearest }
    }

    /// The index of the colour nearest to `r`, `g`, `b`.
    pub fn index(&self, r: u8, g: u8, b: u8) -> u8 {
        self.nearest[key(r, g, b)]
    }

    /// The colour at `index`.
    pub fn color(&self, index: u8) -> [u8; 3] {
        self.colors
            .get(usize::from(index))
            .copied()
            .unwrap_or([0, 0, 0])
    }

    /// The palette as GIF wants it: 256 RGB triples.
    pub fn rgb_bytes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.colors.iter().flatten().copied().collect();
        out.resize(SIZE * 3, 0);
        out
    }

    /// How many colours it holds.
    pub fn len(&self) -> usize {
        self.colors.len()
    }

    /// Whether it holds none (never: the background is always in it).
    pub fn is_empty(&self) -> bool {
        self.colors.is_empty()
    }
}

/// The middle of a 15-bit colour's cell.
fn expand(k: usize) -> [u8; 3] {
    let channel = |shift: usize| (((k >> shift) & 31) as u8) << 3 | 4;
    [channel(10), channel(5), channel(0)]
}

/// `step` of `steps` of the way from `from` to `to`.
fn blend(from: [u8; 3], to: [u8; 3], step: u16, steps: u16) -> [u8; 3] {
    let mix = |a: u8, b: u8| ((u16::from(a) * (steps - step) + u16::from(b) * step) / steps) as u8;
    [
        mix(from[0], to[0]),
        mix(from[1], to[1]),
        mix(from[2], to[2]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(colors: &[([u8; 3], usize)]) -> Vec<u8> {
        colors
            .iter()
            .flat_map(|(c, n)| std::iter::repeat_n([c[0], c[1], c[2], 255], *n))
            .flatten()
            .collect()
    }

    #[test]
    fn key_colours_and_the_background_are_exact() {
        let red = [220, 40, 40];
        let blue = [0, 114, 178];
        let p = Palette::build(&[red, blue], &frame(&[([0, 0, 0], 1000), (blue, 10)]));
        assert!(p.len() <= SIZE);
        for c in [red, blue] {
            let i = p.index(c[0], c[1], c[2]);
            let got = p.color(i);
            assert!(
                distance(got, c) <= distance([0, 0, 0], [8, 8, 8]),
                "{c:?} became {got:?}"
            );
        }
        assert_eq!(p.color(p.index(0, 0, 0))[0] >> 3, 0, "black stays black");
        assert_eq!(p.rgb_bytes().len(), 768);
    }

    #[test]
    fn any_colour_finds_a_near_one() {
        let p = Palette::build(&[], &frame(&[([255, 255, 255], 100)]));
        for c in [[12, 200, 99], [255, 0, 255], [128, 128, 128]] {
            let got = p.color(p.index(c[0], c[1], c[2]));
            assert!(
                distance(got, c) < distance([0, 0, 0], [60, 60, 60]),
                "{c:?} became {got:?}"
            );
        }
    }
}
