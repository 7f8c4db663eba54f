//! Privileges and limits: capabilities, security options, sysctls,
//! ulimits, devices, the cgroup namespace, /dev/shm, memory, CPU and pids
//! (the service keys and `deploy.resources`).

use std::path::Path;

use serde_json::{Map, Value, json};

use super::basics::extra;
use super::issues::join;
use super::service::{Ctx, Mapped, push, set};
use super::values::{byte_size, kind, scalar, string_list};

pub fn map(
    key: &str,
    value: &Value,
    p: &str,
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Mapped {
    match key {
        "cap_add" => set(out, &["capabilities", "add"], json!(string_list(value)?)),
        "cap_drop" => set(out, &["capabilities", "drop"], json!(string_list(value)?)),
        "security_opt" => {
            for (i, opt) in string_list(value)?.iter().enumerate() {
                security_opt(opt, &join(p, i), out, ctx)?;
            }
        }
        "sysctls" => {
            out.insert("sysctls".into(), Value::Object(key_values(value)?));
        }
        "ulimits" => ulimits(value, out)?,
        "devices" => devices(value, p, out, ctx)?,
        "device_cgroup_rules" => {
            out.insert(key.into(), json!(string_list(value)?));
        }
        "cgroup" => match scalar(value).as_deref() {
            Some(mode @ ("host" | "private")) => {
                out.insert("cgroupns".into(), json!(mode));
            }
            _ => return Err("expected host or private".into()),
        },
        "shm_size" => {
            out.insert("shm_size".into(), json!(byte_size(value)?));
        }
        "mem_limit" => set(out, &["resources", "memory"], json!(byte_size(value)?)),
        "mem_reservation" => set(
            out,
            &["resources", "memory_reservation"],
            json!(byte_size(value)?),
        ),
        "memswap_limit" => {
            let swap = match value {
                Value::Number(n) if n.as_i64() == Some(-1) => json!(-1),
                Value::String(s) if s == "-1" => json!(-1),
                other => json!(byte_size(other)?),
            };
            set(out, &["resources", "memory_swap"], swap);
        }
        "cpus" => set(out, &["resources", "cpus"], json!(cpus(value)?)),
        "cpu_shares" => set(out, &["resources", "cpu_shares"], json!(count(value)?)),
        "cpuset" => set(
            out,
            &["resources", "cpuset_cpus"],
            json!(scalar(value).ok_or("expected a string")?),
        ),
        "pids_limit" => set(out, &["resources", "pids_limit"], json!(pids(value)?)),
        "deploy" => deploy(value, p, out, ctx)?,
        _ => {}
    }
    Ok(())
}

/// `no-new-privileges[:true]`, `seccomp=unconfined|PATH`; AppArmor and
/// SELinux labels have no equivalent.
fn security_opt(opt: &str, p: &str, out: &mut Map<String, Value>, ctx: &mut Ctx) -> Mapped {
    let (name, arg) = match opt.split_once(['=', ':']) {
        Some((n, a)) => (n, Some(a)),
        None => (opt, None),
    };
    match (name, arg) {
        ("no-new-privileges", None | Some("true")) => {
            out.insert("no_new_privileges".into(), json!(true));
        }
        ("no-new-privileges", Some("false")) => {
            out.insert("no_new_privileges".into(), json!(false));
        }
        ("seccomp", Some("unconfined")) => {
            out.insert("seccomp".into(), json!("unconfined"));
        }
        ("seccomp", Some(profile)) if !profile.is_empty() => {
            let path = match (Path::new(profile).is_absolute(), ctx.base_dir) {
                (true, _) => profile.to_string(),
                (false, Some(base)) => base.join(profile).display().to_string(),
                (false, None) => {
                    return Err(format!(
                        "{profile}: a relative profile path needs the compose file's directory"
                    ));
                }
            };
            out.insert("seccomp".into(), json!(path));
        }
        ("apparmor", _) => ctx.issues.unsupported(
            p,
            "berth applies no AppArmor profile (Landlock and seccomp confine the container)",
        ),
        ("label", _) => ctx.issues.unsupported(p, "berth applies no SELinux labels"),
        _ => ctx
            .issues
            .unsupported(p, format!("security option {opt:?} is not one berth knows")),
    }
    Ok(())
}

/// `{a: b}` or `["a=b"]`.
pub fn key_values(value: &Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                scalar(v)
                    .map(|s| (k.clone(), json!(s)))
                    .ok_or_else(|| format!("{k}: expected a string, got {}", kind(v)))
            })
            .collect(),
        Value::Array(_) => string_list(value)?
            .into_iter()
            .map(|item| {
                item.split_once('=')
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .ok_or_else(|| format!("{item:?} is not NAME=VALUE"))
            })
            .collect(),
        other => Err(format!("expected a map or a list, got {}", kind(other))),
    }
}

/// `nofile: 1024` or `nofile: {soft: 1024, hard: 4096}`; -1 is unlimited.
fn ulimits(value: &Value, out: &mut Map<String, Value>) -> Mapped {
    let Value::Object(map) = value else {
        return Err(format!("expected a map, got {}", kind(value)));
    };
    let limit = |v: &Value| -> Result<u64, String> {
        match v {
            Value::Number(n) if n.as_i64() == Some(-1) => Ok(u64::MAX),
            Value::Number(n) => n.as_u64().ok_or_else(|| format!("{n} is not a limit")),
            Value::String(s) => s.parse().map_err(|_| format!("{s:?} is not a limit")),
            other => Err(format!("expected a number, got {}", kind(other))),
        }
    };
    for (name, v) in map {
        let entry = match v {
            Value::Object(pair) => {
                let soft = limit(pair.get("soft").ok_or(format!("{name}: no soft limit"))?)?;
                let hard = limit(pair.get("hard").ok_or(format!("{name}: no hard limit"))?)?;
                json!({"soft": soft, "hard": hard})
            }
            other => json!(limit(other)?),
        };
        set(out, &["rlimits", name], entry);
    }
    Ok(())
}

/// The short form is berth's own (`HOST[:CONTAINER[:PERMS]]`, CDI names);
/// the long form `{source, target, permissions}` becomes berth's object.
fn devices(value: &Value, p: &str, out: &mut Map<String, Value>, ctx: &mut Ctx) -> Mapped {
    let Value::Array(items) = value else {
        return Err(format!("expected a list, got {}", kind(value)));
    };
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => push(out, "devices", json!(s)),
            Value::Object(m) => {
                let source = m
                    .get("source")
                    .and_then(scalar)
                    .ok_or(format!("{i}: no source"))?;
                let mut d = json!({"path": source});
                if let Some(t) = m.get("target").and_then(scalar) {
                    d["container_path"] = json!(t);
                }
                if let Some(perm) = m.get("permissions").and_then(scalar) {
                    d["permissions"] = json!(perm);
                }
                extra(m, &["source", "target", "permissions"], &join(p, i), ctx);
                push(out, "devices", d);
            }
            other => {
                return Err(format!(
                    "{i}: expected a string or a map, got {}",
                    kind(other)
                ));
            }
        }
    }
    Ok(())
}

fn cpus(value: &Value) -> Result<f64, String> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.filter(|c| c.is_finite() && *c >= 0.0)
        .ok_or_else(|| "expected a number of CPUs like 0.5".into())
}

fn count(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| "expected a whole number".into())
}

/// Compose's -1 (and 0) is unlimited, berth's 0.
fn pids(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) if n.as_i64() == Some(-1) => Ok(0),
        Value::String(s) if s == "-1" => Ok(0),
        other => count(other),
    }
}

/// `deploy.resources.limits` (cpus, memory, pids) and
/// `deploy.resources.reservations.memory`; the rest is swarm's.
fn deploy(value: &Value, p: &str, out: &mut Map<String, Value>, ctx: &mut Ctx) -> Mapped {
    let Value::Object(deploy) = value else {
        return Err(format!("expected a map, got {}", kind(value)));
    };
    for (key, v) in deploy {
        let dp = join(p, key);
        if key != "resources" {
            ctx.issues.unsupported(
                &dp,
                "berth runs one container per spec on this machine (no swarm deployment)",
            );
            continue;
        }
        let Value::Object(res) = v else {
            return Err("resources: expected a map".into());
        };
        for (kind_key, limits) in res {
            let lp = join(&dp, kind_key);
            let Value::Object(limits) = limits else {
                ctx.issues.invalid(&lp, "expected a map");
                continue;
            };
            for (name, v) in limits {
                let r = match (kind_key.as_str(), name.as_str()) {
                    ("limits", "cpus") => {
                        cpus(v).map(|c| set(out, &["resources", "cpus"], json!(c)))
                    }
                    ("limits", "memory") => {
                        byte_size(v).map(|b| set(out, &["resources", "memory"], json!(b)))
                    }
                    ("limits", "pids") => {
                        pids(v).map(|n| set(out, &["resources", "pids_limit"], json!(n)))
                    }
                    ("reservations", "memory") => byte_size(v)
                        .map(|b| set(out, &["resources", "memory_reservation"], json!(b))),
                    _ => {
                        ctx.issues.unsupported(
                            &join(&lp, name),
                            "berth has no such limit or reservation",
                        );
                        Ok(())
                    }
                };
                if let Err(message) = r {
                    ctx.issues.invalid(&join(&lp, name), message);
                }
            }
        }
    }
    Ok(())
}
