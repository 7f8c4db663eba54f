//! The streaming pull's own promises, through the fault proxy in front of
//! a real registry: a layer cut mid-stream resumes where it stopped (not
//! from zero), a pull killed mid-layer reuses the bytes it had spooled,
//! and a blob whose digest fails only at the very end of its stream
//! leaves the store exactly as it was (checked by hashing every file
//! with this test's own sha256, not only by `berth store verify`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use common::fault_proxy::{Fault, FaultProxy};
use common::layers::{Layer, RawTar, sha256_hex, write_layout};
use common::registry::Registry;
use common::*;

/// An OCI layout of one layer holding `data` as the file `data`: gzip
/// (noise does not shrink, so the blob is as large as the data) or a
/// plain tar.
/// Returns the layout and the layer blob's sha256.
fn one_file_layout(
    env: &TestEnv,
    name: &str,
    data: &[u8],
    gzip: bool,
) -> Result<(PathBuf, String)> {
    let mut tar = RawTar::default();
    tar.file("data", data);
    let raw = tar.finish();
    let layer = if gzip {
        Layer::gzip(&raw)
    } else {
        Layer::tar(raw)
    };
    let blob = sha256_hex(&layer.blob);
    let layout = env.dir.path().join(name);
    write_layout(
        &layout,
        &format!("localhost/test/{name}:latest"),
        &[layer],
        None,
    )?;
    Ok((layout, blob))
}

/// The `data` file of the one unpacked layer in the store.
fn unpacked_data(root: &Path) -> Result<Vec<u8>> {
    for e in fs::read_dir(root.join("layers/sha256"))? {
        let path = e?.path();
        if path.is_dir() && path.join("data").is_file() {
            return Ok(fs::read(path.join("data"))?);
        }
    }
    anyhow::bail!("no unpacked layer with a data file")
}

/// Every file under blobs/, layers/ and images/ with its sha256 (this
/// test's own), and every directory and link: what a failed pull must not
/// change.
fn content_oracle(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for top in ["blobs", "layers", "images"] {
        walk(&root.join(top), root, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in fs::read_dir(dir).into_iter().flatten() {
        let path = e?.path();
        let rel = path.strip_prefix(root)?.display().to_string();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            out.push(format!("{rel}/"));
            walk(&path, root, out)?;
        } else if meta.is_file() {
            out.push(format!("{rel} {}", sha256_hex(&fs::read(&path)?)));
        } else {
            out.push(format!("{rel} -> {:?}", fs::read_link(&path).ok()));
        }
    }
    Ok(())
}

#[test]
fn a_layer_cut_mid_stream_resumes_from_where_it_stopped() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    let data = noise(3_000_000, 0x5eed_0001_c0ff_ee00);
    reg.push(
        &one_file_layout(&env, "cut", &data, true)?.0,
        "test/cut:1",
        false,
    )?;
    let proxy = FaultProxy::start(reg.port, Fault::CutAfter(1_500_000))?;
    let root = env.root().to_string_lossy().into_owned();
    let reference = format!("127.0.0.1:{}/test/cut:1", proxy.port);
    let out = run_ok(berth(&["pull", &reference, "--root", &root]))?;
    assert!(
        proxy.fired.load(Ordering::Relaxed),
        "the cut never happened"
    );
    assert!(proxy.saw_range.load(Ordering::Relaxed), "no Range request");
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming"));
    // Resumed, not restarted: about one blob's worth crossed the proxy.
    let fetched = proxy.bytes.load(Ordering::Relaxed);
    assert!(
        fetched < data.len() as u64 + 400_000,
        "{fetched} bytes fetched for a {} byte layer: restarted from zero?",
        data.len()
    );
    assert!(unpacked_data(&env.root())? == data, "unpacked bytes differ");
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    Ok(())
}

#[test]
fn a_pull_killed_mid_layer_reuses_the_bytes_it_had() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    let data = noise(4_000_000, 0x5eed_0002_c0ff_ee00);
    reg.push(
        &one_file_layout(&env, "killed", &data, true)?.0,
        "test/killed:1",
        false,
    )?;
    // About 1 MB/s through the proxy: the layer takes ~4 s.
    let proxy = FaultProxy::start(reg.port, Fault::Slow(64))?;
    let reference = format!("127.0.0.1:{}/test/killed:1", proxy.port);
    let root = env.root().to_string_lossy().into_owned();
    let downloads = env.root().join("tmp/downloads");
    let spooled = || -> u64 {
        fs::read_dir(&downloads)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    let mut child = berth(&["pull", &reference, "--root", &root])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let waited = wait_for(Duration::from_secs(20), || Ok(spooled() > 2_000_000));
    child.kill()?; // SIGKILL half-way through the layer
    child.wait()?;
    waited.context("the layer never got half-way")?;
    let kept = spooled();
    assert!(kept > 2_000_000, "the spooled bytes were not kept");
    // The killed pull's connection may still be draining through the proxy.
    std::thread::sleep(Duration::from_millis(500));
    let before = proxy.bytes.load(Ordering::Relaxed);
    let out = run_ok(berth(&["pull", &reference, "--root", &root]))?;
    let second = proxy.bytes.load(Ordering::Relaxed) - before;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("resuming from"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Only what was missing was fetched again (plus manifests, headers
    // and what sat in socket buffers when the first pull died); from zero
    // it would be the whole blob.
    assert!(
        second < data.len() as u64 - kept + 400_000,
        "fetched {second} bytes after the restart though {kept} of {} were spooled",
        data.len()
    );
    assert!(unpacked_data(&env.root())? == data, "unpacked bytes differ");
    assert!(
        spooled() == 0,
        "a download was left behind after the commit"
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    Ok(())
}

#[test]
fn a_digest_that_fails_at_the_end_of_the_stream_leaves_the_store_unchanged() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // A plain tar layer: a flipped byte in the file's data unpacks fine,
    // so only the digests at the end of the stream can catch it.
    let data = noise(2_000_000, 0x5eed_0003_c0ff_ee00);
    let (layout, blob) = one_file_layout(&env, "flip", &data, false)?;
    reg.push(&layout, "test/flip:1", false)?;
    let before = content_oracle(&env.root())?;
    let proxy = FaultProxy::start(reg.port, Fault::FlipAt(1_000_000))?;
    let root = env.root().to_string_lossy().into_owned();
    let out = berth(&[
        "pull",
        &format!("127.0.0.1:{}/test/flip:1", proxy.port),
        "--root",
        &root,
    ])
    .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        proxy.fired.load(Ordering::Relaxed),
        "the flip never happened"
    );
    assert!(!out.status.success(), "a corrupt layer was accepted");
    assert!(stderr.contains("digest mismatch"), "{stderr}");
    assert_eq!(
        content_oracle(&env.root())?,
        before,
        "a rejected pull changed the store"
    );
    let leftovers: Vec<_> = fs::read_dir(env.root().join("tmp"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("import-"))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    let spool: Vec<_> = fs::read_dir(env.root().join("tmp/downloads"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&blob))
        .collect();
    assert!(
        spool.is_empty(),
        "bytes that failed their digest were kept: {spool:?}"
    );
    run_ok(berth(&[
        "pull",
        &format!("{}/test/flip:1", reg.host()),
        "--root",
        &root,
    ]))?;
    assert!(unpacked_data(&env.root())? == data, "unpacked bytes differ");
    Ok(())
}
