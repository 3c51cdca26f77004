//! Verifying a ledger on disk: reads every segment in order, streams lines in chunks through
//! the parallel line checks and the [`Verifier`], and compares the head file and any
//! expected head. Used by `carbon-ops ledger verify`, by open, and by the `ledger_verify` op.

use super::checkpoint::CheckpointVerifier;
use super::head::read_head;
use super::problem::{Problem, Report};
use super::segments::{list_segments, missing_indices, segment_path};
use super::verify::{HeadExpectation, Verifier, check_lines};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Lines checked per parallel chunk.
const CHUNK_LINES: usize = 32 * 1024;

/// What to compare the ledger against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// A head recorded elsewhere (`--expect-head`): `seq` optional.
    pub expect_head: Option<HeadExpectation>,
    /// Compare against `<ledger>.head`; a missing head file is then a break.
    pub use_head_file: bool,
    /// A writer may be appending: ignore a fragment after the last `\n` instead of reporting it.
    pub live: bool,
    /// Threads for line checks (0 = available parallelism).
    pub threads: usize,
    /// Public keys that checkpoint entries must verify with (none: checkpoints not checked).
    pub checkpoint_keys: Vec<CheckpointVerifier>,
}

/// Verifies the ledger whose base path is `base` and returns every break.
pub fn verify_ledger(base: &Path, options: &VerifyOptions) -> Report {
    let mut expectations = Vec::new();
    let mut head_file_problem = None;
    if options.use_head_file {
        match read_head(base) {
            Ok(Some(head)) => expectations.push(HeadExpectation {
                source: "head file".into(),
                seq: Some(head.seq),
                hash: head.hash,
            }),
            Ok(None) => head_file_problem = Some(Problem::HeadFileMissing),
            Err(detail) => head_file_problem = Some(Problem::HeadFile { detail }),
        }
    }
    expectations.extend(options.expect_head.clone());
    let mut verifier =
        Verifier::new(expectations).with_checkpoint_keys(options.checkpoint_keys.clone());
    if let Some(problem) = head_file_problem {
        verifier.report_other(problem);
    }
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let indices = match list_segments(base) {
        Ok(i) => i,
        Err(e) => {
            let path = base.display().to_string();
            verifier.report_other(Problem::Unreadable {
                path,
                detail: e.to_string(),
            });
            return verifier.finish();
        }
    };
    for index in missing_indices(&indices) {
        verifier.report_other(Problem::MissingSegment { index });
    }
    if indices.is_empty() {
        let path = base.display().to_string();
        verifier.report_other(Problem::Unreadable {
            path,
            detail: "no such ledger file".into(),
        });
    }
    for index in indices {
        verifier.begin_segment(index);
        let path = segment_path(base, index);
        if let Err(e) = verify_segment(&path, &mut verifier, threads, options.live) {
            let path = path.display().to_string();
            verifier.report_other(Problem::Unreadable {
                path,
                detail: e.to_string(),
            });
        }
    }
    verifier.finish()
}

fn verify_segment(
    path: &Path,
    verifier: &mut Verifier,
    threads: usize,
    live: bool,
) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut arena: Vec<u8> = Vec::with_capacity(CHUNK_LINES * 320);
    let mut ends: Vec<usize> = Vec::with_capacity(CHUNK_LINES);
    loop {
        arena.clear();
        ends.clear();
        let mut torn = 0;
        while ends.len() < CHUNK_LINES {
            let start = arena.len();
            let n = reader.read_until(b'\n', &mut arena)?;
            if n == 0 {
                break;
            }
            if arena.last() != Some(&b'\n') {
                torn = arena.len() - start;
                arena.truncate(start);
                break;
            }
            arena.pop();
            ends.push(arena.len());
        }
        let mut lines = Vec::with_capacity(ends.len());
        let mut start = 0;
        for &end in &ends {
            lines.push(&arena[start..end]);
            start = end;
        }
        for check in check_lines(&lines, threads) {
            verifier.push(check);
        }
        if torn > 0 && !live {
            verifier.torn_tail(torn);
        }
        if ends.len() < CHUNK_LINES {
            return Ok(());
        }
    }
}
