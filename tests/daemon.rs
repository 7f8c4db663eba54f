//! The supervisor end to end, through the real binary: the issue's spec,
//! exec errors, shutdown cleanup, config validation, and the API.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::Result;
use common::*;
use nix::sys::signal::Signal;
use serde_json::{Value, json};

const HELLO_SPEC: &str = r#"{
  "image": "localhost/demo/busybox:latest",
  "command": ["/bin/sh", "-c", "echo hello from $GREETING; exit 3"],
  "env": {"GREETING": "berth"},
  "restart": {"policy": "on-failure", "max_retries": 2}
}"#;

fn wait_state(env: &TestEnv, name: &str, state: &str) -> Result<Value> {
    wait_for(Duration::from_secs(15), || {
        Ok(env.container(name)?["state"] == state)
    })?;
    env.container(name)
}

#[test]
fn the_issue_spec_runs_three_times_and_stays_exited() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("hello", HELLO_SPEC)?;
    let _daemon = env.start_daemon()?;
    wait_for(Duration::from_secs(15), || {
        let c = env.container("hello")?;
        Ok(c["state"] == "exited" && c["restarts"] == 2)
    })?;
    // Stays exited: no fourth run after a further backoff period.
    std::thread::sleep(Duration::from_millis(800));
    let c = env.container("hello")?;
    assert_eq!(
        (
            c["state"].as_str(),
            c["exit_code"].as_i64(),
            c["restarts"].as_i64()
        ),
        (Some("exited"), Some(3), Some(2))
    );
    let out = run_ok(env.cli(&["logs", "hello"]))?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from berth\n".repeat(3)
    );
    // The log file is Docker's json-file format.
    let log = fs::read_to_string(env.root().join("containers/hello/logs/json.log"))?;
    let first: Value = serde_json::from_str(log.lines().next().unwrap())?;
    assert_eq!(
        (first["log"].as_str(), first["stream"].as_str()),
        (Some("hello from berth\n"), Some("stdout"))
    );
    Ok(())
}

#[test]
fn a_missing_binary_is_reported_clearly_and_the_daemon_survives() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "broken",
        r#"{"image": "localhost/demo/busybox:latest", "command": ["/bin/nope"]}"#,
    )?;
    env.write_spec("fine", r#"{"image": "localhost/demo/busybox:latest", "command": ["sleep", "60"], "stop_timeout": 1}"#)?;
    let _daemon = env.start_daemon()?;
    let c = wait_state(&env, "broken", "exited")?;
    assert_eq!(c["error"], "exec /bin/nope: No such file or directory");
    assert_eq!(c["exit_code"], 127);
    let out = run_ok(env.cli(&["logs", "broken"]))?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exec /bin/nope: No such file or directory")
    );
    assert_eq!(env.container("fine")?["state"], "running");
    let out = run_ok(env.cli(&["ps"]))?;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("exec /bin/nope: No such file or directory")
    );
    Ok(())
}

#[test]
fn sigterm_stops_everything_and_leaves_nothing_behind() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let token = unique_name("token");
    // One container ignores SIGTERM (sh as PID 1 has no handler): it must be
    // SIGKILLed after its stop timeout. The other exits on SIGTERM.
    let stubborn = json!({"image": DEMO_REF, "command": ["sh", "-c", format!("sleep 1000; : {token}")], "stop_timeout": 1});
    let polite = json!({"image": DEMO_REF, "command": ["sh", "-c", format!("trap 'exit 0' TERM; while :; do sleep 0.1; done; : {token}")]});
    env.write_spec("stubborn", &stubborn.to_string())?;
    env.write_spec("polite", &polite.to_string())?;
    let mut daemon = env.start_daemon()?;
    wait_state(&env, "stubborn", "running")?;
    wait_state(&env, "polite", "running")?;
    assert!(!processes_with(&token).is_empty());
    assert!(!cgroup_dirs(&env.cgroup_parent).is_empty());

    let (status, stderr) = daemon.signal_and_wait(Signal::SIGTERM, Duration::from_secs(15))?;
    assert!(status.success(), "daemon exit {status}: {stderr}");
    assert!(
        stderr.contains("container stubborn: stop timeout, sending SIGKILL"),
        "{stderr}"
    );
    assert!(
        stderr.contains("container polite: exited with code 0"),
        "{stderr}"
    );
    assert!(
        processes_with(&token).is_empty(),
        "container processes left behind"
    );
    assert!(
        cgroup_dirs(&env.cgroup_parent).is_empty(),
        "cgroups left behind: {:?}",
        cgroup_dirs(&env.cgroup_parent)
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo")?;
    assert!(
        !mounts.contains(env.dir.path().to_str().unwrap()),
        "mounts left behind"
    );
    assert!(!env.socket().exists(), "socket left behind");
    Ok(())
}

#[test]
fn bad_specs_are_rejected_with_file_line_col_and_nothing_starts() -> Result<()> {
    let cases = [
        (
            "syntax",
            "{\n  \"image\": \"busybox\",\n  \"command\": [\"sh\"\n}",
            "syntax.json:4:1: command: expected `,` or `]`",
        ),
        (
            "unknown",
            "{\n  \"image\": \"busybox\",\n  \"comand\": [\"sh\"]\n}",
            "unknown.json:3:3: comand: unknown field `comand`",
        ),
        (
            "wrongtype",
            "{\n  \"image\": \"busybox\",\n  \"restart\": {\"max_retries\": \"two\"}\n}",
            "wrongtype.json:3:15: restart.max_retries: invalid type: string \"two\"",
        ),
    ];
    for (name, text, expected) in cases {
        let env = TestEnv::new()?;
        env.write_spec(
            "good",
            &json!({"image": DEMO_REF, "command": ["sleep", "60"]}).to_string(),
        )?;
        env.write_spec(name, text)?;
        let out = env.daemon_command().output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in:\n{stderr}"
        );
        assert!(
            !env.root().join("containers").exists(),
            "a container was set up"
        );
        assert!(cgroup_dirs(&env.cgroup_parent).is_empty());
        // `berth check` reports the same and exits 1.
        let out = berth(&["check", env.config().to_str().unwrap()]).output()?;
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains(expected));
    }
    Ok(())
}

#[test]
fn stop_and_start_through_the_api() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // "up" comes after the trap: a stop before it would meet PID 1's
    // default of ignoring SIGTERM and end in SIGKILL.
    let spec = json!({"image": DEMO_REF, "command": ["sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 0.1; done"], "restart": {"policy": "always"}});
    env.write_spec("svc", &spec.to_string())?;
    let _daemon = env.start_daemon()?;
    wait_state(&env, "svc", "running")?;
    wait_for(Duration::from_secs(5), || {
        Ok(String::from_utf8_lossy(&run_ok(env.cli(&["logs", "svc"]))?.stdout) == "up\n")
    })?;
    run_ok(env.cli(&["stop", "svc"]))?;
    let c = env.container("svc")?;
    assert_eq!(
        (c["state"].as_str(), c["exit_code"].as_i64()),
        (Some("exited"), Some(0)),
        "a requested stop never restarts"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.container("svc")?["state"], "exited");
    run_ok(env.cli(&["start", "svc"]))?;
    wait_state(&env, "svc", "running")?;
    wait_for(Duration::from_secs(5), || {
        Ok(String::from_utf8_lossy(&run_ok(env.cli(&["logs", "svc"]))?.stdout) == "up\nup\n")
    })?;
    let out = env.cli(&["stop", "nosuch"]).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no container named \"nosuch\""));
    Ok(())
}

fn rpc(stream: &mut BufReader<UnixStream>, line: &[u8]) -> Result<Value> {
    stream.get_mut().write_all(line)?;
    let mut reply = String::new();
    stream.read_line(&mut reply)?;
    Ok(serde_json::from_str(&reply)?)
}

#[test]
fn the_api_answers_bad_requests_with_json_rpc_errors() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "idle",
        &json!({"image": DEMO_REF, "command": ["sleep", "60"], "stop_timeout": 1}).to_string(),
    )?;
    let _daemon = env.start_daemon()?;
    let mut s = BufReader::new(UnixStream::connect(env.socket())?);
    let code = |v: &Value| v["error"]["code"].as_i64();
    assert_eq!(code(&rpc(&mut s, b"{not json\n")?), Some(-32700));
    assert_eq!(code(&rpc(&mut s, b"\xff\xfe\n")?), Some(-32700));
    assert_eq!(code(&rpc(&mut s, br#"{"jsonrpc":"2.0","id":1,"method":"launch"}"#.iter().chain(b"\n").copied().collect::<Vec<_>>().as_slice())?), Some(-32601));
    let v = rpc(
        &mut s,
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"stop\",\"params\":{\"name\":5}}\n",
    )?;
    assert_eq!((code(&v), v["id"].as_i64()), (Some(-32602), Some(2)));
    let v = rpc(
        &mut s,
        b"{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"logs\",\"params\":{\"name\":\"nope\"}}\n",
    )?;
    assert_eq!(code(&v), Some(-32000));
    let v = rpc(
        &mut s,
        b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"version\"}\n",
    )?;
    assert_eq!(v["result"]["version"], env!("CARGO_PKG_VERSION"));
    // An oversized line is refused and the connection closed; the daemon
    // keeps serving everyone else.
    let mut big = UnixStream::connect(env.socket())?;
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..20 {
        if big.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut reply = String::new();
    let _ = BufReader::new(&big).read_line(&mut reply);
    assert!(
        reply.contains("-32600") && reply.contains("longer than"),
        "{reply}"
    );
    // A half-sent request does not block other clients.
    let mut half = UnixStream::connect(env.socket())?;
    half.write_all(br#"{"jsonrpc":"2.0","id":9,"meth"#)?;
    let v = rpc(
        &mut s,
        b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"list\"}\n",
    )?;
    assert_eq!(v["result"][0]["name"], "idle");
    Ok(())
}

#[test]
fn a_host_device_cannot_be_opened_even_after_mknod() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // /dev/loop-control (10:237) would let a container attach loop devices
    // to any file; it can be created (CAP_MKNOD) but the devices cgroup
    // must refuse to open it. /dev/null stays usable.
    // Landlock refuses mknod of device nodes outright; with Landlock off
    // the devices cgroup is the layer that must hold.
    let script = "mknod /tmp/loopctl c 10 237 && echo made || echo MKNOD-REFUSED; (exec 3</tmp/loopctl) 2>/dev/null && echo OPENED || echo DENIED; cat /dev/null && echo null-ok";
    let spec = |landlock: bool| {
        json!({"image": DEMO_REF, "command": ["sh", "-c", script], "landlock": {"enabled": landlock}}).to_string()
    };
    env.write_spec("probe", &spec(false))?;
    env.write_spec("landlocked", &spec(true))?;
    let _daemon = env.start_daemon()?;
    wait_state(&env, "probe", "exited")?;
    wait_state(&env, "landlocked", "exited")?;
    let out = run_ok(env.cli(&["logs", "probe"]))?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "made\nDENIED\nnull-ok\n"
    );
    let out = run_ok(env.cli(&["logs", "landlocked"]))?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "MKNOD-REFUSED\nDENIED\nnull-ok\n"
    );
    Ok(())
}
