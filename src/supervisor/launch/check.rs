//! Loading the config directory with the checks only the launch can make:
//! a seccomp profile file is read and compiled now, so a broken profile
//! stops the whole config (and `berth check`), not one container's start
//! later. Everything else is checked by spec/load.rs.

use std::path::{Path, PathBuf};

use crate::supervisor::launch::cdi::cdi_names;
use crate::supervisor::launch::{hardening, seccomp};
use crate::supervisor::plugins::cdi;
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

/// `berth check`'s look at the CDI devices the specs name: the spec files
/// in berth.json's `cdi.spec_dirs` (else /etc/cdi, /var/run/cdi) read and
/// checked, each name resolved. Not at the daemon's start: a driver may
/// write its spec file later, and a container start checks again.
pub fn check_cdi_devices(specs: &[LoadedSpec], spec_dirs: &[PathBuf]) -> Vec<SpecError> {
    let mut errors = Vec::new();
    for s in specs {
        let names = cdi_names(&s.spec);
        if names.is_empty() {
            continue;
        }
        if let Err(message) = cdi::resolve_devices(spec_dirs, &names) {
            let text = std::fs::read_to_string(&s.path).unwrap_or_default();
            let (line, col) = locate(&text, &["devices"]).unwrap_or((1, 1));
            errors.push(SpecError {
                file: s.path.clone(),
                line,
                col,
                field: Some("devices".into()),
                message,
            });
        }
    }
    errors
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
