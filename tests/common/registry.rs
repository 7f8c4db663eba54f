//! A real registry for tests: Debian's docker-registry on 127.0.0.1 with a
//! free port, optionally behind htpasswd Basic auth; images pushed with
//! skopeo. Dropping it stops the registry.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use super::{run_ok, wait_for};

pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub creds: Option<(String, String)>,
}

impl Registry {
    pub fn start(dir: &Path, creds: Option<(&str, &str)>) -> Result<Registry> {
        Self::start_with(dir, creds, None)
    }

    /// With token auth: `token` is (realm, service, issuer, cert bundle).
    pub fn start_with(
        dir: &Path,
        creds: Option<(&str, &str)>,
        token: Option<(&str, &str, &str, &Path)>,
    ) -> Result<Registry> {
        fs::create_dir_all(dir.join("data"))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n",
            dir.join("data").display()
        );
        if let (Some((user, password)), None) = (creds, token) {
            let htpasswd = dir.join("htpasswd");
            run_ok(
                Command::new("htpasswd")
                    .args(["-Bbc"])
                    .arg(&htpasswd)
                    .args([user, password]),
            )
            .context("htpasswd (apache2-utils)")?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some((realm, service, issuer, bundle)) = token {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                bundle.display()
            ));
        }
        fs::write(dir.join("config.yml"), config)?;
        Self::serve(dir, port, creds.map(|(u, p)| (u.into(), p.into())))
    }

    /// A registry serving HTTPS for 127.0.0.1 with a certificate signed by
    /// a test CA (DIR/ca.crt, the CA file clients need).
    pub fn start_tls(dir: &Path) -> Result<Registry> {
        Self::start_tls_valid_from(dir, None)
    }

    /// `start_tls` with a certificate valid only from `not_before` (one
    /// "not yet valid", as a device without a clock sees every certificate).
    pub fn start_tls_valid_from(
        dir: &Path,
        not_before: Option<std::time::SystemTime>,
    ) -> Result<Registry> {
        fs::create_dir_all(dir.join("data"))?;
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        let openssl =
            |args: &[&str]| run_ok(Command::new("openssl").current_dir(dir).args(args)).map(drop);
        // A CA, and a server certificate it signs (webpki refuses a CA
        // certificate used as the server's own).
        super::self_signed_cert(
            &dir.join("ca.key"),
            &dir.join("ca.crt"),
            "/CN=berth-test-ca",
        )?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
        ])?;
        fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )?;
        if let Some(start) = not_before {
            sign_valid_from(dir, start)?;
        } else {
            openssl(&[
                "x509",
                "-req",
                "-in",
                "tls.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "tls.crt",
            ])?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\nlog:\n  level: error\n",
            dir.join("data").display(),
            cert.display(),
            key.display()
        );
        fs::write(dir.join("config.yml"), config)?;
        Self::serve(dir, port, None)
    }

    /// The registry of `dir` served again on its port, after its first
    /// process was dropped (a registry that went down and came back).
    pub fn restart(dir: &Path, port: u16) -> Result<Registry> {
        Self::serve(dir, port, None)
    }

    /// Runs docker-registry on DIR/config.yml and waits for its port.
    fn serve(dir: &Path, port: u16, creds: Option<(String, String)>) -> Result<Registry> {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("docker-registry (apt-get install docker-registry)")?;
        let reg = Registry {
            child,
            port,
            dir: dir.to_path_buf(),
            creds,
        };
        wait_for(Duration::from_secs(10), || {
            Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        })?;
        Ok(reg)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes an OCI layout (tag `latest`, or the whole index with `all`).
    pub fn push(&self, layout: &Path, repo_tag: &str, all: bool) -> Result<()> {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if all {
            cmd.arg("--all");
        }
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        run_ok(cmd).map(drop)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs DIR/tls.csr with DIR/ca.{crt,key} into DIR/tls.crt, valid from
/// `start` for two days (`openssl ca`, the one that takes a start date);
/// with `Registry::restart`, a registry that renewed its certificate.
pub fn sign_valid_from(dir: &Path, start: std::time::SystemTime) -> Result<()> {
    let asn1 = |t: std::time::SystemTime| {
        humantime::format_rfc3339_seconds(t)
            .to_string()
            .replace(['-', ':', 'T'], "")
    };
    let end = start + Duration::from_secs(2 * 24 * 3600);
    fs::write(dir.join("index.txt"), "")?;
    if !dir.join("serial").exists() {
        fs::write(dir.join("serial"), "01\n")?;
    }
    fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
    )?;
    run_ok(Command::new("openssl").current_dir(dir).args([
        "ca",
        "-batch",
        "-notext",
        "-config",
        "ca.cnf",
        "-cert",
        "ca.crt",
        "-keyfile",
        "ca.key",
        "-in",
        "tls.csr",
        "-out",
        "tls.crt",
        "-extfile",
        "ext.cnf",
        "-startdate",
        &asn1(start),
        "-enddate",
        &asn1(end),
    ]))?;
    Ok(())
}
