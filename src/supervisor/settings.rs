//! Daemon settings: DIR/berth.json beside DIR/containers/. Optional; every
//! field has a default. Validated like specs (file:line:col and the field).
//! Today it holds per-registry settings: mirrors, TLS, credentials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::validate::{Problem, SpecError, parse_checked, problem};
use crate::fetch::reference::Reference;

pub const SETTINGS_FILE: &str = "berth.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Keyed by registry host[:port] as references name it ("docker.io",
    /// "ghcr.io", "10.0.0.5:5000").
    #[serde(default)]
    pub registries: BTreeMap<String, RegistrySettings>,
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
    parse_checked(&path, &text, check_settings)
}

fn check_settings(s: &Settings) -> Vec<Problem> {
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
}
