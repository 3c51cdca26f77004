//! Loads the kernel programs and reads their maps into one consistent [`Snapshot`] per tick.
//!
//! Loading: the `task_struct` offsets the programs need are read from the running kernel's
//! BTF ([`btf`]) and set as globals, then `sched_process_exit` is attached as a raw tracepoint
//! and `sched_switch` as a BTF tracepoint (typed task pointers, for task-local storage; aya
//! parses the kernel's BTF for it, ~20 ms once).
//!
//! Reading, at tick instant `T` (CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`): first
//! the closed slices (the memory-mapped slot table, [`slots`], and `IDLE`), then each CPU's
//! running slice (`CPU_SLICE`), which is closed at `T` in the snapshot only (for processes
//! that already have a slot). In that order a switch racing with the read can
//! only delay a slice to the next snapshot, never count it twice, so cumulative values never
//! go backwards. A process whose exit was seen in the previous snapshot has had its final
//! switch-out since (the switch follows the exit tracepoint by microseconds): it is reported
//! in `exited` with its final value and removed from the maps, its slot given back. Only
//! processes whose total moved since the previous snapshot are listed.

pub mod btf;
mod scan;
pub mod slots;
mod snapshot;

use std::{collections::HashSet, path::Path};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, Queue},
    programs::{BtfTracePoint, RawTracePoint},
};
use carbon_ops_common::{
    CpuSlice, ExitRecord, GLOBAL_NCPUS, GLOBAL_OFF_GROUP_LEADER, GLOBAL_OFF_REAL_PARENT,
    GLOBAL_OFF_START_BOOTTIME, GLOBAL_OFF_TGID, MAP_COUNTERS, MAP_CPU_SLICE, MAP_EXITS,
    MAP_FREE_SLOTS, MAP_IDLE, MAP_SLOT_DATA, MAP_SLOT_KEYS, MAP_TASKS, MAX_TASKS, PROG_SCHED_EXIT,
    PROG_SCHED_SWITCH, TaskCpu, TaskKey,
};
use thiserror::Error;

/// The kernel object, embedded at build time (empty when built without the eBPF toolchain).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/carbon-ops.bpf.o"));

/// Where the running kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const HINT_PRIV: &str =
    "run as root, or grant CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8)";

/// What went wrong loading or attaching the kernel programs.
#[derive(Debug, Error)]
pub enum EbpfError {
    /// The binary was built without the kernel object.
    #[error(
        "this build has no eBPF object: run `cargo xtask build-ebpf`, then rebuild carbon-ops-agent"
    )]
    NoObject,
    /// The kernel's BTF could not be read.
    #[error(
        "failed to read the kernel's BTF at {path} (a kernel with CONFIG_DEBUG_INFO_BTF=y is required)"
    )]
    BtfRead {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// aya could not parse the kernel's BTF (needed to type the `sched_switch` program).
    #[error("failed to parse the kernel's BTF at {path}")]
    BtfParse {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: aya::BtfError,
    },
    /// The kernel's BTF lacks something the programs need.
    #[error("the kernel's BTF does not describe what carbon-ops needs")]
    Btf(#[source] btf::BtfError),
    /// The object could not be loaded (maps created, programs verified).
    #[error("failed to load the eBPF programs ({HINT_PRIV})")]
    Load(#[source] aya::EbpfError),
    /// A program or map is missing from the object.
    #[error("the eBPF object has no `{name}`: rebuild it with `cargo xtask build-ebpf`")]
    Missing {
        /// The program or map.
        name: &'static str,
    },
    /// A program could not be loaded into the kernel or attached.
    #[error("failed to load or attach `{name}` ({HINT_PRIV})")]
    Program {
        /// The program.
        name: &'static str,
        /// The cause.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map had an unexpected type.
    #[error("eBPF map `{name}` has an unexpected type")]
    Map {
        /// The map.
        name: &'static str,
        /// The cause.
        #[source]
        source: aya::maps::MapError,
    },
    /// A slot table could not be memory-mapped.
    #[error("failed to memory-map eBPF map `{name}`")]
    Mmap {
        /// The map.
        name: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The number of possible CPUs could not be read.
    #[error("failed to read the number of possible CPUs from /sys/devices/system/cpu/possible")]
    Cpus(#[source] std::io::Error),
}

/// The kernel-side accounting, loaded and attached. Detaches when dropped.
pub struct EbpfTaskStats {
    tasks: BpfHashMap<MapData, TaskKey, u32>,
    table: slots::SlotTable,
    free: Queue<MapData, u32>,
    idle: PerCpuArray<MapData, u64>,
    slices: PerCpuArray<MapData, CpuSlice>,
    exits: BpfHashMap<MapData, TaskKey, ExitRecord>,
    counters: PerCpuArray<MapData, u64>,
    /// Exits seen in the previous snapshot: final, to report and drain in this one.
    pending_exits: HashSet<TaskKey>,
    /// The per-tick scan: reused buffers and each slot's last reported total.
    scan: scan::Scan,
    /// Exits already reported whose `EXITS` record could not be removed: never reported twice.
    reported: HashSet<TaskKey>,
    ncpus: usize,
    /// Keeps the programs (and so their attachments) alive.
    _bpf: Ebpf,
}

fn take<T>(bpf: &mut Ebpf, name: &'static str) -> Result<T, EbpfError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = bpf.take_map(name).ok_or(EbpfError::Missing { name })?;
    T::try_from(map).map_err(|source| EbpfError::Map { name, source })
}

fn attach(bpf: &mut Ebpf, name: &'static str) -> Result<(), EbpfError> {
    let prog: &mut RawTracePoint = bpf
        .program_mut(name)
        .ok_or(EbpfError::Missing { name })?
        .try_into()
        .map_err(|source| EbpfError::Program { name, source })?;
    prog.load()
        .map_err(|source| EbpfError::Program { name, source })?;
    prog.attach(name)
        .map_err(|source| EbpfError::Program { name, source })?;
    Ok(())
}

/// Loads and attaches the `tp_btf` program `name`, typed against the kernel's BTF.
fn attach_btf(bpf: &mut Ebpf, name: &'static str, btf: &aya::Btf) -> Result<(), EbpfError> {
    let prog: &mut BtfTracePoint = bpf
        .program_mut(name)
        .ok_or(EbpfError::Missing { name })?
        .try_into()
        .map_err(|source| EbpfError::Program { name, source })?;
    prog.load(name, btf)
        .map_err(|source| EbpfError::Program { name, source })?;
    prog.attach()
        .map_err(|source| EbpfError::Program { name, source })?;
    Ok(())
}

/// Options for [`EbpfTaskStats::load_with`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Capacity of the process table (default `MAX_TASKS`); tests shrink it to fill it.
    pub max_tasks: Option<u32>,
}

impl EbpfTaskStats {
    /// Loads and attaches the programs, reading `task_struct` offsets from the BTF at
    /// `btf_path` (normally [`VMLINUX_BTF`]).
    pub fn load(btf_path: &Path) -> Result<EbpfTaskStats, EbpfError> {
        EbpfTaskStats::load_with(btf_path, &LoadOptions::default())
    }

    /// [`EbpfTaskStats::load`] with options.
    pub fn load_with(btf_path: &Path, opts: &LoadOptions) -> Result<EbpfTaskStats, EbpfError> {
        if OBJECT.is_empty() {
            return Err(EbpfError::NoObject);
        }
        let raw = std::fs::read(btf_path).map_err(|source| EbpfError::BtfRead {
            path: btf_path.display().to_string(),
            source,
        })?;
        let kbtf = btf::Btf::parse(&raw).map_err(EbpfError::Btf)?;
        let off = |m: &str| kbtf.member_offset("task_struct", m).map_err(EbpfError::Btf);
        let off_tgid = off("tgid")?;
        let off_leader = off("group_leader")?;
        let off_start = off("start_boottime")?;
        let off_parent = off("real_parent")?;
        let has_group_dead = u32::from(
            kbtf.raw_tracepoint_arity(PROG_SCHED_EXIT)
                .map_err(EbpfError::Btf)?
                >= 2,
        );
        let ncpus = aya::util::nr_cpus().map_err(|(_, e)| EbpfError::Cpus(e))?;
        let max = opts.max_tasks.unwrap_or(MAX_TASKS);
        let ncpus32 = u32::try_from(ncpus).unwrap_or(u32::MAX);
        let mut loader = EbpfLoader::new();
        loader
            // `THREADS` (task-local storage) has no typed wrapper in aya; only the kernel uses it.
            .allow_unsupported_maps()
            .map_max_entries(MAP_TASKS, max)
            .map_max_entries(MAP_SLOT_KEYS, max)
            .map_max_entries(MAP_FREE_SLOTS, max)
            .map_max_entries(MAP_SLOT_DATA, max.saturating_mul(ncpus32));
        let mut bpf = loader
            .override_global(GLOBAL_NCPUS, &ncpus32, true)
            .override_global(GLOBAL_OFF_TGID, &off_tgid, true)
            .override_global(GLOBAL_OFF_GROUP_LEADER, &off_leader, true)
            .override_global(GLOBAL_OFF_START_BOOTTIME, &off_start, true)
            .override_global(GLOBAL_OFF_REAL_PARENT, &off_parent, true)
            .override_global("HAS_GROUP_DEAD", &has_group_dead, true)
            .load(OBJECT)
            .map_err(EbpfError::Load)?;
        let table = slots::SlotTable::new(
            mmap(
                &mut bpf,
                MAP_SLOT_KEYS,
                max as usize * std::mem::size_of::<TaskKey>(),
            )?,
            mmap(
                &mut bpf,
                MAP_SLOT_DATA,
                max as usize * ncpus * std::mem::size_of::<TaskCpu>(),
            )?,
            max as usize,
            ncpus,
        );
        let mut free: Queue<MapData, u32> = take(&mut bpf, MAP_FREE_SLOTS)?;
        for slot in 0..max {
            free.push(slot, 0).map_err(|source| EbpfError::Map {
                name: MAP_FREE_SLOTS,
                source,
            })?;
        }
        let mut stats = EbpfTaskStats {
            tasks: take(&mut bpf, MAP_TASKS)?,
            table,
            free,
            idle: take(&mut bpf, MAP_IDLE)?,
            slices: take(&mut bpf, MAP_CPU_SLICE)?,
            exits: take(&mut bpf, MAP_EXITS)?,
            counters: take(&mut bpf, MAP_COUNTERS)?,
            pending_exits: HashSet::new(),
            reported: HashSet::new(),
            scan: scan::Scan::default(),
            ncpus,
            _bpf: bpf,
        };
        attach(&mut stats._bpf, PROG_SCHED_EXIT)?;
        let typed = aya::Btf::parse(&raw, aya::Endianness::default()).map_err(|source| {
            EbpfError::BtfParse {
                path: btf_path.display().to_string(),
                source,
            }
        })?;
        attach_btf(&mut stats._bpf, PROG_SCHED_SWITCH, &typed)?;
        drop(typed);
        drop(raw);
        // The kernel's BTF (several MiB, parsed twice) is no longer needed: hand the freed
        // heap back to the system so it does not stay in the agent's resident set.
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only releases free heap memory.
        unsafe {
            libc::malloc_trim(0);
        }
        Ok(stats)
    }

    /// Number of possible CPUs (the length of every per-CPU vector).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }
}

fn mmap(bpf: &mut Ebpf, name: &'static str, len: usize) -> Result<slots::Mapping, EbpfError> {
    use std::os::fd::AsFd;
    let map = bpf.map(name).ok_or(EbpfError::Missing { name })?;
    let Map::Array(data) = map else {
        return Err(EbpfError::Missing { name });
    };
    let fd = data
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(EbpfError::Cpus)?;
    slots::Mapping::new(&fd, len).map_err(|e| EbpfError::Mmap { name, source: e })
}
