//! Property tests: every reference kernel against a deliberately naive
//! implementation of its documented formula (explicit loops over output
//! coordinates, `i64`/`u128` arithmetic, bounds tested per tap), over random
//! shapes and data. Requantization goes through `medq::numerics`, the
//! contract the kernels are specified against (it has its own tests).

use medq::kernels::*;
use medq::numerics::{requantize, requantize_to_i8};
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Shared strategies

/// A Q31 multiplier: usually normalized, sometimes 0 or tiny.
fn multiplier() -> impl Strategy<Value = i32> {
    prop_oneof![
        8 => (1i32 << 30)..=i32::MAX,
        1 => Just(0),
        1 => 1i32..(1 << 30),
    ]
}

/// Shifts that keep typical accumulators in range, plus the extremes.
fn shift(typical: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![8 => typical, 1 => Just(-31), 1 => Just(30)]
}

/// An activation window inside i8: `(min, max)` with `min <= max`.
fn act() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        2 => Just((-128, 127)),
        3 => (-128i32..=127, -128i32..=127).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

fn zp() -> impl Strategy<Value = i32> {
    -128i32..=127
}

fn i8s(n: usize) -> impl Strategy<Value = Vec<i8>> {
    vec(any::<i8>(), n)
}

/// One window axis: `(in, kernel, stride, dilation, pad_begin, pad_end, out)`,
/// valid in floor mode. `flat` forces the trivial axis of a 1-D op.
fn axis(flat: bool) -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize, usize)> {
    if flat {
        return Just((1, 1, 1, 1, 0, 0, 1)).boxed();
    }
    (
        1usize..=7,
        1usize..=3,
        1usize..=3,
        1usize..=2,
        0usize..=2,
        0usize..=2,
    )
        .prop_filter_map("window longer than padded input", |(i, k, s, d, pb, pe)| {
            conv_out_len(i, k, s, d, pb, pe).map(|o| (i, k, s, d, pb, pe, o))
        })
        .boxed()
}

/// A conv or FC call: parameters, input, symmetric weights, and per output
/// channel a bias, a multiplier and a shift.
#[derive(Clone, Debug)]
struct Case<P> {
    p: P,
    x: Vec<i8>,
    w: Vec<i8>,
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<i8>,
}

/// Random operands for `p`: `n_x` inputs, `n_w` weights, `channels` outputs.
fn with_operands<P: Clone + std::fmt::Debug>(
    p: P,
    n_x: usize,
    n_w: usize,
    channels: usize,
) -> impl Strategy<Value = Case<P>> {
    (
        Just(p),
        i8s(n_x),
        vec(-127i8..=127, n_w),
        vec(-30_000i32..=30_000, channels),
        vec(multiplier(), channels),
        // Every shift is in MIN_SHIFT..=MAX_SHIFT, so it fits the i8 vector.
        vec(shift(-16..=1).prop_map(|s| s as i8), channels),
    )
        .prop_map(|(p, x, w, bias, mult, shift)| Case {
            p,
            x,
            w,
            bias,
            mult,
            shift,
        })
}

// ---------------------------------------------------------------------------
// Conv

type ConvCase = Case<ConvParams>;

fn conv_case() -> impl Strategy<Value = ConvCase> {
    let geometry = any::<bool>().prop_flat_map(|one_d| {
        (
            axis(one_d),
            axis(false),
            1usize..=3, // groups
            1usize..=3, // in channels per group
            1usize..=3, // out channels per group
            zp(),
            zp(),
            act(),
        )
    });
    geometry.prop_flat_map(
        |(h, w, groups, cin_g, cout_g, in_zp, out_zp, (act_min, act_max))| {
            let p = ConvParams {
                in_channels: groups * cin_g,
                in_h: h.0,
                in_w: w.0,
                out_channels: groups * cout_g,
                out_h: h.6,
                out_w: w.6,
                kernel_h: h.1,
                kernel_w: w.1,
                stride_h: h.2,
                stride_w: w.2,
                dilation_h: h.3,
                dilation_w: w.3,
                pad_top: h.4,
                pad_left: w.4,
                groups,
                input_zero_point: in_zp,
                output_zero_point: out_zp,
                act_min,
                act_max,
            };
            let cout = p.out_channels;
            let n_w = cout * cin_g * p.kernel_h * p.kernel_w;
            with_operands(p, p.in_channels * p.in_h * p.in_w, n_w, cout)
        },
    )
}

fn conv_naive(c: &ConvCase) -> Vec<i8> {
    let p = &c.p;
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let mut out = Vec::new();
    for oc in 0..p.out_channels {
        let g = oc / cout_g;
        for oy in 0..p.out_h {
            for ox in 0..p.out_w {
                let mut acc = c.bias[oc] as i64;
                for icg in 0..cin_g {
                    let ic = g * cin_g + icg;
                    for ky in 0..p.kernel_h {
                        for kx in 0..p.kernel_w {
                            let iy =
                                (oy * p.stride_h + ky * p.dilation_h) as i64 - p.pad_top as i64;
                            let ix =
                                (ox * p.stride_w + kx * p.dilation_w) as i64 - p.pad_left as i64;
                            if iy < 0 || ix < 0 || iy >= p.in_h as i64 || ix >= p.in_w as i64 {
                                continue;
                            }
                            let xi = (ic * p.in_h + iy as usize) * p.in_w + ix as usize;
                            let wi = ((oc * cin_g + icg) * p.kernel_h + ky) * p.kernel_w + kx;
                            acc += (c.x[xi] as i64 - p.input_zero_point as i64) * c.w[wi] as i64;
                        }
                    }
                }
                let acc = i32::try_from(acc).expect("test data keeps the accumulator in i32");
                out.push(requantize_to_i8(
                    acc,
                    c.mult[oc],
                    c.shift[oc].into(),
                    p.output_zero_point,
                    p.act_min,
                    p.act_max,
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Fully connected

type FcCase = Case<FullyConnectedParams>;

fn fc_case() -> impl Strategy<Value = FcCase> {
    fc_case_of(0..=24)
}

/// An FC case with `in_features` in `k`.
fn fc_case_of(k: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = FcCase> {
    (1usize..=4, k, 1usize..=6, zp(), zp(), act()).prop_flat_map(
        |(rows, k, n, in_zp, out_zp, (lo, hi))| {
            let p = FullyConnectedParams {
                rows,
                in_features: k,
                out_features: n,
                input_zero_point: in_zp,
                output_zero_point: out_zp,
                act_min: lo,
                act_max: hi,
            };
            with_operands(p, rows * k, n * k, n)
        },
    )
}

fn fc_naive(c: &FcCase) -> Vec<i8> {
    let p = &c.p;
    let mut out = Vec::new();
    for r in 0..p.rows {
        for n in 0..p.out_features {
            let mut acc = c.bias[n] as i64;
            for k in 0..p.in_features {
                acc += (c.x[r * p.in_features + k] as i64 - p.input_zero_point as i64)
                    * c.w[n * p.in_features + k] as i64;
            }
            let acc = i32::try_from(acc).unwrap();
            out.push(requantize_to_i8(
                acc,
                c.mult[n],
                c.shift[n].into(),
                p.output_zero_point,
                p.act_min,
                p.act_max,
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Broadcasting

/// Numpy's broadcast shape, computed the textbook way.
fn numpy_broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let pad = |s: &[usize]| -> Vec<usize> {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (a, b) = (pad(a), pad(b));
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Some(x),
            (1, _) => Some(y),
            (_, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Element of `data` (shape `shape`) that output index `idx` (shape `out`) reads.
fn broadcast_read(data: &[i8], shape: &[usize], out: &[usize], idx: &[usize]) -> i8 {
    let offset = out.len() - shape.len();
    let mut flat = 0;
    for (d, &n) in shape.iter().enumerate() {
        let i = if n == 1 { 0 } else { idx[offset + d] };
        flat = flat * n + i;
    }
    data[flat]
}

/// All multi-indices of `shape` in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut all = vec![vec![]];
    for &n in shape {
        all = all
            .into_iter()
            .flat_map(|prefix| {
                (0..n).map(move |i| {
                    let mut v = prefix.clone();
                    v.push(i);
                    v
                })
            })
            .collect();
    }
    all
}

/// Two broadcast-compatible shapes of rank ≤ 4: a shared output shape, from
/// which each operand drops some leading dims and sets some dims to 1.
fn broadcast_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (
        vec(1usize..=4, 0..=4),
        any::<u8>(),
        any::<u8>(),
        0usize..=4,
        0usize..=4,
    )
        .prop_map(|(out, ma, mb, da, db)| {
            let derive = |mask: u8, drop: usize| -> Vec<usize> {
                let drop = drop.min(out.len());
                out.iter()
                    .enumerate()
                    .skip(drop)
                    .map(|(i, &n)| if mask >> i & 1 == 1 { 1 } else { n })
                    .collect()
            };
            (derive(ma, da), derive(mb, db))
        })
}

#[derive(Clone, Debug)]
struct BinaryCase {
    a_shape: Vec<usize>,
    b_shape: Vec<usize>,
    a: Vec<i8>,
    b: Vec<i8>,
}

fn binary_case() -> impl Strategy<Value = BinaryCase> {
    broadcast_shapes().prop_flat_map(|(sa, sb)| {
        let (na, nb) = (sa.iter().product(), sb.iter().product());
        (Just(sa), Just(sb), i8s(na), i8s(nb)).prop_map(|(a_shape, b_shape, a, b)| BinaryCase {
            a_shape,
            b_shape,
            a,
            b,
        })
    })
}

fn binary_naive(c: &BinaryCase, f: impl Fn(i8, i8) -> i8) -> Vec<i8> {
    let out = numpy_broadcast(&c.a_shape, &c.b_shape).unwrap();
    indices(&out)
        .iter()
        .map(|idx| {
            f(
                broadcast_read(&c.a, &c.a_shape, &out, idx),
                broadcast_read(&c.b, &c.b_shape, &out, idx),
            )
        })
        .collect()
}

fn add_params() -> impl Strategy<Value = AddParams> {
    (
        (zp(), zp(), zp(), 0i32..=20),
        (multiplier(), shift(-8..=0), multiplier(), shift(-8..=0)),
        (multiplier(), shift(-28..=-10), act()),
    )
        .prop_map(
            |((za, zb, zy, ls), (am, as_, bm, bs), (om, os, (lo, hi)))| AddParams {
                a_zero_point: za,
                b_zero_point: zb,
                output_zero_point: zy,
                left_shift: ls,
                a_multiplier: am,
                a_shift: as_,
                b_multiplier: bm,
                b_shift: bs,
                out_multiplier: om,
                out_shift: os,
                act_min: lo,
                act_max: hi,
            },
        )
}

fn add_naive_one(p: &AddParams, a: i8, b: i8) -> i8 {
    let xa = (a as i64 - p.a_zero_point as i64) * (1i64 << p.left_shift);
    let xb = (b as i64 - p.b_zero_point as i64) * (1i64 << p.left_shift);
    let ra = requantize(i32::try_from(xa).unwrap(), p.a_multiplier, p.a_shift) as i64;
    let rb = requantize(i32::try_from(xb).unwrap(), p.b_multiplier, p.b_shift) as i64;
    let sum = (ra + rb).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    requantize_to_i8(
        sum,
        p.out_multiplier,
        p.out_shift,
        p.output_zero_point,
        p.act_min,
        p.act_max,
    )
}

fn mul_params() -> impl Strategy<Value = MulParams> {
    (zp(), zp(), zp(), multiplier(), shift(-16..=1), act()).prop_map(
        |(za, zb, zy, m, s, (lo, hi))| MulParams {
            a_zero_point: za,
            b_zero_point: zb,
            output_zero_point: zy,
            out_multiplier: m,
            out_shift: s,
            act_min: lo,
            act_max: hi,
        },
    )
}

// ---------------------------------------------------------------------------
// Pools

#[derive(Clone, Debug)]
struct PoolCase {
    p: PoolParams,
    pad_bottom: usize,
    pad_right: usize,
    x: Vec<i8>,
}

fn pool_case() -> impl Strategy<Value = PoolCase> {
    (any::<bool>(), 1usize..=3, any::<bool>(), zp())
        .prop_flat_map(|(one_d, c, cip, zp)| {
            (axis(one_d), axis(false), Just(c), Just(cip), Just(zp))
        })
        .prop_flat_map(|(h, w, channels, count_include_pad, zero_point)| {
            let p = PoolParams {
                channels,
                in_h: h.0,
                in_w: w.0,
                out_h: h.6,
                out_w: w.6,
                kernel_h: h.1,
                kernel_w: w.1,
                stride_h: h.2,
                stride_w: w.2,
                dilation_h: h.3,
                dilation_w: w.3,
                pad_top: h.4,
                pad_left: w.4,
                count_include_pad,
                zero_point,
            };
            (Just(p), Just(h.5), Just(w.5), i8s(channels * h.0 * w.0)).prop_map(
                |(p, pad_bottom, pad_right, x)| PoolCase {
                    p,
                    pad_bottom,
                    pad_right,
                    x,
                },
            )
        })
}

/// 1-D-style pools whose windows sit side by side (stride = kernel, no pads,
/// no dilation): the fast path of `max_pool_s8`.
fn pool_rows_case() -> impl Strategy<Value = PoolCase> {
    (1usize..=3, 1usize..=3, 1usize..=40, 1usize..=5, zp())
        .prop_filter("a window fits", |&(_, _, in_w, k, _)| k <= in_w)
        .prop_flat_map(|(channels, in_h, in_w, k, zero_point)| {
            let p = PoolParams {
                channels,
                in_h,
                in_w,
                out_h: in_h,
                out_w: in_w / k,
                kernel_h: 1,
                kernel_w: k,
                stride_h: 1,
                stride_w: k,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: 0,
                pad_left: 0,
                count_include_pad: false,
                zero_point,
            };
            // Floor mode: a right pad smaller than the kernel leaves out_w unchanged.
            let pad_right = 0..k;
            (Just(p), pad_right, i8s(channels * in_h * in_w)).prop_map(|(p, pad_right, x)| {
                PoolCase {
                    p,
                    pad_bottom: 0,
                    pad_right,
                    x,
                }
            })
        })
}

/// Visits every tap of every output window as
/// `f(out_index, Option<input value>, inside_padded_input)`.
fn pool_windows(c: &PoolCase, mut f: impl FnMut(usize, Option<i8>, bool)) {
    let p = &c.p;
    let mut o = 0;
    for ch in 0..p.channels {
        for oy in 0..p.out_h {
            for ox in 0..p.out_w {
                for ky in 0..p.kernel_h {
                    for kx in 0..p.kernel_w {
                        let iy = (oy * p.stride_h + ky * p.dilation_h) as i64 - p.pad_top as i64;
                        let ix = (ox * p.stride_w + kx * p.dilation_w) as i64 - p.pad_left as i64;
                        let (h, w) = (p.in_h as i64, p.in_w as i64);
                        let inside = iy >= 0 && ix >= 0 && iy < h && ix < w;
                        let in_padded = iy >= -(p.pad_top as i64)
                            && ix >= -(p.pad_left as i64)
                            && iy < h + c.pad_bottom as i64
                            && ix < w + c.pad_right as i64;
                        let v =
                            inside.then(|| c.x[(ch * p.in_h + iy as usize) * p.in_w + ix as usize]);
                        f(o, v, in_padded);
                    }
                }
                o += 1;
            }
        }
    }
}

fn max_pool_naive(c: &PoolCase) -> Vec<i8> {
    let n = c.p.channels * c.p.out_h * c.p.out_w;
    let mut best: Vec<Option<i8>> = vec![None; n];
    pool_windows(c, |o, v, _| {
        if let Some(v) = v {
            best[o] = Some(best[o].map_or(v, |b| b.max(v)));
        }
    });
    best.into_iter()
        .map(|b| b.unwrap_or(c.p.zero_point as i8))
        .collect()
}

/// ONNX AveragePool: with `count_include_pad` the divisor counts window
/// positions inside the *padded* input (explicit end pads known here).
fn avg_pool_naive(c: &PoolCase) -> Vec<i8> {
    let n = c.p.channels * c.p.out_h * c.p.out_w;
    let mut sum = vec![0i64; n];
    let mut valid = vec![0i64; n];
    let mut padded = vec![0i64; n];
    pool_windows(c, |o, v, in_padded| {
        if let Some(v) = v {
            sum[o] += v as i64 - c.p.zero_point as i64;
            valid[o] += 1;
        }
        padded[o] += in_padded as i64;
    });
    (0..n)
        .map(|o| {
            let count = if c.p.count_include_pad {
                padded[o]
            } else {
                valid[o]
            };
            let mean = if count == 0 {
                0
            } else {
                // Round half away from zero on the exact quotient.
                let (s, q) = (sum[o].abs() * 2, count * 2);
                sum[o].signum() * ((s + count) / q)
            };
            (c.p.zero_point as i64 + mean).clamp(-128, 127) as i8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Softmax

/// The converter's table for input scale `scale`: `exp(-d·scale)` in Q24.
fn real_exp_table(scale: f64) -> Box<[i32; 256]> {
    let mut t = Box::new([0i32; 256]);
    for (d, e) in t.iter_mut().enumerate() {
        *e = ((1u64 << 24) as f64 * (-(d as f64) * scale).exp()).round() as i32;
    }
    t
}

/// A converter-style table for a random input scale, or arbitrary (corrupt) data.
fn exp_table() -> impl Strategy<Value = Box<[i32; 256]>> {
    prop_oneof![
        3 => (0.005f64..0.5).prop_map(real_exp_table),
        1 => vec(any::<i32>(), 256).prop_map(|v| Box::new(<[i32; 256]>::try_from(v).unwrap())),
        1 => vec(prop_oneof![Just(0), Just(-1), 1i32..4], 256)
            .prop_map(|v| Box::new(<[i32; 256]>::try_from(v).unwrap())),
    ]
}

// The oracle spells the zero-sum rule out as the docs state it.
#[allow(clippy::manual_checked_ops)]
fn softmax_naive(p: &SoftmaxParams, t: &[i32; 256], x: &[i8]) -> Vec<i8> {
    let mut y = vec![0i8; x.len()];
    for o in 0..p.outer {
        for i in 0..p.inner {
            let at = |k: usize| (o * p.axis_len + k) * p.inner + i;
            let m = (0..p.axis_len).map(|k| x[at(k)] as i32).max().unwrap();
            let e = |k: usize| t[(m - x[at(k)] as i32) as usize].max(0) as u128;
            let sum: u128 = (0..p.axis_len).map(e).sum();
            for k in 0..p.axis_len {
                y[at(k)] = if sum == 0 {
                    -128
                } else {
                    ((e(k) * 256 + sum / 2) / sum) as i32 - 128
                }
                .clamp(-128, 127) as i8;
            }
        }
    }
    y
}

// ---------------------------------------------------------------------------
// Pad

#[derive(Clone, Debug)]
struct PadCase {
    p: PadParams,
    x: Vec<i8>,
}

fn pad_case() -> impl Strategy<Value = PadCase> {
    (
        [0usize..=3, 0usize..=3, 0usize..=3, 0usize..=3],
        [0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2],
        [0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2],
        any::<i8>(),
    )
        .prop_flat_map(|(in_shape, before, after, value)| {
            let out_shape = [0, 1, 2, 3].map(|d| before[d] + in_shape[d] + after[d]);
            let p = PadParams {
                in_shape,
                out_shape,
                pad_before: before,
                value: value.into(),
            };
            (Just(p), i8s(in_shape.iter().product())).prop_map(|(p, x)| PadCase { p, x })
        })
}

fn pad_naive(c: &PadCase) -> Vec<i8> {
    let p = &c.p;
    indices(&p.out_shape)
        .iter()
        .map(|idx| {
            let mut flat = 0;
            for ((&o, &before), &n) in idx.iter().zip(&p.pad_before).zip(&p.in_shape) {
                let Some(i) = o.checked_sub(before).filter(|&i| i < n) else {
                    return p.value as i8;
                };
                flat = flat * n + i;
            }
            c.x[flat]
        })
        .collect()
}

// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn conv_matches_naive(c in conv_case()) {
        let mut y = vec![0i8; c.p.out_channels * c.p.out_h * c.p.out_w];
        conv_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        prop_assert_eq!(y, conv_naive(&c));
    }

    #[test]
    fn fully_connected_matches_naive(c in fc_case()) {
        let mut y = vec![0i8; c.p.rows * c.p.out_features];
        fully_connected_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        prop_assert_eq!(y, fc_naive(&c));
    }

    #[test]
    fn broadcast4_follows_numpy(a in vec(0usize..=3, 0..=6), b in vec(0usize..=3, 0..=6)) {
        let want = numpy_broadcast(&a, &b);
        let got = Broadcast4::new(&a, &b);
        match want {
            None => prop_assert_eq!(got, None),
            Some(out) => {
                let leading_ones = out.iter().take_while(|&&d| d == 1).count();
                let needed = out.len() - leading_ones;
                if needed > 4 {
                    prop_assert_eq!(got, None);
                } else {
                    let bc = got.expect("broadcastable within 4 dims");
                    let mut padded = vec![1; 4 - needed];
                    padded.extend_from_slice(&out[leading_ones..]);
                    prop_assert_eq!(bc.out_shape.to_vec(), padded);
                    prop_assert_eq!(bc.out_len(), out.iter().product::<usize>());
                }
            }
        }
    }

    #[test]
    fn add_matches_naive(c in binary_case(), p in add_params()) {
        let bc = Broadcast4::new(&c.a_shape, &c.b_shape).unwrap();
        let mut y = vec![0i8; bc.out_len()];
        add_s8(&p, &bc, &c.a, &c.b, &mut y);
        prop_assert_eq!(y, binary_naive(&c, |a, b| add_naive_one(&p, a, b)));
    }

    #[test]
    fn add_is_symmetric_in_its_operands(c in binary_case(), p in add_params()) {
        let swapped = AddParams {
            a_zero_point: p.b_zero_point,
            b_zero_point: p.a_zero_point,
            a_multiplier: p.b_multiplier,
            a_shift: p.b_shift,
            b_multiplier: p.a_multiplier,
            b_shift: p.a_shift,
            ..p
        };
        let bc = Broadcast4::new(&c.a_shape, &c.b_shape).unwrap();
        let bc_swapped = Broadcast4::new(&c.b_shape, &c.a_shape).unwrap();
        let mut y = vec![0i8; bc.out_len()];
        let mut y_swapped = vec![0i8; bc.out_len()];
        add_s8(&p, &bc, &c.a, &c.b, &mut y);
        add_s8(&swapped, &bc_swapped, &c.b, &c.a, &mut y_swapped);
        prop_assert_eq!(y, y_swapped);
    }

    #[test]
    fn mul_matches_naive(c in binary_case(), p in mul_params()) {
        let bc = Broadcast4::new(&c.a_shape, &c.b_shape).unwrap();
        let mut y = vec![0i8; bc.out_len()];
        mul_s8(&p, &bc, &c.a, &c.b, &mut y);
        let want = binary_naive(&c, |a, b| {
            let prod = (a as i64 - p.a_zero_point as i64) * (b as i64 - p.b_zero_point as i64);
            let (m, s, zy) = (p.out_multiplier, p.out_shift, p.output_zero_point);
            requantize_to_i8(prod as i32, m, s, zy, p.act_min, p.act_max)
        });
        prop_assert_eq!(y, want);
    }

    #[test]
    fn lut_matches_naive(table in vec(any::<i8>(), 256), x in vec(any::<i8>(), 0..64)) {
        let table: [i8; 256] = table.try_into().unwrap();
        let want: Vec<i8> = x.iter().map(|&v| table[(v as i32 + 128) as usize]).collect();
        let mut y = vec![0i8; x.len()];
        lut_s8(&table, &x, &mut y);
        prop_assert_eq!(&y, &want);
        let mut d = x.clone();
        lut_in_place_s8(&table, &mut d);
        prop_assert_eq!(d, want);
    }

    #[test]
    fn max_pool_side_by_side_rows_match_naive(c in pool_rows_case()) {
        let mut y = vec![0i8; c.p.channels * c.p.out_h * c.p.out_w];
        max_pool_s8(&c.p, &c.x, &mut y);
        prop_assert_eq!(y, max_pool_naive(&c));
    }

    #[test]
    fn max_pool_matches_naive(c in pool_case()) {
        let mut y = vec![0i8; c.p.channels * c.p.out_h * c.p.out_w];
        max_pool_s8(&c.p, &c.x, &mut y);
        prop_assert_eq!(y, max_pool_naive(&c));
    }

    #[test]
    fn avg_pool_matches_onnx_rule(c in pool_case()) {
        let mut y = vec![0i8; c.p.channels * c.p.out_h * c.p.out_w];
        avg_pool_s8(&c.p, &c.x, &mut y);
        prop_assert_eq!(y, avg_pool_naive(&c));
    }

    #[test]
    fn softmax_matches_naive(
        (outer, axis_len, inner) in (1usize..=3, 1usize..=9, 1usize..=3),
        table in exp_table(),
        seed in vec(any::<i8>(), 81),
    ) {
        let p = SoftmaxParams { outer, axis_len, inner };
        let x = &seed[..outer * axis_len * inner];
        let mut y = vec![0i8; x.len()];
        softmax_s8(&p, &table, x, &mut y);
        prop_assert_eq!(y, softmax_naive(&p, &table, x));
    }

    #[test]
    fn softmax_rows_sum_to_one(
        axis_len in 1usize..=16,
        scale in 0.005f64..0.5,
        x in vec(any::<i8>(), 16),
    ) {
        // With a real exp table each probability is rounded to the nearest
        // 1/256 (an error ≤ 1/2 each), and only a lone 1.0 is clamped (256 -> 255).
        let t = real_exp_table(scale);
        let x = &x[..axis_len];
        let mut y = vec![0i8; axis_len];
        softmax_s8(&SoftmaxParams { outer: 1, axis_len, inner: 1 }, &t, x, &mut y);
        let total: i64 = y.iter().map(|&v| v as i64 + 128).sum();
        prop_assert!((total - 256).unsigned_abs() as usize <= axis_len / 2 + 1, "total {total}");
        // Larger inputs never get smaller probabilities.
        for i in 0..axis_len {
            for j in 0..axis_len {
                if x[i] > x[j] {
                    prop_assert!(y[i] >= y[j]);
                }
            }
        }
    }

    #[test]
    fn concat_matches_naive(
        (outer, in_block, extra, start_frac) in (1usize..=4, 1usize..=6, 0usize..=5, 0.0f64..1.0),
        (zx, zy, m, s) in (zp(), zp(), multiplier(), shift(-2..=2)),
        identity in any::<bool>(),
        seed in vec(any::<i8>(), 24),
        sentinel in any::<i8>(),
    ) {
        let out_block = in_block + extra;
        let out_start = ((extra as f64 + 1.0) * start_frac) as usize;
        let (m, s, zy) = if identity { (1 << 30, 1, zx) } else { (m, s, zy) };
        let p = ConcatPart {
            outer, in_block, out_block, out_start,
            input_zero_point: zx, output_zero_point: zy, multiplier: m, shift: s,
        };
        let x = &seed[..outer * in_block];
        let mut y = vec![sentinel; outer * out_block];
        concat_part_s8(&p, x, &mut y);
        let mut want = vec![sentinel; outer * out_block];
        for o in 0..outer {
            for j in 0..in_block {
                let v = x[o * in_block + j] as i32 - zx;
                want[o * out_block + out_start + j] = requantize_to_i8(v, m, s, zy, -128, 127);
            }
        }
        prop_assert_eq!(y, want);
    }

    #[test]
    fn pad_matches_naive(c in pad_case(), sentinel in any::<i8>()) {
        let mut y = vec![sentinel; c.p.out_shape.iter().product()];
        pad_s8(&c.p, &c.x, &mut y);
        prop_assert_eq!(y, pad_naive(&c));
    }
}

// ---------------------------------------------------------------------------
// Totality: arbitrary parameters (mostly violating the preconditions) with
// small slices never panic, and a call that returns early writes nothing.

fn small() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..=4, 1 => Just(usize::MAX), 1 => any::<usize>()]
}

fn wild_i32() -> impl Strategy<Value = i32> {
    prop_oneof![3 => -300i32..=300, 1 => any::<i32>()]
}

/// Conv parameters from 15 dims and 4 quantization words, in field order.
fn conv_params(dims: &[usize], q: [i32; 4]) -> ConvParams {
    ConvParams {
        in_channels: dims[0],
        in_h: dims[1],
        in_w: dims[2],
        out_channels: dims[3],
        out_h: dims[4],
        out_w: dims[5],
        kernel_h: dims[6],
        kernel_w: dims[7],
        stride_h: dims[8],
        stride_w: dims[9],
        dilation_h: dims[10],
        dilation_w: dims[11],
        pad_top: dims[12],
        pad_left: dims[13],
        groups: dims[14],
        input_zero_point: q[0],
        output_zero_point: q[1],
        act_min: q[2],
        act_max: q[3],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn conv_never_panics(
        dims in vec(small(), 15),
        q in vec(wild_i32(), 4),
        lens in vec(0usize..=40, 6),
    ) {
        let p = conv_params(&dims, [q[0], q[1], q[2], q[3]]);
        let x = vec![1i8; lens[0]];
        let w = vec![1i8; lens[1]];
        let (b, m, s) = (vec![0; lens[2]], vec![1 << 30; lens[3]], vec![1; lens[4]]);
        let mut y = vec![0i8; lens[5]];
        conv_s8(&p, &x, &w, &b, &m, &s, &mut y);
    }

    #[test]
    fn pools_never_panic(
        dims in vec(small(), 13),
        cip in any::<bool>(),
        z in wild_i32(),
        lens in vec(0usize..=40, 2),
    ) {
        let p = PoolParams {
            channels: dims[0], in_h: dims[1], in_w: dims[2], out_h: dims[3], out_w: dims[4],
            kernel_h: dims[5], kernel_w: dims[6], stride_h: dims[7], stride_w: dims[8],
            dilation_h: dims[9], dilation_w: dims[10], pad_top: dims[11], pad_left: dims[12],
            count_include_pad: cip, zero_point: z,
        };
        let x = vec![-3i8; lens[0]];
        let mut y = vec![0i8; lens[1]];
        max_pool_s8(&p, &x, &mut y);
        avg_pool_s8(&p, &x, &mut y);
    }

    #[test]
    fn others_never_panic(
        dims in vec(small(), 8),
        q in vec(wild_i32(), 12),
        lens in vec(0usize..=40, 3),
        shapes in (vec(0usize..=4, 0..=5), vec(0usize..=4, 0..=5)),
    ) {
        let x = vec![5i8; lens[0]];
        let w = vec![5i8; lens[1]];
        let mut y = vec![0i8; lens[2]];
        let fc = FullyConnectedParams {
            rows: dims[0], in_features: dims[1], out_features: dims[2],
            input_zero_point: q[0], output_zero_point: q[1], act_min: q[2], act_max: q[3],
        };
        fully_connected_s8(&fc, &x, &w, &[0; 3], &[1 << 30; 3], &[1; 3], &mut y);
        let sp = SoftmaxParams { outer: dims[0], axis_len: dims[1], inner: dims[2] };
        softmax_s8(&sp, &[1; 256], &x, &mut y);
        let cp = ConcatPart {
            outer: dims[3], in_block: dims[4], out_block: dims[5], out_start: dims[6],
            input_zero_point: q[4], output_zero_point: q[5], multiplier: q[6], shift: q[7],
        };
        concat_part_s8(&cp, &x, &mut y);
        let pp = PadParams {
            in_shape: [dims[0], dims[1], dims[2], dims[3]],
            out_shape: [dims[4], dims[5], dims[6], dims[7]],
            pad_before: [dims[7], dims[6], dims[5], dims[4]],
            value: 1,
        };
        pad_s8(&pp, &x, &mut y);
        if let Some(bc) = Broadcast4::new(&shapes.0, &shapes.1) {
            let ap = AddParams {
                a_zero_point: q[0], b_zero_point: q[1], output_zero_point: q[2], left_shift: q[3],
                a_multiplier: q[4], a_shift: q[5], b_multiplier: q[6], b_shift: q[7],
                out_multiplier: q[8], out_shift: q[9], act_min: q[10], act_max: q[11],
            };
            add_s8(&ap, &bc, &x, &w, &mut y);
            let mp = MulParams {
                a_zero_point: q[0], b_zero_point: q[1], output_zero_point: q[2],
                out_multiplier: q[3], out_shift: q[4], act_min: q[5], act_max: q[6],
            };
            mul_s8(&mp, &bc, &x, &w, &mut y);
        }
        // Hand-built broadcast geometry with wild strides.
        let bc = Broadcast4 {
            out_shape: [dims[0], dims[1], dims[2], dims[3]],
            a_strides: [dims[4], dims[5], dims[6], dims[7]],
            b_strides: [dims[7], dims[6], dims[5], dims[4]],
        };
        let mp = MulParams {
            a_zero_point: 0, b_zero_point: 0, output_zero_point: 0,
            out_multiplier: 1 << 30, out_shift: 1, act_min: -128, act_max: 127,
        };
        mul_s8(&mp, &bc, &x, &w, &mut y);
    }

    #[test]
    fn early_return_writes_nothing(
        dims in vec(0usize..=3, 15),
        sentinel in any::<i8>(),
        ylen in 0usize..=30,
    ) {
        // Random small geometry; whenever the lengths do not match the
        // preconditions the output must keep its sentinel.
        let p = conv_params(&dims, [0, 0, -128, 127]);
        let expected_len = p.out_channels * p.out_h * p.out_w;
        prop_assume!(ylen != expected_len);
        let mut y = vec![sentinel; ylen];
        let x = vec![1i8; p.in_channels * p.in_h * p.in_w];
        conv_s8(&p, &x, &[1; 64], &[0; 3], &[1 << 30; 3], &[1; 3], &mut y);
        prop_assert!(y.iter().all(|&v| v == sentinel));
    }
}

// ---------------------------------------------------------------------------
// Sparse weights: bit-exact with the dense kernels on the same weights

/// `c` with a random share of its weights zeroed (a mask per weight, drawn
/// with the given percentage of zeros, from none to all).
fn pruned<P: Clone + std::fmt::Debug>(c: Case<P>) -> impl Strategy<Value = Case<P>> {
    let n = c.w.len();
    (Just(c), 0u32..=100, vec(0u32..100, n)).prop_map(|(mut c, percent, draws)| {
        for (w, d) in c.w.iter_mut().zip(draws) {
            if d < percent {
                *w = 0;
            }
        }
        c
    })
}

fn sparse_of(w: &[i8], rows: usize) -> Vec<u8> {
    encode_sparse_rows(w, w.len().checked_div(rows).unwrap_or(0))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn conv_sparse_matches_dense(c in conv_case().prop_flat_map(pruned)) {
        let rows = c.p.out_channels;
        let row_len = c.w.len() / rows;
        let stored = sparse_of(&c.w, rows);
        let w = SparseRows::parse(&stored, rows, row_len).expect("the encoder's output parses");
        let mut dense = vec![0i8; c.p.out_channels * c.p.out_h * c.p.out_w];
        conv_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
        let mut sparse = vec![0x55i8; dense.len()];
        conv_sparse_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut sparse);
        prop_assert_eq!(&sparse, &dense);
        // The Cortex-M DSP variant (its requantization shortcut), here on
        // the portable emulation.
        let mut dsp = vec![0x55i8; dense.len()];
        cortex_m::conv_sparse_s8_dsp(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut dsp);
        prop_assert_eq!(dsp, dense);
    }

    /// Rows up to 100 weights: the kernel walks the bitmap 32 bits at a
    /// time, then byte by byte.
    #[test]
    fn fully_connected_sparse_matches_dense(c in fc_case_of(0..=100).prop_flat_map(pruned)) {
        let rows = c.p.out_features;
        let stored = sparse_of(&c.w, rows);
        let w = SparseRows::parse(&stored, rows, c.p.in_features).expect("parses");
        let mut dense = vec![0i8; c.p.rows * c.p.out_features];
        fully_connected_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
        let mut sparse = vec![0x55i8; dense.len()];
        fully_connected_sparse_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut sparse);
        prop_assert_eq!(sparse, dense);
    }

    /// Any byte string either parses as consistent sparse rows or is
    /// refused; a parsed one encodes back to the same bytes.
    #[test]
    fn sparse_rows_parse_only_their_one_encoding(
        bytes in vec(any::<u8>(), 0..=24),
        rows in 0usize..=4,
        row_len in 0usize..=20,
    ) {
        if let Some(w) = SparseRows::parse(&bytes, rows, row_len) {
            let dense = decoded(&w)?;
            prop_assert_eq!(encode_sparse_rows(&dense, row_len), bytes);
        }
    }
}

// ---------------------------------------------------------------------------
// Sparse power-of-two weights: the same kernels, reading a 4-bit code per
// non-zero

fn sparse_pow2_of(w: &[i8], rows: usize) -> Vec<u8> {
    let row_len = w.len().checked_div(rows).unwrap_or(0);
    medq::sparse::encode_sparse::<medq::sparse::Pow2NonZeros>(w, row_len)
        .expect("every weight is on the grid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn conv_sparse_pow2_matches_dense(c in conv_case().prop_flat_map(on_pow2_grid)) {
        let rows = c.p.out_channels;
        let stored = sparse_pow2_of(&c.w, rows);
        let w = medq::SparsePow2Rows::parse(&stored, rows, c.w.len() / rows).expect("parses");
        let mut dense = vec![0i8; c.p.out_channels * c.p.out_h * c.p.out_w];
        conv_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
        let mut sparse = vec![0x55i8; dense.len()];
        conv_sparse_pow2_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut sparse);
        prop_assert_eq!(&sparse, &dense);
        let mut dsp = vec![0x55i8; dense.len()];
        cortex_m::conv_sparse_pow2_s8_dsp(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut dsp);
        prop_assert_eq!(dsp, dense);
    }

    /// Rows up to 100 weights, so that a row's codes start on either nibble
    /// and the bitmap is walked by words and by bytes.
    #[test]
    fn fully_connected_sparse_pow2_matches_dense(
        c in fc_case_of(0..=100).prop_flat_map(on_pow2_grid)
    ) {
        let rows = c.p.out_features;
        let stored = sparse_pow2_of(&c.w, rows);
        let w = medq::SparsePow2Rows::parse(&stored, rows, c.p.in_features).expect("parses");
        let mut dense = vec![0i8; c.p.rows * c.p.out_features];
        fully_connected_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
        let mut sparse = vec![0x55i8; dense.len()];
        fully_connected_sparse_pow2_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut sparse);
        prop_assert_eq!(sparse, dense);
    }

    /// Any byte string either parses as consistent sparse power-of-two rows
    /// or is refused; a parsed one encodes back to the same bytes.
    #[test]
    fn sparse_pow2_rows_parse_only_their_one_encoding(
        bytes in vec(any::<u8>(), 0..=24),
        rows in 0usize..=4,
        row_len in 0usize..=20,
    ) {
        if let Some(w) = medq::SparsePow2Rows::parse(&bytes, rows, row_len) {
            let dense = decoded(&w)?;
            prop_assert_eq!(sparse_pow2_of(&dense, rows), bytes);
        }
    }
}

// ---------------------------------------------------------------------------
// Sparse power-of-two weights with 3-bit codes (the four top powers): the
// same kernels again

fn sparse_pow2x3_of(w: &[i8], rows: usize) -> Vec<u8> {
    let row_len = w.len().checked_div(rows).unwrap_or(0);
    medq::sparse::encode_sparse::<medq::sparse::Pow2x3NonZeros>(w, row_len)
        .expect("every non-zero weight has a 3-bit code")
}

/// `c` with every weight replaced by 0 or one of the eight 3-bit code
/// weights `±8 … ±64`: half of them zero, or about three in four.
fn on_pow2x3_grid<P: Clone + std::fmt::Debug>(c: Case<P>) -> impl Strategy<Value = Case<P>> {
    let n = c.w.len();
    let weight = prop_oneof![
        1 => (0u8..8).prop_map(medq::pow2::decode_x3),
        1 => Just(0i8),
    ];
    let weights = prop_oneof![
        vec(weight.clone(), n),
        vec(prop_oneof![2 => Just(0i8), 1 => weight], n),
    ];
    (Just(c), weights).prop_map(|(mut c, w)| {
        c.w = w;
        c
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn conv_sparse_pow2x3_matches_dense(c in conv_case().prop_flat_map(on_pow2x3_grid)) {
        let rows = c.p.out_channels;
        let stored = sparse_pow2x3_of(&c.w, rows);
        let w = medq::SparsePow2x3Rows::parse(&stored, rows, c.w.len() / rows).expect("parses");
        let mut dense = vec![0i8; c.p.out_channels * c.p.out_h * c.p.out_w];
        conv_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
        let mut sparse = vec![0x55i8; dense.len()];
        conv_sparse_pow2x3_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut sparse);
        prop_assert_eq!(&sparse, &dense);
        let mut dsp = vec![0x55i8; dense.len()];
        cortex_m::conv_sparse_pow2x3_s8_dsp(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut dsp);
        prop_assert_eq!(dsp, dense);
    }

    /// Rows up to 100 weights, so that a row's codes start at every bit of
    /// a byte and codes straddle bytes.
    #[test]
    fn fully_connected_sparse_pow2x3_matches_dense(
        c in fc_case_of(0..=100).prop_flat_map(on_pow2x3_grid)
    ) {
        let rows = c.p.out_features;
        let stored = sparse_pow2x3_of(&c.w, rows);
        let w = medq::SparsePow2x3Rows::parse(&stored, rows, c.p.in_features).expect("parses");
        let mut dense = vec![0i8; c.p.rows * c.p.out_features];
        fully_connected_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
        let mut sparse = vec![0x55i8; dense.len()];
        fully_connected_sparse_pow2x3_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut sparse);
        prop_assert_eq!(sparse, dense);
    }

    /// Any byte string either parses as consistent 3-bit sparse rows or is
    /// refused; a parsed one encodes back to the same bytes.
    #[test]
    fn sparse_pow2x3_rows_parse_only_their_one_encoding(
        bytes in vec(any::<u8>(), 0..=24),
        rows in 0usize..=4,
        row_len in 0usize..=20,
    ) {
        if let Some(w) = medq::SparsePow2x3Rows::parse(&bytes, rows, row_len) {
            let dense = decoded(&w)?;
            prop_assert_eq!(sparse_pow2x3_of(&dense, rows), bytes);
        }
    }
}

/// The dense weights of `w`, read bit by bit: a non-zero value per set bit,
/// and none left over.
fn decoded<V: medq::sparse::NonZeros>(
    w: &medq::sparse::SparseRowsOf<'_, V>,
) -> Result<Vec<i8>, TestCaseError> {
    let row_len = w.row_len();
    let mut dense = vec![0i8; w.rows() * row_len];
    let mut values = w.values_from(0);
    for (k, d) in dense.iter_mut().enumerate() {
        let (r, i) = (k / row_len, k % row_len);
        let byte = w.bitmap()[r * medq::sparse::SparseRowsOf::<V>::row_bytes(row_len) + i / 8];
        if byte & (1 << (i % 8)) != 0 {
            *d = values.next().expect("a value per set bit");
            prop_assert!(*d != 0);
        }
    }
    prop_assert_eq!(values.next(), None);
    Ok(dense)
}

#[test]
fn sparse_rows_refuse_inconsistent_encodings() {
    // Two rows of 10: 2 bitmap bytes each.
    let ok = [0b0000_0011, 0b10, 0, 0, 5, -3i8 as u8, 7];
    assert!(SparseRows::parse(&ok, 2, 10).is_some());
    // A padding bit set (bit 2 of a 10-long row's second byte).
    assert!(SparseRows::parse(&[3, 0b110, 0, 0, 5, 253, 7, 1], 2, 10).is_none());
    // One value too many, one too few.
    assert!(SparseRows::parse(&[ok.as_slice(), &[9]].concat(), 2, 10).is_none());
    assert!(SparseRows::parse(&ok[..6], 2, 10).is_none());
    // A stored zero.
    assert!(SparseRows::parse(&[3, 0b10, 0, 0, 5, 0, 7], 2, 10).is_none());
    // A bitmap shorter than the rows.
    assert!(SparseRows::parse(&[1], 2, 10).is_none());
}

// ---------------------------------------------------------------------------
// Power-of-two weights: bit-exact with the dense kernels on the decoded weights

/// `c` with every weight replaced by a random power-of-two weight: 0 or
/// `±2^e`, `e <= 6` (the 15 codes; `0b1000` is not one), each equally
/// likely, or with 0 for about three weights in four (pruned, so rows and
/// exponents go missing).
fn on_pow2_grid<P: Clone + std::fmt::Debug>(c: Case<P>) -> impl Strategy<Value = Case<P>> {
    let n = c.w.len();
    let any_code = (0u8..15).prop_map(|c| if c >= 8 { c + 1 } else { c });
    let codes = prop_oneof![
        vec(any_code.clone(), n),
        vec(prop_oneof![3 => Just(0u8), 1 => any_code], n),
    ];
    (Just(c), codes).prop_map(|(mut c, codes)| {
        for (w, code) in c.w.iter_mut().zip(codes) {
            *w = medq::pow2::decode(code);
        }
        c
    })
}

/// `rows` rows of `row_len` weights as arbitrary code bytes (cycling
/// `seed`, every nibble value included), and the weights `decode` reads
/// from them.
fn any_codes(seed: &[u8], rows: usize, row_len: usize) -> (Vec<u8>, Vec<i8>) {
    let row_bytes = Pow2Rows::row_bytes(row_len);
    let codes: Vec<u8> = seed
        .iter()
        .cycle()
        .take(rows * row_bytes)
        .copied()
        .collect();
    let w = Pow2Rows {
        rows,
        row_len,
        codes: &codes,
    };
    let dense = (0..rows)
        .flat_map(|r| (0..row_len).map(move |k| (r, k)))
        .map(|(r, k)| medq::pow2::decode(Pow2Rows::code(w.row(r), k)))
        .collect();
    (codes, dense)
}

fn pow2_of(w: &[i8], rows: usize) -> Vec<u8> {
    medq::pow2::encode_pow2_rows(w, w.len().checked_div(rows).unwrap_or(0))
        .expect("every weight is on the grid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn conv_pow2_matches_dense(c in conv_case().prop_flat_map(on_pow2_grid)) {
        conv_pow2_vs_dense(&c)?;
    }

    #[test]
    fn fully_connected_pow2_matches_dense(c in fc_case().prop_flat_map(on_pow2_grid)) {
        let rows = c.p.out_features;
        let stored = pow2_of(&c.w, rows);
        let w = Pow2Rows::parse(&stored, rows, c.p.in_features).expect("parses");
        let mut dense = vec![0i8; c.p.rows * c.p.out_features];
        fully_connected_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
        let mut pow2 = vec![0x55i8; dense.len()];
        fully_connected_pow2_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut pow2);
        prop_assert_eq!(pow2, dense);
    }

    /// The kernels check only the codes' length (the loader checks the
    /// rest once): any code bytes, "negative zeros" and set padding nibbles
    /// included, compute what the dense kernels do on the weights `decode`
    /// reads from them.
    #[test]
    fn pow2_kernels_read_any_codes_as_decode_does(
        c in conv_case(),
        f in fc_case(),
        seed in vec(any::<u8>(), 64),
    ) {
        let rows = c.p.out_channels;
        let row_len = c.w.len() / rows;
        let (codes, dense) = any_codes(&seed, rows, row_len);
        let w = Pow2Rows { rows, row_len, codes: &codes };
        let mut want = vec![0i8; c.p.out_channels * c.p.out_h * c.p.out_w];
        conv_s8(&c.p, &c.x, &dense, &c.bias, &c.mult, &c.shift, &mut want);
        let mut got = vec![0x55i8; want.len()];
        conv_pow2_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut got);
        prop_assert_eq!(got, want);

        let (rows, row_len) = (f.p.out_features, f.p.in_features);
        let (codes, dense) = any_codes(&seed, rows, row_len);
        let w = Pow2Rows { rows, row_len, codes: &codes };
        let mut want = vec![0i8; f.p.rows * f.p.out_features];
        fully_connected_s8(&f.p, &f.x, &dense, &f.bias, &f.mult, &f.shift, &mut want);
        let mut got = vec![0x55i8; want.len()];
        fully_connected_pow2_s8(&f.p, &f.x, &w, &f.bias, &f.mult, &f.shift, &mut got);
        prop_assert_eq!(got, want);
    }

    /// Any byte string either parses as power-of-two rows or is refused; a
    /// parsed one decodes and encodes back to the same bytes.
    #[test]
    fn pow2_rows_parse_only_their_one_encoding(
        bytes in vec(any::<u8>(), 0..=12),
        rows in 0usize..=4,
        row_len in 0usize..=7,
    ) {
        if let Some(w) = Pow2Rows::parse(&bytes, rows, row_len) {
            let dense: Vec<i8> = (0..rows)
                .flat_map(|r| (0..row_len).map(move |k| (r, k)))
                .map(|(r, k)| medq::pow2::decode(Pow2Rows::code(w.row(r), k)))
                .collect();
            prop_assert_eq!(medq::pow2::encode_pow2_rows(&dense, row_len), Some(bytes));
        }
    }
}

/// Rows longer than the sparse conv kernel decodes at once (96 taps), and
/// output rows longer than its tile (32), with pads, strides and dilation.
fn long_row_conv_case() -> impl Strategy<Value = ConvCase> {
    (
        40usize..=80,
        1usize..=3,
        1usize..=5,
        20usize..=80,
        0usize..=2,
        1usize..=2,
        1usize..=2,
        zp(),
    )
        .prop_filter_map(
            "window fits",
            |(cin, cout, k, w, pad, stride, dil, in_zp)| {
                let out_w = conv_out_len(w, k, stride, dil, pad, pad)?;
                Some(ConvParams {
                    in_channels: cin,
                    in_h: 1,
                    in_w: w,
                    out_channels: cout,
                    out_h: 1,
                    out_w,
                    kernel_h: 1,
                    kernel_w: k,
                    stride_h: 1,
                    stride_w: stride,
                    dilation_h: 1,
                    dilation_w: dil,
                    pad_top: 0,
                    pad_left: pad,
                    groups: 1,
                    input_zero_point: in_zp,
                    output_zero_point: 0,
                    act_min: -128,
                    act_max: 127,
                })
            },
        )
        .prop_flat_map(|p| {
            let n_w = p.out_channels * p.in_channels * p.kernel_w;
            with_operands(p, p.in_channels * p.in_w, n_w, p.out_channels)
        })
}

/// 2-D convolutions with more taps per output than the pow2 and sparse conv
/// kernels decode at once (96), vertical pads (kernel rows outside the
/// input) and groups.
fn long_row_conv_2d_case() -> impl Strategy<Value = ConvCase> {
    (
        (8usize..=24, 1usize..=2, 1usize..=3),
        (1usize..=6, 1usize..=4, 0usize..=1),
        (3usize..=40, 1usize..=5, 0usize..=2),
        (1usize..=2, 1usize..=2),
        zp(),
    )
        .prop_filter_map(
            "window fits",
            |((cin_g, groups, cout_g), (h, kh, pad_h), (w, kw, pad_w), (stride, dil), in_zp)| {
                let out_h = conv_out_len(h, kh, 1, 1, pad_h, pad_h)?;
                let out_w = conv_out_len(w, kw, stride, dil, pad_w, pad_w)?;
                Some(ConvParams {
                    in_channels: cin_g * groups,
                    in_h: h,
                    in_w: w,
                    out_channels: cout_g * groups,
                    out_h,
                    out_w,
                    kernel_h: kh,
                    kernel_w: kw,
                    stride_h: 1,
                    stride_w: stride,
                    dilation_h: 1,
                    dilation_w: dil,
                    pad_top: pad_h,
                    pad_left: pad_w,
                    groups,
                    input_zero_point: in_zp,
                    output_zero_point: 0,
                    act_min: -128,
                    act_max: 127,
                })
            },
        )
        .prop_flat_map(|p| {
            let cin_g = p.in_channels / p.groups;
            let n_w = p.out_channels * cin_g * p.kernel_h * p.kernel_w;
            with_operands(p, p.in_channels * p.in_h * p.in_w, n_w, p.out_channels)
        })
}

/// [`conv_pow2_s8`] against [`conv_s8`] on the decoded weights.
fn conv_pow2_vs_dense(c: &ConvCase) -> Result<(), TestCaseError> {
    let rows = c.p.out_channels;
    let stored = pow2_of(&c.w, rows);
    let w = Pow2Rows::parse(&stored, rows, c.w.len() / rows).expect("parses");
    let mut dense = vec![0i8; c.p.out_channels * c.p.out_h * c.p.out_w];
    conv_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
    let mut pow2 = vec![0x55i8; dense.len()];
    conv_pow2_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut pow2);
    prop_assert_eq!(pow2, dense);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn conv_pow2_matches_dense_on_long_rows(c in long_row_conv_case().prop_flat_map(on_pow2_grid)) {
        conv_pow2_vs_dense(&c)?;
    }

    #[test]
    fn conv_pow2_matches_dense_on_long_2d_rows(
        c in long_row_conv_2d_case().prop_flat_map(on_pow2_grid)
    ) {
        conv_pow2_vs_dense(&c)?;
    }

    #[test]
    fn conv_sparse_matches_dense_on_long_rows(c in long_row_conv_case().prop_flat_map(pruned)) {
        conv_sparse_vs_dense(&c)?;
    }

    /// Wide interior runs (taken four outputs at a time) between padded
    /// edges, on strided and dilated 2-D windows.
    #[test]
    fn conv_sparse_matches_dense_on_long_2d_rows(
        c in long_row_conv_2d_case().prop_flat_map(pruned)
    ) {
        conv_sparse_vs_dense(&c)?;
    }
}

/// [`conv_sparse_s8`] and its Cortex-M DSP variant against [`conv_s8`] on
/// the same pruned weights.
fn conv_sparse_vs_dense(c: &ConvCase) -> Result<(), TestCaseError> {
    let rows = c.p.out_channels;
    let stored = sparse_of(&c.w, rows);
    let w = SparseRows::parse(&stored, rows, c.w.len() / rows).expect("parses");
    let mut dense = vec![0i8; c.p.out_channels * c.p.out_h * c.p.out_w];
    conv_s8(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut dense);
    let mut sparse = vec![0x55i8; dense.len()];
    conv_sparse_s8(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut sparse);
    prop_assert_eq!(&sparse, &dense);
    let mut dsp = vec![0x55i8; dense.len()];
    cortex_m::conv_sparse_s8_dsp(&c.p, &c.x, &w, &c.bias, &c.mult, &c.shift, &mut dsp);
    prop_assert_eq!(dsp, dense);
    Ok(())
}
