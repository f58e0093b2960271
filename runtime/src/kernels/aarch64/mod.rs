//! aarch64 kernels on Advanced SIMD (NEON), with and without the
//! dot-product extension (`sdot`), bit-exact with [`reference`](super::reference).
//!
//! Two instruction sets, chosen at run time:
//! - **`neon`**, for every aarch64 core (the Cortex-A53/A72 of a Raspberry
//!   Pi 3/4 have no `sdot`). Convolutions multiply raw bytes in pairs:
//!   `smull`/`smlal` put two products of one output position in an `i16`
//!   lane and `sadalp` folds them into `i32` — exact when no weight is −128
//!   (the converter writes symmetric weights; each call checks). Otherwise,
//!   and for the other ops, operands are widened to `i16` with the input
//!   zero point already subtracted (`|x − zp| ≤ 255`, so `|x − zp| · |w| ≤
//!   32640` even for a weight of −128), and `smlal` by element multiplies
//!   four output positions by one weight per instruction.
//! - **`dotprod`** (the Cortex-A76 of a Pi 5, and later cores): `sdot` takes
//!   16 `i8` products per instruction on the raw bytes. `x − zp` does not
//!   fit `i8`, so the kernels accumulate `Σ x·w` and subtract `zp · Σ w` per
//!   output channel; padded taps hold `x = zp` and cancel exactly. Wrapping
//!   `i32` sums make the reordering exact (`NUMERICS.md` §2). `sdot` is
//!   inline `asm!` (`.arch_extension dotprod`) in `unsafe` functions that
//!   run only after [`has_dotprod`] said yes.
//!
//! Requantization is `numerics::requantize` exactly, four lanes at a time:
//! `sqdmulh` + `srshl` when the shift is negative (proof in `requant`),
//! else the 64-bit product (`smull`), `srshl` and `sqxtn`.
//!
//! Every kernel `<op>_s8_<isa>` takes the reference kernel's arguments and
//! is safe to call anywhere: when its `<op>_<isa>_takes` refuses the shape
//! (or the CPU lacks the extension), or a slice length is wrong, it calls the
//! reference kernel, which also keeps the "returns early, output
//! unchanged" behaviour identical. The kernels and what they refuse:
//!
//! | kernel | takes | refuses |
//! |---|---|---|
//! | `conv_s8_{neon,dotprod}` | groups = 1, 1-D and 2-D, any stride (W ≤ 8), dilation, pads; long reductions in chunks, long rows in W segments | grouped convolutions, zero points or clamps outside `i8`, `C_in · kH · W-stride` rows of one tile above [`MAX_STAGED_BYTES`] |
//! | `depthwise_conv_s8_neon` | one filter per channel, any stride (W ≤ 8), dilation, pads | filters over 64 taps, padded planes over 8192 elements |
//! | `fully_connected_s8_{neon,dotprod}` | any rows, any N | K < 16 (NEON also K > 4096) |
//! | `max_pool_s8_neon`, `avg_pool_s8_neon` | any geometry (fast: side-by-side 1-D windows of 2–4, global pooling, long rows) | empty planes; averages over windows above 2^23 |
//! | `add_s8_neon`, `mul_s8_neon` | same shape, scalar, and broadcasts whose rows are 16 or longer (per-channel constants) | broadcast rows shorter than 16, innermost strides other than 0 or 1 |
//! | `lut_s8_neon`, `lut_in_place_s8_neon` | everything | — |
//! | `lstm_s8_{neon,dotprod}`, `gru_s8_{neon,dotprod}`, `rnn_s8_{neon,dotprod}` (gate products) | any geometry | input size above 4096, input zero point outside `i8` |
//!
//! Guest instructions per multiply-accumulate (conv, FC) or per input
//! element (pools, add, mul, lut), under `qemu-aarch64 -cpu max`
//! (`examples/kernel_icount.rs`):
//!
//! | layer | reference | neon | dotprod |
//! |---|---|---|---|
//! | conv 1×1639 → 16, k9 s2 | 23.0 | 0.83 | 0.56 |
//! | conv 16×205 → 32, k7 | 17.6 | 0.32 | 0.14 |
//! | conv 24×187 → 48, k7 | 17.4 | 0.31 | 0.12 |
//! | conv 48×93 → 64, k5 | 19.3 | 0.31 | 0.12 |
//! | conv 64×46 → 96, k3 | 24.2 | 0.34 | 0.15 |
//! | conv 16×32×32 → 16, 3×3 | 21.3 | 0.37 | 0.19 |
//! | depthwise 64×25×5, 3×3 | 27.6 | 3.1 | — |
//! | fully connected 640 → 128 | 1.55 | 0.57 | 0.27 |
//! | max pool k2 / k4 | 10.5 / 8.8 | 0.46 / 0.34 | — |
//! | global average pool 64×46 | 12.1 | 0.84 | — |
//! | add / mul 32×205 | 10.1 / 5.2 | 4.8 / 2.8 | — |
//! | lookup table | 5.0 | 0.69 | — |
//!
//! Scratch lives in bounded stack buffers; the largest call (a convolution)
//! takes about [`CONV_STACK_BYTES`] (64 KiB).

mod conv;
#[cfg(feature = "int16-activations")]
mod conv_s16;
mod depthwise;
mod dot;
mod elementwise;
mod fully_connected;
#[cfg(feature = "int16-activations")]
mod fully_connected_s16;
mod gemm;
mod lut;
mod pool;
mod recurrent;
mod requant;

pub use conv::{conv_dotprod_takes, conv_neon_takes, conv_s8_dotprod, conv_s8_neon};
pub use conv::{CONV_STACK_BYTES, MAX_STAGED_BYTES};
#[cfg(feature = "int16-activations")]
pub use conv_s16::{
    conv_s16_neon, conv_s16_neon_takes, conv_s16_s8_neon, conv_s16_s8_w16_neon, conv_s16_w16_neon,
    conv_s8_s16_neon, conv_s8_s16_w16_neon,
};
pub use depthwise::{depthwise_conv_neon_takes, depthwise_conv_s8_neon};
pub use elementwise::{add_neon_takes, add_s8_neon, mul_neon_takes, mul_s8_neon};
pub use fully_connected::{
    fully_connected_dotprod_takes, fully_connected_neon_takes, fully_connected_s8_dotprod,
    fully_connected_s8_neon,
};
#[cfg(feature = "int16-activations")]
pub use fully_connected_s16::{
    fully_connected_s16_neon, fully_connected_s16_neon_takes, fully_connected_s16_s8_neon,
    fully_connected_s16_s8_w16_neon, fully_connected_s16_w16_neon, fully_connected_s8_s16_neon,
    fully_connected_s8_s16_w16_neon,
};
pub use lut::{lut_in_place_s8_neon, lut_neon_takes, lut_s8_neon};
pub use pool::{avg_pool_neon_takes, avg_pool_s8_neon, max_pool_neon_takes, max_pool_s8_neon};
pub use recurrent::{
    gru_dotprod_takes, gru_neon_takes, gru_s8_dotprod, gru_s8_neon, lstm_dotprod_takes,
    lstm_neon_takes, lstm_s8_dotprod, lstm_s8_neon, rnn_dotprod_takes, rnn_neon_takes,
    rnn_s8_dotprod, rnn_s8_neon,
};

/// Whether this CPU has the dot-product extension (`sdot`, ARMv8.2 `FEAT_DotProd`).
///
/// With feature `std`, asked of the operating system (cached after the first
/// call); without it, whether the build targets such a CPU
/// (`-C target-feature=+dotprod`).
pub fn has_dotprod() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "dotprod")
    }
}

/// The reason every `_dotprod_takes` gives on a CPU without `sdot`.
const NO_DOTPROD: &str = "CPU lacks the dot-product extension";

/// Refusal unless `zp` is an `i8` (the format guarantees it; the kernels
/// rely on it to pad with `zp` bytes and to add it in `i16`).
fn zero_point_ok(zp: i32, what: &'static str) -> Result<(), &'static str> {
    if (-128..=127).contains(&zp) {
        Ok(())
    } else {
        Err(what)
    }
}

/// The taps of a sliding window along one axis that land inside the input:
/// tap `k` of output `o` reads input `o·stride + k·dilation − pad`, the valid
/// taps are `lo..hi`. Same closed form as the reference kernels; exact when
/// `reference::axis_ok` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Taps {
    lo: usize,
    hi: usize,
}

impl Taps {
    fn new(
        o: usize,
        stride: usize,
        dilation: usize,
        pad: usize,
        kernel: usize,
        in_len: usize,
    ) -> Taps {
        let d = dilation.max(1);
        let base = o.saturating_mul(stride);
        let lo = if base >= pad {
            0
        } else {
            (pad - base).div_ceil(d)
        }
        .min(kernel);
        let end = in_len.saturating_add(pad);
        let hi = if end > base {
            (end - base).div_ceil(d)
        } else {
            0
        }
        .min(kernel);
        if lo >= hi {
            Taps { lo: 0, hi: 0 }
        } else {
            Taps { lo, hi }
        }
    }

    fn len(self) -> usize {
        self.hi - self.lo
    }
}

// The same geometry and clamp checks as the reference kernels, so both refuse alike.
use super::reference::{act_ok, axis_ok};

/// `#[repr(align(16))]` wrapper, so that stack buffers hold whole vectors.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Aligned<T>(T);

/// The first `len` (at most `N`) elements of `buf`, set to `value`: a call
/// initializes only as much of its stack buffers as its shape needs.
fn filled_prefix<T: Copy, const N: usize>(
    buf: &mut core::mem::MaybeUninit<Aligned<[T; N]>>,
    len: usize,
    value: T,
) -> &mut [T] {
    let len = len.min(N);
    let first = buf.as_mut_ptr().cast::<T>();
    for i in 0..len {
        // SAFETY: `i < len <= N`, inside `buf`, which is borrowed exclusively.
        unsafe { first.add(i).write(value) };
    }
    // SAFETY: the first `len` elements were just initialized, and the slice
    // borrows `buf` for its lifetime.
    unsafe { core::slice::from_raw_parts_mut(first, len) }
}

/// `LAST_LANES[r..r + 16]` keeps the last `r` of 16 byte lanes (0xff there,
/// 0 before); `LAST_LANES[8 + r..16 + r]` the last `r` of 8.
static LAST_LANES: [u8; 32] = {
    let mut m = [0u8; 32];
    let mut i = 16;
    while i < 32 {
        m[i] = 0xff;
        i += 1;
    }
    m
};
