//! The spec fields that make a container a service: dependencies, a
//! health check, and how its output is kept. docs/spec.md documents each.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::supervisor::spec::hardening::ByteSize;

/// When a dependency counts as satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependCondition {
    /// It is running.
    Started,
    /// Its health check has passed (it must have one).
    Healthy,
    /// It ran and exited 0 (a one-shot setup task).
    CompletedSuccessfully,
}

/// `"depends_on": {"db": "healthy", "setup": "completed_successfully"}`.
pub type DependsOn = BTreeMap<String, DependCondition>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckSpec {
    /// Run inside the container (its namespaces and cgroup); exit 0 =
    /// healthy.
    pub command: Vec<String>,
    #[serde(default = "default_interval")]
    pub interval: Seconds,
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Consecutive failures that make the container unhealthy.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Failures during this time after a start do not count.
    #[serde(default)]
    pub start_period: Seconds,
    #[serde(default)]
    pub on_unhealthy: OnUnhealthy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnhealthy {
    /// Only report it (Docker's behaviour).
    #[default]
    None,
    /// Stop the container and start it again.
    Restart,
}

fn default_interval() -> Seconds {
    Seconds(Duration::from_secs(30))
}
fn default_timeout() -> Seconds {
    Seconds(Duration::from_secs(30))
}
fn default_retries() -> u32 {
    3
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSpec {
    /// Rotate json.log when it would grow past this.
    #[serde(default = "default_max_size")]
    pub max_size: ByteSize,
    /// Files kept, the live one included.
    #[serde(default = "default_max_files")]
    pub max_files: u32,
    /// Output accepted per second on average; beyond it berth stops
    /// reading the container's pipes for a while (the writer waits, nothing
    /// is lost, nobody else is slowed).
    #[serde(default = "default_rate")]
    pub rate: ByteSize,
    /// Output accepted at once above the rate.
    #[serde(default = "default_burst")]
    pub burst: ByteSize,
}

impl Default for LoggingSpec {
    fn default() -> Self {
        Self {
            max_size: default_max_size(),
            max_files: default_max_files(),
            rate: default_rate(),
            burst: default_burst(),
        }
    }
}

/// Small, to spare flash: 2 × 1 MiB per container.
fn default_max_size() -> ByteSize {
    ByteSize(1 << 20)
}
fn default_max_files() -> u32 {
    2
}
fn default_rate() -> ByteSize {
    ByteSize(256 << 10)
}
fn default_burst() -> ByteSize {
    ByteSize(1 << 20)
}

/// A duration written as seconds (`30`, `0.5`) or as humantime text
/// (`"30s"`, `"1m30s"`, `"500ms"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration: seconds as a number, or text like \"30s\" or \"1m\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Duration::try_from_secs_f64(v)
                    .map(Seconds)
                    .map_err(|_| E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Err(E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                humantime::parse_duration(v)
                    .map(Seconds)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_numbers_or_text() {
        let s: Seconds = serde_json::from_str("1.5").unwrap();
        assert_eq!(s.0, Duration::from_millis(1500));
        let s: Seconds = serde_json::from_str("\"1m30s\"").unwrap();
        assert_eq!(s.0, Duration::from_secs(90));
        assert!(serde_json::from_str::<Seconds>("-1").is_err());
        assert!(serde_json::from_str::<Seconds>("\"soon\"").is_err());
    }

    #[test]
    fn healthchecks_and_dependencies_parse() {
        let h: HealthcheckSpec = serde_json::from_str(
            r#"{"command": ["true"], "interval": "5s", "on_unhealthy": "restart"}"#,
        )
        .unwrap();
        assert_eq!((h.interval.0, h.retries), (Duration::from_secs(5), 3));
        let d: DependsOn =
            serde_json::from_str(r#"{"db": "healthy", "init": "completed_successfully"}"#).unwrap();
        assert_eq!(d["init"], DependCondition::CompletedSuccessfully);
    }
}

/// How the container reaches the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace with loopback only.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// Its own namespace, attached by the CNI plugins of berth's network
    /// (configs/cni/, docs/network.md).
    Cni,
}

/// `{"host_port": 8080, "container_port": 80, "protocol": "tcp",
/// "host_ip": "127.0.0.1"}`, published through the portmap plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default)]
    pub host_ip: Option<String>,
}

fn default_protocol() -> String {
    "tcp".into()
}

/// OCI runtime-spec hooks: executables run with the container's state as
/// JSON on stdin, by the supervisor on the host or, for createContainer
/// and startContainer, by the container's first process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSpec {
    #[serde(default)]
    pub prestart: Vec<HookSpec>,
    #[serde(default)]
    pub poststart: Vec<HookSpec>,
    #[serde(default)]
    pub poststop: Vec<HookSpec>,
    /// Run from inside the container's namespaces once its mounts are
    /// made, from the host's mount namespace (the path is a host path).
    #[serde(default, rename = "createContainer")]
    pub create_container: Vec<HookSpec>,
    /// Run inside the container, confined as its process, right before
    /// its program (the path is a path in the container).
    #[serde(default, rename = "startContainer")]
    pub start_container: Vec<HookSpec>,
}

impl HooksSpec {
    /// These hooks, then `later`'s, stage by stage.
    pub fn merged(&self, later: &HooksSpec) -> HooksSpec {
        let join = |a: &Vec<HookSpec>, b: &Vec<HookSpec>| a.iter().chain(b).cloned().collect();
        HooksSpec {
            prestart: join(&self.prestart, &later.prestart),
            poststart: join(&self.poststart, &later.poststart),
            poststop: join(&self.poststop, &later.poststop),
            create_container: join(&self.create_container, &later.create_container),
            start_container: join(&self.start_container, &later.start_container),
        }
    }

    /// Every stage's hooks under its OCI name.
    pub fn stages(&self) -> [(&'static str, &Vec<HookSpec>); 5] {
        [
            ("prestart", &self.prestart),
            ("poststart", &self.poststart),
            ("poststop", &self.poststop),
            ("createContainer", &self.create_container),
            ("startContainer", &self.start_container),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    /// Absolute path of the executable on the host.
    pub path: String,
    /// argv, including argv[0] (defaults to `[path]`).
    #[serde(default)]
    pub args: Vec<String>,
    /// `KEY=VALUE` strings.
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds before it is killed and counted as failed (default 10).
    #[serde(default)]
    pub timeout: Option<u64>,
}
