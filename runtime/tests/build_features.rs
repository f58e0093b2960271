//! The runtime's cargo features: `op-*` choose the kernels that are built in,
//! `error-reasons` keeps the text of the validation rules,
//! `int16-activations` lets a model hold int16 activations.
//!
//! `cargo test` runs these with every feature (the default). `test.sh` runs
//! them again with a firmware-like selection
//! (`--no-default-features --features std,op-conv,op-max-pool,op-reshape`),
//! so both sides of each feature are exercised.

mod format_models;

use format_models::*;
use medq::format::layout::params;
use medq::{is_built_in, AlignedBuf, Error, Model, OpCode, Writer};

/// A fixture's bytes, not validated by the writer (which would refuse ops
/// left out of this build before `Model::parse` could be asked).
fn unvalidated(w: Writer) -> AlignedBuf {
    AlignedBuf::from_slice(
        &w.finish_unvalidated()
            .expect("fixture within format limits"),
    )
}

/// `Model::parse` on a fixture whose ops are `ops`, in order: it either
/// accepts the model or names the first op whose kernel is left out.
fn check_fixture(bytes: &[u8], ops: &[OpCode]) {
    let expected = match ops.iter().position(|&op| !is_built_in(op)) {
        Some(index) => Err(Error::OpNotBuiltIn {
            index: index as u16,
            opcode: ops[index],
        }),
        None => Ok(()),
    };
    assert_eq!(Model::parse(bytes).map(|_| ()), expected);
}

#[test]
fn a_model_parses_exactly_when_all_its_kernels_are_built_in() {
    use OpCode::*;
    // The op order of the fixtures in `format_models`.
    let pipeline = unvalidated(pipeline_1d());
    check_fixture(
        pipeline.as_slice(),
        &[
            Conv, MaxPool, Reshape, Add, Concat, Pad, Mul, Reshape, AvgPool,
        ],
    );
    let head = unvalidated(fc_lut_softmax());
    check_fixture(head.as_slice(), &[FullyConnected, Lut, Softmax]);
}

#[test]
fn refusals_carry_the_rule_text_only_with_error_reasons() {
    // A zero stride on the pipeline's first op, a Conv.
    let good = unvalidated(pipeline_1d());
    let at = param_word(good.as_slice(), 0, params::conv::STRIDE_W);
    let bad = patched_u32(good.as_slice(), at, 0);
    match Model::parse(bad.as_slice()) {
        Err(Error::BadOp { index: 0, reason }) if is_built_in(OpCode::Conv) => {
            assert_eq!(
                reason.is_empty(),
                !cfg!(feature = "error-reasons"),
                "{reason:?}"
            );
        }
        Err(Error::OpNotBuiltIn { index: 0, .. }) if !is_built_in(OpCode::Conv) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn int16_models_parse_exactly_with_int16_activations_and_their_kernels() {
    use OpCode::*;
    let fixtures = [
        (
            unvalidated(int16_pipeline()),
            &[
                Requantize,
                Conv,
                MaxPool,
                Reshape,
                FullyConnected,
                Requantize,
            ][..],
        ),
        (unvalidated(int16_softmax()), &[Requantize, Softmax][..]),
    ];
    for (bytes, ops) in fixtures {
        if cfg!(feature = "int16-activations") {
            check_fixture(bytes.as_slice(), ops);
            continue;
        }
        // Without the feature the first int16 tensor (`a`, tensor 1 in both)
        // is refused as the tensor table is read, before any op.
        match Model::parse(bytes.as_slice()) {
            Err(Error::BadTensor { index: 1, reason }) => assert_eq!(
                reason,
                if cfg!(feature = "error-reasons") {
                    "int16 activations are not built in (feature int16-activations)"
                } else {
                    ""
                }
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
}
