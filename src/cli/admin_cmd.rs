//! `berth info`, `berth restart`, `berth kill`: operator commands through
//! the daemon.

use serde_json::json;

use super::args::Args;
use super::commands::{INFO, KILL, RESTART};
use crate::api::client::{Client, socket_path};

fn connect(args: &Args) -> Result<Client, String> {
    Client::connect(&socket_path(args.value("socket"))).map_err(|e| e.to_string())
}

pub fn info(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, INFO.options)?;
    args.expect_positional(0, "berth info [--json]")?;
    let r = connect(&args)?
        .call("info", json!({}))
        .map_err(|e| e.to_string())?;
    if args.switch("json") {
        println!("{r}");
        return Ok(0);
    }
    let obj = r.as_object().cloned().unwrap_or_default();
    let width = obj.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in obj {
        let shown = v
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string());
        println!("{k:<width$}  {shown}");
    }
    Ok(0)
}

pub fn restart(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, RESTART.options)?;
    let [name] = args.expect_positional(1, "berth restart NAME")? else {
        unreachable!()
    };
    connect(&args)?
        .call("restart", json!({"name": name}))
        .map_err(|e| e.to_string())?;
    println!("{name}");
    Ok(0)
}

pub fn kill(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, KILL.options)?;
    let [name] = args.expect_positional(1, "berth kill NAME [--signal SIG]")? else {
        unreachable!()
    };
    connect(&args)?
        .call(
            "kill",
            json!({"name": name, "signal": args.value("signal")}),
        )
        .map_err(|e| e.to_string())?;
    println!("{name}");
    Ok(0)
}
