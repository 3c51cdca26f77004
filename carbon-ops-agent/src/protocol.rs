//! The wire protocol (v1): newline-delimited JSON requests and answers (pure).
//!
//! [`parse_request`] turns one line into a typed [`Request`] or a [`ProtoError`] with a stable
//! code; it never panics on any input (property-tested and fuzzed). Answers are built with
//! [`ok`] and [`err`]. The format is specified in `docs/protocol.md`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::carbon::request::EstimateRequest;

/// Protocol version spoken.
pub const VERSION: u64 = 1;
/// Longest request line accepted, bytes (the connection is closed past it).
pub const MAX_LINE: usize = 64 * 1024;

/// `top` ordering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopBy {
    /// Power over the last second.
    #[default]
    Power,
    /// Cumulative energy.
    Energy,
    /// Per Kubernetes pod (from cgroup paths).
    Pod,
    /// Per container.
    Container,
    /// Per cgroup v2 path.
    Cgroup,
}

/// A request, typed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Agent and host status.
    Status {},
    /// One process.
    Process {
        /// Its PID.
        pid: u32,
    },
    /// A process and all its descendants, summed.
    Tree {
        /// The root's PID.
        pid: u32,
    },
    /// The top processes.
    Top {
        /// How many (default 10, at most 1000).
        #[serde(default)]
        n: Option<usize>,
        /// Ordering.
        #[serde(default)]
        by: Option<TopBy>,
    },
    /// A carbon estimate.
    Estimate(Box<EstimateRequest>),
    /// Append an entry to the ledger.
    LedgerAppend {
        /// Entry kind.
        kind: String,
        /// Entry payload (an object).
        payload: Map<String, Value>,
    },
    /// Energy of a cgroup subtree, a pod or a container (`docs/protocol.md`).
    Cgroup {
        /// A cgroup v2 path: it and everything below.
        #[serde(default)]
        path: Option<String>,
        /// A Kubernetes pod UID.
        #[serde(default)]
        pod_uid: Option<String>,
        /// A Kubernetes pod as `namespace/name` (needs pod names, `--kubelet-pods-url`).
        #[serde(default)]
        pod: Option<String>,
        /// A container id or a prefix of one.
        #[serde(default)]
        container_id: Option<String>,
    },
    /// The ledger's head.
    LedgerHead {},
    /// Verify the ledger.
    LedgerVerify {},
}

impl Request {
    /// Whether answering may wait on I/O (a durable ledger append, a verification, a live
    /// intensity fetch): such requests run off the async workers.
    pub fn may_block(&self) -> bool {
        matches!(
            self,
            Request::Estimate(_) | Request::LedgerAppend { .. } | Request::LedgerVerify {}
        )
    }
}

/// A protocol-level error: a stable code and a message saying what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtoError {
    /// Stable code (see `docs/protocol.md`).
    pub code: &'static str,
    /// Human message.
    pub message: String,
}

impl ProtoError {
    /// An error with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> ProtoError {
        ProtoError {
            code,
            message: message.into(),
        }
    }
}

/// A parsed request with its optional correlation id.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Echoed back in the answer.
    pub id: Option<Value>,
    /// The request.
    pub request: Request,
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Envelope, (Option<Value>, ProtoError)> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        (
            None,
            ProtoError::new("bad_json", format!("request is not valid JSON: {e}")),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err((
            None,
            ProtoError::new("bad_json", "request must be a JSON object"),
        ));
    };
    let id = obj.remove("id");
    match obj.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        Some(other) => {
            return Err((
                id,
                ProtoError::new(
                    "unsupported_version",
                    format!("protocol version {other} is not supported; send \"v\": 1"),
                ),
            ));
        }
        None => return Err((id, ProtoError::new("bad_request", "missing \"v\": 1"))),
    }
    let op = match obj.get("op") {
        Some(Value::String(op)) => op.clone(),
        Some(_) => {
            return Err((
                id,
                ProtoError::new("bad_request", "\"op\" must be a string"),
            ));
        }
        None => return Err((id, ProtoError::new("bad_request", "missing \"op\""))),
    };
    const OPS: [&str; 9] = [
        "status",
        "process",
        "tree",
        "top",
        "estimate",
        "ledger_append",
        "ledger_head",
        "ledger_verify",
        "cgroup",
    ];
    if !OPS.contains(&op.as_str()) {
        return Err((
            id,
            ProtoError::new(
                "unknown_op",
                format!("unknown op `{op}`; known ops: {}", OPS.join(", ")),
            ),
        ));
    }
    match serde_json::from_value::<Request>(Value::Object(obj)) {
        Ok(request) => Ok(Envelope { id, request }),
        Err(e) => Err((
            id,
            ProtoError::new("bad_request", format!("bad `{op}` request: {e}")),
        )),
    }
}

fn with_id(mut v: Value, id: Option<Value>) -> Value {
    if let (Some(id), Value::Object(m)) = (id, &mut v) {
        m.insert("id".into(), id);
    }
    v
}

/// A success answer.
pub fn ok(id: Option<Value>, result: Value) -> Value {
    with_id(json!({"v": VERSION, "ok": true, "result": result}), id)
}

/// An error answer.
pub fn err(id: Option<Value>, e: &ProtoError) -> Value {
    with_id(
        json!({"v": VERSION, "ok": false, "error": {"code": e.code, "message": e.message}}),
        id,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_each_op() {
        let p = |s: &str| parse_request(s.as_bytes()).map(|e| e.request);
        assert_eq!(p(r#"{"v":1,"op":"status"}"#), Ok(Request::Status {}));
        assert_eq!(
            p(r#"{"v":1,"op":"process","pid":42}"#),
            Ok(Request::Process { pid: 42 })
        );
        assert_eq!(
            p(r#"{"v":1,"op":"top","n":3,"by":"energy"}"#),
            Ok(Request::Top {
                n: Some(3),
                by: Some(TopBy::Energy)
            })
        );
        let e = parse_request(br#"{"v":1,"op":"status","id":[1,"x"]}"#).expect("ok");
        assert_eq!(e.id, Some(serde_json::json!([1, "x"])));
    }

    #[test]
    fn errors_have_stable_codes() {
        let code = |s: &[u8]| parse_request(s).err().map(|(_, e)| e.code);
        assert_eq!(code(b"not json"), Some("bad_json"));
        assert_eq!(code(b"[1,2]"), Some("bad_json"));
        assert_eq!(code(br#"{"op":"status"}"#), Some("bad_request"));
        assert_eq!(
            code(br#"{"v":2,"op":"status"}"#),
            Some("unsupported_version")
        );
        assert_eq!(code(br#"{"v":1,"op":"launch"}"#), Some("unknown_op"));
        assert_eq!(code(br#"{"v":1,"op":"process"}"#), Some("bad_request"));
        assert_eq!(
            code(br#"{"v":1,"op":"process","pid":"42"}"#),
            Some("bad_request")
        );
        assert_eq!(
            code(br#"{"v":1,"op":"process","pid":-1}"#),
            Some("bad_request")
        );
        assert_eq!(
            code(br#"{"v":1,"op":"status","extra":1}"#),
            Some("bad_request")
        );
        assert_eq!(code(&[0xff, 0xfe, 0x00]), Some("bad_json"));
    }

    #[test]
    fn answers_echo_the_id() {
        let a = ok(Some(json!(7)), json!({"x": 1}));
        assert_eq!(a, json!({"v": 1, "ok": true, "result": {"x": 1}, "id": 7}));
        let e = err(None, &ProtoError::new("not_found", "no process 3"));
        assert_eq!(e["error"]["code"], "not_found");
    }

    proptest! {
        /// The parser never panics, whatever the bytes.
        #[test]
        fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_request(&bytes);
        }

        /// Nor on JSON objects with arbitrary op and fields.
        #[test]
        fn never_panics_on_objects(op in "[a-z_]{0,14}", pid in any::<i64>(), n in any::<i64>()) {
            let line = format!(r#"{{"v":1,"op":"{op}","pid":{pid},"n":{n}}}"#);
            let _ = parse_request(line.as_bytes());
        }
    }
}
