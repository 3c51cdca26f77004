//! A scriptable [`GpuSource`] for tests and demos: the test keeps a [`FakeGpuHandle`] and sets
//! each device's counter, power, samples and processes between ticks; the meter owns the
//! [`FakeGpu`]. Samples are handed out once, like NVML's "since last seen" query.

use std::sync::{Arc, Mutex};

use super::{DeviceSample, GpuDevice, GpuError, GpuProcess, GpuSource, MigInstance, ProcessSample};

/// One fake device's scripted state.
#[derive(Clone, Debug)]
pub struct FakeDevice {
    /// Counter value (mJ) or the error the next reads return.
    pub energy_mj: Result<u64, GpuError>,
    /// What `sample` returns (or its error).
    pub sample: Result<DeviceSample, GpuError>,
    /// Samples not yet handed out.
    pub pending_samples: Vec<ProcessSample>,
    /// Error `process_samples` returns instead, if any.
    pub samples_error: Option<GpuError>,
    /// Running processes.
    pub processes: Vec<GpuProcess>,
    /// MIG instances.
    pub mig: Vec<MigInstance>,
}

impl Default for FakeDevice {
    /// Counter 0, 0 mW, 0 % utilisation, no samples, no processes.
    fn default() -> Self {
        FakeDevice {
            energy_mj: Ok(0),
            sample: Ok(DeviceSample {
                power_mw: Some(0),
                gpu_util_pct: Some(0),
                ..DeviceSample::default()
            }),
            pending_samples: Vec::new(),
            samples_error: None,
            processes: Vec::new(),
            mig: Vec::new(),
        }
    }
}

/// The fake source (owned by the meter).
#[derive(Debug)]
pub struct FakeGpu {
    devices: Vec<GpuDevice>,
    state: Arc<Mutex<Vec<FakeDevice>>>,
}

/// The test's side of a [`FakeGpu`].
#[derive(Clone, Debug)]
pub struct FakeGpuHandle {
    state: Arc<Mutex<Vec<FakeDevice>>>,
}

impl FakeGpu {
    /// A fake with `devices`, each with counter 0, 0 mW, 0 % and no processes.
    pub fn new(devices: Vec<GpuDevice>) -> (FakeGpu, FakeGpuHandle) {
        let state = devices.iter().map(|_| FakeDevice::default()).collect();
        let state = Arc::new(Mutex::new(state));
        (
            FakeGpu {
                devices,
                state: state.clone(),
            },
            FakeGpuHandle { state },
        )
    }

    /// A device description for tests.
    pub fn device(index: u32, max_power_mw: u64) -> GpuDevice {
        GpuDevice {
            index,
            name: format!("Fake GPU {index}"),
            uuid: format!("GPU-fake-{index}"),
            max_power_mw,
        }
    }

    fn with<R>(&self, device: u32, f: impl FnOnce(&mut FakeDevice) -> R) -> Result<R, GpuError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let d = st.get_mut(device as usize).ok_or_else(|| GpuError::Query {
            device,
            what: "device",
            reason: "no such fake device".to_owned(),
        })?;
        Ok(f(d))
    }
}

impl FakeGpuHandle {
    /// Changes device `device`'s script.
    pub fn set(&self, device: usize, f: impl FnOnce(&mut FakeDevice)) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = st.get_mut(device) {
            f(d);
        }
    }
}

impl GpuSource for FakeGpu {
    fn describe(&self) -> String {
        format!("fake ({} devices)", self.devices.len())
    }
    fn devices(&self) -> &[GpuDevice] {
        &self.devices
    }
    fn energy_mj(&mut self, device: u32) -> Result<u64, GpuError> {
        self.with(device, |d| d.energy_mj.clone())?
    }
    fn sample(&mut self, device: u32) -> Result<DeviceSample, GpuError> {
        self.with(device, |d| d.sample.clone())?
    }
    fn process_samples(&mut self, device: u32) -> Result<Vec<ProcessSample>, GpuError> {
        self.with(device, |d| match &d.samples_error {
            Some(e) => Err(e.clone()),
            None => Ok(std::mem::take(&mut d.pending_samples)),
        })?
    }
    fn processes(&mut self, device: u32) -> Result<Vec<GpuProcess>, GpuError> {
        self.with(device, |d| d.processes.clone())
    }
    fn mig_instances(&mut self, device: u32) -> Result<Vec<MigInstance>, GpuError> {
        self.with(device, |d| d.mig.clone())
    }
}
