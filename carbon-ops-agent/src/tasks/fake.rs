//! A scripted [`TaskStats`] for unit tests of everything downstream of CPU accounting.

use std::collections::VecDeque;

use super::{AttributionMode, Snapshot, TaskStats, TaskStatsError};

/// Returns the snapshots it was given, in order, stamped with the requested instant; once
/// they run out it repeats the last one (cumulative values that no longer change).
pub struct FakeTaskStats {
    mode: AttributionMode,
    queue: VecDeque<Snapshot>,
    last: Snapshot,
}

impl FakeTaskStats {
    /// A fake that reports `mode` and returns `snapshots` in order.
    pub fn new(mode: AttributionMode, snapshots: Vec<Snapshot>) -> FakeTaskStats {
        FakeTaskStats {
            mode,
            queue: snapshots.into(),
            last: Snapshot::default(),
        }
    }
}

impl TaskStats for FakeTaskStats {
    fn mode(&self) -> AttributionMode {
        self.mode
    }

    fn snapshot(&mut self, at_ns: u64) -> Result<Snapshot, TaskStatsError> {
        if let Some(next) = self.queue.pop_front() {
            self.last = next;
        } else {
            // Exits are reported once only: the processes are gone from later snapshots.
            let gone: Vec<_> = self.last.exited.drain(..).map(|e| e.id).collect();
            self.last.tasks.retain(|t| !gone.contains(&t.id));
        }
        let mut s = self.last.clone();
        s.at_ns = at_ns;
        Ok(s)
    }
}
