//! The store's lifecycle: GC that never takes what is in use, verify that
//! finds corruption and repairs it, and imports killed with SIGKILL at
//! arbitrary moments leaving a store that verifies clean. Besides `berth
//! store verify`, every test checks the store with its own oracle
//! (tests/common/store_oracle.rs: its own sha256 of every blob, and each
//! unpacked layer against the directory it was built from).

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use common::store_oracle::{
    assert_store_holds, blobs_match_their_names, expected_image, layer_matches,
};
use common::*;
use serde_json::json;

fn root_of(env: &TestEnv) -> String {
    env.root().to_string_lossy().into_owned()
}

fn second_image(env: &TestEnv, name: &str) -> Result<std::path::PathBuf> {
    let layer = env.dir.path().join(format!("{name}-layer"));
    fs::create_dir_all(&layer)?;
    fs::write(layer.join("extra.bin"), vec![7u8; 300_000])?;
    let oci = env.dir.path().join(format!("{name}-oci"));
    make_image(
        "oci",
        &format!("localhost/test/{name}:1"),
        &oci,
        &[busybox_rootfs(), &layer],
    )?;
    Ok(oci)
}

#[test]
fn rmi_and_prune_reclaim_only_what_nothing_uses() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let root = root_of(&env);
    run_ok(berth(&[
        "import",
        second_image(&env, "extra")?.to_str().unwrap(),
        "--root",
        &root,
    ]))?;
    assert_eq!(
        fs::read_dir(env.root().join("layers/sha256"))?
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count(),
        2
    );

    let out = run_ok(berth(&["rmi", "localhost/test/extra:1", "--root", &root]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("untagged localhost/test/extra:1")
            && text.contains("removed 3 blobs, 1 layers"),
        "{text}"
    );
    // The shared busybox layer stays: the demo image still uses it.
    let layers: Vec<_> = fs::read_dir(env.root().join("layers/sha256"))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(layers.len(), 1);
    run_ok(env.cli(&["images"]).args(["--root", &root]))?;

    // A configured container keeps its image: rmi refuses, --force untags
    // it, and prune still keeps everything the container runs on.
    env.write_spec(
        "user",
        &json!({"image": DEMO_REF, "command": ["sleep", "60"], "stop_timeout": 1}).to_string(),
    )?;
    let _daemon = env.start_daemon()?;
    wait_for(Duration::from_secs(10), || {
        Ok(env.container("user")?["state"] == "running")
    })?;
    let refused = berth(&["rmi", DEMO_REF, "--root", &root]).output()?;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a container uses it"));
    run_ok(berth(&["rmi", "--force", DEMO_REF, "--root", &root]))?;
    run_ok(berth(&["prune", "--root", &root]))?;
    assert_eq!(
        fs::read_dir(env.root().join("layers/sha256"))?
            .flatten()
            .filter(|e| e.path().is_dir())
            .count(),
        1
    );
    let v = run_ok(berth(&["store", "verify", "--root", &root]))?;
    assert!(String::from_utf8_lossy(&v.stdout).contains("0 problems"));
    // Independently: the demo image the container runs on is whole.
    let demo = expected_image(&env.dir.path().join("demo-oci"), &[busybox_rootfs()])?;
    assert_store_holds(&env.root(), &demo)?;
    Ok(())
}

#[test]
fn verify_finds_corruption_and_repair_lets_an_import_heal_it() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let root = root_of(&env);
    let oci = second_image(&env, "victim")?;
    run_ok(berth(&["import", oci.to_str().unwrap(), "--root", &root]))?;
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    let layer_dir = env.dir.path().join("victim-layer");
    let image = expected_image(&oci, &[busybox_rootfs(), &layer_dir])?;
    assert_store_holds(&env.root(), &image)?;

    // One bit flipped in an unpacked file, one in a blob.
    let layer = fs::read_dir(env.root().join("layers/sha256"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("extra.bin").exists())
        .unwrap();
    let mut bytes = fs::read(layer.join("extra.bin"))?;
    bytes[1000] ^= 1;
    fs::write(layer.join("extra.bin"), bytes)?;
    let blob = fs::read_dir(env.root().join("blobs/sha256"))?
        .flatten()
        .map(|e| e.path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&blob)?;
    bytes[10] ^= 1;
    fs::write(&blob, bytes)?;

    let out = berth(&["store", "verify", "--root", &root]).output()?;
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("its files differ from what was unpacked"),
        "{text}"
    );
    assert!(text.contains("content does not match its name"), "{text}");
    // The test's own oracle sees both as well.
    assert!(blobs_match_their_names(&env.root()).is_err());
    assert!(assert_store_holds(&env.root(), &image).is_err());
    run_ok(berth(&["store", "verify", "--repair", "--root", &root]))?;
    let out = run_ok(berth(&["store", "verify", "--root", &root]))?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 problems"));
    // The broken reference was dropped; importing again restores it.
    run_ok(berth(&["import", oci.to_str().unwrap(), "--root", &root]))?;
    let out = run_ok(berth(&["images", "--root", &root]))?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("localhost/test/victim:1"));
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    assert_store_holds(&env.root(), &image)?;
    Ok(())
}

#[test]
fn imports_killed_at_any_moment_leave_a_store_that_verifies_clean() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let root = root_of(&env);
    let layer = env.dir.path().join("big-layer");
    fs::create_dir_all(&layer)?;
    for i in 0..40 {
        let data: Vec<u8> = (0..250_000u32)
            .map(|x| (x.wrapping_mul(2_654_435_761).wrapping_add(i) >> 13) as u8)
            .collect();
        fs::write(layer.join(format!("f{i}")), data)?;
    }
    let oci = env.dir.path().join("big-oci");
    make_image(
        "oci",
        "localhost/test/big:1",
        &oci,
        &[busybox_rootfs(), &layer],
    )?;
    let image = expected_image(&oci, &[busybox_rootfs(), &layer])?;
    let mut seed: u64 = std::process::id().into();
    for round in 0..12 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(5 + (seed >> 33) % 400);
        let mut child = berth(&["import", oci.to_str().unwrap(), "--root", &root])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL, wherever it is
        let _ = child.wait();
        // Helpers die with their parent's pipe; give them a moment.
        std::thread::sleep(Duration::from_millis(50));
        let out = berth(&["store", "verify", "--root", &root]).output()?;
        assert!(
            out.status.success(),
            "round {round} (kill after {delay:?}): {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // Independently: whatever has a final name is whole.
        if env.root().join("blobs/sha256").is_dir() {
            blobs_match_their_names(&env.root())
                .with_context(|| format!("round {round} (kill after {delay:?})"))?;
        }
        for (diff_id, source) in &image.layers {
            let record = env.root().join(format!("layers/sha256/{diff_id}.json"));
            if record.exists() {
                layer_matches(&env.root(), diff_id, source)
                    .with_context(|| format!("round {round} (kill after {delay:?})"))?;
            }
        }
    }
    run_ok(berth(&["import", oci.to_str().unwrap(), "--root", &root]))?;
    let out = run_ok(berth(&["store", "verify", "--repair", "--root", &root]))?;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 problems"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run_ok(berth(&["images", "--root", &root]))?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("localhost/test/big:1"));
    assert_store_holds(&env.root(), &image)?;
    Ok(())
}
