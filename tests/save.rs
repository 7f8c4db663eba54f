//! `berth save`: archives that `berth import`, skopeo, `podman load` and
//! `docker load` read back as the same images; a corrupt store blob or an
//! unknown reference fails the save and leaves no archive behind.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use common::*;
use serde_json::Value;

const SECOND_REF: &str = "localhost/test/second:1";

fn root_of(dir: &Path) -> String {
    dir.to_string_lossy().into_owned()
}

fn save(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = berth(&["save"]);
    cmd.args(args).arg("--root").arg(env.root());
    cmd
}

/// reference -> image id, from `berth images --json` on `root`.
fn images(root: &Path) -> Result<Vec<(String, String)>> {
    let out = run_ok(berth(&["images", "--json", "--root", &root_of(root)]))?;
    let list: Value = serde_json::from_slice(&out.stdout)?;
    Ok(list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["reference"].as_str().unwrap().to_string(),
                i["id"].as_str().unwrap().to_string(),
            )
        })
        .collect())
}

/// The demo image and a second one sharing its busybox layer.
fn two_images(env: &TestEnv) -> Result<Vec<(String, String)>> {
    env.import_demo()?;
    let extra = env.dir.path().join("extra");
    fs::create_dir_all(&extra)?;
    fs::write(extra.join("second.txt"), "second\n")?;
    let layout = env.dir.path().join("second-oci");
    make_image("oci", SECOND_REF, &layout, &[busybox_rootfs(), &extra])?;
    env.import_layout(&layout)?;
    images(&env.root())
}

fn archive_members(archive: &Path) -> Result<Vec<String>> {
    let out = run_ok(Command::new("tar").arg("-tf").arg(archive))?;
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_string)
        .collect())
}

fn read_member(archive: &Path, member: &str) -> Result<Value> {
    let out = run_ok(Command::new("tar").arg("-xOf").arg(archive).arg(member))?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn skopeo_inspect(target: &str) -> Result<Value> {
    let out = run_ok(Command::new("skopeo").args(["inspect", target]))?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn save_rmi_import_gives_back_the_same_image_and_it_runs() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let before = images(&env.root())?;
    let archive = env.dir.path().join("demo.tar");
    let out = run_ok(save(&env, &[DEMO_REF, "-o", archive.to_str().unwrap()]))?;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&before[0].1),
        "saved line names the image id"
    );
    let manifest = read_member(&archive, "manifest.json")?;
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!([DEMO_REF]));
    let inspected = skopeo_inspect(&format!("docker-archive:{}", archive.display()))?;
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1);

    run_ok(berth(&["rmi", DEMO_REF, "--root", &root_of(&env.root())]))?;
    assert!(images(&env.root())?.is_empty());
    env.import_layout(&archive)?;
    assert_eq!(
        images(&env.root())?,
        before,
        "same reference, same image id"
    );

    env.write_spec(
        "saved",
        &sh_in(DEMO_REF, "echo from-the-archive", Value::Null),
    )?;
    let _daemon = env.start_daemon()?;
    env.wait_state("saved", "exited", Duration::from_secs(10))?;
    assert_eq!(env.logs("saved")?.0, "from-the-archive\n");
    Ok(())
}

#[test]
fn two_images_travel_in_one_archive_with_their_shared_layer_once() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let before = two_images(&env)?;
    let archive = env.dir.path().join("both.tar");
    run_ok(save(
        &env,
        &[DEMO_REF, SECOND_REF, "-o", archive.to_str().unwrap()],
    ))?;
    let manifest = read_member(&archive, "manifest.json")?;
    let tags: Vec<&Value> = manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["RepoTags"][0])
        .collect();
    assert_eq!(tags, [DEMO_REF, SECOND_REF]);
    // Two configs, two manifests, busybox's layer once, the extra layer.
    let blobs = archive_members(&archive)?
        .into_iter()
        .filter(|m| m.starts_with("blobs/sha256/") && m.len() > 13)
        .count();
    assert_eq!(blobs, 6);
    for n in 0..2 {
        skopeo_inspect(&format!("docker-archive:{}:@{n}", archive.display()))?;
    }

    let other = env.dir.path().join("other-root");
    run_ok(berth(&[
        "import",
        archive.to_str().unwrap(),
        "--root",
        &root_of(&other),
    ]))?;
    assert_eq!(images(&other)?, before);
    Ok(())
}

#[test]
fn the_oci_format_round_trips_and_skopeo_reads_it() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let before = two_images(&env)?;
    let archive = env.dir.path().join("both-oci.tar");
    run_ok(save(
        &env,
        &[
            DEMO_REF,
            SECOND_REF,
            "--format",
            "oci",
            "-o",
            archive.to_str().unwrap(),
        ],
    ))?;
    let members = archive_members(&archive)?;
    assert!(
        !members.contains(&"manifest.json".to_string()),
        "{members:?}"
    );
    let index = read_member(&archive, "index.json")?;
    let names: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["annotations"]["org.opencontainers.image.ref.name"])
        .collect();
    assert_eq!(names, [DEMO_REF, SECOND_REF]);
    let inspected = skopeo_inspect(&format!("oci-archive:{}:{SECOND_REF}", archive.display()))?;
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);

    let other = env.dir.path().join("other-root");
    run_ok(berth(&[
        "import",
        archive.to_str().unwrap(),
        "--root",
        &root_of(&other),
    ]))?;
    assert_eq!(images(&other)?, before);
    assert!(
        fs::read_dir(other.join("tmp"))?.next().is_none(),
        "staging left behind"
    );
    Ok(())
}

#[test]
fn standard_output_carries_the_archive() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let archive = env.dir.path().join("piped.tar");
    let status = save(&env, &[DEMO_REF, "-o", "-"])
        .stdout(fs::File::create(&archive)?)
        .status()?;
    assert!(status.success());
    let other = env.dir.path().join("other-root");
    run_ok(berth(&[
        "import",
        archive.to_str().unwrap(),
        "--root",
        &root_of(&other),
    ]))?;
    assert_eq!(images(&other)?, images(&env.root())?);
    Ok(())
}

#[test]
fn podman_loads_single_multi_image_and_oci_archives() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    if Command::new("podman").arg("--version").output().is_err() {
        eprintln!("skipped: podman is not installed");
        return Ok(());
    }
    let env = TestEnv::new()?;
    let before = two_images(&env)?;
    let single = env.dir.path().join("single.tar");
    let both = env.dir.path().join("both.tar");
    run_ok(save(&env, &[SECOND_REF, "-o", single.to_str().unwrap()]))?;
    run_ok(save(
        &env,
        &[DEMO_REF, SECOND_REF, "-o", both.to_str().unwrap()],
    ))?;
    let oci = env.dir.path().join("oci.tar");
    run_ok(save(
        &env,
        &[SECOND_REF, "--format", "oci", "-o", oci.to_str().unwrap()],
    ))?;
    for (archive, expected) in [
        (&single, &before[1..]),
        (&both, &before[..]),
        (&oci, &before[1..]),
    ] {
        let podman = |args: &[&str]| {
            let store = env.dir.path().join(format!(
                "podman-{}",
                archive.file_stem().unwrap().to_string_lossy()
            ));
            let mut cmd = Command::new("podman");
            cmd.arg("--root")
                .arg(store.join("root"))
                .arg("--runroot")
                .arg(store.join("run"))
                .args(["--storage-driver", "vfs"])
                .args(args);
            cmd
        };
        run_ok(podman(&["load", "-i", archive.to_str().unwrap()]))?;
        for (reference, id) in expected {
            let out = run_ok(podman(&[
                "image", "inspect", "--format", "{{.Id}}", reference,
            ]))?;
            assert_eq!(
                format!("sha256:{}", String::from_utf8_lossy(&out.stdout).trim()),
                *id,
                "podman's image id for {reference} is berth's"
            );
        }
    }
    Ok(())
}

#[test]
fn docker_loads_the_archive() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let running = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !running {
        eprintln!("skipped: no docker daemon to load into");
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let reference = unique_name("localhost/berth-save-test/busybox").replace('-', "");
    let tagged = format!("{reference}:1");
    run_ok(
        berth(&["import", "--root", &root_of(&env.root()), "--name", &tagged])
            .arg(env.dir.path().join("demo-oci")),
    )?;
    let archive = env.dir.path().join("docker.tar");
    run_ok(save(&env, &[&tagged, "-o", archive.to_str().unwrap()]))?;
    let loaded = run_ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let _ = Command::new("docker").args(["rmi", &tagged]).output();
    let out = String::from_utf8_lossy(&loaded?.stdout).into_owned();
    assert!(out.contains(&tagged), "{out}");
    Ok(())
}

/// Flips a byte in the middle of the store's biggest blob (the layer).
fn corrupt_biggest_blob(root: &Path) -> Result<String> {
    let biggest: PathBuf = fs::read_dir(root.join("blobs/sha256"))?
        .flatten()
        .map(|e| e.path())
        .max_by_key(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let mut bytes = fs::read(&biggest)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&biggest, bytes)?;
    Ok(biggest.file_name().unwrap().to_string_lossy().into_owned())
}

#[test]
fn a_corrupt_store_blob_fails_the_save_naming_it_and_writes_nothing() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let hex = corrupt_biggest_blob(&env.root())?;
    let out_dir = env.dir.path().join("out");
    fs::create_dir_all(&out_dir)?;
    let archive = out_dir.join("bad.tar");
    let out = save(&env, &[DEMO_REF, "-o", archive.to_str().unwrap()]).output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("sha256:{hex}")) && stderr.contains("digest mismatch"),
        "{stderr}"
    );
    assert!(
        fs::read_dir(&out_dir)?.next().is_none(),
        "no archive and no temporary file may remain"
    );

    // An older archive of that name is left as it was.
    fs::write(&archive, "older")?;
    assert!(
        !save(&env, &[DEMO_REF, "-o", archive.to_str().unwrap()])
            .status()?
            .success()
    );
    assert_eq!(fs::read_to_string(&archive)?, "older");

    // To standard output: nothing is written at all.
    let out = save(&env, &[DEMO_REF]).output()?;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{} bytes written", out.stdout.len());
    Ok(())
}

#[test]
fn an_unknown_reference_fails_clearly() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let archive = env.dir.path().join("none.tar");
    let out = save(
        &env,
        &[
            DEMO_REF,
            "localhost/no/such:1",
            "-o",
            archive.to_str().unwrap(),
        ],
    )
    .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("localhost/no/such:1") && stderr.contains("not found"),
        "{stderr}"
    );
    assert!(!archive.exists());
    let out = save(&env, &["-o", archive.to_str().unwrap()]).output()?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: berth save"));
    let out = save(&env, &[DEMO_REF, "--format", "tgz", "-o", "x"]).output()?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
    let out = save(&env, &[DEMO_REF, "-o", env.dir.path().to_str().unwrap()]).output()?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
    Ok(())
}
