//! CNI attachment with Debian's real plugins (bridge, host-local, portmap,
//! firewall), driven through `supervisor::network` directly: network
//! namespaces held by `unshare --net sleep`, traffic between them and
//! through a published port, and no veth, IP allocation or iptables rule
//! left after detach, after a failed ADD, or after a crash. Root only.
//! Each test has its own network name, bridge and subnet.

mod common;

use std::fs;
use std::io::Read;
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use berth::supervisor::plugins::network::{self, NetworkSettings, STATE_FILE};
use berth::supervisor::spec::service::PortSpec;
use common::require_root;

/// A test network and the namespaces attached to it; Drop detaches what is
/// still attached, kills the holders and deletes the bridge.
struct TestNet {
    name: String,
    bridge: String,
    prefix: String,
    dir: tempfile::TempDir,
    settings: NetworkSettings,
    holders: Vec<Child>,
}

impl TestNet {
    /// `extra` plugins are appended after bridge (a test's failing one).
    fn new(extra: &[serde_json::Value], cni_path: &[PathBuf]) -> Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("berth-test-{pid}-{n}");
        let bridge = format!("bt{}x{n}", pid % 1_000_000);
        let prefix = format!("10.{}.{}", 214 + n, pid % 250);
        let dir = tempfile::tempdir()?;
        let mut plugins = vec![serde_json::json!({
            "type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true,
            "hairpinMode": true,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": format!("{prefix}.0/24")}]],
                     "routes": [{"dst": "0.0.0.0/0"}]}
        })];
        if extra.is_empty() {
            plugins.push(serde_json::json!({"type": "portmap",
                "capabilities": {"portMappings": true}, "snat": true}));
            plugins.push(serde_json::json!({"type": "firewall", "backend": "iptables"}));
        }
        plugins.extend_from_slice(extra);
        let list = serde_json::json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
        let conflist = dir.path().join("test.conflist");
        fs::write(&conflist, serde_json::to_vec_pretty(&list)?)?;
        let mut settings = NetworkSettings::for_config_dir(dir.path());
        settings.conflist = conflist;
        settings.cni_path = cni_path.to_vec();
        settings.cni_path.push("/usr/lib/cni".into());
        Ok(Self {
            name,
            bridge,
            prefix,
            dir,
            settings,
            holders: Vec::new(),
        })
    }

    fn containers_dir(&self) -> PathBuf {
        self.dir.path().join("containers")
    }

    fn state(&self, container: &str) -> Result<PathBuf> {
        let d = self.containers_dir().join(container);
        fs::create_dir_all(&d)?;
        Ok(d.join(STATE_FILE))
    }

    /// A process in a new network namespace; returns its index and netns.
    fn holder(&mut self) -> Result<(usize, PathBuf)> {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "300"])
            .spawn()
            .context("unshare --net sleep")?;
        let ns = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        self.holders.push(child);
        let own = fs::read_link("/proc/self/ns/net")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        // Until unshare has run, the process is still in our namespace.
        while fs::read_link(&ns).ok().as_ref() == Some(&own) {
            ensure!(Instant::now() < deadline, "unshare did not create a netns");
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok((self.holders.len() - 1, ns))
    }

    fn kill_holder(&mut self, i: usize) {
        let _ = self.holders[i].kill();
        let _ = self.holders[i].wait();
    }

    fn attach(&mut self, container: &str, ports: &[PortSpec]) -> Result<Attached> {
        let (holder, netns) = self.holder()?;
        let state = self.state(container)?;
        let a = network::attach(&self.settings, container, &netns, ports, &state)?;
        let ip = a.ip.context("no IP in the result")?;
        let veth = host_veth(&a.result, &self.bridge).context("no host veth in the result")?;
        Ok(Attached {
            name: container.to_string(),
            holder,
            netns,
            state,
            ip,
            veth,
        })
    }

    /// Nothing of `c` is left on the host.
    fn assert_clean(&self, c: &Attached) -> Result<()> {
        ensure!(!c.state.exists(), "state file left: {}", c.state.display());
        ensure!(!c.state.with_extension("netns").exists(), "netns pin left");
        let link = Command::new("ip")
            .args(["link", "show", "dev", &c.veth])
            .output()?;
        ensure!(!link.status.success(), "veth {} left", c.veth);
        let alloc = Path::new("/var/lib/cni/networks")
            .join(&self.name)
            .join(c.ip.to_string());
        ensure!(!alloc.exists(), "IP allocation left: {}", alloc.display());
        let rules = String::from_utf8(Command::new("iptables-save").output()?.stdout)?;
        let id = format!("\"berth-{}\"", c.name);
        for needle in [id, format!("{}/", c.ip), format!("{}:", c.ip)] {
            let left: Vec<_> = rules.lines().filter(|l| l.contains(&needle)).collect();
            ensure!(
                left.is_empty(),
                "iptables rules left for {needle}: {left:#?}"
            );
        }
        Ok(())
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(self.containers_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let _ = network::detach(&self.settings, &name, None, &e.path().join(STATE_FILE));
            }
        }
        for i in 0..self.holders.len() {
            self.kill_holder(i);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(Path::new("/var/lib/cni/networks").join(&self.name));
    }
}

struct Attached {
    name: String,
    holder: usize,
    netns: PathBuf,
    state: PathBuf,
    ip: IpAddr,
    veth: String,
}

/// The host end of the veth: the result's interface that is neither in a
/// sandbox nor the bridge.
fn host_veth(result: &serde_json::Value, bridge: &str) -> Option<String> {
    result["interfaces"].as_array()?.iter().find_map(|i| {
        let name = i["name"].as_str()?;
        let sandboxed = i["sandbox"].as_str().is_some_and(|s| !s.is_empty());
        (!sandboxed && name != bridge).then(|| name.to_string())
    })
}

fn in_netns(netns: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "nsenter"])
        .arg(format!("--net={}", netns.display()))
        .args(args);
    cmd
}

/// A one-shot TCP server in `netns` that answers `reply`.
fn serve_once(netns: &Path, port: u16, reply: &str) -> Result<Child> {
    let port = port.to_string();
    let args = ["busybox", "nc", "-l", "-p", &port, "-e", "echo", reply];
    Ok(in_netns(netns, &args).stdout(Stdio::null()).spawn()?)
}

/// Retries `connect` until it yields text (the server may not listen yet).
fn read_until_ok(mut connect: impl FnMut() -> Result<String>) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect() {
            Ok(s) if !s.is_empty() => return Ok(s),
            r if Instant::now() >= deadline => bail!("no answer: {r:?}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn tcp(host_port: u16, container_port: u16, host_ip: Option<&str>) -> PortSpec {
    PortSpec {
        host_port,
        container_port,
        protocol: "tcp".into(),
        host_ip: host_ip.map(str::to_string),
    }
}

/// What a one-shot server on `ip:port` answers a client in `from`.
fn answer_in_netns(from: &Path, ip: IpAddr, port: u16) -> Result<String> {
    let (ip, port) = (ip.to_string(), port.to_string());
    read_until_ok(|| {
        let out = in_netns(from, &["busybox", "nc", "-w", "3", &ip, &port])
            .stdin(Stdio::null())
            .output()?;
        Ok(String::from_utf8(out.stdout)?)
    })
}

/// What a one-shot server answers a client on the host at 127.0.0.1:port.
fn answer_on_localhost(port: u16) -> Result<String> {
    read_until_ok(|| {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    })
}

/// An executable plugin named `name` in `dir`.
fn write_plugin(dir: &Path, name: &str, script: &str) -> Result<()> {
    let path = dir.join(name);
    fs::write(&path, script)?;
    common::run_ok(Command::new("chmod").arg("755").arg(&path))?;
    Ok(())
}

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
