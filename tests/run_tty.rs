//! `berth run -i`/`-t`: the container's first process gets a pty of its
//! own devpts whose master goes to the client (SCM_RIGHTS), never a host
//! terminal; stdin with -i; window size followed; the exit code returned;
//! ctrl-p ctrl-q or a killed client leaves the container running; --rm
//! removes it after it exits.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use common::pty::PtyClient;
use common::*;

const LIMIT: Duration = Duration::from_secs(30);
const TIOCSTI_REF: &str = "localhost/test/tiocsti:latest";

/// Busybox plus /usr/local/bin/tiocsti (tests/escape/tiocsti.c), once per
/// test binary.
fn tiocsti_layout() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("tiocsti-image"));
        let bin = dir.join("layer/usr/local/bin");
        fs::create_dir_all(&bin).expect("layer dir");
        let mut cc = Command::new("cc");
        cc.args(["-static", "-O2", "-o"])
            .arg(bin.join("tiocsti"))
            .arg(repo_path("tests/escape/tiocsti.c"));
        run_ok(cc).expect("build tiocsti (needs gcc and libc6-dev)");
        fs::set_permissions(bin.join("tiocsti"), fs::Permissions::from_mode(0o755)).expect("chmod");
        let layout = dir.join("oci");
        make_image(
            "oci",
            TIOCSTI_REF,
            &layout,
            &[busybox_rootfs(), &dir.join("layer")],
        )
        .expect("image");
        layout
    })
}

fn daemon() -> Result<(TestEnv, Daemon)> {
    let env = TestEnv::new()?;
    env.import_demo()?;
    let daemon = env.start_daemon_checked()?;
    Ok((env, daemon))
}

fn in_pty(env: &TestEnv, args: &[&str]) -> Result<PtyClient> {
    PtyClient::spawn(env.cli(args), 24, 80)
}

fn names(env: &TestEnv) -> Result<Vec<String>> {
    Ok(env
        .ps()?
        .iter()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect())
}

#[test]
fn run_it_gives_a_terminal_of_the_container_its_size_and_exit_code() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = daemon()?;
    let mut t = in_pty(
        &env,
        &["run", "-it", "--rm", "--name", "tty1", DEMO_REF, "sh"],
    )?;
    common::pty::check_session(&mut t, true, LIMIT)?;
    // --rm: gone once it exited.
    wait_for(LIMIT, || Ok(!names(&env)?.contains(&"tty1".to_string())))?;
    Ok(())
}

#[test]
fn run_t_keystrokes_injected_by_the_container_stay_in_its_own_terminal() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_layout(tiocsti_layout())?;
    let _daemon = env.start_daemon_checked()?;
    // -t without -i: the client never reads its terminal, so anything
    // pushed into it would stay queued there for the test to count.
    let script = "tiocsti 'echo pwned\n'; read -t 2 x; echo \"got[$x]\"; echo all-done";
    let mut t = in_pty(
        &env,
        &["run", "-t", "--rm", TIOCSTI_REF, "sh", "-c", script],
    )?;
    t.wait_for("all-done", LIMIT)?;
    assert_eq!(t.wait_exit(LIMIT)?, Some(0), "{}", t.text);
    let injected = t.text.contains("injected");
    if injected {
        // It reached the container's own pty, where its own shell read it.
        assert!(t.text.contains("got[echo pwned]"), "{}", t.text);
    } else {
        assert!(t.text.contains("refused"), "{}", t.text);
    }
    assert_eq!(
        t.queued_input()?,
        0,
        "bytes were pushed into the client's terminal: {}",
        t.text
    );
    Ok(())
}

#[test]
fn run_i_passes_stdin_and_prints_the_output() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = daemon()?;
    let mut child = env
        .cli(&["run", "-i", "--rm", DEMO_REF, "sh", "-c", "cat; exit 5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hello from stdin\n")?;
    drop(stdin);
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from stdin\n");
    Ok(())
}

#[test]
fn detaching_or_killing_the_client_leaves_the_container_running() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = daemon()?;
    let mut t = in_pty(&env, &["run", "-it", "--name", "keep", DEMO_REF, "sh"])?;
    t.type_text("echo rea\"\"dy\n")?;
    t.wait_for("ready", LIMIT)?;
    t.type_text("\x10\x11")?;
    assert_eq!(t.wait_exit(LIMIT)?, Some(0), "{}", t.text);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.container("keep")?["state"], "running");
    // Its shell is still there, on its terminal: tty_nr of /dev/pts/0
    // (major 136, minor 0).
    let stat = ["exec", "keep", "awk", "{print $7}", "/proc/1/stat"];
    let out = run_ok(env.cli(&stat))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "34816");

    let mut t = in_pty(
        &env,
        &["run", "-it", "--rm", "--name", "killed", DEMO_REF, "sh"],
    )?;
    t.type_text("echo rea\"\"dy\n")?;
    t.wait_for("ready", LIMIT)?;
    t.child.kill()?;
    t.child.wait()?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.container("killed")?["state"], "running");
    run_ok(env.cli(&["kill", "killed"]))?;
    wait_for(LIMIT, || Ok(!names(&env)?.contains(&"killed".to_string())))?;
    Ok(())
}
