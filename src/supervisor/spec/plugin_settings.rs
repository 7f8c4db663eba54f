//! berth.json's `volume_plugins`: where Docker volume plugins are found and
//! how long each call may take, with its checks. The plugins themselves
//! are plugins/volumes/.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::supervisor::spec::service::Seconds;
use crate::supervisor::spec::validate::{Problem, problem};

pub const DEFAULT_SOCKET_DIR: &str = "/run/docker/plugins";
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/docker/plugins", "/usr/lib/docker/plugins"];
pub const DEFAULT_PLUGIN_TIMEOUT_SECS: u64 = 10;
const MAX_PLUGIN_TIMEOUT_SECS: u64 = 300;

/// Where volume plugins are found and how long each call may take. Every
/// field defaults to Docker's locations and a 10 s timeout, so it can sit
/// in berth.json under a `#[serde(default)]` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    #[serde(default = "default_socket_dir")]
    pub socket_dir: PathBuf,
    #[serde(default = "default_spec_dirs")]
    pub spec_dirs: Vec<PathBuf>,
    /// The most one call (connect, request, answer) may take. berth's loop
    /// waits for it, so it is far below Docker's 1-2 minutes.
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
}

fn default_socket_dir() -> PathBuf {
    DEFAULT_SOCKET_DIR.into()
}
fn default_spec_dirs() -> Vec<PathBuf> {
    DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect()
}
fn default_timeout() -> Seconds {
    Seconds(Duration::from_secs(DEFAULT_PLUGIN_TIMEOUT_SECS))
}

impl Default for PluginSettings {
    fn default() -> Self {
        PluginSettings {
            socket_dir: default_socket_dir(),
            spec_dirs: default_spec_dirs(),
            timeout: default_timeout(),
        }
    }
}

/// Problems in `s`, at [prefix.., FIELD].
pub fn check_plugin_settings(prefix: &[&str], s: &PluginSettings) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at = |field: &'static str| [prefix, &[field]].concat();
    let max = Duration::from_secs(MAX_PLUGIN_TIMEOUT_SECS);
    if s.timeout.0.is_zero() || s.timeout.0 > max {
        let message = format!("must be more than 0 and at most {MAX_PLUGIN_TIMEOUT_SECS}s");
        problems.push(problem(&at("timeout"), message));
    }
    let dirs = std::iter::once(("socket_dir", &s.socket_dir))
        .chain(s.spec_dirs.iter().map(|d| ("spec_dirs", d)));
    if let Some((field, _)) = dirs.into_iter().find(|(_, d)| !d.is_absolute()) {
        problems.push(problem(&at(field), "must be an absolute path"));
    }
    problems
}
