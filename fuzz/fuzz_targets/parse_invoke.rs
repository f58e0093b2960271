//! Parse, then run what was accepted on inputs taken from the same bytes: a
//! validated model must run without an error or a panic (the runtime's
//! promise: once `Model::parse` accepts a file, running it cannot fail).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medq::{AlignedBuf, Interpreter, Model, PreparedOp};

fuzz_target!(|data: &[u8]| {
    let buf = AlignedBuf::from_slice(data);
    let Ok(model) = Model::parse(buf.as_slice()) else {
        return;
    };
    // The arena size is the caller's choice; a hostile header may ask for GBs.
    if model.arena_len() > 1 << 20 || model.op_count() > 4096 {
        return;
    }
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan)
        .expect("a validated model gets an interpreter with an arena of its size");
    for i in 0..interp.input_count() {
        let input = interp.input_mut(i).expect("input index in range");
        for (k, v) in input.iter_mut().enumerate() {
            *v = data.get(k % data.len().max(1)).copied().unwrap_or(0) as i8;
        }
    }
    interp
        .invoke()
        .expect("a validated model cannot fail to run");
    // Every output, int8 or int16, through the path for either type.
    for i in 0..interp.output_count() {
        let n = model.output_info(i).map_or(0, |t| t.numel());
        interp
            .output_f32(i, &mut vec![0.0; n])
            .expect("a validated output reads back");
    }
});
