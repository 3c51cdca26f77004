//! Reading a whole per-CPU hash map in a few syscalls (`BPF_MAP_LOOKUP_BATCH`, Linux ≥ 5.6)
//! instead of two per entry, so a snapshot of 10,000 processes stays cheap.
//!
//! This is the one raw `bpf()` call in carbon-ops (aya has no batch API): it fills caller
//! buffers of `count` keys and `count × ncpus` values (per-CPU values are laid out CPU after
//! CPU, each rounded up to 8 bytes, as the kernel copies them). `Unsupported` tells the
//! caller to fall back to per-key iteration.

use std::{io, os::fd::RawFd};

use carbon_ops_common::{TaskCpu, TaskKey};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const CHUNK: usize = 4096;

/// `union bpf_attr`'s `batch` member.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Why a batch read failed.
#[derive(Debug)]
pub enum BatchError {
    /// The kernel has no batch lookup for this map type: iterate instead.
    Unsupported,
    /// Any other failure.
    Io(io::Error),
}

/// Appends every key of a `PerCpuHashMap<TaskKey, TaskCpu>` to `out_keys` and its `ncpus`
/// per-CPU values to `out_vals`. The map may change while it is read (entries added or
/// removed by the kernel): each entry is read whole, as the kernel guarantees per element.
pub fn read_tasks_into(
    fd: RawFd,
    ncpus: usize,
    out_keys: &mut Vec<TaskKey>,
    out_vals: &mut Vec<TaskCpu>,
) -> Result<(), BatchError> {
    const _: () = assert!(std::mem::size_of::<TaskCpu>().is_multiple_of(8));
    let mut keys = vec![TaskKey::default(); CHUNK];
    let mut values = vec![TaskCpu::default(); CHUNK * ncpus];
    let mut token: u32 = 0;
    let mut first = true;
    loop {
        let mut next: u32 = 0;
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &raw const token as u64 },
            out_batch: &raw mut next as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: fd as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at buffers sized for `count` keys and `count × ncpus` values,
        // which the kernel fills; all live until the call returns.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>(),
            )
        };
        let err = (rc < 0).then(io::Error::last_os_error);
        let n = attr.count as usize;
        let n = n.min(CHUNK);
        out_keys.extend_from_slice(&keys[..n]);
        out_vals.extend_from_slice(&values[..n * ncpus]);
        match err {
            None => {}
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Some(e)
                if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP | 524))
                    && first =>
            {
                return Err(BatchError::Unsupported);
            }
            Some(e) => return Err(BatchError::Io(e)),
        }
        token = next;
        first = false;
    }
}
