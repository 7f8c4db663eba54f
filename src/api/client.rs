//! The client side of the control socket, used by the `berth` commands.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::link::Link;
use super::protocol::RpcError;

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// Responses can carry whole logs; anything larger is refused.
const MAX_RESPONSE_BYTES: u64 = 256 << 20;

/// --socket, else $BERTH_SOCKET, else /run/berth/berth.sock.
pub fn socket_path(flag: Option<&str>) -> PathBuf {
    flag.map(PathBuf::from)
        .or_else(|| std::env::var_os("BERTH_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// A final reply's result, or its error (for callers reading lines
/// themselves).
pub fn answer_of(v: Value) -> Result<Value, ClientError> {
    answer(v)
}

/// A final reply's result, or its error.
pub(super) fn answer(mut v: Value) -> Result<Value, ClientError> {
    if let Some(err) = v.get("error") {
        let err: RpcError = serde_json::from_value(err.clone())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        return Err(ClientError::Rpc(err));
    }
    v.get_mut("result")
        .map(Value::take)
        .ok_or_else(|| ClientError::Protocol("reply has no result".into()))
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the berth daemon at {}: {source} (is `berth daemon` running?)", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error("{}", .0.message)]
    Rpc(RpcError),
    #[error("unexpected reply from the daemon: {0}")]
    Protocol(String),
}

pub struct Client {
    link: Link,
    buf: Vec<u8>,
    next_id: u64,
}

impl Client {
    /// The daemon at `path`, or at `--host`/`$BERTH_HOST` (link.rs).
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        Ok(Client {
            link: Link::connect(path)?,
            buf: Vec::new(),
            next_id: 1,
        })
    }

    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.call_streaming(method, params, |_| {})
    }

    /// Like `call`, passing each notification that arrives before the
    /// answer (e.g. `pull.progress`) to `on_notification`.
    pub fn call_streaming(
        &mut self,
        method: &str,
        params: Value,
        mut on_notification: impl FnMut(&Value),
    ) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        if let Err(e) = self.link.write_all(&line) {
            // The daemon may have refused the connection (access control)
            // and closed it: its reason is waiting to be read.
            if self.link.is_remote() {
                return Err(self.link.closed());
            }
            return Err(self.refusal().unwrap_or(ClientError::Io(e)));
        }
        let (v, reply) = loop {
            let reply = self.read_line()?;
            let v: Value =
                serde_json::from_slice(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if v.get("id").is_none() && v.get("method").is_some() {
                on_notification(&v);
                continue;
            }
            break (v, reply);
        };
        if v.get("id") == Some(&Value::Null)
            && let Some(err) = v.get("error")
            && let Ok(err) = serde_json::from_value::<RpcError>(err.clone())
        {
            return Err(ClientError::Rpc(err));
        }
        if v.get("id") != Some(&json!(id)) {
            return Err(ClientError::Protocol(format!(
                "reply for another request: {}",
                String::from_utf8_lossy(&reply)
            )));
        }
        answer(v)
    }

    /// The next line; its end is the stream's end or the size bound.
    fn read_line(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut scanned = 0;
        loop {
            if let Some(nl) = self.buf[scanned..].iter().position(|b| *b == b'\n') {
                return Ok(self.buf.drain(..=scanned + nl).collect());
            }
            scanned = self.buf.len();
            if self.buf.len() as u64 > MAX_RESPONSE_BYTES {
                return Err(ClientError::Protocol("reply too long".into()));
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = match self.link.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if n == 0 {
                return Err(self.link.closed());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A connection-level error the daemon sent before closing (id null).
    fn refusal(&mut self) -> Option<ClientError> {
        let reply = self.read_line().ok()?;
        let v: Value = serde_json::from_slice(&reply).ok()?;
        let err: RpcError = serde_json::from_value(v.get("error")?.clone()).ok()?;
        Some(ClientError::Rpc(err))
    }
}
