//! The `devices`, `device_cgroup_rules` and `privileged` fields: host
//! devices a container gets, in Docker's short form
//! (`"HOST[:CONTAINER[:PERMISSIONS]]"`) or as `{"path", "container_path",
//! "permissions", "optional"}`; extra cgroup rules; Docker's
//! `--privileged`. Here the model and the checks that need no host; the
//! devices are looked up at each start (launch/devices.rs). A short entry
//! that is a CDI name (`vendor.com/class=name`) is one (spec/cdi.rs).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::supervisor::spec::bounds::{LIST_ENTRIES, PATH_BYTES, TEXT_BYTES};
use crate::supervisor::spec::cdi::{looks_like_cdi_name, parse_cdi_name};
use crate::supervisor::spec::device_match::DeviceMatch;
use crate::supervisor::spec::device_rules::{parse_device_rule, parse_permissions};
use crate::supervisor::spec::hardening::LandlockSpec;
use crate::supervisor::spec::validate::Problem;
use crate::supervisor::spec::validate_bounds::BoundsCheck;
use crate::supervisor::spec::validate_mounts::clean_absolute;
use crate::supervisor::spec::{SECCOMP_DEFAULT, SECCOMP_UNCONFINED, Spec};

/// Docker's default: read, write, mknod.
pub const DEFAULT_PERMISSIONS: &str = "rwm";

/// Container paths no device may take: kernel filesystems, and the
/// filesystems of their own under /dev, where a node cannot be made or
/// would not work.
const NO_DEVICE_UNDER: &[&str] = &["/proc", "/sys", "/dev/pts", "/dev/shm", "/dev/mqueue"];

/// One device entry, defaults filled in (`inspect` shows this long form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSpec {
    /// The host path: a device node, a symlink to one, or a directory of
    /// them (empty for a `match` entry).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Where it appears in the container; defaults to `path` as written.
    pub container_path: String,
    /// Of r, w and m.
    pub permissions: String,
    /// A missing device is skipped with a warning instead of failing the
    /// start.
    pub optional: bool,
    /// Instead of `path`: the device whose properties these are
    /// (device_match.rs).
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub device_match: Option<DeviceMatch>,
    /// Written in the short form: its problems are reported at the entry.
    #[serde(skip)]
    pub short: bool,
    /// A CDI device name (`vendor.com/class=name`, in `path`): its nodes
    /// and edits come from the host's CDI spec files (plugins/cdi/).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cdi: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongForm {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    container_path: Option<String>,
    #[serde(default = "default_permissions")]
    permissions: String,
    #[serde(default)]
    optional: bool,
    #[serde(default, rename = "match")]
    device_match: Option<DeviceMatch>,
}

fn default_permissions() -> String {
    DEFAULT_PERMISSIONS.into()
}

impl DeviceSpec {
    /// Docker's reading of `HOST[:CONTAINER[:PERMISSIONS]]`: a second part
    /// that is valid permissions is the permissions (`/dev/sda:rw`).
    pub fn parse_short(text: &str) -> Result<DeviceSpec, String> {
        if looks_like_cdi_name(text) {
            return Ok(DeviceSpec::cdi(text));
        }
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, permissions) = match parts.as_slice() {
            [h] => (*h, *h, DEFAULT_PERMISSIONS),
            [h, p] if parse_permissions(p).is_some() => (*h, *h, *p),
            [h, c] => (*h, *c, DEFAULT_PERMISSIONS),
            [h, c, p] => (*h, *c, *p),
            _ => {
                return Err(format!(
                    "expected \"HOST[:CONTAINER[:PERMISSIONS]]\", got {} ':'-separated parts (a path with ':' needs the object form)",
                    parts.len()
                ));
            }
        };
        Ok(DeviceSpec {
            path: host.into(),
            container_path: container.into(),
            permissions: permissions.into(),
            optional: false,
            device_match: None,
            short: true,
            cdi: false,
        })
    }

    /// A CDI name, checked at load (check_devices).
    fn cdi(name: &str) -> DeviceSpec {
        DeviceSpec {
            path: name.into(),
            container_path: name.into(),
            permissions: DEFAULT_PERMISSIONS.into(),
            optional: false,
            device_match: None,
            short: true,
            cdi: true,
        }
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DeviceSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"HOST[:CONTAINER[:PERMISSIONS]]\", or {\"path\" or \"match\", \"container_path\", \"permissions\", \"optional\"}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceSpec, E> {
                DeviceSpec::parse_short(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DeviceSpec, A::Error> {
                let l = LongForm::deserialize(MapAccessDeserializer::new(map))?;
                if l.path.is_none() && l.device_match.is_none() {
                    return Err(de::Error::missing_field("path"));
                }
                let path = l.path.unwrap_or_default();
                Ok(DeviceSpec {
                    container_path: l.container_path.unwrap_or_else(|| path.clone()),
                    path,
                    permissions: l.permissions,
                    optional: l.optional,
                    device_match: l.device_match,
                    short: false,
                    cdi: false,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The sizes: how many entries and rules, each string's length.
pub fn check_device_bounds(spec: &Spec, c: &mut BoundsCheck<'_>) {
    let rules = &spec.device_cgroup_rules;
    c.texts("device_cgroup_rules", &LIST_ENTRIES, &TEXT_BYTES, rules);
    if !c.count("devices", &LIST_ENTRIES, spec.devices.len()) {
        return;
    }
    let mut list = c.at("devices");
    for (i, d) in spec.devices.iter().enumerate() {
        let mut one = list.at(i);
        for (field, bound, text) in [
            ("path", &PATH_BYTES, &d.path),
            ("container_path", &PATH_BYTES, &d.container_path),
            ("permissions", &TEXT_BYTES, &d.permissions),
        ] {
            one.text(if d.short { "" } else { field }, bound, text);
        }
    }
}

/// Paths, permissions, one device per container path, the rules, and
/// what `privileged` cannot be combined with.
pub fn check_devices(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, d) in spec.devices.iter().enumerate() {
        if d.cdi {
            if let Err(why) = parse_cdi_name(&d.path) {
                let why = format!("CDI device {:?}: {why}", d.path);
                out.push((vec!["devices".into(), i.to_string()], why));
            }
            continue;
        }
        let at = |field: &str, why: String| -> Problem {
            let mut path = vec!["devices".to_string(), i.to_string()];
            if d.short {
                let part = field.replace('_', " ");
                return (path, format!("{part}: {why}"));
            }
            path.push(field.to_string());
            (path, why)
        };
        if let Some(m) = &d.device_match {
            out.extend(match_problems(i, &d.path, m));
        } else if !clean_absolute(&d.path) {
            let why = "must be an absolute host path without \"..\"".into();
            out.push(at("path", why));
        }
        if let Some(why) = container_path_problem(&d.container_path) {
            out.push(at("container_path", why));
        } else if let Some(first) = taken.insert(&d.container_path, i) {
            let why = format!("is already devices.{first}'s container path");
            out.push(at("container_path", why));
        }
        if parse_permissions(&d.permissions).is_none() {
            let why = "expected one or more of r, w and m, each once (e.g. \"rw\")".into();
            out.push(at("permissions", why));
        }
    }
    for (i, rule) in spec.device_cgroup_rules.iter().enumerate() {
        if let Err(why) = parse_device_rule(rule) {
            out.push((vec!["device_cgroup_rules".into(), i.to_string()], why));
        }
    }
    if spec.privileged {
        out.extend(privileged_conflicts(spec));
    }
    out
}

/// A `match` entry: no `path` beside it, and valid keys.
fn match_problems(i: usize, path: &str, m: &DeviceMatch) -> Vec<Problem> {
    let at = |key: &str| {
        let mut p = vec!["devices".to_string(), i.to_string(), "match".to_string()];
        p.extend((!key.is_empty()).then(|| key.to_string()));
        p
    };
    let mut out: Vec<Problem> = m
        .problems()
        .into_iter()
        .map(|(k, why)| (at(k), why))
        .collect();
    if !path.is_empty() {
        let why = "give path or match, not both".to_string();
        out.push((vec!["devices".into(), i.to_string(), "path".into()], why));
    }
    out
}

fn container_path_problem(path: &str) -> Option<String> {
    if !clean_absolute(path) || path == "/" {
        return Some("must be an absolute path other than / and without \"..\"".into());
    }
    NO_DEVICE_UNDER
        .iter()
        .find(|p| Path::new(path).starts_with(p))
        .map(|p| format!("cannot be under {p} (a filesystem of its own)"))
}

/// Settings a privileged container would silently ignore (Docker does):
/// refused instead, so a narrowing that is written is never a no-op.
fn privileged_conflicts(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    let at = |field: &[&str], why: &str| -> Problem {
        (field.iter().map(|s| s.to_string()).collect(), why.into())
    };
    if spec.userns.is_some() {
        out.push(at(
            &["privileged"],
            "cannot be combined with userns: a privileged container is the host's root (Docker refuses it too)",
        ));
    }
    if !spec.capabilities.drop.is_empty() {
        out.push(at(
            &["capabilities", "drop"],
            "a privileged container has every capability: drop would be ignored (remove it or privileged)",
        ));
    }
    if ![SECCOMP_DEFAULT, SECCOMP_UNCONFINED].contains(&spec.seccomp.as_str()) {
        out.push(at(
            &["seccomp"],
            "a privileged container has no seccomp filter: the profile would be ignored (remove it or privileged)",
        ));
    }
    let ll = &spec.landlock;
    if ll.enabled && *ll != LandlockSpec::default() {
        out.push(at(
            &["landlock"],
            "a privileged container has no Landlock: these rules would be ignored (remove them or privileged)",
        ));
    }
    out
}

#[cfg(test)]
mod tests;
