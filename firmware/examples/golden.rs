//! Produces `model/golden.bin`: the host runtime's int8 output for every beat
//! the monitor finds in `data/mitbih208.i16`, computed with the same
//! pipeline code the firmware runs. The firmware exits 0 only when each of its
//! beats matches this file byte for byte. Host only:
//!
//!     cargo run --example golden --target x86_64-unknown-linux-gnu [-- MODEL OUT]

use medq_firmware::classifier::{input_quant, MedqClassifier, NoClock};
use medq_firmware::golden::{encode_header, fnv1a, GoldenBeat};
use medq_firmware::monitor::{
    AlertConfig, Event, Monitor, MonitorConfig, ReplaySource, CLASS_NAMES,
};
use medq_firmware::window::WindowConfig;

const FS: u32 = 360;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut args = std::env::args().skip(1);
    let model_path = args.next().unwrap_or_else(|| format!("{dir}/model/ecg.mq"));
    let out_path = args
        .next()
        .unwrap_or_else(|| format!("{dir}/model/golden.bin"));

    let file = medq::ModelFile::open(&model_path)?;
    let model = file.model()?;
    let mut arena = vec![0u8; model.arena_len()];
    let quant = input_quant(&model)?;
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut classifier = MedqClassifier::new(
        medq::Interpreter::new(&model, &mut arena, &mut plan)?,
        NoClock,
    )?;
    let cfg = MonitorConfig {
        fs: FS,
        window: WindowConfig::ecg5000(FS),
        quant,
        alert: AlertConfig::default(),
    };
    let mut monitor = Monitor::new(cfg).map_err(|e| format!("{e:?}"))?;
    let record = std::fs::read(format!("{dir}/data/mitbih208.i16"))?;
    let mut source = ReplaySource::new(&record, FS);

    let mut beats = Vec::new();
    monitor
        .run(&mut source, &mut classifier, |m, ev| {
            if let Event::Beat(b) = ev {
                beats.push(GoldenBeat {
                    r_index: b.r_index,
                    input_hash: fnv1a(m.last_input()),
                    scores: b.scores,
                });
            }
        })
        .map_err(|e| format!("{e:?}"))?;

    let mut bytes = encode_header(u32::try_from(beats.len())?).to_vec();
    for b in &beats {
        bytes.extend_from_slice(&b.encode());
    }
    std::fs::write(&out_path, &bytes)?;
    let t = monitor.totals();
    println!(
        "wrote {out_path}: {} beats ({} detected, {} skipped)",
        beats.len(),
        t.detected,
        t.skipped
    );
    for (name, n) in CLASS_NAMES.iter().zip(t.per_class) {
        println!("  {name}: {n}");
    }
    println!("  uncertain: {}", t.uncertain);
    Ok(())
}
