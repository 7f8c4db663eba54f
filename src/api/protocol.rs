//! JSON-RPC 2.0 framing: parsing one request line, building responses, and
//! the error codes (docs/api.md lists them).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// No container by that name.
pub const NO_SUCH_CONTAINER: i64 = -32000;
/// The container exists but the operation failed.
pub const CONTAINER_ERROR: i64 = -32001;
/// The daemon is shutting down and accepts no new work.
pub const SHUTTING_DOWN: i64 = -32002;
/// A reload found the config directory invalid; nothing changed.
pub const CONFIG_INVALID: i64 = -32003;
/// The client may only call methods that change nothing.
pub const PERMISSION_DENIED: i64 = -32004;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// None for a notification, which gets no response.
    pub id: Option<Value>,
    pub method: String,
    pub params: Value,
}

/// Parses one line. On failure returns the id (if one could be read) and
/// the error to send back.
pub fn parse_request(line: &[u8]) -> Result<Request, (Value, RpcError)> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        (
            Value::Null,
            RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
        )
    })?;
    let Value::Object(mut obj) = value else {
        let what = if value.is_array() {
            "batch requests are not supported"
        } else {
            "a request must be a JSON object"
        };
        return Err((Value::Null, RpcError::new(INVALID_REQUEST, what)));
    };
    let id = obj.remove("id");
    let id_for_error = id.clone().unwrap_or(Value::Null);
    let invalid = |m: &str| (id_for_error.clone(), RpcError::new(INVALID_REQUEST, m));
    if let Some(v) = &id
        && !(v.is_string() || v.is_number() || v.is_null())
    {
        return Err((
            Value::Null,
            RpcError::new(INVALID_REQUEST, "id must be a string, number or null"),
        ));
    }
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("\"jsonrpc\" must be \"2.0\""));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(invalid("\"method\" must be a string")),
    };
    let params = obj.remove("params").unwrap_or(Value::Null);
    if !(params.is_object() || params.is_array() || params.is_null()) {
        return Err(invalid("\"params\" must be an object or an array"));
    }
    Ok(Request { id, method, params })
}

pub fn success_line(id: &Value, result: Value) -> Vec<u8> {
    line(&serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

pub fn error_line(id: &Value, error: &RpcError) -> Vec<u8> {
    line(&serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error}))
}

fn line(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_requests_parse() {
        let r = parse_request(br#"{"jsonrpc":"2.0","id":7,"method":"list"}"#).unwrap();
        assert_eq!(
            (r.id, r.method.as_str(), r.params),
            (Some(Value::from(7)), "list", Value::Null)
        );
        let n = parse_request(br#"{"jsonrpc":"2.0","method":"list","params":{}}"#).unwrap();
        assert_eq!(n.id, None);
    }

    #[test]
    fn malformed_requests_get_the_right_codes() {
        let code = |l: &[u8]| parse_request(l).unwrap_err().1.code;
        assert_eq!(code(b"{nope"), PARSE_ERROR);
        assert_eq!(code(b"\xff\xfe"), PARSE_ERROR);
        assert_eq!(code(b"[]"), INVALID_REQUEST);
        assert_eq!(code(br#"{"id":1,"method":"x"}"#), INVALID_REQUEST);
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#),
            INVALID_REQUEST
        );
        let (id, _) = parse_request(br#"{"jsonrpc":"1.0","id":"a","method":"x"}"#).unwrap_err();
        assert_eq!(id, Value::from("a"));
    }
}
