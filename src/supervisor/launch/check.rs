//! Loading the config directory with the checks only the launch can make:
//! a seccomp profile file is read and compiled now, so a broken profile
//! stops the whole config (and `berth check`), not one container's start
//! later. Everything else is checked by spec/load.rs.

use std::path::Path;

use crate::supervisor::launch::{hardening, seccomp};
use crate::supervisor::spec::load::{LoadedSpec, load_config_dir};
use crate::supervisor::spec::position::locate;
use crate::supervisor::spec::validate::SpecError;
use crate::supervisor::spec::{SECCOMP_DEFAULT, SECCOMP_UNCONFINED, Spec};

/// Reads and validates every spec (spec/load.rs), then compiles each
/// seccomp profile file; returns all specs, or every error.
pub fn load_config(dir: &Path) -> Result<Vec<LoadedSpec>, Vec<SpecError>> {
    let specs = load_config_dir(dir)?;
    let mut errors = Vec::new();
    for s in &specs {
        let text = std::fs::read_to_string(&s.path).unwrap_or_default();
        if let Err(mut e) = check_seccomp_profile(&s.path, &text, &s.spec) {
            errors.append(&mut e);
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

/// A profile path is read and compiled now, so a broken profile stops the
/// whole config (and `berth check`), not one container's start later.
/// Relative paths are relative to the config directory (the parent of
/// containers/).
fn check_seccomp_profile(path: &Path, text: &str, spec: &Spec) -> Result<(), Vec<SpecError>> {
    if spec.seccomp == SECCOMP_DEFAULT || spec.seccomp == SECCOMP_UNCONFINED {
        return Ok(());
    }
    let config_dir = path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let caps = hardening::effective_capabilities(spec);
    let result = seccomp::seccomp_filters(spec, config_dir, &caps).map(drop);
    result.map_err(|message| {
        let (line, col) = locate(text, &["seccomp"]).unwrap_or((1, 1));
        vec![SpecError {
            file: path.to_path_buf(),
            line,
            col,
            field: Some("seccomp".into()),
            message,
        }]
    })
}
