//! `berth mkimage` end to end: the demo config (configs/demo) and the
//! busybox image built into an initramfs (zstd, the default) for Debian's
//! cloud kernel, booted under qemu as tests/vm_boot.rs does: the overlay
//! module from the kernel's own tree loads, the demo's containers run and
//! an API `shutdown` from a container powers the machine off. Reports the
//! image's size and the time to build it. Skips (saying why) without
//! qemu, the kernel or cpio, unless BERTH_TEST_REQUIRE_VM=1.

mod common;

use anyhow::Result;
use common::vm::{boot_initrd, vm_kernel};
use common::vm_image::{mkimage_initrd, powered_off_cleanly};
use common::*;
use serde_json::json;

/// The demo config (configs/demo: `hello` runs and is restarted, `web`
/// serves) plus a container that waits for both and asks for a shutdown.
fn demo_config(env: &TestEnv) -> Result<()> {
    for spec in ["hello", "web"] {
        let from = repo_path(&format!("configs/demo/containers/{spec}.json"));
        std::fs::copy(from, env.config().join(format!("containers/{spec}.json")))?;
    }
    let settings = json!({
        "hostname": "berth-vm",
        "modules": ["/lib/modules/overlay.ko"],
        "console_logs": true,
        "shutdown": {"on_fatal": "poweroff", "fatal_delay_secs": 1, "kill_grace_secs": 2}
    });
    std::fs::write(env.config().join("berth.json"), settings.to_string())?;
    let script = "for i in $(seq 300); do /berth logs hello 2>/dev/null | grep -q 'hello from berth' && \
        /berth ps | grep -q '^web  *running' && break; sleep 0.1; done; /berth ps > /console; /berth shutdown";
    let ctl = json!({"image": DEMO_REF, "command": ["sh", "-c", script], "mounts": [
        {"type": "bind", "source": "/init", "target": "/berth", "read_only": true},
        {"type": "bind", "source": "/run/berth", "target": "/run/berth"},
        {"type": "bind", "source": "/dev/console", "target": "/console", "options": ["dev"]}
    ]});
    env.write_spec("ctl", &ctl.to_string())
}

#[test]
fn the_demo_config_boots_from_its_image_runs_and_powers_off() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    demo_config(&env)?;
    let initrd = mkimage_initrd(&env, &kernel, &[])?;
    let console = boot_initrd(&kernel, &initrd, "", &[], |_| {})?;
    for line in [
        "kernel/fs/overlayfs/overlay.ko loaded",
        "hello from berth",
        "container web: started",
        "shutdown requested through the API, then poweroff",
        "berth: powering off",
        "reboot: Power down",
    ] {
        assert!(
            console.contains(line),
            "no {line:?} on the console:\n{console}"
        );
    }
    powered_off_cleanly(&console)?;
    if let Some(line) = console
        .lines()
        .find(|l| l.contains("first container running"))
    {
        eprintln!("vm: {}", line.trim());
    }
    Ok(())
}
