//! Runs one kernel on one of the zoo's layer shapes, a given number of
//! times, so that an instruction-counting QEMU plugin can compare the
//! reference, NEON and dot-product paths (`kernel_icount.sh` does the
//! counting: the difference between two iteration counts, per call).
//!
//! ```text
//! kernel_icount list                      # name, MACs (or elements) per call
//! kernel_icount run <name> <path> <iterations>
//! kernel_icount check                     # every path bit-exact on every shape
//! ```
//! `<path>` is `reference`, `neon` or `dotprod` (the latter falls back to the
//! reference on a CPU without `sdot`; `run` refuses it there).

#[cfg(target_arch = "aarch64")]
fn main() -> std::process::ExitCode {
    shapes::main()
}

#[cfg(not(target_arch = "aarch64"))]
fn main() {
    eprintln!("kernel_icount measures the aarch64 kernels; build it for aarch64");
}

#[cfg(target_arch = "aarch64")]
mod shapes {
    use medq::kernels::aarch64::*;
    use medq::kernels::{reference, *};
    use std::hint::black_box;
    use std::process::ExitCode;

    /// The layers to measure.
    enum Layer {
        Conv(ConvParams),
        Depthwise(ConvParams),
        Fc(FullyConnectedParams),
        MaxPool(PoolParams),
        AvgPool(PoolParams),
        Add(usize),
        Mul(usize),
        Lut(usize),
    }

    /// `[cin, len] → [cout, ·]`, kernel `k`, stride `s`, pads `p` (1-D).
    fn conv1d(cin: usize, len: usize, k: usize, s: usize, p: usize, cout: usize) -> Layer {
        let out = (len + 2 * p - k) / s + 1;
        Layer::Conv(conv2d_params(
            [cin, 1, len],
            [cout, 1, out],
            [1, k],
            [1, s],
            [0, p],
        ))
    }

    fn conv2d_params(
        input: [usize; 3],
        output: [usize; 3],
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
    ) -> ConvParams {
        ConvParams {
            in_channels: input[0],
            in_h: input[1],
            in_w: input[2],
            out_channels: output[0],
            out_h: output[1],
            out_w: output[2],
            kernel_h: kernel[0],
            kernel_w: kernel[1],
            stride_h: stride[0],
            stride_w: stride[1],
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad[0],
            pad_left: pad[1],
            groups: 1,
            input_zero_point: -128,
            output_zero_point: -128,
            act_min: -128,
            act_max: 127,
        }
    }

    fn fc(k: usize, n: usize) -> Layer {
        Layer::Fc(FullyConnectedParams {
            rows: 1,
            in_features: k,
            out_features: n,
            input_zero_point: -128,
            output_zero_point: 3,
            act_min: -128,
            act_max: 127,
        })
    }

    fn pool(c: usize, len: usize, k: usize, s: usize) -> PoolParams {
        PoolParams {
            channels: c,
            in_h: 1,
            in_w: len,
            out_h: 1,
            out_w: (len - k) / s + 1,
            kernel_h: 1,
            kernel_w: k,
            stride_h: 1,
            stride_w: s,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            count_include_pad: false,
            zero_point: -128,
        }
    }

    fn layers() -> Vec<(&'static str, Layer)> {
        let mut dw = conv2d_params([64, 25, 5], [64, 25, 5], [3, 3], [1, 1], [1, 1]);
        dw.groups = 64;
        vec![
            ("conv_1x1639_k9s2_16", conv1d(1, 1639, 9, 2, 4, 16)),
            ("conv_16x205_k7_32", conv1d(16, 205, 7, 1, 3, 32)),
            ("conv_32x51_k5_32", conv1d(32, 51, 5, 1, 2, 32)),
            ("conv_32x25_k3_16", conv1d(32, 25, 3, 1, 1, 16)),
            ("conv_1x140_k7_16", conv1d(1, 140, 7, 1, 3, 16)),
            ("conv_16x70_k5_32", conv1d(16, 70, 5, 1, 2, 32)),
            ("conv_32x35_k3_32", conv1d(32, 35, 3, 1, 1, 32)),
            ("conv_1x750_k9s2_24", conv1d(1, 750, 9, 2, 4, 24)),
            ("conv_24x187_k7_48", conv1d(24, 187, 7, 1, 3, 48)),
            ("conv_48x93_k5_64", conv1d(48, 93, 5, 1, 2, 64)),
            ("conv_64x46_k3_96", conv1d(64, 46, 3, 1, 1, 96)),
            ("conv_1x99_k5_16", conv1d(1, 99, 5, 1, 2, 16)),
            ("conv_16x49_k5_32", conv1d(16, 49, 5, 1, 2, 32)),
            ("conv_32x24_k3_16", conv1d(32, 24, 3, 1, 1, 16)),
            // Fixed cost per call: one position, a few channels.
            ("conv_4x1_k1_4", conv1d(4, 1, 1, 1, 0, 4)),
            (
                "conv2d_16x32x32_3x3_16",
                Layer::Conv(conv2d_params(
                    [16, 32, 32],
                    [16, 32, 32],
                    [3, 3],
                    [1, 1],
                    [1, 1],
                )),
            ),
            (
                "conv2d_64x25x5_1x1_64",
                Layer::Conv(conv2d_params(
                    [64, 25, 5],
                    [64, 25, 5],
                    [1, 1],
                    [1, 1],
                    [0, 0],
                )),
            ),
            ("depthwise_64x25x5_3x3", Layer::Depthwise(dw)),
            ("fc_640_128", fc(640, 128)),
            ("fc_400_42", fc(400, 42)),
            ("fc_128_5", fc(128, 5)),
            ("fc_30_2", fc(30, 2)),
            ("fc_16_1", fc(16, 1)),
            ("maxpool_16x820_k2", Layer::MaxPool(pool(16, 820, 2, 2))),
            ("maxpool_32x205_k4", Layer::MaxPool(pool(32, 205, 4, 4))),
            ("avgpool_64x46_global", Layer::AvgPool(pool(64, 46, 46, 1))),
            ("avgpool_32x205_k4", Layer::AvgPool(pool(32, 205, 4, 4))),
            ("add_32x205", Layer::Add(32 * 205)),
            ("mul_32x205", Layer::Mul(32 * 205)),
            ("lut_16x820", Layer::Lut(16 * 820)),
        ]
    }

    /// Multiply-accumulates (or elements) per call.
    fn work(layer: &Layer) -> usize {
        match layer {
            Layer::Conv(p) | Layer::Depthwise(p) => {
                let taps = p.in_channels / p.groups * p.kernel_h * p.kernel_w;
                p.out_channels * p.out_h * p.out_w * taps
            }
            Layer::Fc(p) => p.rows * p.in_features * p.out_features,
            Layer::MaxPool(p) | Layer::AvgPool(p) => p.channels * p.in_h * p.in_w,
            Layer::Add(n) | Layer::Mul(n) | Layer::Lut(n) => *n,
        }
    }

    /// Weights as the converter writes them: symmetric, in `[-127, 127]`.
    fn weights(n: usize, seed: u32) -> Vec<i8> {
        bytes(n, seed).into_iter().map(|w| w.max(-127)).collect()
    }

    /// Deterministic bytes (an LCG), so every run sees the same data.
    fn bytes(n: usize, seed: u32) -> Vec<i8> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as i8
            })
            .collect()
    }

    type ConvFn = fn(&ConvParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);
    type FcFn = fn(&FullyConnectedParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);
    type PoolFn = fn(&PoolParams, &[i8], &mut [i8]);
    type BinFn<P> = fn(&P, &Broadcast4, &[i8], &[i8], &mut [i8]);

    /// The kernel of `path` among the reference, NEON and dot-product ones.
    fn pick<F>(path: &str, reference: F, neon: F, dotprod: Option<F>) -> Option<F> {
        match path {
            "reference" => Some(reference),
            "neon" => Some(neon),
            "dotprod" => dotprod,
            _ => None,
        }
    }

    /// Runs `layer` on `path` `iterations` times; the last output.
    fn run(layer: &Layer, path: &str, iterations: usize) -> Option<Vec<i8>> {
        let x = bytes(1 << 16, 1);
        let quant = |n: usize| (vec![1234i32; n], vec![1_500_000_000i32; n], vec![-9i8; n]);
        let mut y;
        match layer {
            Layer::Conv(p) | Layer::Depthwise(p) => {
                let conv: ConvFn = match layer {
                    Layer::Depthwise(_) => {
                        pick::<ConvFn>(path, reference::conv_s8, depthwise_conv_s8_neon, None)?
                    }
                    _ => pick::<ConvFn>(
                        path,
                        reference::conv_s8,
                        conv_s8_neon,
                        Some(conv_s8_dotprod),
                    )?,
                };
                let w = weights(
                    p.out_channels * p.in_channels / p.groups * p.kernel_h * p.kernel_w,
                    2,
                );
                let (b, m, s) = quant(p.out_channels);
                let xs = &x[..p.in_channels * p.in_h * p.in_w];
                y = vec![0i8; p.out_channels * p.out_h * p.out_w];
                for _ in 0..iterations {
                    conv(p, black_box(xs), &w, &b, &m, &s, &mut y);
                }
            }
            Layer::Fc(p) => {
                let f: FcFn = pick::<FcFn>(
                    path,
                    reference::fully_connected_s8,
                    fully_connected_s8_neon,
                    Some(fully_connected_s8_dotprod),
                )?;
                let w = weights(p.in_features * p.out_features, 2);
                let (b, m, s) = quant(p.out_features);
                let xs = &x[..p.rows * p.in_features];
                y = vec![0i8; p.rows * p.out_features];
                for _ in 0..iterations {
                    f(p, black_box(xs), &w, &b, &m, &s, &mut y);
                }
            }
            Layer::MaxPool(p) | Layer::AvgPool(p) => {
                let f: PoolFn = match layer {
                    Layer::MaxPool(_) => {
                        pick::<PoolFn>(path, reference::max_pool_s8, max_pool_s8_neon, None)?
                    }
                    _ => pick::<PoolFn>(path, reference::avg_pool_s8, avg_pool_s8_neon, None)?,
                };
                let xs = &x[..p.channels * p.in_h * p.in_w];
                y = vec![0i8; p.channels * p.out_h * p.out_w];
                for _ in 0..iterations {
                    f(p, black_box(xs), &mut y);
                }
            }
            Layer::Add(n) => {
                let f: BinFn<AddParams> =
                    pick::<BinFn<AddParams>>(path, reference::add_s8, add_s8_neon, None)?;
                let p = AddParams {
                    a_zero_point: -3,
                    b_zero_point: 7,
                    output_zero_point: -1,
                    left_shift: 20,
                    a_multiplier: 1_200_000_000,
                    a_shift: 0,
                    b_multiplier: 1_700_000_000,
                    b_shift: -1,
                    out_multiplier: 1_100_000_000,
                    out_shift: -19,
                    act_min: -128,
                    act_max: 127,
                };
                let bc = Broadcast4::new(&[*n], &[*n])?;
                let b = bytes(*n, 3);
                y = vec![0i8; *n];
                for _ in 0..iterations {
                    f(&p, &bc, black_box(&x[..*n]), &b, &mut y);
                }
            }
            Layer::Mul(n) => {
                let f: BinFn<MulParams> =
                    pick::<BinFn<MulParams>>(path, reference::mul_s8, mul_s8_neon, None)?;
                let p = MulParams {
                    a_zero_point: -3,
                    b_zero_point: 7,
                    output_zero_point: -1,
                    out_multiplier: 1_100_000_000,
                    out_shift: -7,
                    act_min: -128,
                    act_max: 127,
                };
                let bc = Broadcast4::new(&[*n], &[*n])?;
                let b = bytes(*n, 3);
                y = vec![0i8; *n];
                for _ in 0..iterations {
                    f(&p, &bc, black_box(&x[..*n]), &b, &mut y);
                }
            }
            Layer::Lut(n) => {
                let f: fn(&[i8; 256], &[i8], &mut [i8]) = pick::<fn(&[i8; 256], &[i8], &mut [i8])>(
                    path,
                    reference::lut_s8,
                    lut_s8_neon,
                    None,
                )?;
                let table: [i8; 256] = bytes(256, 4).try_into().ok()?;
                y = vec![0i8; *n];
                for _ in 0..iterations {
                    f(&table, black_box(&x[..*n]), &mut y);
                }
            }
        }
        Some(y)
    }

    pub fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["list"] => {
                for (name, layer) in layers() {
                    println!("{name} {}", work(&layer));
                }
                ExitCode::SUCCESS
            }
            ["check"] => check(),
            ["run", name, path, iterations] => {
                let layer = layers().into_iter().find(|(n, _)| n == name);
                let iterations = iterations.parse::<usize>().ok();
                if *path == "dotprod" && !has_dotprod() {
                    eprintln!("this CPU has no dot-product extension");
                    return ExitCode::FAILURE;
                }
                match (layer, iterations) {
                    (Some((_, layer)), Some(n)) if run(&layer, path, n).is_some() => {
                        ExitCode::SUCCESS
                    }
                    _ => {
                        eprintln!("unknown layer or path, or no {path} kernel for {name}");
                        ExitCode::FAILURE
                    }
                }
            }
            _ => {
                eprintln!("usage: kernel_icount list | check | run <layer> <path> <iterations>");
                ExitCode::FAILURE
            }
        }
    }

    /// Every optimized path gives the reference's bytes on every layer.
    fn check() -> ExitCode {
        let mut ok = true;
        for (name, layer) in layers() {
            let want = run(&layer, "reference", 1);
            for path in ["neon", "dotprod"] {
                if let Some(got) = run(&layer, path, 1) {
                    let same = Some(&got) == want.as_ref();
                    println!("{name} {path}: {}", if same { "same" } else { "DIFFERENT" });
                    ok &= same;
                }
            }
        }
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
