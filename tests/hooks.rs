//! OCI hooks run for real: /bin/sh hooks that record what they were given
//! (stdin, argv, environment) to files the tests read, fail, or hang past
//! their timeout. Needs no root.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use berth::supervisor::plugins::hooks::{HookState, HookStatus, run_hooks};
use berth::supervisor::spec::service::HookSpec;
use serde_json::{Value, json};

fn sh(script: &str, env: &[String], timeout: Option<u64>) -> HookSpec {
    HookSpec {
        path: "/bin/sh".into(),
        args: vec!["hook-argv0".into(), "-c".into(), script.into()],
        env: env.to_vec(),
        timeout,
    }
}

fn state(bundle: &Path) -> HookState {
    HookState::new("web", HookStatus::Creating, Some(4242), bundle)
}

/// NUL-separated /proc files as lines.
fn nul_lines(path: &Path) -> Result<Vec<String>> {
    let raw = fs::read(path)?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

#[test]
fn a_hook_gets_the_state_its_argv_and_exactly_its_env() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().display().to_string();
    // $$ is the shell itself: the process berth exec'd.
    let script = r#"cat > "$OUT/stdin"; cat /proc/$$/cmdline > "$OUT/argv";
                    cat /proc/$$/environ > "$OUT/env"; pwd > "$OUT/cwd""#;
    let env = [format!("OUT={out}"), "GREETING=a=b c".to_string()];
    let hook = sh(script, &env, None);
    run_hooks("prestart", &[hook], &state(dir.path())).map_err(anyhow::Error::msg)?;

    let stdin: Value = serde_json::from_slice(&fs::read(dir.path().join("stdin"))?)?;
    let expected = json!({"ociVersion": "1.0.2", "id": "web", "status": "creating",
        "pid": 4242, "bundle": out, "annotations": {}});
    assert_eq!(stdin, expected);
    assert_eq!(
        nul_lines(&dir.path().join("argv"))?,
        ["hook-argv0", "-c", script]
    );
    // The same entries and nothing else (std orders them by key).
    let mut got = nul_lines(&dir.path().join("env"))?;
    got.sort();
    let mut want = env.to_vec();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(fs::read_to_string(dir.path().join("cwd"))?.trim(), out);
    Ok(())
}

#[test]
fn args_default_to_the_path_and_poststop_has_no_pid() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hook_path = dir.path().join("record");
    common::write_executable(
        &hook_path,
        "#!/bin/sh\necho \"$0 $#\" > \"$OUT/argv\"\ncat > \"$OUT/stdin\"\n",
    )?;
    let hook = HookSpec {
        path: hook_path.display().to_string(),
        args: vec![],
        env: vec![format!("OUT={}", dir.path().display())],
        timeout: Some(5),
    };
    let stopped = HookState::new("web", HookStatus::Stopped, None, dir.path());
    run_hooks("poststop", &[hook], &stopped).map_err(anyhow::Error::msg)?;
    let argv = fs::read_to_string(dir.path().join("argv"))?;
    assert_eq!(argv.trim(), format!("{} 0", hook_path.display()));
    let stdin: Value = serde_json::from_slice(&fs::read(dir.path().join("stdin"))?)?;
    assert_eq!(stdin["status"], "stopped");
    assert!(stdin.get("pid").is_none());
    Ok(())
}

#[test]
fn a_failing_hook_names_stage_path_status_and_output() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("second-ran");
    let fail = sh(
        "echo starting; echo 'no such bridge br9' >&2; exit 3",
        &[],
        None,
    );
    let second = sh(&format!("touch {}", marker.display()), &[], None);
    let hooks = [fail, second];

    // prestart: the first failure stops the rest.
    let e = run_hooks("prestart", &hooks, &state(dir.path())).unwrap_err();
    assert_eq!(
        e,
        "prestart hook /bin/sh: exited with status 3: output: starting | no such bridge br9"
    );
    assert!(!marker.exists());

    // poststart: every hook runs; the failures come back to be logged.
    let e = run_hooks("poststart", &hooks, &state(dir.path())).unwrap_err();
    assert!(
        e.starts_with("poststart hook /bin/sh: exited with status 3"),
        "{e}"
    );
    assert!(marker.exists());

    let killed = sh("kill -9 $$", &[], None);
    let e = run_hooks("poststop", &[killed], &state(dir.path())).unwrap_err();
    assert_eq!(e, "poststop hook /bin/sh: killed by signal 9 (SIGKILL)");

    let missing = HookSpec {
        path: "/nonexistent/hook".into(),
        args: vec![],
        env: vec![],
        timeout: None,
    };
    let e = run_hooks("prestart", &[missing], &state(dir.path())).unwrap_err();
    assert!(
        e.starts_with("prestart hook /nonexistent/hook: cannot run: "),
        "{e}"
    );
    Ok(())
}

#[test]
fn output_is_bounded_to_its_tail() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let chatty = sh(
        "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; exit 1",
        &[],
        None,
    );
    let e = run_hooks("prestart", &[chatty], &state(dir.path())).unwrap_err();
    assert!(e.len() < 5000, "{} bytes", e.len());
    assert!(e.ends_with("line 19999"), "{e}");
    Ok(())
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_children() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pid_file = dir.path().join("child.pid");
    let script = format!(
        "echo waiting; sleep 60 & echo $! > {}; wait",
        pid_file.display()
    );
    let started = Instant::now();
    let e = run_hooks("prestart", &[sh(&script, &[], Some(1))], &state(dir.path())).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        e,
        "prestart hook /bin/sh: timed out after 1s, its process group was killed: output: waiting"
    );
    // The background sleep was in the hook's process group: it is gone, or
    // at most a zombie waiting for its new parent to reap it.
    let pid = fs::read_to_string(&pid_file)?.trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        if stat.is_empty() || state == Some('Z') {
            break;
        }
        assert!(Instant::now() < deadline, "sleep {pid} survived: {stat}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
