//! Instructions per inference of any `.mq` file on a Cortex-M4 with the DSP
//! kernels (QEMU mps2-an386, `-icount shift=0`): what `zoo-sweep --m4`
//! records as `m4_instructions`.
//!
//! The file is read over semihosting from `model.mq` in QEMU's working
//! directory (at most 1 MiB; an arena of at most 2 MiB), every input is
//! filled with its zero point (the kernels' cost does not depend on the
//! data: `invoke_cost` checks it), and one inference is timed. Then a second
//! inference prints each op's share, one line each, `model_cost_op {"op": k,
//! "opcode": "Conv", "instructions": n}` (the observer's own reads included),
//! then `model_cost_spare {"instructions": N, "spare": 16384}`, one inference
//! with 16 KiB of arena past the plan (where packed convs decode their
//! weights), and last `model_cost {"instructions": N, "ops": K, "arena": A}`, or
//! `model_cost {"error": "…"}` with exit code 1.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{nr, syscall};
use medq::{Interpreter, Model, PreparedOp};
use medq_qemu_bench::{exit, hprintln, Counter};

const MODEL_CAP: usize = 1 << 20;
const ARENA_CAP: usize = 2 << 20;
const OPS_CAP: usize = 1024;

/// 16-byte aligned storage, as `Model::parse` and the arena want.
#[repr(C, align(16))]
struct Aligned<const N: usize>([u8; N]);

fn fail(why: &str) -> ! {
    hprintln!("model_cost {{\"error\": \"{}\"}}", why);
    exit(false)
}

/// Reads `model.mq` from the host into `buf`; its length.
fn read_model(buf: &mut [u8]) -> Option<usize> {
    let name = b"model.mq\0";
    // SAFETY: semihosting OPEN/FLEN/READ/CLOSE take a pointer and lengths
    // that describe `name` and `buf`, which outlive the calls; the host
    // writes at most `buf.len()` bytes into `buf`.
    unsafe {
        let handle = syscall!(OPEN, name.as_ptr(), nr::open::R_BINARY, name.len() - 1);
        if handle == usize::MAX {
            return None;
        }
        let len = syscall!(FLEN, handle);
        let ok = len <= buf.len() && syscall!(READ, handle, buf.as_mut_ptr(), len) == 0;
        syscall!(CLOSE, handle);
        ok.then_some(len)
    }
}

#[entry]
fn main() -> ! {
    let Some(cp) = cortex_m::Peripherals::take() else {
        fail("no peripherals")
    };
    let counter = Counter::start(cp.SYST);
    let Some(file) = cortex_m::singleton!(: Aligned<MODEL_CAP> = Aligned([0; MODEL_CAP])) else {
        fail("no model buffer")
    };
    let Some(len) = read_model(&mut file.0) else {
        fail("cannot read model.mq (missing, or over 1 MiB)")
    };
    let Ok(model) = Model::parse(&file.0[..len]) else {
        fail("model.mq does not parse (an op this build leaves out?)")
    };
    if model.arena_len() > ARENA_CAP || model.op_count() > OPS_CAP {
        fail("the arena or the op count is over this bench's capacity")
    }
    let Some(arena) = cortex_m::singleton!(: Aligned<ARENA_CAP> = Aligned([0; ARENA_CAP])) else {
        fail("no arena")
    };
    let Some(plan) =
        cortex_m::singleton!(: [PreparedOp<'static>; OPS_CAP] = [PreparedOp::EMPTY; OPS_CAP])
    else {
        fail("no plan")
    };
    let plan = &mut plan[..model.op_count()];
    let spare = measure_with_spare(&counter, &model, &mut arena.0, plan);
    let arena = &mut arena.0[..model.arena_len()];
    let Ok(mut interpreter) = Interpreter::new(&model, arena, plan) else {
        fail("the interpreter cannot be set up")
    };
    for i in 0..interpreter.input_count() {
        let zp = model
            .input_info(i)
            .ok()
            .and_then(|t| t.scale_zero_point())
            .map_or(0, |(_, z)| z);
        if let Ok(x) = interpreter.input_mut(i) {
            x.fill(zp.clamp(-128, 127) as i8);
        }
    }
    let mut ok = true;
    let instructions = counter.instructions(1, || ok &= interpreter.invoke().is_ok());
    if !ok {
        fail("the inference failed")
    }
    // Per op, from a second inference: the tick count at each op's end.
    let Some(ends) = cortex_m::singleton!(: [u64; OPS_CAP] = [0; OPS_CAP]) else {
        fail("no per-op buffer")
    };
    let start = Counter::ticks();
    let observed = interpreter.invoke_observed(|k, _, _| {
        if let Some(end) = ends.get_mut(k) {
            *end = Counter::ticks();
        }
    });
    if observed.is_err() {
        fail("the inference failed")
    }
    let mut last = start;
    for (k, &end) in ends.iter().take(model.op_count()).enumerate() {
        let Ok(op) = model.op(k) else {
            fail("an op of the model cannot be read")
        };
        hprintln!(
            "model_cost_op {{\"op\": {}, \"opcode\": \"{:?}\", \"instructions\": {}}}",
            k,
            op.opcode,
            counter.to_instructions(end.saturating_sub(last))
        );
        last = end;
    }
    if let Some(n) = spare {
        hprintln!(
            "model_cost_spare {{\"instructions\": {}, \"spare\": {}}}",
            n,
            SPARE
        );
    }
    hprintln!(
        "model_cost {{\"instructions\": {}, \"ops\": {}, \"arena\": {}}}",
        instructions,
        model.op_count(),
        model.arena_len()
    );
    exit(true)
}

/// Spare arena bytes past the plan for [`measure_with_spare`].
const SPARE: usize = 16 << 10;

/// One inference with [`SPARE`] bytes of arena past the plan, where packed
/// (sparse, power-of-two) convs decode their weights instead of 1 KiB on
/// the stack; `None` when the arena buffer cannot hold them.
fn measure_with_spare<'a>(
    counter: &Counter,
    model: &Model<'a>,
    arena: &mut [u8],
    plan: &mut [PreparedOp<'a>],
) -> Option<u64> {
    let arena = arena.get_mut(..model.arena_len() + SPARE)?;
    let mut interpreter = Interpreter::new(model, arena, plan).ok()?;
    let mut ok = true;
    let n = counter.instructions(1, || ok &= interpreter.invoke().is_ok());
    ok.then_some(n)
}
