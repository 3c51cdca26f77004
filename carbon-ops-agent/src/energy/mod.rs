//! Energy sources: RAPL through powercap sysfs or MSR (Intel and AMD), a utilisation model where
//! no RAPL is readable, wrap-safe monotonic accumulators and a drift-free fixed-rate poller.
//!
//! Data flows one way: an [`EnergySource`] returns one raw counter value per zone; the
//! [`Meter`] turns raw values into per-zone deltas with the rules of [`counter::Counter`]
//! (wraps, resets, gaps), marks unreadable zones stale with backoff, and folds zones into
//! per-package and host figures without double counting ([`EnergyTick`]). The [`Ticker`]
//! decides *when*: the same tick instant is given to the meter and to the eBPF snapshot.
//! Every I/O edge takes its root path as an argument, so tests run the production code
//! against fake trees (see [`fake`]). The rules are explained in `docs/energy.md`.

pub mod auto;
pub mod counter;
pub mod fake;
pub mod meter;
pub mod model;
pub mod msr;
pub mod poller;
pub mod powercap;
pub mod topology;

pub use auto::{EnergyPaths, RaplMode, SelectOptions, select};
pub use counter::{Counter, CounterSpec, Observation};
pub use meter::{EnergyTick, Meter, MeterConfig, PackageTick, ZoneFlags, ZoneTick};
pub use model::{ModelCoefficients, ModelSource};
pub use msr::{MsrOptions, MsrSource};
pub use poller::{Tick, Ticker, monotonic_now_ns};
pub use powercap::PowercapSource;
pub use topology::Topology;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which kind of source produced an energy figure; travels with every number downstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnergySourceKind {
    /// RAPL read through `/sys/class/powercap` (the kernel's `intel_rapl` driver).
    Sysfs,
    /// RAPL read from model-specific registers through `/dev/cpu/<n>/msr`.
    Msr,
    /// Estimated from CPU utilisation with published per-CPU coefficients.
    Model,
}

impl EnergySourceKind {
    /// The lowercase name used in JSON, logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            EnergySourceKind::Sysfs => "sysfs",
            EnergySourceKind::Msr => "msr",
            EnergySourceKind::Model => "model",
        }
    }
}

impl std::fmt::Display for EnergySourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a zone measures, which decides whether it enters the host total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    /// The whole package (socket or die): counted in the host total.
    Package,
    /// Cores (PP0): inside the package figure, never added to it.
    Core,
    /// Uncore / integrated graphics (PP1): inside the package figure, never added to it.
    Uncore,
    /// Memory: a separate RAPL domain, outside the package figure, added to the host total.
    Dram,
    /// Platform (whole SoC and more): reported separately, never added to packages.
    Psys,
    /// `intel-rapl-mmio` zone: the same package counter read through MMIO; a duplicate.
    Mmio,
    /// Anything else the kernel exposes: reported, never counted.
    Other,
}

/// How a zone's raw counter behaves; what the [`Meter`] needs to difference it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ZoneInfo {
    /// Stable identifier (`intel-rapl:0:1`, `msr:cpu0:pkg`, `model:package-0`).
    pub id: String,
    /// Human name as the kernel or the register calls it (`package-0`, `dram`, `core`).
    pub name: String,
    /// What the zone measures.
    pub kind: ZoneKind,
    /// The physical package the zone belongs to, if any.
    pub package: Option<u32>,
    /// Modulus, conversion and plausibility bound of the raw counter.
    pub counter: CounterSpec,
}

/// A physical package and its logical CPUs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageInfo {
    /// `physical_package_id`.
    pub package: u32,
    /// Logical CPU numbers in this package, ascending.
    pub cpus: Vec<u32>,
}

/// Why one zone could not be read this tick; the meter turns it into a stale flag.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file or device could not be opened or read.
    #[error("failed to read `{path}`: check that the zone still exists and is readable by root")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but did not hold a counter.
    #[error("`{path}` does not hold an unsigned integer counter (read {text:?})")]
    Parse { path: PathBuf, text: String },
    /// The counter is outside its own declared range.
    #[error("zone `{zone}` read {raw}, outside its range 0..{modulus}")]
    OutOfRange {
        zone: String,
        raw: u64,
        modulus: u64,
    },
}

/// Why a source could not be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Nothing under the powercap root.
    #[error(
        "no RAPL zone under `{root}`: the `intel_rapl_common`/`intel_rapl_msr` modules are not \
         loaded or this is a VM; try `modprobe intel_rapl_msr` or use --rapl-mode=msr|model"
    )]
    NoPowercapZones { root: PathBuf },
    /// Zones exist but none is readable.
    #[error(
        "powercap zones under `{root}` exist but none is readable (`energy_uj` is root-only since \
         Linux 5.10, CVE-2020-8694): run as root"
    )]
    PowercapUnreadable {
        root: PathBuf,
        #[source]
        source: ReadError,
    },
    /// The msr driver is not loaded.
    #[error("`{path}` does not exist: load the msr driver with `modprobe msr`")]
    MsrMissing { path: PathBuf },
    /// The msr device exists but may not be opened.
    #[error("`{path}` is not readable: run as root or grant CAP_SYS_RAWIO")]
    MsrPermission {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CPU vendor has no RAPL registers known to us.
    #[error("cpu vendor `{vendor}` (family {family:#x}) has no supported RAPL MSRs")]
    MsrUnsupportedCpu { vendor: String, family: u32 },
    /// A register needed to use RAPL could not be read.
    #[error("failed to read msr {register:#x} from `{path}`: the CPU may not implement RAPL")]
    MsrRegister {
        path: PathBuf,
        register: u64,
        #[source]
        source: std::io::Error,
    },
    /// `/proc/stat` (or the CPU topology) could not be read for the model source.
    #[error("failed to read `{path}` for the model source: mount procfs or pass --procfs-root")]
    Procfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content was not what the kernel writes.
    #[error("`{path}` is malformed: {what}")]
    Malformed { path: PathBuf, what: String },
}

/// A place energy comes from: zones described once, raw counters read every tick.
pub trait EnergySource: Send {
    /// Which kind of source this is.
    fn kind(&self) -> EnergySourceKind;
    /// Relative standard uncertainty (1 σ / value) of this source's package energy.
    fn relative_uncertainty(&self) -> f64;
    /// Every zone, in the order [`EnergySource::read`] reports them.
    fn zones(&self) -> &[ZoneInfo];
    /// Packages and their CPUs.
    fn packages(&self) -> &[PackageInfo];
    /// Read zone `index` (an index into [`EnergySource::zones`]) at the given monotonic instant.
    /// Returns the raw counter in the zone's own ticks, below its modulus.
    fn read_zone(&mut self, index: usize, at_monotonic_ns: u64) -> Result<u64, ReadError>;
    /// Called once per tick before the zones are read (the model source samples `/proc/stat`).
    fn begin_tick(&mut self, _at_monotonic_ns: u64) -> Result<(), ReadError> {
        Ok(())
    }
    /// One line describing what was found (for the selection log line).
    fn describe(&self) -> String;
}
