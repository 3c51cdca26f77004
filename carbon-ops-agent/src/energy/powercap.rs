//! RAPL through the kernel's powercap sysfs tree (the default source).
//!
//! Zones are found under a root (default `/sys/class/powercap`) whose entries are symlinks into
//! `/sys/devices/virtual/powercap/...`; sub-zones are found both as top-level class entries and
//! as sub-directories of their parent, and de-duplicated by canonical path. Each zone's counter
//! is `energy_uj`, which wraps at its own `max_energy_range_uj` (modulus = range + 1, see
//! `docs/energy.md`). The hierarchy is kept: a sub-zone's package is its parent's.

use super::topology::Topology;
use super::{
    CounterSpec, EnergySource, EnergySourceKind, PackageInfo, ReadError, SourceError, ZoneInfo,
    ZoneKind,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The default powercap class root.
pub const DEFAULT_POWERCAP_ROOT: &str = "/sys/class/powercap";

/// Default plausibility ceiling per zone: no CPU package or DRAM domain draws 1 kW.
pub const DEFAULT_MAX_ZONE_POWER_UW: u64 = 1_000_000_000;

/// Relative standard uncertainty of RAPL package energy (see `docs/energy.md`).
pub const RAPL_RELATIVE_UNCERTAINTY: f64 = 0.05;

/// RAPL zones read through powercap sysfs.
#[derive(Debug)]
pub struct PowercapSource {
    root: PathBuf,
    zones: Vec<ZoneInfo>,
    files: Vec<PathBuf>,
    packages: Vec<PackageInfo>,
}

struct Found {
    id: String,
    dir: PathBuf,
}

impl PowercapSource {
    /// Find every zone under `root`, with packages and CPUs from `cpu_root`.
    pub fn discover(root: &Path, cpu_root: &Path) -> Result<PowercapSource, SourceError> {
        let mut found: BTreeMap<String, Found> = BTreeMap::new();
        let mut seen_canonical = BTreeSet::new();
        let entries = std::fs::read_dir(root).map_err(|_| SourceError::NoPowercapZones {
            root: root.to_path_buf(),
        })?;
        let mut stack: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        while let Some(dir) = stack.pop() {
            let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            // Zone directories are `<control type>:<n>[:<m>...]`; control-type dirs have no ':'.
            if !id.contains(':') || !dir.join("energy_uj").exists() && !dir.join("name").exists() {
                continue;
            }
            let canonical = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
            if !seen_canonical.insert(canonical) || found.contains_key(&id) {
                continue;
            }
            if let Ok(children) = std::fs::read_dir(&dir) {
                stack.extend(children.flatten().map(|e| e.path()));
            }
            found.insert(id.clone(), Found { id, dir });
        }
        if found.is_empty() {
            return Err(SourceError::NoPowercapZones {
                root: root.to_path_buf(),
            });
        }
        let names: BTreeMap<String, String> = found
            .values()
            .map(|f| {
                (
                    f.id.clone(),
                    read_trimmed(&f.dir.join("name")).unwrap_or_default(),
                )
            })
            .collect();
        let mut zones = Vec::new();
        let mut files = Vec::new();
        for f in found.values() {
            let name = names.get(&f.id).cloned().unwrap_or_default();
            let parent_name = parent_id(&f.id).and_then(|p| names.get(&p));
            let kind = zone_kind(&f.id, &name);
            let package =
                package_index(&name).or_else(|| parent_name.and_then(|p| package_index(p)));
            let package = if kind == ZoneKind::Psys {
                None
            } else {
                package
            };
            let range = read_trimmed(&f.dir.join("max_energy_range_uj"))
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(u64::MAX - 1);
            zones.push(ZoneInfo {
                id: f.id.clone(),
                name,
                kind,
                package,
                counter: CounterSpec::microjoules(range, DEFAULT_MAX_ZONE_POWER_UW),
            });
            files.push(f.dir.join("energy_uj"));
        }
        let topology = Topology::read(cpu_root).unwrap_or_default();
        let mut packages = topology.packages();
        for z in &zones {
            if let Some(p) = z.package
                && !packages.iter().any(|q| q.package == p)
            {
                packages.push(PackageInfo {
                    package: p,
                    cpus: Vec::new(),
                });
            }
        }
        packages.sort_by_key(|p| p.package);
        Ok(PowercapSource {
            root: root.to_path_buf(),
            zones,
            files,
            packages,
        })
    }

    /// Replace the plausibility ceiling of every zone (W); wraps are only accepted when this
    /// power over the elapsed time could have produced them.
    pub fn with_max_zone_power_w(mut self, watts: f64) -> PowercapSource {
        let uw = (watts.max(0.0) * 1e6) as u64;
        for z in &mut self.zones {
            z.counter.max_power_uw = uw;
        }
        self
    }

    /// The root this source was discovered under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Read every zone once; `Ok` if at least one is readable (used by auto selection).
    pub fn probe(&mut self) -> Result<(), ReadError> {
        let mut last = None;
        for i in 0..self.files.len() {
            match read_counter(&self.files[i]) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ReadError::Parse {
            path: self.root.clone(),
            text: String::new(),
        }))
    }
}

impl EnergySource for PowercapSource {
    fn kind(&self) -> EnergySourceKind {
        EnergySourceKind::Sysfs
    }
    fn relative_uncertainty(&self) -> f64 {
        RAPL_RELATIVE_UNCERTAINTY
    }
    fn zones(&self) -> &[ZoneInfo] {
        &self.zones
    }
    fn packages(&self) -> &[PackageInfo] {
        &self.packages
    }
    fn read_zone(&mut self, index: usize, _at: u64) -> Result<u64, ReadError> {
        let path = self.files.get(index).ok_or_else(|| ReadError::Parse {
            path: self.root.clone(),
            text: format!("no zone #{index}"),
        })?;
        read_counter(path)
    }
    fn describe(&self) -> String {
        let ids: Vec<String> = self
            .zones
            .iter()
            .map(|z| format!("{}={}", z.id, z.name))
            .collect();
        format!(
            "powercap sysfs under {} with {} zones ({})",
            self.root.display(),
            self.zones.len(),
            ids.join(", ")
        )
    }
}

/// Read one `energy_uj` file: open, one `read` into a stack buffer, parse. No allocation.
/// sysfs hands the whole attribute over in the first read, so one read is enough (three
/// syscalls per zone); the file is opened afresh each time so a zone that vanished or was
/// re-created by a module reload is seen as such.
pub fn read_counter(path: &Path) -> Result<u64, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buf = [0u8; 32];
    let len = file.read(&mut buf).map_err(io)?;
    parse_u64(&buf[..len]).ok_or_else(|| ReadError::Parse {
        path: path.to_path_buf(),
        text: String::from_utf8_lossy(&buf[..len]).into_owned(),
    })
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    text.parse().ok()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// `intel-rapl:0:1` → `intel-rapl:0`; top-level zones have no parent.
fn parent_id(id: &str) -> Option<String> {
    let (head, _) = id.rsplit_once(':')?;
    head.contains(':').then(|| head.to_owned())
}

/// `package-1` or `package-1-die-0` → 1.
fn package_index(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("package-")?;
    rest.split('-').next()?.parse().ok()
}

fn zone_kind(id: &str, name: &str) -> ZoneKind {
    if id.starts_with("intel-rapl-mmio") {
        return ZoneKind::Mmio;
    }
    match name {
        "psys" => ZoneKind::Psys,
        "core" => ZoneKind::Core,
        "uncore" => ZoneKind::Uncore,
        "dram" => ZoneKind::Dram,
        n if n.starts_with("package") => ZoneKind::Package,
        _ => ZoneKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_by_hand() {
        assert_eq!(parent_id("intel-rapl:0:1").as_deref(), Some("intel-rapl:0"));
        assert_eq!(parent_id("intel-rapl:0"), None);
        assert_eq!(package_index("package-1-die-0"), Some(1));
        assert_eq!(package_index("core"), None);
        assert_eq!(zone_kind("intel-rapl-mmio:0", "package-0"), ZoneKind::Mmio);
        assert_eq!(zone_kind("intel-rapl:1", "psys"), ZoneKind::Psys);
        assert_eq!(parse_u64(b"12345\n"), Some(12345));
        assert_eq!(parse_u64(b"\n"), None);
    }
}
