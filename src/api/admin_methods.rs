//! The operator's methods beyond start/stop: info, check, restart, kill,
//! and the image store's images, rmi and prune (docs/api.md).

use serde_json::{Value, json};

use super::params::{KillParams, RmiParams};
use super::protocol::{CONTAINER_ERROR, INVALID_PARAMS, RpcError};
use super::reply::{supervisor_error, to_value};
use crate::image::gc;
use crate::image::lookup::{image_id, list};
use crate::kernel::signal::parse_signal;
use crate::supervisor::Supervisor;
use crate::supervisor::launch::check::load_config as load_config_dir;
use crate::supervisor::spec::settings::load_settings;

/// The daemon and machine at a glance.
pub fn info(sup: &Supervisor) -> Result<Value, RpcError> {
    let mut states = serde_json::Map::new();
    for c in sup.containers() {
        let key = serde_json::to_value(c.state())
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let n = states.get(&key).and_then(Value::as_u64).unwrap_or(0);
        states.insert(key, json!(n + 1));
    }
    let images = list(sup.store()).map(|l| l.len()).unwrap_or(0);
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "pid1": crate::supervisor::daemon::pid1::mode().is_pid1(),
        "store": sup.store().root(),
        "config_dir": sup.options().config_dir,
        "seed_config_dir": sup.options().seed_config_dir,
        "cgroup_parent": sup.options().cgroup_parent,
        "cgroup_v2": crate::kernel::cgroup::cgroup_v2(),
        "landlock_abi": crate::kernel::landlock::kernel_abi(),
        "kernel": kernel_release(),
        "containers": sup.container_count(),
        "states": states,
        "images": images,
        "last_event_seq": sup.events().last_seq(),
        "watchdog": sup.watchdog_info(),
        "writes": crate::supervisor::writes::totals(),
        "journal_sync": sup.events().sync_policy().to_string(),
    }))
}

/// Bytes berth wrote since the daemon started: by kind, per container
/// log, and the kernel's count for the daemon process itself.
pub fn writes(sup: &Supervisor) -> Result<Value, RpcError> {
    let containers: serde_json::Map<String, Value> = sup
        .containers()
        .map(|c| {
            let driver = if c.log.is_memory() {
                "memory"
            } else {
                "json-file"
            };
            let v = json!({"driver": driver, "log_bytes": c.log.disk_bytes()});
            (c.name.clone(), v)
        })
        .collect();
    let mut v = to_value(crate::supervisor::writes::totals())?;
    if let Value::Object(map) = &mut v {
        map.insert("containers".into(), Value::Object(containers));
        map.insert(
            "daemon_write_bytes".into(),
            json!(crate::supervisor::writes::proc_write_bytes("self")),
        );
        map.insert(
            "journal_sync".into(),
            json!(sup.events().sync_policy().to_string()),
        );
    }
    Ok(v)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Validates the config directory as a reload would, changing nothing.
pub fn check(sup: &Supervisor) -> Result<Value, RpcError> {
    let dir = &sup.options().config_dir;
    let errors: Vec<String> = load_settings(dir)
        .err()
        .into_iter()
        .flatten()
        .chain(load_config_dir(dir).err().into_iter().flatten())
        .map(|e| e.to_string())
        .collect();
    Ok(json!({"valid": errors.is_empty(), "errors": errors}))
}

/// Stops it (stop signal, SIGKILL after its timeout) and starts it again;
/// starts it if it is not running.
pub fn restart(sup: &mut Supervisor, name: &str) -> Result<Value, RpcError> {
    sup.restart(name).map_err(supervisor_error)?;
    to_value(sup.container(name).map_err(supervisor_error)?.info())
}

/// Sends a signal to the container's main process; its restart policy
/// then applies to the exit as to any other.
pub fn kill(sup: &mut Supervisor, p: KillParams) -> Result<Value, RpcError> {
    let text = p.signal.unwrap_or_else(|| "SIGKILL".into());
    let sig = parse_signal(&text)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("unknown signal {text:?}")))?;
    let c = sup.container(&p.name).map_err(supervisor_error)?;
    let pid = c.pid.ok_or_else(|| {
        RpcError::new(
            CONTAINER_ERROR,
            format!("container {} is not running", p.name),
        )
    })?;
    let signal = nix::sys::signal::Signal::try_from(sig)
        .map_err(|e| RpcError::new(INVALID_PARAMS, format!("signal {text}: {e}")))?;
    nix::sys::signal::kill(pid, signal)
        .map_err(|e| RpcError::new(CONTAINER_ERROR, format!("kill {}: {e}", p.name)))?;
    to_value(c.info())
}

pub fn images(sup: &Supervisor) -> Result<Value, RpcError> {
    let images = list(sup.store()).map_err(|e| RpcError::new(CONTAINER_ERROR, e.to_string()))?;
    Ok(Value::Array(
        images
            .iter()
            .map(|i| {
                json!({"reference": i.reference, "id": image_id(&i.record).to_string(),
                       "manifest": i.record.manifest.to_string(), "size": i.size})
            })
            .collect(),
    ))
}

/// Removes an image reference and whatever nothing else uses. Runs in the
/// loop: removing directories is quick next to a pull, and it keeps the
/// store's lock discipline in one process.
pub fn rmi(sup: &Supervisor, p: RmiParams) -> Result<Value, RpcError> {
    let report = gc::remove_image(sup.store(), &p.reference, p.force)
        .map_err(|e| RpcError::new(CONTAINER_ERROR, e.to_string()))?;
    to_value(report)
}

pub fn prune(sup: &Supervisor) -> Result<Value, RpcError> {
    let report =
        gc::prune(sup.store()).map_err(|e| RpcError::new(CONTAINER_ERROR, e.to_string()))?;
    to_value(report)
}
