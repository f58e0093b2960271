//! Property tests of the math kernels (Sub, Div, Min, Max, ReduceSum,
//! ReduceMax, LayerNorm, MatMul, ArgMax, Select, TopK) against naive implementations of their documented
//! formulas: explicit coordinates, `i64`/`i128`/`f64` arithmetic.

use medq::kernels::*;
use medq::numerics::{clamp, requantize, requantize_to_i8};
use proptest::collection::vec;
use proptest::prelude::*;

fn multiplier() -> impl Strategy<Value = i32> {
    prop_oneof![8 => (1i32 << 30)..=i32::MAX, 1 => Just(0), 1 => 1i32..(1 << 30)]
}

fn shift(typical: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![8 => typical, 1 => Just(-31), 1 => Just(30)]
}

fn act() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        2 => Just((-128, 127)),
        3 => (-128i32..=127, -128i32..=127).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

fn zp() -> impl Strategy<Value = i32> {
    -128i32..=127
}

/// An output shape (rank 1..=4) and the two operand shapes broadcasting to
/// it: each operand drops some leading dims and sets some dims to 1.
fn broadcast_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    vec(1usize..=4, 1..=4).prop_flat_map(|out| {
        let r = out.len();
        (
            Just(out),
            0..=r,
            vec(any::<bool>(), r),
            0..=r,
            vec(any::<bool>(), r),
        )
            .prop_map(|(out, da, ma, db, mb)| {
                let op = |drop: usize, ones: &[bool]| -> Vec<usize> {
                    (drop..out.len())
                        .map(|d| if ones[d] { 1 } else { out[d] })
                        .collect()
                };
                let (a, b) = (op(da, &ma), op(db, &mb));
                // The numpy broadcast of the two (dims both set to 1 stay 1).
                let r = a.len().max(b.len());
                let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(r).map_or(1, |j| s[j]);
                let out = (0..r).map(|i| at(&a, i).max(at(&b, i))).collect();
                (out, a, b)
            })
    })
}

/// Row-major index of output coordinate `c` in an operand of shape `s`
/// (right-aligned, size-1 dims broadcast).
fn operand_index(c: &[usize], s: &[usize]) -> usize {
    let off = c.len() - s.len();
    s.iter().enumerate().fold(0, |acc, (d, &n)| {
        acc * n + if n == 1 { 0 } else { c[off + d] }
    })
}

/// Every coordinate of `shape`, row-major.
fn coords(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut all = vec![vec![]];
    for &n in shape {
        all = all
            .into_iter()
            .flat_map(|c| {
                (0..n).map(move |i| {
                    let mut c = c.clone();
                    c.push(i);
                    c
                })
            })
            .collect();
    }
    all
}

type BinaryCase = (Vec<usize>, Vec<usize>, Vec<usize>, Vec<i8>, Vec<i8>);

fn binary_case() -> impl Strategy<Value = BinaryCase> {
    broadcast_shapes().prop_flat_map(|(out, a, b)| {
        let (na, nb): (usize, usize) = (a.iter().product(), b.iter().product());
        (
            Just(out),
            Just(a),
            Just(b),
            vec(any::<i8>(), na),
            vec(any::<i8>(), nb),
        )
    })
}

/// `f(a[..], b[..])` over the broadcast output, naively.
fn naive_binary(c: &BinaryCase, f: impl Fn(i8, i8) -> i8) -> Vec<i8> {
    let (out, sa, sb, a, b) = c;
    coords(out)
        .iter()
        .map(|co| f(a[operand_index(co, sa)], b[operand_index(co, sb)]))
        .collect()
}

fn run_binary<P>(
    c: &BinaryCase,
    p: &P,
    kernel: fn(&P, &Broadcast4, &[i8], &[i8], &mut [i8]),
) -> Vec<i8> {
    let (out, sa, sb, a, b) = c;
    let bc = Broadcast4::new(sa, sb).unwrap();
    assert_eq!(bc.out_len(), out.iter().product::<usize>());
    let mut y = vec![0x55u8 as i8; bc.out_len()];
    kernel(p, &bc, a, b, &mut y);
    y
}

fn add_params() -> impl Strategy<Value = AddParams> {
    (
        (zp(), zp(), zp(), 0i32..=20),
        (multiplier(), shift(-20..=0), multiplier(), shift(-20..=0)),
        (multiplier(), shift(-10..=5), act()),
    )
        .prop_map(
            |((za, zb, zy, ls), (am, ash, bm, bsh), (om, osh, (lo, hi)))| AddParams {
                a_zero_point: za,
                b_zero_point: zb,
                output_zero_point: zy,
                left_shift: ls,
                a_multiplier: am,
                a_shift: ash,
                b_multiplier: bm,
                b_shift: bsh,
                out_multiplier: om,
                out_shift: osh,
                act_min: lo,
                act_max: hi,
            },
        )
}

fn mul_params() -> impl Strategy<Value = MulParams> {
    (zp(), zp(), zp(), multiplier(), shift(-20..=0), act()).prop_map(
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

fn min_max_params() -> impl Strategy<Value = MinMaxParams> {
    (
        (zp(), zp(), zp()),
        (multiplier(), shift(-2..=2), multiplier(), shift(-2..=2)),
        act(),
    )
        .prop_map(
            |((za, zb, zy), (am, ash, bm, bsh), (lo, hi))| MinMaxParams {
                a_zero_point: za,
                b_zero_point: zb,
                output_zero_point: zy,
                a_multiplier: am,
                a_shift: ash,
                b_multiplier: bm,
                b_shift: bsh,
                act_min: lo,
                act_max: hi,
            },
        )
}

/// An input shape (rank 1..=5) and a non-empty mask of reduced axes.
fn reduce_case() -> impl Strategy<Value = (Vec<usize>, u8, Vec<i8>)> {
    vec(1usize..=4, 1..=5).prop_flat_map(|shape| {
        let r = shape.len();
        let n: usize = shape.iter().product();
        (Just(shape), 1u8..(1u8 << r), vec(any::<i8>(), n))
    })
}

fn reduce_params(shape: &[usize], axes: u8) -> impl Strategy<Value = ReduceParams> {
    let mut s = [1usize; 6];
    s[..shape.len()].copy_from_slice(shape);
    let rank = shape.len();
    (zp(), zp(), multiplier(), shift(-8..=1), act()).prop_map(move |(zx, zy, m, sh, (lo, hi))| {
        ReduceParams {
            shape: s,
            rank,
            axes,
            input_zero_point: zx,
            output_zero_point: zy,
            multiplier: m,
            shift: sh,
            act_min: lo,
            act_max: hi,
        }
    })
}

/// ReduceL2 naively: the squares summed per output in `u128`, the root as
/// the largest `r` with `r² <= S · 2^16 + eps` (from the float root,
/// corrected by whole steps).
fn naive_reduce_l2(p: &ReduceParams, eps: u32, x: &[i8]) -> Vec<i8> {
    let shape = &p.shape[..p.rank];
    let kept: Vec<usize> = (0..p.rank)
        .filter(|d| p.axes & (1 << d) == 0)
        .map(|d| shape[d])
        .collect();
    let mut acc = vec![0u128; kept.iter().product::<usize>()];
    for (flat, c) in coords(shape).iter().enumerate() {
        let kc: Vec<usize> = (0..p.rank)
            .filter(|d| p.axes & (1 << d) == 0)
            .map(|d| c[d])
            .collect();
        let v = i128::from(x[flat]) - i128::from(p.input_zero_point);
        acc[operand_index(&kc, &kept)] += (v * v) as u128;
    }
    acc.iter()
        .map(|&s| {
            let t = (s << 16) + u128::from(eps);
            let mut r = (t as f64).sqrt() as u128;
            while r * r > t {
                r -= 1;
            }
            while (r + 1) * (r + 1) <= t {
                r += 1;
            }
            requantize_to_i8(
                i32::try_from(r).unwrap(),
                p.multiplier,
                p.shift,
                p.output_zero_point,
                p.act_min,
                p.act_max,
            )
        })
        .collect()
}

/// The reduction naively: every input coordinate added into (or maxed into)
/// the output slot of its kept coordinates, in `i64`.
fn naive_reduce(p: &ReduceParams, x: &[i8], max: bool) -> Vec<i8> {
    let shape = &p.shape[..p.rank];
    let kept: Vec<usize> = (0..p.rank)
        .filter(|d| p.axes & (1 << d) == 0)
        .map(|d| shape[d])
        .collect();
    let n_out = kept.iter().product::<usize>();
    let init = if max { i64::MIN } else { 0 };
    let mut acc = vec![init; n_out];
    for (flat, c) in coords(shape).iter().enumerate() {
        let kc: Vec<usize> = (0..p.rank)
            .filter(|d| p.axes & (1 << d) == 0)
            .map(|d| c[d])
            .collect();
        let o = operand_index(&kc, &kept);
        let v = i64::from(x[flat]) - i64::from(p.input_zero_point);
        acc[o] = if max { acc[o].max(v) } else { acc[o] + v };
    }
    acc.iter()
        .map(|&a| {
            requantize_to_i8(
                i32::try_from(a).unwrap(),
                p.multiplier,
                p.shift,
                p.output_zero_point,
                p.act_min,
                p.act_max,
            )
        })
        .collect()
}

#[derive(Clone, Debug)]
struct LayerNormCase {
    p: LayerNormParams,
    x: Vec<i8>,
    gamma: Vec<i8>,
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<i8>,
}

fn layer_norm_case() -> impl Strategy<Value = LayerNormCase> {
    (1usize..=3, 1usize..=40, zp(), zp(), 0i64..=(1 << 20), act()).prop_flat_map(
        |(rows, len, zx, zy, eps, (lo, hi))| {
            let p = LayerNormParams {
                rows,
                len,
                input_zero_point: zx,
                output_zero_point: zy,
                epsilon: eps,
                act_min: lo,
                act_max: hi,
            };
            // Narrow inputs sometimes, so small variances are covered.
            let x = prop_oneof![
                vec(any::<i8>(), rows * len),
                vec(-3i8..=3, rows * len),
                vec(Just(7i8), rows * len)
            ];
            (
                Just(p),
                x,
                vec(any::<i8>(), len),
                vec(-(1i32 << 20)..(1 << 20), len),
                vec(multiplier(), len),
                vec((-20i8..=0).boxed(), len),
            )
                .prop_map(|(p, x, gamma, bias, mult, shift)| LayerNormCase {
                    p,
                    x,
                    gamma,
                    bias,
                    mult,
                    shift,
                })
        },
    )
}

/// `floor(sqrt(v))` by a float guess corrected in exact arithmetic.
fn naive_isqrt(v: i128) -> i128 {
    let mut r = (v as f64).sqrt() as i128;
    while r * r > v {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= v {
        r += 1;
    }
    r
}

fn naive_layer_norm(c: &LayerNormCase) -> Vec<i8> {
    let p = &c.p;
    let n = p.len as i128;
    let mut y = Vec::new();
    for row in c.x.chunks(p.len) {
        let cs: Vec<i128> = row
            .iter()
            .map(|&v| i128::from(v) - i128::from(p.input_zero_point))
            .collect();
        let s: i128 = cs.iter().sum();
        let q: i128 = cs.iter().map(|v| v * v).sum();
        let root = naive_isqrt((n * q - s * s + i128::from(p.epsilon)) * 65536);
        for (i, &ci) in cs.iter().enumerate() {
            let d = n * ci - s;
            let z = if root == 0 {
                0
            } else {
                // Halves away from zero, by exact rational comparison.
                let num = d.abs() * (1 << 20);
                let (fl, rem) = (num / root, num % root);
                let mag = if 2 * rem >= root { fl + 1 } else { fl };
                (d.signum() * mag) as i32
            };
            let acc = z
                .wrapping_mul(i32::from(c.gamma[i]))
                .wrapping_add(c.bias[i]);
            y.push(requantize_to_i8(
                acc,
                c.mult[i],
                i32::from(c.shift[i]),
                p.output_zero_point,
                p.act_min,
                p.act_max,
            ));
        }
    }
    y
}

/// A MatMul: broadcast batch shapes (as for the binary ops), `rows`,
/// `depth`, `cols`, and both operands' values.
type MatMulCase = (
    Vec<usize>,
    Vec<usize>,
    Vec<usize>,
    [usize; 3],
    Vec<i8>,
    Vec<i8>,
);

fn mat_mul_case() -> impl Strategy<Value = MatMulCase> {
    (broadcast_shapes(), 1usize..=5, 1usize..=40, 1usize..=70).prop_flat_map(
        |((out, a, b), m, k, n)| {
            let (na, nb): (usize, usize) = (a.iter().product(), b.iter().product());
            (
                Just(out),
                Just(a),
                Just(b),
                Just([m, k, n]),
                vec(any::<i8>(), na * m * k),
                vec(any::<i8>(), nb * k * n),
            )
        },
    )
}

fn mat_mul_params() -> impl Strategy<Value = (i32, i32, i32, i32, i32, (i32, i32))> {
    (zp(), zp(), zp(), multiplier(), shift(-20..=-5), act())
}

/// `y[.., r, c] = requant(Σₖ (a[.., r, k] − za)(b[.., k, c] − zb))`, the sum
/// in `i64` over explicit coordinates.
fn naive_mat_mul(c: &MatMulCase, p: &MatMulParams) -> Vec<i8> {
    let (out, sa, sb, [m, k, n], a, b) = c;
    let mut y = Vec::new();
    for co in coords(out) {
        let (ia, ib) = (operand_index(&co, sa), operand_index(&co, sb));
        for r in 0..*m {
            for col in 0..*n {
                let sum: i64 = (0..*k)
                    .map(|t| {
                        let x = i64::from(a[(ia * m + r) * k + t]) - i64::from(p.a_zero_point);
                        let w = i64::from(b[(ib * k + t) * n + col]) - i64::from(p.b_zero_point);
                        x * w
                    })
                    .sum();
                let acc = i32::try_from(sum).expect("the depth bound keeps the sum in i32");
                y.push(requantize_to_i8(
                    acc,
                    p.out_multiplier,
                    p.out_shift,
                    p.output_zero_point,
                    p.act_min,
                    p.act_max,
                ));
            }
        }
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arg_max_matches_naive(
        (outer, len, inner) in (1usize..=4, 1usize..=128, 1usize..=5),
        select_last in any::<bool>(),
        seed in any::<u64>(),
    ) {
        // Few distinct values, so that ties are common.
        let x: Vec<i8> = (0..outer * len * inner)
            .map(|k| ((seed.wrapping_mul(k as u64 + 1) >> 13) % 5) as i8 - 2)
            .collect();
        let mut want = Vec::new();
        for o in 0..outer {
            for i in 0..inner {
                let column: Vec<i8> = (0..len).map(|k| x[(o * len + k) * inner + i]).collect();
                let top = *column.iter().max().unwrap();
                let mut at = column.iter().enumerate().filter(|(_, &v)| v == top).map(|(k, _)| k);
                let pick = if select_last { at.next_back() } else { at.next() };
                want.push(pick.unwrap() as i8);
            }
        }
        let p = ArgMaxParams { outer, len, inner, select_last };
        let mut y = vec![-1i8; outer * inner];
        arg_max_s8(&p, &x, &mut y);
        prop_assert_eq!(y, want);
    }

    #[test]
    fn mat_mul_matches_naive(c in mat_mul_case(), q in mat_mul_params()) {
        let (za, zb, zy, om, os, (lo, hi)) = q;
        let (_, sa, sb, [rows, depth, cols], a, b) = &c;
        let p = MatMulParams {
            batch: Broadcast4::new(sa, sb).unwrap(),
            rows: *rows,
            depth: *depth,
            cols: *cols,
            a_zero_point: za,
            b_zero_point: zb,
            output_zero_point: zy,
            out_multiplier: om,
            out_shift: os,
            act_min: lo,
            act_max: hi,
        };
        let want = naive_mat_mul(&c, &p);
        let mut y = vec![0x55u8 as i8; want.len()];
        mat_mul_s8(&p, a, b, &mut y);
        prop_assert_eq!(y, want);
    }

    #[test]
    fn sub_matches_naive(c in binary_case(), p in add_params()) {
        let want = naive_binary(&c, |x, y| {
            let xa = (i32::from(x) - p.a_zero_point) << p.left_shift;
            let xb = (i32::from(y) - p.b_zero_point) << p.left_shift;
            let d = i64::from(requantize(xa, p.a_multiplier, p.a_shift))
                - i64::from(requantize(xb, p.b_multiplier, p.b_shift));
            let d = d.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
            requantize_to_i8(d, p.out_multiplier, p.out_shift, p.output_zero_point, p.act_min, p.act_max)
        });
        prop_assert_eq!(run_binary(&c, &p, sub_s8), want);
    }

    #[test]
    fn div_matches_naive(c in binary_case(), p in mul_params()) {
        let want = naive_binary(&c, |x, y| {
            let n = f64::from(i32::from(x) - p.a_zero_point);
            let d = f64::from(i32::from(y) - p.b_zero_point);
            // f64 division is correctly rounded; ties are exact, so `round`
            // (halves away from zero) is the documented quotient.
            let q = if d == 0.0 {
                (n.signum() * f64::from(i32::MAX)) as i32 * i32::from(n != 0.0)
            } else {
                (n * 65536.0 / d).round() as i32
            };
            requantize_to_i8(q, p.out_multiplier, p.out_shift, p.output_zero_point, p.act_min, p.act_max)
        });
        prop_assert_eq!(run_binary(&c, &p, div_s8), want);
    }

    #[test]
    fn min_and_max_match_naive(c in binary_case(), p in min_max_params()) {
        for max in [false, true] {
            let want = naive_binary(&c, |x, y| {
                let xa = requantize(i32::from(x) - p.a_zero_point, p.a_multiplier, p.a_shift);
                let xb = requantize(i32::from(y) - p.b_zero_point, p.b_multiplier, p.b_shift);
                let v = if max { xa.max(xb) } else { xa.min(xb) };
                clamp(v.saturating_add(p.output_zero_point), p.act_min, p.act_max) as i8
            });
            let kernel = if max { max_s8 } else { min_s8 };
            prop_assert_eq!(run_binary(&c, &p, kernel), want);
        }
    }

    #[test]
    fn top_k_matches_naive(
        (outer, len, inner) in (1usize..=3, 1usize..=128, 1usize..=4),
        k_frac in 0.0f64..1.0,
        largest in any::<bool>(),
        seed in any::<u64>(),
    ) {
        // Few distinct values, so that ties are common.
        let x: Vec<i8> = (0..outer * len * inner)
            .map(|k| ((seed.wrapping_mul(k as u64 + 1) >> 13) % 7) as i8 - 3)
            .collect();
        let k = 1 + ((len - 1) as f64 * k_frac) as usize;
        let (mut values, mut indices) = (vec![0i8; outer * k * inner], vec![0i8; outer * k * inner]);
        for o in 0..outer {
            for i in 0..inner {
                // A stable sort by value keeps the lower index first.
                let mut order: Vec<usize> = (0..len).collect();
                let at = |j: usize| x[(o * len + j) * inner + i];
                order.sort_by_key(|&j| if largest { -i32::from(at(j)) } else { i32::from(at(j)) });
                for (r, &j) in order.iter().take(k).enumerate() {
                    values[(o * k + r) * inner + i] = at(j);
                    indices[(o * k + r) * inner + i] = j as i8;
                }
            }
        }
        let p = TopKParams { outer, len, inner, k, largest };
        let (mut v, mut ix) = (vec![99i8; values.len()], vec![99i8; values.len()]);
        top_k_s8(&p, &x, &mut v);
        top_k_indices_s8(&p, &x, &mut ix);
        prop_assert_eq!(v, values);
        prop_assert_eq!(ix, indices);
    }

    #[test]
    fn select_matches_naive(
        c in binary_case(),
        p in min_max_params(),
        keep in vec(any::<bool>(), 4),
        drop in 0usize..=4,
        zc in zp(),
        seed in any::<u64>(),
    ) {
        // A condition broadcasting to the output: some leading dims dropped,
        // some set to 1; values at its zero point about half the time.
        let out = &c.0;
        let drop = drop.min(out.len());
        let shape: Vec<usize> =
            (drop..out.len()).map(|d| if keep[d] { out[d] } else { 1 }).collect();
        let n: usize = shape.iter().product();
        let cond: Vec<i8> = (0..n as u64)
            .map(|k| {
                let r = seed.wrapping_mul(k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56;
                if r % 2 == 0 { zc as i8 } else { r as i8 }
            })
            .collect();
        let (_, sa, sb, a, b) = &c;
        let want: Vec<i8> = coords(out)
            .iter()
            .map(|co| {
                let (x, z, m, s) = match i32::from(cond[operand_index(co, &shape)]) != zc {
                    true => (a[operand_index(co, sa)], p.a_zero_point, p.a_multiplier, p.a_shift),
                    false => (b[operand_index(co, sb)], p.b_zero_point, p.b_multiplier, p.b_shift),
                };
                let v = requantize(i32::from(x) - z, m, s);
                clamp(v.saturating_add(p.output_zero_point), p.act_min, p.act_max) as i8
            })
            .collect();
        let bc = Broadcast4::new(sa, sb).unwrap();
        let cond_bc = Broadcast4::new(&shape, out).unwrap();
        let sp = SelectParams { cond_zero_point: zc, cond_strides: cond_bc.a_strides, values: p };
        let mut y = vec![0x55u8 as i8; bc.out_len()];
        select_s8(&sp, &bc, &cond, a, b, &mut y);
        prop_assert_eq!(y, want);
    }

    #[test]
    fn reductions_match_naive(
        (p, x) in reduce_case().prop_flat_map(|(s, axes, x)| (reduce_params(&s, axes), Just(x)))
    ) {
        let kept: usize = (0..p.rank).filter(|d| p.axes & (1 << d) == 0).map(|d| p.shape[d]).product();
        for max in [false, true] {
            let mut y = vec![0x55u8 as i8; kept];
            if max { reduce_max_s8(&p, &x, &mut y) } else { reduce_sum_s8(&p, &x, &mut y) }
            prop_assert_eq!(y, naive_reduce(&p, &x, max));
        }
    }

    #[test]
    fn reduce_l2_matches_naive(
        (p, x) in reduce_case().prop_flat_map(|(s, axes, x)| (reduce_params(&s, axes), Just(x))),
        eps in prop_oneof![Just(0u32), any::<u32>()],
    ) {
        let kept: usize = (0..p.rank).filter(|d| p.axes & (1 << d) == 0).map(|d| p.shape[d]).product();
        let mut y = vec![0x55u8 as i8; kept];
        reduce_l2_s8(&p, eps, &x, &mut y);
        prop_assert_eq!(y, naive_reduce_l2(&p, eps, &x));
    }

    #[test]
    fn layer_norm_matches_naive(c in layer_norm_case()) {
        let mut y = vec![0x55u8 as i8; c.x.len()];
        layer_norm_s8(&c.p, &c.x, &c.gamma, &c.bias, &c.mult, &c.shift, &mut y);
        prop_assert_eq!(y, naive_layer_norm(&c));
    }

    /// With gamma 1, no bias and an output scale of 1/32, the result is the
    /// float layer norm to within one step (the Q12 value and the rounded
    /// square root are the only approximations).
    #[test]
    fn layer_norm_is_close_to_the_float_formula(
        len in 2usize..=64, x in vec(any::<i8>(), 64), zx in zp(), eps_real in 0.0f64..0.5
    ) {
        let x = &x[..len];
        let n = len as f64;
        // ε in the units of the integer statistic: ε · len² (input scale 1).
        let epsilon = (eps_real * n * n).round() as i64;
        let p = LayerNormParams { rows: 1, len, input_zero_point: zx, output_zero_point: 0,
            epsilon, act_min: -128, act_max: 127 };
        let mut y = vec![0i8; len];
        // z is Q12; 32/4096 = 2^-7: m = 2^30, s = −6.
        layer_norm_s8(&p, x, &vec![1; len], &vec![0; len], &vec![1 << 30; len], &vec![-6; len], &mut y);
        let c: Vec<f64> = x.iter().map(|&v| f64::from(v) - f64::from(zx)).collect();
        let mean = c.iter().sum::<f64>() / n;
        let var = c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let eps_used = epsilon as f64 / (n * n);
        for (yi, ci) in y.iter().zip(&c) {
            let want = (32.0 * (ci - mean) / (var + eps_used).sqrt()).clamp(-128.0, 127.0);
            if (var + eps_used) > 0.0 {
                prop_assert!((f64::from(*yi) - want).abs() <= 1.0, "{} vs {}", yi, want);
            }
        }
    }
}

#[test]
fn isqrt_matches_naive_on_edges() {
    for v in [
        0u64,
        1,
        3,
        4,
        99,
        100,
        101,
        u64::from(u32::MAX),
        1 << 61,
        (1 << 62) + 12345,
    ] {
        assert_eq!(i128::from(isqrt(v)), naive_isqrt(i128::from(v)));
    }
}
