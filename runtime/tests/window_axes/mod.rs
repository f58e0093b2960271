//! Window geometry strategies shared by the property tests of the int8
//! and the int16 kernels.
#![allow(dead_code)]

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
