//! The service keys of berth's service manager: `healthcheck` (test as
//! CMD, CMD-SHELL or a string), `depends_on` (list or conditions) and
//! `logging` (json-file's rotation options).

use serde_json::{Map, Value, json};

use super::basics::{boolean, extra};
use super::issues::join;
use super::service::{Ctx, Mapped};
use super::values::{byte_size, duration, kind, scalar, string_list};

pub fn map(
    key: &str,
    value: &Value,
    p: &str,
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Mapped {
    match key {
        "healthcheck" => healthcheck(value, p, out, ctx),
        "depends_on" => depends_on(value, p, out, ctx),
        "logging" => logging(value, p, out, ctx),
        _ => Ok(()),
    }
}

fn healthcheck(value: &Value, p: &str, out: &mut Map<String, Value>, ctx: &mut Ctx) -> Mapped {
    let Value::Object(h) = value else {
        return Err(format!("expected a map, got {}", kind(value)));
    };
    extra(
        h,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
        p,
        ctx,
    );
    if h.get("disable").map(boolean).transpose()? == Some(true) {
        return Ok(());
    }
    let Some(test) = h.get("test") else {
        ctx.issues.unsupported(
            p,
            "no test: berth does not read the image's HEALTHCHECK, so the check needs its test",
        );
        return Ok(());
    };
    let Some(command) = health_command(test)? else {
        return Ok(());
    };
    let mut spec = json!({"command": command});
    for key in ["interval", "timeout", "start_period"] {
        if let Some(v) = h.get(key) {
            spec[key] = json!(
                duration(v)
                    .map_err(|e| format!("{key}: {e}"))?
                    .as_secs_f64()
            );
        }
    }
    if let Some(v) = h.get("retries") {
        let n = v
            .as_u64()
            .filter(|n| *n <= u64::from(u32::MAX))
            .ok_or("retries: expected a whole number")?;
        spec["retries"] = json!(n);
    }
    if h.contains_key("start_interval") {
        ctx.issues.unsupported(
            &join(p, "start_interval"),
            "berth checks at `interval` during the start period too",
        );
    }
    out.insert("healthcheck".into(), spec);
    Ok(())
}

/// `["CMD", args…]`, `["CMD-SHELL", "script"]`, `"script"`; None for
/// `["NONE"]` (no check).
fn health_command(test: &Value) -> Result<Option<Vec<String>>, String> {
    let shell = |script: String| vec!["/bin/sh".to_string(), "-c".to_string(), script];
    if let Value::String(script) = test {
        return Ok(Some(shell(script.clone())));
    }
    let list = string_list(test).map_err(|e| format!("test: {e}"))?;
    match list.split_first() {
        Some((first, rest)) if first == "CMD" && !rest.is_empty() => Ok(Some(rest.to_vec())),
        Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => {
            Ok(Some(shell(rest.join(" "))))
        }
        Some((first, _)) if first == "NONE" => Ok(None),
        _ => Err(
            "test: expected [\"CMD\", …], [\"CMD-SHELL\", \"…\"], [\"NONE\"] or a string".into(),
        ),
    }
}

/// `[db]` (started) or `{db: {condition: service_healthy, …}}`.
fn depends_on(value: &Value, p: &str, out: &mut Map<String, Value>, ctx: &mut Ctx) -> Mapped {
    let mut deps = Map::new();
    match value {
        Value::Array(_) => {
            for name in string_list(value)? {
                deps.insert(name, json!("started"));
            }
        }
        Value::Object(m) => {
            for (name, d) in m {
                let dp = join(p, name);
                let condition = match d {
                    Value::Object(d) => {
                        extra(d, &["condition", "restart", "required"], &dp, ctx);
                        if d.get("restart").map(boolean).transpose()? == Some(true) {
                            ctx.issues.unsupported(
                                &join(&dp, "restart"),
                                "berth does not restart a container when its dependency restarts",
                            );
                        }
                        if d.get("required").map(boolean).transpose()? == Some(false) {
                            ctx.issues.unsupported(
                                &join(&dp, "required"),
                                "berth requires every dependency to exist",
                            );
                        }
                        d.get("condition")
                            .and_then(scalar)
                            .unwrap_or_else(|| "service_started".into())
                    }
                    Value::Null => "service_started".into(),
                    other => return Err(format!("{name}: expected a map, got {}", kind(other))),
                };
                let mapped = match condition.as_str() {
                    "service_started" => "started",
                    "service_healthy" => "healthy",
                    "service_completed_successfully" => "completed_successfully",
                    other => return Err(format!("{name}: unknown condition {other:?}")),
                };
                deps.insert(name.clone(), json!(mapped));
            }
        }
        other => return Err(format!("expected a list or a map, got {}", kind(other))),
    }
    out.insert("depends_on".into(), Value::Object(deps));
    Ok(())
}

/// json-file's (and local's) `max-size` and `max-file`; berth keeps
/// json-file logs only.
fn logging(value: &Value, p: &str, out: &mut Map<String, Value>, ctx: &mut Ctx) -> Mapped {
    let Value::Object(l) = value else {
        return Err(format!("expected a map, got {}", kind(value)));
    };
    extra(l, &["driver", "options"], p, ctx);
    let driver = l
        .get("driver")
        .and_then(scalar)
        .unwrap_or_else(|| "json-file".into());
    if driver != "json-file" && driver != "local" {
        ctx.issues.unsupported(
            &join(p, "driver"),
            format!("{driver:?}: berth keeps each container's output in json-file logs only"),
        );
        return Ok(());
    }
    let Some(Value::Object(options)) = l.get("options") else {
        return Ok(());
    };
    let op = join(p, "options");
    let mut logging = Map::new();
    for (name, v) in options {
        match name.as_str() {
            "max-size" => {
                logging.insert(
                    "max_size".into(),
                    json!(byte_size(v).map_err(|e| format!("options.max-size: {e}"))?),
                );
            }
            "max-file" => {
                let n = scalar(v)
                    .and_then(|s| s.parse::<u32>().ok())
                    .ok_or("options.max-file: expected a number")?;
                logging.insert("max_files".into(), json!(n));
            }
            _ => ctx
                .issues
                .unsupported(&join(&op, name), "berth's logs have no such option"),
        }
    }
    if !logging.is_empty() {
        out.insert("logging".into(), Value::Object(logging));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_tests_in_every_form() {
        let c = |v: Value| health_command(&v).unwrap();
        assert_eq!(
            c(json!(["CMD", "wget", "-q", "x"])),
            Some(vec!["wget".into(), "-q".into(), "x".into()])
        );
        assert_eq!(
            c(json!(["CMD-SHELL", "test -f /x"])).unwrap()[2],
            "test -f /x"
        );
        assert_eq!(
            c(json!("test -f /x")).unwrap(),
            ["/bin/sh", "-c", "test -f /x"]
        );
        assert_eq!(c(json!(["NONE"])), None);
        assert!(health_command(&json!(["CMD"])).is_err());
        assert!(health_command(&json!(["wget"])).is_err());
    }
}
