//! Transports for the live providers: a std-only HTTP/1.1 GET for `http://` URLs (loopback
//! tests, a local TLS-terminating proxy) and `curl` for `https://` (no TLS stack linked into
//! the agent). Both enforce a timeout and a response size cap; secrets (the Electricity Maps
//! token, the kubelet's bearer token) are handed to curl on stdin (`-K -`), never on its
//! command line where `ps` would show it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::LiveError;

/// Largest response accepted.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// Fetches a URL's body.
pub trait Transport: Send + Sync {
    /// GET `url` with extra `headers`, within `timeout`; the body of a 200 response.
    fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<String, LiveError>;
}

/// `http://` via [`PlainHttp`], `https://` via [`Curl`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Auto;

impl Transport for Auto {
    fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<String, LiveError> {
        if url.starts_with("https://") {
            Curl::default().get(url, headers, timeout)
        } else {
            PlainHttp.get(url, headers, timeout)
        }
    }
}

/// HTTP/1.1 over a plain TCP stream (`http://` only).
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainHttp;

fn transport_err(url: &str, reason: impl Into<String>) -> LiveError {
    LiveError::Transport {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

impl Transport for PlainHttp {
    fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<String, LiveError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| LiveError::Unsupported {
                url: url.to_owned(),
            })?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let host_port = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let deadline = Instant::now() + timeout;
        let addr = host_port
            .to_socket_addrs()
            .map_err(|e| transport_err(url, format!("cannot resolve {authority}: {e}")))?
            .next()
            .ok_or_else(|| transport_err(url, format!("no address for {authority}")))?;
        let mut stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| transport_err(url, format!("connect: {e}")))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| transport_err(url, e.to_string()))?;
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: carbon-ops\r\n"
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .map_err(|e| transport_err(url, format!("send: {e}")))?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            if Instant::now() > deadline {
                return Err(LiveError::Timeout {
                    url: url.to_owned(),
                });
            }
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    if raw.len() > MAX_RESPONSE_BYTES {
                        return Err(transport_err(url, "response larger than 8 MiB"));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(LiveError::Timeout {
                        url: url.to_owned(),
                    });
                }
                Err(e) => return Err(transport_err(url, format!("read: {e}"))),
            }
        }
        parse_response(url, &raw)
    }
}

/// Splits status, headers and body; decodes `Transfer-Encoding: chunked`.
fn parse_response(url: &str, raw: &[u8]) -> Result<String, LiveError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| transport_err(url, "malformed HTTP response (no header end)"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| transport_err(url, "malformed HTTP status line"))?;
    if status != 200 {
        return Err(LiveError::Status {
            url: url.to_owned(),
            status,
        });
    }
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(url, body)?
    } else {
        body.to_vec()
    };
    String::from_utf8(body).map_err(|_| transport_err(url, "response body is not UTF-8"))
}

fn dechunk(url: &str, mut b: &[u8]) -> Result<Vec<u8>, LiveError> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| transport_err(url, "malformed chunked body"))?;
        let size_txt = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| transport_err(url, "malformed chunk size"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err(transport_err(url, "truncated chunk"));
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

/// `curl` as the HTTPS transport (`curl -sS --fail --max-time N -K -`, config on stdin).
#[derive(Clone, Debug, Default)]
pub struct Curl {
    /// CA bundle to verify the server with (`cacert`), instead of the system's.
    pub ca_file: Option<PathBuf>,
}

/// The HTTP status in curl's `--fail` message (`The requested URL returned error: 401`).
fn failed_status(stderr: &str) -> Option<u16> {
    let rest = stderr.split("returned error: ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn curl_quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Transport for Curl {
    fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<String, LiveError> {
        let mut config = format!("url = \"{}\"\n", curl_quote(url));
        if let Some(ca) = &self.ca_file {
            config.push_str(&format!(
                "cacert = \"{}\"\n",
                curl_quote(&ca.to_string_lossy())
            ));
        }
        for (k, v) in headers {
            config.push_str(&format!(
                "header = \"{}: {}\"\n",
                curl_quote(k),
                curl_quote(v)
            ));
        }
        let secs = format!("{:.3}", timeout.as_secs_f64());
        let mut child = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "--max-time",
                &secs,
                "--max-filesize",
                "8388608",
                "-K",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| transport_err(url, format!("cannot run curl (needed for https): {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(config.as_bytes())
                .map_err(|e| transport_err(url, format!("curl stdin: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| transport_err(url, format!("curl: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match (out.status.code(), failed_status(&stderr)) {
            (Some(0), _) => String::from_utf8(out.stdout)
                .map_err(|_| transport_err(url, "response body is not UTF-8")),
            (Some(28), _) => Err(LiveError::Timeout {
                url: url.to_owned(),
            }),
            (Some(22), Some(status)) => Err(LiveError::Status {
                url: url.to_owned(),
                status,
            }),
            _ => Err(transport_err(
                url,
                format!("curl failed: {}", stderr.trim()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_status() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response("u", raw).expect("ok"), "{\"a\":1}");
        let raw = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            parse_response("u", raw),
            Err(LiveError::Status { status: 401, .. })
        ));
        assert_eq!(curl_quote("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(
            failed_status("curl: (22) The requested URL returned error: 401\n"),
            Some(401)
        );
        assert_eq!(failed_status("curl: (7) Failed to connect"), None);
    }
}
