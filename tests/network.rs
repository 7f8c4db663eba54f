//! CNI attachment with Debian's real plugins (bridge, host-local, portmap,
//! firewall), driven through `supervisor::network` directly: network
//! namespaces held by `unshare --net sleep`, traffic between them and
//! through a published port, and no veth, IP allocation or iptables rule
//! left after detach, after a failed ADD, or after a crash. Root only.
//! Each test has its own network name, bridge and subnet.

mod common;

use std::fs;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use berth::supervisor::plugins::network;
use common::cni::*;
use common::require_root;

#[test]
fn attached_namespaces_talk_publish_ports_and_detach_cleanly() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let mut net = TestNet::new(&[], &[])?;
    let host_port = free_port()?;
    let a = net.attach(&common::unique_name("a"), &[tcp(host_port, 8080, None)])?;
    let b = net.attach(&common::unique_name("b"), &[])?;
    for c in [&a, &b] {
        let subnet = format!("{}.", net.prefix);
        ensure!(
            c.ip.to_string().starts_with(&subnet),
            "{} not in {subnet}0/24",
            c.ip
        );
        let show = in_netns(&c.netns, &["ip", "-4", "-o", "addr", "show", "eth0"]);
        let addr = String::from_utf8(common::run_ok(show)?.stdout)?;
        ensure!(addr.contains(&format!("{}/24", c.ip)), "eth0: {addr}");
        ensure!(c.state.exists(), "no state file");
    }
    let b_ip = b.ip.to_string();
    common::run_ok(in_netns(
        &a.netns,
        &["busybox", "ping", "-c", "1", "-W", "3", &b_ip],
    ))?;

    let mut server = serve_once(&b.netns, 9000, "from-b")?;
    let got = answer_in_netns(&a.netns, b.ip, 9000)?;
    ensure!(got.trim() == "from-b", "a → b: {got:?}");
    let _ = server.wait();

    let mut server = serve_once(&a.netns, 8080, "from-a")?;
    let got = answer_on_localhost(host_port)?;
    ensure!(got.trim() == "from-a", "127.0.0.1:{host_port} → a: {got:?}");
    let _ = server.wait();

    // a's process exits first, as a container does before it is detached:
    // the pinned namespace still lets DEL remove everything.
    net.kill_holder(a.holder);
    network::detach(&net.settings, &a.name, Some(&a.netns), &a.state)?;
    network::detach(&net.settings, &b.name, Some(&b.netns), &b.state)?;
    net.assert_clean(&a)?;
    net.assert_clean(&b)?;
    // DEL again, and with no state at all, is fine.
    network::detach(&net.settings, &a.name, None, &a.state)?;
    Ok(())
}

#[test]
fn a_crash_leaves_nothing_after_cleanup_stale() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let mut net = TestNet::new(&[], &[])?;
    let ports = [tcp(free_port()?, 80, Some("127.0.0.1"))];
    let dead = net.attach(&common::unique_name("dead"), &ports)?;
    let alive = net.attach(&common::unique_name("alive"), &[])?;
    // The daemon "crashed": nothing was detached, the container died, and
    // the pin went with the daemon's mount namespace (systemd gives a
    // service its own), so its network namespace is gone too.
    net.kill_holder(dead.holder);
    let pin = dead.state.with_extension("netns");
    common::run_ok(Command::new("umount").arg("-l").arg(pin))?;
    let live = |n: &str| n == alive.name;
    let cleaned = network::cleanup_stale(&net.settings, &net.containers_dir(), &live);
    ensure!(cleaned.len() == 1, "{cleaned:?}");
    ensure!(
        cleaned[0].0 == dead.name && cleaned[0].1.is_ok(),
        "{cleaned:?}"
    );
    net.assert_clean(&dead)?;
    ensure!(alive.state.exists(), "a live container was detached");
    // Started again while still attached (its daemon died with it): the
    // old attachment is deleted before the new one is added.
    let again = net.attach(&alive.name, &[])?;
    let link = Command::new("ip")
        .args(["link", "show", "dev", &alive.veth])
        .output()?;
    ensure!(!link.status.success(), "old veth {} left", alive.veth);
    network::detach(&net.settings, &again.name, None, &again.state)?;
    net.assert_clean(&again)?;
    Ok(())
}

#[test]
fn a_failed_add_is_undone_and_reported() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let plugins = tempfile::tempdir()?;
    let seen = plugins.path().join("stdin");
    let script = format!(
        "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\ncat > {}\n\
         echo '{{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"boom\",\"details\":\"no way\"}}'\nexit 1\n",
        seen.display()
    );
    write_plugin(plugins.path(), "berth-test-fail", &script)?;
    let extra = [serde_json::json!({"type": "berth-test-fail"})];
    let mut net = TestNet::new(&extra, &[plugins.path().to_path_buf()])?;
    let name = common::unique_name("fail");
    let (holder, netns) = net.holder()?;
    let state = net.state(&name)?;
    let err = network::attach(&net.settings, &name, &netns, &[], &state)
        .err()
        .context("ADD should fail")?;
    let msg = err.to_string();
    let expected = format!("container {name}: CNI ADD plugin berth-test-fail: ");
    ensure!(msg.contains(&expected), "{msg}");
    ensure!(
        msg.contains("code 7 (invalid network config): boom: no way"),
        "{msg}"
    );
    // The failing plugin got bridge's result; then everything was deleted.
    let stdin: serde_json::Value = serde_json::from_slice(&fs::read(&seen)?)?;
    let prev = &stdin["prevResult"];
    let ip = prev["ips"][0]["address"]
        .as_str()
        .and_then(|a| a.split('/').next()?.parse().ok());
    let attempted = Attached {
        name,
        holder,
        netns,
        state,
        ip: ip.context("prevResult without an IP")?,
        veth: host_veth(prev, &net.bridge).context("no veth")?,
    };
    net.assert_clean(&attempted)
}

#[test]
fn a_missing_plugin_is_named_with_the_path_searched() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let missing = [serde_json::json!({"type": "berth-test-missing"})];
    let mut net = TestNet::new(&missing, &[])?;
    let name = common::unique_name("missing");
    let (_, netns) = net.holder()?;
    let state = net.state(&name)?;
    let err = network::attach(&net.settings, &name, &netns, &[], &state)
        .err()
        .context("ADD should fail")?;
    let expected = "plugin berth-test-missing: not found in CNI_PATH /usr/lib/cni";
    ensure!(err.to_string().contains(expected), "{err}");
    ensure!(!state.exists() && !state.with_extension("netns").exists());
    let err = network::check(&net.settings)
        .err()
        .context("check should fail")?;
    ensure!(
        err.to_string()
            .contains("plugin berth-test-missing: not found"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_failing_del_still_runs_the_others_and_can_be_retried() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let plugins = tempfile::tempdir()?;
    let broken = plugins.path().join("broken");
    // Passes prevResult through on ADD; fails DEL while `broken` exists.
    let script = format!(
        "#!/usr/bin/python3\nimport json, os, sys\nconf = json.load(sys.stdin)\n\
         if os.environ['CNI_COMMAND'] == 'ADD':\n    print(json.dumps(conf['prevResult']))\n\
         elif os.path.exists({:?}):\n    print(json.dumps({{'code': 11, 'msg': 'busy'}}))\n    sys.exit(1)\n",
        broken.display().to_string()
    );
    write_plugin(plugins.path(), "berth-test-flaky", &script)?;
    let extra = [serde_json::json!({"type": "berth-test-flaky"})];
    let mut net = TestNet::new(&extra, &[plugins.path().to_path_buf()])?;
    network::check(&net.settings)?;
    let c = net.attach(&common::unique_name("flaky"), &[])?;
    fs::write(&broken, "")?;
    let err = network::detach(&net.settings, &c.name, None, &c.state)
        .err()
        .context("DEL should fail")?;
    let expected = "CNI DEL plugin berth-test-flaky: failed with code 11 (try again later): busy";
    ensure!(err.to_string().contains(expected), "{err}");
    // bridge's DEL ran anyway; the state stays for a retry, the pin does not.
    let link = Command::new("ip")
        .args(["link", "show", "dev", &c.veth])
        .output()?;
    ensure!(!link.status.success(), "veth {} left", c.veth);
    ensure!(c.state.exists(), "state removed after a failed DEL");
    ensure!(!c.state.with_extension("netns").exists(), "pin kept");
    fs::remove_file(&broken)?;
    network::detach(&net.settings, &c.name, None, &c.state)?;
    net.assert_clean(&c)
}
