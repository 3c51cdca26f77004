//! CPU topology: which logical CPUs belong to which physical package (and core).
//!
//! Read from `<cpu root>/cpu<N>/topology/{physical_package_id,core_id}`; the real root is
//! `/sys/devices/system/cpu`. Offline CPUs have no `topology` directory and are left out.

use super::{PackageInfo, SourceError};
use std::collections::BTreeMap;
use std::path::Path;

/// The default CPU sysfs root.
pub const DEFAULT_CPU_ROOT: &str = "/sys/devices/system/cpu";

/// Logical CPU → (package, core).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    cpus: BTreeMap<u32, (u32, u32)>,
}

impl Topology {
    /// Read the topology under `cpu_root`.
    pub fn read(cpu_root: &Path) -> Result<Topology, SourceError> {
        let entries = std::fs::read_dir(cpu_root).map_err(|source| SourceError::Procfs {
            path: cpu_root.to_path_buf(),
            source,
        })?;
        let mut cpus = BTreeMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|s| s.strip_prefix("cpu"))
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let topo = entry.path().join("topology");
            let Some(package) = read_u32(&topo.join("physical_package_id")) else {
                continue;
            };
            let core = read_u32(&topo.join("core_id")).unwrap_or(n);
            cpus.insert(n, (package, core));
        }
        Ok(Topology { cpus })
    }

    /// A topology with every given CPU in package 0 (fallback when sysfs has none).
    pub fn single_package(cpus: impl IntoIterator<Item = u32>) -> Topology {
        Topology {
            cpus: cpus.into_iter().map(|c| (c, (0, c))).collect(),
        }
    }

    /// Whether no CPU was found.
    pub fn is_empty(&self) -> bool {
        self.cpus.is_empty()
    }

    /// The package of a CPU.
    pub fn package_of(&self, cpu: u32) -> Option<u32> {
        self.cpus.get(&cpu).map(|&(p, _)| p)
    }

    /// Packages with their CPUs, ascending.
    pub fn packages(&self) -> Vec<PackageInfo> {
        let mut map: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (&cpu, &(package, _)) in &self.cpus {
            map.entry(package).or_default().push(cpu);
        }
        map.into_iter()
            .map(|(package, cpus)| PackageInfo { package, cpus })
            .collect()
    }

    /// The first CPU of each package: the one CPU an MSR reader needs per package.
    pub fn first_cpu_per_package(&self) -> Vec<(u32, u32)> {
        self.packages()
            .into_iter()
            .filter_map(|p| p.cpus.first().map(|&c| (p.package, c)))
            .collect()
    }

    /// The last (highest-numbered) CPU of each physical core of each package:
    /// `(package, core, cpu)`. With SMT this is a sibling, not the package's reader CPU.
    pub fn last_cpu_per_core(&self) -> Vec<(u32, u32, u32)> {
        let mut seen: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        for (&cpu, &(package, core)) in &self.cpus {
            seen.insert((package, core), cpu);
        }
        seen.into_iter().map(|((p, c), cpu)| (p, c, cpu)).collect()
    }
}

fn read_u32(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
