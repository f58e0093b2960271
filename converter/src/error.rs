//! The converter's error type. Every message names what the user can act on:
//! the file, or the ONNX node (name, op type, opset) and attribute at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The model file (or another input file) could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An output could not be written (nothing was: the write is atomic).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The bytes are not a decodable ONNX `ModelProto`.
    #[error("{} is not an ONNX model: {reason}", path.display())]
    NotOnnx { path: PathBuf, reason: String },

    /// An op type medq has no kernel for.
    #[error(
        "node \"{node}\" (op {op_type}{}, opset {opset}) is not supported by medq. Supported ops: {}",
        in_domain(domain),
        supported.join(", ")
    )]
    UnsupportedOp {
        node: String,
        op_type: String,
        /// The node's domain; empty for the default (`ai.onnx`).
        domain: String,
        /// The opset the model imports for the node's domain.
        opset: i64,
        supported: &'static [&'static str],
    },

    /// A supported op used with an attribute value (or operand kind) medq
    /// cannot express, e.g. a 3-D Conv kernel or a reflect-mode Pad.
    #[error("node \"{node}\" (op {op_type}): attribute {attribute}: {reason}")]
    UnsupportedAttribute {
        node: String,
        op_type: String,
        attribute: String,
        reason: String,
    },

    /// A node whose operands are malformed or of a kind medq cannot handle
    /// (non-constant weights, mismatched shapes, missing inputs...).
    #[error("node \"{node}\" (op {op_type}): {reason}")]
    InvalidNode {
        node: String,
        op_type: String,
        reason: String,
    },

    /// A problem with the model as a whole: its inputs, outputs, opset, order.
    #[error("invalid model: {0}")]
    InvalidModel(String),

    /// The tract float reference failed to build or run.
    #[error("float reference (tract): {0}")]
    FloatRef(String),

    /// Calibration samples or labels that do not fit the model.
    #[error("{}: {reason}", path.display())]
    BadSamples { path: PathBuf, reason: String },

    /// Options that do not fit the model: an `--input-shape` for no input, a
    /// file count that is not one per input, an unknown output name.
    #[error("{0}")]
    Usage(String),

    /// No representative data was given.
    #[error("{0}")]
    CalibrationRequired(&'static str),

    /// The runtime refused the file the converter produced (a converter bug).
    #[error("the written model does not validate: {0}")]
    Format(medq::Error),

    /// Pruning could not reach its target, or found nothing to prune.
    #[error("pruning: {0}")]
    Pruning(String),

    /// A tensor or node that cannot be quantized.
    #[error("cannot quantize \"{node}\": {reason}")]
    Quantization { node: String, reason: String },
}

/// `, domain D` for an op outside the default domain.
fn in_domain(domain: &str) -> String {
    if domain.is_empty() || domain == "ai.onnx" {
        String::new()
    } else {
        format!(", domain {domain}")
    }
}

/// The longest reason a node's error keeps. A malformed attribute can hold
/// millions of values (a fuzzer found a `pads` of 25 million): the message
/// names the problem and the first values, not all of them.
const MAX_REASON: usize = 600;

/// `reason`, cut at [`MAX_REASON`] bytes (on a character boundary) with the
/// length it had.
fn brief(reason: String) -> String {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… (cut: {} characters in all)",
        &reason[..end],
        reason.len()
    )
}

impl ConvertError {
    pub(crate) fn node(node: &str, op_type: &str, reason: impl Into<String>) -> ConvertError {
        ConvertError::InvalidNode {
            node: node.to_string(),
            op_type: op_type.to_string(),
            reason: brief(reason.into()),
        }
    }

    pub(crate) fn attribute(
        node: &str,
        op_type: &str,
        attribute: &str,
        reason: impl Into<String>,
    ) -> ConvertError {
        ConvertError::UnsupportedAttribute {
            node: node.to_string(),
            op_type: op_type.to_string(),
            attribute: attribute.to_string(),
            reason: brief(reason.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_cut_and_say_so() {
        let values = format!("{:?}", vec![0u8; 25_000]);
        let e = ConvertError::attribute("/Pad", "Pad", "pads", format!("found {values}"));
        let text = e.to_string();
        assert!(text.len() < MAX_REASON + 200, "{} characters", text.len());
        assert!(text.contains("found [0, 0"));
        assert!(text.ends_with(&format!("(cut: {} characters in all)", values.len() + 6)));
        // Short reasons are kept whole.
        let e = ConvertError::node("/Conv", "Conv", "kernel_shape [3, 3] is 2-D");
        assert!(e.to_string().ends_with("kernel_shape [3, 3] is 2-D"));
    }
}
