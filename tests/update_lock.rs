//! The update lock against a real registry: a lock held on the file the
//! container sees at /run/berth-lock/updates.lock defers an update until
//! it is released, and `max_defer` ends the wait for one never released.

mod common;

use std::time::{Duration, Instant};

use anyhow::Result;
use common::updates::*;
use common::*;
use serde_json::json;

#[test]
fn a_held_update_lock_defers_the_update_until_released() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let (reg, _proxy, d1, image) = push_stable(&env, &version_layout(&env, 1, true)?)?;
    env.write_spec("app", &spec(&image, json!({})))?;
    let _daemon = env.start_daemon_checked()?;
    wait_current(&env, "app", &d1)?;
    // The app's lock, taken from outside (the same file the container
    // sees at /run/berth-lock/updates.lock).
    let lock_path = env.root().join("containers/app/update-lock/updates.lock");
    let held = hold_lock(&lock_path)?;
    reg.push(&version_layout(&env, 2, true)?, "app:stable", false)?;
    let d2 = registry_digest(&reg, "app:stable")?;
    wait_for(Duration::from_secs(30), || {
        Ok(!events(&env, "update.deferred")?.is_empty())
    })?;
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        events(&env, "update.started")?.is_empty(),
        "updated under the lock"
    );
    assert_eq!(inspect(&env, "app")?["update"]["phase"], "deferred");
    assert_eq!(current(&env, "app")?, Some(d1));
    drop(held);
    let released = Instant::now();
    wait_for(Duration::from_secs(30), || {
        Ok(current(&env, "app")?.as_deref() == Some(d2.as_str()))
    })?;
    println!(
        "lock released -> new version running: {} ms",
        released.elapsed().as_millis()
    );
    Ok(())
}

#[test]
fn max_defer_ends_the_wait_for_a_lock_that_is_never_released() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let (reg, _proxy, d1, image) = push_stable(&env, &version_layout(&env, 1, true)?)?;
    let update = json!({"update": {"policy": "digest", "interval": 0.3, "jitter": 0,
                                   "stable_for": 1, "max_defer": 2}});
    env.write_spec("app", &spec(&image, update))?;
    let _daemon = env.start_daemon_checked()?;
    wait_current(&env, "app", &d1)?;
    let _held = hold_lock(&env.root().join("containers/app/update-lock/updates.lock"))?;
    reg.push(&version_layout(&env, 2, true)?, "app:stable", false)?;
    let d2 = registry_digest(&reg, "app:stable")?;
    wait_for(Duration::from_secs(30), || {
        Ok(!events(&env, "update.deferred")?.is_empty())
    })?;
    let deferred_at = Instant::now();
    wait_for(Duration::from_secs(30), || {
        Ok(!events(&env, "update.started")?.is_empty())
    })?;
    assert!(deferred_at.elapsed() >= Duration::from_millis(1500));
    let started = events(&env, "update.started")?;
    assert_eq!(
        started[0]["data"]["lock_overridden"], true,
        "{}",
        started[0]
    );
    wait_for(Duration::from_secs(30), || {
        Ok(current(&env, "app")?.as_deref() == Some(d2.as_str()))
    })?;
    Ok(())
}
