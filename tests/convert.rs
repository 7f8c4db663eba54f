//! `berth convert`: a compose file using every key berth maps gives specs
//! `berth check` accepts, with the values the keys say; keys berth cannot
//! map are listed by path (exit 3, or nothing written with --strict);
//! interpolation from the environment and `.env`; bad YAML names
//! line:col; invalid values write nothing; hostile files (deep nesting,
//! alias bombs, huge) are refused quickly; and a converted setup task,
//! database with a health check and app run under a real daemon in
//! dependency order.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::Result;
use common::*;
use serde_json::Value;

fn convert(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = berth(&["convert"]);
    cmd.args(args).current_dir(dir).env_remove("CONVERT_TAG");
    cmd.output().expect("run berth convert")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn spec(dir: &Path, name: &str) -> Value {
    let path = dir.join("out/containers").join(format!("{name}.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

const FULL: &str = r#"
name: demo
version: "3.9"
x-logging: &logging
  driver: json-file
  options: {max-size: 2m, max-file: "3"}
services:
  web:
    image: localhost/demo/busybox:latest
    command: httpd -f -p 80 -h '/www root'
    entrypoint: ["/bin/busybox"]
    environment:
      - MODE=production
      - EMPTY=
    env_file: [web.env]
    ports:
      - "8080:80"
      - "127.0.0.1:5353:53/udp"
      - target: 443
        published: "8443"
        protocol: tcp
        host_ip: 127.0.0.1
    volumes:
      - ./www:/www:ro
      - data:/data
      - type: bind
        source: /srv
        target: /srv
        read_only: true
        bind: {propagation: rslave}
      - type: volume
        source: cache
        target: /cache
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 16m, mode: 1770}
    tmpfs: ["/run:size=8m,mode=755,exec"]
    depends_on:
      db: {condition: service_healthy}
      setup: {condition: service_completed_successfully}
    restart: on-failure:5
    user: "1000:1000"
    working_dir: /www
    read_only: true
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    security_opt: ["no-new-privileges:true"]
    mem_limit: 64m
    memswap_limit: 128m
    mem_reservation: 32m
    cpus: 0.5
    cpu_shares: 512
    pids_limit: 100
    shm_size: 32m
    sysctls: {net.ipv4.ip_unprivileged_port_start: "80"}
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      core: 0
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    hostname: web1
    logging: *logging
    init: false
    network_mode: bridge
  db:
    image: localhost/demo/busybox:latest
    command: ["sleep", "1000"]
    healthcheck:
      test: ["CMD-SHELL", "test -e /proc/1"]
      interval: 1m30s
      timeout: 5s
      retries: 2
      start_period: 500ms
    environment: {PORT: 5432, DEBUG: true, FROM_SHELL: null}
    devices: ["/dev/null:/dev/xnull:rw", {source: /dev/zero, target: /dev/xzero, permissions: r}]
    device_cgroup_rules: ["c 188:* rwm"]
    cgroup: host
    security_opt: ["seccomp=unconfined"]
    deploy:
      resources:
        limits: {cpus: "0.25", memory: 48m, pids: 50}
        reservations: {memory: 16m}
    pull_policy: never
    group_add: ["10"]
    network_mode: none
    restart: unless-stopped
  setup:
    image: localhost/demo/busybox:latest
    entrypoint: /bin/sh -c
    command: ["echo ready"]
    privileged: true
    network_mode: host
    restart: "no"
    depends_on: [db]
volumes:
  data: {}
  cache:
    driver: local
    name: shared-cache
"#;

#[test]
fn every_mapped_key_gives_specs_berth_check_accepts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("compose.yml"), FULL)?;
    fs::write(
        dir.path().join("web.env"),
        "MODE=development\nFILE_ONLY='from file'\n",
    )?;
    let mut cmd = berth(&["convert", "compose.yml", "-o", "out"]);
    cmd.current_dir(dir.path()).env("FROM_SHELL", "shell");
    let out = cmd.output()?;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let check = berth(&["check"]).arg(dir.path().join("out")).output()?;
    assert!(check.status.success(), "{}", stderr(&check));

    let web = spec(dir.path(), "web");
    let www = dir.path().join("www");
    assert_eq!(
        web["command"],
        serde_json::json!(["httpd", "-f", "-p", "80", "-h", "/www root"])
    );
    assert_eq!(web["entrypoint"], serde_json::json!(["/bin/busybox"]));
    assert_eq!(
        web["env"],
        serde_json::json!({"MODE": "production", "EMPTY": "", "FILE_ONLY": "from file"})
    );
    assert_eq!(web["ports"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        web["ports"][1],
        serde_json::json!({"host_port": 5353, "container_port": 53, "protocol": "udp", "host_ip": "127.0.0.1"})
    );
    assert_eq!(web["ports"][2]["host_port"], 8443);
    let mounts = web["mounts"].as_array().expect("mounts");
    assert_eq!(mounts.len(), 6, "{mounts:?}");
    let mount = |target: &str| {
        let found = mounts.iter().find(|m| m["target"] == target);
        found
            .cloned()
            .unwrap_or_else(|| panic!("no mount at {target}: {mounts:?}"))
    };
    assert_eq!(
        mount("/www"),
        serde_json::json!({"type": "bind", "source": www.to_str(), "target": "/www", "read_only": true})
    );
    assert_eq!(mount("/data")["name"], "data");
    assert_eq!(mount("/srv")["propagation"], "rslave");
    let cache = mount("/cache");
    assert_eq!(
        (cache["name"].as_str(), cache["driver"].as_str()),
        (Some("shared-cache"), Some("local"))
    );
    let scratch = mount("/scratch");
    assert_eq!(
        (scratch["size"].as_u64(), scratch["mode"].as_str()),
        (Some(16 << 20), Some("1770"))
    );
    assert_eq!(
        mount("/run"),
        serde_json::json!({"type": "tmpfs", "target": "/run", "size": 8 << 20, "mode": "755", "options": ["exec"]})
    );
    assert_eq!(
        web["depends_on"],
        serde_json::json!({"db": "healthy", "setup": "completed_successfully"})
    );
    assert_eq!(
        web["restart"],
        serde_json::json!({"policy": "on-failure", "max_retries": 5})
    );
    assert_eq!(
        (web["user"].as_str(), web["working_dir"].as_str()),
        (Some("1000:1000"), Some("/www"))
    );
    assert_eq!(web["read_only"], true);
    assert_eq!(
        web["capabilities"],
        serde_json::json!({"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]})
    );
    assert_eq!(web["no_new_privileges"], true);
    assert_eq!(
        web["resources"],
        serde_json::json!({"memory": 64 << 20, "memory_swap": 128 << 20, "memory_reservation": 32 << 20,
                           "cpus": 0.5, "cpu_shares": 512, "pids_limit": 100})
    );
    assert_eq!(web["shm_size"], 32 << 20);
    assert_eq!(web["sysctls"]["net.ipv4.ip_unprivileged_port_start"], "80");
    assert_eq!(
        web["rlimits"],
        serde_json::json!({"nofile": {"soft": 1024, "hard": 2048}, "core": 0})
    );
    assert_eq!(
        (web["stop_signal"].as_str(), web["stop_timeout"].as_u64()),
        (Some("SIGINT"), Some(90))
    );
    assert_eq!(web["hostname"], "web1");
    assert_eq!(
        web["logging"],
        serde_json::json!({"max_size": 2 << 20, "max_files": 3})
    );
    assert_eq!(web["network"], "cni");

    let db = spec(dir.path(), "db");
    assert_eq!(
        db["healthcheck"],
        serde_json::json!({"command": ["/bin/sh", "-c", "test -e /proc/1"], "interval": 90.0,
                           "timeout": 5.0, "retries": 2, "start_period": 0.5})
    );
    assert_eq!(
        db["env"],
        serde_json::json!({"PORT": "5432", "DEBUG": "true", "FROM_SHELL": "shell"})
    );
    assert_eq!(db["devices"][0], "/dev/null:/dev/xnull:rw");
    assert_eq!(
        db["devices"][1],
        serde_json::json!({"path": "/dev/zero", "container_path": "/dev/xzero", "permissions": "r"})
    );
    assert_eq!(db["device_cgroup_rules"][0], "c 188:* rwm");
    assert_eq!(
        (db["cgroupns"].as_str(), db["seccomp"].as_str()),
        (Some("host"), Some("unconfined"))
    );
    assert_eq!(
        db["resources"],
        serde_json::json!({"cpus": 0.25, "memory": 48 << 20, "pids_limit": 50, "memory_reservation": 16 << 20})
    );
    assert_eq!(
        (db["pull"].as_str(), db["network"].as_str()),
        (Some("never"), Some("none"))
    );
    assert_eq!(db["group_add"][0], "10");
    assert_eq!(db["restart"]["policy"], "unless-stopped");

    let setup = spec(dir.path(), "setup");
    assert_eq!(setup["entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        (setup["privileged"].as_bool(), setup["network"].as_str()),
        (Some(true), Some("host"))
    );
    assert_eq!(setup["depends_on"], serde_json::json!({"db": "started"}));
    assert_eq!(setup["restart"]["policy"], "no");
    Ok(())
}

#[test]
fn docs_have_a_row_for_every_mapped_key() {
    let docs = fs::read_to_string(repo_path("docs/convert.md")).expect("docs/convert.md");
    for key in berth::cli::convert::service::mapped_keys() {
        assert!(
            docs.contains(&format!("`{key}`")),
            "docs/convert.md does not name `{key}`"
        );
    }
}

#[test]
fn keys_berth_cannot_map_are_listed_by_path() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let compose = r#"
services:
  web:
    image: busybox
    build: .
    container_name: website
    labels: {a: b}
    init: true
    stdin_open: true
    ports: ["80"]
    volumes: [/anon]
    security_opt: ["apparmor=x"]
    healthcheck: {test: "true", start_interval: 1s}
    depends_on: {db: {condition: service_started, restart: true}}
    logging: {driver: syslog}
    frobnicate: 1
    x-ignored: yes
  db:
    image: busybox
  src:
    build: ./src
networks: {back: {}}
configs: {c: {file: ./c}}
"#;
    fs::write(dir.path().join("compose.yml"), compose)?;
    let out = convert(dir.path(), &["compose.yml", "-o", "out"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    for line in [
        "services.web.build: berth does not build images",
        "services.web.container_name: ",
        "services.web.labels: ",
        "services.web.stdin_open: ",
        "services.web.ports.0: no host port",
        "services.web.volumes.0: an anonymous volume at /anon",
        "services.web.security_opt.0: berth applies no AppArmor",
        "services.web.healthcheck.start_interval: ",
        "services.web.depends_on.db.restart: ",
        "services.web.logging.driver: ",
        "services.web.frobnicate: not a compose key berth knows",
        "services.src: no image",
        "networks.back: ",
        "configs: ",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(line)),
            "missing {line:?} in:\n{err}"
        );
    }
    assert!(!err.contains("x-ignored"), "{err}");
    // Written all the same: the specs hold what could be mapped.
    let web: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("out/containers/web.json"))?)?;
    assert_eq!(web["init"], true, "compose init maps to the spec's: {web}");
    assert!(!err.contains("services.web.init"), "{err}");
    assert!(!dir.path().join("out/containers/src.json").exists());

    let strict = tempfile::tempdir()?;
    fs::write(strict.path().join("compose.yml"), compose)?;
    let out = convert(strict.path(), &["compose.yml", "-o", "out", "--strict"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("services.web.build: berth does not build images"));
    assert!(!strict.path().join("out/containers/web.json").exists());
    Ok(())
}

#[test]
fn variables_come_from_the_environment_then_the_env_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let compose = "services:\n  app:\n    image: \"localhost/demo/busybox:${CONVERT_TAG:-latest}\"\n    environment:\n      FROM_DOTENV: ${DOTENV_ONLY}\n      BOTH: ${CONVERT_BOTH}\n      DEFAULTED: ${CONVERT_UNSET:-fallback}\n      ALT: ${DOTENV_ONLY:+alt}\n      LITERAL: $$HOME\n";
    fs::write(dir.path().join("compose.yml"), compose)?;
    fs::write(
        dir.path().join(".env"),
        "DOTENV_ONLY=dot\nCONVERT_BOTH=from-dotenv\n",
    )?;
    let mut cmd = berth(&["convert", "compose.yml", "-o", "out"]);
    cmd.current_dir(dir.path())
        .env("CONVERT_BOTH", "from-shell")
        .env_remove("CONVERT_UNSET");
    let out = cmd.output()?;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let app = spec(dir.path(), "app");
    assert_eq!(app["image"], "localhost/demo/busybox:latest");
    assert_eq!(
        app["env"],
        serde_json::json!({"FROM_DOTENV": "dot", "BOTH": "from-shell", "DEFAULTED": "fallback",
                           "ALT": "alt", "LITERAL": "$HOME"})
    );

    fs::write(
        dir.path().join("required.yml"),
        "services:\n  a:\n    image: ${CONVERT_UNSET:?set the image}\n",
    )?;
    let out = convert(dir.path(), &["required.yml", "-o", "out2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "services.a.image: required variable CONVERT_UNSET is missing a value: set the image"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("out2/containers").exists());
    Ok(())
}

#[test]
fn bad_yaml_and_invalid_values_name_where_and_write_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    fs::write(
        dir.path().join("bad.yml"),
        "services:\n  a:\n    image: busybox\n    command: [unclosed\n",
    )?;
    let out = convert(dir.path(), &["bad.yml", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("berth: bad.yml:4:"),
        "{}",
        stderr(&out)
    );

    fs::write(
        dir.path().join("dup.yml"),
        "services:\n  a:\n    image: x\n    image: y\n",
    )?;
    let out = convert(dir.path(), &["dup.yml", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("berth: dup.yml:4:"),
        "{}",
        stderr(&out)
    );

    let invalid = "services:\n  a:\n    image: busybox\n    ports: [\"x:80\"]\n    restart: sometimes\n    mem_limit: lots\n";
    fs::write(dir.path().join("invalid.yml"), invalid)?;
    let out = convert(dir.path(), &["invalid.yml", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("services.a.ports.0: invalid: \"x\" is not a port"),
        "{err}"
    );
    assert!(
        err.contains("services.a.restart: invalid: unknown restart policy"),
        "{err}"
    );
    assert!(err.contains("services.a.mem_limit: invalid: "), "{err}");
    assert!(!dir.path().join("out/containers/a.json").exists());

    // Mapped, but refused by berth's own check: nothing written.
    fs::write(
        dir.path().join("small.yml"),
        "services:\n  a:\n    image: busybox\n    mem_limit: 1k\n",
    )?;
    let out = convert(dir.path(), &["small.yml", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("services.a: the spec berth would write is refused: resources.memory"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("out/containers/a.json").exists());
    Ok(())
}

#[test]
fn hostile_files_are_refused_quickly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut laughs = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, c) in ('a'..'k').zip('b'..='k') {
        laughs += &format!("{c}: &{c} [{}]\n", vec![format!("*{prev}"); 9].join(", "));
    }
    laughs += "services: {x: {image: busybox, command: *k}}\n";
    let merges = {
        let mut t = String::from("x0: &x0 {image: busybox}\n");
        for i in 1..2000 {
            t += &format!("x{i}: &x{i}\n  <<: *x{}\n", i - 1);
        }
        t + "services: {a: *x1999}\n"
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "deep",
            format!("services: {}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        ),
        ("laughs", laughs.into_bytes()),
        ("merges", merges.into_bytes()),
        ("huge", {
            let mut t = b"services: {a: {image: busybox}}\n#".to_vec();
            t.resize(4 << 20, b'x');
            t
        }),
        ("interp", {
            let vars = "${A:-${A:-".repeat(40);
            format!("services: {{a: {{image: \"{vars}\"}}}}\n").into_bytes()
        }),
    ];
    for (name, text) in cases {
        let file = format!("{name}.yml");
        fs::write(dir.path().join(&file), text)?;
        let started = Instant::now();
        let out = convert(dir.path(), &[&file, "-o", "out"]);
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(took < Duration::from_secs(3), "{name} took {took:?}");
        assert!(stderr(&out).len() < 4096, "{name}: {}", stderr(&out));
    }
    assert!(!dir.path().join("out/containers").exists());
    Ok(())
}

#[test]
fn converted_services_run_under_the_daemon_in_dependency_order() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let compose = r#"
services:
  setup:
    image: localhost/demo/busybox:latest
    command: sh -c 'echo setup-done'
    network_mode: none
  db:
    image: localhost/demo/busybox:latest
    command: ["sh", "-c", "sleep 0.5; touch /tmp/ready; exec sleep 60"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 1
    network_mode: none
  app:
    image: localhost/demo/busybox:${APP_TAG}
    command: sh -c 'echo "app $$GREETING $$FROM_FILE"; sleep 60'
    environment: [GREETING=hello]
    env_file: app.env
    depends_on:
      db: {condition: service_healthy}
      setup: {condition: service_completed_successfully}
    mem_limit: 64m
    pids_limit: 32
    read_only: true
    tmpfs: [/tmp]
    network_mode: none
"#;
    let dir = env.dir.path();
    fs::write(dir.join("compose.yml"), compose)?;
    fs::write(dir.join(".env"), "APP_TAG=latest\n")?;
    fs::write(dir.join("app.env"), "FROM_FILE=from-env-file\n")?;
    let out = berth(&["convert", "compose.yml", "-o", "config"])
        .current_dir(dir)
        .output()?;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let _daemon = env.start_daemon_checked()?;
    let app = env.wait_state("app", "running", Duration::from_secs(60))?;
    let db = env.container("db")?;
    assert_eq!(db["health"], "healthy", "{db}");
    assert_eq!(env.container("setup")?["exit_code"], 0);
    wait_for(Duration::from_secs(10), || {
        Ok(env.logs("app")?.0.contains("app hello from-env-file"))
    })?;
    assert_eq!(env.logs("setup")?.0, "setup-done\n");
    assert_eq!(app["state"], "running");
    Ok(())
}
