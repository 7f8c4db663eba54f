//! A wrong clock: a registry whose certificate is not valid yet (as a
//! device that booted at 1970 sees every certificate) fails as a clock
//! problem while the clock is not synchronized, with a
//! `clock.unsynchronized` event. Once the backoff has grown to 16 s the
//! registry gets a valid certificate; setting the clock (a zero step here,
//! which fires TFD_TIMER_CANCEL_ON_SET without moving the host's clock)
//! then makes the pull retry at once instead of after its backoff.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, ensure};
use common::registry::Registry;
use common::updates::{events, inspect};
use common::*;
use serde_json::json;

/// Marks the kernel clock unsynchronized if a time daemon had it synced
/// (STA_UNSYNC: what the kernel has at every boot until NTP clears it).
fn make_clock_unsynchronized() -> Result<()> {
    if berth::kernel::clock::synchronized() {
        // SAFETY: zeroed is a valid timex; ADJ_STATUS sets only the status.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: adjtimex reads and fills the timex we own.
        ensure!(unsafe { libc::adjtimex(&mut tx) } >= 0);
        tx.modes = libc::ADJ_STATUS;
        tx.status |= libc::STA_UNSYNC;
        // SAFETY: as above.
        ensure!(unsafe { libc::adjtimex(&mut tx) } >= 0, "adjtimex");
    }
    ensure!(!berth::kernel::clock::synchronized());
    Ok(())
}

/// clock_settime(CLOCK_REALTIME, now): a clock change that moves nothing.
fn zero_step_clock() -> Result<()> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime and clock_settime read and write one timespec.
    unsafe {
        ensure!(libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) == 0);
        ensure!(
            libc::clock_settime(libc::CLOCK_REALTIME, &ts) == 0,
            "clock_settime"
        );
    }
    Ok(())
}

#[test]
fn a_certificate_not_yet_valid_is_a_clock_problem_retried_when_the_clock_is_set() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    make_clock_unsynchronized()?;
    let env = TestEnv::new()?;
    let valid_from = SystemTime::now() + Duration::from_secs(3600);
    let dir = env.dir.path().join("tls-registry");
    let reg = Registry::start_tls_valid_from(&dir, Some(valid_from))?;
    let port = reg.port;
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", demo_layout(&env)?.display()))
            .arg(format!("docker://{}/demo/busybox:1", reg.host())),
    )?;
    let settings = json!({"registries": {reg.host(): {"ca_file": dir.join("ca.crt")}}});
    fs::write(env.config().join("berth.json"), settings.to_string())?;
    let image = format!("{}/demo/busybox:1", reg.host());
    env.write_spec(
        "app",
        &json!({"image": image, "command": ["sleep", "60"]}).to_string(),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let mut c = json!(null);
    let waited = wait_for(Duration::from_secs(40), || {
        c = inspect(&env, "app")?;
        let error = c["error"].as_str().unwrap_or_default();
        Ok(c["state"] == "pulling"
            && error.contains("clock")
            && error.contains("not valid")
            && error.contains("trying again in 16s"))
    });
    ensure!(waited.is_ok(), "{c:#}");
    let seen = events(&env, "clock.*")?;
    ensure!(
        seen.iter()
            .any(|e| e["kind"] == "clock.unsynchronized" && e["container"] == "app"),
        "{seen:#?}"
    );
    // The registry renews its certificate: the next try is 16 s away.
    drop(reg);
    common::registry::sign_valid_from(&dir, SystemTime::now() - Duration::from_secs(60))?;
    let _reg = Registry::restart(&dir, port)?;
    ensure!(inspect(&env, "app")?["state"] == "pulling");
    let set = Instant::now();
    zero_step_clock()?;
    env.wait_state("app", "running", Duration::from_secs(30))?;
    let took = set.elapsed();
    eprintln!("clock set: container running {took:?} later (the next backoff try was 16 s away)");
    ensure!(
        took < Duration::from_secs(4),
        "ran {took:?} after the clock was set"
    );
    Ok(())
}
