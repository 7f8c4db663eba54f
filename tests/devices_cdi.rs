//! CDI devices (`vendor.com/class=name`) on the real kernel with loop
//! devices: spec files written by the test, in JSON and in YAML, each
//! defining two devices with a node, env and a mount; `=a` gives only a's
//! node, env and mount (b's node absent, and b not openable through a
//! `dev` bind of /dev), `=all` both, with the file's own edits (env,
//! groups, a createRuntime hook run on the host); a broken spec file fails
//! `berth check` naming the file and the field; an unknown name fails the
//! start naming it and the directories searched; createContainer and
//! startContainer hooks run inside the container's namespaces.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use common::loopdev::LoopDev;
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

/// One device's part of a spec file: the loop device at /dev/cdi-NAME,
/// NAME_ENV=NAME, and a host file (holding "mount-NAME") at /opt/NAME.
fn device(env: &TestEnv, name: &str, lo: &LoopDev) -> Result<Value> {
    let file = env.dir.path().join(format!("mount-{name}"));
    fs::write(&file, format!("mount-{name}\n"))?;
    Ok(json!({"name": name, "containerEdits": {
        "deviceNodes": [{"path": format!("/dev/cdi-{name}"), "hostPath": lo.path, "permissions": "rw"}],
        "env": [format!("{}_ENV={name}", name.to_uppercase())],
        "mounts": [{"hostPath": file, "containerPath": format!("/opt/{name}"), "options": ["ro", "nosuid", "nodev", "bind"]}]
    }}))
}

/// The spec directory with `vendor.com/dev` in JSON and `vendor.com/ydev`
/// in YAML (YAML is a superset of JSON's syntax, but the YAML file is
/// written as block YAML so the YAML decoder is the one tested), and
/// berth.json pointing at it.
fn write_cdi_specs(env: &TestEnv, a: &LoopDev, b: &LoopDev) -> Result<()> {
    let dir = env.dir.path().join("cdi");
    fs::create_dir_all(&dir)?;
    let marker = env.dir.path().join("hook-ran");
    let spec = json!({"cdiVersion": "0.7.0", "kind": "vendor.com/dev",
        "devices": [device(env, "a", a)?, device(env, "b", b)?],
        "containerEdits": {"env": ["COMMON=json"], "additionalGids": [4321]}});
    fs::write(dir.join("dev.json"), serde_json::to_string_pretty(&spec)?)?;
    let (fa, fb) = (
        env.dir.path().join("mount-a"),
        env.dir.path().join("mount-b"),
    );
    let yaml = format!(
        "cdiVersion: 1.1.0
kind: vendor.com/ydev
containerEdits:
  env: [COMMON=yaml]
  hooks:
    - hookName: createRuntime
      path: /bin/sh
      args: [sh, -c, 'echo ran > {marker}']
devices:
  - name: a
    containerEdits:
      deviceNodes:
        - path: /dev/cdi-a
          hostPath: {a}
      env: [A_ENV=a]
      mounts:
        - hostPath: {fa}
          containerPath: /opt/a
          options: [ro, bind]
  - name: b
    containerEdits:
      deviceNodes:
        - {{path: /dev/cdi-b, hostPath: {b}}}
      env: [B_ENV=b]
      mounts:
        - {{hostPath: {fb}, containerPath: /opt/b}}
",
        marker = marker.display(),
        a = a.path,
        b = b.path,
        fa = fa.display(),
        fb = fb.display(),
    );
    fs::write(dir.join("ydev.yaml"), yaml)?;
    let settings = json!({"cdi": {"spec_dirs": [env.dir.path().join("nowhere"), dir]}});
    fs::write(env.config().join("berth.json"), settings.to_string())?;
    Ok(())
}

/// What the container sees of a and b.
fn probe(b: &LoopDev) -> String {
    format!(
        "for d in a b; do head -c 8 /dev/cdi-$d 2>&1; echo \" dev-$d\"; cat /opt/$d 2>&1; done; \
         head -c 8 /hostdev/{} 2>&1; echo ' hostdev-b'; \
         echo env=$COMMON,$A_ENV,$B_ENV; grep Groups /proc/self/status",
        b.name()
    )
}

fn output_of(env: &TestEnv, name: &str) -> Result<(Value, String)> {
    let record = env.wait_state(name, "exited", LIMIT)?;
    let (out, err) = env.logs(name)?;
    Ok((record, format!("{out}{err}")))
}

fn assert_has(text: &str, wants: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn one_device_gets_only_its_edits_and_all_gets_both_in_json_and_yaml() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (a, b) = (LoopDev::new("CDIAAAAA")?, LoopDev::new("CDIBBBBB")?);
    let env = TestEnv::new()?;
    env.import_demo()?;
    write_cdi_specs(&env, &a, &b)?;
    let host_dev =
        json!([{"type": "bind", "source": "/dev", "target": "/hostdev", "options": ["dev"]}]);
    for (name, device) in [
        ("one", "vendor.com/dev=a"),
        ("all", "vendor.com/dev=all"),
        ("yone", "vendor.com/ydev=a"),
        ("yall", "vendor.com/ydev=all"),
    ] {
        let extra = json!({"devices": [device], "mounts": host_dev, "env": {"COMMON": "spec"}});
        env.write_spec(name, &sh_in(DEMO_REF, &probe(&b), extra))?;
    }
    let _daemon = env.start_daemon_checked()?;
    for (name, format) in [("one", "json"), ("yone", "yaml")] {
        let (record, out) = output_of(&env, name)?;
        assert_eq!(record["exit_code"], 0, "{record:#}\n{out}");
        assert_has(
            &out,
            &["CDIAAAAA dev-a", "mount-a", "Operation not permitted"],
        );
        assert_has(&out, &[&format!("env={format},a,\n")]);
        ensure!(!out.contains("CDIBBBBB"), "{name}: b was opened:\n{out}");
        ensure!(
            !out.contains("mount-b"),
            "{name}: b's mount is there:\n{out}"
        );
        assert_has(&out, &["/dev/cdi-b: No such file", "can't open '/opt/b'"]);
    }
    for (name, format) in [("all", "json"), ("yall", "yaml")] {
        let (record, out) = output_of(&env, name)?;
        assert_eq!(record["exit_code"], 0, "{record:#}\n{out}");
        let wants = ["CDIAAAAA dev-a", "CDIBBBBB dev-b", "mount-a", "mount-b"];
        assert_has(&out, &wants);
        assert_has(
            &out,
            &[&format!("env={format},a,b\n"), "CDIBBBBB hostdev-b"],
        );
    }
    let (_, out) = output_of(&env, "one")?;
    assert_has(&out, &["4321"]);
    let marker = fs::read_to_string(env.dir.path().join("hook-ran"))?;
    assert_eq!(marker, "ran\n");
    let inspected: Value = serde_json::from_slice(&run_ok(env.cli(&["inspect", "one"]))?.stdout)?;
    let devices = &inspected["security"]["devices"];
    assert_eq!(devices[0]["container_path"], "/dev/cdi-a", "{devices:#}");
    assert_eq!(devices[0]["host_path"], a.path.as_str(), "{devices:#}");
    Ok(())
}

#[test]
fn an_unknown_device_fails_the_start_naming_it_and_the_directories() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (a, b) = (LoopDev::new("CDIUNKNA")?, LoopDev::new("CDIUNKNB")?);
    let env = TestEnv::new()?;
    env.import_demo()?;
    write_cdi_specs(&env, &a, &b)?;
    let extra = json!({"devices": ["vendor.com/dev=nope"]});
    env.write_spec("unknown", &sh_in(DEMO_REF, "echo RAN", extra))?;
    let check = berth(&["check"]).arg(env.config()).output()?;
    let stderr = String::from_utf8_lossy(&check.stderr);
    ensure!(!check.status.success(), "check passed:\n{stderr}");
    assert_has(&stderr, &["unknown.json", "devices", "vendor.com/dev=nope"]);
    let _daemon = env.start_daemon()?;
    let (record, out) = output_of(&env, "unknown")?;
    let error = record["error"].as_str().unwrap_or_default();
    let dir = env.dir.path().join("cdi");
    assert_has(
        error,
        &["CDI device vendor.com/dev=nope: not found", "nowhere"],
    );
    assert_has(
        error,
        &[&dir.display().to_string(), "kind vendor.com/dev has a, b"],
    );
    assert_eq!(record["exit_code"], 125, "{record:#}");
    ensure!(!out.contains("RAN"), "it ran:\n{out}");
    Ok(())
}

/// `berth check` on a config whose one container names a device of a
/// spec directory holding just `file` with `text`.
fn check_with(env: &TestEnv, file: &str, text: &str) -> Result<String> {
    let dir = env.dir.path().join(format!("cdi-{file}"));
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(file), text)?;
    let settings = json!({"cdi": {"spec_dirs": [dir]}});
    fs::write(env.config().join("berth.json"), settings.to_string())?;
    let extra = json!({"devices": ["vendor.com/dev=a"]});
    env.write_spec("c", &sh_in(DEMO_REF, "true", extra))?;
    let out = berth(&["check"]).arg(env.config()).output()?;
    ensure!(!out.status.success(), "check passed {file}");
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_broken_spec_file_fails_check_naming_the_file_and_the_field() -> Result<()> {
    let env = TestEnv::new()?;
    let good = r#"{"cdiVersion": "0.6.0", "kind": "vendor.com/dev",
        "devices": [{"name": "a", "containerEdits": {"env": ["A=1"]}}]}"#;
    let cases = [
        ("version.json", good.replace("0.6.0", "0.2.0"), "cdiVersion"),
        ("kind.json", good.replace("vendor.com/dev", "vendor.com"), "kind"),
        ("unknown.json", good.replace("\"env\"", "\"envv\""), "devices.0.containerEdits.envv"),
        ("newer.json", good.replace("\"env\": [\"A=1\"]", "\"additionalGids\": [1]"), "additionalGids"),
        ("missing.yaml", "cdiVersion: 0.6.0\nkind: vendor.com/dev\ndevices:\n  - name: a\n".into(), "containerEdits"),
        ("unknown.yaml", "cdiVersion: 0.6.0\nkind: vendor.com/dev\ndevices: []\nextra: 1\n".into(), "extra"),
        ("relative.yaml", "cdiVersion: 0.6.0\nkind: vendor.com/dev\ndevices:\n  - name: a\n    containerEdits:\n      mounts: [{hostPath: etc, containerPath: /x}]\n".into(), "devices.0.containerEdits.mounts.0.hostPath"),
    ];
    for (file, text, field) in cases {
        let stderr = check_with(&env, file, &text)?;
        let path = env.dir.path().join(format!("cdi-{file}")).join(file);
        assert_has(&stderr, &[&path.display().to_string(), field, "c.json"]);
    }
    let e = check_with(&env, "alias.yaml", &laughs())?;
    assert_has(&e, &["alias.yaml"]);
    ensure!(!Path::new("/nonexistent").exists());
    Ok(())
}

/// A billion laughs under a field the decoder reads in full.
fn laughs() -> String {
    let mut y =
        String::from("cdiVersion: 0.7.0\nkind: vendor.com/dev\ncontainerEdits:\n  intelRdt:\n");
    y.push_str("    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(", ");
        y.push_str(&format!("    {}: &{} [{refs}]\n", w[1], w[1]));
    }
    y + "devices:\n  - name: a\n    containerEdits:\n      intelRdt: *i\n"
}

/// A spec directory with `vendor.com/gpu=NAME` whose only edits are a
/// mount of a host file at /opt/lib and `hooks`.
fn write_hook_spec(env: &TestEnv, name: &str, hooks: Value) -> Result<()> {
    let dir = env.dir.path().join("cdi-hooks");
    fs::create_dir_all(&dir)?;
    let lib = env.dir.path().join("lib");
    fs::write(&lib, "mounted-lib\n")?;
    let spec = json!({"cdiVersion": "0.7.0", "kind": "vendor.com/gpu",
        "devices": [{"name": name, "containerEdits": {
            "mounts": [{"hostPath": lib, "containerPath": "/opt/lib", "options": ["ro", "bind"]}],
            "hooks": hooks}}]});
    fs::write(dir.join(format!("{name}.json")), spec.to_string())?;
    let settings = json!({"cdi": {"spec_dirs": [dir]}});
    fs::write(env.config().join("berth.json"), settings.to_string())?;
    Ok(())
}

/// createContainer runs on the host's paths, in the container's network
/// namespace, after the mounts and before the root turns read-only, and
/// finds the root through the bundle's config.json as nvidia-cdi-hook
/// does; startContainer runs inside, as the container's user, before its
/// program. Both get the OCI state with the container's host pid.
#[test]
fn cdi_create_and_start_container_hooks_run_where_oci_runtimes_run_them() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let out = env.dir.path().join("out");
    fs::create_dir_all(&out)?;
    let create = r#"cat > "$OUT/create-state"
        root=$(sed -n 's/.*"path":"\([^"]*\)".*/\1/p' config.json)
        cat "$root/opt/lib" > "$root/etc/hooked"
        readlink /proc/self/ns/net > "$OUT/create-netns""#;
    let start = "cat > /dev/shm/start-state; id -u > /dev/shm/start-uid";
    let hooks = json!([
        {"hookName": "createContainer", "path": "/bin/sh", "args": ["sh", "-c", create],
         "env": [format!("OUT={}", out.display())]},
        {"hookName": "startContainer", "path": "/bin/sh", "args": ["sh", "-c", start]}]);
    write_hook_spec(&env, "hooked", hooks)?;
    let probe = "cat /etc/hooked /dev/shm/start-uid /dev/shm/start-state; echo; \
                 readlink /proc/self/ns/net; touch /etc/x 2>&1; true";
    let extra = json!({"devices": ["vendor.com/gpu=hooked"], "read_only": true, "user": "1000"});
    env.write_spec("hooks", &sh_in(DEMO_REF, probe, extra))?;
    let _daemon = env.start_daemon_checked()?;
    let (record, logs) = output_of(&env, "hooks")?;
    assert_eq!(record["exit_code"], 0, "{record:#}\n{logs}");
    assert_has(
        &logs,
        &[
            "mounted-lib\n1000\n",
            "\"status\":\"created\"",
            "Read-only file system",
        ],
    );
    let netns = fs::read_to_string(out.join("create-netns"))?;
    assert_has(&logs, &[netns.trim()]);
    ensure!(netns.trim() != fs::read_link("/proc/self/ns/net")?.display().to_string());
    let state: Value = serde_json::from_slice(&fs::read(out.join("create-state"))?)?;
    assert_eq!(state["status"], "creating", "{state:#}");
    assert_eq!(state["id"], "hooks", "{state:#}");
    ensure!(state["pid"].as_i64().unwrap_or(0) > 1, "{state:#}");
    assert_has(&logs, &[&format!("\"pid\":{}", state["pid"])]);
    Ok(())
}

#[test]
fn a_failing_in_container_hook_fails_the_start_naming_it() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let hooks = json!([{"hookName": "createContainer", "path": "/bin/sh",
        "args": ["sh", "-c", "echo no gpu here; exit 3"]}]);
    write_hook_spec(&env, "broken", hooks)?;
    let extra = json!({"devices": ["vendor.com/gpu=broken"]});
    env.write_spec("nogpu", &sh_in(DEMO_REF, "echo RAN", extra))?;
    let _daemon = env.start_daemon()?;
    let (record, out) = output_of(&env, "nogpu")?;
    let error = record["error"].as_str().unwrap_or_default();
    assert_has(
        error,
        &["createContainer hook /bin/sh: exited with status 3: output: no gpu here"],
    );
    ensure!(!out.contains("RAN"), "it ran:\n{out}");
    Ok(())
}
