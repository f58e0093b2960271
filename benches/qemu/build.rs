//! Puts the board's memory map where cortex-m-rt's `link.x` looks for
//! `memory.x`: the micro:bit's (Cortex-M0, thumbv6m) or the MPS2 AN386's
//! (Cortex-M4F, every other target).

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = env::var("TARGET").unwrap_or_default();
    let memory = if target.starts_with("thumbv6m") {
        "memory-microbit.x"
    } else {
        "memory-mps2.x"
    };
    fs::copy(memory, out.join("memory.x")).expect("copy the memory map");
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rerun-if-changed=memory-microbit.x");
    println!("cargo::rerun-if-changed=memory-mps2.x");
    println!("cargo::rerun-if-changed=build.rs");
}
