//! `berth pull` and registry authentication, against Debian's registry:
//! htpasswd Basic auth, token auth with a real token issuer (passwords,
//! identity tokens, anonymous pulls), and TLS with a registry's own CA.

mod common;

use std::fs;

use anyhow::Result;
use common::registry::Registry;
use common::*;
use serde_json::json;

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
    let layout = demo_layout(&env)?;
    reg.push(&layout, "secure/busybox:1", false)?;
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
    let image = store_oracle::expected_image(&layout, &[busybox_rootfs()])?;
    store_oracle::assert_store_holds(&env.root(), &image)?;
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
    store_oracle::assert_store_holds(std::path::Path::new(&fresh), &image)?;
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
    store_oracle::assert_store_holds(std::path::Path::new(&anonymous), &image)?;
    // ...while a private one still needs them.
    let mut cmd = berth(&["pull", &reference, "--root", &anonymous]);
    cmd.env("HOME", env.dir.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    assert!(!cmd.output()?.status.success());
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
    self_signed_cert(&other.join("k"), &other.join("c"), "/CN=other")?;
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
