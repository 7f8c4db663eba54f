//! The CDI spec files of a host and the devices they define: read from
//! the spec directories in order (a later directory wins for a device
//! both define, as /var/run/cdi over /etc/cdi in the reference cache),
//! and qualified names resolved to the edits they add up to. Read at
//! each start, in a helper: the files are host data that drivers rewrite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::supervisor::plugins::cdi::edits::CdiEdits;
use crate::supervisor::plugins::cdi::model::{CdiDevice, CdiSpec};
use crate::supervisor::plugins::cdi::parse::{is_spec_file, read_spec_file};
use crate::supervisor::spec::cdi::{ALL_DEVICES, parse_cdi_name};

/// Where CDI spec files live unless berth.json's `cdi.spec_dirs` says
/// otherwise; the later wins.
pub const DEFAULT_SPEC_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];
/// Files looked at in one directory.
pub const MAX_SPEC_FILES_PER_DIR: usize = 256;

/// One spec file read.
#[derive(Debug)]
pub struct LoadedCdiSpec {
    pub path: PathBuf,
    /// The directory's place in the list: the higher wins.
    pub priority: usize,
    pub spec: CdiSpec,
}

/// Every spec file in `dirs`. A missing directory is skipped; a file that
/// cannot be read or is invalid fails the whole lookup, naming it (a
/// device it defines could otherwise silently come from elsewhere).
pub fn load_specs(dirs: &[PathBuf]) -> Result<Vec<LoadedCdiSpec>, String> {
    let mut out = Vec::new();
    for (priority, dir) in dirs.iter().enumerate() {
        for path in spec_files(dir)? {
            let spec = read_spec_file(&path).map_err(|e| format!("CDI spec {e}"))?;
            out.push(LoadedCdiSpec {
                path,
                priority,
                spec,
            });
        }
    }
    Ok(out)
}

/// The spec files of one directory, sorted by name.
fn spec_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("CDI spec directory {}: {e}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("CDI spec directory {}: {e}", dir.display()))?;
        let path = entry.path();
        // Followed: a spec may be a symlink to a driver's file.
        if !is_spec_file(&path) || !path.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        if files.len() == MAX_SPEC_FILES_PER_DIR {
            let why = format!("more than {MAX_SPEC_FILES_PER_DIR} spec files");
            return Err(format!("CDI spec directory {}: {why}", dir.display()));
        }
        files.push(path);
    }
    files.sort();
    Ok(files)
}

/// One device found: the file it is in (index into the loaded specs).
struct Found<'a> {
    spec: usize,
    device: &'a CdiDevice,
}

/// The edits of the named devices (`vendor.com/class=name`, or `=all`
/// for every device of the kind unless one is named "all"), each device
/// once; the file's own edits once per file, before its devices'.
pub fn resolve(
    specs: &[LoadedCdiSpec],
    names: &[&str],
    dirs: &[PathBuf],
) -> Result<CdiEdits, String> {
    let mut chosen: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for name in names {
        for f in find(specs, name, dirs)? {
            let next = chosen.len();
            chosen
                .entry((f.spec, f.device.name.clone()))
                .or_insert(next);
        }
    }
    let mut order: Vec<(&(usize, String), &usize)> = chosen.iter().collect();
    order.sort_by_key(|(_, n)| **n);
    let mut edits = CdiEdits::default();
    let mut files_done = Vec::new();
    for ((spec, device), _) in order {
        let s = &specs[*spec];
        let what = format!("CDI device {}={device} ({})", s.spec.kind, s.path.display());
        if !files_done.contains(spec) {
            files_done.push(*spec);
            if let Some(e) = &s.spec.container_edits {
                edits.append(e, &what)?;
            }
        }
        if let Some(d) = s.spec.devices.iter().find(|d| d.name == *device) {
            edits.append(&d.container_edits, &what)?;
        }
    }
    Ok(edits)
}

/// The devices one name means, by priority: for each device name of the
/// kind, the highest directory's; two files of one directory defining it
/// is an error (the reference cache's conflict).
fn find<'a>(
    specs: &'a [LoadedCdiSpec],
    name: &str,
    dirs: &[PathBuf],
) -> Result<Vec<Found<'a>>, String> {
    let q = parse_cdi_name(name).map_err(|e| format!("CDI device {name}: {e}"))?;
    let kind = q.kind();
    let mut best: BTreeMap<&str, (usize, Found<'a>)> = BTreeMap::new();
    for (i, s) in specs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.spec.kind == kind)
    {
        for d in &s.spec.devices {
            match best.get(d.name.as_str()) {
                Some((p, other)) if *p == s.priority => {
                    return Err(format!(
                        "CDI device {kind}={}: defined in both {} and {}",
                        d.name,
                        specs[other.spec].path.display(),
                        s.path.display()
                    ));
                }
                Some((p, _)) if *p > s.priority => {}
                _ => {
                    best.insert(&d.name, (s.priority, Found { spec: i, device: d }));
                }
            }
        }
    }
    if let Some((_, one)) = best.remove(q.name) {
        return Ok(vec![one]);
    }
    if q.name == ALL_DEVICES && !best.is_empty() {
        return Ok(best.into_values().map(|(_, f)| f).collect());
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let known: Vec<&str> = best.keys().copied().collect();
    let has = if known.is_empty() {
        format!("no spec file defines kind {kind}")
    } else {
        format!("kind {kind} has {}", known.join(", "))
    };
    Err(format!(
        "CDI device {name}: not found in the CDI spec directories {} ({has})",
        searched.join(", ")
    ))
}

#[cfg(test)]
mod tests;
