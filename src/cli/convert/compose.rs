//! The whole file: parsed, interpolated, its top-level keys checked and
//! each service mapped. Pure (no writing): `berth convert` writes the
//! result, the fuzz target and the tests look at it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::interpolate::{Vars, interpolate_tree};
use super::issues::{Issues, join};
use super::service::{Ctx, map_service};
use super::yaml::{ComposeError, parse_yaml};
use crate::supervisor::spec::validate::valid_container_name;

/// At most this many services (berth's config directory has no limit of
/// its own; this one keeps a hostile file's work bounded).
pub const MAX_SERVICES: usize = 1024;

/// Specs by container name, and what could not be mapped.
#[derive(Debug, Default)]
pub struct Conversion {
    pub specs: BTreeMap<String, Value>,
    pub issues: Issues,
}

/// Converts compose text. `base_dir` is the compose file's directory
/// (None: relative paths and env files are refused); `vars` the
/// variables for interpolation. Err: the file cannot be read as compose
/// at all (YAML syntax with LINE:COL, a failed interpolation with its
/// path, no `services`).
pub fn convert_text(
    text: &str,
    base_dir: Option<&Path>,
    vars: &Vars,
) -> Result<Conversion, ComposeError> {
    let mut doc = parse_yaml(text)?;
    interpolate_tree(&mut doc, vars, "")?;
    let Value::Object(top) = doc else {
        return Err(String::from("a compose file is a map with `services`").into());
    };
    let Some(Value::Object(services)) = top.get("services") else {
        return Err(String::from("no `services` map").into());
    };
    if services.len() > MAX_SERVICES {
        return Err(format!("more than {MAX_SERVICES} services").into());
    }
    let mut conversion = Conversion::default();
    let top_volumes = top.get("volumes").and_then(Value::as_object);
    check_top_level(&top, &mut conversion.issues);
    let mut ctx = Ctx {
        base_dir,
        vars,
        top_volumes,
        issues: &mut conversion.issues,
    };
    for (name, svc) in services {
        if !valid_container_name(name) {
            ctx.issues.invalid(
                &join("services", name),
                "a berth container name is 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit",
            );
            continue;
        }
        if let Some(spec) = map_service(name, svc, &mut ctx) {
            conversion.specs.insert(name.clone(), Value::Object(spec));
        }
    }
    Ok(conversion)
}

/// Top-level keys other than `services`: the volumes' settings berth
/// reads when a service names them, the rest reported.
fn check_top_level(top: &Map<String, Value>, issues: &mut Issues) {
    for (key, value) in top {
        match key.as_str() {
            // Compose itself ignores `version`; `name` only prefixes
            // container and volume names, which berth takes as written.
            "services" | "version" | "name" => {}
            "volumes" => check_volumes(value, issues),
            "networks" => {
                if let Value::Object(nets) = value {
                    for net in nets.keys().filter(|n| *n != "default") {
                        issues.unsupported(
                            &join("networks", net),
                            "berth has one network (cni), where every container finds the others by name",
                        );
                    }
                }
            }
            "secrets" => issues.unsupported(
                key,
                "copy each secret's file into the config directory's secrets/ (docs/spec.md)",
            ),
            "configs" => issues.unsupported(key, "berth has no configs: use read-only bind mounts"),
            "include" => issues.unsupported(
                key,
                "berth converts one file: convert each included file by itself",
            ),
            k if k.starts_with("x-") => {}
            _ => issues.unsupported(key, "not a compose key berth knows"),
        }
    }
}

fn check_volumes(value: &Value, issues: &mut Issues) {
    let Value::Object(volumes) = value else {
        return;
    };
    for (name, v) in volumes {
        let Value::Object(settings) = v else {
            continue;
        };
        for key in settings.keys() {
            if !["driver", "driver_opts", "external", "name"].contains(&key.as_str()) {
                issues.unsupported(
                    &format!("volumes.{name}.{key}"),
                    "berth's volumes have no such setting",
                );
            }
        }
    }
}
