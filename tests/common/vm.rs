//! A machine for tests/vm_boot.rs: Debian's cloud kernel (when qemu, the
//! kernel and cpio are installed), a static berth built for it, an
//! initramfs with berth as /init (scripts/vm/build-initramfs.sh), and a
//! boot under qemu (scripts/vm/boot.sh) read line by line from the serial
//! console, one VM at a time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{TestEnv, berth, demo_layout, repo_path, run_ok};

pub const BOOT_LIMIT: Duration = Duration::from_secs(60);

/// The newest Debian cloud kernel, when qemu, the kernel and cpio are here.
pub fn vm_kernel() -> Option<PathBuf> {
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
pub fn static_berth() -> Result<PathBuf> {
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
pub struct Machine {
    pub env: TestEnv,
    kernel: PathBuf,
}

impl Machine {
    pub fn new(kernel: &Path, containers: &[(&str, Value)]) -> Result<Machine> {
        Self::with_settings(kernel, containers, json!({}))
    }

    /// `new` with berth.json's fields in `extra` set over the defaults.
    pub fn with_settings(
        kernel: &Path,
        containers: &[(&str, Value)],
        extra: Value,
    ) -> Result<Machine> {
        let env = TestEnv::new()?;
        let mut settings = json!({
            "hostname": "berth-vm",
            "modules": ["/lib/modules/overlay.ko"],
            "console_logs": true,
            "shutdown": {"on_fatal": "poweroff", "fatal_delay_secs": 1, "kill_grace_secs": 2}
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut settings, extra) {
            base.extend(more);
        }
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

    pub fn initramfs(&self, extra: Option<&Path>) -> Result<PathBuf> {
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

    pub fn boot(&self, qemu_args: &[&str], on_line: impl FnMut(&str)) -> Result<String> {
        self.boot_with(Path::new(""), "", qemu_args, on_line)
    }

    /// Boots until qemu exits; `on_line` sees each console line as it
    /// comes (to press keys at the right moment). Returns the console.
    /// `extra` (unless empty) is copied over the initramfs's root; `append`
    /// goes on the kernel command line.
    pub fn boot_with(
        &self,
        extra: &Path,
        append: &str,
        qemu_args: &[&str],
        on_line: impl FnMut(&str),
    ) -> Result<String> {
        let initrd = self.initramfs((!extra.as_os_str().is_empty()).then_some(extra))?;
        boot_initrd(&self.kernel, &initrd, append, qemu_args, on_line)
    }
}

/// Boots `initrd` with `kernel` (scripts/vm/boot.sh) until qemu exits,
/// one VM at a time; `on_line` sees each console line as it comes.
/// Returns the console; an unclean qemu exit is an error.
pub fn boot_initrd(
    kernel: &Path,
    initrd: &Path,
    append: &str,
    qemu_args: &[&str],
    on_line: impl FnMut(&str),
) -> Result<String> {
    boot_media(kernel, &[initrd.as_os_str()], append, qemu_args, on_line)
}

/// Boots a `berth mkimage --format disk` image (scripts/vm/boot.sh
/// --disk: an NVMe disk, its first partition the root) as boot_initrd
/// boots an initramfs. qemu writes to the image.
pub fn boot_disk(
    kernel: &Path,
    disk: &Path,
    append: &str,
    qemu_args: &[&str],
    on_line: impl FnMut(&str),
) -> Result<String> {
    let media = [std::ffi::OsStr::new("--disk"), disk.as_os_str()];
    boot_media(kernel, &media, append, qemu_args, on_line)
}

fn boot_media(
    kernel: &Path,
    media: &[&std::ffi::OsStr],
    append: &str,
    qemu_args: &[&str],
    on_line: impl FnMut(&str),
) -> Result<String> {
    // One VM at a time: TCG keeps a core busy, and VMs side by side
    // slow each other down about linearly (docs/pid1.md).
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut qemu = Command::new("bash")
        .arg(repo_path("scripts/vm/boot.sh"))
        .args(media)
        .args(qemu_args)
        .env("KERNEL", kernel)
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

/// The serial console, line by line as it comes, until qemu closes it;
/// qemu is killed past BOOT_LIMIT.
pub fn read_console(
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
