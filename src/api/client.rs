//! The client side of the control socket, used by the `berth` commands.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

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
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Client {
            reader: BufReader::new(stream),
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
        if let Err(e) = self.reader.get_mut().write_all(&line) {
            // The daemon may have refused the connection (access control)
            // and closed it: its reason is waiting to be read.
            return Err(self.refusal().unwrap_or(ClientError::Io(e)));
        }
        let (v, reply) = loop {
            let mut reply = Vec::new();
            (&mut self.reader)
                .take(MAX_RESPONSE_BYTES)
                .read_until(b'\n', &mut reply)?;
            if reply.is_empty() {
                return Err(ClientError::Protocol(
                    "the daemon closed the connection".into(),
                ));
            }
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

    /// A connection-level error the daemon sent before closing (id null).
    fn refusal(&mut self) -> Option<ClientError> {
        let mut reply = Vec::new();
        (&mut self.reader)
            .take(MAX_RESPONSE_BYTES)
            .read_until(b'\n', &mut reply)
            .ok()?;
        let v: Value = serde_json::from_slice(&reply).ok()?;
        let err: RpcError = serde_json::from_value(v.get("error")?.clone()).ok()?;
        Some(ClientError::Rpc(err))
    }
}
