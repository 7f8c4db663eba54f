//! What devices cost a start, on the real kernel: a container given ten
//! loop devices reads every one of them (and their markers prove each
//! node is the right device), and the daemon's own start stages
//! (`container.started`'s `start_us`) are compared with a container given
//! none. Prints the medians; asserts only what must hold on any machine:
//! every device works, and ten devices do not make a start take seconds.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::loopdev::LoopDev;
use common::*;
use serde_json::Value;

const DEMO_REF: &str = "localhost/demo/busybox:latest";
const ROUNDS: usize = 9;

/// The started events' start stages but the cgroup join, summed, in µs,
/// for every container whose name starts with `prefix`.
fn start_totals(env: &TestEnv, prefix: &str) -> Result<Vec<u64>> {
    let out = run_ok(env.cli(&["events", "--json", "--since", "0"]))?;
    let mut totals = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let event: Value = serde_json::from_str(line)?;
        let named = event["container"]
            .as_str()
            .or(event["data"]["name"].as_str())
            .unwrap_or("");
        if event["kind"] != "container.started" || !named.starts_with(prefix) {
            continue;
        }
        let stages = event["data"]["start_us"]
            .as_object()
            .context("start_us in a started event")?;
        // "place" (joining the cgroup) waits for the kernel's RCU grace
        // period on cgroup v1: 0.3-12 ms whatever the container holds,
        // which would drown what devices cost.
        let own = stages.iter().filter(|(stage, _)| *stage != "place");
        totals.push(own.filter_map(|(_, us)| us.as_u64()).sum());
    }
    Ok(totals)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn ten_devices_all_work_and_their_start_cost_is_measured() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let loops: Vec<LoopDev> = (0..10)
        .map(|i| LoopDev::new(&format!("DEVICE{i:02}")))
        .collect::<Result<_>>()?;
    let env = TestEnv::new()?;
    env.import_demo()?;
    let _daemon = env.start_daemon_checked()?;
    let mut read_all = String::new();
    let mut ten = Vec::new();
    for (i, l) in loops.iter().enumerate() {
        read_all += &format!("head -c 8 /dev/d{i}; echo; ");
        ten.push("--device".to_string());
        ten.push(format!("{}:/dev/d{i}:r", l.path));
    }
    for round in 0..ROUNDS {
        let none = format!("none-{round}");
        run_ok(env.cli(&["run", "--rm", "--name", &none, DEMO_REF, "true"]))?;
        let name = format!("ten-{round}");
        let mut args = vec!["run", "--rm", "--name", &name];
        args.extend(ten.iter().map(String::as_str));
        args.extend([DEMO_REF, "sh", "-c", &read_all]);
        let out = run_ok(env.cli(&args))?;
        let text = String::from_utf8_lossy(&out.stdout);
        for i in 0..10 {
            let marker = format!("DEVICE{i:02}");
            ensure!(text.contains(&marker), "{marker} not read:\n{text}");
        }
    }
    wait_for(Duration::from_secs(10), || {
        Ok(start_totals(&env, "ten-")?.len() == ROUNDS)
    })?;
    let (none, ten) = (start_totals(&env, "none-")?, start_totals(&env, "ten-")?);
    ensure!(none.len() == ROUNDS, "started events: {none:?}");
    let (none, ten) = (median(none), median(ten));
    println!(
        "start (daemon stages but the cgroup join, median of {ROUNDS}): 0 devices {:.2} ms, 10 devices {:.2} ms, {:+.0} µs per device",
        none as f64 / 1000.0,
        ten as f64 / 1000.0,
        (ten as f64 - none as f64) / 10.0
    );
    ensure!(ten < 5_000_000, "ten devices took {ten} µs to start");
    Ok(())
}
