//! First-boot configuration (docs/pid1.md): as the machine's init, berth
//! reads `berth.config=` from the kernel command line; a helper
//! (first_boot_source.rs) finds the config drive or fetches the URL,
//! stages and checks the config as `berth apply` does, and the loop then
//! applies it as an apply (apply.rs): the same switch, watch, commit and
//! rollback, the same store pointer. The baked config runs meanwhile, and
//! goes on running when the source is refused. A config whose digest was
//! applied before is not applied again, so an operator's later `berth
//! apply` (or `--reset`) wins over the same unchanged drive.

use std::path::Path;

use serde_json::{Value, json};

use crate::supervisor::config_store::first_boot;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::apply::Target;
use crate::supervisor::ops::first_boot_source::acquire;
use crate::supervisor::ops::jobs::{JobDone, JobKind};
use crate::supervisor::say;

/// What an apply that came from the kernel command line carries, to be
/// recorded once it commits.
#[derive(Debug, Clone)]
pub struct FirstBootMark {
    pub digest: String,
    /// The source as shown (`LABEL=CIDATA`, a URL without its query).
    pub source: String,
}

impl Supervisor {
    /// At daemon start, as the machine's init only (a service's kernel
    /// command line belongs to the host): starts the helper when
    /// `berth.config=` names a source.
    pub fn start_first_boot(&mut self) {
        let text = match self.kernel_cmdline() {
            Some(Ok(t)) => t,
            Some(Err(e)) => return say(format_args!("first-boot config: {e}")),
            None => return,
        };
        let source = match first_boot::from_cmdline(&text) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => return self.first_boot_refused("the kernel command line", vec![e]),
        };
        say(format_args!("first-boot config: looking for {source}"));
        let root = self.store.root().to_path_buf();
        let shown = source.to_string();
        let work = move || acquire(&root, &source);
        if let Err(e) = self.jobs.start(JobKind::FirstBoot, None, &[], work) {
            self.first_boot_refused(&shown, vec![e]);
        }
    }

    /// The helper answered: applied as an apply, already applied, or
    /// refused.
    pub(crate) fn first_boot_staged(&mut self, done: JobDone) {
        let answer = &done.answer;
        let text = |k: &str| answer.get(k).and_then(Value::as_str).map(String::from);
        let source = text("source").unwrap_or_else(|| "berth.config".into());
        if let Some(digest) = text("unchanged") {
            say(format_args!(
                "first-boot config from {source} ({digest}) was applied before: not again \
                 (the active config stands)"
            ));
            let data = json!({"source": source, "digest": digest});
            return self.emit(kinds::CONFIG_FIRST_BOOT_UNCHANGED, None, data);
        }
        let (Some(generation), Some(digest)) = (text("generation"), text("digest")) else {
            let errors: Vec<String> = match answer.get("errors").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect(),
                None => vec![Self::job_error(&done).unwrap_or_else(|| "no answer".into())],
            };
            return self.first_boot_refused(&source, errors);
        };
        let generation = std::path::PathBuf::from(generation);
        if let Some(busy) = self.busy_reason() {
            self.remove_generation(generation);
            return self.first_boot_refused(&source, vec![busy]);
        }
        say(format_args!(
            "first-boot config from {source} ({digest}) is valid; applying it"
        ));
        let shown = format!("berth.config={source}");
        let mut apply = self.new_apply(Target::Generation(generation.clone()), shown, None);
        apply.first_boot = Some(FirstBootMark { digest, source });
        self.apply = Some(apply);
        self.switch_config(&generation);
    }

    /// The kernel command line, as the machine's init only (None
    /// otherwise). Debug builds (what `cargo test` runs) take
    /// `BERTH_TEST_KERNEL_CMDLINE` instead, in any mode, so that
    /// tests/first_boot.rs can check the digest rule with a daemon that is
    /// not a machine's init; release builds are compiled without it.
    fn kernel_cmdline(&self) -> Option<Result<String, String>> {
        #[cfg(debug_assertions)]
        if let Some(text) = std::env::var_os("BERTH_TEST_KERNEL_CMDLINE") {
            return Some(Ok(text.to_string_lossy().into_owned()));
        }
        self.options.machine_init.then(read_cmdline)
    }

    fn busy_reason(&self) -> Option<String> {
        if self.shutting_down {
            return Some("the machine is shutting down".into());
        }
        let a = self.apply.as_ref()?;
        Some(format!("an apply of {} is under way; it stands", a.source))
    }

    /// Said on the console, reason by reason (each `file:line:col: …` for
    /// a spec), and journaled; the baked config goes on running.
    pub(crate) fn first_boot_refused(&mut self, source: &str, errors: Vec<String>) {
        say(format_args!(
            "first-boot config from {source} refused; the config in {} runs:",
            self.options.config_dir.display()
        ));
        for e in &errors {
            say(format_args!("  {e}"));
        }
        let data = json!({"source": source, "errors": errors});
        self.emit(kinds::CONFIG_FIRST_BOOT_REFUSED, None, data);
    }

    /// The apply of a first-boot config committed (its digest recorded by
    /// the same helper that moved the pointer).
    pub(crate) fn first_boot_applied(&mut self, mark: &FirstBootMark, warning: Option<&str>) {
        say(format_args!(
            "first-boot config from {} applied ({}); it is the active config",
            mark.source, mark.digest
        ));
        if let Some(w) = warning {
            say(format_args!(
                "first-boot config: {w}; the same content will be applied again at the next boot"
            ));
        }
        let data = json!({"source": mark.source, "digest": mark.digest,
            "config_dir": self.options.config_dir});
        self.emit(kinds::CONFIG_FIRST_BOOT_APPLIED, None, data);
    }
}

/// In the commit helper, once the pointer names the generation: its
/// digest recorded. A record that cannot be written is only a warning:
/// the pointer has moved, and applying the same content again at the next
/// boot changes nothing.
pub(crate) fn record_applied(root: &Path, mark: Option<FirstBootMark>) -> Option<String> {
    let m = mark?;
    first_boot::record(root, &m.digest, &m.source).err()
}

/// /proc/cmdline, bounded.
fn read_cmdline() -> Result<String, String> {
    use std::io::Read;
    let file =
        std::fs::File::open("/proc/cmdline").map_err(|e| format!("read /proc/cmdline: {e}"))?;
    let mut bytes = Vec::new();
    file.take(first_boot::MAX_CMDLINE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("read /proc/cmdline: {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
