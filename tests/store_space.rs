//! The store's disk guard, on a store that is a 64 MiB tmpfs: a pull that
//! cannot fit is refused before a layer byte is fetched; one whose layer
//! unpacks past the reserve stops cleanly; either way `store verify` is
//! clean and a running container is untouched; once there is room (the
//! tmpfs grown, as freeing space would) the same pull succeeds.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, ensure};
use common::registry::Registry;
use common::*;
use serde_json::json;

const MIB: usize = 1 << 20;

/// A tmpfs mounted for the test, unmounted however it ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs> {
        fs::create_dir_all(at)?;
        let opts = format!("size={size}");
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &opts, "berth-test"])
                .arg(at),
        )?;
        Ok(Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) -> Result<()> {
        let opts = format!("remount,size={size}");
        run_ok(Command::new("mount").args(["-o", &opts]).arg(&self.0)).map(drop)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// An image of one layer holding `file` (written by the caller), pushed.
fn push_layer(env: &TestEnv, reg: &Registry, name: &str, data: &[u8]) -> Result<String> {
    let layer = env.dir.path().join(format!("{name}-layer"));
    fs::create_dir_all(&layer)?;
    fs::write(layer.join("data"), data)?;
    let layout = env.dir.path().join(format!("{name}-oci"));
    make_image(
        "oci",
        &format!("localhost/test/{name}:latest"),
        &layout,
        &[&layer],
    )?;
    reg.push(&layout, &format!("test/{name}:1"), false)?;
    Ok(format!("{}/test/{name}:1", reg.host()))
}

fn pull(env: &TestEnv, reference: &str) -> Result<std::process::Output> {
    let (root, config) = (env.root(), env.config());
    Ok(berth(&["pull", reference, "--root"])
        .arg(root)
        .arg("--config")
        .arg(config)
        .output()?)
}

#[test]
fn a_pull_that_cannot_fit_or_runs_out_mid_unpack_leaves_the_store_clean() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    // Room for the demo import under the default 64 MiB reserve, then
    // the small filesystem the test is about.
    let tmpfs = Tmpfs::mount(&env.root(), "128m")?;
    env.import_demo()?;
    tmpfs.resize("64m")?;
    fs::write(
        env.config().join("berth.json"),
        json!({"store": {"reserve": "4m"}}).to_string(),
    )?;
    env.write_spec("app", &sh_in(DEMO_REF, "sleep 3600", json!({})))?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("app", "running", Duration::from_secs(60))?;
    let pid = env.container("app")?["pid"].clone();
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;

    // 40 MiB that cannot compress: about 140 MiB with its layer unpacked.
    let big = push_layer(&env, &reg, "big", &noise(40 * MIB, 3))?;
    let out = pull(&env, &big)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("not enough space"),
        "{stderr}"
    );
    let downloads = env.root().join("tmp/downloads");
    let spooled = fs::read_dir(&downloads).map(|d| d.count()).unwrap_or(0);
    ensure!(
        spooled == 0,
        "{spooled} files downloaded before the refusal"
    );

    // 2 MiB of noise and 118 MiB of zeros: a small blob whose layer runs
    // into the reserve half-way.
    let mut data = noise(2 * MIB, 5);
    data.resize(120 * MIB, 0);
    let wide = push_layer(&env, &reg, "wide", &data)?;
    let out = pull(&env, &wide)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("reserve"),
        "{stderr}"
    );
    run_ok(berth(&["store", "verify", "--root"]).arg(env.root()))?;
    let app = env.container("app")?;
    ensure!(app["state"] == "running" && app["pid"] == pid, "{app}");

    tmpfs.resize("400m")?;
    let out = pull(&env, &wide)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_ok(berth(&["store", "verify", "--root"]).arg(env.root()))?;
    drop(daemon);
    Ok(())
}
