//! Daemon settings: DIR/berth.json beside DIR/containers/. Optional; every
//! field has a default. Validated like specs (file:line:col and the field).
//! It holds per-registry settings (mirrors, TLS, credentials) and what
//! berth does as a machine's init (docs/config.md, docs/pid1.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fetch::reference::Reference;
use crate::kernel::machine::PowerCommand;
use crate::supervisor::spec::host_network::{HostNetworkSettings, check_host_network};
use crate::supervisor::spec::machine_settings::{
    JournalSettings, LoggingSettings, PullSettings, StoreSettings, WatchdogSettings,
};
use crate::supervisor::spec::validate::{Problem, SpecError, parse_checked, problem};
use crate::supervisor::spec::validate_bounds::{BoundsCheck, check_settings_bounds};
use crate::supervisor::spec::webhooks::{WebhookSettings, check_webhooks};

pub const SETTINGS_FILE: &str = "berth.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Keyed by registry host[:port] as references name it ("docker.io",
    /// "ghcr.io", "10.0.0.5:5000").
    #[serde(default)]
    pub registries: BTreeMap<String, RegistrySettings>,
    /// PID 1 mode: the machine's hostname (none: the kernel's).
    #[serde(default)]
    pub hostname: Option<String>,
    /// PID 1 mode: kernel modules (.ko files) loaded before any container
    /// starts, in order (overlay, on a kernel that has it as a module).
    #[serde(default)]
    pub modules: Vec<PathBuf>,
    /// PID 1 mode: copy containers' output to the console too.
    #[serde(default)]
    pub console_logs: bool,
    #[serde(default)]
    pub shutdown: ShutdownSettings,
    /// Endpoints that receive every event (docs/events.md).
    #[serde(default)]
    pub webhooks: Vec<WebhookSettings>,
    /// Who may use the control socket besides root (docs/api.md).
    #[serde(default)]
    pub api: ApiAccess,
    /// Docker volume plugin discovery and timeout (docs/plugins.md).
    #[serde(default)]
    pub volume_plugins: crate::supervisor::spec::plugin_settings::PluginSettings,
    /// Where CDI spec files are read from (docs/config.md).
    #[serde(default)]
    pub cdi: crate::supervisor::spec::cdi::CdiSettings,
    /// How pulls use the link (docs/config.md).
    #[serde(default)]
    pub pull: PullSettings,
    /// The image store's disk guard (docs/config.md).
    #[serde(default)]
    pub store: StoreSettings,
    /// A hardware watchdog to keep alive (docs/pid1.md).
    #[serde(default)]
    pub watchdog: Option<WatchdogSettings>,
    /// Container logs machine-wide: the default driver.
    #[serde(default)]
    pub logging: LoggingSettings,
    /// The event journal's fsync policy.
    #[serde(default)]
    pub journal: JournalSettings,
    /// PID 1 mode: the machine's links, resolv.conf and clock
    /// (docs/config.md); none: left as they are.
    #[serde(default)]
    pub host_network: Option<HostNetworkSettings>,
}

/// Groups (names or gids) whose members may use the API: `admin_group`
/// everything, `read_group` only the methods that change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiAccess {
    #[serde(default)]
    pub admin_group: Option<String>,
    #[serde(default)]
    pub read_group: Option<String>,
}

/// How a PID 1 berth ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    /// After a fatal error (a panic, a config that cannot be loaded at
    /// boot): "poweroff" or "reboot".
    #[serde(default = "default_on_fatal")]
    pub on_fatal: ShutdownAction,
    /// Seconds the fatal message stays on the console before that.
    #[serde(default = "default_fatal_delay_secs")]
    pub fatal_delay_secs: u64,
    /// Seconds between SIGTERM and SIGKILL for the processes left once
    /// every container has stopped.
    #[serde(default = "default_kill_grace_secs")]
    pub kill_grace_secs: u64,
}

fn default_on_fatal() -> ShutdownAction {
    ShutdownAction::Poweroff
}
fn default_fatal_delay_secs() -> u64 {
    5
}
fn default_kill_grace_secs() -> u64 {
    5
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings {
            on_fatal: default_on_fatal(),
            fatal_delay_secs: default_fatal_delay_secs(),
            kill_grace_secs: default_kill_grace_secs(),
        }
    }
}

impl Settings {
    /// Whether container output is also copied to the console: asked for,
    /// and berth is PID 1 (a service's console is not its own to write).
    pub fn console_logs(&self, pid1: bool) -> bool {
        self.console_logs && pid1
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// Hosts tried in order before the registry itself.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Allow plain HTTP (loopback registries are always allowed it).
    #[serde(default)]
    pub insecure: bool,
    /// PEM CA bundle trusted for this registry instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// Loads DIR/berth.json; a missing file is the defaults.
pub fn load_settings(dir: &Path) -> Result<Settings, Vec<SpecError>> {
    let path = dir.join(SETTINGS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(e) => {
            return Err(vec![SpecError {
                file: path,
                line: 1,
                col: 1,
                field: None,
                message: format!("cannot read: {e}"),
            }]);
        }
    };
    parse_settings(&path, &text)
}

/// Parses and checks the text of a berth.json (`file` names it in errors).
pub fn parse_settings(file: &Path, text: &str) -> Result<Settings, Vec<SpecError>> {
    parse_checked(file, text, check_settings)
}

fn check_settings(s: &Settings) -> Vec<Problem> {
    let mut out = check_registries(s);
    check_settings_bounds(s, &mut out);
    if let Some(h) = &s.host_network {
        let meaning = check_host_network(h, &mut BoundsCheck::new(&mut out));
        out.extend(meaning);
    }
    out.extend(check_pid1_settings(s));
    out.extend(check_webhooks(&s.webhooks));
    out.extend(
        crate::supervisor::spec::plugin_settings::check_plugin_settings(
            &["volume_plugins"],
            &s.volume_plugins,
        ),
    );
    out.extend(crate::supervisor::spec::cdi::check_cdi_settings(&s.cdi));
    for (field, group) in [
        ("admin_group", &s.api.admin_group),
        ("read_group", &s.api.read_group),
    ] {
        if let Some(g) = group
            && host_group_gid(g).is_none()
        {
            out.push(problem(
                &["api", field],
                format!("no group {g:?} on this host (/etc/group)"),
            ));
        }
    }
    out
}

fn check_pid1_settings(s: &Settings) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(h) = &s.hostname {
        // HOST_NAME_MAX is 64; RFC 1123 labels: letters, digits, '-', dots between.
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if h.len() > 64 || !h.split('.').all(label_ok) {
            out.push(problem(
                &["hostname"],
                "expected 1-64 letters, digits, '-' and '.'",
            ));
        }
    }
    for (i, m) in s.modules.iter().enumerate() {
        if !m.is_absolute() || m.extension().is_none_or(|e| e != "ko") {
            out.push(problem(
                &["modules", &i.to_string()],
                "expected the absolute path of a .ko file (compressed modules are not supported)",
            ));
        }
    }
    if s.shutdown.on_fatal == ShutdownAction::Halt {
        out.push(problem(
            &["shutdown", "on_fatal"],
            "expected \"poweroff\" or \"reboot\" (a halted machine needs a hand on the power switch)",
        ));
    }
    out
}

fn check_registries(s: &Settings) -> Vec<Problem> {
    let mut out = Vec::new();
    for (host, r) in &s.registries {
        let valid_host = |h: &str| Reference::parse(&format!("{h}/x")).is_ok_and(|r| r.domain == h);
        if !valid_host(host) && host != "docker.io" {
            out.push(problem(
                &["registries", host],
                "expected a registry host[:port]",
            ));
        }
        for (i, m) in r.mirrors.iter().enumerate() {
            if !valid_host(m) {
                out.push(problem(
                    &["registries", host, "mirrors", &i.to_string()],
                    "expected a registry host[:port]",
                ));
            }
        }
        if r.username.is_some() != r.password.is_some() {
            out.push(problem(
                &["registries", host, "username"],
                "username and password go together",
            ));
        }
        if let Some(ca) = &r.ca_file
            && !ca.is_absolute()
        {
            out.push(problem(
                &["registries", host, "ca_file"],
                "must be an absolute path",
            ));
        }
    }
    out
}

/// A host group's gid, by name or as a number.
pub fn host_group_gid(group: &str) -> Option<u32> {
    if let Ok(gid) = group.parse() {
        return Some(gid);
    }
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == group).then(|| f.nth(1)?.parse().ok())?
    })
}

/// How a shutdown ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShutdownAction {
    Poweroff,
    Reboot,
    Halt,
}

impl ShutdownAction {
    pub fn command(self) -> PowerCommand {
        match self {
            ShutdownAction::Poweroff => PowerCommand::PowerOff,
            ShutdownAction::Reboot => PowerCommand::Restart,
            ShutdownAction::Halt => PowerCommand::Halt,
        }
    }

    /// The word berth.json and the API use.
    pub fn name(self) -> &'static str {
        match self {
            ShutdownAction::Poweroff => "poweroff",
            ShutdownAction::Reboot => "reboot",
            ShutdownAction::Halt => "halt",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            ShutdownAction::Poweroff => "powering off",
            ShutdownAction::Reboot => "rebooting",
            ShutdownAction::Halt => "halting",
        }
    }

    pub fn from_u8(v: u8) -> Option<ShutdownAction> {
        [Self::Poweroff, Self::Reboot, Self::Halt]
            .into_iter()
            .find(|a| *a as u8 + 1 == v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_errors_are_positioned() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_settings(dir.path()).unwrap(), Settings::default());
        std::fs::write(dir.path().join(SETTINGS_FILE), r#"{"registries": {"docker.io": {"mirrors": ["mirror.local:5000"], "insecure": true}}}"#).unwrap();
        let s = load_settings(dir.path()).unwrap();
        assert_eq!(s.registries["docker.io"].mirrors, ["mirror.local:5000"]);
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            "{\"registries\": {\"x.io\": {\"mirors\": []}}}",
        )
        .unwrap();
        let e = load_settings(dir.path()).unwrap_err()[0].to_string();
        assert!(
            e.contains("berth.json:1:33: registries.x.io.mirors: unknown field `mirors`"),
            "{e}"
        );
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            "{\"registries\": {\"x.io\": {\"username\": \"u\"}}}",
        )
        .unwrap();
        let e = load_settings(dir.path()).unwrap_err()[0].to_string();
        assert!(
            e.contains("registries.x.io.username: username and password go together"),
            "{e}"
        );
    }

    #[test]
    fn pid1_settings_have_defaults_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join(SETTINGS_FILE), text).unwrap();
        write(
            r#"{"hostname": "edge-1.local", "modules": ["/lib/modules/overlay.ko"], "console_logs": true, "shutdown": {"on_fatal": "reboot"}}"#,
        );
        let s = load_settings(dir.path()).unwrap();
        assert_eq!(s.hostname.as_deref(), Some("edge-1.local"));
        assert_eq!(s.shutdown.on_fatal, ShutdownAction::Reboot);
        assert_eq!(
            (s.shutdown.fatal_delay_secs, s.shutdown.kill_grace_secs),
            (5, 5)
        );
        assert!(!s.console_logs(false), "only in PID 1 mode");
        write(
            r#"{"hostname": "-bad_", "modules": ["overlay.ko", "/x.ko.xz"], "shutdown": {"on_fatal": "halt", "kill_grace_secs": 99999}}"#,
        );
        let errors: Vec<String> = load_settings(dir.path())
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        for want in [
            "hostname: expected 1-64 letters",
            "modules.0: expected the absolute path of a .ko file",
            "modules.1: expected the absolute path of a .ko file",
            "shutdown.on_fatal: expected \"poweroff\" or \"reboot\"",
            "shutdown.kill_grace_secs: expected 0 to 3600 seconds, got 99999",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(want)),
                "{want}: {errors:?}"
            );
        }
    }
}
