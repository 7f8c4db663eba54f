//! The compatibility image: busybox plus the programs of tests/compat/
//! (ids plain, set-uid root and with cap_net_raw+ep; a static i386
//! program), built once per test binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result};

use super::{TestEnv, busybox_rootfs, make_image, repo_path, run_ok, unique_name};

pub const COMPAT_REF: &str = "localhost/test/compat:latest";

pub fn compat_layout() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build().expect("build the compatibility image"))
}

fn build() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("compat-image"));
    let bin = dir.join("layer/usr/local/bin");
    fs::create_dir_all(&bin)?;
    let ids = bin.join("ids");
    let mut cc = Command::new("cc");
    cc.args(["-static", "-O2", "-o"])
        .arg(&ids)
        .arg(repo_path("tests/compat/ids.c"));
    run_ok(cc).context("build ids (needs gcc and libc6-dev)")?;
    // Copies made by child processes (see write_executable).
    run_ok(
        Command::new("install")
            .args(["-m", "4755"])
            .arg(&ids)
            .arg(bin.join("ids-setuid")),
    )?;
    run_ok(
        Command::new("install")
            .args(["-m", "0755"])
            .arg(&ids)
            .arg(bin.join("ids-fcap")),
    )?;
    run_ok(
        Command::new("setcap")
            .arg("cap_net_raw+ep")
            .arg(bin.join("ids-fcap")),
    )
    .context("setcap (libcap2-bin)")?;
    let object = dir.join("hello32.o");
    let mut asm = Command::new("as");
    asm.arg("--32")
        .arg("-o")
        .arg(&object)
        .arg(repo_path("tests/compat/hello32.S"));
    run_ok(asm).context("assemble hello32 (binutils)")?;
    let mut ld = Command::new("ld");
    ld.args(["-m", "elf_i386", "-o"])
        .arg(bin.join("hello32"))
        .arg(&object);
    run_ok(ld).context("link hello32")?;
    let layout = dir.join("oci");
    make_image(
        "oci",
        COMPAT_REF,
        &layout,
        &[busybox_rootfs(), &dir.join("layer")],
    )?;
    Ok(layout)
}

/// A fresh env with the compatibility image in its store.
pub fn compat_env() -> Result<TestEnv> {
    let env = TestEnv::new()?;
    env.import_layout(compat_layout())?;
    Ok(env)
}
