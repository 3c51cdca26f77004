//! The blocking client of the agent's socket, shared by the `carbon-ops` CLI and
//! [`logger::EnergyLogger`].

pub mod logger;

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Map, Value, json};
use thiserror::Error;

/// Default socket path.
pub const DEFAULT_SOCKET: &str = "/run/carbon-ops.sock";
/// Environment variable naming the socket.
pub const SOCKET_ENV: &str = "CARBON_OPS_SOCKET";

/// The socket to use: the given path, else `$CARBON_OPS_SOCKET`, else the default.
pub fn socket_path(given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// What went wrong talking to the agent.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No agent answers there.
    #[error(
        "cannot reach carbon-ops-agent at {path} (is it running? `sudo carbon-ops-agent`; is {SOCKET_ENV} right? are you in its socket group?)"
    )]
    Unreachable {
        /// The socket.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke.
    #[error("connection to carbon-ops-agent failed")]
    Io(#[from] std::io::Error),
    /// The answer was not JSON.
    #[error("the agent answered something that is not JSON")]
    BadAnswer(#[from] serde_json::Error),
    /// The agent refused the request.
    #[error("agent error {code}: {message}")]
    Agent {
        /// Stable code.
        code: String,
        /// Message.
        message: String,
    },
}

/// One connection to the agent.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Unreachable {
            path: path.display().to_string(),
            source,
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends `op` with `fields` and returns the answer's `result`.
    pub fn request(&mut self, op: &str, fields: Value) -> Result<Value, ClientError> {
        let mut req = Map::new();
        req.insert("v".into(), json!(1));
        req.insert("op".into(), json!(op));
        if let Value::Object(f) = fields {
            req.extend(f);
        }
        let mut line = serde_json::to_vec(&Value::Object(req))?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the agent closed the connection",
            )));
        }
        let mut v: Value = serde_json::from_str(&answer)?;
        if v["ok"] == json!(true) {
            Ok(v["result"].take())
        } else {
            Err(ClientError::Agent {
                code: v["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
                message: v["error"]["message"].as_str().unwrap_or("").to_owned(),
            })
        }
    }
}
