//! The helper side of a first-boot config (first_boot.rs): the source the
//! kernel command line names is found — a drive by label or path, waited
//! for while the kernel still probes its disks, mounted read-only — or
//! fetched (a URL, first_boot_fetch.rs), then staged, checked and sealed
//! exactly as `berth apply` stages a config (apply_stage.rs), and its
//! digest compared with the one applied last.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::image::tree_digest::tree_digest;
use crate::kernel::config_drive::{self, FsKind};
use crate::supervisor::config_store::first_boot::{self, Source, redact};
use crate::supervisor::config_store::{self, STAGING_PREFIX};
use crate::supervisor::ops::apply_stage::stage_and_check;
use crate::supervisor::ops::first_boot_fetch::fetch;
use crate::supervisor::say;

/// How long a drive may take to appear: the kernel probes disks (USB
/// ones especially) while init already runs.
const DRIVE_WAIT: Duration = Duration::from_secs(30);
const DRIVE_POLL: Duration = Duration::from_millis(200);
/// Where a drive is mounted while its config is copied.
const MOUNT_POINT: &str = "/run/berth-config-drive";
/// The directory on a drive that holds the config (as NoCloud's files sit
/// at the root of theirs).
const DRIVE_DIR: &str = "berth";

/// In the helper: the config from `source`, staged and sealed as the next
/// generation. The answer names it and its digest (`generation`,
/// `digest`), or says the same content was applied before (`unchanged`:
/// the digest; the generation is gone again), or lists why it was refused
/// (`errors`). Each carries `source`, as it is shown.
pub(crate) fn acquire(root: &Path, source: &Source) -> Value {
    let staged = match source {
        Source::Url(url) => from_url(root, url),
        Source::Label(_) | Source::Device(_) => from_drive(root, source),
    };
    let mut answer = match staged {
        Ok(generation) => judge(root, &generation),
        Err(errors) => json!({ "errors": errors }),
    };
    answer["source"] = json!(source.to_string());
    answer
}

/// New content, or what was applied last time.
fn judge(root: &Path, generation: &Path) -> Value {
    let digest = match tree_digest(generation) {
        Ok(d) => d.to_string(),
        Err(e) => {
            let _ = fs::remove_dir_all(generation);
            return json!({"errors": [format!("digest of {}: {e}", generation.display())]});
        }
    };
    if first_boot::recorded(root).as_deref() == Some(digest.as_str()) {
        let _ = fs::remove_dir_all(generation);
        return json!({ "unchanged": digest });
    }
    json!({"generation": generation, "digest": digest})
}

/// The staging helper's answer as a result.
fn staged(answer: Value) -> Result<PathBuf, Vec<String>> {
    if let Some(g) = answer.get("generation").and_then(Value::as_str) {
        return Ok(PathBuf::from(g));
    }
    let errors: Vec<String> = answer
        .get("errors")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    match errors.is_empty() {
        true => Err(vec!["staging failed".into()]),
        false => Err(errors),
    }
}

fn from_drive(root: &Path, source: &Source) -> Result<PathBuf, Vec<String>> {
    let (dev, kind) = wait_for_drive(source).map_err(|e| vec![e])?;
    say(format_args!(
        "first-boot config: {source} is {} ({})",
        dev.display(),
        kind.mount_type()
    ));
    let mnt = Path::new(MOUNT_POINT);
    fs::create_dir_all(mnt).map_err(|e| vec![format!("create {MOUNT_POINT}: {e}")])?;
    config_drive::mount_read_only(&dev, mnt, kind).map_err(|e| vec![mount_error(&e, kind)])?;
    let dir = mnt.join(DRIVE_DIR);
    let result = match dir.is_dir() {
        true => staged(stage_and_check(root, &dir)),
        false => Err(vec![format!(
            "{} ({}) has no {DRIVE_DIR}/ directory at its root",
            dev.display(),
            kind.mount_type()
        )]),
    };
    if let Err(e) = config_drive::unmount(mnt) {
        say(format_args!("first-boot config: {e}"));
    }
    let _ = fs::remove_dir(mnt);
    result
}

/// The device and its filesystem, once it is there.
fn wait_for_drive(source: &Source) -> Result<(PathBuf, FsKind), String> {
    let until = Instant::now() + DRIVE_WAIT;
    loop {
        let found = match source {
            Source::Label(label) => config_drive::find_label(label).map(|(d, p)| (d, p.kind)),
            Source::Device(dev) => config_drive::probe(dev).map(|p| (dev.clone(), p.kind)),
            Source::Url(_) => None,
        };
        if let Some(found) = found {
            return Ok(found);
        }
        if Instant::now() >= until {
            return Err(match source {
                Source::Device(dev) if dev.exists() => {
                    format!("{} holds no vfat or iso9660 filesystem", dev.display())
                }
                _ => format!(
                    "no vfat or iso9660 drive {source} appeared within {} s",
                    DRIVE_WAIT.as_secs()
                ),
            });
        }
        std::thread::sleep(DRIVE_POLL);
    }
}

/// A mount that fails for want of the filesystem (ENODEV) or of its
/// character sets (vfat says EINVAL) names the fix.
fn mount_error(e: &crate::kernel::SysError, kind: FsKind) -> String {
    match e.errno {
        nix::errno::Errno::ENODEV | nix::errno::Errno::EINVAL => format!(
            "{e}: does the kernel have {} and its character sets? (`berth mkimage --config-drive` adds vfat, nls_cp437, nls_ascii and isofs)",
            kind.mount_type()
        ),
        _ => e.to_string(),
    }
}

fn from_url(root: &Path, url: &str) -> Result<PathBuf, Vec<String>> {
    let area = config_store::area(root);
    fs::create_dir_all(&area).map_err(|e| vec![format!("create {}: {e}", area.display())])?;
    // A staging name: what a killed helper leaves goes at the next start.
    let download = area.join(format!("{STAGING_PREFIX}{}-download", std::process::id()));
    let result = fetch(url, &download)
        .map_err(|e| vec![e])
        .and_then(|()| staged(stage_and_check(root, &download)));
    let _ = fs::remove_file(&download);
    let from = download.display().to_string();
    let to = redact(url);
    result.map_err(|errors| errors.iter().map(|e| e.replace(&from, &to)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_content_is_not_applied_twice() {
        let root = tempfile::tempdir().unwrap();
        let make = |text: &str| {
            let s = config_store::new_staging(root.path()).unwrap();
            fs::create_dir(s.join("containers")).unwrap();
            fs::write(s.join("containers/a.json"), text).unwrap();
            config_store::seal(root.path(), &s).unwrap()
        };
        let g1 = make("{}");
        let first = judge(root.path(), &g1);
        let digest = first["digest"].as_str().unwrap().to_string();
        assert!(g1.is_dir() && first["generation"].is_string(), "{first}");
        first_boot::record(root.path(), &digest, "LABEL=X").unwrap();
        let g2 = make("{}");
        assert_eq!(judge(root.path(), &g2), json!({ "unchanged": digest }));
        assert!(!g2.exists(), "the copy of content applied before goes");
        let g3 = make("{\"changed\": 1}");
        assert!(judge(root.path(), &g3)["generation"].is_string());
    }

    #[test]
    fn a_staging_answer_becomes_a_result() {
        let ok = staged(json!({"generation": "/s/config/gen-2"}));
        assert_eq!(ok.unwrap(), PathBuf::from("/s/config/gen-2"));
        let e = staged(json!({"errors": ["a.json:3:5: bad"]})).unwrap_err();
        assert_eq!(e, ["a.json:3:5: bad"]);
        assert_eq!(staged(Value::Null).unwrap_err(), ["staging failed"]);
    }
}
