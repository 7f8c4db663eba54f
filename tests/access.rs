//! Access control on the control socket with real users and groups made
//! by the test: root and the admin group may do everything, the read
//! group may only look (and sees the spec's credentials redacted), anyone
//! else is refused at connect (and the daemon says why). Users and groups
//! are removed afterwards, even on failure.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output};

use anyhow::{Result, bail};
use common::*;
use serde_json::json;

const DEMO_REF: &str = "localhost/demo/busybox:latest";

/// Users and groups created for one test; deleted on drop.
struct Accounts {
    users: Vec<String>,
    groups: Vec<String>,
}

impl Accounts {
    fn group(&mut self, name: &str) -> Result<u32> {
        if !Command::new("groupadd").arg(name).status()?.success() {
            bail!("groupadd {name} failed");
        }
        self.groups.push(name.to_string());
        let line = fs::read_to_string("/etc/group")?
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .map(String::from)
            .unwrap_or_default();
        Ok(line.split(':').nth(2).unwrap_or("0").parse()?)
    }

    fn user(&mut self, name: &str, groups: &[&str]) -> Result<()> {
        let mut cmd = Command::new("useradd");
        cmd.args(["-M", "-N", "-s", "/bin/false"]);
        if !groups.is_empty() {
            cmd.args(["-G", &groups.join(",")]);
        }
        if !cmd.arg(name).status()?.success() {
            bail!("useradd {name} failed");
        }
        self.users.push(name.to_string());
        Ok(())
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).status();
        }
        for g in &self.groups {
            let _ = Command::new("groupdel").arg(g).status();
        }
    }
}

/// `berth ARGS` as `user` (with that user's groups), against the daemon.
fn berth_as(env: &TestEnv, user: &str, args: &[&str]) -> Result<Output> {
    let exe = env!("CARGO_BIN_EXE_berth");
    Ok(Command::new("runuser")
        .args(["-u", user, "--"])
        .arg(exe)
        .args(&args[..1])
        // Before the positionals: `exec`'s end at its NAME.
        .args(["--socket", &env.socket().to_string_lossy()])
        .args(&args[1..])
        .output()?)
}

#[test]
fn admins_readers_and_strangers_get_what_their_groups_allow() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let tag = std::process::id() % 100_000;
    let (adm, rd) = (format!("bta{tag}"), format!("btr{tag}"));
    let mut acc = Accounts {
        users: vec![],
        groups: vec![],
    };
    acc.group(&adm)?;
    let read_gid = acc.group(&rd)?;
    // Admins are in the read group too: the socket belongs to it.
    acc.user(&format!("btua{tag}"), &[&adm, &rd])?;
    acc.user(&format!("btur{tag}"), &[&rd])?;
    acc.user(&format!("btus{tag}"), &[])?;
    let (admin, reader, stranger) = (
        format!("btua{tag}"),
        format!("btur{tag}"),
        format!("btus{tag}"),
    );
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "svc",
        &json!({"image": DEMO_REF, "command": ["sleep", "60"], "stop_timeout": 1}).to_string(),
    )?;
    fs::write(
        env.config().join("berth.json"),
        json!({"api": {"admin_group": adm, "read_group": rd}}).to_string(),
    )?;
    // Other users must be able to reach the socket's directory.
    open_path_to(&env.socket())?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("svc", "running", std::time::Duration::from_secs(60))?;
    let meta = fs::metadata(env.socket())?;
    assert_eq!((meta.gid(), meta.mode() & 0o777), (read_gid, 0o660));

    let out = berth_as(&env, &reader, &["ps", "--json"])?;
    assert!(
        out.status.success(),
        "reader ps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = berth_as(&env, &reader, &["stop", "svc"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{out:?}"
    );
    assert_eq!(env.container("svc")?["state"], "running");

    // Two layers keep a stranger out: the socket's mode (it cannot even
    // connect), and, should the mode be opened up, SO_PEERCRED (the
    // daemon refuses the connection and logs why).
    let out = berth_as(&env, &stranger, &["ps"])?;
    assert!(!out.status.success(), "a stranger was let in");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    fs::set_permissions(env.socket(), fs::Permissions::from_mode(0o666))?;
    let out = berth_as(&env, &stranger, &["ps"])?;
    assert!(
        !out.status.success(),
        "a stranger was let in past SO_PEERCRED"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{out:?}"
    );

    // exec is an admin method: refused to a reader, journalled with the
    // admin's own uid (SO_PEERCRED) when an admin runs it.
    let out = berth_as(&env, &reader, &["exec", "svc", "true"])?;
    assert!(!out.status.success(), "a reader could exec");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{out:?}"
    );
    let out = berth_as(&env, &admin, &["exec", "svc", "sh", "-c", "exit 4"])?;
    assert_eq!(out.status.code(), Some(4), "admin exec: {out:?}");
    let admin_uid =
        String::from_utf8(run_ok(std::process::Command::new("id").args(["-u", &admin]))?.stdout)?;
    let events = run_ok(env.cli(&["events", "--json", "--since", "0"]))?;
    let exec_event = String::from_utf8_lossy(&events.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["kind"] == "container.exec")
        .expect("a container.exec event");
    assert_eq!(
        exec_event["data"]["peer"]["uid"].to_string(),
        admin_uid.trim(),
        "{exec_event}"
    );

    let out = berth_as(&env, &admin, &["stop", "svc"])?;
    assert!(
        out.status.success(),
        "admin stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.container("svc")?["state"], "exited");
    drop(daemon);
    let log = fs::read_to_string(env.config().with_file_name("daemon.stderr")).unwrap_or_default();
    assert!(
        log.contains("refused a connection") && log.contains("is not root"),
        "{log}"
    );
    Ok(())
}

/// The spec's credentials as `inspect` shows them: whole to an admin,
/// `<redacted>` (names kept) to the read group, which also gets no
/// `spec_hash` to test guesses against. `events` and `check` carry none.
#[test]
fn readers_see_credentials_redacted_and_admins_see_them_whole() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let tag = std::process::id() % 100_000;
    let (adm, rd) = (format!("bxa{tag}"), format!("bxr{tag}"));
    let (admin, reader) = (format!("bxua{tag}"), format!("bxur{tag}"));
    let mut acc = Accounts {
        users: vec![],
        groups: vec![],
    };
    acc.group(&adm)?;
    acc.group(&rd)?;
    acc.user(&admin, &[&adm, &rd])?;
    acc.user(&reader, &[&rd])?;
    let secret = format!("hunter2-{tag}-{}", std::process::id());
    let env = TestEnv::new()?;
    env.import_demo()?;
    let hook = json!({"path": "/bin/true", "args": ["true", "--token", secret],
                      "env": [format!("TOKEN={secret}")]});
    env.write_spec(
        "svc",
        &json!({"image": DEMO_REF, "command": ["sleep", "60"], "stop_timeout": 1,
                "env": {"DB_PASSWORD": secret, "MODE": "prod"},
                "hooks": {"prestart": [hook]},
                "mounts": [{"type": "volume", "name": "v", "target": "/v",
                            "driver_opts": {"password": secret}}]})
        .to_string(),
    )?;
    fs::write(
        env.config().join("berth.json"),
        json!({"api": {"admin_group": adm, "read_group": rd}}).to_string(),
    )?;
    open_path_to(&env.socket())?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("svc", "running", std::time::Duration::from_secs(60))?;

    let inspect = |user: &str| -> Result<serde_json::Value> {
        let out = berth_as(&env, user, &["inspect", "svc"])?;
        if !out.status.success() {
            bail!("{user} inspect: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let full = inspect(&admin)?;
    let spec = &full["spec"];
    assert_eq!(spec["env"]["DB_PASSWORD"], secret.as_str(), "{full}");
    assert_eq!(spec["hooks"]["prestart"][0]["args"][2], secret.as_str());
    assert_eq!(
        spec["mounts"][0]["driver_opts"]["password"],
        secret.as_str()
    );
    assert!(
        full["spec_hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256:"))
    );

    let seen = inspect(&reader)?;
    let spec = &seen["spec"];
    assert_eq!(
        spec["env"],
        json!({"DB_PASSWORD": "<redacted>", "MODE": "<redacted>"})
    );
    let hook = &spec["hooks"]["prestart"][0];
    assert_eq!(hook["args"], json!(["true", "<redacted>", "<redacted>"]));
    assert_eq!(hook["env"], json!(["TOKEN=<redacted>"]));
    assert_eq!(hook["path"], "/bin/true");
    assert_eq!(
        spec["mounts"][0]["driver_opts"],
        json!({"password": "<redacted>"})
    );
    assert_eq!(spec["command"], json!(["sleep", "60"]));
    assert_eq!(seen["spec_hash"], "<redacted>");
    assert_eq!(seen["state"], "running");
    let mut everything = seen.to_string();
    for args in [&["events", "--json"][..], &["check"], &["ps", "--json"]] {
        let out = berth_as(&env, &reader, args)?;
        everything += &String::from_utf8_lossy(&out.stdout);
        everything += &String::from_utf8_lossy(&out.stderr);
    }
    assert!(!everything.contains(&secret), "{everything}");
    Ok(())
}

/// Lets other users reach `socket`'s directory (the search bit on each
/// parent).
fn open_path_to(socket: &std::path::Path) -> Result<()> {
    let mut dir = socket.parent().map(|p| p.to_path_buf());
    while let Some(d) = dir {
        if d == std::path::Path::new("/") {
            break;
        }
        let mode = fs::metadata(&d)?.permissions().mode();
        fs::set_permissions(&d, fs::Permissions::from_mode(mode | 0o011))?;
        dir = d.parent().map(|p| p.to_path_buf());
    }
    Ok(())
}
