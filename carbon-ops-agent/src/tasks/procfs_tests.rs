//! Tests for the procfs reader on recorded `/proc` text and fake `/proc` trees.
use std::fs;

use super::*;

// Recorded on the development machine (kernel 6.18): `cat /proc/self/stat`.
const CAT_STAT: &str = "8642 (cat) R 8599 8599 1092 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 51574 3133440 381 18446744073709551615 94122914758656 94122914778537 140722255311744 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94122914794544 94122914796160 94123085955072 140722255317699 140722255317719 140722255317719 140722255319019 0\n";
// Recorded: the first lines of `/proc/stat` on a 2-CPU machine.
const PROC_STAT: &str = "cpu  32305 0 3542 65901 897 0 76 59 0 0\ncpu0 16703 0 1778 32309 536 0 24 31 0 0\ncpu1 15601 0 1763 33591 360 0 51 27 0 0\nintr 301964 0 0\nctxt 1\n";

#[test]
fn parses_recorded_pid_stat() {
    let ps = parse_pid_stat(CAT_STAT).expect("parse");
    assert_eq!(ps.pid, 8642);
    assert_eq!(ps.comm, "cat");
    assert_eq!(ps.ppid, 8599);
    assert_eq!(ps.cpu_ticks, 0);
    assert_eq!(ps.start_ticks, 51574);
    assert_eq!(ps.processor, 1);
}

#[test]
fn comm_with_spaces_and_parentheses() {
    let line = CAT_STAT.replace("(cat)", "(a) b (c))");
    let ps = parse_pid_stat(&line).expect("parse");
    assert_eq!(ps.comm, "a) b (c)");
    assert_eq!(ps.start_ticks, 51574);
}

#[test]
fn truncated_or_garbage_stat_is_an_error() {
    assert!(parse_pid_stat("12 (x) R 1 2 3").is_err());
    assert!(parse_pid_stat("garbage").is_err());
    assert!(parse_pid_stat(") (").is_err());
}

#[test]
fn parses_recorded_proc_stat_idle_plus_iowait() {
    assert_eq!(
        parse_proc_stat_idle(PROC_STAT),
        Ok(vec![32309 + 536, 33591 + 360])
    );
    assert!(parse_proc_stat_idle("intr 1 2\n").is_err());
}

fn write_pid(
    root: &std::path::Path,
    pid: u32,
    comm: &str,
    utime: u64,
    stime: u64,
    start: u64,
    cpu: u64,
) {
    let dir = root.join(pid.to_string());
    fs::create_dir_all(&dir).expect("mkdir");
    let line = format!(
        "{pid} ({comm}) S 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 1 0 {start} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 {cpu} 0 0 0 0 0\n"
    );
    fs::write(dir.join("stat"), line).expect("write");
}

#[test]
fn fake_proc_tree_snapshots_and_exits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    fs::write(root.join("stat"), PROC_STAT).expect("write");
    write_pid(root, 100, "worker one", 10, 5, 1000, 0);
    write_pid(root, 200, "b", 1, 0, 2000, 1);
    fs::create_dir_all(root.join("self")).expect("mkdir");
    let mut p = ProcfsTaskStats::new(root, 100);
    let s1 = p.snapshot(1).expect("snapshot");
    assert_eq!(s1.ncpus, 2);
    assert_eq!(s1.idle_ns, vec![32845 * 10_000_000, 33951 * 10_000_000]);
    let a = s1.tasks.iter().find(|t| t.id.pid == 100).expect("pid 100");
    assert_eq!(a.id.start_boottime_ns, 1000 * 10_000_000);
    assert_eq!(a.per_cpu_ns, vec![15 * 10_000_000, 0]);
    // pid 100 moves to CPU 1 and runs 3 more ticks; pid 200 exits.
    write_pid(root, 100, "worker one", 12, 6, 1000, 1);
    fs::remove_dir_all(root.join("200")).expect("rm");
    let s2 = p.snapshot(2).expect("snapshot");
    let a = s2.tasks.iter().find(|t| t.id.pid == 100).expect("pid 100");
    assert_eq!(a.per_cpu_ns, vec![150_000_000, 30_000_000]);
    assert_eq!(s2.exited.len(), 1);
    assert_eq!(s2.exited[0].id.pid, 200);
    assert_eq!(s2.exited[0].comm, "b");
    // The exited process carries its final value in the same snapshot, then is gone.
    assert!(
        s2.tasks
            .iter()
            .any(|t| t.id.pid == 200 && t.total_ns() == 10_000_000)
    );
    let s3 = p.snapshot(3).expect("snapshot");
    assert!(s3.tasks.iter().all(|t| t.id.pid != 200));
    // pid 100 did not move: left out (unchanged), not reported again.
    assert!(s3.tasks.is_empty());
}

#[test]
fn missing_root_is_a_clear_error() {
    let mut p = ProcfsTaskStats::new("/nonexistent/carbon-ops-proc", 100);
    let err = p.snapshot(0).expect_err("must fail");
    assert!(
        err.to_string()
            .contains("/nonexistent/carbon-ops-proc/stat"),
        "{err}"
    );
}
