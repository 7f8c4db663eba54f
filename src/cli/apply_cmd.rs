//! `berth apply DIR|TARBALL|--reset [--json]`: replace the daemon's whole
//! config as one transaction (docs/update.md, "apply"). The answer comes
//! once every changed container is stable, or the previous config is
//! running again.

use serde_json::json;

use super::args::Args;
use super::commands::APPLY;
use crate::api::client::{Client, socket_path};

const USAGE: &str = "berth apply DIR|TARBALL|--reset [--json]";

pub fn apply(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, APPLY.options)?;
    let reset = args.switch("reset");
    let params = match (args.positional.as_slice(), reset) {
        ([path], false) => {
            // The daemon reads it: its own working directory is not ours.
            let abs = std::path::absolute(path).map_err(|e| format!("{path}: {e}"))?;
            json!({ "path": abs })
        }
        ([], true) => json!({ "reset": true }),
        _ => return Err(format!("usage: {USAGE}")),
    };
    let mut client =
        Client::connect(&socket_path(args.value("socket"))).map_err(|e| e.to_string())?;
    let r = client.call("apply", params).map_err(|e| e.to_string())?;
    let applied = r["applied"].as_bool() == Some(true);
    if args.switch("json") {
        println!("{r}");
        return Ok(if applied { 0 } else { 1 });
    }
    if applied {
        let n = |k: &str| r["summary"][k].as_array().map_or(0, Vec::len);
        println!(
            "applied: {} added, {} removed, {} changed; active config {}",
            n("added"),
            n("removed"),
            n("changed"),
            r["config_dir"].as_str().unwrap_or("?")
        );
        return Ok(0);
    }
    for e in r["errors"].as_array().into_iter().flatten() {
        eprintln!("{}", e.as_str().unwrap_or_default());
    }
    for f in r["failed"].as_array().into_iter().flatten() {
        eprintln!(
            "{}: {}",
            f["name"].as_str().unwrap_or("?"),
            f["reason"].as_str().unwrap_or("?")
        );
    }
    eprintln!("not applied: the previous config runs");
    Ok(1)
}
