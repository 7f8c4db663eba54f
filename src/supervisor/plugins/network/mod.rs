//! Container networking for `"network": "cni"`: attaching a container's
//! network namespace through a CNI plugin chain (`cni`), and the
//! /etc/hosts, /etc/resolv.conf and /etc/hostname it sees (`etc_files`).
//! docs/network.md describes the behaviour; no spec parsing here.

pub mod cni;
mod conflist;
pub mod etc_files;
mod netns_pin;
mod plugin;
mod scratch_netns;

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cni::{STATE_FILE, attach, check, cleanup_stale, detach};
pub use etc_files::{EtcFiles, rewrite_hosts, write_etc_files};

/// Where plugins are looked up when no list is configured: Debian's
/// containernetworking-plugins package, then the upstream location.
pub const DEFAULT_CNI_PATH: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];
/// Each plugin call is killed after this long (libcni has no default;
/// CRI runtimes use minutes, but berth runs ADD in its event loop).
pub const PLUGIN_TIMEOUT_SECS: u64 = 30;
/// The interface name inside the container.
pub const IFNAME: &str = "eth0";

/// How berth runs CNI: which network configuration list, where the plugin
/// binaries are, and how long one plugin may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    /// A `.conflist`. When the file does not exist, berth's built-in
    /// default (configs/cni/berth.conflist) is used.
    pub conflist: PathBuf,
    pub cni_path: Vec<PathBuf>,
    pub plugin_timeout: Duration,
}

impl NetworkSettings {
    /// `DIR/cni/berth.conflist` (so `/etc/berth/cni/berth.conflist` for
    /// the default config directory), the default CNI_PATH and timeout.
    pub fn for_config_dir(config_dir: &Path) -> Self {
        Self {
            conflist: config_dir.join("cni").join("berth.conflist"),
            cni_path: DEFAULT_CNI_PATH.iter().map(PathBuf::from).collect(),
            plugin_timeout: Duration::from_secs(PLUGIN_TIMEOUT_SECS),
        }
    }
}

/// What ADD gave the container.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// The address of `eth0` (the first IPv4 one if there are several).
    pub ip: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    /// Nameservers from the result's `dns`, if a plugin set any.
    pub dns: Vec<IpAddr>,
    /// The final CNI result, as persisted for DEL.
    pub result: serde_json::Value,
}

/// Why one plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("not found in CNI_PATH {search}")]
    NotFound { search: String },
    #[error("invalid plugin type {0:?} (a file name is expected)")]
    BadType(String),
    #[error("run {path}: {source}", path = path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("exchange data with the plugin: {0}")]
    Io(#[source] crate::kernel::SysError),
    #[error("no answer after {}s (killed)", .0.as_secs_f64())]
    TimedOut(Duration),
    #[error("output larger than {0} bytes")]
    OutputTooLarge(usize),
    /// The plugin exited non-zero; `code`/`msg`/`details` come from the
    /// error JSON on its stdout when it printed one.
    #[error("{}", failure_text(*code, msg, details, status))]
    Failed {
        code: Option<u64>,
        msg: String,
        details: String,
        status: String,
    },
    #[error("unreadable result: {0}")]
    BadResult(#[source] serde_json::Error),
}

fn failure_text(code: Option<u64>, msg: &str, details: &str, status: &str) -> String {
    let mut s = match code {
        Some(c) => format!("failed with code {c} ({})", conflist::code_meaning(c)),
        None => format!("failed ({status})"),
    };
    for part in [msg, details] {
        if !part.is_empty() {
            s.push_str(": ");
            s.push_str(part);
        }
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("CNI config {path}: {source}", path = path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("CNI config {path}: {msg}", path = path.display())]
    BadConfig { path: PathBuf, msg: String },
    #[error("container {container}: CNI {command} plugin {plugin}: {source}")]
    Plugin {
        container: String,
        command: &'static str,
        plugin: String,
        #[source]
        source: Box<PluginError>,
    },
    #[error("container {container}: {op} {path}: {source}", path = path.display())]
    State {
        container: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
