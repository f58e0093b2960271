//! A logarithm or a square root of a sum of squares (log band powers, a log
//! spectrogram: `log(re² + im² + ε)`, `log(Σ_band |X|² + ε)`; a norm or a
//! product of norms under a division: cosine similarity, RMS normalisation)
//! runs on the square root of the sum instead: ReduceL2, an exact integer
//! sum of squares and root, then one table of `f(r²)`. Written out, the squares and their sums are encoded
//! on a linear grid whose step (the largest power / 255, or / 32767 in
//! int16) swallows every power below it, and powers span decades: their
//! logarithms, which is what the model reads, are lost. The root halves the
//! decades the encoding must hold, and the sum of squares itself is never
//! encoded.
//!
//! The pass rewrites the tree below a pointwise function containing a `Log`
//! or a `Sqrt` through the ops that commute with a root: a square `x²` (its
//! root is `x`, up to a sign the squares downstream drop), Add of two such
//! tensors (a ReduceL2 over the two stacked), a constant `c ≥ 0` added
//! (ReduceL2's `ε`), a product of two (the product of their roots) or by a
//! constant `c ≥ 0`, ReduceSum and ReduceMean (a ReduceL2 over the same
//! axes), and the views and selections between (Reshape, Select, Transpose,
//! Concat). A sum
//! of squares is tracked as `k · r²` (a mean's `1/count`); the table
//! becomes `f(k · r²)`, so the float function is unchanged. A sum of
//! squares that two logs read is rooted once for each.

use std::collections::HashMap;
use std::sync::Arc;

use super::fuse_norm::is_square;
use super::{label, producer, RewriteLog};
use crate::ir::{FusedActivation, Graph, Node, Op, Tensor, TensorId};
use crate::ops::concat::Concat;
use crate::ops::elementwise::{Add, Mul};
use crate::ops::pointwise::{Expr, Fn1, Fn2, Pointwise};
use crate::ops::reduce::{Reduce, Reduction};

pub(super) fn run(g: &mut Graph, log: &mut RewriteLog) -> bool {
    for i in 0..g.nodes.len() {
        let Op::Pointwise(Pointwise { f }) = &g.nodes[i].op else {
            continue;
        };
        if !reads_a_root(f) {
            continue;
        }
        let f = f.clone();
        let Some(&p) = g.nodes[i].inputs.first() else {
            continue;
        };
        let tensors = g.tensors.len();
        let mut b = Build {
            added: Vec::new(),
            memo: HashMap::new(),
            anchor: g.nodes[i].name.clone(),
        };
        let Some(mut root) = b.root_of(g, p) else {
            g.tensors.truncate(tensors);
            continue;
        };
        // `h(x + ε)`: the ε joins the root, `sqrt(r² + ε/k)`, so a log
        // reads it where the root stops (an int16 Log is exact from there
        // on, where a table must follow log's curve down to ε).
        let f = match split_added_constant(&f) {
            Some((eps, h)) if eps > 0.0 => {
                let eps = (eps / root.k) as f32;
                root.r = match b.added.last_mut() {
                    Some(Node {
                        op: Op::Reduce(Reduce { how, .. }),
                        output,
                        ..
                    }) if *output == root.r && *how == Reduction::l2(0.0) => {
                        *how = Reduction::l2(eps);
                        root.r
                    }
                    _ => {
                        let shape = g.tensors[root.r].shape.clone();
                        let at = producer(g, p).map(|n| g.nodes[n].clone());
                        let Some(at) = at else { continue };
                        let one = b.stack(g, &[root.r], &shape, &at);
                        let Some(one) = one else { continue };
                        b.l2(g, one, &shape, eps, &at)
                    }
                };
                Arc::new(h)
            }
            _ => f,
        };
        // f(k · r²): the function of the root. A root from ReduceL2 is
        // never negative; saying so (r⁺ = max(r, 0)) keeps the function a
        // logarithm on the whole grid, which an int16 Log then computes
        // exactly, where the mirror image on the negative codes would not.
        let r = if root.is_l2_output(&b, g) {
            Arc::new(Expr::Binary(
                Fn2::Max,
                Arc::new(Expr::X),
                Arc::new(Expr::Const(0.0)),
            ))
        } else {
            Arc::new(Expr::X)
        };
        let square = Expr::Binary(
            Fn2::Mul,
            Arc::new(Expr::Const(root.k)),
            Arc::new(Expr::Binary(Fn2::Mul, r.clone(), r)),
        );
        let line = format!(
            "computed the sum of squares under {} as its root (ReduceL2), and the \
             function of the sum from the root",
            label(g, i)
        );
        let n = &mut g.nodes[i];
        n.op = Op::Pointwise(Pointwise {
            f: Arc::new(substitute(&f, &square)),
        });
        n.inputs[0] = root.r;
        let added = std::mem::take(&mut b.added);
        for (k, node) in added.into_iter().enumerate() {
            g.nodes.insert(i + k, node);
        }
        log.0.push(line);
        return true;
    }
    false
}

/// Whether `f` takes a logarithm or a square root somewhere: a function
/// whose input spans decades where its output does not.
fn reads_a_root(f: &Expr) -> bool {
    match f {
        Expr::X | Expr::Const(_) => false,
        Expr::Unary(Fn1::Log | Fn1::Sqrt, _) => true,
        Expr::Unary(_, a) => reads_a_root(a),
        Expr::Binary(_, a, b) => reads_a_root(a) || reads_a_root(b),
        Expr::Where(c, a, b) => reads_a_root(c) || reads_a_root(a) || reads_a_root(b),
    }
}

/// `(c, h)` when `f(x) = h(x + c)` with `x` read only there.
fn split_added_constant(f: &Expr) -> Option<(f64, Expr)> {
    fn reads(e: &Expr) -> usize {
        match e {
            Expr::X => 1,
            Expr::Const(_) => 0,
            Expr::Unary(_, a) => reads(a),
            Expr::Binary(_, a, b) => reads(a) + reads(b),
            Expr::Where(c, a, b) => reads(c) + reads(a) + reads(b),
        }
    }
    fn find(e: &Expr) -> Option<(f64, Expr)> {
        let sub = |a: &Arc<Expr>| find(a);
        match e {
            Expr::Binary(Fn2::Add, a, b) => match (&**a, &**b) {
                (Expr::X, Expr::Const(c)) | (Expr::Const(c), Expr::X) => Some((*c, Expr::X)),
                _ => sub(a)
                    .map(|(c, h)| (c, Expr::Binary(Fn2::Add, Arc::new(h), b.clone())))
                    .or_else(|| {
                        sub(b).map(|(c, h)| (c, Expr::Binary(Fn2::Add, a.clone(), Arc::new(h))))
                    }),
            },
            Expr::Unary(u, a) => sub(a).map(|(c, h)| (c, Expr::Unary(*u, Arc::new(h)))),
            Expr::Binary(o, a, b) => sub(a)
                .map(|(c, h)| (c, Expr::Binary(*o, Arc::new(h), b.clone())))
                .or_else(|| sub(b).map(|(c, h)| (c, Expr::Binary(*o, a.clone(), Arc::new(h))))),
            Expr::X | Expr::Const(_) | Expr::Where(..) => None,
        }
    }
    if reads(f) != 1 {
        return None;
    }
    find(f)
}

/// `f` with `x` in place of its input.
fn substitute(f: &Expr, x: &Expr) -> Expr {
    let sub = |e: &Arc<Expr>| Arc::new(substitute(e, x));
    match f {
        Expr::X => x.clone(),
        Expr::Const(c) => Expr::Const(*c),
        Expr::Unary(u, a) => Expr::Unary(*u, sub(a)),
        Expr::Binary(o, a, b) => Expr::Binary(*o, sub(a), sub(b)),
        Expr::Where(c, a, b) => Expr::Where(sub(c), sub(a), sub(b)),
    }
}

/// A tensor `t` known as `k · r²`.
#[derive(Clone, Copy, Debug)]
struct Root {
    r: TensorId,
    k: f64,
}

impl Root {
    /// Whether `r` is the output of a ReduceL2 (this rewrite's, or one
    /// already in the graph).
    fn is_l2_output(&self, b: &Build, g: &Graph) -> bool {
        let is_l2 = |op: &Op| {
            matches!(
                op,
                Op::Reduce(Reduce {
                    how: Reduction::L2 { .. },
                    ..
                })
            )
        };
        b.added.iter().any(|n| n.output == self.r && is_l2(&n.op))
            || producer(g, self.r).is_some_and(|n| is_l2(&g.nodes[n].op))
    }
}

/// The nodes a rewrite adds (in an order that runs: each after its inputs),
/// and the roots found so far.
struct Build {
    added: Vec<Node>,
    memo: HashMap<TensorId, Root>,
    anchor: String,
}

impl Build {
    /// `t` as `k · r²`, adding the nodes that compute `r`; `None` when a
    /// node below `t` does not commute with a root.
    fn root_of(&mut self, g: &mut Graph, t: TensorId) -> Option<Root> {
        if let Some(&r) = self.memo.get(&t) {
            return Some(r);
        }
        let n = g.nodes[producer(g, t)?].clone();
        let shape = g.tensors[t].shape.clone();
        let root = match &n.op {
            Op::Pointwise(Pointwise { f }) if is_square(f) => Root {
                r: *n.inputs.first()?,
                k: 1.0,
            },
            Op::Mul(Mul {
                activation: FusedActivation::None,
            }) if n.inputs.len() == 2 && n.inputs[0] == n.inputs[1] => Root {
                r: n.inputs[0],
                k: 1.0,
            },
            // A product of two sums of squares is the square of the product
            // of their roots; a constant factor joins `k`.
            Op::Mul(Mul {
                activation: FusedActivation::None,
            }) => match pair(g, &n, &shape)? {
                Pair::Computed(a, b) => {
                    let (ra, rb) = (self.root_of(g, a)?, self.root_of(g, b)?);
                    let op = Op::Mul(Mul {
                        activation: FusedActivation::None,
                    });
                    let r = self.emit(g, &n, op, vec![ra.r, rb.r], shape, "root");
                    Root { r, k: ra.k * rb.k }
                }
                Pair::WithConstant(x, c) if c >= 0.0 => {
                    let rx = self.root_of(g, x)?;
                    Root {
                        r: rx.r,
                        k: rx.k * c,
                    }
                }
                Pair::WithConstant(..) => return None,
            },
            // A sum of two is the root of both stacked; a constant added
            // joins the root's ε.
            Op::Add(Add {
                activation: FusedActivation::None,
            }) => match pair(g, &n, &shape)? {
                Pair::Computed(a, b) => {
                    let (ra, rb) = (self.root_of(g, a)?, self.root_of(g, b)?);
                    if ra.k != rb.k {
                        return None;
                    }
                    let stacked = self.stack(g, &[ra.r, rb.r], &shape, &n)?;
                    let r = self.l2(g, stacked, &shape, 0.0, &n);
                    Root { r, k: ra.k }
                }
                Pair::WithConstant(x, c) if c >= 0.0 => {
                    let rx = self.root_of(g, x)?;
                    let stacked = self.stack(g, &[rx.r], &shape, &n)?;
                    let r = self.l2(g, stacked, &shape, (c / rx.k) as f32, &n);
                    Root { r, k: rx.k }
                }
                Pair::WithConstant(..) => return None,
            },
            Op::Reduce(Reduce { how, axes }) if matches!(how, Reduction::Sum | Reduction::Mean) => {
                let x = *n.inputs.first()?;
                let rx = self.root_of(g, x)?;
                let xs = &g.tensors[x].shape;
                let count: usize = axes.iter().map(|&d| xs[d]).product();
                let k = if *how == Reduction::Mean {
                    rx.k / count as f64
                } else {
                    rx.k
                };
                let reduce = Op::Reduce(Reduce {
                    how: Reduction::l2(0.0),
                    axes: axes.clone(),
                });
                let r = self.emit(g, &n, reduce, vec![rx.r], shape, "root");
                Root { r, k }
            }
            Op::Reshape | Op::Select(_) | Op::Transpose(_) | Op::Concat(_) => {
                let mut roots = Vec::new();
                for &x in &n.inputs {
                    roots.push(self.root_of(g, x)?);
                }
                let k = roots.first()?.k;
                if roots.iter().any(|r| r.k != k) {
                    return None;
                }
                let inputs = roots.iter().map(|r| r.r).collect();
                let r = self.emit(g, &n, n.op.clone(), inputs, shape, "root");
                Root { r, k }
            }
            _ => return None,
        };
        self.memo.insert(t, root);
        Some(root)
    }

    /// `roots` (each of `shape`) stacked on a new leading axis.
    fn stack(
        &mut self,
        g: &mut Graph,
        roots: &[TensorId],
        shape: &[usize],
        n: &Node,
    ) -> Option<TensorId> {
        let mut one = vec![1];
        one.extend(shape);
        let views: Vec<TensorId> = roots
            .iter()
            .map(|&r| self.emit(g, n, Op::Reshape, vec![r], one.clone(), "stacked"))
            .collect();
        if views.len() == 1 {
            return views.first().copied();
        }
        let mut all = one;
        all[0] = views.len();
        Some(self.emit(g, n, Op::Concat(Concat { axis: 0 }), views, all, "stacked"))
    }

    /// `sqrt(Σ x² + eps)` over the leading axis of `x`.
    fn l2(&mut self, g: &mut Graph, x: TensorId, shape: &[usize], eps: f32, n: &Node) -> TensorId {
        let reduce = Op::Reduce(Reduce {
            how: Reduction::l2(eps),
            axes: vec![0],
        });
        self.emit(g, n, reduce, vec![x], shape.to_vec(), "root")
    }

    /// A new node computing `op` on `inputs` into a new tensor of `shape`,
    /// named after `n` (whose ONNX ops it stands for).
    fn emit(
        &mut self,
        g: &mut Graph,
        n: &Node,
        op: Op,
        inputs: Vec<TensorId>,
        shape: Vec<usize>,
        what: &str,
    ) -> TensorId {
        let output = g.tensors.len();
        g.tensors.push(Tensor {
            name: format!("{}.{what}.{}", g.tensors[n.output].name, self.added.len()),
            shape,
            value: None,
        });
        self.added.push(Node {
            name: format!("{} (for {})", n.name, self.anchor),
            onnx_ops: n.onnx_ops.clone(),
            op,
            inputs,
            output,
        });
        output
    }
}

/// The operands of a binary node whose output has `shape`.
enum Pair {
    /// Two computed tensors of that shape.
    Computed(TensorId, TensorId),
    /// A computed tensor of that shape and a one-value constant.
    WithConstant(TensorId, f64),
}

/// `n`'s two operands as a [`Pair`], if they are one.
fn pair(g: &Graph, n: &Node, shape: &[usize]) -> Option<Pair> {
    let [a, b] = n.inputs[..] else {
        return None;
    };
    let full = |t: TensorId| g.tensors[t].shape == shape;
    match (constant(g, a), constant(g, b)) {
        (None, None) if full(a) && full(b) => Some(Pair::Computed(a, b)),
        (Some(c), None) if full(b) => Some(Pair::WithConstant(b, c)),
        (None, Some(c)) if full(a) => Some(Pair::WithConstant(a, c)),
        _ => None,
    }
}

/// The value of a constant tensor whose elements are all one value.
fn constant(g: &Graph, t: TensorId) -> Option<f64> {
    let v = g.tensors[t].value.as_ref()?;
    let first = *v.data.first()?;
    v.data
        .iter()
        .all(|&e| e == first)
        .then_some(f64::from(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_conforms, floats, int64s, one_node};
    use tract_onnx::pb::NodeProto;

    fn node(op: &str, ins: &[&str], out: &str) -> NodeProto {
        NodeProto {
            name: out.into(),
            op_type: op.into(),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            ..Default::default()
        }
    }

    /// `op` over axis 2 of `x` (axes as an attribute, before opset 18).
    fn reduce_over_time(op: &str, x: &str, out: &str, keepdims: i64) -> NodeProto {
        NodeProto {
            attribute: vec![
                crate::ops::testing::attr_ints("axes", &[2]),
                crate::ops::testing::attr_i("keepdims", keepdims),
            ],
            ..node(op, &[x], out)
        }
    }

    /// `x [1, 4, 16]`, its rows 0..2 and 2..4 squared and added (a
    /// spectrogram's real and imaginary parts), then `tail` on that power.
    fn power_model(tail: Vec<NodeProto>) -> tract_onnx::pb::ModelProto {
        let mut model = one_node(
            "Slice",
            &[1, 4, 16],
            &["s0", "s2", "ax"],
            vec![],
            vec![
                int64s("s0", &[1], &[0]),
                int64s("s2", &[1], &[2]),
                int64s("s4", &[1], &[4]),
                int64s("ax", &[1], &[1]),
                floats("two", &[], &[2.0]),
                floats("eps", &[], &[1e-3]),
            ],
        );
        let graph = model.graph.as_mut().unwrap();
        graph.node.extend([
            node("Slice", &["x", "s2", "s4", "ax"], "im"),
            node("Pow", &["y", "two"], "re2"),
            node("Mul", &["im", "im"], "im2"),
            node("Add", &["re2", "im2"], "power"),
        ]);
        graph.node.extend(tail);
        graph.output[0].name = "out".into();
        model
    }

    /// `log(a² + b² + ε)` (a log spectrogram), and `log(mean_t(a² + b²) +
    /// ε)` (a log band power): the powers become ReduceL2 roots and the
    /// log one table of the root, with the float function unchanged
    /// (`assert_conforms` checks it against tract to 1e-5).
    #[test]
    fn logs_of_sums_of_squares_run_on_their_roots() {
        let spectrogram = power_model(vec![
            node("Add", &["power", "eps"], "power_eps"),
            node("Log", &["power_eps"], "out"),
        ]);
        let mean = reduce_over_time("ReduceMean", "power", "mean_power", 1);
        let band_power = power_model(vec![
            mean,
            node("Add", &["mean_power", "eps"], "mean_eps"),
            node("Log", &["mean_eps"], "out"),
        ]);
        for (what, model, roots) in [
            ("spectrogram", spectrogram, 1),
            ("band power", band_power, 2),
        ] {
            let g = assert_conforms(what, &model, 20.0);
            let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
            let count = |k: &str| kinds.iter().filter(|&&x| x == k).count();
            // The ε joined the last root; no square, power or sum of powers
            // is encoded: the one table left is the log.
            assert_eq!(count("ReduceL2"), roots, "{what}: {kinds:?}");
            assert_eq!(count("Lut"), 1, "{what}: {kinds:?}");
            assert_eq!(count("Add") + count("ReduceSum"), 0, "{what}: {kinds:?}");
        }
    }

    /// A product of two norms under a root (the denominator of a cosine
    /// similarity as PyTorch's legacy exporter writes it: `sqrt(Σa² · Σb²)`):
    /// the product of two ReduceL2 roots, and no square encoded.
    #[test]
    fn a_root_of_a_product_of_sums_of_squares_is_a_product_of_norms() {
        let sum = |x: &str, out: &str| reduce_over_time("ReduceSum", x, out, 0);
        let model = power_model(vec![
            node("Mul", &["y", "y"], "a2"),
            node("Mul", &["im", "im"], "b2"),
            sum("a2", "sa"),
            sum("b2", "sb"),
            node("Mul", &["sa", "sb"], "prod"),
            node("Sqrt", &["prod"], "out"),
        ]);
        // ReduceSum of opset 17 takes its axes as an input; opset 11's
        // attribute form is what this builder writes.
        let mut model = model;
        model.opset_import[0].version = 11;
        let g = assert_conforms("norms' product", &model, 30.0);
        let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
        let count = |k: &str| kinds.iter().filter(|&&x| x == k).count();
        assert_eq!(count("ReduceL2"), 2, "{kinds:?}");
        assert_eq!(count("Mul"), 1, "{kinds:?}");
        assert_eq!(count("ReduceSum"), 0, "{kinds:?}");
    }

    #[test]
    fn an_added_constant_leaves_the_function_for_the_root() {
        let x = Arc::new(Expr::X);
        let eps = Arc::new(Expr::Const(1e-6));
        // log(x + ε) → (ε, log x); 10·log10(ε + x) alike; x read twice: no.
        let log = Expr::Unary(
            Fn1::Log,
            Arc::new(Expr::Binary(Fn2::Add, x.clone(), eps.clone())),
        );
        assert_eq!(
            split_added_constant(&log),
            Some((1e-6, Expr::Unary(Fn1::Log, x.clone())))
        );
        let db = Expr::Binary(
            Fn2::Mul,
            Arc::new(Expr::Const(10.0)),
            Arc::new(Expr::Unary(
                Fn1::Log,
                Arc::new(Expr::Binary(Fn2::Add, eps.clone(), x.clone())),
            )),
        );
        assert_eq!(split_added_constant(&db).map(|(c, _)| c), Some(1e-6));
        let twice = Expr::Unary(
            Fn1::Log,
            Arc::new(Expr::Binary(
                Fn2::Add,
                Arc::new(Expr::Binary(Fn2::Mul, x.clone(), x.clone())),
                eps,
            )),
        );
        assert_eq!(split_added_constant(&twice), None);
        assert!(reads_a_root(&db) && reads_a_root(&Expr::Unary(Fn1::Sqrt, x.clone())));
        assert!(!reads_a_root(&Expr::Unary(Fn1::Exp, x)));
    }
}
