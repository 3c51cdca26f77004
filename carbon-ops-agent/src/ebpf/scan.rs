//! The per-tick scan of the slot table, without hashing: what each slot last reported is kept
//! in a vector indexed by slot, so a tick costs one pass over the keys plus the per-CPU
//! counters of live slots, whatever the number of processes.
//!
//! The scan reads every closed value first into a flat buffer ([`Scan::read_closed`]); the
//! caller then reads the running slices and the exits, and only then compares ([`Scan::moved`]):
//! a switch racing with the read can only delay a slice to the next snapshot, never count it
//! in both a closed value and a running slice.

use std::collections::HashSet;

use carbon_ops_common::TaskKey;

use super::slots::SlotTable;

/// Reused buffers and the last reported total of each slot.
#[derive(Debug, Default)]
pub struct Scan {
    /// Live slots with time (or a pending exit), in slot order, with their keys.
    live: Vec<(usize, TaskKey)>,
    /// Their closed on-CPU ns, `ncpus` values per live slot.
    closed: Vec<u64>,
    /// Per slot: the key and the total last reported for it.
    last: Vec<(TaskKey, u64)>,
    ncpus: usize,
}

impl Scan {
    /// Reads every slot's key and, for live slots, its closed per-CPU values. A slot with no
    /// time yet (just assigned, or given back after losing a race) is skipped unless its
    /// process has an exit to drain.
    pub fn read_closed(&mut self, table: &SlotTable, ncpus: usize, pending: &HashSet<TaskKey>) {
        self.ncpus = ncpus;
        self.live.clear();
        self.closed.clear();
        self.last.resize(table.slots(), (TaskKey::default(), 0));
        for slot in 0..table.slots() {
            let key = table.key(slot);
            if key.tgid == 0 {
                continue;
            }
            let at = self.closed.len();
            let mut any = false;
            for cpu in 0..ncpus {
                let ns = table.on_cpu_ns(slot, cpu);
                any |= ns != 0;
                self.closed.push(ns);
            }
            if !any && !pending.contains(&key) {
                self.closed.truncate(at);
                continue;
            }
            self.live.push((slot, key));
        }
    }

    /// Live slots read by the last [`Scan::read_closed`]: (index, slot, key).
    pub fn live(&self) -> impl Iterator<Item = (usize, usize, TaskKey)> + '_ {
        self.live
            .iter()
            .enumerate()
            .map(|(i, &(slot, key))| (i, slot, key))
    }

    /// The closed per-CPU ns of live entry `i`.
    pub fn closed(&self, i: usize) -> &[u64] {
        let n = self.ncpus;
        self.closed.get(i * n..(i + 1) * n).unwrap_or(&[])
    }

    /// Whether `slot` last reported exactly `total` for `key`.
    pub fn unchanged(&self, slot: usize, key: TaskKey, total: u64) -> bool {
        self.last.get(slot) == Some(&(key, total))
    }

    /// Records that `slot` reported `total` for `key`.
    pub fn reported(&mut self, slot: usize, key: TaskKey, total: u64) {
        if let Some(last) = self.last.get_mut(slot) {
            *last = (key, total);
        }
    }

    /// Forgets what `slot` reported (its process was drained).
    pub fn forget(&mut self, slot: usize) {
        if let Some(last) = self.last.get_mut(slot) {
            *last = (TaskKey::default(), 0);
        }
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
