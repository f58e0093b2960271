//! One ONNX node being converted: its identity (for error messages) and typed
//! attribute access.

use std::collections::HashSet;

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

use crate::error::ConvertError;

pub struct NodeCtx<'a> {
    pub pb: &'a NodeProto,
    /// The ONNX node name, or `<op_type>_<index>` when the model left it empty.
    pub name: String,
    pub op: &'a str,
    pub opset: i64,
    /// Names some node reads or the graph outputs; `None` treats every named
    /// output as read (unit tests that build a lone node).
    read: Option<&'a HashSet<&'a str>>,
}

impl<'a> NodeCtx<'a> {
    pub fn new(pb: &'a NodeProto, index: usize, opset: i64) -> NodeCtx<'a> {
        let name = if pb.name.is_empty() {
            format!("{}_{index}", pb.op_type)
        } else {
            pb.name.clone()
        };
        NodeCtx {
            pb,
            name,
            op: &pb.op_type,
            opset,
            read: None,
        }
    }

    /// Tell the node which names the rest of the graph reads, so that
    /// [`Self::output_used`] can skip outputs nobody reads.
    pub fn reading(mut self, read: &'a HashSet<&'a str>) -> NodeCtx<'a> {
        self.read = Some(read);
        self
    }

    fn output_named(&self, k: usize) -> bool {
        self.pb.output.get(k).is_some_and(|o| !o.is_empty())
    }

    /// Whether output `k` is worth computing: it is named and read by a
    /// node or the graph. Exporters name outputs nobody reads (PyTorch names
    /// an RNN's `Y` even when only `Y_h` is used), and computing those would
    /// cost time and arena. A node none of whose outputs is read counts all
    /// its named outputs as used, so that it still converts.
    pub fn output_used(&self, k: usize) -> bool {
        let Some(read) = self.read else {
            return self.output_named(k);
        };
        let is_read = |k: usize| {
            self.pb
                .output
                .get(k)
                .is_some_and(|o| !o.is_empty() && read.contains(o.as_str()))
        };
        is_read(k) || (self.output_named(k) && !(0..self.pb.output.len()).any(is_read))
    }

    pub fn err(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError::node(&self.name, self.op, reason)
    }

    pub fn attr_err(&self, attribute: &str, reason: impl Into<String>) -> ConvertError {
        ConvertError::attribute(&self.name, self.op, attribute, reason)
    }

    /// The output the lowering returns: the first, unless the op table
    /// ([`crate::ops::ONNX_OPS`]) says medq computes several (an RNN's `Y`
    /// and `Y_h`); then the first of them that is used.
    pub fn primary_output(&self) -> usize {
        let n = crate::ops::onnx_op(self.op).map_or(1, |op| op.outputs.0);
        (0..n).find(|&k| self.output_used(k)).unwrap_or(0)
    }

    /// The primary output's name (every op medq converts has one).
    pub fn output(&self) -> Result<&'a str, ConvertError> {
        let (n, what) = crate::ops::onnx_op(self.op).map_or((1, ""), |op| op.outputs);
        match self.pb.output.get(self.primary_output()) {
            Some(o) if !o.is_empty() => Ok(o),
            _ if n > 1 => Err(self.err(format!(
                "medq computes outputs 0 to {} ({what}) of {}, and this node outputs none of them",
                n - 1,
                self.op
            ))),
            _ => Err(self.err("the node has no output")),
        }
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.pb.attribute.iter().find(|a| a.name == name)
    }

    /// Check the declared type; exporters that leave it UNDEFINED are trusted.
    fn typed(
        &self,
        name: &str,
        want: AttributeType,
    ) -> Result<Option<&'a AttributeProto>, ConvertError> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if a.r#type == want as i32 || a.r#type == AttributeType::Undefined as i32 => {
                Ok(Some(a))
            }
            Some(a) => Err(self.attr_err(
                name,
                format!(
                    "expected an attribute of type {}, found {}",
                    want.as_str_name(),
                    AttributeType::try_from(a.r#type)
                        .map(|t| t.as_str_name())
                        .unwrap_or("UNKNOWN")
                ),
            )),
        }
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, ConvertError> {
        Ok(self
            .typed(name, AttributeType::Int)?
            .map_or(default, |a| a.i))
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, ConvertError> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32, ConvertError> {
        Ok(self
            .typed(name, AttributeType::Float)?
            .map_or(default, |a| a.f))
    }

    pub fn opt_float(&self, name: &str) -> Result<Option<f32>, ConvertError> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ConvertError> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, ConvertError> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ConvertError> {
        Ok(self
            .typed(name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ConvertError> {
        Ok(self.typed(name, AttributeType::Strings)?.map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        }))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, ConvertError> {
        match self.typed(name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(a) => {
                a.t.as_ref()
                    .map(Some)
                    .ok_or_else(|| self.attr_err(name, "the tensor attribute is empty"))
            }
        }
    }

    /// Non-negative window-like integers (strides, dilations, kernel sizes).
    pub fn usizes(&self, name: &str) -> Result<Option<Vec<usize>>, ConvertError> {
        match self.ints(name)? {
            None => Ok(None),
            Some(v) => v
                .iter()
                .map(|&x| {
                    usize::try_from(x)
                        .map_err(|_| self.attr_err(name, format!("negative value in {v:?}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }
}

/// Normalize a possibly negative axis against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = i64::try_from(rank).ok()?;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        usize::try_from(a).ok()
    } else {
        None
    }
}
