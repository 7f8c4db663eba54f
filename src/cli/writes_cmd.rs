//! `berth stats --writes`: what berth wrote since the daemon started, by
//! kind and per container log (docs/config.md, "Flash wear").

use serde_json::{Value, json};

use super::table;
use crate::api::client::Client;

pub fn writes(client: &mut Client, as_json: bool) -> Result<i32, String> {
    let w = client
        .call("writes", json!({}))
        .map_err(|e| e.to_string())?;
    if as_json {
        println!("{w}");
        return Ok(0);
    }
    let mut rows = Vec::new();
    if let Some(containers) = w["containers"].as_object() {
        for (name, c) in containers {
            let driver = c["driver"].as_str().unwrap_or("-");
            rows.push(vec![
                format!("log {name}"),
                bytes(&c["log_bytes"]),
                format!("driver {driver}"),
            ]);
        }
    }
    for (kind, note) in [
        (
            "journal",
            format!("sync {}", w["journal_sync"].as_str().unwrap_or("-")),
        ),
        ("store", "pulls and helpers".to_string()),
        ("state", String::new()),
        ("total", "logs, journal, store and state".to_string()),
    ] {
        rows.push(vec![kind.to_string(), bytes(&w[kind]), note]);
    }
    rows.push(vec![
        "daemon".to_string(),
        bytes(&w["daemon_write_bytes"]),
        "the kernel's count for the daemon process (/proc/PID/io)".to_string(),
    ]);
    print!("{}", table::render(&["WHAT", "WRITTEN", "NOTE"], &rows));
    Ok(0)
}

fn bytes(v: &Value) -> String {
    match v.as_u64() {
        None => "-".to_string(),
        Some(b) if b < 10 << 10 => format!("{b}B"),
        Some(b) if b < 10 << 20 => format!("{:.1}KiB", b as f64 / 1024.0),
        Some(b) => format!("{:.1}MiB", b as f64 / 1048576.0),
    }
}
