//! A Docker volume plugin's client: the Plugin.Activate handshake and the
//! VolumeDriver calls of moby's daemon/volume/drivers/proxy.go, each
//! answer's "Err" turned into an error naming the plugin and the method.
//! No decisions about when to call them: that is `volumes`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::PluginSettings;
use super::discovery::{DiscoveryError, PluginAddr, find_plugin};
use super::http::{HttpError, post_json};
use crate::supervisor::plugins::clip;

/// What a plugin must implement to serve volumes.
pub const VOLUME_DRIVER: &str = "VolumeDriver";

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("cannot connect to plugin {plugin} at {addr}: {source}")]
    Connect {
        plugin: String,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin {plugin} did not answer {method} within {}", humantime::format_duration(*after))]
    Timeout {
        plugin: String,
        method: String,
        after: Duration,
    },
    #[error("plugin {plugin}: {method}: {detail}")]
    Protocol {
        plugin: String,
        method: String,
        detail: String,
    },
    /// The plugin's own "Err".
    #[error("plugin {plugin}: {method}: {err}")]
    Driver {
        plugin: String,
        method: String,
        err: String,
    },
    #[error("plugin {plugin} is not a volume driver (it implements {implements:?})")]
    NotVolumeDriver {
        plugin: String,
        implements: Vec<String>,
    },
}

/// A volume as Get and List describe it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeInfo {
    pub name: String,
    #[serde(default)]
    pub mountpoint: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub status: BTreeMap<String, Value>,
}

/// An activated plugin that implements VolumeDriver.
#[derive(Debug, Clone)]
pub struct Plugin {
    name: String,
    addr: PluginAddr,
    timeout: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Manifest {
    #[serde(default)]
    implements: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MountpointAnswer {
    #[serde(default)]
    mountpoint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetAnswer {
    #[serde(default)]
    volume: Option<VolumeInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAnswer {
    #[serde(default)]
    volumes: Vec<VolumeInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CapabilitiesAnswer {
    #[serde(default)]
    capabilities: Capabilities,
}

/// "local" (the default) or "global" (the same volume on every host).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Capabilities {
    #[serde(default = "local_scope")]
    pub scope: String,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            scope: local_scope(),
        }
    }
}

fn local_scope() -> String {
    "local".into()
}

impl Plugin {
    /// Finds plugin `name` and does the handshake: POST /Plugin.Activate,
    /// whose "Implements" must list VolumeDriver.
    pub fn activate(name: &str, settings: &PluginSettings) -> Result<Plugin, PluginError> {
        let addr = find_plugin(name, &settings.socket_dir, &settings.spec_dirs)?;
        let plugin = Plugin {
            name: name.into(),
            addr,
            timeout: settings.timeout.0,
        };
        // moby sends no body at all with Activate.
        let manifest: Manifest = plugin.call("Plugin.Activate", None)?;
        if !manifest.implements.iter().any(|i| i == VOLUME_DRIVER) {
            return Err(PluginError::NotVolumeDriver {
                plugin: plugin.name,
                implements: manifest.implements,
            });
        }
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the volume; plugins must accept a name that already exists,
    /// since Docker (and berth) call Create before every Mount.
    pub fn create(&self, volume: &str, opts: &BTreeMap<String, String>) -> Result<(), PluginError> {
        let _: Value = self.volume_call("Create", json!({"Name": volume, "Opts": opts}))?;
        Ok(())
    }

    /// Mounts the volume for mount `id` and returns its host path.
    pub fn mount(&self, volume: &str, id: &str) -> Result<PathBuf, PluginError> {
        let answer: MountpointAnswer =
            self.volume_call("Mount", json!({"Name": volume, "ID": id}))?;
        self.mountpoint("Mount", answer.mountpoint)
    }

    pub fn unmount(&self, volume: &str, id: &str) -> Result<(), PluginError> {
        let _: Value = self.volume_call("Unmount", json!({"Name": volume, "ID": id}))?;
        Ok(())
    }

    pub fn remove(&self, volume: &str) -> Result<(), PluginError> {
        let _: Value = self.volume_call("Remove", json!({"Name": volume}))?;
        Ok(())
    }

    pub fn path(&self, volume: &str) -> Result<PathBuf, PluginError> {
        let answer: MountpointAnswer = self.volume_call("Path", json!({"Name": volume}))?;
        self.mountpoint("Path", answer.mountpoint)
    }

    pub fn get(&self, volume: &str) -> Result<VolumeInfo, PluginError> {
        let answer: GetAnswer = self.volume_call("Get", json!({"Name": volume}))?;
        answer
            .volume
            .ok_or_else(|| self.protocol("Get", "no Volume in the answer"))
    }

    pub fn list(&self) -> Result<Vec<VolumeInfo>, PluginError> {
        let answer: ListAnswer = self.volume_call("List", json!({}))?;
        Ok(answer.volumes)
    }

    pub fn capabilities(&self) -> Result<Capabilities, PluginError> {
        let answer: CapabilitiesAnswer = self.volume_call("Capabilities", json!({}))?;
        Ok(answer.capabilities)
    }

    fn mountpoint(&self, method: &str, mountpoint: String) -> Result<PathBuf, PluginError> {
        if !Path::new(&mountpoint).is_absolute() {
            return Err(self.protocol(
                method,
                &format!("Mountpoint {mountpoint:?} is not absolute"),
            ));
        }
        Ok(mountpoint.into())
    }

    fn volume_call<T: DeserializeOwned>(
        &self,
        method: &str,
        body: Value,
    ) -> Result<T, PluginError> {
        self.call(&format!("{VOLUME_DRIVER}.{method}"), Some(&body))
    }

    /// POST /METHOD; a non-empty "Err" (with any status) or a non-200
    /// status is the plugin refusing, in its words.
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        body: Option<&Value>,
    ) -> Result<T, PluginError> {
        let short = method.rsplit('.').next().unwrap_or(method);
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| self.protocol(short, &e.to_string()))?,
            None => Vec::new(),
        };
        let response = post_json(&self.addr, &format!("/{method}"), &bytes, self.timeout)
            .map_err(|e| self.http_error(short, e))?;
        let text = String::from_utf8_lossy(&response.body);
        let value: Option<Value> = if text.trim().is_empty() {
            Some(json!({}))
        } else {
            serde_json::from_str(&text).ok()
        };
        let err = value
            .as_ref()
            .and_then(|v| v.get("Err"))
            .and_then(Value::as_str);
        if let Some(err) = err.filter(|e| !e.is_empty()) {
            return Err(self.driver_error(short, err));
        }
        if response.status != 200 {
            let detail = format!("HTTP {}: {}", response.status, clip(text.trim()));
            return Err(self.driver_error(short, &detail));
        }
        let value = value.ok_or_else(|| self.protocol(short, "the answer is not JSON"))?;
        serde_json::from_value(value).map_err(|e| self.protocol(short, &e.to_string()))
    }

    fn http_error(&self, method: &str, e: HttpError) -> PluginError {
        match e {
            HttpError::Timeout => PluginError::Timeout {
                plugin: self.name.clone(),
                method: method.into(),
                after: self.timeout,
            },
            HttpError::Connect(source) => PluginError::Connect {
                plugin: self.name.clone(),
                addr: self.addr.to_string(),
                source,
            },
            other => self.protocol(method, &other.to_string()),
        }
    }

    fn protocol(&self, method: &str, detail: &str) -> PluginError {
        PluginError::Protocol {
            plugin: self.name.clone(),
            method: method.into(),
            detail: detail.into(),
        }
    }

    fn driver_error(&self, method: &str, err: &str) -> PluginError {
        PluginError::Driver {
            plugin: self.name.clone(),
            method: method.into(),
            err: err.into(),
        }
    }
}
