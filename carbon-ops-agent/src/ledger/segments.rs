//! Where a ledger's files live: segment naming, the head, quarantine and lock files.
//!
//! A ledger is named by its base path `P` (e.g. `/var/lib/carbon-ops/ledger.jsonl`).
//! Segment 0 is `P` itself; segment `k ≥ 1` is `P.k` with `k` zero-padded to six digits
//! (`P.000001`); the highest existing index is the active segment. Beside them: `P.head`
//! (the head file), `P.lock` (held by the one writer), and `<segment>.quarantine` (torn tails
//! moved aside at open). Thin I/O helpers only.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The file of segment `index`.
pub fn segment_path(base: &Path, index: u32) -> PathBuf {
    if index == 0 {
        base.to_path_buf()
    } else {
        with_suffix(base, &format!(".{index:06}"))
    }
}

/// The head file.
pub fn head_path(base: &Path) -> PathBuf {
    with_suffix(base, ".head")
}

/// The writer's lock file.
pub fn lock_path(base: &Path) -> PathBuf {
    with_suffix(base, ".lock")
}

/// Where a torn tail of `segment` is moved.
pub fn quarantine_path(segment: &Path) -> PathBuf {
    with_suffix(segment, ".quarantine")
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes a directory entry change (create, rename) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Existing segment indices of the ledger at `base`, ascending.
pub fn list_segments(base: &Path) -> io::Result<Vec<u32>> {
    let mut found = Vec::new();
    if base.is_file() {
        found.push(0);
    }
    let Some(name) = base.file_name().and_then(|n| n.to_str()) else {
        return Ok(found);
    };
    let prefix = format!("{name}.");
    let dir = parent_dir(base);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if rest.len() == 6
            && rest.bytes().all(|b| b.is_ascii_digit())
            && let Ok(index) = rest.parse::<u32>()
            && index > 0
        {
            found.push(index);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Indices missing from `0..=max` in an ascending list.
pub fn missing_indices(indices: &[u32]) -> Vec<u32> {
    let Some(&max) = indices.last() else {
        return Vec::new();
    };
    (0..=max)
        .filter(|i| indices.binary_search(i).is_err())
        .collect()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn names_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("ledger.jsonl");
        assert_eq!(
            segment_path(&base, 3),
            dir.path().join("ledger.jsonl.000003")
        );
        for i in [0, 1, 3] {
            std::fs::write(segment_path(&base, i), b"").unwrap();
        }
        std::fs::write(head_path(&base), b"").unwrap();
        std::fs::write(dir.path().join("ledger.jsonl.000002.quarantine"), b"").unwrap();
        let listed = list_segments(&base).unwrap();
        assert_eq!(listed, vec![0, 1, 3]);
        assert_eq!(missing_indices(&listed), vec![2]);
    }
}
