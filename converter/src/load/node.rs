//! One ONNX node being converted: its identity (for error messages) and typed
//! attribute access.

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

use crate::error::ConvertError;

pub struct NodeCtx<'a> {
    pub pb: &'a NodeProto,
    /// The ONNX node name, or `<op_type>_<index>` when the model left it empty.
    pub name: String,
    pub op: &'a str,
    pub opset: i64,
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
        }
    }

    pub fn err(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError::node(&self.name, self.op, reason)
    }

    pub fn attr_err(&self, attribute: &str, reason: impl Into<String>) -> ConvertError {
        ConvertError::attribute(&self.name, self.op, attribute, reason)
    }

    /// Which output medq computes, and what it is: the first, unless the
    /// op table ([`crate::ops::ONNX_OPS`]) says otherwise.
    pub fn primary_output(&self) -> usize {
        crate::ops::onnx_op(self.op).map_or(0, |op| op.output.0)
    }

    /// The computed output's name (every op medq converts has one).
    pub fn output(&self) -> Result<&'a str, ConvertError> {
        let (k, what) = crate::ops::onnx_op(self.op).map_or((0, ""), |op| op.output);
        match self.pb.output.get(k) {
            Some(o) if !o.is_empty() => Ok(o),
            _ if k > 0 => Err(self.err(format!(
                "medq computes only output {k} ({what}) of {}, and this node does not output it",
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
