//! Creating the agent's socket: replace a stale one, never steal a live one, set mode 0660
//! and group `--socket-group` (root-only when the group does not exist, with the command that
//! creates it in the log).

use std::{
    ffi::CString,
    io,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use thiserror::Error;

/// What went wrong creating the socket.
#[derive(Debug, Error)]
pub enum SocketError {
    /// Another agent answers on that path.
    #[error(
        "another carbon-ops-agent is already serving {path}; stop it first, or pass --socket to use another path"
    )]
    InUse {
        /// The path.
        path: String,
    },
    /// The path exists and is not a socket.
    #[error("{path} exists and is not a socket; remove it or pass --socket")]
    NotASocket {
        /// The path.
        path: String,
    },
    /// Binding or setting permissions failed.
    #[error("failed to create socket {path} (is its directory writable? run as root for /run)")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The bound socket and what was done to it.
pub struct Bound {
    /// The listener (std: converted by the caller inside its runtime).
    pub listener: std::os::unix::net::UnixListener,
    /// Its path (removed on shutdown).
    pub path: PathBuf,
    /// The group given access, if it exists.
    pub group: Option<u32>,
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> SocketError + '_ {
    move |source| SocketError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Looks up a group id by name.
pub fn group_id(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut grp: libc::group = unsafe_zeroed_group();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(grp.gr_gid)
}

fn unsafe_zeroed_group() -> libc::group {
    // SAFETY: `group` is a plain C struct for which all-zero (null pointers) is valid.
    unsafe { std::mem::zeroed() }
}

/// Binds `path`, replacing a stale socket, with mode 0660 and group `group_name` if it exists.
pub fn bind(path: &Path, group_name: &str) -> Result<Bound, SocketError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(SocketError::NotASocket {
                path: path.display().to_string(),
            });
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse {
                path: path.display().to_string(),
            });
        }
        tracing::info!(path = %path.display(), "replacing a stale socket left by an agent that is gone");
        std::fs::remove_file(path).map_err(io_err(path))?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(path))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(io_err(path))?;
    let group = group_id(group_name);
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    if let Some(gid) = group {
        let cpath = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|e| io_err(path)(io::Error::other(e)))?;
        // SAFETY: valid C string; uid -1 leaves the owner unchanged.
        if unsafe { libc::chown(cpath.as_ptr(), u32::MAX, gid) } != 0 {
            return Err(io_err(path)(io::Error::last_os_error()));
        }
    } else {
        tracing::warn!(
            group = group_name,
            "group `{group_name}` does not exist: the socket is root-only; create it with `groupadd --system {group_name}` and add users with `usermod -aG {group_name} USER`, then restart"
        );
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(path))?;
    listener.set_nonblocking(true).map_err(io_err(path))?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        group,
    })
}
