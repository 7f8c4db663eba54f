//! The in-band relay of `berth system dial-stdio` (docs/api.md, "Remote
//! clients"): descriptors cannot cross ssh, so the dial-stdio process on
//! the device takes those the daemon sends (an exec's pipes, a terminal's
//! master) and carries their bytes as JSON-RPC notifications on the same
//! stream, one object per line like everything else:
//!
//! - daemon side to client: the `*.started` notification gains
//!   `"relayed": true`; then `relay.output` `{"stream": "stdout"|"stderr",
//!   "data": BASE64}` until the request's answer, which comes after all
//!   output read before it.
//! - client to daemon side: `relay.input` `{"data": BASE64}`,
//!   `relay.input_closed` `{}` (stdin's end) and `relay.window` `{"rows":
//!   N, "cols": N}` (the terminal's size); never forwarded to the daemon.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Bytes of output or input in one message.
pub const CHUNK_BYTES: usize = 48 * 1024;
/// A relay line longer than this is not one.
const MAX_LINE_BYTES: usize = 1 << 20;

/// What the client asks the relaying side to do.
#[derive(Debug, PartialEq, Eq)]
pub enum FromClient {
    Input(Vec<u8>),
    InputClosed,
    Window { rows: u16, cols: u16 },
}

fn line(method: &str, params: Value) -> Vec<u8> {
    let mut out =
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .unwrap_or_default();
    out.push(b'\n');
    out
}

pub fn output_line(stream: &str, data: &[u8]) -> Vec<u8> {
    line(
        "relay.output",
        json!({"stream": stream, "data": STANDARD.encode(data)}),
    )
}

pub fn input_line(data: &[u8]) -> Vec<u8> {
    line("relay.input", json!({"data": STANDARD.encode(data)}))
}

pub fn input_closed_line() -> Vec<u8> {
    line("relay.input_closed", json!({}))
}

pub fn window_line(rows: u16, cols: u16) -> Vec<u8> {
    line("relay.window", json!({"rows": rows, "cols": cols}))
}

/// A client line that is a relay message; None for anything else (it goes
/// on to the daemon, which answers what it makes of it).
pub fn parse_client_line(bytes: &[u8]) -> Option<FromClient> {
    if bytes.len() > MAX_LINE_BYTES {
        return None;
    }
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let params = v.get("params");
    match v.get("method")?.as_str()? {
        "relay.input" => {
            let data = params?.get("data")?.as_str()?;
            STANDARD.decode(data).ok().map(FromClient::Input)
        }
        "relay.input_closed" => Some(FromClient::InputClosed),
        "relay.window" => {
            let n = |k: &str| u16::try_from(params?.get(k)?.as_u64()?).ok();
            Some(FromClient::Window {
                rows: n("rows")?,
                cols: n("cols")?,
            })
        }
        _ => None,
    }
}

/// A `relay.output` notification's stream and bytes.
pub fn parse_output(v: &Value) -> Option<(String, Vec<u8>)> {
    if v.get("method")?.as_str()? != "relay.output" {
        return None;
    }
    let p = v.get("params")?;
    let data = STANDARD.decode(p.get("data")?.as_str()?).ok()?;
    Some((p.get("stream")?.as_str()?.to_string(), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_messages_round_trip() {
        let strip = |l: Vec<u8>| l[..l.len() - 1].to_vec();
        assert_eq!(
            parse_client_line(&strip(input_line(b"\x03hi"))),
            Some(FromClient::Input(b"\x03hi".to_vec()))
        );
        assert_eq!(
            parse_client_line(&strip(input_closed_line())),
            Some(FromClient::InputClosed)
        );
        assert_eq!(
            parse_client_line(&strip(window_line(40, 100))),
            Some(FromClient::Window {
                rows: 40,
                cols: 100
            })
        );
        let out: Value = serde_json::from_slice(&output_line("stderr", b"x")).unwrap();
        assert_eq!(parse_output(&out), Some(("stderr".into(), b"x".to_vec())));
        for other in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"list"}"#[..],
            br#"{"method":"relay.window","params":{"rows":70000,"cols":1}}"#,
            br#"{"method":"relay.input","params":{"data":"@@"}}"#,
            b"not json",
        ] {
            assert_eq!(parse_client_line(other), None);
        }
    }
}
