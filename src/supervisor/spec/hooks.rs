//! Checks of a spec's `hooks` (OCI prestart, poststart, poststop,
//! createContainer, startContainer). Running them is plugins/hooks.rs and,
//! for the two run from inside the container, launch/container_hooks.rs.

use crate::supervisor::spec::service::{HookSpec, HooksSpec};
use crate::supervisor::spec::validate::{Problem, problem};

/// The longest a hook may be given (`timeout`, seconds).
pub const MAX_HOOK_TIMEOUT_SECS: u64 = 300;

/// Config errors in a spec's hooks, at ["hooks", STAGE, INDEX, FIELD].
/// Whether `path` exists is checked when the hook runs: it may appear later
/// (a package installed after the spec was written, or, for
/// startContainer, a path in the image).
pub fn check_hooks(h: &HooksSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (stage, hooks) in h.stages() {
        for (i, hook) in hooks.iter().enumerate() {
            let index = i.to_string();
            for (field, message) in check_hook(hook) {
                problems.push(problem(&["hooks", stage, &index, field], message));
            }
        }
    }
    problems
}

fn check_hook(hook: &HookSpec) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if !hook.path.starts_with('/') {
        problems.push(("path", "must be an absolute path".into()));
    }
    let has_nul = |s: &String| s.contains('\0');
    if has_nul(&hook.path) || hook.args.iter().any(has_nul) || hook.env.iter().any(has_nul) {
        problems.push((
            "path",
            "must not contain NUL bytes (nor may args or env)".into(),
        ));
    }
    // Named by position: the entry may be a credential missing its key,
    // and `check` answers the API's read group too.
    if let Some(bad) = hook.env.iter().position(|e| split_env(e).is_none()) {
        problems.push(("env", format!("entry {bad} is not KEY=VALUE")));
    }
    // In a raw environ the first of two equal keys wins for getenv(3); the
    // hook gets one entry per key, so a duplicate would be ambiguous.
    let mut keys = std::collections::BTreeSet::new();
    if let Some((key, _)) = hook
        .env
        .iter()
        .filter_map(|e| split_env(e))
        .find(|(k, _)| !keys.insert(*k))
    {
        problems.push(("env", format!("{key} is set twice")));
    }
    if let Some(t) = hook.timeout
        && !(1..=MAX_HOOK_TIMEOUT_SECS).contains(&t)
    {
        let message = format!("must be 1 to {MAX_HOOK_TIMEOUT_SECS} seconds");
        problems.push(("timeout", message));
    }
    problems
}

fn split_env(entry: &str) -> Option<(&str, &str)> {
    entry.split_once('=').filter(|(key, _)| !key.is_empty())
}
