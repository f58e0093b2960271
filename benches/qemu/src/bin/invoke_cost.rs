//! Instructions per inference of the firmware's ECG model
//! (`firmware/model/ecg.mq`) on a Cortex-M4 with the DSP kernels, and the
//! check that this cost does not depend on the input: the kernels have no
//! branch on data values (saturation is `ssat`/`usat` or a select, tables
//! are indexed, not searched), so a device's worst case is its only case.
//!
//! Each input is run `REPS` times between two SysTick readings. Under
//! `-icount shift=0` a tick is 40 guest instructions and each reading is off
//! by less than one tick, so two inputs whose costs differ by even one
//! instruction per inference differ by `REPS` instructions (5 ticks at
//! 200): the totals must agree to within one tick. Exit 1 otherwise.
//!
//! The inputs reach every edge the requantization has: the int8 minimum and
//! maximum everywhere (every accumulator saturates one way), alternating
//! extremes, the input zero point, a slow triangle wave, and pseudo-random
//! bytes.
//!
//! This build is `opt-level = 3` (the kernel benchmarks' profile); the
//! firmware (`opt-level = "z"`) prints its own per-beat min and max.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use medq::{Interpreter, Model, PreparedOp};
use medq_qemu_bench::{exit, hprintln, Counter, Rng};

static MODEL: &[u8] = medq::include_model!("../../../../firmware/model/ecg.mq");
const ARENA_LEN: usize = match medq::peek_arena_len(MODEL) {
    Some(n) => n,
    None => panic!("firmware/model/ecg.mq is not a .mq file"),
};
const OPS: usize = match medq::peek_op_count(MODEL) {
    Some(n) => n,
    None => panic!("firmware/model/ecg.mq has no op table"),
};
/// Inferences per measurement (see the module documentation).
const REPS: u32 = 200;
const INPUT_LEN: usize = 140;

#[entry]
fn main() -> ! {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        exit(false)
    };
    let counter = Counter::start(peripherals.SYST);
    let model = match Model::parse(MODEL) {
        Ok(m) => m,
        Err(_) => {
            hprintln!("FAIL: firmware/model/ecg.mq does not parse");
            exit(false)
        }
    };
    let mut arena = [0u8; ARENA_LEN];
    let mut plan = [PreparedOp::EMPTY; OPS];
    let mut interpreter = match Interpreter::new(&model, &mut arena, &mut plan) {
        Ok(i) => i,
        Err(_) => {
            hprintln!("FAIL: the interpreter cannot be set up");
            exit(false)
        }
    };
    let zero_point = model
        .input_info(0)
        .ok()
        .and_then(|t| t.scale_zero_point())
        .and_then(|(_, z)| i8::try_from(z).ok())
        .unwrap_or(0);

    let mut inputs: [(&str, [i8; INPUT_LEN]); 9] = [("", [0; INPUT_LEN]); 9];
    inputs[0] = ("int8 minimum everywhere", [i8::MIN; INPUT_LEN]);
    inputs[1] = ("int8 maximum everywhere", [i8::MAX; INPUT_LEN]);
    inputs[2] = ("the input zero point", [zero_point; INPUT_LEN]);
    inputs[3].0 = "alternating extremes";
    inputs[4].0 = "a slow triangle wave";
    for i in 0..INPUT_LEN {
        inputs[3].1[i] = if i % 2 == 0 { i8::MIN } else { i8::MAX };
        // Period 56: up from −112 to 112 and back, in steps of 8.
        let phase = (i % 56) as i32;
        inputs[4].1[i] = (8 * (phase.min(56 - phase)) - 112) as i8;
    }
    let mut rng = Rng::new(0x5eed);
    for (k, slot) in inputs.iter_mut().skip(5).enumerate() {
        slot.0 = [
            "random bytes 1",
            "random bytes 2",
            "random bytes 3",
            "random bytes 4",
        ][k];
        rng.fill_i8(&mut slot.1);
    }

    // The cost of loading an input alone, subtracted from each total.
    let load = |interpreter: &mut Interpreter, x: &[i8; INPUT_LEN]| -> bool {
        match interpreter.input_mut(0) {
            Ok(dst) if dst.len() == INPUT_LEN => {
                dst.copy_from_slice(x);
                true
            }
            _ => false,
        }
    };
    let load_ticks = total_ticks(&counter, || {
        load(&mut interpreter, &inputs[0].1);
    });

    hprintln!(
        "ECG model ({} ops, arena {} B), {} inferences per input, {} instructions per tick",
        OPS,
        ARENA_LEN,
        REPS,
        counter.per_tick
    );
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    let mut ok = true;
    for (name, x) in &inputs {
        let ticks = total_ticks(&counter, || {
            ok &= load(&mut interpreter, x);
            ok &= interpreter.invoke().is_ok();
        })
        .saturating_sub(load_ticks);
        lo = lo.min(ticks);
        hi = hi.max(ticks);
        hprintln!(
            "  {:<26} {} instructions per inference",
            name,
            ticks * counter.per_tick / u64::from(REPS)
        );
    }
    if !ok {
        hprintln!("FAIL: an inference failed");
        exit(false)
    }
    let worst = (hi * counter.per_tick).div_ceil(u64::from(REPS));
    hprintln!("worst case: {} instructions per inference", worst);
    // One tick of spread is the readings' phase; one instruction per
    // inference more on any input would be REPS / per_tick ticks.
    let independent = hi - lo <= 1;
    hprintln!(
        "data-independent: {} (totals {}..{} ticks; one instruction per inference is {} ticks)",
        if independent { "yes" } else { "NO" },
        lo,
        hi,
        u64::from(REPS) / counter.per_tick.max(1)
    );
    hprintln!(
        "cortex_m4_invoke {{\"model\":\"ecg\",\"worst_instructions\":{},\"data_independent\":{}}}",
        worst,
        independent
    );
    exit(independent)
}

/// Ticks `REPS` runs of `f` take, less the readings' own cost.
fn total_ticks(counter: &Counter, mut f: impl FnMut()) -> u64 {
    let t0 = Counter::ticks();
    for _ in 0..REPS {
        f();
    }
    let t1 = Counter::ticks();
    (t1 - t0).saturating_sub(counter.overhead)
}
