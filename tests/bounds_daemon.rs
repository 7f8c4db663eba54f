//! The accepted maxima are safe to run: a real daemon, given a berth.json
//! and a container spec whose every number is the largest berth accepts
//! (found by bisection over the examples of tests/common/examples.rs, so
//! new fields join in), starts, inspects, reads stats and logs, stops,
//! starts, restarts and kills that container, answers the API's largest
//! params, and shuts down without a panic. The container exits on its stop
//! signal, so no step waits out the maximal stop_timeout.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use berth::api::client::Client;
use common::examples::{
    api_params, check_api_text, check_settings_text, check_spec_text, maxima, runnable, settings,
    spec, write_secret_files,
};
use common::{TestEnv, require_root};

const NAME: &str = "maxima";

/// Params of `method` at their maxima (the example's, every number raised).
fn api_maxima(method: &str) -> Value {
    let (_, example) = api_params()
        .into_iter()
        .find(|(m, _)| *m == method)
        .expect("an example per method");
    maxima(&example, |p| check_api_text(method, &p.to_string()).is_ok())
}

/// Raised twice: a bound that depends on another field (memory_swap ≥
/// memory) only opens once that field has been raised.
fn spec_maxima() -> Value {
    let accepts = |s: &Value| check_spec_text(&s.to_string()).is_ok();
    let once = maxima(&runnable(spec()), accepts);
    maxima(&once, accepts)
}

#[test]
fn a_daemon_runs_a_container_at_every_maximum() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let spec = spec_maxima();
    assert_eq!(spec["stop_timeout"], 86_400, "{spec:#}");
    eprintln!("spec at its maxima: {spec}");
    let settings = maxima(&settings(), |s| check_settings_text(&s.to_string()).is_ok());
    std::fs::write(env.config().join("berth.json"), settings.to_string())?;
    env.write_spec(NAME, &spec.to_string())?;
    write_secret_files(&env.config())?;
    let mut daemon = env.start_daemon_checked()?;
    let exercised = exercise(&env, &spec);
    let (status, stderr) =
        daemon.signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(30))?;
    ensure!(
        !stderr.contains("panicked"),
        "the daemon panicked:\n{stderr}"
    );
    exercised.with_context(|| format!("daemon stderr:\n{stderr}\nspec: {spec:#}"))?;
    ensure!(status.success(), "daemon exit {status}:\n{stderr}");
    Ok(())
}

/// Every operation on the container, each checked to answer.
fn exercise(env: &TestEnv, spec: &Value) -> Result<()> {
    let running = Duration::from_secs(20);
    let first = env.wait_state(NAME, "running", running)?;
    let mut client = Client::connect(&env.socket())?;
    let mut call = |method: &str, params: Value| {
        client
            .call(method, params)
            .with_context(|| format!("{method} failed"))
    };
    let inspected = call("inspect", json!({"name": NAME}))?;
    ensure!(
        inspected["spec"]["stop_timeout"] == spec["stop_timeout"],
        "{inspected}"
    );
    let stats = call("stats", json!({"name": NAME}))?;
    ensure!(
        stats["pids_current"].as_u64().is_some_and(|n| n >= 1),
        "{stats}"
    );
    let mut logs = api_maxima("logs");
    logs["name"] = json!(NAME);
    logs["since"] = json!(0);
    call("logs", logs)?;
    let mut events = api_maxima("events");
    events["container"] = json!(NAME);
    call("events", events.clone())?;
    events["since"] = json!(0);
    call("events", events)?;
    call("stop", json!({"name": NAME}))?;
    env.wait_state(NAME, "exited", Duration::from_secs(10))
        .context("a container that exits on SIGTERM must stop at once, whatever stop_timeout")?;
    call("start", json!({"name": NAME}))?;
    env.wait_state(NAME, "running", running)?;
    call("restart", json!({"name": NAME}))?;
    let restarted = env.wait_state(NAME, "running", running)?;
    ensure!(
        restarted["pid"] != first["pid"],
        "restart kept pid {}",
        first["pid"]
    );
    // SIGKILL is a failure exit: on-failure with max_retries brings it back.
    call("kill", json!({"name": NAME, "signal": "SIGKILL"}))?;
    common::wait_for(running, || {
        let c = env.container(NAME)?;
        Ok(c["state"] == "running" && c["restarts"].as_u64() >= Some(1))
    })?;
    let (out, _) = env.logs(NAME)?;
    if !out.contains("up") {
        bail!("no output in the log: {out:?}");
    }
    call("stop", json!({"name": NAME}))?;
    env.wait_state(NAME, "exited", Duration::from_secs(10))?;
    Ok(())
}
