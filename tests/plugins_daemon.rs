//! Hooks and volume plugins through the daemon: a container sees its
//! plugin volume's directory, Unmount is called when it stops, a plugin
//! that does not answer keeps the container from starting with a clear
//! error; prestart/poststart/poststop hooks get the OCI state, and a
//! failing prestart hook fails the start.

mod common;

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::*;
use serde_json::{Value, json};

const DEMO_REF: &str = "localhost/demo/busybox:latest";
const LIMIT: Duration = Duration::from_secs(60);

struct Plugin(Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test plugin (tests/data/volume-plugin.py) as NAME in `sockets`.
fn plugin(dir: &Path, sockets: &Path, name: &str, extra: &[&str]) -> Result<Plugin> {
    fs::create_dir_all(sockets)?;
    let socket = sockets.join(format!("{name}.sock"));
    let child = Command::new("python3")
        .arg(repo_path("tests/data/volume-plugin.py"))
        .arg("--socket")
        .arg(&socket)
        .arg("--root")
        .arg(dir.join(format!("{name}-root")))
        .arg("--log")
        .arg(dir.join(format!("{name}.log")))
        .args(extra)
        .spawn()
        .context("python3 volume-plugin.py")?;
    let p = Plugin(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&socket).is_err() {
        if Instant::now() > deadline {
            bail!("plugin {name} never listened");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(p)
}

fn methods(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["method"].as_str().map(String::from))
        .collect()
}

#[test]
fn a_plugin_volume_is_mounted_unmounted_and_a_silent_plugin_fails_the_start() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let work = tempfile::tempdir()?;
    let sockets = work.path().join("plugins");
    let _good = plugin(work.path(), &sockets, "testvol", &[])?;
    let _silent = plugin(work.path(), &sockets, "silent", &["--hang", "Mount"])?;
    fs::write(
        env.config().join("berth.json"),
        json!({"volume_plugins": {"socket_dir": sockets, "spec_dirs": [], "timeout": 1}})
            .to_string(),
    )?;
    let vol = |driver: &str| json!({"mounts": [{"type": "volume", "name": "data", "driver": driver, "target": "/data"}]});
    let script = "echo from-container > /data/f && echo written; sleep 60";
    let mut spec = json!({"image": DEMO_REF, "command": ["sh", "-c", script], "stop_timeout": 1});
    spec.as_object_mut()
        .unwrap()
        .extend(vol("testvol").as_object().unwrap().clone());
    env.write_spec("user", &spec.to_string())?;
    let mut spec = json!({"image": DEMO_REF, "command": ["true"]});
    spec.as_object_mut()
        .unwrap()
        .extend(vol("silent").as_object().unwrap().clone());
    env.write_spec("stuck", &spec.to_string())?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("user", "running", LIMIT)?;
    wait_for(LIMIT, || Ok(env.logs("user")?.0.contains("written")))?;
    let on_plugin = work.path().join("testvol-root");
    let found = walk_for(&on_plugin, "f")?;
    assert_eq!(fs::read_to_string(&found)?, "from-container\n");
    let stuck = env.wait_state("stuck", "exited", LIMIT)?;
    let error = stuck["error"].as_str().unwrap_or("");
    assert!(
        error.contains("plugin silent did not answer Mount within 1s"),
        "{stuck}"
    );
    run_ok(env.cli(&["stop", "user"]))?;
    let calls = methods(&work.path().join("testvol.log"));
    assert!(
        calls.ends_with(&["VolumeDriver.Unmount".to_string()]),
        "{calls:?}"
    );
    assert!(calls.contains(&"VolumeDriver.Mount".to_string()));
    Ok(())
}

/// The first file named `name` under `dir`.
fn walk_for(dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    for entry in fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            if let Ok(found) = walk_for(&p, name) {
                return Ok(found);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Ok(p);
        }
    }
    bail!("no {name} under {}", dir.display())
}

#[test]
fn hooks_get_the_oci_state_and_a_failing_prestart_stops_the_start() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let work = tempfile::tempdir()?;
    let record = work.path().join("record.sh");
    write_executable(&record, "#!/bin/sh\ncat > \"$OUT/$1.json\"\n")?;
    let out = format!("OUT={}", work.path().display());
    let hook = |stage: &str| json!({"path": record, "args": [record, stage], "env": [out]});
    let hooks = json!({"hooks": {"prestart": [hook("prestart")], "poststart": [hook("poststart")], "poststop": [hook("poststop")]}});
    let mut spec = json!({"image": DEMO_REF, "command": ["sleep", "0.5"]});
    spec.as_object_mut()
        .unwrap()
        .extend(hooks.as_object().unwrap().clone());
    env.write_spec("hooked", &spec.to_string())?;
    let failing = json!({"image": DEMO_REF, "command": ["echo", "SHOULD-NOT-RUN"],
        "hooks": {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo no way; exit 3"]}]}});
    env.write_spec("refused", &failing.to_string())?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("hooked", "exited", LIMIT)?;
    wait_for(LIMIT, || Ok(work.path().join("poststop.json").exists()))?;
    let state = |stage: &str| -> Result<Value> {
        Ok(serde_json::from_slice(&fs::read(
            work.path().join(format!("{stage}.json")),
        )?)?)
    };
    let pre = state("prestart")?;
    assert_eq!(
        (pre["id"].as_str(), pre["status"].as_str()),
        (Some("hooked"), Some("creating"))
    );
    assert!(
        pre["pid"].as_i64().unwrap_or(0) > 0 && pre["ociVersion"].is_string(),
        "{pre}"
    );
    assert_eq!(state("poststart")?["status"], "running");
    let post = state("poststop")?;
    assert_eq!(post["status"], "stopped");
    assert!(post.get("pid").is_none(), "{post}");
    let refused = env.wait_state("refused", "exited", LIMIT)?;
    let error = refused["error"].as_str().unwrap_or("");
    assert!(
        error.contains("prestart hook /bin/sh: exited with status 3") && error.contains("no way"),
        "{refused}"
    );
    assert_eq!(env.logs("refused")?.0, "");
    Ok(())
}
