//! The runner against real /bin/sh programs: deadlines, process groups,
//! bounded output, stdin that is never read, exit codes and signals.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::*;

fn sh(script: &str) -> Program {
    Program::new("/bin/sh").args(["-c", script])
}

fn limits(timeout: Duration, max_bytes: usize) -> Limits {
    Limits {
        deadline: Instant::now() + timeout,
        max_stdout_bytes: max_bytes,
        max_stderr_bytes: max_bytes,
    }
}

fn text(c: &Captured) -> String {
    String::from_utf8_lossy(c.bytes()).into_owned()
}

/// Kills a background process a test started, even if the test panics.
struct KillOnDrop(Option<Pid>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

fn pid_in(c: &Captured) -> Pid {
    let pid: i32 = text(c).trim().parse().expect("the script printed a pid");
    Pid::from_raw(pid)
}

/// True once `pid` is gone or a zombie waiting for its new parent.
fn wait_dead(pid: Pid, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        if stat.is_empty() || state == Some('Z') {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn the_deadline_kills_a_grandchild_holding_the_pipes() {
    let started = Instant::now();
    let e = run(
        &sh("sleep 30 & echo $!; sleep 30"),
        b"",
        &limits(Duration::from_millis(300), 4096),
    )
    .unwrap_err();
    let elapsed = started.elapsed();
    let CommandError::TimedOut { stdout, .. } = &e else {
        panic!("expected a timeout: {e}");
    };
    let grandchild = pid_in(stdout);
    let _guard = KillOnDrop(Some(grandchild));
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "{grandchild} survived"
    );
    assert!(e.to_string().contains("process group was killed"), "{e}");
}

#[test]
fn an_exit_is_seen_while_a_background_child_holds_the_pipes() {
    let started = Instant::now();
    let out = run(
        &sh("sleep 30 & echo $!"),
        b"",
        &limits(Duration::from_secs(20), 4096),
    )
    .unwrap();
    let _guard = KillOnDrop(Some(pid_in(&out.stdout)));
    assert!(out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn huge_output_is_bounded_and_its_tail_kept() {
    let script = "yes out | head -n 500000; echo out-end; \
                  yes err | head -n 500000 >&2; echo err-end >&2";
    let out = run(&sh(script), b"", &limits(Duration::from_secs(30), 4096)).unwrap();
    assert!(out.status.success());
    for (c, end) in [(&out.stdout, "out-end\n"), (&out.stderr, "err-end\n")] {
        assert_eq!(c.bytes().len(), 4096);
        assert!(text(c).ends_with(end), "{}", text(c));
        assert_eq!(c.dropped(), 2_000_000 + end.len() as u64 - 4096);
        assert!(!c.is_complete());
    }
}

#[test]
fn stdin_a_program_never_reads_does_not_deadlock() {
    let input = vec![b'x'; 1 << 20];
    let started = Instant::now();
    let out = run(&sh("echo ok"), &input, &limits(Duration::from_secs(20), 64)).unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "ok\n");
    // Still running and not reading: its exit ends the wait, not EOF.
    let out = run(
        &sh("sleep 0.2"),
        &input,
        &limits(Duration::from_secs(20), 64),
    )
    .unwrap();
    assert!(out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn output_is_drained_while_stdin_is_fed() {
    // It fills its stdout pipe before reading any stdin: writing stdin and
    // reading stdout must interleave, or both sides block.
    let input = vec![b'x'; 1 << 20];
    let script = "head -c 1048576 /dev/zero; wc -c >&2";
    let out = run(
        &sh(script),
        &input,
        &limits(Duration::from_secs(30), 1 << 20),
    )
    .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.bytes().len(), 1 << 20);
    assert!(out.stdout.is_complete());
    assert_eq!(text(&out.stderr).trim(), "1048576");
}

#[test]
fn exit_codes_and_signals_are_reported() {
    let l = limits(Duration::from_secs(10), 64);
    let out = run(&sh("exit 7"), b"", &l).unwrap();
    assert_eq!((out.status.code(), out.status.signal()), (Some(7), None));
    let out = run(&sh("kill -9 $$"), b"", &l).unwrap();
    assert_eq!((out.status.code(), out.status.signal()), (None, Some(9)));
}

#[test]
fn argv_env_cwd_and_merged_stderr_are_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let program = Program::new("/bin/sh")
        .arg0("my-name")
        .args(["-c", "echo \"$0 $GREETING\"; pwd >&2; env | wc -l"])
        .env("GREETING", "hi there")
        .current_dir(dir.path())
        .merge_stderr();
    let out = run(&program, b"", &limits(Duration::from_secs(10), 4096)).unwrap();
    let expected = format!("my-name hi there\n{}\n", dir.path().display());
    let got = text(&out.stdout);
    assert!(got.starts_with(&expected), "{got}");
    // GREETING and the PWD/SHLVL/_ sh sets itself: nothing inherited.
    let vars: usize = got[expected.len()..].trim().parse().unwrap();
    assert!(vars <= 4, "{got}");
    assert!(out.stderr.bytes().is_empty());
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let l = limits(Duration::from_secs(10), 64);
    let e = run(&Program::new("/nonexistent/berth-test-program"), b"", &l).unwrap_err();
    assert!(
        matches!(&e, CommandError::Spawn { source, .. } if source.raw_os_error() == Some(libc::ENOENT)),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("run /nonexistent/berth-test-program: "),
        "{e}"
    );
}
