//! Fully-populated examples of every document berth reads from outside:
//! a spec with every field, a berth.json with every field, and the params
//! of every API method. tests/bounds.rs checks that each mentions every
//! field of its type, and mutates them into hostile variants. Also the
//! in-process "does berth accept this" of each, and their maxima.

use std::path::Path;

use serde_json::{Value, json};

use super::DEMO_REF;
use super::extremes::{largest_accepted, number_paths, replaced};
use berth::api::params::{METHODS, MethodParams};
use berth::api::protocol::parse_request;
use berth::api::server::MAX_REQUEST_LINE_BYTES;
use berth::supervisor::spec::settings::parse_settings;
use berth::supervisor::spec::validate::parse_spec;

/// Every spec field, with values a real daemon can run (busybox image,
/// host paths that exist; the secrets once `write_secret_files` has made
/// them) except `depends_on`, `network`, `ports` and `wait_for`, which
/// need another container, CNI or a network: `runnable` drops those.
pub fn spec() -> Value {
    let mut spec = json!({
        "image": DEMO_REF,
        "entrypoint": ["/bin/sh", "-c"],
        // Exits on its stop signal, so a stop never waits out stop_timeout.
        "command": ["trap 'exit 0' TERM; echo up; while :; do sleep 1; done"],
        "env": {"GREETING": "berth"},
        "working_dir": "/tmp",
        "user": "0:0",
        "hostname": "bounds",
        "restart": {"policy": "on-failure", "max_retries": 2},
        "stop_signal": "SIGTERM",
        "stop_timeout": 10,
        "pull": "never",
        "group_add": ["audio", "1234"],
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["NET_RAW"]},
        "no_new_privileges": true,
        "seccomp": "default",
        "landlock": {"enabled": true, "net": {"bind_tcp": [80], "connect_tcp": [443]},
                     "scope": ["abstract_unix_socket", "signal"], "read_write": ["/tmp"]},
        "read_only": true,
        "cgroupns": "host",
        "mounts": [
            {"type": "tmpfs", "target": "/scratch", "size": 16_777_216, "mode": "1777",
             "read_only": false, "options": ["noexec"]},
            {"type": "bind", "source": "/etc", "target": "/host-etc", "read_only": true,
             "options": ["nosuid"], "propagation": "rprivate"},
            {"type": "volume", "name": "data", "driver": "local", "target": "/data",
             "read_only": false, "options": ["nodev"], "driver_opts": {"size": "1g"}}
        ],
        "devices": ["/dev/null:/dev/null2:rw",
                    {"path": "/dev/zero", "container_path": "/dev/zero2", "permissions": "r",
                     "optional": true}],
        "device_cgroup_rules": ["c 1:3 rwm"],
        "privileged": false,
        // true needs the static build (tests/init.rs runs it).
        "init": false,
        "shm_size": 16_777_216,
        "sysctls": {"net.ipv4.ip_forward": "1"},
        "resources": {"memory": 67_108_864, "memory_reservation": 33_554_432,
                      "memory_swap": 67_108_864, "cpus": 0.5, "cpu_shares": 512,
                      "pids_limit": 100, "cpuset_cpus": "0", "cpuset_mems": "0",
                      "io_weight": 100,
                      "optional": ["io_weight", "cpuset_cpus", "cpuset_mems",
                                   "memory_swap", "memory_reservation"]},
        "rlimits": {"core": {"soft": 0, "hard": 0}, "cpu": 3600},
        "userns": {"uid_map": [{"container_id": 0, "host_id": 100_000, "size": 65_536}],
                   "gid_map": [{"container_id": 0, "host_id": 100_000, "size": 65_536}]},
        "depends_on": {"db": "started"},
        "healthcheck": {"command": ["/bin/sh", "-c", "exit 0"], "interval": 30,
                        "timeout": 30, "retries": 3, "start_period": 0,
                        "on_unhealthy": "none"},
        "logging": {"driver": "json-file", "max_size": 1_048_576, "max_files": 2,
                    "rate": 262_144, "burst": 1_048_576},
        "network": "cni",
        "ports": [{"host_port": 8080, "container_port": 80, "protocol": "tcp",
                   "host_ip": "127.0.0.1"}],
        "secrets": ["db_password", {"source": "tls.key", "target": "server.key",
                                    "uid": 1000, "gid": 1000, "mode": "0400"}],
        "update": {"policy": "digest", "interval": "6h", "jitter": "10m",
                   "stable_for": "60s", "on_failure": "rollback", "max_defer": "1h"}
    });
    // Apart: one json! literal this size passes the macro's recursion limit.
    spec["hooks"] = json!({"prestart": [hook()], "poststart": [hook()], "poststop": [hook()],
                           "createContainer": [hook()], "startContainer": [hook()]});
    spec["wait_for"] = json!([{"path": "/dev/ttyUSB0", "timeout": "30s", "then": "start"},
                              {"network": "online"}, {"dns": "registry.example"},
                              {"clock": "synchronized"}, {"tcp": "db:5432"}]);
    spec
}

/// The sources of `spec`'s secrets in `config`/secrets/, root's and
/// private, as a daemon demands them.
pub fn write_secret_files(config: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = config.join("secrets");
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    for name in ["db_password", "tls.key"] {
        let path = dir.join(name);
        std::fs::write(&path, format!("{name} for the bounds test\n"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))?;
    }
    Ok(())
}

fn hook() -> Value {
    json!({"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 10})
}

/// `spec` without what needs more than one container and a daemon.
pub fn runnable(mut spec: Value) -> Value {
    if let Value::Object(m) = &mut spec {
        m.remove("depends_on");
        m.remove("ports");
        // Gates on a world the test machine does not have (db:5432).
        m.remove("wait_for");
        m.insert("network".into(), json!("none"));
    }
    spec
}

/// Every berth.json field.
pub fn settings() -> Value {
    json!({
        "registries": {"registry.example:5000": {
            "mirrors": ["mirror.example:5000"], "insecure": true,
            "ca_file": "/etc/ssl/certs/ca-certificates.crt", "username": "u", "password": "p"}},
        "hostname": "edge-1",
        "modules": ["/lib/modules/overlay.ko"],
        "console_logs": false,
        "shutdown": {"on_fatal": "reboot", "fatal_delay_secs": 5, "kill_grace_secs": 5},
        // Port 9 (discard) is closed here: deliveries fail and are retried.
        "webhooks": [{"name": "fleet", "url": "http://127.0.0.1:9/hook",
                      "events": ["container.*"], "bearer_token": "t0k",
                      "hmac_secret": "s3cret", "timeout": 5}],
        "api": {"admin_group": "root", "read_group": "root"},
        "volume_plugins": {"socket_dir": "/run/docker/plugins",
                           "spec_dirs": ["/etc/docker/plugins"], "timeout": 10},
        "cdi": {"spec_dirs": ["/etc/cdi", "/var/run/cdi"]},
        "pull": {"max_rate": "1m", "max_parallel": 1, "give_up_after": "1h"},
        "store": {"reserve": "64m", "auto_prune": true},
        "watchdog": {"device": "/dev/watchdog", "timeout": 30},
        "logging": {"default_driver": "memory"},
        "journal": {"sync": "interval:5s"},
        "host_network": {
            "links": [{"name": "eth0", "dhcp": true, "slaac": true,
                       "addresses": ["192.168.1.10/24"], "gateway": "192.168.1.1",
                       "routes": [{"to": "10.1.0.0/16", "via": "192.168.1.254"}]}],
            "dns": ["192.168.1.1"],
            "search": ["lan"],
            "ntp": {"enabled": true, "servers": ["pool.ntp.org"], "poll_min": 64, "poll_max": 1024}
        }
    })
}

/// Every method with every param it takes.
pub fn api_params() -> Vec<(&'static str, Value)> {
    let name = || json!({"name": "web"});
    let mut out: Vec<(&'static str, Value)> = [
        "version", "list", "info", "check", "images", "prune", "reload", "writes",
    ]
    .into_iter()
    .map(|m| (m, json!({})))
    .collect();
    for m in ["start", "stop", "restart", "inspect", "stats"] {
        out.push((m, name()));
    }
    out.extend([
        (
            "logs",
            json!({"name": "web", "tail": 10, "since": "10m", "follow": false}),
        ),
        (
            "events",
            json!({"since": 0, "follow": false, "kinds": ["container.*"],
                          "container": "web", "limit": 100}),
        ),
        (
            "run",
            json!({"name": "job", "rm": true, "wait": false, "stdin": false,
                   "tty": false, "spec": spec()}),
        ),
        ("wait", json!({"name": "web", "logs": false})),
        (
            "exec",
            json!({"name": "web", "command": ["true"], "env": ["A=1"], "user": "nobody",
                   "workdir": "/", "stdin": false, "tty": false}),
        ),
        (
            "pull",
            json!({"reference": "localhost/x:1", "platform": "linux/amd64",
                   "max_rate": 1048576, "max_parallel": 1}),
        ),
        ("kill", json!({"name": "web", "signal": "SIGTERM"})),
        ("rmi", json!({"reference": "localhost/x:1", "force": false})),
        ("shutdown", json!({"action": "poweroff"})),
        (
            "update",
            json!({"name": "web", "all": false, "check": true}),
        ),
        ("apply", json!({"path": "/etc/berth-next", "reset": false})),
    ]);
    assert_eq!(out.len(), METHODS.len(), "one example per method");
    out
}

/// What berth said about one document: accepted, or every error as
/// (field path if known, full message).
pub type Verdict = Result<(), Vec<(Option<String>, String)>>;

pub fn check_spec_text(text: &str) -> Verdict {
    parse_spec(Path::new("bounds.json"), text)
        .map(drop)
        .map_err(|es| {
            es.into_iter()
                .map(|e| (e.field.clone(), e.to_string()))
                .collect()
        })
}

pub fn check_settings_text(text: &str) -> Verdict {
    parse_settings(Path::new("berth.json"), text)
        .map(drop)
        .map_err(|es| {
            es.into_iter()
                .map(|e| (e.field.clone(), e.to_string()))
                .collect()
        })
}

/// A request line with these params, through the protocol and params
/// parsers. A line that is not JSON at all names no param (-32700), nor
/// does one longer than the server reads.
pub fn check_api_text(method: &str, params_text: &str) -> Verdict {
    let line = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params_text}}}"#);
    if line.len() > MAX_REQUEST_LINE_BYTES {
        // The server refuses it unread (-32600) and closes the connection.
        return Err(vec![(None, "request line too long".into())]);
    }
    let req = parse_request(line.as_bytes()).map_err(|(_, e)| vec![(None, e.message)])?;
    MethodParams::parse(method, req.params)
        .map(drop)
        .map_err(|e| vec![(None, e.message)])
}

/// `doc` with each number raised to the largest value accepted, one
/// field after another (so that e.g. `memory` is at its maximum before
/// `memory_reservation`, which may not exceed it, is raised).
pub fn maxima(doc: &Value, accepts: impl Fn(&Value) -> bool) -> Value {
    let mut out = doc.clone();
    for path in number_paths(doc) {
        if let Some(max) = largest_accepted(&out, &path, &accepts) {
            out = replaced(&out, &path, max);
        }
    }
    assert!(accepts(&out), "the maxima together are refused: {out:#}");
    out
}
