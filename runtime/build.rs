//! Sets `cfg(medq_dsp)` on targets with the Arm DSP extension, which selects
//! the SXTB16/SMLAD kernels in `kernels::cortex_m`, and `cfg(medq_hwdiv)` on
//! Arm targets with a 32-bit hardware divide (`UDIV`: ARMv7-M, ARMv7E-M,
//! ARMv8-M Mainline), which the Softmax's row division uses.
//!
//! Stable rustc never reports `target_feature = "dsp"` in `cfg` (the Arm
//! features are unstable), even on thumbv7em, so the kernels cannot be
//! selected by that `cfg` alone. ARMv7E-M *is* ARMv7-M plus the DSP
//! extension, so the target name decides; on ARMv8-M Mainline the extension
//! is optional and a build that knows its core has it passes
//! `RUSTFLAGS="--cfg medq_dsp"`.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(medq_dsp)");
    println!("cargo::rustc-check-cfg=cfg(medq_hwdiv)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let arm = env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("arm");
    let dsp = target.starts_with("thumbv7em") || features.split(',').any(|f| f == "dsp");
    if arm && dsp {
        println!("cargo::rustc-cfg=medq_dsp");
    }
    // ARMv6-M (Cortex-M0/M0+) has no divide instruction: a `/` there is a
    // library call whose length depends on the operands.
    let hwdiv = ["thumbv7m", "thumbv7em", "thumbv8m.main"]
        .iter()
        .any(|t| target.starts_with(t))
        || features.split(',').any(|f| f == "hwdiv");
    if arm && hwdiv {
        println!("cargo::rustc-cfg=medq_hwdiv");
    }
}
