//! A spec's `wait_for`: conditions of the world the container waits for
//! before it starts (a device node, the network, a name, a synchronized
//! clock, a TCP listener), each with an optional `timeout` after which the
//! container fails or, with `"then": "start"`, starts anyway. Parsing and
//! checks only; watching them is ops/gates.rs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::bounds::{GATE_TIMEOUT, LIST_ENTRIES, PATH_BYTES, TEXT_BYTES};
use super::service::Seconds;
use super::validate::{Problem, problem};
use super::validate_bounds::BoundsCheck;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkCondition {
    /// An address other than loopback and a default route.
    Online,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockCondition {
    /// The kernel counts the clock as synchronized (adjtimex).
    Synchronized,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterTimeout {
    /// The container fails to start, naming the condition.
    #[default]
    Fail,
    /// It starts anyway.
    Start,
}

/// One entry: exactly one condition, and what its timeout does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitForSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockCondition>,
    /// "host:port" (a bracketed IPv6 address as "[::1]:80").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Seconds>,
    #[serde(default)]
    pub then: AfterTimeout,
}

/// What an entry waits for, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Path(PathBuf),
    NetworkOnline,
    Dns(String),
    ClockSynchronized,
    Tcp { host: String, port: u16 },
}

impl Gate {
    /// As `ps` and errors show it: "path /dev/ttyUSB0", "tcp db:5432".
    pub fn describe(&self) -> String {
        match self {
            Gate::Path(p) => format!("path {}", p.display()),
            Gate::NetworkOnline => "network online".into(),
            Gate::Dns(name) => format!("dns {name}"),
            Gate::ClockSynchronized => "clock synchronized".into(),
            Gate::Tcp { host, port } if host.contains(':') => format!("tcp [{host}]:{port}"),
            Gate::Tcp { host, port } => format!("tcp {host}:{port}"),
        }
    }
}

impl WaitForSpec {
    /// The one condition this entry names.
    pub fn gate(&self) -> Result<Gate, String> {
        let mut gates = Vec::new();
        if let Some(p) = &self.path {
            gates.push(Gate::Path(PathBuf::from(p)));
        }
        if self.network.is_some() {
            gates.push(Gate::NetworkOnline);
        }
        if let Some(name) = &self.dns {
            gates.push(Gate::Dns(name.clone()));
        }
        if self.clock.is_some() {
            gates.push(Gate::ClockSynchronized);
        }
        if let Some(t) = &self.tcp {
            let (host, port) = split_host_port(t)?;
            gates.push(Gate::Tcp { host, port });
        }
        match gates.len() {
            1 => Ok(gates.remove(0)),
            0 => Err("needs one of path, network, dns, clock, tcp".into()),
            _ => Err("names more than one of path, network, dns, clock, tcp".into()),
        }
    }
}

fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let bad = || format!("{s:?} is not host:port");
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
            (host, port)
        }
        None => s.rsplit_once(':').ok_or_else(bad)?,
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Config errors at ["wait_for", INDEX, FIELD].
pub fn check_wait_for(list: &[WaitForSpec]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let index = i.to_string();
        match entry.gate() {
            Err(e) => problems.push(problem(&["wait_for", &index], e)),
            Ok(Gate::Path(p)) if !p.is_absolute() => {
                problems.push(problem(&["wait_for", &index, "path"], "must be absolute"));
            }
            Ok(Gate::Dns(name)) if !valid_dns_name(&name) => {
                let message = format!("{name:?} is not a DNS name");
                problems.push(problem(&["wait_for", &index, "dns"], message));
            }
            Ok(_) => {}
        }
    }
    problems
}

fn valid_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Sizes and durations within their ranges.
pub fn check_wait_for_bounds(list: &[WaitForSpec], c: &mut BoundsCheck<'_>) {
    if !c.count("wait_for", &LIST_ENTRIES, list.len()) {
        return;
    }
    let mut all = c.at("wait_for");
    for (i, entry) in list.iter().enumerate() {
        let mut one = all.at(i);
        one.length(
            "path",
            &PATH_BYTES,
            entry.path.as_deref().map_or(0, str::len),
        );
        one.length("dns", &TEXT_BYTES, entry.dns.as_deref().map_or(0, str::len));
        one.length("tcp", &TEXT_BYTES, entry.tcp.as_deref().map_or(0, str::len));
        if let Some(t) = entry.timeout {
            one.value("timeout", &GATE_TIMEOUT, t.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: &str) -> WaitForSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn each_condition_parses_to_its_gate() {
        let cases = [
            (
                r#"{"path": "/dev/ttyUSB0"}"#,
                Gate::Path("/dev/ttyUSB0".into()),
            ),
            (r#"{"network": "online"}"#, Gate::NetworkOnline),
            (
                r#"{"dns": "registry.example"}"#,
                Gate::Dns("registry.example".into()),
            ),
            (r#"{"clock": "synchronized"}"#, Gate::ClockSynchronized),
            (
                r#"{"tcp": "db:5432", "timeout": "30s", "then": "start"}"#,
                Gate::Tcp {
                    host: "db".into(),
                    port: 5432,
                },
            ),
            (
                r#"{"tcp": "[::1]:80"}"#,
                Gate::Tcp {
                    host: "::1".into(),
                    port: 80,
                },
            ),
        ];
        for (json, gate) in cases {
            assert_eq!(entry(json).gate().unwrap(), gate, "{json}");
        }
        assert_eq!(
            entry(r#"{"tcp": "[::1]:80"}"#).gate().unwrap().describe(),
            "tcp [::1]:80"
        );
        assert!(serde_json::from_str::<WaitForSpec>(r#"{"network": "up"}"#).is_err());
        assert!(serde_json::from_str::<WaitForSpec>(r#"{"file": "/x"}"#).is_err());
    }

    #[test]
    fn problems_name_the_entry_and_field() {
        let list = [
            entry(r#"{}"#),
            entry(r#"{"path": "/a", "dns": "b"}"#),
            entry(r#"{"path": "dev/x"}"#),
            entry(r#"{"dns": "bad name"}"#),
            entry(r#"{"tcp": "db"}"#),
            entry(r#"{"tcp": "db:0"}"#),
            entry(r#"{"path": "/ok"}"#),
        ];
        let got: Vec<String> = check_wait_for(&list)
            .into_iter()
            .map(|(p, _)| p.join("."))
            .collect();
        assert_eq!(
            got,
            [
                "wait_for.0",
                "wait_for.1",
                "wait_for.2.path",
                "wait_for.3.dns",
                "wait_for.4",
                "wait_for.5"
            ]
        );
    }
}
