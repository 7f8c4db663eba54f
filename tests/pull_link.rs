//! Pulls over a slow or metered link: `--max-rate` (berth.json
//! `pull.max_rate`) caps the download of all layers together, `--max-parallel`
//! sets how many layers download at once, a rate-capped pull still
//! resumes after cuts, and both options are bounded where they are read.

mod common;

use std::fs;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use common::fault_proxy::{Fault, FaultProxy};
use common::registry::Registry;
use common::*;

const MIB: usize = 1 << 20;

/// An image of one layer of `len` incompressible bytes, pushed as
/// `repo_tag`.
fn push_noise(env: &TestEnv, reg: &Registry, repo_tag: &str, len: usize) -> Result<()> {
    let layer = env.dir.path().join("noise");
    fs::create_dir_all(&layer)?;
    fs::write(layer.join("data"), noise(len, 7))?;
    let layout = env.dir.path().join("noise-oci");
    make_image("oci", "localhost/test/noise:latest", &layout, &[&layer])?;
    reg.push(&layout, repo_tag, false)
}

#[test]
fn a_pull_capped_at_1_mib_per_second_takes_8_mib_about_8_seconds() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    push_noise(&env, &reg, "test/noise:8m", 8 * MIB)?;
    let reference = format!("{}/test/noise:8m", reg.host());
    let root = env.root().to_string_lossy().into_owned();
    let t0 = Instant::now();
    run_ok(berth(&[
        "pull",
        &reference,
        "--root",
        &root,
        "--max-rate",
        "1m",
    ]))?;
    let took = t0.elapsed();
    // A quarter second's burst is free; the rest comes at 1 MiB/s.
    assert!(
        took >= Duration::from_secs(7) && took < Duration::from_secs(12),
        "8 MiB at 1 MiB/s took {took:?}"
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    Ok(())
}

#[test]
fn a_rate_capped_pull_cut_three_times_still_completes() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    push_noise(&env, &reg, "test/noise:4m", 4 * MIB)?;
    let proxy = FaultProxy::start(reg.port, Fault::CutEachAfter(MIB, 3))?;
    let reference = format!("127.0.0.1:{}/test/noise:4m", proxy.port);
    let root = env.root().to_string_lossy().into_owned();
    let out = run_ok(berth(&[
        "pull",
        &reference,
        "--root",
        &root,
        "--max-rate",
        "4m",
        "--max-parallel",
        "1",
    ]))?;
    assert_eq!(proxy.cuts.load(Ordering::Relaxed), 3, "the cuts never came");
    assert!(proxy.saw_range.load(Ordering::Relaxed), "not resumed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("resuming").count(), 3, "{stdout}");
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    Ok(())
}

#[test]
fn link_options_out_of_bounds_are_refused_where_they_are_read() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let root = env.root().to_string_lossy().into_owned();
    for (flag, value, want) in [
        ("--max-rate", "10", "--max-rate: expected 1024 to"),
        ("--max-rate", "fast", "--max-rate: not a number"),
        ("--max-parallel", "0", "--max-parallel: expected 1 to 16"),
    ] {
        let out = berth(&["pull", "127.0.0.1:1/x:1", "--root", &root, flag, value]).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{flag} {value}: {stderr}"
        );
    }
    let config = env.dir.path().join("config");
    fs::create_dir_all(config.join("containers"))?;
    fs::write(
        config.join("berth.json"),
        "{\n  \"pull\": {\"max_rate\": \"1m\",\n           \"max_parallel\": 99}\n}\n",
    )?;
    let out = berth(&["check", &config.to_string_lossy()]).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("berth.json:3:")
            && stderr.contains("pull.max_parallel"),
        "{stderr}"
    );
    Ok(())
}
