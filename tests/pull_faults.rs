//! `berth pull` through a fault-injecting TCP proxy in front of a real
//! registry: cut connections, flipped bytes, stalls, trickles, 503s with
//! Retry-After, and a pull killed with SIGKILL half-way. Registries that
//! try to hold a pull on purpose are in tests/pull_hostile.rs.

mod common;

use std::fs;
use std::time::Duration;

use anyhow::Result;
use common::fault_proxy::{Fault, FaultProxy};
use common::registry::Registry;
use common::*;

/// A layer directory holding `len` incompressible bytes, so its blob
/// stays as large as the data.
fn noise_layer(env: &TestEnv, name: &str, len: usize, seed: u64) -> Result<std::path::PathBuf> {
    let layer = env.dir.path().join(name);
    fs::create_dir_all(&layer)?;
    fs::write(layer.join("data"), noise(len, seed))?;
    Ok(layer)
}

/// blobs/, layers/ and images/: what a failed pull must not change.
fn content_snapshot(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["blobs/sha256", "layers/sha256", "images"] {
        for e in fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            out.push(format!(
                "{dir}/{} {}",
                e.file_name().to_string_lossy(),
                e.metadata().map(|m| m.len()).unwrap_or(0)
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn a_connection_cut_mid_blob_resumes_with_a_range_request() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    let layout = demo_layout(&env)?;
    reg.push(&layout, "demo/busybox:1", false)?;
    // The busybox layer is about 1 MB; manifests and config are far smaller.
    let proxy = FaultProxy::start(reg.port, Fault::CutAfter(400_000))?;
    let reference = format!("127.0.0.1:{}/demo/busybox:1", proxy.port);
    let root = env.root().to_string_lossy().into_owned();
    let out = run_ok(berth(&["pull", &reference, "--root", &root]))?;
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::Relaxed),
        "the fault never fired"
    );
    assert!(
        proxy.saw_range.load(std::sync::atomic::Ordering::Relaxed),
        "no Range request: not resumed"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("resuming"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    let image = store_oracle::expected_image(&layout, &[busybox_rootfs()])?;
    store_oracle::assert_store_holds(&env.root(), &image)?;
    Ok(())
}

#[test]
fn a_flipped_byte_is_rejected_and_the_store_is_unchanged() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // A different image than the one in the store, so its layer is fetched.
    let layer = noise_layer(&env, "extra", 2_000_000, 0x9e37_79b9_7f4a_7c15)?;
    let layout = env.dir.path().join("extra-oci");
    make_image("oci", "localhost/test/extra:latest", &layout, &[&layer])?;
    reg.push(&layout, "test/extra:1", false)?;
    let before = content_snapshot(&env.root());
    let proxy = FaultProxy::start(reg.port, Fault::FlipAt(600_000))?;
    let root = env.root().to_string_lossy().into_owned();
    let out = berth(&[
        "pull",
        &format!("127.0.0.1:{}/test/extra:1", proxy.port),
        "--root",
        &root,
    ])
    .output()?;
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::Relaxed),
        "the fault never fired: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mismatch") || stderr.contains("corrupt"),
        "{stderr}"
    );
    assert_eq!(
        content_snapshot(&env.root()),
        before,
        "a rejected pull changed the store"
    );
    // Without the fault the same pull works: nothing bad was kept.
    run_ok(berth(&[
        "pull",
        &format!("{}/test/extra:1", reg.host()),
        "--root",
        &root,
    ]))?;
    let image = store_oracle::expected_image(&layout, &[&layer])?;
    store_oracle::assert_store_holds(&env.root(), &image)?;
    Ok(())
}

#[test]
fn a_pull_killed_with_sigkill_resumes_without_fetching_finished_layers_again() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // Layer 1: busybox (~1 MB, done first); layer 2: 4 MB of noise (slow).
    let noise = noise_layer(&env, "noise", 4_000_000, 0x2545_f491_4f6c_dd1d)?;
    let layout = env.dir.path().join("two-oci");
    make_image(
        "oci",
        "localhost/test/two:latest",
        &layout,
        &[busybox_rootfs(), &noise],
    )?;
    reg.push(&layout, "test/two:1", false)?;
    // About 1 MB/s through the proxy: the second layer takes ~4 s.
    let proxy = FaultProxy::start(reg.port, Fault::Slow(64))?;
    let reference = format!("127.0.0.1:{}/test/two:1", proxy.port);
    let root = env.root().to_string_lossy().into_owned();
    let partial_exists = || {
        fs::read_dir(env.root().join("tmp/downloads"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().ends_with(".partial")
                    && e.metadata().map(|m| m.len() > 1_500_000).unwrap_or(false)
            })
    };
    // Kill once the noise layer (larger than anything else) is half-way.
    let mut child = berth(&["pull", &reference, "--root", &root])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    wait_for(Duration::from_secs(20), || Ok(partial_exists()))?;
    child.kill()?; // SIGKILL in the middle of the second layer
    child.wait()?;
    let gets_before: Vec<String> = proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("/blobs/"))
        .cloned()
        .collect();
    // The blobs whose .partial was left are the unfinished ones.
    let unfinished: Vec<String> = fs::read_dir(env.root().join("tmp/downloads"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".partial").map(str::to_string))
        .collect();
    assert!(!unfinished.is_empty(), "no partial download was left");
    run_ok(berth(&["pull", &reference, "--root", &root]))?;
    let all: Vec<String> = proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("/blobs/"))
        .cloned()
        .collect();
    let after = &all[gets_before.len()..];
    assert!(
        proxy.saw_range.load(std::sync::atomic::Ordering::Relaxed),
        "the partial layer was not resumed with Range"
    );
    // Only the unfinished blob is asked for again: the finished ones are
    // not fetched a second time.
    assert!(!after.is_empty(), "nothing was fetched after the restart");
    assert!(
        after
            .iter()
            .all(|l| unfinished.iter().any(|u| l.contains(u.as_str()))),
        "a finished blob was fetched again: {after:?} (before: {gets_before:?}, unfinished {unfinished:?})"
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    let image = store_oracle::expected_image(&layout, &[busybox_rootfs(), &noise])?;
    store_oracle::assert_store_holds(&env.root(), &image)?;
    Ok(())
}

#[test]
fn a_stalled_download_times_out_and_resumes() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // One small layer of noise (~120 KB blob): its stall budget is short.
    let layer = noise_layer(&env, "small", 120_000, 0x1234_5678_9abc_def1)?;
    let layout = env.dir.path().join("small-oci");
    make_image("oci", "localhost/test/small:latest", &layout, &[&layer])?;
    reg.push(&layout, "test/small:1", false)?;
    let proxy = FaultProxy::start(reg.port, Fault::StallAfter(40_000))?;
    let root = env.root().to_string_lossy().into_owned();
    let started = std::time::Instant::now();
    let out = run_ok(berth(&[
        "pull",
        &format!("127.0.0.1:{}/test/small:1", proxy.port),
        "--timeout",
        "1",
        "--root",
        &root,
    ]))?;
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::Relaxed),
        "the stall never happened"
    );
    assert!(
        proxy.saw_range.load(std::sync::atomic::Ordering::Relaxed),
        "not resumed with Range"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming"));
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    let image = store_oracle::expected_image(&layout, &[&layer])?;
    store_oracle::assert_store_holds(&env.root(), &image)?;
    Ok(())
}

#[test]
fn a_503_with_retry_after_is_waited_out_and_retried() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    let layout = demo_layout(&env)?;
    reg.push(&layout, "demo/busybox:1", false)?;
    let proxy = FaultProxy::start(reg.port, Fault::UnavailableOnce(2))?;
    let root = env.root().to_string_lossy().into_owned();
    let started = std::time::Instant::now();
    run_ok(berth(&[
        "pull",
        &format!("127.0.0.1:{}/demo/busybox:1", proxy.port),
        "--root",
        &root,
    ]))?;
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::Relaxed),
        "no 503 was sent"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was not honoured: {:?}",
        started.elapsed()
    );
    let image = store_oracle::expected_image(&layout, &[busybox_rootfs()])?;
    store_oracle::assert_store_holds(&env.root(), &image)?;
    Ok(())
}

#[test]
fn a_blob_trickled_below_the_rate_floor_is_dropped_and_resumed() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // 2 MB: at 5 KiB/s more than 6 minutes, and a deadline of 1 + 30 s.
    let layer = noise_layer(&env, "trickled", 2_000_000, 0x0bad_5eed_cafe_f00d)?;
    let layout = env.dir.path().join("trickled-oci");
    make_image("oci", "localhost/test/trickled:latest", &layout, &[&layer])?;
    reg.push(&layout, "test/trickled:1", false)?;
    let proxy = FaultProxy::start(reg.port, Fault::TrickleAfter(40_000))?;
    let root = env.root().to_string_lossy().into_owned();
    let started = std::time::Instant::now();
    let out = run_ok(berth(&[
        "pull",
        &format!("127.0.0.1:{}/test/trickled:1", proxy.port),
        "--timeout",
        "1",
        "--root",
        &root,
    ]))?;
    let elapsed = started.elapsed();
    eprintln!("trickled blob dropped and resumed; the pull took {elapsed:?}");
    assert!(proxy.fired.load(std::sync::atomic::Ordering::Relaxed));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("slower than the floor of 64 KiB/s") && stdout.contains("resuming"),
        "{stdout}"
    );
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    Ok(())
}
