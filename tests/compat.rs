//! Ordinary behaviours that work under Docker's defaults work under
//! berth's: the expected results are Docker's documented behaviour (a
//! writable root and /dev tmpfs, no_new_privs off, the namespaced sysctls
//! `ip_unprivileged_port_start=0` and `ping_group_range=0 2147483647`,
//! i386 programs filtered by the same seccomp profile). One daemon, one
//! container per behaviour, every mismatch reported at once.

mod common;

use anyhow::Result;
use common::compat::{COMPAT_REF, compat_env};
use common::probe::{assert_no_failures, finished};
use common::*;
use serde_json::json;

/// Docker's default capability set as /proc/self/status prints it.
const DOCKER_CAPS: &str = "00000000a80425fb";
const NET_RAW: &str = "0000000000002000";
const USER: &str = "1000:1000";

struct Case {
    name: &'static str,
    user: Option<&'static str>,
    script: &'static str,
    stdout: String,
}

fn case(name: &'static str, user: Option<&'static str>, script: &'static str, out: &str) -> Case {
    Case {
        name,
        user,
        script,
        stdout: out.to_string(),
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "root-entries",
            None,
            "mkdir /data && touch /ready && mkdir /a && mv /a /b && rmdir /b /data && rm /ready && echo ok",
            "ok\n",
        ),
        case(
            "dev-entries",
            None,
            "touch /dev/f && mkdir /dev/d && mv /dev/f /dev/d/g && rm -r /dev/d && echo ok",
            "ok\n",
        ),
        case(
            "tmp-and-etc",
            None,
            "for d in /tmp /etc; do touch $d/f && mv $d/f $d/g && rm $d/g && mkdir $d/d && rmdir $d/d && echo $d ok; done",
            "/tmp ok\n/etc ok\n",
        ),
        case(
            "setuid-as-user",
            Some(USER),
            "ids-setuid ids",
            &format!("uid=1000 euid=0 capeff={DOCKER_CAPS}\n"),
        ),
        case(
            "file-caps-as-user",
            Some(USER),
            "ids-fcap ids",
            &format!("uid=1000 euid=1000 capeff={NET_RAW}\n"),
        ),
        // iputils' ping without privileges: an ICMP datagram socket,
        // allowed by ping_group_range. (busybox's ping needs a raw socket.)
        case("ping-as-user", Some(USER), "ids ping", "pong type 0\n"),
        case("bind-80-as-user", Some(USER), "ids bind 80", "bound 80\n"),
        case(
            "sysctls",
            None,
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range",
            "0\n0\t2147483647\n",
        ),
        case(
            "i386-program",
            None,
            "hello32",
            "hello from i386\nunshare: EPERM\n",
        ),
    ]
}

#[test]
fn ordinary_behaviours_work_as_under_docker() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = compat_env()?;
    let cases = cases();
    for c in &cases {
        let mut spec = json!({"image": COMPAT_REF, "command": ["/bin/sh", "-c", c.script],
            "restart": {"policy": "no"}});
        if let Some(user) = c.user {
            spec["user"] = json!(user);
        }
        env.write_spec(c.name, &spec.to_string())?;
    }
    let _daemon = env.start_daemon_checked()?;
    let mut failures = Vec::new();
    for c in &cases {
        let (record, out, err) = finished(&env, c.name)?;
        if out != c.stdout {
            failures.push(format!(
                "{}: stdout {out:?}, expected {:?} (stderr {err:?}, exit {})",
                c.name, c.stdout, record["exit_code"]
            ));
        }
    }
    assert_no_failures(&failures, "running what Docker runs");
    Ok(())
}

/// The same cases under podman set up with Docker's defaults (its 11
/// default capabilities plus NET_RAW, MKNOD and AUDIT_WRITE, and Docker's
/// two sysctls), so the expectations above are checked against a real
/// peer, not only against Docker's documentation. Not in the normal run:
/// it needs podman (scripts/test.sh --long runs it when installed).
#[test]
#[ignore = "needs podman; scripts/test.sh --long"]
fn the_same_behaviours_under_podman_set_up_as_docker() -> Result<()> {
    if !require_root()
        || std::process::Command::new("podman")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("skipped: no podman");
        return Ok(());
    }
    let work = tempfile::tempdir()?;
    // This machine's root lacks CAP_SYS_RESOURCE: podman's rlimits must
    // stay well below the hard limits it could not raise.
    let podman = |args: &[&str]| {
        let mut cmd = std::process::Command::new("podman");
        cmd.arg("--root")
            .arg(work.path().join("root"))
            .arg("--runroot")
            .arg(work.path().join("run"))
            .args(args);
        cmd
    };
    let layout = format!("oci:{}", common::compat::compat_layout().display());
    let pulled = run_ok(podman(&["pull", "-q", &layout]))?;
    let image = String::from_utf8_lossy(&pulled.stdout).trim().to_string();
    let mut failures = Vec::new();
    for c in cases() {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ]);
        args.extend(["--cap-add", "NET_RAW,MKNOD,AUDIT_WRITE"]);
        args.extend(["--sysctl", "net.ipv4.ping_group_range=0 2147483647"]);
        args.extend(["--sysctl", "net.ipv4.ip_unprivileged_port_start=0"]);
        if let Some(user) = c.user {
            args.extend(["--user", user]);
        }
        args.extend([image.as_str(), "/bin/sh", "-c", c.script]);
        let out = podman(&args).output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout != c.stdout {
            failures.push(format!(
                "{}: podman printed {stdout:?}, berth's expectation {:?} (stderr {:?})",
                c.name,
                c.stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let _ = podman(&["rmi", "-af"]).output();
    assert_no_failures(&failures, "under podman set up as Docker");
    Ok(())
}
