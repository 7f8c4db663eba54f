//! Whole-config apply (docs/update.md, "apply"): a directory or tarball
//! replaces the config as one transaction. A helper copies and validates
//! it into a new generation of the store (config_store); the loop then
//! switches every container to it, apply_watch.rs waits until each changed
//! one is stable, and only then does a second helper move the `current`
//! pointer. A failure puts the previous config back. `reset` is the same
//! transaction with the seed config as the target and the pointer removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::supervisor::config_store;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::launch::check::load_config;
use crate::supervisor::ops::apply_stage::stage_and_check;
use crate::supervisor::ops::first_boot::{FirstBootMark, record_applied};
use crate::supervisor::ops::jobs::{JobDone, JobKind};
use crate::supervisor::ops::reload::ReloadSummary;
use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::plugins::network::NetworkSettings;
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::say;
use crate::supervisor::spec::load::LoadedSpec;
use crate::supervisor::spec::settings::load_settings;

/// Where an apply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Not known yet: the staging helper names the generation.
    Staging,
    /// A generation staged in the store.
    Generation(PathBuf),
    /// Back to the seed (`--config`) directory.
    Seed,
}

/// One container the apply changed, watched until stable.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// The run it had before the apply (None: added by it).
    pub old_run: Option<u64>,
    pub started: Option<Instant>,
    pub failed: Option<String>,
    /// A task (restart "no" or "on-failure") that exited 0: done.
    pub completed: bool,
}

/// The apply under way (one at a time).
#[derive(Debug)]
pub struct Apply {
    /// The client waiting for the answer, until it goes away.
    pub token: Option<u64>,
    pub target: Target,
    pub source: String,
    pub switched: bool,
    pub committing: bool,
    pub since: Instant,
    pub previous_dir: PathBuf,
    pub previous_specs: Vec<LoadedSpec>,
    pub summary: ReloadSummary,
    pub watched: std::collections::BTreeMap<String, Watch>,
    /// Set when the config came from the kernel command line
    /// (first_boot.rs): its digest is recorded with the commit.
    pub first_boot: Option<FirstBootMark>,
}

/// How often the changed containers are looked at.
pub(crate) const APPLY_TICK: Duration = Duration::from_millis(250);

impl Supervisor {
    /// API `apply`: `source` (an absolute directory or tarball path), or
    /// with None the reset to the seed config. Answered when over.
    pub fn request_apply(
        &mut self,
        source: Option<&Path>,
        token: u64,
    ) -> Result<(), SupervisorError> {
        if self.shutting_down {
            return Err(SupervisorError::ShuttingDown);
        }
        if let Some(a) = &self.apply {
            return Err(SupervisorError::Invalid(format!(
                "an apply of {} is under way",
                a.source
            )));
        }
        let root = self.store.root().to_path_buf();
        let Some(source) = source else {
            if config_store::active(&root).is_none() {
                return Err(SupervisorError::Invalid(
                    "no config was applied: the seed config is in use".into(),
                ));
            }
            self.apply = Some(self.new_apply(Target::Seed, "the seed config".into(), Some(token)));
            let seed = self.options.seed_config_dir.clone();
            self.switch_config(&seed);
            return Ok(());
        };
        if !source.is_absolute() {
            return Err(SupervisorError::Invalid(format!(
                "{}: give an absolute path",
                source.display()
            )));
        }
        let from = source.to_path_buf();
        self.jobs
            .start(JobKind::ApplyStage, None, &[], move || {
                stage_and_check(&root, &from)
            })
            .map_err(SupervisorError::Invalid)?;
        let text = source.display().to_string();
        self.apply = Some(self.new_apply(Target::Staging, text, Some(token)));
        Ok(())
    }

    pub(crate) fn new_apply(&self, target: Target, source: String, token: Option<u64>) -> Apply {
        Apply {
            token,
            target,
            source,
            switched: false,
            committing: false,
            since: Instant::now(),
            previous_dir: self.options.config_dir.clone(),
            previous_specs: Vec::new(),
            summary: ReloadSummary::default(),
            watched: Default::default(),
            first_boot: None,
        }
    }

    /// The staging helper answered: refused, or on to the switch.
    pub(crate) fn apply_staged(&mut self, done: JobDone) {
        let generation = done.answer.get("generation").and_then(Value::as_str);
        let (Some(a), Some(generation)) = (self.apply.as_mut(), generation) else {
            let errors: Vec<String> = match done.answer.get("errors").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect(),
                None => vec![Self::job_error(&done).unwrap_or_else(|| "staging failed".into())],
            };
            return self.apply_refused(errors);
        };
        let generation = PathBuf::from(generation);
        a.target = Target::Generation(generation.clone());
        self.switch_config(&generation);
    }

    /// Nothing changed: the config was refused as a whole.
    fn apply_refused(&mut self, errors: Vec<String>) {
        let Some(a) = self.apply.take() else {
            return;
        };
        if let Some(mark) = &a.first_boot {
            self.first_boot_refused(&mark.source, errors.clone());
        } else {
            say(format_args!("apply of {} refused:", a.source));
            errors.iter().for_each(|e| say(format_args!("  {e}")));
        }
        let data = json!({"source": a.source, "errors": errors});
        self.emit(kinds::CONFIG_REJECTED, None, data);
        self.answer_apply(a.token, json!({"applied": false, "errors": errors}));
    }

    /// Every container to the config in `dir`; then the watch.
    pub(crate) fn switch_config(&mut self, dir: &Path) {
        let loaded = load_settings(dir)
            .and_then(|_| load_config(dir))
            .and_then(|specs| self.refuse_names_of_run_containers(specs));
        let specs = match loaded {
            Ok(s) => s,
            Err(errors) => {
                self.drop_generation();
                return self.apply_refused(errors.iter().map(|e| e.to_string()).collect());
            }
        };
        let previous_specs = self.config_specs();
        let runs: Vec<(String, u64)> = self
            .containers
            .values()
            .map(|c| (c.name.clone(), c.run_id()))
            .collect();
        let previous_dir = self.set_config_dir(dir);
        let summary = self.reconcile(specs);
        let Some(a) = self.apply.as_mut() else {
            return;
        };
        a.previous_dir = previous_dir;
        a.previous_specs = previous_specs;
        a.switched = true;
        a.since = Instant::now();
        for name in summary.added.iter().chain(&summary.changed) {
            let old_run = runs.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
            a.watched.insert(
                name.clone(),
                Watch {
                    old_run,
                    ..Watch::default()
                },
            );
        }
        let data = json!({"source": a.source, "from": a.previous_dir, "to": dir,
            "added": summary.added, "removed": summary.removed, "changed": summary.changed});
        say(format_args!(
            "apply of {}: {} added, {} removed, {} changed; watching until stable",
            a.source,
            summary.added.len(),
            summary.removed.len(),
            summary.changed.len()
        ));
        a.summary = summary;
        self.emit(kinds::CONFIG_APPLY_STARTED, None, data);
        self.restart_notifier();
        self.start_host_network();
        self.schedule_apply_check(APPLY_TICK);
    }

    /// The config's specs as the containers hold them now (those started
    /// with `berth run` are no part of it).
    fn config_specs(&self) -> Vec<LoadedSpec> {
        let dir = self.options.config_dir.join("containers");
        self.containers
            .values()
            .filter(|c| !c.ephemeral)
            .map(|c| LoadedSpec {
                name: c.name.clone(),
                path: dir.join(format!("{}.json", c.name)),
                spec: c.pending_spec.clone().unwrap_or_else(|| c.spec.clone()),
            })
            .collect()
    }

    /// The directory the containers' files come from; returns the old one.
    fn set_config_dir(&mut self, dir: &Path) -> PathBuf {
        self.options.network = NetworkSettings::for_config_dir(dir);
        std::mem::replace(&mut self.options.config_dir, dir.to_path_buf())
    }

    pub(crate) fn schedule_apply_check(&mut self, delay: Duration) {
        self.timers
            .schedule_in(Instant::now(), delay, "", 0, TimerKind::ApplyCheck);
    }

    /// Every changed container is stable: the pointer moves (a helper
    /// writes and fsyncs it).
    pub(crate) fn commit_apply(&mut self) {
        let root = self.store.root().to_path_buf();
        let Some(a) = self.apply.as_mut() else {
            return;
        };
        a.committing = true;
        let target = a.target.clone();
        let mark = a.first_boot.clone();
        let started = self.jobs.start(JobKind::ApplyCommit, None, &[], move || {
            let result = match &target {
                Target::Generation(dir) => config_store::commit(&root, dir),
                Target::Seed => config_store::reset(&root),
                Target::Staging => Err("nothing was staged".into()),
            };
            match result {
                Ok(()) => json!({ "warning": record_applied(&root, mark) }),
                Err(e) => json!({"error": e}),
            }
        });
        if let Err(e) = started {
            self.roll_back(vec![("config".into(), e)]);
        }
    }

    /// The pointer helper answered: done, or (it could not be written)
    /// back to the previous config.
    pub(crate) fn apply_committed(&mut self, done: JobDone) {
        if let Some(e) = Self::job_error(&done) {
            if let Some(a) = self.apply.as_mut() {
                a.committing = false;
            }
            return self.roll_back(vec![("config".into(), format!("switch the pointer: {e}"))]);
        }
        let Some(a) = self.apply.take() else {
            return;
        };
        let to = match &a.target {
            Target::Generation(dir) => dir.display().to_string(),
            Target::Seed | Target::Staging => "seed".to_string(),
        };
        say(format_args!(
            "applied {} ({to}) after {} ms",
            a.source,
            a.since.elapsed().as_millis()
        ));
        let summary = serde_json::to_value(&a.summary).unwrap_or_default();
        let data = json!({"source": a.source, "config_dir": self.options.config_dir,
            "summary": summary});
        self.emit(kinds::CONFIG_APPLIED, None, data.clone());
        if let Some(mark) = &a.first_boot {
            let warning = done.answer.get("warning").and_then(Value::as_str);
            self.first_boot_applied(mark, warning);
        }
        self.answer_apply(
            a.token,
            json!({"applied": true, "config_dir": data["config_dir"],
            "summary": summary}),
        );
    }

    /// Undoes the switch: the previous directory and specs again, one
    /// event naming what failed.
    pub(crate) fn roll_back(&mut self, failed: Vec<(String, String)>) {
        if self.apply.as_ref().is_some_and(|a| a.committing) {
            // The pointer is being written: its answer decides.
            return;
        }
        let Some(a) = self.apply.take() else {
            return;
        };
        let list: Vec<Value> = failed
            .iter()
            .map(|(name, why)| json!({"name": name, "reason": why}))
            .collect();
        for (name, why) in &failed {
            say(format_args!(
                "apply of {}: {name}: {why}; rolling back",
                a.source
            ));
        }
        let data = json!({"source": a.source, "failed": list, "restored": a.previous_dir});
        self.emit(kinds::CONFIG_APPLY_ROLLED_BACK, None, data);
        self.set_config_dir(&a.previous_dir);
        if let Some(mark) = &a.first_boot {
            let why = failed.iter().map(|(n, w)| format!("{n}: {w}")).collect();
            self.first_boot_refused(&mark.source, why);
        }
        if self.shutting_down {
            // Nothing starts now; the next start reads the old pointer.
            return self.answer_apply(a.token, json!({"applied": false, "failed": list}));
        }
        // One the apply removed may still be stopping: it comes back
        // once it is gone (apply_watch.rs).
        let (restores, specs): (Vec<LoadedSpec>, Vec<LoadedSpec>) =
            a.previous_specs.into_iter().partition(|s| {
                self.containers
                    .get(&s.name)
                    .is_some_and(|c| c.remove_requested())
            });
        self.apply_restores.extend(restores);
        self.reconcile(specs);
        if !self.apply_restores.is_empty() {
            self.schedule_apply_check(APPLY_TICK);
        }
        self.restart_notifier();
        self.start_host_network();
        if let Target::Generation(dir) = &a.target {
            self.remove_generation(dir.clone());
        }
        self.answer_apply(a.token, json!({"applied": false, "failed": list}));
    }

    fn drop_generation(&mut self) {
        if let Some(Apply {
            target: Target::Generation(dir),
            ..
        }) = &self.apply
        {
            let dir = dir.clone();
            self.remove_generation(dir);
        }
    }

    pub(crate) fn remove_generation(&mut self, dir: PathBuf) {
        let work = move || match std::fs::remove_dir_all(&dir) {
            Ok(()) => json!({}),
            Err(e) => json!({"error": format!("remove {}: {e}", dir.display())}),
        };
        if let Err(e) = self.jobs.start(JobKind::RemoveTree, None, &[], work) {
            say(format_args!("{e}"));
        }
    }

    fn answer_apply(&mut self, token: Option<u64>, answer: Value) {
        if let Some(token) = token {
            self.update_requests.push_ready(token, answer);
        }
    }

    /// A client went away: the apply goes on, unanswered.
    pub(crate) fn forget_apply_client(&mut self, token: u64) {
        if let Some(a) = self.apply.as_mut()
            && a.token == Some(token)
        {
            a.token = None;
        }
    }
}
