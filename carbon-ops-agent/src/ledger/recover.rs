//! Torn-tail recovery: moving an incomplete last line aside, never dropping it silently.
//!
//! An acknowledged entry always ends with `\n` and is valid JSON, so a last line without `\n`,
//! or one that does not parse, can only be an unacknowledged, interrupted write. Its bytes are
//! appended to `<segment>.quarantine` (fdatasynced, then the directory fsynced), followed by a
//! `\n` if they lack one, and only then is the segment cut back to the end of the last good line.

use super::segments::{fsync_dir, parent_dir, quarantine_path};
use super::store::{LedgerError, io_err};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes read from the end at a time when looking for the last line.
const TAIL_WINDOW: u64 = 1 << 20;

/// A torn tail that was moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub segment: PathBuf,
    pub quarantine: PathBuf,
    /// Offset in the segment where the torn bytes started (the segment's new length).
    pub offset: u64,
    pub bytes: u64,
}

/// Finds where the torn tail of `data` (the last `data.len()` bytes of a file) starts, if any.
/// Pure: `data` must hold at least the whole last line or start at the file's beginning.
pub fn torn_tail_start(data: &[u8]) -> Option<usize> {
    if data.is_empty() {
        return None;
    }
    if data.last() != Some(&b'\n') {
        return Some(data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
    }
    let body = &data[..data.len() - 1];
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    serde_json::from_slice::<serde_json::Value>(&body[start..])
        .is_err()
        .then_some(start)
}

/// Moves the torn tail of the segment at `path` to its quarantine file; `Ok(None)` if intact.
pub fn quarantine_torn_tail(path: &Path) -> Result<Option<Quarantined>, LedgerError> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("opening segment", path)(e)),
    };
    let len = file
        .metadata()
        .map_err(io_err("reading size of", path))?
        .len();
    let mut window = TAIL_WINDOW.min(len);
    let (from, start) = loop {
        let from = len - window;
        let mut data = Vec::new();
        file.seek(SeekFrom::Start(from))
            .map_err(io_err("seeking in", path))?;
        (&mut file)
            .take(window)
            .read_to_end(&mut data)
            .map_err(io_err("reading", path))?;
        let start = torn_tail_start(&data);
        // The window must contain a whole last line (a `\n` before it), unless it is the file.
        let contained = from == 0 || data[..data.len().saturating_sub(1)].contains(&b'\n');
        if contained {
            break (from, start);
        }
        window = (window * 2).min(len);
    };
    let Some(start) = start else {
        return Ok(None);
    };
    let offset = from + start as u64;
    let mut torn = Vec::new();
    file.seek(SeekFrom::Start(offset))
        .map_err(io_err("seeking in", path))?;
    file.read_to_end(&mut torn)
        .map_err(io_err("reading", path))?;
    let qpath = quarantine_path(path);
    let mut q: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&qpath)
        .map_err(io_err("opening quarantine file", &qpath))?;
    if torn.last() != Some(&b'\n') {
        torn.push(b'\n');
    }
    q.write_all(&torn)
        .and_then(|()| q.sync_data())
        .map_err(io_err("writing quarantine file", &qpath))?;
    fsync_dir(&parent_dir(&qpath)).map_err(io_err("syncing directory of", &qpath))?;
    file.set_len(offset)
        .and_then(|()| file.sync_data())
        .map_err(io_err("cutting torn tail of", path))?;
    Ok(Some(Quarantined {
        segment: path.to_path_buf(),
        quarantine: qpath,
        offset,
        bytes: len - offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_torn_tails() {
        assert_eq!(torn_tail_start(b""), None);
        assert_eq!(torn_tail_start(b"{}\n{}\n"), None);
        assert_eq!(torn_tail_start(b"{}\n{\"a\":"), Some(3));
        assert_eq!(torn_tail_start(b"{\"a\":"), Some(0));
        assert_eq!(torn_tail_start(b"{}\n{\"a\":\n"), Some(3));
        assert_eq!(torn_tail_start(b"{}\n\0\0\0\n"), Some(3));
    }
}
