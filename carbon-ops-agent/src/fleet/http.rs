//! A tiny HTTP/1.1 server for `GET /metrics` (and `HEAD`), on an already-bound listener.
//!
//! Bounded whatever clients do: request heads over [`MAX_HEAD`] bytes are refused (431), a
//! client that sends no complete head within the read timeout is dropped, at most
//! `max_connections` are served at once (others get 503), and one response closes the
//! connection. Rendering runs off the async workers (`spawn_blocking`), so concurrent scrapes
//! never stall the runtime; each gets a consistent text because the renderer reads one store
//! view under its own lock.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};

use super::metrics::CONTENT_TYPE;

/// Largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8192;

/// Server limits.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time allowed to send the request head.
    pub read_timeout: Duration,
    /// Time allowed to take the response.
    pub write_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_connections: 64,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `GET /metrics` on `listener` with `render`'s text until `shutdown` turns true.
pub async fn serve_metrics<F>(
    listener: TcpListener,
    render: F,
    limits: HttpLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn() -> String + Send + Sync + 'static,
{
    let render = Arc::new(render);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let mut stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed; backing off 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let r = response(503, "Service Unavailable", "text/plain", b"busy\n", true);
                let _ = tokio::time::timeout(limits.write_timeout, stream.write_all(&r)).await;
            });
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let _ = serve(stream, render, limits).await;
            drop(permit);
        });
    }
}

/// A complete response with `Connection: close`; the body is left out when `body_too` is false (HEAD).
fn response(code: u16, reason: &str, ctype: &str, body: &[u8], body_too: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if body_too {
        r.extend_from_slice(body);
    }
    r
}

/// What a request head asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (`head`: HEAD instead of GET).
    Metrics {
        /// HEAD: headers only.
        head: bool,
    },
    /// `GET /` or `/healthz`: a short liveness text.
    Health {
        /// HEAD: headers only.
        head: bool,
    },
    /// Another path.
    NotFound,
    /// Another method.
    BadMethod,
    /// Not HTTP.
    Bad,
}

/// Routes a request head (pure).
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Bad;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => Route::Metrics {
            head: method == "HEAD",
        },
        ("GET" | "HEAD", "/" | "/healthz") => Route::Health {
            head: method == "HEAD",
        },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::BadMethod,
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Some(Vec::new()));
        }
    }
}

async fn serve<F>(mut stream: TcpStream, render: Arc<F>, limits: HttpLimits) -> std::io::Result<()>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let head = match tokio::time::timeout(limits.read_timeout, read_head(&mut stream)).await {
        Ok(Ok(Some(h))) => h,
        _ => return Ok(()),
    };
    let reply = if head.is_empty() {
        response(
            431,
            "Request Header Fields Too Large",
            "text/plain",
            b"request head too large\n",
            true,
        )
    } else {
        match route(&head) {
            Route::Metrics { head } => {
                let text = tokio::task::spawn_blocking(move || render())
                    .await
                    .unwrap_or_default();
                if text.is_empty() {
                    response(
                        500,
                        "Internal Server Error",
                        "text/plain",
                        b"render failed\n",
                        true,
                    )
                } else {
                    response(200, "OK", CONTENT_TYPE, text.as_bytes(), !head)
                }
            }
            Route::Health { head } => response(
                200,
                "OK",
                "text/plain",
                b"carbon-ops-agent: see /metrics\n",
                !head,
            ),
            Route::NotFound => response(
                404,
                "Not Found",
                "text/plain",
                b"only /metrics is served\n",
                true,
            ),
            Route::BadMethod => {
                response(405, "Method Not Allowed", "text/plain", b"use GET\n", true)
            }
            Route::Bad => response(
                400,
                "Bad Request",
                "text/plain",
                b"not an HTTP/1.x request\n",
                true,
            ),
        }
    };
    match tokio::time::timeout(limits.write_timeout, stream.write_all(&reply)).await {
        Ok(r) => {
            r?;
            stream.shutdown().await
        }
        Err(_) => Ok(()),
    }
}
