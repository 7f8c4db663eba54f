//! Auto-update against a real registry (Debian's docker-registry on
//! 127.0.0.1, images pushed with skopeo), through a counting proxy:
//! v1 → v2 (healthy) is replaced, v3 (unhealthy) rolls back to v2, v2
//! survives prune while it is the rollback target, and a restart of the
//! daemon keeps it; an exiting new image rolls back too, as does one on
//! trial when the daemon is killed; a new index whose only change is
//! another architecture's manifest restarts nothing. Prints what a
//! no-change check costs and how long an update and a rollback take.
//! The update lock: tests/update_lock.rs.

mod common;

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use common::fault_proxy::FaultProxy;
use common::registry::Registry;
use common::updates::*;
use common::*;
use serde_json::{Value, json};

#[test]
fn a_new_digest_replaces_and_an_unhealthy_one_rolls_back() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let (reg, proxy, d1, image) = push_stable(&env, &version_layout(&env, 1, true)?)?;
    env.write_spec("app", &spec(&image, json!({})))?;
    let daemon = env.start_daemon_checked()?;
    wait_current(&env, "app", &d1)?;
    measure_no_change_check(&env, &proxy)?;

    // v2, healthy: replaced, and done after stable_for.
    reg.push(&version_layout(&env, 2, true)?, "app:stable", false)?;
    let pushed = Instant::now();
    let d2 = registry_digest(&reg, "app:stable")?;
    wait_for(Duration::from_secs(30), || {
        Ok(current(&env, "app")?.as_deref() == Some(d2.as_str()))
    })?;
    let to_running = pushed.elapsed();
    wait_for(Duration::from_secs(30), || {
        Ok(inspect(&env, "app")?["update"]["last"]["result"] == "done")
    })?;
    let u = inspect(&env, "app")?["update"].clone();
    assert_eq!(u["previous_digest"], json!(d1), "{u}");
    assert_eq!(u["current_digest"], json!(d2), "{u}");
    let (logs, _) = env.logs("app")?;
    assert!(
        logs.contains("version 2") && logs.contains("lock-visible"),
        "{logs}"
    );
    // v1 is no rollback target any more: its pin is gone, and checks of
    // the unchanged tag pin nothing.
    wait_for(Duration::from_secs(10), || Ok(!images(&env)?.contains(&d1)))?;
    std::thread::sleep(Duration::from_secs(1));
    assert!(!images(&env)?.contains("app@sha256:"), "{}", images(&env)?);

    // v3, unhealthy: rolled back to v2, pinned by digest.
    reg.push(&version_layout(&env, 3, false)?, "app:stable", false)?;
    let pushed = Instant::now();
    let d3 = registry_digest(&reg, "app:stable")?;
    wait_for(Duration::from_secs(30), || {
        Ok(!events(&env, "update.started")?
            .iter()
            .all(|e| e["data"]["to"] != json!(d3)))
    })?;
    // While v3 is on trial, v2 lives only through its pin: prune keeps it.
    run_ok(env.cli(&["prune"]))?;
    assert!(blob_exists(&env, &d2), "prune took the rollback target");
    wait_for(Duration::from_secs(30), || {
        Ok(!events(&env, "update.rolled_back")?.is_empty())
    })?;
    let detected = pushed.elapsed();
    let rolled: Vec<Value> = events(&env, "update.rolled_back")?;
    let rolled_at = Instant::now();
    assert_eq!(rolled[0]["data"]["reason"], "unhealthy", "{}", rolled[0]);
    assert_eq!(rolled[0]["data"]["to"], json!(d2));
    wait_for(Duration::from_secs(30), || {
        let c = inspect(&env, "app")?;
        Ok(c["state"] == "running" && c["update"]["current_digest"] == json!(d2))
    })?;
    let back = rolled_at.elapsed();
    let u = inspect(&env, "app")?["update"].clone();
    assert_eq!(u["failed_digest"], json!(d3), "{u}");
    assert_eq!(u["last"]["result"], "rolled_back", "{u}");
    assert!(u["pinned"].as_str().unwrap_or("").ends_with(&d2), "{u}");
    run_ok(env.cli(&["prune"]))?;
    assert!(blob_exists(&env, &d2));
    // The tag still names v3: the next checks do not try it again.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(events(&env, "update.started")?.len(), 2);
    // A restart of the daemon (a power cut) boots the pinned v2, not the
    // tag's v3.
    drop(daemon);
    let _daemon = env.start_daemon_checked()?;
    wait_for(Duration::from_secs(30), || {
        let c = inspect(&env, "app")?;
        Ok(c["state"] == "running" && c["update"]["current_digest"] == json!(d2))
    })?;
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(current(&env, "app")?, Some(d2.clone()));
    assert_eq!(events(&env, "update.started")?.len(), 2);
    println!(
        "update: push -> v2 running {} ms; push v3 -> rollback decided {} ms; \
         rollback -> v2 running again {} ms",
        to_running.as_millis(),
        detected.as_millis(),
        back.as_millis()
    );
    Ok(())
}

/// Bytes and time of checks on an unchanged tag, from the proxy's count
/// and the `update --check` answer.
fn measure_no_change_check(env: &TestEnv, proxy: &FaultProxy) -> Result<()> {
    let out = run_ok(env.cli(&["update", "app", "--check", "--json"]))?;
    let answer: Value = serde_json::from_slice(&out.stdout)?;
    let c = &answer["containers"][0];
    assert_eq!(c["changed"], false, "{answer}");
    assert_eq!(c["action"], "none", "{answer}");
    let sent = || proxy.request_bytes.load(Ordering::Relaxed);
    let (b0, q0, r0) = (proxy.bytes.load(Ordering::Relaxed), sent(), requests(proxy));
    std::thread::sleep(Duration::from_secs(3));
    let (b1, q1, r1) = (proxy.bytes.load(Ordering::Relaxed), sent(), requests(proxy));
    let new: Vec<String> = proxy.requests.lock().unwrap()[r0..r1].to_vec();
    assert!(!new.is_empty(), "no check in 3 s");
    assert!(
        new.iter()
            .all(|r| r.starts_with("HEAD /v2/app/manifests/stable")),
        "{new:?}"
    );
    let n = new.len() as u64;
    println!(
        "no-change check: {n} in 3 s, each one HEAD: {} request + {} response bytes \
         (headers included), {} ms in the helper",
        (q1 - q0) / n,
        (b1 - b0) / n,
        c["check_ms"]
    );
    Ok(())
}

/// An index of this machine's image and a fake arm64 manifest.
fn push_index(env: &TestEnv, reg: &Registry, amd: &Path, arm_marker: &str) -> Result<()> {
    let arm = env.dir.path().join(format!("arm-{arm_marker}"));
    fs::create_dir_all(&arm)?;
    fs::write(arm.join("marker"), arm_marker)?;
    let arm_layout = env.dir.path().join(format!("arm-oci-{arm_marker}"));
    make_image("oci", "localhost/arm:1", &arm_layout, &[&arm])?;
    let layout = env.dir.path().join(format!("index-{arm_marker}"));
    let _ = fs::remove_dir_all(&layout);
    run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(amd)
            .arg(&layout),
    )?;
    for e in fs::read_dir(arm_layout.join("blobs/sha256"))? {
        let e = e?;
        fs::copy(e.path(), layout.join("blobs/sha256").join(e.file_name()))?;
    }
    let idx: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let arm_idx: Value = serde_json::from_slice(&fs::read(arm_layout.join("index.json"))?)?;
    let mut host = idx["manifests"][0].clone();
    host["platform"] = json!({"os": "linux", "architecture": host_arch()});
    host.as_object_mut().unwrap().remove("annotations");
    let mut other = arm_idx["manifests"][0].clone();
    other["platform"] = json!({"os": "linux", "architecture": other_arch()});
    other.as_object_mut().unwrap().remove("annotations");
    let inner = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [host, other]}))?;
    let inner_hex = layers::sha256_hex(&inner);
    fs::write(layout.join("blobs/sha256").join(&inner_hex), &inner)?;
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{inner_hex}"), "size": inner.len(),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(layout.join("index.json"), top.to_string())?;
    reg.push(&layout, "multi:stable", true)
}

fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}
fn other_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "amd64"
    } else {
        "arm64"
    }
}

#[test]
fn an_index_changed_only_for_another_architecture_restarts_nothing() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let (reg, proxy) = registry_and_proxy(&env)?;
    let amd = version_layout(&env, 1, true)?;
    push_index(&env, &reg, &amd, "a")?;
    let image = format!("127.0.0.1:{}/multi:stable", proxy.port);
    env.write_spec("app", &spec(&image, json!({})))?;
    let _daemon = env.start_daemon_checked()?;
    wait_for(Duration::from_secs(30), || {
        let u = inspect(&env, "app")?["update"].clone();
        Ok(u["current_digest"].is_string() && u["available_digest"] == u["current_digest"])
    })?;
    let out = run_ok(env.cli(&["update", "--all", "--check", "--json"]))?;
    let answer: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(answer["containers"][0]["action"], "none", "{answer}");
    let before = inspect(&env, "app")?;
    let first_top = registry_digest(&reg, "multi:stable")?;
    push_index(&env, &reg, &amd, "b")?;
    assert_ne!(registry_digest(&reg, "multi:stable")?, first_top);
    let r0 = requests(&proxy);
    std::thread::sleep(Duration::from_secs(3));
    let after = inspect(&env, "app")?;
    assert_eq!(after["pid"], before["pid"], "restarted");
    assert_eq!(
        after["update"]["current_digest"],
        before["update"]["current_digest"]
    );
    assert!(
        events(&env, "update.*")?.is_empty(),
        "{:?}",
        events(&env, "update.*")
    );
    // One GET of the new index, then HEADs again; never a platform
    // manifest or a blob.
    let new: Vec<String> = proxy.requests.lock().unwrap()[r0..].to_vec();
    let gets: Vec<&String> = new.iter().filter(|r| r.starts_with("GET")).collect();
    assert_eq!(gets.len(), 1, "{new:?}");
    assert!(gets[0].contains("/manifests/stable"), "{new:?}");
    Ok(())
}

#[test]
fn an_exiting_new_image_rolls_back_with_its_exit_code() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let (reg, _proxy, d1, image) = push_stable(&env, &layout_with(&env, 1, &[])?)?;
    // No healthcheck: running for stable_for is enough, an exit is not.
    // A long interval: this update is asked for with `berth update`.
    let update = json!({"update": {"policy": "digest", "interval": "1h", "stable_for": 2}});
    let mut s: Value = serde_json::from_str(&spec(&image, update))?;
    s.as_object_mut().unwrap().remove("healthcheck");
    env.write_spec("app", &s.to_string())?;
    let _daemon = env.start_daemon_checked()?;
    wait_current(&env, "app", &d1)?;
    reg.push(&layout_with(&env, 2, &["crash"])?, "app:stable", false)?;
    let out = run_ok(env.cli(&["update", "app"]))?;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("updating"), "{said}");
    wait_for(Duration::from_secs(30), || {
        Ok(!events(&env, "update.rolled_back")?.is_empty())
    })?;
    let rolled = events(&env, "update.rolled_back")?;
    assert_eq!(
        rolled[0]["data"]["reason"], "exited with code 3",
        "{}",
        rolled[0]
    );
    wait_for(Duration::from_secs(30), || {
        let c = inspect(&env, "app")?;
        Ok(c["state"] == "running" && c["update"]["current_digest"] == json!(d1))
    })?;
    Ok(())
}

#[test]
fn a_daemon_killed_mid_trial_judges_the_new_image_after_its_restart() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let (reg, _proxy, d1, image) = push_stable(&env, &version_layout(&env, 1, true)?)?;
    // A slow verdict (3 failures 1 s apart): time to kill the daemon
    // while v2 is on trial.
    let slow = json!({"healthcheck": {"command": ["test", "-f", "/healthy"],
                                      "interval": 1, "retries": 3}});
    env.write_spec("app", &spec(&image, slow))?;
    let daemon = env.start_daemon_checked()?;
    wait_current(&env, "app", &d1)?;
    reg.push(&version_layout(&env, 2, false)?, "app:stable", false)?;
    let d2 = registry_digest(&reg, "app:stable")?;
    wait_for(Duration::from_secs(30), || {
        Ok(current(&env, "app")?.as_deref() == Some(d2.as_str()))
    })?;
    assert!(events(&env, "update.rolled_back")?.is_empty());
    drop(daemon); // SIGKILL, mid-trial
    let _daemon = env.start_daemon_checked()?;
    wait_for(Duration::from_secs(30), || {
        Ok(!events(&env, "update.rolled_back")?.is_empty())
    })?;
    let rolled = events(&env, "update.rolled_back")?;
    assert_eq!(rolled[0]["data"]["reason"], "unhealthy", "{}", rolled[0]);
    wait_for(Duration::from_secs(30), || {
        let c = inspect(&env, "app")?;
        Ok(c["state"] == "running" && c["update"]["current_digest"] == json!(d1))
    })?;
    Ok(())
}
