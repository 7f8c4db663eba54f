//! First-boot configuration from a URL (docs/pid1.md, "First-boot
//! configuration"): an initramfs built by `berth mkimage` with a baked
//! config that has `host_network` (DHCP) and the virtio NIC's modules,
//! booted under qemu with `berth.config=http://10.0.2.100/config.tar`.
//! The NIC is on qemu's user network in isolated mode (`restrict=on`:
//! nothing leaves qemu but a `guestfwd` of 10.0.2.100:80, through socat,
//! to an HTTP server this test runs on the host's loopback):
//! - the server answers with a tarball of a config holding another
//!   container: that container runs (`config.first_boot_applied`);
//! - a second boot with the server answering 500: berth tries again, then
//!   refuses the source and the baked config runs.
//!
//! Skips (saying why) without qemu, the kernel, cpio or socat, unless
//! BERTH_TEST_REQUIRE_VM=1. Every file lives in the test's temporary
//! directory, removed even when the test fails.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use common::vm::{boot_initrd, vm_kernel};
use common::vm_image::{mkimage_initrd, powered_off_cleanly};
use common::*;
use serde_json::{Value, json};

const URL: &str = "http://10.0.2.100/config.tar";

/// A container that waits until the journal holds `kind`, then says
/// `message` on the console and powers the machine off.
fn waits_then_shuts_down(kind: &str, message: &str) -> Value {
    let script = format!(
        "for i in $(seq 600); do /berth events --kind {kind} 2>/dev/null | grep -q {kind} && break; \
         sleep 0.2; done; echo '{message}' > /console; /berth shutdown"
    );
    json!({"image": DEMO_REF, "command": ["sh", "-c", script], "stop_timeout": 1,
        "update": {"stable_for": 1}, "mounts": [
        {"type": "bind", "source": "/init", "target": "/berth", "read_only": true},
        {"type": "bind", "source": "/run/berth", "target": "/run/berth"},
        {"type": "bind", "source": "/dev/console", "target": "/console", "options": ["dev"]}
    ]})
}

fn settings(host_network: bool) -> Value {
    let mut s = json!({
        "console_logs": true,
        "shutdown": {"on_fatal": "poweroff", "fatal_delay_secs": 1, "kill_grace_secs": 2}
    });
    if host_network {
        s["host_network"] = json!({});
    }
    s
}

/// The config the server hands out, as the tarball `berth apply` takes.
fn served_tarball(env: &TestEnv) -> Result<Vec<u8>> {
    let dir = env.dir.path().join("served");
    std::fs::create_dir_all(dir.join("containers"))?;
    std::fs::write(dir.join("berth.json"), settings(true).to_string())?;
    let spec = waits_then_shuts_down("config.first_boot_applied", "url config running");
    std::fs::write(dir.join("containers/fromurl.json"), spec.to_string())?;
    let tarball = env.dir.path().join("config.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    )?;
    Ok(std::fs::read(tarball)?)
}

/// Answers every request with `status` (and the tarball when 200).
fn serve(listener: TcpListener, status: Arc<AtomicU16>, body: Vec<u8>, hits: Arc<AtomicUsize>) {
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        if read_request(&mut s).is_none() {
            continue;
        }
        hits.fetch_add(1, Ordering::SeqCst);
        let code = status.load(Ordering::SeqCst);
        let (reason, body): (&str, &[u8]) = match code {
            200 => ("OK", &body[..]),
            _ => ("Internal Server Error", &b"no config today\n"[..]),
        };
        let head = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(body);
    }
}

fn read_request(s: &mut TcpStream) -> Option<()> {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).ok().filter(|n| *n > 0)?;
        got.extend_from_slice(&buf[..n]);
        if got.len() > 64 << 10 {
            return None;
        }
    }
    Some(())
}

fn build_initrd(env: &TestEnv, kernel: &Path) -> Result<PathBuf> {
    std::fs::write(env.config().join("berth.json"), settings(true).to_string())?;
    let baked = waits_then_shuts_down("config.first_boot_refused", "baked config running");
    env.write_spec("baked", &baked.to_string())?;
    mkimage_initrd(
        env,
        kernel,
        &[
            "--compress",
            "none",
            "--add-module",
            "virtio_pci",
            "--add-module",
            "virtio_net",
        ],
    )
}

fn boot(kernel: &Path, initrd: &Path, port: u16) -> Result<String> {
    let netdev = format!(
        "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:{port}"
    );
    let args = [
        "-netdev",
        netdev.as_str(),
        "-device",
        "virtio-net-pci,netdev=n0",
    ];
    let console = boot_initrd(
        kernel,
        initrd,
        &format!("berth.config={URL}"),
        &args,
        |_| {},
    )?;
    powered_off_cleanly(&console)?;
    console
        .lines()
        .filter(|l| l.contains("first-boot") || l.contains("network up"))
        .for_each(|l| eprintln!("vm: {l}"));
    Ok(console)
}

#[test]
fn a_url_config_replaces_the_baked_one_and_a_failing_server_leaves_it() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let socat = Command::new("socat").arg("-V").output();
    if !socat.is_ok_and(|o| o.status.success()) {
        if std::env::var("BERTH_TEST_REQUIRE_VM").as_deref() == Ok("1") {
            panic!("socat is missing and BERTH_TEST_REQUIRE_VM=1 (scripts/setup.sh --test)");
        }
        eprintln!("skipped: socat is missing (scripts/setup.sh --test installs it)");
        return Ok(());
    }
    let env = TestEnv::new()?;
    let body = served_tarball(&env)?;
    let initrd = build_initrd(&env, &kernel)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let status = Arc::new(AtomicU16::new(200));
    let hits = Arc::new(AtomicUsize::new(0));
    {
        let (status, hits) = (status.clone(), hits.clone());
        std::thread::spawn(move || serve(listener, status, body, hits));
    }

    let console = boot(&kernel, &initrd, port)?;
    let applied = "first-boot config from http://10.0.2.100/config.tar applied";
    for line in [applied, "container fromurl: started", "url config running"] {
        assert!(
            console.contains(line),
            "no {line:?} on the console:\n{console}"
        );
    }
    assert!(!console.contains("baked config running"), "{console}");
    assert!(hits.load(Ordering::SeqCst) >= 1);

    status.store(500, Ordering::SeqCst);
    hits.store(0, Ordering::SeqCst);
    let console = boot(&kernel, &initrd, port)?;
    let refused = "first-boot config from http://10.0.2.100/config.tar refused";
    for line in [refused, "HTTP 500 (4 tries)", "baked config running"] {
        assert!(
            console.contains(line),
            "no {line:?} on the console:\n{console}"
        );
    }
    assert!(!console.contains("url config running"), "{console}");
    let tries = hits.load(Ordering::SeqCst);
    assert!(tries >= 2, "the 500 was not tried again ({tries} requests)");
    eprintln!("a server answering 500 was asked {tries} times before the refusal");
    Ok(())
}
