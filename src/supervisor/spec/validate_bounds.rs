//! Applies the limits of `bounds` to every number, size, duration, list
//! and string of a spec, each problem at its field's path. What a value
//! means (a known capability, a clean path) is checked elsewhere
//! (validate.rs, validate_hardening.rs); here only how big it may be.

use std::collections::BTreeMap;
use std::path::Path;

use crate::supervisor::spec::Spec;
use crate::supervisor::spec::bounds::{
    ARG_BYTES, ARGV_ENTRIES, Bound, BoundValue, CPU_SHARES, ENV_ENTRIES, HEALTH_INTERVAL,
    HEALTH_RETRIES, HEALTH_START_PERIOD, HEALTH_TIMEOUT, HOOK_ENTRIES, IO_WEIGHT, LIST_ENTRIES,
    MEMORY_BYTES, MEMORY_RESERVATION_BYTES, MEMORY_SWAP_BYTES, MOUNT_ENTRIES, PATH_BYTES,
    PIDS_LIMIT, PLUGIN_TIMEOUT, PORT, PORT_LIST_ENTRIES, PULL_GIVE_UP_AFTER, PULL_MAX_PARALLEL,
    PULL_MAX_RATE, RESTART_MAX_RETRIES, SHUTDOWN_DELAY_SECS, STOP_TIMEOUT_SECS, STORE_RESERVE,
    TEXT_BYTES, TMPFS_BYTES, WATCHDOG_TIMEOUT, WEBHOOK_ENTRIES,
};
use crate::supervisor::spec::hardening::{MountSpec, ResourcesSpec, SwapSize};
use crate::supervisor::spec::service::{HealthcheckSpec, HooksSpec};
use crate::supervisor::spec::settings::Settings;
use crate::supervisor::spec::validate::Problem;

/// Collects problems under a path prefix (["mounts", "3"]).
pub struct BoundsCheck<'a> {
    out: &'a mut Vec<Problem>,
    prefix: Vec<String>,
}

impl<'a> BoundsCheck<'a> {
    pub fn new(out: &'a mut Vec<Problem>) -> Self {
        BoundsCheck {
            out,
            prefix: Vec::new(),
        }
    }

    /// The same collector, for the fields under `step`.
    pub fn at(&mut self, step: impl ToString) -> BoundsCheck<'_> {
        let mut prefix = self.prefix.clone();
        prefix.push(step.to_string());
        BoundsCheck {
            out: self.out,
            prefix,
        }
    }

    fn push(&mut self, field: &str, message: String) {
        let mut path = self.prefix.clone();
        if !field.is_empty() {
            path.push(field.to_string());
        }
        self.out.push((path, message));
    }

    pub fn value<T: BoundValue>(&mut self, field: &str, b: &Bound<T>, v: T) {
        if let Err(why) = b.check(v) {
            self.push(field, why);
        }
    }

    pub fn text(&mut self, field: &str, b: &Bound<usize>, s: &str) {
        self.length(field, b, s.len());
    }

    pub fn length(&mut self, field: &str, b: &Bound<usize>, len: usize) {
        if let Err(why) = b.check(len) {
            self.push(field, format!("too long: {why}"));
        }
    }

    /// The number of entries; false (and a problem) when out of range, so
    /// that callers skip the per-entry checks of a 20 000-entry list.
    pub fn count(&mut self, field: &str, b: &Bound<usize>, n: usize) -> bool {
        let why = b.check(n).err();
        if let Some(why) = why {
            self.push(field, format!("too many entries: {why}"));
            return false;
        }
        true
    }

    /// A list of strings: its length, then each string's.
    pub fn texts(&mut self, field: &str, n: &Bound<usize>, each: &Bound<usize>, v: &[String]) {
        if self.count(field, n, v.len()) {
            let mut list = self.at(field);
            for (i, s) in v.iter().enumerate() {
                list.text(&i.to_string(), each, s);
            }
        }
    }

    /// A map of strings: its size, then each key's and value's length
    /// (both reported at the key, as `locate` finds keys).
    pub fn map(
        &mut self,
        field: &str,
        n: &Bound<usize>,
        each: &Bound<usize>,
        m: &BTreeMap<String, String>,
    ) {
        if self.count(field, n, m.len()) {
            let mut map = self.at(field);
            for (k, v) in m {
                map.text(k, each, k);
                map.text(k, each, v);
            }
        }
    }
}

/// Every bound of a spec.
pub fn check_spec_bounds(spec: &Spec, out: &mut Vec<Problem>) {
    let mut c = BoundsCheck::new(out);
    check_process_bounds(spec, &mut c);
    for (field, v) in [
        ("working_dir", &spec.working_dir),
        ("user", &spec.user),
        ("hostname", &spec.hostname),
        ("stop_signal", &spec.stop_signal),
    ] {
        c.text(field, &PATH_BYTES, v.as_deref().unwrap_or_default());
    }
    c.value("stop_timeout", &STOP_TIMEOUT_SECS, spec.stop_timeout);
    if let Some(max) = spec.restart.max_retries {
        c.at("restart")
            .value("max_retries", &RESTART_MAX_RETRIES, max);
    }
    c.texts("group_add", &LIST_ENTRIES, &TEXT_BYTES, &spec.group_add);
    let mut caps = c.at("capabilities");
    caps.texts("add", &LIST_ENTRIES, &TEXT_BYTES, &spec.capabilities.add);
    caps.texts("drop", &LIST_ENTRIES, &TEXT_BYTES, &spec.capabilities.drop);
    c.text("seccomp", &PATH_BYTES, &spec.seccomp);
    check_landlock_bounds(spec, &mut c.at("landlock"));
    if c.count("mounts", &MOUNT_ENTRIES, spec.mounts.len()) {
        for (i, m) in spec.mounts.iter().enumerate() {
            check_mount_bounds(m, &mut c.at("mounts").at(i));
        }
    }
    if let Some(size) = spec.shm_size {
        c.value("shm_size", &TMPFS_BYTES, size.0);
    }
    c.map("sysctls", &LIST_ENTRIES, &TEXT_BYTES, &spec.sysctls);
    check_resources_bounds(&spec.resources, &mut c.at("resources"));
    c.count("rlimits", &LIST_ENTRIES, spec.rlimits.len());
    c.count("depends_on", &LIST_ENTRIES, spec.depends_on.len());
    if let Some(hc) = &spec.healthcheck {
        check_healthcheck_bounds(hc, &mut c.at("healthcheck"));
    }
    super::update::check_update_bounds(&spec.update, &mut c.at("update"));
    super::wait_for::check_wait_for_bounds(&spec.wait_for, &mut c);
    if c.count("ports", &LIST_ENTRIES, spec.ports.len()) {
        for (i, p) in spec.ports.iter().enumerate() {
            let mut ports = c.at("ports");
            let mut port = ports.at(i);
            port.text("protocol", &TEXT_BYTES, &p.protocol);
            port.text(
                "host_ip",
                &TEXT_BYTES,
                p.host_ip.as_deref().unwrap_or_default(),
            );
            port.value("host_port", &PORT, p.host_port);
            port.value("container_port", &PORT, p.container_port);
        }
    }
    check_hooks_bounds(&spec.hooks, &mut c.at("hooks"));
    crate::supervisor::spec::secrets::check_secret_bounds(&spec.secrets, &mut c);
    crate::supervisor::spec::devices::check_device_bounds(spec, &mut c);
}

/// What becomes the process's argv and environment.
fn check_process_bounds(spec: &Spec, c: &mut BoundsCheck<'_>) {
    c.text("image", &TEXT_BYTES, &spec.image);
    for (field, argv) in [("command", &spec.command), ("entrypoint", &spec.entrypoint)] {
        if let Some(argv) = argv {
            c.texts(field, &ARGV_ENTRIES, &ARG_BYTES, argv);
        }
    }
    if c.count("env", &ENV_ENTRIES, spec.env.len()) {
        let mut env = c.at("env");
        for (k, v) in &spec.env {
            // The process sees "K=V": one string, bounded as an argument.
            env.length(k, &ARG_BYTES, k.len() + 1 + v.len());
        }
    }
}

fn check_landlock_bounds(spec: &Spec, c: &mut BoundsCheck<'_>) {
    let l = &spec.landlock;
    c.texts("scope", &LIST_ENTRIES, &TEXT_BYTES, &l.scope);
    c.texts("read_write", &LIST_ENTRIES, &PATH_BYTES, &l.read_write);
    if let Some(net) = &l.net {
        let mut net_check = c.at("net");
        for (field, ports) in [
            ("bind_tcp", &net.bind_tcp),
            ("connect_tcp", &net.connect_tcp),
        ] {
            if let Some(ports) = ports {
                net_check.count(field, &PORT_LIST_ENTRIES, ports.len());
            }
        }
    }
}

fn check_mount_bounds(m: &MountSpec, c: &mut BoundsCheck<'_>) {
    c.text("target", &PATH_BYTES, m.target());
    c.texts("options", &LIST_ENTRIES, &TEXT_BYTES, m.options());
    match m {
        MountSpec::Tmpfs { size, mode, .. } => {
            if let Some(size) = size {
                c.value("size", &TMPFS_BYTES, size.0);
            }
            c.text("mode", &TEXT_BYTES, mode.as_deref().unwrap_or_default());
        }
        MountSpec::Bind {
            source,
            propagation,
            ..
        } => {
            c.text("source", &PATH_BYTES, source);
            let propagation = propagation.as_deref().unwrap_or_default();
            c.text("propagation", &TEXT_BYTES, propagation);
        }
        MountSpec::Volume {
            name,
            driver,
            driver_opts,
            ..
        } => {
            c.text("name", &TEXT_BYTES, name);
            c.text("driver", &TEXT_BYTES, driver);
            c.map("driver_opts", &LIST_ENTRIES, &TEXT_BYTES, driver_opts);
        }
    }
}

fn check_resources_bounds(r: &ResourcesSpec, c: &mut BoundsCheck<'_>) {
    if let Some(m) = r.memory {
        c.value("memory", &MEMORY_BYTES, m.0);
    }
    if let Some(m) = r.memory_reservation {
        c.value("memory_reservation", &MEMORY_RESERVATION_BYTES, m.0);
    }
    if let Some(SwapSize::Bytes(b)) = r.memory_swap {
        c.value("memory_swap", &MEMORY_SWAP_BYTES, b);
    }
    if let Some(cpus) = r.cpus {
        // The quota is cpus × the period: never more CPUs than exist.
        let here = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        c.value(
            "cpus",
            &Bound::new(0.01, here, "CPUs (this machine's)"),
            cpus,
        );
    }
    if let Some(s) = r.cpu_shares {
        c.value("cpu_shares", &CPU_SHARES, s);
    }
    if let Some(p) = r.pids_limit {
        c.value("pids_limit", &PIDS_LIMIT, p);
    }
    if let Some(w) = r.io_weight {
        c.value("io_weight", &IO_WEIGHT, w);
    }
    for (field, v) in [
        ("cpuset_cpus", &r.cpuset_cpus),
        ("cpuset_mems", &r.cpuset_mems),
    ] {
        c.text(field, &TEXT_BYTES, v.as_deref().unwrap_or_default());
    }
    c.texts("optional", &LIST_ENTRIES, &TEXT_BYTES, &r.optional);
}

fn check_healthcheck_bounds(hc: &HealthcheckSpec, c: &mut BoundsCheck<'_>) {
    c.texts("command", &ARGV_ENTRIES, &ARG_BYTES, &hc.command);
    c.value("interval", &HEALTH_INTERVAL, hc.interval.0);
    c.value("timeout", &HEALTH_TIMEOUT, hc.timeout.0);
    c.value("start_period", &HEALTH_START_PERIOD, hc.start_period.0);
    c.value("retries", &HEALTH_RETRIES, hc.retries);
}

fn check_hooks_bounds(h: &HooksSpec, c: &mut BoundsCheck<'_>) {
    for (stage, hooks) in [
        ("prestart", &h.prestart),
        ("poststart", &h.poststart),
        ("poststop", &h.poststop),
    ] {
        if !c.count(stage, &HOOK_ENTRIES, hooks.len()) {
            continue;
        }
        for (i, hook) in hooks.iter().enumerate() {
            let mut one = c.at(stage);
            let mut one = one.at(i);
            one.text("path", &PATH_BYTES, &hook.path);
            one.texts("args", &ARGV_ENTRIES, &ARG_BYTES, &hook.args);
            one.texts("env", &ENV_ENTRIES, &ARG_BYTES, &hook.env);
        }
    }
}

/// Every bound of berth.json but the webhooks' (`check_webhooks` has
/// those, so the notifier applies them too).
pub fn check_settings_bounds(s: &Settings, out: &mut Vec<Problem>) {
    let mut c = BoundsCheck::new(out);
    check_registry_bounds(s, &mut c);
    c.text(
        "hostname",
        &TEXT_BYTES,
        s.hostname.as_deref().unwrap_or_default(),
    );
    if c.count("modules", &LIST_ENTRIES, s.modules.len()) {
        let mut modules = c.at("modules");
        for (i, m) in s.modules.iter().enumerate() {
            modules.length(&i.to_string(), &PATH_BYTES, path_len(m));
        }
    }
    let mut shutdown = c.at("shutdown");
    shutdown.value(
        "fatal_delay_secs",
        &SHUTDOWN_DELAY_SECS,
        s.shutdown.fatal_delay_secs,
    );
    shutdown.value(
        "kill_grace_secs",
        &SHUTDOWN_DELAY_SECS,
        s.shutdown.kill_grace_secs,
    );
    c.count("webhooks", &WEBHOOK_ENTRIES, s.webhooks.len());
    let mut api = c.at("api");
    api.text(
        "admin_group",
        &TEXT_BYTES,
        s.api.admin_group.as_deref().unwrap_or_default(),
    );
    api.text(
        "read_group",
        &TEXT_BYTES,
        s.api.read_group.as_deref().unwrap_or_default(),
    );
    check_plugin_bounds(s, &mut c);
    check_pull_bounds(s, &mut c);
    if let Some(w) = &s.watchdog {
        let mut dog = c.at("watchdog");
        dog.value("timeout", &WATCHDOG_TIMEOUT, w.timeout.0);
        dog.length("device", &PATH_BYTES, path_len(&w.device));
    }
}

fn check_plugin_bounds(s: &Settings, c: &mut BoundsCheck<'_>) {
    let mut plugins = c.at("volume_plugins");
    let p = &s.volume_plugins;
    plugins.length("socket_dir", &PATH_BYTES, path_len(&p.socket_dir));
    if plugins.count("spec_dirs", &LIST_ENTRIES, p.spec_dirs.len()) {
        let mut dirs = plugins.at("spec_dirs");
        for (i, d) in p.spec_dirs.iter().enumerate() {
            dirs.length(&i.to_string(), &PATH_BYTES, path_len(d));
        }
    }
    plugins.value("timeout", &PLUGIN_TIMEOUT, p.timeout.0);
}

/// The pull's link limits and the store's reserve.
fn check_pull_bounds(s: &Settings, c: &mut BoundsCheck<'_>) {
    let mut pull = c.at("pull");
    if let Some(rate) = s.pull.max_rate {
        pull.value("max_rate", &PULL_MAX_RATE, rate.0);
    }
    if let Some(n) = s.pull.max_parallel {
        pull.value("max_parallel", &PULL_MAX_PARALLEL, u64::from(n));
    }
    if let Some(t) = s.pull.give_up_after {
        pull.value("give_up_after", &PULL_GIVE_UP_AFTER, t.0);
    }
    if let Some(r) = s.store.reserve {
        c.at("store").value("reserve", &STORE_RESERVE, r.0);
    }
}

fn path_len(p: &Path) -> usize {
    p.as_os_str().len()
}

fn check_registry_bounds(s: &Settings, c: &mut BoundsCheck<'_>) {
    if c.count("registries", &LIST_ENTRIES, s.registries.len()) {
        for (host, r) in &s.registries {
            let mut registries = c.at("registries");
            let mut reg = registries.at(host);
            reg.length("", &TEXT_BYTES, host.len());
            reg.texts("mirrors", &LIST_ENTRIES, &TEXT_BYTES, &r.mirrors);
            reg.text(
                "username",
                &TEXT_BYTES,
                r.username.as_deref().unwrap_or_default(),
            );
            reg.text(
                "password",
                &TEXT_BYTES,
                r.password.as_deref().unwrap_or_default(),
            );
            reg.length(
                "ca_file",
                &PATH_BYTES,
                r.ca_file.as_deref().map_or(0, path_len),
            );
        }
    }
}
