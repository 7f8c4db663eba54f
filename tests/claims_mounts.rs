//! Claims of docs/security.md and docs/spec.md about mounts, each shown
//! on a real container: every masked path is masked, even where a spec
//! mount aims at it through an image symlink; no spec mount may target
//! one; and an image symlink cannot aim a mount at a host path (its
//! target is resolved inside the container).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use common::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// One line per masked path: "PATH absent", "PATH dir FSTYPE ENTRIES
/// WRITE" or "PATH KIND-MAJOR:MINOR BYTES".
const REPORT_MASKS: &str = r#"for p in $MASKED; do
  if [ ! -e "$p" ]; then echo "$p absent"
  elif [ -d "$p" ]; then
    n=$(ls -A "$p" | wc -l); touch "$p/x" 2>/dev/null && w=written || w=refused
    echo "$p dir $(stat -f -c %T "$p") $n $w"
  else echo "$p $(stat -c %F-%t:%T "$p" | tr ' ' _) $(head -c 4096 "$p" | wc -c)"; fi
done"#;

#[test]
fn every_masked_path_is_masked_even_under_a_spec_mount() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // Image symlinks aim three spec mounts at masked paths: a bind of a
    // host directory and a tmpfs onto directories, a bind of a host file
    // onto a file. Masks are applied after the spec's mounts, so each is
    // covered again.
    let layer = env.dir.path().join("links");
    fs::create_dir_all(&layer)?;
    symlink("/sys/firmware", layer.join("fw"))?;
    symlink("/proc/acpi", layer.join("acpi"))?;
    symlink("/proc/timer_list", layer.join("tl"))?;
    let image = env.import_with_layer("links", &layer)?;
    let host = tempfile::tempdir()?;
    fs::write(host.path().join("HOST-SECRET"), "x")?;
    let host_file = host.path().join("file");
    fs::write(&host_file, "HOST-FILE-CONTENT\n")?;
    let mounts = json!({"mounts": [
        {"type": "bind", "source": host.path(), "target": "/fw"},
        {"type": "tmpfs", "target": "/acpi", "mode": "0755"},
        {"type": "bind", "source": host_file, "target": "/tl"}],
        "env": {"MASKED": MASKED.join(" ")}});
    env.write_spec(
        "plain",
        &sh_in(
            &image,
            REPORT_MASKS,
            json!({"env": {"MASKED": MASKED.join(" ")}}),
        ),
    )?;
    env.write_spec("aimed", &sh_in(&image, REPORT_MASKS, mounts))?;
    let _daemon = env.start_daemon_checked()?;
    for name in ["plain", "aimed"] {
        let record = env.wait_state(name, "exited", LIMIT)?;
        let (out, err) = env.logs(name)?;
        assert_eq!(record["exit_code"], 0, "{name}: {record} {err}");
        let lines: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once(' ')).collect();
        for path in MASKED {
            let seen = lines.get(path).copied().unwrap_or("(no line)");
            let meta = fs::symlink_metadata(path);
            let want = match &meta {
                // berth never creates a path the kernel lacks.
                Err(_) => "absent".to_string(),
                // An empty read-only tmpfs.
                Ok(m) if m.is_dir() => "dir tmpfs 0 refused".to_string(),
                // /dev/null: character device 1:3, nothing to read.
                Ok(_) => "character_special_file-1:3 0".to_string(),
            };
            assert_eq!(seen, want, "{name}: {path}\n{out}{err}");
        }
    }
    Ok(())
}

#[test]
fn no_spec_mount_may_target_a_masked_path() -> Result<()> {
    let env = TestEnv::new()?;
    let mut targets: Vec<String> = MASKED.iter().map(|p| p.to_string()).collect();
    targets.extend(
        [
            "/proc",
            "/sys",
            "//proc/kcore",
            "/proc/./keys",
            "/sys//firmware/x",
            "/proc/../proc/keys",
        ]
        .map(String::from),
    );
    for (i, target) in targets.iter().enumerate() {
        for (kind, mount) in [
            ("tmpfs", json!({"type": "tmpfs", "target": target})),
            (
                "bind",
                json!({"type": "bind", "source": "/tmp", "target": target}),
            ),
            (
                "volume",
                json!({"type": "volume", "name": "v", "target": target}),
            ),
        ] {
            let name = format!("m{i}-{kind}");
            env.write_spec(&name, &sh_in(DEMO_REF, "true", json!({"mounts": [mount]})))?;
            let out = berth(&["check"]).arg(env.config()).output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{kind} at {target} accepted: {stderr}"
            );
            let reason = if target.contains("..") {
                "without \"..\""
            } else {
                "cannot be under /proc or /sys"
            };
            assert!(
                stderr.contains(&format!("{name}.json:"))
                    && stderr.contains("mounts.0.target: ")
                    && stderr.contains(reason),
                "{kind} at {target}: {stderr}"
            );
            fs::remove_file(env.config().join(format!("containers/{name}.json")))?;
        }
    }
    Ok(())
}

/// The host's mount points (this test's own mount namespace).
fn host_mount_points() -> Result<Vec<String>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect())
}

#[test]
fn an_image_symlink_cannot_aim_a_mount_at_a_host_path() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let layer = env.dir.path().join("links");
    fs::create_dir_all(layer.join("deep/er"))?;
    symlink("/etc", layer.join("abs"))?;
    symlink("../../../../etc", layer.join("deep/er/rel"))?;
    symlink("../../", layer.join("up"))?;
    let image = env.import_with_layer("aim", &layer)?;
    let host = tempfile::tempdir()?;
    let marker = format!("berth-aim-{}", std::process::id());
    let etc_before = fs::read("/etc/passwd")?;
    let mounts_before = host_mount_points()?;
    // Each writes a marker through its link and shows what is there.
    let show = format!(
        "echo in > /abs/{marker} 2>/dev/null; echo in > /deep/er/rel/{marker} 2>/dev/null; \
         ls /etc | tr '\\n' ' '; echo; grep -c ' /etc ' /proc/self/mountinfo; \
         ls /bin/busybox && cat /etc/{marker}"
    );
    let tmpfs = json!({"mounts": [{"type": "tmpfs", "target": "/abs"}]});
    let bind =
        json!({"mounts": [{"type": "bind", "source": host.path(), "target": "/deep/er/rel"}]});
    env.write_spec("tmpfs", &sh_in(&image, &show, tmpfs))?;
    env.write_spec("bind", &sh_in(&image, &show, bind))?;
    // "../../" from / is / itself: the container's root (a tmpfs on top
    // of it, reached only through ".."), never the host's.
    let up = json!({"mounts": [{"type": "tmpfs", "target": "/up"}]});
    let up_script = format!("echo in > /up/{marker} && ls /bin/busybox");
    env.write_spec("up", &sh_in(&image, &up_script, up))?;
    let _daemon = env.start_daemon_checked()?;
    let record = env.wait_state("up", "exited", LIMIT)?;
    let (out, err) = env.logs("up")?;
    assert_eq!(
        (&record["exit_code"], out.as_str()),
        (&json!(0), "/bin/busybox\n"),
        "up: {err}"
    );
    for name in ["tmpfs", "bind"] {
        let record = env.wait_state(name, "exited", LIMIT)?;
        let (out, err) = env.logs(name)?;
        let lines: Vec<&str> = out.lines().collect();
        // The mount sits on the container's own /etc: the marker is all
        // there is in it, one mount on /etc, the image root unharmed.
        assert_eq!(record["exit_code"], 0, "{name}: {out}{err}");
        assert_eq!(
            lines,
            [format!("{marker} ").as_str(), "1", "/bin/busybox", "in"],
            "{name}: {err}"
        );
    }
    // The bind's source received the marker; the host's /etc did not,
    // and no mount appeared on the host.
    assert_eq!(fs::read_to_string(host.path().join(&marker))?, "in\n");
    assert!(!Path::new("/etc").join(&marker).exists());
    assert!(!Path::new("/").join(&marker).exists());
    assert_eq!(fs::read("/etc/passwd")?, etc_before);
    let new: Vec<String> = host_mount_points()?
        .into_iter()
        .filter(|m| !mounts_before.contains(m) && (m == "/" || m.starts_with("/etc")))
        .collect();
    assert!(new.is_empty(), "host mounts appeared: {new:?}");
    Ok(())
}
