//! Bands of padded input rows, widened and flattened, shared by the direct
//! convolution and the sliding (depthwise) path.
//!
//! A band is the input rows that output rows `oy0..oy1` read, zero rows for
//! the vertical padding included, each padded row split into its
//! `stride_w` phases (phase `r` holds padded columns `r, r + s, …`) of
//! `wd` lanes. Phase `r` of all band rows is one flat plane (row pitch
//! `wd`), so output `(oy0 + ry, ox)` at flat position
//! `t = ry · stride_h · wd + ox` reads tap `(ky, kx)` at lane
//! `t + ky·dh·wd + (kx·dw) / s` of phase `(kx·dw) % s`. Consecutive outputs
//! read consecutive lanes, across output rows too when `stride_h` is 1:
//! then a band is one segment of flat positions, whose lanes past `out_w`
//! in each row are computed and dropped (`wd − out_w` per row, the
//! horizontal padding), which keeps narrow planes (a 25×5 feature map)
//! from wasting most of a vector on every row.

use crate::kernels::ConvParams;

/// Lanes after each phase plane that tiles may read past its last row.
const SLACK: usize = 40;

/// The window geometry of a convolution along W, per call.
#[derive(Clone, Copy)]
pub(super) struct Columns {
    /// Lanes per phase row.
    pub wd: usize,
    /// `(kW − 1)·dW / sW`, the furthest tap's lane offset.
    pub q_max: usize,
}

impl Columns {
    /// `None` on overflow or a zero stride.
    pub(super) fn new(p: &ConvParams) -> Option<Columns> {
        let s = p.stride_w;
        if s == 0 {
            return None;
        }
        let reach = (p.kernel_w.checked_sub(1)?).checked_mul(p.dilation_w)?;
        // Padded width: the input with its left pad, and every window.
        let windows = (p.out_w.checked_sub(1)?)
            .checked_mul(s)?
            .checked_add(reach)?
            .checked_add(1)?;
        let padded = p.in_w.checked_add(p.pad_left)?.max(windows);
        Some(Columns {
            wd: padded.div_ceil(s),
            q_max: reach / s,
        })
    }
}

/// Output rows `oy0..oy1` and their padded input rows.
#[derive(Clone, Copy, Debug)]
pub(super) struct Band {
    pub oy0: usize,
    pub oy1: usize,
    /// Padded input rows in the band (from padded row `oy0 · stride_h`).
    pub rows: usize,
    /// Lanes of one phase plane: `rows · wd` and the slack.
    pub pitch: usize,
}

impl Band {
    /// Padded rows that `n` output rows read.
    fn rows_for(p: &ConvParams, n: usize) -> Option<usize> {
        let reach = (p.kernel_h.checked_sub(1)?).checked_mul(p.dilation_h)?;
        (n.checked_sub(1)?)
            .checked_mul(p.stride_h)?
            .checked_add(reach)?
            .checked_add(1)
    }

    /// The longest band from `oy0` whose `planes · stride_w` phase planes
    /// fit in `cap` lanes; `None` if not even one output row fits.
    pub(super) fn new(
        p: &ConvParams,
        cols: &Columns,
        oy0: usize,
        planes: usize,
        cap: usize,
    ) -> Option<Band> {
        let lanes = |n: usize| -> Option<(usize, usize, usize)> {
            let rows = Band::rows_for(p, n)?;
            let pitch = rows
                .checked_mul(cols.wd)?
                .checked_add(cols.q_max)?
                .checked_add(SLACK)?;
            let total = pitch.checked_mul(p.stride_w)?.checked_mul(planes)?;
            Some((rows, pitch, total))
        };
        let fits = |n: usize| matches!(lanes(n), Some((_, _, t)) if t <= cap);
        let left = p.out_h.checked_sub(oy0).filter(|&n| n > 0)?;
        let lo = widest(left, fits)?;
        let (rows, pitch, _) = lanes(lo)?;
        Some(Band {
            oy0,
            oy1: oy0 + lo,
            rows,
            pitch,
        })
    }

    /// Lanes the band's buffer needs for `planes` input planes.
    pub(super) fn lanes(&self, p: &ConvParams, planes: usize) -> usize {
        self.pitch * p.stride_w * planes
    }

    /// The flat segments `[start, end)` of the band's outputs: one for
    /// stride 1 along H, else one per output row.
    pub(super) fn segments(&self, p: &ConvParams, wd: usize) -> Segments {
        let n = self.oy1 - self.oy0;
        let row_step = p.stride_h * wd;
        if p.stride_h == 1 {
            Segments {
                next: 0,
                count: 1,
                step: 0,
                len: (n - 1) * row_step + p.out_w,
            }
        } else {
            Segments {
                next: 0,
                count: n,
                step: row_step,
                len: p.out_w,
            }
        }
    }
}

/// The largest `n` in `1..=most` for which `fits` holds (`fits` holding for
/// every smaller `n` too), or `None` if not even 1 does: a binary search.
pub(super) fn widest(most: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
    if !fits(1) {
        return None;
    }
    let (mut lo, mut hi) = (1, most);
    while lo < hi {
        let mid = hi - (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// Iterator over the flat segments of a band.
pub(super) struct Segments {
    next: usize,
    count: usize,
    step: usize,
    len: usize,
}

impl Iterator for Segments {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        if self.next == self.count {
            return None;
        }
        let start = self.next * self.step;
        self.next += 1;
        Some((start, start + self.len))
    }
}

/// Most runs of outputs in one tile of up to 24 flat positions.
pub(super) const MAX_RUNS: usize = 25;

/// A run of real outputs in a tile: lanes `lane..lane + len` are outputs
/// `at..at + len` of the plane.
#[derive(Clone, Copy, Default)]
pub(super) struct Run {
    pub lane: usize,
    pub at: usize,
    pub len: usize,
}

/// Walks a band's flat positions in order, tile by tile, and says which
/// lanes are real outputs and where they go; the row and column are kept
/// as it goes (no division per tile).
pub(super) struct Cursor {
    row_step: usize,
    out_w: usize,
    oy0: usize,
    ry: usize,
    ox: usize,
}

impl Cursor {
    /// At flat position `t` of `band`.
    pub(super) fn at(p: &ConvParams, band: &Band, wd: usize, t: usize) -> Cursor {
        let row_step = p.stride_h * wd;
        Cursor {
            row_step,
            out_w: p.out_w,
            oy0: band.oy0,
            ry: t / row_step,
            ox: t % row_step,
        }
    }

    /// The runs of real outputs among the next `n` positions (at most
    /// 24), and moves past them. Returns how many runs it wrote.
    pub(super) fn take(&mut self, n: usize, runs: &mut [Run; MAX_RUNS]) -> usize {
        let mut count = 0;
        let mut lane = 0;
        while lane < n {
            let room = self.row_step - self.ox;
            let step = room.min(n - lane);
            if self.ox < self.out_w {
                let len = (self.out_w - self.ox).min(step);
                if let Some(r) = runs.get_mut(count) {
                    *r = Run {
                        lane,
                        at: (self.oy0 + self.ry) * self.out_w + self.ox,
                        len,
                    };
                    count += 1;
                }
            }
            lane += step;
            self.ox += step;
            if self.ox == self.row_step {
                self.ox = 0;
                self.ry += 1;
            }
        }
        count
    }
}

/// The input row (`None`: padding) of band row `row`.
#[inline]
pub(super) fn input_row(p: &ConvParams, band: &Band, row: usize) -> Option<usize> {
    let padded = band.oy0 * p.stride_h + row;
    padded.checked_sub(p.pad_top).filter(|&iy| iy < p.in_h)
}

/// `out[at..at + len] = src[..len]`, 16 bytes per store: a store may also
/// write up to 15 bytes past the run (never past `out`), which is harmless
/// because outputs are written in increasing order, so those bytes get
/// their own values later. `src` must hold `len` bytes rounded up to 16.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn put_run(out: &mut [i8], at: usize, src: &[i8], len: usize) {
    let mut i = 0;
    while i < len {
        match (out.get_mut(at + i..at + i + 16), src.get(i..i + 16)) {
            (Some(d), Some(s)) => {
                // SAFETY: `s` has 16 bytes to load, `d` room for 16.
                unsafe {
                    core::arch::x86_64::_mm_storeu_si128(
                        d.as_mut_ptr().cast(),
                        core::arch::x86_64::_mm_loadu_si128(s.as_ptr().cast()),
                    )
                };
                i += 16;
            }
            _ => {
                let n = len - i;
                if let (Some(d), Some(s)) = (out.get_mut(at + i..at + len), src.get(i..i + n)) {
                    d.copy_from_slice(s);
                }
                return;
            }
        }
    }
}
