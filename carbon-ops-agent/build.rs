//! Embeds the kernel object built by `cargo xtask build-ebpf`, or an empty stub when it has not
//! been built, so that `cargo check`, docs and the pure-logic tests work without the eBPF
//! toolchain. The loader refuses an empty object with an error that names the fix.
use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let default_obj = manifest.join("../target/ebpf/bpfel-unknown-none/release/carbon-ops-ebpf");
    println!("cargo:rerun-if-env-changed=CARBON_OPS_EBPF_OBJ");
    let obj = env::var_os("CARBON_OPS_EBPF_OBJ").map_or(default_obj, PathBuf::from);
    println!("cargo:rerun-if-changed={}", obj.display());
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("carbon-ops.bpf.o");
    let bytes = fs::read(&obj).unwrap_or_default();
    if bytes.is_empty() {
        println!(
            "cargo:warning=eBPF object not found at {}: embedding an empty stub (run `cargo xtask build-ebpf`)",
            obj.display()
        );
    }
    if let Err(e) = fs::write(&out, bytes) {
        panic!("cannot write {}: {e}", out.display());
    }
}
