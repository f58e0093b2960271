//! Kernel selection: for each op, the fastest bit-exact kernel that takes
//! its shape on this CPU, chosen once when the op is prepared.
//!
//! Every op has a list of candidates, best first, each with a `takes` check
//! that answers `Ok` or a short reason (the shape is not covered, the CPU
//! lacks the instructions). The first candidate that takes the shape runs;
//! when none does, the reference kernel runs. Nothing falls back silently:
//! [`Chosen::name`] says which kernel runs an op, and [`explain`] lists every
//! candidate with its answer (what `medq bench` prints).
//!
//! Candidates are compiled in per architecture (`cfg(target_arch)`), so a
//! Cortex-M0 build holds the reference kernels only, and the check for a
//! CPU feature is a `cfg!` without `std` and a run-time probe with it. The
//! depthwise kernels also need feature `op-depthwise` (in `all-ops`): on a
//! Cortex-M4 they take ~6 KB of flash that a model without depthwise
//! convolutions does not need; without them depthwise layers run on the
//! general convolution kernels.

use super::{
    reference, AddParams, Broadcast4, ConvParams, FullyConnectedParams, MulParams, PoolParams,
};
use super::{GruParams, LstmParams, RecurrentWeights, RnnParams};

/// Signature of every convolution kernel (`conv_s8` and its optimized twins).
pub type ConvFn = fn(&ConvParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);
/// Signature of every fully connected kernel.
pub type FullyConnectedFn =
    fn(&FullyConnectedParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);
/// Signature of every pooling kernel (max and average).
pub type PoolFn = fn(&PoolParams, &[i8], &mut [i8]);
/// The parameters an elementwise kernel is chosen by: its quantization and
/// its broadcasting.
pub type Elementwise<P> = (P, Broadcast4);

/// Signature of every elementwise add kernel.
pub type AddFn = fn(&AddParams, &Broadcast4, &[i8], &[i8], &mut [i8]);
/// Signature of every elementwise multiply kernel.
pub type MulFn = fn(&MulParams, &Broadcast4, &[i8], &[i8], &mut [i8]);
/// Signature of every table-lookup kernel.
pub type LutFn = fn(&[i8; 256], &[i8], &mut [i8]);

/// Signature of every LSTM kernel.
pub type LstmFn = fn(&LstmParams, &RecurrentWeights<'_>, &[i8], &mut [i8]);
/// Signature of every GRU kernel.
pub type GruFn = fn(&GruParams, &RecurrentWeights<'_>, &[i8], &mut [i8]);
/// Signature of every simple RNN kernel.
pub type RnnFn = fn(&RnnParams, &RecurrentWeights<'_>, &[i8], &mut [i8]);

/// Answers whether a kernel takes a shape on this CPU: `Err` holds the reason.
pub type Takes<P> = fn(&P) -> Result<(), &'static str>;

/// One optimized kernel for parameters `P`.
pub struct Candidate<P: 'static, F: 'static> {
    pub name: &'static str,
    pub takes: Takes<P>,
    pub run: F,
}

impl<P, F> core::fmt::Debug for Candidate<P, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name)
    }
}

/// The kernel chosen for one op.
#[derive(Clone, Copy)]
pub struct Chosen<F> {
    pub run: F,
    /// The kernel's function name, e.g. `conv_s8_avx2` or `conv_s8` (reference).
    pub name: &'static str,
}

impl<F> core::fmt::Debug for Chosen<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name)
    }
}

/// The first candidate that takes `p`, else the reference kernel.
fn pick<P, F: Copy>(p: &P, candidates: &[Candidate<P, F>], reference: Chosen<F>) -> Chosen<F> {
    candidates
        .iter()
        .find(|c| (c.takes)(p).is_ok())
        .map_or(reference, |c| Chosen {
            run: c.run,
            name: c.name,
        })
}

/// Calls `f(name, answer)` for every candidate of an op, best first; the
/// reference kernel, which takes every shape, is not listed.
pub fn explain<P, F>(
    p: &P,
    candidates: &[Candidate<P, F>],
    mut f: impl FnMut(&'static str, Result<(), &'static str>),
) {
    for c in candidates {
        f(c.name, (c.takes)(p));
    }
}

// ---- the candidate lists, best first ----

/// Convolution candidates.
pub const CONV: &[Candidate<ConvParams, ConvFn>] = &[
    #[cfg(all(target_arch = "aarch64", feature = "op-depthwise"))]
    Candidate {
        name: "depthwise_conv_s8_neon",
        takes: super::aarch64::depthwise_conv_neon_takes,
        run: super::aarch64::depthwise_conv_s8_neon,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "conv_s8_dotprod",
        takes: super::aarch64::conv_dotprod_takes,
        run: super::aarch64::conv_s8_dotprod,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "conv_s8_neon",
        takes: super::aarch64::conv_neon_takes,
        run: super::aarch64::conv_s8_neon,
    },
    #[cfg(all(target_arch = "x86_64", feature = "op-depthwise"))]
    Candidate {
        name: "depthwise_conv_s8_avx2",
        takes: super::x86_64::depthwise_conv_avx2_takes,
        run: super::x86_64::depthwise_conv_s8_avx2,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "conv_s8_vnni",
        takes: super::x86_64::conv_vnni_takes,
        run: super::x86_64::conv_s8_vnni,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "conv_s8_avx2",
        takes: super::x86_64::conv_avx2_takes,
        run: super::x86_64::conv_s8_avx2,
    },
    #[cfg(all(
        target_arch = "arm",
        any(target_feature = "dsp", medq_dsp),
        feature = "op-depthwise"
    ))]
    Candidate {
        name: "depthwise_conv_s8_dsp",
        takes: super::cortex_m::depthwise_conv_dsp_takes,
        run: super::cortex_m::depthwise_conv_s8_dsp,
    },
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    Candidate {
        name: "conv_s8_dsp",
        takes: super::cortex_m::conv_dsp_takes,
        run: super::cortex_m::conv_s8_dsp,
    },
];

/// Fully connected candidates.
pub const FULLY_CONNECTED: &[Candidate<FullyConnectedParams, FullyConnectedFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "fully_connected_s8_dotprod",
        takes: super::aarch64::fully_connected_dotprod_takes,
        run: super::aarch64::fully_connected_s8_dotprod,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "fully_connected_s8_neon",
        takes: super::aarch64::fully_connected_neon_takes,
        run: super::aarch64::fully_connected_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "fully_connected_s8_avx2",
        takes: super::x86_64::fully_connected_avx2_takes,
        run: super::x86_64::fully_connected_s8_avx2,
    },
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    Candidate {
        name: "fully_connected_s8_dsp",
        takes: super::cortex_m::fully_connected_dsp_takes,
        run: super::cortex_m::fully_connected_s8_dsp,
    },
];

/// Signature of the convolution kernels reading an int16 input, by output
/// type (`i16`, or `i8`).
#[cfg(feature = "int16-activations")]
pub type ConvS16Fn<Y> = LayerS16Fn<ConvParams, i16, Y>;

/// A mixed-precision weighted-layer kernel (Conv, FullyConnected,
/// ConvTranspose; LayerNorm with gamma as the weights) on params `P`,
/// reading `X` and writing `Y` with weights `W` (`i8`, or `i16` for 16x16):
/// `(p, x, weights, bias, multiplier, shift, y)`.
#[cfg(feature = "int16-activations")]
pub type LayerS16Fn<P, X, Y, W = i8> = fn(&P, &[X], &[W], &[i32], &[i32], &[i8], &mut [Y]);

/// Convolution candidates for an int16 input and output.
#[cfg(feature = "int16-activations")]
pub const CONV_S16: &[Candidate<ConvParams, ConvS16Fn<i16>>] = &[
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    Candidate {
        name: "conv_s16_dsp",
        takes: super::cortex_m::conv_s16_dsp_takes,
        run: super::cortex_m::conv_s16_dsp,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "conv_s16_neon",
        takes: super::aarch64::conv_s16_neon_takes,
        run: super::aarch64::conv_s16_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "conv_s16_avx2",
        takes: super::x86_64::conv_s16_avx2_takes,
        run: super::x86_64::conv_s16_avx2,
    },
];

/// Convolution candidates for an int16 input and an int8 output.
#[cfg(feature = "int16-activations")]
pub const CONV_S16_S8: &[Candidate<ConvParams, ConvS16Fn<i8>>] = &[
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    Candidate {
        name: "conv_s16_s8_dsp",
        takes: super::cortex_m::conv_s16_dsp_takes,
        run: super::cortex_m::conv_s16_s8_dsp,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "conv_s16_s8_neon",
        takes: super::aarch64::conv_s16_neon_takes,
        run: super::aarch64::conv_s16_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "conv_s16_s8_avx2",
        takes: super::x86_64::conv_s16_avx2_takes,
        run: super::x86_64::conv_s16_s8_avx2,
    },
];

/// Signature of the convolution kernels reading an int8 input into an int16
/// output (the first layer of an int16 run).
#[cfg(feature = "int16-activations")]
pub type ConvS8S16Fn = LayerS16Fn<ConvParams, i8, i16>;

/// Convolution candidates for an int8 input and an int16 output.
#[cfg(feature = "int16-activations")]
pub const CONV_S8_S16: &[Candidate<ConvParams, ConvS8S16Fn>] = &[
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    Candidate {
        name: "conv_s8_s16_dsp",
        takes: super::cortex_m::conv_s16_dsp_takes,
        run: super::cortex_m::conv_s8_s16_dsp,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "conv_s8_s16_neon",
        takes: super::aarch64::conv_s16_neon_takes,
        run: super::aarch64::conv_s8_s16_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "conv_s8_s16_avx2",
        takes: super::x86_64::conv_s16_avx2_takes,
        run: super::x86_64::conv_s8_s16_avx2,
    },
];

/// Signature of the fully connected kernels reading an int8 input into an
/// int16 output.
#[cfg(feature = "int16-activations")]
pub type FullyConnectedS8S16Fn = LayerS16Fn<FullyConnectedParams, i8, i16>;

/// Candidates for an int8 input and an int16 output.
#[cfg(feature = "int16-activations")]
pub const FULLY_CONNECTED_S8_S16: &[Candidate<FullyConnectedParams, FullyConnectedS8S16Fn>] = &[
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    Candidate {
        name: "fully_connected_s8_s16_dsp",
        takes: super::cortex_m::fully_connected_s8_s16_dsp_takes,
        run: super::cortex_m::fully_connected_s8_s16_dsp,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "fully_connected_s8_s16_neon",
        takes: super::aarch64::fully_connected_s16_neon_takes,
        run: super::aarch64::fully_connected_s8_s16_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "fully_connected_s8_s16_avx2",
        takes: super::x86_64::fully_connected_s16_avx2_takes,
        run: super::x86_64::fully_connected_s8_s16_avx2,
    },
];

/// Signature of the fully connected kernels reading an int16 input, by
/// output type (`i16`, or `i8`).
#[cfg(feature = "int16-activations")]
pub type FullyConnectedS16Fn<Y> = LayerS16Fn<FullyConnectedParams, i16, Y>;

/// Candidates for an int16 input and output.
#[cfg(feature = "int16-activations")]
pub const FULLY_CONNECTED_S16: &[Candidate<FullyConnectedParams, FullyConnectedS16Fn<i16>>] = &[
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    Candidate {
        name: "fully_connected_s16_dsp",
        takes: super::cortex_m::fully_connected_s16_dsp_takes,
        run: super::cortex_m::fully_connected_s16_dsp,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "fully_connected_s16_neon",
        takes: super::aarch64::fully_connected_s16_neon_takes,
        run: super::aarch64::fully_connected_s16_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "fully_connected_s16_avx2",
        takes: super::x86_64::fully_connected_s16_avx2_takes,
        run: super::x86_64::fully_connected_s16_avx2,
    },
];

/// Candidates for an int16 input and an int8 output.
#[cfg(feature = "int16-activations")]
pub const FULLY_CONNECTED_S16_S8: &[Candidate<FullyConnectedParams, FullyConnectedS16Fn<i8>>] = &[
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    Candidate {
        name: "fully_connected_s16_s8_dsp",
        takes: super::cortex_m::fully_connected_s16_dsp_takes,
        run: super::cortex_m::fully_connected_s16_s8_dsp,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "fully_connected_s16_s8_neon",
        takes: super::aarch64::fully_connected_s16_neon_takes,
        run: super::aarch64::fully_connected_s16_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "fully_connected_s16_s8_avx2",
        takes: super::x86_64::fully_connected_s16_avx2_takes,
        run: super::x86_64::fully_connected_s16_s8_avx2,
    },
];

/// Signature of the 16x16 kernels (int16 weights) of a weighted layer on
/// params `P`, reading `X` and writing `Y`.
#[cfg(feature = "int16-activations")]
pub type LayerW16Fn<P, X, Y> = LayerS16Fn<P, X, Y, i16>;

/// 16x16 convolution candidates for an int16 input and output.
#[cfg(feature = "int16-activations")]
pub const CONV_S16_W16: &[Candidate<ConvParams, LayerW16Fn<ConvParams, i16, i16>>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "conv_s16_w16_neon",
        takes: super::aarch64::conv_s16_neon_takes,
        run: super::aarch64::conv_s16_w16_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "conv_s16_w16_avx2",
        takes: super::x86_64::conv_s16_avx2_takes,
        run: super::x86_64::conv_s16_w16_avx2,
    },
];

/// 16x16 convolution candidates for an int8 input and an int16 output.
#[cfg(feature = "int16-activations")]
pub const CONV_S8_S16_W16: &[Candidate<ConvParams, LayerW16Fn<ConvParams, i8, i16>>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "conv_s8_s16_w16_neon",
        takes: super::aarch64::conv_s16_neon_takes,
        run: super::aarch64::conv_s8_s16_w16_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "conv_s8_s16_w16_avx2",
        takes: super::x86_64::conv_s16_avx2_takes,
        run: super::x86_64::conv_s8_s16_w16_avx2,
    },
];

/// 16x16 convolution candidates for an int16 input and an int8 output.
#[cfg(feature = "int16-activations")]
pub const CONV_S16_S8_W16: &[Candidate<ConvParams, LayerW16Fn<ConvParams, i16, i8>>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "conv_s16_s8_w16_neon",
        takes: super::aarch64::conv_s16_neon_takes,
        run: super::aarch64::conv_s16_s8_w16_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "conv_s16_s8_w16_avx2",
        takes: super::x86_64::conv_s16_avx2_takes,
        run: super::x86_64::conv_s16_s8_w16_avx2,
    },
];

/// 16x16 fully connected candidates for an int16 input and output.
#[cfg(feature = "int16-activations")]
pub const FULLY_CONNECTED_S16_W16: &[Candidate<
    FullyConnectedParams,
    LayerW16Fn<FullyConnectedParams, i16, i16>,
>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "fully_connected_s16_w16_neon",
        takes: super::aarch64::fully_connected_s16_neon_takes,
        run: super::aarch64::fully_connected_s16_w16_neon,
    },
];

/// 16x16 fully connected candidates for an int8 input and an int16 output.
#[cfg(feature = "int16-activations")]
pub const FULLY_CONNECTED_S8_S16_W16: &[Candidate<
    FullyConnectedParams,
    LayerW16Fn<FullyConnectedParams, i8, i16>,
>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "fully_connected_s8_s16_w16_neon",
        takes: super::aarch64::fully_connected_s16_neon_takes,
        run: super::aarch64::fully_connected_s8_s16_w16_neon,
    },
];

/// 16x16 fully connected candidates for an int16 input and an int8 output.
#[cfg(feature = "int16-activations")]
pub const FULLY_CONNECTED_S16_S8_W16: &[Candidate<
    FullyConnectedParams,
    LayerW16Fn<FullyConnectedParams, i16, i8>,
>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "fully_connected_s16_s8_w16_neon",
        takes: super::aarch64::fully_connected_s16_neon_takes,
        run: super::aarch64::fully_connected_s16_s8_w16_neon,
    },
];

/// Max pooling candidates.
pub const MAX_POOL: &[Candidate<PoolParams, PoolFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "max_pool_s8_neon",
        takes: super::aarch64::max_pool_neon_takes,
        run: super::aarch64::max_pool_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "max_pool_s8_avx2",
        takes: super::x86_64::max_pool_avx2_takes,
        run: super::x86_64::max_pool_s8_avx2,
    },
];
/// Average pooling candidates.
pub const AVG_POOL: &[Candidate<PoolParams, PoolFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "avg_pool_s8_neon",
        takes: super::aarch64::avg_pool_neon_takes,
        run: super::aarch64::avg_pool_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "avg_pool_s8_avx2",
        takes: super::x86_64::avg_pool_avx2_takes,
        run: super::x86_64::avg_pool_s8_avx2,
    },
];
/// Elementwise add candidates.
pub const ADD: &[Candidate<Elementwise<AddParams>, AddFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "add_s8_neon",
        takes: |(p, bc)| super::aarch64::add_neon_takes(p, bc),
        run: super::aarch64::add_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "add_s8_avx2",
        takes: |(p, bc)| super::x86_64::add_avx2_takes(p, bc),
        run: super::x86_64::add_s8_avx2,
    },
];
/// Elementwise multiply candidates.
pub const MUL: &[Candidate<Elementwise<MulParams>, MulFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "mul_s8_neon",
        takes: |(p, bc)| super::aarch64::mul_neon_takes(p, bc),
        run: super::aarch64::mul_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "mul_s8_avx2",
        takes: |(p, bc)| super::x86_64::mul_avx2_takes(p, bc),
        run: super::x86_64::mul_s8_avx2,
    },
];
/// Table lookup candidates (the parameter is the element count).
pub const LUT: &[Candidate<usize, LutFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "lut_s8_neon",
        takes: |_| super::aarch64::lut_neon_takes(),
        run: super::aarch64::lut_s8_neon,
    },
];

/// The kernel for a convolution.
pub fn conv(p: &ConvParams) -> Chosen<ConvFn> {
    let reference = Chosen {
        run: reference::conv_s8 as ConvFn,
        name: "conv_s8",
    };
    pick(p, CONV, reference)
}

/// Whether an optimized convolution kernel (not the reference) takes `p`.
pub fn conv_has_optimized(p: &ConvParams) -> bool {
    CONV.iter().any(|c| (c.takes)(p).is_ok())
}

/// Whether a conv whose weights (`rows` output channels, `total` weights)
/// have `nonzero` non-zero runs on the sparse kernel that skips the zeros,
/// rather than decoded, a block of channels at a time, for the optimized
/// dense one. On the Cortex-M DSP, per output, the sparse kernel takes
/// about `43 + 4.8·n` instructions for `n` non-zero weights, and the dense
/// one in 1 KiB blocks about `2·R` for rows of `R` weights (`benches/qemu`'s
/// `sparse` and `model_cost` on the ECG model's convs). So the sparse one
/// runs when `48·nonzero + 430·rows ≤ 20·total`: from about 70 % zeros on
/// rows of 80 weights, never on rows of a few. Elsewhere the dense SIMD
/// kernels are faster at any sparsity.
pub fn conv_sparse_is_direct(nonzero: usize, rows: usize, total: usize) -> bool {
    let sparse = nonzero
        .saturating_mul(48)
        .saturating_add(rows.saturating_mul(430));
    super::cortex_m::USES_DSP_INSTRUCTIONS && sparse <= total.saturating_mul(20)
}

/// Whether an optimized fully connected kernel (not the reference) takes `p`.
pub fn fully_connected_has_optimized(p: &FullyConnectedParams) -> bool {
    FULLY_CONNECTED.iter().any(|c| (c.takes)(p).is_ok())
}

/// The kernel for a fully connected layer.
pub fn fully_connected(p: &FullyConnectedParams) -> Chosen<FullyConnectedFn> {
    let reference = Chosen {
        run: reference::fully_connected_s8 as FullyConnectedFn,
        name: "fully_connected_s8",
    };
    pick(p, FULLY_CONNECTED, reference)
}

/// The convolution kernel for an int16 input and output.
#[cfg(feature = "int16-activations")]
pub fn conv_s16(p: &ConvParams) -> Chosen<ConvS16Fn<i16>> {
    let reference = Chosen {
        run: reference::conv_s16 as ConvS16Fn<i16>,
        name: "conv_s16",
    };
    pick(p, CONV_S16, reference)
}

/// The convolution kernel for an int16 input and an int8 output.
#[cfg(feature = "int16-activations")]
pub fn conv_s16_s8(p: &ConvParams) -> Chosen<ConvS16Fn<i8>> {
    let reference = Chosen {
        run: reference::conv_s16_s8 as ConvS16Fn<i8>,
        name: "conv_s16_s8",
    };
    pick(p, CONV_S16_S8, reference)
}

/// The convolution kernel for an int8 input and an int16 output.
#[cfg(feature = "int16-activations")]
pub fn conv_s8_s16(p: &ConvParams) -> Chosen<ConvS8S16Fn> {
    let reference = Chosen {
        run: reference::conv_s8_s16 as ConvS8S16Fn,
        name: "conv_s8_s16",
    };
    pick(p, CONV_S8_S16, reference)
}

/// The fully connected kernel for an int8 input and an int16 output.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s8_s16(p: &FullyConnectedParams) -> Chosen<FullyConnectedS8S16Fn> {
    let reference = Chosen {
        run: reference::fully_connected_s8_s16 as FullyConnectedS8S16Fn,
        name: "fully_connected_s8_s16",
    };
    pick(p, FULLY_CONNECTED_S8_S16, reference)
}

/// The kernel for an int16 input and output.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s16(p: &FullyConnectedParams) -> Chosen<FullyConnectedS16Fn<i16>> {
    let reference = Chosen {
        run: reference::fully_connected_s16 as FullyConnectedS16Fn<i16>,
        name: "fully_connected_s16",
    };
    pick(p, FULLY_CONNECTED_S16, reference)
}

/// The kernel for an int16 input and an int8 output.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s16_s8(p: &FullyConnectedParams) -> Chosen<FullyConnectedS16Fn<i8>> {
    let reference = Chosen {
        run: reference::fully_connected_s16_s8 as FullyConnectedS16Fn<i8>,
        name: "fully_connected_s16_s8",
    };
    pick(p, FULLY_CONNECTED_S16_S8, reference)
}

/// The 16x16 convolution kernel for an int16 input and output.
#[cfg(feature = "int16-activations")]
pub fn conv_s16_w16(p: &ConvParams) -> Chosen<LayerW16Fn<ConvParams, i16, i16>> {
    let reference = Chosen {
        run: reference::conv_s16_w16 as LayerW16Fn<ConvParams, i16, i16>,
        name: "conv_s16_w16",
    };
    pick(p, CONV_S16_W16, reference)
}

/// The 16x16 convolution kernel for an int8 input and an int16 output.
#[cfg(feature = "int16-activations")]
pub fn conv_s8_s16_w16(p: &ConvParams) -> Chosen<LayerW16Fn<ConvParams, i8, i16>> {
    let reference = Chosen {
        run: reference::conv_s8_s16_w16 as LayerW16Fn<ConvParams, i8, i16>,
        name: "conv_s8_s16_w16",
    };
    pick(p, CONV_S8_S16_W16, reference)
}

/// The 16x16 convolution kernel for an int16 input and an int8 output.
#[cfg(feature = "int16-activations")]
pub fn conv_s16_s8_w16(p: &ConvParams) -> Chosen<LayerW16Fn<ConvParams, i16, i8>> {
    let reference = Chosen {
        run: reference::conv_s16_s8_w16 as LayerW16Fn<ConvParams, i16, i8>,
        name: "conv_s16_s8_w16",
    };
    pick(p, CONV_S16_S8_W16, reference)
}

/// The 16x16 fully connected kernel for an int16 input and output.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s16_w16(
    p: &FullyConnectedParams,
) -> Chosen<LayerW16Fn<FullyConnectedParams, i16, i16>> {
    let reference = Chosen {
        run: reference::fully_connected_s16_w16 as LayerW16Fn<FullyConnectedParams, i16, i16>,
        name: "fully_connected_s16_w16",
    };
    pick(p, FULLY_CONNECTED_S16_W16, reference)
}

/// The 16x16 fully connected kernel for an int8 input and an int16 output.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s8_s16_w16(
    p: &FullyConnectedParams,
) -> Chosen<LayerW16Fn<FullyConnectedParams, i8, i16>> {
    let reference = Chosen {
        run: reference::fully_connected_s8_s16_w16 as LayerW16Fn<FullyConnectedParams, i8, i16>,
        name: "fully_connected_s8_s16_w16",
    };
    pick(p, FULLY_CONNECTED_S8_S16_W16, reference)
}

/// The 16x16 fully connected kernel for an int16 input and an int8 output.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s16_s8_w16(
    p: &FullyConnectedParams,
) -> Chosen<LayerW16Fn<FullyConnectedParams, i16, i8>> {
    let reference = Chosen {
        run: reference::fully_connected_s16_s8_w16 as LayerW16Fn<FullyConnectedParams, i16, i8>,
        name: "fully_connected_s16_s8_w16",
    };
    pick(p, FULLY_CONNECTED_S16_S8_W16, reference)
}

/// The kernel for max pooling.
pub fn max_pool(p: &PoolParams) -> Chosen<PoolFn> {
    let reference = Chosen {
        run: reference::max_pool_s8 as PoolFn,
        name: "max_pool_s8",
    };
    pick(p, MAX_POOL, reference)
}

/// The kernel for average pooling.
pub fn avg_pool(p: &PoolParams) -> Chosen<PoolFn> {
    let reference = Chosen {
        run: reference::avg_pool_s8 as PoolFn,
        name: "avg_pool_s8",
    };
    pick(p, AVG_POOL, reference)
}

/// The kernel for an elementwise add.
pub fn add(p: &Elementwise<AddParams>) -> Chosen<AddFn> {
    let reference = Chosen {
        run: reference::add_s8 as AddFn,
        name: "add_s8",
    };
    pick(p, ADD, reference)
}

/// The kernel for an elementwise multiply.
pub fn mul(p: &Elementwise<MulParams>) -> Chosen<MulFn> {
    let reference = Chosen {
        run: reference::mul_s8 as MulFn,
        name: "mul_s8",
    };
    pick(p, MUL, reference)
}

/// The kernel for a table lookup over `len` elements.
pub fn lut(len: &usize) -> Chosen<LutFn> {
    let reference = Chosen {
        run: reference::lut_s8 as LutFn,
        name: "lut_s8",
    };
    pick(len, LUT, reference)
}

/// LSTM candidates.
pub const LSTM: &[Candidate<LstmParams, LstmFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "lstm_s8_dotprod",
        takes: super::aarch64::lstm_dotprod_takes,
        run: super::aarch64::lstm_s8_dotprod,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "lstm_s8_neon",
        takes: super::aarch64::lstm_neon_takes,
        run: super::aarch64::lstm_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "lstm_s8_avx2",
        takes: super::x86_64::lstm_avx2_takes,
        run: super::x86_64::lstm_s8_avx2,
    },
];

/// GRU candidates.
pub const GRU: &[Candidate<GruParams, GruFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "gru_s8_dotprod",
        takes: super::aarch64::gru_dotprod_takes,
        run: super::aarch64::gru_s8_dotprod,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "gru_s8_neon",
        takes: super::aarch64::gru_neon_takes,
        run: super::aarch64::gru_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "gru_s8_avx2",
        takes: super::x86_64::gru_avx2_takes,
        run: super::x86_64::gru_s8_avx2,
    },
];

/// Simple RNN candidates.
pub const RNN: &[Candidate<RnnParams, RnnFn>] = &[
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "rnn_s8_dotprod",
        takes: super::aarch64::rnn_dotprod_takes,
        run: super::aarch64::rnn_s8_dotprod,
    },
    #[cfg(target_arch = "aarch64")]
    Candidate {
        name: "rnn_s8_neon",
        takes: super::aarch64::rnn_neon_takes,
        run: super::aarch64::rnn_s8_neon,
    },
    #[cfg(target_arch = "x86_64")]
    Candidate {
        name: "rnn_s8_avx2",
        takes: super::x86_64::rnn_avx2_takes,
        run: super::x86_64::rnn_s8_avx2,
    },
];

/// The kernel for an LSTM.
pub fn lstm(p: &LstmParams) -> Chosen<LstmFn> {
    let reference = Chosen {
        run: reference::lstm_s8 as LstmFn,
        name: "lstm_s8",
    };
    pick(p, LSTM, reference)
}

/// The kernel for a GRU.
pub fn gru(p: &GruParams) -> Chosen<GruFn> {
    let reference = Chosen {
        run: reference::gru_s8 as GruFn,
        name: "gru_s8",
    };
    pick(p, GRU, reference)
}

/// The kernel for a simple RNN.
pub fn rnn(p: &RnnParams) -> Chosen<RnnFn> {
    let reference = Chosen {
        run: reference::rnn_s8 as RnnFn,
        name: "rnn_s8",
    };
    pick(p, RNN, reference)
}
