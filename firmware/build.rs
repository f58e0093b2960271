//! Linker script placement, and `cfg`s for the optional model files: the
//! firmware classifies beats only once `model/ecg.mq` exists, and checks
//! them only once `model/golden.bin` does.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=model/ecg.mq");
    println!("cargo:rerun-if-changed=model/golden.bin");
    println!("cargo:rerun-if-changed=model");

    println!("cargo::rustc-check-cfg=cfg(medq_model)");
    println!("cargo::rustc-check-cfg=cfg(medq_golden)");
    let has_model = Path::new("model/ecg.mq").is_file();
    if has_model {
        println!("cargo:rustc-cfg=medq_model");
    }
    if has_model && Path::new("model/golden.bin").is_file() {
        println!("cargo:rustc-cfg=medq_golden");
    }

    let bare_metal = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none");
    if bare_metal && env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
}
