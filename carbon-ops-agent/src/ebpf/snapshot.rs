//! One consistent snapshot per tick from the kernel's maps (the reading order is explained in
//! the parent module): closed slices from the memory-mapped slot table, then the running
//! slices, then the exits; only processes whose total moved are listed, and final ones are
//! drained (slot zeroed and given back to the kernel).

use std::collections::HashSet;

use carbon_ops_common::{
    COUNTER_SLOTS, ExitRecord, MAP_COUNTERS, MAP_CPU_SLICE, MAP_EXITS, MAP_IDLE, TaskCpu, TaskKey,
};

use super::EbpfTaskStats;
use crate::tasks::{
    AttributionMode, ExitInfo, LossCounters, ProcessId, Snapshot, TaskSample, TaskStats,
    TaskStatsError,
};

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> TaskStatsError {
    move |source| TaskStatsError::Map { map, source }
}

fn comm_string(comm: &[u8]) -> String {
    let end = comm.iter().position(|&c| c == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

fn id_of(key: &TaskKey) -> ProcessId {
    ProcessId {
        pid: key.tgid,
        start_boottime_ns: key.start_boottime_ns,
    }
}

impl TaskStats for EbpfTaskStats {
    fn mode(&self) -> AttributionMode {
        AttributionMode::Ebpf
    }

    fn snapshot(&mut self, at_ns: u64) -> Result<Snapshot, TaskStatsError> {
        let n = self.ncpus;
        // 1. Closed slices, all processes, into reused flat buffers.
        self.scan.read_closed(&self.table, n, &self.pending_exits);
        let mut idle_ns: Vec<u64> = self
            .idle
            .get(&0, 0)
            .map_err(map_err(MAP_IDLE))?
            .iter()
            .take(n)
            .copied()
            .collect();
        idle_ns.resize(n, 0);
        // 2. Running slices, closed at `at_ns` in this snapshot only.
        let slices = self.slices.get(&0, 0).map_err(map_err(MAP_CPU_SLICE))?;
        let mut open: Vec<(usize, TaskKey, u64)> = Vec::with_capacity(n);
        for (cpu, s) in slices.iter().enumerate().take(n) {
            if s.start_ns == 0 || s.start_ns >= at_ns {
                continue;
            }
            if s.key.tgid == 0 {
                idle_ns[cpu] = idle_ns[cpu].saturating_add(at_ns - s.start_ns);
            } else {
                open.push((cpu, s.key, at_ns - s.start_ns));
            }
        }
        // 3. Exits: those seen last time are final now.
        let records: Vec<(TaskKey, ExitRecord)> = self
            .exits
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err(MAP_EXITS))?;
        let mut exited = Vec::new();
        let mut finals = HashSet::new();
        let mut now_pending = HashSet::new();
        for (key, rec) in records {
            if self.reported.contains(&key) {
                if self.exits.remove(&key).is_ok() {
                    self.reported.remove(&key);
                }
                continue;
            }
            if self.pending_exits.contains(&key) {
                finals.insert(key);
                exited.push(ExitInfo {
                    id: id_of(&key),
                    exit_monotonic_ns: rec.exit_ns,
                    uid: rec.uid,
                    ppid: rec.ppid,
                    comm: comm_string(&rec.comm),
                    cgroup_id: rec.cgroup_id,
                });
            } else {
                now_pending.insert(key);
            }
        }
        // 4. Only processes whose total moved since the last snapshot (and final ones) are
        //    reported: with 10,000 mostly sleeping processes a tick touches a few hundred.
        let mut tasks = Vec::new();
        let mut seen_final = HashSet::new();
        let mut drain_slot: Vec<(TaskKey, usize)> = Vec::new();
        let mut moved: Vec<(usize, usize, TaskKey, u64)> = Vec::new();
        for (i, slot, key) in self.scan.live() {
            let mut total = self
                .scan
                .closed(i)
                .iter()
                .fold(0u64, |a, &b| a.saturating_add(b));
            for (_, k, ns) in &open {
                if *k == key {
                    total = total.saturating_add(*ns);
                }
            }
            let is_final = finals.contains(&key);
            if is_final {
                seen_final.insert(key);
                drain_slot.push((key, slot));
            }
            if !is_final && self.scan.unchanged(slot, key, total) {
                continue;
            }
            moved.push((i, slot, key, total));
        }
        for (i, slot, key, total) in moved {
            self.scan.reported(slot, key, total);
            let mut per_cpu_ns = self.scan.closed(i).to_vec();
            per_cpu_ns.resize(n, 0);
            for (cpu, k, ns) in &open {
                if *k == key {
                    per_cpu_ns[*cpu] = per_cpu_ns[*cpu].saturating_add(*ns);
                }
            }
            // Switch counts and cgroup are descriptive, not accounted: read them now.
            let v: Vec<TaskCpu> = (0..n).map(|cpu| self.table.value(slot, cpu)).collect();
            tasks.push(TaskSample {
                id: id_of(&key),
                per_cpu_ns,
                switches: v.iter().fold(0u64, |a, t| a.saturating_add(t.switches)),
                cgroup_id: v.iter().map(|t| t.cgroup_id).max().unwrap_or(0),
            });
        }
        // A running process with no slot (never switched out yet, or the table is full) is
        // left out: its slice is counted when it is switched out (into its new slot, or as
        // lost time), never twice.
        // A final process whose slices were all lost has no entry either: report it empty.
        for e in &exited {
            let key = key_of(&e.id);
            if !seen_final.contains(&key) {
                tasks.push(TaskSample {
                    id: e.id,
                    per_cpu_ns: vec![0; n],
                    switches: 0,
                    cgroup_id: e.cgroup_id,
                });
            }
        }
        // 5. Losses.
        let mut lost = [0u64; COUNTER_SLOTS as usize];
        for (slot, total) in lost.iter_mut().enumerate() {
            let values = self
                .counters
                .get(&(slot as u32), 0)
                .map_err(map_err(MAP_COUNTERS))?;
            *total = values.iter().fold(0u64, |a, &b| a.saturating_add(b));
        }
        // 6. Drain the final records; a failed removal is retried at the next snapshot.
        for e in &exited {
            let key = key_of(&e.id);
            // Absent from TASKS when its slices were lost (counted in `lost`): nothing to remove.
            let _ = self.tasks.remove(&key);
            if let Some(&(_, slot)) = drain_slot.iter().find(|(k, _)| *k == key) {
                self.table.clear(slot);
                self.scan.forget(slot);
                let _ = self.free.push(slot as u32, 0);
            }
            if self.exits.remove(&key).is_err() {
                self.reported.insert(key);
            }
        }
        self.pending_exits = now_pending;
        Ok(Snapshot {
            at_ns,
            ncpus: n,
            tasks,
            idle_ns,
            exited,
            lost: LossCounters {
                task_insert_failed: lost[0],
                task_lost_ns: lost[1],
                exit_insert_failed: lost[2],
                read_failed: lost[3],
            },
        })
    }
}

fn key_of(id: &ProcessId) -> TaskKey {
    TaskKey {
        tgid: id.pid,
        pad: 0,
        start_boottime_ns: id.start_boottime_ns,
    }
}
