//! Tests for the BTF reader on hand-built blobs laid out as the kernel writes them.
use super::*;

/// Builds a BTF blob from raw type records and a string table.
fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_bytes: Vec<u8> = types.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
    out.push(1); // version
    out.push(0); // flags
    for v in [
        24u32,
        0,
        type_bytes.len() as u32,
        type_bytes.len() as u32,
        strings.len() as u32,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&type_bytes);
    out.extend_from_slice(strings);
    out
}

fn info(kind: u32, vlen: u32, kind_flag: bool) -> u32 {
    (u32::from(kind_flag) << 31) | (kind << 24) | vlen
}

// Strings: 0 "", 1 "int", 5 "task_struct", 17 "tgid", 22 "start_boottime", 37 "group_leader",
// 50 "btf_trace_sched_process_exit"
const STRINGS: &[u8] =
    b"\0int\0task_struct\0tgid\0start_boottime\0group_leader\0btf_trace_sched_process_exit\0";

fn sample() -> Vec<u8> {
    blob(
        &[
            // [1] INT 'int' size 4
            1,
            info(KIND_INT, 0, false),
            4,
            0x0100_0020,
            // [2] STRUCT (anon) size 16, 2 members: tgid at bit 0, start_boottime at bit 64
            0,
            info(KIND_STRUCT, 2, false),
            16,
            17,
            1,
            0,
            22,
            1,
            64,
            // [3] STRUCT 'task_struct' size 64, members: group_leader at bit 128, anon [2] at bit 256
            5,
            info(KIND_STRUCT, 2, true),
            64,
            37,
            4,
            128,
            0,
            2,
            256,
            // [4] PTR -> [3]
            0,
            info(KIND_PTR, 0, false),
            3,
            // [5] FUNC_PROTO ret void, 3 params (void *, task *, bool)
            0,
            info(KIND_FUNC_PROTO, 3, false),
            0,
            0,
            4,
            0,
            4,
            0,
            1,
            // [6] PTR -> [5]
            0,
            info(KIND_PTR, 0, false),
            5,
            // [7] TYPEDEF btf_trace_sched_process_exit -> [6]
            50,
            info(KIND_TYPEDEF, 0, false),
            6,
        ],
        STRINGS,
    )
}

#[test]
fn finds_direct_and_anonymous_members() {
    let btf = Btf::parse(&sample()).expect("parse");
    assert_eq!(btf.member_offset("task_struct", "group_leader"), Ok(16));
    // Inside the anonymous struct at byte 32: tgid at +0, start_boottime at +8.
    assert_eq!(btf.member_offset("task_struct", "tgid"), Ok(32));
    assert_eq!(btf.member_offset("task_struct", "start_boottime"), Ok(40));
}

#[test]
fn reports_missing_things() {
    let btf = Btf::parse(&sample()).expect("parse");
    assert!(matches!(
        btf.member_offset("task_struct", "nope"),
        Err(BtfError::NoMember { .. })
    ));
    assert!(matches!(
        btf.member_offset("mm_struct", "tgid"),
        Err(BtfError::NoStruct { .. })
    ));
    assert!(matches!(
        btf.raw_tracepoint_arity("sched_switch"),
        Err(BtfError::NoTracepoint { .. })
    ));
}

#[test]
fn tracepoint_arity_drops_the_data_pointer() {
    let btf = Btf::parse(&sample()).expect("parse");
    assert_eq!(btf.raw_tracepoint_arity("sched_process_exit"), Ok(2));
}

#[test]
fn rejects_garbage() {
    assert!(Btf::parse(b"not btf at all, not at all").is_err());
    let mut cut = sample();
    cut.truncate(40);
    assert!(Btf::parse(&cut).is_err());
}
