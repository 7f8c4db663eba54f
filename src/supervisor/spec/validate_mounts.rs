//! Semantic checks of `mounts` (targets, options, and each kind's own
//! fields), and the path and mode rules they share with other fields.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use crate::supervisor::spec::hardening::MountSpec;
use crate::supervisor::spec::validate::{Problem, valid_container_name};

const MOUNT_OPTIONS: &[&str] = &["nosuid", "suid", "nodev", "dev", "noexec", "exec"];
const PROPAGATIONS: &[&str] = &["private", "rprivate", "slave", "rslave"];

/// Absolute, and free of "." and ".." so it names one place only.
pub fn clean_absolute(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute()
        && !path.contains('\0')
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

pub fn parse_mode(text: &str) -> Option<u32> {
    u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777)
}

/// Each mount's target, options and kind, in that order.
pub fn check_mounts(mounts: &[MountSpec], out: &mut Vec<Problem>) {
    let mut seen = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let at = |field: &str| vec!["mounts".to_string(), i.to_string(), field.to_string()];
        check_target(m.target(), &mut seen, out, &at);
        for (j, o) in m.options().iter().enumerate() {
            if !MOUNT_OPTIONS.contains(&o.as_str()) {
                out.push((
                    vec![
                        "mounts".into(),
                        i.to_string(),
                        "options".into(),
                        j.to_string(),
                    ],
                    format!("unknown option {o:?}: expected one of {MOUNT_OPTIONS:?}"),
                ));
            }
        }
        check_kind(m, out, &at);
    }
}

/// One place inside the container, outside /proc and /sys, and no other
/// mount's target (`seen`).
fn check_target(
    target: &str,
    seen: &mut BTreeSet<PathBuf>,
    out: &mut Vec<Problem>,
    at: &dyn Fn(&str) -> Vec<String>,
) {
    if !clean_absolute(target) || target == "/" {
        out.push((
            at("target"),
            "must be an absolute path other than / and without \"..\"".into(),
        ));
    } else if ["/proc", "/sys"]
        .iter()
        .any(|p| Path::new(target).starts_with(p))
    {
        out.push((at("target"), "cannot be under /proc or /sys".into()));
    } else if !seen.insert(Path::new(target).to_path_buf()) {
        out.push((
            at("target"),
            "is already the target of another mount".into(),
        ));
    }
}

/// The fields only one kind of mount has.
fn check_kind(m: &MountSpec, out: &mut Vec<Problem>, at: &dyn Fn(&str) -> Vec<String>) {
    match m {
        MountSpec::Volume { name, driver, .. } => {
            if !valid_container_name(name) {
                out.push((
                    at("name"),
                    "expected letters, digits, '_', '.', '-', starting with a letter or digit"
                        .into(),
                ));
            }
            if !valid_container_name(driver) {
                out.push((
                    at("driver"),
                    "expected a plugin name (letters, digits, '_', '.', '-')".into(),
                ));
            }
        }
        MountSpec::Tmpfs { mode, .. } => {
            if mode.as_deref().is_some_and(|m| parse_mode(m).is_none()) {
                out.push((
                    at("mode"),
                    "expected octal permissions like \"1777\"".into(),
                ));
            }
        }
        MountSpec::Bind {
            source,
            propagation,
            ..
        } => check_bind(source, propagation.as_deref(), out, at),
    }
}

fn check_bind(
    source: &str,
    propagation: Option<&str>,
    out: &mut Vec<Problem>,
    at: &dyn Fn(&str) -> Vec<String>,
) {
    if !clean_absolute(source) {
        out.push((
            at("source"),
            "must be an absolute host path without \"..\"".into(),
        ));
    }
    match propagation {
        None => {}
        Some(p) if PROPAGATIONS.contains(&p) => {}
        Some(p) if p.ends_with("shared") => out.push((
            at("propagation"),
            "shared propagation would let the container's mounts reach the host; use \"rslave\""
                .into(),
        )),
        Some(p) => out.push((
            at("propagation"),
            format!("unknown propagation {p:?}: expected one of {PROPAGATIONS:?}"),
        )),
    }
}
