//! The README's first command keeps working: scripts/demo.sh builds the
//! demo image, imports it and runs the supervisor on configs/demo.

mod common;

use std::process::Command;

use anyhow::Result;
use common::vm;
use common::*;

#[test]
fn the_demo_script_runs_the_example_configs() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let out = Command::new("bash")
        .arg(repo_path("scripts/demo.sh"))
        // Static, as scripts/build-release.sh makes it: the web
        // container's init is a copy of berth itself.
        .env("BERTH_BIN", vm::static_berth()?)
        .env("BERTH_ROOT", env.root())
        .env("BERTH_SOCKET", env.socket())
        .env("BERTH_CGROUP_PARENT", &env.cgroup_parent)
        .env("DEMO_SECONDS", "0.2")
        .output()?;
    let _cleanup = CgroupGuard(env.cgroup_parent.clone());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("hello from berth\nhello from berth\nhello from berth\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hello from berth's demo web server"),
        "{stdout}"
    );
    assert!(
        stderr.contains("all containers stopped; exiting"),
        "{stderr}"
    );
    assert!(cgroup_dirs(&env.cgroup_parent).is_empty());
    Ok(())
}
