//! Per-thread cache in BPF task-local storage: the thread's process key and its slot.
//!
//! A thread's key (tgid, group leader's `start_boottime`) never changes: `exec` from a
//! non-leader thread copies the leader's `start_boottime` to the new leader. So the key is
//! read from `task_struct` once per thread, and the slot found once per thread; the kernel
//! frees the storage with the task. The map is declared by hand as a BTF map (`.maps`),
//! because task storage needs BTF for its value type and aya-ebpf has no wrapper for it.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_LOCAL_STORAGE_GET_F_CREATE, bpf_map_type, task_struct},
    helpers::generated::bpf_task_storage_get,
};
use carbon_ops_common::TaskKey;

/// What one thread remembers.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Cached {
    key: TaskKey,
    slot: u32,
    flags: u32,
}

const KEY_KNOWN: u32 = 1;
const SLOT_KNOWN: u32 = 2;

/// A `BPF_MAP_TYPE_TASK_STORAGE` definition in the layout loaders read from BTF: each field
/// is a pointer whose pointee type encodes one attribute.
#[repr(C)]
pub struct TaskStorage {
    r#type: *const [i32; bpf_map_type::BPF_MAP_TYPE_TASK_STORAGE as usize],
    key: *const i32,
    value: *const Cached,
    max_entries: *const [i32; 0],
    map_flags: *const [i32; BPF_F_NO_PREALLOC as usize],
}

// SAFETY: the fields are placeholders the loader reads from BTF; they are never dereferenced.
unsafe impl Sync for TaskStorage {}

#[unsafe(link_section = ".maps")]
#[unsafe(export_name = "THREADS")]
static THREADS: TaskStorage = TaskStorage {
    r#type: core::ptr::null(),
    key: core::ptr::null(),
    value: core::ptr::null(),
    max_entries: core::ptr::null(),
    map_flags: core::ptr::null(),
};

/// `task`'s cache, created empty on first use (`None` only if the kernel could not allocate).
#[inline(always)]
pub fn cache(task: *mut task_struct) -> Option<*mut Cached> {
    let map = core::ptr::from_ref(&THREADS).cast_mut().cast();
    // SAFETY: `task` is a typed task pointer from the tracepoint; the helper checks the rest.
    let ptr = unsafe {
        bpf_task_storage_get(
            map,
            task,
            core::ptr::null_mut(),
            u64::from(BPF_LOCAL_STORAGE_GET_F_CREATE),
        )
    };
    let ptr = ptr.cast::<Cached>();
    if ptr.is_null() { None } else { Some(ptr) }
}

/// `task`'s process key, from the cache or read once from `task_struct`.
#[inline(always)]
pub fn key(task: *mut task_struct, cache: Option<*mut Cached>) -> Result<TaskKey, i64> {
    if let Some(c) = cache {
        // SAFETY: storage owned by `task`, valid for this program run.
        let c = unsafe { &mut *c };
        if c.flags & KEY_KNOWN != 0 {
            return Ok(c.key);
        }
        let key = crate::task_key(task.cast())?;
        c.key = key;
        c.flags |= KEY_KNOWN;
        return Ok(key);
    }
    crate::task_key(task.cast())
}

/// The slot last found for this thread's process, if any (the caller checks it still holds).
#[inline(always)]
pub fn slot(cache: Option<*mut Cached>) -> Option<u32> {
    // SAFETY: as in `key`.
    let c = unsafe { &*cache? };
    if c.flags & SLOT_KNOWN != 0 {
        Some(c.slot)
    } else {
        None
    }
}

/// Remembers `slot` for this thread.
#[inline(always)]
pub fn set_slot(cache: Option<*mut Cached>, slot: u32) {
    if let Some(c) = cache {
        // SAFETY: as in `key`.
        let c = unsafe { &mut *c };
        c.slot = slot;
        c.flags |= SLOT_KNOWN;
    }
}
