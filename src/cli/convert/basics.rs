//! The process and its lifecycle: image, command, entrypoint, user,
//! working directory, environment (`environment` and `env_file`),
//! restart, stop signal and grace period, pull policy.

use serde_json::{Map, Value, json};

use super::envfile::{EnvEntry, read_env_file};
use super::issues::join;
use super::service::{Ctx, Mapped, report_extra_keys};
use super::values::{command_words, duration, kind, scalar, string_list};

pub fn map(
    key: &str,
    value: &Value,
    p: &str,
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Mapped {
    match key {
        "image" | "working_dir" | "user" | "hostname" | "stop_signal" => {
            let s =
                scalar(value).ok_or_else(|| format!("expected a string, got {}", kind(value)))?;
            out.insert(key.to_string(), json!(s));
        }
        // `null` keeps the image's, as in compose.
        "command" | "entrypoint" if !value.is_null() => {
            out.insert(key.to_string(), json!(command_words(value)?));
        }
        "read_only" | "privileged" | "init" => {
            out.insert(key.to_string(), json!(boolean(value)?));
        }
        "stop_grace_period" => {
            let d = duration(value)?;
            // Rounded up: a grace period is never shortened.
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            out.insert("stop_timeout".into(), json!(secs));
        }
        "pull_policy" => pull_policy(value, p, out, ctx)?,
        "group_add" => {
            out.insert("group_add".into(), json!(string_list(value)?));
        }
        "restart" => restart(value, out)?,
        _ => {}
    }
    Ok(())
}

pub fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(format!("expected true or false, got {}", kind(other))),
    }
}

fn pull_policy(value: &Value, p: &str, out: &mut Map<String, Value>, ctx: &mut Ctx) -> Mapped {
    let s = scalar(value).ok_or("expected a string")?;
    let policy = match s.as_str() {
        "always" => "always",
        "never" => "never",
        "missing" | "if_not_present" => "missing",
        "build" => {
            ctx.issues.unsupported(p, "berth does not build images");
            return Ok(());
        }
        other if other == "daily" || other == "weekly" || other.starts_with("every_") => {
            ctx.issues.unsupported(
                p,
                "berth pulls when the image is missing or at each daemon start; to follow a tag use the spec's `update` (docs/update.md)",
            );
            return Ok(());
        }
        other => return Err(format!("unknown pull policy {other:?}")),
    };
    out.insert("pull".into(), json!(policy));
    Ok(())
}

/// `no`, `always`, `on-failure[:N]`, `unless-stopped`.
fn restart(value: &Value, out: &mut Map<String, Value>) -> Mapped {
    let s = scalar(value).ok_or("expected a string")?;
    let (policy, retries) = match s.split_once(':') {
        Some(("on-failure", n)) => {
            let n: u32 = n
                .parse()
                .map_err(|_| format!("{n:?} is not a number of retries"))?;
            ("on-failure", Some(n))
        }
        _ => (s.as_str(), None),
    };
    let policy = match policy {
        "no" | "false" => "no",
        "always" => "always",
        "on-failure" => "on-failure",
        "unless-stopped" => "unless-stopped",
        other => return Err(format!("unknown restart policy {other:?}")),
    };
    let mut r = json!({ "policy": policy });
    if let Some(n) = retries {
        r["max_retries"] = json!(n);
    }
    out.insert("restart".into(), r);
    Ok(())
}

/// `env_file` entries, then `environment` over them; a name without a
/// value takes the variable's value from the environment (and `.env`),
/// and stays unset when there is none, as in compose.
pub fn environment(
    svc: &Map<String, Value>,
    path: &str,
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Mapped {
    let mut env: Map<String, Value> = Map::new();
    if let Some(files) = svc.get("env_file") {
        let p = join(path, "env_file");
        for (i, (file, required)) in env_files(files)?.into_iter().enumerate() {
            match read_listed_env_file(&file, ctx) {
                Ok(entries) => apply(&mut env, entries, ctx),
                Err(message) if required => ctx.issues.invalid(&join(&p, i), message),
                Err(_) => {}
            }
        }
    }
    if let Some(list) = svc.get("environment") {
        let entries = environment_entries(list).map_err(|e| format!("environment: {e}"))?;
        apply(&mut env, entries, ctx);
    }
    if !env.is_empty() {
        out.insert("env".into(), Value::Object(env));
    }
    Ok(())
}

fn apply(env: &mut Map<String, Value>, entries: Vec<EnvEntry>, ctx: &Ctx) {
    for (name, value) in entries {
        let value = value.or_else(|| ctx.vars.get(&name).map(str::to_string));
        if let Some(v) = value {
            env.insert(name, json!(v));
        }
    }
}

/// `env_file: a.env`, a list of paths, or `{path, required}` entries.
fn env_files(value: &Value) -> Result<Vec<(String, bool)>, String> {
    let items = match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(m) => {
                let path = m
                    .get("path")
                    .and_then(scalar)
                    .ok_or("env_file entry without path")?;
                let required = m.get("required").map(super::basics::boolean).transpose()?;
                Ok((path, required.unwrap_or(true)))
            }
            other => scalar(other)
                .map(|s| (s, true))
                .ok_or_else(|| format!("env_file: expected a path, got {}", kind(other))),
        })
        .collect()
}

fn read_listed_env_file(file: &str, ctx: &Ctx) -> Result<Vec<EnvEntry>, String> {
    let Some(base) = ctx.base_dir else {
        return Err(format!("{file}: no directory to read it from"));
    };
    read_env_file(&base.join(file))
}

/// `["A=1", "B"]` or `{A: 1, B: null}`.
fn environment_entries(value: &Value) -> Result<Vec<EnvEntry>, String> {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k.clone(), None)),
                other => scalar(other)
                    .map(|s| (k.clone(), Some(s)))
                    .ok_or_else(|| format!("{k}: expected a string, got {}", kind(other))),
            })
            .collect(),
        Value::Array(_) => Ok(string_list(value)?
            .into_iter()
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (item, None),
            })
            .collect()),
        other => Err(format!("expected a list or a map, got {}", kind(other))),
    }
}

/// A long-form map's unread keys, reported under `p` (used by the other
/// areas too).
pub fn extra(map: &Map<String, Value>, known: &[&str], p: &str, ctx: &mut Ctx) {
    report_extra_keys(map, known, p, ctx.issues);
}
