//! The naive ConvTranspose shared by the property tests of the int8 and
//! the int16 kernels: its geometry strategy and its sum, written as the
//! scatter the ONNX spec describes (the kernels gather).
#![allow(dead_code)]

use medq::kernels::ConvTransposeParams;
use proptest::prelude::*;

/// One axis: `(in, kernel, stride, dilation, pad_begin, out)` with the ONNX
/// output size `(in−1)·stride − pads + dilation·(kernel−1) + output_pad + 1`.
pub fn transposed_axis(flat: bool) -> BoxedStrategy<(usize, usize, usize, usize, usize, usize)> {
    if flat {
        return Just((1, 1, 1, 1, 0, 1)).boxed();
    }
    (
        1usize..=5,
        1usize..=3,
        1usize..=3,
        1usize..=2,
        0usize..=2,
        0usize..=2,
        0usize..=2,
    )
        .prop_filter_map("pads leave no output", |(i, k, s, d, pb, pe, op)| {
            let full = (i - 1) * s + d * (k - 1) + op + 1;
            full.checked_sub(pb + pe)
                .filter(|&o| o >= 1)
                .map(|o| (i, k, s, d, pb, o))
        })
        .boxed()
}

/// Every input element `(ic, iy, ix)` (given less its zero point) scatters
/// `x · w` over the outputs it touches, `oy = iy·stride + ky·dilation − pad`;
/// each output channel starts at its bias. Exact in `i128`, `[C_out,
/// out_h, out_w]`.
pub fn scatter_sum(p: &ConvTransposeParams, x: &[i64], weights: &[i8], bias: &[i32]) -> Vec<i128> {
    let (cin_g, cout_g) = (p.in_channels / p.groups, p.out_channels / p.groups);
    let mut acc: Vec<i128> = (0..p.out_channels)
        .flat_map(|oc| std::iter::repeat_n(bias[oc] as i128, p.out_h * p.out_w))
        .collect();
    for ic in 0..p.in_channels {
        let g = ic / cin_g;
        for iy in 0..p.in_h {
            for ix in 0..p.in_w {
                let x = x[(ic * p.in_h + iy) * p.in_w + ix] as i128;
                for oc in g * cout_g..(g + 1) * cout_g {
                    for ky in 0..p.kernel_h {
                        for kx in 0..p.kernel_w {
                            let oy =
                                (iy * p.stride_h + ky * p.dilation_h) as i64 - p.pad_top as i64;
                            let ox =
                                (ix * p.stride_w + kx * p.dilation_w) as i64 - p.pad_left as i64;
                            if oy < 0 || ox < 0 || oy >= p.out_h as i64 || ox >= p.out_w as i64 {
                                continue;
                            }
                            let w = weights
                                [((oc * cin_g + ic % cin_g) * p.kernel_h + ky) * p.kernel_w + kx];
                            let at = (oc * p.out_h + oy as usize) * p.out_w + ox as usize;
                            acc[at] += x * w as i128;
                        }
                    }
                }
            }
        }
    }
    acc
}
