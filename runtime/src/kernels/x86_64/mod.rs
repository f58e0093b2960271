//! x86-64 kernels on AVX2 (and AVX-512 VNNI for convolutions), bit-exact
//! with the [`reference`](super::reference) kernels.
//!
//! The multiply-accumulates are `vpmaddwd`: sixteen `i16 × i16` products
//! summed in pairs into eight `i32` lanes, exact for `|x − zp| ≤ 255` and
//! `|w| ≤ 128`, with wrapping `i32` adds after it: the same sums the
//! reference forms, in another order (`NUMERICS.md` §2). `vpmaddubsw`
//! (which saturates) is never used. Requantization is `numerics::requantize`
//! on eight lanes (module `requant`).
//!
//! - [`conv_s8_avx2`]: the direct path (module `direct`) widens the input once
//!   into a band of `i32` lanes holding two input channels' `x − zp`, so 8
//!   consecutive outputs read 8 consecutive lanes for every tap; a register
//!   tile of 6 output channels × 16 outputs takes 12 `vpmaddwd` per channel
//!   pair and tap. One input channel per group goes to the sliding path of
//!   [`depthwise_conv_s8_avx2`], and what fits neither to an im2col GEMM.
//! - [`conv_s8_vnni`] (AVX-512 VNNI on 256-bit vectors, detected like AVX2
//!   and chosen before [`conv_s8_avx2`] where the CPU has it): the same
//!   direct path with four input channels per lane as `u8` `x + 128`, one
//!   exact `vpdpbusd` adding four taps to 8 outputs; the `128 + zp` it adds
//!   per weight is taken off the bias (module `vnni`).
//! - [`depthwise_conv_s8_avx2`]: each input plane is widened into a band
//!   split into stride phases, and 16 outputs take two `vpmaddwd` per pair
//!   of taps.
//! - Both widen whole bands of padded rows (module `band`) and compute over them
//!   flat, across output rows when the H stride is 1, so narrow planes
//!   (25×5) do not waste a vector per row.
//! - A convolution (one group) whose one output row's band does not fit
//!   runs the direct path in tiles of its output plane, each a convolution
//!   of its own over a copy of the input it reads (module `tiles`): a
//!   12-lead ECG's 64 channels × 1000 samples and longer.
//! - [`conv_s16_avx2`], [`conv_s16_s8_avx2`], [`conv_s8_s16_avx2`] (feature
//!   `int16-activations`): int16 activations on the im2col GEMM of
//!   [`conv_s8_avx2`], its `i32` sums added into `i64` totals every 510 taps
//!   (module `conv_s16`), and with int16 weights [`conv_s16_w16_avx2`] and
//!   its two pairings (the GEMM once per byte of the weights);
//!   [`fully_connected_s16_avx2`] and its two pairings
//!   likewise on the loop of [`fully_connected_s8_avx2`], each row's 8 lanes
//!   added into an `i64` total every 496 inputs.
//! - [`fully_connected_s8_avx2`]: 8 weight rows against one input row at a
//!   time, the reduction in chunks of 16.
//! - [`max_pool_s8_avx2`], [`avg_pool_s8_avx2`], [`add_s8_avx2`],
//!   [`mul_s8_avx2`]: vectorized over output positions / elements.
//! - [`lstm_s8_avx2`], [`gru_s8_avx2`], [`rnn_s8_avx2`]: the gate products of each time step
//!   (8 rows at a time, as the fully connected kernel), the rest of the step
//!   the reference kernel's own code.
//!
//! Every kernel is a safe function with the reference's arguments. When
//! AVX2 is missing (detected at run time with `std`, at compile time
//! without) or its `_takes` check refuses the shape, it calls the reference
//! kernel, which also gives the same "returns early, output unchanged"
//! behaviour on bad arguments. The `_takes` functions tell the kernel
//! selection which shapes run here and why the others do not.
//!
//! Stack: at most [`SCRATCH_BYTES`] of buffers per call.

mod band;
mod conv;
#[cfg(feature = "int16-activations")]
mod conv_s16;
mod depthwise;
mod direct;
mod elementwise;
mod fully_connected;
#[cfg(feature = "int16-activations")]
mod fully_connected_s16;
mod pool;
mod recurrent;
mod requant;
mod tiles;
mod vnni;
mod widen;

pub use conv::{conv_avx2_takes, conv_s8_avx2};
#[cfg(feature = "int16-activations")]
pub use conv_s16::{
    conv_s16_avx2, conv_s16_avx2_takes, conv_s16_s8_avx2, conv_s16_s8_w16_avx2, conv_s16_w16_avx2,
    conv_s8_s16_avx2, conv_s8_s16_w16_avx2,
};
pub use depthwise::{depthwise_conv_avx2_takes, depthwise_conv_s8_avx2};
pub use elementwise::{add_avx2_takes, add_s8_avx2, mul_avx2_takes, mul_s8_avx2};
pub use fully_connected::{fully_connected_avx2_takes, fully_connected_s8_avx2};
#[cfg(feature = "int16-activations")]
pub use fully_connected_s16::{
    fully_connected_s16_avx2, fully_connected_s16_avx2_takes, fully_connected_s16_s8_avx2,
    fully_connected_s8_s16_avx2,
};
pub use pool::{avg_pool_avx2_takes, avg_pool_s8_avx2, max_pool_avx2_takes, max_pool_s8_avx2};
pub use recurrent::{
    gru_avx2_takes, gru_s8_avx2, lstm_avx2_takes, lstm_s8_avx2, rnn_avx2_takes, rnn_s8_avx2,
};
pub use vnni::{conv_s8_vnni, conv_vnni_takes, vnni_available};

/// Most stack any kernel here takes for its buffers.
pub const SCRATCH_BYTES: usize = max(
    max(
        max(
            conv::SCRATCH_BYTES,
            direct::SCRATCH_BYTES + tiles::SCRATCH_BYTES,
        ),
        depthwise::SCRATCH_BYTES,
    ),
    pool::SCRATCH_BYTES,
);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Whether this CPU runs AVX2: detected at run time with feature `std`,
/// else whether the build targets it (`-C target-feature=+avx2`).
#[inline]
pub fn avx2_available() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx2")
    }
}

/// `Err` with the reason when AVX2 is missing.
fn need_avx2() -> Result<(), &'static str> {
    if avx2_available() {
        Ok(())
    } else {
        Err("AVX2 not available")
    }
}
