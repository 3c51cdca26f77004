//! carbon-ops kernel programs: exact per-process, per-CPU on-CPU time.
//!
//! Two tracepoints:
//! - `sched_switch` (a BTF tracepoint, so its task pointers are typed) closes the outgoing
//!   task's slice (now − slice start) into its process's slot on this CPU (or `IDLE` for the
//!   idle task), then opens the incoming task's slice in `CPU_SLICE`, so userspace can close
//!   every CPU's running slice at the tick instant and no time is missing from a snapshot.
//!   Each thread caches its process key and slot in BPF task-local storage (`THREADS`), so a
//!   switch costs two storage lookups instead of six kernel reads and a hash lookup; the
//!   cached slot is trusted only while `SLOT_KEYS` still holds the same key.
//! - `sched_process_exit` records, when the last thread of a process exits, its exit time,
//!   cgroup, uid and comm in `EXITS`. The process's record stays in `TASKS` until userspace has
//!   read its final value, so a process that lives less than one tick is still counted.
//!
//! `task_struct` field offsets are not compiled in: userspace reads them from the running
//! kernel's BTF and sets them as globals at load time (`OFF_*`). Every failure to store a
//! slice is counted in `COUNTERS`, never dropped silently.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

mod threads;

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_NOEXIST, task_struct},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_uid_gid,
        bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel,
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::{Array, HashMap, PerCpuArray, Queue},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use carbon_ops_common::{
    COMM_LEN, COUNTER_SLOTS, Counter, CpuSlice, ExitRecord, MAX_EXITS, MAX_TASKS, TaskCpu, TaskKey,
};

#[map(name = "TASKS")]
static TASKS: HashMap<TaskKey, u32> = HashMap::with_max_entries(MAX_TASKS, 0);

#[map(name = "SLOT_KEYS")]
static SLOT_KEYS: Array<TaskKey> = Array::with_max_entries(MAX_TASKS, BPF_F_MMAPABLE);

/// `MAX_TASKS × NCPUS` entries: the loader sets the real size.
#[map(name = "SLOT_DATA")]
static SLOT_DATA: Array<TaskCpu> = Array::with_max_entries(MAX_TASKS, BPF_F_MMAPABLE);

#[map(name = "FREE_SLOTS")]
static FREE_SLOTS: Queue<u32> = Queue::with_max_entries(MAX_TASKS, 0);

#[map(name = "IDLE")]
static IDLE: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "CPU_SLICE")]
static CPU_SLICE: PerCpuArray<CpuSlice> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "EXITS")]
static EXITS: HashMap<TaskKey, ExitRecord> = HashMap::with_max_entries(MAX_EXITS, 0);

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

/// Number of possible CPUs; set by the loader.
#[unsafe(no_mangle)]
static NCPUS: u32 = 1;
/// Byte offset of `task_struct.tgid`; set by the loader from the kernel's BTF.
#[unsafe(no_mangle)]
static OFF_TGID: u32 = 0;
/// Byte offset of `task_struct.group_leader`; set by the loader.
#[unsafe(no_mangle)]
static OFF_GROUP_LEADER: u32 = 0;
/// Byte offset of `task_struct.real_parent`; set by the loader.
#[unsafe(no_mangle)]
static OFF_REAL_PARENT: u32 = 0;
/// Byte offset of `task_struct.start_boottime`; set by the loader.
#[unsafe(no_mangle)]
static OFF_START_BOOTTIME: u32 = 0;
/// 1 when `sched_process_exit` passes `group_dead` as its second argument (Linux ≥ 6.9).
#[unsafe(no_mangle)]
static HAS_GROUP_DEAD: u32 = 0;

/// Reads a loader-set global; `read_volatile` keeps the compiler from folding the default.
#[inline(always)]
fn global(value: &u32) -> usize {
    // SAFETY: `value` is a valid reference to a static.
    unsafe { core::ptr::read_volatile(value) as usize }
}

#[inline(always)]
fn bump(counter: Counter, by: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot; programs on one CPU do not run concurrently with each other here.
        unsafe { *slot = (*slot).wrapping_add(by) };
    }
}

/// Reads `T` at `base + offset` in kernel memory.
#[inline(always)]
fn read_at<T>(base: *const u8, offset: usize) -> Result<T, i64> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one returns an error.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset).cast::<T>()) }.map_err(|e| {
        bump(Counter::ReadFailed, 1);
        i64::from(e)
    })
}

/// The identity of the process `task` belongs to: (tgid, group leader's start_boottime).
#[inline(always)]
fn task_key(task: *const u8) -> Result<TaskKey, i64> {
    // The address as a plain number: typed (BTF) task pointers may not be offset by a
    // variable, and `bpf_probe_read_kernel` only needs the address.
    let task = (task as usize) as *const u8;
    let tgid: u32 = read_at(task, global(&OFF_TGID))?;
    if tgid == 0 {
        return Ok(TaskKey::default());
    }
    let leader: *const u8 = read_at(task, global(&OFF_GROUP_LEADER))?;
    let start: u64 = read_at(leader, global(&OFF_START_BOOTTIME))?;
    Ok(TaskKey {
        tgid,
        pad: 0,
        start_boottime_ns: start,
    })
}

/// This CPU's counters for `slot`.
#[inline(always)]
fn data(slot: u32) -> Option<*mut TaskCpu> {
    // SAFETY: plain helper call.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let ncpus = global(&NCPUS) as u32;
    SLOT_DATA.get_ptr_mut(slot.wrapping_mul(ncpus).wrapping_add(cpu))
}

/// The slot of `key`, assigning a free one at its first switch-out.
#[inline(always)]
fn slot_of(key: &TaskKey) -> Option<u32> {
    if let Some(slot) = TASKS.get_ptr(key) {
        // SAFETY: value of an existing element.
        return Some(unsafe { *slot });
    }
    let slot = FREE_SLOTS.pop().ok().flatten()?;
    // Publish the key before the slot can be found, so a reader never sees data without it.
    if let Some(k) = SLOT_KEYS.get_ptr_mut(slot) {
        // SAFETY: array element; only the CPU that popped the slot writes it now.
        unsafe { *k = *key };
    }
    if TASKS.insert(key, slot, u64::from(BPF_NOEXIST)).is_ok() {
        return Some(slot);
    }
    // Another CPU assigned this process a slot meanwhile: give ours back, use theirs.
    if let Some(k) = SLOT_KEYS.get_ptr_mut(slot) {
        // SAFETY: as above.
        unsafe { *k = TaskKey::default() };
    }
    let _ = FREE_SLOTS.push(slot, 0);
    // SAFETY: value of an existing element.
    TASKS.get_ptr(key).map(|s| unsafe { *s })
}

/// Whether `slot` still belongs to `key` (userspace zeroes the key before freeing a slot).
#[inline(always)]
fn slot_holds(slot: u32, key: &TaskKey) -> bool {
    match SLOT_KEYS.get(slot) {
        Some(k) => k.tgid == key.tgid && k.start_boottime_ns == key.start_boottime_ns,
        None => false,
    }
}

/// Adds one closed slice of the outgoing `task` on this CPU.
#[inline(always)]
fn account(task: *mut task_struct, delta: u64) -> Result<(), i64> {
    let cache = threads::cache(task);
    let key = threads::key(task, cache)?;
    if key.tgid == 0 {
        if let Some(idle) = IDLE.get_ptr_mut(0) {
            // SAFETY: per-CPU slot.
            unsafe { *idle = (*idle).wrapping_add(delta) };
        }
        return Ok(());
    }
    let slot = match threads::slot(cache) {
        Some(slot) if slot_holds(slot, &key) => Some(slot),
        _ => {
            let slot = slot_of(&key);
            if let Some(slot) = slot {
                threads::set_slot(cache, slot);
            }
            slot
        }
    };
    match slot.and_then(data) {
        Some(value) => {
            // SAFETY: this CPU's entry of this process's slot: only this CPU writes it.
            unsafe {
                (*value).on_cpu_ns = (*value).on_cpu_ns.wrapping_add(delta);
                (*value).switches = (*value).switches.wrapping_add(1);
                (*value).cgroup_id = bpf_get_current_cgroup_id();
            }
        }
        None => {
            bump(Counter::TaskInsertFailed, 1);
            bump(Counter::TaskLostNs, delta);
        }
    }
    Ok(())
}

/// `sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...)`.
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> u32 {
    let _ = try_sched_switch(&ctx);
    0
}

#[inline(always)]
fn try_sched_switch(ctx: &BtfTracePointContext) -> Result<(), i64> {
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let prev: *mut task_struct = ctx.arg(1);
    let next: *mut task_struct = ctx.arg(2);
    let slice = CPU_SLICE.get_ptr_mut(0).ok_or(-1i64)?;
    // SAFETY: this CPU's slot; nothing else writes it while we run.
    let slice = unsafe { &mut *slice };
    if slice.start_ns != 0 {
        let delta = now.wrapping_sub(slice.start_ns);
        if account(prev, delta).is_err() {
            // The outgoing task's identity could not be read (counted in `ReadFailed`): its
            // slice is lost, counted, and never charged to whoever runs next.
            bump(Counter::TaskLostNs, delta);
        }
    }
    // An incoming task whose identity cannot be read gets an owner no process has, so
    // userspace leaves its running slice out; its switch-out accounts or loses it.
    slice.key = threads::key(next, threads::cache(next)).unwrap_or(TaskKey {
        tgid: u32::MAX,
        pad: 0,
        start_boottime_ns: 0,
    });
    slice.start_ns = now;
    Ok(())
}

/// `sched_process_exit(struct task_struct *p, bool group_dead)`.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> u32 {
    let _ = try_sched_process_exit(&ctx);
    0
}

#[inline(always)]
fn try_sched_process_exit(ctx: &RawTracePointContext) -> Result<(), i64> {
    let task: *const u8 = ctx.arg(0);
    let key = task_key(task)?;
    if global(&HAS_GROUP_DEAD) != 0 {
        let group_dead: u64 = ctx.arg(1);
        if group_dead & 0xff == 0 {
            return Ok(());
        }
    } else {
        // Older kernels: take the group leader's exit as the process's exit.
        let tid = aya_ebpf::helpers::bpf_get_current_pid_tgid() as u32;
        if tid != key.tgid {
            return Ok(());
        }
    }
    let comm = bpf_get_current_comm().unwrap_or([0u8; COMM_LEN]);
    let parent: *const u8 = read_at(task, global(&OFF_REAL_PARENT))?;
    let ppid: u32 = read_at(parent, global(&OFF_TGID)).unwrap_or(0);
    let record = ExitRecord {
        // SAFETY: plain helper calls.
        exit_ns: unsafe { bpf_ktime_get_ns() },
        // SAFETY: as above.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        uid: bpf_get_current_uid_gid() as u32,
        ppid,
        comm,
    };
    if EXITS.insert(key, record, 0).is_err() {
        bump(Counter::ExitInsertFailed, 1);
    }
    Ok(())
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Kernel programs need a GPL-compatible license to call `bpf_probe_read_kernel`.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("carbon-ops-ebpf is a kernel object: build it with `cargo xtask build-ebpf`");
}
