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

/// `--gpu`, `--nvml-lib`. (The CPU sysfs and procfs roots are the energy options'
/// `--cpu-sysfs-root` and `--procfs-root`, passed to [`TelemetryArgs::config`].)
#[derive(Clone, Debug, clap::Args)]
pub struct TelemetryArgs {
    /// GPU telemetry source.
    #[arg(long, value_enum, default_value_t = GpuArg::Nvml)]
    pub gpu: GpuArg,
    /// NVML library to load instead of `libnvidia-ml.so.1`, then `libnvidia-ml.so`.
    #[arg(long)]
    pub nvml_lib: Option<PathBuf>,
}

impl TelemetryArgs {
    /// The configuration for these options, with the agent's procfs and CPU sysfs roots and
    /// its retention.
    pub fn config(
        &self,
        proc_root: &Path,
        cpu_sysfs_root: &Path,
        retention_ns: u64,
    ) -> TelemetryConfig {
        TelemetryConfig {
            proc_root: proc_root.to_owned(),
            cpu_sysfs_root: cpu_sysfs_root.to_owned(),
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
        let cpu = Path::new("/sys/devices/system/cpu");
        let d = Cli::try_parse_from(["x"])?
            .t
            .config(Path::new("/proc"), cpu, 5);
        assert_eq!(d.gpu, GpuMode::Nvml { lib_path: None });
        assert_eq!(d.cpu_sysfs_root, PathBuf::from("/sys/devices/system/cpu"));
        assert_eq!(d.pid_retention_ns, 5);
        let c = Cli::try_parse_from(["x", "--gpu", "off"])?
            .t
            .config(Path::new("/p"), cpu, 1);
        assert_eq!(c.gpu, GpuMode::Off);
        let n = Cli::try_parse_from(["x", "--nvml-lib", "/opt/libnvidia-ml.so.1"])?;
        assert_eq!(
            n.t.config(Path::new("/p"), cpu, 1).gpu,
            GpuMode::Nvml {
                lib_path: Some(PathBuf::from("/opt/libnvidia-ml.so.1"))
            }
        );
        Ok(())
    }

    #[derive(Parser)]
    struct WithEnergy {
        #[command(flatten)]
        energy: crate::energy::auto::EnergyArgs,
        #[command(flatten)]
        t: TelemetryArgs,
    }

    #[test]
    fn flattens_beside_the_energy_options_without_clashes() -> Result<(), clap::Error> {
        use clap::CommandFactory;
        WithEnergy::command().debug_assert();
        let w = WithEnergy::try_parse_from(["x", "--gpu", "off", "--interval", "100ms"])?;
        assert_eq!(w.t.gpu, GpuArg::Off);
        let _ = &w.energy;
        Ok(())
    }
}
