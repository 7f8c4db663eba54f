//! `berth import` of both archive formats into a real store: whiteouts and
//! opaque directories in overlayfs form, shared layers, and corrupt input
//! rejected with the store left exactly as it was.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use common::*;

fn root_arg(env: &TestEnv) -> String {
    env.root().to_string_lossy().into_owned()
}

/// A second layer that deletes /etc/group, hides everything in /www but a
/// new page, and adds a file.
fn whiteout_layer(dir: &Path) -> Result<PathBuf> {
    let layer = dir.join("layer2");
    fs::create_dir_all(layer.join("etc"))?;
    fs::create_dir_all(layer.join("www"))?;
    fs::write(layer.join("etc/.wh.group"), "")?;
    fs::write(layer.join("www/.wh..wh..opq"), "")?;
    fs::write(layer.join("www/new.html"), "new page\n")?;
    fs::write(layer.join("added.txt"), "added\n")?;
    Ok(layer)
}

/// Every path and size below `root`, to compare a store before and after.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            out.push((e.path(), if meta.is_dir() { 0 } else { meta.len() }));
            if meta.is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

fn assert_overlay_form(layer_dir: &Path) {
    let group = fs::symlink_metadata(layer_dir.join("etc/group")).expect("whiteout exists");
    assert!(
        group.file_type().is_char_device() && group.rdev() == 0,
        "etc/group must be a 0/0 char device"
    );
    let opaque = xattr::get(layer_dir.join("www"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(
        !layer_dir.join("etc/.wh.group").exists() && !layer_dir.join("www/.wh..wh..opq").exists()
    );
    assert_eq!(
        fs::read_to_string(layer_dir.join("www/new.html")).unwrap(),
        "new page\n"
    );
}

#[test]
fn both_formats_import_with_whiteouts_in_overlay_form() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let layer2 = whiteout_layer(env.dir.path())?;
    let oci = env.dir.path().join("oci");
    let archive = env.dir.path().join("image.tar");
    make_image(
        "oci",
        "localhost/test/wh:oci",
        &oci,
        &[busybox_rootfs(), &layer2],
    )?;
    make_image(
        "docker-archive",
        "localhost/test/wh:docker",
        &archive,
        &[busybox_rootfs(), &layer2],
    )?;
    let root = root_arg(&env);
    run_ok(berth(&["import", oci.to_str().unwrap(), "--root", &root]))?;
    run_ok(berth(&[
        "import",
        archive.to_str().unwrap(),
        "--root",
        &root,
    ]))?;

    // Both images share their two layers: stored and unpacked once.
    let layers: Vec<_> = fs::read_dir(env.root().join("layers/sha256"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(layers.len(), 2, "{layers:?}");
    let top = layers
        .iter()
        .find(|l| l.join("added.txt").exists())
        .expect("top layer");
    assert_overlay_form(top);

    let out = run_ok(berth(&["images", "--json", "--root", &root]))?;
    let images: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let refs: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["localhost/test/wh:docker", "localhost/test/wh:oci"]);
    assert_eq!(
        images[0]["id"], images[1]["id"],
        "same config, same image id"
    );
    assert!(
        fs::read_dir(env.root().join("tmp"))?.next().is_none(),
        "staging area left behind"
    );
    Ok(())
}

#[test]
fn a_container_sees_the_merged_layers() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let layer2 = whiteout_layer(env.dir.path())?;
    let oci = env.dir.path().join("oci");
    make_image(
        "oci",
        "localhost/test/wh:1",
        &oci,
        &[busybox_rootfs(), &layer2],
    )?;
    run_ok(berth(&[
        "import",
        oci.to_str().unwrap(),
        "--root",
        &root_arg(&env),
    ]))?;
    env.write_spec("look", r#"{"image": "localhost/test/wh:1", "command": ["sh", "-c", "ls /www; test -e /etc/group || echo no-group; cat /added.txt"]}"#)?;
    let _daemon = env.start_daemon()?;
    wait_for(std::time::Duration::from_secs(10), || {
        Ok(env.container("look")?["state"] == "exited")
    })?;
    let out = run_ok(&mut env.cli(&["logs", "look"]))?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "new.html\nno-group\nadded\n"
    );
    Ok(())
}

#[test]
fn a_corrupt_blob_is_rejected_and_the_store_is_unchanged() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let before = snapshot(&env.root());

    let layer2 = whiteout_layer(env.dir.path())?;
    let oci = env.dir.path().join("corrupt-oci");
    make_image(
        "oci",
        "localhost/test/corrupt:1",
        &oci,
        &[busybox_rootfs(), &layer2],
    )?;
    // Flip one byte in the biggest blob the store does not hold yet (the
    // second layer; the busybox layer is already there and is never read).
    let blobs: Vec<PathBuf> = fs::read_dir(oci.join("blobs/sha256"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            !env.root()
                .join("blobs/sha256")
                .join(p.file_name().unwrap())
                .exists()
        })
        .collect();
    let biggest = blobs
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(biggest)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(biggest, bytes)?;

    let out = berth(&["import", oci.to_str().unwrap(), "--root", &root_arg(&env)]).output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("digest mismatch"), "{stderr}");
    assert_eq!(
        snapshot(&env.root()),
        before,
        "store changed by a rejected import"
    );
    Ok(())
}

#[test]
fn a_layer_whose_content_does_not_match_its_diff_id_is_rejected() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let before = snapshot(&env.root());
    // Build an archive, then swap its layer for another: the config's
    // diff_id no longer matches what unpacks.
    let other = env.dir.path().join("other");
    fs::create_dir_all(&other)?;
    fs::write(other.join("x"), "x")?;
    let work = env.dir.path().join("unpacked");
    fs::create_dir_all(&work)?;
    let archive = env.dir.path().join("a.tar");
    make_image(
        "docker-archive",
        "localhost/test/bad:1",
        &archive,
        &[busybox_rootfs()],
    )?;
    run_ok(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&work),
    )?;
    let layer_tar = fs::read_dir(&work)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("layer.tar").exists())
        .unwrap()
        .join("layer.tar");
    run_ok(
        std::process::Command::new("tar")
            .arg("-cf")
            .arg(&layer_tar)
            .arg("-C")
            .arg(&other)
            .arg("."),
    )?;
    let bad = env.dir.path().join("bad.tar");
    run_ok(
        std::process::Command::new("tar")
            .arg("-cf")
            .arg(&bad)
            .arg("-C")
            .arg(&work)
            .arg("."),
    )?;

    let out = berth(&["import", bad.to_str().unwrap(), "--root", &root_arg(&env)]).output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("(uncompressed): digest mismatch"),
        "{stderr}"
    );
    assert_eq!(snapshot(&env.root()), before);
    Ok(())
}

#[test]
fn import_errors_name_the_problem() -> Result<()> {
    let env = TestEnv::new()?;
    let not_an_image = env.dir.path().join("empty-dir");
    fs::create_dir_all(&not_an_image)?;
    let out = berth(&[
        "import",
        not_an_image.to_str().unwrap(),
        "--root",
        &root_arg(&env),
    ])
    .output()?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("oci-layout"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = berth(&["import", "/nonexistent/x.tar", "--root", &root_arg(&env)]).output()?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.tar"));
    Ok(())
}
