//! `berth pull` against a real registry (Debian's docker-registry on
//! 127.0.0.1, images pushed with skopeo): open, Basic auth with right and
//! wrong passwords, a multi-platform index, and the daemon pulling a
//! spec's missing image itself.

mod common;

use std::fs;
use std::time::Duration;

use anyhow::Result;
use common::registry::Registry;
use common::*;
use serde_json::json;

#[test]
fn pull_from_an_open_registry_and_run_it() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    let layout = demo_layout(&env)?;
    reg.push(&layout, "demo/busybox:1", false)?;
    let reference = format!("{}/demo/busybox:1", reg.host());
    let root = env.root().to_string_lossy().into_owned();
    let out = run_ok(berth(&["pull", &reference, "--root", &root]))?;
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{reference}: pulled")));
    // Pulling again downloads nothing: every blob is in the store.
    let again = run_ok(berth(&["pull", &reference, "--root", &root]))?;
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("bytes"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    // The test's own oracle: blobs hash to their names, the unpacked
    // layer is the busybox tree it was built from.
    let image = store_oracle::expected_image(&layout, &[busybox_rootfs()])?;
    store_oracle::assert_store_holds(&env.root(), &image)?;
    let missing = berth(&[
        "pull",
        &format!("{}/demo/absent:1", reg.host()),
        "--root",
        &root,
    ])
    .output()?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    Ok(())
}

#[test]
fn a_multi_platform_index_resolves_to_the_asked_platform() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // Two images in one index: amd64 (busybox) and arm64/v8 (a marker file).
    let layout = demo_layout(&env)?;
    let arm = env.dir.path().join("arm-layer");
    fs::create_dir_all(&arm)?;
    fs::write(arm.join("arm64-marker"), "arm64")?;
    let arm_layout = env.dir.path().join("arm-oci");
    make_image("oci", "localhost/demo/arm:1", &arm_layout, &[&arm])?;
    let idx: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let arm_idx: serde_json::Value =
        serde_json::from_slice(&fs::read(arm_layout.join("index.json"))?)?;
    for e in fs::read_dir(arm_layout.join("blobs/sha256"))? {
        let e = e?;
        fs::copy(e.path(), layout.join("blobs/sha256").join(e.file_name()))?;
    }
    let mut amd = idx["manifests"][0].clone();
    amd["platform"] = json!({"os": "linux", "architecture": "amd64"});
    amd.as_object_mut().unwrap().remove("annotations");
    let mut arm_desc = arm_idx["manifests"][0].clone();
    arm_desc["platform"] = json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
    arm_desc.as_object_mut().unwrap().remove("annotations");
    let inner = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd, arm_desc]}),
    )?;
    let inner_hex = common::layers::sha256_hex(&inner);
    fs::write(layout.join("blobs/sha256").join(&inner_hex), &inner)?;
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{inner_hex}"), "size": inner.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(layout.join("index.json"), top.to_string())?;
    reg.push(&layout, "multi/img:1", true)?;

    let reference = format!("{}/multi/img:1", reg.host());
    let root = env.root().to_string_lossy().into_owned();
    run_ok(berth(&[
        "pull",
        &reference,
        "--platform",
        "linux/arm64",
        "--root",
        &root,
    ]))?;
    let has_marker = fs::read_dir(env.root().join("layers/sha256"))?
        .flatten()
        .any(|e| e.path().join("arm64-marker").exists());
    assert!(has_marker, "the arm64 image was not the one pulled");
    let none = berth(&[
        "pull",
        &reference,
        "--platform",
        "linux/s390x",
        "--root",
        &root,
    ])
    .output()?;
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.contains("no image for linux/s390x")
            && stderr.contains("linux/amd64, linux/arm64/v8"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn the_daemon_pulls_a_missing_image_itself() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    reg.push(&demo_layout(&env)?, "demo/busybox:2", false)?;
    let image = format!("{}/demo/busybox:2", reg.host());
    env.write_spec(
        "fetched",
        &json!({"image": image, "command": ["echo", "pulled and ran"]}).to_string(),
    )?;
    env.write_spec("never", &json!({"image": format!("{}/demo/absent:1", reg.host()), "pull": "never", "command": ["true"]}).to_string())?;
    let _daemon = env.start_daemon()?;
    wait_for(Duration::from_secs(30), || {
        Ok(env.container("fetched")?["state"] == "exited")
    })?;
    let out = run_ok(env.cli(&["logs", "fetched"]))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pulled and ran\n");
    let never = env.container("never")?;
    assert_eq!(never["exit_code"], 125);
    assert!(
        never["error"]
            .as_str()
            .unwrap()
            .contains("not found in the store"),
        "{never}"
    );
    Ok(())
}

#[test]
fn berth_pull_goes_through_a_running_daemon_with_progress() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    reg.push(&demo_layout(&env)?, "demo/busybox:3", false)?;
    let _daemon = env.start_daemon()?;
    let reference = format!("{}/demo/busybox:3", reg.host());
    let out = run_ok(env.cli(&["pull", &reference]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Progress lines came back as notifications, then the result.
    assert!(
        stdout.contains("manifest sha256:") && stdout.contains(&format!("{reference}: pulled")),
        "{stdout}"
    );
    let images = run_ok(berth(&["images", "--root", env.root().to_str().unwrap()]))?;
    assert!(String::from_utf8_lossy(&images.stdout).contains(&reference));
    let bad = env
        .cli(&["pull", &format!("{}/demo/absent:1", reg.host())])
        .output()?;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    Ok(())
}

#[test]
fn mirrors_from_berth_json_are_tried_in_order() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let mirror = Registry::start(&env.dir.path().join("mirror"), None)?;
    mirror.push(&demo_layout(&env)?, "demo/busybox:1", false)?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port(); // closed again at once
    // The origin does not answer; its first mirror does not either; the
    // second mirror has the image.
    let settings = json!({"registries": {
        format!("127.0.0.1:{dead}"): {"mirrors": [format!("127.0.0.1:{dead}"), mirror.host()]}
    }});
    fs::write(env.config().join("berth.json"), settings.to_string())?;
    let root = env.root().to_string_lossy().into_owned();
    let reference = format!("127.0.0.1:{dead}/demo/busybox:1");
    let out = run_ok(berth(&[
        "pull",
        &reference,
        "--config",
        env.config().to_str().unwrap(),
        "--root",
        &root,
    ]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("mirror 127.0.0.1:{dead}:")) && stdout.contains("trying the next"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{reference}: pulled")), "{stdout}");
    // The daemon's own pulls read berth.json too: this tag exists only on
    // the mirror, whose origin does not answer.
    mirror.push(&demo_layout(&env)?, "demo/busybox:2", false)?;
    let image = format!("127.0.0.1:{dead}/demo/busybox:2");
    env.write_spec(
        "mirrored",
        &json!({"image": image, "command": ["echo", "pulled through the mirror"]}).to_string(),
    )?;
    {
        let _daemon = env.start_daemon()?;
        wait_for(Duration::from_secs(60), || {
            Ok(env.container("mirrored")?["state"] == "exited")
        })?;
        let out = run_ok(env.cli(&["logs", "mirrored"]))?;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "pulled through the mirror\n",
            "{}",
            env.container("mirrored")?
        );
    }
    // A mistake in berth.json is reported with its position.
    fs::write(
        env.config().join("berth.json"),
        "{\"registries\": {\"x.io\": {\"mirorrs\": []}}}",
    )?;
    let bad = berth(&["check", env.config().to_str().unwrap()]).output()?;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("berth.json:1:"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    Ok(())
}

/// A one-route HTTP server: every request gets `status`, `content_type`
/// and `body`. Enough to play a registry that serves an old format.
fn fake_registry(content_type: &'static str, body: &'static str) -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{BufRead, Write};
            let mut reader = std::io::BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let mut out = &stream;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(port)
}

#[test]
fn a_schema_1_manifest_is_refused_with_a_clear_error() -> Result<()> {
    let env = TestEnv::new()?;
    let port = fake_registry(
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        r#"{"schemaVersion": 1, "name": "old/app", "tag": "1", "fsLayers": []}"#,
    )?;
    let root = env.root().to_string_lossy().into_owned();
    let out = berth(&[
        "pull",
        &format!("127.0.0.1:{port}/old/app:1"),
        "--root",
        &root,
    ])
    .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema 1 manifest, which berth does not support"),
        "{stderr}"
    );
    Ok(())
}
