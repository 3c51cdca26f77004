//! The model source: power estimated from CPU utilisation where no RAPL counter is readable.
//!
//! Per logical CPU, `P = idle + (max − idle) × utilisation`, with idle and max watts per vCPU
//! from Cloud Carbon Footprint's SPECpower-derived AWS table (per microarchitecture; the table's
//! average 0.74 W / 3.5 W when the CPU model is not recognised). Utilisation per CPU comes from
//! the `cpuN` lines of `<procfs root>/stat` between two ticks. The source exposes one virtual
//! package counter per package (cumulative µJ), so the same meter, flags and per-package
//! structure apply. Its relative uncertainty is larger and explicit (see `docs/energy.md`).

use super::msr::CpuId;
use super::topology::Topology;
use super::{
    CounterSpec, EnergySource, EnergySourceKind, PackageInfo, ReadError, SourceError, ZoneInfo,
    ZoneKind,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Idle and full-load watts per logical CPU.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelCoefficients {
    /// Which table row was used.
    pub label: String,
    /// Watts per logical CPU at 0 % utilisation.
    pub idle_w_per_cpu: f64,
    /// Watts per logical CPU at 100 % utilisation.
    pub max_w_per_cpu: f64,
    /// Relative standard uncertainty of the resulting energy.
    pub relative_uncertainty: f64,
}

/// Cloud Carbon Footprint, `AWS_CLOUD_CONSTANTS` (`MIN_WATTS_BY_COMPUTE_PROCESSOR`,
/// `MAX_WATTS_BY_COMPUTE_PROCESSOR`), W per vCPU, derived from SPECpower_ssj2008 results.
pub const CCF_AWS_TABLE: &[(&str, f64, f64)] = &[
    ("Cascade Lake", 0.64, 3.97),
    ("Skylake", 0.65, 4.26),
    ("Broadwell", 0.71, 3.69),
    ("Haswell", 1.00, 4.74),
    ("Coffee Lake", 1.14, 5.42),
    ("Sandy Bridge", 2.17, 8.58),
    ("Ivy Bridge", 3.04, 8.25),
    ("AMD EPYC 1st Gen", 0.82, 2.55),
    ("AMD EPYC 2nd Gen", 0.47, 1.69),
];

/// The table's stated averages (`MIN_WATTS_AVG`, `MAX_WATTS_AVG`): the default.
pub const CCF_AWS_AVERAGE: (f64, f64) = (0.74, 3.5);

/// Relative uncertainty when the CPU model matched a table row.
pub const MODEL_MATCHED_UNCERTAINTY: f64 = 0.30;
/// Relative uncertainty with the table average (unknown CPU model).
pub const MODEL_DEFAULT_UNCERTAINTY: f64 = 0.50;

impl ModelCoefficients {
    /// The default: the table average.
    pub fn average() -> ModelCoefficients {
        ModelCoefficients {
            label: "CCF AWS average".to_owned(),
            idle_w_per_cpu: CCF_AWS_AVERAGE.0,
            max_w_per_cpu: CCF_AWS_AVERAGE.1,
            relative_uncertainty: MODEL_DEFAULT_UNCERTAINTY,
        }
    }

    /// Pick the table row for a `/proc/cpuinfo` model name, or the average.
    pub fn for_model_name(model_name: &str) -> ModelCoefficients {
        match microarchitecture(model_name) {
            Some(arch) => CCF_AWS_TABLE
                .iter()
                .find(|(label, _, _)| *label == arch)
                .map(|&(label, idle, max)| ModelCoefficients {
                    label: format!("CCF AWS {label}"),
                    idle_w_per_cpu: idle,
                    max_w_per_cpu: max,
                    relative_uncertainty: MODEL_MATCHED_UNCERTAINTY,
                })
                .unwrap_or_else(ModelCoefficients::average),
            None => ModelCoefficients::average(),
        }
    }

    /// Watts of `cpus` logical CPUs whose utilisations sum to `busy_cpus` (0..=cpus).
    pub fn power_w(&self, cpus: usize, busy_cpus: f64) -> f64 {
        let busy = busy_cpus.clamp(0.0, cpus as f64);
        cpus as f64 * self.idle_w_per_cpu + (self.max_w_per_cpu - self.idle_w_per_cpu) * busy
    }
}

/// Map a model name to a table row by the vendors' naming rules.
pub fn microarchitecture(name: &str) -> Option<&'static str> {
    let words: Vec<&str> = name.split_whitespace().collect();
    let number_after = |key: &str| {
        words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(key))
            .and_then(|i| words.get(i + 1))
            .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_digit()))
    };
    if let Some(n) = number_after("EPYC") {
        // EPYC 7xx1 = Naples (1st gen), 7xx2 = Rome (2nd gen).
        return match n.len().checked_sub(1).and_then(|i| n.get(i..)) {
            Some("1") => Some("AMD EPYC 1st Gen"),
            Some("2") => Some("AMD EPYC 2nd Gen"),
            _ => None,
        };
    }
    for tier in ["Platinum", "Gold", "Silver", "Bronze"] {
        if let Some(n) = number_after(tier) {
            // Xeon Scalable: the second digit is the generation (8175 Skylake, 8275 Cascade Lake).
            return match n.as_bytes().get(1) {
                Some(b'1') => Some("Skylake"),
                Some(b'2') => Some("Cascade Lake"),
                _ => None,
            };
        }
    }
    if name.contains("E5-") || name.contains("E7-") {
        return Some(if name.contains(" v4") {
            "Broadwell"
        } else if name.contains(" v3") {
            "Haswell"
        } else if name.contains(" v2") {
            "Ivy Bridge"
        } else {
            "Sandy Bridge"
        });
    }
    if words
        .iter()
        .any(|w| w.starts_with("E-21") || w.starts_with("E-22"))
    {
        return Some("Coffee Lake");
    }
    None
}

/// CPU → (busy jiffies, busy + idle jiffies).
pub type CpuJiffies = BTreeMap<u32, (u64, u64)>;

/// Energy estimated from `/proc/stat` utilisation.
#[derive(Debug)]
pub struct ModelSource {
    stat_path: PathBuf,
    coefficients: ModelCoefficients,
    zones: Vec<ZoneInfo>,
    packages: Vec<PackageInfo>,
    prev: Option<(u64, CpuJiffies)>,
    energy_uj: Vec<f64>,
    sampled: bool,
}

impl ModelSource {
    /// A model over `<procfs_root>/stat`, packages from `cpu_root`, coefficients from the model
    /// name in `<procfs_root>/cpuinfo` unless given.
    pub fn open(
        procfs_root: &Path,
        cpu_root: &Path,
        coefficients: Option<ModelCoefficients>,
    ) -> Result<ModelSource, SourceError> {
        let stat_path = procfs_root.join("stat");
        let text = std::fs::read_to_string(&stat_path).map_err(|source| SourceError::Procfs {
            path: stat_path.clone(),
            source,
        })?;
        let stat = parse_stat(&text);
        if stat.is_empty() {
            return Err(SourceError::Malformed {
                path: stat_path,
                what: "no `cpuN` lines".to_owned(),
            });
        }
        let coefficients = coefficients.unwrap_or_else(|| {
            CpuId::read(procfs_root)
                .map(|id| ModelCoefficients::for_model_name(&id.model_name))
                .unwrap_or_else(|_| ModelCoefficients::average())
        });
        let mut topology = Topology::read(cpu_root).unwrap_or_default();
        if topology.is_empty() {
            topology = Topology::single_package(stat.keys().copied());
        }
        let packages = topology.packages();
        let zones = packages
            .iter()
            .map(|p| {
                let max_w = coefficients.max_w_per_cpu * p.cpus.len().max(1) as f64;
                ZoneInfo {
                    id: format!("model:package-{}", p.package),
                    name: format!("package-{}", p.package),
                    kind: ZoneKind::Package,
                    package: Some(p.package),
                    counter: CounterSpec {
                        modulus: u64::MAX,
                        uj_num: 1,
                        uj_den: 1,
                        max_power_uw: (max_w * 2e6) as u64 + 1_000_000,
                    },
                }
            })
            .collect::<Vec<_>>();
        Ok(ModelSource {
            stat_path,
            coefficients,
            energy_uj: vec![0.0; zones.len()],
            zones,
            packages,
            prev: None,
            sampled: false,
        })
    }

    /// The coefficients in use.
    pub fn coefficients(&self) -> &ModelCoefficients {
        &self.coefficients
    }
}

/// `cpuN` lines of `/proc/stat` → CPU → (busy jiffies, busy + idle jiffies). Busy is
/// user + nice + system + irq + softirq (guest time is already inside user/nice); idle is
/// idle + iowait; steal (time the hypervisor gave elsewhere) is in neither.
pub fn parse_stat(text: &str) -> CpuJiffies {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields
            .next()
            .and_then(|h| h.strip_prefix("cpu"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let v: Vec<u64> = fields.take(7).map(|f| f.parse().unwrap_or(0)).collect();
        if v.len() < 4 {
            continue;
        }
        let get = |i: usize| v.get(i).copied().unwrap_or(0);
        let busy = get(0) + get(1) + get(2) + get(5) + get(6);
        out.insert(cpu, (busy, busy + get(3) + get(4)));
    }
    out
}

impl EnergySource for ModelSource {
    fn kind(&self) -> EnergySourceKind {
        EnergySourceKind::Model
    }
    fn relative_uncertainty(&self) -> f64 {
        self.coefficients.relative_uncertainty
    }
    fn zones(&self) -> &[ZoneInfo] {
        &self.zones
    }
    fn packages(&self) -> &[PackageInfo] {
        &self.packages
    }
    fn begin_tick(&mut self, at: u64) -> Result<(), ReadError> {
        self.sampled = false;
        let text = std::fs::read_to_string(&self.stat_path).map_err(|source| ReadError::Io {
            path: self.stat_path.clone(),
            source,
        })?;
        let now = parse_stat(&text);
        if let Some((prev_at, prev)) = &self.prev {
            let seconds = at.saturating_sub(*prev_at) as f64 / 1e9;
            for (i, p) in self.packages.iter().enumerate() {
                let busy_cpus: f64 = p
                    .cpus
                    .iter()
                    .filter_map(|c| Some((prev.get(c)?, now.get(c)?)))
                    .map(|(&(b0, t0), &(b1, t1))| {
                        let dt = t1.saturating_sub(t0);
                        if dt == 0 {
                            0.0
                        } else {
                            b1.saturating_sub(b0) as f64 / dt as f64
                        }
                    })
                    .sum();
                let watts = self.coefficients.power_w(p.cpus.len(), busy_cpus);
                if let Some(e) = self.energy_uj.get_mut(i) {
                    *e += watts * seconds * 1e6;
                }
            }
        }
        self.prev = Some((at, now));
        self.sampled = true;
        Ok(())
    }
    fn read_zone(&mut self, index: usize, _at: u64) -> Result<u64, ReadError> {
        match self.energy_uj.get(index) {
            Some(&e) if self.sampled => Ok(e as u64),
            _ => Err(ReadError::Parse {
                path: self.stat_path.clone(),
                text: "no utilisation sample this tick".to_owned(),
            }),
        }
    }
    fn describe(&self) -> String {
        format!(
            "model from {} ({}: idle {} W, max {} W per CPU, {} packages)",
            self.stat_path.display(),
            self.coefficients.label,
            self.coefficients.idle_w_per_cpu,
            self.coefficients.max_w_per_cpu,
            self.packages.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_map_to_table_rows() {
        assert_eq!(microarchitecture("AMD EPYC 7R32"), Some("AMD EPYC 2nd Gen"));
        assert_eq!(microarchitecture("AMD EPYC 7571"), Some("AMD EPYC 1st Gen"));
        assert_eq!(
            microarchitecture("Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz"),
            Some("Skylake")
        );
        assert_eq!(
            microarchitecture("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"),
            Some("Cascade Lake")
        );
        assert_eq!(
            microarchitecture("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz"),
            Some("Broadwell")
        );
        assert_eq!(microarchitecture("Intel(R) Xeon(R) Processor"), None);
        // 8 CPUs, 2 fully busy, Skylake: 8 × 0.65 + (4.26 − 0.65) × 2 = 12.42 W.
        let c = ModelCoefficients::for_model_name("Intel(R) Xeon(R) Platinum 8175M CPU");
        assert!((c.power_w(8, 2.0) - 12.42).abs() < 1e-9);
    }
}
