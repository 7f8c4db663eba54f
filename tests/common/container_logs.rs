//! A container's logs as tests see them: a spec running a shell command
//! with `logging` settings, its json.log and rotated files on disk, and
//! `logs` over a raw JSON-RPC connection.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::{DEMO_REF, TestEnv};

pub fn spec(command: &str, logging: Value) -> String {
    json!({
        "image": DEMO_REF,
        "command": ["sh", "-c", command],
        "stop_timeout": 1,
        "logging": logging,
    })
    .to_string()
}

pub fn log_path(env: &TestEnv, name: &str) -> PathBuf {
    env.root()
        .join("containers")
        .join(name)
        .join("logs/json.log")
}

/// json.log and its rotated files (json.log.N), whatever exists.
pub fn log_files(env: &TestEnv, name: &str) -> Vec<PathBuf> {
    let live = log_path(env, name);
    let dir = live.parent().unwrap().to_path_buf();
    let mut files: Vec<_> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("json.log"))
        })
        .collect();
    files.sort();
    files
}

/// One JSON-RPC call on a fresh connection.
pub fn rpc(env: &TestEnv, method: &str, params: Value) -> Result<Value> {
    let mut s = BufReader::new(UnixStream::connect(env.socket())?);
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    s.get_mut().write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    s.read_line(&mut line)?;
    Ok(serde_json::from_str(&line)?)
}

pub fn entries(env: &TestEnv, name: &str) -> Result<Vec<Value>> {
    let v = rpc(env, "logs", json!({"name": name}))?;
    v["result"]
        .as_array()
        .cloned()
        .with_context(|| format!("logs reply: {v}"))
}
