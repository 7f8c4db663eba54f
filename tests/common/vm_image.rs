//! Images for the VM tests made the way a user makes them (`berth
//! mkimage`), and what every such boot must end with.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};

use super::vm::static_berth;
use super::{TestEnv, berth, demo_layout, run_ok};

/// `berth mkimage` of `env`'s config with the static berth and the demo
/// image, plus `extra` options: the initramfs, in `env`'s directory.
pub fn mkimage_initrd(env: &TestEnv, kernel: &Path, extra: &[&str]) -> Result<PathBuf> {
    let initrd = env.dir.path().join("initrd.img");
    mkimage(env, kernel, &demo_layout(env)?, extra, &initrd)?;
    Ok(initrd)
}

/// `berth mkimage` of `env`'s config with the static berth, the image at
/// `layout` and `extra` options, written to `out`; its parts printed.
pub fn mkimage(
    env: &TestEnv,
    kernel: &Path,
    layout: &Path,
    extra: &[&str],
    out: &Path,
) -> Result<()> {
    let started = Instant::now();
    let made = run_ok(
        berth(&["mkimage"])
            .args(extra)
            .arg("--config")
            .arg(env.config())
            .arg("--kernel")
            .arg(kernel)
            .arg("--berth")
            .arg(static_berth()?)
            .arg("--image")
            .arg(layout)
            .arg("-o")
            .arg(out),
    )?;
    eprintln!(
        "mkimage {}: {:.1} s: {}",
        extra.join(" "),
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&made.stdout).trim()
    );
    Ok(())
}

/// A boot that ended as it should: the machine powered off, and neither
/// the kernel nor berth gave up on the way.
pub fn powered_off_cleanly(console: &str) -> Result<()> {
    for bad in ["Kernel panic", "berth: FATAL", "berth: PANIC"] {
        if console.contains(bad) {
            bail!("{bad:?} on the console:\n{console}");
        }
    }
    if !console.contains("reboot: Power down") {
        bail!("the machine did not power off:\n{console}");
    }
    Ok(())
}
