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
