//! The agent's telemetry options, as a clap `Args` struct to flatten into the daemon's.

use std::path::{Path, PathBuf};

use super::{GpuMode, TelemetryConfig};

/// Which GPU source to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuArg {
    /// NVML, loaded at run time; reported unavailable (not an error) without the driver.
    #[default]
    Nvml,
    /// No GPU telemetry.
    Off,
}

/// `--gpu`, `--nvml-lib`, `--cpu-sysfs-root`.
#[derive(Clone, Debug, clap::Args)]
pub struct TelemetryArgs {
    /// GPU telemetry source.
    #[arg(long, value_enum, default_value_t = GpuArg::Nvml)]
    pub gpu: GpuArg,
    /// NVML library to load instead of `libnvidia-ml.so.1`, then `libnvidia-ml.so`.
    #[arg(long)]
    pub nvml_lib: Option<PathBuf>,
    /// CPU sysfs root, for `cpuN/cpufreq/scaling_cur_freq`.
    #[arg(long, default_value = "/sys/devices/system/cpu")]
    pub cpu_sysfs_root: PathBuf,
}

impl TelemetryArgs {
    /// The configuration for these options, with the agent's procfs root and retention.
    pub fn config(&self, proc_root: &Path, retention_ns: u64) -> TelemetryConfig {
        TelemetryConfig {
            proc_root: proc_root.to_owned(),
            cpu_sysfs_root: self.cpu_sysfs_root.clone(),
            gpu: match self.gpu {
                GpuArg::Nvml => GpuMode::Nvml {
                    lib_path: self.nvml_lib.clone(),
                },
                GpuArg::Off => GpuMode::Off,
            },
            pid_retention_ns: retention_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        t: TelemetryArgs,
    }

    #[test]
    fn defaults_and_flags_map_to_config() -> Result<(), clap::Error> {
        let d = Cli::try_parse_from(["x"])?.t.config(Path::new("/proc"), 5);
        assert_eq!(d.gpu, GpuMode::Nvml { lib_path: None });
        assert_eq!(d.cpu_sysfs_root, PathBuf::from("/sys/devices/system/cpu"));
        assert_eq!(d.pid_retention_ns, 5);
        let c = Cli::try_parse_from(["x", "--gpu", "off"])?
            .t
            .config(Path::new("/p"), 1);
        assert_eq!(c.gpu, GpuMode::Off);
        let n = Cli::try_parse_from(["x", "--nvml-lib", "/opt/libnvidia-ml.so.1"])?;
        assert_eq!(
            n.t.config(Path::new("/p"), 1).gpu,
            GpuMode::Nvml {
                lib_path: Some(PathBuf::from("/opt/libnvidia-ml.so.1"))
            }
        );
        Ok(())
    }
}
