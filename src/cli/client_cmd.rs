//! The commands that talk to a running daemon: ps, logs, start, stop,
//! version.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::args::Args;
use super::commands::{INSPECT, LOGS, PS, RELOAD, SHUTDOWN, START, STATS, STOP, VERSION};
use super::table;
use crate::api::client::{Client, socket_path};
use crate::supervisor::runtime::container::{ContainerInfo, State};
use crate::supervisor::spec::bounds::{LOG_TAIL_ENTRIES, MAX_WAIT_SECS};

fn connect(args: &Args) -> Result<Client, String> {
    Client::connect(&socket_path(args.value("socket"))).map_err(|e| e.to_string())
}

fn call(client: &mut Client, method: &str, params: Value) -> Result<Value, String> {
    client.call(method, params).map_err(|e| e.to_string())
}

fn list(client: &mut Client) -> Result<Vec<ContainerInfo>, String> {
    serde_json::from_value(call(client, "list", json!({}))?)
        .map_err(|e| format!("unexpected list reply: {e}"))
}

pub fn ps(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, PS.options)?;
    args.expect_positional(0, "berth ps [--json]")?;
    let mut client = connect(&args)?;
    if args.switch("json") {
        println!("{}", call(&mut client, "list", json!({}))?);
        return Ok(0);
    }
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = list(&mut client)?
        .into_iter()
        .map(|c| {
            vec![
                c.name,
                serde_json::to_value(c.state)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                c.pid.map_or_else(dash, |p| p.to_string()),
                c.restarts.to_string(),
                c.exit_code.map_or_else(dash, |e| e.to_string()),
                c.image,
                match c.waiting_for {
                    Some(w) => format!("waiting for {w}"),
                    None => c.error.unwrap_or_default(),
                },
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "NAME", "STATE", "PID", "RESTARTS", "EXIT", "IMAGE", "STATUS"
            ],
            &rows
        )
    );
    Ok(0)
}

/// `berth logs NAME [--tail N] [--since T] [-f|--follow]`: with follow,
/// prints lines as they are written until the container exits for good.
pub fn logs(argv: &[String]) -> Result<i32, String> {
    // docker's short form.
    let args = Args::parse(argv, LOGS.options)?;
    let usage = "berth logs NAME [--tail N] [--since TIME] [-f|--follow] [--json]";
    let [name] = args.expect_positional(1, usage)? else {
        unreachable!()
    };
    let tail = args.number("tail", LOG_TAIL_ENTRIES.min..=LOG_TAIL_ENTRIES.max)?;
    let mut params = json!({"name": name, "tail": tail});
    if let Some(since) = args.value("since") {
        params["since"] = json!(since);
    }
    let mut client = connect(&args)?;
    // --json: the entries themselves, one json-file line each.
    let json_out = args.switch("json");
    if !args.switch("follow") {
        let reply = call(&mut client, "logs", params)?;
        if json_out {
            for e in reply.as_array().into_iter().flatten() {
                println!("{e}");
            }
            return Ok(0);
        }
        super::run_cmd::print_logs(reply)?;
        return Ok(0);
    }
    params["follow"] = json!(true);
    client
        .call_streaming("logs", params, |n| {
            if n["method"] == "logs.entry" {
                if json_out {
                    println!("{}", n["params"]);
                } else {
                    print_followed_entry(&n["params"]);
                }
            }
        })
        .map_err(|e| format!("following the logs of {name}: {e}"))?;
    Ok(0)
}

/// One `logs.entry` notification, to stdout or stderr as it was written,
/// flushed at once (a pipe reader sees it now, not at exit).
fn print_followed_entry(entry: &Value) {
    use std::io::Write as _;
    let text = entry["log"].as_str().unwrap_or_default();
    let written = if entry["stream"] == "stderr" {
        let mut err = std::io::stderr().lock();
        err.write_all(text.as_bytes()).and_then(|()| err.flush())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
    if written.is_err() {
        // The reader went away (`berth logs -f web | head`): stop quietly,
        // with the status a SIGPIPE death would give.
        std::process::exit(141);
    }
}

pub fn start(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, START.options)?;
    let [name] = args.expect_positional(1, "berth start NAME")? else {
        unreachable!()
    };
    let mut client = connect(&args)?;
    call(&mut client, "start", json!({"name": name}))?;
    println!("{name}");
    Ok(0)
}

/// Asks for the stop, then waits until the container has exited (its stop
/// timeout plus a margin), as `docker stop` does.
pub fn stop(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, STOP.options)?;
    let [name] = args.expect_positional(1, "berth stop NAME")? else {
        unreachable!()
    };
    let mut client = connect(&args)?;
    call(&mut client, "stop", json!({"name": name}))?;
    let wait = Duration::from_secs(args.number("timeout", 0..=MAX_WAIT_SECS)?.unwrap_or(60));
    let deadline = Instant::now() + wait;
    loop {
        let state = list(&mut client)?
            .into_iter()
            .find(|c| &c.name == name)
            .map(|c| c.state);
        // Creating, running, stopping or still releasing its resources.
        if !state.is_some_and(State::is_live) {
            println!("{name}");
            return Ok(0);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "container {name} did not stop within {}s",
                wait.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn version(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, VERSION.options)?;
    println!("client: berth {}", env!("CARGO_PKG_VERSION"));
    let daemon = connect(&args).and_then(|mut c| call(&mut c, "version", json!({})));
    match daemon {
        Ok(v) => println!("daemon: berth {}", v["version"].as_str().unwrap_or("?")),
        Err(e) => println!("daemon: {e}"),
    }
    Ok(0)
}

/// `berth inspect NAME`: the full record as JSON (docker inspect's habit).
pub fn inspect(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, INSPECT.options)?;
    let [name] = args.expect_positional(1, "berth inspect NAME")? else {
        unreachable!()
    };
    let mut client = connect(&args)?;
    let reply = call(&mut client, "inspect", json!({"name": name}))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&reply).map_err(|e| e.to_string())?
    );
    Ok(0)
}

/// `berth stats NAME [--json]`: CPU time, memory and pids from the cgroup.
pub fn stats(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, STATS.options)?;
    if args.switch("writes") {
        args.expect_positional(0, "berth stats --writes [--json]")?;
        return super::writes_cmd::writes(&mut connect(&args)?, args.switch("json"));
    }
    let [name] = args.expect_positional(1, "berth stats NAME [--json]")? else {
        unreachable!()
    };
    let mut client = connect(&args)?;
    let s = call(&mut client, "stats", json!({"name": name}))?;
    if args.switch("json") {
        println!("{s}");
        return Ok(0);
    }
    let num = |k: &str| s[k].as_u64();
    let mib = |v: Option<u64>| {
        v.map_or("-".to_string(), |b| {
            format!("{:.1}MiB", b as f64 / 1048576.0)
        })
    };
    let row = vec![
        name.clone(),
        format!("{:.2}s", num("cpu_usage_ns").unwrap_or(0) as f64 / 1e9),
        mib(num("memory_usage_bytes")),
        mib(num("memory_limit_bytes")),
        format!(
            "{}/{}",
            num("pids_current").unwrap_or(0),
            num("pids_limit").map_or("-".to_string(), |p| p.to_string())
        ),
    ];
    print!(
        "{}",
        table::render(&["NAME", "CPU", "MEM", "LIMIT", "PIDS"], &[row])
    );
    Ok(0)
}

/// `berth reload`: the daemon re-reads its config directory (like SIGHUP)
/// and prints what changed; an invalid config changes nothing.
pub fn reload(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, RELOAD.options)?;
    args.expect_positional(0, "berth reload [--json]")?;
    let mut client = connect(&args)?;
    let r = match client.call("reload", json!({})) {
        Ok(r) => r,
        Err(e) => {
            if let crate::api::client::ClientError::Rpc(rpc) = &e
                && let Some(errors) = rpc.data.as_ref().and_then(|d| d["errors"].as_array())
            {
                for line in errors.iter().filter_map(Value::as_str) {
                    eprintln!("{line}");
                }
                return Err("invalid config; nothing changed".into());
            }
            return Err(e.to_string());
        }
    };
    if args.switch("json") {
        println!("{r}");
        return Ok(0);
    }
    for key in ["added", "removed", "changed", "unchanged"] {
        let names: Vec<&str> = r[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!("{key:<10} {}", names.join(" "));
    }
    Ok(0)
}

/// `berth shutdown [--reboot|--halt]`: stops every container; then, when
/// the daemon is PID 1, powers the machine off (or reboots, or halts);
/// otherwise the daemon exits.
pub fn shutdown(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, SHUTDOWN.options)?;
    args.expect_positional(0, "berth shutdown [--reboot|--halt]")?;
    let action = match (args.switch("reboot"), args.switch("halt")) {
        (true, true) => return Err("--reboot and --halt exclude each other".into()),
        (true, false) => "reboot",
        (false, true) => "halt",
        (false, false) => "poweroff",
    };
    let mut client = connect(&args)?;
    let reply = call(&mut client, "shutdown", json!({"action": action}))?;
    match reply["action"].as_str() {
        Some("exit") => println!("shutting down: the daemon exits once its containers stopped"),
        Some(a) => println!("shutting down: {a} once every container stopped"),
        None => println!("shutting down"),
    }
    Ok(0)
}
