//! Offline first boot: images shipped in the config directory's images/
//! (a docker-archive tarball, an OCI layout) are imported when the daemon
//! starts, in a helper, and the containers that need them start with
//! `pull: never` on a store that had nothing; an archive imported once is
//! not imported again at the next start; a broken one is an event, and a
//! container whose image came from nowhere fails naming images/.

mod common;

use std::fs;
use std::time::Duration;

use anyhow::Result;
use common::*;
use serde_json::{Value, json};

fn events_of(env: &TestEnv, kind: &str) -> Result<Vec<Value>> {
    let out = run_ok(env.cli(&["events", "--json", "--since", "0", "--kind", kind]))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

#[test]
fn images_in_the_config_are_imported_at_start_and_their_containers_run() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let images = env.config().join("images");
    fs::create_dir_all(&images)?;
    let archive_ref = "localhost/airgap/app:1";
    make_image(
        "docker-archive",
        archive_ref,
        &images.join("app.tar"),
        &[busybox_rootfs()],
    )?;
    let layout_ref = "localhost/airgap/other:1";
    make_image(
        "oci",
        layout_ref,
        &images.join("other"),
        &[busybox_rootfs()],
    )?;
    fs::write(images.join("broken.tar"), b"not a tarball at all")?;
    let spec = |image: &str| json!({"image": image, "pull": "never", "command": ["sleep", "3600"]});
    env.write_spec("app", &spec(archive_ref).to_string())?;
    env.write_spec("other", &spec(layout_ref).to_string())?;
    env.write_spec("nowhere", &spec("localhost/airgap/missing:1").to_string())?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("app", "running", Duration::from_secs(120))?;
    env.wait_state("other", "running", Duration::from_secs(60))?;
    let nowhere = env.wait_state("nowhere", "exited", Duration::from_secs(60))?;
    let error = nowhere["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("images/") && error.contains("pull is never"),
        "{nowhere}"
    );
    let imported = events_of(&env, "image.imported")?;
    assert_eq!(imported.len(), 2, "{imported:?}");
    let failed = events_of(&env, "image.import_failed")?;
    assert!(
        failed.len() == 1 && failed[0].to_string().contains("broken.tar"),
        "{failed:?}"
    );
    drop(daemon);
    // The next start imports nothing already imported (the broken archive
    // is tried again: it never made it in).
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("app", "running", Duration::from_secs(60))?;
    assert_eq!(events_of(&env, "image.imported")?.len(), 2);
    Ok(())
}
