//! Log file rotation, Docker's json-file way: `json.log` → `json.log.1` →
//! … → `json.log.<max_files-1>`, the oldest dropped; and the list of a
//! log's files, oldest first, for readers. Whole files only: what goes in
//! a line is logs.rs's business.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::supervisor::spec::service::LoggingSpec;

/// The most files a log may keep (validation enforces it; readers stop
/// looking there).
pub use crate::supervisor::spec::logging::MAX_LOG_FILES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationLimits {
    /// Rotate before a line would take the live file past this.
    pub max_size: u64,
    /// Files kept, the live one included (at least 1).
    pub max_files: u32,
}

impl RotationLimits {
    pub fn from_logging(logging: &LoggingSpec) -> Self {
        RotationLimits {
            max_size: logging.max_size.0,
            max_files: logging.max_files.clamp(1, MAX_LOG_FILES),
        }
    }

    /// Whether a line of `line_len` bytes must go to a fresh file. A file
    /// always takes at least one line, so a line longer than `max_size`
    /// gets a file of its own instead of looping.
    pub fn must_rotate(&self, size: u64, line_len: u64) -> bool {
        size > 0 && size.saturating_add(line_len) > self.max_size
    }
}

impl Default for RotationLimits {
    fn default() -> Self {
        Self::from_logging(&LoggingSpec::default())
    }
}

/// `json.log.<n>`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Shifts every file one number up and moves the live file to `.1`; with
/// `max_files` 1 the live file is removed. The live file is renamed or
/// unlinked, never truncated, so a follower holding it open still reads
/// its end. Files past the limit (left by a larger `max_files`) go too.
pub fn rotate_files(path: &Path, max_files: u32) -> std::io::Result<()> {
    let max_files = max_files.clamp(1, MAX_LOG_FILES);
    let mut n = max_files.saturating_sub(1).max(1);
    // The oldest kept number and everything above it (when max_files is 1,
    // every rotated file).
    loop {
        let p = rotated_path(path, n);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound && n >= max_files => break,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        n += 1;
        if n > MAX_LOG_FILES + 1 {
            break;
        }
    }
    if max_files == 1 {
        return ignore_missing(std::fs::remove_file(path));
    }
    for n in (1..max_files - 1).rev() {
        ignore_missing(std::fs::rename(
            rotated_path(path, n),
            rotated_path(path, n + 1),
        ))?;
    }
    ignore_missing(std::fs::rename(path, rotated_path(path, 1)))
}

fn ignore_missing(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Identity of a file across renames: (device, inode).
pub type FileId = (u64, u64);

/// The log's existing files, oldest first, the live one last, with their
/// identities. Numbers are consecutive from 1: the first missing one ends
/// the rotated set.
pub fn log_files(path: &Path) -> std::io::Result<Vec<(PathBuf, FileId)>> {
    let mut files = Vec::new();
    for n in 1..=MAX_LOG_FILES {
        let p = rotated_path(path, n);
        match std::fs::metadata(&p) {
            Ok(m) => files.push((p, (m.dev(), m.ino()))),
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        }
    }
    files.reverse();
    match std::fs::metadata(path) {
        Ok(m) => files.push((path.to_path_buf(), (m.dev(), m.ino()))),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(path: &Path) -> Vec<String> {
        log_files(path)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn files_shift_up_and_the_oldest_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        for i in 0..5 {
            std::fs::write(&path, format!("{i}")).unwrap();
            rotate_files(&path, 3).unwrap();
        }
        std::fs::write(&path, "5").unwrap();
        assert_eq!(names(&path), ["json.log.2", "json.log.1", "json.log"]);
        let read = |n| std::fs::read_to_string(rotated_path(&path, n)).unwrap();
        assert_eq!((read(2), read(1)), ("3".to_string(), "4".to_string()));
    }

    #[test]
    fn one_file_means_the_live_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        std::fs::write(&path, "old").unwrap();
        std::fs::write(rotated_path(&path, 1), "stale").unwrap();
        rotate_files(&path, 1).unwrap();
        assert!(names(&path).is_empty());
    }

    #[test]
    fn a_lowered_max_files_removes_the_extra_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        for n in 1..=5 {
            std::fs::write(rotated_path(&path, n), "x").unwrap();
        }
        std::fs::write(&path, "live").unwrap();
        rotate_files(&path, 2).unwrap();
        assert_eq!(names(&path), ["json.log.1"]);
        assert_eq!(
            std::fs::read_to_string(rotated_path(&path, 1)).unwrap(),
            "live"
        );
    }

    #[test]
    fn identities_survive_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        std::fs::write(&path, "a").unwrap();
        let before = log_files(&path).unwrap()[0].1;
        rotate_files(&path, 2).unwrap();
        assert_eq!(
            log_files(&path).unwrap(),
            [(rotated_path(&path, 1), before)]
        );
    }

    #[test]
    fn the_rotation_rule_keeps_at_least_one_line_per_file() {
        let l = RotationLimits {
            max_size: 100,
            max_files: 2,
        };
        assert!(!l.must_rotate(0, 500));
        assert!(!l.must_rotate(60, 40));
        assert!(l.must_rotate(60, 41));
    }
}
