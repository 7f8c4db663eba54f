//! The CDI spec file as written (JSON or YAML), field by field as the
//! Container Device Interface's SPEC.md names them. Unknown fields are
//! errors, as the reference loader's strict decoding makes them. No checks
//! beyond the types here (validate.rs), no host access.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdiSpec {
    #[serde(rename = "cdiVersion")]
    pub version: String,
    /// `vendor.com/class`.
    pub kind: String,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    pub devices: Vec<CdiDevice>,
    /// Applied once when any device of this file is given.
    #[serde(rename = "containerEdits", default)]
    pub container_edits: Option<ContainerEdits>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdiDevice {
    pub name: String,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(rename = "containerEdits")]
    pub container_edits: ContainerEdits,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerEdits {
    /// `KEY=VALUE`.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "deviceNodes", default)]
    pub device_nodes: Option<Vec<CdiDeviceNode>>,
    #[serde(default)]
    pub hooks: Option<Vec<CdiHook>>,
    #[serde(default)]
    pub mounts: Option<Vec<CdiMount>>,
    /// Refused when used (berth sets no resctrl group): read only so a
    /// spec that has it still loads.
    #[serde(rename = "intelRdt", default)]
    pub intel_rdt: Option<IgnoredAny>,
    #[serde(rename = "additionalGids", default)]
    pub additional_gids: Option<Vec<u32>>,
    /// Refused when used (berth moves no host interface into a
    /// container).
    #[serde(rename = "netDevices", default)]
    pub net_devices: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdiDeviceNode {
    /// In the container.
    pub path: String,
    /// On the host; defaults to `path`.
    #[serde(rename = "hostPath", default)]
    pub host_path: Option<String>,
    /// `c`, `u` (both character), `b`; `p` (a FIFO) is refused.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(rename = "fileMode", default)]
    pub file_mode: Option<u32>,
    /// Of r, w and m (cgroup access); default rwm.
    #[serde(default)]
    pub permissions: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdiMount {
    #[serde(rename = "hostPath")]
    pub host_path: String,
    #[serde(rename = "containerPath")]
    pub container_path: String,
    #[serde(default)]
    pub options: Option<Vec<String>>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdiHook {
    #[serde(rename = "hookName")]
    pub hook_name: String,
    pub path: String,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

impl ContainerEdits {
    pub fn env(&self) -> &[String] {
        self.env.as_deref().unwrap_or_default()
    }
    pub fn device_nodes(&self) -> &[CdiDeviceNode] {
        self.device_nodes.as_deref().unwrap_or_default()
    }
    pub fn hooks(&self) -> &[CdiHook] {
        self.hooks.as_deref().unwrap_or_default()
    }
    pub fn mounts(&self) -> &[CdiMount] {
        self.mounts.as_deref().unwrap_or_default()
    }
    pub fn additional_gids(&self) -> &[u32] {
        self.additional_gids.as_deref().unwrap_or_default()
    }
}
