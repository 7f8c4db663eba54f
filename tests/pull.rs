//! `berth pull` against a real registry (Debian's docker-registry on
//! 127.0.0.1, images pushed with skopeo): open, Basic auth with right and
//! wrong passwords, a multi-platform index, and the daemon pulling a
//! spec's missing image itself.

mod common;

use std::fs;
use std::time::Duration;

use anyhow::Result;
use common::registry::Registry;
use common::*;
use serde_json::json;

fn demo_layout(env: &TestEnv) -> Result<std::path::PathBuf> {
    let layout = env.dir.path().join("demo-oci");
    make_image("oci", DEMO_REF, &layout, &[busybox_rootfs()])?;
    Ok(layout)
}

#[test]
fn pull_from_an_open_registry_and_run_it() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    reg.push(&demo_layout(&env)?, "demo/busybox:1", false)?;
    let reference = format!("{}/demo/busybox:1", reg.host());
    let root = env.root().to_string_lossy().into_owned();
    let out = run_ok(berth(&["pull", &reference, "--root", &root]))?;
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{reference}: pulled")));
    // Pulling again downloads nothing: every blob is in the store.
    let again = run_ok(berth(&["pull", &reference, "--root", &root]))?;
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("bytes"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    let missing = berth(&[
        "pull",
        &format!("{}/demo/absent:1", reg.host()),
        "--root",
        &root,
    ])
    .output()?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    Ok(())
}

#[test]
fn basic_auth_right_and_wrong_passwords() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), Some(("tester", "s3cret")))?;
    reg.push(&demo_layout(&env)?, "private/busybox:1", false)?;
    let reference = format!("{}/private/busybox:1", reg.host());
    let root = env.root().to_string_lossy().into_owned();
    let auth = |user: &str, pass: &str| -> Result<std::path::PathBuf> {
        let f = env.dir.path().join(format!("auth-{pass}.json"));
        let token = base64_encode(&format!("{user}:{pass}"));
        fs::write(
            &f,
            json!({"auths": {reg.host(): {"auth": token}}}).to_string(),
        )?;
        Ok(f)
    };
    let none = berth(&["pull", &reference, "--root", &root])
        .env("HOME", env.dir.path())
        .output()?;
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("wants a username and password"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    let wrong = berth(&[
        "pull",
        &reference,
        "--root",
        &root,
        "--auth-file",
        auth("tester", "nope")?.to_str().unwrap(),
    ])
    .output()?;
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("authentication failed"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    run_ok(berth(&[
        "pull",
        &reference,
        "--root",
        &root,
        "--auth-file",
        auth("tester", "s3cret")?.to_str().unwrap(),
    ]))?;
    // The same credentials from berth.json, no config.json anywhere.
    let settings =
        json!({"registries": {reg.host(): {"username": "tester", "password": "s3cret"}}});
    fs::write(env.config().join("berth.json"), settings.to_string())?;
    let fresh = env
        .dir
        .path()
        .join("root-settings")
        .to_string_lossy()
        .into_owned();
    let mut cmd = berth(&[
        "pull",
        &reference,
        "--root",
        &fresh,
        "--config",
        env.config().to_str().unwrap(),
    ]);
    cmd.env("HOME", env.dir.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    run_ok(cmd)?;
    Ok(())
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn a_multi_platform_index_resolves_to_the_asked_platform() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // Two images in one index: amd64 (busybox) and arm64/v8 (a marker file).
    let layout = demo_layout(&env)?;
    let arm = env.dir.path().join("arm-layer");
    fs::create_dir_all(&arm)?;
    fs::write(arm.join("arm64-marker"), "arm64")?;
    let arm_layout = env.dir.path().join("arm-oci");
    make_image("oci", "localhost/demo/arm:1", &arm_layout, &[&arm])?;
    let idx: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let arm_idx: serde_json::Value =
        serde_json::from_slice(&fs::read(arm_layout.join("index.json"))?)?;
    for e in fs::read_dir(arm_layout.join("blobs/sha256"))? {
        let e = e?;
        fs::copy(e.path(), layout.join("blobs/sha256").join(e.file_name()))?;
    }
    let mut amd = idx["manifests"][0].clone();
    amd["platform"] = json!({"os": "linux", "architecture": "amd64"});
    amd.as_object_mut().unwrap().remove("annotations");
    let mut arm_desc = arm_idx["manifests"][0].clone();
    arm_desc["platform"] = json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
    arm_desc.as_object_mut().unwrap().remove("annotations");
    let inner = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd, arm_desc]}),
    )?;
    let inner_hex = common::layers::sha256_hex(&inner);
    fs::write(layout.join("blobs/sha256").join(&inner_hex), &inner)?;
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{inner_hex}"), "size": inner.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(layout.join("index.json"), top.to_string())?;
    reg.push(&layout, "multi/img:1", true)?;

    let reference = format!("{}/multi/img:1", reg.host());
    let root = env.root().to_string_lossy().into_owned();
    run_ok(berth(&[
        "pull",
        &reference,
        "--platform",
        "linux/arm64",
        "--root",
        &root,
    ]))?;
    let has_marker = fs::read_dir(env.root().join("layers/sha256"))?
        .flatten()
        .any(|e| e.path().join("arm64-marker").exists());
    assert!(has_marker, "the arm64 image was not the one pulled");
    let none = berth(&[
        "pull",
        &reference,
        "--platform",
        "linux/s390x",
        "--root",
        &root,
    ])
    .output()?;
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.contains("no image for linux/s390x")
            && stderr.contains("linux/amd64, linux/arm64/v8"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn the_daemon_pulls_a_missing_image_itself() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    reg.push(&demo_layout(&env)?, "demo/busybox:2", false)?;
    let image = format!("{}/demo/busybox:2", reg.host());
    env.write_spec(
        "fetched",
        &json!({"image": image, "command": ["echo", "pulled and ran"]}).to_string(),
    )?;
    env.write_spec("never", &json!({"image": format!("{}/demo/absent:1", reg.host()), "pull": "never", "command": ["true"]}).to_string())?;
    let _daemon = env.start_daemon()?;
    wait_for(Duration::from_secs(30), || {
        Ok(env.container("fetched")?["state"] == "exited")
    })?;
    let out = run_ok(env.cli(&["logs", "fetched"]))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pulled and ran\n");
    let never = env.container("never")?;
    assert_eq!(never["exit_code"], 125);
    assert!(
        never["error"]
            .as_str()
            .unwrap()
            .contains("not found in the store"),
        "{never}"
    );
    Ok(())
}

#[test]
fn token_auth_with_a_real_token_issuer() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    use common::token_server::{ISSUER, SERVICE, TokenServer};
    let env = TestEnv::new()?;
    let tokens = TokenServer::start(env.dir.path(), "tester", "t0ken-pass")?;
    let realm = tokens.realm();
    let reg = Registry::start_with(
        &env.dir.path().join("registry"),
        Some(("tester", "t0ken-pass")),
        Some((&realm, SERVICE, ISSUER, &tokens.cert)),
    )?;
    reg.push(&demo_layout(&env)?, "secure/busybox:1", false)?;
    let reference = format!("{}/secure/busybox:1", reg.host());
    let root = env.root().to_string_lossy().into_owned();
    let auth = |pass: &str| -> Result<std::path::PathBuf> {
        let f = env.dir.path().join(format!("auth-{pass}.json"));
        fs::write(
            &f,
            json!({"auths": {reg.host(): {"username": "tester", "password": pass}}}).to_string(),
        )?;
        Ok(f)
    };
    let wrong = berth(&[
        "pull",
        &reference,
        "--root",
        &root,
        "--auth-file",
        auth("wrong")?.to_str().unwrap(),
    ])
    .output()?;
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("authentication failed") && stderr.contains("401"),
        "{stderr}"
    );
    let before = tokens.requests.load(std::sync::atomic::Ordering::Relaxed);
    run_ok(berth(&[
        "pull",
        &reference,
        "--root",
        &root,
        "--auth-file",
        auth("t0ken-pass")?.to_str().unwrap(),
    ]))?;
    assert!(
        tokens.requests.load(std::sync::atomic::Ordering::Relaxed) > before,
        "no token was asked for"
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    // An identitytoken (docker login's refresh token) works through the
    // OAuth2 refresh grant, without a password.
    let identity = env.dir.path().join("auth-identity.json");
    let entry = json!({"auths": {reg.host(): {"username": "tester", "identitytoken": common::token_server::REFRESH_TOKEN}}});
    fs::write(&identity, entry.to_string())?;
    let fresh = env
        .dir
        .path()
        .join("root-identity")
        .to_string_lossy()
        .into_owned();
    run_ok(berth(&[
        "pull",
        &reference,
        "--root",
        &fresh,
        "--auth-file",
        identity.to_str().unwrap(),
    ]))?;
    // Anonymous bearer tokens: a public repository needs no credentials.
    reg.push(&demo_layout(&env)?, "public/busybox:1", false)?;
    let anonymous = env
        .dir
        .path()
        .join("root-anon")
        .to_string_lossy()
        .into_owned();
    let mut cmd = berth(&[
        "pull",
        &format!("{}/public/busybox:1", reg.host()),
        "--root",
        &anonymous,
    ]);
    cmd.env("HOME", env.dir.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    run_ok(cmd)?;
    // ...while a private one still needs them.
    let mut cmd = berth(&["pull", &reference, "--root", &anonymous]);
    cmd.env("HOME", env.dir.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    assert!(!cmd.output()?.status.success());
    Ok(())
}

/// blobs/, layers/ and images/: what a failed pull must not change.
fn content_snapshot(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["blobs/sha256", "layers/sha256", "images"] {
        for e in fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            out.push(format!(
                "{dir}/{} {}",
                e.file_name().to_string_lossy(),
                e.metadata().map(|m| m.len()).unwrap_or(0)
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn a_connection_cut_mid_blob_resumes_with_a_range_request() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    use common::fault_proxy::{Fault, FaultProxy};
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    reg.push(&demo_layout(&env)?, "demo/busybox:1", false)?;
    // The busybox layer is about 1 MB; manifests and config are far smaller.
    let proxy = FaultProxy::start(reg.port, Fault::CutAfter(400_000))?;
    let reference = format!("127.0.0.1:{}/demo/busybox:1", proxy.port);
    let root = env.root().to_string_lossy().into_owned();
    let out = run_ok(berth(&["pull", &reference, "--root", &root]))?;
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::Relaxed),
        "the fault never fired"
    );
    assert!(
        proxy.saw_range.load(std::sync::atomic::Ordering::Relaxed),
        "no Range request: not resumed"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("resuming"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    Ok(())
}

#[test]
fn a_flipped_byte_is_rejected_and_the_store_is_unchanged() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    use common::fault_proxy::{Fault, FaultProxy};
    let env = TestEnv::new()?;
    env.import_demo()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // A different image than the one in the store, so its layer is fetched.
    let layer = env.dir.path().join("extra");
    fs::create_dir_all(&layer)?;
    // Incompressible, so the layer blob stays large.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(layer.join("data"), data)?;
    let layout = env.dir.path().join("extra-oci");
    make_image("oci", "localhost/test/extra:latest", &layout, &[&layer])?;
    reg.push(&layout, "test/extra:1", false)?;
    let before = content_snapshot(&env.root());
    let proxy = FaultProxy::start(reg.port, Fault::FlipAt(600_000))?;
    let root = env.root().to_string_lossy().into_owned();
    let out = berth(&[
        "pull",
        &format!("127.0.0.1:{}/test/extra:1", proxy.port),
        "--root",
        &root,
    ])
    .output()?;
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::Relaxed),
        "the fault never fired: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mismatch") || stderr.contains("corrupt"),
        "{stderr}"
    );
    assert_eq!(
        content_snapshot(&env.root()),
        before,
        "a rejected pull changed the store"
    );
    // Without the fault the same pull works: nothing bad was kept.
    run_ok(berth(&[
        "pull",
        &format!("{}/test/extra:1", reg.host()),
        "--root",
        &root,
    ]))?;
    Ok(())
}

#[test]
fn a_pull_killed_with_sigkill_resumes_without_fetching_finished_layers_again() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    use common::fault_proxy::{Fault, FaultProxy};
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // Layer 1: busybox (~1 MB, done first); layer 2: 4 MB of noise (slow).
    let noise = env.dir.path().join("noise");
    fs::create_dir_all(&noise)?;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..4_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(noise.join("data"), data)?;
    let layout = env.dir.path().join("two-oci");
    make_image(
        "oci",
        "localhost/test/two:latest",
        &layout,
        &[busybox_rootfs(), &noise],
    )?;
    reg.push(&layout, "test/two:1", false)?;
    // About 1 MB/s through the proxy: the second layer takes ~4 s.
    let proxy = FaultProxy::start(reg.port, Fault::Slow(64))?;
    let reference = format!("127.0.0.1:{}/test/two:1", proxy.port);
    let root = env.root().to_string_lossy().into_owned();
    let partial_exists = || {
        fs::read_dir(env.root().join("tmp/downloads"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().ends_with(".partial")
                    && e.metadata().map(|m| m.len() > 1_500_000).unwrap_or(false)
            })
    };
    // Kill once the noise layer (larger than anything else) is half-way.
    let mut child = berth(&["pull", &reference, "--root", &root])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    wait_for(Duration::from_secs(20), || Ok(partial_exists()))?;
    child.kill()?; // SIGKILL in the middle of the second layer
    child.wait()?;
    let gets_before: Vec<String> = proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("/blobs/"))
        .cloned()
        .collect();
    // The blobs whose .partial was left are the unfinished ones.
    let unfinished: Vec<String> = fs::read_dir(env.root().join("tmp/downloads"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".partial").map(str::to_string))
        .collect();
    assert!(!unfinished.is_empty(), "no partial download was left");
    run_ok(berth(&["pull", &reference, "--root", &root]))?;
    let all: Vec<String> = proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("/blobs/"))
        .cloned()
        .collect();
    let after = &all[gets_before.len()..];
    assert!(
        proxy.saw_range.load(std::sync::atomic::Ordering::Relaxed),
        "the partial layer was not resumed with Range"
    );
    // Only the unfinished blob is asked for again: the finished ones are
    // not fetched a second time.
    assert!(!after.is_empty(), "nothing was fetched after the restart");
    assert!(
        after
            .iter()
            .all(|l| unfinished.iter().any(|u| l.contains(u.as_str()))),
        "a finished blob was fetched again: {after:?} (before: {gets_before:?}, unfinished {unfinished:?})"
    );
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    Ok(())
}

#[test]
fn a_stalled_download_times_out_and_resumes() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    use common::fault_proxy::{Fault, FaultProxy};
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    // One small layer of noise (~120 KB blob): its stall budget is short.
    let layer = env.dir.path().join("small");
    fs::create_dir_all(&layer)?;
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let data: Vec<u8> = (0..120_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(layer.join("data"), data)?;
    let layout = env.dir.path().join("small-oci");
    make_image("oci", "localhost/test/small:latest", &layout, &[&layer])?;
    reg.push(&layout, "test/small:1", false)?;
    let proxy = FaultProxy::start(reg.port, Fault::StallAfter(40_000))?;
    let root = env.root().to_string_lossy().into_owned();
    let started = std::time::Instant::now();
    let out = run_ok(berth(&[
        "pull",
        &format!("127.0.0.1:{}/test/small:1", proxy.port),
        "--timeout",
        "1",
        "--root",
        &root,
    ]))?;
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::Relaxed),
        "the stall never happened"
    );
    assert!(
        proxy.saw_range.load(std::sync::atomic::Ordering::Relaxed),
        "not resumed with Range"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming"));
    run_ok(berth(&["store", "verify", "--root", &root]))?;
    Ok(())
}

#[test]
fn berth_pull_goes_through_a_running_daemon_with_progress() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    reg.push(&demo_layout(&env)?, "demo/busybox:3", false)?;
    let _daemon = env.start_daemon()?;
    let reference = format!("{}/demo/busybox:3", reg.host());
    let out = run_ok(env.cli(&["pull", &reference]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Progress lines came back as notifications, then the result.
    assert!(
        stdout.contains("manifest sha256:") && stdout.contains(&format!("{reference}: pulled")),
        "{stdout}"
    );
    let images = run_ok(berth(&["images", "--root", env.root().to_str().unwrap()]))?;
    assert!(String::from_utf8_lossy(&images.stdout).contains(&reference));
    let bad = env
        .cli(&["pull", &format!("{}/demo/absent:1", reg.host())])
        .output()?;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    Ok(())
}

#[test]
fn mirrors_from_berth_json_are_tried_in_order() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let mirror = Registry::start(&env.dir.path().join("mirror"), None)?;
    mirror.push(&demo_layout(&env)?, "demo/busybox:1", false)?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port(); // closed again at once
    // The origin does not answer; its first mirror does not either; the
    // second mirror has the image.
    let settings = json!({"registries": {
        format!("127.0.0.1:{dead}"): {"mirrors": [format!("127.0.0.1:{dead}"), mirror.host()]}
    }});
    fs::write(env.config().join("berth.json"), settings.to_string())?;
    let root = env.root().to_string_lossy().into_owned();
    let reference = format!("127.0.0.1:{dead}/demo/busybox:1");
    let out = run_ok(berth(&[
        "pull",
        &reference,
        "--config",
        env.config().to_str().unwrap(),
        "--root",
        &root,
    ]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("mirror 127.0.0.1:{dead}:")) && stdout.contains("trying the next"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{reference}: pulled")), "{stdout}");
    // A mistake in berth.json is reported with its position.
    fs::write(
        env.config().join("berth.json"),
        "{\"registries\": {\"x.io\": {\"mirorrs\": []}}}",
    )?;
    let bad = berth(&["check", env.config().to_str().unwrap()]).output()?;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("berth.json:1:"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    Ok(())
}

#[test]
fn a_tls_registry_is_trusted_through_its_ca_file_only() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let reg = Registry::start_tls(&env.dir.path().join("tls-registry"))?;
    let layout = demo_layout(&env)?;
    run_ok(
        std::process::Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/demo/busybox:1", reg.host())),
    )?;
    let reference = format!("{}/demo/busybox:1", reg.host());
    let root = env.root().to_string_lossy().into_owned();
    // Some other CA: the registry's certificate must not be trusted.
    let other = env.dir.path().join("other-ca");
    fs::create_dir_all(&other)?;
    run_ok(
        std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=other",
            ])
            .arg("-keyout")
            .arg(other.join("k"))
            .arg("-out")
            .arg(other.join("c")),
    )?;
    let refused = berth(&[
        "pull",
        &reference,
        "--ca-file",
        other.join("c").to_str().unwrap(),
        "--timeout",
        "5",
        "--root",
        &root,
    ])
    .output()?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr).to_ascii_lowercase();
    assert!(
        stderr.contains("certificate") || stderr.contains("issuer"),
        "{stderr}"
    );
    run_ok(berth(&[
        "pull",
        &reference,
        "--ca-file",
        reg.dir.join("ca.crt").to_str().unwrap(),
        "--root",
        &root,
    ]))?;
    Ok(())
}

#[test]
fn a_503_with_retry_after_is_waited_out_and_retried() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    use common::fault_proxy::{Fault, FaultProxy};
    let env = TestEnv::new()?;
    let reg = Registry::start(&env.dir.path().join("registry"), None)?;
    reg.push(&demo_layout(&env)?, "demo/busybox:1", false)?;
    let proxy = FaultProxy::start(reg.port, Fault::UnavailableOnce(2))?;
    let root = env.root().to_string_lossy().into_owned();
    let started = std::time::Instant::now();
    run_ok(berth(&[
        "pull",
        &format!("127.0.0.1:{}/demo/busybox:1", proxy.port),
        "--root",
        &root,
    ]))?;
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::Relaxed),
        "no 503 was sent"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was not honoured: {:?}",
        started.elapsed()
    );
    Ok(())
}

/// A one-route HTTP server: every request gets `status`, `content_type`
/// and `body`. Enough to play a registry that serves an old format.
fn fake_registry(content_type: &'static str, body: &'static str) -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{BufRead, Write};
            let mut reader = std::io::BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let mut out = &stream;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(port)
}

#[test]
fn a_schema_1_manifest_is_refused_with_a_clear_error() -> Result<()> {
    let env = TestEnv::new()?;
    let port = fake_registry(
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        r#"{"schemaVersion": 1, "name": "old/app", "tag": "1", "fsLayers": []}"#,
    )?;
    let root = env.root().to_string_lossy().into_owned();
    let out = berth(&[
        "pull",
        &format!("127.0.0.1:{port}/old/app:1"),
        "--root",
        &root,
    ])
    .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema 1 manifest, which berth does not support"),
        "{stderr}"
    );
    Ok(())
}
