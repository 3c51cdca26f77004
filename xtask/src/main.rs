//! Developer tasks for carbon-ops: `cargo xtask <task>`.
//!
//! - `setup`: installs what building the kernel programs needs (LLVM 22, `rust-src`,
//!   `bpf-linker`), idempotently, printing every command; where it cannot (not root, not
//!   Debian/Ubuntu) it stops with the exact commands to run.
//! - `build-ebpf`: builds the kernel object that `carbon-ops-agent` embeds.
//! - `test`: the whole suite, as CI runs it (README's test command).
//! - `run`: builds and runs the agent with defaults (README's run command).

mod bench;
mod intensity;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "carbon-ops developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the eBPF toolchain (LLVM 22, rust-src, bpf-linker) where missing.
    Setup,
    /// Build the kernel object (target/ebpf/bpfel-unknown-none/release/carbon-ops-ebpf).
    BuildEbpf {
        /// Skip the toolchain check/installation.
        #[arg(long)]
        no_setup: bool,
    },
    /// Run everything CI runs: fmt, clippy, unit and privileged integration tests.
    Test {
        /// Skip the toolchain check/installation.
        #[arg(long)]
        no_setup: bool,
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run every benchmark (criterion micro benchmarks, the agent load harness) and append the
    /// figures with the machine to docs/benchmarks.md.
    Bench,
    /// Regenerate the bundled grid-intensity table from an unpacked codecarbon wheel.
    GenIntensity {
        /// Directory of the unpacked wheel (`python3 -m zipfile -e codecarbon-X.whl DIR`).
        #[arg(long)]
        wheel: PathBuf,
        /// Output file.
        #[arg(
            long,
            default_value = "carbon-ops-agent/src/carbon/data/intensity.json"
        )]
        out: PathBuf,
    },
    /// Build the agent (release, with its kernel object) and run it with these arguments.
    Run {
        /// Arguments for carbon-ops-agent.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it first; fails with its exit status.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Path of the kernel object the agent's build script embeds.
pub(crate) fn ebpf_object() -> PathBuf {
    root().join("target/ebpf/bpfel-unknown-none/release/carbon-ops-ebpf")
}

fn build_ebpf() -> Result<()> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "-p",
        "carbon-ops-ebpf",
        "-Z",
        "build-std=core",
        "--target",
        "bpfel-unknown-none",
        "--release",
    ])
    .env("CARGO_TARGET_DIR", root().join("target/ebpf"))
    // build-std is unstable: allowed on the stable toolchain for this build only.
    .env("RUSTC_BOOTSTRAP", "1")
    .env_remove("RUSTFLAGS")
    // BTF for the object (maps and programs described to the kernel).
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        "-C\x1fdebuginfo=2\x1f-C\x1flink-arg=--btf",
    );
    run(&mut cmd)
        .context("building the eBPF object failed; `cargo xtask setup` installs the toolchain")?;
    let obj = ebpf_object();
    let len = std::fs::metadata(&obj)
        .with_context(|| format!("the build produced no object at {}", obj.display()))?
        .len();
    eprintln!("eBPF object: {} ({len} bytes)", obj.display());
    Ok(())
}

fn test(no_setup: bool, extra: &[String]) -> Result<()> {
    if !no_setup {
        setup::ensure()?;
    }
    run(cargo().args(["fmt", "--all", "--", "--check"]))
        .context("formatting differs: run `cargo fmt --all`")?;
    build_ebpf()?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut t = cargo();
    t.args(["test", "--workspace"]);
    if std::env::var_os("CI").is_some() {
        // In CI the privileged eBPF tests must run: a skip is a failure there.
        t.env("CARBON_OPS_REQUIRE_PRIVILEGED", "1");
    }
    if !extra.is_empty() {
        t.arg("--").args(extra);
    }
    run(&mut t)?;
    tests_outside_cargo()
}

/// Tests that are not Rust: the Python client against a real agent, the deployment files
/// (Kubernetes schemas, Grafana dashboard, systemd unit), and every shell command in the
/// documentation (run, or named as run by a test; `tests/doc-commands.toml`), which uses the
/// binaries `cargo test` has just built in target/debug.
fn tests_outside_cargo() -> Result<()> {
    for script in ["tests/run-python-tests.sh", "tests/validate-deploy.sh"] {
        let path = root().join(script);
        if path.exists() {
            run(Command::new("bash").arg(path).current_dir(root()))?;
        }
    }
    let checker = root().join("tests/check-doc-commands.py");
    if checker.exists() {
        // `cargo test` has built them; this says so, rather than relying on it.
        run(cargo().args(["build", "-p", "carbon-ops-agent", "--bins"]))?;
        run(Command::new("python3").arg(checker).current_dir(root()))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::ensure(),
        Task::BuildEbpf { no_setup } => {
            if !no_setup {
                setup::ensure()?;
            }
            build_ebpf()
        }
        Task::Test {
            no_setup,
            cargo_args,
        } => test(no_setup, &cargo_args),
        Task::Bench => bench::run(&root()),
        Task::GenIntensity { wheel, out } => intensity::generate(&wheel, &root().join(out)),
        Task::Run { args } => {
            setup::ensure()?;
            build_ebpf()?;
            run(cargo().args(["build", "--release", "-p", "carbon-ops-agent"]))?;
            let bin = root().join("target/release/carbon-ops-agent");
            run(Command::new(bin).args(args))
        }
    }
}
