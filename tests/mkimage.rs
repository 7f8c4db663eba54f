//! `berth mkimage`: what goes in an initramfs (berth as /init, the config
//! with the modules' berth.json, the modules the config needs in load
//! order and uncompressed, the CA bundle, the preloaded store with its
//! owners), that two builds give the same bytes, that a binary, module or
//! image of another architecture and a dynamic berth are refused naming
//! why, that missing modules, images and kernels are named — on a fake
//! kernel and module tree, so all of it runs without qemu. `--format
//! disk` too: its GPT read back (signature, CRC32s, backup header, the
//! two partitions), each ext4 checked with e2fsck and read with debugfs,
//! two builds byte for byte the same, mkfs.ext4 missing named.
//! tests/vm_mkimage.rs and tests/vm_mkimage_disk.rs boot what they build.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{Context, Result};
use common::*;
use serde_json::{Value, json};
use sha2::Digest as _;

/// This machine's architecture: its OCI name and ELF machine.
fn host_arch() -> (&'static str, u16) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", 183),
        _ => ("amd64", 62),
    }
}

/// A 64-bit ELF header for `machine`, dynamic when `interp` is given.
fn fake_elf(machine: u16, interp: Option<&str>) -> Vec<u8> {
    let mut b = vec![0u8; 0x200];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&1u16.to_le_bytes());
    b[64..68].copy_from_slice(&(if interp.is_some() { 3u32 } else { 1 }).to_le_bytes());
    if let Some(i) = interp {
        b[72..80].copy_from_slice(&0x100u64.to_le_bytes());
        b[96..104].copy_from_slice(&(i.len() as u64 + 1).to_le_bytes());
        b[0x100..0x100 + i.len()].copy_from_slice(i.as_bytes());
    }
    b
}

const RELEASE: &str = "6.1.0-fake-test";

/// A kernel image's boot header for `arch` (an x86 bzImage naming its
/// release, or an arm64 Image).
fn fake_kernel(dir: &Path, arch: &str) -> Result<PathBuf> {
    let mut b = vec![0u8; 0x1000];
    if arch == "amd64" {
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        b[0x236] = 1;
        b[0x20e..0x210].copy_from_slice(&0x300u16.to_le_bytes());
        let version = format!("{RELEASE} (test) #1 SMP");
        b[0x500..0x500 + version.len()].copy_from_slice(version.as_bytes());
    } else {
        b[0x38..0x3c].copy_from_slice(b"ARM\x64");
    }
    let path = dir.join(format!("vmlinuz-{RELEASE}-{arch}"));
    std::fs::write(&path, b)?;
    Ok(path)
}

/// A module tree: overlay, softdog (needs watchdog), virtio_blk (a
/// compressed module needing virtio, which needs virtio_ring), ext4 built
/// in, and a config drive's vfat (needs fat), nls_cp437, nls_ascii and
/// isofs (needs cdrom).
fn fake_modules(dir: &Path, machine: u16) -> Result<PathBuf> {
    let tree = dir.join(format!("modules/{RELEASE}"));
    let files = [
        ("kernel/fs/overlayfs/overlay.ko", ""),
        (
            "kernel/drivers/watchdog/softdog.ko",
            "kernel/drivers/watchdog/watchdog.ko",
        ),
        ("kernel/drivers/watchdog/watchdog.ko", ""),
        (
            "kernel/drivers/block/virtio_blk.ko.zst",
            "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        ),
        (
            "kernel/drivers/virtio/virtio.ko",
            "kernel/drivers/virtio/virtio_ring.ko",
        ),
        ("kernel/drivers/virtio/virtio_ring.ko", ""),
        ("kernel/fs/fat/vfat.ko", "kernel/fs/fat/fat.ko"),
        ("kernel/fs/fat/fat.ko", ""),
        ("kernel/fs/nls/nls_cp437.ko", ""),
        ("kernel/fs/nls/nls_ascii.ko", ""),
        ("kernel/fs/isofs/isofs.ko", "kernel/drivers/cdrom/cdrom.ko"),
        ("kernel/drivers/cdrom/cdrom.ko", ""),
    ];
    let mut dep = String::new();
    for (path, deps) in files {
        let file = tree.join(path);
        std::fs::create_dir_all(file.parent().unwrap())?;
        let elf = fake_elf(machine, None);
        match path.ends_with(".zst") {
            true => std::fs::write(&file, zstd::encode_all(elf.as_slice(), 3)?)?,
            false => std::fs::write(&file, elf)?,
        }
        dep.push_str(&format!("{path}: {deps}\n"));
    }
    std::fs::write(tree.join("modules.dep"), dep)?;
    std::fs::write(tree.join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n")?;
    Ok(tree)
}

/// Everything a build reads, made for `arch` (berth, kernel, modules).
struct Inputs {
    env: TestEnv,
    kernel: PathBuf,
    berth: PathBuf,
    modules: PathBuf,
    ca: PathBuf,
}

fn inputs(arch: (&str, u16)) -> Result<Inputs> {
    let env = TestEnv::new()?;
    for spec in ["hello", "web"] {
        let from = repo_path(&format!("configs/demo/containers/{spec}.json"));
        std::fs::copy(from, env.config().join(format!("containers/{spec}.json")))?;
    }
    let settings = json!({"modules": ["/lib/modules/overlay.ko"], "watchdog": {"timeout": 30}});
    std::fs::write(env.config().join("berth.json"), settings.to_string())?;
    let dir = env.dir.path().to_path_buf();
    let berth = dir.join("berth-static");
    std::fs::write(&berth, fake_elf(arch.1, None))?;
    let ca = dir.join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )?;
    Ok(Inputs {
        kernel: fake_kernel(&dir, arch.0)?,
        modules: fake_modules(&dir, arch.1)?,
        berth,
        ca,
        env,
    })
}

impl Inputs {
    fn mkimage(&self, out: &str, extra: &[&str]) -> Output {
        let dir = self.env.dir.path();
        let mut cmd = berth(&["mkimage", "--config"]);
        cmd.arg(self.env.config())
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--berth")
            .arg(&self.berth)
            .arg("--modules")
            .arg(&self.modules)
            .arg("--ca-bundle")
            .arg(&self.ca)
            .arg("--root")
            .arg(dir.join("host-store"))
            .arg("-o")
            .arg(dir.join(out))
            .args(extra)
            .env_remove("SOURCE_DATE_EPOCH");
        cmd.output().expect("run berth mkimage")
    }

    fn read(&self, out: &str) -> Vec<u8> {
        std::fs::read(self.env.dir.path().join(out)).expect("the image")
    }
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "mkimage failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn refused(out: Output) -> String {
    assert!(!out.status.success(), "mkimage succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

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

/// A GPT read back as the spec says, independently of berth's own reader:
/// the primary header, its entries, the backup header at the last sector
/// pointing back at LBA 1, both with valid CRC32s; the used entries'
/// (name, first LBA, last LBA).
fn gpt_partitions(disk: &[u8]) -> Vec<(String, u64, u64)> {
    assert_eq!(disk.len() % 512, 0);
    assert_eq!(
        (disk[450], &disk[510..512]),
        (0xEE, &[0x55u8, 0xAA][..]),
        "protective MBR"
    );
    let sectors = (disk.len() / 512) as u64;
    let primary = gpt_header(disk, 1);
    assert_eq!(
        le64(primary, 32),
        sectors - 1,
        "backup header at the last sector"
    );
    let backup = gpt_header(disk, sectors - 1);
    assert_eq!(le64(backup, 32), 1);
    assert_eq!(primary[56..72], backup[56..72], "one disk GUID");
    disk[1024..1024 + 128 * 128]
        .chunks(128)
        .filter(|e| e[..16] != [0; 16])
        .map(|e| {
            let units: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            (String::from_utf16_lossy(&units), le64(e, 32), le64(e, 40))
        })
        .collect()
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The GPT header at `lba`, its own CRC and its entries' checked.
fn gpt_header(disk: &[u8], lba: u64) -> &[u8] {
    let h = &disk[(lba * 512) as usize..(lba * 512 + 512) as usize];
    assert_eq!(&h[..8], b"EFI PART", "signature at LBA {lba}");
    let mut zeroed = h[..92].to_vec();
    zeroed[16..20].fill(0);
    assert_eq!(
        crc32fast::hash(&zeroed),
        le32(h, 16),
        "header CRC at LBA {lba}"
    );
    assert_eq!(le64(h, 24), lba);
    let (entries, n, size) = (
        le64(h, 72) as usize,
        le32(h, 80) as usize,
        le32(h, 84) as usize,
    );
    let array = &disk[entries * 512..entries * 512 + n * size];
    assert_eq!(
        crc32fast::hash(array),
        le32(h, 88),
        "entries CRC of LBA {lba}"
    );
    h
}

/// `debugfs -R "cat PATH"` of the ext4 in `fs`.
fn debugfs_cat(fs: &Path, path: &str) -> Vec<u8> {
    let out = std::process::Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(fs)
        .output()
        .expect("debugfs");
    out.stdout
}

#[test]
fn a_disk_image_is_a_valid_gpt_of_two_ext4_partitions_and_the_same_bytes_twice() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let i = inputs(host_arch())?;
    let layout = demo_layout(&i.env)?;
    let layout = layout.to_str().context("path")?;
    let extra = ["--format", "disk", "--image", layout];
    let out = ok(i.mkimage("one.img", &extra));
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    // Another time, other ctimes and inode order in the staging: the
    // same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(i.mkimage("two.img", &extra));
    let (one, two) = (i.read("one.img"), i.read("two.img"));
    assert!(one == two, "two builds of the disk image differ");
    let parts = gpt_partitions(&one);
    let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["berth-root", "berth-data"]);
    assert_eq!(parts[0].1, 2048, "aligned to 1 MiB");
    assert_eq!(parts[1].1, parts[0].2 + 1, "data right after the root");
    assert!(
        (parts[1].2 - parts[1].1 + 1) * 512 >= 64 << 20,
        "64 MiB of data at least"
    );
    let dir = i.env.dir.path();
    for (name, first, last) in &parts {
        let fs = dir.join(format!("{name}.ext4"));
        std::fs::write(
            &fs,
            &one[(*first * 512) as usize..((*last + 1) * 512) as usize],
        )?;
        let fsck = std::process::Command::new("e2fsck")
            .arg("-fn")
            .arg(&fs)
            .output()?;
        assert!(
            fsck.status.success(),
            "e2fsck {name}: {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
    }
    let root = dir.join("berth-root.ext4");
    assert_eq!(debugfs_cat(&root, "/init"), std::fs::read(&i.berth)?);
    let settings: Value = serde_json::from_slice(&debugfs_cat(&root, "/etc/berth/berth.json"))?;
    assert!(
        settings["modules"][0]
            .as_str()
            .unwrap_or_default()
            .ends_with("overlay.ko")
    );
    let refs = debugfs_cat(&dir.join("berth-data.ext4"), "/images/refs.json");
    assert!(
        String::from_utf8_lossy(&refs).contains(DEMO_REF),
        "the store on the data partition"
    );
    Ok(())
}

#[test]
fn a_disk_image_without_mkfs_ext4_is_refused_naming_e2fsprogs() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let i = inputs(host_arch())?;
    let empty = i.env.dir.path().join("empty-path");
    std::fs::create_dir(&empty)?;
    let mut cmd = berth(&["mkimage", "--format", "disk", "--config"]);
    cmd.arg(i.env.config())
        .arg("--kernel")
        .arg(&i.kernel)
        .arg("--berth")
        .arg(&i.berth)
        .arg("--modules")
        .arg(&i.modules)
        .arg("--ca-bundle")
        .arg(&i.ca)
        .arg("-o")
        .arg(i.env.dir.path().join("x.img"))
        .env("PATH", &empty);
    let err = refused(cmd.output()?);
    assert!(
        err.contains("mkfs.ext4 not found") && err.contains("e2fsprogs"),
        "{err}"
    );
    assert!(!i.env.dir.path().join("x.img").exists());
    let left: Vec<_> = std::fs::read_dir(i.env.dir.path())?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("mkimage"))
        .collect();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
    Ok(())
}
