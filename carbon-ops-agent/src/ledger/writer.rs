//! Group commit: many threads append concurrently; one writer thread batches them.
//!
//! [`LedgerHandle::append`] validates the entry on the caller's thread, queues it and blocks
//! until the writer thread reports it durable. The writer thread takes everything queued
//! (up to [`MAX_BATCH`]), seals it, writes it with one `write` and one `fdatasync`, answers
//! every caller, and then replaces the head file; appends queued meanwhile form the next
//! batch, so throughput grows with concurrency instead of collapsing. Std threads and
//! channels only.

use super::chain::{Head, check_kind, into_payload};
use super::files::{VerifyOptions, verify_ledger};
use super::problem::Report;
use super::store::{Item, LedgerError, OpenReport, Store, StoreOptions};
use super::verify::HeadExpectation;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Most entries written with one fdatasync.
pub const MAX_BATCH: usize = 1024;

/// An acknowledged (durable) append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appended {
    pub seq: u64,
    pub hash: String,
}

type Reply = SyncSender<Result<Appended, LedgerError>>;

enum Request {
    Append { item: Item, reply: Reply },
    Shutdown,
}

#[derive(Debug)]
struct Shared {
    base: PathBuf,
    can_sign: bool,
    head: Mutex<Head>,
}

/// A cloneable, thread-safe handle for appending to and inspecting an open ledger.
#[derive(Debug, Clone)]
pub struct LedgerHandle {
    tx: Sender<Request>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Append { .. } => "Append",
            Self::Shutdown => "Shutdown",
        })
    }
}

impl LedgerHandle {
    /// Appends an entry and returns once it is on disk. `payload` must be an object; kinds are
    /// 1–64 characters of `[A-Za-z0-9_.:-]`, `genesis` reserved; numbers must be finite and
    /// within ±2^53.
    pub fn append(&self, kind: &str, payload: Value) -> Result<Appended, LedgerError> {
        check_kind(kind)?;
        let payload = into_payload(payload)?;
        self.submit(Item::Entry {
            kind: kind.to_owned(),
            payload,
        })
    }

    /// Appends a checkpoint entry signing the current last entry (needs a signing key in
    /// `StoreOptions::checkpoint_signer`).
    pub fn checkpoint(&self) -> Result<Appended, LedgerError> {
        if !self.shared.can_sign {
            return Err(LedgerError::NoSigningKey);
        }
        self.submit(Item::Checkpoint)
    }

    fn submit(&self, item: Item) -> Result<Appended, LedgerError> {
        let (reply, answer) = sync_channel(1);
        self.tx
            .send(Request::Append { item, reply })
            .map_err(|_| LedgerError::Stopped)?;
        answer.recv().map_err(|_| LedgerError::Stopped)?
    }

    /// The last acknowledged entry.
    pub fn head(&self) -> Head {
        self.shared
            .head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The ledger's base path.
    pub fn path(&self) -> &Path {
        &self.shared.base
    }

    /// Verifies the ledger on disk while appends continue: every entry up to the current
    /// head must verify and the head must be present (a fragment being written is ignored).
    pub fn verify(&self) -> Report {
        let head = self.head();
        let expect_head = Some(HeadExpectation {
            source: "writer head".into(),
            seq: Some(head.seq),
            hash: head.hash,
        });
        verify_ledger(
            &self.shared.base,
            &VerifyOptions {
                expect_head,
                live: true,
                ..VerifyOptions::default()
            },
        )
    }
}

/// Owns the writer thread; dropping it (or [`LedgerWriter::close`]) drains and stops it.
#[derive(Debug)]
pub struct LedgerWriter {
    handle: LedgerHandle,
    thread: Option<JoinHandle<()>>,
}

impl LedgerWriter {
    /// Opens (or creates) the ledger at `base` and starts its writer thread.
    pub fn open(base: &Path, options: StoreOptions) -> Result<(Self, OpenReport), LedgerError> {
        let (store, report) = Store::open(base, options)?;
        let shared = Arc::new(Shared {
            base: base.to_path_buf(),
            can_sign: store.can_sign(),
            head: Mutex::new(report.head.clone()),
        });
        let (tx, rx) = channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || run(store, &rx, &thread_shared))
            .map_err(|source| LedgerError::Io {
                what: "spawning writer thread for",
                path: base.to_path_buf(),
                source,
            })?;
        Ok((
            Self {
                handle: LedgerHandle { tx, shared },
                thread: Some(thread),
            },
            report,
        ))
    }

    /// A handle for appending from any thread.
    pub fn handle(&self) -> LedgerHandle {
        self.handle.clone()
    }

    /// Finishes queued appends, writes the head file and stops the writer thread.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.handle.tx.send(Request::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(mut store: Store, rx: &Receiver<Request>, shared: &Shared) {
    let mut items = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    let mut stopping = false;
    while !stopping {
        let Ok(first) = rx.recv() else { break };
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Append { item, reply } => {
                    items.push(item);
                    replies.push(reply);
                }
                Request::Shutdown => stopping = true,
            }
            if items.len() < MAX_BATCH && !stopping {
                next = rx.try_recv().ok();
            }
        }
        if items.is_empty() {
            continue;
        }
        match store.append_batch(&items) {
            Ok(sealed) => {
                if let Some(last) = sealed.last() {
                    *shared.head.lock().unwrap_or_else(PoisonError::into_inner) = last.head();
                }
                for (entry, reply) in sealed.into_iter().zip(replies.drain(..)) {
                    let _ = reply.send(Ok(Appended {
                        seq: entry.seq,
                        hash: entry.hash,
                    }));
                }
                if let Err(e) = store.write_head_file() {
                    tracing::warn!(error = %e, "ledger head file not updated; it will lag until the next batch");
                }
            }
            Err(e) => {
                let detail = e.to_string();
                tracing::error!(error = %detail, "ledger batch not recorded");
                for reply in replies.drain(..) {
                    let err = match &e {
                        LedgerError::Poisoned { detail } => LedgerError::Poisoned {
                            detail: detail.clone(),
                        },
                        _ => LedgerError::WriteFailed {
                            path: store.base().to_path_buf(),
                            detail: detail.clone(),
                        },
                    };
                    let _ = reply.send(Err(err));
                }
            }
        }
        items.clear();
    }
    if let Err(e) = store.write_head_file() {
        tracing::warn!(error = %e, "ledger head file not updated at shutdown");
    }
}
