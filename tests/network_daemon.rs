//! `network: "cni"` through the daemon with the real CNI plugins: two
//! containers on the bridge talk TCP by name, a published port answers
//! from the host on 127.0.0.1, and after a kill -9 of the daemon, a
//! restart and a clean stop, no veth, IP allocation or iptables rule is
//! left. The network (name, bridge, subnet) is unique to the test.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, ensure};
use common::*;
use serde_json::json;

const DEMO_REF: &str = "localhost/demo/busybox:latest";
const LIMIT: Duration = Duration::from_secs(60);

/// The test's bridge and host-local state directory, removed at the end.
struct Bridge(String, String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        let _ = fs::remove_dir_all(Path::new("/var/lib/cni/networks").join(&self.1));
    }
}

fn get(port: u16) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /i HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn assert_clean(net: &str, ids: &[&str]) -> Result<()> {
    let alloc = Path::new("/var/lib/cni/networks").join(net);
    let left: Vec<String> = fs::read_dir(&alloc)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    ensure!(left.is_empty(), "IP allocations left: {left:?}");
    let rules = String::from_utf8(Command::new("iptables-save").output()?.stdout)?;
    for id in ids {
        let hits: Vec<&str> = rules.lines().filter(|l| l.contains(id)).collect();
        ensure!(hits.is_empty(), "iptables rules left for {id}: {hits:#?}");
    }
    Ok(())
}

#[test]
fn containers_talk_by_name_publish_ports_and_leave_nothing_behind() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let pid = std::process::id();
    let (net, bridge) = (format!("berth-nd-{pid}"), format!("bnd{}", pid % 100_000));
    let _bridge = Bridge(bridge.clone(), net.clone());
    let subnet = format!("10.{}.{}.0/24", 200 + pid % 50, pid % 250);
    let list = json!({"cniVersion": "1.0.0", "name": net, "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
        {"type": "firewall", "backend": "iptables"}]});
    fs::create_dir_all(env.config().join("cni"))?;
    fs::write(env.config().join("cni/berth.conflist"), list.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let srv = json!({"image": DEMO_REF, "network": "cni",
        "command": ["sh", "-c", "mkdir -p /tmp/w && echo page-from-srv > /tmp/w/i && httpd -f -p 8080 -h /tmp/w"],
        "ports": [{"host_port": port, "container_port": 8080, "host_ip": "127.0.0.1"}], "stop_timeout": 1});
    env.write_spec("srv", &srv.to_string())?;
    let cli = json!({"image": DEMO_REF, "network": "cni", "depends_on": {"srv": "started"}, "stop_timeout": 1,
        "command": ["sh", "-c", "for i in $(seq 50); do wget -qO- http://srv:8080/i && break; sleep 0.2; done; sleep 60"]});
    env.write_spec("cli", &cli.to_string())?;
    let mut daemon = env.start_daemon()?;
    env.wait_state("cli", "running", LIMIT)?;
    wait_for(LIMIT, || Ok(env.logs("cli")?.0.contains("page-from-srv")))?;
    let inspect: serde_json::Value =
        serde_json::from_slice(&run_ok(env.cli(&["inspect", "srv"]))?.stdout)?;
    let ip = inspect["ip"].as_str().unwrap_or("").to_string();
    ensure!(
        ip.starts_with(subnet.trim_end_matches("0/24")),
        "srv ip {ip:?} not in {subnet}"
    );
    let mut answer = String::new();
    wait_for(LIMIT, || {
        answer = get(port).unwrap_or_default();
        Ok(answer.contains("page-from-srv"))
    })?;
    // A crash: the daemon is gone without detaching anything.
    daemon.signal_and_wait(nix::sys::signal::Signal::SIGKILL, LIMIT)?;
    let mut daemon = env.start_daemon()?;
    env.wait_state("srv", "running", LIMIT)?;
    env.wait_state("cli", "running", LIMIT)?;
    let allocations = fs::read_dir(Path::new("/var/lib/cni/networks").join(&net))?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .parse::<std::net::IpAddr>()
                .is_ok()
        })
        .count();
    ensure!(
        allocations == 2,
        "after the crash and restart: {allocations} IP allocations, expected 2"
    );
    let (status, stderr) = daemon.signal_and_wait(nix::sys::signal::Signal::SIGTERM, LIMIT)?;
    ensure!(status.success(), "{stderr}");
    assert_clean(&net, &["berth-srv", "berth-cli", &ip])?;
    Ok(())
}
