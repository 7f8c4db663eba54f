//! The isolation options beyond the default battery (tests/hardening.rs):
//! user namespaces, bind propagation, custom seccomp profiles, `ALL`
//! capabilities, and what `inspect` and `stats` report. Real kernel,
//! real daemon, as root.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use common::*;
use serde_json::{Value, json};

const DEMO_REF: &str = "localhost/demo/busybox:latest";
const LIMIT: Duration = Duration::from_secs(60);

fn sh(script: &str, extra: Value) -> String {
    let mut s =
        json!({"image": DEMO_REF, "command": ["sh", "-c", script], "restart": {"policy": "no"}});
    if let (Value::Object(base), Value::Object(more)) = (&mut s, extra) {
        base.extend(more);
    }
    s.to_string()
}

fn finished(env: &TestEnv, name: &str) -> Result<(Value, String, String)> {
    let record = env.wait_state(name, "exited", LIMIT)?;
    let (out, err) = env.logs(name)?;
    Ok((record, out, err))
}

#[test]
fn a_userns_container_is_nobody_on_the_host() -> Result<()> {
    if !require_root() || !require_feature(Feature::UserNamespaces) {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let host_dir = tempfile::tempdir()?;
    let script = "cat /proc/self/uid_map; id -u; echo x > /etc/made && echo etc-ok; \
        ls /sys/class/net; echo t > /tmp/t && echo tmp-ok; echo s > /dev/shm/s && echo shm-ok; \
        touch /data/f 2>/dev/null && echo DATA-WRITABLE || echo data-refused; \
        hostname; sleep 30";
    let extra = json!({"userns": "auto", "hostname": "inner",
        "mounts": [{"type": "tmpfs", "target": "/tmp"},
                   {"type": "bind", "source": host_dir.path(), "target": "/data"}]});
    env.write_spec("u", &sh(script, extra))?;
    let _daemon = env.start_daemon_checked()?;
    let record = env.wait_state("u", "running", LIMIT)?;
    wait_for(LIMIT, || Ok(env.logs("u")?.0.contains("inner")))?;
    let (out, err) = env.logs("u")?;
    let ranges: Value = serde_json::from_slice(&fs::read(env.root().join("userns-ranges.json"))?)?;
    let start = ranges["u"].as_u64().expect("a range for u");
    let fields: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(fields, ["0", &start.to_string(), "65536"], "{out}{err}");
    for want in [
        "\n0\n",
        "etc-ok",
        "\nlo\n",
        "tmp-ok",
        "shm-ok",
        "data-refused",
        "inner",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}{err}");
    }
    // From the host, the container's root is the mapped uid.
    let pid = record["pid"].as_i64().expect("pid");
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
    assert!(uid_line.contains(&start.to_string()), "{uid_line}");
    // The upper layer holds what it wrote under the mapped ids.
    let made = env.root().join("containers/u/upper/etc/made");
    assert_eq!(u64::from(fs::metadata(&made)?.uid()), start);
    Ok(())
}

#[test]
fn a_changed_mapping_starts_a_fresh_upper_layer() -> Result<()> {
    if !require_root() || !require_feature(Feature::UserNamespaces) {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = "ls /etc/marker 2>/dev/null && echo FOUND || echo fresh; touch /etc/marker";
    env.write_spec("m", &sh(script, json!({})))?;
    let daemon = env.start_daemon_checked()?;
    let (_, out, _) = finished(&env, "m")?;
    assert_eq!(out, "fresh\n");
    run_ok(env.cli(&["start", "m"]))?;
    let found = wait_for(LIMIT, || Ok(env.logs("m")?.0.contains("FOUND")));
    assert!(
        found.is_ok(),
        "logs: {:?}; record: {}",
        env.logs("m")?,
        env.container("m")?
    );
    drop(daemon);
    let maps = json!({"uid_map": [{"container_id": 0, "host_id": 300000, "size": 65536}],
                      "gid_map": [{"container_id": 0, "host_id": 300000, "size": 65536}]});
    env.write_spec("m", &sh(script, json!({"userns": maps})))?;
    let _daemon = env.start_daemon_checked()?;
    let fresh = wait_for(LIMIT, || Ok(env.logs("m")?.0.ends_with("fresh\n")));
    assert!(
        fresh.is_ok(),
        "logs: {:?}; record: {}",
        env.logs("m")?,
        env.container("m")?
    );
    Ok(())
}

#[test]
fn rslave_binds_see_later_host_mounts_and_rprivate_do_not() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let src = tempfile::tempdir()?;
    let sub = src.path().join("sub");
    fs::create_dir(&sub)?;
    // The source must be a shared mount for a slave to follow it.
    let bind = |args: &[&str]| Command::new("mount").args(args).status();
    assert!(
        bind(&[
            "--bind",
            &src.path().to_string_lossy(),
            &src.path().to_string_lossy()
        ])?
        .success()
    );
    assert!(bind(&["--make-shared", &src.path().to_string_lossy()])?.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount")
                .args(["-R", "-l"])
                .arg(&self.0)
                .status();
        }
    }
    let _guard = Unmount(src.path().to_path_buf());
    let script = "for i in $(seq 100); do [ -e /data/sub/late ] && { echo SEEN; exit 0; }; sleep 0.1; done; echo unseen";
    for (name, prop) in [("slave", "rslave"), ("private", "rprivate")] {
        let m = json!({"mounts": [{"type": "bind", "source": src.path(), "target": "/data", "propagation": prop}]});
        env.write_spec(name, &sh(script, m))?;
    }
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("slave", "running", LIMIT)?;
    env.wait_state("private", "running", LIMIT)?;
    std::thread::sleep(Duration::from_millis(300));
    let tmp = tempfile::tempdir()?;
    fs::write(tmp.path().join("late"), "x")?;
    assert!(
        bind(&[
            "--bind",
            &tmp.path().to_string_lossy(),
            &sub.to_string_lossy()
        ])?
        .success()
    );
    let (_, slave, _) = finished(&env, "slave")?;
    let (_, private, _) = finished(&env, "private")?;
    assert_eq!((slave.as_str(), private.as_str()), ("SEEN\n", "unseen\n"));
    Ok(())
}

#[test]
fn a_custom_seccomp_profile_applies_and_a_broken_one_is_refused() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // Docker's format: allow everything but mkdir/mkdirat (EACCES = 13).
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
    fs::write(env.config().join("nomkdir.json"), profile.to_string())?;
    let script = "mkdir /tmp/d 2>&1 || true; echo x > /tmp/f && echo write-ok";
    env.write_spec("p", &sh(script, json!({"seccomp": "nomkdir.json"})))?;
    let daemon = env.start_daemon_checked()?;
    let (_, out, _) = finished(&env, "p")?;
    assert!(
        out.contains("Permission denied") && out.contains("write-ok"),
        "{out}"
    );
    drop(daemon);
    fs::write(
        env.config().join("nomkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}]}"#,
    )?;
    let check = berth(&["check"]).arg(env.config()).output()?;
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stderr.contains("p.json:1:")
            && stderr.contains("seccomp:")
            && stderr.contains("SCMP_ACT_NOPE"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn inspect_and_stats_report_isolation_and_usage() -> Result<()> {
    if !require_root() || !require_feature(Feature::LandlockAbi(1)) {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let extra = json!({"resources": {"memory": "64m", "pids_limit": 32},
                       "capabilities": {"add": ["ALL"], "drop": ["SYS_ADMIN"]}});
    env.write_spec("s", &sh("grep CapEff /proc/self/status; sleep 30", extra))?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("s", "running", LIMIT)?;
    let inspect: Value = serde_json::from_slice(&run_ok(env.cli(&["inspect", "s"]))?.stdout)?;
    let security = &inspect["security"];
    assert!(
        security["seccomp"]
            .as_str()
            .unwrap_or("")
            .starts_with("default ("),
        "{security}"
    );
    // What both berth and the kernel know: the kernel asked directly, and
    // the ABI berth asks for (docs/security.md).
    let expected =
        common::features::landlock_abi().min(berth::kernel::landlock::CONTAINER_ABI_NUMBER);
    assert!(expected >= 1, "no Landlock, but require_feature passed");
    assert_eq!(
        security["landlock_abi"].as_u64(),
        Some(u64::from(expected)),
        "{security}"
    );
    let caps: Vec<&str> = security["capabilities"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        caps.contains(&"CAP_NET_ADMIN") && !caps.contains(&"CAP_SYS_ADMIN"),
        "{caps:?}"
    );
    assert_eq!(inspect["spec"]["resources"]["pids_limit"], 32);
    let stats: Value = serde_json::from_slice(&run_ok(env.cli(&["stats", "s", "--json"]))?.stdout)?;
    assert_eq!(stats["memory_limit_bytes"], 64 << 20);
    assert_eq!(stats["pids_limit"], 32);
    assert!(stats["pids_current"].as_u64().unwrap_or(0) >= 1, "{stats}");
    run_ok(env.cli(&["stop", "s"]))?;
    let out = env.cli(&["stats", "s"]).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    Ok(())
}

#[test]
fn a_syslog_daemon_can_make_dev_log_and_dev_and_root_take_entries_as_under_docker() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let tries = "touch /dev/reg 2>/dev/null && echo dev-file-made || echo dev-file-refused; \
        mkdir /newtop 2>/dev/null && echo top-made || echo top-refused; \
        mknod /dev/n c 1 3 2>/dev/null && echo NODE-MADE || echo node-refused";
    let script = format!(
        "syslogd -O /tmp/log; sleep 0.3; logger hello-syslog; sleep 0.3; \
        grep -c hello-syslog /tmp/log; [ -S /dev/log ] && echo socket-ok; {tries}"
    );
    env.write_spec("sys", &sh(&script, json!({})))?;
    // A read-only root keeps /dev's tmpfs writable, as Docker's --read-only.
    env.write_spec("ro", &sh(tries, json!({"read_only": true})))?;
    let _daemon = env.start_daemon_checked()?;
    let (_, out, err) = finished(&env, "sys")?;
    assert_eq!(
        out, "1\nsocket-ok\ndev-file-made\ntop-made\nnode-refused\n",
        "{err}"
    );
    let (_, out, err) = finished(&env, "ro")?;
    assert_eq!(out, "dev-file-made\ntop-refused\nnode-refused\n", "{err}");
    Ok(())
}

#[test]
fn landlock_tcp_port_lists_and_shm_size_and_group_add() -> Result<()> {
    if !require_root() || !require_feature(Feature::LandlockAbi(4)) {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = "mkdir -p /tmp/www && echo page > /tmp/www/i; \
        httpd -p 127.0.0.1:8080 -h /tmp/www && echo bind-8080-ok; \
        httpd -f -p 127.0.0.1:8081 -h /tmp/www 2>&1 | head -1; \
        wget -qO- http://127.0.0.1:8080/i 2>&1 | head -1; \
        df -k /dev/shm | tail -1 | awk '{print $2}'; id -G";
    let extra = json!({"landlock": {"net": {"bind_tcp": [8080], "connect_tcp": [443]}},
                       "shm_size": "2m", "group_add": ["audio", "1234"]});
    env.write_spec("net", &sh(script, extra))?;
    let open_script = "mkdir -p /tmp/www && echo page > /tmp/www/i; httpd -p 127.0.0.1:8080 -h /tmp/www; wget -qO- http://127.0.0.1:8080/i";
    env.write_spec("open", &sh(open_script, json!({})))?;
    let _daemon = env.start_daemon_checked()?;
    let (_, out, err) = finished(&env, "net")?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"bind-8080-ok"), "{out}{err}");
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.contains("Permission denied")),
        "bind 8081: {out}{err}"
    );
    assert!(
        lines
            .get(2)
            .is_some_and(|l| l.contains("denied") || l.contains("can't connect")),
        "connect 8080: {out}{err}"
    );
    assert_eq!(lines.get(3), Some(&"2048"), "/dev/shm size: {out}");
    let groups: Vec<&str> = lines.get(4).unwrap_or(&"").split_whitespace().collect();
    assert!(
        groups.contains(&"29") && groups.contains(&"1234"),
        "groups: {out}"
    );
    // Without port lists the same server is reachable.
    let (_, out, err) = finished(&env, "open")?;
    assert_eq!(out, "page\n", "{err}");
    Ok(())
}

#[test]
fn network_none_has_only_loopback_and_host_shares_the_hosts() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = "ls /sys/class/net | sort | tr '\\n' ' '";
    env.write_spec("own", &sh(script, json!({})))?;
    env.write_spec("shared", &sh(script, json!({"network": "host"})))?;
    let _daemon = env.start_daemon_checked()?;
    let (_, own, _) = finished(&env, "own")?;
    let (_, shared, err) = finished(&env, "shared")?;
    assert_eq!(own, "lo ");
    // The host's default-route device: stable while other tests add and
    // remove veths and bridges.
    let routes = std::fs::read_to_string("/proc/net/route")?;
    let uplink = routes
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1) == Some("00000000"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("lo")
        .to_string();
    let devices: Vec<&str> = shared.split_whitespace().collect();
    assert!(
        devices.contains(&"lo") && devices.contains(&uplink.as_str()),
        "{uplink} missing from {shared:?} {err}"
    );
    Ok(())
}
