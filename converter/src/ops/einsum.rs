//! ONNX `Einsum` of any number of tensors (`torch.einsum` in hand-written
//! attention, `'bhid,bhjd->bhij'`; more than two as products left to
//! right), lowered onto the ops medq runs: each
//! operand's labels summed away where only it has them (ReduceSum), the
//! rest permuted to `[batch, free, contracted]` (Transpose, views), one
//! product (MatMul, or FullyConnected when the right operand is a constant
//! matrix), and the result permuted to the output's labels. An ellipsis
//! stands for the same dims in every term; diagonals (a label twice in one
//! term) are refused.

use std::collections::HashMap;

use medq::kernels::MAX_MAT_MUL_DEPTH;

use super::fully_connected::FullyConnected;
use super::onnx::{input, Ins};
use super::reduce::{Reduce, Reduction};
use super::transpose::permute;
use crate::error::ConvertError;
use crate::ir::{Array, FusedActivation, Op, TensorId};
use crate::load::node::NodeCtx;
use crate::load::shape::{gather_indices, strides};
use crate::load::tensor::Const;
use crate::load::{Builder, Value};

/// An operand as the lowering holds it: computed, or a constant folded as
/// it goes.
enum Term {
    Act(TensorId),
    Const(Vec<f32>),
}

/// ONNX `Einsum`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let equation: String = ctx
        .string("equation")?
        .ok_or_else(|| ctx.attr_err("equation", "missing"))?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (equation.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.is_empty() || terms.len() != ins.len() {
        return Err(ctx.attr_err("equation", format!("{equation:?}: one term per operand")));
    }
    let mut operands = Vec::new();
    let mut shapes = Vec::new();
    for k in 0..terms.len() {
        let x = input(ctx, ins, k)?;
        shapes.push(b.shape_of(&x.value));
        operands.push(match &x.value {
            Value::Act(id) => Term::Act(*id),
            Value::Const(c) => Term::Const(c.to_f32()),
            Value::Unavailable(why) => return Err(ctx.err(format!("input {k} is {why}"))),
        });
    }
    let bad = |why: String| ctx.attr_err("equation", format!("{equation:?}: {why}"));
    let ellipsis = shapes
        .iter()
        .zip(&terms)
        .filter(|(_, t)| t.contains("..."))
        .map(|(s, t)| (s.len() + 3).saturating_sub(t.chars().count()))
        .max()
        .unwrap_or(0);
    let mut labels = Vec::new();
    for (term, shape) in terms.iter().zip(&shapes) {
        let l = parse(term, shape.len(), ellipsis).map_err(&bad)?;
        labels.push(l);
    }
    let out_labels = match rhs {
        Some(r) => parse(r, usize::MAX, ellipsis).map_err(&bad)?,
        None => implicit_output(&labels, ellipsis),
    };
    let mut size: HashMap<char, usize> = HashMap::new();
    for (l, s) in labels.iter().zip(&shapes) {
        for (&c, &d) in l.iter().zip(s) {
            if *size.entry(c).or_insert(d) != d {
                return Err(bad(format!("label {c:?} has sizes {} and {d}", size[&c])));
            }
        }
    }
    if let Some(c) = out_labels.iter().find(|c| !size.contains_key(c)) {
        return Err(bad(format!("output label {c:?} is in no operand")));
    }
    let out_shape: Vec<usize> = out_labels.iter().map(|c| size[c]).collect();
    let mut parts = Parts {
        b,
        ctx,
        size: &size,
        stage: String::new(),
    };
    let mut operands = operands.into_iter();
    let (mut result, mut result_labels) = match operands.next() {
        Some(first) => (first, labels[0].clone()),
        None => return Err(bad("no operands".into())),
    };
    if labels.len() == 1 {
        let keep = |c: &char| out_labels.contains(c);
        (result, result_labels) = parts.sum_away(result, &labels[0], keep, "a")?;
    }
    // More than one operand: products left to right, each keeping the
    // labels the output or a later operand reads (three-operand linear
    // attention, `'bnhd,bhde,bnh->bnhe'`).
    for (k, next) in operands.enumerate() {
        let later = &labels[k + 2..];
        let needed: Vec<char> = result_labels
            .iter()
            .chain(&labels[k + 1])
            .copied()
            .filter(|c| out_labels.contains(c) || later.iter().any(|l| l.contains(c)))
            .fold(Vec::new(), |mut v, c| {
                if !v.contains(&c) {
                    v.push(c);
                }
                v
            });
        parts.stage = if k == 0 {
            String::new()
        } else {
            format!("step{k}/")
        };
        let pair = [result_labels.clone(), labels[k + 1].clone()];
        (result, result_labels) = parts.product(vec![result, next], &pair, &needed)?;
    }
    let result = match result {
        Term::Act(t) => t,
        Term::Const(_) => return Err(ctx.err("every operand is a constant; fold it before export")),
    };
    let perm: Vec<usize> = out_labels
        .iter()
        .map(|c| result_labels.iter().position(|r| r == c).unwrap_or(0))
        .collect();
    let result_shape: Vec<usize> = result_labels.iter().map(|c| size[c]).collect();
    let t = permute(b, ctx, "to_output", result, &result_shape, &perm)?;
    b.emit(ctx, Op::Reshape, vec![t], out_shape)
}

/// The labels of one term, `...` expanded to the last `used` of `total`
/// ellipsis labels (`rank` the operand's, `usize::MAX` for the output,
/// which takes all of them).
fn parse(term: &str, rank: usize, total: usize) -> Result<Vec<char>, String> {
    let letters = term.replace("...", "");
    if let Some(c) = letters.chars().find(|c| !c.is_ascii_alphabetic()) {
        return Err(format!("{c:?} is not a label"));
    }
    let used = if rank == usize::MAX {
        total
    } else {
        rank.checked_sub(letters.len())
            .filter(|_| term.contains("...") || rank == letters.len())
            .ok_or_else(|| format!("term {term:?} does not fit a rank-{rank} operand"))?
    };
    let mut out = Vec::new();
    for (k, part) in term.split("...").enumerate() {
        if k == 1 {
            out.extend((total - used..total).map(ellipsis_label));
        }
        out.extend(part.chars());
    }
    let mut seen = out.clone();
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!(
            "a label repeats in {term:?} (a diagonal): not supported"
        ));
    }
    Ok(out)
}

/// Labels for ellipsis dims: private-use characters, never ASCII letters.
fn ellipsis_label(k: usize) -> char {
    char::from_u32(0xE000 + k as u32).unwrap_or('\u{E000}')
}

/// ONNX's implicit output: the ellipsis dims, then the letters that appear
/// once, in alphabetical order.
fn implicit_output(labels: &[Vec<char>], ellipsis: usize) -> Vec<char> {
    let mut once: Vec<char> = labels
        .iter()
        .flatten()
        .copied()
        .filter(|c| c.is_ascii_alphabetic())
        .filter(|c| labels.iter().flatten().filter(|d| *d == c).count() == 1)
        .collect();
    once.sort_unstable();
    let mut out: Vec<char> = (0..ellipsis).map(ellipsis_label).collect();
    out.extend(once);
    out
}

/// The IR nodes of one Einsum, named after its ONNX node.
struct Parts<'a, 'b, 'c> {
    b: &'a mut Builder,
    ctx: &'b NodeCtx<'c>,
    size: &'b HashMap<char, usize>,
    /// Prefix of the part names: the product's step in a chain of them.
    stage: String,
}

impl Parts<'_, '_, '_> {
    /// The name of part `p` in this stage.
    fn part(&self, p: &str) -> String {
        format!("{}{p}", self.stage)
    }

    fn shape(&self, labels: &[char]) -> Vec<usize> {
        labels.iter().map(|c| self.size[c]).collect()
    }

    /// `x` (labels `labels`) summed over the labels `keep` rejects; the
    /// result and its labels.
    fn sum_away(
        &mut self,
        x: Term,
        labels: &[char],
        keep: impl Fn(&char) -> bool,
        part: &str,
    ) -> Result<(Term, Vec<char>), ConvertError> {
        let axes: Vec<usize> = (0..labels.len()).filter(|&a| !keep(&labels[a])).collect();
        let kept: Vec<char> = labels.iter().copied().filter(|c| keep(c)).collect();
        if axes.is_empty() {
            return Ok((x, kept));
        }
        let shape = self.shape(labels);
        let out = self.shape(&kept);
        Ok(match x {
            Term::Act(t) => {
                let op = Op::Reduce(Reduce {
                    how: Reduction::Sum,
                    axes: axes.clone(),
                });
                let name = self.part(&format!("{part}_sum"));
                (
                    Term::Act(self.b.emit_part(self.ctx, &name, op, vec![t], out)?),
                    kept,
                )
            }
            Term::Const(v) => {
                let st = strides(&out);
                let dest = gather_indices(&shape, |axis, i| {
                    if axes.contains(&axis) {
                        0
                    } else {
                        i * st[k_of(axis, &axes)]
                    }
                });
                let mut sums = vec![0.0f32; out.iter().product()];
                for (&d, &e) in dest.iter().zip(&v) {
                    sums[d] += e;
                }
                (Term::Const(sums), kept)
            }
        })
    }

    /// `x` (labels `labels`) with its dims in the order `order`, reshaped to
    /// `dims`.
    fn arrange(
        &mut self,
        x: Term,
        labels: &[char],
        order: &[char],
        dims: Vec<usize>,
        part: &str,
    ) -> Result<Term, ConvertError> {
        let perm: Vec<usize> = order
            .iter()
            .map(|c| labels.iter().position(|l| l == c).unwrap_or(0))
            .collect();
        let shape = self.shape(labels);
        Ok(match x {
            Term::Act(t) => {
                let p = permute(self.b, self.ctx, &self.part(part), t, &shape, &perm)?;
                let name = self.part(&format!("{part}/as_matrix"));
                Term::Act(
                    self.b
                        .emit_part(self.ctx, &name, Op::Reshape, vec![p], dims)?,
                )
            }
            Term::Const(v) => {
                let st = strides(&shape);
                let moved: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
                let idx = gather_indices(&moved, |axis, i| i * st[perm[axis]]);
                Term::Const(idx.iter().map(|&i| v[i]).collect())
            }
        })
    }

    /// The product of two operands; the result and its labels
    /// (`[batch, free of a, free of b]`).
    fn product(
        &mut self,
        mut operands: Vec<Term>,
        labels: &[Vec<char>],
        out: &[char],
    ) -> Result<(Term, Vec<char>), ConvertError> {
        let (la, lb) = (&labels[0], &labels[1]);
        let b_op = operands.pop();
        let a_op = operands.pop();
        let (Some(a), Some(bt)) = (a_op, b_op) else {
            return Err(self.ctx.err("two operands expected"));
        };
        let keep_a = |c: &char| lb.contains(c) || out.contains(c);
        let keep_b = |c: &char| la.contains(c) || out.contains(c);
        let (a, la) = self.sum_away(a, la, keep_a, "a")?;
        let (bt, lb) = self.sum_away(bt, lb, keep_b, "b")?;
        let batch: Vec<char> = out
            .iter()
            .copied()
            .filter(|c| la.contains(c) && lb.contains(c))
            .collect();
        let contract: Vec<char> = la
            .iter()
            .copied()
            .filter(|c| lb.contains(c) && !out.contains(c))
            .collect();
        let free_a: Vec<char> = la.iter().copied().filter(|c| !lb.contains(c)).collect();
        let free_b: Vec<char> = lb.iter().copied().filter(|c| !la.contains(c)).collect();
        let n_of = |l: &[char]| -> usize { l.iter().map(|c| self.size[c]).product() };
        let (nb, m, k, n) = (n_of(&batch), n_of(&free_a), n_of(&contract), n_of(&free_b));
        if k > MAX_MAT_MUL_DEPTH {
            return Err(self.ctx.err(format!(
                "contracts {k} terms; medq's int8 MatMul sums at most {MAX_MAT_MUL_DEPTH}"
            )));
        }
        let mut result_labels = batch.clone();
        result_labels.extend(&free_a);
        result_labels.extend(&free_b);
        let result_shape = self.shape(&result_labels);
        let order_a: Vec<char> = [&batch[..], &free_a, &contract].concat();
        let order_b: Vec<char> = [&batch[..], &contract, &free_b].concat();
        // A constant matrix on the right of a computed operand, no batch: a
        // FullyConnected with per-channel weights.
        if let (Term::Act(_), Term::Const(_), true) = (&a, &bt, batch.is_empty()) {
            let mut dims = self.shape(&free_a);
            dims.push(k);
            let x = self.arrange(a, &la, &order_a, dims, "a")?;
            let Term::Const(w) = self.arrange(bt, &lb, &order_b, vec![k, n], "b")? else {
                return Err(self.ctx.err("constant weights expected"));
            };
            let Term::Act(x) = x else {
                return Err(self.ctx.err("a computed operand expected"));
            };
            // FullyConnected weights are [N, K].
            let weights = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
            let op = Op::FullyConnected(FullyConnected {
                weights: Array::new(vec![n, k], weights),
                bias: vec![0.0; n],
                activation: FusedActivation::None,
            });
            let mut fc_out = self.shape(&free_a);
            fc_out.push(n);
            let y = self
                .b
                .emit_part(self.ctx, &self.part("product"), op, vec![x], fc_out)?;
            let r = self.b.emit_part(
                self.ctx,
                &self.part("product/labels"),
                Op::Reshape,
                vec![y],
                result_shape,
            )?;
            return Ok((Term::Act(r), result_labels));
        }
        let x = self.arrange(a, &la, &order_a, vec![nb, m, k], "a")?;
        let y = self.arrange(bt, &lb, &order_b, vec![nb, k, n], "b")?;
        let mut ids = Vec::new();
        for (t, name, dims) in [(x, "a", vec![nb, m, k]), (y, "b", vec![nb, k, n])] {
            ids.push(match t {
                Term::Act(id) => id,
                Term::Const(v) => {
                    let name = format!("{}/{}", self.ctx.name, self.part(name));
                    self.b.const_tensor(&name, &Const::f32(dims, v))?
                }
            });
        }
        let op = Op::MatMul(super::mat_mul::MatMul {
            alpha: 1.0,
            activation: FusedActivation::None,
        });
        let y = self
            .b
            .emit_part(self.ctx, &self.part("product"), op, ids, vec![nb, m, n])?;
        let r = self.b.emit_part(
            self.ctx,
            &self.part("product/labels"),
            Op::Reshape,
            vec![y],
            result_shape,
        )?;
        Ok((Term::Act(r), result_labels))
    }
}

/// The position of kept axis `axis` among the kept axes (those not in
/// `summed`).
fn k_of(axis: usize, summed: &[usize]) -> usize {
    axis - summed.iter().filter(|&&s| s < axis).count()
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_conforms, attr_s, load, node_of, weights};

    fn kinds(g: &crate::ir::Graph) -> Vec<&'static str> {
        g.nodes
            .iter()
            .map(|n| n.op.kind())
            .filter(|k| *k != "Reshape")
            .collect()
    }

    #[test]
    fn einsum_of_two_computed_operands_is_a_mat_mul() {
        for (equation, shape, want) in [
            ("bij,bjk->bik", &[1, 4, 4][..], &["MatMul"][..]),
            // Attention's scores: q·kᵀ over heads.
            ("bhid,bhjd->bhij", &[1, 2, 5, 3], &["Transpose", "MatMul"]),
            (
                "...ij,...kj->...ik",
                &[1, 2, 4, 3],
                &["Transpose", "MatMul"],
            ),
        ] {
            let model = node_of(
                "Einsum",
                shape,
                &["x", "x"],
                vec![attr_s("equation", equation)],
                vec![],
            );
            let g = assert_conforms(equation, &model, 30.0);
            assert_eq!(kinds(&g), want, "{equation}");
        }
    }

    #[test]
    fn einsum_of_three_operands_is_a_chain_of_products() {
        // x·x·x over a shared batch (three MatMuls' worth of labels), and
        // linear attention's normaliser shape: the third operand a weight.
        let chain = node_of(
            "Einsum",
            &[1, 4, 4],
            &["x", "x", "x"],
            vec![attr_s("equation", "bij,bjk,bkl->bil")],
            vec![],
        );
        let g = assert_conforms("bij,bjk,bkl->bil", &chain, 25.0);
        assert_eq!(kinds(&g), ["MatMul", "MatMul"]);
        let scaled = node_of(
            "Einsum",
            &[1, 3, 4],
            &["x", "x", "w"],
            vec![attr_s("equation", "bnd,bnd,de->bne")],
            vec![weights("w", &[4, 2], 24)],
        );
        assert_conforms("bnd,bnd,de->bne", &scaled, 25.0);
    }

    #[test]
    fn einsum_with_constant_weights() {
        // On the right: a FullyConnected; on the left: a MatMul.
        let right = node_of(
            "Einsum",
            &[1, 5, 6],
            &["x", "w"],
            vec![attr_s("equation", "bld,dk->blk")],
            vec![weights("w", &[6, 3], 21)],
        );
        let g = assert_conforms("bld,dk->blk", &right, 30.0);
        assert_eq!(kinds(&g), ["FullyConnected"]);
        let left = node_of(
            "Einsum",
            &[1, 4, 5],
            &["w", "x"],
            vec![attr_s("equation", "ij,bjk->bik")],
            vec![weights("w", &[3, 4], 22)],
        );
        let g = assert_conforms("ij,bjk->bik", &left, 30.0);
        assert_eq!(kinds(&g), ["MatMul"]);
        // A label only the constant has is summed at conversion time.
        let summed = node_of(
            "Einsum",
            &[1, 4, 5],
            &["w", "x"],
            vec![attr_s("equation", "ij,bjk->bk")],
            vec![weights("w", &[3, 4], 23)],
        );
        let g = assert_conforms("ij,bjk->bk", &summed, 30.0);
        assert_eq!(kinds(&g), ["MatMul"]);
    }

    #[test]
    fn einsum_of_one_operand_transposes_and_sums() {
        for (equation, want) in [
            ("bij->bji", &["Transpose"][..]),
            ("bij->bi", &["ReduceSum"][..]),
            // Implicit output: the labels in alphabetical order.
            ("bji", &["Transpose"][..]),
        ] {
            let model = node_of(
                "Einsum",
                &[1, 3, 4],
                &["x"],
                vec![attr_s("equation", equation)],
                vec![],
            );
            let g = assert_conforms(equation, &model, 30.0);
            assert_eq!(kinds(&g), want, "{equation}");
        }
    }

    #[test]
    fn diagonals_and_unknown_labels_are_refused_by_name() {
        for (equation, why) in [("bii->bi", "diagonal"), ("bij,bjk->biz", "in no operand")] {
            let model = node_of(
                "Einsum",
                &[1, 3, 3],
                &["x", "x"][..1 + usize::from(equation.contains(','))],
                vec![attr_s("equation", equation)],
                vec![],
            );
            let err = load(&model).unwrap_err().to_string();
            assert!(
                err.contains("the_Einsum") && err.contains(why),
                "{equation}: {err}"
            );
        }
    }
}
