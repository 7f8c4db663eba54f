//! `berth run`: an ephemeral container through the daemon, like `docker
//! run`: waits for it, prints its output, exits with its exit code.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use super::args::Args;
use super::run_flags;
use crate::api::client::{Client, socket_path};
use crate::supervisor::output::logs::{LogEntry, Stream};

const USAGE: &str = "berth run [--rm] [--detach] [--name NAME] [--env K=V]... [--entrypoint PROG] [--workdir DIR] [--user USER] [ISOLATION FLAGS] IMAGE [COMMAND [ARG...]]";

/// Flags to spec, `run` through the daemon, then the container's output
/// and exit code (or, detached, its name).
pub fn run(argv: &[String]) -> Result<i32, String> {
    let args = parse_run_args(argv)?;
    let Some((image, command)) = args.positional.split_first() else {
        return Err(format!(
            "usage: {USAGE}\nisolation flags: {}",
            run_flags::USAGE
        ));
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
    let mut flags = vec![
        ("rm", false),
        ("detach", false),
        ("name", true),
        ("env", true),
        ("entrypoint", true),
        ("workdir", true),
        ("user", true),
        ("socket", true),
    ];
    flags.extend(run_flags::VALUE_FLAGS.iter().map(|f| (*f, true)));
    flags.extend(run_flags::SWITCHES.iter().map(|f| (*f, false)));
    Args::parse_leading(&expand_short_flags(argv), &flags)
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

/// docker's short forms, up to the image: -d, -e K=V, -w DIR, -u USER.
fn expand_short_flags(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut rest = argv.iter();
    let mut expect_value = false;
    while let Some(arg) = rest.next() {
        if expect_value {
            out.push(arg.clone());
            expect_value = false;
            continue;
        }
        let long = match arg.as_str() {
            "-d" => "--detach",
            "-e" => "--env",
            "-w" => "--workdir",
            "-u" => "--user",
            "-v" => "--volume",
            "-p" => "--publish",
            other => other,
        };
        if !long.starts_with('-') {
            // The image: everything from here on is the command.
            out.push(arg.clone());
            out.extend(rest.cloned());
            break;
        }
        expect_value =
            !long.contains('=') && !matches!(long, "--rm" | "--detach" | "--read-only" | "--");
        out.push(long.to_string());
    }
    out
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
    use super::expand_short_flags;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn short_flags_expand_only_before_the_image() {
        assert_eq!(
            expand_short_flags(&v(&[
                "-d", "-e", "-d=1", "--name", "-e", "img", "sh", "-e", "-d"
            ])),
            v(&[
                "--detach", "--env", "-d=1", "--name", "-e", "img", "sh", "-e", "-d"
            ])
        );
    }
}
