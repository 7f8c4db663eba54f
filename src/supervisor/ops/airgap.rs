//! Offline first boot: images shipped in the config directory's `images/`
//! (OCI layout directories or docker-archive tarballs, as k3s reads its
//! airgap images) are imported when the daemon starts, in a helper, so the
//! loop keeps turning while gigabytes are verified. Containers whose image
//! is missing wait (state `pulling`) until the imports end, then start, or
//! pull, or fail, as their pull policy says. An entry already imported
//! (same size, mtime and inode as recorded in the store) is not imported
//! again at the next boot.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::image::Store;
use crate::image::import::import_path;
use crate::image::lookup::resolve;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::jobs::{JobDone, JobKind};
use crate::supervisor::runtime::machine::Event;
use crate::supervisor::say;
use crate::supervisor::spec::PullPolicy;

/// The directory under the config directory.
pub const IMAGES_DIR: &str = "images";
/// Entries looked at, at most (a directory of thousands is a mistake).
const MAX_ENTRIES: usize = 256;
/// What the store remembers of imported entries.
const RECORD_FILE: &str = "airgap-imported.json";

/// The imports' state: running, and the containers waiting for them.
#[derive(Debug, Default)]
pub struct Airgap {
    running: bool,
    waiting: Vec<String>,
}

/// An entry's identity when it was imported: a file replaced in place
/// (a new image flashed) differs in one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    Some(Stamp {
        size: m.size(),
        mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
        ino: m.ino(),
    })
}

/// `images/` entries in name order: directories holding an `oci-layout`,
/// and regular files; anything else is skipped with a warning.
fn entries(dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let Ok(read) = fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut paths: Vec<PathBuf> = read
        .flatten()
        .take(MAX_ENTRIES + 1)
        .map(|e| e.path())
        .collect();
    let mut warnings = Vec::new();
    if paths.len() > MAX_ENTRIES {
        paths.truncate(MAX_ENTRIES);
        warnings.push(format!(
            "{}: only the first {MAX_ENTRIES} entries are imported",
            dir.display()
        ));
    }
    paths.sort();
    paths.retain(|p| {
        let ok = p.is_file() || p.join("oci-layout").is_file();
        if !ok {
            warnings.push(format!(
                "{}: neither an OCI layout nor an archive; skipped",
                p.display()
            ));
        }
        ok
    });
    (paths, warnings)
}

fn read_record(store: &Store) -> BTreeMap<PathBuf, Stamp> {
    fs::read(store.root().join(RECORD_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Written whole and renamed in, so a power cut leaves the old record or
/// the new one; losing it only costs an import again.
fn write_record(store: &Store, record: &BTreeMap<PathBuf, Stamp>) -> std::io::Result<()> {
    let path = store.root().join(RECORD_FILE);
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, serde_json::to_vec(record).unwrap_or_default())?;
    fs::rename(&tmp, &path)
}

/// The helper's work: import each entry, record the ones that succeeded.
fn import_all(store: &Store, paths: &[PathBuf]) -> Value {
    let mut record = read_record(store);
    let (mut imported, mut failed) = (Vec::new(), Vec::new());
    for path in paths {
        match import_path(store, path, None) {
            Ok(named) => {
                let refs: Vec<String> = named.into_iter().map(|n| n.reference).collect();
                imported.push(json!({"path": path, "references": refs}));
                if let Some(s) = stamp(path) {
                    record.insert(path.clone(), s);
                }
            }
            Err(e) => failed.push(json!({"path": path, "error": e.to_string()})),
        }
    }
    let mut answer = json!({"imported": imported, "failed": failed});
    if let Err(e) = write_record(store, &record) {
        answer["warnings"] = json!([format!("record the imported images: {e}")]);
    }
    answer
}

impl Supervisor {
    /// At daemon start, before any container: import what `images/`
    /// holds that the store has not imported yet, in a helper.
    pub fn import_airgap_images(&mut self) {
        let dir = self.options.config_dir.join(IMAGES_DIR);
        let (paths, warnings) = entries(&dir);
        for w in warnings {
            say(format_args!("{w}"));
        }
        let record = read_record(&self.store);
        let todo: Vec<PathBuf> = paths
            .into_iter()
            .filter(|p| stamp(p).is_none_or(|s| record.get(p) != Some(&s)))
            .collect();
        if todo.is_empty() {
            return;
        }
        say(format_args!(
            "importing {} image archives from {}",
            todo.len(),
            dir.display()
        ));
        let store = &self.store;
        match self.jobs.start(JobKind::ImportImages, None, &[], || {
            import_all(store, &todo)
        }) {
            Ok(_) => self.airgap.running = true,
            Err(e) => say(format_args!("{e}")),
        }
    }

    /// Whether a container's missing image may still come from `images/`.
    pub(crate) fn airgap_importing(&self) -> bool {
        self.airgap.running
    }

    /// StartPull while the imports run: wait for them instead.
    pub(crate) fn wait_for_airgap(&mut self, name: &str) {
        let message = "waiting for the images in the config's images/ to be imported".to_string();
        if let Some(c) = self.containers.get_mut(name) {
            c.error = Some(message);
        }
        if !self.airgap.waiting.iter().any(|n| n == name) {
            self.airgap.waiting.push(name.to_string());
        }
    }

    pub(crate) fn leave_airgap(&mut self, name: &str) {
        self.airgap.waiting.retain(|n| n != name);
    }

    /// The import helper ended: events for what came in and what failed,
    /// then every waiting container goes on as its pull policy says.
    pub(crate) fn airgap_imported(&mut self, done: JobDone) {
        self.airgap.running = false;
        self.log_warnings(&done);
        for item in done.answer["imported"].as_array().into_iter().flatten() {
            say(format_args!(
                "imported {}",
                item["path"].as_str().unwrap_or("?")
            ));
            self.emit(kinds::IMAGE_IMPORTED, None, item.clone());
        }
        for item in done.answer["failed"].as_array().into_iter().flatten() {
            say(format_args!(
                "import failed: {}",
                item["error"].as_str().unwrap_or("?")
            ));
            self.emit(kinds::IMAGE_IMPORT_FAILED, None, item.clone());
        }
        if let Some(e) = Self::job_error(&done) {
            say(format_args!("importing images: {e}"));
        }
        for name in std::mem::take(&mut self.airgap.waiting) {
            self.after_airgap(&name);
        }
    }

    fn after_airgap(&mut self, name: &str) {
        let Some(c) = self.containers.get(name) else {
            return;
        };
        // The image the container will start: an update's pin when it
        // has one, as image_missing and the creation resolve it.
        let found = resolve(&self.store, c.image_ref()).is_ok();
        match (found, c.spec.pull) {
            (true, _) => {
                if let Some(c) = self.containers.get_mut(name) {
                    c.error = None;
                }
                self.fire(name, Event::PullDone)
            }
            (false, PullPolicy::Never) => {
                let message = format!(
                    "image {} is not in the store, nor among the config's images/, and pull is never",
                    c.image_ref()
                );
                self.fail_without_image(name, message);
            }
            (false, _) => self.start_pull_for(name),
        }
    }
}
