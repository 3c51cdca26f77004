//! The Unix-socket service: accepts connections, reads bounded request lines, answers each
//! in order with [`ops::handle`], and survives every client mistake.
//!
//! Limits keep memory bounded whatever clients do: a line cap ([`crate::protocol::MAX_LINE`]:
//! past it the client gets `line_too_long` and is dropped), a connection cap (a semaphore; a
//! client beyond it is told `busy` and dropped), an idle timeout (a client that connects and
//! never writes is dropped) and a write timeout (a client that stops reading is dropped).
//! `run` takes an already-bound listener, so tests bind a temporary socket.

pub mod ops;
pub mod socket;

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{Semaphore, watch},
};

use crate::protocol::{self, MAX_LINE, ProtoError};
use ops::{Ctx, Peer};

/// Server limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// A connection with no complete request for this long is closed.
    pub idle_timeout: Duration,
    /// An answer not written within this is abandoned with its connection.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// Serves `listener` until `shutdown` turns true.
pub async fn run(
    listener: UnixListener,
    ctx: Arc<Ctx>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed; backing off 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(refuse_busy(stream, limits));
            continue;
        };
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve(stream, ctx, limits, shutdown).await;
            drop(permit);
        });
    }
}

async fn refuse_busy(mut stream: UnixStream, limits: Limits) {
    let answer = protocol::err(
        None,
        &ProtoError::new("busy", "too many connections; retry later"),
    );
    let _ = tokio::time::timeout(limits.write_timeout, write_line(&mut stream, &answer)).await;
}

async fn write_line<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    v: &serde_json::Value,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    w.write_all(&bytes).await?;
    w.flush().await
}

enum Line {
    Complete(Vec<u8>),
    TooLong,
    Eof,
}

/// Reads one line, never holding more than `MAX_LINE` bytes of it.
async fn read_line<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Line> {
    buf.clear();
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if buf.is_empty() {
                Line::Eof
            } else {
                Line::Complete(std::mem::take(buf))
            });
        }
        if let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            if buf.len() + pos > MAX_LINE {
                return Ok(Line::TooLong);
            }
            buf.extend_from_slice(&chunk[..pos]);
            r.consume(pos + 1);
            return Ok(Line::Complete(std::mem::take(buf)));
        }
        let n = chunk.len();
        if buf.len() + n > MAX_LINE {
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(chunk);
        r.consume(n);
    }
}

async fn serve(
    stream: UnixStream,
    ctx: Arc<Ctx>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer = match stream.peer_cred() {
        Ok(c) => Peer {
            uid: c.uid(),
            pid: c.pid(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot read peer credentials; dropping connection");
            return;
        }
    };
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(8192, rd);
    let mut buf = Vec::new();
    loop {
        let line = tokio::select! {
            l = tokio::time::timeout(limits.idle_timeout, read_line(&mut rd, &mut buf)) => l,
            _ = shutdown.changed() => return,
        };
        let answer = match line {
            Err(_) | Ok(Err(_)) | Ok(Ok(Line::Eof)) => return,
            Ok(Ok(Line::TooLong)) => {
                let e = ProtoError::new(
                    "line_too_long",
                    format!("request line over {MAX_LINE} bytes; closing"),
                );
                let _ = tokio::time::timeout(
                    limits.write_timeout,
                    write_line(&mut wr, &protocol::err(None, &e)),
                )
                .await;
                return;
            }
            Ok(Ok(Line::Complete(bytes))) => {
                let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes).to_vec();
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match protocol::parse_request(&bytes) {
                    Err((id, e)) => protocol::err(id, &e),
                    // Lookups are short and answered here; what may wait on a disk sync or
                    // the network runs off the async workers.
                    Ok(env) if !env.request.may_block() => ops::handle_envelope(&ctx, peer, env),
                    Ok(env) => {
                        let ctx = ctx.clone();
                        match tokio::task::spawn_blocking(move || {
                            ops::handle_envelope(&ctx, peer, env)
                        })
                        .await
                        {
                            Ok(a) => a,
                            Err(_) => {
                                protocol::err(None, &ProtoError::new("internal", "handler failed"))
                            }
                        }
                    }
                }
            }
        };
        match tokio::time::timeout(limits.write_timeout, write_line(&mut wr, &answer)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
