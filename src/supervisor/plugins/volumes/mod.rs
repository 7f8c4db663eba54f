//! Named volumes for `{"type": "volume"}` mounts: berth's built-in
//! `local` driver (directories under the store) and, through the Docker
//! volume plugin protocol, external drivers (docs/plugins.md). Which
//! volumes a start needs, and undoing them, is decided here; the wire
//! protocol lives in `plugin`, `http` and `discovery`.

pub mod discovery;
pub mod http;
pub mod plugin;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::supervisor::spec::Spec;
use crate::supervisor::spec::hardening::MountSpec;
use plugin::{Plugin, PluginError};

pub const LOCAL_DRIVER: &str = "local";
/// In a container's directory while its plugin volumes are mounted: a
/// daemon that died leaves it, and the next mount unmounts first.
pub const MOUNTED_MARKER: &str = "plugin-volumes.mounted";
pub use crate::supervisor::spec::plugin_settings::{
    DEFAULT_PLUGIN_TIMEOUT_SECS, DEFAULT_SOCKET_DIR, DEFAULT_SPEC_DIRS, PluginSettings,
};
/// The mount ID berth gives plugins: stable per container, so the Unmount
/// after the container exits names the same mount as the Mount before it.
pub fn mount_id(container: &str) -> String {
    format!("berth-{container}")
}

/// [`mount_volumes_with`] with Docker's plugin locations and timeout.
pub fn mount_volumes(
    store_root: &Path,
    container: &str,
    spec: &Spec,
) -> Result<BTreeMap<String, PathBuf>, String> {
    mount_volumes_with(store_root, container, spec, &PluginSettings::default())
}

/// The host path of each volume the spec mounts (once per name), creating
/// local volumes on first use and calling Create then Mount on plugins.
/// On failure, plugin volumes already mounted are unmounted again.
pub fn mount_volumes_with(
    store_root: &Path,
    container: &str,
    spec: &Spec,
    settings: &PluginSettings,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut paths = BTreeMap::new();
    let mut drivers = Drivers::new(settings);
    let mut mounted: Vec<(&str, &str)> = Vec::new();
    for (name, driver, opts) in volumes(spec) {
        if paths.contains_key(name) {
            continue;
        }
        let path = if driver == LOCAL_DRIVER {
            local_volume(store_root, name)
        } else {
            mount_plugin_volume(&mut drivers, driver, name, opts, container)
        };
        match path {
            Ok(path) => {
                if driver != LOCAL_DRIVER {
                    mounted.push((name, driver));
                }
                paths.insert(name.to_string(), path);
            }
            Err(e) => return Err(roll_back(&mut drivers, &mounted, container, e)),
        }
    }
    Ok(paths)
}

/// [`unmount_volumes_with`] with Docker's plugin locations and timeout.
pub fn unmount_volumes(store_root: &Path, container: &str, spec: &Spec) -> Vec<String> {
    unmount_volumes_with(store_root, container, spec, &PluginSettings::default())
}

/// Unmount for each plugin volume the spec mounts, once the container has
/// exited (local volumes need nothing). Returns one message per failure.
pub fn unmount_volumes_with(
    _store_root: &Path,
    container: &str,
    spec: &Spec,
    settings: &PluginSettings,
) -> Vec<String> {
    let mut drivers = Drivers::new(settings);
    let mut seen = BTreeMap::new();
    for (name, driver, _) in volumes(spec) {
        if driver != LOCAL_DRIVER {
            seen.entry(name).or_insert(driver);
        }
    }
    let mut errors = Vec::new();
    for (name, driver) in seen {
        if let Err(e) = unmount_plugin_volume(&mut drivers, driver, name, container) {
            errors.push(e);
        }
    }
    errors
}

/// `ROOT/volumes/NAME/_data`, as Docker lays out its local volumes.
pub fn local_volume(store_root: &Path, name: &str) -> Result<PathBuf, String> {
    let path = store_root.join("volumes").join(name).join("_data");
    fs::create_dir_all(&path)
        .map_err(|e| format!("volume {name}: create {}: {e}", path.display()))?;
    Ok(path)
}

/// True when a start or an exit has plugin calls to make (local volumes
/// need none).
pub fn uses_plugins(spec: &Spec) -> bool {
    volumes(spec).any(|(_, driver, _)| driver != LOCAL_DRIVER)
}

fn volumes(spec: &Spec) -> impl Iterator<Item = (&str, &str, &BTreeMap<String, String>)> {
    spec.mounts.iter().filter_map(|m| match m {
        MountSpec::Volume {
            name,
            driver,
            driver_opts,
            ..
        } => Some((name.as_str(), driver.as_str(), driver_opts)),
        _ => None,
    })
}

fn mount_plugin_volume(
    drivers: &mut Drivers,
    driver: &str,
    name: &str,
    opts: &BTreeMap<String, String>,
    container: &str,
) -> Result<PathBuf, String> {
    let fail = |e: PluginError| format!("volume {name}: {e}");
    let plugin = drivers.get(driver).map_err(fail)?;
    // Docker's order: Create (a no-op for an existing name) before Mount.
    plugin.create(name, opts).map_err(fail)?;
    let path = plugin.mount(name, &mount_id(container)).map_err(fail)?;
    if !path.is_dir() {
        let e = format!(
            "volume {name}: plugin {driver} returned mountpoint {}, which is not a directory",
            path.display()
        );
        let _ = plugin.unmount(name, &mount_id(container));
        return Err(e);
    }
    Ok(path)
}

fn unmount_plugin_volume(
    drivers: &mut Drivers,
    driver: &str,
    name: &str,
    container: &str,
) -> Result<(), String> {
    let fail = |e: PluginError| format!("volume {name}: {e}");
    let plugin = drivers.get(driver).map_err(fail)?;
    plugin.unmount(name, &mount_id(container)).map_err(fail)
}

/// `error`, plus any failure to undo the mounts that succeeded before it.
fn roll_back(
    drivers: &mut Drivers,
    mounted: &[(&str, &str)],
    container: &str,
    error: String,
) -> String {
    let undo_errors: Vec<String> = mounted
        .iter()
        .rev()
        .filter_map(|(name, driver)| unmount_plugin_volume(drivers, driver, name, container).err())
        .collect();
    if undo_errors.is_empty() {
        error
    } else {
        format!(
            "{error} (and undoing earlier mounts: {})",
            undo_errors.join("; ")
        )
    }
}

/// Plugins activated during one call, so a driver serving several volumes
/// is found and handshaken once. Activation is redone per start on purpose:
/// it is cheap, and a plugin restarted since the last start is caught.
struct Drivers<'a> {
    settings: &'a PluginSettings,
    active: BTreeMap<String, Plugin>,
}

impl<'a> Drivers<'a> {
    fn new(settings: &'a PluginSettings) -> Self {
        Drivers {
            settings,
            active: BTreeMap::new(),
        }
    }

    fn get(&mut self, driver: &str) -> Result<&Plugin, PluginError> {
        if !self.active.contains_key(driver) {
            let plugin = Plugin::activate(driver, self.settings)?;
            self.active.insert(driver.to_string(), plugin);
        }
        self.active
            .get(driver)
            .ok_or_else(|| unreachable_activation(driver))
    }
}

/// Not expected: the map was just filled. An error rather than a panic,
/// since the supervisor must not panic.
fn unreachable_activation(driver: &str) -> PluginError {
    PluginError::Protocol {
        plugin: driver.into(),
        method: "Activate".into(),
        detail: "activation was lost".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_dockers_locations() {
        let s: PluginSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, PluginSettings::default());
        assert_eq!(s.socket_dir, Path::new("/run/docker/plugins"));
        use crate::supervisor::spec::plugin_settings::check_plugin_settings;
        assert!(check_plugin_settings(&["volume_plugins"], &s).is_empty());
        let bad: PluginSettings =
            serde_json::from_str(r#"{"timeout": 0, "spec_dirs": ["rel"]}"#).unwrap();
        let got: Vec<String> = check_plugin_settings(&["volume_plugins"], &bad)
            .into_iter()
            .map(|(p, _)| p.join("."))
            .collect();
        assert_eq!(got, ["volume_plugins.timeout", "volume_plugins.spec_dirs"]);
    }

    #[test]
    fn local_volumes_need_no_plugin() {
        let root = tempfile::tempdir().unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "image": "x",
            "mounts": [{"type": "volume", "name": "v", "target": "/v"}]
        }))
        .unwrap();
        let paths = mount_volumes(root.path(), "c", &spec).unwrap();
        assert_eq!(paths["v"], root.path().join("volumes/v/_data"));
        assert!(paths["v"].is_dir());
        assert!(unmount_volumes(root.path(), "c", &spec).is_empty());
    }
}
