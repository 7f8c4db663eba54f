//! `berth run`'s isolation flags, Docker's names, turned into spec fields:
//! the daemon validates the result like any spec file.

use serde_json::{Map, Value, json};

use super::args::{Args, Opt};

/// `berth run`'s options: its own, then the isolation flags (Docker's
/// names; repeatable where Docker's are).
pub const OPTIONS: &[Opt] = &[
    Opt::switch("rm", "remove the container once it exits"),
    Opt::switch("detach", "start it and print its name; do not wait").short('d'),
    Opt::switch(
        "interactive",
        "pass this terminal's stdin to the container's process",
    )
    .short('i'),
    Opt::switch(
        "tty",
        "a terminal of the container's own (raw mode, window size followed; ctrl-p ctrl-q detaches)",
    )
    .short('t'),
    Opt::value("name", "NAME", "the container's name (default: generated)"),
    Opt::value("env", "K=V", "set an environment variable (repeatable)").short('e'),
    Opt::value(
        "entrypoint",
        "PROG",
        "run PROG instead of the image's entrypoint",
    ),
    Opt::value(
        "workdir",
        "DIR",
        "the working directory (default: the image's)",
    )
    .short('w'),
    Opt::value(
        "user",
        "USER[:GROUP]",
        "run as this user (default: the image's)",
    )
    .short('u'),
    Opt::value(
        "socket",
        "PATH",
        "the daemon's socket (default: $BERTH_SOCKET, else /run/berth/berth.sock)",
    ),
    Opt::value(
        "cap-add",
        "CAP",
        "add a capability to Docker's default set (repeatable)",
    ),
    Opt::value("cap-drop", "CAP", "drop a capability, or ALL (repeatable)"),
    Opt::value(
        "security-opt",
        "OPT",
        "seccomp=PATH|unconfined, landlock=off, no-new-privileges[=false] (repeatable)",
    ),
    Opt::switch("read-only", "mount the container's root read-only"),
    Opt::value("memory", "SIZE", "memory limit (\"64m\", \"1g\")"),
    Opt::value(
        "memory-swap",
        "SIZE",
        "memory + swap limit, or -1 for unlimited swap",
    ),
    Opt::value("cpus", "N", "CPU quota in CPUs (0.5 is half of one)"),
    Opt::value("pids-limit", "N", "most processes at once"),
    Opt::value("tmpfs", "PATH[:SIZE]", "mount a tmpfs at PATH (repeatable)"),
    Opt::value(
        "volume",
        "SRC:DST[:ro]",
        "bind-mount a host path or named volume (repeatable)",
    )
    .short('v'),
    Opt::value("userns", "auto", "run in a user namespace of its own"),
    Opt::value("sysctl", "K=V", "set a namespaced sysctl (repeatable)"),
    Opt::value(
        "ulimit",
        "NAME=SOFT[:HARD]",
        "set a resource limit (repeatable)",
    ),
    Opt::value("shm-size", "SIZE", "size of /dev/shm (default 64m)"),
    Opt::value("group-add", "GROUP", "an additional group (repeatable)"),
    Opt::value(
        "network",
        "none|host|cni",
        "the container's network (default none)",
    ),
    Opt::value(
        "publish",
        "[IP:]HOST:CONTAINER[/udp]",
        "publish a port (with --network cni; repeatable)",
    )
    .short('p'),
    Opt::value(
        "device",
        "HOST[:CONTAINER[:PERMS]]",
        "give a host device (or a directory of them) (repeatable)",
    ),
    Opt::value(
        "device-cgroup-rule",
        "\"c MAJOR:MINOR rwm\"",
        "allow devices by number (repeatable)",
    ),
    Opt::switch(
        "privileged",
        "every capability, no seccomp or Landlock, all host devices",
    ),
    Opt::switch(
        "init",
        "run a minimal init as PID 1 that forwards signals and reaps zombies",
    ),
];

/// Each flag group in its own step; a group with no flags adds nothing.
pub fn apply(args: &Args, spec: &mut Value) -> Result<(), String> {
    let obj = spec.as_object_mut().ok_or("spec is not an object")?;
    let caps = |name: &str| args.values(name).to_vec();
    if !caps("cap-add").is_empty() || !caps("cap-drop").is_empty() {
        obj.insert(
            "capabilities".into(),
            json!({"add": caps("cap-add"), "drop": caps("cap-drop")}),
        );
    }
    for opt in args.values("security-opt") {
        security_opt(opt, obj)?;
    }
    if args.switch("read-only") {
        obj.insert("read_only".into(), json!(true));
    }
    if args.switch("init") {
        obj.insert("init".into(), json!(true));
    }
    devices(args, obj);
    resources(args, obj)?;
    mounts(args, obj)?;
    network(args, obj)?;
    if let Some(u) = args.value("userns") {
        obj.insert("userns".into(), json!(u));
    }
    if let Some(s) = args.value("shm-size") {
        obj.insert("shm_size".into(), json!(s));
    }
    if !args.values("group-add").is_empty() {
        obj.insert("group_add".into(), json!(args.values("group-add")));
    }
    sysctls(args, obj)?;
    rlimits(args, obj)
}

/// `--device` (Docker's short form, read by the spec parser),
/// `--device-cgroup-rule` and `--privileged`.
fn devices(args: &Args, obj: &mut Map<String, Value>) {
    for (flag, field) in [
        ("device", "devices"),
        ("device-cgroup-rule", "device_cgroup_rules"),
    ] {
        if !args.values(flag).is_empty() {
            obj.insert(field.into(), json!(args.values(flag)));
        }
    }
    if args.switch("privileged") {
        obj.insert("privileged".into(), json!(true));
    }
}

/// `--tmpfs PATH[:SIZE]` and `-v SRC:DST[:ro]`, in that order.
fn mounts(args: &Args, obj: &mut Map<String, Value>) -> Result<(), String> {
    let mut mounts = Vec::new();
    for t in args.values("tmpfs") {
        let (target, size) = t
            .split_once(':')
            .map_or((t.as_str(), None), |(a, b)| (a, Some(b)));
        let size = size.map(|s| s.trim_start_matches("size="));
        mounts.push(json!({"type": "tmpfs", "target": target, "size": size}));
    }
    for v in args.values("volume") {
        mounts.push(volume(v)?);
    }
    if !mounts.is_empty() {
        obj.insert("mounts".into(), Value::Array(mounts));
    }
    Ok(())
}

/// `--network` and `-p`.
fn network(args: &Args, obj: &mut Map<String, Value>) -> Result<(), String> {
    if let Some(n) = args.value("network") {
        obj.insert("network".into(), json!(n));
    }
    let mut ports = Vec::new();
    for p in args.values("publish") {
        ports.push(publish(p)?);
    }
    if !ports.is_empty() {
        obj.insert("ports".into(), Value::Array(ports));
    }
    Ok(())
}

fn sysctls(args: &Args, obj: &mut Map<String, Value>) -> Result<(), String> {
    let mut sysctls = Map::new();
    for kv in args.values("sysctl") {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--sysctl wants KEY=VALUE, not {kv:?}"))?;
        sysctls.insert(k.into(), json!(v));
    }
    if !sysctls.is_empty() {
        obj.insert("sysctls".into(), Value::Object(sysctls));
    }
    Ok(())
}

fn rlimits(args: &Args, obj: &mut Map<String, Value>) -> Result<(), String> {
    let mut rlimits = Map::new();
    for u in args.values("ulimit") {
        let (name, limits) = u
            .split_once('=')
            .ok_or_else(|| format!("--ulimit wants NAME=SOFT[:HARD], not {u:?}"))?;
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("--ulimit {u:?}: {s:?} is not a number"))
        };
        let (soft, hard) = match limits.split_once(':') {
            Some((s, h)) => (num(s)?, num(h)?),
            None => (num(limits)?, num(limits)?),
        };
        rlimits.insert(name.into(), json!({"soft": soft, "hard": hard}));
    }
    if !rlimits.is_empty() {
        obj.insert("rlimits".into(), Value::Object(rlimits));
    }
    Ok(())
}

fn security_opt(opt: &str, obj: &mut Map<String, Value>) -> Result<(), String> {
    match opt.split_once(['=', ':']) {
        Some(("seccomp", profile)) => {
            obj.insert("seccomp".into(), json!(profile));
        }
        Some(("landlock", "off" | "disabled" | "false")) => {
            obj.insert("landlock".into(), json!({"enabled": false}));
        }
        Some(("no-new-privileges", v)) => {
            obj.insert("no_new_privileges".into(), json!(v != "false"));
        }
        _ if opt == "no-new-privileges" => {
            obj.insert("no_new_privileges".into(), json!(true));
        }
        _ => {
            return Err(format!(
                "--security-opt {opt:?}: expected seccomp=PATH|unconfined, landlock=off or no-new-privileges[=false]"
            ));
        }
    }
    Ok(())
}

fn resources(args: &Args, obj: &mut Map<String, Value>) -> Result<(), String> {
    let mut r = Map::new();
    for (flag, field) in [("memory", "memory"), ("memory-swap", "memory_swap")] {
        if let Some(v) = args.value(flag) {
            r.insert(field.into(), json!(v));
        }
    }
    if let Some(c) = args.value("cpus") {
        let cpus: f64 = c
            .parse()
            .map_err(|_| format!("--cpus wants a number, not {c:?}"))?;
        r.insert("cpus".into(), json!(cpus));
    }
    if let Some(p) = args.value("pids-limit") {
        let pids: u64 = p
            .parse()
            .map_err(|_| format!("--pids-limit wants a number, not {p:?}"))?;
        r.insert("pids_limit".into(), json!(pids));
    }
    if !r.is_empty() {
        obj.insert("resources".into(), Value::Object(r));
    }
    Ok(())
}

/// `[IP:]HOST:CONTAINER[/udp]`, as `docker run -p`.
fn publish(p: &str) -> Result<Value, String> {
    let (spec, protocol) = p.split_once('/').unwrap_or((p, "tcp"));
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let num = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("-p {p:?}: {s:?} is not a port"))
    };
    let (container, host, ip) = match parts.as_slice() {
        [c, h] => (num(c)?, num(h)?, None),
        [c, h, ip] => (num(c)?, num(h)?, Some(*ip)),
        _ => return Err(format!("-p wants [IP:]HOST:CONTAINER[/udp], not {p:?}")),
    };
    Ok(json!({"host_port": host, "container_port": container, "protocol": protocol, "host_ip": ip}))
}

/// `SRC:DST[:ro|rw]`, host path first, as `docker run -v`.
fn volume(v: &str) -> Result<Value, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, "rw"),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(format!("-v wants SRC:DST[:ro], not {v:?}")),
    };
    if !matches!(mode, "ro" | "rw") {
        return Err(format!("-v {v:?}: mode must be ro or rw"));
    }
    Ok(json!({"type": "bind", "source": source, "target": target, "read_only": mode == "ro"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_flags_become_spec_fields() {
        let argv: Vec<String> = [
            "--cap-drop",
            "ALL",
            "--cap-add",
            "KILL",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "landlock=off",
            "--read-only",
            "--memory",
            "32m",
            "--cpus",
            "0.5",
            "--tmpfs",
            "/tmp:8m",
            "--volume",
            "/srv:/data:ro",
            "--ulimit",
            "nofile=10:20",
            "--device",
            "/dev/ttyUSB0:/dev/modem:rw",
            "--device",
            "/dev/snd",
            "--device-cgroup-rule",
            "c 188:* rwm",
            "--privileged",
            "--init",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let args = Args::parse(&argv, OPTIONS).unwrap();
        let mut spec = json!({"image": "x"});
        apply(&args, &mut spec).unwrap();
        assert_eq!(
            spec["capabilities"],
            json!({"add": ["KILL"], "drop": ["ALL"]})
        );
        assert_eq!(spec["seccomp"], "unconfined");
        assert_eq!(spec["landlock"]["enabled"], false);
        assert_eq!(spec["read_only"], true);
        assert_eq!(spec["resources"], json!({"memory": "32m", "cpus": 0.5}));
        assert_eq!(
            spec["mounts"][0],
            json!({"type": "tmpfs", "target": "/tmp", "size": "8m"})
        );
        assert_eq!(spec["mounts"][1]["read_only"], true);
        assert_eq!(spec["rlimits"]["nofile"], json!({"soft": 10, "hard": 20}));
        assert_eq!(
            spec["devices"],
            json!(["/dev/ttyUSB0:/dev/modem:rw", "/dev/snd"])
        );
        assert_eq!(spec["device_cgroup_rules"], json!(["c 188:* rwm"]));
        assert_eq!(spec["privileged"], true);
        assert_eq!(spec["init"], true);
        assert!(volume("a").is_err());
    }
}
