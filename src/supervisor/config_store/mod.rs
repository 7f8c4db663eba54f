//! The applied config in the store (docs/update.md, "apply"): every
//! applied config directory is a generation `STORE/config/gen-N`, and the
//! symlink `STORE/config/current` names the active one. The pointer is
//! replaced by rename(2) and the directory fsynced, so a power cut boots
//! the old generation or the new one, never a mix. A generation is whole
//! and fsynced before the pointer may name it; `staging-*` directories and
//! generations newer than the pointer are an apply that did not finish,
//! and go at the next start.

pub mod first_boot;
pub mod stage;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Under the store root.
pub const CONFIG_AREA: &str = "config";
const CURRENT: &str = "current";
/// A pointer being written (`commit`): `.current.tmp-PID`.
const CURRENT_TMP: &str = ".current.tmp-";
const GEN_PREFIX: &str = "gen-";
pub(crate) const STAGING_PREFIX: &str = "staging-";

/// The store's config area.
pub fn area(store_root: &Path) -> PathBuf {
    store_root.join(CONFIG_AREA)
}

fn gen_number(name: &str) -> Option<u64> {
    let n = name.strip_prefix(GEN_PREFIX)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.len() > 19 {
        return None;
    }
    n.parse().ok()
}

/// The generation `current` names: its number and directory; None when
/// no config was applied (or the pointer is not one berth wrote).
pub fn active(store_root: &Path) -> Option<(u64, PathBuf)> {
    let area = area(store_root);
    let target = fs::read_link(area.join(CURRENT)).ok()?;
    let name = target.to_str()?;
    let n = gen_number(name)?;
    let dir = area.join(name);
    dir.is_dir().then_some((n, dir))
}

fn generations(area: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(area) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if let Some(n) = name.to_str().and_then(gen_number) {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A fresh directory to stage a config in (renamed to a generation once
/// whole: `seal`).
pub fn new_staging(store_root: &Path) -> Result<PathBuf, String> {
    let area = area(store_root);
    fs::create_dir_all(&area).map_err(|e| format!("create {}: {e}", area.display()))?;
    for i in 0..1000u32 {
        let dir = area.join(format!("{STAGING_PREFIX}{}-{i}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("create {}: {e}", dir.display())),
        }
    }
    Err(format!("no free staging name in {}", area.display()))
}

/// The staged directory becomes the next generation (not active yet).
pub fn seal(store_root: &Path, staging: &Path) -> Result<PathBuf, String> {
    let area = area(store_root);
    let list = generations(&area).map_err(|e| format!("list {}: {e}", area.display()))?;
    let next = list.last().map_or(1, |(n, _)| n.saturating_add(1));
    let dir = area.join(format!("{GEN_PREFIX}{next}"));
    fs::rename(staging, &dir)
        .map_err(|e| format!("rename {} to {}: {e}", staging.display(), dir.display()))?;
    sync_dir(&area)?;
    Ok(dir)
}

/// Makes `generation` the active config: a new symlink renamed over
/// `current`, then the area fsynced; older generations but the one it
/// replaced go.
pub fn commit(store_root: &Path, generation: &Path) -> Result<(), String> {
    let area = area(store_root);
    let name = generation
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| gen_number(n).is_some())
        .ok_or_else(|| format!("{} is not a generation", generation.display()))?;
    let tmp = area.join(format!("{CURRENT_TMP}{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)
        .map_err(|e| format!("symlink {}: {e}", tmp.display()))?;
    let previous = active(store_root).map(|(_, d)| d);
    fs::rename(&tmp, area.join(CURRENT))
        .map_err(|e| format!("rename {} to {CURRENT}: {e}", tmp.display()))?;
    sync_dir(&area)?;
    prune(&area, Some(generation), previous.as_deref());
    Ok(())
}

/// Forgets the applied config: the seed is used again. Every generation
/// goes once the pointer is gone.
pub fn reset(store_root: &Path) -> Result<(), String> {
    let area = area(store_root);
    match fs::remove_file(area.join(CURRENT)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("remove {}/{CURRENT}: {e}", area.display())),
    }
    sync_dir(&area)?;
    prune(&area, None, None);
    Ok(())
}

/// At the daemon's start: what an unfinished apply left (staging, a
/// generation newer than the pointer) goes; the active generation and the
/// newest one before it stay. Returns what was removed.
pub fn clean_leftovers(store_root: &Path) -> Vec<PathBuf> {
    let area = area(store_root);
    let (keep, previous) = match active(store_root) {
        Some((n, dir)) => {
            let before = generations(&area)
                .unwrap_or_default()
                .into_iter()
                .rev()
                .find(|(m, _)| *m < n)
                .map(|(_, d)| d);
            (Some(dir), before)
        }
        None => (None, None),
    };
    prune(&area, keep.as_deref(), previous.as_deref())
}

/// Removes every staging directory and every generation but `keep` and
/// `previous`; returns what went (failures are left for the next time).
fn prune(area: &Path, keep: Option<&Path>, previous: Option<&Path>) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(area) else {
        return removed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = name.starts_with(STAGING_PREFIX)
            || name.starts_with(CURRENT_TMP)
            || (gen_number(&name).is_some()
                && Some(path.as_path()) != keep
                && Some(path.as_path()) != previous);
        if !stale {
            continue;
        }
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// What `berth store verify` finds in the config area: problems (a
/// pointer that names no generation) and harmless leftovers of an apply
/// under way or killed (the next daemon start removes them).
#[derive(Debug, Default)]
pub struct AreaReport {
    pub problems: Vec<String>,
    pub garbage: Vec<String>,
}

pub fn verify(store_root: &Path) -> AreaReport {
    let area = area(store_root);
    let mut r = AreaReport::default();
    let pointer = area.join(CURRENT);
    let active = active(store_root);
    if fs::symlink_metadata(&pointer).is_ok() && active.is_none() {
        r.problems.push(format!(
            "{} names no generation of {}",
            pointer.display(),
            area.display()
        ));
    }
    let newest = active.as_ref().map_or(0, |(n, _)| *n);
    let Ok(entries) = fs::read_dir(&area) else {
        return r;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let unfinished = name.starts_with(STAGING_PREFIX)
            || name.starts_with(CURRENT_TMP)
            || gen_number(&name).is_some_and(|n| n > newest);
        if unfinished {
            r.garbage.push(format!(
                "{}: an apply under way or one that did not finish (removed at the daemon's next start)",
                entry.path().display()
            ));
        }
    }
    r
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), String> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("fsync {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_switches_and_reset_forgets() {
        let root = tempfile::tempdir().unwrap();
        assert!(active(root.path()).is_none());
        let s = new_staging(root.path()).unwrap();
        fs::write(s.join("a"), "1").unwrap();
        let g1 = seal(root.path(), &s).unwrap();
        assert!(active(root.path()).is_none(), "sealed is not active");
        commit(root.path(), &g1).unwrap();
        assert_eq!(active(root.path()).unwrap(), (1, g1.clone()));
        let s = new_staging(root.path()).unwrap();
        let g2 = seal(root.path(), &s).unwrap();
        commit(root.path(), &g2).unwrap();
        assert_eq!(active(root.path()).unwrap().0, 2);
        assert!(g1.is_dir(), "the previous generation stays");
        let s = new_staging(root.path()).unwrap();
        let g3 = seal(root.path(), &s).unwrap();
        let _ = new_staging(root.path()).unwrap();
        let removed = clean_leftovers(root.path());
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!g3.exists() && g1.is_dir() && g2.is_dir());
        reset(root.path()).unwrap();
        assert!(active(root.path()).is_none());
        assert!(!g2.exists() && !g1.exists());
    }

    #[test]
    fn verify_names_a_dangling_pointer_and_leftovers() {
        let root = tempfile::tempdir().unwrap();
        assert!(verify(root.path()).problems.is_empty());
        let s = new_staging(root.path()).unwrap();
        let g1 = seal(root.path(), &s).unwrap();
        commit(root.path(), &g1).unwrap();
        let r = verify(root.path());
        assert!(r.problems.is_empty() && r.garbage.is_empty(), "{r:?}");
        let _ = new_staging(root.path()).unwrap();
        std::os::unix::fs::symlink("gen-9", area(root.path()).join(".current.tmp-1")).unwrap();
        assert_eq!(verify(root.path()).garbage.len(), 2);
        assert_eq!(clean_leftovers(root.path()).len(), 2);
        fs::remove_dir_all(&g1).unwrap();
        assert_eq!(verify(root.path()).problems.len(), 1);
    }

    #[test]
    fn a_foreign_pointer_is_no_config() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(area(root.path())).unwrap();
        std::os::unix::fs::symlink("/etc", area(root.path()).join(CURRENT)).unwrap();
        assert!(active(root.path()).is_none());
    }
}
