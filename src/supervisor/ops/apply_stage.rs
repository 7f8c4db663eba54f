//! The first step of an apply (apply.rs), in a helper: the config copied
//! into a staging directory of the store, checked as `berth check` checks
//! a directory, and sealed as the next generation.

use std::path::Path;

use serde_json::{Value, json};

use crate::supervisor::config_store::{self, stage};
use crate::supervisor::launch::check::{check_cdi_devices, load_config};
use crate::supervisor::plugins::cdi;
use crate::supervisor::spec::settings::load_settings;

/// In the helper: copy `source` into a staging directory, check it as
/// `berth check` would, and seal it as the next generation. Errors name
/// the source's files, not the staging directory.
pub(crate) fn stage_and_check(root: &Path, source: &Path) -> Value {
    let staging = match config_store::new_staging(root) {
        Ok(s) => s,
        Err(e) => return json!({"errors": [e]}),
    };
    let checked = stage::stage(source, &staging)
        .map_err(|e| vec![e])
        .and_then(|()| check_dir(&staging));
    let sealed = checked.and_then(|()| config_store::seal(root, &staging).map_err(|e| vec![e]));
    match sealed {
        Ok(generation) => json!({"generation": generation}),
        Err(errors) => {
            let _ = std::fs::remove_dir_all(&staging);
            let from = staging.display().to_string();
            let to = source.display().to_string();
            let errors: Vec<String> = errors.iter().map(|e| e.replace(&from, &to)).collect();
            json!({"errors": errors})
        }
    }
}

/// `berth check`'s rules: berth.json, every spec, the CDI names.
fn check_dir(dir: &Path) -> Result<(), Vec<String>> {
    let settings = load_settings(dir);
    let specs = load_config(dir);
    let mut errors: Vec<String> = Vec::new();
    for e in settings.as_ref().err().into_iter().flatten() {
        errors.push(e.to_string());
    }
    for e in specs.as_ref().err().into_iter().flatten() {
        errors.push(e.to_string());
    }
    if let (Ok(settings), Ok(specs)) = (&settings, &specs) {
        let dirs = cdi::spec_dirs(settings.cdi.spec_dirs.as_deref());
        errors.extend(
            check_cdi_devices(specs, &dirs)
                .iter()
                .map(|e| e.to_string()),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
