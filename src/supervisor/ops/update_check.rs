//! The registry side of an update check, run in a helper process (the
//! loop never waits on the network): berth.json's settings for the
//! registry, one HEAD (fetch/tag_digest.rs), and when the tag moved and
//! this is not a dry run, a reference pinning the image the container
//! runs now, so that no GC takes the rollback target away.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::fetch::credentials::{Credentials, auth_file_candidates, lookup};
use crate::fetch::digest::Digest;
use crate::fetch::oci::host_platform;
use crate::fetch::reference::Reference;
use crate::fetch::registry::{Registry, RegistryOptions};
use crate::fetch::tag_digest::{TagDigest, check_tag_digest};
use crate::image::Store;
use crate::image::refs::{self, ImageRecord};
use crate::image::usage::read_use;
use crate::supervisor::runtime::update::{self, pinned_reference};
use crate::supervisor::spec::settings::load_settings;

/// What the helper is given.
pub struct CheckWork {
    pub config_dir: std::path::PathBuf,
    pub reference: String,
    pub known: Option<update::TagDigest>,
    /// Pin the running image when the tag moved (not on a dry run).
    pub pin: bool,
    /// The digest the container runs, and one rolled back before: the
    /// tag naming either is no move worth a pin.
    pub current: Option<String>,
    pub failed: Option<String>,
    pub store: Store,
    pub container_dir: std::path::PathBuf,
}

impl CheckWork {
    /// In the helper: `{top, platform, fetched, ms, pinned}` or `{error}`.
    pub fn run(self) -> Value {
        let started = Instant::now();
        match self.check() {
            Ok((digest, fetched)) => {
                let mut pinned = Value::Null;
                let platform = digest.platform.to_string();
                let moved = self.current.as_deref() != Some(platform.as_str())
                    && self.failed.as_deref() != Some(platform.as_str());
                if self.pin && moved {
                    pinned = match pin_running(&self.store, &self.container_dir, &self.reference) {
                        Ok(p) => json!(p),
                        Err(e) => return json!({ "error": e }),
                    };
                }
                json!({
                    "top": digest.top.to_string(),
                    "platform": digest.platform.to_string(),
                    "fetched": fetched,
                    "ms": started.elapsed().as_millis() as u64,
                    "pinned": pinned,
                })
            }
            Err(e) => json!({ "error": e }),
        }
    }

    fn check(&self) -> Result<(TagDigest, bool), String> {
        let r = Reference::parse(&self.reference).map_err(|e| e.to_string())?;
        let Some(tag) = r.tag.clone().filter(|_| r.digest.is_none()) else {
            return Err(format!(
                "image {}: a reference by digest never moves; name a tag to follow",
                self.reference
            ));
        };
        let mut reg = registry_for(&self.config_dir, &r)?;
        let known = self.known.as_ref().and_then(|k| {
            Some(TagDigest {
                top: Digest::parse(&k.top).ok()?,
                platform: Digest::parse(&k.platform).ok()?,
            })
        });
        let checked = check_tag_digest(&mut reg, &tag, &host_platform(), known.as_ref())
            .map_err(|e| format!("check {}: {e}", self.reference))?;
        Ok((checked.digest, checked.fetched_top))
    }
}

/// A client for the reference's registry with berth.json's settings for
/// it (insecure, CA file, credentials) or the docker config.json's
/// credentials. Mirrors are for pulls; the check asks the registry itself.
fn registry_for(config_dir: &Path, r: &Reference) -> Result<Registry, String> {
    let settings = load_settings(config_dir).map_err(|errs| {
        let list: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        list.join("; ")
    })?;
    let own = settings
        .registries
        .get(&r.domain)
        .cloned()
        .unwrap_or_default();
    let opts = RegistryOptions {
        insecure: own.insecure,
        ca_file: own.ca_file.clone(),
        timeout: None,
        slowest_bytes_per_sec: None,
    };
    let creds = match own.username.zip(own.password) {
        Some((username, password)) => Some(Credentials::Basic { username, password }),
        None => lookup(&r.domain, &auth_file_candidates(None))?,
    };
    Registry::new(r, creds, &opts).map_err(|e| format!("registry {}: {e}", r.domain))
}

/// Names the image the container runs now `repo@sha256:…` in the
/// reference table; returns that name. A reference keeps its content
/// alive for GC (image/gc.rs), whatever the tag comes to name.
fn pin_running(store: &Store, container_dir: &Path, reference: &str) -> Result<String, String> {
    let usage = read_use(container_dir).ok_or_else(|| {
        format!(
            "{}: no image record, so no rollback target",
            container_dir.display()
        )
    })?;
    let name = pin_name(reference, &usage.manifest.to_string())
        .ok_or_else(|| format!("image {reference}: cannot name its digest"))?;
    let record = ImageRecord {
        manifest: usage.manifest,
        config: usage.config,
    };
    refs::update(store, |t| t.insert(name.clone(), record))
        .map_err(|e| format!("pin {name}: {e}"))?;
    Ok(name)
}

/// `repo@digest` for the spec's image, normalised as the store names it.
pub fn pin_name(image: &str, digest: &str) -> Option<String> {
    let r = Reference::parse(image).ok()?;
    let pinned = Reference::parse(&pinned_reference(&r.repository(), digest)).ok()?;
    Some(pinned.to_string())
}

/// In a helper: drops a pin that is no longer a rollback target.
pub fn unpin(store: &Store, name: &str) -> Value {
    match refs::update(store, |t| t.remove(name)) {
        Ok(_) => json!({}),
        Err(e) => json!({ "error": format!("unpin {name}: {e}") }),
    }
}
