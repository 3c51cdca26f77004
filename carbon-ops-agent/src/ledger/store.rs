//! The durable append-only store: one writer, open-time recovery, batched durable appends.
//!
//! [`Store::open`] takes the writer lock, creates a new ledger (genesis, fdatasync, directory
//! fsync, head file) or recovers an existing one: a torn last line of the active segment is
//! moved to `<segment>.quarantine` and cut off, then the whole ledger is verified against the
//! head file; any remaining break refuses the open with the first bad `seq` (history is never
//! rewritten). [`Store::append_batch`] writes a batch with one `write` and one `fdatasync`;
//! on failure it cuts the unacknowledged bytes off again. Rotation starts a new segment whose
//! genesis links to the previous segment's final hash.

use super::chain::{EntryError, GENESIS_KIND, Head, SealedEntry, Tip, genesis_payload, hex_lower};
use super::checkpoint::{CHECKPOINT_KIND, CheckpointSigner};
use super::files::{VerifyOptions, verify_ledger};
use super::head::write_head;
use super::problem::Problem;
use super::recover::{Quarantined, quarantine_torn_tail};
use super::segments::{fsync_dir, list_segments, lock_path, parent_dir, segment_path};
use super::ts::format_rfc3339_micros;
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Default size after which a new segment starts.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 64 << 20;

/// Tunables of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Start a new segment before a batch once the active one reaches this size.
    pub max_segment_bytes: u64,
    /// Key for signed checkpoint entries (optional).
    pub checkpoint_signer: Option<CheckpointSigner>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            checkpoint_signer: None,
        }
    }
}

/// Everything that can go wrong with a ledger on disk.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "ledger {path} is damaged ({breaks} break(s), first: {first}); appends refused \
         until an operator inspects it with `carbon-ops ledger verify {path}` (history is never rewritten)"
    )]
    Corrupt {
        path: PathBuf,
        first_bad_seq: Option<u64>,
        first: String,
        breaks: usize,
    },
    #[error("{what} {path} failed")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "ledger {path} is already open by another writer (the agent?); append through its socket instead"
    )]
    Locked { path: PathBuf },
    #[error("entry refused: {0}")]
    Entry(#[from] EntryError),
    #[error("durable write to {path} failed ({detail}); the entry was not recorded")]
    WriteFailed { path: PathBuf, detail: String },
    #[error(
        "ledger writer stopped after an unrecoverable write error ({detail}); restart the agent"
    )]
    Poisoned { detail: String },
    #[error("ledger writer has shut down")]
    Stopped,
    #[error("no checkpoint signing key is configured; set one to write signed checkpoints")]
    NoSigningKey,
}

/// Wraps an `io::Error` with what was being done to which path.
pub(crate) fn io_err(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> LedgerError + use<> {
    let path = path.to_path_buf();
    move |source| LedgerError::Io { what, path, source }
}

/// What open found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// A new ledger was created.
    pub created: bool,
    /// Torn tails moved aside.
    pub quarantined: Vec<Quarantined>,
    /// The head file was missing or behind and has been (re)written.
    pub head_file_repaired: bool,
    /// Entries in the ledger after open.
    pub entries: u64,
    /// The last entry.
    pub head: Head,
}

/// The single writer of a ledger.
#[derive(Debug)]
pub struct Store {
    base: PathBuf,
    file: File,
    segment: u32,
    segment_len: u64,
    tip: Tip,
    ledger_id: String,
    options: StoreOptions,
    poisoned: Option<String>,
    _lock: File,
}

impl Store {
    /// Opens (creating if absent) the ledger at `base`, recovering a torn tail and verifying it.
    /// A missing directory (e.g. `/var/lib/carbon-ops` on a fresh machine) is created, mode
    /// 0750: the ledger is for root and auditors, read with the CLI or a copy.
    pub fn open(base: &Path, options: StoreOptions) -> Result<(Self, OpenReport), LedgerError> {
        let dir = parent_dir(base);
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(&dir)
                .map_err(io_err("creating the ledger directory", &dir))?;
        }
        let lock_file = lock_path(base);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_file)
            .map_err(io_err("creating lock file", &lock_file))?;
        if lock.try_lock().is_err() {
            return Err(LedgerError::Locked {
                path: base.to_path_buf(),
            });
        }
        let indices = list_segments(base).map_err(io_err("listing segments of", base))?;
        let mut quarantined = Vec::new();
        let created = indices.is_empty();
        let active = indices.last().copied().unwrap_or(0);
        let active_path = segment_path(base, active);
        if !created && let Some(q) = quarantine_torn_tail(&active_path)? {
            quarantined.push(q);
        }
        let active_empty = std::fs::metadata(&active_path).map_or(true, |m| m.len() == 0);
        // Everything before the (possibly empty, to-be-started) active segment must verify.
        let report = verify_ledger(
            base,
            &VerifyOptions {
                use_head_file: !created,
                ..VerifyOptions::default()
            },
        );
        let breaks: Vec<_> = report
            .breaks
            .iter()
            .filter(|b| b.problem != Problem::HeadFileMissing)
            .filter(|b| !(active_empty && b.segment == Some(active) && b.line.is_none()))
            .filter(|b| {
                !(created
                    && matches!(
                        b.problem,
                        Problem::Unreadable { .. } | Problem::MissingGenesis { .. }
                    ))
            })
            .collect();
        if let Some(first) = breaks.first() {
            return Err(LedgerError::Corrupt {
                path: base.to_path_buf(),
                first_bad_seq: breaks.iter().find_map(|b| b.seq),
                first: first.to_string(),
                breaks: breaks.len(),
            });
        }
        let head_file_was_ok = report
            .breaks
            .iter()
            .all(|b| b.problem != Problem::HeadFileMissing);
        let ledger_id = match report.ledger_id.clone() {
            Some(id) => id,
            None => random_id().map_err(io_err(
                "reading random bytes from",
                Path::new("/dev/urandom"),
            ))?,
        };
        let tip = report.head.as_ref().map_or_else(Tip::empty, Tip::after);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&active_path)
            .map_err(io_err("opening segment", &active_path))?;
        let segment_len = file
            .metadata()
            .map_err(io_err("reading size of", &active_path))?
            .len();
        let mut store = Self {
            base: base.to_path_buf(),
            file,
            segment: active,
            segment_len,
            tip,
            ledger_id,
            options,
            poisoned: None,
            _lock: lock,
        };
        if segment_len == 0 {
            store.write_genesis(active, &active_path)?;
        }
        let head = store.head();
        let head_file_repaired =
            !head_file_was_ok || report.head.as_ref() != Some(&head) || created;
        store.write_head_file()?;
        let entries = store.tip.next_seq;
        Ok((
            store,
            OpenReport {
                created,
                quarantined,
                head_file_repaired,
                entries,
                head,
            },
        ))
    }

    /// The base path of the ledger.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The last entry written and synced.
    pub fn head(&self) -> Head {
        Head {
            seq: self.tip.next_seq.saturating_sub(1),
            hash: self.tip.prev_hash.clone(),
        }
    }

    /// Rewrites the head file to the current head (temp file, fsync, rename, directory fsync).
    pub fn write_head_file(&self) -> Result<(), LedgerError> {
        write_head(&self.base, &self.head()).map_err(io_err("writing head file of", &self.base))
    }

    fn write_genesis(&mut self, index: u32, path: &Path) -> Result<(), LedgerError> {
        let now = format_rfc3339_micros(SystemTime::now());
        let link = (index > 0).then(|| self.tip.prev_hash.clone());
        let payload = genesis_payload(&self.ledger_id, &now, index, link.as_deref());
        let mut tip = self.tip.clone();
        let sealed = tip.append(&now, GENESIS_KIND, &payload)?;
        self.write_durably(&sealed.line)?;
        fsync_dir(&parent_dir(path)).map_err(io_err("syncing directory of", path))?;
        self.tip = tip;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LedgerError> {
        let index = self.segment + 1;
        let path = segment_path(&self.base, index);
        self.file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_err("creating segment", &path))?;
        fsync_dir(&parent_dir(&path)).map_err(io_err("syncing directory of", &path))?;
        self.segment = index;
        self.segment_len = 0;
        self.write_genesis(index, &path)
    }

    /// Writes `bytes` at the end of the active segment and fdatasyncs; on failure cuts them off.
    fn write_durably(&mut self, bytes: &[u8]) -> Result<(), LedgerError> {
        if let Some(detail) = &self.poisoned {
            return Err(LedgerError::Poisoned {
                detail: detail.clone(),
            });
        }
        let path = segment_path(&self.base, self.segment);
        match self
            .file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => {
                self.segment_len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let detail = e.to_string();
                if let Err(cut) = self
                    .file
                    .set_len(self.segment_len)
                    .and_then(|()| self.file.sync_data())
                {
                    self.poisoned = Some(format!(
                        "{detail}; then cutting the partial write failed: {cut}"
                    ));
                }
                Err(LedgerError::WriteFailed { path, detail })
            }
        }
    }

    /// Whether checkpoints can be signed.
    pub fn can_sign(&self) -> bool {
        self.options.checkpoint_signer.is_some()
    }

    /// Appends entries (validated with `check_kind`/`into_payload`) and checkpoints with one
    /// write and one fdatasync; returns them once durable. Rotates first if the segment is full.
    pub fn append_batch(&mut self, items: &[Item]) -> Result<Vec<SealedEntry>, LedgerError> {
        if self.segment_len >= self.options.max_segment_bytes {
            self.rotate()?;
        }
        let now = format_rfc3339_micros(SystemTime::now());
        let mut tip = self.tip.clone();
        let mut buf = Vec::with_capacity(items.len() * 320);
        let mut sealed = Vec::with_capacity(items.len());
        for item in items {
            let entry = match item {
                Item::Entry { kind, payload } => tip.append(&now, kind, payload)?,
                Item::Checkpoint => {
                    let signer = self
                        .options
                        .checkpoint_signer
                        .as_ref()
                        .ok_or(LedgerError::NoSigningKey)?;
                    let head = Head {
                        seq: tip.next_seq.saturating_sub(1),
                        hash: tip.prev_hash.clone(),
                    };
                    let payload = signer.payload(&self.ledger_id, &head);
                    tip.append(&now, CHECKPOINT_KIND, &payload)?
                }
            };
            buf.extend_from_slice(&entry.line);
            sealed.push(entry);
        }
        self.write_durably(&buf)?;
        self.tip = tip;
        Ok(sealed)
    }
}

/// One thing to append in a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A user entry, already validated.
    Entry {
        kind: String,
        payload: Map<String, Value>,
    },
    /// A checkpoint signing the entry before it.
    Checkpoint,
}

fn random_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex_lower(&bytes))
}
