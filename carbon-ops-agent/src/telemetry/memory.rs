//! Memory telemetry: host totals from `/proc/meminfo`, and one process's resident set size
//! from `/proc/<pid>/status`, read only when a client asks (never polled for every process).
//!
//! [`parse_meminfo`] and [`parse_vmrss`] are pure; the readers take the procfs root as an
//! argument. Figures are kept in bytes (`kB` in these files is KiB: 1024 bytes).

use std::{collections::BTreeMap, path::Path};

use serde::Serialize;

use super::TelemetryError;

/// Host memory from `/proc/meminfo`, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemInfo {
    /// `MemTotal`.
    pub total_bytes: u64,
    /// `MemFree`.
    pub free_bytes: u64,
    /// `MemAvailable` (kernels since 3.14); `None` on older kernels.
    pub available_bytes: Option<u64>,
    /// `Buffers + Cached`, where present.
    pub cached_bytes: u64,
    /// `SwapTotal`.
    pub swap_total_bytes: u64,
    /// `SwapFree`.
    pub swap_free_bytes: u64,
    /// Every field with a `kB` unit, in bytes, by its name.
    #[serde(skip)]
    pub fields: BTreeMap<String, u64>,
}

impl MemInfo {
    /// Memory in use: `total − available` (or `total − free` where `MemAvailable` is absent).
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes
            .saturating_sub(self.available_bytes.unwrap_or(self.free_bytes))
    }
}

/// Parses `/proc/meminfo`. Pure. `MemTotal` and `MemFree` are required; lines without a
/// `kB` unit (the HugePages counts) are not byte figures and are skipped.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, TelemetryError> {
    let mut fields = BTreeMap::new();
    for (lineno, line) in text.lines().enumerate() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut it = rest.split_ascii_whitespace();
        let (Some(value), Some("kB")) = (it.next(), it.next()) else {
            continue;
        };
        let kib: u64 = value.parse().map_err(|_| TelemetryError::Parse {
            what: "/proc/meminfo",
            line: lineno + 1,
            reason: format!("`{name}` value `{value}` is not a count"),
        })?;
        fields.insert(name.trim().to_owned(), kib.saturating_mul(1024));
    }
    let need = |name: &str| {
        fields.get(name).copied().ok_or(TelemetryError::Parse {
            what: "/proc/meminfo",
            line: 0,
            reason: format!("no `{name}` line"),
        })
    };
    let get = |name: &str| fields.get(name).copied().unwrap_or(0);
    Ok(MemInfo {
        total_bytes: need("MemTotal")?,
        free_bytes: need("MemFree")?,
        available_bytes: fields.get("MemAvailable").copied(),
        cached_bytes: get("Buffers").saturating_add(get("Cached")),
        swap_total_bytes: get("SwapTotal"),
        swap_free_bytes: get("SwapFree"),
        fields,
    })
}

/// Reads and parses `<proc_root>/meminfo`.
pub fn read_meminfo(proc_root: &Path) -> Result<MemInfo, TelemetryError> {
    let path = proc_root.join("meminfo");
    let text = std::fs::read_to_string(&path).map_err(|source| TelemetryError::Read {
        path: path.clone(),
        source,
    })?;
    parse_meminfo(&text)
}

/// The `VmRSS` of a `/proc/<pid>/status` text, in bytes. Pure. Kernel threads have no
/// `VmRSS` line: `Ok(None)`.
pub fn parse_vmrss(text: &str) -> Result<Option<u64>, TelemetryError> {
    for (lineno, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("VmRSS:") else {
            continue;
        };
        let mut it = rest.split_ascii_whitespace();
        let bad = || TelemetryError::Parse {
            what: "/proc/<pid>/status",
            line: lineno + 1,
            reason: format!("`VmRSS:{rest}` is not `<count> kB`"),
        };
        let (Some(value), Some("kB")) = (it.next(), it.next()) else {
            return Err(bad());
        };
        let kib: u64 = value.parse().map_err(|_| bad())?;
        return Ok(Some(kib.saturating_mul(1024)));
    }
    Ok(None)
}

/// Reads one process's resident set size from `<proc_root>/<pid>/status`. A process that does
/// not exist (or exited) is [`TelemetryError::NoProcess`].
pub fn read_rss(proc_root: &Path, pid: u32) -> Result<Option<u64>, TelemetryError> {
    let path = proc_root.join(pid.to_string()).join("status");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_vmrss(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(TelemetryError::NoProcess { pid })
        }
        Err(source) => Err(TelemetryError::Read { path, source }),
    }
}
