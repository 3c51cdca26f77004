//! What verification reports: each break (where, which `seq`, what is wrong) and the summary.
//!
//! These types are the `--json` output of `carbon-ops ledger verify` and the answer of the
//! `ledger_verify` socket op, so their serialised shape is part of the interface.

use super::chain::Head;
use serde::Serialize;
use std::fmt;

/// One thing wrong with a ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    #[error("line is not valid JSON: {detail}")]
    BadJson { detail: String },
    #[error("line is not in RFC 8785 canonical form: {detail}")]
    NotCanonical { detail: String },
    #[error("field `{field}` is wrong: {detail}")]
    BadField { field: String, detail: String },
    #[error("hash does not match the entry: recorded {recorded}, computed {computed}")]
    BadHash { computed: String, recorded: String },
    #[error(
        "prev_hash does not link to the previous entry: recorded {recorded}, expected {expected}"
    )]
    BadPrevHash { expected: String, recorded: String },
    #[error("seq gap: expected {expected}, found {found} (entries missing)")]
    SeqGap { expected: u64, found: u64 },
    #[error("duplicate of the previous entry (seq {seq})")]
    Duplicate { seq: u64 },
    #[error("seq out of order: expected {expected}, found {found} (entries reordered or repeated)")]
    SeqOutOfOrder { expected: u64, found: u64 },
    #[error("segment does not start with a genesis entry (found kind {found_kind:?})")]
    MissingGenesis { found_kind: String },
    #[error("genesis entry in the middle of a segment")]
    MisplacedGenesis,
    #[error("genesis entry is wrong: {detail}")]
    BadGenesis { detail: String },
    #[error("last line has no trailing newline ({bytes} bytes): torn write or truncation")]
    TornTail { bytes: usize },
    #[error("{against}: entry {seq} has hash {found}, expected {expected}")]
    HeadMismatch {
        against: String,
        seq: u64,
        expected: String,
        found: String,
    },
    #[error("{against}: head is seq {head_seq} but the ledger ends at {last_seq:?} (truncated)")]
    Truncated {
        against: String,
        head_seq: u64,
        last_seq: Option<u64>,
    },
    #[error("{against}: no entry has hash {hash}")]
    HeadNotFound { against: String, hash: String },
    #[error("head file is missing; truncation at the tail cannot be ruled out")]
    HeadFileMissing,
    #[error("head file is unreadable ({detail}); truncation at the tail cannot be ruled out")]
    HeadFile { detail: String },
    #[error("checkpoint is invalid: {detail}")]
    BadCheckpoint { detail: String },
    #[error("segment file {index} is missing while later segments exist")]
    MissingSegment { index: u32 },
    #[error("cannot read {path}: {detail}")]
    Unreadable { path: String, detail: String },
}

/// A problem and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// Segment index (0 = the ledger file itself), when the break is in a file.
    pub segment: Option<u32>,
    /// 1-based line number within the segment, when the break is on a line.
    pub line: Option<u64>,
    /// The entry's `seq`, when it could be read.
    pub seq: Option<u64>,
    #[serde(flatten)]
    pub problem: Problem,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "seq {seq}")?,
            None => write!(f, "seq ?")?,
        }
        if let (Some(s), Some(l)) = (self.segment, self.line) {
            write!(f, " (segment {s} line {l})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// The outcome of verifying a ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Entries read (lines that parsed far enough to be chained).
    pub entries: u64,
    /// Segment files read.
    pub segments: u32,
    /// The last entry read.
    pub head: Option<Head>,
    /// The ledger id from the first genesis entry.
    pub ledger_id: Option<String>,
    /// Checkpoint entries whose signature verified with a given public key.
    pub checkpoints_verified: u64,
    /// Every break found, in file order (head checks last).
    pub breaks: Vec<Break>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.breaks.is_empty()
    }

    /// The `seq` of the first break that names one (what the agent cites when refusing).
    pub fn first_bad_seq(&self) -> Option<u64> {
        self.breaks.iter().find_map(|b| b.seq)
    }
}
