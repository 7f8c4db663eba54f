//! Docker volume plugins end to end at the module level: a real plugin
//! process (tests/data/volume-plugin.py) speaking the protocol over a Unix
//! socket, found through discovery directories inside each test's tempdir.
//! Needs no root: nothing here mounts.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth::supervisor::plugins::volumes::plugin::Plugin;
use berth::supervisor::plugins::volumes::{
    PluginSettings, mount_volumes_with, unmount_volumes_with,
};
use berth::supervisor::spec::Spec;
use berth::supervisor::spec::service::Seconds;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The plugin process, killed even when a test fails.
struct PluginProcess {
    child: Child,
    root: PathBuf,
    log: PathBuf,
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PluginProcess {
    fn start(dir: &Path, socket: &Path, extra: &[&str]) -> Result<PluginProcess> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/volume-plugin.py");
        let root = dir.join("plugin-root");
        let log = dir.join("plugin.log");
        let child = Command::new("python3")
            .arg(script)
            .arg("--socket")
            .arg(socket)
            .arg("--root")
            .arg(&root)
            .arg("--log")
            .arg(&log)
            .args(extra)
            .spawn()
            .context("start python3 tests/data/volume-plugin.py")?;
        let plugin = PluginProcess { child, root, log };
        // Listening, not just bound: a connect succeeds.
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(socket).is_err() {
            if Instant::now() > deadline {
                bail!("the plugin never listened on {}", socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(plugin)
    }

    /// Every call so far, in order: (method, body).
    fn calls(&self) -> Result<Vec<(String, Value)>> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let mut calls = Vec::new();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)?;
            let method = v["method"].as_str().unwrap_or_default().to_string();
            assert_eq!(v["accept"], "application/vnd.docker.plugins.v1.2+json");
            assert_eq!(v["host"], "plugin.moby.localhost");
            calls.push((method, v["body"].clone()));
        }
        Ok(calls)
    }

    fn methods(&self) -> Result<Vec<String>> {
        Ok(self.calls()?.into_iter().map(|(m, _)| m).collect())
    }
}

/// run/ holds sockets, etc/ and lib/ spec files, store/ local volumes.
struct Setup {
    dir: TempDir,
    settings: PluginSettings,
}

impl Setup {
    fn new(timeout: Duration) -> Result<Setup> {
        let dir = tempfile::tempdir()?;
        let settings = PluginSettings {
            socket_dir: dir.path().join("run"),
            spec_dirs: vec![dir.path().join("etc"), dir.path().join("lib")],
            timeout: Seconds(timeout),
        };
        for d in ["run", "etc", "lib", "store"] {
            fs::create_dir_all(dir.path().join(d))?;
        }
        Ok(Setup { dir, settings })
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn plugin(&self, socket_rel: &str, extra: &[&str]) -> Result<PluginProcess> {
        PluginProcess::start(self.dir.path(), &self.path(socket_rel), extra)
    }

    fn mount(&self, container: &str, spec: &Spec) -> Result<BTreeMap<String, PathBuf>, String> {
        mount_volumes_with(&self.path("store"), container, spec, &self.settings)
    }

    fn unmount(&self, container: &str, spec: &Spec) -> Vec<String> {
        unmount_volumes_with(&self.path("store"), container, spec, &self.settings)
    }
}

fn spec(mounts: Value) -> Result<Spec> {
    Ok(serde_json::from_value(
        json!({"image": "localhost/x:1", "mounts": mounts}),
    )?)
}

fn volume(name: &str, driver: &str, opts: Value) -> Value {
    json!({"type": "volume", "name": name, "target": format!("/{name}"),
           "driver": driver, "driver_opts": opts})
}

#[test]
fn mount_and_unmount_through_a_socket_plugin() -> Result<()> {
    let s = Setup::new(Duration::from_secs(10))?;
    let plugin = s.plugin("run/testvol.sock", &[])?;
    let spec = spec(json!([
        volume("data", "testvol", json!({"size": "1G"})),
        {"type": "volume", "name": "cache", "target": "/cache"},
        volume("data", "testvol", json!({"size": "1G"})),
    ]))?;
    let paths = s.mount("web", &spec).map_err(anyhow::Error::msg)?;
    let data = plugin.root.join("volumes/data");
    assert_eq!(paths["data"], data);
    assert_eq!(paths["cache"], s.path("store/volumes/cache/_data"));
    // The returned path is the plugin's directory: what one side writes,
    // the other sees.
    fs::write(paths["data"].join("hello"), "from the test")?;
    assert_eq!(fs::read_to_string(data.join("hello"))?, "from the test");
    let calls = plugin.calls()?;
    let methods: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    // The volume listed twice is mounted once.
    assert_eq!(
        methods,
        [
            "Plugin.Activate",
            "VolumeDriver.Create",
            "VolumeDriver.Mount"
        ]
    );
    assert_eq!(calls[0].1, Value::Null, "Activate has no body");
    assert_eq!(calls[1].1, json!({"Name": "data", "Opts": {"size": "1G"}}));
    assert_eq!(calls[2].1, json!({"Name": "data", "ID": "berth-web"}));

    assert_eq!(s.unmount("web", &spec), Vec::<String>::new());
    let calls = plugin.calls()?;
    let (method, body) = calls.last().context("no calls")?;
    assert_eq!(method, "VolumeDriver.Unmount");
    assert_eq!(*body, calls[2].1, "Unmount names the Mount's volume and ID");

    // A restart calls Create again on the existing volume: it must succeed.
    let again = s.mount("web", &spec).map_err(anyhow::Error::msg)?;
    assert_eq!(again["data"], data);
    assert!(data.join("hello").exists());
    Ok(())
}

#[test]
fn spec_and_json_files_point_at_sockets_elsewhere() -> Result<()> {
    let s = Setup::new(Duration::from_secs(10))?;
    let a = s.plugin("elsewhere/a/a.sock", &[])?;
    let b_dir = s.path("b");
    fs::create_dir_all(&b_dir)?;
    let b = PluginProcess::start(&b_dir, &s.path("elsewhere/b.sock"), &[])?;
    fs::create_dir_all(s.path("etc/specvol"))?;
    let a_url = format!("unix://{}\n", s.path("elsewhere/a/a.sock").display());
    fs::write(s.path("etc/specvol/specvol.spec"), a_url)?;
    let b_json = json!({"Name": "jsonvol", "Addr": format!("unix://{}", s.path("elsewhere/b.sock").display())});
    fs::write(s.path("lib/jsonvol.json"), b_json.to_string())?;
    let spec = spec(json!([
        volume("one", "specvol", json!({})),
        volume("two", "jsonvol", json!({}))
    ]))?;
    let paths = s.mount("db", &spec).map_err(anyhow::Error::msg)?;
    assert_eq!(paths["one"], a.root.join("volumes/one"));
    assert_eq!(paths["two"], b.root.join("volumes/two"));
    assert_eq!(a.methods()?.len(), 3);
    assert_eq!(b.methods()?.len(), 3);
    Ok(())
}

#[test]
fn the_other_volume_driver_calls() -> Result<()> {
    let s = Setup::new(Duration::from_secs(10))?;
    let _plugin = s.plugin("run/testvol/testvol.sock", &[])?;
    let p = Plugin::activate("testvol", &s.settings)?;
    p.create("v1", &BTreeMap::new())?;
    p.create("v2", &BTreeMap::new())?;
    let names: Vec<String> = p.list()?.into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["v1", "v2"]);
    let v1 = p.get("v1")?;
    assert_eq!(Path::new(&v1.mountpoint), p.path("v1")?);
    assert_eq!(p.capabilities()?.scope, "local");
    p.remove("v1")?;
    let e = p.get("v1").unwrap_err().to_string();
    assert_eq!(e, "plugin testvol: Get: no such volume: v1");
    Ok(())
}

#[test]
fn a_plugins_err_is_the_error_and_earlier_mounts_are_undone() -> Result<()> {
    let s = Setup::new(Duration::from_secs(10))?;
    let plugin = s.plugin("run/testvol.sock", &[])?;
    let refused = spec(json!([
        volume("ok", "testvol", json!({})),
        volume("bad", "testvol", json!({"fail": "quota exceeded"})),
    ]))?;
    let e = s.mount("web", &refused).unwrap_err();
    assert_eq!(e, "volume bad: plugin testvol: Create: quota exceeded");
    let calls = plugin.calls()?;
    let (method, body) = calls.last().context("no calls")?;
    assert_eq!(method, "VolumeDriver.Unmount");
    assert_eq!(*body, json!({"Name": "ok", "ID": "berth-web"}));

    let http_500 = spec(json!([volume(
        "v",
        "testvol",
        json!({"http500": "disk on fire"})
    )]))?;
    let e = s.mount("web", &http_500).unwrap_err();
    assert_eq!(
        e,
        "volume v: plugin testvol: Create: HTTP 500: disk on fire"
    );
    Ok(())
}

#[test]
fn a_plugin_that_never_answers_mount_times_out() -> Result<()> {
    let s = Setup::new(Duration::from_secs(1))?;
    let _plugin = s.plugin("run/slow.sock", &["--hang", "Mount"])?;
    let spec = spec(json!([volume("data", "slow", json!({}))]))?;
    let started = Instant::now();
    let e = s.mount("web", &spec).unwrap_err();
    assert_eq!(e, "volume data: plugin slow did not answer Mount within 1s");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[test]
fn a_socket_that_never_accepts_times_out_and_a_dead_one_is_refused() -> Result<()> {
    let s = Setup::new(Duration::from_secs(1))?;
    // Bound and listening, never accepting: the kernel completes connects
    // into the backlog, and then nothing ever answers.
    let _listener = UnixListener::bind(s.path("run/mute.sock"))?;
    let started = Instant::now();
    let e = s
        .mount("web", &spec(json!([volume("v", "mute", json!({}))]))?)
        .unwrap_err();
    assert_eq!(e, "volume v: plugin mute did not answer Activate within 1s");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A full backlog: a blocking connect would wait forever; berth's gives
    // up at the deadline.
    let full = UnixListener::bind(s.path("run/full.sock"))?;
    let _queued = fill_backlog(&s.path("run/full.sock"))?;
    let started = Instant::now();
    let e = s
        .mount("web", &spec(json!([volume("v", "full", json!({}))]))?)
        .unwrap_err();
    assert_eq!(e, "volume v: plugin full did not answer Activate within 1s");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(full);

    // A socket file nobody listens on any more.
    drop(UnixListener::bind(s.path("run/dead.sock"))?);
    let e = s
        .mount("web", &spec(json!([volume("v", "dead", json!({}))]))?)
        .unwrap_err();
    assert!(
        e.starts_with("volume v: cannot connect to plugin dead at unix://"),
        "{e}"
    );
    assert!(e.contains("refused"), "{e}");
    Ok(())
}

#[test]
fn an_unknown_driver_is_named() -> Result<()> {
    let s = Setup::new(Duration::from_secs(1))?;
    let e = s
        .mount(
            "web",
            &spec(json!([volume("v", "nosuchdriver", json!({}))]))?,
        )
        .unwrap_err();
    assert!(
        e.starts_with("volume v: plugin nosuchdriver not found"),
        "{e}"
    );
    assert!(
        e.contains(&s.path("run/nosuchdriver.sock").display().to_string()),
        "{e}"
    );
    let errors = s.unmount(
        "web",
        &spec(json!([volume("v", "nosuchdriver", json!({}))]))?,
    );
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("nosuchdriver"));
    Ok(())
}

/// Connects without blocking until the listener's backlog refuses more.
fn fill_backlog(path: &Path) -> Result<Vec<std::os::fd::OwnedFd>> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    use std::os::fd::AsRawFd;
    let addr = UnixAddr::new(path)?;
    let mut queued = Vec::new();
    for _ in 0..65536 {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => queued.push(fd),
            Err(nix::errno::Errno::EAGAIN) => return Ok(queued),
            Err(e) => bail!("connect: {e}"),
        }
    }
    bail!("the backlog never filled")
}
