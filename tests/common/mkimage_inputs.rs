//! What `berth mkimage` tests build from (tests/mkimage.rs,
//! tests/mkimage_disk.rs): a fake kernel, berth and module tree for an
//! architecture, a config with the demo's containers, a CA bundle — so a
//! build runs without qemu or the host's kernel.

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::Result;
use serde_json::json;

use super::{TestEnv, berth, repo_path};

/// This machine's architecture: its OCI name and ELF machine.
pub fn host_arch() -> (&'static str, u16) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", 183),
        _ => ("amd64", 62),
    }
}

/// A 64-bit ELF header for `machine`, dynamic when `interp` is given.
pub fn fake_elf(machine: u16, interp: Option<&str>) -> Vec<u8> {
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

pub const RELEASE: &str = "6.1.0-fake-test";

/// A kernel image's boot header for `arch` (an x86 bzImage naming its
/// release, or an arm64 Image).
pub fn fake_kernel(dir: &Path, arch: &str) -> Result<PathBuf> {
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
pub fn fake_modules(dir: &Path, machine: u16) -> Result<PathBuf> {
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
pub struct Inputs {
    pub env: TestEnv,
    pub kernel: PathBuf,
    pub berth: PathBuf,
    pub modules: PathBuf,
    pub ca: PathBuf,
}

pub fn inputs(arch: (&str, u16)) -> Result<Inputs> {
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
    pub fn mkimage(&self, out: &str, extra: &[&str]) -> Output {
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

    pub fn read(&self, out: &str) -> Vec<u8> {
        std::fs::read(self.env.dir.path().join(out)).expect("the image")
    }
}

pub fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "mkimage failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn refused(out: Output) -> String {
    assert!(!out.status.success(), "mkimage succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
