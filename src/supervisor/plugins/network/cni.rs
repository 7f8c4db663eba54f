//! Running a CNI network configuration list for one container, per the
//! CNI 1.1 SPEC.md "Section 4": ADD in order chaining prevResult, the final
//! result persisted, DEL in reverse with it. Also the cleanup of what a
//! crashed daemon left attached.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conflist::{self, Conflist};
use super::netns_pin::{is_netns, pin_netns, pin_path, unpin_netns};
use super::plugin::{Call, find_plugin, run_plugin};
use super::scratch_netns::ScratchNetns;
use super::{Attachment, IFNAME, NetError, NetworkSettings, PluginError};
use crate::supervisor::spec::service::PortSpec;

/// The state file's name in `ROOT/containers/NAME/` (the namespace pin
/// is `cni.netns` beside it).
pub const STATE_FILE: &str = "cni.json";

/// What DEL needs, written before the first ADD (`result` null) and again
/// with the final result: a crash at any point leaves enough to undo it.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    container_id: String,
    ifname: String,
    conflist: Value,
    port_mappings: Vec<Value>,
    result: Option<Value>,
}

/// `berth-NAME`: unique per container, the same across its restarts, and
/// starting with a letter as the spec requires.
pub fn container_id(container: &str) -> String {
    format!("berth-{container}")
}

/// Checks the configured list parses and every plugin it names is found.
pub fn check(settings: &NetworkSettings) -> Result<(), NetError> {
    let list = conflist::load(settings)?;
    for p in &list.plugins {
        let kind = Conflist::plugin_type(p);
        find_plugin(kind, &settings.cni_path).map_err(|e| NetError::BadConfig {
            path: settings.conflist.clone(),
            msg: format!("plugin {kind}: {e}"),
        })?;
    }
    Ok(())
}

/// Attaches the namespace at `netns` (e.g. /proc/PID/ns/net) to the
/// network: pins it beside `state_file`, runs ADD through the list and
/// persists the result. A leftover attachment in `state_file` is detached
/// first. On failure, whatever was added is deleted again.
pub fn attach(
    settings: &NetworkSettings,
    container: &str,
    netns: &Path,
    ports: &[PortSpec],
    state_file: &Path,
) -> Result<Attachment, NetError> {
    let list = conflist::load(settings)?;
    if state_file.exists() {
        detach(settings, container, None, state_file)?;
    }
    let pin = pin_path(state_file);
    pin_netns(netns, &pin).map_err(state_error(container, "pin network namespace at", &pin))?;
    let mut state = State {
        container_id: container_id(container),
        ifname: IFNAME.to_string(),
        conflist: list.raw.clone(),
        port_mappings: conflist::port_mappings(ports),
        result: None,
    };
    if let Err(e) = write_state(state_file, &state) {
        let _ = unpin_netns(&pin);
        return Err(state_error(container, "write", state_file)(e));
    }
    let outcome = add_chain(settings, container, &list, &state, &pin).and_then(|result| {
        state.result = Some(result.clone());
        match write_state(state_file, &state) {
            Ok(()) => Ok(result),
            Err(e) => Err(AddFailure {
                error: state_error(container, "write", state_file)(e),
                ran: list.plugins.len(),
                last: state.result.take(),
            }),
        }
    });
    match outcome {
        Ok(result) => Ok(conflist::attachment_from(result, IFNAME)),
        Err(failure) => {
            state.result = failure.last;
            let ran = &list.plugins[..failure.ran.min(list.plugins.len())];
            undo_add(settings, container, &list, &state, ran, state_file);
            Err(failure.error)
        }
    }
}

/// Undoes a failed ADD: DEL for the plugins that ran (the failed one too:
/// it may have done part of its work), newest first, with the latest
/// result. The ADD error is the one reported; a failed undo keeps the state
/// so that `detach` or `cleanup_stale` can try again.
fn undo_add(
    settings: &NetworkSettings,
    container: &str,
    list: &Conflist,
    state: &State,
    ran: &[serde_json::Map<String, Value>],
    state_file: &Path,
) {
    let pin = pin_path(state_file);
    let deleted = del_chain(settings, container, list, state, DelNetns::Live(&pin), ran);
    let _ = unpin_netns(&pin);
    if deleted.is_ok() {
        let _ = fs::remove_file(state_file);
    } else {
        let _ = write_state(state_file, state);
    }
}

/// Where an ADD chain stopped: the error, how many plugins ran (the failed
/// one included) and the last result.
struct AddFailure {
    error: NetError,
    ran: usize,
    last: Option<Value>,
}

fn state_error(
    container: &str,
    op: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> NetError {
    let (container, path) = (container.to_string(), path.to_path_buf());
    move |source| NetError::State {
        container,
        op,
        path,
        source,
    }
}

fn add_chain(
    settings: &NetworkSettings,
    container: &str,
    list: &Conflist,
    state: &State,
    netns: &Path,
) -> Result<Value, AddFailure> {
    let mut prev: Option<Value> = None;
    for (i, plugin) in list.plugins.iter().enumerate() {
        let stdin = conflist::plugin_stdin(list, plugin, &state.port_mappings, prev.as_ref());
        let result = call_plugin(
            settings,
            container,
            "ADD",
            state,
            Some(netns),
            plugin,
            &stdin,
        )
        .and_then(|out| {
            serde_json::from_slice(&out).map_err(|e| NetError::Plugin {
                container: container.to_string(),
                command: "ADD",
                plugin: Conflist::plugin_type(plugin).to_string(),
                source: Box::new(PluginError::BadResult(e)),
            })
        });
        match result {
            Ok(r) => prev = Some(r),
            Err(error) => {
                // A plugin that could not be found never ran: no DEL for it.
                let never_ran = matches!(&error, NetError::Plugin { source, .. }
                    if matches!(**source, PluginError::NotFound { .. } | PluginError::BadType(_)));
                return Err(AddFailure {
                    error,
                    ran: if never_ran { i } else { i + 1 },
                    last: prev,
                });
            }
        }
    }
    // `conflist::parse` refuses an empty list.
    prev.ok_or(AddFailure {
        error: NetError::BadConfig {
            path: settings.conflist.clone(),
            msg: "no plugins".into(),
        },
        ran: 0,
        last: None,
    })
}

/// The namespace a DEL runs with.
#[derive(Clone, Copy)]
enum DelNetns<'a> {
    /// The container's own (pinned, or still alive).
    Live(&'a Path),
    /// A stand-in (scratch_netns.rs). A plugin whose DEL already ran
    /// before may fail on it (bridge 1.1.1 then tears down ipMasq rules
    /// that are gone), so a failure is retried with no namespace.
    StandIn(&'a Path),
    Gone,
}

/// DEL for `plugins`, newest first; every one runs, the first error is
/// returned.
fn del_chain(
    settings: &NetworkSettings,
    container: &str,
    list: &Conflist,
    state: &State,
    netns: DelNetns,
    plugins: &[serde_json::Map<String, Value>],
) -> Result<(), NetError> {
    let mut first_err = None;
    for plugin in plugins.iter().rev() {
        let stdin =
            conflist::plugin_stdin(list, plugin, &state.port_mappings, state.result.as_ref());
        let del = |ns| call_plugin(settings, container, "DEL", state, ns, plugin, &stdin);
        let outcome = match netns {
            DelNetns::Live(p) => del(Some(p)),
            DelNetns::StandIn(p) => del(Some(p)).or_else(|_| del(None)),
            DelNetns::Gone => del(None),
        };
        if let Err(e) = outcome {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn call_plugin(
    settings: &NetworkSettings,
    container: &str,
    command: &'static str,
    state: &State,
    netns: Option<&Path>,
    plugin: &serde_json::Map<String, Value>,
    stdin: &[u8],
) -> Result<Vec<u8>, NetError> {
    let kind = Conflist::plugin_type(plugin);
    let call = Call {
        command,
        container_id: &state.container_id,
        netns,
        ifname: &state.ifname,
        cni_path: &settings.cni_path,
        timeout: settings.plugin_timeout,
    };
    find_plugin(kind, &settings.cni_path)
        .and_then(|bin| run_plugin(&bin, &call, stdin))
        .map_err(|source| NetError::Plugin {
            container: container.to_string(),
            command,
            plugin: kind.to_string(),
            source: Box::new(source),
        })
}

/// Runs DEL through the list stored in `state_file`, in reverse, with the
/// stored result, then removes the state and the namespace pin. Missing
/// state means nothing is attached (Ok). Every plugin gets its DEL even if
/// one fails; the first failure is returned and the state kept (the pin is
/// released), so that a later detach (or `cleanup_stale`) can try again.
/// `netns` is used only if the pinned namespace is gone.
pub fn detach(
    settings: &NetworkSettings,
    container: &str,
    netns: Option<&Path>,
    state_file: &Path,
) -> Result<(), NetError> {
    let pin = pin_path(state_file);
    let Some(state) = read_state(settings, container, state_file)? else {
        return unpin_netns(&pin).map_err(state_error(container, "unpin network namespace", &pin));
    };
    let list = conflist::parse(state.conflist.clone()).map_err(|msg| NetError::BadConfig {
        path: state_file.to_path_buf(),
        msg,
    })?;
    let live = [Some(pin.as_path()), netns]
        .into_iter()
        .flatten()
        .find(|p| is_netns(p));
    // Without the container's namespace, a stand-in (scratch_netns.rs);
    // if even that cannot be made, DEL runs with no namespace.
    let scratch = match (live, &state.result) {
        (None, Some(result)) => {
            let cidrs = conflist::container_cidrs(result, &state.ifname);
            (!cidrs.is_empty())
                .then(|| ScratchNetns::create(&state.ifname, &cidrs).ok())
                .flatten()
        }
        _ => None,
    };
    let ns = match (live, &scratch) {
        (Some(p), _) => DelNetns::Live(p),
        (None, Some(s)) => DelNetns::StandIn(s.path()),
        (None, None) => DelNetns::Gone,
    };
    let deleted = del_chain(settings, container, &list, &state, ns, &list.plugins);
    drop(scratch);
    // Released even after a failed DEL: a namespace kept for a retry that
    // keeps failing (a removed plugin) would leak, with its veth, forever.
    let unpinned = unpin_netns(&pin);
    deleted?;
    unpinned.map_err(state_error(container, "unpin network namespace", &pin))?;
    match fs::remove_file(state_file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(state_error(container, "remove", state_file)(e))
        }
        _ => Ok(()),
    }
}

/// The stored state; None when there is none. A corrupt file (a crash
/// mid-write cannot produce one, but a disk can) falls back to the
/// configured list with no result, which plugins accept for DEL.
fn read_state(
    settings: &NetworkSettings,
    container: &str,
    state_file: &Path,
) -> Result<Option<State>, NetError> {
    let bytes = match fs::read(state_file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NetError::State {
                container: container.to_string(),
                op: "read",
                path: state_file.to_path_buf(),
                source,
            });
        }
    };
    if let Ok(state) = serde_json::from_slice::<State>(&bytes) {
        return Ok(Some(state));
    }
    let list = conflist::load(settings)?;
    Ok(Some(State {
        container_id: container_id(container),
        ifname: IFNAME.to_string(),
        conflist: list.raw,
        port_mappings: Vec::new(),
        result: None,
    }))
}

/// tmp file, fsync, rename: a crash leaves the old state or the new.
fn write_state(path: &Path, state: &State) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)
}

/// At daemon start: detaches every container under `containers_dir`
/// (`NAME/cni.json`) that is not `live`, i.e. what a crash left attached.
/// Returns each container tried, with the outcome.
pub fn cleanup_stale(
    settings: &NetworkSettings,
    containers_dir: &Path,
    live: &dyn Fn(&str) -> bool,
) -> Vec<(String, Result<(), NetError>)> {
    let Ok(entries) = fs::read_dir(containers_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| containers_dir.join(name).join(STATE_FILE).is_file())
        .filter(|name| !live(name))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let state = containers_dir.join(&name).join(STATE_FILE);
            let r = detach(settings, &name, None, &state);
            (name, r)
        })
        .collect()
}
