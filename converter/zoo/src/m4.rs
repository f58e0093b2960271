//! The sweep's `m4_instructions`: each converted `.mq` file run once on a
//! Cortex-M4 with the DSP kernels, under QEMU (mps2-an386, `-icount
//! shift=0`), by `benches/qemu`'s `model_cost` binary, which reads the file
//! over semihosting and prints the instructions of one inference.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `model_cost` is built, below the target directory.
pub const MODEL_COST: &str = "thumbv7em-none-eabihf/release/model_cost";

/// How to build it.
pub const BUILD: &str = "cd benches/qemu && cargo build --release --bin model_cost";

/// A Cortex-M4 to run `.mq` files on.
#[derive(Clone, Debug)]
pub struct M4 {
    elf: PathBuf,
}

impl M4 {
    /// The runner, when `qemu-system-arm` runs and `model_cost` is built
    /// (in `$CARGO_TARGET_DIR`, else `benches/qemu/target` below `root`,
    /// the repository); otherwise what is missing.
    pub fn find(root: &Path) -> Result<M4, String> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("benches/qemu/target"), PathBuf::from);
        let elf = target.join(MODEL_COST);
        // Absolute: QEMU runs in a temporary directory.
        let elf = match elf.canonicalize() {
            Ok(p) if p.is_file() => p,
            _ => {
                return Err(format!(
                    "{} is missing: build it with `{BUILD}`",
                    elf.display()
                ))
            }
        };
        match Command::new("qemu-system-arm").arg("--version").output() {
            Ok(o) if o.status.success() => Ok(M4 { elf }),
            _ => {
                Err("qemu-system-arm does not run (Debian: apt-get install qemu-system-arm)".into())
            }
        }
    }

    /// Guest instructions of one inference of `mq`.
    pub fn instructions(&self, mq: &Path) -> Result<u64, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a directory: {e}"))?;
        std::fs::copy(mq, dir.path().join("model.mq"))
            .map_err(|e| format!("cannot copy {}: {e}", mq.display()))?;
        let out = Command::new("qemu-system-arm")
            .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic"])
            .args(["-monitor", "none", "-serial", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-icount", "shift=0,align=off,sleep=off", "-kernel"])
            .arg(&self.elf)
            .current_dir(dir.path())
            .output()
            .map_err(|e| format!("cannot run qemu-system-arm: {e}"))?;
        parse(&String::from_utf8_lossy(&out.stdout)).map_err(|e| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            match stderr.trim() {
                "" => e,
                s => format!("{e} ({s})"),
            }
        })
    }
}

/// The instructions in `model_cost`'s output line, or its error.
pub fn parse(stdout: &str) -> Result<u64, String> {
    #[derive(serde::Deserialize)]
    struct Line {
        instructions: Option<u64>,
        error: Option<String>,
    }
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("model_cost "))
        .ok_or_else(|| format!("model_cost printed no result: {}", stdout.trim()))?;
    let line: Line = serde_json::from_str(json).map_err(|e| format!("{e}: {json}"))?;
    match line {
        Line {
            instructions: Some(n),
            ..
        } => Ok(n),
        Line { error, .. } => Err(error.unwrap_or_else(|| json.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_is_read_and_an_error_reported() {
        let ok = "booting\nmodel_cost {\"instructions\": 506440, \"ops\": 9, \"arena\": 3360}\n";
        assert_eq!(parse(ok), Ok(506440));
        let err = "model_cost {\"error\": \"cannot read model.mq\"}\n";
        assert_eq!(parse(err), Err("cannot read model.mq".to_string()));
        assert!(parse("PANIC: out of memory")
            .unwrap_err()
            .contains("no result"));
    }
}
