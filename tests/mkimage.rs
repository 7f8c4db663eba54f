//! `berth mkimage`: what goes in an initramfs (berth as /init, the config
//! with the modules' berth.json, the modules the config needs in load
//! order and uncompressed, the CA bundle, the preloaded store with its
//! owners), that two builds give the same bytes, that a binary, module or
//! image of another architecture and a dynamic berth are refused naming
//! why, that missing modules, images and kernels are named — on a fake
//! kernel and module tree (tests/common/mkimage_inputs.rs), so all of it
//! runs without qemu. `--format disk` is tests/mkimage_disk.rs;
//! tests/vm_mkimage.rs and tests/vm_mkimage_disk.rs boot what they build.

mod common;

use anyhow::{Context, Result};
use common::mkimage_inputs::*;
use common::*;
use serde_json::{Value, json};
use sha2::Digest as _;

struct CpioEntry {
    name: String,
    mode: u32,
    uid: u32,
    mtime: u32,
    data: Vec<u8>,
}

/// A newc archive's entries (without the trailer).
fn cpio_entries(bytes: &[u8]) -> Vec<CpioEntry> {
    let field = |at: usize, i: usize| {
        let hex = std::str::from_utf8(&bytes[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
        u32::from_str_radix(hex, 16).unwrap()
    };
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        assert_eq!(&bytes[at..at + 6], b"070701", "a newc header at {at}");
        let (size, namesize) = (field(at, 6) as usize, field(at, 11) as usize);
        let name = String::from_utf8_lossy(&bytes[at + 110..at + 110 + namesize - 1]).into_owned();
        let data_at = (at + 110 + namesize).div_ceil(4) * 4;
        if name == "TRAILER!!!" {
            return out;
        }
        out.push(CpioEntry {
            name,
            mode: field(at, 1),
            uid: field(at, 2),
            mtime: field(at, 5),
            data: bytes[data_at..data_at + size].to_vec(),
        });
        at = (data_at + size).div_ceil(4) * 4;
    }
}

#[test]
fn an_initramfs_holds_init_the_config_modules_ca_bundle_and_the_store() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let i = inputs(host_arch())?;
    let layout = demo_layout(&i.env)?;
    let layout = layout.to_str().context("path")?;
    ok(i.mkimage(
        "initrd.cpio",
        &[
            "--compress",
            "none",
            "--image",
            layout,
            "--add-module",
            "virtio-blk",
        ],
    ));
    let entries = cpio_entries(&i.read("initrd.cpio"));
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries in byte order");
    assert!(
        entries.iter().all(|e| e.mtime == 0),
        "mtimes are SOURCE_DATE_EPOCH's (0)"
    );
    let get = |name: &str| {
        entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no {name} in {names:?}"))
    };
    assert_eq!(get("init").data, std::fs::read(&i.berth)?);
    assert_eq!(get("init").mode, libc::S_IFREG | 0o755);
    assert_eq!(get("tmp").mode, libc::S_IFDIR | 0o1777);
    assert!(get("etc/berth/containers/web.json").data.starts_with(b"{"));
    assert_eq!(
        get("etc/ssl/certs/ca-certificates.crt").data,
        std::fs::read(&i.ca)?
    );
    let settings: Value = serde_json::from_slice(&get("etc/berth/berth.json").data)?;
    let m = |p: &str| format!("/lib/modules/{RELEASE}/kernel/{p}.ko");
    assert_eq!(
        settings["modules"],
        json!([
            m("fs/overlayfs/overlay"),
            m("drivers/watchdog/watchdog"),
            m("drivers/watchdog/softdog"),
            m("drivers/virtio/virtio_ring"),
            m("drivers/virtio/virtio"),
            m("drivers/block/virtio_blk")
        ]),
        "berth.json's own modules, the watchdog's, --add-module's, each after its dependencies"
    );
    assert_eq!(
        settings["watchdog"]["timeout"], 30,
        "the rest of berth.json is kept"
    );
    // The compressed module lands uncompressed, where berth.json says.
    let blk = get(&m("drivers/block/virtio_blk")[1..]);
    assert_eq!(blk.data, fake_elf(host_arch().1, None));
    assert!(
        String::from_utf8_lossy(&get("var/lib/berth/images/refs.json").data).contains(DEMO_REF)
    );
    let busybox = entries
        .iter()
        .find(|e| {
            e.name.starts_with("var/lib/berth/layers/sha256/") && e.name.ends_with("/bin/busybox")
        })
        .context("the demo image's busybox in the store")?;
    assert!(busybox.data.len() > 100_000 && busybox.uid == 0);
    assert!(
        !names
            .iter()
            .any(|n| n.contains("mkimage") || *n == "var/lib/berth/tmp")
    );
    Ok(())
}

#[test]
fn config_drive_adds_vfat_its_character_sets_and_isofs() -> Result<()> {
    let i = inputs(host_arch())?;
    let modules_of = |out: &str| -> Result<Vec<String>> {
        let entries = cpio_entries(&i.read(out));
        let settings = entries
            .iter()
            .find(|e| e.name == "etc/berth/berth.json")
            .context("berth.json in the image")?;
        let settings: Value = serde_json::from_slice(&settings.data)?;
        Ok(serde_json::from_value(settings["modules"].clone())?)
    };
    ok(i.mkimage("plain.cpio", &["--compress", "none"]));
    let plain = modules_of("plain.cpio")?;
    assert!(!plain.iter().any(|m| m.contains("/fs/fat/")), "{plain:?}");
    ok(i.mkimage("drive.cpio", &["--compress", "none", "--config-drive"]));
    let drive = modules_of("drive.cpio")?;
    let at = |name: &str| {
        drive
            .iter()
            .position(|m| m.ends_with(&format!("/{name}.ko")))
            .unwrap_or_else(|| panic!("no {name} in {drive:?}"))
    };
    assert!(at("fat") < at("vfat"), "{drive:?}");
    assert!(at("cdrom") < at("isofs"), "{drive:?}");
    at("nls_cp437");
    at("nls_ascii");
    assert!(
        drive.starts_with(&plain),
        "the config's own modules come first: {drive:?}"
    );
    Ok(())
}

#[test]
fn building_twice_gives_the_same_bytes() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let i = inputs(host_arch())?;
    let layout = demo_layout(&i.env)?;
    let layout = layout.to_str().context("path")?;
    for compress in ["zstd:3", "gzip"] {
        let extra = ["--compress", compress, "--image", layout];
        ok(i.mkimage("one.img", &extra));
        // Another time, another inode order: the same bytes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        ok(i.mkimage("two.img", &extra));
        let (one, two) = (i.read("one.img"), i.read("two.img"));
        let sum = |b: &[u8]| {
            let d = sha2::Sha256::digest(b);
            d.iter().map(|x| format!("{x:02x}")).collect::<String>()
        };
        eprintln!("{compress}: {} bytes, sha256 {}", one.len(), sum(&one));
        assert_eq!(sum(&one), sum(&two), "{compress}: two builds differ");
    }
    Ok(())
}

#[test]
fn another_architecture_or_a_dynamic_berth_is_refused_naming_why() -> Result<()> {
    let host = host_arch();
    let i = inputs(host)?;
    let other = if host.0 == "amd64" {
        ("arm64", 183)
    } else {
        ("amd64", 62)
    };
    std::fs::write(&i.berth, fake_elf(other.1, None))?;
    let err = refused(i.mkimage("x.img", &[]));
    assert!(
        err.contains(&format!("built for {}", other.0))
            && err.contains(&format!("is for {}", host.0)),
        "{err}"
    );
    std::fs::write(
        &i.berth,
        fake_elf(host.1, Some("/lib64/ld-linux-x86-64.so.2")),
    )?;
    let err = refused(i.mkimage("x.img", &[]));
    assert!(
        err.contains("dynamically linked") && err.contains("ld-linux"),
        "{err}"
    );
    // Without --berth, this (dynamic) test build is the one refused.
    let out = berth(&["mkimage", "--config"])
        .arg(i.env.config())
        .arg("--kernel")
        .arg(&i.kernel)
        .args(["-o", "/nonexistent/x.img"])
        .output()?;
    let err = refused(out);
    assert!(
        err.contains("this berth") && err.contains("--berth"),
        "{err}"
    );
    // A module of another machine.
    std::fs::write(&i.berth, fake_elf(host.1, None))?;
    std::fs::write(
        i.modules.join("kernel/fs/overlayfs/overlay.ko"),
        fake_elf(other.1, None),
    )?;
    let err = refused(i.mkimage("x.img", &[]));
    assert!(
        err.contains("overlay.ko is for") && err.contains(other.0),
        "{err}"
    );
    Ok(())
}

#[test]
fn an_image_of_another_architecture_is_refused_naming_both() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let host = host_arch();
    let other = if host.0 == "amd64" {
        ("arm64", 183)
    } else {
        ("amd64", 62)
    };
    let i = inputs(other)?;
    let layout = demo_layout(&i.env)?;
    let err = refused(i.mkimage("x.img", &["--image", layout.to_str().context("path")?]));
    assert!(
        err.contains(&format!("is for linux/{}", host.0))
            && err.contains(&format!("kernel is linux/{}", other.0)),
        "{err}"
    );
    Ok(())
}

#[test]
fn missing_modules_images_kernels_and_bad_specs_are_named() -> Result<()> {
    let i = inputs(host_arch())?;
    let err = refused(i.mkimage("x.img", &["--add-module", "no_such_driver"]));
    assert!(
        err.contains("module no_such_driver is neither in modules.dep nor built in"),
        "{err}"
    );
    std::fs::write(
        i.modules.join("modules.dep"),
        "kernel/fs/overlayfs/overlay.ko: kernel/gone.ko\n",
    )?;
    let err = refused(i.mkimage("x.img", &[]));
    assert!(err.contains("module gone (needed by overlay)"), "{err}");
    std::fs::remove_file(i.modules.join("modules.dep"))?;
    let err = refused(i.mkimage("x.img", &[]));
    assert!(
        err.contains("modules.dep") && err.contains("depmod"),
        "{err}"
    );
    fake_modules(i.env.dir.path(), host_arch().1)?;
    let err = refused(i.mkimage("x.img", &["--image", "localhost/not/here:1"]));
    assert!(
        err.contains("localhost/not/here:1") && err.contains("not an image in the store"),
        "{err}"
    );
    let err = refused(
        berth(&[
            "mkimage",
            "--config",
            "/nonexistent",
            "--kernel",
            "/nonexistent/vmlinuz",
            "-o",
            "x",
        ])
        .output()?,
    );
    assert!(err.contains("/nonexistent/vmlinuz"), "{err}");
    let err = refused(i.mkimage("x.img", &["--format", "floppy"]));
    assert!(err.contains("neither initramfs nor disk"), "{err}");
    let err = refused(i.mkimage("x.img", &["--format", "disk", "--compress", "gzip"]));
    assert!(
        err.contains("--compress is for --format initramfs"),
        "{err}"
    );
    i.env
        .write_spec("bad", "{\"image\": \"x\",\n \"restart\": 7}")?;
    let err = refused(i.mkimage("x.img", &[]));
    assert!(err.contains("bad.json:2:"), "{err}");
    assert!(!i.env.dir.path().join("x.img").exists());
    Ok(())
}
