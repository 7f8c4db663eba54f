//! Fixtures of the auto-update tests (tests/update.rs,
//! tests/update_lock.rs): versioned images from busybox, the registry
//! behind a counting proxy, the container's spec, its update record.
#![allow(dead_code)]

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::fault_proxy::{Fault, FaultProxy};
use super::registry::Registry;
use super::*;

/// busybox plus a layer with /version (and /healthy when it should be).
pub fn version_layout(env: &TestEnv, n: u32, healthy: bool) -> Result<PathBuf> {
    let files: &[&str] = if healthy { &["healthy"] } else { &[] };
    layout_with(env, n, files)
}

/// busybox plus a layer with /version and each of `files`.
pub fn layout_with(env: &TestEnv, n: u32, files: &[&str]) -> Result<PathBuf> {
    let extra = env.dir.path().join(format!("v{n}-layer"));
    fs::create_dir_all(&extra)?;
    fs::write(extra.join("version"), format!("{n}\n"))?;
    for f in files {
        fs::write(extra.join(f), "yes\n")?;
    }
    let layout = env.dir.path().join(format!("v{n}-oci"));
    make_image(
        "oci",
        "localhost/app:latest",
        &layout,
        &[busybox_rootfs(), &extra],
    )?;
    Ok(layout)
}

/// The manifest digest of a pushed tag, as the registry names it.
pub fn registry_digest(reg: &Registry, repo_tag: &str) -> Result<String> {
    let out = run_ok(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/{repo_tag}", reg.host()),
    ]))?;
    Ok(format!("sha256:{}", layers::sha256_hex(&out.stdout)))
}

pub fn inspect(env: &TestEnv, name: &str) -> Result<Value> {
    let out = run_ok(env.cli(&["inspect", name]))?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

pub fn events(env: &TestEnv, glob: &str) -> Result<Vec<Value>> {
    let out = run_ok(env.cli(&["events", "--json", "--kind", glob]))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

pub fn spec(image: &str, extra: Value) -> String {
    let health = json!({"command": ["test", "-f", "/healthy"], "interval": 0.2, "retries": 2});
    let mut s = json!({
        "image": image,
        "command": ["sh", "-c", "trap 'exit 0' TERM; echo version $(cat /version); \
                    test -f /run/berth-lock/updates.lock && echo lock-visible; \
                    test -f /crash && exit 3; while :; do sleep 0.1; done"],
        "restart": {"policy": "always"},
        "healthcheck": health,
        "update": {"policy": "digest", "interval": 0.3, "jitter": 0, "stable_for": 2},
    });
    if let (Value::Object(base), Value::Object(more)) = (&mut s, extra) {
        base.extend(more);
    }
    s.to_string()
}

/// The registry behind a proxy that counts what berth receives.
pub fn registry_and_proxy(env: &TestEnv) -> Result<(Registry, FaultProxy)> {
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    let proxy = FaultProxy::start(reg.port, Fault::CutAfter(usize::MAX))?;
    Ok((reg, proxy))
}

/// A registry behind a counting proxy with `layout` pushed as
/// app:stable: the registry, the proxy, the pushed digest, and the
/// reference berth pulls it by (through the proxy).
pub fn push_stable(env: &TestEnv, layout: &Path) -> Result<(Registry, FaultProxy, String, String)> {
    let (reg, proxy) = registry_and_proxy(env)?;
    reg.push(layout, "app:stable", false)?;
    let digest = registry_digest(&reg, "app:stable")?;
    let image = format!("127.0.0.1:{}/app:stable", proxy.port);
    Ok((reg, proxy, digest, image))
}

/// Waits until container `name` runs the image of `digest`.
pub fn wait_current(env: &TestEnv, name: &str, digest: &str) -> Result<()> {
    wait_for(Duration::from_secs(30), || {
        Ok(current(env, name)?.as_deref() == Some(digest))
    })
}

pub fn current(env: &TestEnv, name: &str) -> Result<Option<String>> {
    Ok(inspect(env, name)?["update"]["current_digest"]
        .as_str()
        .map(String::from))
}

pub fn requests(proxy: &FaultProxy) -> usize {
    proxy.requests.lock().unwrap().len()
}

pub fn images(env: &TestEnv) -> Result<String> {
    let out = run_ok(berth(&[
        "images",
        "--json",
        "--root",
        env.root().to_str().unwrap(),
    ]))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn blob_exists(env: &TestEnv, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    env.root().join("blobs/sha256").join(hex).exists()
}

pub fn hold_lock(path: &Path) -> Result<fs::File> {
    let f = fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    anyhow::ensure!(rc == 0, "flock {}", path.display());
    Ok(f)
}
