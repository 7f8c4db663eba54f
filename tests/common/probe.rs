//! The probe image (tests/escape/probe.c, static, on top of busybox) and
//! how hardening tests run it: specs around a command or a shell script,
//! waiting for a container to finish, and reading the probe's verdict
//! lines ("NAME ok ..." / "NAME ESCAPED ...").

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::{TestEnv, busybox_rootfs, make_image, repo_path, run_ok, unique_name};

pub const PROBE_REF: &str = "localhost/test/probe:latest";
pub const PROBE: &str = "/usr/local/bin/probe";

/// Generous: these run in parallel with the other suites on 2 cores.
pub const EXIT_LIMIT: Duration = Duration::from_secs(90);

/// An OCI layout of busybox plus the probe at /usr/local/bin/probe (in a
/// second layer), built once per test binary.
pub fn probe_layout() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("probe-image"));
        let bin = dir.join("layer/usr/local/bin");
        fs::create_dir_all(&bin).expect("probe layer dir");
        let mut cc = Command::new("cc");
        cc.args(["-static", "-O2", "-o"])
            .arg(bin.join("probe"))
            .arg(repo_path("tests/escape/probe.c"));
        run_ok(cc).expect("build the probe (needs gcc and libc6-dev)");
        fs::set_permissions(bin.join("probe"), fs::Permissions::from_mode(0o755))
            .expect("chmod probe");
        let layout = dir.join("oci");
        make_image(
            "oci",
            PROBE_REF,
            &layout,
            &[busybox_rootfs(), &dir.join("layer")],
        )
        .expect("probe image");
        layout
    })
}

/// A fresh env with the probe image (and busybox) in its store.
pub fn probe_env() -> Result<TestEnv> {
    let env = TestEnv::new()?;
    env.import_layout(probe_layout())?;
    Ok(env)
}

/// A spec running `command` in the probe image, never restarted, with
/// `extra` fields merged in.
pub fn spec(command: &[&str], extra: Value) -> String {
    let mut s = json!({"image": PROBE_REF, "command": command, "restart": {"policy": "no"}});
    if let (Some(obj), Some(more)) = (s.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    s.to_string()
}

pub fn sh(script: &str, extra: Value) -> String {
    spec(&["/bin/sh", "-c", script], extra)
}

/// Waits for the container to finish; returns its record, stdout, stderr.
pub fn finished(env: &TestEnv, name: &str) -> Result<(Value, String, String)> {
    let record = env.wait_state(name, "exited", EXIT_LIMIT)?;
    let (out, err) = env.logs(name)?;
    Ok((record, out, err))
}

/// The probe's verdict lines ("NAME ok ..." / "NAME ESCAPED ..."), by name.
pub fn verdicts(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            Some((name.to_string(), l.to_string()))
        })
        .collect()
}

pub fn is_ok(line: &str) -> bool {
    line.split_whitespace().nth(1) == Some("ok")
}

pub fn is_escaped(line: &str) -> bool {
    line.split_whitespace().nth(1) == Some("ESCAPED")
}

/// The verdict line for `name`, or an explanation of why there is none.
pub fn verdict_for(stdout: &str, stderr: &str, name: &str) -> String {
    verdicts(stdout).remove(name).unwrap_or_else(|| {
        format!("{name} printed no verdict (stdout {stdout:?}, stderr {stderr:?})")
    })
}

/// Fails with every message at once, so one run shows every hole.
pub fn assert_no_failures(failures: &[String], context: &str) {
    assert!(
        failures.is_empty(),
        "{} problem(s) {context}:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
