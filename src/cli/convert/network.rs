//! `network_mode`, `ports` (short and long forms, ranges) and `networks`.
//! Compose puts every service on one default network where they find each
//! other by name: berth's `cni` network is that.

use serde_json::{Map, Value, json};

use super::basics::extra;
use super::issues::join;
use super::service::{Ctx, Mapped, push};
use super::values::{kind, scalar};

/// Ports one entry may publish (a range), at most: berth's own limit on
/// the list.
const MAX_PORTS: usize = 256;

pub fn map(
    key: &str,
    value: &Value,
    p: &str,
    svc: &Map<String, Value>,
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Mapped {
    match key {
        "network_mode" => {
            let mode = scalar(value).ok_or("expected a string")?;
            let network = match mode.as_str() {
                "host" => "host",
                "none" => "none",
                "bridge" | "default" => "cni",
                other => {
                    ctx.issues.unsupported(
                        p,
                        format!("{other:?}: berth does not share one container's network namespace with another"),
                    );
                    return Ok(());
                }
            };
            out.insert("network".into(), json!(network));
        }
        "ports" => {
            if svc.get("network_mode").and_then(scalar).as_deref() == Some("host") {
                ctx.issues.unsupported(p, "with network_mode host the container's ports are the host's (compose ignores them too)");
                return Ok(());
            }
            let Value::Array(items) = value else {
                return Err(format!("expected a list, got {}", kind(value)));
            };
            for (i, item) in items.iter().enumerate() {
                let ip = join(p, i);
                let ports = match item {
                    Value::Object(m) => long_port(m, &ip, ctx),
                    other => match scalar(other) {
                        Some(s) => short_port(&s),
                        None => Err(format!("expected a string or a map, got {}", kind(other))),
                    },
                };
                match ports {
                    Ok(Some(list)) => list.into_iter().for_each(|p| push(out, "ports", p)),
                    Ok(None) => ctx.issues.unsupported(
                        &ip,
                        "no host port: berth publishes only a given host port (write HOST:CONTAINER)",
                    ),
                    Err(message) => ctx.issues.invalid(&ip, message),
                }
            }
        }
        "networks" => networks(value, p, ctx),
        _ => {}
    }
    Ok(())
}

/// Compose's default: the project's network, so `cni` unless the service
/// says otherwise.
pub fn default_network(svc: &Map<String, Value>, out: &mut Map<String, Value>) {
    if !svc.contains_key("network_mode") {
        out.insert("network".into(), json!("cni"));
    }
}

/// Only the default network maps: berth has one.
fn networks(value: &Value, p: &str, ctx: &mut Ctx) {
    let names: Vec<(String, bool)> = match value {
        Value::Array(items) => items
            .iter()
            .filter_map(scalar)
            .map(|n| (n, false))
            .collect(),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), !v.is_null())).collect(),
        _ => Vec::new(),
    };
    for (name, has_settings) in names {
        if name != "default" || has_settings {
            ctx.issues.unsupported(
                &join(p, &name),
                "berth has one network (cni), where every container finds the others by name",
            );
        }
    }
}

/// `[IP:][HOST[-END]:]CONTAINER[-END][/PROTO]`; None: no host port given.
fn short_port(text: &str) -> Result<Option<Vec<Value>>, String> {
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((r, proto)) => (r, proto),
        None => (text, "tcp"),
    };
    let (host_ip, rest) = if let Some(v6) = rest.strip_prefix('[') {
        let (ip, after) = v6.split_once(']').ok_or("unclosed [")?;
        (
            Some(ip.to_string()),
            after.strip_prefix(':').ok_or("expected : after ]")?,
        )
    } else {
        match rest.matches(':').count() {
            2 => {
                let (ip, after) = rest.split_once(':').unwrap_or(("", rest));
                (Some(ip.to_string()), after)
            }
            _ => (None, rest),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let container = range(container)?;
    if host.is_empty() {
        return Ok(None);
    }
    ports(
        &range(host)?,
        &container,
        host_ip.filter(|i| !i.is_empty()),
        protocol,
    )
    .map(Some)
}

/// `{target, published, host_ip, protocol, mode}`.
fn long_port(m: &Map<String, Value>, p: &str, ctx: &mut Ctx) -> Result<Option<Vec<Value>>, String> {
    extra(
        m,
        &[
            "target",
            "published",
            "host_ip",
            "protocol",
            "mode",
            "name",
            "app_protocol",
        ],
        p,
        ctx,
    );
    for meta in ["name", "app_protocol"] {
        if m.contains_key(meta) {
            ctx.issues
                .unsupported(&join(p, meta), "berth's ports carry no names");
        }
    }
    let target = m.get("target").and_then(scalar).ok_or("no target")?;
    let Some(published) = m.get("published").and_then(scalar) else {
        return Ok(None);
    };
    let protocol = m
        .get("protocol")
        .and_then(scalar)
        .unwrap_or_else(|| "tcp".into());
    let host_ip = m.get("host_ip").and_then(scalar);
    ports(&range(&published)?, &range(&target)?, host_ip, &protocol).map(Some)
}

/// `8000` or `8000-8010`, as first and last.
fn range(text: &str) -> Result<(u16, u16), String> {
    let port = |s: &str| -> Result<u16, String> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{s:?} is not a port (1-65535)"))
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(text)?, port(text)?),
    };
    if last < first {
        return Err(format!("{text:?}: the range ends before it starts"));
    }
    Ok((first, last))
}

fn ports(
    host: &(u16, u16),
    container: &(u16, u16),
    host_ip: Option<String>,
    protocol: &str,
) -> Result<Vec<Value>, String> {
    let count = usize::from(container.1 - container.0) + 1;
    if usize::from(host.1 - host.0) + 1 != count {
        return Err("host and container ranges differ in length".into());
    }
    if count > MAX_PORTS {
        return Err(format!("more than {MAX_PORTS} ports in one range"));
    }
    if !["tcp", "udp"].contains(&protocol) {
        return Err(format!(
            "protocol {protocol:?}: berth publishes tcp and udp"
        ));
    }
    Ok((0..count as u16)
        .map(|i| {
            let mut port = json!({"host_port": host.0 + i, "container_port": container.0 + i, "protocol": protocol});
            if let Some(ip) = &host_ip {
                port["host_ip"] = json!(ip);
            }
            port
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports_in_every_form() {
        let one = |t: &str| short_port(t).unwrap().unwrap();
        assert_eq!(
            one("8080:80"),
            [json!({"host_port": 8080, "container_port": 80, "protocol": "tcp"})]
        );
        assert_eq!(
            one("127.0.0.1:53:53/udp"),
            [
                json!({"host_port": 53, "container_port": 53, "protocol": "udp", "host_ip": "127.0.0.1"})
            ]
        );
        assert_eq!(one("[::1]:8080:80")[0]["host_ip"], "::1");
        assert_eq!(one("9000-9001:8000-8001").len(), 2);
        assert_eq!(one("9001:8000-8000")[0]["host_port"], 9001);
        assert_eq!(short_port("80").unwrap(), None);
        assert_eq!(short_port("127.0.0.1::80").unwrap(), None);
        for bad in [
            "x:80",
            "1-3:1-2",
            "0:80",
            "80:70000",
            "1:1/sctp",
            "1-1000:1-1000",
        ] {
            assert!(short_port(bad).is_err(), "{bad}");
        }
    }
}
