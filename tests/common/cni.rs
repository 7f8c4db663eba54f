//! CNI networks for tests/network.rs: a test network with its own name,
//! bridge and subnet (Debian's bridge, host-local, portmap and firewall
//! plugins), namespaces held by `unshare --net sleep` attached to it, and
//! traffic helpers (one-shot servers, clients in a namespace or on the
//! host). Drop detaches, kills the holders and deletes the bridge.

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

/// A test network and the namespaces attached to it; Drop detaches what is
/// still attached, kills the holders and deletes the bridge.
pub struct TestNet {
    pub name: String,
    pub bridge: String,
    pub prefix: String,
    pub dir: tempfile::TempDir,
    pub settings: NetworkSettings,
    pub holders: Vec<Child>,
}

impl TestNet {
    /// `extra` plugins are appended after bridge (a test's failing one).
    pub fn new(extra: &[serde_json::Value], cni_path: &[PathBuf]) -> Result<Self> {
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

    pub fn containers_dir(&self) -> PathBuf {
        self.dir.path().join("containers")
    }

    pub fn state(&self, container: &str) -> Result<PathBuf> {
        let d = self.containers_dir().join(container);
        fs::create_dir_all(&d)?;
        Ok(d.join(STATE_FILE))
    }

    /// A process in a new network namespace; returns its index and netns.
    pub fn holder(&mut self) -> Result<(usize, PathBuf)> {
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

    pub fn kill_holder(&mut self, i: usize) {
        let _ = self.holders[i].kill();
        let _ = self.holders[i].wait();
    }

    pub fn attach(&mut self, container: &str, ports: &[PortSpec]) -> Result<Attached> {
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
    pub fn assert_clean(&self, c: &Attached) -> Result<()> {
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

pub struct Attached {
    pub name: String,
    pub holder: usize,
    pub netns: PathBuf,
    pub state: PathBuf,
    pub ip: IpAddr,
    pub veth: String,
}

/// The host end of the veth: the result's interface that is neither in a
/// sandbox nor the bridge.
pub fn host_veth(result: &serde_json::Value, bridge: &str) -> Option<String> {
    result["interfaces"].as_array()?.iter().find_map(|i| {
        let name = i["name"].as_str()?;
        let sandboxed = i["sandbox"].as_str().is_some_and(|s| !s.is_empty());
        (!sandboxed && name != bridge).then(|| name.to_string())
    })
}

pub fn in_netns(netns: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "nsenter"])
        .arg(format!("--net={}", netns.display()))
        .args(args);
    cmd
}

/// A one-shot TCP server in `netns` that answers `reply`.
pub fn serve_once(netns: &Path, port: u16, reply: &str) -> Result<Child> {
    let port = port.to_string();
    let args = ["busybox", "nc", "-l", "-p", &port, "-e", "echo", reply];
    Ok(in_netns(netns, &args).stdout(Stdio::null()).spawn()?)
}

/// Retries `connect` until it yields text (the server may not listen yet).
pub fn read_until_ok(mut connect: impl FnMut() -> Result<String>) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect() {
            Ok(s) if !s.is_empty() => return Ok(s),
            r if Instant::now() >= deadline => bail!("no answer: {r:?}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn tcp(host_port: u16, container_port: u16, host_ip: Option<&str>) -> PortSpec {
    PortSpec {
        host_port,
        container_port,
        protocol: "tcp".into(),
        host_ip: host_ip.map(str::to_string),
    }
}

/// What a one-shot server on `ip:port` answers a client in `from`.
pub fn answer_in_netns(from: &Path, ip: IpAddr, port: u16) -> Result<String> {
    let (ip, port) = (ip.to_string(), port.to_string());
    read_until_ok(|| {
        let out = in_netns(from, &["busybox", "nc", "-w", "3", &ip, &port])
            .stdin(Stdio::null())
            .output()?;
        Ok(String::from_utf8(out.stdout)?)
    })
}

/// What a one-shot server answers a client on the host at 127.0.0.1:port.
pub fn answer_on_localhost(port: u16) -> Result<String> {
    read_until_ok(|| {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    })
}

/// An executable plugin named `name` in `dir`.
pub fn write_plugin(dir: &Path, name: &str, script: &str) -> Result<()> {
    super::write_executable(&dir.join(name), script)
}
