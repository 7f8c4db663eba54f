//! The checks of a decoded CDI spec: a version the public spec defines
//! and new enough for the fields used, the kind and device names, paths,
//! numbers, and the sizes of every list and string. A problem is
//! (field path, message).

use std::collections::BTreeSet;

use crate::supervisor::plugins::cdi::model::{CdiHook, CdiMount, CdiSpec, ContainerEdits};
use crate::supervisor::plugins::cdi::nodes::check_device_node;
use crate::supervisor::spec::cdi::{check_device_name, parse_kind};

/// Released spec versions (SPEC.md's table): 0.8.0, 1.0.0 and 1.1.1
/// changed only the Go API; 1.1.0 added netDevices.
pub const CDI_VERSIONS: &[&str] = &[
    "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0",
];
pub const MAX_DEVICES: usize = 1024;
pub const MAX_LIST_ENTRIES: usize = 1024;
pub const MAX_TEXT_BYTES: usize = 4096;
/// The longest a hook may run (berth's own hooks' limit).
pub const MAX_HOOK_TIMEOUT_SECS: i64 = 300;

pub type CdiProblem = (Vec<String>, String);

fn problem(path: &[&str], message: impl Into<String>) -> CdiProblem {
    (path.iter().map(|s| s.to_string()).collect(), message.into())
}

/// The first problem of a spec, if any.
pub fn validate_spec(spec: &CdiSpec) -> Result<(), CdiProblem> {
    let version = version_index(&spec.version).ok_or_else(|| {
        let known = CDI_VERSIONS.join(", ");
        problem(
            &["cdiVersion"],
            format!("{:?} is not one of {known}", spec.version),
        )
    })?;
    let (_, class) = parse_kind(&spec.kind).map_err(|e| problem(&["kind"], e))?;
    if class.contains('.') {
        needs(version, "0.6.0", &["kind"], "a dot in the class")?;
    }
    if spec.annotations.is_some() {
        needs(version, "0.6.0", &["annotations"], "annotations")?;
    }
    check_annotations(&["annotations"], spec)?;
    if spec.devices.is_empty() {
        return Err(problem(&["devices"], "must list at least one device"));
    }
    if spec.devices.len() > MAX_DEVICES {
        return Err(problem(&["devices"], format!("more than {MAX_DEVICES}")));
    }
    let mut names = BTreeSet::new();
    for (i, d) in spec.devices.iter().enumerate() {
        let index = i.to_string();
        let at = |field: &str| vec!["devices".to_string(), index.clone(), field.to_string()];
        check_device_name(&d.name).map_err(|e| (at("name"), e))?;
        if d.name.as_bytes()[0].is_ascii_digit() {
            let e = needs(version, "0.5.0", &[], "a device name starting with a digit");
            e.map_err(|(_, m)| (at("name"), m))?;
        }
        if !names.insert(d.name.as_str()) {
            return Err((at("name"), format!("{:?} is defined twice", d.name)));
        }
        if d.annotations.is_some() {
            let e = needs(version, "0.6.0", &[], "annotations");
            e.map_err(|(_, m)| (at("annotations"), m))?;
        }
        check_map(d.annotations.as_ref()).map_err(|m| (at("annotations"), m))?;
        check_edits(version, &d.container_edits).map_err(|(mut p, m)| {
            let mut path = at("containerEdits");
            path.append(&mut p);
            (path, m)
        })?;
    }
    if let Some(edits) = &spec.container_edits {
        check_edits(version, edits).map_err(|(mut p, m)| {
            p.insert(0, "containerEdits".into());
            (p, m)
        })?;
    }
    Ok(())
}

fn version_index(version: &str) -> Option<usize> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    CDI_VERSIONS.iter().position(|v| *v == bare)
}

/// A field newer than the file's `cdiVersion` (the reference loader
/// refuses these too).
fn needs(version: usize, min: &str, path: &[&str], what: &str) -> Result<(), CdiProblem> {
    match version_index(min) {
        Some(m) if version < m => Err(problem(
            path,
            format!("{what} needs cdiVersion {min} or later"),
        )),
        _ => Ok(()),
    }
}

fn check_annotations(path: &[&str], spec: &CdiSpec) -> Result<(), CdiProblem> {
    check_map(spec.annotations.as_ref()).map_err(|m| problem(path, m))
}

fn check_map(map: Option<&std::collections::BTreeMap<String, String>>) -> Result<(), String> {
    let Some(map) = map else { return Ok(()) };
    if map.len() > MAX_LIST_ENTRIES {
        return Err(format!("more than {MAX_LIST_ENTRIES} entries"));
    }
    match map.iter().find(|(k, v)| k.len() + v.len() > MAX_TEXT_BYTES) {
        Some((k, _)) => Err(format!("{k:?} is longer than {MAX_TEXT_BYTES} bytes")),
        None => Ok(()),
    }
}

/// One `containerEdits` (a device's or the file's).
fn check_edits(version: usize, e: &ContainerEdits) -> Result<(), CdiProblem> {
    if e.intel_rdt.is_some() {
        needs(version, "0.7.0", &["intelRdt"], "intelRdt")?;
    }
    if e.additional_gids.is_some() {
        needs(version, "0.7.0", &["additionalGids"], "additionalGids")?;
    }
    if e.net_devices.is_some() {
        needs(version, "1.1.0", &["netDevices"], "netDevices")?;
    }
    check_count("env", e.env().len())?;
    check_count("deviceNodes", e.device_nodes().len())?;
    check_count("mounts", e.mounts().len())?;
    check_count("hooks", e.hooks().len())?;
    check_count("additionalGids", e.additional_gids().len())?;
    for (i, kv) in e.env().iter().enumerate() {
        check_env(kv).map_err(|m| problem(&["env", &i.to_string()], m))?;
    }
    for (i, n) in e.device_nodes().iter().enumerate() {
        if n.host_path.is_some() {
            let at = ["deviceNodes", &i.to_string(), "hostPath"];
            needs(version, "0.5.0", &at, "hostPath")?;
        }
        check_device_node(n).map_err(|(f, m)| problem(&["deviceNodes", &i.to_string(), f], m))?;
    }
    for (i, m) in e.mounts().iter().enumerate() {
        if m.kind.is_some() {
            needs(
                version,
                "0.4.0",
                &["mounts", &i.to_string(), "type"],
                "a mount type",
            )?;
        }
        check_mount(m).map_err(|(f, msg)| problem(&["mounts", &i.to_string(), f], msg))?;
    }
    for (i, h) in e.hooks().iter().enumerate() {
        check_hook(h).map_err(|(f, m)| problem(&["hooks", &i.to_string(), f], m))?;
    }
    Ok(())
}

fn check_count(field: &str, n: usize) -> Result<(), CdiProblem> {
    if n > MAX_LIST_ENTRIES {
        return Err(problem(
            &[field],
            format!("more than {MAX_LIST_ENTRIES} entries"),
        ));
    }
    Ok(())
}

pub fn check_env(kv: &str) -> Result<(), String> {
    if kv.len() > MAX_TEXT_BYTES || kv.contains('\0') {
        return Err(format!(
            "longer than {MAX_TEXT_BYTES} bytes or has a NUL byte"
        ));
    }
    match kv.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(()),
        _ => Err("is not KEY=VALUE".into()),
    }
}

/// An absolute path without `..` or NUL, of bounded length.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_TEXT_BYTES || path.contains('\0') {
        return Err(format!(
            "longer than {MAX_TEXT_BYTES} bytes or has a NUL byte"
        ));
    }
    if !crate::supervisor::spec::validate_mounts::clean_absolute(path) {
        return Err(format!("{path:?} must be an absolute path without \"..\""));
    }
    Ok(())
}

fn check_mount(m: &CdiMount) -> Result<(), (&'static str, String)> {
    check_path(&m.host_path).map_err(|e| ("hostPath", e))?;
    check_path(&m.container_path).map_err(|e| ("containerPath", e))?;
    if m.container_path == "/" {
        return Err(("containerPath", "cannot be /".into()));
    }
    let options = m.options.as_deref().unwrap_or_default();
    check_count("options", options.len()).map_err(|(_, e)| ("options", e))?;
    crate::supervisor::plugins::cdi::edits::mount_flags(m.kind.as_deref(), options)
        .map(drop)
        .map_err(|e| ("options", e))
}

fn check_hook(h: &CdiHook) -> Result<(), (&'static str, String)> {
    crate::supervisor::plugins::cdi::edits::hook_stage(&h.hook_name)
        .map_err(|e| ("hookName", e))?;
    check_path(&h.path).map_err(|e| ("path", e))?;
    let args = h.args.as_deref().unwrap_or_default();
    let env = h.env.as_deref().unwrap_or_default();
    if args.len() > MAX_LIST_ENTRIES || env.len() > MAX_LIST_ENTRIES {
        return Err(("args", format!("more than {MAX_LIST_ENTRIES} entries")));
    }
    if args
        .iter()
        .any(|a| a.len() > MAX_TEXT_BYTES || a.contains('\0'))
    {
        return Err(("args", "an argument is too long or has a NUL byte".into()));
    }
    if let Some(i) = env.iter().position(|kv| check_env(kv).is_err()) {
        return Err(("env", format!("entry {i} is not KEY=VALUE")));
    }
    match h.timeout {
        Some(t) if !(1..=MAX_HOOK_TIMEOUT_SECS).contains(&t) => Err((
            "timeout",
            format!("must be 1 to {MAX_HOOK_TIMEOUT_SECS} seconds"),
        )),
        _ => Ok(()),
    }
}
