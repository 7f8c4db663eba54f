//! `berth update NAME|--all [--check] [--json]`: ask the daemon to check
//! a container's tag in its registry now and, unless `--check`, update it
//! (docs/update.md). The answer comes once the registry has answered.

use serde_json::{Value, json};

use super::args::Args;
use super::commands::UPDATE;
use crate::api::client::{Client, socket_path};

const USAGE: &str = "berth update NAME|--all [--check] [--json]";

fn connect(args: &Args) -> Result<Client, String> {
    Client::connect(&socket_path(args.value("socket"))).map_err(|e| e.to_string())
}

pub fn update(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, UPDATE.options)?;
    let all = args.switch("all");
    let name = match (args.positional.as_slice(), all) {
        ([name], false) => Some(name.clone()),
        ([], true) => None,
        _ => return Err(format!("usage: {USAGE}")),
    };
    let params = json!({"name": name, "all": all, "check": args.switch("check")});
    let mut client = connect(&args)?;
    let r = client.call("update", params).map_err(|e| e.to_string())?;
    if args.switch("json") {
        println!("{r}");
        return Ok(0);
    }
    let mut failed = false;
    for c in r["containers"].as_array().into_iter().flatten() {
        let text = |k: &str| c[k].as_str().unwrap_or("-").to_string();
        if let Some(e) = c["error"].as_str() {
            failed = true;
            println!("{}: {e}", text("name"));
            continue;
        }
        println!(
            "{}: current {} available {} ({} ms): {}",
            text("name"),
            short(&c["current"]),
            short(&c["available"]),
            c["check_ms"].as_u64().unwrap_or(0),
            text("action")
        );
    }
    Ok(if failed { 1 } else { 0 })
}

/// "sha256:0123456789ab" of a digest, "-" for none.
fn short(v: &Value) -> String {
    v.as_str()
        .map(|d| d.chars().take(19).collect())
        .unwrap_or_else(|| "-".into())
}
