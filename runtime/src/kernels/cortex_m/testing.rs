//! What the kernels' tests share: a deterministic generator, and a
//! convolution call run through the reference and a DSP kernel.

use crate::kernels::{reference, ConvParams};
use std::vec::Vec;

/// xorshift32 from `seed` (non-zero): deterministic data, full `u32` range.
pub fn xorshift(seed: u32) -> impl FnMut() -> u32 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    }
}

/// A conv call with consistent geometry and data.
#[derive(Debug, Clone)]
pub struct ConvCase {
    pub p: ConvParams,
    pub input: Vec<i8>,
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub multiplier: Vec<i32>,
    pub shift: Vec<i8>,
}

impl ConvCase {
    /// A case from `p` (its zero points and clamp replaced) and its data;
    /// `(izp, ozp, a, b)`: the zero points, and the clamp `a..=b` (ordered)
    /// for odd `a`, none for even `a`.
    pub fn new(
        mut p: ConvParams,
        (input, weights): (Vec<i8>, Vec<i8>),
        (bias, multiplier, shift): (Vec<i32>, Vec<i32>, Vec<i8>),
        (izp, ozp, a, b): (i32, i32, i32, i32),
    ) -> ConvCase {
        p.input_zero_point = izp;
        p.output_zero_point = ozp;
        (p.act_min, p.act_max) = match a % 2 {
            0 => (-128, 127),
            _ => (a.min(b), a.max(b)),
        };
        ConvCase {
            p,
            input,
            weights,
            bias,
            multiplier,
            shift,
        }
    }
}

/// A conv kernel's signature.
pub type ConvKernel = fn(&ConvParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);

/// The outputs of the reference and of `kernel` for `c`, both starting as
/// `0x55` bytes (so untouched outputs compare too).
pub fn conv_both(c: &ConvCase, kernel: ConvKernel) -> (Vec<i8>, Vec<i8>) {
    let n = c.p.out_channels * c.p.out_h * c.p.out_w;
    let mut want = std::vec![0x55i8; n];
    let mut got = std::vec![0x55i8; n];
    let (x, w, b, m, s) = (&c.input, &c.weights, &c.bias, &c.multiplier, &c.shift);
    reference::conv_s8(&c.p, x, w, b, m, s, &mut want);
    kernel(&c.p, x, w, b, m, s, &mut got);
    (want, got)
}
