//! The host network helper (`berth _hostnet`, supervisor::hostnet) as a
//! supervised child: started when berth is the machine's init and
//! berth.json has `host_network`, restarted with backoff when it dies,
//! restarted when a reload or an apply changes the section; its stderr is
//! the daemon's log, and its `network.up` / `clock.synchronized` report
//! lines become journal events. As a service, or as a PID namespace's
//! init, berth leaves the host's network and clock alone.

use std::os::fd::{BorrowedFd, RawFd};
use std::process::Command;
use std::time::Instant;

use nix::unistd::Pid;
use serde_json::Value;

use crate::supervisor::events::journal::kinds;
use crate::supervisor::hostnet::parse_report;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::helper_child::HelperChild;
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::say;
use crate::supervisor::spec::host_network::HostNetworkSettings;
use crate::supervisor::spec::settings::load_settings;

#[derive(Default)]
pub struct HostNetProcess {
    child: HelperChild,
    /// What the running helper was given.
    settings: Option<HostNetworkSettings>,
    noted_ignored: bool,
}

impl Supervisor {
    /// Starts the helper as berth.json asks (or stops it): at daemon
    /// start, after a reload or apply, and when its restart timer fires.
    pub fn start_host_network(&mut self) {
        let wanted = load_settings(&self.options.config_dir)
            .ok()
            .and_then(|s| s.host_network);
        if wanted.is_some() && !self.options.machine_init {
            if !self.hostnet.noted_ignored {
                say(format_args!(
                    "berth.json host_network ignored: berth is not the machine's init \
                     (the host's network and clock are its own business)"
                ));
                self.hostnet.noted_ignored = true;
            }
            return;
        }
        if wanted != self.hostnet.settings || self.shutting_down {
            self.stop_host_network();
        }
        let Some(settings) = wanted.filter(|_| !self.shutting_down) else {
            return;
        };
        if self.hostnet.child.is_running() {
            return;
        }
        match command(&settings).and_then(|cmd| self.hostnet.child.spawn(cmd)) {
            Ok(_) => self.hostnet.settings = Some(settings),
            Err(e) => {
                say(format_args!("host network helper: cannot start: {e}"));
                self.schedule_host_network_restart();
            }
        }
    }

    pub fn stop_host_network(&mut self) {
        self.hostnet.child.stop();
        self.hostnet.settings = None;
    }

    fn schedule_host_network_restart(&mut self) {
        let delay = self.hostnet.child.next_restart(1);
        self.timers
            .schedule(Instant::now() + delay, "", 0, TimerKind::HostNetwork);
    }

    /// A reaped child that was the helper: true if it was.
    pub(crate) fn on_host_network_exit(&mut self, pid: Pid, code: i32) -> bool {
        if !self.hostnet.child.is(pid) {
            return false;
        }
        if let Some(fd) = self.hostnet.child.stderr_fd() {
            self.on_host_network_output(fd);
        }
        self.hostnet.child.reaped();
        self.hostnet.settings = None;
        if !self.shutting_down {
            say(format_args!(
                "host network helper exited with code {code}; restarting it"
            ));
            self.schedule_host_network_restart();
        }
        true
    }

    pub fn host_network_fd(&self) -> Option<BorrowedFd<'_>> {
        self.hostnet.child.fd()
    }

    /// Its log lines: passed on, and reports journaled.
    pub fn on_host_network_output(&mut self, fd: RawFd) {
        let Some(lines) = self.hostnet.child.read_lines(fd) else {
            return;
        };
        for text in lines {
            match parse_report(&text) {
                Some((kind, data)) => self.host_network_report(kind, data),
                None => eprintln!("{text}"),
            }
        }
    }

    fn host_network_report(&mut self, kind: &str, data: Value) {
        let s = |k: &str| data.get(k).map(plain);
        let since_boot = uptime().map(|t| format!(" ({t:.2} s after the kernel started)"));
        let since_boot = since_boot.unwrap_or_default();
        if kind == kinds::NETWORK_UP {
            say(format_args!(
                "network up: {} {} gateway {} dns {}{since_boot}",
                s("link").unwrap_or_default(),
                s("address").unwrap_or_default(),
                s("gateway").unwrap_or_default(),
                s("dns").unwrap_or_default(),
            ));
        } else {
            let offset = data.get("offset").and_then(Value::as_f64).unwrap_or(0.0);
            say(format_args!(
                "clock synchronized with {}: offset {offset:+.3} s{}{since_boot}",
                s("server").unwrap_or_default(),
                if data.get("stepped") == Some(&Value::Bool(true)) {
                    " (stepped)"
                } else {
                    ""
                },
            ));
        }
        self.emit(kind, None, data);
        // Gates on the network or the clock look again now.
        self.on_gate_watch();
    }
}

/// A report's value for the log: text as is, lists joined, null "none".
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(","),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

fn uptime() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn command(settings: &HostNetworkSettings) -> std::io::Result<Command> {
    let json = serde_json::to_string(settings).map_err(std::io::Error::other)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg(crate::supervisor::hostnet::HOSTNET_COMMAND)
        .arg("--settings")
        .arg(json)
        .arg("--parent-pid")
        .arg(std::process::id().to_string());
    Ok(cmd)
}
