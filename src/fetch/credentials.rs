//! Registry credentials from a docker config.json: `--auth-file`, then
//! $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json, ~/.docker/config.json.
//! `auths` entries with base64 `auth` or `username`/`password`, and an
//! `identitytoken` (a refresh token for the token endpoint).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { username: String, password: String },
    IdentityToken { username: String, token: String },
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The config files to read, in order of precedence.
pub fn auth_file_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        out.push(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        out.push(PathBuf::from(d).join("config.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        out.push(PathBuf::from(h).join(".docker/config.json"));
    }
    out
}

/// Docker Hub is stored under several names.
fn keys_for(registry: &str) -> Vec<String> {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ]
        .map(String::from)
        .to_vec();
    }
    vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
    ]
}

/// Credentials for `registry` (a host[:port]) from the first file that
/// has them. A file that exists but cannot be parsed is an error.
pub fn lookup(registry: &str, files: &[PathBuf]) -> Result<Option<Credentials>, String> {
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let cfg: ConfigFile =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
        for key in keys_for(registry) {
            if let Some(entry) = cfg.auths.get(&key) {
                return entry_credentials(entry)
                    .map_err(|e| format!("{}: auths.{key}: {e}", file.display()));
            }
        }
    }
    Ok(None)
}

fn entry_credentials(e: &AuthEntry) -> Result<Option<Credentials>, String> {
    let (mut username, mut password) = (e.username.clone(), e.password.clone());
    if let Some(auth) = &e.auth {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "auth is not base64")?;
        let text = String::from_utf8(decoded).map_err(|_| "auth is not UTF-8")?;
        let (u, p) = text.split_once(':').ok_or("auth is not user:password")?;
        username = Some(u.to_string());
        password = Some(p.to_string());
    }
    if let Some(token) = e.identitytoken.clone().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken {
            username: username.unwrap_or_default(),
            token,
        }));
    }
    Ok(match (username, password) {
        (Some(username), Some(password)) => Some(Credentials::Basic { username, password }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_and_identity_tokens_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        std::fs::write(&f, r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},"ghcr.io":{"identitytoken":"tok","username":"u"},"r:5000":{"username":"a","password":"b"}}}"#).unwrap();
        let files = vec![f];
        assert_eq!(
            lookup("docker.io", &files).unwrap(),
            Some(Credentials::Basic {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            lookup("ghcr.io", &files).unwrap(),
            Some(Credentials::IdentityToken {
                username: "u".into(),
                token: "tok".into()
            })
        );
        assert_eq!(
            lookup("r:5000", &files).unwrap(),
            Some(Credentials::Basic {
                username: "a".into(),
                password: "b".into()
            })
        );
        assert_eq!(lookup("other.io", &files).unwrap(), None);
    }

    #[test]
    fn a_broken_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        std::fs::write(&f, r#"{"auths":{"x.io":{"auth":"%%%"}}}"#).unwrap();
        let e = lookup("x.io", &[f]).unwrap_err();
        assert!(
            e.contains("config.json: auths.x.io: auth is not base64"),
            "{e}"
        );
    }
}
