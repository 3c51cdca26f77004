//! Fake system trees for tests, benchmarks and dry runs: powercap, CPU topology, procfs and
//! msr devices laid out under a base directory exactly as the kernel lays them out.
//!
//! A powercap tree is built from a declarative list of zones. As on a real system, each zone's
//! directory lives under `sys/devices/virtual/powercap/<control type>/` (sub-zones nested in
//! their parent) and `sys/class/powercap/<zone>` is a relative symlink to it. The production
//! sources are then pointed at these roots; nothing here is used on the real read path.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One zone of a fake powercap tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeZone {
    /// `intel-rapl:0`, `intel-rapl:0:1`, `intel-rapl-mmio:0`.
    pub id: String,
    /// `package-0`, `core`, `uncore`, `dram`, `psys`.
    pub name: String,
    /// `max_energy_range_uj`: the counter takes the values `0..=max_range_uj`.
    pub max_range_uj: u64,
    /// Initial `energy_uj`.
    pub energy_uj: u64,
}

impl FakeZone {
    /// A zone description.
    pub fn new(id: &str, name: &str, max_range_uj: u64, energy_uj: u64) -> FakeZone {
        FakeZone {
            id: id.to_owned(),
            name: name.to_owned(),
            max_range_uj,
            energy_uj,
        }
    }
}

/// A fake powercap tree with a writer that advances counters modulo their range.
#[derive(Debug)]
pub struct FakePowercap {
    base: PathBuf,
    dirs: BTreeMap<String, PathBuf>,
    state: BTreeMap<String, (u64, u64)>,
}

fn control_type(id: &str) -> &str {
    id.split(':').next().unwrap_or(id)
}

impl FakePowercap {
    /// Build the tree under `base` (`base/sys/class/powercap` is the class root).
    pub fn build(base: &Path, zones: &[FakeZone]) -> io::Result<FakePowercap> {
        let class = base.join("sys/class/powercap");
        let devices = base.join("sys/devices/virtual/powercap");
        std::fs::create_dir_all(&class)?;
        let mut sorted: Vec<&FakeZone> = zones.iter().collect();
        sorted.sort_by_key(|z| z.id.matches(':').count());
        let mut fake = FakePowercap {
            base: base.to_path_buf(),
            dirs: BTreeMap::new(),
            state: BTreeMap::new(),
        };
        for z in sorted {
            let ct = control_type(&z.id);
            let parent =
                z.id.rsplit_once(':')
                    .map(|(h, _)| h)
                    .filter(|h| h.contains(':'));
            let rel = match parent.and_then(|p| fake.dirs.get(p)) {
                Some(p) => p.join(&z.id),
                None => PathBuf::from(ct).join(&z.id),
            };
            let dir = devices.join(&rel);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("name"), format!("{}\n", z.name))?;
            std::fs::write(
                dir.join("max_energy_range_uj"),
                format!("{}\n", z.max_range_uj),
            )?;
            std::fs::write(dir.join("energy_uj"), format!("{}\n", z.energy_uj))?;
            std::fs::write(dir.join("enabled"), "1\n")?;
            let ct_link = class.join(ct);
            if !ct_link.exists() {
                std::os::unix::fs::symlink(
                    Path::new("../../devices/virtual/powercap").join(ct),
                    &ct_link,
                )?;
            }
            std::os::unix::fs::symlink(
                Path::new("../../devices/virtual/powercap").join(&rel),
                class.join(&z.id),
            )?;
            fake.dirs.insert(z.id.clone(), rel);
            fake.state
                .insert(z.id.clone(), (z.energy_uj, z.max_range_uj));
        }
        Ok(fake)
    }

    /// The class root to discover under.
    pub fn class_root(&self) -> PathBuf {
        self.base.join("sys/class/powercap")
    }

    /// The real directory of a zone.
    pub fn zone_dir(&self, id: &str) -> Option<PathBuf> {
        self.dirs
            .get(id)
            .map(|rel| self.base.join("sys/devices/virtual/powercap").join(rel))
    }

    /// Current counter value of a zone.
    pub fn energy(&self, id: &str) -> Option<u64> {
        self.state.get(id).map(|&(v, _)| v)
    }

    /// Set a zone's counter. Written to a temporary file and renamed over `energy_uj`, so a
    /// concurrent reader always sees a whole value, as it does with the kernel's attribute
    /// (a truncate-then-write would let a reader see an empty file: a false stale zone).
    pub fn set_energy(&mut self, id: &str, value: u64) -> io::Result<()> {
        let dir = self
            .zone_dir(id)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let tmp = dir.join(".energy_uj.tmp");
        std::fs::write(&tmp, format!("{value}\n"))?;
        std::fs::rename(&tmp, dir.join("energy_uj"))?;
        if let Some(s) = self.state.get_mut(id) {
            s.0 = value;
        }
        Ok(())
    }

    /// Advance a zone's counter by `uj`, wrapping modulo `max_range_uj + 1`.
    pub fn advance(&mut self, id: &str, uj: u64) -> io::Result<()> {
        let (v, range) = self
            .state
            .get(id)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let modulus = u128::from(range) + 1;
        let next = (u128::from(v) + u128::from(uj)) % modulus;
        self.set_energy(id, u64::try_from(next).unwrap_or(0))
    }
}

/// Write `<base>/sys/devices/system/cpu/cpu<N>/topology/{physical_package_id,core_id}` for
/// each `(cpu, package, core)`; returns the CPU root.
pub fn write_cpu_topology(base: &Path, cpus: &[(u32, u32, u32)]) -> io::Result<PathBuf> {
    let root = base.join("sys/devices/system/cpu");
    for &(cpu, package, core) in cpus {
        let t = root.join(format!("cpu{cpu}/topology"));
        std::fs::create_dir_all(&t)?;
        std::fs::write(t.join("physical_package_id"), format!("{package}\n"))?;
        std::fs::write(t.join("core_id"), format!("{core}\n"))?;
    }
    std::fs::create_dir_all(root.join("cpufreq"))?;
    Ok(root)
}

/// Write `<base>/proc/{stat,cpuinfo}`; `jiffies` is per CPU `(busy, idle)`. Returns the root.
pub fn write_procfs(base: &Path, cpuinfo: &str, jiffies: &[(u64, u64)]) -> io::Result<PathBuf> {
    let root = base.join("proc");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("cpuinfo"), cpuinfo)?;
    let (b, i) = jiffies
        .iter()
        .fold((0, 0), |(b, i), &(b1, i1)| (b + b1, i + i1));
    let mut stat = format!("cpu  {b} 0 0 {i} 0 0 0 0 0 0\n");
    for (n, (busy, idle)) in jiffies.iter().enumerate() {
        stat.push_str(&format!("cpu{n} {busy} 0 0 {idle} 0 0 0 0 0 0\n"));
    }
    stat.push_str("intr 0\nctxt 0\n");
    std::fs::write(root.join("stat"), stat)?;
    Ok(root)
}

/// A `/proc/cpuinfo` block.
pub fn cpuinfo(vendor: &str, family: u32, model: u32, model_name: &str) -> String {
    format!(
        "processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n\
         model name\t: {model_name}\n\n"
    )
}

/// Write an 8-byte little-endian register at offset `register` of
/// `<msr_root>/<cpu>/msr` (a sparse file), creating it if needed.
pub fn write_msr(msr_root: &Path, cpu: u32, register: u64, value: u64) -> io::Result<()> {
    let dir = msr_root.join(cpu.to_string());
    std::fs::create_dir_all(&dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("msr"))?;
    file.write_all_at(&value.to_le_bytes(), register)
}
