//! Layers are stored once and shared read-only; every container has its
//! own upper layer; images with more layers than one mount call can name
//! (≥ 128) still mount.

mod common;

use std::fs;
use std::time::Duration;

use anyhow::Result;
use common::layers::{Layer, RawTar, write_layout};
use common::*;
use serde_json::json;

#[test]
fn an_image_with_130_layers_mounts_and_shows_every_layer() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    // Base: busybox, from the same builder the other tests use.
    let base = env.dir.path().join("base");
    make_image("oci", "localhost/test/base:1", &base, &[busybox_rootfs()])?;
    let index: serde_json::Value = serde_json::from_slice(&fs::read(base.join("index.json"))?)?;
    let manifest_hex = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(base.join("blobs/sha256").join(manifest_hex))?)?;
    let base_blob = fs::read(
        base.join("blobs/sha256").join(
            manifest["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )?;
    let mut layers = vec![Layer::gzip(&{
        let mut d = flate2::read::GzDecoder::new(&base_blob[..]);
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut v)?;
        v
    })];
    for i in 1..130 {
        let mut t = RawTar::default();
        t.file(&format!("layers/{i}"), format!("{i}\n").as_bytes());
        t.file("top", format!("{i}\n").as_bytes());
        layers.push(Layer::tar(t.finish()));
    }
    let layout = env.dir.path().join("tall");
    write_layout(&layout, "localhost/test/tall:1", &layers, None)?;
    run_ok(berth(&[
        "import",
        layout.to_str().unwrap(),
        "--root",
        env.root().to_str().unwrap(),
    ]))?;
    env.write_spec("tall", &json!({"image": "localhost/test/tall:1", "command": ["sh", "-c", "cat /layers/1 /layers/129 /top; ls /layers | wc -l"]}).to_string())?;
    let _daemon = env.start_daemon()?;
    wait_for(Duration::from_secs(15), || {
        Ok(env.container("tall")?["state"] == "exited")
    })?;
    let c = env.container("tall")?;
    assert_eq!(c["exit_code"], 0, "{c}");
    let out = run_ok(env.cli(&["logs", "tall"]))?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1", "129", "129", "129"]
    );
    Ok(())
}

#[test]
fn containers_of_one_image_share_lower_layers_but_not_writes() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let writer =
        json!({"image": DEMO_REF, "command": ["sh", "-c", "echo mine > /etc/motd; cat /etc/motd"]});
    let reader = json!({"image": DEMO_REF, "command": ["sh", "-c", "sleep 0.5; cat /etc/motd 2>&1 || echo absent"]});
    env.write_spec("writer", &writer.to_string())?;
    env.write_spec("reader", &reader.to_string())?;
    let _daemon = env.start_daemon()?;
    for name in ["writer", "reader"] {
        wait_for(Duration::from_secs(10), || {
            Ok(env.container(name)?["state"] == "exited")
        })?;
    }
    let logs = |n: &str| -> Result<String> {
        Ok(String::from_utf8_lossy(&run_ok(env.cli(&["logs", n]))?.stdout).into_owned())
    };
    assert_eq!(logs("writer")?, "mine\n");
    assert!(logs("reader")?.ends_with("absent\n"));
    // One copy of the layer on disk; the write went to the writer's upper.
    assert_eq!(
        fs::read_dir(env.root().join("layers/sha256"))?
            .flatten()
            .filter(|e| e.path().is_dir())
            .count(),
        1
    );
    assert_eq!(
        fs::read_to_string(env.root().join("containers/writer/upper/etc/motd"))?,
        "mine\n"
    );
    assert!(!env.root().join("containers/reader/upper/etc/motd").exists());
    Ok(())
}
