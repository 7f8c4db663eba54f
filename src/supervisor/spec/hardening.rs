//! The spec fields that widen or narrow a container's isolation:
//! capabilities, seccomp, Landlock, mounts, sysctls, resources, rlimits.
//! docs/spec.md documents each; docs/security.md says what they mean.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesSpec {
    /// Added to Docker's default set ("NET_ADMIN", "CAP_NET_ADMIN", "ALL").
    #[serde(default)]
    pub add: Vec<String>,
    /// Removed from it; "ALL" starts from nothing (then `add` applies).
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandlockSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// TCP port allow-lists; absent = TCP not restricted by Landlock.
    #[serde(default)]
    pub net: Option<LandlockNetSpec>,
    /// IPC scopes: "abstract_unix_socket", "signal" (both by default).
    #[serde(default = "default_scopes")]
    pub scope: Vec<String>,
    /// Extra paths (inside the container) where everything may be written.
    #[serde(default)]
    pub read_write: Vec<String>,
}

impl Default for LandlockSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            net: None,
            scope: default_scopes(),
            read_write: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_scopes() -> Vec<String> {
    vec!["abstract_unix_socket".into(), "signal".into()]
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandlockNetSpec {
    #[serde(default)]
    pub bind_tcp: Option<Vec<u16>>,
    #[serde(default)]
    pub connect_tcp: Option<Vec<u16>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum MountSpec {
    Tmpfs {
        target: String,
        #[serde(default)]
        size: Option<ByteSize>,
        /// Octal, e.g. "1777".
        #[serde(default)]
        mode: Option<String>,
        #[serde(default)]
        read_only: bool,
        #[serde(default)]
        options: Vec<String>,
    },
    Bind {
        source: String,
        target: String,
        #[serde(default)]
        read_only: bool,
        #[serde(default)]
        options: Vec<String>,
        /// "rprivate" (default), "private", "rslave" or "slave".
        #[serde(default)]
        propagation: Option<String>,
    },
    /// A named volume from a volume driver: "local" (berth's own, under
    /// its store) or a Docker volume plugin (docs/plugins.md).
    Volume {
        name: String,
        target: String,
        #[serde(default = "local_driver")]
        driver: String,
        #[serde(default)]
        read_only: bool,
        #[serde(default)]
        options: Vec<String>,
        /// Passed to the driver's Create as Opts.
        #[serde(default)]
        driver_opts: BTreeMap<String, String>,
    },
}

fn local_driver() -> String {
    "local".into()
}

impl MountSpec {
    pub fn target(&self) -> &str {
        match self {
            MountSpec::Tmpfs { target, .. }
            | MountSpec::Bind { target, .. }
            | MountSpec::Volume { target, .. } => target,
        }
    }
    pub fn options(&self) -> &[String] {
        match self {
            MountSpec::Tmpfs { options, .. }
            | MountSpec::Bind { options, .. }
            | MountSpec::Volume { options, .. } => options,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    #[serde(default)]
    pub memory: Option<ByteSize>,
    #[serde(default)]
    pub memory_reservation: Option<ByteSize>,
    /// Memory plus swap, Docker's meaning; "-1" or -1 = unlimited swap.
    #[serde(default)]
    pub memory_swap: Option<SwapSize>,
    /// CPUs' worth of time per period, e.g. 0.5.
    #[serde(default)]
    pub cpus: Option<f64>,
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    /// Defaults to 4096; 0 = unlimited.
    #[serde(default)]
    pub pids_limit: Option<u64>,
    #[serde(default)]
    pub cpuset_cpus: Option<String>,
    #[serde(default)]
    pub cpuset_mems: Option<String>,
    #[serde(default)]
    pub io_weight: Option<u16>,
    /// Limits that may be skipped, with a warning, where the kernel lacks
    /// the controller or file.
    #[serde(default)]
    pub optional: Vec<String>,
}

/// `"nofile": 1024` or `"nofile": {"soft": 1024, "hard": 4096}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RlimitSpec {
    Both(u64),
    Pair { soft: u64, hard: u64 },
}

impl RlimitSpec {
    pub fn soft_hard(self) -> (u64, u64) {
        match self {
            RlimitSpec::Both(v) => (v, v),
            RlimitSpec::Pair { soft, hard } => (soft, hard),
        }
    }
}

pub type Rlimits = BTreeMap<String, RlimitSpec>;

/// A size in bytes, written as a number or as Docker does: "64m", "1g",
/// "512k", "100b" (binary multiples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

pub fn parse_byte_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, shift) = match t.as_bytes().last()? {
        b'k' => (&t[..t.len() - 1], 10),
        b'm' => (&t[..t.len() - 1], 20),
        b'g' => (&t[..t.len() - 1], 30),
        b't' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: bytes as a number, or a string like \"64m\" or \"1g\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v)
                    .map(ByteSize)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// `memory_swap`: a size, or -1 / "-1" for unlimited swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapSize {
    Bytes(u64),
    Unlimited,
}

impl Serialize for SwapSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SwapSize::Bytes(b) => s.serialize_u64(*b),
            SwapSize::Unlimited => s.serialize_i64(-1),
        }
    }
}

impl<'de> Deserialize<'de> for SwapSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SwapSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size like \"512m\", or -1 for unlimited swap")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SwapSize, E> {
                Ok(SwapSize::Bytes(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SwapSize, E> {
                match v {
                    -1 => Ok(SwapSize::Unlimited),
                    v => u64::try_from(v)
                        .map(SwapSize::Bytes)
                        .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SwapSize, E> {
                if v.trim() == "-1" {
                    return Ok(SwapSize::Unlimited);
                }
                parse_byte_size(v)
                    .map(SwapSize::Bytes)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(parse_byte_size("64m"), Some(64 << 20));
        assert_eq!(parse_byte_size("1G"), Some(1 << 30));
        assert_eq!(parse_byte_size("512kb"), Some(512 << 10));
        assert_eq!(parse_byte_size("100"), Some(100));
        assert_eq!(parse_byte_size("m"), None);
        assert_eq!(parse_byte_size("-1m"), None);
        assert_eq!(parse_byte_size("99999999999t"), None);
        let s: SwapSize = serde_json::from_str("-1").unwrap();
        assert_eq!(s, SwapSize::Unlimited);
        let s: SwapSize = serde_json::from_str("\"1g\"").unwrap();
        assert_eq!(s, SwapSize::Bytes(1 << 30));
    }

    #[test]
    fn rlimits_take_one_number_or_a_pair() {
        let r: Rlimits =
            serde_json::from_str(r#"{"nofile": 1024, "core": {"soft": 0, "hard": 10}}"#).unwrap();
        assert_eq!(r["nofile"].soft_hard(), (1024, 1024));
        assert_eq!(r["core"].soft_hard(), (0, 10));
    }

    #[test]
    fn mounts_are_tagged_by_type() {
        let m: MountSpec = serde_json::from_str(
            r#"{"type": "bind", "source": "/srv", "target": "/data", "read_only": true}"#,
        )
        .unwrap();
        assert_eq!(m.target(), "/data");
        assert!(serde_json::from_str::<MountSpec>(r#"{"type": "nfs", "target": "/x"}"#).is_err());
    }
}

/// `"userns": "auto"` (a private range of 65536 ids picked by berth) or
/// `{"uid_map": [...], "gid_map": [...]}`. Absent: the host's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernsSpec {
    Auto,
    Maps {
        uid_map: Vec<IdMapSpec>,
        gid_map: Vec<IdMapSpec>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapSpec {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsernsMaps {
    uid_map: Vec<IdMapSpec>,
    gid_map: Vec<IdMapSpec>,
}

impl<'de> Deserialize<'de> for UsernsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Untagged enums only say "did not match any variant"; reading the
        // value first lets each form give its own error.
        let v = serde_json::Value::deserialize(d)?;
        match v {
            serde_json::Value::String(s) if s == "auto" => Ok(UsernsSpec::Auto),
            serde_json::Value::Object(_) => serde_json::from_value::<UsernsMaps>(v)
                .map(|m| UsernsSpec::Maps {
                    uid_map: m.uid_map,
                    gid_map: m.gid_map,
                })
                .map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "expected \"auto\" or {{\"uid_map\": [...], \"gid_map\": [...]}}, got {other}"
            ))),
        }
    }
}

impl Serialize for UsernsSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UsernsSpec::Auto => s.serialize_str("auto"),
            UsernsSpec::Maps { uid_map, gid_map } => {
                serde_json::json!({"uid_map": uid_map, "gid_map": gid_map}).serialize(s)
            }
        }
    }
}

/// Which cgroup namespace the container runs in (`--cgroupns`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupnsMode {
    /// Its own: its cgroup is `/`, and the cgroup filesystems are mounted
    /// read-only at /sys/fs/cgroup.
    #[default]
    Private,
    /// The host's, with nothing mounted at /sys/fs/cgroup.
    Host,
}
