//! Types shared by the carbon-ops kernel programs (`carbon-ops-ebpf`) and userspace
//! (`carbon-ops-agent`).
//!
//! Everything here is `#[repr(C)]` with explicit padding, so the kernel and userspace agree
//! on the byte layout of every map key and value; each layout is pinned by a compile-time
//! size check. Map names are constants, used by both sides, never string literals twice.
//! The `user` feature adds the `aya::Pod` impls that userspace needs to read the maps.
#![no_std]

use core::mem::size_of;

/// Map: the slot of each process (`HashMap<TaskKey, u32>`).
pub const MAP_TASKS: &str = "TASKS";
/// Map: the process in each slot, tgid 0 when free (`Array<TaskKey>`, memory-mapped).
pub const MAP_SLOT_KEYS: &str = "SLOT_KEYS";
/// Map: per slot and per CPU, cumulative on-CPU time (`Array<TaskCpu>`, memory-mapped,
/// `slot × ncpus + cpu`). Each CPU writes only its own entries, so no atomics are needed.
pub const MAP_SLOT_DATA: &str = "SLOT_DATA";
/// Map: free slots (`Queue<u32>`), filled by userspace at load and after each drained exit.
pub const MAP_FREE_SLOTS: &str = "FREE_SLOTS";
/// Map: per CPU, nanoseconds the idle task (pid 0) ran (`PerCpuArray<u64>`, one slot).
pub const MAP_IDLE: &str = "IDLE";
/// Map: per CPU, the task on the CPU now and when its slice started (`PerCpuArray<CpuSlice>`).
pub const MAP_CPU_SLICE: &str = "CPU_SLICE";
/// Map: processes whose whole thread group has exited, until userspace drains them
/// (`HashMap<TaskKey, ExitRecord>`).
pub const MAP_EXITS: &str = "EXITS";
/// Map: loss counters, indexed by [`Counter`] (`PerCpuArray<u64>`).
pub const MAP_COUNTERS: &str = "COUNTERS";

/// Name of the `sched_switch` raw tracepoint program.
pub const PROG_SCHED_SWITCH: &str = "sched_switch";
/// Name of the `sched_process_exit` raw tracepoint program.
pub const PROG_SCHED_EXIT: &str = "sched_process_exit";

/// Global set at load time: number of possible CPUs (the stride of [`MAP_SLOT_DATA`]).
pub const GLOBAL_NCPUS: &str = "NCPUS";
/// Global set at load time: byte offset of `task_struct.tgid` (from the kernel's BTF).
pub const GLOBAL_OFF_TGID: &str = "OFF_TGID";
/// Global set at load time: byte offset of `task_struct.group_leader`.
pub const GLOBAL_OFF_GROUP_LEADER: &str = "OFF_GROUP_LEADER";
/// Global set at load time: byte offset of `task_struct.real_parent`.
pub const GLOBAL_OFF_REAL_PARENT: &str = "OFF_REAL_PARENT";
/// Global set at load time: byte offset of `task_struct.start_boottime`.
pub const GLOBAL_OFF_START_BOOTTIME: &str = "OFF_START_BOOTTIME";

/// Capacity of [`MAP_TASKS`] (slots): live plus not-yet-drained processes.
pub const MAX_TASKS: u32 = 32_768;
/// Capacity of [`MAP_EXITS`]: exited processes not yet drained by userspace.
pub const MAX_EXITS: u32 = 16_384;

/// Identity of a process: its thread-group id and the boot-time instant (ns since boot,
/// suspend included) at which its group leader started. The start time is what tells two
/// processes apart when the kernel reuses a PID; it is the same clock as field 22 of
/// `/proc/<pid>/stat` (there in clock ticks).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    /// Thread-group id (the PID userspace sees).
    pub tgid: u32,
    /// Explicit padding; always zero.
    pub pad: u32,
    /// `task_struct.start_boottime` of the group leader, in nanoseconds.
    pub start_boottime_ns: u64,
}
const _: () = assert!(size_of::<TaskKey>() == 16);

/// Per-CPU value of [`MAP_TASKS`]: what one process did on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCpu {
    /// Cumulative on-CPU nanoseconds of closed slices on this CPU.
    pub on_cpu_ns: u64,
    /// Number of times a thread of this process was switched out on this CPU.
    pub switches: u64,
    /// cgroup v2 id of the last thread switched out on this CPU.
    pub cgroup_id: u64,
}
const _: () = assert!(size_of::<TaskCpu>() == 24);

/// Value of [`MAP_CPU_SLICE`]: the slice running on one CPU now. Userspace closes it at the
/// tick instant, so time not yet ended by a switch is not missing from a snapshot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSlice {
    /// The process on the CPU (tgid 0: the idle task).
    pub key: TaskKey,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the slice started; 0 before the first switch.
    pub start_ns: u64,
}
const _: () = assert!(size_of::<CpuSlice>() == 24);

/// Length of a task's `comm`.
pub const COMM_LEN: usize = 16;

/// Value of [`MAP_EXITS`]: written when the last thread of a process exits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitRecord {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) at exit.
    pub exit_ns: u64,
    /// cgroup v2 id at exit.
    pub cgroup_id: u64,
    /// Real uid at exit.
    pub uid: u32,
    /// Thread-group id of the parent at exit (after any re-parenting to a subreaper).
    pub ppid: u32,
    /// `comm` of the exiting thread, NUL-padded.
    pub comm: [u8; COMM_LEN],
}
const _: () = assert!(size_of::<ExitRecord>() == 40);

/// Slots of [`MAP_COUNTERS`]: losses the kernel side counts instead of dropping silently.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Slices that could not be stored because [`MAP_TASKS`] was full.
    TaskInsertFailed = 0,
    /// Nanoseconds in those slices.
    TaskLostNs = 1,
    /// Exits that could not be stored because [`MAP_EXITS`] was full.
    ExitInsertFailed = 2,
    /// Kernel memory reads (`bpf_probe_read_kernel`) that failed.
    ReadFailed = 3,
}
/// Number of slots in [`MAP_COUNTERS`].
pub const COUNTER_SLOTS: u32 = 4;

#[cfg(feature = "user")]
mod pod {
    //! `aya::Pod` impls: every type is `repr(C)`, padded explicitly, with no invalid bit patterns.
    use super::{CpuSlice, ExitRecord, TaskCpu, TaskKey};

    // SAFETY: repr(C), plain integers, explicit padding: every bit pattern is valid.
    unsafe impl aya::Pod for TaskKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for TaskCpu {}
    // SAFETY: as above.
    unsafe impl aya::Pod for CpuSlice {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ExitRecord {}
}
