//! The scan on a slot table laid out as the kernel writes it, in a file-backed mapping.

use std::{collections::HashSet, io::Write};

use carbon_ops_common::TaskKey;

use super::Scan;
use crate::ebpf::slots::{Mapping, SlotTable};

const SLOTS: usize = 4;
const CPUS: usize = 2;

fn key(tgid: u32, start: u64) -> TaskKey {
    TaskKey {
        tgid,
        pad: 0,
        start_boottime_ns: start,
    }
}

/// A table whose slot `s` holds `keys[s]` and, on each CPU, `ns[s][cpu]` on-CPU ns.
fn table(keys: [TaskKey; SLOTS], ns: [[u64; CPUS]; SLOTS]) -> (SlotTable, [std::fs::File; 2]) {
    let mut kf = tempfile::tempfile().expect("tmp");
    let mut df = tempfile::tempfile().expect("tmp");
    let mut kb = Vec::new();
    let mut db = Vec::new();
    for (k, per_cpu) in keys.iter().zip(&ns) {
        kb.extend_from_slice(&u64::from(k.tgid).to_ne_bytes());
        kb.extend_from_slice(&k.start_boottime_ns.to_ne_bytes());
        for v in per_cpu {
            // on_cpu_ns, switches, cgroup_id
            db.extend_from_slice(&v.to_ne_bytes());
            db.extend_from_slice(&1u64.to_ne_bytes());
            db.extend_from_slice(&7u64.to_ne_bytes());
        }
    }
    kb.resize(4096, 0);
    db.resize(4096, 0);
    kf.write_all(&kb).expect("write");
    df.write_all(&db).expect("write");
    let t = SlotTable::new(
        Mapping::new(&kf, kb.len()).expect("map"),
        Mapping::new(&df, db.len()).expect("map"),
        SLOTS,
        CPUS,
    );
    (t, [kf, df])
}

#[test]
fn reads_live_slots_with_time_and_skips_the_rest() {
    let (a, b, c) = (key(10, 1), key(11, 2), key(12, 3));
    let (t, _files) = table(
        [a, TaskKey::default(), b, c],
        [[5, 6], [9, 9], [0, 0], [0, 4]],
    );
    let mut scan = Scan::default();
    scan.read_closed(&t, CPUS, &HashSet::new());
    let live: Vec<_> = scan.live().collect();
    // Slot 1 is free (its stale counters are ignored); slot 2 has no time yet.
    assert_eq!(live, vec![(0, 0, a), (1, 3, c)]);
    assert_eq!(scan.closed(0), &[5, 6]);
    assert_eq!(scan.closed(1), &[0, 4]);
    // A process with no time but an exit to drain is read.
    scan.read_closed(&t, CPUS, &HashSet::from([b]));
    let slots: Vec<usize> = scan.live().map(|(_, s, _)| s).collect();
    assert_eq!(slots, vec![0, 2, 3]);
    assert_eq!(scan.closed(1), &[0, 0]);
}

#[test]
fn a_slot_reports_again_only_when_its_total_or_its_process_changes() {
    let (a, b) = (key(10, 1), key(10, 99));
    let (t, _files) = table([a; SLOTS], [[1, 1]; SLOTS]);
    let mut scan = Scan::default();
    scan.read_closed(&t, CPUS, &HashSet::new());
    assert!(!scan.unchanged(0, a, 2), "never reported yet");
    scan.reported(0, a, 2);
    assert!(scan.unchanged(0, a, 2));
    assert!(!scan.unchanged(0, a, 3), "total moved");
    assert!(
        !scan.unchanged(0, b, 2),
        "same PID, new process in the slot"
    );
    scan.forget(0);
    assert!(!scan.unchanged(0, a, 2), "forgotten after draining");
}
