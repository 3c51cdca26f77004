//! RAPL read straight from model-specific registers through `/dev/cpu/<n>/msr`.
//!
//! One CPU is read per package (never one read per thread multiplied by the thread count), with
//! `pread` at the register's address. The energy counters are the low 32 bits of the register;
//! they are differenced as raw 32-bit ticks (modulus 2^32) and converted with the unit from the
//! power-unit register only after accumulation (see [`super::counter`]). Intel: units 0x606,
//! PKG 0x611, PP0 0x639, PP1 0x641, DRAM 0x619 (fixed 15.3 µJ unit on servers), PSYS 0x64D.
//! AMD family 17h+: units 0xC0010299, core 0xC001029A (per physical core), package 0xC001029B.
//! A domain whose counter reads 0 when the source opens is treated as absent, as the kernel does.

use super::topology::Topology;
use super::{
    CounterSpec, EnergySource, EnergySourceKind, PackageInfo, ReadError, SourceError, ZoneInfo,
    ZoneKind,
};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Intel `MSR_RAPL_POWER_UNIT`.
pub const INTEL_POWER_UNIT: u64 = 0x606;
/// Intel `MSR_PKG_ENERGY_STATUS`.
pub const INTEL_PKG_ENERGY: u64 = 0x611;
/// Intel `MSR_DRAM_ENERGY_STATUS`.
pub const INTEL_DRAM_ENERGY: u64 = 0x619;
/// Intel `MSR_PP0_ENERGY_STATUS` (cores).
pub const INTEL_PP0_ENERGY: u64 = 0x639;
/// Intel `MSR_PP1_ENERGY_STATUS` (uncore / graphics).
pub const INTEL_PP1_ENERGY: u64 = 0x641;
/// Intel `MSR_PLATFORM_ENERGY_STATUS` (psys).
pub const INTEL_PSYS_ENERGY: u64 = 0x64D;
/// AMD `MSR_AMD_RAPL_POWER_UNIT`.
pub const AMD_POWER_UNIT: u64 = 0xC001_0299;
/// AMD `MSR_AMD_CORE_ENERGY_STATUS` (per core).
pub const AMD_CORE_ENERGY: u64 = 0xC001_029A;
/// AMD `MSR_AMD_PKG_ENERGY_STATUS`.
pub const AMD_PKG_ENERGY: u64 = 0xC001_029B;

/// The default msr device root.
pub const DEFAULT_MSR_ROOT: &str = "/dev/cpu";

/// Intel server models whose DRAM domain uses a fixed 15.3 µJ unit instead of the 0x606 unit
/// (the kernel's `rapl_defaults_hsw_server` / `spr_server` list: Haswell-X, Broadwell-X/D,
/// Skylake-X, Xeon Phi KNL/KNM, Ice Lake-X/D, Sapphire/Emerald Rapids, Granite Rapids).
pub const INTEL_SERVER_DRAM_MODELS: &[u32] = &[
    0x3F, 0x4F, 0x56, 0x55, 0x57, 0x85, 0x6A, 0x6C, 0x8F, 0xCF, 0xAD, 0xAE,
];

/// Options of the MSR source (`--msr-cpus`, per-core AMD zones, plausibility ceiling).
#[derive(Clone, Debug, PartialEq)]
pub struct MsrOptions {
    /// Read these CPUs (one per package) instead of the first CPU of each package.
    pub cpus: Option<Vec<u32>>,
    /// Also report AMD per-core energy (one read per physical core per tick).
    pub amd_per_core: bool,
    /// Plausibility ceiling per zone in W.
    pub max_zone_power_w: f64,
}

impl Default for MsrOptions {
    fn default() -> Self {
        MsrOptions {
            cpus: None,
            amd_per_core: false,
            max_zone_power_w: 1000.0,
        }
    }
}

/// CPU identity from `/proc/cpuinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuId {
    pub vendor: String,
    pub family: u32,
    pub model: u32,
    pub model_name: String,
}

impl CpuId {
    /// Parse the first processor block of `/proc/cpuinfo` text.
    pub fn parse(text: &str) -> CpuId {
        let mut id = CpuId::default();
        for line in text.lines() {
            if line.trim().is_empty() && !id.vendor.is_empty() {
                break;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "vendor_id" => id.vendor = v.to_owned(),
                "cpu family" => id.family = v.parse().unwrap_or(0),
                "model" => id.model = v.parse().unwrap_or(0),
                "model name" => id.model_name = v.to_owned(),
                _ => {}
            }
        }
        id
    }

    /// Read `<procfs_root>/cpuinfo`.
    pub fn read(procfs_root: &Path) -> Result<CpuId, SourceError> {
        let path = procfs_root.join("cpuinfo");
        let text = std::fs::read_to_string(&path)
            .map_err(|source| SourceError::Procfs { path, source })?;
        Ok(CpuId::parse(&text))
    }
}

/// RAPL zones read from `/dev/cpu/<n>/msr`.
#[derive(Debug)]
pub struct MsrSource {
    zones: Vec<ZoneInfo>,
    reads: Vec<(usize, u64)>,
    files: Vec<(PathBuf, File)>,
    packages: Vec<PackageInfo>,
    vendor: String,
}

impl MsrSource {
    /// Open the msr devices under `msr_root` for one CPU per package (topology from
    /// `cpu_root`, vendor from `<procfs_root>/cpuinfo`).
    pub fn open(
        msr_root: &Path,
        cpu_root: &Path,
        procfs_root: &Path,
        opts: &MsrOptions,
    ) -> Result<MsrSource, SourceError> {
        let cpu = CpuId::read(procfs_root)?;
        let topology = Topology::read(cpu_root).unwrap_or_default();
        let per_package: Vec<(u32, u32)> = match &opts.cpus {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, &c)| (topology.package_of(c).unwrap_or(i as u32), c))
                .collect(),
            None if topology.is_empty() => vec![(0, 0)],
            None => topology.first_cpu_per_package(),
        };
        let max_uw = (opts.max_zone_power_w.max(0.0) * 1e6) as u64;
        let mut src = MsrSource {
            zones: Vec::new(),
            reads: Vec::new(),
            files: Vec::new(),
            packages: topology.packages(),
            vendor: cpu.vendor.clone(),
        };
        let amd = matches!(cpu.vendor.as_str(), "AuthenticAMD" | "HygonGenuine");
        if amd && cpu.family < 0x17 || !amd && cpu.vendor != "GenuineIntel" {
            return Err(SourceError::MsrUnsupportedCpu {
                vendor: cpu.vendor,
                family: cpu.family,
            });
        }
        for (i, &(package, c)) in per_package.iter().enumerate() {
            let f = src.open_cpu(msr_root, c)?;
            let unit_reg = if amd {
                AMD_POWER_UNIT
            } else {
                INTEL_POWER_UNIT
            };
            let units = src
                .read_reg(f, unit_reg)
                .map_err(|source| SourceError::MsrRegister {
                    path: src.files[f].0.clone(),
                    register: unit_reg,
                    source,
                })?;
            let esu = ((units >> 8) & 0x1f) as u32;
            let spec = CounterSpec {
                modulus: 1 << 32,
                uj_num: 1_000_000,
                uj_den: 1u64 << esu,
                max_power_uw: max_uw,
            };
            // As the kernel's `rapl_check_domain`: a domain whose counter reads 0 (or fails)
            // is not implemented; the package domain is always kept if readable.
            let try_zone = |src: &mut MsrSource, reg: u64, name: &str, kind, spec| {
                let present = match src.read_reg(f, reg) {
                    Ok(v) => kind == ZoneKind::Package || v & 0xFFFF_FFFF != 0,
                    Err(_) => false,
                };
                if present {
                    src.zones.push(ZoneInfo {
                        id: format!("msr:cpu{c}:{name}"),
                        name: name.to_owned(),
                        kind,
                        package: (kind != ZoneKind::Psys).then_some(package),
                        counter: spec,
                    });
                    src.reads.push((f, reg));
                }
            };
            let pkg_name = format!("package-{package}");
            if amd {
                try_zone(&mut src, AMD_PKG_ENERGY, &pkg_name, ZoneKind::Package, spec);
            } else {
                let dram_spec = if INTEL_SERVER_DRAM_MODELS.contains(&cpu.model) {
                    CounterSpec {
                        uj_num: 153,
                        uj_den: 10,
                        ..spec
                    }
                } else {
                    spec
                };
                try_zone(
                    &mut src,
                    INTEL_PKG_ENERGY,
                    &pkg_name,
                    ZoneKind::Package,
                    spec,
                );
                try_zone(&mut src, INTEL_PP0_ENERGY, "core", ZoneKind::Core, spec);
                try_zone(&mut src, INTEL_PP1_ENERGY, "uncore", ZoneKind::Uncore, spec);
                try_zone(
                    &mut src,
                    INTEL_DRAM_ENERGY,
                    "dram",
                    ZoneKind::Dram,
                    dram_spec,
                );
                if i == 0 {
                    try_zone(&mut src, INTEL_PSYS_ENERGY, "psys", ZoneKind::Psys, spec);
                }
            }
            if amd && opts.amd_per_core {
                for (p, core, cc) in topology.last_cpu_per_core() {
                    if p != package {
                        continue;
                    }
                    let fc = src.open_cpu(msr_root, cc)?;
                    if src
                        .read_reg(fc, AMD_CORE_ENERGY)
                        .is_ok_and(|v| v & 0xFFFF_FFFF != 0)
                    {
                        src.zones.push(ZoneInfo {
                            id: format!("msr:cpu{cc}:core"),
                            name: format!("core-{core}"),
                            kind: ZoneKind::Core,
                            package: Some(package),
                            counter: spec,
                        });
                        src.reads.push((fc, AMD_CORE_ENERGY));
                    }
                }
            }
        }
        if !src.zones.iter().any(|z| z.kind == ZoneKind::Package) {
            let path = src.files.first().map(|f| f.0.clone()).unwrap_or_default();
            return Err(SourceError::MsrRegister {
                path,
                register: if amd {
                    AMD_PKG_ENERGY
                } else {
                    INTEL_PKG_ENERGY
                },
                source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            });
        }
        for z in &src.zones {
            if let Some(p) = z.package
                && !src.packages.iter().any(|q| q.package == p)
            {
                src.packages.push(PackageInfo {
                    package: p,
                    cpus: Vec::new(),
                });
            }
        }
        src.packages.sort_by_key(|p| p.package);
        Ok(src)
    }

    fn open_cpu(&mut self, msr_root: &Path, cpu: u32) -> Result<usize, SourceError> {
        let path = msr_root.join(cpu.to_string()).join("msr");
        if let Some(i) = self.files.iter().position(|(p, _)| *p == path) {
            return Ok(i);
        }
        let file = File::open(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => SourceError::MsrMissing { path: path.clone() },
            _ => SourceError::MsrPermission {
                path: path.clone(),
                source,
            },
        })?;
        self.files.push((path, file));
        Ok(self.files.len() - 1)
    }

    fn read_reg(&self, file: usize, register: u64) -> std::io::Result<u64> {
        let (_, f) = self
            .files
            .get(file)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let mut buf = [0u8; 8];
        f.read_exact_at(&mut buf, register)?;
        Ok(u64::from_le_bytes(buf))
    }
}

impl EnergySource for MsrSource {
    fn kind(&self) -> EnergySourceKind {
        EnergySourceKind::Msr
    }
    fn relative_uncertainty(&self) -> f64 {
        super::powercap::RAPL_RELATIVE_UNCERTAINTY
    }
    fn zones(&self) -> &[ZoneInfo] {
        &self.zones
    }
    fn packages(&self) -> &[PackageInfo] {
        &self.packages
    }
    fn read_zone(&mut self, index: usize, _at: u64) -> Result<u64, ReadError> {
        let &(f, reg) = self.reads.get(index).ok_or_else(|| ReadError::Parse {
            path: PathBuf::new(),
            text: format!("no zone #{index}"),
        })?;
        let value = self.read_reg(f, reg).map_err(|source| ReadError::Io {
            path: self.files.get(f).map(|x| x.0.clone()).unwrap_or_default(),
            source,
        })?;
        Ok(value & 0xFFFF_FFFF)
    }
    fn describe(&self) -> String {
        let ids: Vec<&str> = self.zones.iter().map(|z| z.id.as_str()).collect();
        format!("msr ({}) zones {}", self.vendor, ids.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_first_block() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n\
                    model name\t: AMD EPYC 7763 64-Core Processor\n\nprocessor\t: 1\n";
        let id = CpuId::parse(text);
        assert_eq!(id.vendor, "AuthenticAMD");
        assert_eq!(id.family, 0x19);
        assert_eq!(id.model, 1);
        assert_eq!(id.model_name, "AMD EPYC 7763 64-Core Processor");
    }
}
