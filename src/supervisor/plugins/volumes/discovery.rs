//! Finding a Docker (v1, "legacy") plugin by name, as moby's
//! pkg/plugins/discovery.go does: a socket in the socket directory first,
//! then a `.spec` or `.json` file in each spec directory. No HTTP here.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where a plugin listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginAddr {
    Unix(PathBuf),
    /// "host:port", spoken to in plain HTTP.
    Tcp(String),
}

impl std::fmt::Display for PluginAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginAddr::Unix(path) => write!(f, "unix://{}", path.display()),
            PluginAddr::Tcp(host_port) => write!(f, "tcp://{host_port}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("plugin name {0:?} is invalid (a managed v2 plugin? berth only finds legacy plugins)")]
    InvalidName(String),
    #[error("plugin {name} not found (looked for {})", list(looked))]
    NotFound { name: String, looked: Vec<PathBuf> },
    #[error("plugin {name}: read {}: {source}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("plugin {name}: {}: {detail}", path.display())]
    BadSpec {
        name: String,
        path: PathBuf,
        detail: String,
    },
}

fn list(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// A `.json` plugin spec, with Docker's field names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonSpec {
    addr: String,
    #[serde(default, rename = "TLSConfig")]
    tls_config: Option<TlsConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TlsConfig {
    #[serde(default)]
    insecure_skip_verify: bool,
    #[serde(default, rename = "CAFile")]
    ca_file: String,
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
}

/// Looks `name` up: `SOCKET_DIR/NAME.sock`, `SOCKET_DIR/NAME/NAME.sock`,
/// then in each spec dir `NAME.spec`, `NAME/NAME.spec`, `NAME.json`,
/// `NAME/NAME.json` (moby's order: every .spec/.json pair of one
/// directory before the next directory).
pub fn find_plugin(
    name: &str,
    socket_dir: &Path,
    spec_dirs: &[PathBuf],
) -> Result<PluginAddr, DiscoveryError> {
    if !valid_plugin_name(name) {
        return Err(DiscoveryError::InvalidName(name.into()));
    }
    let mut looked = Vec::new();
    for path in candidates(socket_dir, name, "sock") {
        let is_socket = fs::metadata(&path).is_ok_and(|m| m.file_type().is_socket());
        if is_socket {
            return Ok(PluginAddr::Unix(path));
        }
        looked.push(path);
    }
    for dir in spec_dirs {
        let spec = candidates(dir, name, "spec");
        let json = candidates(dir, name, "json");
        for path in spec.into_iter().chain(json) {
            if path.exists() {
                return read_spec(name, &path);
            }
            looked.push(path);
        }
    }
    Err(DiscoveryError::NotFound {
        name: name.into(),
        looked,
    })
}

/// Letters, digits, `-`, `_` and `.`, not starting with a dot: the name
/// becomes a path component, so no separators and no dot-dirs.
pub fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn candidates(dir: &Path, name: &str, ext: &str) -> [PathBuf; 2] {
    let file = format!("{name}.{ext}");
    [dir.join(&file), dir.join(name).join(&file)]
}

fn read_spec(name: &str, path: &Path) -> Result<PluginAddr, DiscoveryError> {
    let text = fs::read_to_string(path).map_err(|source| DiscoveryError::Read {
        name: name.into(),
        path: path.into(),
        source,
    })?;
    let bad = |detail: String| DiscoveryError::BadSpec {
        name: name.into(),
        path: path.into(),
        detail,
    };
    let is_json = path.extension().is_some_and(|e| e == "json");
    let url = if is_json {
        let spec: JsonSpec = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if let Some(tls) = spec.tls_config
            && (tls.insecure_skip_verify
                || !tls.ca_file.is_empty()
                || !tls.cert_file.is_empty()
                || !tls.key_file.is_empty())
        {
            return Err(bad(
                "TLSConfig is not supported (berth speaks plain HTTP only: \
                 use a unix socket or a tcp:// address on a trusted network)"
                    .into(),
            ));
        }
        spec.addr
    } else {
        text.trim().to_string()
    };
    parse_url(&url).map_err(bad)
}

/// `unix:///path.sock` or `tcp://host:port` (`http://` too: moby treats
/// any scheme but unix as TCP, and only `https` as TLS).
pub fn parse_url(url: &str) -> Result<PluginAddr, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} has no scheme (want unix:// or tcp://)"));
    };
    match scheme {
        "unix" if rest.starts_with('/') => Ok(PluginAddr::Unix(PathBuf::from(rest))),
        "unix" => Err(format!("{url:?}: the socket path must be absolute")),
        "tcp" | "http" => {
            let host_port = rest.trim_end_matches('/');
            let port_ok = host_port
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if port_ok && !host_port.contains('/') {
                Ok(PluginAddr::Tcp(host_port.into()))
            } else {
                Err(format!("{url:?}: want tcp://HOST:PORT"))
            }
        }
        "https" => Err(format!("{url:?}: TLS is not supported")),
        _ => Err(format!(
            "{url:?}: unsupported scheme {scheme:?} (want unix or tcp)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("unix:///run/p.sock"),
            Ok(PluginAddr::Unix("/run/p.sock".into()))
        );
        assert_eq!(
            parse_url("tcp://10.0.0.5:8080"),
            Ok(PluginAddr::Tcp("10.0.0.5:8080".into()))
        );
        assert_eq!(
            parse_url("http://[::1]:80/"),
            Ok(PluginAddr::Tcp("[::1]:80".into()))
        );
        for bad in [
            "/run/p.sock",
            "unix://run/p.sock",
            "tcp://host",
            "https://h:1",
            "ftp://h:1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_files_in_order_and_tls_refused() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        let lib = dir.path().join("lib");
        fs::create_dir_all(etc.join("a")).unwrap();
        fs::create_dir_all(&lib).unwrap();
        let dirs = [etc.clone(), lib.clone()];
        let run = dir.path().join("run");
        fs::write(etc.join("a/a.spec"), "tcp://h:1\n").unwrap();
        fs::write(lib.join("a.spec"), "tcp://h:2\n").unwrap();
        assert_eq!(
            find_plugin("a", &run, &dirs).unwrap(),
            PluginAddr::Tcp("h:1".into())
        );
        fs::write(
            lib.join("b.json"),
            r#"{"Name": "b", "Addr": "unix:///x/b.sock"}"#,
        )
        .unwrap();
        assert_eq!(
            find_plugin("b", &run, &dirs).unwrap(),
            PluginAddr::Unix("/x/b.sock".into())
        );
        let tls = r#"{"Addr": "tcp://h:3", "TLSConfig": {"CAFile": "/ca.pem"}}"#;
        fs::write(lib.join("c.json"), tls).unwrap();
        let e = find_plugin("c", &run, &dirs).unwrap_err().to_string();
        assert!(e.contains("TLSConfig is not supported"), "{e}");
        fs::write(lib.join("d.spec"), "/x/d.sock").unwrap();
        let e = find_plugin("d", &run, &dirs).unwrap_err().to_string();
        assert!(e.contains("no scheme"), "{e}");
        let e = find_plugin("nope", &run, &dirs).unwrap_err().to_string();
        assert!(
            e.contains("plugin nope not found") && e.contains("nope.sock"),
            "{e}"
        );
        for bad in ["", "../x", "a/b", "vieux/sshfs:latest", ".."] {
            assert!(matches!(
                find_plugin(bad, &run, &dirs),
                Err(DiscoveryError::InvalidName(_))
            ));
        }
    }
}
