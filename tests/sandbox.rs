//! kernel::sandbox on the real kernel: a confined process can write only
//! where it was allowed, cannot open sockets or exec, and keeps only the
//! capabilities it asked for. The confined part runs in a fresh process
//! (this test binary re-run for this one test), since it is irreversible.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use berth::kernel::sandbox::{Confinement, confine};
use caps::{CapSet, Capability};
use common::*;

const CHILD_ENV: &str = "BERTH_SANDBOX_TEST_DIRS";

fn confined_child(dirs: &str) {
    let (allowed, denied) = dirs.split_once(':').unwrap();
    let c = Confinement {
        read_only: vec![],
        read_write: vec![PathBuf::from(allowed)],
        keep_caps: vec![Capability::CAP_CHOWN],
    };
    let landlock = confine(&c).expect("confine");
    println!("landlock={landlock}");
    println!(
        "write-allowed={}",
        fs::write(format!("{allowed}/f"), "x").is_ok()
    );
    println!(
        "write-denied={}",
        fs::write(format!("{denied}/f"), "x").is_ok()
    );
    println!("read-etc={}", fs::read("/etc/hostname").is_ok());
    println!(
        "socket={}",
        std::net::TcpListener::bind("127.0.0.1:0").is_ok()
    );
    println!("exec={}", Command::new("/bin/true").status().is_ok());
    let eff = caps::read(None, CapSet::Effective).unwrap();
    let bnd = caps::read(None, CapSet::Bounding).unwrap();
    println!("caps={}/{}", eff.len(), bnd.len());
}

#[test]
fn a_confined_helper_reaches_only_what_it_was_given() {
    if let Ok(dirs) = std::env::var(CHILD_ENV) {
        confined_child(&dirs);
        return;
    }
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (allowed, denied) = (dir.path().join("allowed"), dir.path().join("denied"));
    fs::create_dir_all(&allowed).unwrap();
    fs::create_dir_all(&denied).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_confined_helper_reaches_only_what_it_was_given",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}:{}", allowed.display(), denied.display()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Older kernels enforce part of the pinned Landlock ABI; never none.
    assert!(
        stdout.contains("landlock=full\n") || stdout.contains("landlock=partial\n"),
        "{stdout}"
    );
    for expected in [
        "write-allowed=true",
        "write-denied=false",
        "read-etc=false",
        "socket=false",
        "exec=false",
        "caps=1/1",
    ] {
        assert!(
            stdout.contains(&format!("{expected}\n")),
            "expected {expected} in:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!denied.join("f").exists());
}
