//! Reconciling the running set with the config directory (SIGHUP, API
//! `reload`): new specs start, removed ones stop and go, changed ones (by
//! a hash of the spec) restart with the new spec, the rest are left alone.
//! An invalid directory is rejected as a whole and nothing changes.

use serde::Serialize;

use crate::fetch::digest::Digest;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::launch::ContainerDirs;
use crate::supervisor::launch::check::load_config as load_config_dir;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::runtime::container::Container;
use crate::supervisor::runtime::machine::{Event, State};
use crate::supervisor::say;
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::load::LoadedSpec;
use crate::supervisor::spec::settings::load_settings;
use crate::supervisor::spec::validate::SpecError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

/// sha256 of the spec as berth reads it (defaults filled in), so a
/// reformatted file is not a change and a changed default is.
pub fn spec_hash(spec: &Spec) -> String {
    let bytes = serde_json::to_vec(spec).unwrap_or_default();
    Digest::of_bytes(&bytes).to_string()
}

impl Supervisor {
    pub fn reload(&mut self) -> Result<ReloadSummary, Vec<SpecError>> {
        if self.shutting_down {
            return Ok(ReloadSummary::default());
        }
        // The apply decides what runs until it is over.
        if let Some(a) = &self.apply {
            say(format_args!(
                "reload skipped: the apply of {} is under way",
                a.source
            ));
            return Ok(ReloadSummary::default());
        }
        let dir = self.options.config_dir.clone();
        let loaded = load_settings(&dir)
            .and_then(|_| load_config_dir(&dir))
            .and_then(|specs| self.refuse_names_of_run_containers(specs));
        let specs = match loaded {
            Ok(s) => s,
            Err(errors) => {
                self.reload_rejected(&dir, &errors);
                return Err(errors);
            }
        };
        let summary = self.reconcile(specs);
        let data = serde_json::to_value(&summary).unwrap_or_default();
        self.emit(kinds::CONFIG_RELOADED, None, data);
        self.restart_notifier();
        self.start_host_network();
        say(format_args!(
            "reloaded: {} added, {} removed, {} changed, {} unchanged",
            summary.added.len(),
            summary.removed.len(),
            summary.changed.len(),
            summary.unchanged.len()
        ));
        Ok(summary)
    }

    fn reload_rejected(&mut self, dir: &std::path::Path, errors: &[SpecError]) {
        say(format_args!(
            "reload rejected: {} errors in {}; the running set is unchanged",
            errors.len(),
            dir.display()
        ));
        for e in errors {
            say(format_args!("  {e}"));
        }
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        self.emit(
            kinds::CONFIG_REJECTED,
            None,
            serde_json::json!({"errors": list}),
        );
    }

    /// A spec file named like a container started with `berth run` would
    /// make that container "changed" and restart it with the file's spec;
    /// a reload never touches those, so the whole reload is refused, as
    /// `berth run` refuses a name the config directory uses.
    pub(crate) fn refuse_names_of_run_containers(
        &self,
        specs: Vec<LoadedSpec>,
    ) -> Result<Vec<LoadedSpec>, Vec<SpecError>> {
        let errors: Vec<SpecError> = specs
            .iter()
            .filter(|s| self.containers.get(&s.name).is_some_and(|c| c.ephemeral))
            .map(|s| SpecError {
                file: s.path.clone(),
                line: 1,
                col: 1,
                field: None,
                message: format!(
                    "the name {:?} belongs to a container started with `berth run`; \
                     remove that container first or rename this file",
                    s.name
                ),
            })
            .collect();
        if errors.is_empty() {
            Ok(specs)
        } else {
            Err(errors)
        }
    }

    /// Added specs start, removed ones go, changed ones restart with the
    /// new spec; the rest is untouched.
    pub(crate) fn reconcile(&mut self, specs: Vec<LoadedSpec>) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        let wanted: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let gone: Vec<String> = self
            .containers
            .values()
            .filter(|c| !c.ephemeral && !wanted.contains(&c.name))
            .map(|c| c.name.clone())
            .collect();
        for name in gone {
            self.remove_from_config(&name);
            summary.removed.push(name);
        }
        for loaded in specs {
            let name = loaded.name.clone();
            match self.containers.get(&name) {
                None => {
                    self.add_from_config(loaded);
                    summary.added.push(name);
                }
                Some(c) if spec_hash(&c.spec) == spec_hash(&loaded.spec) => {
                    summary.unchanged.push(name)
                }
                Some(_) => {
                    self.replace_spec(&name, loaded.spec);
                    summary.changed.push(name);
                }
            }
        }
        summary
    }

    pub(crate) fn add_from_config(&mut self, loaded: LoadedSpec) {
        let name = loaded.name;
        let dirs = ContainerDirs::new(&self.store.containers_dir(), &name);
        self.containers.insert(
            name.clone(),
            Container::new(name.clone(), loaded.spec, dirs),
        );
        self.load_update_record(&name);
        self.emit(
            kinds::CONTAINER_CREATED,
            Some(&name),
            serde_json::Value::Null,
        );
        self.fire(&name, Event::Start);
    }

    /// Stops it (if running) and forgets it once it has exited.
    fn remove_from_config(&mut self, name: &str) {
        self.fire(name, Event::Remove);
    }

    /// A running container restarts with the new spec once it has stopped;
    /// one that is not running takes the new spec and starts.
    fn replace_spec(&mut self, name: &str, spec: Spec) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        if c.state().is_live() || c.state() == State::Pulling {
            c.pending_spec = Some(spec);
            self.fire(name, Event::Restart);
            return;
        }
        c.spec = spec;
        c.pulled = false;
        self.fire(name, Event::Start);
    }
}
