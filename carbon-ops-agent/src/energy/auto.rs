//! Source selection: `--rapl-mode=auto` tries powercap sysfs, then MSR, then the model, and
//! says in one log line which it chose and why. Also the clap arguments the agent exposes.

use super::meter::{Meter, MeterConfig};
use super::model::ModelSource;
use super::msr::{DEFAULT_MSR_ROOT, MsrOptions, MsrSource};
use super::powercap::{DEFAULT_MAX_ZONE_POWER_UW, DEFAULT_POWERCAP_ROOT, PowercapSource};
use super::topology::DEFAULT_CPU_ROOT;
use super::{EnergySource, SourceError};
use std::path::PathBuf;
use std::time::Duration;

/// Which source to use.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RaplMode {
    /// sysfs if any zone is readable, else msr if readable, else model.
    #[default]
    Auto,
    /// Powercap sysfs only.
    Sysfs,
    /// `/dev/cpu/<n>/msr` only.
    Msr,
    /// Utilisation model only.
    Model,
}

/// Root paths of every file the energy sources read (overridable for tests and containers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnergyPaths {
    /// `/sys/class/powercap`.
    pub powercap_root: PathBuf,
    /// `/dev/cpu`.
    pub msr_root: PathBuf,
    /// `/sys/devices/system/cpu`.
    pub cpu_root: PathBuf,
    /// `/proc`.
    pub procfs_root: PathBuf,
}

impl Default for EnergyPaths {
    fn default() -> Self {
        EnergyPaths {
            powercap_root: PathBuf::from(DEFAULT_POWERCAP_ROOT),
            msr_root: PathBuf::from(DEFAULT_MSR_ROOT),
            cpu_root: PathBuf::from(DEFAULT_CPU_ROOT),
            procfs_root: PathBuf::from("/proc"),
        }
    }
}

/// What to select and how to run it.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectOptions {
    pub mode: RaplMode,
    pub msr: MsrOptions,
    /// Plausibility ceiling per zone (W) for wrap/reset decisions.
    pub max_zone_power_w: f64,
    pub meter: MeterConfig,
}

impl Default for SelectOptions {
    fn default() -> Self {
        SelectOptions {
            mode: RaplMode::Auto,
            msr: MsrOptions::default(),
            max_zone_power_w: DEFAULT_MAX_ZONE_POWER_UW as f64 / 1e6,
            meter: MeterConfig::default(),
        }
    }
}

fn open_sysfs(paths: &EnergyPaths, opts: &SelectOptions) -> Result<PowercapSource, SourceError> {
    let mut src = PowercapSource::discover(&paths.powercap_root, &paths.cpu_root)?
        .with_max_zone_power_w(opts.max_zone_power_w);
    src.probe()
        .map_err(|source| SourceError::PowercapUnreadable {
            root: paths.powercap_root.clone(),
            source,
        })?;
    Ok(src)
}

fn open_msr(paths: &EnergyPaths, opts: &SelectOptions) -> Result<MsrSource, SourceError> {
    let msr = MsrOptions {
        max_zone_power_w: opts.max_zone_power_w,
        ..opts.msr.clone()
    };
    MsrSource::open(&paths.msr_root, &paths.cpu_root, &paths.procfs_root, &msr)
}

/// Open the source `opts.mode` asks for; returns the meter and the reason for the choice, and
/// logs that reason once at info level.
pub fn select(paths: &EnergyPaths, opts: &SelectOptions) -> Result<(Meter, String), SourceError> {
    let (source, reason): (Box<dyn EnergySource>, String) = match opts.mode {
        RaplMode::Sysfs => {
            let s = open_sysfs(paths, opts)?;
            let r = format!("--rapl-mode=sysfs: {}", s.describe());
            (Box::new(s), r)
        }
        RaplMode::Msr => {
            let s = open_msr(paths, opts)?;
            let r = format!("--rapl-mode=msr: {}", s.describe());
            (Box::new(s), r)
        }
        RaplMode::Model => {
            let s = ModelSource::open(&paths.procfs_root, &paths.cpu_root, None)?;
            let r = format!("--rapl-mode=model: {}", s.describe());
            (Box::new(s), r)
        }
        RaplMode::Auto => match open_sysfs(paths, opts) {
            Ok(s) => {
                let r = format!("auto chose sysfs: {}", s.describe());
                (Box::new(s), r)
            }
            Err(sysfs_err) => match open_msr(paths, opts) {
                Ok(s) => {
                    let r = format!(
                        "auto chose msr because sysfs failed ({sysfs_err}): {}",
                        s.describe()
                    );
                    (Box::new(s), r)
                }
                Err(msr_err) => {
                    let s = ModelSource::open(&paths.procfs_root, &paths.cpu_root, None)?;
                    let r = format!(
                        "auto chose model because sysfs failed ({sysfs_err}) and msr failed \
                         ({msr_err}): {}",
                        s.describe()
                    );
                    (Box::new(s), r)
                }
            },
        },
    };
    tracing::info!(energy_source = %source.kind(), reason = %reason, "energy source selected");
    Ok((Meter::with_config(source, opts.meter), reason))
}

/// Parse `100ms`, `0.5s`, `2s` or a bare number of milliseconds.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1e-3)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 100ms or 0.5s"))?;
    let secs = v * scale;
    if !(0.001..=3600.0).contains(&secs) {
        return Err(format!("interval `{text}` must be between 1ms and 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The agent's energy arguments (flatten into the agent's clap struct).
#[derive(Clone, Debug, clap::Args)]
pub struct EnergyArgs {
    /// Energy source: auto (sysfs → msr → model), sysfs, msr or model.
    #[arg(long, value_enum, default_value_t = RaplMode::Auto)]
    pub rapl_mode: RaplMode,
    /// CPUs to read with --rapl-mode=msr, one per package (default: first CPU of each).
    #[arg(long, value_delimiter = ',')]
    pub msr_cpus: Option<Vec<u32>>,
    /// Poll interval (e.g. 100ms, 0.5s).
    #[arg(long, default_value = "100ms", value_parser = parse_interval)]
    pub interval: Duration,
    /// Powercap class root.
    #[arg(long, default_value = DEFAULT_POWERCAP_ROOT)]
    pub powercap_root: PathBuf,
    /// msr device root.
    #[arg(long, default_value = DEFAULT_MSR_ROOT)]
    pub msr_root: PathBuf,
    /// CPU sysfs root (topology).
    #[arg(long, default_value = DEFAULT_CPU_ROOT)]
    pub cpu_sysfs_root: PathBuf,
    /// procfs root (model source, cpuinfo).
    #[arg(long, default_value = "/proc")]
    pub procfs_root: PathBuf,
}

impl EnergyArgs {
    /// The paths these arguments name.
    pub fn paths(&self) -> EnergyPaths {
        EnergyPaths {
            powercap_root: self.powercap_root.clone(),
            msr_root: self.msr_root.clone(),
            cpu_root: self.cpu_sysfs_root.clone(),
            procfs_root: self.procfs_root.clone(),
        }
    }

    /// Select the source these arguments ask for.
    pub fn select(&self) -> Result<(Meter, String), SourceError> {
        let opts = SelectOptions {
            mode: self.rapl_mode,
            msr: MsrOptions {
                cpus: self.msr_cpus.clone(),
                ..MsrOptions::default()
            },
            ..SelectOptions::default()
        };
        select(&self.paths(), &opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        energy: EnergyArgs,
    }

    #[test]
    fn intervals_parse_by_hand() {
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_interval("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("250"), Ok(Duration::from_millis(250)));
        assert!(parse_interval("0ms").is_err());
        assert!(parse_interval("fast").is_err());
    }

    #[test]
    fn arguments_default_to_auto_at_ten_hertz_on_the_real_roots() {
        let cli = Cli::parse_from(["agent"]);
        assert_eq!(cli.energy.rapl_mode, RaplMode::Auto);
        assert_eq!(cli.energy.interval, Duration::from_millis(100));
        assert_eq!(cli.energy.paths(), EnergyPaths::default());
        let cli = Cli::parse_from([
            "agent",
            "--rapl-mode=msr",
            "--msr-cpus=0,8",
            "--interval=50ms",
        ]);
        assert_eq!(cli.energy.rapl_mode, RaplMode::Msr);
        assert_eq!(cli.energy.msr_cpus, Some(vec![0, 8]));
        assert_eq!(cli.energy.interval, Duration::from_millis(50));
    }
}
