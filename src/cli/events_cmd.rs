//! `berth events`: the daemon's event journal, replayed and followed.

use serde_json::{Value, json};

use super::args::Args;
use super::commands::EVENTS;
use crate::api::client::{Client, socket_path};
use crate::supervisor::spec::bounds::EVENT_SEQ;

const USAGE: &str =
    "berth events [--since SEQ] [-f|--follow] [--kind GLOB]... [--container NAME] [--json]";

pub fn events(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, EVENTS.options)?;
    args.expect_positional(0, USAGE)?;
    let since = args.number("since", EVENT_SEQ.min..=EVENT_SEQ.max)?;
    let params = json!({
        "since": since,
        "follow": args.switch("follow"),
        "kinds": args.values("kind"),
        "container": args.value("container"),
    });
    let json_out = args.switch("json");
    let mut client =
        Client::connect(&socket_path(args.value("socket"))).map_err(|e| e.to_string())?;
    let result = client
        .call_streaming("events", params, |note| match note["method"].as_str() {
            Some("events.event") => show(&note["params"], json_out),
            Some("events.gap") => eprintln!(
                "berth: events after {} were lost to the journal's size bound; resuming at {}",
                note["params"]["lost_after"], note["params"]["resumed_at"]
            ),
            _ => {}
        })
        .map_err(|e| e.to_string())?;
    for e in result["events"].as_array().into_iter().flatten() {
        show(e, json_out);
    }
    Ok(0)
}

fn show(e: &Value, json_out: bool) {
    if json_out {
        println!("{e}");
        return;
    }
    let data = match &e["data"] {
        Value::Null => String::new(),
        d => d.to_string(),
    };
    println!(
        "{:>6} {} {:<22} {:<16} {}",
        e["seq"],
        e["time"].as_str().unwrap_or(""),
        e["kind"].as_str().unwrap_or(""),
        e["container"].as_str().unwrap_or("-"),
        data
    );
}
