//! Writing the specs: first into a staging directory beside the target,
//! where berth's own loader (the one `berth check` and the daemon use)
//! validates the whole set, dependencies included; only then is each file
//! renamed into DIR/containers/, so a reader never sees half a file and a
//! refused set writes nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::supervisor::launch::check::load_config;

/// The files written, in DIR/containers/.
pub fn write_specs(
    dir: &Path,
    specs: &BTreeMap<String, Value>,
) -> Result<Vec<PathBuf>, Vec<String>> {
    let one = |m: String| vec![m];
    let containers = dir.join("containers");
    fs::create_dir_all(&containers).map_err(|e| one(format!("{}: {e}", containers.display())))?;
    let staging = dir.join(format!(".berth-convert.{}", std::process::id()));
    let result = stage_and_check(&staging, specs).and_then(|staged| {
        staged
            .into_iter()
            .map(|(name, from)| {
                let to = containers.join(format!("{name}.json"));
                fs::rename(&from, &to)
                    .map(|()| to.clone())
                    .map_err(|e| format!("{}: {e}", to.display()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(one)
    });
    let _ = fs::remove_dir_all(&staging);
    if result.is_ok() {
        // The renames reach the disk with the directory.
        if let Ok(d) = fs::File::open(&containers) {
            let _ = d.sync_all();
        }
    }
    result
}

fn stage_and_check(
    staging: &Path,
    specs: &BTreeMap<String, Value>,
) -> Result<Vec<(String, PathBuf)>, Vec<String>> {
    let one = |m: String| vec![m];
    let _ = fs::remove_dir_all(staging);
    let dir = staging.join("containers");
    fs::create_dir_all(&dir).map_err(|e| one(format!("{}: {e}", dir.display())))?;
    let mut staged = Vec::new();
    for (name, spec) in specs {
        let path = dir.join(format!("{name}.json"));
        write_synced(&path, &render(spec)).map_err(|e| one(format!("{}: {e}", path.display())))?;
        staged.push((name.clone(), path));
    }
    load_config(staging).map_err(|errors| {
        errors
            .iter()
            .map(|e| {
                let service = e
                    .file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let field = e
                    .field
                    .as_deref()
                    .map(|f| format!("{f}: "))
                    .unwrap_or_default();
                format!(
                    "services.{service}: the spec berth would write is refused: {field}{}",
                    e.message
                )
            })
            .collect::<Vec<_>>()
    })?;
    Ok(staged)
}

/// The spec as written: pretty JSON and a final newline.
pub fn render(spec: &Value) -> String {
    let mut text = serde_json::to_string_pretty(spec).unwrap_or_default();
    text.push('\n');
    text
}

fn write_synced(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
