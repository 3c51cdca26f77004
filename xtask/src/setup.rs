//! `cargo xtask setup`: make the eBPF toolchain present, idempotently.
//!
//! Needs: `rust-src` for the active toolchain (for `-Z build-std=core`), LLVM 22 shared
//! libraries and headers (`llvm-22-dev`; Debian/Ubuntu), and `bpf-linker` 0.13 built against
//! that LLVM. Each missing piece is installed with the command printed first; where that is
//! impossible (not root, no apt) the task fails with the exact commands to run by hand.

use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use crate::run;

const LLVM_PKG: &str = "llvm-22-dev";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPF_LINKER_VERSION: &str = "0.13.0";

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(cmd: &mut Command) -> String {
    cmd.stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).trim() == "0"
}

fn has_llvm() -> bool {
    std::path::Path::new(LLVM_PREFIX)
        .join("bin/llvm-config")
        .exists()
}

fn has_bpf_linker() -> bool {
    let out = output(Command::new("bpf-linker").arg("--version"));
    out.contains(BPF_LINKER_VERSION)
}

fn has_rust_src() -> bool {
    output(Command::new("rustup").args(["component", "list", "--installed"]))
        .lines()
        .any(|l| l.starts_with("rust-src"))
}

fn manual_steps() -> String {
    format!(
        "install the eBPF toolchain by hand:\n  \
         sudo apt-get update && sudo apt-get install -y --no-install-recommends {LLVM_PKG}\n  \
         rustup component add rust-src\n  \
         LLVM_PREFIX={LLVM_PREFIX} cargo install bpf-linker --version {BPF_LINKER_VERSION} --locked --no-default-features --features llvm-22"
    )
}

/// Installs whatever is missing; prints what it finds and does.
pub fn ensure() -> Result<()> {
    if has_rust_src() {
        eprintln!("setup: rust-src present");
    } else {
        eprintln!("setup: rust-src missing, installing");
        run(Command::new("rustup").args(["component", "add", "rust-src"]))?;
    }
    if has_llvm() {
        eprintln!("setup: LLVM 22 present at {LLVM_PREFIX}");
    } else {
        let apt = succeeds(Command::new("apt-get").arg("--version"));
        if !apt || !is_root() {
            bail!(
                "LLVM 22 is missing and cannot be installed here ({}); {}",
                if apt { "not root" } else { "no apt-get" },
                manual_steps()
            );
        }
        eprintln!("setup: LLVM 22 missing, installing {LLVM_PKG}");
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", LLVM_PKG])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    if has_bpf_linker() {
        eprintln!("setup: bpf-linker {BPF_LINKER_VERSION} present");
    } else {
        eprintln!(
            "setup: bpf-linker {BPF_LINKER_VERSION} missing, building it against LLVM 22 (~1 min)"
        );
        run(
            Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args([
                    "install",
                    "bpf-linker",
                    "--version",
                    BPF_LINKER_VERSION,
                    "--locked",
                    "--no-default-features",
                    "--features",
                    "llvm-22",
                ])
                .env("LLVM_PREFIX", LLVM_PREFIX),
        )
        .map_err(|e| anyhow::anyhow!("{e}; {}", manual_steps()))?;
    }
    Ok(())
}
