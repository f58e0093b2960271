//! Whether a compressed model still looks where the float model looks:
//! occlusion attribution maps of float and int8 (or pruned) models on the
//! same samples, compared by rank (Spearman).
//!
//! A map is computed per sample for the class the float model predicts: a
//! window of the input's last axis is set to the sample's mean, slid along
//! it, and each position's value is how much that class's output drops
//! (Zeiler & Fergus, 2014). A clinician reads such a map as "this part of
//! the beat made the call"; if int8 ranks the parts differently, the
//! compressed model is right for other reasons than the float one.

use crate::error::ConvertError;
use crate::evaluate::top2;
use crate::float_ref::FloatRef;
use crate::samples::InputSamples;

/// Samples the maps are computed on (the first of the evaluation set).
pub const MAX_SAMPLES: usize = 200;

/// How the input is occluded.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Occlusion {
    /// Window length along the input's last axis.
    pub window: usize,
    /// Step between window positions.
    pub stride: usize,
}

impl Occlusion {
    /// A tenth of the axis, half-overlapping: 14 and 7 on a 140-sample beat.
    pub fn for_length(len: usize) -> Occlusion {
        let window = (len / 10).max(1);
        Occlusion {
            window,
            stride: (window / 2).max(1),
        }
    }

    /// The window's start positions along an axis of `len`.
    fn starts(&self, len: usize) -> impl Iterator<Item = usize> + '_ {
        (0..len.saturating_sub(self.window) + 1).step_by(self.stride.max(1))
    }

    /// `model`'s map on `sample` for output `class`: the drop of that output
    /// when each window of the last axis (`axis_len`; the leading axes are
    /// occluded together) is set to the sample's mean.
    pub fn map(
        &self,
        sample: &[f32],
        axis_len: usize,
        class: usize,
        model: &mut impl FnMut(&[f32]) -> Result<Vec<f32>, ConvertError>,
    ) -> Result<Vec<f32>, ConvertError> {
        let base = model(sample)?.get(class).copied().unwrap_or(0.0);
        let mean = sample.iter().sum::<f32>() / sample.len().max(1) as f32;
        let mut masked = sample.to_vec();
        let mut map = Vec::new();
        for start in self.starts(axis_len) {
            masked.copy_from_slice(sample);
            for row in masked.chunks_exact_mut(axis_len.max(1)) {
                for v in row.iter_mut().skip(start).take(self.window) {
                    *v = mean;
                }
            }
            map.push(base - model(&masked)?.get(class).copied().unwrap_or(0.0));
        }
        Ok(map)
    }
}

/// Spearman's rank correlation of `a` and `b` (ties get their mean rank);
/// `None` when either is constant, where ranks say nothing.
pub fn spearman(a: &[f32], b: &[f32]) -> Option<f64> {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len().min(rb.len()) as f64;
    let mean = (n + 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - mean) * (y - mean);
        va += (x - mean).powi(2);
        vb += (y - mean).powi(2);
    }
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// 1-based ranks, ties sharing their mean rank.
fn ranks(v: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Agreement of int8 maps with float maps over the samples.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttributionReport {
    /// How the maps are made.
    pub method: &'static str,
    pub occlusion: Occlusion,
    /// Samples with a defined correlation (a map that is flat in either
    /// model has none).
    pub samples: usize,
    pub spearman_median: f64,
    pub spearman_p5: f64,
    /// Sample 0: its input, the float map and the int8 map (for a plot).
    #[serde(skip)]
    pub first: Option<(Vec<f32>, Vec<f32>, Vec<f32>)>,
}

/// What the maps are computed for: single-input models whose output 0 has a
/// class per value (more than one value).
pub const METHOD: &str = "occlusion: a window of a tenth of the input's last axis, set to the \
sample's mean, slid by half a window; each position's drop of the float model's predicted class \
on output 0; Spearman rank correlation of the int8 map with the float map, per sample";

/// Float maps against the int8 model's (`int8` runs one sample, returning
/// output 0 dequantized), on the first [`MAX_SAMPLES`] samples. `None` with
/// the reason when the model is not one the maps are made for.
pub fn compare(
    float: &FloatRef,
    output: &str,
    samples: &impl InputSamples,
    input_shape: &[usize],
    int8: &mut impl FnMut(&[f32]) -> Result<Vec<f32>, ConvertError>,
) -> Result<Result<AttributionReport, String>, ConvertError> {
    let axis_len = input_shape.last().copied().unwrap_or(1);
    if samples.count() == 0 || axis_len < 4 {
        return Ok(Err(
            "no samples, or an input axis too short to occlude".into()
        ));
    }
    if samples.inputs(0).len() != 1 {
        return Ok(Err(
            "attribution maps are made for single-input models".into()
        ));
    }
    let occlusion = Occlusion::for_length(axis_len);
    let wanted = [output.to_string()];
    let mut float_model = |x: &[f32]| -> Result<Vec<f32>, ConvertError> {
        Ok(float
            .run(x, &wanted)?
            .into_iter()
            .next()
            .unwrap_or_default())
    };
    let mut correlations = Vec::new();
    let mut first = None;
    for s in 0..samples.count().min(MAX_SAMPLES) {
        let Some(&x) = samples.inputs(s).first() else {
            continue;
        };
        let reference = float_model(x)?;
        if reference.len() < 2 {
            return Ok(Err("output 0 has one value: no class to attribute".into()));
        }
        let class = top2(&reference).0;
        let f = occlusion.map(x, axis_len, class, &mut float_model)?;
        let q = occlusion.map(x, axis_len, class, int8)?;
        if let Some(rho) = spearman(&f, &q) {
            correlations.push(rho);
        }
        if first.is_none() {
            first = Some((x.to_vec(), f, q));
        }
    }
    if correlations.is_empty() {
        return Ok(Err("every map was flat".into()));
    }
    correlations.sort_by(f64::total_cmp);
    let at = |p: f64| correlations[((correlations.len() - 1) as f64 * p).round() as usize];
    Ok(Ok(AttributionReport {
        method: METHOD,
        occlusion,
        samples: correlations.len(),
        spearman_median: at(0.5),
        spearman_p5: at(0.05),
        first,
    }))
}

/// Sample 0 and its float and int8 maps as an SVG: the input above, the
/// two maps below, each map value at the centre of its window.
pub fn svg(x: &[f32], float: &[f32], int8: &[f32]) -> Result<String, ConvertError> {
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| ConvertError::Usage(format!("--attribution-svg: {e}"));
    let occlusion = Occlusion::for_length(x.len());
    let centres: Vec<f64> = occlusion
        .starts(x.len())
        .map(|s| s as f64 + occlusion.window as f64 / 2.0)
        .collect();
    let span = |v: &[f32]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &y| {
                (lo.min(f64::from(y)), hi.max(f64::from(y)))
            });
        let pad = ((hi - lo) * 0.05).max(1e-6);
        (lo - pad)..(hi + pad)
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let (top, bottom) = root.split_vertically(260);
        let len = x.len() as f64;
        let mut input = ChartBuilder::on(&top)
            .caption("sample 0: the input (last axis)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..len, span(x))
            .map_err(|e| fail(&e))?;
        input.configure_mesh().draw().map_err(|e| fail(&e))?;
        input
            .draw_series(LineSeries::new(
                x.iter().enumerate().map(|(i, &v)| (i as f64, f64::from(v))),
                BLACK.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?;
        let both: Vec<f32> = float.iter().chain(int8).copied().collect();
        let mut maps = ChartBuilder::on(&bottom)
            .caption(
                "occlusion maps: drop of the predicted class, window centre",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..len, span(&both))
            .map_err(|e| fail(&e))?;
        maps.configure_mesh().draw().map_err(|e| fail(&e))?;
        for (map, colour, name) in [(float, BLUE, "float"), (int8, RED, "int8")] {
            maps.draw_series(LineSeries::new(
                centres.iter().zip(map).map(|(&c, &v)| (c, f64::from(v))),
                colour.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(name)
            .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 20, ly)], colour));
        }
        maps.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_is_rank_correlation() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        // Monotone but not linear: still 1.
        assert_eq!(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]),
            Some(1.0)
        );
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[3.0, 2.0, 1.0]), None);
        // Ties share their mean rank: [1.5, 1.5, 3] against [1, 2, 3].
        let rho = spearman(&[5.0, 5.0, 9.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((rho - 0.866_025_4).abs() < 1e-6, "{rho}");
    }

    #[test]
    fn occlusion_finds_the_window_the_model_reads() {
        // The "class 1" output is the sum of positions 20..30 of a 40-long
        // axis; class 0 is constant.
        let model =
            |x: &[f32]| -> Result<Vec<f32>, ConvertError> { Ok(vec![1.0, x[20..30].iter().sum()]) };
        let mut m = model;
        let sample: Vec<f32> = (0..40).map(|i| if i < 20 { 0.0 } else { 1.0 }).collect();
        let occ = Occlusion::for_length(40);
        assert_eq!((occ.window, occ.stride), (4, 2));
        let map = occ.map(&sample, 40, 1, &mut m).unwrap();
        assert_eq!(map.len(), 19);
        // Windows inside 20..30 drop the output by 4 · (1 − 0.5); those
        // outside by nothing.
        let starts: Vec<usize> = occ.starts(40).collect();
        for (&start, &drop) in starts.iter().zip(&map) {
            let inside = (start..start + 4).filter(|i| (20..30).contains(i)).count();
            assert!((drop - inside as f32 * 0.5).abs() < 1e-6, "{start}: {drop}");
        }
    }
}
