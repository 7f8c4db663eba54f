//! Shared test support: root checks, fixture images built from Debian's
//! busybox-static, and a daemon guard that cleans up (processes, cgroups,
//! temp dirs) even when a test fails. Every test gets unique names.
#![allow(dead_code)]

pub mod cni;
pub mod compat;
pub mod container_logs;
pub mod examples;
pub mod extremes;
pub mod fault_proxy;
pub mod features;
pub mod hostile_corpus;
pub mod hostile_registry;
pub mod hotloop;
pub mod layers;
pub mod loopdev;
pub mod mkimage_inputs;
pub mod ns_daemon;
pub mod probe;
pub mod pty;
pub mod registry;
pub mod sshd;
pub mod store_oracle;
pub mod token_server;
pub mod updates;
pub mod vm;
pub mod vm_image;

mod cgroups;
mod daemon;
// Not every test binary uses them all (as dead_code above).
#[allow(unused_imports)]
pub use cgroups::{CgroupGuard, cgroup_dirs, cpu_ticks, processes_with, remove_cgroup_tree};
#[allow(unused_imports)]
pub use daemon::Daemon;
#[allow(unused_imports)]
pub use features::{Feature, require_feature};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
pub const DEMO_REF: &str = "localhost/demo/busybox:latest";

/// Skips (returning false) when not root, unless CI demands root, in which
/// case the test fails loudly instead of hiding a skipped kernel path.
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("BERTH_TEST_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("this test needs root and BERTH_TEST_REQUIRE_ROOT=1 is set");
    }
    eprintln!("skipped: needs root (set BERTH_TEST_REQUIRE_ROOT=1 to make this a failure)");
    false
}

pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes an executable script that a test runs right after. Written by a
/// child process (`install`), never through a descriptor of this process:
/// the test harness forks from many threads, and a fork that inherits a
/// writable descriptor of the file makes its exec fail with ETXTBSY until
/// that child execs.
pub fn write_executable(path: &Path, content: &str) -> Result<()> {
    let source = path.with_extension("source");
    fs::write(&source, content).with_context(|| format!("write {}", source.display()))?;
    let mut install = Command::new("install");
    install.args(["-m", "0755"]).arg(&source).arg(path);
    run_ok(install)?;
    fs::remove_file(&source).with_context(|| format!("remove {}", source.display()))
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn run_ok(mut cmd: impl std::borrow::BorrowMut<Command>) -> Result<Output> {
    let cmd = cmd.borrow_mut();
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// The busybox root filesystem, laid out once per test binary.
pub fn busybox_rootfs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("busybox-rootfs"));
        run_ok(
            Command::new("bash")
                .arg(repo_path("scripts/busybox-rootfs.sh"))
                .arg(&dir),
        )
        .expect("busybox rootfs (apt-get install busybox-static)");
        dir
    })
}

/// Builds an image from layer dirs with scripts/mkimage.sh.
pub fn make_image(format: &str, reference: &str, out: &Path, layers: &[&Path]) -> Result<()> {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_path("scripts/mkimage.sh"))
        .args(["--format", format, "--ref", reference])
        .arg(out)
        .args(layers);
    run_ok(&mut cmd).map(drop)
}

/// A spec running `script` with sh in `image`, never restarted, with
/// `extra` fields merged in.
pub fn sh_in(image: &str, script: &str, extra: Value) -> String {
    let mut s = serde_json::json!({"image": image, "command": ["sh", "-c", script],
                       "restart": {"policy": "no"}});
    if let (Value::Object(base), Value::Object(more)) = (&mut s, extra) {
        base.extend(more);
    }
    s.to_string()
}

pub fn berth(args: &[&str]) -> Command {
    let mut cmd = Command::new(BERTH);
    cmd.args(args);
    cmd
}

/// One test's private world: store root, config dir, socket, cgroup parent.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub cgroup_parent: String,
}

impl TestEnv {
    pub fn new() -> Result<TestEnv> {
        let dir = tempfile::Builder::new().prefix("berth-test-").tempdir()?;
        fs::create_dir_all(dir.path().join("config/containers"))?;
        Ok(TestEnv {
            dir,
            cgroup_parent: unique_name("berth-test"),
        })
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    /// Imports the busybox demo image into this env's store.
    pub fn import_demo(&self) -> Result<()> {
        let layout = self.dir.path().join("demo-oci");
        make_image("oci", DEMO_REF, &layout, &[busybox_rootfs()])?;
        run_ok(berth(&[
            "import",
            layout.to_str().unwrap(),
            "--root",
            self.root().to_str().unwrap(),
        ]))
        .map(drop)
    }

    pub fn write_spec(&self, name: &str, json: &str) -> Result<()> {
        fs::write(
            self.config()
                .join("containers")
                .join(format!("{name}.json")),
            json,
        )?;
        Ok(())
    }

    pub fn daemon_command(&self) -> Command {
        self.daemon_command_of(Path::new(BERTH))
    }

    /// The daemon from another build of berth (a static one, say).
    pub fn daemon_command_of(&self, binary: &Path) -> Command {
        let mut cmd = Command::new(binary);
        cmd.arg("daemon")
            .arg("--config")
            .arg(self.config())
            .arg("--root")
            .arg(self.root())
            .arg("--socket")
            .arg(self.socket());
        cmd.args(["--cgroup-parent", &self.cgroup_parent]);
        cmd
    }

    /// Starts the daemon and waits for its socket.
    pub fn start_daemon(&self) -> Result<Daemon> {
        self.start_daemon_of(Path::new(BERTH))
    }

    pub fn start_daemon_of(&self, binary: &Path) -> Result<Daemon> {
        self.spawn_daemon(self.daemon_command_of(binary))
    }

    /// `start_daemon` with these environment variables (the debug-only
    /// test knobs, say).
    pub fn start_daemon_with_env(&self, vars: &[(&str, &str)]) -> Result<Daemon> {
        let mut cmd = self.daemon_command();
        cmd.envs(vars.iter().copied());
        self.spawn_daemon(cmd)
    }

    fn spawn_daemon(&self, mut cmd: Command) -> Result<Daemon> {
        let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let daemon = Daemon {
            child: Some(child),
            cgroup_parent: self.cgroup_parent.clone(),
        };
        wait_for(Duration::from_secs(10), || {
            Ok(std::os::unix::net::UnixStream::connect(self.socket()).is_ok())
        })
        .context("daemon socket never appeared")?;
        Ok(daemon)
    }

    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = berth(args);
        cmd.env("BERTH_SOCKET", self.socket());
        cmd
    }

    pub fn ps(&self) -> Result<Vec<Value>> {
        let out = run_ok(&mut self.cli(&["ps", "--json"]))?;
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    pub fn container(&self, name: &str) -> Result<Value> {
        self.ps()?
            .into_iter()
            .find(|c| c["name"] == name)
            .with_context(|| format!("no container {name} in ps"))
    }
}

/// Polls `cond` every 20 ms until it is true or `limit` passes.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("condition not met within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The demo busybox image as an OCI layout in this env (tag `latest`).
pub fn demo_layout(env: &TestEnv) -> Result<PathBuf> {
    let layout = env.dir.path().join("demo-oci");
    make_image("oci", DEMO_REF, &layout, &[busybox_rootfs()])?;
    Ok(layout)
}

/// `len` incompressible bytes (xorshift64), so a layer blob stays large.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A new RSA key and a self-signed certificate for `subject` (openssl
/// marks it a CA): a token issuer's signing cert, or a test CA.
pub fn self_signed_cert(key: &Path, cert: &Path, subject: &str) -> Result<()> {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
    ]);
    cmd.arg("-keyout").arg(key).arg("-out").arg(cert);
    run_ok(cmd).map(drop)
}

impl TestEnv {
    /// Imports an OCI layout (e.g. one from `make_image`) into this env's
    /// store.
    pub fn import_layout(&self, layout: &Path) -> Result<()> {
        let mut cmd = berth(&["import"]);
        cmd.arg(layout).arg("--root").arg(self.root());
        run_ok(cmd).map(drop)
    }

    /// Imports busybox plus the layer directory `layer` as
    /// `localhost/test/NAME:1`; returns the reference.
    pub fn import_with_layer(&self, name: &str, layer: &Path) -> Result<String> {
        let reference = format!("localhost/test/{name}:1");
        let layout = self.dir.path().join(format!("{name}-oci"));
        make_image("oci", &reference, &layout, &[busybox_rootfs(), layer])?;
        self.import_layout(&layout)?;
        Ok(reference)
    }

    /// `berth check` on the config dir, then the daemon; when either
    /// refuses, the error carries berth's own message (a spec field it
    /// does not know yet, say) instead of "socket never appeared".
    pub fn start_daemon_checked(&self) -> Result<Daemon> {
        let check = berth(&["check"]).arg(self.config()).output()?;
        if !check.status.success() {
            bail!(
                "berth check refused the specs: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let stderr_path = self.dir.path().join("daemon.stderr");
        let child = self
            .daemon_command()
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr_path)?)
            .spawn()?;
        let mut daemon = Daemon {
            child: Some(child),
            cgroup_parent: self.cgroup_parent.clone(),
        };
        let up = wait_for(Duration::from_secs(10), || {
            if let Some(status) = daemon
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("daemon exited with {status}");
            }
            Ok(std::os::unix::net::UnixStream::connect(self.socket()).is_ok())
        });
        if let Err(e) = up {
            let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
            bail!("daemon did not come up ({e}); its stderr:\n{stderr}");
        }
        Ok(daemon)
    }

    /// The container's log through `berth logs`: (stdout, stderr).
    pub fn logs(&self, name: &str) -> Result<(String, String)> {
        let out = run_ok(self.cli(&["logs", name]))?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Waits until the container's record shows `state`; returns the record.
    pub fn wait_state(&self, name: &str, state: &str, limit: Duration) -> Result<Value> {
        let mut last = Value::Null;
        let waited = wait_for(limit, || {
            last = self.container(name)?;
            Ok(last["state"] == state)
        });
        if let Err(e) = waited {
            bail!("container {name} never reached state {state:?} ({e}); last record: {last}");
        }
        Ok(last)
    }
}
