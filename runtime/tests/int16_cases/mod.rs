//! Int16 operands for the optimized kernels' property tests
//! (`kernels_x86_64.rs`, `kernels_aarch64.rs`): activations and weights at
//! and near their rails, so that a reduction chunk's `i32` sums approach
//! 2^31, and int16 output windows.
#![cfg(feature = "int16-activations")]
#![allow(dead_code)] // each test file uses its own part

use proptest::collection::vec;
use proptest::prelude::*;

/// An int16 activation: any, the rails, or (a third of the cases) all large
/// and of one sign, so that a chunk's `i32` sums approach 2^31.
pub fn x16s(n: usize) -> impl Strategy<Value = Vec<i16>> {
    let x = prop_oneof![4 => any::<i16>(), 1 => Just(i16::MIN), 1 => Just(i16::MAX)];
    prop_oneof![
        2 => vec(x, n),
        1 => vec(Just(i16::MIN), n),
        1 => vec(32000i16..=i16::MAX, n),
    ]
}

/// An int16 output window.
pub fn act16() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        2 => Just((-32768, 32767)),
        3 => (-32768i32..=32767, -32768i32..=32767).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

/// Int16 weights for `n` taps: any value, the rails, and values whose low
/// byte is 128 or more (their `hi` part is one more than `w >> 8`, up to 128).
pub fn w16s(n: usize) -> impl Strategy<Value = Vec<i16>> {
    let w = prop_oneof![
        4 => any::<i16>(),
        1 => Just(i16::MIN),
        1 => Just(i16::MAX),
        1 => 32640i16..=i16::MAX,
        1 => i16::MIN..=-32640i16,
    ];
    prop_oneof![3 => vec(w, n), 1 => vec(Just(i16::MIN), n), 1 => vec(Just(i16::MAX), n)]
}
