//! GPU telemetry: a [`GpuSource`] trait (what a GPU driver tells), its NVML implementation
//! loaded at run time ([`nvml::NvmlSource`]), a scriptable fake ([`fake::FakeGpu`]), the
//! energy meter that differences each device's counter ([`meter::GpuMeter`]) and the pure
//! per-process split ([`attrib::split_device`]).
//!
//! Nothing here links against the NVIDIA library: NVML is opened with `dlopen` when the agent
//! starts, and where it cannot be (no driver), GPU telemetry is reported unavailable with the
//! loader's reason. Sources never panic; every read is a `Result` the meter records.

pub mod attrib;
pub mod fake;
pub mod meter;
pub mod nvml;

use serde::Serialize;

/// A GPU read failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// The driver library could not be loaded or initialised.
    #[error("GPU telemetry unavailable: {reason}")]
    Unavailable { reason: String },
    /// The device does not support this query (older GPU, MIG, vGPU).
    #[error("device {device}: `{what}` is not supported by this GPU or driver")]
    NotSupported { device: u32, what: &'static str },
    /// Any other failure of one query.
    #[error("device {device}: `{what}` failed: {reason}")]
    Query {
        device: u32,
        what: &'static str,
        reason: String,
    },
}

/// A GPU, fixed for the life of the source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GpuDevice {
    /// NVML index.
    pub index: u32,
    /// Product name, e.g. `NVIDIA H200`.
    pub name: String,
    /// Stable id.
    pub uuid: String,
    /// The most power the board may draw, in mW (enforced limit); bounds counter steps.
    pub max_power_mw: u64,
}

/// Device-level instantaneous figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceSample {
    /// Power draw, mW.
    pub power_mw: Option<u64>,
    /// Percent of the last sample period a kernel ran (`utilization.gpu`).
    pub gpu_util_pct: Option<u32>,
    /// Percent of the last sample period memory was read or written.
    pub mem_util_pct: Option<u32>,
    /// Framebuffer memory in use, bytes.
    pub memory_used_bytes: Option<u64>,
    /// Framebuffer memory installed, bytes.
    pub memory_total_bytes: Option<u64>,
}

/// One per-process SM utilisation sample (`nvmlProcessUtilizationSample_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessSample {
    /// Process id.
    pub pid: u32,
    /// CPU timestamp of the sample, µs.
    pub timestamp_us: u64,
    /// SM (compute/3D) utilisation, percent of the sample period.
    pub sm_util_pct: u32,
}

/// A process that holds a context on the device, with its framebuffer memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GpuProcess {
    /// Process id.
    pub pid: u32,
    /// Framebuffer memory used, bytes (`None` where the driver does not say).
    pub used_memory_bytes: Option<u64>,
    /// MIG GPU instance the process runs on, where MIG is enabled.
    pub gpu_instance_id: Option<u32>,
}

/// A MIG instance of a device, where NVML exposes MIG.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigInstance {
    /// Index under its parent device.
    pub index: u32,
    /// MIG device uuid.
    pub uuid: String,
    /// Memory in use, bytes.
    pub memory_used_bytes: Option<u64>,
    /// Memory of the instance, bytes.
    pub memory_total_bytes: Option<u64>,
}

/// What a GPU driver tells. `Send` so the source can live on the tick thread.
pub trait GpuSource: Send {
    /// Which implementation (`nvml`, `fake`).
    fn describe(&self) -> String;
    /// The devices, fixed at start.
    fn devices(&self) -> &[GpuDevice];
    /// The device's cumulative energy counter in mJ since the driver loaded
    /// (`nvmlDeviceGetTotalEnergyConsumption`); `NotSupported` before Volta.
    fn energy_mj(&mut self, device: u32) -> Result<u64, GpuError>;
    /// Power, utilisation and memory now.
    fn sample(&mut self, device: u32) -> Result<DeviceSample, GpuError>;
    /// Per-process SM utilisation samples taken since the previous call for this device
    /// (the source keeps the last-seen timestamp).
    fn process_samples(&mut self, device: u32) -> Result<Vec<ProcessSample>, GpuError>;
    /// Processes holding a compute or graphics context now.
    fn processes(&mut self, device: u32) -> Result<Vec<GpuProcess>, GpuError>;
    /// MIG instances; empty where MIG is off or not supported.
    fn mig_instances(&mut self, device: u32) -> Result<Vec<MigInstance>, GpuError>;
}
