//! The seccomp filters a spec asks for, compiled for this machine and the
//! container's capabilities (Docker's default profile once per
//! capability set, shared), and the loading of profile files.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use caps::Capability;

use crate::kernel::seccomp;
use crate::supervisor::spec::{SECCOMP_DEFAULT, SECCOMP_UNCONFINED, Spec};

/// The seccomp profile the spec names, compiled for this machine and the
/// container's capabilities. `None` = unconfined (always when privileged).
/// Docker's default profile is compiled once per capability set and
/// shared: every start and every health-check template of such containers
/// holds the same ~28 KiB of BPF instead of its own copy.
pub fn seccomp_filters(
    spec: &Spec,
    config_dir: &Path,
    capabilities: &[Capability],
) -> Result<Option<Arc<seccomp::Filters>>, String> {
    if spec.privileged {
        return Ok(None);
    }
    let profile = match spec.seccomp.as_str() {
        SECCOMP_UNCONFINED => return Ok(None),
        SECCOMP_DEFAULT => return default_filters(capabilities).map(Some),
        path => load_profile(&config_dir.join(path))?,
    };
    compile(&profile, capabilities, &spec.seccomp).map(Some)
}

fn compile(
    profile: &seccomp::Profile,
    capabilities: &[Capability],
    name: &str,
) -> Result<Arc<seccomp::Filters>, String> {
    let ctx = seccomp::CompileContext {
        arch: seccomp::host_arch(),
        capabilities,
        kernel: seccomp::host_kernel_version(),
    };
    seccomp::compile(profile, &ctx)
        .map(Arc::new)
        .map_err(|e| format!("seccomp profile {name:?}: {e}"))
}

/// Distinct capability sets are few (most containers keep Docker's); a
/// bound keeps a stream of odd ones from growing the cache.
const CACHED_CAPABILITY_SETS: usize = 16;

fn default_filters(capabilities: &[Capability]) -> Result<Arc<seccomp::Filters>, String> {
    static CACHE: Mutex<Vec<(Vec<Capability>, Arc<seccomp::Filters>)>> = Mutex::new(Vec::new());
    let mut key = capabilities.to_vec();
    key.sort_by_key(|c| c.index());
    key.dedup();
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, filters)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(Arc::clone(filters));
    }
    let filters = compile(&seccomp::docker_default(), capabilities, SECCOMP_DEFAULT)?;
    if cache.len() >= CACHED_CAPABILITY_SETS {
        cache.remove(0);
    }
    cache.push((key, Arc::clone(&filters)));
    Ok(filters)
}

/// Reads and parses a Docker-format profile file.
pub fn load_profile(path: &Path) -> Result<seccomp::Profile, String> {
    const MAX_PROFILE_BYTES: u64 = 4 << 20;
    let meta =
        fs::metadata(path).map_err(|e| format!("seccomp profile {}: {e}", path.display()))?;
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(format!(
            "seccomp profile {}: larger than {MAX_PROFILE_BYTES} bytes",
            path.display()
        ));
    }
    let text =
        fs::read_to_string(path).map_err(|e| format!("seccomp profile {}: {e}", path.display()))?;
    seccomp::parse_profile(&text).map_err(|e| format!("seccomp profile {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::launch::hardening::effective_capabilities;

    fn spec(text: &str) -> Spec {
        serde_json::from_str(text).expect("test spec")
    }

    #[test]
    fn the_default_profile_is_compiled_once_per_capability_set() {
        let s = spec(r#"{"image":"x"}"#);
        let dir = Path::new("/nonexistent");
        let caps = effective_capabilities(&s);
        let mut reversed = caps.clone();
        reversed.reverse();
        let a = seccomp_filters(&s, dir, &caps).unwrap().unwrap();
        let b = seccomp_filters(&s, dir, &reversed).unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "same set, one copy");
        let fewer = seccomp_filters(&s, dir, &caps[1..]).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&a, &fewer));
    }
}
