//! `op-table`: print the README's table of supported ONNX ops, generated
//! from the converter's op registry (`medq_converter::ops::ONNX_OPS`).
//! Paste it between README.md's `<!-- op-table -->` markers; a test fails
//! while the two differ.

fn main() {
    print!("{}", medq_converter::ops::markdown_table());
}
