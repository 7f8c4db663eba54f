//! The creation step that may wait: pinning the image while a pull holds
//! the store's lock, looking up host devices, and mounting plugin volumes.
//! All run in one helper; its answer continues the creation (create.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::image::lookup::{ResolvedImage, resolve};
use crate::image::refs;
use crate::image::store::Store;
use crate::image::usage::record_use;
use crate::supervisor::launch::devices::{FoundDevices, GivenDevice, find_devices, needs_lookup};
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::create::{Creation, StepError, cannot_start};
use crate::supervisor::ops::jobs::{JobDone, JobKind};
use crate::supervisor::plugins::cdi::CdiEdits;
use crate::supervisor::plugins::volumes::{self, PluginSettings};
use crate::supervisor::runtime::machine::EXIT_CANNOT_START;
use crate::supervisor::spec::Spec;

impl Supervisor {
    /// Starts the helper; the container waits in `creating` meanwhile.
    pub(crate) fn prepare_in_helper(
        &mut self,
        name: &str,
        pinned: Option<ResolvedImage>,
        plugins: bool,
    ) -> Result<(), StepError> {
        let Some(c) = self.containers.get_mut(name) else {
            return Err(cannot_start(format!("no container {name}")));
        };
        let (root, spec) = (self.store.root().to_path_buf(), c.spec.clone());
        let image_ref = c.image_ref().to_string();
        let settings = self.options.volume_plugins.clone();
        let cdi_dirs = self.options.cdi_spec_dirs.clone();
        let owner = Some((name.to_string(), c.run_id()));
        let (container, base) = (name.to_string(), c.dirs.base.clone());
        let store = self.store.clone();
        let must_pin = pinned.is_none();
        let durable = !c.ephemeral;
        let work = move || {
            if must_pin && let Err(e) = pin_image(&store, &image_ref, &base, durable) {
                return json!({ "error": e });
            }
            // Before any volume is mounted, so a missing device undoes nothing.
            let found = match needs_lookup(&spec).then(|| find_devices(&spec, &cdi_dirs)) {
                Some(Err(e)) => return json!({ "error": e }),
                Some(Ok(found)) => found,
                None => FoundDevices::default(),
            };
            let mut answer = if plugins {
                mount_plugin_volumes(&root, &container, &spec, &settings, &base)
            } else {
                match volumes::mount_volumes_with(&root, &container, &spec, &settings) {
                    Ok(paths) => json!({ "paths": paths }),
                    Err(e) => json!({ "error": e }),
                }
            };
            with_devices(&mut answer, found);
            answer
        };
        self.jobs
            .start(JobKind::MountVolumes, owner, &[], work)
            .map_err(cannot_start)?;
        let what = match (plugins, needs_lookup(&c.spec)) {
            (true, _) => "volume plugins",
            (false, true) => "host devices",
            (false, false) => "the image store",
        };
        c.waiting_for = Some(what.into());
        let image = pinned.map(Box::new);
        self.creations
            .insert(name.to_string(), Creation::Volumes { image });
        Ok(())
    }

    /// The volumes helper answered.
    pub(crate) fn volumes_mounted(&mut self, done: JobDone) {
        let Some(name) = self.current_run(&done) else {
            return;
        };
        self.log_warnings(&done);
        let Some(Creation::Volumes { image }) = self.creations.remove(&name) else {
            return;
        };
        if let Some(e) = Self::job_error(&done) {
            return self.creation_failed(&name, e, EXIT_CANNOT_START);
        }
        let paths: BTreeMap<String, PathBuf> = done
            .answer
            .get("paths")
            .cloned()
            .and_then(|p| serde_json::from_value(p).ok())
            .unwrap_or_default();
        let cdi: CdiEdits = match done.answer.get("cdi").cloned() {
            None => CdiEdits::default(),
            Some(d) => match serde_json::from_value(d) {
                Ok(d) => d,
                Err(e) => {
                    let why = format!("CDI devices: the helper's answer is unreadable: {e}");
                    return self.creation_failed(&name, why, EXIT_CANNOT_START);
                }
            },
        };
        let devices: Vec<GivenDevice> = match done.answer.get("devices").cloned() {
            None => Vec::new(),
            Some(d) => match serde_json::from_value(d) {
                Ok(d) => d,
                Err(e) => {
                    let why = format!("host devices: the helper's answer is unreadable: {e}");
                    return self.creation_failed(&name, why, EXIT_CANNOT_START);
                }
            },
        };
        // Pinned by the helper: its use record keeps the layers now.
        let image = match image {
            Some(image) => *image,
            None => match self
                .containers
                .get(&name)
                .map(|c| resolve(&self.store, c.image_ref()))
            {
                Some(Ok(image)) => image,
                Some(Err(e)) => {
                    return self.creation_failed(&name, e.to_string(), EXIT_CANNOT_START);
                }
                None => return,
            },
        };
        if let Err((message, code)) = self.spawn_step(&name, &image, &paths, &devices, &cdi) {
            self.creation_failed(&name, message, code);
        }
    }
}

/// Adds the devices found to a helper's answer (none on an error) and the
/// optional ones skipped to its warnings.
fn with_devices(answer: &mut Value, found: FoundDevices) {
    let Value::Object(map) = answer else {
        return;
    };
    if !map.contains_key("error") && !found.devices.is_empty() {
        map.insert("devices".into(), json!(found.devices));
    }
    if !map.contains_key("error") && found.cdi != CdiEdits::default() {
        map.insert("cdi".into(), json!(found.cdi));
    }
    if found.warnings.is_empty() {
        return;
    }
    let warnings = map.entry("warnings").or_insert_with(|| json!([]));
    if let Value::Array(list) = warnings {
        list.extend(found.warnings.into_iter().map(Value::String));
    }
}

/// In a helper: waits for the store's lock, then resolves the image and
/// records its use so no GC takes its layers.
fn pin_image(store: &Store, reference: &str, base: &Path, durable: bool) -> Result<(), String> {
    let _lock = refs::lock(store, false).map_err(|e| e.to_string())?;
    let image = resolve(store, reference).map_err(|e| e.to_string())?;
    record_use(base, &image, durable).map_err(|e| e.to_string())
}

/// In a helper: plugin volumes mounted. A daemon that died may have left
/// them mounted (its marker says so): they are released first so the
/// plugin's mount count starts over.
fn mount_plugin_volumes(
    root: &Path,
    container: &str,
    spec: &Spec,
    settings: &PluginSettings,
    base: &Path,
) -> Value {
    let marker = base.join(volumes::MOUNTED_MARKER);
    let mut warnings = Vec::new();
    if marker.exists() {
        warnings = volumes::unmount_volumes_with(root, container, spec, settings);
    }
    match volumes::mount_volumes_with(root, container, spec, settings) {
        Ok(paths) => {
            if let Err(e) = std::fs::write(&marker, b"") {
                warnings.push(format!("write {}: {e}", marker.display()));
            }
            json!({ "paths": paths, "warnings": warnings })
        }
        Err(e) => json!({ "error": e, "warnings": warnings }),
    }
}
