//! Writes a small, untrained stand-in for the ECG model (Conv → ReLU →
//! Reshape → FullyConnected, input [1, 1, 140] int8, output [1, 5] int8) with
//! deterministic pseudo-random weights, to exercise the firmware's model path
//! before the real `model/ecg.mq` comes out of the converter. Its outputs mean
//! nothing. Host only:
//!
//!     cargo run --example toy_model --target x86_64-unknown-linux-gnu -- /tmp/toy.mq

use medq::numerics::quantize_multiplier;
use medq::{OpCode, QuantSpec, Writer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/toy_ecg.mq".into());
    let mut seed = 0x2545_F491u32;
    let mut rand_i8 = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 255) as i32 - 127
    };

    let (s_in, s_w1, s_h, s_w2, s_out) = (0.05f32, 0.01f32, 0.05f32, 0.01f32, 0.1f32);
    let (c_out, k, stride) = (8usize, 8usize, 4usize);
    let l_out = (140 - k) / stride + 1; // 34
    let hidden = c_out * l_out;

    let mut w = Writer::new();
    let x = w.add_activation(
        "ecg",
        &[1, 1, 140],
        QuantSpec::PerTensor {
            scale: s_in,
            zero_point: 0,
        },
        0,
    );
    let w1: Vec<i8> = (0..c_out * k).map(|_| rand_i8() as i8).collect();
    let w1 = w.add_constant_i8(
        "conv.w",
        &[c_out, 1, k],
        QuantSpec::PerTensor {
            scale: s_w1,
            zero_point: 0,
        },
        &w1,
    );
    let b1 = w.add_constant_i32("conv.b", &[c_out], &vec![0; c_out]);
    let (m1, sh1) = quantize_multiplier(f64::from(s_in * s_w1 / s_h)).ok_or("conv multiplier")?;
    let m1 = w.add_constant_i32("conv.m", &[c_out], &vec![m1; c_out]);
    // Per-channel shifts are i8 vectors (quantize_multiplier keeps them in −31..=30).
    let sh1 = i8::try_from(sh1)?;
    let sh1 = w.add_constant_i8("conv.s", &[c_out], QuantSpec::None, &vec![sh1; c_out]);
    let h = w.add_activation(
        "h",
        &[1, c_out, l_out],
        QuantSpec::PerTensor {
            scale: s_h,
            zero_point: -128,
        },
        140,
    );
    // ReLU through the activation clamp: real 0 is the zero point −128.
    w.add_op(
        OpCode::Conv,
        &[x, w1, b1, m1, sh1],
        &[h],
        &[1, stride as i32, 1, 1, 0, 0, 0, 0, 1, -128, 127],
    );
    let flat = w.add_activation(
        "flat",
        &[1, hidden],
        QuantSpec::PerTensor {
            scale: s_h,
            zero_point: -128,
        },
        140,
    );
    w.add_op(OpCode::Reshape, &[h], &[flat], &[]);
    let w2: Vec<i8> = (0..5 * hidden).map(|_| rand_i8() as i8).collect();
    let w2 = w.add_constant_i8(
        "fc.w",
        &[5, hidden],
        QuantSpec::PerTensor {
            scale: s_w2,
            zero_point: 0,
        },
        &w2,
    );
    let b2 = w.add_constant_i32("fc.b", &[5], &[0; 5]);
    let (m2, sh2) = quantize_multiplier(f64::from(s_h * s_w2 / s_out)).ok_or("fc multiplier")?;
    let m2 = w.add_constant_i32("fc.m", &[5], &[m2; 5]);
    let sh2 = i8::try_from(sh2)?;
    let sh2 = w.add_constant_i8("fc.s", &[5], QuantSpec::None, &[sh2; 5]);
    let y = w.add_activation(
        "scores",
        &[1, 5],
        QuantSpec::PerTensor {
            scale: s_out,
            zero_point: 0,
        },
        0,
    );
    w.add_op(
        OpCode::FullyConnected,
        &[flat, w2, b2, m2, sh2],
        &[y],
        &[-128, 127],
    );
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(140 + hidden);
    let bytes = w.finish()?;
    std::fs::write(&path, &bytes)?;
    println!("wrote {path}: {} bytes", bytes.len());
    Ok(())
}
