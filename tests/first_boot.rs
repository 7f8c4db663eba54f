//! The first-boot config's precedence (docs/pid1.md, "Applied once per
//! content") against a real daemon whose store outlives its restarts, as
//! a machine with a disk root keeps it: a debug build takes the kernel
//! command line from `BERTH_TEST_KERNEL_CMDLINE` (in any mode: this
//! daemon is not a machine's init), here `berth.config=` naming an HTTP
//! server of the test that serves a config tarball.
//! - first start: the served config is applied (its container runs, the
//!   seed's goes; `config.first_boot_applied`);
//! - a restart with the same content: not applied again
//!   (`config.first_boot_unchanged`), the generation stays;
//! - an operator's `berth apply`, then a restart with the same content:
//!   the operator's config stands;
//! - the served content changes: applied again at the next start.
//!
//! The VM tests (vm_first_boot.rs, vm_first_boot_url.rs) boot the real
//! thing, where the store is in RAM and starts empty at each boot.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use common::updates::events;
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(40);

/// A busybox container printing `word`, stable after 1 s.
fn spec(word: &str) -> String {
    let script = format!("trap 'exit 0' TERM; echo {word}; while :; do sleep 0.1; done");
    json!({"image": DEMO_REF, "command": ["sh", "-c", script],
        "restart": {"policy": "always"}, "stop_timeout": 1,
        "update": {"stable_for": 1}})
    .to_string()
}

/// A tarball of a config directory holding one container, `name`.
fn config_tarball(env: &TestEnv, name: &str, word: &str) -> Result<Vec<u8>> {
    let dir = env.dir.path().join(format!("served-{word}"));
    std::fs::create_dir_all(dir.join("containers"))?;
    std::fs::write(dir.join(format!("containers/{name}.json")), spec(word))?;
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &dir)?;
    Ok(b.into_inner()?)
}

/// Serves whatever `body` holds now, to every request.
fn serve(body: Arc<Mutex<Vec<u8>>>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/config.tar", listener.local_addr()?);
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = body.lock().map(|b| b.clone()).unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    Ok(url)
}

fn info(env: &TestEnv) -> Result<Value> {
    let out = run_ok(env.cli(&["info", "--json"]))?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn names(env: &TestEnv) -> Result<Vec<String>> {
    let mut n: Vec<String> = env
        .ps()?
        .iter()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    n.sort();
    Ok(n)
}

/// Waits until `kind` is in the journal `count` times, and only `name`
/// (running) is left.
fn settled(env: &TestEnv, kind: &str, count: usize, name: &str) -> Result<()> {
    wait_for(LIMIT, || Ok(events(env, kind)?.len() >= count))
        .with_context(|| format!("{count} {kind} never came"))?;
    wait_for(LIMIT, || {
        Ok(names(env)? == [name] && env.container(name)?["state"] == "running")
    })
    .with_context(|| format!("not only {name} running: {:?}", names(env)))
}

fn active_dir(env: &TestEnv) -> Result<PathBuf> {
    let dir = info(env)?["config_dir"].as_str().map(PathBuf::from);
    dir.context("no config_dir in info")
}

#[test]
fn the_same_content_is_applied_once_and_an_operators_apply_stands() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("seed", &spec("seed"))?;
    let body = Arc::new(Mutex::new(config_tarball(&env, "fromurl", "url-v1")?));
    let url = serve(body.clone())?;
    let cmdline = format!("console=ttyS0 berth.config={url}");
    let vars = [("BERTH_TEST_KERNEL_CMDLINE", cmdline.as_str())];
    let generation = |n: u32| env.root().join(format!("config/gen-{n}"));

    let daemon = env.start_daemon_with_env(&vars)?;
    settled(&env, "config.first_boot_applied", 1, "fromurl")?;
    assert_eq!(active_dir(&env)?, generation(1));
    let applied = &events(&env, "config.first_boot_applied")?[0]["data"];
    assert_eq!(applied["source"], json!(url), "{applied}");
    let digest = applied["digest"].as_str().context("digest")?.to_string();
    drop(daemon);

    let daemon = env.start_daemon_with_env(&vars)?;
    settled(&env, "config.first_boot_unchanged", 1, "fromurl")?;
    let unchanged = &events(&env, "config.first_boot_unchanged")?[0]["data"];
    assert_eq!(unchanged["digest"], json!(digest), "{unchanged}");
    assert_eq!(events(&env, "config.first_boot_applied")?.len(), 1);
    assert_eq!(active_dir(&env)?, generation(1));

    let operator = env.dir.path().join("operator");
    std::fs::create_dir_all(operator.join("containers"))?;
    std::fs::write(operator.join("containers/ops.json"), spec("ops"))?;
    let out = env.cli(&["apply", path_str(&operator)?]).output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(active_dir(&env)?, generation(2));
    drop(daemon);

    let daemon = env.start_daemon_with_env(&vars)?;
    settled(&env, "config.first_boot_unchanged", 2, "ops")?;
    assert_eq!(
        active_dir(&env)?,
        generation(2),
        "the operator's apply stands"
    );
    assert_eq!(events(&env, "config.first_boot_applied")?.len(), 1);
    drop(daemon);

    *body.lock().map_err(|_| anyhow::anyhow!("poisoned"))? =
        config_tarball(&env, "fromurl", "url-v2")?;
    let _daemon = env.start_daemon_with_env(&vars)?;
    settled(&env, "config.first_boot_applied", 2, "fromurl")?;
    assert_eq!(
        active_dir(&env)?,
        generation(3),
        "new content is a new instruction"
    );
    let second = &events(&env, "config.first_boot_applied")?[1]["data"];
    assert_ne!(second["digest"], json!(digest), "{second}");
    Ok(())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("a path that is not UTF-8")
}
