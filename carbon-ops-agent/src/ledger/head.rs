//! The head file `<ledger>.head`: the last acknowledged `{seq, hash}`, replaced atomically.
//!
//! Written as the JCS object `{"hash":…,"seq":…}` plus `\n` to a temporary file, fsynced,
//! renamed over the old one, and the directory fsynced. It may lag the ledger by the batch
//! being acknowledged, never lead it; a ledger that ends before the head was truncated.

use super::canonical;
use super::chain::{Head, is_hash_hex};
use super::segments::{fsync_dir, head_path, parent_dir, with_suffix};
use serde_json::json;
use std::io::{self, Write};
use std::path::Path;

/// Reads the head file of the ledger at `base`; `Ok(None)` when there is none.
pub fn read_head(base: &Path) -> Result<Option<Head>, String> {
    let path = head_path(base);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let head: Head = serde_json::from_str(text.trim_end()).map_err(|e| {
        format!(
            "{} is not a {{\"seq\",\"hash\"}} object: {e}",
            path.display()
        )
    })?;
    if !is_hash_hex(&head.hash) {
        return Err(format!(
            "{}: hash is not 64 lowercase hex digits",
            path.display()
        ));
    }
    Ok(Some(head))
}

/// Replaces the head file of the ledger at `base` atomically and durably.
pub fn write_head(base: &Path, head: &Head) -> io::Result<()> {
    let path = head_path(base);
    let tmp = with_suffix(&path, ".tmp");
    let mut bytes = canonical::to_canonical_vec(&json!({"seq": head.seq, "hash": head.hash}))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    bytes.push(b'\n');
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    fsync_dir(&parent_dir(&path))
}
