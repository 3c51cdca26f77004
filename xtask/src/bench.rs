//! `cargo xtask bench`: one command that reproduces the performance claims. It runs the
//! criterion micro benchmarks (`cargo bench -p carbon-ops-agent`: energy polling, estimator,
//! ledger appends, …), then the agent load harness (`examples/agent_bench.rs`: agent CPU and
//! RSS at 1k/10k processes in ebpf and procfs modes, socket throughput and latency,
//! `sched_switch` cost from `bpf_stats`) when it exists, and appends the results with the
//! machine (CPUs, CPU model, kernel) and the method to `docs/benchmarks.md` under a dated
//! "Run" heading. Each step that fails is reported and the others still run; the task fails
//! at the end if any did. Extra criterion arguments: `CARBON_OPS_BENCH_ARGS` (e.g.
//! `--warm-up-time 1 --measurement-time 3` on a busy machine); set `CARBON_OPS_BENCH_NO_WRITE`
//! to print without touching the doc.

use std::{
    fmt::Write as _,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

/// One criterion result: the benchmark's id and its point estimates.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// `group/name`.
    pub id: String,
    /// Median estimate of the time per iteration, as criterion printed it (`1.2345 µs`).
    pub time: String,
    /// Throughput estimate, when the benchmark declares one (`812.3 Kelem/s`).
    pub throughput: Option<String>,
}

/// The middle of criterion's `[low estimate high]` triple.
fn middle(line: &str) -> Option<String> {
    let inner = line.split_once('[')?.1.split_once(']')?.0;
    let parts: Vec<&str> = inner.split_whitespace().collect();
    // `a unit b unit c unit`.
    (parts.len() == 6).then(|| format!("{} {}", parts[2], parts[3]))
}

/// Lines a bench prints itself (`name: free text`), outside criterion's format, e.g. a
/// poller's CPU share over a timed run.
pub fn custom_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .filter(|l| {
            l.split_once(": ").is_some_and(|(head, _)| {
                !head.is_empty()
                    && !head.starts_with("Benchmarking")
                    && !["Warning", "warning", "error", "note"].contains(&head)
                    && head
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '-'))
            })
        })
        .map(str::to_owned)
        .collect()
}

/// Parses criterion's text output (the id is on the `time:` line or the line before it).
pub fn parse_criterion(out: &str) -> Vec<Measured> {
    let mut found: Vec<Measured> = Vec::new();
    let mut last_id = String::new();
    for line in out.lines() {
        let t = line.trim();
        if let Some((head, _)) = t.split_once("time:") {
            let head = head.trim();
            let id = if head.is_empty() {
                last_id.clone()
            } else {
                head.to_owned()
            };
            if let Some(time) = middle(t) {
                found.push(Measured {
                    id,
                    time,
                    throughput: None,
                });
            }
        } else if t.starts_with("thrpt:") {
            // The first `thrpt:` after a result; a `change:` block repeats it as percentages.
            if let Some(m) = found.last_mut().filter(|m| m.throughput.is_none()) {
                m.throughput = middle(t);
            }
        } else if !t.is_empty()
            && !t.contains(' ')
            && !t.starts_with("Benchmarking")
            && !t.starts_with("Running")
        {
            last_id = t.to_owned();
        } else if let Some(id) = t.strip_prefix("Benchmarking ") {
            last_id = id.split(':').next().unwrap_or(id).trim().to_owned();
        }
    }
    found
}

fn first_line_with(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// `nproc`, CPU model, kernel, in one line.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = first_line_with(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown kernel".into(), |k| k.trim().to_owned());
    let mem = first_line_with(
        &std::fs::read_to_string("/proc/meminfo").unwrap_or_default(),
        "MemTotal",
    )
    .unwrap_or_default();
    format!("{cpus} CPUs, {model}, Linux {kernel}, {mem} RAM")
}

fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root);
    c
}

/// Runs `cmd`, streaming stderr, returning stdout (or why it failed).
fn capture(cmd: &mut Command) -> Result<String> {
    eprintln!("+ {cmd:?}");
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    if !out.status.success() {
        bail!("{cmd:?} failed with {}", out.status);
    }
    Ok(text)
}

fn unix_date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Names of the bench targets: the `.rs` files of `dir`, sorted.
fn bench_targets(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    names
}

/// Runs every benchmark and records the results; see the module doc.
pub fn run(root: &Path) -> Result<()> {
    let mut failures = Vec::new();
    let extra = std::env::var("CARBON_OPS_BENCH_ARGS").unwrap_or_default();
    let sampling = if extra.trim().is_empty() {
        "criterion's default sampling".to_owned()
    } else {
        format!("criterion with `{}`", extra.trim())
    };
    let mut section = format!(
        "\n## Run {}\n\nMachine: {}. Method: `cargo xtask bench` (release profile; medians, \
         {sampling}; the agent harness's own method below). Figures from one noisy machine: \
         compare ratios, not absolutes.\n",
        unix_date(),
        machine()
    );

    // Only the criterion targets (`benches/*.rs`): `cargo bench -p` alone would also run the
    // library's libtest harness, which refuses criterion's arguments.
    let mut bench = cargo(root);
    bench.args(["bench", "-p", "carbon-ops-agent"]);
    for name in bench_targets(&root.join("carbon-ops-agent/benches")) {
        bench.args(["--bench", &name]);
    }
    if !extra.trim().is_empty() {
        bench.arg("--").args(extra.split_whitespace());
    }
    match capture(&mut bench) {
        Ok(out) => {
            let rows = parse_criterion(&out);
            section += "\n### Micro benchmarks (criterion)\n\n| benchmark | time (median) | throughput |\n|---|---|---|\n";
            for m in &rows {
                let _ = writeln!(
                    section,
                    "| `{}` | {} | {} |",
                    m.id,
                    m.time,
                    m.throughput.as_deref().unwrap_or("")
                );
            }
            if rows.is_empty() {
                section += "| (no criterion results parsed) | | |\n";
            }
            let custom = custom_lines(&out);
            if !custom.is_empty() {
                let _ = writeln!(
                    section,
                    "\nPrinted by the benches:\n\n```text\n{}\n```",
                    custom.join("\n")
                );
            }
        }
        Err(e) => {
            let _ = writeln!(
                section,
                "\n### Micro benchmarks (criterion)\n\nFAILED: {e:#}"
            );
            failures.push(e);
        }
    }

    let harness = root.join("carbon-ops-agent/examples/agent_bench.rs");
    section += "\n### Agent load harness (`examples/agent_bench.rs`)\n\n";
    if harness.exists() {
        let mut h = cargo(root);
        h.args([
            "run",
            "--release",
            "-p",
            "carbon-ops-agent",
            "--example",
            "agent_bench",
        ]);
        match capture(&mut h) {
            Ok(out) => {
                let _ = writeln!(section, "```text\n{}\n```", out.trim_end());
            }
            Err(e) => {
                let _ = writeln!(section, "FAILED: {e:#}");
                failures.push(e);
            }
        }
    } else {
        eprintln!(
            "skipping the agent load harness: {} does not exist",
            harness.display()
        );
        section += "Skipped: `examples/agent_bench.rs` does not exist in this checkout.\n";
    }

    println!("{section}");
    if std::env::var_os("CARBON_OPS_BENCH_NO_WRITE").is_none() {
        let doc = root.join("docs/benchmarks.md");
        let mut text = std::fs::read_to_string(&doc).unwrap_or_else(|_| "# Benchmarks\n".into());
        text += &section;
        std::fs::write(&doc, text).with_context(|| format!("writing {}", doc.display()))?;
        eprintln!("appended to {}", doc.display());
    }
    match failures.len() {
        0 => Ok(()),
        n => bail!("{n} benchmark step(s) failed (see above and docs/benchmarks.md)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_criterion_output_with_ids_on_either_line() {
        let out = "\
Benchmarking ledger/append_one: Warming up for 3.0000 s
ledger/append_one       time:   [1.1000 µs 1.2345 µs 1.3000 µs]
                        thrpt:  [769.23 Kelem/s 810.04 Kelem/s 909.09 Kelem/s]
                 change:
                        time:   [+2565.1% +5849.6% +10161%] (p = 0.00 < 0.05)
                        thrpt:  [-99.0% -98.0% -97.0%]
energy_poller_10hz: 100 ticks in 9.900 s wall, 0.1160 % of one core
Found 3 outliers among 100 measurements (3.00%)
energy/a_very_long_benchmark_name_that_wraps
                        time:   [10.000 ns 11.000 ns 12.000 ns]
                        change: [-1.0% +0.5% +2.0%] (p = 0.50 > 0.05)
";
        let rows = parse_criterion(out);
        assert_eq!(
            rows,
            vec![
                Measured {
                    id: "ledger/append_one".into(),
                    time: "1.2345 µs".into(),
                    throughput: Some("810.04 Kelem/s".into()),
                },
                Measured {
                    id: "energy/a_very_long_benchmark_name_that_wraps".into(),
                    time: "11.000 ns".into(),
                    throughput: None,
                },
            ]
        );
        assert_eq!(
            custom_lines(out),
            ["energy_poller_10hz: 100 ticks in 9.900 s wall, 0.1160 % of one core"]
        );
    }

    #[test]
    fn bench_targets_are_the_rs_files() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for f in ["b.rs", "a.rs", "notes.md"] {
            std::fs::write(dir.join(f), "").expect("write");
        }
        assert_eq!(bench_targets(&dir), ["a", "b"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn machine_names_cpus_and_kernel() {
        let m = machine();
        assert!(m.contains("CPUs") && m.contains("Linux"), "{m}");
    }
}
