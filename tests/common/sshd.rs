//! A private sshd for `berth --host ssh://` tests: Debian's openssh-server
//! on 127.0.0.1, a free port, its own host key, config and authorized_keys
//! (a client key made here), killed when dropped. Absent sshd skips the
//! test unless BERTH_TEST_REQUIRE_SSH=1 (scripts/setup.sh --test installs
//! it).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{BERTH, run_ok, wait_for};

const SSHD: &str = "/usr/sbin/sshd";

/// Skips (false) when sshd or ssh is missing, unless required.
pub fn require_sshd() -> bool {
    let have = |p: &str| Path::new(p).exists();
    if have(SSHD) && have("/usr/bin/ssh") && have("/usr/bin/ssh-keygen") {
        return true;
    }
    if std::env::var("BERTH_TEST_REQUIRE_SSH").as_deref() == Ok("1") {
        panic!("this test needs openssh-server and BERTH_TEST_REQUIRE_SSH=1 is set");
    }
    eprintln!(
        "skipped: needs openssh-server and openssh-client (scripts/setup.sh --test installs them; \
         set BERTH_TEST_REQUIRE_SSH=1 to make this a failure)"
    );
    false
}

pub struct Sshd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

fn keygen(path: &Path) -> Result<()> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path);
    run_ok(cmd).map(drop)
}

impl Sshd {
    /// Started and accepting connections; root may log in with key().
    pub fn start() -> Result<Sshd> {
        let dir = tempfile::Builder::new().prefix("berth-sshd-").tempdir()?;
        let d = dir.path();
        keygen(&d.join("host_key"))?;
        keygen(&d.join("client_key"))?;
        keygen(&d.join("other_key"))?;
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))?;
        // sshd's privilege separation directory.
        fs::create_dir_all("/run/sshd")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\n\
             AuthorizedKeysFile {dir}/authorized_keys\nPidFile {dir}/sshd.pid\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
            dir = d.display()
        );
        fs::write(d.join("sshd_config"), config)?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(d.join("sshd.log"))?)
            .spawn()
            .context("start sshd")?;
        let mut sshd = Sshd {
            child: Some(child),
            dir,
            port,
        };
        let up = wait_for(Duration::from_secs(10), || {
            if let Some(s) = sshd
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("sshd exited with {s}");
            }
            Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        });
        if let Err(e) = up {
            let log = fs::read_to_string(sshd.dir.path().join("sshd.log")).unwrap_or_default();
            bail!("sshd did not come up ({e}): {log}");
        }
        Ok(sshd)
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A key sshd does not know.
    pub fn other_key(&self) -> PathBuf {
        self.dir.path().join("other_key")
    }

    pub fn url(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port)
    }

    /// `berth --host ssh://root@127.0.0.1:PORT ARGS` with `key`, against the
    /// daemon at `socket` (its path goes to the far side's dial-stdio).
    pub fn berth(&self, key: &Path, socket: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.arg("--host").arg(self.url()).args(args);
        let opts = format!(
            "-i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            key.display()
        );
        cmd.env("BERTH_SSH_OPTS", opts)
            .env("BERTH_REMOTE_BIN", BERTH)
            .env("BERTH_SOCKET", socket)
            .env_remove("BERTH_HOST");
        cmd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
