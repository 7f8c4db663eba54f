//! `secrets`: files from the config directory's secrets/ appear as copies
//! on a read-only tmpfs at /run/secrets, with the owner and mode the spec
//! asks for (through a user namespace too), a host change taking effect at
//! the next start; their content is in no log, event, inspect answer or
//! error; and sources that are missing, too open, not root's, links, or
//! named with a path are refused with the reason. Real daemon, as root.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use anyhow::{Result, ensure};
use berth::api::client::Client;
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

/// A secret only this test run knows.
fn secret_text(label: &str) -> String {
    let uuid = fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
    format!("{label}-{}", uuid.trim())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// secrets/NAME with `content`, root's, `mode`.
fn write_secret(env: &TestEnv, name: &str, content: &str, mode: u32) -> Result<()> {
    let dir = env.config().join("secrets");
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    let path = dir.join(name);
    fs::write(&path, content)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn sh_spec(script: &str, extra: Value) -> String {
    let mut s = json!({"image": DEMO_REF, "command": ["sh", "-c", script],
                       "restart": {"policy": "no"}});
    if let (Value::Object(base), Value::Object(more)) = (&mut s, extra) {
        base.extend(more);
    }
    s.to_string()
}

/// What the container reports about its secrets; never their content.
const PROBE: &str = "cd /run/secrets; \
    for f in db_password server.key root-only; do \
      echo \"stat $f $(stat -c '%u:%g %a' $f)\"; \
      echo \"hash $f $(sha256sum < $f 2>&1 | cut -d' ' -f1)\"; done; \
    grep ' /run/secrets ' /proc/mounts | sed 's/^/mount /'; \
    echo \"mounts $(grep -c /run/secrets /proc/mounts)\"; \
    echo x 2>/dev/null > db_password && echo WROTE || echo write-refused; \
    touch new 2>/dev/null && echo CREATED || echo create-refused; \
    mount -o remount,rw /run/secrets 2>/dev/null && echo REMOUNTED || echo remount-refused; \
    echo done";

fn secrets_field() -> Value {
    json!(["db_password",
           {"source": "tls.key", "target": "server.key", "uid": 1000, "gid": 1000, "mode": "0400"},
           {"source": "tls.key", "target": "root-only", "mode": "0400"}])
}

/// Checks the probe's report: user 1000 reads its own 0400 file and the
/// 0444 one, not root's 0400 one (root reads all three); /run/secrets is
/// one read-only tmpfs that not even root can write or remount.
fn check_report(out: &str, db: &str, tls: &str, as_root: bool) -> Result<()> {
    let want = [
        "stat db_password 0:0 444".to_string(),
        "stat server.key 1000:1000 400".into(),
        "stat root-only 0:0 400".into(),
        format!("hash db_password {}", sha256_hex(db.as_bytes())),
        format!("hash server.key {}", sha256_hex(tls.as_bytes())),
        "mounts 1".into(),
        "write-refused".into(),
        "create-refused".into(),
        "remount-refused".into(),
    ];
    for w in &want {
        ensure!(out.contains(w.as_str()), "missing {w:?} in:\n{out}");
    }
    let root_only = format!("hash root-only {}", sha256_hex(tls.as_bytes()));
    ensure!(
        out.contains(&root_only) == as_root,
        "root-only (0400, root's):\n{out}"
    );
    let mount = out.lines().find(|l| l.starts_with("mount ")).unwrap_or("");
    ensure!(
        mount.starts_with("mount tmpfs /run/secrets tmpfs ro,"),
        "{mount}"
    );
    for flag in ["nosuid", "nodev", "noexec"] {
        ensure!(mount.contains(flag), "{flag} missing: {mount}");
    }
    Ok(())
}

#[test]
fn secrets_are_read_only_copies_that_nothing_reports() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let (db, tls) = (secret_text("db"), secret_text("tls"));
    write_secret(&env, "db_password", &db, 0o400)?;
    write_secret(&env, "tls.key", &tls, 0o600)?;
    let plain = json!({"user": "1000:1000", "secrets": secrets_field()});
    env.write_spec("plain", &sh_spec(PROBE, plain))?;
    // Root in a user namespace: the ids are mapped both ways.
    let mapped = json!({"userns": "auto", "secrets": secrets_field()});
    env.write_spec("mapped", &sh_spec(PROBE, mapped))?;
    let mut daemon = env.start_daemon_checked()?;
    for (name, as_root) in [("plain", false), ("mapped", true)] {
        let record = env.wait_state(name, "exited", LIMIT)?;
        let (out, err) = env.logs(name)?;
        ensure!(record["exit_code"] == 0, "{name}: {record}\n{out}{err}");
        check_report(&out, &db, &tls, as_root)
            .map_err(|e| e.context(format!("container {name}")))?;
    }
    // A copy, not a bind: a change on the host shows at the next start.
    let db2 = secret_text("db2");
    write_secret(&env, "db_password", &db2, 0o400)?;
    run_ok(env.cli(&["start", "plain"]))?;
    let new_hash = format!("hash db_password {}", sha256_hex(db2.as_bytes()));
    wait_for(LIMIT, || Ok(env.logs("plain")?.0.contains(&new_hash)))?;
    env.wait_state("plain", "exited", LIMIT)?;

    let mut client = Client::connect(&env.socket())?;
    let mut seen = String::new();
    for name in ["plain", "mapped"] {
        seen += &client.call("inspect", json!({"name": name}))?.to_string();
        let (out, err) = env.logs(name)?;
        seen += &out;
        seen += &err;
    }
    seen += &client.call("events", json!({"since": 0}))?.to_string();
    let (_, stderr) =
        daemon.signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(30))?;
    seen += &stderr;
    for segment in fs::read_dir(env.root().join("events"))?.flatten() {
        seen += &String::from_utf8_lossy(&fs::read(segment.path()).unwrap_or_default());
    }
    for secret in [&db, &db2, &tls] {
        ensure!(
            !seen.contains(secret.as_str()),
            "a secret leaked into:\n{seen}"
        );
    }
    ensure!(
        seen.contains("\"target\":\"server.key\""),
        "inspect shows no secrets: {seen}"
    );
    Ok(())
}

/// Starts `name` with secret `source` and returns its start error.
fn start_error(env: &TestEnv, name: &str) -> Result<String> {
    let record = env.wait_state(name, "exited", LIMIT)?;
    ensure!(
        record["exit_code"] == 125,
        "{name} was not refused: {record}"
    );
    Ok(record["error"].as_str().unwrap_or_default().to_string())
}

#[test]
fn bad_sources_are_refused_with_the_reason() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let text = secret_text("bad");
    write_secret(&env, "good", &text, 0o400)?;
    write_secret(&env, "loose", &text, 0o644)?;
    write_secret(&env, "group_readable", &text, 0o440)?;
    write_secret(&env, "users", &text, 0o400)?;
    let dir = env.config().join("secrets");
    std::os::unix::fs::chown(dir.join("users"), Some(1000), Some(1000))?;
    std::os::unix::fs::symlink(dir.join("good"), dir.join("link"))?;
    fs::create_dir(dir.join("adir"))?;
    let cases = [
        ("gone", "secrets/gone: no such file"),
        ("loose", "mode 0644 is too open"),
        ("group_readable", "mode 0440 is too open"),
        ("users", "owned by uid 1000; it must be root's"),
        ("link", "is a symbolic link, not a regular file"),
        ("adir", "is a directory, not a regular file"),
    ];
    for (source, _) in cases {
        let spec = sh_spec("cat /run/secrets/*", json!({"secrets": [source]}));
        env.write_spec(&format!("c-{}", source.replace('_', "-")), &spec)?;
    }
    let _daemon = env.start_daemon_checked()?;
    for (source, why) in cases {
        let error = start_error(&env, &format!("c-{}", source.replace('_', "-")))?;
        let named = format!("secret \"{source}\": {}", dir.join(source).display());
        ensure!(
            error.contains(&named) && error.contains(why),
            "{source}: {error}"
        );
        ensure!(
            !error.contains(&text),
            "{source}: the content leaked: {error}"
        );
    }
    Ok(())
}

#[test]
fn names_with_a_path_are_refused_when_the_config_is_read() -> Result<()> {
    let env = TestEnv::new()?;
    let cases = [
        (
            json!(["../containers/x.json"]),
            "secrets.0.source: expected a file name",
        ),
        (json!([".."]), "secrets.0.source: expected a file name"),
        (
            json!(["/etc/shadow"]),
            "secrets.0.source: expected a file name",
        ),
        (
            json!([{"source": "ok", "target": "../../etc/passwd"}]),
            "secrets.0.target: expected a file name",
        ),
        (
            json!([{"source": "ok", "mode": "04755"}]),
            "secrets.0.mode: expected octal",
        ),
        (
            json!(["a", {"source": "b", "target": "a"}]),
            "secrets.1.target: /run/secrets/a is already",
        ),
        (
            json!([{"source": &"x".repeat(300)}]),
            "secrets.0.source: too long: expected 0 to 255 bytes",
        ),
    ];
    for (secrets, want) in cases {
        env.write_spec(
            "bad",
            &json!({"image": DEMO_REF, "secrets": secrets}).to_string(),
        )?;
        let out = berth(&["check"]).arg(env.config()).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "accepted {secrets}");
        ensure!(
            stderr.contains("bad.json:1:") && stderr.contains(want),
            "{secrets}: {stderr}"
        );
    }
    Ok(())
}
