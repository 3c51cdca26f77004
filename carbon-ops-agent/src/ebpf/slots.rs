//! The memory-mapped slot table: `SLOT_KEYS` (slot → process) and `SLOT_DATA` (slot × CPU →
//! counters), read each tick straight from memory, with no syscall per process.
//!
//! The kernel assigns a slot at a process's first switch-out (popped from `FREE_SLOTS`),
//! publishes its key, then only ever adds to its own CPU's entries. Userspace reads the
//! 8-byte fields with volatile loads (each is written whole, so it is never torn), and after
//! a process's final snapshot zeroes its entries and key, then returns the slot to the queue.

use std::{io, os::fd::AsRawFd, ptr::NonNull};

use carbon_ops_common::{TaskCpu, TaskKey};

/// A shared, read-write mapping of a `BPF_F_MMAPABLE` array.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access goes through volatile reads/writes
// of whole 8-byte fields, and the owner (`EbpfTaskStats`) is used from one thread at a time.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of the array behind `fd`.
    pub fn new(fd: &impl AsRawFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: page size query.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let len = len.div_ceil(page) * page;
        // SAFETY: mapping a BPF array fd created with BPF_F_MMAPABLE, shared, at offset 0.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }

    fn u64_at(&self, byte: usize) -> u64 {
        if byte + 8 > self.len {
            return 0;
        }
        // SAFETY: in bounds (checked), 8-aligned (all fields are u64 at 8-byte strides).
        unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(byte).cast::<u64>()) }
    }

    fn set_u64(&self, byte: usize, v: u64) {
        if byte + 8 <= self.len {
            // SAFETY: as in `u64_at`.
            unsafe { std::ptr::write_volatile(self.ptr.as_ptr().add(byte).cast::<u64>(), v) }
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

const KEY: usize = std::mem::size_of::<TaskKey>();
const VAL: usize = std::mem::size_of::<TaskCpu>();
const _: () = assert!(KEY == 16 && VAL == 24);

/// The two mappings and their geometry.
pub struct SlotTable {
    keys: Mapping,
    data: Mapping,
    slots: usize,
    ncpus: usize,
}

impl SlotTable {
    /// Wraps the mappings of `slots` keys and `slots × ncpus` counters.
    pub fn new(keys: Mapping, data: Mapping, slots: usize, ncpus: usize) -> SlotTable {
        SlotTable {
            keys,
            data,
            slots,
            ncpus,
        }
    }

    /// The process in `slot` (tgid 0: free).
    pub fn key(&self, slot: usize) -> TaskKey {
        let lo = self.keys.u64_at(slot * KEY);
        TaskKey {
            tgid: lo as u32,
            pad: 0,
            start_boottime_ns: self.keys.u64_at(slot * KEY + 8),
        }
    }

    /// The counters of `slot` on `cpu`.
    pub fn value(&self, slot: usize, cpu: usize) -> TaskCpu {
        let at = (slot * self.ncpus + cpu) * VAL;
        TaskCpu {
            on_cpu_ns: self.data.u64_at(at),
            switches: self.data.u64_at(at + 8),
            cgroup_id: self.data.u64_at(at + 16),
        }
    }

    /// Just the on-CPU ns of `slot` on `cpu` (the per-tick scan reads only this).
    pub fn on_cpu_ns(&self, slot: usize, cpu: usize) -> u64 {
        self.data.u64_at((slot * self.ncpus + cpu) * VAL)
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Zeroes a drained slot (counters first, then the key).
    pub fn clear(&self, slot: usize) {
        for cpu in 0..self.ncpus {
            let at = (slot * self.ncpus + cpu) * VAL;
            for f in 0..3 {
                self.data.set_u64(at + 8 * f, 0);
            }
        }
        self.keys.set_u64(slot * KEY + 8, 0);
        self.keys.set_u64(slot * KEY, 0);
    }
}
