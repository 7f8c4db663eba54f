//! The operator methods: info, check, restart, kill, images, rmi, prune,
//! through the CLI and the raw API, with their errors.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use serde_json::{Value, json};

const DEMO_REF: &str = "localhost/demo/busybox:latest";
const LIMIT: Duration = Duration::from_secs(60);

fn call(env: &TestEnv, method: &str, params: Value) -> Result<Result<Value, String>> {
    let mut client = berth::api::client::Client::connect(&env.socket())?;
    Ok(client.call(method, params).map_err(|e| e.to_string()))
}

#[test]
fn info_check_restart_and_kill() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let svc = json!({"image": DEMO_REF, "command": ["sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 0.1; done"],
                     "restart": {"policy": "on-failure"}});
    env.write_spec("svc", &svc.to_string())?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("svc", "running", LIMIT)?;
    wait_for(LIMIT, || Ok(env.logs("svc")?.0 == "up\n"))?;

    let info: Value = serde_json::from_slice(&run_ok(env.cli(&["info", "--json"]))?.stdout)?;
    assert_eq!(info["containers"], 1);
    assert_eq!(info["images"], 1);
    assert_eq!(info["states"]["running"], 1);
    assert!(info["last_event_seq"].as_u64().unwrap_or(0) >= 2, "{info}");

    assert_eq!(
        call(&env, "check", json!({}))?.map_err(anyhow::Error::msg)?,
        json!({"valid": true, "errors": []})
    );
    env.write_spec("broken", "{\"image\": 5}")?;
    let check = call(&env, "check", json!({}))?.map_err(anyhow::Error::msg)?;
    assert_eq!(check["valid"], false);
    assert!(
        check["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("broken.json:1:"),
        "{check}"
    );
    std::fs::remove_file(env.config().join("containers/broken.json"))?;

    let pid = env.container("svc")?["pid"].clone();
    run_ok(env.cli(&["restart", "svc"]))?;
    wait_for(LIMIT, || {
        let c = env.container("svc")?;
        Ok(c["state"] == "running" && c["pid"] != pid)
    })?;
    wait_for(LIMIT, || Ok(env.logs("svc")?.0 == "up\nup\n"))?;

    // SIGTERM: the trap exits 0, so on-failure does not restart it.
    run_ok(env.cli(&["kill", "svc", "--signal", "TERM"]))?;
    let c = env.wait_state("svc", "exited", LIMIT)?;
    assert_eq!(c["exit_code"], 0);
    run_ok(env.cli(&["start", "svc"]))?;
    env.wait_state("svc", "running", LIMIT)?;
    // SIGKILL (the default): exit 137, and on-failure restarts it.
    run_ok(env.cli(&["kill", "svc"]))?;
    wait_for(LIMIT, || {
        let c = env.container("svc")?;
        Ok(c["restarts"].as_u64().unwrap_or(0) >= 1 && c["state"] == "running")
    })?;
    let err = call(&env, "kill", json!({"name": "svc", "signal": "SIGNOPE"}))?.unwrap_err();
    assert!(err.contains("unknown signal"), "{err}");
    let err = call(&env, "restart", json!({"name": "ghost"}))?.unwrap_err();
    assert!(err.contains("no container named"), "{err}");
    Ok(())
}

#[test]
fn images_rmi_and_prune_through_the_daemon() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "user",
        &json!({"image": DEMO_REF, "command": ["sleep", "60"], "stop_timeout": 1}).to_string(),
    )?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("user", "running", LIMIT)?;
    let images = call(&env, "images", json!({}))?.map_err(anyhow::Error::msg)?;
    assert_eq!(images[0]["reference"], DEMO_REF, "{images}");
    let err = call(&env, "rmi", json!({"reference": DEMO_REF}))?.unwrap_err();
    assert!(err.contains("a container uses it"), "{err}");
    run_ok(env.cli(&["stop", "user"]))?;
    let report = call(&env, "rmi", json!({"reference": DEMO_REF, "force": true}))?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(report["removed_references"], json!([DEMO_REF]));
    assert_eq!(
        call(&env, "images", json!({}))?.map_err(anyhow::Error::msg)?,
        json!([])
    );
    let pruned = call(&env, "prune", json!({}))?.map_err(anyhow::Error::msg)?;
    assert!(pruned["bytes"].is_u64(), "{pruned}");
    Ok(())
}
