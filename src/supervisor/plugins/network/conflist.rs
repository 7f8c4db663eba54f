//! The CNI network configuration list and the JSON that goes to and comes
//! from plugins: each plugin's stdin (config + cniVersion + name +
//! runtimeConfig + prevResult) and the parts of a result berth reads.
//! Follows the CNI 1.1 SPEC.md, "Section 1" and "Section 5".

use std::io;
use std::net::IpAddr;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::{Attachment, NetError, NetworkSettings};
use crate::supervisor::spec::service::PortSpec;

/// berth's default network, used when the configured file does not exist.
pub(super) const DEFAULT_CONFLIST: &str = include_str!("../../../../configs/cni/berth.conflist");

/// Result versions berth can read (0.3.0 introduced the `ips`/`interfaces`
/// layout; 0.1/0.2 results are not understood).
const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

#[derive(Debug, Clone)]
pub(super) struct Conflist {
    pub name: String,
    pub cni_version: String,
    /// Each plugin's own configuration object, in chain order.
    pub plugins: Vec<Map<String, Value>>,
    /// The list as read, kept in the state file so DEL uses the
    /// configuration ADD used even if the file has changed since.
    pub raw: Value,
}

impl Conflist {
    pub fn plugin_type(plugin: &Map<String, Value>) -> &str {
        plugin.get("type").and_then(Value::as_str).unwrap_or("")
    }
}

/// Reads the configured list, or the built-in default if the file is
/// missing.
pub(super) fn load(settings: &NetworkSettings) -> Result<Conflist, NetError> {
    let path = &settings.conflist;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => DEFAULT_CONFLIST.to_string(),
        Err(source) => {
            return Err(NetError::ReadConfig {
                path: path.clone(),
                source,
            });
        }
    };
    let raw: Value = serde_json::from_str(&text).map_err(|e| bad(path, e.to_string()))?;
    parse(raw).map_err(|msg| bad(path, msg))
}

fn bad(path: &Path, msg: String) -> NetError {
    NetError::BadConfig {
        path: path.to_path_buf(),
        msg,
    }
}

/// Validates the shape berth relies on; plugin-specific keys pass through.
pub(super) fn parse(raw: Value) -> Result<Conflist, String> {
    let name = raw
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("missing \"name\"")?
        .to_string();
    let cni_version = pick_version(&raw)?;
    let list = raw
        .get("plugins")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or("\"plugins\" must be a non-empty array")?;
    let mut plugins = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let obj = p
            .as_object()
            .ok_or_else(|| format!("plugins[{i}] is not an object"))?;
        let kind = Conflist::plugin_type(obj);
        if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
            return Err(format!("plugins[{i}]: \"type\" must be a plugin file name"));
        }
        plugins.push(obj.clone());
    }
    Ok(Conflist {
        name,
        cni_version,
        plugins,
        raw,
    })
}

/// The spec's rule: the highest of `cniVersions` berth supports, else
/// `cniVersion`.
fn pick_version(raw: &Value) -> Result<String, String> {
    if let Some(list) = raw.get("cniVersions").and_then(Value::as_array) {
        let best = SUPPORTED_VERSIONS
            .iter()
            .rev()
            .find(|v| list.iter().any(|x| x.as_str() == Some(v)));
        return best.map(|v| v.to_string()).ok_or_else(|| {
            format!("none of \"cniVersions\" is supported ({SUPPORTED_VERSIONS:?})")
        });
    }
    let v = raw
        .get("cniVersion")
        .and_then(Value::as_str)
        .ok_or("missing \"cniVersion\"")?;
    if SUPPORTED_VERSIONS.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "cniVersion {v:?} is not supported ({SUPPORTED_VERSIONS:?})"
        ))
    }
}

/// The `portMappings` capability argument (CNI CONVENTIONS.md).
pub(super) fn port_mappings(ports: &[PortSpec]) -> Vec<Value> {
    ports
        .iter()
        .map(|p| {
            let mut m = json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": p.protocol.to_ascii_lowercase(),
            });
            if let Some(ip) = p.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
                m["hostIP"] = json!(ip);
            }
            m
        })
        .collect()
}

/// One plugin's stdin: its config, the list's `cniVersion` and `name`,
/// `runtimeConfig` for the capabilities it declares that berth supplies,
/// and `prevResult`.
pub(super) fn plugin_stdin(
    list: &Conflist,
    plugin: &Map<String, Value>,
    port_mappings: &[Value],
    prev: Option<&Value>,
) -> Vec<u8> {
    let mut conf = plugin.clone();
    conf.insert("cniVersion".into(), json!(list.cni_version));
    conf.insert("name".into(), json!(list.name));
    let wants_ports = plugin
        .get("capabilities")
        .and_then(|c| c.get("portMappings"))
        .and_then(Value::as_bool)
        == Some(true);
    if wants_ports && !port_mappings.is_empty() {
        let rc = conf
            .entry("runtimeConfig")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(rc) = rc.as_object_mut() {
            rc.insert("portMappings".into(), Value::Array(port_mappings.to_vec()));
        }
    }
    match prev {
        Some(p) => conf.insert("prevResult".into(), p.clone()),
        None => conf.remove("prevResult"),
    };
    // A map of JSON values always serializes.
    serde_json::to_vec(&conf).unwrap_or_default()
}

/// The result's `ips` entries of the container's interface `ifname` (all
/// of them when the result names no interfaces, as IPAM results do).
fn container_ips<'a>(result: &'a Value, ifname: &str) -> Vec<&'a Value> {
    let ifaces = result.get("interfaces").and_then(Value::as_array);
    let is_ours = |ip: &Value| -> bool {
        let Some(idx) = ip.get("interface").and_then(Value::as_u64) else {
            return true;
        };
        let iface = ifaces.and_then(|l| l.get(usize::try_from(idx).ok()?));
        iface.is_some_and(|i| {
            i.get("name").and_then(Value::as_str) == Some(ifname)
                && i.get("sandbox")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
        })
    };
    result
        .get("ips")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter(|ip| is_ours(ip)).collect())
        .unwrap_or_default()
}

/// The container interface's addresses in CIDR form (`10.0.0.5/24`).
pub(super) fn container_cidrs(result: &Value, ifname: &str) -> Vec<String> {
    container_ips(result, ifname)
        .into_iter()
        .filter_map(|ip| ip.get("address")?.as_str())
        .filter(|a| a.contains('/'))
        .map(str::to_string)
        .collect()
}

/// Reads eth0's address (the first IPv4 one, else the first), its gateway
/// and the result's nameservers.
pub(super) fn attachment_from(result: Value, ifname: &str) -> Attachment {
    let addr = |ip: &Value| -> Option<IpAddr> {
        let a = ip.get("address")?.as_str()?;
        a.split('/').next()?.parse().ok()
    };
    let ours = container_ips(&result, ifname);
    let chosen = ours
        .iter()
        .find(|ip| addr(ip).is_some_and(|a| a.is_ipv4()))
        .or(ours.first());
    let ip = chosen.and_then(|ip| addr(ip));
    let gateway = chosen.and_then(|ip| ip.get("gateway")?.as_str()?.parse().ok());
    let dns = result
        .pointer("/dns/nameservers")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|n| n.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    Attachment {
        ip,
        gateway,
        dns,
        result,
    }
}

/// The CNI spec's well-known error codes.
pub(super) fn code_meaning(code: u64) -> &'static str {
    match code {
        1 => "incompatible CNI version",
        2 => "unsupported field in network configuration",
        3 => "container unknown or does not exist",
        4 => "invalid necessary environment variables",
        5 => "I/O failure",
        6 => "failed to decode content",
        7 => "invalid network config",
        11 => "try again later",
        50 => "plugin not available",
        51 => "plugin not available, limited connectivity",
        c if c >= 100 => "plugin-specific error",
        _ => "reserved error code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_conflist_parses() {
        let list = parse(serde_json::from_str(DEFAULT_CONFLIST).unwrap()).unwrap();
        assert_eq!(list.name, "berth");
        let types: Vec<_> = list.plugins.iter().map(Conflist::plugin_type).collect();
        assert_eq!(types, ["bridge", "portmap", "firewall", "loopback"]);
    }

    #[test]
    fn versions_and_bad_lists_are_checked() {
        let l = parse(
            json!({"cniVersions": ["0.4.0", "1.0.0", "9.9.9"], "name": "n",
            "plugins": [{"type": "bridge"}]}),
        )
        .unwrap();
        assert_eq!(l.cni_version, "1.0.0");
        for bad in [
            json!({"cniVersion": "0.2.0", "name": "n", "plugins": [{"type": "x"}]}),
            json!({"cniVersion": "1.0.0", "plugins": [{"type": "x"}]}),
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": []}),
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../x"}]}),
        ] {
            assert!(parse(bad).is_err());
        }
    }

    #[test]
    fn stdin_carries_ports_only_to_plugins_declaring_them() {
        let list = parse(serde_json::from_str(DEFAULT_CONFLIST).unwrap()).unwrap();
        let ports = port_mappings(&[PortSpec {
            host_port: 8080,
            container_port: 80,
            protocol: "TCP".into(),
            host_ip: Some("127.0.0.1".into()),
        }]);
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        let pm: Value =
            serde_json::from_slice(&plugin_stdin(&list, &list.plugins[1], &ports, Some(&prev)))
                .unwrap();
        assert_eq!(pm["name"], "berth");
        assert_eq!(pm["cniVersion"], list.cni_version);
        assert_eq!(pm["prevResult"], prev);
        assert_eq!(
            pm["runtimeConfig"]["portMappings"][0],
            json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"})
        );
        let br: Value =
            serde_json::from_slice(&plugin_stdin(&list, &list.plugins[0], &ports, None)).unwrap();
        assert!(br.get("runtimeConfig").is_none() && br.get("prevResult").is_none());
    }

    #[test]
    fn attachment_reads_the_container_interface() {
        let r = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "br0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/x"}],
            "ips": [{"interface": 0, "address": "10.1.0.1/24"},
                    {"interface": 2, "address": "fd00::5/64"},
                    {"interface": 2, "address": "10.1.0.5/24", "gateway": "10.1.0.1"}],
            "dns": {"nameservers": ["10.1.0.1", "bogus"]}});
        assert_eq!(container_cidrs(&r, "eth0"), ["fd00::5/64", "10.1.0.5/24"]);
        let a = attachment_from(r, "eth0");
        assert_eq!(a.ip, Some("10.1.0.5".parse().unwrap()));
        assert_eq!(a.gateway, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(a.dns, vec!["10.1.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(attachment_from(json!({}), "eth0").ip, None);
    }
}
