//! `berth run`: an ephemeral container through the daemon, like `docker
//! run`: waits for it, prints its output, exits with its exit code.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use super::args::Args;
use super::run_flags;
use crate::api::client::{Client, socket_path};
use crate::supervisor::output::logs::{LogEntry, Stream};

/// Flags to spec, `run` through the daemon, then the container's output
/// and exit code (or, detached, its name).
pub fn run(argv: &[String]) -> Result<i32, String> {
    let args = parse_run_args(argv)?;
    let Some((image, command)) = args.positional.split_first() else {
        return Err(
            "usage: berth run [OPTIONS] IMAGE [COMMAND [ARG...]]; see `berth run --help`".into(),
        );
    };
    let spec = build_spec(&args, image, command)?;
    let detach = args.switch("detach");
    let params =
        json!({"name": args.value("name"), "rm": args.switch("rm"), "wait": !detach, "spec": spec});
    let mut client =
        Client::connect(&socket_path(args.value("socket"))).map_err(|e| e.to_string())?;
    let result = client.call("run", params).map_err(|e| e.to_string())?;
    if detach {
        println!("{}", result["name"].as_str().unwrap_or_default());
        return Ok(0);
    }
    let logs = match result.get("logs") {
        Some(l) => l.clone(),
        None => client
            .call("logs", json!({"name": result["name"]}))
            .map_err(|e| e.to_string())?,
    };
    print_logs(logs)?;
    Ok(result["exit_code"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(125))
}

fn parse_run_args(argv: &[String]) -> Result<Args, String> {
    Args::parse_leading(argv, run_flags::OPTIONS)
}

/// The spec the daemon validates like any spec file.
fn build_spec(args: &Args, image: &str, command: &[String]) -> Result<Value, String> {
    let mut env = BTreeMap::new();
    for kv in args.values("env") {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--env wants KEY=VALUE, not {kv:?}"))?;
        env.insert(k.to_string(), v.to_string());
    }
    let mut spec = json!({"image": image, "env": env});
    if !command.is_empty() {
        spec["command"] = json!(command);
    }
    if let Some(e) = args.value("entrypoint") {
        spec["entrypoint"] = json!([e]);
    }
    if let Some(w) = args.value("workdir") {
        spec["working_dir"] = json!(w);
    }
    if let Some(u) = args.value("user") {
        spec["user"] = json!(u);
    }
    run_flags::apply(args, &mut spec)?;
    Ok(spec)
}

pub fn print_logs(logs: Value) -> Result<(), String> {
    let entries: Vec<LogEntry> =
        serde_json::from_value(logs).map_err(|e| format!("unexpected logs reply: {e}"))?;
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for e in entries {
        let sink: &mut dyn Write = if e.stream == Stream::Stderr {
            &mut err
        } else {
            &mut out
        };
        let _ = sink.write_all(e.log.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_run_args;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn short_flags_expand_only_before_the_image() {
        let args = parse_run_args(&v(&[
            "-d", "-e", "-d=1", "--name", "-e", "img", "sh", "-e", "-d",
        ]))
        .unwrap();
        assert!(args.switch("detach"));
        assert_eq!(args.values("env"), ["-d=1"]);
        assert_eq!(args.value("name"), Some("-e"));
        assert_eq!(args.positional, v(&["img", "sh", "-e", "-d"]));
    }
}
