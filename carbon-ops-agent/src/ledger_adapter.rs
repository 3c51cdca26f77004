//! The agent's ledger, as the server's [`LedgerOps`]: opened (and so verified) at start-up;
//! a ledger that fails to open (corrupt in the middle, locked, unwritable) keeps the agent
//! running and every ledger op answers with the reason, never rewriting history.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use serde_json::{Map, Value, json};

use crate::{
    ledger::{LedgerHandle, LedgerWriter, StoreOptions},
    server::ops::LedgerOps,
};

/// The open ledger, or why it is not open.
pub struct LedgerAdapter {
    writer: Mutex<Option<LedgerWriter>>,
    state: Result<LedgerHandle, String>,
    /// The thread appending `exit` entries, joined before the writer closes.
    exit_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LedgerAdapter {
    /// A channel whose payloads are appended as `exit` entries by a thread of their own, so
    /// the tick loop never waits on a disk sync. The thread ends when every sender is gone.
    pub fn exit_recorder(&self) -> Option<std::sync::mpsc::Sender<Value>> {
        let handle = self.handle().ok()?.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        let t = std::thread::Builder::new()
            .name("carbon-ops-exits".into())
            .spawn(move || {
                for payload in rx {
                    if let Err(e) = handle.append("exit", payload) {
                        tracing::error!("ledger: cannot record a process exit: {e:#}");
                    }
                }
            })
            .ok()?;
        *self.exit_thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
        Some(tx)
    }

    /// Waits until every acknowledged append is on disk and closes the writer.
    pub fn flush(&self) {
        let t = self
            .exit_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = t {
            let _ = t.join();
        }
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = w {
            w.close();
        }
    }

    fn handle(&self) -> Result<&LedgerHandle, String> {
        self.state.as_ref().map_err(Clone::clone)
    }
}

impl LedgerOps for LedgerAdapter {
    fn append(&self, kind: &str, payload: Map<String, Value>) -> Result<(u64, String), String> {
        let a = self
            .handle()?
            .append(kind, Value::Object(payload))
            .map_err(|e| format!("{e:#}"))?;
        Ok((a.seq, a.hash))
    }

    fn head(&self) -> Result<Value, String> {
        let h = self.handle()?;
        Ok(json!({"path": h.path().display().to_string(), "head": h.head()}))
    }

    fn verify(&self) -> Result<Value, String> {
        let report = self.handle()?.verify();
        let intact = report.is_intact();
        let mut v = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        if let Value::Object(m) = &mut v {
            m.insert("intact".into(), json!(intact));
        }
        Ok(v)
    }
}

/// Opens the ledger at `path` (unless `disabled`).
pub fn open(path: &Path, disabled: bool) -> Option<Arc<LedgerAdapter>> {
    if disabled {
        tracing::info!("ledger disabled (--no-ledger)");
        return None;
    }
    let (writer, state) = match LedgerWriter::open(path, StoreOptions::default()) {
        Ok((w, report)) => {
            for q in &report.quarantined {
                tracing::warn!(?q, "ledger: a torn last line was moved to quarantine");
            }
            if report.head_file_repaired {
                tracing::warn!(
                    "ledger: the head file was missing or behind and has been rewritten"
                );
            }
            tracing::info!(path = %path.display(), entries = report.entries, created = report.created, "ledger open and verified");
            let h = w.handle();
            (Some(w), Ok(h))
        }
        Err(e) => {
            let msg = format!("ledger {} is not open: {e:#}", path.display());
            tracing::error!("{msg}; appends are refused until an operator acts");
            (None, Err(msg))
        }
    };
    Some(Arc::new(LedgerAdapter {
        writer: Mutex::new(writer),
        state,
        exit_thread: Mutex::new(None),
    }))
}
