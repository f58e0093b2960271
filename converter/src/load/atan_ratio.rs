//! `Atan(Div(a, b))` of two computed tensors, as PyTorch exports
//! `torch.atan2` (both exporters, before the `Where`s that correct the
//! quadrant), computed on a ratio bounded to [0, 1]:
//!
//! ```text
//! t = atan(min(|a|, |b|) / max(|a|, |b|))       in [0, π/4]
//! u = |a| > |b| ? π/2 − t : t                    |atan(a / b)|, in [0, π/2]
//! v = b < 0 ? −u : u
//! y = a < 0 ? −v : v                             atan(a / b)
//! ```
//!
//! The quotient `a / b` itself is unbounded where `b` nears zero, and no
//! int8 encoding holds it (an atan2 export was 7.6 dB from its float model);
//! the bounded ratio is as exact in int8 as its operands are. The sign
//! conditions compare with zero, which every activation encoding holds
//! exactly, and where `|a|` and `|b|` are close both branches give π/4. The
//! float reference runs the same graph, so every tensor it adds is
//! calibrated.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{GraphProto, NodeProto, TensorProto};

use super::qdq::float_tensor;

/// `g` with every `Atan` of a `Div` by a computed tensor replaced by the
/// bounded form; `None` when it has none (or the opset predates `Where`).
pub fn bounded_atan_ratios(g: &GraphProto, opset: i64) -> Option<GraphProto> {
    if opset < 9 {
        return None;
    }
    let default_domain = |n: &NodeProto| n.domain.is_empty() || n.domain == "ai.onnx";
    let constants = crate::ops::pointwise::constant_names(g);
    let divs: HashMap<&str, &NodeProto> = g
        .node
        .iter()
        .filter(|n| n.op_type == "Div" && default_domain(n) && n.input.len() == 2)
        .filter(|n| !constants.contains(n.input[1].as_str()))
        .filter_map(|n| Some((n.output.first()?.as_str(), n)))
        .collect();
    let readers = crate::ops::pointwise::consumers(g);
    let graph_outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let quotient = |n: &NodeProto| {
        let x = n.input.first()?;
        (n.op_type == "Atan" && default_domain(n) && n.output.len() == 1)
            .then(|| divs.get(x.as_str()).copied())
            .flatten()
    };
    let rewritten: Vec<(&NodeProto, &NodeProto)> = g
        .node
        .iter()
        .filter_map(|n| Some((n, quotient(n)?)))
        .collect();
    if rewritten.is_empty() {
        return None;
    }
    // A Div only the Atan read goes with it.
    let dropped: HashSet<&str> = rewritten
        .iter()
        .filter_map(|(_, div)| div.output.first())
        .map(String::as_str)
        .filter(|q| readers.get(q).is_some_and(|r| r.len() == 1) && !graph_outputs.contains(q))
        .collect();
    let mut out = g.clone();
    out.node.clear();
    for n in &g.node {
        if n.op_type == "Div"
            && n.output
                .first()
                .is_some_and(|o| dropped.contains(o.as_str()))
        {
            continue;
        }
        match rewritten.iter().find(|(atan, _)| std::ptr::eq(*atan, n)) {
            Some((atan, div)) => {
                let (nodes, constants) = bounded(atan, div);
                out.node.extend(nodes);
                out.initializer.extend(constants);
            }
            None => out.node.push(n.clone()),
        }
    }
    Some(out)
}

/// The nodes and constants computing `atan`'s output from `div`'s operands.
fn bounded(atan: &NodeProto, div: &NodeProto) -> (Vec<NodeProto>, Vec<TensorProto>) {
    let prefix = format!("{}/medq_bounded_ratio", atan.name);
    let name = |s: &str| format!("{prefix}/{s}");
    let (a, b) = (div.input[0].as_str(), div.input[1].as_str());
    let (half_pi, zero) = (name("half_pi"), name("zero"));
    let y = atan.output[0].as_str();
    let node = |op: &str, out: &str, inputs: &[&str]| NodeProto {
        op_type: op.into(),
        name: format!("{prefix}/{out}"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![if out == y { out.into() } else { name(out) }],
        ..NodeProto::default()
    };
    let t = |s: &str| name(s);
    let nodes = vec![
        node("Abs", "abs_a", &[a]),
        node("Abs", "abs_b", &[b]),
        node("Min", "low", &[&t("abs_a"), &t("abs_b")]),
        node("Max", "high", &[&t("abs_a"), &t("abs_b")]),
        node("Div", "ratio", &[&t("low"), &t("high")]),
        node("Atan", "atan_ratio", &[&t("ratio")]),
        node("Greater", "steep", &[&t("abs_a"), &t("abs_b")]),
        node("Sub", "complement", &[&half_pi, &t("atan_ratio")]),
        node(
            "Where",
            "magnitude",
            &[&t("steep"), &t("complement"), &t("atan_ratio")],
        ),
        node("Less", "b_negative", &[b, &zero]),
        node("Neg", "negated", &[&t("magnitude")]),
        node(
            "Where",
            "signed_by_b",
            &[&t("b_negative"), &t("negated"), &t("magnitude")],
        ),
        node("Less", "a_negative", &[a, &zero]),
        node("Neg", "negated_again", &[&t("signed_by_b")]),
        node(
            "Where",
            y,
            &[&t("a_negative"), &t("negated_again"), &t("signed_by_b")],
        ),
    ];
    let constants = vec![
        float_tensor(&half_pi, &[], vec![std::f32::consts::FRAC_PI_2]),
        float_tensor(&zero, &[], vec![0.0]),
    ];
    (nodes, constants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: format!("/{op}"),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..NodeProto::default()
        }
    }

    /// `y = atan(a / b)` by the rewritten graph's own formula, in f64.
    fn bounded_formula(a: f64, b: f64) -> f64 {
        let (aa, ab) = (a.abs(), b.abs());
        let t = (aa.min(ab) / aa.max(ab)).atan();
        let u = if aa > ab {
            std::f64::consts::FRAC_PI_2 - t
        } else {
            t
        };
        let v = if b < 0.0 { -u } else { u };
        if a < 0.0 {
            -v
        } else {
            v
        }
    }

    #[test]
    fn the_bounded_form_is_atan_of_the_quotient_in_every_quadrant() {
        for a in [-3.0, -1.0, -0.25, 0.0, 0.5, 1.0, 7.0] {
            for b in [-2.0, -1.0, -0.1, 0.1, 1.0, 4.0] {
                let want = f64::atan(a / b);
                let got = bounded_formula(a, b);
                assert!(
                    (want - got).abs() < 1e-12,
                    "atan({a} / {b}): {got} vs {want}"
                );
            }
        }
        // A zero divisor: ±π/2 by the dividend's sign, as atan(±inf).
        assert_eq!(bounded_formula(2.0, 0.0), std::f64::consts::FRAC_PI_2);
        assert_eq!(bounded_formula(-2.0, 0.0), -std::f64::consts::FRAC_PI_2);
    }

    #[test]
    fn an_atan_of_a_quotient_of_computed_tensors_is_rewritten() {
        let g = GraphProto {
            node: vec![
                node("Div", &["a", "b"], "q"),
                node("Atan", &["q"], "y"),
                node("Div", &["a", "c"], "scaled"),
                node("Atan", &["scaled"], "z"),
            ],
            initializer: vec![float_tensor("c", &[], vec![2.0])],
            ..GraphProto::default()
        };
        let out = bounded_atan_ratios(&g, 17).unwrap();
        let ops: Vec<&str> = out.node.iter().map(|n| n.op_type.as_str()).collect();
        // The first pair becomes the bounded form (its Div dropped), ending
        // in a Where that writes `y`; a Div by a constant is left alone.
        assert_eq!(ops.iter().filter(|&&o| o == "Where").count(), 3);
        assert_eq!(ops[ops.len() - 2..], ["Div", "Atan"]);
        assert!(out.node.iter().all(|n| n.output[0] != "q"));
        let last_where = out.node.iter().rfind(|n| n.op_type == "Where").unwrap();
        assert_eq!(last_where.output, ["y"]);
        // Every input is produced, an initializer, or a graph input.
        let known: HashSet<&str> = out
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str))
            .chain(out.initializer.iter().map(|t| t.name.as_str()))
            .chain(["a", "b"])
            .collect();
        for n in &out.node {
            for i in &n.input {
                assert!(known.contains(i.as_str()), "{} reads unknown {i}", n.name);
            }
        }
        // Nothing to do: no Atan of a quotient, or an opset without Where.
        assert!(bounded_atan_ratios(&GraphProto::default(), 17).is_none());
        assert!(bounded_atan_ratios(&g, 8).is_none());
    }
}
