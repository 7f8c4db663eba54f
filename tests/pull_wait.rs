//! Pulls that wait for the world: a container whose image cannot be
//! pulled yet because the registry is down stays `pulling`, showing the
//! error, and runs once the registry is back, without anyone stepping in;
//! `pull.give_up_after` keeps the old behaviour (a failed start, exit 125).

mod common;

use std::fs;
use std::time::{Duration, Instant};

use anyhow::Result;
use common::registry::Registry;
use common::updates::{inspect, version_layout};
use common::*;
use serde_json::json;

/// A registry holding app:stable, then stopped: its directory and port.
fn registry_gone(env: &TestEnv) -> Result<(std::path::PathBuf, u16)> {
    let layout = version_layout(env, 1, true)?;
    let dir = env.dir.path().join("registry");
    let reg = Registry::start(&dir, None)?;
    reg.push(&layout, "app:stable", false)?;
    Ok((dir, reg.port))
}

fn spec(port: u16) -> String {
    let image = format!("127.0.0.1:{port}/app:stable");
    json!({"image": image, "command": ["sh", "-c", "echo up $(cat /version); sleep 60"]})
        .to_string()
}

#[test]
fn a_registry_down_at_boot_is_waited_for_with_the_error_in_view() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let (dir, port) = registry_gone(&env)?;
    env.write_spec("late", &spec(port))?;
    let _daemon = env.start_daemon()?;
    let mut seen = serde_json::Value::Null;
    wait_for(Duration::from_secs(30), || {
        seen = inspect(&env, "late")?;
        let error = seen["error"].as_str().unwrap_or_default();
        Ok(seen["state"] == "pulling" && error.contains("trying again in"))
    })?;
    assert!(
        seen["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&port.to_string()),
        "{seen:#}"
    );
    // Down for a while longer, so several attempts fail.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(inspect(&env, "late")?["state"], "pulling");
    let back = Instant::now();
    let _registry = Registry::restart(&dir, port)?;
    env.wait_state("late", "running", Duration::from_secs(30))?;
    let waited = back.elapsed();
    eprintln!("registry back: container running {waited:?} later");
    assert!(waited < Duration::from_secs(20), "took {waited:?}");
    wait_for(Duration::from_secs(10), || {
        Ok(env.logs("late")?.0.contains("up 1"))
    })?;
    Ok(())
}

#[test]
fn give_up_after_fails_the_start_as_before() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let (_dir, port) = registry_gone(&env)?;
    let settings = json!({"pull": {"give_up_after": 0}});
    fs::write(env.config().join("berth.json"), settings.to_string())?;
    env.write_spec("late", &spec(port))?;
    let _daemon = env.start_daemon()?;
    let record = env.wait_state("late", "exited", Duration::from_secs(30))?;
    assert_eq!(record["exit_code"], 125, "{record:#}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(!error.contains("trying again"), "{error}");
    Ok(())
}
