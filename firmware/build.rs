//! Linker script placement, and `cfg`s for the optional model files: the
//! firmware classifies beats only once `model/ecg.mq` exists, and checks
//! them only once `model/golden.bin` does.
//!
//! Two environment variables change what is built in:
//! - `MEDQ_MODEL`: another `.mq` file to embed instead of `model/ecg.mq`;
//! - `MEDQ_PUBLIC_KEY`: an Ed25519 public key (`KEY.pub` from `medq keygen`,
//!   PEM) — the firmware then accepts only a model signed with its secret
//!   key (`Model::parse_verified`) and refuses to start otherwise.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.template.x");
    println!("cargo:rerun-if-changed=model/ecg.mq");
    println!("cargo:rerun-if-changed=model/golden.bin");
    println!("cargo:rerun-if-changed=model");

    println!("cargo::rustc-check-cfg=cfg(medq_model)");
    println!("cargo::rustc-check-cfg=cfg(medq_golden)");
    println!("cargo::rustc-check-cfg=cfg(medq_signed)");
    println!("cargo:rerun-if-env-changed=MEDQ_MODEL");
    println!("cargo:rerun-if-env-changed=MEDQ_PUBLIC_KEY");
    let model =
        env::var_os("MEDQ_MODEL").map_or_else(|| PathBuf::from("model/ecg.mq"), PathBuf::from);
    let has_model = model.is_file();
    if let Some(path) = env::var_os("MEDQ_MODEL") {
        assert!(has_model, "MEDQ_MODEL={path:?} is not a file");
        println!("cargo:rerun-if-changed={}", model.display());
    }
    if has_model {
        // Embedded from OUT_DIR, so the source path can come from the environment.
        fs::copy(&model, out.join("model.mq")).expect("copy the model into OUT_DIR");
        println!("cargo:rustc-cfg=medq_model");
    }
    if let Some(path) = env::var_os("MEDQ_PUBLIC_KEY") {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        println!("cargo:rerun-if-changed={}", Path::new(&path).display());
        let pem = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("MEDQ_PUBLIC_KEY={path:?}: cannot read it: {e}"));
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(&pem).unwrap_or_else(|e| {
            panic!("MEDQ_PUBLIC_KEY={path:?} is not an Ed25519 public key in PEM: {e}")
        });
        fs::write(out.join("public_key.rs"), format!("{:?}", key.to_bytes()))
            .expect("write public_key.rs");
        println!("cargo:rustc-cfg=medq_signed");
    }
    write_memory_x(&out, env::var_os("MEDQ_PUBLIC_KEY").is_some());
    if has_model && Path::new("model/golden.bin").is_file() {
        println!("cargo:rustc-cfg=medq_golden");
    }

    let bare_metal = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none");
    if bare_metal && env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
}

/// Flash budget (code + model) of the monitor, and what checking signatures
/// adds to it: Ed25519 and SHA-512 take ~25 KB of code and constants
/// (measured; no precomputed tables).
const FLASH_KIB: u32 = 64;
const SIGNATURE_FLASH_KIB: u32 = 32;
/// RAM budget (data, bss and stack), and the stack the signature check adds
/// (curve arithmetic keeps its lookup tables on the stack).
const RAM_KIB: u32 = 16;
const SIGNATURE_RAM_KIB: u32 = 16;

/// `memory.x` (from `memory.template.x`, which keeps another name because
/// the linker would find a `memory.x` here before the one in OUT_DIR) with the flash region cut to the budget. A signed build gets
/// [`SIGNATURE_FLASH_KIB`] more, and the replay fixtures move up to make
/// room (the mps2 boards have 4 MiB; the micro:bit's 256 KiB has no room
/// for both, so signed builds are for the M4/M7 boards).
fn write_memory_x(out: &Path, signed: bool) {
    let kib = FLASH_KIB + if signed { SIGNATURE_FLASH_KIB } else { 0 };
    let ram_kib = RAM_KIB + if signed { SIGNATURE_RAM_KIB } else { 0 };
    let template = fs::read_to_string("memory.template.x").expect("read memory.template.x");
    let memory = template
        .replace(
            "LENGTH = 64K /* FLASH */",
            &format!("LENGTH = {kib}K /* FLASH */"),
        )
        .replace(
            "LENGTH = 16K /* RAM */",
            &format!("LENGTH = {ram_kib}K /* RAM */"),
        )
        .replace(
            "ORIGIN = 0x00010000 /* REPLAY */",
            &format!("ORIGIN = {:#010x} /* REPLAY */", kib * 1024),
        );
    assert!(
        memory.contains(&format!("LENGTH = {kib}K /* FLASH */"))
            && memory.contains(&format!("ORIGIN = {:#010x} /* REPLAY */", kib * 1024))
            && memory.contains(&format!("LENGTH = {ram_kib}K /* RAM */")),
        "memory.x no longer has the FLASH and REPLAY lines build.rs sizes"
    );
    fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-env=MEDQ_FLASH_BUDGET={}", kib * 1024);
    println!("cargo:rustc-env=MEDQ_RAM_BUDGET={}", ram_kib * 1024);
}
