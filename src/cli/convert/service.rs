//! One compose service into one berth spec: every key of the service is
//! either mapped by an area's mapper or reported with the reason it is
//! not, so nothing is dropped silently.

use std::path::Path;

use serde_json::{Map, Value};

use super::interpolate::Vars;
use super::issues::{Issues, join};
use super::{basics, health, network, security, storage};

/// What every mapper may consult and where it reports.
pub struct Ctx<'a> {
    /// The compose file's directory: relative binds, env_file, seccomp
    /// profiles are resolved against it (None: they are refused).
    pub base_dir: Option<&'a Path>,
    pub vars: &'a Vars,
    /// The file's top-level `volumes`, for named volumes' drivers.
    pub top_volumes: Option<&'a Map<String, Value>>,
    pub issues: &'a mut Issues,
}

/// A mapper's answer for one key: Err is an invalid value, reported at the
/// key's path.
pub type Mapped = Result<(), String>;

/// The service keys each area maps (docs/convert.md has a row for each:
/// tests/convert.rs checks).
pub const BASICS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "working_dir",
    "user",
    "hostname",
    "read_only",
    "privileged",
    "init",
    "stop_signal",
    "stop_grace_period",
    "pull_policy",
    "group_add",
    "restart",
];
pub const ENVIRONMENT: &[&str] = &["environment", "env_file"];
pub const SECURITY: &[&str] = &[
    "cap_add",
    "cap_drop",
    "security_opt",
    "sysctls",
    "ulimits",
    "devices",
    "device_cgroup_rules",
    "cgroup",
    "shm_size",
    "mem_limit",
    "memswap_limit",
    "mem_reservation",
    "cpus",
    "cpu_shares",
    "cpuset",
    "pids_limit",
    "deploy",
];
pub const STORAGE: &[&str] = &["volumes", "tmpfs"];
pub const NETWORK: &[&str] = &["network_mode", "ports", "networks"];
pub const HEALTH: &[&str] = &["healthcheck", "depends_on", "logging"];

/// Every service key a mapper reads.
pub fn mapped_keys() -> impl Iterator<Item = &'static str> {
    [BASICS, ENVIRONMENT, SECURITY, STORAGE, NETWORK, HEALTH]
        .into_iter()
        .flatten()
        .copied()
}

/// The spec, or None when the service cannot become one (no image, not a
/// map); the reason is in `ctx.issues` either way.
pub fn map_service(name: &str, svc: &Value, ctx: &mut Ctx) -> Option<Map<String, Value>> {
    let path = format!("services.{name}");
    let Value::Object(svc) = svc else {
        ctx.issues.invalid(&path, "a service must be a map");
        return None;
    };
    let mut out = Map::new();
    for (key, value) in svc {
        let p = join(&path, key);
        if let Err(message) = map_key(key, value, &p, svc, &mut out, ctx) {
            ctx.issues.invalid(&p, message);
        }
    }
    if let Err(message) = basics::environment(svc, &path, &mut out, ctx) {
        ctx.issues.invalid(&path, message);
    }
    network::default_network(svc, &mut out);
    if !out.contains_key("image") {
        ctx.issues.unsupported(
            &path,
            "no image: berth runs images from a registry or `berth import` (it does not build them), so this service gives no spec",
        );
        return None;
    }
    Some(out)
}

fn map_key(
    key: &str,
    value: &Value,
    p: &str,
    svc: &Map<String, Value>,
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Mapped {
    match key {
        k if BASICS.contains(&k) => basics::map(key, value, p, out, ctx),
        // Read together after the loop: env_file first, environment wins.
        k if ENVIRONMENT.contains(&k) => Ok(()),
        k if SECURITY.contains(&k) => security::map(key, value, p, out, ctx),
        k if STORAGE.contains(&k) => storage::map(key, value, p, out, ctx),
        k if NETWORK.contains(&k) => network::map(key, value, p, svc, out, ctx),
        k if HEALTH.contains(&k) => health::map(key, value, p, out, ctx),
        k if k.starts_with("x-") => Ok(()),
        other => {
            ctx.issues.unsupported(p, unsupported_reason(other));
            Ok(())
        }
    }
}

/// Why a compose key has no berth equivalent.
fn unsupported_reason(key: &str) -> String {
    let why = match key {
        "build" => "berth does not build images",
        "container_name" => "the spec is named after the service (its file name)",
        "labels" | "annotations" => "berth specs carry no labels",
        "expose" => {
            "nothing to map: on berth's network every port of a container is reachable from the others"
        }
        "links" | "external_links" => {
            "on berth's network containers find each other by name already"
        }
        "extra_hosts" => "berth writes /etc/hosts itself (every container on its network)",
        "dns" | "dns_search" | "dns_opt" => {
            "berth writes /etc/resolv.conf from its network's settings (docs/network.md)"
        }
        "secrets" => {
            "berth reads secrets from the config directory's secrets/: copy the file there and add a `secrets` entry (docs/spec.md)"
        }
        "configs" => "berth has no configs: use a read-only bind mount",
        "profiles" => "berth starts every spec of its config directory",
        "extends" => "berth cannot resolve `extends`: merge the service by hand",
        "stdin_open" | "tty" | "attach" => "berth containers have no terminal or stdin",
        "pid" | "ipc" | "uts" => "berth gives every container its own namespaces",
        "userns_mode" => "use the spec's `userns` (\"auto\" or explicit maps)",
        "platform" => "berth pulls this machine's platform",
        "scale" => "berth runs one container per spec",
        "gpus" => "use `devices` with a CDI name (nvidia.com/gpu=0)",
        "oom_score_adj" | "oom_kill_disable" | "mem_swappiness" | "cpu_period" | "cpu_quota"
        | "cpu_rt_runtime" | "cpu_rt_period" | "cpu_count" | "cpu_percent" | "blkio_config"
        | "storage_opt" | "cgroup_parent" => "berth has no such resource setting",
        "volumes_from" => "name the volumes in each service instead",
        "mac_address" | "domainname" => "berth's network does not set it",
        "runtime" | "isolation" | "credential_spec" => "berth is the runtime",
        "develop" | "post_start" | "pre_stop" | "use_api_socket" | "provider" | "models" => {
            "berth has no such feature"
        }
        _ => "not a compose key berth knows",
    };
    why.to_string()
}

/// Sets `out[a][b]…` to `value`, making the maps on the way.
pub fn set(out: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut map = out;
    for key in parents {
        let entry = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else {
            return;
        };
        map = next;
    }
    map.insert(last.to_string(), value);
}

/// Appends to the list `out[key]`.
pub fn push(out: &mut Map<String, Value>, key: &str, value: Value) {
    let entry = out
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        list.push(value);
    }
}

/// The sub-keys of a long-form entry that its mapper does not read.
pub fn report_extra_keys(
    map: &Map<String, Value>,
    known: &[&str],
    path: &str,
    issues: &mut Issues,
) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) && !key.starts_with("x-") {
            issues.unsupported(&join(path, key), "berth has no equivalent");
        }
    }
}
