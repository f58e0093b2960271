//! Weight rounding: how float weights become int8 on the per-channel grid.
//!
//! `Nearest` rounds every weight on its own. `Gptq` (Frantar et al., "GPTQ:
//! Accurate Post-Training Quantization for Generative Pre-trained
//! Transformers", 2023, after Hassibi and Stork's Optimal Brain Surgeon)
//! rounds a layer's input columns one at a time and moves each rounding error
//! onto the columns not yet rounded, weighted by how the layer's inputs
//! correlate on the calibration data: it minimises `‖(W − Q) X‖²` over the
//! calibration inputs `X` instead of `‖W − Q‖²`. The grid (the per-channel
//! scales, hence bias, multiplier and shift) is the same for both; only which
//! neighbour each weight rounds to changes, so the runtime and the file format
//! do not know which was used.
//!
//! The grid is linear int8 (`−127..=127` times the channel's scale) or
//! logarithmic ([`WeightGrid::Pow2`]: 0 and `±2^e`, `e <= 6`, stored in 4
//! bits), or, for the weights of a pruned file, [`WeightGrid::Pow2x3`]: 0
//! and the four top powers `±8 … ±64`, whose non-zeros take 3 bits after
//! the file's bitmap (pruning has removed the small weights the lower powers
//! would serve). A power-of-two grid is coarse at its top (64 and 32 are its two
//! largest steps), so its per-channel scale is searched for: each candidate
//! is scored by the layer's output error on the calibration data,
//! `(w − s·q)ᵀ H (w − s·q)` with `H = Σ x xᵀ` the input moments (or by
//! `‖w − s·q‖²` without them), and both roundings then work on the chosen
//! grid.

use nalgebra::{DMatrix, DVector};

use crate::ir::{Array, Conv, FullyConnected, Graph, Op, Window};

/// How weights are rounded to their grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Rounding {
    /// Round each weight to the nearest grid point.
    #[default]
    Nearest,
    /// Error-compensating rounding driven by the calibration inputs (GPTQ).
    Gptq,
}

impl Rounding {
    pub fn name(self) -> &'static str {
        match self {
            Rounding::Nearest => "nearest",
            Rounding::Gptq => "gptq",
        }
    }
}

/// The grid Conv and FullyConnected weights are quantized to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightGrid {
    /// Linear: the integers `−127..=127` times the channel's scale.
    #[default]
    Int8,
    /// Logarithmic: 0 and `±2^e` (`e = 0..=6`) times the channel's scale,
    /// stored in 4 bits; products become shifts.
    Pow2,
    /// The power-of-two grid of a file whose weights are pruned: 0 and
    /// `±2^e` with `e = 3..=6`, so that each non-zero is a 3-bit code after
    /// the bitmap. The converter's choice for `--weights pow2` with
    /// `--prune-weights`, not an option of its own.
    #[value(skip)]
    Pow2x3,
}

impl WeightGrid {
    pub fn name(self) -> &'static str {
        match self {
            WeightGrid::Int8 => "int8",
            WeightGrid::Pow2 => "pow2",
            WeightGrid::Pow2x3 => "pow2 (3-bit non-zeros)",
        }
    }

    /// The grid point nearest `t` (a weight over its channel's scale).
    fn nearest(self, t: f64) -> i8 {
        match self {
            WeightGrid::Int8 => t.round().clamp(-127.0, 127.0) as i8,
            WeightGrid::Pow2 => nearest_pow2(t, 1.0),
            WeightGrid::Pow2x3 => nearest_pow2(t, f64::from(1u8 << medq::pow2::X3_MIN_EXPONENT)),
        }
    }

    /// The grid's largest magnitude: the scale that puts a channel's largest
    /// weight on it is `max|w| / top`.
    fn top(self) -> f64 {
        match self {
            WeightGrid::Int8 => 127.0,
            WeightGrid::Pow2 | WeightGrid::Pow2x3 => f64::from(1u8 << medq::pow2::MAX_EXPONENT),
        }
    }

    /// On the logarithmic grid (4- or 3-bit codes).
    pub fn is_pow2(self) -> bool {
        matches!(self, WeightGrid::Pow2 | WeightGrid::Pow2x3)
    }
}

/// How Conv and FullyConnected weights are quantized: the grid, and how each
/// weight picks its grid point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WeightQuant {
    pub grid: WeightGrid,
    pub rounding: Rounding,
}

/// The nearest of 0 and `±low, ±2·low, …, ±64` (`low` a power of two) to
/// `t`, in linear distance: between `2^e` and `2^(e+1)` the midpoint is
/// `1.5·2^e`, between 0 and `low` it is `low / 2`; past 64, 64.
fn nearest_pow2(t: f64, low: f64) -> i8 {
    let a = t.abs();
    if a.is_nan() || a < low / 2.0 {
        return 0;
    }
    let top = WeightGrid::Pow2.top();
    let m = if a >= top {
        top
    } else {
        let lo = a.log2().floor().exp2().max(low);
        if a >= 1.5 * lo {
            (2.0 * lo).min(top)
        } else {
            lo
        }
    };
    (m.copysign(t)) as i8
}

/// Layers whose weight rows are longer than this are rounded to nearest: the
/// statistics are `n²` doubles per group (2048 columns: 32 MiB).
pub const MAX_COLUMNS: usize = 2048;

/// GPTQ needs the input moments to be well estimated: with fewer input
/// vectors than a few times the row length (a FullyConnected layer after a
/// large flatten, calibrated on a few dozen samples) the moments are rank
/// deficient, GPTQ fits the calibration set instead of the layer, and the
/// error on other data grows. Such layers are rounded to nearest.
pub const MIN_OBSERVATIONS_PER_COLUMN: usize = 4;

/// Ridge added to the input statistics, relative to their mean diagonal, so
/// that directions the calibration data never excites get (almost) no
/// compensation pushed into them. 1% is the GPTQ paper's value.
const DAMPING: f64 = 0.01;

/// Second moments `Σ x xᵀ` of one layer's input patches, one matrix per
/// group (a weight row of group `g` only sees group `g`'s input channels),
/// and their sums `Σ x` (pruning reconstructs the bias from them).
#[derive(Clone, Debug)]
pub struct InputMoments {
    /// Per group, `n × n` with `n` the weight row length.
    pub groups: Vec<DMatrix<f64>>,
    /// Per group, `n` sums.
    pub sums: Vec<DVector<f64>>,
    /// How many input vectors were added.
    pub observations: usize,
}

impl InputMoments {
    /// Whether they belong to `rows` weight rows of `per` weights: the
    /// groups divide the rows, and each matrix is `per × per`.
    fn fit(&self, rows: usize, per: usize) -> bool {
        rows.is_multiple_of(self.groups.len().max(1))
            && self.groups.iter().all(|h| h.nrows() == per)
    }
}

/// Where a Conv or FullyConnected node's weight rows meet its input.
#[derive(Clone, Debug)]
enum Geometry {
    /// `x` is `[N, C, H, W]` (or `[N, C, L]`), weights `[Cout, C/groups, kH, kW]`;
    /// each of the N samples (a video's frames) adds its patches.
    Conv {
        channels: usize,
        height: usize,
        width: usize,
        window: Window,
        groups: usize,
    },
    /// Each run of `k` values of `x` is one input vector.
    FullyConnected { k: usize },
}

/// The nodes whose weights GPTQ can round, with their geometry.
fn geometry(graph: &Graph, node: usize) -> Option<Geometry> {
    let n = &graph.nodes[node];
    let x = &graph.tensors[*n.inputs.first()?].shape;
    match &n.op {
        Op::Conv(Conv { window, groups, .. }) => {
            let (channels, height, width) = match x.as_slice() {
                [_, c, l] => (*c, 1, *l),
                [_, c, h, w] => (*c, *h, *w),
                _ => return None,
            };
            Some(Geometry::Conv {
                channels,
                height,
                width,
                window: *window,
                groups: *groups,
            })
        }
        Op::FullyConnected(FullyConnected { weights, .. }) => Some(Geometry::FullyConnected {
            k: *weights.shape.get(1)?,
        }),
        _ => None,
    }
}

/// Accumulates [`InputMoments`] for every Conv and FullyConnected node.
pub struct MomentsCollector {
    /// Indexed by node; `None` for nodes without weights to round.
    layers: Vec<Option<Layer>>,
}

struct Layer {
    geo: Geometry,
    /// Weight row length.
    n: usize,
    /// `None` when the rows are longer than [`MAX_COLUMNS`].
    moments: Option<InputMoments>,
}

/// A weighted node's input moments, or why they are not usable. GPTQ rounds
/// with them and pruning reconstructs a layer from them; without them the
/// weights are rounded to nearest and the layer is not reconstructed.
#[derive(Clone, Debug)]
pub enum LayerMoments {
    Usable(InputMoments),
    /// Why not (too few calibration vectors, rows too long).
    Unusable(String),
}

impl MomentsCollector {
    pub fn new(graph: &Graph) -> MomentsCollector {
        let layers = (0..graph.nodes.len())
            .map(|i| {
                let geo = geometry(graph, i)?;
                let (groups, n) = match &geo {
                    Geometry::Conv {
                        channels,
                        window,
                        groups,
                        ..
                    } => (
                        *groups,
                        channels / groups.max(&1) * window.kernel[0] * window.kernel[1],
                    ),
                    Geometry::FullyConnected { k } => (1, *k),
                };
                let moments = (n > 0 && n <= MAX_COLUMNS).then(|| InputMoments {
                    groups: vec![DMatrix::zeros(n, n); groups],
                    sums: vec![DVector::zeros(n); groups],
                    observations: 0,
                });
                Some(Layer { geo, n, moments })
            })
            .collect();
        MomentsCollector { layers }
    }

    /// Add one sample's input `x` of node `node`.
    pub fn observe(&mut self, node: usize, x: &[f32]) {
        let Some(Some(Layer {
            geo,
            moments: Some(moments),
            ..
        })) = self.layers.get_mut(node)
        else {
            return;
        };
        match geo {
            Geometry::FullyConnected { k } => {
                let rows = x.len() / *k;
                let p = DMatrix::from_fn(rows, *k, |r, c| x[r * *k + c] as f64);
                moments.groups[0].gemm_tr(1.0, &p, &p, 1.0);
                moments.sums[0] += p.row_sum().transpose();
                moments.observations += rows;
            }
            Geometry::Conv {
                channels,
                height,
                width,
                window,
                groups,
            } => {
                let (c, h, w) = (*channels, *height, *width);
                let [kh, kw] = window.kernel;
                let [sh, sw] = window.strides;
                let [dh, dw] = window.dilations;
                let [pt, pl, pb, pr] = window.pads;
                let span = |k: usize, d: usize| (k - 1) * d + 1;
                let out_h = (h + pt + pb).saturating_sub(span(kh, dh)) / sh + 1;
                let out_w = (w + pl + pr).saturating_sub(span(kw, dw)) / sw + 1;
                let cg = c / *groups;
                let n = cg * kh * kw;
                let positions = out_h * out_w;
                let samples = x.chunks_exact((c * h * w).max(1));
                let n_samples = samples.len();
                for x in samples {
                    let groups = moments.groups.iter_mut().zip(moments.sums.iter_mut());
                    for (g, (m, sum)) in groups.enumerate() {
                        // One row per output position: the patch it reads, in
                        // the weight row's order (channel, kernel row, kernel column).
                        let p = DMatrix::from_fn(positions, n, |pos, col| {
                            let (oy, ox) = (pos / out_w, pos % out_w);
                            let ci = g * cg + col / (kh * kw);
                            let (ky, kx) = ((col / kw) % kh, col % kw);
                            let iy = (oy * sh + ky * dh) as isize - pt as isize;
                            let ix = (ox * sw + kx * dw) as isize - pl as isize;
                            if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                                0.0
                            } else {
                                x[(ci * h + iy as usize) * w + ix as usize] as f64
                            }
                        });
                        m.gemm_tr(1.0, &p, &p, 1.0);
                        *sum += p.row_sum().transpose();
                    }
                }
                moments.observations += positions * n_samples;
            }
        }
    }

    /// Each weighted node's moments, indexed by node (`None` for nodes
    /// without weights).
    pub fn finish(self) -> Vec<Option<LayerMoments>> {
        self.layers
            .into_iter()
            .map(|l| {
                let Layer { n, moments, .. } = l?;
                Some(match moments {
                    None => LayerMoments::Unusable(format!(
                        "rows of {n} weights are longer than the {MAX_COLUMNS} input moments are \
                         gathered for"
                    )),
                    Some(m) if m.observations < MIN_OBSERVATIONS_PER_COLUMN * n => {
                        LayerMoments::Unusable(format!(
                            "{} calibration input vectors for rows of {n} weights; their \
                             moments need at least {}",
                            m.observations,
                            MIN_OBSERVATIONS_PER_COLUMN * n
                        ))
                    }
                    Some(m) => LayerMoments::Usable(m),
                })
            })
            .collect()
    }
}

/// Symmetric per-channel int8 scales along axis 0: `max|w_c| / 127`.
pub fn channel_scales(weights: &Array) -> Vec<f32> {
    let channels = weights.shape.first().copied().unwrap_or(1).max(1);
    let per = weights.data.len() / channels;
    (0..channels)
        .map(|c| max_abs_scale(&weights.data[c * per..(c + 1) * per], WeightGrid::Int8))
        .collect()
}

/// Symmetric per-channel int16 weights along axis 0 (an int16 layer's
/// 16x16 form), rounded to nearest: `scale[c] = max(max|w_c| / 32767,
/// floor[c])`, so a channel whose bias needs a coarser scale to fit `i32`
/// (`floor`) gets it. At 16 bits nearest rounding is within 2^-16 of each
/// weight's range, far below what GPTQ's error feedback could recover.
pub fn quantize_weights_i16(weights: &Array, floor: impl Fn(usize) -> f32) -> (Vec<i16>, Vec<f32>) {
    let channels = weights.shape.first().copied().unwrap_or(1).max(1);
    let per = (weights.data.len() / channels).max(1);
    let scales: Vec<f32> = weights
        .data
        .chunks(per)
        .enumerate()
        .map(|(c, row)| {
            let max_abs = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = match max_abs > 0.0 {
                true => (f64::from(max_abs) / f64::from(i16::MAX)) as f32,
                false => 1.0,
            };
            scale.max(floor(c))
        })
        .collect();
    let q = weights
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let r = (f64::from(v) / f64::from(scales[i / per])).round();
            r.clamp(-f64::from(i16::MAX), f64::from(i16::MAX)) as i16
        })
        .collect();
    (q, scales)
}

/// The scale that puts the row's largest weight on the grid's top (1.0 for
/// an all-zero row).
fn max_abs_scale(row: &[f32], grid: WeightGrid) -> f32 {
    let max_abs = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if max_abs > 0.0 {
        (f64::from(max_abs) / grid.top()) as f32
    } else {
        1.0
    }
}

/// Candidate scales a power-of-two channel tries, as multiples of
/// `max|w| / 64` in sixteenths of an octave: from half (the largest weight
/// clips at 64, and one exponent more reaches the small ones) up to where
/// it would round down to 32.
const POW2_SCALE_STEPS: std::ops::RangeInclusive<i32> = -16..=6;

/// Per-channel power-of-two scales: of the candidate steps (from half of
/// `max|w| / 64` up to just before the largest weight rounds to 32), the one whose
/// nearest-rounded row changes the layer's output least on the calibration
/// data (`dᵀ H d` for the row's error `d`, `H` its group's input moments),
/// or the row itself least without usable moments. A tie keeps the smaller
/// step.
pub fn pow2_scales(weights: &Array, moments: Option<&InputMoments>, grid: WeightGrid) -> Vec<f32> {
    let rows = weights.shape.first().copied().unwrap_or(1).max(1);
    let per = weights.data.len() / rows;
    let moments = moments.filter(|m| m.fit(rows, per));
    let rows_per_group = moments.map_or(rows, |m| rows / m.groups.len().max(1));
    (0..rows)
        .map(|r| {
            let row = &weights.data[r * per..(r + 1) * per];
            let h = moments.and_then(|m| m.groups.get(r / rows_per_group.max(1)));
            let base = f64::from(max_abs_scale(row, grid));
            let error = |scale: f64| -> f64 {
                let d: Vec<f64> = row
                    .iter()
                    .map(|&v| {
                        let v = f64::from(v);
                        v - f64::from(grid.nearest(v / scale)) * scale
                    })
                    .collect();
                match h {
                    Some(h) => {
                        let d = DVector::from_vec(d);
                        (d.transpose() * h * &d)[(0, 0)]
                    }
                    None => d.iter().map(|e| e * e).sum(),
                }
            };
            let mut best = (f64::INFINITY, base);
            for step in POW2_SCALE_STEPS {
                let scale = base * (f64::from(step) / 16.0).exp2();
                let e = error(scale);
                if e < best.0 {
                    best = (e, scale);
                }
            }
            best.1 as f32
        })
        .collect()
}

/// Moves channel `c` onto the coarser scale `scale` (larger than its own),
/// rounding its weights to nearest there: for a channel whose bias is too
/// large for `i32` on its accumulator's scale (a unit whose weights are
/// tiny beside its bias), so the bias stays exact and nothing is clipped.
pub fn coarsen_channel(
    weights: &Array,
    q: &mut [i8],
    scales: &mut [f32],
    c: usize,
    scale: f32,
    grid: WeightGrid,
) {
    let per = weights.data.len() / scales.len().max(1);
    let (Some(row), Some(qs), Some(s)) = (
        weights.data.get(c * per..(c + 1) * per),
        q.get_mut(c * per..(c + 1) * per),
        scales.get_mut(c),
    ) else {
        return;
    };
    *s = scale;
    for (q, &v) in qs.iter_mut().zip(row) {
        *q = grid.nearest(f64::from(v) / f64::from(scale));
    }
}

/// Per-channel weights (axis 0) on `how.grid` and their scales. With
/// `moments`, a power-of-two grid's scales are chosen on them, and
/// `Rounding::Gptq` rounds with them; otherwise each weight rounds to
/// nearest.
pub fn quantize_weights(
    weights: &Array,
    moments: Option<&InputMoments>,
    how: WeightQuant,
) -> (Vec<i8>, Vec<f32>) {
    let grid = how.grid;
    let scales = match grid {
        WeightGrid::Int8 => channel_scales(weights),
        WeightGrid::Pow2 | WeightGrid::Pow2x3 => pow2_scales(weights, moments, grid),
    };
    let rows = scales.len();
    let per = weights.data.len() / rows.max(1);
    let to_grid = |v: f64, scale: f32| grid.nearest(v / f64::from(scale));
    let nearest = || {
        weights
            .data
            .iter()
            .enumerate()
            .map(|(i, &v)| to_grid(v as f64, scales[i / per.max(1)]))
            .collect::<Vec<i8>>()
    };
    let gptq = moments.filter(|m| how.rounding == Rounding::Gptq && m.fit(rows, per));
    let Some(m) = gptq else {
        return (nearest(), scales);
    };
    let rows_per_group = rows / m.groups.len().max(1);
    let mut q = vec![0i8; weights.data.len()];
    for (g, h) in m.groups.iter().enumerate() {
        let rows = g * rows_per_group..(g + 1) * rows_per_group;
        let block = &weights.data[rows.start * per..rows.end * per];
        let row_scales = &scales[rows.clone()];
        match gptq_block(block, row_scales, h, grid) {
            Some(qb) => q[rows.start * per..rows.end * per].copy_from_slice(&qb),
            None => {
                for (r, row) in block.chunks(per).enumerate() {
                    for (c, &v) in row.iter().enumerate() {
                        q[(rows.start + r) * per + c] = to_grid(v as f64, row_scales[r]);
                    }
                }
            }
        }
    }
    (q, scales)
}

/// GPTQ on a row-major block of weight rows sharing the input moments `h`.
/// `None` when the moments cannot be factored (then the caller rounds to
/// nearest).
fn gptq_block(
    block: &[f32],
    scales: &[f32],
    h: &DMatrix<f64>,
    grid: WeightGrid,
) -> Option<Vec<i8>> {
    let n = h.nrows();
    let factor = ObsFactor::new(h)?;
    let mut q = vec![0i8; block.len()];
    for (r, (row, &scale)) in block.chunks(n).zip(scales).enumerate() {
        let scale = f64::from(scale);
        let mut w: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        factor.fix_row(&mut w, |i, v| {
            // A weight that is exactly zero (pruned) stays zero; the other
            // weights of its row compensate for it like for any rounding.
            let qi = if row[i] == 0.0 {
                0
            } else {
                grid.nearest(v / scale)
            };
            q[r * n + i] = qi;
            f64::from(qi) * scale
        });
    }
    Some(q)
}

/// The input moments as GPTQ and OBS use them: [`DAMPING`] times their
/// mean diagonal added to the diagonal, and inputs the data never excited
/// given the mean diagonal, so that no compensation flows into or out of
/// them. `None` when `h` is all zero.
pub(crate) fn damped(h: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let n = h.nrows();
    let mut h = h.clone();
    let mean_diag = (0..n).map(|i| h[(i, i)]).sum::<f64>() / n as f64;
    if !(mean_diag.is_finite() && mean_diag > 0.0) {
        return None;
    }
    for i in 0..n {
        if h[(i, i)] == 0.0 {
            h[(i, i)] = mean_diag;
        }
        h[(i, i)] += DAMPING * mean_diag;
    }
    Some(h)
}

/// Optimal Brain Surgeon's sequential update, which GPTQ rounds with and
/// SparseGPT prunes with: a row's weights are fixed one input at a time
/// (most excited input first), and each fixed weight's error is spread over
/// the inputs not fixed yet so that the layer's output on the calibration
/// data moves least.
pub(crate) struct ObsFactor {
    /// Inputs in the order they are fixed.
    order: Vec<usize>,
    /// The upper Cholesky factor U of the damped H⁻¹ in that order
    /// (H⁻¹ = Uᵀ U): row i carries input i's error onto the inputs after it.
    u: DMatrix<f64>,
    /// `[H⁻¹]ᵢᵢ` per input, in the inputs' own order.
    inverse_diagonal: Vec<f64>,
}

impl ObsFactor {
    /// `None` when `h` is all zero or cannot be factored.
    pub(crate) fn new(h: &DMatrix<f64>) -> Option<ObsFactor> {
        let n = h.nrows();
        let h = damped(h)?;
        // Fix the most excited inputs first ("act order"): their errors then
        // have the most inputs left to be compensated in.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| h[(b, b)].total_cmp(&h[(a, a)]).then(a.cmp(&b)));
        let h = DMatrix::from_fn(n, n, |i, j| h[(order[i], order[j])]);
        let h_inv = h.cholesky()?.inverse();
        let mut inverse_diagonal = vec![0.0; n];
        for (i, &src) in order.iter().enumerate() {
            inverse_diagonal[src] = h_inv[(i, i)];
        }
        let u = h_inv.cholesky()?.l().transpose();
        Some(ObsFactor {
            order,
            u,
            inverse_diagonal,
        })
    }

    /// `[H⁻¹]ᵢᵢ` for each input: OBS's cost of setting weight `i` of a row
    /// to zero (alone) is `wᵢ² / [H⁻¹]ᵢᵢ`.
    pub(crate) fn inverse_diagonal(&self) -> &[f64] {
        &self.inverse_diagonal
    }

    /// Fixes the row `w` (in the inputs' order) input by input:
    /// `fix(input, current value)` gives the value the weight keeps, and
    /// the difference is spread over the inputs not fixed yet.
    pub(crate) fn fix_row(&self, w: &mut [f64], mut fix: impl FnMut(usize, f64) -> f64) {
        let n = self.order.len().min(w.len());
        for i in 0..n {
            let src = self.order[i];
            let kept = fix(src, w[src]);
            let err = (w[src] - kept) / self.u[(i, i)];
            w[src] = kept;
            for j in i + 1..n {
                w[self.order[j]] -= err * self.u[(i, j)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::lcg;

    const NEAREST: WeightQuant = WeightQuant {
        grid: WeightGrid::Int8,
        rounding: Rounding::Nearest,
    };
    const GPTQ: WeightQuant = WeightQuant {
        grid: WeightGrid::Int8,
        rounding: Rounding::Gptq,
    };

    fn moments_of(xs: &[Vec<f32>]) -> InputMoments {
        let n = xs[0].len();
        let mut h = DMatrix::zeros(n, n);
        let mut sum = DVector::zeros(n);
        for x in xs {
            let p = DMatrix::from_fn(1, n, |_, c| x[c] as f64);
            h.gemm_tr(1.0, &p, &p, 1.0);
            sum += p.row_sum().transpose();
        }
        InputMoments {
            groups: vec![h],
            sums: vec![sum],
            observations: xs.len(),
        }
    }

    fn output_error(w: &Array, q: &[i8], scales: &[f32], xs: &[Vec<f32>]) -> f64 {
        let n = w.shape[1];
        let mut e = 0.0;
        for x in xs {
            for r in 0..w.shape[0] {
                let exact: f64 = (0..n).map(|c| w.data[r * n + c] as f64 * x[c] as f64).sum();
                let approx: f64 = (0..n)
                    .map(|c| q[r * n + c] as f64 * scales[r] as f64 * x[c] as f64)
                    .sum();
                e += (exact - approx).powi(2);
            }
        }
        e
    }

    /// Random weights `[rows, n]` and 200 input vectors whose neighbours
    /// correlate strongly, like a sampled signal.
    fn weights_and_correlated_inputs(seed: u64, rows: usize, n: usize) -> (Array, Vec<Vec<f32>>) {
        let mut seed = seed;
        let w = Array::new(
            vec![rows, n],
            (0..rows * n).map(|_| lcg(&mut seed) * 0.3).collect(),
        );
        let xs = (0..200)
            .map(|_| {
                let mut acc = 0.0;
                (0..n)
                    .map(|_| {
                        acc = 0.9 * acc + lcg(&mut seed);
                        acc
                    })
                    .collect()
            })
            .collect();
        (w, xs)
    }

    #[test]
    fn gptq_lowers_the_output_error_on_correlated_inputs() {
        let (rows, n) = (8, 24);
        let (w, xs) = weights_and_correlated_inputs(7, rows, n);
        let m = moments_of(&xs);
        let (near, s1) = quantize_weights(&w, None, NEAREST);
        let (gptq, s2) = quantize_weights(&w, Some(&m), GPTQ);
        assert_eq!(s1, s2, "the grid does not change");
        let (e_near, e_gptq) = (
            output_error(&w, &near, &s1, &xs),
            output_error(&w, &gptq, &s2, &xs),
        );
        assert!(
            e_gptq < 0.5 * e_near,
            "gptq {e_gptq:e} vs nearest {e_near:e}"
        );
        // The grid is symmetric, and the result deterministic.
        assert!(gptq.iter().all(|&q| q != i8::MIN));
        assert_eq!(quantize_weights(&w, Some(&m), GPTQ).0, gptq);

        // Pruned (zero) weights stay zero, and the others make up for them:
        // less output error than the same zeros with nearest rounding.
        let mut sparse = w.clone();
        for v in sparse.data.iter_mut().step_by(2) {
            *v = 0.0;
        }
        let (near, s1) = quantize_weights(&sparse, None, NEAREST);
        let (gptq, s2) = quantize_weights(&sparse, Some(&m), GPTQ);
        assert!(gptq.iter().step_by(2).all(|&q| q == 0));
        assert!(gptq.iter().skip(1).step_by(2).any(|&q| q != 0));
        assert!(output_error(&w, &gptq, &s2, &xs) < output_error(&w, &near, &s1, &xs));
    }

    #[test]
    fn nearest_pow2_rounds_in_linear_distance() {
        let cases = [
            (0.0, 0),
            (0.49, 0),
            (0.5, 1),
            (-0.7, -1),
            (1.49, 1),
            (1.5, 2),
            (2.9, 2),
            (3.0, 4),
            (47.9, 32),
            (48.0, 64),
            (-1000.0, -64),
            (f64::NAN, 0),
        ];
        for (t, want) in cases {
            assert_eq!(nearest_pow2(t, 1.0), want, "{t}");
        }
    }

    #[test]
    fn pow2_scale_search_and_gptq_lower_the_output_error() {
        let (rows, n) = (8, 24);
        let (w, xs) = weights_and_correlated_inputs(11, rows, n);
        let m = moments_of(&xs);
        let pow2 = |rounding| WeightQuant {
            grid: WeightGrid::Pow2,
            rounding,
        };
        // The plain grid: the largest weight of each row on 64.
        let plain: Vec<f32> = (0..rows)
            .map(|r| max_abs_scale(&w.data[r * n..(r + 1) * n], WeightGrid::Pow2))
            .collect();
        let plain_q: Vec<i8> = w
            .data
            .iter()
            .enumerate()
            .map(|(i, &v)| nearest_pow2(f64::from(v / plain[i / n]), 1.0))
            .collect();
        let (searched, s1) = quantize_weights(&w, Some(&m), pow2(Rounding::Nearest));
        let (gptq, s2) = quantize_weights(&w, Some(&m), pow2(Rounding::Gptq));
        assert_eq!(s1, s2, "GPTQ rounds on the searched grid");
        for q in [&searched, &gptq] {
            assert!(q.iter().all(|&v| medq::pow2::encode(v).is_some()));
        }
        let e_plain = output_error(&w, &plain_q, &plain, &xs);
        let e_searched = output_error(&w, &searched, &s1, &xs);
        let e_gptq = output_error(&w, &gptq, &s2, &xs);
        assert!(
            e_searched < 0.5 * e_plain && e_gptq < 0.8 * e_searched,
            "plain {e_plain:e}, searched {e_searched:e}, gptq {e_gptq:e}"
        );
        // Without moments the search minimises the weights' own error.
        let (own, s) = quantize_weights(&w, None, pow2(Rounding::Nearest));
        let weight_error = |q: &[i8], s: &[f32]| -> f64 {
            w.data
                .iter()
                .enumerate()
                .map(|(i, &v)| (f64::from(v) - f64::from(q[i]) * f64::from(s[i / n])).powi(2))
                .sum()
        };
        assert!(weight_error(&own, &s) <= weight_error(&plain_q, &plain));
    }

    /// A naive grouped 2-D convolution without bias, `x` `[C, H, W]`.
    fn naive_conv(
        x: &[f32],
        (h, w): (usize, usize),
        weights: &Array,
        win: &Window,
        groups: usize,
    ) -> Vec<f64> {
        let (cout, cg, kh, kw) = (
            weights.shape[0],
            weights.shape[1],
            weights.shape[2],
            weights.shape[3],
        );
        let out_h =
            (h + win.pads[0] + win.pads[2] - (kh - 1) * win.dilations[0] - 1) / win.strides[0] + 1;
        let out_w =
            (w + win.pads[1] + win.pads[3] - (kw - 1) * win.dilations[1] - 1) / win.strides[1] + 1;
        let mut y = Vec::new();
        for o in 0..cout {
            let g = o / (cout / groups);
            for oy in 0..out_h {
                for ox in 0..out_w {
                    let mut acc = 0.0f64;
                    for ci in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * win.strides[0] + ky * win.dilations[0]) as isize
                                    - win.pads[0] as isize;
                                let ix = (ox * win.strides[1] + kx * win.dilations[1]) as isize
                                    - win.pads[1] as isize;
                                if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                                    continue;
                                }
                                let xv = x[((g * cg + ci) * h + iy as usize) * w + ix as usize];
                                let wv = weights.data[((o * cg + ci) * kh + ky) * kw + kx];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    y.push(acc);
                }
            }
        }
        y
    }

    #[test]
    fn conv_moments_follow_the_weight_layout() {
        // Σ over samples and positions of (w_o · patch)² must equal
        // w_o H_g w_oᵀ (and Σ w_o · patch must equal w_o · sums_g) for every
        // output channel o: this holds only if the
        // patches are laid out like the weight rows (channel, kernel row,
        // kernel column) and the pads, strides and dilations are applied
        // as the convolution applies them.
        let (c, h, w, groups, cout, kh, kw) = (4, 5, 7, 2, 6, 2, 3);
        let window = Window {
            kernel: [kh, kw],
            strides: [1, 2],
            dilations: [2, 1],
            pads: [1, 2, 0, 1],
        };
        let mut seed = 3;
        let weights = Array::new(
            vec![cout, c / groups, kh, kw],
            (0..cout * c / groups * kh * kw)
                .map(|_| lcg(&mut seed))
                .collect(),
        );
        let mut graph = Graph {
            tensors: vec![
                crate::ir::Tensor {
                    name: "x".into(),
                    shape: vec![1, c, h, w],
                    value: None,
                },
                crate::ir::Tensor {
                    name: "y".into(),
                    shape: vec![],
                    value: None,
                },
            ],
            nodes: Vec::new(),
            inputs: vec![0],
            outputs: vec![1],
            ..Graph::default()
        };
        graph.nodes.push(crate::ir::Node {
            name: "conv".into(),
            onnx_ops: vec!["Conv".into()],
            op: Op::Conv(Conv {
                weights: weights.clone(),
                bias: vec![0.0; cout],
                window,
                groups,
                activation: crate::ir::FusedActivation::None,
            }),
            inputs: vec![0],
            output: 1,
        });
        let mut collector = MomentsCollector::new(&graph);
        let mut energy = vec![0.0f64; cout];
        let mut total = vec![0.0f64; cout];
        for _ in 0..3 {
            let x: Vec<f32> = (0..c * h * w).map(|_| lcg(&mut seed)).collect();
            collector.observe(0, &x);
            let y = naive_conv(&x, (h, w), &weights, &window, groups);
            let per = y.len() / cout;
            for o in 0..cout {
                let out = &y[o * per..(o + 1) * per];
                energy[o] += out.iter().map(|v| v * v).sum::<f64>();
                total[o] += out.iter().sum::<f64>();
            }
        }
        let Some(Some(LayerMoments::Usable(m))) = collector.finish().into_iter().next() else {
            panic!("the conv's moments should be usable");
        };
        let n = c / groups * kh * kw;
        for (o, &e) in energy.iter().enumerate() {
            let hg = &m.groups[o / (cout / groups)];
            let row = &weights.data[o * n..(o + 1) * n];
            let quad: f64 = (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| row[i] as f64 * hg[(i, j)] * row[j] as f64)
                .sum();
            assert!(
                (quad - e).abs() <= 1e-9 * e.max(1.0),
                "channel {o}: {quad} vs {e}"
            );
            // And the sums: Σ (w_o · patch) = w_o · Σ patch.
            let sum = &m.sums[o / (cout / groups)];
            let lin: f64 = (0..n).map(|i| row[i] as f64 * sum[i]).sum();
            assert!(
                (lin - total[o]).abs() <= 1e-9 * total[o].abs().max(1.0),
                "channel {o}: {lin} vs {}",
                total[o]
            );
        }
    }

    #[test]
    fn without_data_or_with_unusable_moments_rounding_is_nearest() {
        let w = Array::new(vec![2, 3], vec![0.5, -0.25, 0.1, 1.0, 0.0, -0.7]);
        let (near, _) = quantize_weights(&w, None, NEAREST);
        assert_eq!(near, vec![127, -64, 25, 127, 0, -89]);
        let zero = InputMoments {
            groups: vec![DMatrix::zeros(3, 3)],
            sums: vec![DVector::zeros(3)],
            observations: 0,
        };
        assert_eq!(quantize_weights(&w, Some(&zero), GPTQ).0, near);
    }
}
