//! berth as the init of a real (emulated) machine: a static berth is
//! /init of an initramfs (scripts/vm/build-initramfs.sh) booted by qemu
//! with Debian's cloud kernel (scripts/vm/boot.sh: TCG, serial console).
//! Everything is asserted from the serial console: the early mounts, the
//! overlay module, cgroup v2 controllers, containers started, a
//! container's output (read back through the API from inside the VM), a
//! cgroup v2 memory limit enforced (an OOM kill), and a clean ending:
//! - an API `shutdown` (a container runs the static berth client) powers off;
//! - SIGTERM to PID 1 reboots. It must come from the machine's own PID
//!   namespace, so the kernel starts scripts/vm/sigterm-init.sh
//!   (`rdinit=/test-init`), which forks a shell that will run `kill -TERM
//!   1` and execs /init: berth is PID 1 as ever;
//! - Ctrl-Alt-Del (qemu's monitor presses it) reaches berth as SIGINT,
//!   because berth routed it to init with reboot(2) CAD_OFF, and reboots.
//!
//! With -no-reboot qemu exits 0 on a power-off, a reboot and a kernel panic
//! (panic=-1) alike, so the verdict is the kernel's own last line
//! ("reboot: Power down" / "reboot: Restarting system") and no panic.
//! Skips (saying why) without qemu, the kernel or cpio, unless
//! BERTH_TEST_REQUIRE_VM=1, as scripts/test.sh sets it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::*;
use serde_json::{Value, json};

const BOOT_LIMIT: Duration = Duration::from_secs(60);

/// The newest Debian cloud kernel, when qemu, the kernel and cpio are here.
fn vm_kernel() -> Option<PathBuf> {
    let on_path = |p: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.to_string_lossy().ends_with("-cloud-amd64")
                && p.to_string_lossy().contains("vmlinuz-")
        })
        .collect();
    kernels.sort();
    let missing = match (
        on_path("qemu-system-x86_64"),
        on_path("cpio"),
        kernels.last(),
    ) {
        (true, true, Some(k)) => return Some(k.clone()),
        (false, _, _) => "qemu-system-x86_64",
        (_, false, _) => "cpio",
        (_, _, None) => "/boot/vmlinuz-*-cloud-amd64",
    };
    if std::env::var("BERTH_TEST_REQUIRE_VM").as_deref() == Ok("1") {
        panic!("{missing} is missing and BERTH_TEST_REQUIRE_VM=1 (run scripts/setup.sh --test)");
    }
    eprintln!("skipped: {missing} is missing (scripts/setup.sh --test installs it)");
    None
}

/// A static berth for /init, built once per run without debug info in its
/// own target directory (quicker to rebuild than the LTO release build,
/// same code). BERTH_VM_BINARY boots a given static binary instead.
fn static_berth() -> Result<PathBuf> {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = BIN.get() {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("BERTH_VM_BINARY") {
        return Ok(BIN.get_or_init(|| PathBuf::from(p)).clone());
    }
    let host = "x86_64-unknown-linux-gnu";
    let target_dir = repo_path("target/vm-static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_ok(
        Command::new(cargo)
            .args(["build", "--quiet", "--target", host, "--manifest-path"])
            .arg(repo_path("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .env(
                "RUSTFLAGS",
                "-C target-feature=+crt-static -C relocation-model=static",
            )
            .env("CARGO_PROFILE_DEV_DEBUG", "0"),
    )?;
    Ok(BIN
        .get_or_init(|| target_dir.join(host).join("debug/berth"))
        .clone())
}

/// One machine: its config directory and initramfs.
struct Machine {
    env: TestEnv,
    kernel: PathBuf,
}

impl Machine {
    fn new(kernel: &Path, containers: &[(&str, Value)]) -> Result<Machine> {
        let env = TestEnv::new()?;
        let settings = json!({
            "hostname": "berth-vm",
            "modules": ["/lib/modules/overlay.ko"],
            "console_logs": true,
            "shutdown": {"on_fatal": "poweroff", "fatal_delay_secs": 1, "kill_grace_secs": 2}
        });
        std::fs::write(env.config().join("berth.json"), settings.to_string())?;
        for (name, spec) in containers {
            env.write_spec(name, &spec.to_string())?;
        }
        run_ok(berth(&["check"]).arg(env.config()))?;
        Ok(Machine {
            env,
            kernel: kernel.to_path_buf(),
        })
    }

    fn initramfs(&self, extra: Option<&Path>) -> Result<PathBuf> {
        let out = self.env.dir.path().join("initrd.cpio");
        let layout = demo_layout(&self.env)?;
        let mut cmd = Command::new("bash");
        cmd.arg(repo_path("scripts/vm/build-initramfs.sh"))
            .arg("--berth")
            .arg(static_berth()?)
            .arg("--config")
            .arg(self.env.config())
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--image")
            .arg(layout)
            .arg("--out")
            .arg(&out);
        if let Some(dir) = extra {
            cmd.arg("--extra").arg(dir);
        }
        run_ok(cmd)?;
        Ok(out)
    }

    fn boot(&self, qemu_args: &[&str], on_line: impl FnMut(&str)) -> Result<String> {
        self.boot_with(Path::new(""), "", qemu_args, on_line)
    }

    /// Boots until qemu exits; `on_line` sees each console line as it
    /// comes (to press keys at the right moment). Returns the console.
    /// `extra` (unless empty) is copied over the initramfs's root; `append`
    /// goes on the kernel command line.
    fn boot_with(
        &self,
        extra: &Path,
        append: &str,
        qemu_args: &[&str],
        on_line: impl FnMut(&str),
    ) -> Result<String> {
        // One VM at a time: TCG keeps a core busy, and VMs side by side
        // slow each other down about linearly (docs/pid1.md).
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let initrd = self.initramfs((!extra.as_os_str().is_empty()).then_some(extra))?;
        let started = Instant::now();
        let mut qemu = Command::new("bash")
            .arg(repo_path("scripts/vm/boot.sh"))
            .arg(&initrd)
            .args(qemu_args)
            .env("KERNEL", &self.kernel)
            .env("APPEND", append)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let console = read_console(&mut qemu, started, on_line)?;
        let out = qemu.wait_with_output()?;
        let took = started.elapsed();
        eprintln!(
            "vm boot: {:.1} s from qemu start to exit ({})",
            took.as_secs_f64(),
            out.status
        );
        if !out.status.success() {
            bail!(
                "qemu: {} ({}); console:\n{console}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(console)
    }
}

/// The serial console, line by line as it comes, until qemu closes it;
/// qemu is killed past BOOT_LIMIT.
fn read_console(
    qemu: &mut Child,
    started: Instant,
    mut on_line: impl FnMut(&str),
) -> Result<String> {
    let stdout = qemu.stdout.take().context("qemu stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut console = String::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                on_line(&line);
                console.push_str(&line);
                console.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(console),
            Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() > BOOT_LIMIT => {
                let _ = qemu.kill();
                let _ = qemu.wait();
                bail!("the VM ran longer than {BOOT_LIMIT:?}; console:\n{console}");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

fn assert_lines(console: &str, lines: &[&str]) {
    for l in lines {
        assert!(console.contains(l), "no {l:?} on the console:\n{console}");
    }
    for bad in [
        "Kernel panic",
        "berth: FATAL",
        "berth: PANIC",
        "Attempted to kill init",
    ] {
        assert!(!console.contains(bad), "{bad:?} on the console:\n{console}");
    }
}

/// "first container running 2.31 s after the kernel started" -> 2.31
fn boot_to_first_container(console: &str) -> Option<f64> {
    let line = console
        .lines()
        .find(|l| l.contains("first container running"))?;
    line.split_whitespace()
        .skip_while(|w| *w != "running")
        .nth(1)?
        .parse()
        .ok()
}

fn demo(command: &[&str]) -> Value {
    json!({"image": DEMO_REF, "command": command})
}

/// Ignores SIGTERM (PID 1 of its namespace without a handler), so the
/// shutdown shows the stop timeout; a short one keeps the boot short.
fn idle() -> Value {
    let mut spec = demo(&["tail", "-f", "/dev/null"]);
    spec["stop_timeout"] = json!(1);
    spec
}

#[test]
fn boots_runs_containers_and_powers_off_on_api_shutdown() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    // Waits for the OOM kill, copies hello's log (through the API) to the
    // console, then asks for the shutdown with the static berth client.
    let ctl_script = "for i in $(seq 200); do /berth ps --json | grep -q oom_killed && break; sleep 0.1; done; \
                      /berth logs hello > /console; /berth shutdown";
    let mut ctl = demo(&["sh", "-c", ctl_script]);
    ctl["mounts"] = json!([
        {"type": "bind", "source": "/init", "target": "/berth", "read_only": true},
        {"type": "bind", "source": "/run/berth", "target": "/run/berth"},
        {"type": "bind", "source": "/dev/console", "target": "/console", "options": ["dev"]}
    ]);
    let mut oom = demo(&["tail", "/dev/zero"]);
    oom["resources"] = json!({"memory": "8m"});
    let machine = Machine::new(
        &kernel,
        &[
            (
                "hello",
                demo(&["sh", "-c", "echo hello from a container on berth"]),
            ),
            ("oom", oom),
            ("ctl", ctl),
        ],
    )?;
    let console = machine.boot(&[], |_| {})?;
    assert_lines(
        &console,
        &[
            "berth: mounted /sys /dev /dev/pts /dev/shm /run",
            "berth: module /lib/modules/overlay.ko loaded",
            "berth: cgroup v2 controllers: cpuset cpu io memory",
            "container hello: started",
            "container oom: started",
            "hello from a container on berth",
            "container oom: exited with code 137 (oom_killed)",
            "shutdown requested through the API, then poweroff",
            "berth: all containers stopped",
            "berth: powering off",
            "reboot: Power down",
        ],
    );
    let first = boot_to_first_container(&console).context("no boot time line")?;
    eprintln!("vm boot: first container running {first:.2} s after the kernel started");
    assert!(first < 10.0, "{first} s to the first container:\n{console}");
    Ok(())
}

#[test]
fn sigterm_to_pid1_reboots() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let machine = Machine::new(&kernel, &[("idle", idle())])?;
    let extra = machine.env.dir.path().join("extra");
    std::fs::create_dir_all(extra.join("bin"))?;
    std::fs::copy("/bin/busybox", extra.join("bin/busybox"))?;
    std::fs::copy(
        repo_path("scripts/vm/sigterm-init.sh"),
        extra.join("test-init"),
    )?;
    std::fs::set_permissions(extra.join("test-init"), PermissionsExt::from_mode(0o755))?;
    // For the background shell's stdin; berth's devtmpfs covers it later.
    std::fs::create_dir_all(extra.join("dev"))?;
    let null = extra.join("dev/null");
    run_ok(
        Command::new("mknod")
            .args(["-m", "666"])
            .arg(&null)
            .args(["c", "1", "3"]),
    )?;
    let console = machine.boot_with(&extra, "rdinit=/test-init", &[], |_| {})?;
    assert_lines(
        &console,
        &[
            "container idle: started",
            "test-init: kill -TERM 1",
            "SIGTERM: shutting down, then reboot",
            "container idle: stop timeout, sending SIGKILL",
            "berth: rebooting",
            "reboot: Restarting system",
        ],
    );
    Ok(())
}

#[test]
fn ctrl_alt_del_reaches_berth_as_sigint_and_reboots() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let machine = Machine::new(&kernel, &[("idle", idle())])?;
    let monitor = machine.env.dir.path().join("monitor.sock");
    let monitor_arg = format!("unix:{},server=on,wait=off", monitor.display());
    // The connection stays open until qemu exits: qemu drops a command
    // whose client has already gone.
    let mut session = None;
    let console = machine.boot(&["-monitor", &monitor_arg], |line| {
        if session.is_none() && line.contains("first container running") {
            let sent = std::os::unix::net::UnixStream::connect(&monitor).and_then(|mut m| {
                m.write_all(b"sendkey ctrl-alt-delete\n")?;
                Ok(m)
            });
            match sent {
                Ok(m) => session = Some(m),
                Err(e) => eprintln!("qemu monitor: {e}"),
            }
        }
    })?;
    assert!(
        session.is_some(),
        "berth never reported a running container:\n{console}"
    );
    assert_lines(
        &console,
        &[
            "SIGINT: shutting down, then reboot",
            "berth: rebooting",
            "reboot: Restarting system",
        ],
    );
    Ok(())
}
