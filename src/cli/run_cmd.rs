//! `berth run`: an ephemeral container through the daemon, like `docker
//! run`: waits for it, prints its output, exits with its exit code.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::args::Args;
use super::exec_tty::{Ended, TerminalOptions, relay_terminal};
use super::run_flags;
use crate::api::client::{Client, socket_path};
use crate::api::exec_client::{ExecConnection, ExecPipes};
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
    let (tty, stdin) = (args.switch("tty"), args.switch("interactive"));
    if detach && (tty || stdin) {
        return Err("--detach cannot go with -i or -t (ctrl-p ctrl-q detaches a terminal)".into());
    }
    let params = json!({"name": args.value("name"), "rm": args.switch("rm"), "wait": !detach,
        "tty": tty, "stdin": stdin, "spec": spec});
    let path = socket_path(args.value("socket"));
    if tty || stdin {
        return attached(
            &path,
            params,
            TerminalOptions {
                interactive: stdin,
                detach: true,
            },
        );
    }
    let mut client = Client::connect(&path).map_err(|e| e.to_string())?;
    let result = client.call("run", params).map_err(|e| e.to_string())?;
    if detach {
        println!("{}", result["name"].as_str().unwrap_or_default());
        return Ok(0);
    }
    finish(&mut client, result)
}

/// `run -i`/`-t`: the console the daemon hands over (or, over ssh, the
/// relay), until the container exits or the client detaches.
fn attached(path: &Path, params: Value, opts: TerminalOptions) -> Result<i32, String> {
    let (mut conn, pipes) = ExecConnection::call(path, "run", params).map_err(|e| e.to_string())?;
    let tty = match &pipes {
        ExecPipes::Terminal(_) => true,
        ExecPipes::Relayed(names) => names.iter().any(|n| n == "terminal"),
        ExecPipes::Pipes { .. } => false,
    };
    let ended = match pipes {
        ExecPipes::Terminal(channel) => relay_terminal(&mut conn, &channel, opts)?,
        ExecPipes::Pipes { stdin, .. } => {
            Ended::Answer(super::exec_cmd::relay(&mut conn, None, None, stdin)?)
        }
        ExecPipes::Relayed(names) => super::remote_relay::relay(&mut conn, &names, opts)?,
    };
    let result = match ended {
        Ended::Early(code) => return Ok(code),
        // A terminal's output went to the terminal, not to the log; a
        // start that failed says why in the answer.
        Ended::Answer(v) if tty => {
            if let Some(e) = v["error"].as_str() {
                eprintln!("berth: {e}");
            }
            return Ok(exit_code(&v));
        }
        Ended::Answer(v) => v,
    };
    let mut client = Client::connect(path).map_err(|e| e.to_string())?;
    finish(&mut client, result)
}

/// The container's output (from the answer, else its log), then its code.
fn finish(client: &mut Client, result: Value) -> Result<i32, String> {
    let logs = match result.get("logs") {
        Some(l) => l.clone(),
        None => client
            .call("logs", json!({"name": result["name"]}))
            .map_err(|e| e.to_string())?,
    };
    print_logs(logs)?;
    Ok(exit_code(&result))
}

fn exit_code(result: &Value) -> i32 {
    result["exit_code"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(125)
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
