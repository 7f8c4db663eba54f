//! `volumes` (binds, named volumes with the top-level `volumes` drivers,
//! short and long forms) and `tmpfs` into berth's `mounts`.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::basics::{boolean, extra};
use super::issues::join;
use super::service::{Ctx, Mapped, push};
use super::values::{byte_size, kind, scalar, string_list};

pub fn map(
    key: &str,
    value: &Value,
    p: &str,
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Mapped {
    match key {
        "volumes" => {
            let Value::Array(items) = value else {
                return Err(format!("expected a list, got {}", kind(value)));
            };
            for (i, item) in items.iter().enumerate() {
                let ip = join(p, i);
                let mount = match item {
                    Value::String(s) => short_volume(s, &ip, ctx),
                    Value::Object(m) => long_volume(m, &ip, ctx),
                    other => Err(format!("expected a string or a map, got {}", kind(other))),
                };
                match mount {
                    Ok(Some(m)) => push(out, "mounts", m),
                    Ok(None) => {}
                    Err(message) => ctx.issues.invalid(&ip, message),
                }
            }
        }
        "tmpfs" => {
            for (i, entry) in string_list(value)?.iter().enumerate() {
                match tmpfs(entry, &join(p, i), ctx) {
                    Ok(m) => push(out, "mounts", m),
                    Err(message) => ctx.issues.invalid(&join(p, i), message),
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `SOURCE:TARGET[:MODE]` or an anonymous `TARGET`.
fn short_volume(text: &str, p: &str, ctx: &mut Ctx) -> Result<Option<Value>, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => {
            anonymous(target, p, ctx);
            return Ok(None);
        }
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(format!("{text:?} is not SOURCE:TARGET[:MODE]")),
    };
    let mut read_only = false;
    let mut propagation = None;
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "rprivate" | "private" | "rslave" | "slave" => propagation = Some(opt),
            // No-ops on Linux (macOS file sharing hints).
            "consistent" | "cached" | "delegated" => {}
            "z" | "Z" => ctx.issues.unsupported(p, "berth applies no SELinux labels (`z`/`Z`)"),
            "nocopy" => ctx.issues.unsupported(p, "berth does not copy image content into volumes, so `nocopy` is what it does anyway"),
            other => return Err(format!("unknown volume option {other:?}")),
        }
    }
    if is_path(source) {
        let mut m = json!({"type": "bind", "source": host_path(source, ctx)?, "target": target, "read_only": read_only});
        if let Some(prop) = propagation {
            m["propagation"] = json!(prop);
        }
        Ok(Some(m))
    } else {
        if propagation.is_some() {
            ctx.issues
                .unsupported(p, "propagation applies to binds only");
        }
        Ok(Some(named_volume(source, target, read_only, p, ctx)))
    }
}

fn anonymous(target: &str, p: &str, ctx: &mut Ctx) {
    ctx.issues.unsupported(
        p,
        format!("an anonymous volume at {target}: berth's volumes have names; write NAME:{target}"),
    );
}

fn is_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

/// Absolute, as berth requires: relative to the compose file's directory,
/// `~` from `$HOME`.
fn host_path(source: &str, ctx: &Ctx) -> Result<String, String> {
    if source.starts_with('/') {
        return Ok(source.to_string());
    }
    if let Some(rest) = source.strip_prefix('~') {
        let home = ctx.vars.get("HOME").ok_or("~ without HOME set")?;
        return Ok(format!("{home}{rest}"));
    }
    let base = ctx
        .base_dir
        .ok_or_else(|| format!("{source}: a relative path needs the compose file's directory"))?;
    let joined = base.join(source);
    Ok(clean(&joined))
}

/// `a/./b/../c` as `a/c`, without looking at the filesystem.
fn clean(path: &Path) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.to_str().unwrap_or("").split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A named volume with the driver and options of the top-level entry.
fn named_volume(name: &str, target: &str, read_only: bool, p: &str, ctx: &mut Ctx) -> Value {
    let mut m = json!({"type": "volume", "name": name, "target": target, "read_only": read_only});
    let top = ctx
        .top_volumes
        .and_then(|t| t.get(name))
        .and_then(Value::as_object);
    if let Some(top) = top {
        if let Some(real) = top.get("name").and_then(scalar) {
            m["name"] = json!(real);
        }
        if let Some(driver) = top.get("driver").and_then(scalar) {
            m["driver"] = json!(driver);
        }
        if let Some(Value::Object(opts)) = top.get("driver_opts") {
            let opts: Map<String, Value> = opts
                .iter()
                .filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), json!(s))))
                .collect();
            m["driver_opts"] = Value::Object(opts);
        }
    } else if ctx.top_volumes.is_some_and(|t| !t.contains_key(name)) {
        ctx.issues.invalid(
            p,
            format!("volume {name:?} is not declared in the top-level volumes"),
        );
    }
    m
}

/// `{type, source, target, read_only, bind: {propagation,
/// create_host_path}, volume: {nocopy}, tmpfs: {size, mode}}`.
fn long_volume(m: &Map<String, Value>, p: &str, ctx: &mut Ctx) -> Result<Option<Value>, String> {
    let kind_of = m.get("type").and_then(scalar).ok_or("no type")?;
    let target = m.get("target").and_then(scalar).ok_or("no target")?;
    let read_only = m
        .get("read_only")
        .map(boolean)
        .transpose()?
        .unwrap_or(false);
    let source = m.get("source").and_then(scalar);
    let mut mount = match (kind_of.as_str(), source) {
        ("bind", Some(source)) => {
            json!({"type": "bind", "source": host_path(&source, ctx)?, "target": target, "read_only": read_only})
        }
        ("volume", Some(source)) => named_volume(&source, &target, read_only, p, ctx),
        ("volume", None) => {
            anonymous(&target, p, ctx);
            return Ok(None);
        }
        ("tmpfs", _) => json!({"type": "tmpfs", "target": target, "read_only": read_only}),
        ("bind", None) => return Err("a bind without source".into()),
        (other, _) => {
            ctx.issues
                .unsupported(p, format!("berth has no {other:?} mounts"));
            return Ok(None);
        }
    };
    extra(
        m,
        &[
            "type",
            "source",
            "target",
            "read_only",
            "bind",
            "volume",
            "tmpfs",
            "consistency",
        ],
        p,
        ctx,
    );
    type_options(m, &kind_of, &mut mount, p, ctx)?;
    Ok(Some(mount))
}

/// The per-type sections (`bind`, `volume`, `tmpfs`): the one matching
/// the mount's type adds its options, the others are reported.
fn type_options(
    m: &Map<String, Value>,
    kind_of: &str,
    mount: &mut Value,
    p: &str,
    ctx: &mut Ctx,
) -> Result<(), String> {
    for (section, known) in [
        ("bind", &["propagation", "create_host_path"][..]),
        ("volume", &["nocopy"][..]),
        ("tmpfs", &["size", "mode"][..]),
    ] {
        let Some(Value::Object(sub)) = m.get(section) else {
            continue;
        };
        let sp = join(p, section);
        if section != kind_of {
            ctx.issues
                .unsupported(&sp, format!("does not apply to a {kind_of} mount"));
            continue;
        }
        extra(sub, known, &sp, ctx);
        if let Some(prop) = sub.get("propagation").and_then(scalar) {
            mount["propagation"] = json!(prop);
        }
        if sub.get("create_host_path").map(boolean).transpose()? == Some(true) {
            ctx.issues.unsupported(
                &join(&sp, "create_host_path"),
                "berth does not create a bind's source: a missing one fails the start",
            );
        }
        if let Some(size) = sub.get("size") {
            mount["size"] = json!(byte_size(size)?);
        }
        if let Some(mode) = sub.get("mode") {
            mount["mode"] = json!(octal(mode)?);
        }
    }
    Ok(())
}

/// A mode as compose writes it: `1777` (YAML reads it as decimal digits,
/// which are the octal digits) or `"1777"`/`"0o1777"`.
fn octal(v: &Value) -> Result<String, String> {
    let text = scalar(v).ok_or("expected a mode like 1777")?;
    let digits = text.trim_start_matches("0o");
    if digits.is_empty() || digits.len() > 5 || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!("{text:?} is not an octal mode"));
    }
    Ok(digits.to_string())
}

/// `/run` or `/run:size=64m,mode=1777,exec`.
fn tmpfs(entry: &str, p: &str, ctx: &mut Ctx) -> Result<Value, String> {
    let (target, opts) = entry.split_once(':').unwrap_or((entry, ""));
    let mut m = json!({"type": "tmpfs", "target": target});
    let mut options = Vec::new();
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", v)) => m["size"] = json!(byte_size(&json!(v))?),
            Some(("mode", v)) => m["mode"] = json!(octal(&json!(v))?),
            None if opt == "ro" => m["read_only"] = json!(true),
            None if opt == "rw" => m["read_only"] = json!(false),
            None if ["exec", "suid", "dev"].contains(&opt) => options.push(opt),
            // berth's defaults for a tmpfs.
            None if ["noexec", "nosuid", "nodev"].contains(&opt) => {}
            _ => ctx
                .issues
                .unsupported(p, format!("tmpfs option {opt:?} is not one berth sets")),
        }
    }
    if !options.is_empty() {
        m["options"] = json!(options);
    }
    Ok(m)
}
